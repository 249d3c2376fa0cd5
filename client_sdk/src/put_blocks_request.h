// A PutBlocksRequest whose blocks' bytes are lent to gRPC from the
// caller's memory, for gRPC's SerializationTraits: protobuf would copy
// every block into a string and then into gRPC's buffer; here only the
// kernel copies them, into the socket. The wire format is tensorpager.v1's,
// unchanged.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_PUT_BLOCKS_REQUEST_H_
#define TENSORPAGER_CLIENT_SDK_SRC_PUT_BLOCKS_REQUEST_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <cstddef>

#include "absl/types/span.h"
#include "client_sdk/src/wire_chunks.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::internal {

struct PutBlocksLent {
  // Namespace, durable and the blocks' attributes; no block names a source.
  const v1::PutBlocksRequest* request = nullptr;
  // Block i's bytes; each must stay unchanged until `latch` is released.
  absl::Span<const absl::Span<const std::byte>> sources;
  SliceLatch* latch = nullptr;
};

grpc::Status SerializePutBlocksLent(const PutBlocksLent& put,
                                    grpc::ByteBuffer* out);

}  // namespace tensorpager::internal

namespace grpc {

template <>
class SerializationTraits<tensorpager::internal::PutBlocksLent> {
 public:
  static Status Serialize(const tensorpager::internal::PutBlocksLent& put,
                          ByteBuffer* buffer, bool* own_buffer) {
    *own_buffer = true;
    return tensorpager::internal::SerializePutBlocksLent(put, buffer);
  }
};

}  // namespace grpc

#endif  // TENSORPAGER_CLIENT_SDK_SRC_PUT_BLOCKS_REQUEST_H_
