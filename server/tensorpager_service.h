// The gRPC front of the block store: validates requests, maps them to
// BlockStore calls and streams bytes; block bytes, whichever transport
// carries them, go through the data path (data_path.h). Synchronous API:
// gRPC's thread pool runs handlers concurrently; the store does its own
// locking.
#ifndef TENSORPAGER_SERVER_TENSORPAGER_SERVICE_H_
#define TENSORPAGER_SERVER_TENSORPAGER_SERVICE_H_

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "server/auth/authenticator.h"
#include "server/batch_calls.h"
#include "server/call_slots.h"
#include "server/config/server_config.h"
#include "server/data_path.h"
#include "server/get_blocks_wire.h"
#include "server/inflight_budget.h"
#include "server/peer_identity.h"
#include "server/pressure/pressure_monitor.h"
#include "server/profile/hardware_profile.h"
#include "server/put_blocks_wire.h"
#include "server/shared_memory_segments.h"
#include "storage/base/shared_mutex.h"
#include "storage/block_store.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"

namespace tensorpager::server {

// Largest data chunk of one WriteBlock message.
inline constexpr uint64_t kMaxWriteChunkBytes = 1ull << 20;
inline constexpr uint32_t kDefaultAccessChunkBytes = 1u << 20;
inline constexpr uint32_t kMaxAccessChunkBytes = 3u << 20;

// PERMISSION_DENIED (naming the tenant's namespaces) unless `caller` may
// use namespace `ns` (service_access.cc).
absl::Status NamespaceAllowed(const auth::Caller& caller, absl::string_view ns);

class TensorPagerService final : public v1::TensorPager::Service {
 public:
  // Nothing is owned; all must outlive the service. `auth` says who calls
  // (an Authenticator that is off lets everyone do everything).
  TensorPagerService(storage::BlockStore* store, const ServerConfig* config,
                     PressureMonitor* pressure, const HardwareProfile* profile,
                     auth::Authenticator* auth, PeerIdentity* peers);

  grpc::Status RegisterBlock(grpc::ServerContext* context,
                             const v1::RegisterBlockRequest* request,
                             v1::RegisterBlockResponse* response) override;
  grpc::Status WriteBlock(grpc::ServerContext* context,
                          grpc::ServerReader<v1::WriteBlockRequest>* reader,
                          v1::WriteBlockResponse* response) override;
  grpc::Status Access(grpc::ServerContext* context,
                      const v1::AccessRequest* request,
                      grpc::ServerWriter<v1::AccessResponse>* writer) override;
  grpc::Status Swap(grpc::ServerContext* context,
                    const v1::SwapRequest* request,
                    v1::SwapResponse* response) override;
  grpc::Status Pin(grpc::ServerContext* context, const v1::PinRequest* request,
                   v1::PinResponse* response) override;
  grpc::Status Unpin(grpc::ServerContext* context,
                     const v1::PinRequest* request,
                     v1::PinResponse* response) override;
  grpc::Status UnregisterBlock(grpc::ServerContext* context,
                               const v1::UnregisterBlockRequest* request,
                               v1::UnregisterBlockResponse* response) override;
  grpc::Status GetBlock(grpc::ServerContext* context,
                        const v1::GetBlockRequest* request,
                        v1::GetBlockResponse* response) override;
  grpc::Status ListBlocks(grpc::ServerContext* context,
                          const v1::ListBlocksRequest* request,
                          v1::ListBlocksResponse* response) override;
  grpc::Status Status(grpc::ServerContext* context,
                      const v1::StatusRequest* request,
                      v1::StatusResponse* response) override;
  grpc::Status WatchPressure(
      grpc::ServerContext* context, const v1::WatchPressureRequest* request,
      grpc::ServerWriter<v1::PressureEvent>* writer) override;
  grpc::Status SetPolicy(grpc::ServerContext* context,
                         const v1::SetPolicyRequest* request,
                         v1::SetPolicyResponse* response) override;
  grpc::Status ReportAccesses(grpc::ServerContext* context,
                              const v1::ReportAccessesRequest* request,
                              v1::ReportAccessesResponse* response) override;
  grpc::Status ReportClientUsage(
      grpc::ServerContext* context, const v1::ReportClientUsageRequest* request,
      v1::ReportClientUsageResponse* response) override;
  grpc::Status AttachSharedMemory(
      grpc::ServerContext* context,
      const v1::AttachSharedMemoryRequest* request,
      v1::AttachSharedMemoryResponse* response) override;
  grpc::Status DetachSharedMemory(
      grpc::ServerContext* context,
      const v1::DetachSharedMemoryRequest* request,
      v1::DetachSharedMemoryResponse* response) override;
  grpc::Status WriteBlockShared(grpc::ServerContext* context,
                                const v1::WriteBlockSharedRequest* request,
                                v1::WriteBlockResponse* response) override;
  grpc::Status AccessShared(grpc::ServerContext* context,
                            const v1::AccessSharedRequest* request,
                            v1::AccessSharedResponse* response) override;
  // Batches (batch_rpcs.cc).
  grpc::Status Lookup(grpc::ServerContext* context,
                      const v1::LookupRequest* request,
                      v1::LookupResponse* response) override;
  // PutBlocks and GetBlocks, unary RPCs to their clients, run as gRPC's
  // "streamed unary" so that their messages carry the blocks' bytes
  // without protobuf's copies: a put's bytes go from gRPC's slices
  // straight into the blocks (put_blocks_wire.h), a get's from the
  // store's snapshots to the socket (get_blocks_wire.h).
  // Registers StreamedPutBlocks and StreamedGetBlocks as the handlers of
  // PutBlocks and GetBlocks (the constructor's last step).
  void UseStreamedBatchHandlers();
  grpc::Status StreamedPutBlocks(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<PutBlocksWire, v1::PutBlocksResponse>* stream);
  grpc::Status StreamedGetBlocks(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<v1::GetBlocksRequest, GetBlocksWire>* stream);
  grpc::Status UnregisterBlocks(
      grpc::ServerContext* context, const v1::UnregisterBlocksRequest* request,
      v1::UnregisterBlocksResponse* response) override;

 private:
  // The shared-memory data path, for the RPCs and the request rings.
  // The block and the client's memory a shared-memory RPC names.
  struct SharedTarget {
    storage::BlockKey key;
    SharedMemorySegments::Lease lease;
  };
  absl::StatusOr<SharedTarget> ResolveShared(grpc::ServerContext* context,
                                             const std::string& ns,
                                             const std::string& id,
                                             const v1::SharedRange& range);
  // A write from a segment range (the RPC's or the ring's): refuses an
  // empty one, then goes through the data path.
  absl::StatusOr<storage::WriteResult> WriteFromShared(
      const storage::BlockKey& key, uint64_t offset,
      std::optional<bool> durable, absl::Span<const std::byte> source);
  // The ring's handler: one decoded request, its segment range checked,
  // for the segment's owner.
  shared_memory::RingCompletion ServeRing(
      const auth::Caller& owner, const shared_memory::RingRequest& request,
      absl::Span<std::byte> data, absl::Span<std::byte> segment);
  // A batch through the ring: the request proto in `data`, the reply into
  // the request's reply area.
  shared_memory::RingCompletion ServeRingBatch(
      const auth::Caller& owner, const shared_memory::RingRequest& request,
      absl::Span<std::byte> data, absl::Span<std::byte> segment);
  // Authentication and authorization (service_access.cc).
  // The caller, or UNAUTHENTICATED saying what to send.
  absl::StatusOr<auth::Caller> Authenticate(grpc::ServerContext* context);
  // UNAUTHENTICATED, or PERMISSION_DENIED unless the caller may use `ns`;
  // the caller into `caller` when given.
  grpc::Status Admit(grpc::ServerContext* context, absl::string_view ns,
                     auth::Caller* caller = nullptr);
  // RESOURCE_EXHAUSTED, naming the quota, when a new block of `size_bytes`
  // would take the caller's tenant past its quota.
  // `usage` caches the tenant's usage across the blocks of one call (empty
  // at first); an admitted block is added to it.
  absl::Status AdmitNewBlock(const auth::Caller& caller, uint64_t size_bytes,
                             std::optional<storage::NamespaceUsage>* usage);
  BatchCalls::AdmitNew AdmitNewFor(const auth::Caller& caller);
  // PERMISSION_DENIED unless the caller is an admin (`what`: the call).
  grpc::Status AdmitAdmin(grpc::ServerContext* context, absl::string_view what);
  // Status with authentication on: the caller's tenant; a client's share
  // only, an admin's every tenant's.
  void FillTenantShares(const auth::Caller& caller,
                        v1::StatusResponse* response);
  // Who is calling, for per-caller limits: "uid N" for a loopback peer
  // whose user the kernel names, else the peer's host.
  std::string CallerOf(grpc::ServerContext* context);
  void FillPressure(
      google::protobuf::RepeatedPtrField<v1::ResourcePressure>* out) const;
  grpc::Status SetPinned(const v1::PinRequest* request, bool pinned,
                         v1::PinResponse* response);

  storage::BlockStore* store_;
  const ServerConfig* config_;
  PressureMonitor* pressure_;
  const HardwareProfile* profile_;
  auth::Authenticator* auth_;
  const absl::Time started_;
  // Latest usage each SDK client reported, by client id.
  SharedMutex clients_mu_;
  std::map<std::string, v1::ClientUsage> clients_ ABSL_GUARDED_BY(clients_mu_);
  // Local peers' users (the server's, shared with authentication).
  PeerIdentity& peers_;
  // Staging buffers of writes being received.
  InflightBudget inflight_;
  // Every transport's way to the store's bytes.
  DataPath data_path_;
  // The batch calls, for the RPCs and the rings.
  BatchCalls batches_;
  // Streams hold a server thread each for as long as they are open.
  CallSlots watch_slots_;
  CallSlots data_slots_;
  // Last: its ring threads call into the members above, so it stops them
  // first.
  SharedMemorySegments segments_;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_TENSORPAGER_SERVICE_H_
