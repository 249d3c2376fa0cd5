// A GetBlocksResponse parsed as it arrives, for gRPC's SerializationTraits:
// each result's bytes go from the received slices straight into the
// caller's buffer for that block, with no protobuf string between (which
// would cost an allocation and a copy of every block). The wire format is
// tensorpager.v1's, unchanged.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_GET_BLOCKS_REPLY_H_
#define TENSORPAGER_CLIENT_SDK_SRC_GET_BLOCKS_REPLY_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::internal {

struct GetBlocksReply {
  // Set before the call: result i's bytes go to the front of outs[i].
  absl::Span<const absl::Span<std::byte>> outs;
  // The reply, every field but the results' data.
  v1::GetBlocksResponse response;
  // Result i's data length; a result larger than its buffer was not
  // copied (data_bytes[i] > outs[i].size()).
  std::vector<uint64_t> data_bytes;

  // Before a retry: the buffers stay.
  void Clear() {
    response.Clear();
    data_bytes.clear();
  }
};

grpc::Status ParseGetBlocksReply(grpc::ByteBuffer* buffer, GetBlocksReply* out);

}  // namespace tensorpager::internal

namespace grpc {

template <>
class SerializationTraits<tensorpager::internal::GetBlocksReply> {
 public:
  static Status Deserialize(ByteBuffer* buffer,
                            tensorpager::internal::GetBlocksReply* msg) {
    return tensorpager::internal::ParseGetBlocksReply(buffer, msg);
  }
};

}  // namespace grpc

#endif  // TENSORPAGER_CLIENT_SDK_SRC_GET_BLOCKS_REPLY_H_
