#include "client_sdk/src/wire_chunks.h"

#include <grpc/slice.h>

#include <string>

namespace tensorpager::internal {
namespace {

// AccessResponse and WriteBlockRequest field numbers (tensorpager.proto).
constexpr uint32_t kAccessBlock = 1;
constexpr uint32_t kAccessHit = 2;
constexpr uint32_t kAccessOffset = 3;
constexpr uint32_t kAccessData = 4;
constexpr uint32_t kWriteData = 6;

constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

grpc::Status Malformed(const char* what) {
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      std::string("malformed AccessResponse: ") + what);
}

// Reads protobuf wire format across the slices of a message.
class SliceReader {
 public:
  explicit SliceReader(const std::vector<grpc::Slice>& slices)
      : slices_(slices) {
    Skip0();
  }

  bool done() const { return index_ == slices_.size(); }

  bool Byte(uint8_t* b) {
    if (done()) return false;
    *b = slices_[index_].begin()[pos_];
    Advance(1);
    return true;
  }

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // Hands out the next `n` bytes as pieces of the slices.
  bool Pieces(uint64_t n, std::vector<absl::string_view>* out) {
    while (n > 0) {
      if (done()) return false;
      const grpc::Slice& s = slices_[index_];
      const size_t take = std::min<uint64_t>(n, s.size() - pos_);
      out->emplace_back(reinterpret_cast<const char*>(s.begin()) + pos_, take);
      Advance(take);
      n -= take;
    }
    return true;
  }

  bool Skip(uint64_t n) {
    std::vector<absl::string_view> ignored;
    return Pieces(n, &ignored);
  }

 private:
  void Advance(size_t n) {
    pos_ += n;
    Skip0();
  }
  // Moves past exhausted (and empty) slices.
  void Skip0() {
    while (index_ < slices_.size() && pos_ == slices_[index_].size()) {
      ++index_;
      pos_ = 0;
    }
  }

  const std::vector<grpc::Slice>& slices_;
  size_t index_ = 0;
  size_t pos_ = 0;
};

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
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

grpc::Status SerializeWriteChunk(const WriteChunk& chunk,
                                 grpc::ByteBuffer* buffer) {
  std::string head = chunk.header->SerializeAsString();
  AppendVarint(&head, (kWriteData << 3) | kLengthDelimited);
  AppendVarint(&head, chunk.data.size());
  grpc::Slice slices[2] = {grpc::Slice(head), grpc::Slice()};
  if (chunk.latch != nullptr) {
    chunk.latch->Add();
    slices[1] = grpc::Slice(grpc_slice_new_with_user_data(
                                const_cast<char*>(chunk.data.data()),
                                chunk.data.size(), &ReleaseLent, chunk.latch),
                            grpc::Slice::STEAL_REF);
  } else {
    slices[1] = grpc::Slice(chunk.data.data(), chunk.data.size());
  }
  grpc::ByteBuffer out(slices, 2);
  buffer->Swap(&out);
  return grpc::Status::OK;
}

}  // namespace tensorpager::internal
