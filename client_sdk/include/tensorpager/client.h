// tensorpager C++ client: the RPC layer of the SDK. Thread-safe; one Client
// per process is enough (it multiplexes over one gRPC channel).
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "absl/functional/function_ref.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager {

// Names a block: an id in a namespace (empty namespace: "default").
struct BlockName {
  BlockName(const char* id) : id(id) {}  // NOLINT: ids convert implicitly
  BlockName(std::string id) : id(std::move(id)) {}  // NOLINT
  BlockName(std::string ns, std::string id)
      : ns(std::move(ns)), id(std::move(id)) {}
  std::string ns;
  std::string id;
};

struct BlockSpec {
  explicit BlockSpec(BlockName name, uint64_t size_bytes = 0)
      : name(std::move(name)), size_bytes(size_bytes) {}
  BlockName name;
  uint64_t size_bytes = 0;
  v1::RegionType region_type = v1::TENSOR_DATA;
  bool pinned = false;
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
  std::map<std::string, std::string> labels;
  std::optional<std::pair<std::string, uint32_t>> sequence;  // group, index
};

struct ClientOptions {
  // Deadline of each RPC.
  absl::Duration timeout = absl::Seconds(60);
  // Retries of read-only RPCs that fail with UNAVAILABLE (server restarting).
  int max_retries = 3;
  absl::Duration retry_backoff = absl::Milliseconds(100);
  // Data chunk of WriteBlock messages (at most 1 MiB).
  uint32_t write_chunk_bytes = 1u << 20;
};

struct ReadResult {
  v1::BlockInfo block;
  bool hit = false;
  std::string data;
};

class Client {
 public:
  // target: "host:port" or "unix:/path". Connects lazily; a server that is
  // not up yet fails the first RPC with UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& target, ClientOptions options = {});
  // Waits until the server answers its health check or `timeout` passes.
  absl::Status WaitUntilReady(absl::Duration timeout);
  ~Client();

  absl::StatusOr<v1::BlockInfo> Register(const BlockSpec& spec);
  absl::StatusOr<v1::WriteBlockResponse> Write(
      const BlockName& name, absl::Span<const std::byte> data,
      uint64_t offset = 0, std::optional<bool> durable = std::nullopt);
  absl::StatusOr<v1::WriteBlockResponse> Write(
      const BlockName& name, absl::string_view data, uint64_t offset = 0,
      std::optional<bool> durable = std::nullopt);
  // Reads [offset, offset + length) (length 0: to the end).
  absl::StatusOr<ReadResult> Read(const BlockName& name, uint64_t offset = 0,
                                  uint64_t length = 0);
  // Reads straight into `out` (exactly the range's size), no extra copy.
  absl::StatusOr<v1::BlockInfo> ReadInto(const BlockName& name,
                                         absl::Span<std::byte> out,
                                         uint64_t offset = 0,
                                         bool* hit = nullptr);
  // Records an access (swapping the block in) without moving data.
  absl::StatusOr<ReadResult> Touch(const BlockName& name);
  absl::StatusOr<v1::SwapResponse> SwapOut(const std::vector<BlockName>& names);
  absl::StatusOr<v1::SwapResponse> SwapIn(const std::vector<BlockName>& names);
  absl::StatusOr<v1::SwapResponse> SwapBytes(v1::SwapDirection direction,
                                             uint64_t target_bytes);
  absl::StatusOr<v1::BlockInfo> Pin(const BlockName& name);
  absl::StatusOr<v1::BlockInfo> Unpin(const BlockName& name);
  absl::StatusOr<v1::UnregisterBlockResponse> Unregister(const BlockName& name);
  absl::StatusOr<v1::BlockInfo> Get(const BlockName& name);
  absl::StatusOr<v1::ListBlocksResponse> List(const v1::ListBlocksRequest& req);
  absl::StatusOr<v1::StatusResponse> Status();

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options);
  absl::StatusOr<v1::SwapResponse> DoSwap(const v1::SwapRequest& request);
  absl::StatusOr<v1::BlockInfo> DoAccess(
      const v1::AccessRequest& request,
      absl::FunctionRef<absl::Status(uint64_t, absl::string_view)> sink,
      bool* hit);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TensorPager::Stub> stub_;
  ClientOptions options_;
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_H_
