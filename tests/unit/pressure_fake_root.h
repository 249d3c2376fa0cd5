// A temp dir laid out like the parts of / that the pressure monitor and the
// hardware detection read (/proc/meminfo, /proc/self/cgroup, mountinfo,
// cgroup files, PSI, /sys/dev/block), so tests can present any host.
#ifndef TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_ROOT_H_
#define TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_ROOT_H_

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace tensorpager::server::testing {

inline constexpr uint64_t kGiB = 1ull << 30;
// What cgroup v1 prints for "no limit" (LONG_MAX rounded down to a page).
inline constexpr uint64_t kV1Unlimited = 9223372036854771712ull;

class FakeRoot {
 public:
  FakeRoot() {
    std::string pattern =
        (std::filesystem::path(::testing::TempDir()) / "tp-pressure-XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << pattern << " failed";
    }
    path_ = pattern;
  }
  ~FakeRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  FakeRoot(const FakeRoot&) = delete;
  FakeRoot& operator=(const FakeRoot&) = delete;

  const std::string& path() const { return path_; }
  std::filesystem::path Full(absl::string_view relative) const {
    while (!relative.empty() && relative.front() == '/') {
      relative.remove_prefix(1);
    }
    return std::filesystem::path(path_) / std::string(relative);
  }

  void Write(absl::string_view relative, absl::string_view contents) const {
    const std::filesystem::path full = Full(relative);
    std::filesystem::create_directories(full.parent_path());
    // Written aside and renamed into place, so a sampling thread reading
    // concurrently sees the old or the new contents, as with kernel files.
    const std::filesystem::path temp = full.string() + ".tmp";
    {
      std::ofstream out(temp, std::ios::trunc);
      out << contents;
      if (!out.good()) ADD_FAILURE() << "cannot write " << temp;
    }
    std::filesystem::rename(temp, full);
  }
  void Remove(absl::string_view relative) const {
    std::filesystem::remove(Full(relative));
  }
  void MakeDir(absl::string_view relative) const {
    std::filesystem::create_directories(Full(relative));
  }
  // A relative symlink, as sysfs uses.
  void Symlink(absl::string_view relative, absl::string_view target) const {
    const std::filesystem::path full = Full(relative);
    std::filesystem::create_directories(full.parent_path());
    std::filesystem::create_directory_symlink(std::string(target), full);
  }

  void WriteMeminfo(uint64_t total, uint64_t available) const {
    Write("/proc/meminfo",
          absl::StrCat("MemTotal:       ", total / 1024,
                       " kB\nMemFree:        ", available / 2048,
                       " kB\nMemAvailable:   ", available / 1024,
                       " kB\nBuffers:          1024 kB\n"));
  }
  void WritePsi(absl::string_view relative, double some_avg10,
                double full_avg10) const {
    Write(relative,
          absl::StrFormat("some avg10=%.2f avg60=0.00 avg300=0.00 total=1\n"
                          "full avg10=%.2f avg60=0.00 avg300=0.00 total=1\n",
                          some_avg10, full_avg10));
  }

  // A cgroup v1 host (like Docker on an older distro) with the process in
  // `cgroup` of the memory hierarchy mounted at /sys/fs/cgroup/memory.
  void SetUpCgroupV1(absl::string_view cgroup) const {
    Write("/proc/self/cgroup",
          absl::StrCat("5:devices:/\n4:memory:", cgroup, "\n3:cpu:/\n0::/\n"));
    Write("/proc/self/mountinfo",
          "22 1 0:21 / /sys rw,relatime - sysfs sysfs rw\n"
          "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
          "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup "
          "rw,memory\n"
          "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 "
          "rw\n");
  }
  void WriteCgroupV1(absl::string_view cgroup, uint64_t usage, uint64_t limit,
                     uint64_t inactive_file,
                     uint64_t hierarchical_limit) const {
    const std::string dir = absl::StrCat("/sys/fs/cgroup/memory", cgroup);
    Write(dir + "/memory.usage_in_bytes", absl::StrCat(usage, "\n"));
    Write(dir + "/memory.limit_in_bytes", absl::StrCat(limit, "\n"));
    Write(dir + "/memory.stat",
          absl::StrCat("cache 100\nrss 200\ninactive_file 7\n"
                       "hierarchical_memory_limit ",
                       hierarchical_limit, "\ntotal_cache 100\n",
                       "total_inactive_file ", inactive_file, "\n"));
  }

  // A unified-hierarchy host (systemd, recent kernels) with the process in
  // `cgroup`, everything mounted at /sys/fs/cgroup.
  void SetUpCgroupV2(absl::string_view cgroup) const {
    Write("/proc/self/cgroup", absl::StrCat("0::", cgroup, "\n"));
    Write("/proc/self/mountinfo",
          "22 1 0:21 / /sys rw,relatime - sysfs sysfs rw\n"
          "30 22 0:27 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 "
          "rw,nsdelegate,memory_recursiveprot\n");
  }
  void WriteCgroupV2(absl::string_view cgroup, uint64_t current,
                     absl::string_view max, absl::string_view high,
                     uint64_t inactive_file) const {
    const std::string dir = absl::StrCat("/sys/fs/cgroup", cgroup);
    Write(dir + "/memory.current", absl::StrCat(current, "\n"));
    Write(dir + "/memory.max", absl::StrCat(max, "\n"));
    Write(dir + "/memory.high", absl::StrCat(high, "\n"));
    Write(dir + "/memory.stat",
          absl::StrCat("anon 100\nfile 200\nactive_file 3\ninactive_file ",
                       inactive_file, "\n"));
  }

 private:
  std::string path_;
};

}  // namespace tensorpager::server::testing

#endif  // TENSORPAGER_TESTS_UNIT_PRESSURE_FAKE_ROOT_H_
