// tensorpager_build_info: the conventional constant-1 gauge whose labels
// say which build is running, so dashboards can join on it.
#ifndef TENSORPAGER_SERVER_METRICS_BUILD_INFO_H_
#define TENSORPAGER_SERVER_METRICS_BUILD_INFO_H_

#include <string>

#include "absl/status/status.h"
#include "server/metrics/registry.h"

namespace tensorpager::metrics {

struct BuildInfo {
  std::string version = {};     // the project version, "0.1.0"
  std::string compiler = {};    // "gcc 12.2.0", "clang 16.0.6"
  std::string build_type = {};  // CMake's build type, "RelWithDebInfo"
};

// The build this binary came from, fixed at compile time.
BuildInfo CurrentBuildInfo();

// Registers tensorpager_build_info{version,compiler,build_type} = 1.
// ALREADY_EXISTS when registered twice.
absl::Status AddBuildInfo(Registry& registry, const BuildInfo& info);

}  // namespace tensorpager::metrics

#endif  // TENSORPAGER_SERVER_METRICS_BUILD_INFO_H_
