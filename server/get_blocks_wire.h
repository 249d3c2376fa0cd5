// A GetBlocksResponse as the server sends it over gRPC messages: every
// field but the results' data is serialized by protobuf; each result's
// data is framed around the store's snapshot of the block, which gRPC then
// writes to the socket as it is. The server thus copies no block into its
// reply (protobuf would copy it into a string, then into gRPC's buffer).
// The wire format is tensorpager.v1's, unchanged.
#ifndef TENSORPAGER_SERVER_GET_BLOCKS_WIRE_H_
#define TENSORPAGER_SERVER_GET_BLOCKS_WIRE_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "server/batch_calls.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::server {

struct GetBlocksWire {
  v1::GetBlocksResponse response;  // no result carries data
  InlineBytes bytes;               // empty, or one per result
};

// Frames `wire` into `out`'s slices; the snapshots are referenced, not
// copied, and released when gRPC drops the slices.
grpc::Status SerializeGetBlocksWire(const GetBlocksWire& wire,
                                    grpc::ByteBuffer* out);

}  // namespace tensorpager::server

namespace grpc {

template <>
class SerializationTraits<tensorpager::server::GetBlocksWire> {
 public:
  static Status Serialize(const tensorpager::server::GetBlocksWire& wire,
                          ByteBuffer* buffer, bool* own_buffer) {
    *own_buffer = true;
    return tensorpager::server::SerializeGetBlocksWire(wire, buffer);
  }
};

}  // namespace grpc

#endif  // TENSORPAGER_SERVER_GET_BLOCKS_WIRE_H_
