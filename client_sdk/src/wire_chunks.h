// Zero-copy views of the two data-carrying messages, for gRPC's
// SerializationTraits: an AccessResponse whose data stays in the received
// gRPC slices (no protobuf string, no extra copy, no fresh allocation per
// chunk), and a WriteBlockRequest whose data slice points at the caller's
// memory. Both speak the unchanged wire format of tensorpager.v1, so the
// server sees ordinary messages.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_WIRE_CHUNKS_H_
#define TENSORPAGER_CLIENT_SDK_SRC_WIRE_CHUNKS_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>
#include <grpcpp/support/status.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/strings/string_view.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::internal {

// One AccessResponse as received.
struct AccessChunk {
  bool has_block = false;
  v1::BlockInfo block;
  bool hit = false;
  uint64_t offset = 0;
  // The data field, in order, as pieces of `slices`.
  std::vector<absl::string_view> data;
  uint64_t data_bytes = 0;
  std::vector<grpc::Slice> slices;  // keeps `data` alive
};

// Counts payload slices gRPC still references, so memory lent to it is not
// reused or freed before gRPC lets go.
class SliceLatch {
 public:
  void Add();
  void Done();
  // Blocks until every slice was released.
  void Wait();

 private:
  std::mutex mu_;
  std::condition_variable released_;
  int live_ = 0;  // guarded by mu_
};

// A slice of `data` lent to gRPC without a copy: latch->Add() now, Done()
// when gRPC releases it.
grpc::Slice LendSlice(absl::string_view data, SliceLatch* latch);

// One WriteBlockRequest: the header fields from `header` (its data field
// must be empty) plus `data`. With a latch, the data is lent to gRPC
// without a copy (latch.Wait() before the memory changes); without one it
// is copied.
struct WriteChunk {
  const v1::WriteBlockRequest* header = nullptr;
  absl::string_view data;
  SliceLatch* latch = nullptr;
};

grpc::Status ParseAccessChunk(grpc::ByteBuffer* buffer, AccessChunk* out);
grpc::Status SerializeWriteChunk(const WriteChunk& chunk,
                                 grpc::ByteBuffer* buffer);

}  // namespace tensorpager::internal

namespace grpc {

template <>
class SerializationTraits<tensorpager::internal::AccessChunk> {
 public:
  static Status Deserialize(ByteBuffer* buffer,
                            tensorpager::internal::AccessChunk* msg) {
    return tensorpager::internal::ParseAccessChunk(buffer, msg);
  }
};

template <>
class SerializationTraits<tensorpager::internal::WriteChunk> {
 public:
  static Status Serialize(const tensorpager::internal::WriteChunk& msg,
                          ByteBuffer* buffer, bool* own_buffer) {
    *own_buffer = true;
    return tensorpager::internal::SerializeWriteChunk(msg, buffer);
  }
};

}  // namespace grpc

#endif  // TENSORPAGER_CLIENT_SDK_SRC_WIRE_CHUNKS_H_
