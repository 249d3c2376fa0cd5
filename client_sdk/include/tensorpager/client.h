// tensorpager C++ client. One Client per process is enough: it is
// thread-safe, multiplexes over a few gRPC connections and owns the local
// cache (host memory and, with CUDA, each GPU) that Access serves from.
//
// Two layers:
//  * Direct RPCs (Register, Write, Read, ReadInto, Touch, Swap*, Pin,
//    Unpin, Unregister, Get, List, Status, SetPolicy) talk to the server on
//    every call and keep the local cache coherent (a Write drops stale local
//    copies, a Read first writes back a dirty local copy).
//  * The cache (Access, Prefetch, Flush, Evict, LocalStats): Access returns
//    a BlockHandle on the placement asked for; a local hit costs no RPC.
//    Local accesses reach the server's policy in batches; dirty blocks are
//    written back before their last local copy goes; under memory pressure
//    (the server's WatchPressure stream) local copies are dropped.
//
// Every fallible call returns absl::Status(Or); server errors keep their
// gRPC code and message.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "tensorpager/batch.h"
#include "tensorpager/block_handle.h"
#include "tensorpager/block_name.h"
#include "tensorpager/cache_stats.h"
#include "tensorpager/client_options.h"
#include "tensorpager/device_runtime.h"
#include "tensorpager/placement.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager {
namespace base {
class Logger;
}  // namespace base
namespace internal {
class BatchTransport;
class BlockTransport;
class LocalCache;
class PressureFollower;
class StreamPool;
class UsageReporter;
class WorkQueue;
}  // namespace internal

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
  // Codec of its NVMe copy; unspecified: the server's default for the
  // region type.
  v1::Compression compression = v1::COMPRESSION_UNSPECIFIED;
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
  // Close(), logging what it could not do.
  ~Client();

  // ---- Direct RPCs ----
  absl::StatusOr<v1::BlockInfo> Register(const BlockSpec& spec);
  // Registers the block and writes its spec.size_bytes bytes from `data`:
  // host memory, or device memory on `from` (read through the staging
  // pipeline). A failed write unregisters the block again.
  absl::StatusOr<v1::BlockInfo> Register(const BlockSpec& spec,
                                         const void* data, Placement from);
  absl::StatusOr<v1::WriteBlockResponse> Write(
      const BlockName& name, absl::Span<const std::byte> data,
      uint64_t offset = 0, std::optional<bool> durable = std::nullopt);
  absl::StatusOr<v1::WriteBlockResponse> Write(
      const BlockName& name, absl::string_view data, uint64_t offset = 0,
      std::optional<bool> durable = std::nullopt);
  // Writes `size` bytes at `offset` from host or device memory.
  absl::StatusOr<v1::WriteBlockResponse> WriteFrom(
      const BlockName& name, const void* data, uint64_t size, Placement from,
      uint64_t offset = 0, std::optional<bool> durable = std::nullopt);
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
  // Pinned blocks stay in the server's RAM tier and in the local cache.
  absl::StatusOr<v1::BlockInfo> Pin(const BlockName& name);
  absl::StatusOr<v1::BlockInfo> Unpin(const BlockName& name);
  // Drops the local copies too (FAILED_PRECONDITION while a handle holds
  // one, and then nothing changes).
  absl::StatusOr<v1::UnregisterBlockResponse> Unregister(const BlockName& name);
  absl::StatusOr<v1::BlockInfo> Get(const BlockName& name);
  absl::StatusOr<v1::ListBlocksResponse> List(const v1::ListBlocksRequest& req);
  absl::StatusOr<v1::StatusResponse> Status();
  // Switches the server's eviction algorithm.
  absl::StatusOr<v1::SetPolicyResponse> SetPolicy(v1::Algorithm algorithm);

  // ---- Batches (tensorpager/batch.h) ----
  // Every call is for one namespace (empty: "default"). The outer status
  // is the call's (UNAVAILABLE, a bad namespace, ...); the outcomes are
  // the blocks', one per item, in order. Local copies of the blocks are
  // kept coherent as by Write and Read. Through the shared-memory ring
  // when the server is on this host, else gRPC messages.
  absl::StatusOr<LookupOutcome> Lookup(absl::string_view ns,
                                       absl::Span<const std::string> ids);
  absl::StatusOr<std::vector<PutOutcome>> PutBatch(
      absl::string_view ns, absl::Span<const PutItem> items,
      std::optional<bool> durable = std::nullopt);
  absl::StatusOr<std::vector<GetOutcome>> GetBatch(
      absl::string_view ns, absl::Span<const GetItem> items);
  absl::StatusOr<UnregisterOutcome> UnregisterBatch(
      absl::string_view ns, absl::Span<const std::string> ids);
  // Every block of `ns` whose id starts with `id_prefix` (not empty).
  absl::StatusOr<UnregisterOutcome> UnregisterPrefix(
      absl::string_view ns, absl::string_view id_prefix);
  // Whether batches use shared memory, and why (sets it up if need be).
  BatchPath batch_path();

  // ---- Local cache ----
  // The block's bytes on `where`, valid while the handle lives. Served by
  // the local copy there (no RPC), else by copying another local copy (no
  // RPC), else fetched from the server. FAILED_PRECONDITION for a device
  // placement in host mode; RESOURCE_EXHAUSTED when the placement's budget
  // is taken by copies in use.
  absl::StatusOr<BlockHandle> Access(const BlockName& name,
                                     Placement where = Placement::Host(),
                                     AccessMode mode = AccessMode::kRead);
  // Brings the block into the local cache on `where` in the background.
  std::future<absl::Status> Prefetch(const BlockName& name,
                                     Placement where = Placement::Host());
  // Writes back every dirty block (FAILED_PRECONDITION, after writing the
  // others, for blocks still open for writing).
  absl::Status Flush();
  absl::Status Flush(const BlockName& name);
  // Drops the block's local copy on `where` (all copies when unset); a
  // dirty block is written back before its last copy goes.
  absl::Status Evict(const BlockName& name,
                     std::optional<Placement> where = std::nullopt);
  CacheStats LocalStats() const;

  // No CUDA device: device placements fail with FAILED_PRECONDITION.
  bool host_mode() const;
  const DeviceRuntime& device_runtime() const { return *runtime_; }
  const std::string& client_id() const { return client_id_; }

  // Stops the background threads and writes back dirty blocks. Handles must
  // have been released. Later calls return OK at once.
  absl::Status Close();

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  Client(std::vector<std::shared_ptr<grpc::Channel>> channels,
         ClientOptions options);
  void Start();
  absl::StatusOr<v1::SwapResponse> DoSwap(const v1::SwapRequest& request);
  absl::StatusOr<v1::BlockInfo> SetPinned(const BlockName& name, bool pinned);
  // Writes a dirty local copy back so the server's bytes are current.
  absl::Status FlushIfDirty(const BlockName& name);

  ClientOptions options_;
  std::string client_id_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TensorPager::Stub> stub_;
  std::unique_ptr<base::Logger> log_;
  std::shared_ptr<DeviceRuntime> runtime_;
  std::unique_ptr<internal::StreamPool> streams_;
  std::unique_ptr<internal::BlockTransport> transport_;
  std::unique_ptr<internal::BatchTransport> batches_;
  std::unique_ptr<internal::LocalCache> cache_;
  std::unique_ptr<internal::UsageReporter> reporter_;
  std::unique_ptr<internal::PressureFollower> pressure_;
  std::unique_ptr<internal::WorkQueue> prefetch_;
  std::atomic<bool> closed_{false};
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_CLIENT_H_
