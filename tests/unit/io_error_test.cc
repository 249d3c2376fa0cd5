#include "storage/io_error.h"

#include <cerrno>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tensorpager::storage {
namespace {

using ::testing::HasSubstr;

TEST(IoErrorStatusTest, FullDiskIsResourceExhausted) {
  for (int err : {ENOSPC, EDQUOT}) {
    const absl::Status s = IoErrorStatus(err, IoOp::kWrite, "writing to /x");
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_THAT(s.message(), HasSubstr("writing to /x"));
  }
  EXPECT_THAT(IoErrorStatus(ENOSPC, IoOp::kReserve, "growing /x").message(),
              HasSubstr("ENOSPC"));
}

TEST(IoErrorStatusTest, DeviceErrorsDependOnTheOperation) {
  EXPECT_EQ(IoErrorStatus(EIO, IoOp::kRead, "r").code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(IoErrorStatus(EIO, IoOp::kSync, "s").code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(IoErrorStatus(EIO, IoOp::kWrite, "w").code(),
            absl::StatusCode::kInternal);
}

TEST(IoErrorStatusTest, SetupRefusalsExplainTheFallback) {
  for (int err : {EPERM, ENOSYS}) {
    const absl::Status s = IoErrorStatus(err, IoOp::kSetup, "io_uring");
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(s.message(), HasSubstr("thread engine"));
  }
  EXPECT_EQ(IoErrorStatus(EPERM, IoOp::kOpen, "o").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(IoErrorStatusTest, OtherCodes) {
  EXPECT_EQ(IoErrorStatus(ENOENT, IoOp::kOpen, "o").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(IoErrorStatus(EROFS, IoOp::kWrite, "w").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(IoErrorStatus(EFBIG, IoOp::kWrite, "w").code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(IoErrorStatus(EINVAL, IoOp::kRead, "r").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IoErrorStatus(EBADF, IoOp::kRead, "r").code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(ErrnoText(ENOSPC), "ENOSPC (No space left on device)");
}

}  // namespace
}  // namespace tensorpager::storage
