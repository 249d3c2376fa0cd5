// A heap buffer aligned and padded for O_DIRECT I/O. Block bytes live in
// these from the moment they are written, so swap-out needs no copy.
#ifndef TENSORPAGER_STORAGE_BASE_ALIGNED_BUFFER_H_
#define TENSORPAGER_STORAGE_BASE_ALIGNED_BUFFER_H_

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "absl/types/span.h"

namespace tensorpager::base {

// Alignment of offsets, lengths and memory for direct I/O.
inline constexpr uint64_t kIoAlignment = 4096;

inline constexpr uint64_t AlignUp(uint64_t n, uint64_t a = kIoAlignment) {
  return (n + a - 1) / a * a;
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Capacity is `size` rounded up to kIoAlignment; the padding past `size`
  // is zeroed (it reaches the disk), the rest is left for the caller to
  // fill. Returns an empty buffer (ok() false) when memory is exhausted.
  explicit AlignedBuffer(uint64_t size)
      : size_(size), capacity_(AlignUp(size == 0 ? 1 : size)) {
    // Large buffers come straight from mmap so that freeing them gives the
    // memory back to the kernel at once (malloc may keep freed heap memory,
    // which would defeat shrinking the RAM tier under host pressure).
    // MAP_POPULATE maps every page in one call: the buffer is filled right
    // away anyway, and one fault per 4 KiB page cost ~20 ms per 4 MiB
    // write on a VM (SDK bench).
    const bool mapped = capacity_ >= kMmapThreshold;
    void* p = mapped ? ::mmap(nullptr, capacity_, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0)
                     : std::aligned_alloc(kIoAlignment, capacity_);
    if (p == nullptr || p == MAP_FAILED) {
      size_ = capacity_ = 0;
      return;
    }
    data_ = std::unique_ptr<std::byte, Free>(static_cast<std::byte*>(p),
                                             Free{mapped ? capacity_ : 0});
    std::fill(data_.get() + size_, data_.get() + capacity_, std::byte{0});
  }

  static AlignedBuffer Zeroed(uint64_t size) {
    AlignedBuffer b(size);
    if (b.ok()) std::fill(b.data(), b.data() + b.size(), std::byte{0});
    return b;
  }

  AlignedBuffer(AlignedBuffer&&) noexcept = default;
  AlignedBuffer& operator=(AlignedBuffer&&) noexcept = default;

  // Shrinks the logical size (the bytes past it stay allocated).
  void Truncate(uint64_t size) {
    if (size < size_) size_ = size;
  }
  // Gives a recycled buffer a new logical size within the same capacity
  // and zeroes the padding past it (it reaches the disk).
  void Resize(uint64_t size) {
    if (AlignUp(size == 0 ? 1 : size) != capacity_) return;
    size_ = size;
    std::fill(data_.get() + size_, data_.get() + capacity_, std::byte{0});
  }

  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  uint64_t size() const { return size_; }
  uint64_t capacity() const { return capacity_; }
  bool ok() const { return data_ != nullptr; }

  absl::Span<std::byte> span() { return {data_.get(), size_}; }
  absl::Span<const std::byte> span() const { return {data_.get(), size_}; }
  // The whole padded capacity, for direct I/O.
  absl::Span<std::byte> padded() { return {data_.get(), capacity_}; }
  absl::Span<const std::byte> padded() const {
    return {data_.get(), capacity_};
  }

 private:
  static constexpr uint64_t kMmapThreshold = 256 * 1024;
  struct Free {
    Free() : mapped_bytes(0) {}
    explicit Free(uint64_t mapped) : mapped_bytes(mapped) {}
    uint64_t mapped_bytes;  // 0: from aligned_alloc
    void operator()(std::byte* p) const {
      if (mapped_bytes != 0) {
        ::munmap(p, mapped_bytes);
      } else {
        std::free(p);
      }
    }
  };
  std::unique_ptr<std::byte, Free> data_;
  uint64_t size_ = 0;
  uint64_t capacity_ = 0;
};

}  // namespace tensorpager::base

#endif  // TENSORPAGER_STORAGE_BASE_ALIGNED_BUFFER_H_
