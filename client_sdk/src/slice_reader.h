// Reading protobuf wire format straight off the slices gRPC received, for
// the SDK's zero-copy messages (wire_chunks.h, get_blocks_reply.h): block
// bytes are handed out as pieces of the slices, never gathered first.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_SLICE_READER_H_
#define TENSORPAGER_CLIENT_SDK_SRC_SLICE_READER_H_

#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tensorpager::internal {

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

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_SLICE_READER_H_
