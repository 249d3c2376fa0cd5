// Helpers shared by the fuzz targets in tests/fuzz.
#ifndef TENSORPAGER_TESTS_FUZZ_FUZZ_UTIL_H_
#define TENSORPAGER_TESTS_FUZZ_FUZZ_UTIL_H_

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tensorpager::fuzz {

// A failed invariant: abort, which libFuzzer reports as a crash.
inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
  std::abort();
}
#define TP_FUZZ_CHECK(cond) ::tensorpager::fuzz::Check((cond), #cond)

// A directory of the process's own, removed at exit: under $TP_FUZZ_TMPDIR,
// else /dev/shm (no disk syncs) when it exists, else $TMPDIR or /tmp.
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::string base;
    if (const char* d = std::getenv("TP_FUZZ_TMPDIR"); d && *d) {
      base = d;
    } else if (std::error_code ec;
               std::filesystem::is_directory("/dev/shm", ec) &&
               ::access("/dev/shm", W_OK) == 0) {
      base = "/dev/shm";
    } else if (const char* t = std::getenv("TMPDIR"); t && *t) {
      base = t;
    } else {
      base = "/tmp";
    }
    std::string pattern = absl::StrCat(base, "/tp-fuzz-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    auto* path = new std::string(pattern);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return path;
  }();
  return *dir;
}

// Reads the length-prefixed pieces fuzz inputs are made of; a length past
// the end takes what is left.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool empty() const { return data_.empty(); }
  uint8_t Byte() {
    if (data_.empty()) return 0;
    const auto b = static_cast<uint8_t>(data_.front());
    data_.remove_prefix(1);
    return b;
  }
  uint16_t U16() {
    const uint16_t lo = Byte();
    return static_cast<uint16_t>(lo | (Byte() << 8));
  }
  absl::string_view Take(size_t n) {
    const absl::string_view out = data_.substr(0, n);
    data_.remove_prefix(out.size());
    return out;
  }

 private:
  absl::string_view data_;
};

}  // namespace tensorpager::fuzz

#endif  // TENSORPAGER_TESTS_FUZZ_FUZZ_UTIL_H_
