// The ring's two halves against each other (storage/shared_memory): what
// a RingClient posts, a RingServer decodes field for field, and what the
// server's handler answers, the client reads back. One process, one
// shared anonymous mapping standing in for the client's segment.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "storage/shared_memory/ring_client.h"
#include "storage/shared_memory/ring_layout.h"
#include "storage/shared_memory/ring_server.h"

namespace tensorpager::shared_memory {
namespace {

constexpr uint64_t kSegmentBytes = kDataOffset + 16 * 4096;

class RingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    void* p = ::mmap(nullptr, kSegmentBytes, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    mapping_ =
        std::shared_ptr<void>(p, [](void* q) { ::munmap(q, kSegmentBytes); });
    base_ = static_cast<std::byte*>(p);
    client_ = std::make_unique<RingClient>(base_);
  }

  // Serves the ring with a handler that records what it was given.
  void Serve(RingServer::Handler handler) {
    absl::StatusOr<std::unique_ptr<RingServer>> server =
        RingServer::Start(mapping_, kSegmentBytes, std::move(handler));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_->Reset(/*served=*/true);
  }

  std::shared_ptr<void> mapping_;
  std::byte* base_ = nullptr;
  std::unique_ptr<RingClient> client_;
  std::unique_ptr<RingServer> server_;  // stops before the mapping goes
};

TEST_F(RingTest, ClientFormatsTheHeaderTheServerChecks) {
  const auto* header = reinterpret_cast<const RingHeader*>(base_ + kRingOffset);
  EXPECT_EQ(header->magic, kMagic);
  EXPECT_EQ(header->slots, kSlots);
  std::memset(base_ + kRingOffset, 0, sizeof(RingHeader));
  absl::StatusOr<std::unique_ptr<RingServer>> refused =
      RingServer::Start(mapping_, kSegmentBytes,
                        [](const RingRequest&, absl::Span<std::byte>,
                           absl::Span<std::byte>) { return RingCompletion{}; });
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
}

TEST_F(RingTest, WriteRequestCrossesBothHalvesIntact) {
  std::mutex mu;
  std::optional<RingRequest> seen;
  std::string bytes_seen;
  Serve([&](const RingRequest& request, absl::Span<std::byte> data,
            absl::Span<std::byte>) {
    std::lock_guard<std::mutex> lock(mu);
    seen = request;
    bytes_seen.assign(reinterpret_cast<const char*>(data.data()), data.size());
    RingCompletion done;
    done.length = data.size();
    done.durable = true;
    done.info = "serialized-info";
    return done;
  });
  std::memcpy(base_ + kDataOffset + 4096, "payload!", 8);
  RingRequest request;
  request.op = kWrite;
  request.ns = "team";
  request.id = std::string(kMaxIdBytes, 'x');
  request.offset = 12;
  request.durable = false;
  request.data_offset = kDataOffset + 4096;
  request.data_length = 8;
  std::optional<RingCompletion> done =
      client_->Call(request, absl::Seconds(30));
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->status.ok()) << done->status;
  EXPECT_EQ(done->length, 8u);
  EXPECT_TRUE(done->durable);
  EXPECT_FALSE(done->hit);
  EXPECT_EQ(done->info, "serialized-info");

  std::lock_guard<std::mutex> lock(mu);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->op, kWrite);
  EXPECT_EQ(seen->ns, "team");
  EXPECT_EQ(seen->id, request.id);
  EXPECT_EQ(seen->offset, 12u);
  EXPECT_EQ(seen->length, 0u);
  EXPECT_EQ(seen->durable, std::optional<bool>(false));
  EXPECT_EQ(seen->data_offset, request.data_offset);
  EXPECT_EQ(seen->data_length, 8u);
  EXPECT_EQ(bytes_seen, "payload!");
}

TEST_F(RingTest, ErrorsAndReadResultsComeBackAsAnswered) {
  Serve([](const RingRequest& request, absl::Span<std::byte> data,
           absl::Span<std::byte>) {
    RingCompletion done;
    if (request.id == "missing") {
      // Longer than the slot's message field: cut, not overrun.
      done.status = absl::NotFoundError(std::string(2 * kMaxMessageBytes, 'm'));
      return done;
    }
    std::memcpy(data.data(), "read", 4);
    done.length = 4;
    done.hit = true;
    return done;
  });
  RingRequest read;
  read.op = kRead;
  read.id = "present";
  read.data_offset = kDataOffset;
  read.data_length = 4096;
  std::optional<RingCompletion> done = client_->Call(read, absl::Seconds(30));
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->status.ok()) << done->status;
  EXPECT_TRUE(done->hit);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(base_ + kDataOffset), 4),
            "read");

  read.id = "missing";
  done = client_->Call(read, absl::Seconds(30));
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(absl::IsNotFound(done->status));
  EXPECT_EQ(done->status.message(), std::string(kMaxMessageBytes, 'm'));

  // The server's decoder refuses what the handler must never see.
  read.id = "present";
  read.data_offset = kDataOffset - 4096;  // inside the ring
  done = client_->Call(read, absl::Seconds(30));
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(absl::IsInvalidArgument(done->status)) << done->status;
  read.data_offset = kDataOffset;
  read.op = 7;
  done = client_->Call(read, absl::Seconds(30));
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->status.message(), "ring request op 7 is unknown");
}

TEST_F(RingTest, ClientDeclinesWhatTheRingCannotCarry) {
  RingRequest request;
  request.op = kRead;
  request.id = "block";
  request.data_offset = kDataOffset;
  request.data_length = 4096;
  // Not served (yet): the RPCs take it.
  EXPECT_FALSE(client_->Call(request, absl::Seconds(1)).has_value());
  Serve([](const RingRequest&, absl::Span<std::byte>, absl::Span<std::byte>) {
    return RingCompletion{};
  });
  request.id = std::string(kMaxIdBytes + 1, 'x');
  EXPECT_FALSE(client_->Call(request, absl::Seconds(1)).has_value());
  request.ns = std::string(kMaxNamespaceBytes + 1, 'n');
  request.id = "block";
  EXPECT_FALSE(client_->Call(request, absl::Seconds(1)).has_value());
}

TEST(RingCodecTest, DecodeClampsLengthsAndChecksTheDataArea) {
  auto slot = std::make_unique<RingSlot>();
  std::memset(slot.get(), 0, sizeof(RingSlot));
  RingRequest request;
  request.op = kWrite;
  request.ns = "ns";
  request.id = "id";
  request.durable = true;
  request.data_offset = kDataOffset;
  request.data_length = 4096;
  EncodeRequest(request, *slot);
  absl::StatusOr<RingRequest> decoded =
      DecodeRequest(*slot, kDataOffset + 4096);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->durable, std::optional<bool>(true));
  // One byte past the segment's end.
  EXPECT_TRUE(absl::IsInvalidArgument(
      DecodeRequest(*slot, kDataOffset + 4095).status()));
  // A length the client scribbled past its field is clamped.
  slot->id_bytes = 100000;
  decoded = DecodeRequest(*slot, kDataOffset + 4096);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->id.size(), kMaxIdBytes);
}

}  // namespace
}  // namespace tensorpager::shared_memory
