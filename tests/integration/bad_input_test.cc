// One test per class of bad input: each gets its precise status code and
// leaves the server's state exactly as it was.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

class BadInputTest : public PagerTest {
 protected:
  void SetUp() override {
    StartServer({"--ram_budget=32MiB", "--max_block_size=16MiB"});
    Put("existing", 100000, 1);
    Put("pinned", 4096, 2, /*pinned=*/true);
    ASSERT_TRUE(client_->SwapOut({"existing"}).ok());
    before_ = Snapshot();
  }

  void TearDown() override {
    if (HasFatalFailure()) return;
    // Nothing any bad request did may show in the server's state.
    EXPECT_EQ(Snapshot(), before_);
    ExpectBytes("existing", 100000, 1);
  }

  // Block counts, tiers and bytes, as text for a readable diff.
  std::string Snapshot() {
    auto st = client_->Status();
    EXPECT_TRUE(st.ok());
    std::string out = absl::StrCat(
        "registered=", st->blocks_registered(), " ram=", st->blocks_in_ram(),
        " disk=", st->blocks_on_disk(), " pinned=", st->blocks_pinned(),
        " ram_bytes=", st->ram().bytes(),
        " disk_used=", st->disk().used_bytes());
    v1::ListBlocksRequest req;
    req.set_all_namespaces(true);
    auto list = client_->List(req);
    EXPECT_TRUE(list.ok());
    for (const auto& b : list->blocks()) {
      absl::StrAppend(&out, "\n", b.namespace_(), "/", b.id(),
                      " tier=", b.tier(), " v=", b.version(),
                      " crc=", b.checksum(), " pinned=", b.pinned(),
                      " size=", b.size_bytes());
    }
    return out;
  }

  // A WriteBlock stream with messages exactly as given.
  grpc::Status RawWrite(const std::vector<v1::WriteBlockRequest>& msgs) {
    auto stub = v1::TensorPager::NewStub(client_->channel());
    grpc::ClientContext ctx;
    v1::WriteBlockResponse resp;
    auto writer = stub->WriteBlock(&ctx, &resp);
    for (const auto& m : msgs) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static v1::WriteBlockRequest Msg(const std::string& id, std::string data,
                                   uint64_t offset = 0, uint64_t total = 0) {
    v1::WriteBlockRequest m;
    m.set_id(id);
    m.set_offset(offset);
    m.set_total_bytes(total);
    m.set_data(std::move(data));
    return m;
  }

  absl::Status RegisterSized(const std::string& id, uint64_t size) {
    BlockSpec spec{id};
    spec.size_bytes = size;
    return client_->Register(spec).status();
  }

  std::string before_;
};

TEST_F(BadInputTest, DuplicateIdIsAlreadyExists) {
  auto s = RegisterSized("existing", 100000);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_NE(s.message().find("already registered"), std::string::npos);
}

TEST_F(BadInputTest, ZeroSizeIsInvalidArgument) {
  EXPECT_EQ(RegisterSized("zero", 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BadInputTest, SizeAboveMaximumIsInvalidArgument) {
  auto s = RegisterSized("huge", 16 * kMiB + 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("maximum block size"), std::string::npos) << s;
}

TEST_F(BadInputTest, BadIdsAreInvalidArgument) {
  EXPECT_EQ(RegisterSized("", 10).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterSized(std::string(257, 'a'), 10).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterSized("tab\there", 10).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterSized(std::string("nul\0id", 6), 10).code(),
            absl::StatusCode::kInvalidArgument);
  BlockSpec bad_ns{{std::string(65, 'n'), "x"}};
  bad_ns.size_bytes = 10;
  EXPECT_EQ(client_->Register(bad_ns).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BadInputTest, ShapeThatContradictsSizeIsInvalidArgument) {
  BlockSpec spec{"shaped"};
  spec.size_bytes = 100;
  spec.dtype = v1::FLOAT16;
  spec.shape = {10, 10};  // 200 bytes
  auto s = client_->Register(spec).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("describe 200 bytes"), std::string::npos) << s;
}

TEST_F(BadInputTest, UnknownRegionTypeIsInvalidArgument) {
  auto stub = v1::TensorPager::NewStub(client_->channel());
  grpc::ClientContext ctx;
  v1::RegisterBlockRequest req;
  req.set_id("weird");
  req.set_size_bytes(10);
  req.set_region_type(static_cast<v1::RegionType>(42));
  v1::RegisterBlockResponse resp;
  EXPECT_EQ(stub->RegisterBlock(&ctx, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BadInputTest, WriteToUnknownBlockIsNotFound) {
  auto s = client_->Write("nobody", std::string(10, 'x')).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
}

TEST_F(BadInputTest, WrongTotalSizeIsInvalidArgumentAndKeepsContents) {
  // Declares more than it sends (a truncated stream).
  EXPECT_EQ(RawWrite({Msg("existing", std::string(1000, 'x'), 0, 100000)})
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Sends more than the block holds.
  EXPECT_EQ(RawWrite({Msg("existing", std::string(1 << 20, 'x')),
                      Msg("", std::string(1000, 'y'))})
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Declares more than fits.
  EXPECT_EQ(
      RawWrite({Msg("existing", std::string(10, 'x'), 99995, 10)}).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  // Offset past the end.
  EXPECT_EQ(
      RawWrite({Msg("existing", std::string(1, 'x'), 100000)}).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BadInputTest, OversizedChunkIsInvalidArgument) {
  ASSERT_TRUE(RegisterSized("big", 4 * kMiB).ok());
  EXPECT_EQ(RawWrite({Msg("big", std::string(2 * kMiB, 'x'))}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(client_->Unregister("big").ok());
}

TEST_F(BadInputTest, FirstWriteMustCoverTheWholeBlock) {
  ASSERT_TRUE(RegisterSized("fresh", 4096).ok());
  auto s = client_->Write("fresh", std::string(100, 'x'), 0).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("first write"), std::string::npos) << s;
  ASSERT_TRUE(client_->Unregister("fresh").ok());
}

TEST_F(BadInputTest, StreamNamingAnotherBlockMidwayIsInvalidArgument) {
  EXPECT_EQ(RawWrite({Msg("existing", std::string(50000, 'x')),
                      Msg("pinned", std::string(50000, 'y'))})
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BadInputTest, EmptyWriteStreamIsInvalidArgument) {
  EXPECT_EQ(RawWrite({}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RawWrite({Msg("existing", "")}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BadInputTest, AccessErrors) {
  EXPECT_EQ(client_->Read("nobody").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Read("existing", 100001).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(client_->Read("existing", 99990, 11).status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(RegisterSized("unwritten", 10).ok());
  const std::string snapshot = Snapshot();
  auto s = client_->Read("unwritten").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(Snapshot(), snapshot);
  ASSERT_TRUE(client_->Unregister("unwritten").ok());
}

TEST_F(BadInputTest, SwapErrors) {
  auto stub = v1::TensorPager::NewStub(client_->channel());
  auto swap = [&](const v1::SwapRequest& req) {
    grpc::ClientContext ctx;
    v1::SwapResponse resp;
    return stub->Swap(&ctx, req, &resp).error_code();
  };
  v1::SwapRequest no_direction;
  no_direction.add_ids("existing");
  EXPECT_EQ(swap(no_direction), grpc::StatusCode::INVALID_ARGUMENT);
  v1::SwapRequest nothing;
  nothing.set_direction(v1::SWAP_OUT);
  EXPECT_EQ(swap(nothing), grpc::StatusCode::INVALID_ARGUMENT);
  v1::SwapRequest both;
  both.set_direction(v1::SWAP_OUT);
  both.add_ids("existing");
  both.set_target_bytes(10);
  EXPECT_EQ(swap(both), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(client_->SwapOut({"nobody"}).status().code(),
            absl::StatusCode::kNotFound);
  // The whole request fails before anything moves.
  EXPECT_EQ(client_->SwapIn({"existing", "nobody"}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->SwapOut({"pinned"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(BadInputTest, PinUnpinUnregisterGetOfUnknownBlockIsNotFound) {
  EXPECT_EQ(client_->Pin("nobody").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Unpin("nobody").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Unregister("nobody").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Get({"other", "existing"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BadInputTest, ListWithBadTokenOrFilterIsInvalidArgument) {
  v1::ListBlocksRequest bad_token;
  bad_token.set_page_token("%%%not-a-token");
  EXPECT_EQ(client_->List(bad_token).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::ListBlocksRequest bad_tier;
  bad_tier.set_tier(static_cast<v1::Tier>(99));
  EXPECT_EQ(client_->List(bad_tier).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BadInputTest, RamFullOfPinnedBlocksIsResourceExhausted) {
  BlockSpec spec{"too-much"};
  spec.size_bytes = 16 * kMiB;
  spec.pinned = true;
  ASSERT_TRUE(client_->Register(spec).ok());
  BlockSpec spec2{"too-much-2"};
  spec2.size_bytes = 16 * kMiB;
  spec2.pinned = true;
  ASSERT_TRUE(client_->Register(spec2).ok());
  ASSERT_TRUE(client_->Write("too-much", PatternBytes(16 * kMiB, 5)).ok());
  const std::string snapshot = Snapshot();
  auto s = client_->Write("too-much-2", PatternBytes(16 * kMiB, 6)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("pinned"), std::string::npos) << s;
  EXPECT_EQ(Snapshot(), snapshot);
  ASSERT_TRUE(client_->Unregister("too-much").ok());
  ASSERT_TRUE(client_->Unregister("too-much-2").ok());
}

}  // namespace
}  // namespace tensorpager::testing
