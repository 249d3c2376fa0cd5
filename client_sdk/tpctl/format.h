// Human-readable renderings of sizes, ratios, times and the API's enums, as
// tpctl prints them in tables.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_FORMAT_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::tpctl {

// "512 B", "1.5 KiB", "12.0 MiB", "3.25 GiB".
std::string HumanBytes(uint64_t bytes);
// 0.305 -> "30.5%".
std::string Percent(double ratio);
// Seconds as "45s", "12m05s", "3h02m", "4d07h".
std::string HumanDuration(int64_t seconds);
// How long before `now` a unix-ms time was: "12s ago", "-" for 0.
std::string Ago(int64_t unix_ms, absl::Time now);
// Milliseconds with two decimals: "3.25 ms".
std::string Millis(double ms);

// Lower-case names without the enum's prefix: "ram", "ram+disk", "kv_cache",
// "float16", "high".
std::string TierName(v1::Tier tier);
std::string RegionTypeName(v1::RegionType type);
std::string DTypeName(v1::DType dtype);
std::string PressureLevelName(v1::PressureLevel level);
std::string AlgorithmName(v1::Algorithm algorithm);

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_FORMAT_H_
