#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/pressure/cgroup_locator.h"
#include "server/pressure/host_memory_reader.h"
#include "server/pressure/mountinfo.h"
#include "server/pressure/rooted_fs.h"
#include "tests/unit/pressure_fake_root.h"

namespace tensorpager::server {
namespace {

using testing::FakeRoot;
using testing::kGiB;
using testing::kV1Unlimited;

constexpr char kV1Group[] = "/docker/abc123";
constexpr char kV2Group[] = "/kubepods.slice/pod1.slice/cri-abc.scope";

TEST(RootedFsTest, ParsesCountersWithKilobyteUnits) {
  const auto counters = ParseCounters(
      "MemTotal:       16384 kB\nHugePages_Total:       0\n"
      "total_inactive_file 4096\nbogus\nname notanumber\n");
  EXPECT_EQ(counters.at("MemTotal"), 16384u * 1024);
  EXPECT_EQ(counters.at("HugePages_Total"), 0u);
  EXPECT_EQ(counters.at("total_inactive_file"), 4096u);
  EXPECT_FALSE(counters.contains("bogus"));
  EXPECT_FALSE(counters.contains("name"));
}

TEST(RootedFsTest, ReadsBelowTheRootWithPreciseErrors) {
  FakeRoot root;
  root.Write("/sys/fs/cgroup/memory.current", " 1234\n");
  root.Write("/sys/fs/cgroup/memory.max", "max\n");
  RootedFs fs(root.path());
  EXPECT_EQ(*fs.ReadUint64("/sys/fs/cgroup/memory.current"), 1234u);
  absl::StatusOr<uint64_t> bad = fs.ReadUint64("/sys/fs/cgroup/memory.max");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  absl::StatusOr<std::string> missing = fs.ReadFile("/proc/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), root.path()))
      << missing.status();
}

TEST(MountinfoTest, ParsesOptionalFieldsAndEscapes) {
  absl::StatusOr<std::vector<MountEntry>> mounts = ParseMountinfo(
      "25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
      "40 25 259:3 /vol /mnt/my\\040data rw shared:2 master:1 - xfs "
      "/dev/nvme0n1p3 rw,attr2\n");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_EQ((*mounts)[1].major, 259u);
  EXPECT_EQ((*mounts)[1].minor, 3u);
  EXPECT_EQ((*mounts)[1].root, "/vol");
  EXPECT_EQ((*mounts)[1].mount_point, "/mnt/my data");
  EXPECT_EQ((*mounts)[1].fs_type, "xfs");
  EXPECT_EQ((*mounts)[1].source, "/dev/nvme0n1p3");
  EXPECT_EQ(FindMountFor(*mounts, "/mnt/my data/x")->source, "/dev/nvme0n1p3");
  EXPECT_EQ(FindMountFor(*mounts, "/mnt/my dataset")->source, "/dev/vda");
  EXPECT_EQ(ParseMountinfo("1 2 3\n").status().code(),
            absl::StatusCode::kInternal);
}

TEST(CgroupLocatorTest, PrefersTheV1MemoryControllerOnHybridHosts) {
  FakeRoot root;
  root.SetUpCgroupV1(kV1Group);
  root.WriteCgroupV1(kV1Group, kGiB, 2 * kGiB, 0, kV1Unlimited);
  // The unified hierarchy exists but carries no memory controller.
  root.Write("/sys/fs/cgroup/unified/cgroup.procs", "1\n");
  absl::StatusOr<MemoryCgroup> cgroup =
      LocateMemoryCgroup(RootedFs(root.path()));
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  EXPECT_EQ(cgroup->version, CgroupVersion::kV1);
  EXPECT_EQ(cgroup->directory, "/sys/fs/cgroup/memory/docker/abc123");
  EXPECT_EQ(cgroup->mount_point, "/sys/fs/cgroup/memory");
}

TEST(CgroupLocatorTest, NamespacedMountIsTheProcessCgroup) {
  FakeRoot root;
  // Inside a cgroup namespace the mount's root is the container's cgroup
  // and /proc/self/cgroup says "/".
  root.Write("/proc/self/cgroup", "0::/\n");
  root.Write("/proc/self/mountinfo",
             "30 22 0:27 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 "
             "rw\n");
  root.WriteCgroupV2("", kGiB, "max", "max", 0);
  absl::StatusOr<MemoryCgroup> cgroup =
      LocateMemoryCgroup(RootedFs(root.path()));
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  EXPECT_EQ(cgroup->version, CgroupVersion::kV2);
  EXPECT_EQ(cgroup->directory, "/sys/fs/cgroup");
}

TEST(CgroupLocatorTest, V2RootCgroupHasNoMemoryFiles) {
  FakeRoot root;
  root.SetUpCgroupV2("/");
  root.Write("/sys/fs/cgroup/cgroup.procs", "1\n");
  EXPECT_EQ(LocateMemoryCgroup(RootedFs(root.path())).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(HostMemoryReaderTest, CgroupV1LimitDiscountsInactivePageCache) {
  FakeRoot root;
  root.WriteMeminfo(64 * kGiB, 60 * kGiB);
  root.SetUpCgroupV1(kV1Group);
  root.WriteCgroupV1(kV1Group, /*usage=*/3 * kGiB, /*limit=*/4 * kGiB,
                     /*inactive_file=*/kGiB, kV1Unlimited);
  HostMemoryReader reader{RootedFs(root.path())};
  absl::StatusOr<HostMemoryReading> reading = reader.Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "cgroup v1");
  EXPECT_EQ(reading->used_bytes, 2 * kGiB);
  EXPECT_EQ(reading->total_bytes, 4 * kGiB);
  EXPECT_TRUE(absl::StrContains(reader.description(), "cgroup v1"))
      << reader.description();
}

TEST(HostMemoryReaderTest, CgroupV1ParentLimitBinds) {
  FakeRoot root;
  root.WriteMeminfo(64 * kGiB, 60 * kGiB);
  root.SetUpCgroupV1(kV1Group);
  root.WriteCgroupV1(kV1Group, 2 * kGiB, kV1Unlimited, 0,
                     /*hierarchical_limit=*/8 * kGiB);
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "cgroup v1");
  EXPECT_EQ(reading->total_bytes, 8 * kGiB);
  EXPECT_EQ(reading->used_bytes, 2 * kGiB);
}

TEST(HostMemoryReaderTest, UnlimitedCgroupV1FallsBackToMeminfo) {
  FakeRoot root;
  root.WriteMeminfo(16 * kGiB, 12 * kGiB);
  root.SetUpCgroupV1(kV1Group);
  root.WriteCgroupV1(kV1Group, 3 * kGiB, kV1Unlimited, 0, kV1Unlimited);
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "/proc/meminfo");
  EXPECT_EQ(reading->total_bytes, 16 * kGiB);
  EXPECT_EQ(reading->used_bytes, 4 * kGiB);
  EXPECT_TRUE(absl::StrContains(reading->note, "no limit")) << reading->note;
}

TEST(HostMemoryReaderTest, CgroupV2TakesTheTightestLimitUpTheTree) {
  FakeRoot root;
  root.WriteMeminfo(64 * kGiB, 60 * kGiB);
  root.SetUpCgroupV2(kV2Group);
  root.WriteCgroupV2(kV2Group, /*current=*/5 * kGiB, "max", "max",
                     /*inactive_file=*/kGiB);
  // The pod's limit (two levels up) is what binds.
  root.Write("/sys/fs/cgroup/kubepods.slice/pod1.slice/memory.max",
             std::to_string(8 * kGiB));
  root.Write("/sys/fs/cgroup/kubepods.slice/memory.max", "max\n");
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "cgroup v2");
  EXPECT_EQ(reading->total_bytes, 8 * kGiB);
  EXPECT_EQ(reading->used_bytes, 4 * kGiB);
}

TEST(HostMemoryReaderTest, CgroupV2MemoryHighCountsAsLimit) {
  FakeRoot root;
  root.WriteMeminfo(64 * kGiB, 60 * kGiB);
  root.SetUpCgroupV2(kV2Group);
  root.WriteCgroupV2(kV2Group, 3 * kGiB, std::to_string(8 * kGiB),
                     std::to_string(6 * kGiB), 0);
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->total_bytes, 6 * kGiB);
  EXPECT_EQ(reading->used_bytes, 3 * kGiB);
}

TEST(HostMemoryReaderTest, UnlimitedCgroupV2FallsBackToMeminfo) {
  FakeRoot root;
  root.WriteMeminfo(32 * kGiB, 8 * kGiB);
  root.SetUpCgroupV2(kV2Group);
  root.WriteCgroupV2(kV2Group, 3 * kGiB, "max", "max", 0);
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "/proc/meminfo");
  EXPECT_EQ(reading->total_bytes, 32 * kGiB);
  EXPECT_EQ(reading->used_bytes, 24 * kGiB);
}

TEST(HostMemoryReaderTest, OvercommittedHostShrinksTheCgroupHeadroom) {
  FakeRoot root;
  // 8 GiB limit, 2 GiB used, but the host has only 1 GiB left.
  root.WriteMeminfo(64 * kGiB, kGiB);
  root.SetUpCgroupV2(kV2Group);
  root.WriteCgroupV2(kV2Group, 2 * kGiB, std::to_string(8 * kGiB), "max", 0);
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "cgroup v2");
  EXPECT_EQ(reading->total_bytes, 8 * kGiB);
  EXPECT_EQ(reading->used_bytes, 7 * kGiB);
  EXPECT_TRUE(absl::StrContains(reading->note, "host has less memory"))
      << reading->note;
}

TEST(HostMemoryReaderTest, NoCgroupInformationUsesMeminfo) {
  FakeRoot root;
  root.WriteMeminfo(4 * kGiB, 3 * kGiB);
  HostMemoryReader reader{RootedFs(root.path())};
  absl::StatusOr<HostMemoryReading> reading = reader.Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "/proc/meminfo");
  EXPECT_EQ(reading->used_bytes, kGiB);
  EXPECT_FALSE(reading->psi.has_value());
  EXPECT_TRUE(absl::StrContains(reader.description(), "PSI unavailable"))
      << reader.description();
}

TEST(HostMemoryReaderTest, MeminfoWithoutMemAvailableIsEstimated) {
  FakeRoot root;
  root.Write("/proc/meminfo",
             "MemTotal: 1048576 kB\nMemFree: 262144 kB\nBuffers: 0 kB\n"
             "Cached: 262144 kB\nSReclaimable: 0 kB\n");
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->total_bytes, kGiB);
  EXPECT_EQ(reading->used_bytes, kGiB / 2);
}

TEST(HostMemoryReaderTest, MissingMeminfoIsNotFound) {
  FakeRoot root;
  EXPECT_EQ(HostMemoryReader(RootedFs(root.path())).Read().status().code(),
            absl::StatusCode::kNotFound);
  root.Write("/proc/meminfo", "MemFree: 10 kB\n");
  EXPECT_EQ(HostMemoryReader(RootedFs(root.path())).Read().status().code(),
            absl::StatusCode::kInternal);
}

TEST(HostMemoryReaderTest, VanishedCgroupFilesFallBackWithANote) {
  FakeRoot root;
  root.WriteMeminfo(16 * kGiB, 12 * kGiB);
  root.SetUpCgroupV1(kV1Group);
  root.WriteCgroupV1(kV1Group, kGiB, 2 * kGiB, 0, kV1Unlimited);
  HostMemoryReader reader{RootedFs(root.path())};
  root.Remove("/sys/fs/cgroup/memory/docker/abc123/memory.stat");
  absl::StatusOr<HostMemoryReading> reading = reader.Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_EQ(reading->source, "/proc/meminfo");
  EXPECT_TRUE(absl::StrContains(reading->note, "memory.stat")) << reading->note;
}

TEST(HostMemoryReaderTest, CgroupPsiPreferredOverSystemWide) {
  FakeRoot root;
  root.WriteMeminfo(16 * kGiB, 12 * kGiB);
  root.SetUpCgroupV2(kV2Group);
  root.WriteCgroupV2(kV2Group, kGiB, std::to_string(4 * kGiB), "max", 0);
  root.WritePsi("/proc/pressure/memory", 1.0, 0.5);
  root.WritePsi(std::string("/sys/fs/cgroup") + kV2Group + "/memory.pressure",
                42.0, 7.0);
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  ASSERT_TRUE(reading->psi.has_value());
  EXPECT_DOUBLE_EQ(reading->psi->some_avg10, 42.0);
  EXPECT_DOUBLE_EQ(reading->psi->full_avg10, 7.0);
}

TEST(HostMemoryReaderTest, SystemWidePsiUnderCgroupV1) {
  FakeRoot root;
  root.WriteMeminfo(16 * kGiB, 12 * kGiB);
  root.SetUpCgroupV1(kV1Group);
  root.WriteCgroupV1(kV1Group, kGiB, 2 * kGiB, 0, kV1Unlimited);
  root.WritePsi("/proc/pressure/memory", 3.5, 1.25);
  absl::StatusOr<HostMemoryReading> reading =
      HostMemoryReader(RootedFs(root.path())).Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  ASSERT_TRUE(reading->psi.has_value());
  EXPECT_DOUBLE_EQ(reading->psi->some_avg10, 3.5);
  EXPECT_DOUBLE_EQ(reading->psi->full_avg10, 1.25);
}

// The one reading of the real machine: whatever it runs on, the figures
// must be self-consistent.
TEST(HostMemoryReaderTest, RealMachineIsSane) {
  HostMemoryReader reader{RootedFs("/")};
  absl::StatusOr<HostMemoryReading> reading = reader.Read();
  ASSERT_TRUE(reading.ok()) << reading.status();
  EXPECT_GT(reading->total_bytes, 0u);
  EXPECT_LE(reading->used_bytes, reading->total_bytes);
  EXPECT_TRUE(reading->source == "cgroup v1" ||
              reading->source == "cgroup v2" ||
              reading->source == "/proc/meminfo")
      << reading->source;
  std::cout << "[ real host RAM ] " << reading->used_bytes << " of "
            << reading->total_bytes << " bytes via " << reading->source << "; "
            << reader.description() << "\n";
}

}  // namespace
}  // namespace tensorpager::server
