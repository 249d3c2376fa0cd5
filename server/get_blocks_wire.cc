#include "server/get_blocks_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protos/slice_reader.h"

namespace tensorpager::server {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;
using wire::AppendVarint;

// GetBlocksResponse and GetResult field numbers (tensorpager.proto); the
// unit test checks that these are all the response's fields.
constexpr int kResponseResults = 1;
constexpr int kResponseFailed = 2;
constexpr int kResultData = 9;

void AppendTag(std::string* out, int field, WireFormatLite::WireType type) {
  AppendVarint(out, WireFormatLite::MakeTag(field, type));
}

// What a data slice keeps alive: the snapshot. gRPC's C core owns the
// holder through the slice's destroy callback, so it is handed over as a
// raw pointer (released from a unique_ptr) and taken back there.
using Snapshot = std::shared_ptr<const base::AlignedBuffer>;

void DropSnapshot(void* holder) {
  std::unique_ptr<Snapshot>(static_cast<Snapshot*>(holder));
}

grpc::Slice SliceOf(const InlineBytes::Block& block) {
  auto holder = std::make_unique<Snapshot>(block.data);
  void* bytes = const_cast<std::byte*>(block.data->data()) + block.offset;
  return grpc::Slice(bytes, block.length, &DropSnapshot, holder.release());
}

}  // namespace

grpc::Status SerializeGetBlocksWire(const GetBlocksWire& wire,
                                    grpc::ByteBuffer* out) {
  const v1::GetBlocksResponse& response = wire.response;
  const size_t results = static_cast<size_t>(response.results_size());
  if (!wire.bytes.blocks.empty() && wire.bytes.blocks.size() != results) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "GetBlocks reply: bytes for other results");
  }
  // Every result's framing goes into one string, cut where its data
  // follows; the data slices lie between the cuts.
  std::string heads;
  std::vector<size_t> cuts;  // end of result i's framing in `heads`
  cuts.reserve(results);
  for (size_t i = 0; i < results; ++i) {
    const v1::GetResult& result = response.results(static_cast<int>(i));
    const size_t body = result.ByteSizeLong();
    const InlineBytes::Block* block =
        wire.bytes.blocks.empty() ? nullptr : &wire.bytes.blocks[i];
    const uint64_t n = block != nullptr && block->data ? block->length : 0;
    const uint64_t data_field =
        n == 0 ? 0 : 1 + CodedOutputStream::VarintSize64(n) + n;
    AppendTag(&heads, kResponseResults,
              WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
    AppendVarint(&heads, body + data_field);
    const size_t at = heads.size();
    heads.resize(at + body);
    result.SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(heads.data() + at));
    if (n > 0) {
      AppendTag(&heads, kResultData, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
      AppendVarint(&heads, n);
    }
    cuts.push_back(heads.size());
  }
  if (response.failed() != 0) {
    AppendTag(&heads, kResponseFailed, WireFormatLite::WIRETYPE_VARINT);
    AppendVarint(&heads, response.failed());
  }
  // One refcounted slice of all the framing, cut into sub-slices that
  // share it.
  const grpc::Slice all(heads);
  std::vector<grpc::Slice> slices;
  slices.reserve(2 * results + 1);
  size_t from = 0;
  for (size_t i = 0; i < results; ++i) {
    if (cuts[i] > from) slices.push_back(all.sub(from, cuts[i]));
    from = cuts[i];
    if (!wire.bytes.blocks.empty()) {
      const InlineBytes::Block& block = wire.bytes.blocks[i];
      if (block.data && block.length > 0) slices.push_back(SliceOf(block));
    }
  }
  if (heads.size() > from) slices.push_back(all.sub(from, heads.size()));
  grpc::ByteBuffer buffer(slices.data(), slices.size());
  out->Swap(&buffer);
  return grpc::Status::OK;
}

}  // namespace tensorpager::server
