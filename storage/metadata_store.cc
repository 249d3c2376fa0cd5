#include "storage/metadata_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::storage {
namespace {

// Block records live under this prefix; the rest of the key space is free
// for future record kinds.
constexpr absl::string_view kBlockPrefix = "b/";

std::string RecordKey(BlockKeyView key) {
  return absl::StrCat(kBlockPrefix, key.Encode());
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat("metadata ", what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(msg, "; free space on the data dir's filesystem"));
  }
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat(msg, "; is another tensorpagerd using this data dir?"));
  }
  return absl::InternalError(msg);
}

}  // namespace

MetadataStore::MetadataStore(std::unique_ptr<rocksdb::DB> db)
    : db_(std::move(db)) {}

MetadataStore::~MetadataStore() {
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Open(
    const std::string& path) {
  // RocksDB would create the directory 0755 and its files with the umask;
  // a private directory keeps them from other users whatever the files'
  // modes.
  if (std::error_code ec = MakePrivateDirectory(path); ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create metadata dir ", path, ": ", ec.message()));
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  // Records are small and few compared with block bytes; keep RocksDB's
  // footprint modest so the RAM tier gets the memory.
  options.write_buffer_size = 8 << 20;
  options.max_write_buffer_number = 2;
  options.keep_log_file_num = 4;
  options.max_log_file_size = 8 << 20;
  options.IncreaseParallelism(2);
  // Reuse written WAL files: a synced write then overwrites allocated
  // blocks within the file's size, so fdatasync flushes the data alone
  // instead of also writing the inode (on ext4 a second synchronous I/O
  // per commit, which writers of every stream queue behind).
  options.recycle_log_file_num = 4;
  // No compaction until the owner has read the records (EnableCompactions):
  // one that starts at open (L0 left full by the last run) takes a core
  // from the recovery scan, 2.6 s of a 10M-block restart on two cores.
  options.disable_auto_compactions = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open ", path));
  return std::unique_ptr<MetadataStore>(
      new MetadataStore(std::unique_ptr<rocksdb::DB>(raw)));
}

absl::Status MetadataStore::EnableCompactions() {
  return FromRocks(db_->SetOptions({{"disable_auto_compactions", "false"}}),
                   "enable compactions");
}

bool MetadataStore::compactions_enabled() const {
  return !db_->GetOptions().disable_auto_compactions;
}

absl::Status MetadataStore::Put(BlockKeyView key,
                                const BlockRecordProto& record, bool sync) {
  std::string value;
  if (!record.SerializeToString(&value)) {
    return absl::InternalError("cannot serialize block record");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Put(wo, RecordKey(key), value),
                   absl::StrCat("put ", key.ToString()));
}

absl::Status MetadataStore::PutBatch(
    const std::vector<std::pair<BlockKey, BlockRecordProto>>& records,
    bool sync) {
  rocksdb::WriteBatch batch;
  std::string value;
  for (const auto& [key, record] : records) {
    if (!record.SerializeToString(&value)) {
      return absl::InternalError("cannot serialize block record");
    }
    batch.Put(RecordKey(key), value);
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, &batch), "batch put");
}

absl::Status MetadataStore::Delete(BlockKeyView key, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Delete(wo, RecordKey(key)),
                   absl::StrCat("delete ", key.ToString()));
}

absl::Status MetadataStore::DeleteBatch(absl::Span<const BlockKeyView> keys,
                                        bool sync) {
  rocksdb::WriteBatch batch;
  for (const BlockKeyView& key : keys) batch.Delete(RecordKey(key));
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, &batch), "batch delete");
}

absl::StatusOr<BlockRecordProto> MetadataStore::Get(BlockKeyView key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), RecordKey(key), &value);
  if (!s.ok()) return FromRocks(s, absl::StrCat("get ", key.ToString()));
  BlockRecordProto record;
  if (absl::Status parsed = ParseRecord(key, value, &record); !parsed.ok()) {
    return parsed;
  }
  return record;
}

absl::Status MetadataStore::ParseRecord(BlockKeyView key,
                                        absl::string_view value,
                                        BlockRecordProto* record) {
  if (!record->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("metadata record of ", key.ToString(), " is corrupt"));
  }
  return absl::OkStatus();
}

absl::Status MetadataStore::ForEach(Visitor visit) const {
  BlockRecordProto record;  // reused: its fields keep their allocations
  return ForEachRaw([&](BlockKeyView key, absl::string_view value) {
    if (absl::Status s = ParseRecord(key, value, &record); !s.ok()) return s;
    return visit(key, record);
  });
}

absl::Status MetadataStore::ForEachRaw(RawVisitor visit) const {
  const std::string first(kBlockPrefix);
  // Past every block record: the prefix with its last byte raised.
  std::string last(kBlockPrefix);
  ++last.back();
  const rocksdb::Slice upper(last);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper;
  // Recovery reads each record once: caching the blocks would only evict
  // what the running server caches.
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
  for (it->Seek(first); it->Valid(); it->Next()) {
    const absl::string_view raw(it->key().data(), it->key().size());
    if (!absl::StartsWith(raw, kBlockPrefix)) break;
    absl::StatusOr<BlockKeyView> key =
        BlockKeyView::Decode(raw.substr(kBlockPrefix.size()));
    if (!key.ok()) {
      return absl::DataLossError(absl::StrCat(
          "metadata holds an undecodable block key: ", key.status().message()));
    }
    const absl::string_view value(it->value().data(), it->value().size());
    if (absl::Status s = visit(*key, value); !s.ok()) return s;
  }
  return FromRocks(it->status(), "scan");
}

}  // namespace tensorpager::storage
