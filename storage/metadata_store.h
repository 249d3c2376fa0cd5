// Block metadata in RocksDB under the data dir. Writes that change where a
// block's bytes live are synced (WAL fsync) so a restart, even after a power
// loss, knows every block that reached the disk.
#ifndef TENSORPAGER_STORAGE_METADATA_STORE_H_
#define TENSORPAGER_STORAGE_METADATA_STORE_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/base/block_key.h"
#include "storage/private_dir.h"
#include "storage/proto/block_record.pb.h"

namespace rocksdb {
class DB;
}

namespace tensorpager::storage {

class MetadataStore {
 public:
  // Opens (creating when missing) the database in `path`. A database
  // locked by another process is FAILED_PRECONDITION. Compactions wait
  // for EnableCompactions.
  static absl::StatusOr<std::unique_ptr<MetadataStore>> Open(
      const std::string& path);
  ~MetadataStore();

  // Lets RocksDB compact, once the startup scan of the records is done (a
  // compaction during the scan competes with it for the cores).
  absl::Status EnableCompactions();
  bool compactions_enabled() const;

  absl::Status Put(BlockKeyView key, const BlockRecordProto& record, bool sync);
  // Applies all puts atomically (one WAL write, one sync for the batch).
  absl::Status PutBatch(
      const std::vector<std::pair<BlockKey, BlockRecordProto>>& records,
      bool sync);
  absl::Status Delete(BlockKeyView key, bool sync);
  // Deletes all atomically (one WAL write, one sync for the batch).
  absl::Status DeleteBatch(absl::Span<const BlockKeyView> keys, bool sync);
  // NOT_FOUND when absent.
  absl::StatusOr<BlockRecordProto> Get(BlockKeyView key) const;
  using Visitor =
      absl::FunctionRef<absl::Status(BlockKeyView, const BlockRecordProto&)>;
  // Visits every record in key order; stops at the first error, which is
  // returned. An undecodable record is DATA_LOSS naming the key.
  absl::Status ForEach(Visitor visit) const;
  // ForEach's scan without the parse: the visitor gets each record's bytes
  // (valid only during the call) and parses them where it wants them with
  // ParseRecord. An undecodable key is DATA_LOSS.
  using RawVisitor =
      absl::FunctionRef<absl::Status(BlockKeyView, absl::string_view)>;
  absl::Status ForEachRaw(RawVisitor visit) const;
  // Parses a record's bytes; DATA_LOSS naming `key` when they do not parse.
  static absl::Status ParseRecord(BlockKeyView key, absl::string_view value,
                                  BlockRecordProto* record);

 private:
  explicit MetadataStore(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_METADATA_STORE_H_
