// A hostile client against a real tensorpagerd: each attack of issue 10
// that one client could use to crash the server, read another's memory or
// hold memory and threads outside every budget. Each test asserts that
// the server answers with a precise error, stays within its limits and
// keeps serving others.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/abuse_fixture.h"

namespace tensorpager::testing {
namespace {

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
  // A GetBlocks whose reply carries the blocks holds its thread until the
  // client reads them: it counts as one of the client's data streams.
  v1::GetBlocksRequest get;
  get.add_ids("blk");
  v1::GetBlocksResponse got;
  const grpc::Status get_refused =
      Call(&v1::TensorPager::Stub::GetBlocks, get, &got);
  EXPECT_EQ(get_refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << get_refused.error_message();
  EXPECT_TRUE(absl::StrContains(get_refused.error_message(), "GetBlocks"))
      << get_refused.error_message();
  ExpectServing();
  for (auto& st : streams) st->ctx.TryCancel();
  WaitForOpenDataStreams(0);
  Put("after", 4096, 1);
  get.set_ids(0, "after");
  ASSERT_TRUE(Call(&v1::TensorPager::Stub::GetBlocks, get, &got).ok());
  EXPECT_EQ(got.results(0).data().size(), 4096u);
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
}  // namespace
}  // namespace tensorpager::testing
