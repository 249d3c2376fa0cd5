#include "server/metrics/build_info.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tensorpager::metrics {
namespace {

std::string CompilerDescription() {
#if defined(__clang__)
  return absl::StrCat("clang ", __clang_major__, ".", __clang_minor__, ".",
                      __clang_patchlevel__);
#elif defined(__GNUC__)
  return absl::StrCat("gcc ", __GNUC__, ".", __GNUC_MINOR__, ".",
                      __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

}  // namespace

BuildInfo CurrentBuildInfo() {
  // Both come from server/metrics/CMakeLists.txt.
  return BuildInfo{.version = TP_METRICS_PROJECT_VERSION,
                   .compiler = CompilerDescription(),
                   .build_type = TP_METRICS_BUILD_TYPE};
}

absl::Status AddBuildInfo(Registry& registry, const BuildInfo& info) {
  absl::StatusOr<Family<Gauge>*> family = registry.AddGauge(
      {.name = "tensorpager_build_info",
       .help = "A constant 1, labeled with the version, compiler and build "
               "type tensorpagerd was built from.",
       .label_names = {"version", "compiler", "build_type"}});
  if (!family.ok()) return family.status();
  const absl::string_view values[] = {info.version, info.compiler,
                                      info.build_type};
  absl::StatusOr<Gauge*> gauge = (*family)->Child(values);
  if (!gauge.ok()) return gauge.status();
  (*gauge)->Set(1);
  return absl::OkStatus();
}

}  // namespace tensorpager::metrics
