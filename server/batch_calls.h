// The batch calls (Lookup, PutBlocks, GetBlocks, UnregisterBlocks), for
// both transports that carry them: the gRPC methods and the shared-memory
// ring (one ring request, many blocks). Each block gets its own status;
// one that fails changes nothing and the others go ahead. A call over the
// limits fails whole before anything is allocated or changed.
#ifndef TENSORPAGER_SERVER_BATCH_CALLS_H_
#define TENSORPAGER_SERVER_BATCH_CALLS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/data_path.h"
#include "server/inflight_budget.h"
#include "storage/base/aligned_buffer.h"
#include "storage/block_store.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::server {

// Where a batch's shared-memory ranges (a put's sources, a get's
// destinations) lie: an attached segment checked for its caller (the
// RPCs), or the ring's own segment.
class SharedRanges {
 public:
  virtual ~SharedRanges() = default;
  // The bytes `range` names, valid until this object is destroyed; the
  // errors of SharedMemorySegments::Resolve.
  virtual absl::StatusOr<absl::Span<std::byte>> Resolve(
      const v1::SharedRange& range) = 0;
};

// Bytes in pieces, in order.
using Pieces = std::vector<absl::Span<const std::byte>>;

// The bytes of a get's results, kept out of its reply message: they stay
// in the store's immutable snapshots until gRPC has sent them, so a reply
// costs no copy of its blocks on the server (get_blocks_wire.h frames
// them). The bytes count against the in-flight budget while held.
struct InlineBytes {
  struct Block {
    std::shared_ptr<const base::AlignedBuffer> data;  // null: no bytes
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::vector<Block> blocks;  // one per result, in order
  InflightBudget::Hold hold;
};

class BatchCalls {
 public:
  struct Limits {
    uint32_t max_blocks = 0;
    uint64_t max_bytes = 0;
  };
  // Nothing is owned; all must outlive the calls.
  BatchCalls(storage::BlockStore* store, DataPath* data_path,
             InflightBudget* inflight, Limits limits)
      : store_(store),
        data_path_(data_path),
        inflight_(inflight),
        limits_(limits) {}
  BatchCalls(const BatchCalls&) = delete;
  BatchCalls& operator=(const BatchCalls&) = delete;

  absl::Status Lookup(const v1::LookupRequest& request,
                      v1::LookupResponse* response) const;
  // Blocks whose bytes came in the message: in their data fields, or,
  // with `received`, left where gRPC received them (block i's bytes are
  // (*received)[i], in pieces; put_blocks_wire.h).
  // `admit_new`, when set, is asked before a put creates a block of that
  // many bytes (the caller's quota); its error fails that block alone.
  using AdmitNew = std::function<absl::Status(uint64_t size_bytes)>;
  absl::Status Put(const v1::PutBlocksRequest& request, SharedRanges& ranges,
                   v1::PutBlocksResponse* response,
                   const std::vector<Pieces>* received,
                   const AdmitNew& admit_new = {});
  // A get without destinations sends its bytes back in the reply: into
  // `inline_bytes`, one per result; a transport that gives none (the
  // ring) takes destinations only.
  absl::Status Get(const v1::GetBlocksRequest& request, SharedRanges& ranges,
                   v1::GetBlocksResponse* response, InlineBytes* inline_bytes);
  absl::Status Unregister(const v1::UnregisterBlocksRequest& request,
                          v1::UnregisterBlocksResponse* response);

 private:
  // INVALID_ARGUMENT for more blocks than one call may name.
  absl::Status CheckCount(int blocks, const char* call) const;
  // INVALID_ARGUMENT for more bytes than one call may move.
  absl::Status CheckBytes(uint64_t bytes, const char* call) const;
  // Swaps in together the blocks of a GetBlocks that are on the NVMe tier
  // only; says which ones it tried.
  std::vector<bool> SwapInTogether(
      const std::vector<storage::BlockKey>& keys,
      const std::vector<std::optional<storage::BlockStore::Presence>>& found);
  // One put: creates the block when it is missing, writes it whole, and
  // unregisters it again when it created it and the write failed.
  absl::Status PutOne(const storage::BlockKey& key, const v1::PutBlock& block,
                      absl::Span<const absl::Span<const std::byte>> bytes,
                      std::optional<bool> durable, const AdmitNew& admit_new,
                      v1::PutResult* result);

  storage::BlockStore* store_;
  DataPath* data_path_;
  InflightBudget* inflight_;
  const Limits limits_;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_BATCH_CALLS_H_
