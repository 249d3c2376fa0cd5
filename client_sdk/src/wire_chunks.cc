#include "client_sdk/src/wire_chunks.h"

#include <grpc/slice.h>

#include <string>

#include "protos/slice_reader.h"

namespace tensorpager::internal {
namespace {

using wire::AppendVarint;
using wire::kFixed32;
using wire::kFixed64;
using wire::kLengthDelimited;
using wire::kVarint;
using wire::SliceReader;

// AccessResponse and WriteBlockRequest field numbers (tensorpager.proto).
constexpr uint32_t kAccessBlock = 1;
constexpr uint32_t kAccessHit = 2;
constexpr uint32_t kAccessOffset = 3;
constexpr uint32_t kAccessData = 4;
constexpr uint32_t kWriteData = 6;

grpc::Status Malformed(const char* what) {
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      std::string("malformed AccessResponse: ") + what);
}

void ReleaseLent(void* latch) { static_cast<SliceLatch*>(latch)->Done(); }

}  // namespace

void SliceLatch::Add() {
  std::lock_guard<std::mutex> lock(mu_);
  ++live_;
}

void SliceLatch::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--live_ == 0) released_.notify_all();
}

void SliceLatch::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  released_.wait(lock, [this] { return live_ == 0; });
}

grpc::Status ParseAccessChunk(grpc::ByteBuffer* buffer, AccessChunk* out) {
  out->has_block = false;
  out->hit = false;
  out->offset = 0;
  out->data.clear();
  out->data_bytes = 0;
  out->slices.clear();
  if (grpc::Status s = buffer->Dump(&out->slices); !s.ok()) return s;
  buffer->Clear();
  SliceReader r(out->slices);
  while (!r.done()) {
    uint64_t tag;
    if (!r.Varint(&tag)) return Malformed("truncated tag");
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    const int type = static_cast<int>(tag & 7);
    if (type == kVarint) {
      uint64_t v;
      if (!r.Varint(&v)) return Malformed("truncated varint");
      if (field == kAccessHit) out->hit = v != 0;
      if (field == kAccessOffset) out->offset = v;
    } else if (type == kLengthDelimited) {
      uint64_t n;
      if (!r.Varint(&n)) return Malformed("truncated length");
      if (field == kAccessData) {
        if (!r.Pieces(n, &out->data)) return Malformed("truncated data");
        out->data_bytes += n;
      } else if (field == kAccessBlock) {
        std::vector<absl::string_view> pieces;
        if (!r.Pieces(n, &pieces)) return Malformed("truncated block");
        std::string bytes;
        bytes.reserve(n);
        for (absl::string_view p : pieces) bytes.append(p.data(), p.size());
        if (!out->block.ParseFromString(bytes)) {
          return Malformed("bad BlockInfo");
        }
        out->has_block = true;
      } else if (!r.Skip(n)) {
        return Malformed("truncated field");
      }
    } else if (type == kFixed64) {
      if (!r.Skip(8)) return Malformed("truncated fixed64");
    } else if (type == kFixed32) {
      if (!r.Skip(4)) return Malformed("truncated fixed32");
    } else {
      return Malformed("unknown wire type");
    }
  }
  return grpc::Status::OK;
}

grpc::Slice LendSlice(absl::string_view data, SliceLatch* latch) {
  latch->Add();
  return grpc::Slice(
      grpc_slice_new_with_user_data(const_cast<char*>(data.data()), data.size(),
                                    &ReleaseLent, latch),
      grpc::Slice::STEAL_REF);
}

grpc::Status SerializeWriteChunk(const WriteChunk& chunk,
                                 grpc::ByteBuffer* buffer) {
  std::string head = chunk.header->SerializeAsString();
  AppendVarint(&head, (kWriteData << 3) | kLengthDelimited);
  AppendVarint(&head, chunk.data.size());
  grpc::Slice slices[2] = {grpc::Slice(head), grpc::Slice()};
  if (chunk.latch != nullptr) {
    slices[1] = LendSlice(chunk.data, chunk.latch);
  } else {
    slices[1] = grpc::Slice(chunk.data.data(), chunk.data.size());
  }
  grpc::ByteBuffer out(slices, 2);
  buffer->Swap(&out);
  return grpc::Status::OK;
}

}  // namespace tensorpager::internal
