#include "client_sdk/src/get_blocks_reply.h"

#include <cstring>
#include <string>

#include "protos/slice_reader.h"

namespace tensorpager::internal {
namespace {

using wire::KeepField;
using wire::kLengthDelimited;
using wire::kVarint;
using wire::SliceReader;

// GetBlocksResponse and GetResult field numbers (tensorpager.proto).
constexpr uint32_t kReplyResults = 1;
constexpr uint32_t kReplyFailed = 2;
constexpr uint32_t kResultData = 9;

grpc::Status Malformed(const char* what) {
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      std::string("malformed GetBlocksResponse: ") + what);
}

// Copies the next `n` bytes of `r` to `out`, or skips them (null `out`).
bool CopyOut(SliceReader& r, uint64_t n, std::byte* out) {
  std::vector<absl::string_view> pieces;
  if (!r.Pieces(n, &pieces)) return false;
  if (out == nullptr) return true;
  for (absl::string_view p : pieces) {
    std::memcpy(out, p.data(), p.size());
    out += p.size();
  }
  return true;
}

}  // namespace

grpc::Status ParseGetBlocksReply(grpc::ByteBuffer* buffer,
                                 GetBlocksReply* out) {
  out->response.Clear();
  out->data_bytes.clear();
  std::vector<grpc::Slice> slices;
  if (grpc::Status s = buffer->Dump(&slices); !s.ok()) return s;
  buffer->Clear();
  SliceReader r(slices);
  std::string rest;
  while (!r.done()) {
    uint64_t tag;
    if (!r.Varint(&tag)) return Malformed("truncated tag");
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    const int type = static_cast<int>(tag & 7);
    if (field == kReplyFailed && type == kVarint) {
      uint64_t v;
      if (!r.Varint(&v)) return Malformed("truncated failed");
      out->response.set_failed(static_cast<uint32_t>(v));
      continue;
    }
    if (field != kReplyResults || type != kLengthDelimited) {
      rest.clear();
      if (!KeepField(r, tag, &rest)) return Malformed("truncated field");
      continue;  // a field this SDK does not know: skipped
    }
    uint64_t n;
    if (!r.Varint(&n)) return Malformed("truncated result length");
    const uint64_t end = r.consumed() + n;
    const size_t index = out->data_bytes.size();
    out->data_bytes.push_back(0);
    rest.clear();
    while (r.consumed() < end) {
      uint64_t t;
      if (!r.Varint(&t)) return Malformed("truncated result tag");
      if ((t >> 3) == kResultData && (t & 7) == kLengthDelimited) {
        uint64_t m;
        if (!r.Varint(&m)) return Malformed("truncated data length");
        const bool fits =
            index < out->outs.size() && m <= out->outs[index].size();
        if (!CopyOut(r, m, fits ? out->outs[index].data() : nullptr)) {
          return Malformed("truncated data");
        }
        out->data_bytes[index] = m;
      } else if (!KeepField(r, t, &rest)) {
        return Malformed("truncated result field");
      }
    }
    if (r.consumed() != end) return Malformed("result overruns its length");
    if (!out->response.add_results()->ParseFromString(rest)) {
      return Malformed("bad GetResult");
    }
  }
  return grpc::Status::OK;
}

}  // namespace tensorpager::internal
