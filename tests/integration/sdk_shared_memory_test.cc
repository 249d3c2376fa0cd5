// The shared-memory data path between the SDK and a tensorpagerd on the
// same host: transfers through the arena (device ones straight through it,
// page-locked), fallbacks to gRPC streams (path
// off on the server, block larger than the arena, server restarted), and
// the RPCs' checks against a raw stub.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client_sdk/testing/fake_device_runtime.h"
#include "storage/shared_memory/ring_layout.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// Why the server cannot map this process's memory (it must open
// /proc/<pid>/fd: same user or root, same PID namespace, no ptrace
// restrictions), or empty when it can. Where it cannot, the SDK uses
// streams and these tests skip.
std::string SharedMemoryUnavailable(const std::string& target) {
  auto stub = v1::TensorPager::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  const int fd = ::memfd_create("probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return "memfd_create failed";
  const uint64_t size = 8192;
  std::string why;
  if (::ftruncate(fd, size) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0 ||
      ::pwrite(fd, "probe-token-0123", 16, 0) != 16) {
    why = "cannot prepare a sealed memfd";
  } else {
    v1::AttachSharedMemoryRequest req;
    req.set_pid(::getpid());
    req.set_fd(fd);
    req.set_size_bytes(size);
    req.set_token("probe-token-0123");
    v1::AttachSharedMemoryResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub->AttachSharedMemory(&ctx, req, &resp);
    if (s.ok()) {
      v1::DetachSharedMemoryRequest detach;
      detach.set_segment_id(resp.segment_id());
      detach.set_capability(resp.capability());
      v1::DetachSharedMemoryResponse done;
      grpc::ClientContext c2;
      stub->DetachSharedMemory(&c2, detach, &done).ok();
    } else {
      why = absl::StrCat("the server cannot map this process's memory here: ",
                         s.error_message());
    }
  }
  ::close(fd);
  return why;
}

class SdkSharedMemoryTest : public PagerTest {
 protected:
  std::unique_ptr<Client> Sdk(ClientOptions o = {}) {
    o.log_sink = log_.Sink();
    auto c = Client::Connect(server_->target(), std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  bool Logged(absl::string_view text) { return log_.LinesWith(text) > 0; }
  void RoundTrip(Client& sdk, const std::string& id, uint64_t size,
                 uint64_t seed) {
    BlockSpec spec{id, size};
    const std::string data = PatternBytes(size, seed);
    auto reg = sdk.Register(spec, data.data(), Placement::Host());
    ASSERT_TRUE(reg.ok()) << reg.status();
    auto h = sdk.Access(id);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(std::string(h->data_as<const char>(), h->size()) == data);
    auto r = sdk.Read(id);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->data == data);
  }

  SdkLogCapture log_;
};

TEST_F(SdkSharedMemoryTest, HostTransfersCrossTheArena) {
  StartServer({"--ram_budget=256MiB"});
  if (std::string why = SharedMemoryUnavailable(server_->target());
      !why.empty()) {
    GTEST_SKIP() << why;
  }
  auto sdk = Sdk();
  RoundTrip(*sdk, "a", 4 * kMiB, 1);
  RoundTrip(*sdk, "b", 65536 + 17, 2);
  const CacheStats s = sdk->LocalStats();
  // Each round trip: the write, the cache's fetch and the direct read.
  EXPECT_EQ(s.shared_memory_transfers, 6u);
  // All of them through the request ring: no RPC carried any.
  EXPECT_EQ(s.shared_memory_ring_transfers, 6u);
  EXPECT_EQ(s.shared_memory_bytes, 3 * (4 * kMiB + 65536 + 17));
  EXPECT_TRUE(Logged("shared-memory data path on"));
  // A partial write and a ranged read through the arena.
  ASSERT_TRUE(sdk->Write("a", std::string(100, 'x'), 5000).ok());
  auto r = sdk->Read("a", 4990, 120);
  ASSERT_TRUE(r.ok()) << r.status();
  std::string expect = PatternBytes(4 * kMiB, 1).substr(4990, 120);
  expect.replace(10, 100, std::string(100, 'x'));
  EXPECT_EQ(r->data, expect);
  EXPECT_EQ(sdk->LocalStats().shared_memory_transfers, 8u);
}

TEST_F(SdkSharedMemoryTest, DeviceTransfersCopyStraightThroughTheArena) {
  StartServer({"--ram_budget=256MiB"});
  if (std::string why = SharedMemoryUnavailable(server_->target());
      !why.empty()) {
    GTEST_SKIP() << why;
  }
  auto gpu = std::make_shared<FakeDeviceRuntime>(
      FakeDeviceRuntime::Options{.devices = 1, .memory_bytes = 1ull << 30});
  ClientOptions o;
  o.device_runtime = gpu;
  auto sdk = Sdk(o);
  const uint64_t size = 3 * kMiB + 5;
  const std::string data = PatternBytes(size, 9);
  absl::StatusOr<void*> on_gpu = gpu->AllocDevice(0, size);
  ASSERT_TRUE(on_gpu.ok());
  std::memcpy(*on_gpu, data.data(), size);  // the fake's memory is host's
  BlockSpec spec{"g", size};
  ASSERT_TRUE(sdk->Register(spec, *on_gpu, Placement::Device(0)).ok());
  {
    auto h = sdk->Access("g", Placement::Device(0));
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(std::string(h->data_as<const char>(), h->size()) == data);
  }
  // The arena is page-locked: the device copied to and from it straight,
  // every byte of both transfers, with no staging buffer between.
  EXPECT_EQ(gpu->registered_copied_bytes(), 2 * size);
  EXPECT_EQ(sdk->LocalStats().shared_memory_ring_transfers, 2u);
  EXPECT_TRUE(Logged("page-locked"));
  gpu->FreeDevice(0, *on_gpu);
}

TEST_F(SdkSharedMemoryTest, ManyThreadsShareTheArena) {
  StartServer({"--ram_budget=256MiB"});
  if (std::string why = SharedMemoryUnavailable(server_->target());
      !why.empty()) {
    GTEST_SKIP() << why;
  }
  ClientOptions o;
  o.shared_memory_bytes = 8 * kMiB;  // smaller than all transfers at once
  auto sdk = Sdk(o);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::string id = absl::StrCat("t", t, "-", i);
        const std::string data = PatternBytes(kMiB + 4096 * t, t * 100 + i);
        BlockSpec spec{id, data.size()};
        if (!sdk->Register(spec, data.data(), Placement::Host()).ok()) ++bad;
        auto r = sdk->Read(id);
        if (!r.ok() || r->data != data) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(sdk->LocalStats().shared_memory_transfers, 0u);
}

TEST_F(SdkSharedMemoryTest, StreamsTakeOverWhereTheArenaCannot) {
  StartServer({"--ram_budget=256MiB", "--shared_memory=false"});
  auto off = Sdk();
  RoundTrip(*off, "a", 2 * kMiB, 3);
  EXPECT_EQ(off->LocalStats().shared_memory_transfers, 0u);
  EXPECT_TRUE(Logged("shared-memory data path off"));
  EXPECT_TRUE(Logged("--shared_memory=false"));

  server_->Stop().IgnoreError();
  StartServer({"--ram_budget=256MiB"});
  ClientOptions small;
  small.shared_memory_bytes = kMiB;
  auto sdk = Sdk(small);
  RoundTrip(*sdk, "big", 3 * kMiB, 4);  // larger than the arena
  EXPECT_EQ(sdk->LocalStats().shared_memory_transfers, 0u);
  ClientOptions none;
  none.shared_memory_bytes = 0;
  auto streams = Sdk(none);
  RoundTrip(*streams, "small", 4096, 5);
  EXPECT_EQ(streams->LocalStats().shared_memory_transfers, 0u);
}

TEST_F(SdkSharedMemoryTest, ForgottenSegmentIsAttachedAgain) {
  // Durable, so the block outlives the restart below.
  StartServer({"--ram_budget=256MiB", "--durable_writes"});
  if (std::string why = SharedMemoryUnavailable(server_->target());
      !why.empty()) {
    GTEST_SKIP() << why;
  }
  auto sdk = Sdk();
  const std::string data = PatternBytes(kMiB, 6);
  BlockSpec spec{"kept", data.size()};
  ASSERT_TRUE(sdk->Register(spec, data.data(), Placement::Host()).ok());
  EXPECT_EQ(sdk->LocalStats().shared_memory_transfers, 1u);
  // A server restart (on the same port) forgets the SDK's segment.
  ASSERT_TRUE(server_->Restart(/*same_port=*/true).ok()) << server_->Log();
  // This read finds the ring unserved (no heartbeat), goes over a stream
  // and attaches the arena again...
  auto r = sdk->Read("kept");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->data == data);
  EXPECT_EQ(sdk->LocalStats().shared_memory_transfers, 1u);
  // ...so the next one uses it.
  auto again = sdk->Read("kept");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->data == data);
  EXPECT_EQ(sdk->LocalStats().shared_memory_transfers, 2u);
  EXPECT_EQ(sdk->LocalStats().shared_memory_ring_transfers, 2u);
}

// The RPCs themselves, from a raw stub.
class SharedMemoryRpcTest : public PagerTest {
 protected:
  void SetUp() override {
    StartServer({"--ram_budget=64MiB"});
    if (std::string why = SharedMemoryUnavailable(server_->target());
        !why.empty()) {
      GTEST_SKIP() << why;
    }
    stub_ = v1::TensorPager::NewStub(grpc::CreateChannel(
        server_->target(), grpc::InsecureChannelCredentials()));
    fd_ = ::memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_GE(fd_, 0);
    ASSERT_EQ(::ftruncate(fd_, kSize), 0);
    base_ = static_cast<char*>(
        ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    ASSERT_NE(base_, MAP_FAILED);
    std::memcpy(base_, "token-0123456789", 16);
  }
  void TearDown() override {
    ::munmap(base_, kSize);
    ::close(fd_);
  }
  void Seal() {
    ASSERT_EQ(::fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  }
  grpc::Status Attach(absl::string_view token, uint64_t* id) {
    v1::AttachSharedMemoryRequest req;
    req.set_pid(::getpid());
    req.set_fd(fd_);
    req.set_size_bytes(kSize);
    req.set_token(std::string(token));
    v1::AttachSharedMemoryResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->AttachSharedMemory(&ctx, req, &resp);
    *id = resp.segment_id();
    capability_ = resp.capability();
    return s;
  }
  // A range of the attached segment, as the RPCs name it.
  void Name(v1::SharedRange* range, uint64_t id) const {
    range->set_segment_id(id);
    range->set_capability(capability_);
  }
  std::string capability_;
  static constexpr uint64_t kSize = 1 << 20;
  std::unique_ptr<v1::TensorPager::Stub> stub_;
  int fd_ = -1;
  char* base_ = nullptr;
};

TEST_F(SharedMemoryRpcTest, AttachChecksSealsAndToken) {
  uint64_t id = 0;
  grpc::Status unsealed = Attach("token-0123456789", &id);
  EXPECT_EQ(unsealed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(unsealed.error_message(), "F_SEAL_SHRINK"));
  Seal();
  grpc::Status wrong = Attach("token-9999999999", &id);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status short_token = Attach("tok", &id);
  EXPECT_EQ(short_token.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Attach("token-0123456789", &id).ok());
  EXPECT_GT(id, 0u);

  v1::DetachSharedMemoryRequest detach;
  detach.set_segment_id(id);
  detach.set_capability(capability_);
  v1::DetachSharedMemoryResponse done;
  grpc::ClientContext c1;
  EXPECT_TRUE(stub_->DetachSharedMemory(&c1, detach, &done).ok());
  grpc::ClientContext c2;
  EXPECT_EQ(stub_->DetachSharedMemory(&c2, detach, &done).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SharedMemoryRpcTest, RangesAreCheckedAndFailuresChangeNothing) {
  Seal();
  uint64_t id = 0;
  ASSERT_TRUE(Attach("token-0123456789", &id).ok());
  Put("blk", 8192, 7);

  v1::WriteBlockSharedRequest w;
  w.set_id("blk");
  Name(w.mutable_source(), id);
  w.mutable_source()->set_offset(kSize - 4096);
  w.mutable_source()->set_length(8192);  // runs past the segment
  v1::WriteBlockResponse wr;
  grpc::ClientContext c1;
  EXPECT_EQ(stub_->WriteBlockShared(&c1, w, &wr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  w.mutable_source()->set_segment_id(id + 100);
  w.mutable_source()->set_offset(4096);
  grpc::ClientContext c2;
  EXPECT_EQ(stub_->WriteBlockShared(&c2, w, &wr).error_code(),
            grpc::StatusCode::NOT_FOUND);
  w.mutable_source()->set_segment_id(id);
  w.mutable_source()->set_length(16384);  // larger than the block
  grpc::ClientContext c3;
  EXPECT_EQ(stub_->WriteBlockShared(&c3, w, &wr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ExpectBytes("blk", 8192, 7);

  v1::AccessSharedRequest a;
  a.set_id("blk");
  Name(a.mutable_destination(), id);
  a.mutable_destination()->set_offset(4096);
  a.mutable_destination()->set_length(4096);  // too small for the block
  v1::AccessSharedResponse ar;
  grpc::ClientContext c4;
  grpc::Status small = stub_->AccessShared(&c4, a, &ar);
  EXPECT_EQ(small.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(small.error_message(), "destination holds"));
  a.mutable_destination()->set_length(8192);
  grpc::ClientContext c5;
  ASSERT_TRUE(stub_->AccessShared(&c5, a, &ar).ok());
  EXPECT_EQ(ar.length(), 8192u);
  EXPECT_EQ(std::string(base_ + 4096, 8192), PatternBytes(8192, 7));

  // A write through the segment lands in the block.
  std::memcpy(base_ + 4096, PatternBytes(8192, 8).data(), 8192);
  w.mutable_source()->set_length(8192);
  grpc::ClientContext c6;
  ASSERT_TRUE(stub_->WriteBlockShared(&c6, w, &wr).ok());
  EXPECT_EQ(wr.bytes_written(), 8192u);
  ExpectBytes("blk", 8192, 8);
}

TEST_F(SharedMemoryRpcTest, ArenasOfExitedClientsAreReaped) {
  // A "client" that holds an arena with a ring and dies without detaching:
  // a child that only sleeps (no gRPC after fork), the parent attaching
  // its descriptor for it.
  const int child_fd = ::memfd_create("child", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(child_fd, 0);
  const uint64_t size = shared_memory::kDataOffset + (1 << 20);
  ASSERT_EQ(::ftruncate(child_fd, size), 0);
  ASSERT_EQ(::fcntl(child_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  char* arena = static_cast<char*>(
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, child_fd, 0));
  ASSERT_NE(arena, MAP_FAILED);
  std::memcpy(arena, "child-token-0123", 16);
  shared_memory::FormatRing(arena);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  v1::AttachSharedMemoryRequest req;
  req.set_pid(child);
  req.set_fd(child_fd);
  req.set_size_bytes(size);
  req.set_token("child-token-0123");
  req.set_ring(true);
  v1::AttachSharedMemoryResponse resp;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->AttachSharedMemory(&c1, req, &resp).ok());
  EXPECT_TRUE(resp.ring());
  auto before = client_->Status();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->shared_memory_segments(), 1u);
  EXPECT_EQ(before->shared_memory_rings(), 1u);

  ::kill(child, SIGKILL);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  // The next attach reaps the exited client's arena and its ring.
  Seal();
  uint64_t id = 0;
  ASSERT_TRUE(Attach("token-0123456789", &id).ok());
  auto after = client_->Status();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->shared_memory_segments(), 1u);
  EXPECT_EQ(after->shared_memory_rings(), 0u) << "the parent asked for none";
  ::munmap(arena, size);
  ::close(child_fd);
}

}  // namespace
}  // namespace tensorpager::testing
