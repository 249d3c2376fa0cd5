#include <iostream>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/pressure/client_gpu_reports.h"
#include "server/pressure/nvml_gpu_source.h"

namespace tensorpager::server {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

TEST(ClientGpuReportsTest, RejectsMalformedReports) {
  ClientGpuReports reports(absl::Seconds(30), 16);
  EXPECT_EQ(reports.Report("", 0, 1, 2, kStart).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reports.Report("c", 0, 1, 0, kStart).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reports.Report("c", 0, 3, 2, kStart).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(reports.Current(kStart).empty());
}

TEST(ClientGpuReportsTest, AggregatesClientsPerDeviceInIndexOrder) {
  ClientGpuReports reports(absl::Seconds(30), 16);
  ASSERT_TRUE(reports.Report("a", 1, 10 * kGiB, 80 * kGiB, kStart).ok());
  ASSERT_TRUE(reports.Report("a", 0, 20 * kGiB, 80 * kGiB, kStart).ok());
  ASSERT_TRUE(
      reports.Report("b", 0, 30 * kGiB, 80 * kGiB, kStart + absl::Seconds(2))
          .ok());
  const std::vector<ReportedGpu> gpus =
      reports.Current(kStart + absl::Seconds(3));
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].device, 0u);
  EXPECT_EQ(gpus[0].used_bytes, 30 * kGiB);
  EXPECT_EQ(gpus[0].total_bytes, 80 * kGiB);
  EXPECT_EQ(gpus[0].clients, 2u);
  EXPECT_EQ(gpus[0].newest_report, kStart + absl::Seconds(2));
  EXPECT_EQ(gpus[1].device, 1u);
  EXPECT_EQ(gpus[1].clients, 1u);
}

TEST(ClientGpuReportsTest, NewReportReplacesTheClientsPrevious) {
  ClientGpuReports reports(absl::Seconds(30), 16);
  ASSERT_TRUE(reports.Report("a", 0, 70 * kGiB, 80 * kGiB, kStart).ok());
  ASSERT_TRUE(
      reports.Report("a", 0, 5 * kGiB, 80 * kGiB, kStart + absl::Seconds(1))
          .ok());
  const std::vector<ReportedGpu> gpus =
      reports.Current(kStart + absl::Seconds(1));
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].used_bytes, 5 * kGiB);
  EXPECT_EQ(gpus[0].clients, 1u);
}

TEST(ClientGpuReportsTest, StaleReportsExpire) {
  ClientGpuReports reports(absl::Seconds(30), 16);
  ASSERT_TRUE(reports.Report("a", 0, kGiB, 8 * kGiB, kStart).ok());
  ASSERT_TRUE(
      reports.Report("b", 1, kGiB, 8 * kGiB, kStart + absl::Seconds(20)).ok());
  EXPECT_EQ(reports.Current(kStart + absl::Seconds(30)).size(), 2u);
  const std::vector<ReportedGpu> later =
      reports.Current(kStart + absl::Seconds(31));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].device, 1u);
  EXPECT_TRUE(reports.Current(kStart + absl::Seconds(51)).empty());
}

TEST(ClientGpuReportsTest, ForgetDropsAllOfAClientsReports) {
  ClientGpuReports reports(absl::Seconds(30), 16);
  ASSERT_TRUE(reports.Report("a", 0, kGiB, 8 * kGiB, kStart).ok());
  ASSERT_TRUE(reports.Report("a", 1, kGiB, 8 * kGiB, kStart).ok());
  ASSERT_TRUE(reports.Report("b", 1, 2 * kGiB, 8 * kGiB, kStart).ok());
  reports.Forget("a");
  const std::vector<ReportedGpu> gpus = reports.Current(kStart);
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].device, 1u);
  EXPECT_EQ(gpus[0].used_bytes, 2 * kGiB);
}

TEST(ClientGpuReportsTest, BoundedNumberOfReports) {
  ClientGpuReports reports(absl::Seconds(30), 2);
  ASSERT_TRUE(reports.Report("a", 0, 1, 2, kStart).ok());
  ASSERT_TRUE(reports.Report("b", 0, 1, 2, kStart).ok());
  EXPECT_EQ(reports.Report("c", 0, 1, 2, kStart).code(),
            absl::StatusCode::kResourceExhausted);
  // Updating a known pair is always allowed; expiry frees room.
  EXPECT_TRUE(reports.Report("a", 0, 1, 2, kStart + absl::Seconds(31)).ok());
  EXPECT_TRUE(reports.Report("c", 0, 1, 2, kStart + absl::Seconds(31)).ok());
}

TEST(NvmlGpuSourceTest, MissingLibraryIsNotFound) {
  absl::StatusOr<std::unique_ptr<NvmlGpuSource>> nvml =
      NvmlGpuSource::Open("libtensorpager-no-such-nvml.so.1");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound);
}

TEST(NvmlGpuSourceTest, LibraryWithoutNvmlIsUnimplemented) {
  absl::StatusOr<std::unique_ptr<NvmlGpuSource>> nvml =
      NvmlGpuSource::Open("libc.so.6");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kUnimplemented)
      << nvml.status();
}

// Runs for real on machines with the NVIDIA driver.
TEST(NvmlGpuSourceTest, RealDevicesReportConsistentMemory) {
  absl::StatusOr<std::unique_ptr<NvmlGpuSource>> nvml = NvmlGpuSource::Open();
  if (nvml.status().code() == absl::StatusCode::kNotFound) {
    GTEST_SKIP() << "no NVIDIA driver here: " << nvml.status();
  }
  ASSERT_TRUE(nvml.ok()) << nvml.status();
  absl::StatusOr<std::vector<GpuMemory>> gpus = (*nvml)->Sample();
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  ASSERT_EQ(gpus->size(), (*nvml)->device_count());
  for (size_t i = 0; i < gpus->size(); ++i) {
    const GpuMemory& gpu = (*gpus)[i];
    EXPECT_EQ(gpu.device, i);
    EXPECT_GT(gpu.total_bytes, 0u);
    EXPECT_LE(gpu.used_bytes, gpu.total_bytes);
    std::cout << "[ nvml ] gpu" << gpu.device << " " << gpu.name << ": "
              << gpu.used_bytes << " of " << gpu.total_bytes << " bytes\n";
  }
}

}  // namespace
}  // namespace tensorpager::server
