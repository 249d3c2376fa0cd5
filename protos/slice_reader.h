// Reading protobuf wire format straight off the slices gRPC received, for
// the zero-copy messages of the SDK (wire_chunks.h, get_blocks_reply.h)
// and of the server (put_blocks_wire.h): block bytes are handed out as
// pieces of the slices, never gathered first.
#ifndef TENSORPAGER_PROTOS_SLICE_READER_H_
#define TENSORPAGER_PROTOS_SLICE_READER_H_

#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tensorpager::wire {

inline constexpr int kVarint = 0;
inline constexpr int kFixed64 = 1;
inline constexpr int kLengthDelimited = 2;
inline constexpr int kFixed32 = 5;

inline void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads protobuf wire format across the slices of a message.
class SliceReader {
 public:
  explicit SliceReader(const std::vector<grpc::Slice>& slices)
      : slices_(slices) {
    Skip0();
  }

  bool done() const { return index_ == slices_.size(); }
  // Bytes read so far.
  uint64_t consumed() const { return consumed_; }

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
    consumed_ += n;
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
  uint64_t consumed_ = 0;
};

// Re-encodes the field whose tag `r` just read into `rest`, so that every
// field but those taken out parses as protobuf afterwards. False when the
// message ends inside it or its wire type is unknown.
inline bool KeepField(SliceReader& r, uint64_t tag, std::string* rest) {
  AppendVarint(rest, tag);
  const int type = static_cast<int>(tag & 7);
  uint64_t v = 0;
  std::vector<absl::string_view> pieces;
  switch (type) {
    case kVarint:
      if (!r.Varint(&v)) return false;
      AppendVarint(rest, v);
      return true;
    case kLengthDelimited:
      if (!r.Varint(&v) || !r.Pieces(v, &pieces)) return false;
      AppendVarint(rest, v);
      break;
    case kFixed64:
      if (!r.Pieces(8, &pieces)) return false;
      break;
    case kFixed32:
      if (!r.Pieces(4, &pieces)) return false;
      break;
    default:
      return false;
  }
  for (absl::string_view p : pieces) rest->append(p.data(), p.size());
  return true;
}

}  // namespace tensorpager::wire

#endif  // TENSORPAGER_PROTOS_SLICE_READER_H_
