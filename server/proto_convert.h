// Conversions between the storage vocabulary and the public proto, and
// from absl::Status to grpc::Status (the codes are numerically identical).
#ifndef TENSORPAGER_SERVER_PROTO_CONVERT_H_
#define TENSORPAGER_SERVER_PROTO_CONVERT_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/block_store.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::server {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

void ToProto(const storage::BlockInfo& in, v1::BlockInfo* out);
// The answer to a write, whichever transport carried it.
void ToProto(const storage::WriteResult& in, v1::WriteBlockResponse* out);

// Checks the request's attributes; INVALID_ARGUMENT names the bad field.
// For the two messages that describe a new block: RegisterBlockRequest
// and PutBlock (their attribute fields have the same names).
template <typename Request>
absl::StatusOr<storage::BlockAttributes> AttributesFromRequest(
    const Request& request);

absl::StatusOr<storage::ListFilter> FilterFromRequest(
    const v1::ListBlocksRequest& request);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PROTO_CONVERT_H_
