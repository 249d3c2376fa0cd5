// The I/O engines against real files: round trips, concurrency, errors.
// Every behavioural test runs on both engines.
#include "storage/io_engine.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/base/aligned_buffer.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::storage {
namespace {

using ::tensorpager::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

// Bytes that differ for every (seed, position), so a block read from the
// wrong offset or a torn unit never compares equal.
base::AlignedBuffer Pattern(uint64_t size, uint64_t seed) {
  base::AlignedBuffer b(size);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t i = 0; i < size; i += sizeof(uint64_t)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(b.data() + i, &x, sizeof(x));
  }
  return b;
}

// Empty when equal, else where the first difference is.
std::string Compare(const base::AlignedBuffer& want,
                    const base::AlignedBuffer& got) {
  if (want.size() != got.size()) {
    return absl::StrCat("size ", got.size(), " != ", want.size());
  }
  if (std::memcmp(want.data(), got.data(), want.size()) == 0) return "";
  for (uint64_t i = 0; i < want.size(); ++i) {
    if (want.data()[i] != got.data()[i]) {
      return absl::StrCat("first difference at byte ", i);
    }
  }
  return "";
}

// A filesystem mounted for one test (needs root; tests skip without it).
class ScopedMount {
 public:
  ScopedMount(const std::string& dir, const char* type, const char* data) {
    std::filesystem::create_directories(dir);
    if (::mount(type, dir.c_str(), type, 0, data) == 0) {
      dir_ = dir;
    } else {
      error_ =
          absl::StrCat("mount -t ", type, " ", dir, ": ", std::strerror(errno));
    }
  }
  ~ScopedMount() {
    if (!dir_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;

  bool ok() const { return !dir_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  std::string error_;
};

class IoEngineTest : public ::testing::TestWithParam<IoEngineKind> {
 protected:
  IoEngineOptions Options(const std::string& path) const {
    IoEngineOptions o;
    o.path = path;
    o.kind = GetParam();
    // Small units, so modest requests already span several.
    o.io_unit_bytes = 256 * kKiB;
    o.queue_depth = 4;
    return o;
  }

  // The engine, or null after GTEST_SKIP when io_uring is unavailable here.
  std::unique_ptr<IoEngine> Open(const IoEngineOptions& options) {
    absl::StatusOr<std::unique_ptr<IoEngine>> e = OpenIoEngine(options);
    if (!e.ok() && GetParam() == IoEngineKind::kIoUring &&
        e.status().code() == absl::StatusCode::kFailedPrecondition) {
      skip_reason_ = std::string(e.status().message());
      return nullptr;
    }
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }
  std::unique_ptr<IoEngine> Open() { return Open(Options(dir_.Sub("data"))); }

  TempDir dir_;
  std::string skip_reason_;
};

#define OPEN_OR_SKIP(engine, ...)                            \
  std::unique_ptr<IoEngine> engine = Open(__VA_ARGS__);      \
  if (engine == nullptr) {                                   \
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_; \
    return;                                                  \
  }

TEST_P(IoEngineTest, NameSaysEngineAndMode) {
  OPEN_OR_SKIP(engine);
  const std::string name(engine->name());
  EXPECT_THAT(name,
              StartsWith(GetParam() == IoEngineKind::kIoUring ? "io_uring+"
                                                              : "threads+"));
  EXPECT_EQ(name.ends_with("+direct"), engine->direct_io()) << name;
}

TEST_P(IoEngineTest, RoundTripsOfManySizes) {
  OPEN_OR_SKIP(engine);
  // One unit, several units, a partial last unit, and a large request.
  const std::vector<uint64_t> sizes = {4 * kKiB,   64 * kKiB,
                                       256 * kKiB, 1 * kMiB + 4 * kKiB,
                                       3 * kMiB,   16 * kMiB};
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (size_t i = 0; i < sizes.size(); ++i) {
    offsets.push_back(offset);
    ASSERT_TRUE(engine->Write(offset, Pattern(sizes[i], i).span()).ok());
    offset += sizes[i];
  }
  EXPECT_EQ(engine->file_size(), offset);
  // Read back in reverse, so nothing is served by the order of writes.
  for (size_t i = sizes.size(); i-- > 0;) {
    base::AlignedBuffer got(sizes[i]);
    ASSERT_TRUE(engine->Read(offsets[i], got.span()).ok());
    EXPECT_EQ(Compare(Pattern(sizes[i], i), got), "") << "size " << sizes[i];
  }
}

// Many requests of mixed sizes in one call, as a swap-out batch issues
// them: more units than the queue depth, some spanning several units.
TEST_P(IoEngineTest, BatchMovesEveryRequest) {
  OPEN_OR_SKIP(engine);
  std::vector<uint64_t> sizes;
  for (int i = 0; i < 40; ++i) {
    sizes.push_back(i % 5 == 0 ? 640 * kKiB : (4 + 12 * (i % 4)) * kKiB);
  }
  std::vector<base::AlignedBuffer> data;
  std::vector<IoRequest> writes;
  uint64_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    data.push_back(Pattern(sizes[i], 100 + i));
    IoRequest w;
    w.op = IoOp::kWrite;
    // Scattered, in no order: every other request goes to the far end.
    w.offset = i % 2 == 0 ? offset : 64 * kMiB - offset - sizes[i];
    w.data = data.back().span();
    writes.push_back(w);
    offset += sizes[i];
  }
  engine->TransferBatch(absl::MakeSpan(writes));
  uint64_t end = 0;
  for (const IoRequest& w : writes) {
    ASSERT_TRUE(w.status.ok()) << w.status;
    end = std::max<uint64_t>(end, w.offset + w.data.size());
  }
  EXPECT_EQ(engine->file_size(), end);

  std::vector<base::AlignedBuffer> got;
  std::vector<IoRequest> reads;
  for (size_t i = 0; i < sizes.size(); ++i) got.emplace_back(sizes[i]);
  for (size_t i = sizes.size(); i-- > 0;) {
    IoRequest r;
    r.offset = writes[i].offset;
    r.data = got[i].span();
    reads.push_back(r);
  }
  engine->TransferBatch(absl::MakeSpan(reads));
  for (const IoRequest& r : reads) ASSERT_TRUE(r.status.ok()) << r.status;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(Compare(data[i], got[i]), "") << "request " << i;
  }
}

// A bad request fails alone; the others in its batch still move.
TEST_P(IoEngineTest, BatchReportsEachRequestOnItsOwn) {
  OPEN_OR_SKIP(engine);
  ASSERT_TRUE(engine->Write(0, Pattern(1 * kMiB, 7).span()).ok());
  base::AlignedBuffer a(256 * kKiB), past_end(512 * kKiB), b(64 * kKiB);
  base::AlignedBuffer unaligned(8 * kKiB);
  std::vector<IoRequest> batch(4);
  batch[0].offset = 0;
  batch[0].data = a.span();
  batch[1].offset = 896 * kKiB;  // straddles the end of the file
  batch[1].data = past_end.span();
  batch[2].offset = 100;  // not a multiple of 4 KiB
  batch[2].data = unaligned.span();
  batch[3].offset = 960 * kKiB;
  batch[3].data = b.span();
  engine->TransferBatch(absl::MakeSpan(batch));
  EXPECT_TRUE(batch[0].status.ok()) << batch[0].status;
  EXPECT_EQ(batch[1].status.code(), absl::StatusCode::kOutOfRange)
      << batch[1].status;
  EXPECT_EQ(batch[2].status.code(), absl::StatusCode::kInvalidArgument)
      << batch[2].status;
  EXPECT_TRUE(batch[3].status.ok()) << batch[3].status;
  const base::AlignedBuffer all = Pattern(1 * kMiB, 7);
  EXPECT_EQ(std::memcmp(a.data(), all.data(), a.size()), 0);
  EXPECT_EQ(std::memcmp(b.data(), all.data() + 960 * kKiB, b.size()), 0);
}

TEST_P(IoEngineTest, OverwriteReplacesBytes) {
  OPEN_OR_SKIP(engine);
  ASSERT_TRUE(engine->Write(0, Pattern(1 * kMiB, 1).span()).ok());
  ASSERT_TRUE(engine->Write(256 * kKiB, Pattern(512 * kKiB, 2).span()).ok());
  base::AlignedBuffer got(512 * kKiB);
  ASSERT_TRUE(engine->Read(256 * kKiB, got.span()).ok());
  EXPECT_EQ(Compare(Pattern(512 * kKiB, 2), got), "");
}

TEST_P(IoEngineTest, ConcurrentCallersOnDistinctRanges) {
  OPEN_OR_SKIP(engine);
  // More threads than queue slots, each with multi-unit requests, so
  // callers contend for slots and completions interleave.
  constexpr int kThreads = 8;
  constexpr int kBlocksPerThread = 6;
  constexpr uint64_t kBlock = 640 * kKiB;  // 2.5 units
  constexpr uint64_t kRange = kBlocksPerThread * kBlock;
  auto seed = [](int t, int b) { return uint64_t(t) * 100 + b + 7; };
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBlocksPerThread; ++b) {
        const uint64_t at = t * kRange + b * kBlock;
        if (absl::Status s =
                engine->Write(at, Pattern(kBlock, seed(t, b)).span());
            !s.ok()) {
          errors[t] = s.ToString();
          return;
        }
      }
      // Read this thread's blocks and a neighbour's (written concurrently,
      // so only its own are known to be there yet).
      for (int b = 0; b < kBlocksPerThread; ++b) {
        base::AlignedBuffer got(kBlock);
        const uint64_t at = t * kRange + b * kBlock;
        if (absl::Status s = engine->Read(at, got.span()); !s.ok()) {
          errors[t] = s.ToString();
          return;
        }
        if (std::string d = Compare(Pattern(kBlock, seed(t, b)), got);
            !d.empty()) {
          errors[t] = absl::StrCat("block ", b, ": ", d);
          return;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;

  // Everyone's blocks, read concurrently by other threads.
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const int owner = (t + 1) % kThreads;
      base::AlignedBuffer got(kRange);
      if (absl::Status s = engine->Read(owner * kRange, got.span()); !s.ok()) {
        errors[t] = s.ToString();
        return;
      }
      for (int b = 0; b < kBlocksPerThread; ++b) {
        if (std::memcmp(got.data() + b * kBlock,
                        Pattern(kBlock, seed(owner, b)).data(), kBlock) != 0) {
          errors[t] = absl::StrCat("block ", b, " of thread ", owner);
          return;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
}

TEST_P(IoEngineTest, ReserveGrowsAndNeverShrinks) {
  OPEN_OR_SKIP(engine);
  EXPECT_EQ(engine->file_size(), 0u);
  ASSERT_TRUE(engine->Reserve(8 * kMiB).ok());
  EXPECT_EQ(engine->file_size(), 8 * kMiB);
  struct stat st;
  ASSERT_EQ(::stat(dir_.Sub("data").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 8 * kMiB);
  // Preallocated, not sparse.
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, 8 * kMiB);

  ASSERT_TRUE(engine->Reserve(4 * kMiB).ok());
  EXPECT_EQ(engine->file_size(), 8 * kMiB);
  // Reserved space reads as zeros, not as stale disk contents.
  base::AlignedBuffer got(1 * kMiB);
  ASSERT_TRUE(engine->Read(7 * kMiB, got.span()).ok());
  EXPECT_EQ(Compare(base::AlignedBuffer::Zeroed(1 * kMiB), got), "");
}

TEST_P(IoEngineTest, ReadingPastTheEndIsAnError) {
  OPEN_OR_SKIP(engine);
  ASSERT_TRUE(engine->Write(0, Pattern(8 * kKiB, 3).span()).ok());
  base::AlignedBuffer got(1 * kMiB);
  // Straddling the end: a short read must not pass as success.
  absl::Status s = engine->Read(0, got.span());
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  EXPECT_THAT(s.message(), HasSubstr(dir_.Sub("data")));
  // Wholly past the end.
  s = engine->Read(4 * kMiB, got.span());
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  // The engine still works afterwards.
  base::AlignedBuffer small(8 * kKiB);
  ASSERT_TRUE(engine->Read(0, small.span()).ok());
  EXPECT_EQ(Compare(Pattern(8 * kKiB, 3), small), "");
}

TEST_P(IoEngineTest, SyncAloneAndConcurrently) {
  OPEN_OR_SKIP(engine);
  EXPECT_TRUE(engine->Sync().ok());  // nothing written yet
  ASSERT_TRUE(engine->Write(0, Pattern(1 * kMiB, 4).span()).ok());
  EXPECT_TRUE(engine->Sync().ok());
  std::vector<absl::Status> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t at = (1 + t) * kMiB;
      results[t] = engine->Write(at, Pattern(1 * kMiB, 10 + t).span());
      if (results[t].ok()) results[t] = engine->Sync();
    });
  }
  for (std::thread& th : threads) th.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
}

TEST_P(IoEngineTest, UnalignedArgumentsAreInvalid) {
  OPEN_OR_SKIP(engine);
  base::AlignedBuffer buf(64 * kKiB);
  const auto expect_invalid = [](const absl::Status& s) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr("multiples of 4096"));
  };
  expect_invalid(engine->Write(100, buf.span()));
  expect_invalid(engine->Write(0, buf.span().subspan(0, 1000)));
  expect_invalid(engine->Write(0, buf.span().subspan(512, 4096)));
  expect_invalid(engine->Read(100, buf.span()));
  expect_invalid(engine->Read(0, buf.span().subspan(0, 1000)));
  expect_invalid(engine->Read(0, buf.span().subspan(512, 4096)));
  EXPECT_EQ(engine->Write(UINT64_MAX - 4095, buf.span()).code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing reached the file.
  EXPECT_EQ(engine->file_size(), 0u);
  // An empty request is a no-op, not an error.
  EXPECT_TRUE(engine->Write(0, {}).ok());
  EXPECT_TRUE(engine->Read(0, {}).ok());
}

TEST_P(IoEngineTest, BufferedWhenAskedWorks) {
  IoEngineOptions o = Options(dir_.Sub("data"));
  o.direct_io = false;
  OPEN_OR_SKIP(engine, o);
  EXPECT_FALSE(engine->direct_io());
  EXPECT_THAT(std::string(engine->name()), HasSubstr("+buffered"));
  ASSERT_TRUE(engine->Write(0, Pattern(1 * kMiB, 5).span()).ok());
  base::AlignedBuffer got(1 * kMiB);
  ASSERT_TRUE(engine->Read(0, got.span()).ok());
  EXPECT_EQ(Compare(Pattern(1 * kMiB, 5), got), "");
}

TEST_P(IoEngineTest, WorksOnTmpfs) {
  // tmpfs takes O_DIRECT since Linux 6.6 and refused it before; either way
  // the engine works and says which mode it is in.
  if (!std::filesystem::is_directory("/dev/shm")) {
    GTEST_SKIP() << "no /dev/shm on this machine";
  }
  const std::string path =
      absl::StrCat("/dev/shm/tp-io-engine-test-", ::getpid(), "-",
                   std::string(IoEngineKindName(GetParam())));
  struct Remove {
    std::string path;
    ~Remove() { std::filesystem::remove(path); }
  } remove{path};
  OPEN_OR_SKIP(engine, Options(path));
  EXPECT_EQ(engine->name().ends_with("+direct"), engine->direct_io());
  ASSERT_TRUE(engine->Write(0, Pattern(2 * kMiB, 6).span()).ok());
  base::AlignedBuffer got(2 * kMiB);
  ASSERT_TRUE(engine->Read(0, got.span()).ok());
  EXPECT_EQ(Compare(Pattern(2 * kMiB, 6), got), "");
}

TEST_P(IoEngineTest, FallsBackToBufferedWhereDirectIoIsRefused) {
  // ramfs refuses O_DIRECT on every kernel.
  ScopedMount mount(dir_.Sub("ramfs"), "ramfs", nullptr);
  if (!mount.ok()) GTEST_SKIP() << "needs root to mount: " << mount.error();
  OPEN_OR_SKIP(engine, Options(dir_.Sub("ramfs/data")));
  EXPECT_FALSE(engine->direct_io());
  EXPECT_THAT(std::string(engine->name()), HasSubstr("+buffered"));
  ASSERT_TRUE(engine->Reserve(4 * kMiB).ok());
  ASSERT_TRUE(engine->Write(kMiB, Pattern(2 * kMiB, 7).span()).ok());
  ASSERT_TRUE(engine->Sync().ok());
  base::AlignedBuffer got(2 * kMiB);
  ASSERT_TRUE(engine->Read(kMiB, got.span()).ok());
  EXPECT_EQ(Compare(Pattern(2 * kMiB, 7), got), "");
}

TEST_P(IoEngineTest, FullDiskIsResourceExhausted) {
  ScopedMount mount(dir_.Sub("small"), "tmpfs", "size=8m");
  if (!mount.ok()) GTEST_SKIP() << "needs root to mount: " << mount.error();
  const std::string path = dir_.Sub("small/data");
  OPEN_OR_SKIP(engine, Options(path));
  ASSERT_TRUE(engine->Reserve(4 * kMiB).ok());

  absl::Status s = engine->Reserve(16 * kMiB);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_GE(engine->file_size(), 4 * kMiB);

  s = engine->Write(0, Pattern(16 * kMiB, 8).span());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr(path));

  // What fits still works.
  ASSERT_TRUE(engine->Write(0, Pattern(1 * kMiB, 9).span()).ok());
  base::AlignedBuffer got(1 * kMiB);
  ASSERT_TRUE(engine->Read(0, got.span()).ok());
  EXPECT_EQ(Compare(Pattern(1 * kMiB, 9), got), "");
}

TEST_P(IoEngineTest, ReopenSeesEarlierBytes) {
  const IoEngineOptions o = Options(dir_.Sub("data"));
  {
    OPEN_OR_SKIP(engine, o);
    ASSERT_TRUE(engine->Write(4 * kKiB, Pattern(1 * kMiB, 11).span()).ok());
    ASSERT_TRUE(engine->Sync().ok());
  }
  OPEN_OR_SKIP(engine, o);
  EXPECT_EQ(engine->file_size(), 4 * kKiB + 1 * kMiB);
  base::AlignedBuffer got(1 * kMiB);
  ASSERT_TRUE(engine->Read(4 * kKiB, got.span()).ok());
  EXPECT_EQ(Compare(Pattern(1 * kMiB, 11), got), "");
}

INSTANTIATE_TEST_SUITE_P(Engines, IoEngineTest,
                         ::testing::Values(IoEngineKind::kIoUring,
                                           IoEngineKind::kThreads),
                         [](const auto& info) {
                           return info.param == IoEngineKind::kIoUring
                                      ? "IoUring"
                                      : "Threads";
                         });

TEST(IoEngineKindTest, ParsesItsNames) {
  for (IoEngineKind kind :
       {IoEngineKind::kAuto, IoEngineKind::kIoUring, IoEngineKind::kThreads}) {
    IoEngineKind parsed = IoEngineKind::kAuto;
    EXPECT_TRUE(ParseIoEngineKind(IoEngineKindName(kind), &parsed));
    EXPECT_EQ(parsed, kind);
  }
  IoEngineKind parsed = IoEngineKind::kThreads;
  EXPECT_FALSE(ParseIoEngineKind("uring", &parsed));
  EXPECT_FALSE(ParseIoEngineKind("", &parsed));
  EXPECT_FALSE(ParseIoEngineKind("Threads", &parsed));
  EXPECT_EQ(parsed, IoEngineKind::kThreads);
}

TEST(OpenIoEngineTest, RejectsBadOptions) {
  TempDir dir;
  IoEngineOptions o;
  o.path = dir.Sub("data");
  o.io_unit_bytes = 1000;
  EXPECT_EQ(OpenIoEngine(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.io_unit_bytes = 2ull << 30;
  EXPECT_EQ(OpenIoEngine(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.io_unit_bytes = 4 * kMiB;
  o.queue_depth = 0;
  EXPECT_EQ(OpenIoEngine(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.queue_depth = 8;
  o.path = "";
  EXPECT_EQ(OpenIoEngine(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("data")));
}

TEST(OpenIoEngineTest, BadPathsGetPreciseCodes) {
  TempDir dir;
  IoEngineOptions o;
  o.path = dir.Sub("missing/data");
  absl::Status s = OpenIoEngine(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr(o.path));
  o.path = dir.path();
  s = OpenIoEngine(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

// Installs a seccomp filter that fails io_uring_setup with EPERM, as
// Docker's default profile does. Irreversible: only for a forked child.
bool ForbidIoUring() {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program = {static_cast<unsigned short>(std::size(filter)), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// Runs in a death-test child: exits 0 when both checks hold, else prints
// what went wrong and exits 1.
void CheckWithoutIoUring(const std::string& path) {
  if (!ForbidIoUring()) {
    std::fprintf(stderr, "could not install the seccomp filter\n");
    std::exit(2);
  }
  IoEngineOptions o;
  o.path = path;
  o.kind = IoEngineKind::kIoUring;
  absl::StatusOr<std::unique_ptr<IoEngine>> forced = OpenIoEngine(o);
  if (forced.ok() ||
      forced.status().code() != absl::StatusCode::kFailedPrecondition ||
      !absl::StrContains(forced.status().message(), "seccomp")) {
    std::fprintf(stderr, "forced io_uring: %s\n",
                 forced.ok() ? "opened" : forced.status().ToString().c_str());
    std::exit(1);
  }
  o.kind = IoEngineKind::kAuto;
  absl::StatusOr<std::unique_ptr<IoEngine>> fallback = OpenIoEngine(o);
  if (!fallback.ok() || !(*fallback)->name().starts_with("threads+") ||
      !(*fallback)->Write(0, Pattern(64 * kKiB, 12).span()).ok()) {
    std::fprintf(stderr, "auto: %s\n",
                 fallback.ok() ? std::string((*fallback)->name()).c_str()
                               : fallback.status().ToString().c_str());
    std::exit(1);
  }
  std::exit(0);
}

TEST(OpenIoEngineDeathTest, WithoutIoUringForcedFailsAndAutoFallsBack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  // The fallback logs exactly why, once.
  EXPECT_EXIT(CheckWithoutIoUring(dir.Sub("data")),
              ::testing::ExitedWithCode(0),
              "io_uring is unavailable.*seccomp.*using the thread I/O engine");
}

}  // namespace
}  // namespace tensorpager::storage
