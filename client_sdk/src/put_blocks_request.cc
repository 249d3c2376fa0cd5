#include "client_sdk/src/put_blocks_request.h"

#include <string>
#include <vector>

#include "protos/slice_reader.h"

namespace tensorpager::internal {
namespace {

using wire::AppendVarint;
using wire::kLengthDelimited;
using wire::kVarint;

// PutBlocksRequest and PutBlock field numbers (tensorpager.proto); the
// unit test checks that these are all the request's fields.
constexpr uint64_t kRequestNamespace = 1;
constexpr uint64_t kRequestBlocks = 2;
constexpr uint64_t kRequestDurable = 3;
constexpr uint64_t kBlockData = 10;

uint64_t VarintBytes(uint64_t v) {
  uint64_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

}  // namespace

grpc::Status SerializePutBlocksLent(const PutBlocksLent& put,
                                    grpc::ByteBuffer* out) {
  const v1::PutBlocksRequest& request = *put.request;
  if (static_cast<size_t>(request.blocks_size()) != put.sources.size()) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "PutBlocks: a source per block");
  }
  // The framing of every block goes into one string, cut where a block's
  // bytes follow; the lent slices lie between the cuts.
  std::string heads;
  if (!request.namespace_().empty()) {
    AppendVarint(&heads, (kRequestNamespace << 3) | kLengthDelimited);
    AppendVarint(&heads, request.namespace_().size());
    heads += request.namespace_();
  }
  if (request.has_durable()) {
    AppendVarint(&heads, (kRequestDurable << 3) | kVarint);
    AppendVarint(&heads, request.durable() ? 1 : 0);
  }
  std::vector<size_t> cuts;
  cuts.reserve(put.sources.size());
  for (int i = 0; i < request.blocks_size(); ++i) {
    const v1::PutBlock& block = request.blocks(i);
    const uint64_t n = put.sources[i].size();
    const uint64_t body = block.ByteSizeLong();
    // An empty data field is still sent: it says where the bytes travel.
    const uint64_t data_field = 1 + VarintBytes(n) + n;
    AppendVarint(&heads, (kRequestBlocks << 3) | kLengthDelimited);
    AppendVarint(&heads, body + data_field);
    const size_t at = heads.size();
    heads.resize(at + body);
    block.SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(heads.data() + at));
    AppendVarint(&heads, (kBlockData << 3) | kLengthDelimited);
    AppendVarint(&heads, n);
    cuts.push_back(heads.size());
  }
  const grpc::Slice all(heads);
  std::vector<grpc::Slice> slices;
  slices.reserve(2 * cuts.size() + 1);
  size_t from = 0;
  for (size_t i = 0; i < cuts.size(); ++i) {
    slices.push_back(all.sub(from, cuts[i]));
    from = cuts[i];
    const absl::Span<const std::byte> source = put.sources[i];
    if (!source.empty()) {
      slices.push_back(LendSlice(
          {reinterpret_cast<const char*>(source.data()), source.size()},
          put.latch));
    }
  }
  if (heads.size() > from) slices.push_back(all.sub(from, heads.size()));
  grpc::ByteBuffer buffer(slices.data(), slices.size());
  out->Swap(&buffer);
  return grpc::Status::OK;
}

}  // namespace tensorpager::internal
