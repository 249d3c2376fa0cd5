// The human-readable form of a Status response (tpctl status): a header,
// tier and pressure tables, block counts, efficiency and client reports.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_STATUS_REPORT_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_STATUS_REPORT_H_

#include <string>

#include "absl/time/time.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::tpctl {

std::string StatusReport(const v1::StatusResponse& status, absl::Time now);

// One line per pressure change, as tpctl watch prints it.
std::string PressureEventLine(const v1::PressureEvent& event);

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_STATUS_REPORT_H_
