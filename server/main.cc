// tensorpagerd: pages tensor blocks between host RAM and an NVMe tier for
// inference servers. Flags: tensorpagerd --help.
#include <signal.h>

#include <cstdlib>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "server/config/config_layers.h"
#include "server/config/server_config.h"
#include "server/server.h"
#include "storage/base/allocator_tuning.h"
#include "storage/base/log.h"

namespace {

// Only this program's flags in --help, not Abseil's or gRPC's internals.
bool IsOurFlagFile(absl::string_view path) {
  return absl::StrContains(path, "server/");
}

}  // namespace

int main(int argc, char** argv) {
  tensorpager::base::TuneProcessAllocator();
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsOurFlagFile;
  usage.contains_helpshort_flags = IsOurFlagFile;
  usage.version_string = [] { return std::string(TENSORPAGER_VERSION) + "\n"; };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "tensorpagerd pages tensor blocks between host RAM and a local NVMe "
      "drive for inference servers.\nUsage: tensorpagerd [flags]\n"
      "With no flags: data in ./tensorpager-data, gRPC on 127.0.0.1:50051, "
      "metrics on :9464.\nEvery flag can also be set by an environment "
      "variable TENSORPAGER_<FLAG_NAME> or a key of the YAML --config file; "
      "flags win over the environment, which wins over the file.");
  absl::ParseCommandLine(argc, argv);

  // Signals are taken synchronously by this thread; block them before any
  // other thread starts so none of those receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Flags > TENSORPAGER_* environment > --config file > defaults.
  absl::StatusOr<tensorpager::server::EffectiveConfig> effective =
      tensorpager::server::LoadEffectiveConfig(
          absl::MakeConstSpan(argv, argc),
          tensorpager::server::ProcessEnvironment);
  if (!effective.ok()) {
    TP_LOG(ERROR) << "invalid configuration: " << effective.status().message();
    return 2;
  }
  if (absl::GetFlag(FLAGS_print_config)) {
    std::cout << tensorpager::server::EffectiveConfigYaml(*effective);
    return 0;
  }
  TP_LOG(INFO) << "tensorpagerd " << TENSORPAGER_VERSION << " starting";
  absl::StatusOr<std::unique_ptr<tensorpager::server::Server>> server =
      tensorpager::server::Server::Start(std::move(effective->config));
  if (!server.ok()) {
    TP_LOG(ERROR) << "cannot start: " << server.status().message();
    return 1;
  }
  int sig = 0;
  // SIGHUP re-reads the tenants file; SIGTERM and SIGINT stop.
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    (void)(*server)->ReloadTenants();
  }
  TP_LOG(INFO) << "received " << (sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return 0;
}
