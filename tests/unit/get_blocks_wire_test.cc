// GetBlocksWire frames a reply around the store's snapshots; whatever it
// frames must parse as the tensorpager.v1 GetBlocksResponse it stands for.
#include "server/get_blocks_wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace tensorpager::server {
namespace {

std::shared_ptr<const base::AlignedBuffer> Snapshot(const std::string& bytes) {
  auto buffer = std::make_shared<base::AlignedBuffer>(bytes.size());
  std::memcpy(buffer->data(), bytes.data(), bytes.size());
  return buffer;
}

v1::GetBlocksResponse Parse(grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string wire;
  for (const grpc::Slice& s : slices) {
    wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  v1::GetBlocksResponse parsed;
  EXPECT_TRUE(parsed.ParseFromString(wire));
  return parsed;
}

TEST(GetBlocksWireTest, FramesEveryFieldTheResponseHas) {
  // The framing writes results and failed by number; a field added to the
  // response would be lost without a change there.
  EXPECT_EQ(v1::GetBlocksResponse::descriptor()->field_count(), 2);
  EXPECT_EQ(v1::GetResult::descriptor()->FindFieldByName("data")->number(), 9);
}

TEST(GetBlocksWireTest, ParsesAsTheResponseWithEachBlocksBytes) {
  const std::string big(70000, 'b');
  std::string framed = "xx" + std::string(300, 'm') + "yy";
  GetBlocksWire wire;
  auto add = [&](int code, uint64_t size) {
    v1::GetResult* r = wire.response.add_results();
    r->mutable_status()->set_code(code);
    r->set_size_bytes(size);
    r->set_dtype(v1::BFLOAT16);
    r->add_shape(2);
    r->add_shape(-1);
    (*r->mutable_labels())["kind"] = "torch";
    r->set_version(7);
  };
  add(0, big.size());
  wire.bytes.blocks.push_back({Snapshot(big), 0, big.size()});
  add(5, 0);  // failed: no bytes
  wire.bytes.blocks.push_back({});
  add(0, 300);  // a range inside its snapshot
  wire.bytes.blocks.push_back({Snapshot(framed), 2, 300});
  add(0, 0);  // an empty block
  wire.bytes.blocks.push_back({Snapshot(""), 0, 0});
  wire.response.set_failed(1);

  grpc::ByteBuffer buffer;
  bool own = false;
  ASSERT_TRUE(
      grpc::SerializationTraits<GetBlocksWire>::Serialize(wire, &buffer, &own)
          .ok());
  EXPECT_TRUE(own);
  const v1::GetBlocksResponse parsed = Parse(buffer);

  v1::GetBlocksResponse expected = wire.response;
  expected.mutable_results(0)->set_data(big);
  expected.mutable_results(2)->set_data(std::string(300, 'm'));
  EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(parsed.failed(), 1u);
  EXPECT_EQ(parsed.results(0).data(), big);
  EXPECT_EQ(parsed.results(2).data(), std::string(300, 'm'));
}

TEST(GetBlocksWireTest, HoldsTheSnapshotUntilTheBufferIsDropped) {
  GetBlocksWire wire;
  wire.response.add_results()->set_size_bytes(5);
  auto snapshot = Snapshot("hello");
  std::weak_ptr<const base::AlignedBuffer> watch = snapshot;
  wire.bytes.blocks.push_back({std::move(snapshot), 0, 5});
  auto buffer = std::make_unique<grpc::ByteBuffer>();
  ASSERT_TRUE(SerializeGetBlocksWire(wire, buffer.get()).ok());
  wire = GetBlocksWire{};  // the reply's own reference is gone
  ASSERT_FALSE(watch.expired());
  EXPECT_EQ(Parse(*buffer).results(0).data(), "hello");
  buffer.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(GetBlocksWireTest, RefusesBytesForOtherResults) {
  GetBlocksWire wire;
  wire.response.add_results();
  wire.bytes.blocks.resize(2);
  grpc::ByteBuffer buffer;
  EXPECT_EQ(SerializeGetBlocksWire(wire, &buffer).error_code(),
            grpc::StatusCode::INTERNAL);
}

}  // namespace
}  // namespace tensorpager::server
