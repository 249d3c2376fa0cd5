// The transport-neutral front of the block store's data path. The three
// ways block bytes come and go — the WriteBlock and Access streams, the
// shared-memory RPCs (WriteBlockShared, AccessShared) and the ring's
// handler — all write and read through it, so they take staging from the
// in-flight budget, reach the store and fail alike. Each transport keeps
// only its own part: reading or writing a stream (the WriteBlock stream
// also checks its range itself, against BlockSize, since its messages
// name its own request fields), resolving a segment range with its
// capability and user check, decoding a ring slot.
#ifndef TENSORPAGER_SERVER_DATA_PATH_H_
#define TENSORPAGER_SERVER_DATA_PATH_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/inflight_budget.h"
#include "storage/base/aligned_buffer.h"
#include "storage/base/block_key.h"
#include "storage/block_store.h"

namespace tensorpager::server {

class DataPath {
 public:
  // Neither is owned; both must outlive the front.
  DataPath(storage::BlockStore* store, InflightBudget* inflight)
      : store_(store), inflight_(inflight) {}
  DataPath(const DataPath&) = delete;
  DataPath& operator=(const DataPath&) = delete;

  // A write's bytes on their way into the store: held against the
  // in-flight budget, in a buffer of the store's pool.
  class StagedWrite {
   public:
    StagedWrite(StagedWrite&&) = default;
    StagedWrite& operator=(StagedWrite&&) = default;

    std::byte* data() { return staging_.data(); }
    uint64_t capacity() const { return staging_.size(); }
    // Hands the first `bytes` (at most capacity()) to the store; the
    // staging goes back to the budget when this returns.
    absl::StatusOr<storage::WriteResult> Commit(uint64_t bytes,
                                                std::optional<bool> durable);

   private:
    friend class DataPath;
    StagedWrite(storage::BlockStore* store, const storage::BlockKey& key,
                uint64_t offset, InflightBudget::Hold hold,
                base::AlignedBuffer staging)
        : store_(store),
          key_(key),
          offset_(offset),
          hold_(std::move(hold)),
          staging_(std::move(staging)) {}
    storage::BlockStore* store_;
    storage::BlockKey key_;
    uint64_t offset_;
    InflightBudget::Hold hold_;
    base::AlignedBuffer staging_;
  };

  // The size of block `key`; the store's error (NOT_FOUND for a block
  // nobody registered). Writes ask before they allocate anything.
  absl::StatusOr<uint64_t> BlockSize(const storage::BlockKey& key) const;

  // Staging for a write of up to `capacity` bytes at `offset` of `key`,
  // whose range the caller checked against BlockSize. RESOURCE_EXHAUSTED
  // when the in-flight budget or the pool has no room; `transport` names
  // the write in the budget's refusal ("<transport> of <block>").
  absl::StatusOr<StagedWrite> Stage(const storage::BlockKey& key,
                                    uint64_t offset, uint64_t capacity,
                                    absl::string_view transport);

  // A write whose bytes lie in memory already (a segment range): checked
  // against the block before anything is allocated, then copied into
  // staging first, since the source may change as soon as the call
  // answers.
  absl::StatusOr<storage::WriteResult> Write(const storage::BlockKey& key,
                                             uint64_t offset,
                                             std::optional<bool> durable,
                                             absl::Span<const std::byte> source,
                                             absl::string_view transport);
  // The same for bytes in pieces (as gRPC received them), gathered into
  // the staging buffer in order.
  absl::StatusOr<storage::WriteResult> Write(
      const storage::BlockKey& key, uint64_t offset,
      std::optional<bool> durable,
      absl::Span<const absl::Span<const std::byte>> pieces,
      absl::string_view transport);

  // The block's range as the store returns it (swapped in if need be).
  absl::StatusOr<storage::ReadResult> Read(const storage::BlockKey& key,
                                           const storage::ReadOptions& options);

  // Copies the block's range [offset, +length) (length 0: to the end) to
  // the start of `destination`; INVALID_ARGUMENT when it does not fit
  // there. The result's `length` says how many bytes were copied; it
  // holds no snapshot of the bytes (`data` is null).
  // `swapped_in_for_read`: see storage::ReadOptions.
  absl::StatusOr<storage::ReadResult> ReadInto(
      const storage::BlockKey& key, uint64_t offset, uint64_t length,
      absl::Span<std::byte> destination, bool swapped_in_for_read = false);

 private:
  storage::BlockStore* store_;
  InflightBudget* inflight_;
};

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_DATA_PATH_H_
