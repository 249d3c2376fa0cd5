#include "server/put_blocks_wire.h"

#include <cstdint>
#include <string>
#include <utility>

#include "protos/slice_reader.h"

namespace tensorpager::server {
namespace {

using wire::AppendVarint;
using wire::KeepField;
using wire::kLengthDelimited;
using wire::SliceReader;

// PutBlocksRequest and PutBlock field numbers (tensorpager.proto).
constexpr uint64_t kRequestBlocks = 2;
constexpr uint64_t kBlockData = 10;

grpc::Status Malformed(const char* what) {
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      std::string("PutBlocks: the request does not parse: ") + what);
}

}  // namespace

grpc::Status ParsePutBlocksWire(grpc::ByteBuffer* buffer, PutBlocksWire* out) {
  out->request.Clear();
  out->data.clear();
  out->slices.clear();
  if (grpc::Status s = buffer->Dump(&out->slices); !s.ok()) return s;
  SliceReader r(out->slices);
  std::string top;   // the request's fields but its blocks
  std::string rest;  // one block's fields but its data
  std::vector<absl::string_view> pieces;
  while (!r.done()) {
    uint64_t tag;
    if (!r.Varint(&tag)) return Malformed("truncated tag");
    if ((tag >> 3) != kRequestBlocks || (tag & 7) != kLengthDelimited) {
      if (!KeepField(r, tag, &top)) return Malformed("truncated field");
      continue;
    }
    uint64_t n;
    if (!r.Varint(&n)) return Malformed("truncated block length");
    const uint64_t end = r.consumed() + n;
    Pieces data;
    rest.clear();
    while (r.consumed() < end) {
      uint64_t t;
      if (!r.Varint(&t)) return Malformed("truncated block tag");
      if ((t >> 3) == kBlockData && (t & 7) == kLengthDelimited) {
        uint64_t m;
        pieces.clear();
        if (!r.Varint(&m) || !r.Pieces(m, &pieces)) {
          return Malformed("truncated data");
        }
        // A repeated data field replaces the earlier one, as in protobuf.
        data.clear();
        for (absl::string_view p : pieces) {
          data.push_back(
              {reinterpret_cast<const std::byte*>(p.data()), p.size()});
        }
        // An empty data field keeps the block's source "data".
        AppendVarint(&rest, t);
        AppendVarint(&rest, 0);
      } else if (!KeepField(r, t, &rest)) {
        return Malformed("truncated block field");
      }
    }
    if (r.consumed() != end) return Malformed("a block overruns its length");
    if (!out->request.add_blocks()->ParseFromString(rest)) {
      return Malformed("bad PutBlock");
    }
    // A later "shared" field of the same block wins over its data.
    if (!out->request.blocks(out->request.blocks_size() - 1).has_shared()) {
      out->data.push_back(std::move(data));
    } else {
      out->data.emplace_back();
    }
  }
  if (!out->request.MergeFromString(top)) return Malformed("bad field");
  return grpc::Status::OK;
}

}  // namespace tensorpager::server
