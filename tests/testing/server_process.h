// Runs a real tensorpagerd binary for integration tests: loopback, a port
// the kernel picks, a temporary data dir, and no process left behind.
#ifndef TENSORPAGER_TESTS_TESTING_SERVER_PROCESS_H_
#define TENSORPAGER_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {

class ServerProcess {
 public:
  struct Options {
    // Extra flags, e.g. "--ram_budget=64MiB".
    std::vector<std::string> flags;
    // Empty: a fresh temporary data dir owned by the object.
    std::string data_dir;
    // Prefix the command (e.g. {"cgexec", "-g", "memory:x"}).
    std::vector<std::string> wrapper;
    // How long a start (or restart) may take to become ready.
    absl::Duration startup_timeout = absl::Seconds(60);
  };

  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(Options options);
  ~ServerProcess();  // SIGTERM, then SIGKILL if it lingers

  // Graceful stop; returns the exit status as an error when it is not 0.
  absl::Status Stop();
  // SIGKILL, as a crash would.
  void Kill();
  // Starts again on the same data dir: on a new port, or on the same one
  // (clients connected before then reach the new process).
  absl::Status Restart(bool same_port = false);

  std::string target() const;
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  const std::string& data_dir() const { return data_dir_; }
  // The server's log so far (stderr), for failure messages.
  std::string Log() const;

  // Path of the tensorpagerd binary under test.
  static std::string BinaryPath();

 private:
  explicit ServerProcess(Options options);
  absl::Status Launch();
  void Reap(int timeout_ms);

  Options options_;
  std::unique_ptr<TempDir> temp_;
  std::string data_dir_;
  std::string ready_file_;
  std::string log_file_;
  pid_t pid_ = -1;
  int reuse_port_ = 0;  // the port Launch asks for (0: any)
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_TESTING_SERVER_PROCESS_H_
