// The SDK lends a put's bytes to gRPC (PutBlocksLent) and the server reads
// them where gRPC received them (PutBlocksWire): what one frames, the
// other and protobuf must read alike.
#include "server/put_blocks_wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "client_sdk/src/put_blocks_request.h"

namespace tensorpager {
namespace {

std::string Gather(const server::Pieces& pieces) {
  std::string out;
  for (const auto& p : pieces) {
    out.append(reinterpret_cast<const char*>(p.data()), p.size());
  }
  return out;
}

absl::Span<const std::byte> Bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// The ByteBuffer's bytes as one string (what a protobuf peer would read).
std::string Flat(grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

TEST(PutBlocksWireTest, FramesEveryFieldTheRequestHas) {
  EXPECT_EQ(v1::PutBlocksRequest::descriptor()->field_count(), 3);
  EXPECT_EQ(v1::PutBlock::descriptor()->FindFieldByName("data")->number(), 10);
}

TEST(PutBlocksWireTest, LentBytesArriveAsPiecesOfEachBlock) {
  v1::PutBlocksRequest head;
  head.set_namespace_("ns");
  head.set_durable(false);
  for (const char* id : {"a", "b", "c"}) {
    v1::PutBlock* b = head.add_blocks();
    b->set_id(id);
    b->set_region_type(v1::KV_CACHE);
    b->set_dtype(v1::BFLOAT16);
    b->add_shape(3);
    (*b->mutable_labels())["k"] = "v";
  }
  const std::string big(300000, 'x'), small = "hi", none;
  const std::vector<absl::Span<const std::byte>> sources = {
      Bytes(big), Bytes(small), Bytes(none)};
  internal::SliceLatch latch;
  grpc::ByteBuffer buffer;
  {
    bool own = false;
    ASSERT_TRUE(
        grpc::SerializationTraits<internal::PutBlocksLent>::Serialize(
            internal::PutBlocksLent{&head, sources, &latch}, &buffer, &own)
            .ok());
  }
  // A protobuf peer reads the same request, bytes in place.
  v1::PutBlocksRequest expected = head;
  expected.mutable_blocks(0)->set_data(big);
  expected.mutable_blocks(1)->set_data(small);
  expected.mutable_blocks(2)->set_data("");
  v1::PutBlocksRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(Flat(buffer)));
  EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());

  server::PutBlocksWire wire;
  ASSERT_TRUE(grpc::SerializationTraits<server::PutBlocksWire>::Deserialize(
                  &buffer, &wire)
                  .ok());
  ASSERT_EQ(wire.request.blocks_size(), 3);
  ASSERT_EQ(wire.data.size(), 3u);
  EXPECT_EQ(Gather(wire.data[0]), big);
  EXPECT_EQ(Gather(wire.data[1]), small);
  EXPECT_EQ(Gather(wire.data[2]), "");
  EXPECT_EQ(wire.request.namespace_(), "ns");
  EXPECT_TRUE(wire.request.has_durable());
  for (int i = 0; i < 3; ++i) {
    const v1::PutBlock& b = wire.request.blocks(i);
    EXPECT_EQ(b.source_case(), v1::PutBlock::kData);
    EXPECT_TRUE(b.data().empty());
    EXPECT_EQ(b.dtype(), v1::BFLOAT16);
    EXPECT_EQ(b.labels().at("k"), "v");
  }
  // The pieces are the lent memory itself; once the received message is
  // dropped, every lent slice is released.
  EXPECT_EQ(wire.data[0][0].data(), sources[0].data());
  wire = server::PutBlocksWire{};
  latch.Wait();
}

TEST(PutBlocksWireTest, AFieldLaterInTheBlockWinsAsInProtobuf) {
  // One block whose message sets data, then shared: the oneof's last
  // field wins, for protobuf and for the wire reader alike.
  v1::PutBlock data;
  data.set_id("s");
  data.set_data("ignored");
  v1::PutBlock shared;
  shared.mutable_shared()->set_segment_id(7);
  const std::string body =
      data.SerializeAsString() + shared.SerializeAsString();
  std::string framed;
  framed.push_back(static_cast<char>((2 << 3) | 2));  // blocks, length
  framed.push_back(static_cast<char>(body.size()));
  framed += body;
  v1::PutBlocksRequest expected;
  ASSERT_TRUE(expected.ParseFromString(framed));
  ASSERT_TRUE(expected.blocks(0).has_shared());

  grpc::Slice slice(framed);
  grpc::ByteBuffer buffer(&slice, 1);
  server::PutBlocksWire wire;
  ASSERT_TRUE(server::ParsePutBlocksWire(&buffer, &wire).ok());
  ASSERT_EQ(wire.request.blocks_size(), 1);
  EXPECT_EQ(wire.request.blocks(0).SerializeAsString(),
            expected.blocks(0).SerializeAsString());
  EXPECT_TRUE(wire.data[0].empty());
}

TEST(PutBlocksWireTest, TruncatedRequestsAreInvalidArguments) {
  v1::PutBlocksRequest request;
  request.set_namespace_("ns");
  request.add_blocks()->set_data(std::string(1000, 'd'));
  const std::string whole = request.SerializeAsString();
  for (size_t cut :
       {size_t{1}, size_t{5}, whole.size() / 2, whole.size() - 1}) {
    grpc::Slice slice(whole.substr(0, cut));
    grpc::ByteBuffer buffer(&slice, 1);
    server::PutBlocksWire wire;
    EXPECT_EQ(server::ParsePutBlocksWire(&buffer, &wire).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << "cut at " << cut;
  }
}

}  // namespace
}  // namespace tensorpager
