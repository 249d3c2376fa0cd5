// A hostile client against a real tensorpagerd: each attack of issue 10
// that one client could use to crash the server, read another's memory or
// hold memory and threads outside every budget. Each test asserts that
// the server answers with a precise error, stays within its limits and
// keeps serving others.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "storage/shared_memory/ring_layout.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// The server's resident memory, from /proc.
uint64_t RssBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    // "VmRSS:     123456 kB"
    uint64_t kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lu kB", &kib) == 1) {
      return kib * 1024;
    }
  }
  return 0;
}

class AbuseTest : public PagerTest {
 protected:
  void Start(std::vector<std::string> flags) {
    StartServer(std::move(flags));
    stub_ = v1::TensorPager::NewStub(grpc::CreateChannel(
        server_->target(), grpc::InsecureChannelCredentials()));
  }
  // A unary call with a deadline, so a hang fails the test instead of
  // hanging it.
  template <typename Req, typename Resp, typename Method>
  grpc::Status Call(Method method, const Req& req, Resp* resp,
                    int deadline_s = 30) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(deadline_s));
    return ((*stub_).*method)(&ctx, req, resp);
  }
  grpc::Status SwapOut(std::vector<std::string> ids) {
    v1::SwapRequest req;
    req.set_direction(v1::SWAP_OUT);
    for (const std::string& id : ids) req.add_ids(id);
    v1::SwapResponse resp;
    return Call(&v1::TensorPager::Stub::Swap, req, &resp);
  }
  grpc::Status Unregister(const std::string& id) {
    v1::UnregisterBlockRequest req;
    req.set_id(id);
    v1::UnregisterBlockResponse resp;
    return Call(&v1::TensorPager::Stub::UnregisterBlock, req, &resp);
  }
  grpc::Status Register(const std::string& id, uint64_t size) {
    v1::RegisterBlockRequest req;
    req.set_id(id);
    req.set_size_bytes(size);
    v1::RegisterBlockResponse resp;
    return Call(&v1::TensorPager::Stub::RegisterBlock, req, &resp);
  }
  // Waits (a bounded while) until the server's Status satisfies `done`.
  template <typename Done>
  void WaitForStatus(Done done, const std::string& what) {
    v1::StatusResponse status;
    for (int i = 0; i < 300; ++i) {
      v1::StatusRequest req;
      ASSERT_TRUE(Call(&v1::TensorPager::Stub::Status, req, &status).ok());
      if (done(status)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the server never reached " << what << ": "
           << status.ShortDebugString();
  }
  void WaitForOpenDataStreams(uint32_t n) {
    WaitForStatus(
        [n](const v1::StatusResponse& s) { return s.open_data_streams() == n; },
        absl::StrCat(n, " open data streams"));
  }
  void ExpectServing() {
    v1::StatusRequest req;
    v1::StatusResponse resp;
    grpc::Status s = Call(&v1::TensorPager::Stub::Status, req, &resp, 10);
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server_->Log();
  }
  std::unique_ptr<v1::TensorPager::Stub> stub_;
};

// Swap OUT [C, A, B] waits for B (busy swapping out) while A is
// unregistered: the waiting swap must look its blocks up again rather than
// use A's freed entry, and must leave C usable.
TEST_F(AbuseTest, SwapWaitingOnABusyBlockSurvivesUnregisterOfAnother) {
  Start({"--ram_budget=512MiB", "--swap_threshold=1", "--swap_target=1"});
  for (int round = 0; round < 3; ++round) {
    const std::string a = absl::StrCat("a", round);
    const std::string b = absl::StrCat("b", round);
    const std::string c = absl::StrCat("c", round);
    Put(a, kMiB, 1);
    ASSERT_TRUE(SwapOut({a}).ok());  // A is on disk only
    Put(b, 96 * kMiB, 2);
    Put(c, kMiB, 3);
    auto t1 = std::async(std::launch::async, [&] { return SwapOut({b}); });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto t2 = std::async(std::launch::async, [&] {
      return SwapOut({c, a, b});
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    grpc::Status unregistered = Unregister(a);
    EXPECT_TRUE(unregistered.ok()) << unregistered.error_message();
    EXPECT_TRUE(t1.get().ok());
    const grpc::Status s2 = t2.get();
    // Either the swap ran before the unregister, or it finds A gone.
    EXPECT_TRUE(s2.ok() || s2.error_code() == grpc::StatusCode::NOT_FOUND)
        << s2.error_code() << ": " << s2.error_message();
    // C is not left busy: these would hang past their deadline.
    ExpectBytes(c, kMiB, 3);
    EXPECT_TRUE(Unregister(c).ok());
    EXPECT_TRUE(Unregister(b).ok());
  }
  ExpectServing();
}

// A shared-memory write that names an unregistered block (or a range that
// does not fit it) is refused before the server allocates or copies
// anything, however large the range.
TEST_F(AbuseTest, SharedWriteIsValidatedBeforeItAllocates) {
  Start({"--ram_budget=256MiB"});
  const uint64_t size = 1ull << 30;  // sparse: costs nothing until touched
  const int fd = ::memfd_create("abuse", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, size), 0);
  ASSERT_EQ(::pwrite(fd, "abuse-token-0123", 16, 0), 16);
  ASSERT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  v1::AttachSharedMemoryRequest attach;
  attach.set_pid(::getpid());
  attach.set_fd(fd);
  attach.set_size_bytes(size);
  attach.set_token("abuse-token-0123");
  v1::AttachSharedMemoryResponse attached;
  grpc::Status a =
      Call(&v1::TensorPager::Stub::AttachSharedMemory, attach, &attached);
  if (!a.ok()) {
    ::close(fd);
    GTEST_SKIP() << "the server cannot attach this process's memory: "
                 << a.error_message();
  }
  Put("small", 4096, 1);
  const uint64_t rss_before = RssBytes(server_->pid());
  v1::WriteBlockSharedRequest w;
  w.mutable_source()->set_segment_id(attached.segment_id());
  w.mutable_source()->set_capability(attached.capability());
  w.mutable_source()->set_offset(4096);
  w.mutable_source()->set_length(size - 4096);
  v1::WriteBlockResponse wr;
  w.set_id("never-registered");
  EXPECT_EQ(Call(&v1::TensorPager::Stub::WriteBlockShared, w, &wr).error_code(),
            grpc::StatusCode::NOT_FOUND);
  w.set_id("small");
  grpc::Status too_big = Call(&v1::TensorPager::Stub::WriteBlockShared, w, &wr);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(too_big.error_message(), "does not fit"))
      << too_big.error_message();
  EXPECT_LT(RssBytes(server_->pid()), rss_before + 64 * kMiB)
      << "the refused writes still allocated their staging buffers";
  ExpectBytes("small", 4096, 1);
  ::close(fd);
}

// Stalled WriteBlock streams hold staging memory outside the RAM tier:
// --max_inflight_bytes caps it, and other clients keep writing.
TEST_F(AbuseTest, StalledWriteStreamsStayWithinTheInflightBudget) {
  Start({"--ram_budget=256MiB", "--max_inflight_bytes=160MiB"});
  ASSERT_TRUE(Register("big", 64 * kMiB).ok());
  const std::string chunk = PatternBytes(kMiB, 9);
  struct Stalled {
    grpc::ClientContext ctx;
    v1::WriteBlockResponse resp;
    std::unique_ptr<grpc::ClientWriter<v1::WriteBlockRequest>> writer;
  };
  std::vector<std::unique_ptr<Stalled>> streams;
  for (int i = 0; i < 2; ++i) {
    auto s = std::make_unique<Stalled>();
    s->writer = stub_->WriteBlock(&s->ctx, &s->resp);
    v1::WriteBlockRequest first;
    first.set_id("big");
    first.set_data(chunk);
    ASSERT_TRUE(s->writer->Write(first));
    streams.push_back(std::move(s));
  }
  // Both streams hold their staging (128 MiB), as Status shows.
  WaitForStatus(
      [](const v1::StatusResponse& s) {
        return s.inflight_bytes() == 128 * kMiB &&
               s.max_inflight_bytes() == 160 * kMiB;
      },
      "128 MiB of staging held");
  // A third stream would take the held staging to 192 MiB: refused.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::WriteBlockResponse resp;
  auto third = stub_->WriteBlock(&ctx, &resp);
  v1::WriteBlockRequest first;
  first.set_id("big");
  first.set_data(chunk);
  third->Write(first);
  third->WritesDone();
  grpc::Status refused = third->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(
      absl::StrContains(refused.error_message(), "--max_inflight_bytes"))
      << refused.error_message();
  // The refused stream took nothing.
  WaitForStatus(
      [](const v1::StatusResponse& s) {
        return s.inflight_bytes() == 128 * kMiB;
      },
      "128 MiB of staging held after the refusal");
  // Small writes of another client still go through.
  Put("other", 64 * 1024, 4);
  ExpectBytes("other", 64 * 1024, 4);
  // Once the stalled streams go, their staging is free again.
  for (auto& s : streams) s->ctx.TryCancel();
  streams.clear();
  absl::Status written;
  for (int attempt = 0; attempt < 50; ++attempt) {
    written = client_->Write("big", PatternBytes(64 * kMiB, 5)).status();
    if (written.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(written.ok()) << written;
  ExpectServing();
}

// Stalled data streams hold threads: one client gets at most
// --max_data_streams_per_client of them.
TEST_F(AbuseTest, StalledDataStreamsPerClientAreCapped) {
  Start({"--ram_budget=64MiB", "--max_data_streams_per_client=2"});
  ASSERT_TRUE(Register("blk", kMiB).ok());
  struct Stalled {
    grpc::ClientContext ctx;
    v1::WriteBlockResponse resp;
    std::unique_ptr<grpc::ClientWriter<v1::WriteBlockRequest>> writer;
  };
  std::vector<std::unique_ptr<Stalled>> streams;
  v1::WriteBlockRequest first;
  first.set_id("blk");
  first.set_data(std::string(4096, 'x'));
  // The fixture's SDK client holds no stream; two stall...
  for (int i = 0; i < 2; ++i) {
    auto st = std::make_unique<Stalled>();
    st->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    st->writer = stub_->WriteBlock(&st->ctx, &st->resp);
    st->writer->Write(first);
    streams.push_back(std::move(st));
  }
  WaitForOpenDataStreams(2);
  // ...and a third is refused.
  auto st = std::make_unique<Stalled>();
  st->ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  st->writer = stub_->WriteBlock(&st->ctx, &st->resp);
  st->writer->Write(first);
  st->writer->WritesDone();
  const grpc::Status refused = st->writer->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "uid "))
      << refused.error_message();
  ExpectServing();
  for (auto& st : streams) st->ctx.TryCancel();
  Put("after", 4096, 1);
}

// Client usage reports, labels and block counts are capped.
TEST_F(AbuseTest, MetadataIsBounded) {
  Start({"--ram_budget=64MiB", "--max_blocks=8"});
  v1::ReportClientUsageRequest report;
  report.set_client_id("flood");
  for (uint32_t i = 0; i < 100000; ++i) {
    v1::GpuUsage* g = report.add_gpus();
    g->set_device(i);
    g->set_used_bytes(1);
    g->set_total_bytes(2);
  }
  v1::ReportClientUsageResponse usage;
  grpc::Status flood =
      Call(&v1::TensorPager::Stub::ReportClientUsage, report, &usage);
  EXPECT_EQ(flood.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(flood.error_message(), "at most 64"))
      << flood.error_message();

  v1::RegisterBlockRequest labelled;
  labelled.set_id("labelled");
  labelled.set_size_bytes(4096);
  for (int i = 0; i < 64; ++i) {
    (*labelled.mutable_labels())[absl::StrCat("key", i)] =
        std::string(200, 'v');
  }
  v1::RegisterBlockResponse registered;
  grpc::Status labels =
      Call(&v1::TensorPager::Stub::RegisterBlock, labelled, &registered);
  EXPECT_EQ(labels.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(labels.error_message(), "per block"))
      << labels.error_message();

  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(Register(absl::StrCat("b", i), 4096).ok());
  }
  grpc::Status ninth = Register("b8", 4096);
  EXPECT_EQ(ninth.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(ninth.error_message(), "--max_blocks"))
      << ninth.error_message();
  ASSERT_TRUE(Unregister("b0").ok());
  EXPECT_TRUE(Register("b8", 4096).ok());
  ExpectServing();
}

// Streams hold a server thread each: one client gets at most
// --max_watch_streams_per_client of them, and unary calls are still
// served.
TEST_F(AbuseTest, OneClientCannotTakeEveryStreamThread) {
  Start({"--ram_budget=64MiB", "--max_watch_streams_per_client=4"});
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::PressureEvent>> reader;
  };
  // The fixture's SDK client watches too (as the same user): open streams
  // until the server refuses one.
  std::vector<std::unique_ptr<Watch>> watches;
  grpc::Status refused;
  for (int i = 0; i < 8 && refused.ok(); ++i) {
    auto w = std::make_unique<Watch>();
    w->ctx.set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(60));
    v1::WatchPressureRequest req;
    req.set_send_current(true);
    w->reader = stub_->WatchPressure(&w->ctx, req);
    v1::PressureEvent event;
    if (w->reader->Read(&event)) {
      watches.push_back(std::move(w));
    } else {
      refused = w->reader->Finish();
    }
  }
  EXPECT_GE(watches.size(), 1u);
  EXPECT_LE(watches.size(), 4u);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "WatchPressure"))
      << refused.error_message();
  ExpectServing();
  for (auto& w : watches) w->ctx.TryCancel();
  for (auto& w : watches) w->reader->Finish().ok();
}

// A sealed memfd segment of this process, attached to the server.
struct Segment {
  int fd = -1;
  char* base = nullptr;
  uint64_t size = 0;
  uint64_t id = 0;
  std::string capability;
  std::string token;
  ~Segment() {
    if (base != nullptr) ::munmap(base, size);
    if (fd >= 0) ::close(fd);
  }
};

class SharedMemoryAbuseTest : public AbuseTest {
 protected:
  void SetUp() override {
    Start({"--ram_budget=64MiB"});
    segment_.size = 1 << 20;
    segment_.token = "victim-token-0123";
    segment_.fd = ::memfd_create("victim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_GE(segment_.fd, 0);
    ASSERT_EQ(::ftruncate(segment_.fd, segment_.size), 0);
    segment_.base = static_cast<char*>(::mmap(nullptr, segment_.size,
                                              PROT_READ | PROT_WRITE,
                                              MAP_SHARED, segment_.fd, 0));
    ASSERT_NE(segment_.base, MAP_FAILED);
    std::memcpy(segment_.base, segment_.token.data(), segment_.token.size());
    auto* header = reinterpret_cast<shared_memory::RingHeader*>(
        segment_.base + shared_memory::kRingOffset);
    header->magic = shared_memory::kMagic;
    header->slots = shared_memory::kSlots;
    ASSERT_EQ(::fcntl(segment_.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW),
              0);
    v1::AttachSharedMemoryResponse resp;
    grpc::Status s = AttachSegment(/*ring=*/false, &resp);
    if (!s.ok()) GTEST_SKIP() << "cannot attach here: " << s.error_message();
    segment_.id = resp.segment_id();
    segment_.capability = resp.capability();
    ASSERT_EQ(segment_.capability.size(), 16u);
    Put("secret", 8192, 42);
  }
  // Attaches the fixture's segment (once more) for this process.
  grpc::Status AttachSegment(bool ring, v1::AttachSharedMemoryResponse* resp) {
    v1::AttachSharedMemoryRequest req;
    req.set_pid(::getpid());
    req.set_fd(segment_.fd);
    req.set_size_bytes(segment_.size);
    req.set_token(segment_.token);
    req.set_ring(ring);
    return Call(&v1::TensorPager::Stub::AttachSharedMemory, req, resp);
  }
  grpc::Status ReadInto(uint64_t id, const std::string& capability) {
    v1::AccessSharedRequest a;
    a.set_id("secret");
    a.mutable_destination()->set_segment_id(id);
    a.mutable_destination()->set_capability(capability);
    a.mutable_destination()->set_offset(8192);
    a.mutable_destination()->set_length(8192);
    v1::AccessSharedResponse ar;
    return Call(&v1::TensorPager::Stub::AccessShared, a, &ar);
  }
  Segment segment_;
};

TEST_F(SharedMemoryAbuseTest, WrongCapabilityLooksLikeAMissingSegment) {
  std::string guessed = segment_.capability;
  guessed[0] ^= 1;
  const grpc::Status wrong = ReadInto(segment_.id, guessed);
  const grpc::Status none = ReadInto(segment_.id, "");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::DetachSharedMemoryRequest detach;
  detach.set_segment_id(segment_.id);
  detach.set_capability(guessed);
  v1::DetachSharedMemoryResponse done;
  EXPECT_EQ(Call(&v1::TensorPager::Stub::DetachSharedMemory, detach, &done)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Still attached for its owner...
  ASSERT_TRUE(ReadInto(segment_.id, segment_.capability).ok());
  EXPECT_EQ(std::string(segment_.base + 8192, 8192), PatternBytes(8192, 42));
  // ...and once detached, the same segment answers exactly as before.
  detach.set_capability(segment_.capability);
  ASSERT_TRUE(
      Call(&v1::TensorPager::Stub::DetachSharedMemory, detach, &done).ok());
  const grpc::Status gone = ReadInto(segment_.id, segment_.capability);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(gone.error_message(), wrong.error_message());
  EXPECT_EQ(gone.error_message(), none.error_message());
}

TEST_F(SharedMemoryAbuseTest, SegmentsPerUserAreCapped) {
  server_->Stop().IgnoreError();
  Start({"--ram_budget=64MiB", "--max_segments_per_client=1"});
  v1::AttachSharedMemoryResponse resp;
  // The fixture's SDK client attached its arena to the first server only.
  ASSERT_TRUE(AttachSegment(/*ring=*/false, &resp).ok());
  grpc::Status second = AttachSegment(/*ring=*/false, &resp);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(second.error_message(), "most one user may"))
      << second.error_message();
}

TEST_F(SharedMemoryAbuseTest, RingThreadsPerUserAreCapped) {
  server_->Stop().IgnoreError();
  Start({"--ram_budget=64MiB", "--max_rings_per_client=1"});
  v1::AttachSharedMemoryResponse first;
  ASSERT_TRUE(AttachSegment(/*ring=*/true, &first).ok());
  EXPECT_TRUE(first.ring());
  // Over the cap the segment still attaches, served through the RPCs.
  v1::AttachSharedMemoryResponse second;
  ASSERT_TRUE(AttachSegment(/*ring=*/true, &second).ok());
  EXPECT_FALSE(second.ring());
  v1::StatusRequest sreq;
  v1::StatusResponse status;
  ASSERT_TRUE(Call(&v1::TensorPager::Stub::Status, sreq, &status).ok());
  EXPECT_EQ(status.shared_memory_rings(), 1u);
}

// Another local user, with everything the victim's segment has leaked
// (id, capability, the memfd's pid, fd and token), gets nothing: the
// server checks the caller's user on Attach and on every call.
TEST_F(SharedMemoryAbuseTest, AnotherUserCannotUseOrAttachTheSegment) {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs root and setpriv to run a client as another user";
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setenv("TP_INTRUDER_TARGET", server_->target().c_str(), 1);
    ::setenv("TP_INTRUDER_SEGMENT", absl::StrCat(segment_.id).c_str(), 1);
    ::setenv("TP_INTRUDER_CAPABILITY",
             absl::BytesToHexString(segment_.capability).c_str(), 1);
    ::setenv("TP_INTRUDER_PID", absl::StrCat(::getppid()).c_str(), 1);
    ::setenv("TP_INTRUDER_FD", absl::StrCat(segment_.fd).c_str(), 1);
    ::setenv("TP_INTRUDER_TOKEN", segment_.token.c_str(), 1);
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) ::_exit(120);
    self[n] = '\0';
    ::execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534",
            "--clear-groups", self, "--gtest_also_run_disabled_tests",
            "--gtest_filter=IntruderTest.*", static_cast<char*>(nullptr));
    ::_exit(121);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  // 121: setpriv would not start; 126/127: uid 65534 may not run this
  // binary (a build under a private home directory, say).
  const int code = WEXITSTATUS(status);
  if (code == 121 || code == 126 || code == 127) {
    GTEST_SKIP() << "cannot run this test binary as uid 65534 (exit " << code
                 << ")";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "the intruder (uid 65534) got something; see its output above";
  // The owner's segment is untouched and still served.
  ASSERT_TRUE(ReadInto(segment_.id, segment_.capability).ok());
  EXPECT_EQ(std::string(segment_.base + 8192, 8192), PatternBytes(8192, 42));
}

// Runs only as the child of the test above (as uid 65534), which enables
// it; ctest never runs it on its own.
TEST(IntruderTest, DISABLED_GetsNothingOfAnotherUsersSegment) {
  const char* target = std::getenv("TP_INTRUDER_TARGET");
  if (target == nullptr) GTEST_SKIP() << "runs as a child of the abuse test";
  auto stub = v1::TensorPager::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  uint64_t id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(std::getenv("TP_INTRUDER_SEGMENT"), &id));
  const std::string capability =
      absl::HexStringToBytes(std::getenv("TP_INTRUDER_CAPABILITY"));
  int pid = 0;
  int fd = 0;
  ASSERT_TRUE(absl::SimpleAtoi(std::getenv("TP_INTRUDER_PID"), &pid));
  ASSERT_TRUE(absl::SimpleAtoi(std::getenv("TP_INTRUDER_FD"), &fd));
  auto deadline = [](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
  };

  v1::AccessSharedRequest a;
  a.set_id("secret");
  a.mutable_destination()->set_segment_id(id);
  a.mutable_destination()->set_capability(capability);
  a.mutable_destination()->set_offset(0);
  a.mutable_destination()->set_length(8192);
  v1::AccessSharedResponse ar;
  grpc::ClientContext c1;
  deadline(&c1);
  EXPECT_EQ(stub->AccessShared(&c1, a, &ar).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::WriteBlockSharedRequest w;
  w.set_id("secret");
  *w.mutable_source() = a.destination();
  v1::WriteBlockResponse wr;
  grpc::ClientContext c2;
  deadline(&c2);
  EXPECT_EQ(stub->WriteBlockShared(&c2, w, &wr).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::DetachSharedMemoryRequest d;
  d.set_segment_id(id);
  d.set_capability(capability);
  v1::DetachSharedMemoryResponse dr;
  grpc::ClientContext c3;
  deadline(&c3);
  EXPECT_EQ(stub->DetachSharedMemory(&c3, d, &dr).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Naming the victim's memfd (with its token) attaches nothing, and says
  // no more than naming a descriptor that does not exist.
  auto attach = [&](int p, int f) {
    v1::AttachSharedMemoryRequest req;
    req.set_pid(p);
    req.set_fd(f);
    req.set_size_bytes(1 << 20);
    req.set_token(std::getenv("TP_INTRUDER_TOKEN"));
    v1::AttachSharedMemoryResponse resp;
    grpc::ClientContext ctx;
    deadline(&ctx);
    return stub->AttachSharedMemory(&ctx, req, &resp);
  };
  const grpc::Status victims = attach(pid, fd);
  const grpc::Status missing = attach(pid, 9999);
  EXPECT_EQ(victims.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << victims.error_message();
  EXPECT_EQ(victims.error_code(), missing.error_code());
  EXPECT_EQ(absl::StrReplaceAll(victims.error_message(),
                                {{absl::StrCat(" ", fd, " "), " N "}}),
            absl::StrReplaceAll(missing.error_message(), {{" 9999 ", " N "}}));
}

}  // namespace
}  // namespace tensorpager::testing
