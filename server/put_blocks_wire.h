// A PutBlocksRequest as the server receives it over gRPC messages: every
// field but the blocks' data is parsed by protobuf; each block's data is
// left in the slices gRPC received, as pieces that the put copies once,
// straight into the block (protobuf would first copy it into a string).
// The wire format is tensorpager.v1's, unchanged.
#ifndef TENSORPAGER_SERVER_PUT_BLOCKS_WIRE_H_
#define TENSORPAGER_SERVER_PUT_BLOCKS_WIRE_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>
#include <grpcpp/support/status.h>

#include <vector>

#include "server/batch_calls.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::server {

struct PutBlocksWire {
  // A block whose bytes came in the message has an empty data field.
  v1::PutBlocksRequest request;
  std::vector<Pieces> data;         // one per block; empty for none
  std::vector<grpc::Slice> slices;  // keeps `data` alive
};

// INVALID_ARGUMENT for bytes that do not parse as a PutBlocksRequest.
grpc::Status ParsePutBlocksWire(grpc::ByteBuffer* buffer, PutBlocksWire* out);

}  // namespace tensorpager::server

namespace grpc {

template <>
class SerializationTraits<tensorpager::server::PutBlocksWire> {
 public:
  static Status Deserialize(ByteBuffer* buffer,
                            tensorpager::server::PutBlocksWire* msg) {
    Status s = tensorpager::server::ParsePutBlocksWire(buffer, msg);
    buffer->Clear();
    return s;
  }
};

}  // namespace grpc

#endif  // TENSORPAGER_SERVER_PUT_BLOCKS_WIRE_H_
