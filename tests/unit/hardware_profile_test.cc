#include "server/profile/hardware_profile.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/pressure/nvml_gpu_source.h"
#include "server/profile/storage_device.h"
#include "tests/unit/pressure_fake_gpu_source.h"
#include "tests/unit/pressure_fake_root.h"

namespace tensorpager::server {
namespace {

using testing::FakeGpuControl;
using testing::FakeGpuSource;
using testing::FakeRoot;
using testing::kGiB;

// The data dir is a real directory (its device number comes from stat);
// the fake root's /sys/dev/block maps that number to whatever drive the
// test wants.
class HardwareProfileTest : public ::testing::Test {
 protected:
  HardwareProfileTest() {
    data_dir_ = (root_.Full("/data")).string();
    root_.MakeDir("/data");
    struct stat st {};
    EXPECT_EQ(::stat(data_dir_.c_str(), &st), 0);
    dev_ = absl::StrCat(major(st.st_dev), ":", minor(st.st_dev));
    root_.WriteMeminfo(64 * kGiB, 60 * kGiB);
  }

  // A disk at /sys/devices/<bus>/block/<disk> with its rotational flag.
  void AddDisk(const std::string& bus, const std::string& disk,
               const std::string& rotational) {
    root_.Write(absl::StrCat("/sys/devices/", bus, "/block/", disk,
                             "/queue/rotational"),
                rotational + "\n");
  }
  // Points the data dir's device number at a disk or partition directory.
  void MapDataDirTo(const std::string& sysfs_dir) {
    root_.Symlink(absl::StrCat("/sys/dev/block/", dev_),
                  absl::StrCat("../../", sysfs_dir));
  }

  HardwareDetectOptions Options(const std::string& data_dir) const {
    HardwareDetectOptions options;
    options.root = root_.path();
    options.data_dir = data_dir;
    return options;
  }

  HardwareInfo Detect(GpuSource* gpus = nullptr) {
    HardwareDetectOptions options = Options(data_dir_);
    options.gpu_source = gpus;
    absl::StatusOr<HardwareInfo> info = DetectHardware(options);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.value_or(HardwareInfo{});
  }

  FakeRoot root_;
  std::string data_dir_;
  std::string dev_;
};

TEST_F(HardwareProfileTest, NvmePartitionPicksTheNvmeProfile) {
  AddDisk("pci0000:00/0000:00:04.0/nvme/nvme0", "nvme0n1", "0");
  root_.Write(
      "/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/block/nvme0n1/"
      "nvme0n1p2/partition",
      "2\n");
  MapDataDirTo(
      "devices/pci0000:00/0000:00:04.0/nvme/nvme0/block/nvme0n1/nvme0n1p2");
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.storage.kind, StorageKind::kNvme);
  EXPECT_EQ(info.storage.device, "nvme0n1");
  const HardwareProfile profile = ChooseProfile(ProfileKind::kAuto, info);
  EXPECT_EQ(profile.kind, ProfileKind::kNvme);
  EXPECT_EQ(profile.defaults.io_queue_depth, 32u);
  EXPECT_DOUBLE_EQ(profile.defaults.ram_budget_fraction, 0.5);
  EXPECT_TRUE(absl::StrContains(profile.reason, "profile nvme (auto"))
      << profile.reason;
  EXPECT_TRUE(absl::StrContains(profile.reason, "nvme0n1: NVMe"))
      << profile.reason;
  EXPECT_TRUE(absl::StrContains(profile.reason, "RAM 64.0 GiB"))
      << profile.reason;
}

TEST_F(HardwareProfileTest, NonRotationalSataDiskIsSsd) {
  AddDisk("pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0", "sda", "0");
  MapDataDirTo(
      "devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/"
      "sda");
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.storage.kind, StorageKind::kSsd);
  const HardwareProfile profile = ChooseProfile(ProfileKind::kAuto, info);
  EXPECT_EQ(profile.kind, ProfileKind::kSsd);
  EXPECT_EQ(profile.defaults.io_queue_depth, 16u);
}

TEST_F(HardwareProfileTest, RotatingDiskIsHdd) {
  AddDisk("pci0000:00/ata2", "sdb", "1");
  root_.Write("/sys/devices/pci0000:00/ata2/block/sdb/sdb1/partition", "1\n");
  MapDataDirTo("devices/pci0000:00/ata2/block/sdb/sdb1");
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.storage.kind, StorageKind::kHdd);
  EXPECT_EQ(info.storage.device, "sdb");
  const HardwareProfile profile = ChooseProfile(ProfileKind::kAuto, info);
  EXPECT_EQ(profile.kind, ProfileKind::kHdd);
  EXPECT_EQ(profile.defaults.max_concurrent_swaps, 2u);
  EXPECT_EQ(profile.defaults.io_block_bytes, 8u << 20);
  EXPECT_TRUE(absl::StrContains(profile.reason, "sdb: rotational"))
      << profile.reason;
}

TEST_F(HardwareProfileTest, VirtioDiskCountsAsSsdDespiteRotationalFlag) {
  AddDisk("pci0000:00/0000:00:02.0/virtio1", "vda", "1");
  MapDataDirTo("devices/pci0000:00/0000:00:02.0/virtio1/block/vda");
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.storage.kind, StorageKind::kSsd);
  EXPECT_TRUE(absl::StrContains(info.storage.reason, "virtual disk"))
      << info.storage.reason;
}

TEST_F(HardwareProfileTest, DeviceMapperIsAsSlowAsItsSlowestMember) {
  AddDisk("pci0000:00/nvme/nvme0", "nvme0n1", "0");
  AddDisk("pci0000:00/ata1", "sda", "1");
  root_.Write("/sys/devices/virtual/block/dm-0/queue/rotational", "0\n");
  root_.Symlink("/sys/devices/virtual/block/dm-0/slaves/nvme0n1",
                "../../../../pci0000:00/nvme/nvme0/block/nvme0n1");
  root_.Symlink("/sys/devices/virtual/block/dm-0/slaves/sda",
                "../../../../pci0000:00/ata1/block/sda");
  MapDataDirTo("devices/virtual/block/dm-0");
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.storage.kind, StorageKind::kHdd);
  EXPECT_EQ(info.storage.device, "dm-0");
  EXPECT_TRUE(absl::StrContains(info.storage.reason, "nvme0n1: NVMe"))
      << info.storage.reason;
}

TEST_F(HardwareProfileTest, UnknownDriveAssumesSsd) {
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.storage.kind, StorageKind::kUnknown);
  EXPECT_TRUE(absl::StrContains(info.storage.reason, "no /sys/dev/block"))
      << info.storage.reason;
  const HardwareProfile profile = ChooseProfile(ProfileKind::kAuto, info);
  EXPECT_EQ(profile.kind, ProfileKind::kSsd);
  EXPECT_TRUE(absl::StrContains(profile.reason, "assuming ssd"))
      << profile.reason;
}

TEST_F(HardwareProfileTest, DataDirThatDoesNotExistYetUsesItsParent) {
  AddDisk("pci0000:00/nvme/nvme1", "nvme1n1", "0");
  MapDataDirTo("devices/pci0000:00/nvme/nvme1/block/nvme1n1");
  absl::StatusOr<HardwareInfo> info =
      DetectHardware(Options(data_dir_ + "/not/yet/created"));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->storage.kind, StorageKind::kNvme);
}

TEST_F(HardwareProfileTest, LowMemoryHostPicksLowMemoryProfile) {
  AddDisk("pci0000:00/nvme/nvme0", "nvme0n1", "0");
  MapDataDirTo("devices/pci0000:00/nvme/nvme0/block/nvme0n1");
  root_.WriteMeminfo(4 * kGiB, 3 * kGiB);
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.ram_bytes, 4 * kGiB);
  const HardwareProfile profile = ChooseProfile(ProfileKind::kAuto, info);
  EXPECT_EQ(profile.kind, ProfileKind::kLowMemory);
  EXPECT_DOUBLE_EQ(profile.defaults.ram_budget_fraction, 0.25);
  EXPECT_TRUE(absl::StrContains(profile.reason, "RAM below 8.0 GiB"))
      << profile.reason;
  // An explicit choice is honoured and said so.
  const HardwareProfile forced = ChooseProfile(ProfileKind::kNvme, info);
  EXPECT_EQ(forced.kind, ProfileKind::kNvme);
  EXPECT_TRUE(absl::StrContains(forced.reason, "(requested)")) << forced.reason;
}

TEST_F(HardwareProfileTest, SmallCgroupLimitOnABigHostIsLowMemory) {
  root_.SetUpCgroupV1("/job");
  root_.WriteCgroupV1("/job", kGiB, 2 * kGiB, 0, testing::kV1Unlimited);
  const HardwareInfo info = Detect();
  EXPECT_EQ(info.ram_bytes, 2 * kGiB);
  EXPECT_EQ(info.ram_source, "cgroup v1");
  EXPECT_EQ(ChooseProfile(ProfileKind::kAuto, info).kind,
            ProfileKind::kLowMemory);
}

TEST_F(HardwareProfileTest, GpusAreCountedAndLeaveRamForPinnedMemory) {
  AddDisk("pci0000:00/nvme/nvme0", "nvme0n1", "0");
  MapDataDirTo("devices/pci0000:00/nvme/nvme0/block/nvme0n1");
  auto control = std::make_shared<FakeGpuControl>();
  control->Set({GpuMemory{0, "Fake H100", 0, 80 * kGiB},
                GpuMemory{1, "", 0, 80 * kGiB}});
  FakeGpuSource gpus(control);
  const HardwareInfo info = Detect(&gpus);
  ASSERT_EQ(info.gpus.size(), 2u);
  EXPECT_EQ(info.gpus[0], "Fake H100");
  EXPECT_EQ(info.gpus[1], "gpu1");
  const HardwareProfile profile = ChooseProfile(ProfileKind::kAuto, info);
  EXPECT_DOUBLE_EQ(profile.defaults.ram_budget_fraction, 0.4);
  EXPECT_TRUE(absl::StrContains(profile.reason, "2 GPUs (Fake H100, gpu1)"))
      << profile.reason;

  control->Fail(absl::FailedPreconditionError("driver mismatch"));
  const HardwareInfo no_gpu = Detect(&gpus);
  EXPECT_TRUE(no_gpu.gpus.empty());
  EXPECT_TRUE(absl::StrContains(no_gpu.gpu_note, "driver mismatch"))
      << no_gpu.gpu_note;
}

TEST_F(HardwareProfileTest, DetectionNeedsDataDirAndMeminfo) {
  EXPECT_EQ(DetectHardware(Options("")).status().code(),
            absl::StatusCode::kInvalidArgument);
  root_.Remove("/proc/meminfo");
  EXPECT_EQ(DetectHardware(Options(data_dir_)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ProfileKindTest, ParsesNamesCaseInsensitively) {
  for (ProfileKind kind :
       {ProfileKind::kAuto, ProfileKind::kNvme, ProfileKind::kSsd,
        ProfileKind::kHdd, ProfileKind::kLowMemory}) {
    absl::StatusOr<ProfileKind> parsed =
        ParseProfileKind(ProfileKindName(kind));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(*ParseProfileKind("Low-Memory"), ProfileKind::kLowMemory);
  absl::StatusOr<ProfileKind> bad = ParseProfileKind("floppy");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "low-memory"));
}

// This machine's real drive, RAM and (where the NVIDIA driver is) GPUs.
TEST(HardwareProfileRealMachineTest, DetectsSomething) {
  absl::StatusOr<std::unique_ptr<NvmlGpuSource>> nvml = NvmlGpuSource::Open();
  HardwareDetectOptions options{.root = "/",
                                .data_dir = ::testing::TempDir(),
                                .gpu_source = nullptr,
                                .gpu_source_error = ""};
  if (nvml.ok()) {
    options.gpu_source = nvml->get();
  } else {
    options.gpu_source_error = std::string(nvml.status().message());
  }
  absl::StatusOr<HardwareInfo> info = DetectHardware(options);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_GT(info->ram_bytes, 0u);
  EXPECT_FALSE(info->storage.reason.empty());
  if (nvml.ok()) {
    EXPECT_EQ(info->gpus.size(), (*nvml)->device_count());
  } else {
    EXPECT_TRUE(info->gpus.empty());
    EXPECT_FALSE(info->gpu_note.empty());
  }
  const HardwareProfile profile = ChooseProfile(ProfileKind::kAuto, *info);
  EXPECT_NE(profile.kind, ProfileKind::kAuto);
  std::cout << "[ real machine ] " << profile.reason << "\n";
}

}  // namespace
}  // namespace tensorpager::server
