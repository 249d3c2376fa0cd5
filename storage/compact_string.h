// Bytes in 16 bytes of object: up to 15 inline, more on the heap. A
// std::string takes 32 bytes for the same 15 inline; every registered block
// keeps one of these (PackedAttributes::extras), tens of millions of times
// (docs/ARCHITECTURE.md, "Per-block memory").
#ifndef TENSORPAGER_STORAGE_COMPACT_STRING_H_
#define TENSORPAGER_STORAGE_COMPACT_STRING_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/string_view.h"

namespace tensorpager::storage {

class CompactString {
 public:
  static constexpr size_t kInline = 15;

  CompactString() = default;
  explicit CompactString(absl::string_view bytes) { Assign(bytes); }
  CompactString(const CompactString& o) { Assign(o.view()); }
  CompactString& operator=(const CompactString& o) {
    if (this != &o) {
      CompactString copy(o);
      Swap(copy);
    }
    return *this;
  }
  CompactString(CompactString&& o) noexcept { Swap(o); }
  CompactString& operator=(CompactString&& o) noexcept {
    CompactString taken(std::move(o));
    Swap(taken);
    return *this;
  }
  ~CompactString() { TakeHeap(); }

  bool empty() const { return size() == 0; }
  size_t size() const {
    if (tag_ != kOnHeap) return tag_;
    uint32_t size;
    std::memcpy(&size, bytes_ + sizeof(char*), sizeof(size));
    return size;
  }
  absl::string_view view() const {
    if (tag_ != kOnHeap) return absl::string_view(bytes_, tag_);
    return absl::string_view(HeapBytes(), size());
  }

 private:
  // The last byte says where the bytes are: their count while inline, or
  // kOnHeap, when the first 8 bytes hold the owning pointer and the next 4
  // the size (copied in and out: the array is the object's only storage).
  static constexpr uint8_t kOnHeap = 0xff;

  void Assign(absl::string_view bytes) {
    if (bytes.size() <= kInline) {
      std::memcpy(bytes_, bytes.data(), bytes.size());
      tag_ = static_cast<uint8_t>(bytes.size());
      return;
    }
    auto heap = std::make_unique<char[]>(bytes.size());
    std::memcpy(heap.get(), bytes.data(), bytes.size());
    char* owned = heap.release();
    const auto size = static_cast<uint32_t>(bytes.size());
    std::memcpy(bytes_, &owned, sizeof(owned));
    std::memcpy(bytes_ + sizeof(owned), &size, sizeof(size));
    tag_ = kOnHeap;
  }
  char* HeapBytes() const {
    char* p;
    std::memcpy(&p, bytes_, sizeof(p));
    return p;
  }
  // Frees what the heap holds, leaving the string empty.
  void TakeHeap() {
    if (tag_ == kOnHeap) std::unique_ptr<char[]>(HeapBytes()).reset();
    tag_ = 0;
  }
  void Swap(CompactString& o) noexcept {
    char bytes[kInline];
    std::memcpy(bytes, bytes_, kInline);
    std::memcpy(bytes_, o.bytes_, kInline);
    std::memcpy(o.bytes_, bytes, kInline);
    std::swap(tag_, o.tag_);
  }

  alignas(8) char bytes_[kInline] = {};
  uint8_t tag_ = 0;
};

static_assert(sizeof(CompactString) == 16);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_COMPACT_STRING_H_
