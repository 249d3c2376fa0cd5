#include "tests/testing/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace tensorpager::testing {

std::string ServerProcess::BinaryPath() {
  const char* dir = std::getenv("TP_BINARY_DIR");
  return std::string(dir != nullptr ? dir : TP_BINARY_DIR) +
         "/server/tensorpagerd";
}

ServerProcess::ServerProcess(Options options)
    : options_(std::move(options)), temp_(std::make_unique<TempDir>()) {
  data_dir_ =
      options_.data_dir.empty() ? temp_->Sub("data") : options_.data_dir;
  ready_file_ = temp_->Sub("ready");
  log_file_ = temp_->Sub("server.log");
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    Options options) {
  std::unique_ptr<ServerProcess> p(new ServerProcess(std::move(options)));
  if (absl::Status s = p->Launch(); !s.ok()) return s;
  return p;
}

absl::Status ServerProcess::Launch() {
  std::filesystem::remove(ready_file_);
  std::vector<std::string> args = options_.wrapper;
  args.push_back(BinaryPath());
  args.push_back("--data_dir=" + data_dir_);
  args.push_back(absl::StrCat("--grpc_address=127.0.0.1:", reuse_port_));
  args.push_back("--metrics_address=127.0.0.1:0");
  args.push_back("--ready_file=" + ready_file_);
  for (const std::string& f : options_.flags) args.push_back(f);

  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = ::open(log_file_.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError("cannot open server log");
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(log_fd);
    return absl::InternalError("fork failed");
  }
  if (pid_ == 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // The server must not outlive a test that crashes or is killed.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);

  const absl::Time deadline = absl::Now() + options_.startup_timeout;
  while (absl::Now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("tensorpagerd exited during startup:\n", Log()));
    }
    std::ifstream f(ready_file_);
    if (f.good()) {
      std::string line;
      while (std::getline(f, line)) {
        std::pair<std::string, std::string> kv = absl::StrSplit(line, '=');
        int value = 0;
        if (!absl::SimpleAtoi(kv.second, &value)) continue;
        if (kv.first == "grpc_port") grpc_port_ = value;
        if (kv.first == "metrics_port") metrics_port_ = value;
      }
      if (grpc_port_ != 0) return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return absl::DeadlineExceededError(
      absl::StrCat("tensorpagerd did not become ready:\n", Log()));
}

void ServerProcess::Reap(int timeout_ms) {
  if (pid_ <= 0) return;
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

absl::Status ServerProcess::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  ::kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int status = 0;
  while (absl::Now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return absl::OkStatus();
      }
      return absl::InternalError(absl::StrCat(
          "tensorpagerd exited with status ", status, ":\n", Log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  return absl::DeadlineExceededError(
      absl::StrCat("tensorpagerd ignored SIGTERM for 30 s:\n", Log()));
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

absl::Status ServerProcess::Restart(bool same_port) {
  if (absl::Status s = Stop(); !s.ok()) return s;
  reuse_port_ = same_port ? grpc_port_ : 0;
  grpc_port_ = metrics_port_ = 0;
  return Launch();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    Reap(10000);
  }
}

std::string ServerProcess::target() const {
  return absl::StrCat("127.0.0.1:", grpc_port_);
}

std::string ServerProcess::Log() const {
  std::ifstream f(log_file_);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string log = ss.str();
  constexpr size_t kTail = 8000;
  return log.size() > kTail ? log.substr(log.size() - kTail) : log;
}

}  // namespace tensorpager::testing
