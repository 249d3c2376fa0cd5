// A hostile client of the batch calls (Lookup, PutBlocks, GetBlocks,
// UnregisterBlocks) against a real tensorpagerd, over raw stubs and a raw
// request ring: calls over the limits fail whole and change nothing; bad
// blocks fail alone; ranges of another segment or with a wrong capability
// reach nothing; garbage in a ring batch is refused and the server serves
// on.
#include <fcntl.h>
#include <grpcpp/impl/client_unary_call.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/shared_memory/ring_client.h"
#include "storage/shared_memory/ring_layout.h"
#include "tests/integration/abuse_fixture.h"

namespace tensorpager::testing {
namespace {

using ::testing::HasSubstr;
using Stub = v1::TensorPager::Stub;

v1::PutBlock Inline(const std::string& id, const std::string& data) {
  v1::PutBlock b;
  b.set_id(id);
  b.set_data(data);
  return b;
}

class BatchAbuseTest : public AbuseTest {
 protected:
  bool Registered(const std::string& id) {
    v1::GetBlockRequest req;
    req.set_id(id);
    v1::GetBlockResponse resp;
    return Call(&Stub::GetBlock, req, &resp).ok();
  }
};

TEST_F(BatchAbuseTest, CallsOverTheLimitsFailWholeAndChangeNothing) {
  Start({"--max_batch_blocks=8", "--max_batch_bytes=64KiB"});
  v1::PutBlocksRequest put;
  for (int i = 0; i < 9; ++i) {
    *put.add_blocks() = Inline(absl::StrCat("p", i), "x");
  }
  v1::PutBlocksResponse put_resp;
  grpc::Status s = Call(&Stub::PutBlocks, put, &put_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_batch_blocks"));
  EXPECT_FALSE(Registered("p0"));

  v1::PutBlocksRequest heavy;
  *heavy.add_blocks() = Inline("h0", std::string(40 << 10, 'a'));
  *heavy.add_blocks() = Inline("h1", std::string(40 << 10, 'b'));
  s = Call(&Stub::PutBlocks, heavy, &put_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_batch_bytes"));
  EXPECT_FALSE(Registered("h0"));

  // Lengths whose sum wraps around 2^64 are still over the limit.
  v1::PutBlocksRequest wrapping;
  for (int i = 0; i < 2; ++i) {
    v1::PutBlock* b = wrapping.add_blocks();
    b->set_id(absl::StrCat("w", i));
    b->mutable_shared()->set_length(1ull << 63);
  }
  s = Call(&Stub::PutBlocks, wrapping, &put_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_batch_bytes"));

  v1::LookupRequest look;
  v1::GetBlocksRequest get;
  v1::UnregisterBlocksRequest rm;
  for (int i = 0; i < 9; ++i) {
    look.add_ids(absl::StrCat("p", i));
    get.add_ids(absl::StrCat("p", i));
    rm.add_ids(absl::StrCat("p", i));
  }
  v1::LookupResponse look_resp;
  EXPECT_EQ(Call(&Stub::Lookup, look, &look_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetBlocksResponse get_resp;
  EXPECT_EQ(Call(&Stub::GetBlocks, get, &get_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::UnregisterBlocksResponse rm_resp;
  EXPECT_EQ(Call(&Stub::UnregisterBlocks, rm, &rm_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // Blocks that hold more than a call may move, asked for together.
  put.Clear();
  *put.add_blocks() = Inline("g0", std::string(40 << 10, 'c'));
  ASSERT_TRUE(Call(&Stub::PutBlocks, put, &put_resp).ok());
  put.Clear();
  *put.add_blocks() = Inline("g1", std::string(40 << 10, 'd'));
  ASSERT_TRUE(Call(&Stub::PutBlocks, put, &put_resp).ok());
  get.Clear();
  get.add_ids("g0");
  get.add_ids("g1");
  s = Call(&Stub::GetBlocks, get, &get_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_batch_bytes"));

  v1::StatusResponse status;
  ASSERT_TRUE(Call(&Stub::Status, v1::StatusRequest(), &status).ok());
  EXPECT_EQ(status.max_batch_blocks(), 8u);
  EXPECT_EQ(status.max_batch_bytes(), 64u << 10);
  EXPECT_EQ(status.blocks_registered(), 2u);
}

// PutBlocks and GetBlocks read their messages off gRPC's slices
// (put_blocks_wire.h); bytes that are not their message are refused, and
// the server goes on serving.
TEST_F(BatchAbuseTest, MessagesThatDoNotParseAreInvalidArguments) {
  Start({});
  auto channel = grpc::CreateChannel(server_->target(),
                                     grpc::InsecureChannelCredentials());
  // A block of 255 bytes with 3 in the message; a data field of 16 bytes
  // inside a block of 5; a tag that is no tag.
  const std::string truncated_block(
      "\x12\xff\x01"
      "abc");
  const std::string data_past_its_block(
      "\x12\x05\x52\x10"
      "ab");
  const std::string bad_tag("\xff\xff\xff");
  for (const char* method : {"/tensorpager.v1.TensorPager/PutBlocks",
                             "/tensorpager.v1.TensorPager/GetBlocks"}) {
    for (const std::string& raw :
         {truncated_block, data_past_its_block, bad_tag}) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
      grpc::Slice slice(raw);
      grpc::ByteBuffer request(&slice, 1);
      grpc::ByteBuffer response;
      const grpc::Status s =
          grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
              channel.get(),
              grpc::internal::RpcMethod(
                  method, grpc::internal::RpcMethod::NORMAL_RPC, channel),
              &ctx, request, &response);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << method << ": " << s.error_message();
      EXPECT_THAT(s.error_message(), testing::HasSubstr("does not parse"));
    }
  }
  v1::PutBlocksRequest put;
  v1::PutBlock* b = put.add_blocks();
  b->set_id("after");
  b->set_data("still served");
  v1::PutBlocksResponse put_resp;
  ASSERT_TRUE(Call(&Stub::PutBlocks, put, &put_resp).ok());
  EXPECT_EQ(put_resp.failed(), 0u);
  v1::GetBlocksRequest get;
  get.add_ids("after");
  v1::GetBlocksResponse get_resp;
  ASSERT_TRUE(Call(&Stub::GetBlocks, get, &get_resp).ok());
  EXPECT_EQ(get_resp.results(0).data(), "still served");
}

TEST_F(BatchAbuseTest, BadRequestsAreRefusedPrecisely) {
  Start({});
  v1::LookupRequest look;
  look.set_namespace_("bad\tns");
  look.add_ids("a");
  v1::LookupResponse look_resp;
  EXPECT_EQ(Call(&Stub::Lookup, look, &look_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  look.clear_namespace_();
  look.add_ids("");
  grpc::Status s = Call(&Stub::Lookup, look, &look_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("ids[1]"));

  v1::GetBlocksRequest get;
  get.add_ids("a");
  get.add_ids("b");
  get.add_destinations();
  v1::GetBlocksResponse get_resp;
  s = Call(&Stub::GetBlocks, get, &get_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("destinations"));

  v1::UnregisterBlocksRequest rm;
  v1::UnregisterBlocksResponse rm_resp;
  s = Call(&Stub::UnregisterBlocks, rm, &rm_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("id_prefix"));
  rm.add_ids("a");
  rm.set_id_prefix("a");
  EXPECT_EQ(Call(&Stub::UnregisterBlocks, rm, &rm_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // Blocks with no bytes, the wrong number of bytes, or bad attributes
  // fail alone; the good one goes in; nothing else is registered.
  v1::PutBlocksRequest put;
  put.add_blocks()->set_id("nosource");
  v1::PutBlock wrong = Inline("wrongsize", "abc");
  wrong.set_size_bytes(4);
  *put.add_blocks() = wrong;
  v1::PutBlock shaped = Inline("badshape", "abcd");
  shaped.set_dtype(v1::FLOAT32);
  for (int i = 0; i < 40; ++i) shaped.add_shape(1);
  *put.add_blocks() = shaped;
  *put.add_blocks() = Inline("good", "abcd");
  v1::PutBlocksResponse put_resp;
  ASSERT_TRUE(Call(&Stub::PutBlocks, put, &put_resp).ok());
  ASSERT_EQ(put_resp.results_size(), 4);
  EXPECT_EQ(put_resp.failed(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(put_resp.results(i).status().code(),
              static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT))
        << i << ": " << put_resp.results(i).status().message();
  }
  EXPECT_EQ(put_resp.results(3).status().code(), 0);
  EXPECT_TRUE(put_resp.results(3).created());
  EXPECT_FALSE(Registered("nosource"));
  EXPECT_FALSE(Registered("wrongsize"));
  EXPECT_FALSE(Registered("badshape"));
  ExpectServing();
}

TEST_F(BatchAbuseTest, InlineBytesCountAgainstTheInflightBudget) {
  Start({"--max_inflight_bytes=1MiB", "--max_batch_bytes=8MiB"});
  v1::PutBlocksRequest put;
  *put.add_blocks() = Inline("big", std::string(2 << 20, 'z'));
  v1::PutBlocksResponse resp;
  grpc::Status s = Call(&Stub::PutBlocks, put, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max_inflight_bytes"));
  EXPECT_FALSE(Registered("big"));
  ExpectServing();
}

// The ring of a segment this test attached itself.
class RingBatchAbuseTest : public BatchAbuseTest {
 protected:
  void SetUp() override {
    Start({});
    size_ = 2 << 20;
    fd_ = ::memfd_create("batch-abuse", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_GE(fd_, 0);
    ASSERT_EQ(::ftruncate(fd_, size_), 0);
    base_ = static_cast<std::byte*>(
        ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    ASSERT_NE(base_, MAP_FAILED);
    const std::string token = "batch-abuse-token";
    std::memcpy(base_, token.data(), token.size());
    ring_ = std::make_unique<shared_memory::RingClient>(base_);
    ASSERT_EQ(::fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    v1::AttachSharedMemoryRequest req;
    req.set_pid(::getpid());
    req.set_fd(fd_);
    req.set_size_bytes(size_);
    req.set_token(token);
    req.set_ring(true);
    v1::AttachSharedMemoryResponse resp;
    grpc::Status s = Call(&Stub::AttachSharedMemory, req, &resp);
    if (!s.ok() || !resp.ring()) {
      GTEST_SKIP() << "no served ring here: " << s.error_message();
    }
    ring_->Reset(/*served=*/true);
    segment_id_ = resp.segment_id();
    capability_ = resp.capability();
  }
  void TearDown() override {
    ring_.reset();
    if (base_ != nullptr) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  // Posts a batch op whose request is `request` (at the data area's start)
  // and whose reply area has `reply_bytes`.
  shared_memory::RingCompletion Post(uint32_t op, const std::string& request,
                                     uint64_t reply_bytes) {
    const uint64_t at = shared_memory::kDataOffset;
    std::memcpy(base_ + at, request.data(), request.size());
    shared_memory::RingRequest call;
    call.op = op;
    call.data_offset = at;
    call.data_length = request.size();
    call.offset = at + 256 * 1024;
    call.length = reply_bytes;
    std::optional<shared_memory::RingCompletion> done =
        ring_->Call(call, absl::Seconds(30));
    EXPECT_TRUE(done.has_value());
    return done ? *done : shared_memory::RingCompletion{};
  }

  int fd_ = -1;
  uint64_t segment_id_ = 0;
  std::string capability_;
  std::byte* base_ = nullptr;
  uint64_t size_ = 0;
  std::unique_ptr<shared_memory::RingClient> ring_;
};

TEST_F(RingBatchAbuseTest, GarbageAndOutOfSegmentRangesAreRefused) {
  // Not a PutBlocksRequest.
  shared_memory::RingCompletion c =
      Post(shared_memory::kPutBlocks, std::string(100, '\xff'), 4096);
  EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument) << c.status;

  // A put whose source lies outside the segment's data area, one inside
  // the ring's slots, and a good one.
  v1::PutBlocksRequest put;
  v1::PutBlock* outside = put.add_blocks();
  outside->set_id("outside");
  outside->mutable_shared()->set_offset(size_ - 100);
  outside->mutable_shared()->set_length(4096);
  v1::PutBlock* in_ring = put.add_blocks();
  in_ring->set_id("in-ring");
  in_ring->mutable_shared()->set_offset(shared_memory::kSlotsOffset);
  in_ring->mutable_shared()->set_length(4096);
  v1::PutBlock* good = put.add_blocks();
  good->set_id("good");
  good->mutable_shared()->set_offset(size_ - 8192);
  good->mutable_shared()->set_length(4096);
  c = Post(shared_memory::kPutBlocks, put.SerializeAsString(), 4096);
  ASSERT_TRUE(c.status.ok()) << c.status;
  v1::PutBlocksResponse reply;
  ASSERT_TRUE(
      reply.ParseFromArray(base_ + shared_memory::kDataOffset + 256 * 1024,
                           static_cast<int>(c.length)));
  ASSERT_EQ(reply.results_size(), 3);
  EXPECT_EQ(reply.results(0).status().code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(reply.results(1).status().code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(reply.results(2).status().code(), 0)
      << reply.results(2).status().message();
  EXPECT_FALSE(Registered("outside"));
  EXPECT_FALSE(Registered("in-ring"));
  EXPECT_TRUE(Registered("good"));

  // A reply area too small for the reply: refused with how much it needs.
  v1::LookupRequest look;
  for (int i = 0; i < 100; ++i) look.add_ids(absl::StrCat("id", i));
  c = Post(shared_memory::kLookup, look.SerializeAsString(), 16);
  EXPECT_EQ(c.status.code(), absl::StatusCode::kResourceExhausted) << c.status;
  ExpectServing();
}

TEST_F(RingBatchAbuseTest, RangesOfAnotherSegmentOrCapabilityReachNothing) {
  // Through the RPCs a range names its segment: a wrong capability or an
  // unknown segment fails the whole call alike, before anything changed.
  for (const auto& [id, capability] :
       {std::make_pair(segment_id_, std::string(16, 'x')),
        std::make_pair(segment_id_ + 100, capability_)}) {
    v1::PutBlocksRequest put;
    *put.add_blocks() = Inline("inline", "abcd");
    v1::PutBlock* b = put.add_blocks();
    b->set_id("stolen");
    b->mutable_shared()->set_segment_id(id);
    b->mutable_shared()->set_capability(capability);
    b->mutable_shared()->set_offset(shared_memory::kDataOffset);
    b->mutable_shared()->set_length(4096);
    v1::PutBlocksResponse resp;
    grpc::Status s = Call(&Stub::PutBlocks, put, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_FALSE(Registered("inline"));
    EXPECT_FALSE(Registered("stolen"));

    v1::GetBlocksRequest get;
    get.add_ids("inline");
    v1::SharedRange* d = get.add_destinations();
    d->set_segment_id(id);
    d->set_capability(capability);
    d->set_offset(shared_memory::kDataOffset);
    d->set_length(4096);
    v1::GetBlocksResponse got;
    EXPECT_EQ(Call(&Stub::GetBlocks, get, &got).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  // With the right capability the same call works.
  v1::PutBlocksRequest put;
  v1::PutBlock* b = put.add_blocks();
  b->set_id("mine");
  b->mutable_shared()->set_segment_id(segment_id_);
  b->mutable_shared()->set_capability(capability_);
  b->mutable_shared()->set_offset(shared_memory::kDataOffset);
  b->mutable_shared()->set_length(4096);
  v1::PutBlocksResponse resp;
  ASSERT_TRUE(Call(&Stub::PutBlocks, put, &resp).ok());
  EXPECT_EQ(resp.results(0).status().code(), 0);
  EXPECT_TRUE(Registered("mine"));
}

}  // namespace
}  // namespace tensorpager::testing
