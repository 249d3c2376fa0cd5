// tensorpagerd: pages tensor blocks between host RAM and an NVMe tier for
// inference servers. Flags: tensorpagerd --help.
#include <signal.h>

#include <cstdlib>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "server/server.h"
#include "server/server_config.h"
#include "storage/log.h"

namespace {

// Only this program's flags in --help, not Abseil's or gRPC's internals.
bool IsOurFlagFile(absl::string_view path) {
  return absl::StrContains(path, "server/");
}

}  // namespace

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsOurFlagFile;
  usage.contains_helpshort_flags = IsOurFlagFile;
  usage.version_string = [] { return std::string(TENSORPAGER_VERSION) + "\n"; };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "tensorpagerd pages tensor blocks between host RAM and a local NVMe "
      "drive for inference servers.\nUsage: tensorpagerd [flags]\n"
      "With no flags: data in ./tensorpager-data, gRPC on 127.0.0.1:50051, "
      "metrics on :9464.");
  absl::ParseCommandLine(argc, argv);

  // Signals are taken synchronously by this thread; block them before any
  // other thread starts so none of those receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<tensorpager::server::ServerConfig> config =
      tensorpager::server::ConfigFromFlags();
  if (!config.ok()) {
    TP_LOG(ERROR) << "invalid configuration: " << config.status().message();
    return 2;
  }
  TP_LOG(INFO) << "tensorpagerd " << TENSORPAGER_VERSION << " starting";
  absl::StatusOr<std::unique_ptr<tensorpager::server::Server>> server =
      tensorpager::server::Server::Start(*std::move(config));
  if (!server.ok()) {
    TP_LOG(ERROR) << "cannot start: " << server.status().message();
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  TP_LOG(INFO) << "received " << (sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return 0;
}
