// Where the SDK puts the bytes of a block for the caller: host memory or the
// memory of one CUDA device, and what the caller means to do with them.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_PLACEMENT_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_PLACEMENT_H_

#include <string>

namespace tensorpager {

class Placement {
 public:
  static constexpr Placement Host() { return Placement(-1); }
  // CUDA device ordinal, as cudaSetDevice numbers them.
  static constexpr Placement Device(int ordinal) { return Placement(ordinal); }

  constexpr bool is_host() const { return device_ < 0; }
  constexpr bool is_device() const { return device_ >= 0; }
  // The device ordinal; -1 for host memory.
  constexpr int device() const { return device_; }
  // "host" or "cuda:N".
  std::string ToString() const;

  friend constexpr bool operator==(Placement a, Placement b) {
    return a.device_ == b.device_;
  }

 private:
  explicit constexpr Placement(int device)
      : device_(device < 0 ? -1 : device) {}
  int device_;
};

enum class AccessMode {
  // The handle's bytes are the block's current bytes; the caller only reads.
  kRead,
  // As kRead, and the caller may change the bytes: the block is dirty from
  // then on and is written back to the server before its local copy goes.
  kReadWrite,
  // The caller overwrites the whole block: nothing is fetched (a copy that
  // was not resident starts zero-filled) and the block is dirty as for
  // kReadWrite. Works on blocks that were registered but never written.
  kWriteOnly,
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_PLACEMENT_H_
