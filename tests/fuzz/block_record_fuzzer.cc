// Fuzzes the recovery of block records (storage/metadata_store.h,
// BlockStore::Recover in storage/block_store.cc): the fuzzed records are
// written into a fresh RocksDB under a data dir, then BlockStore::Open must
// recover them without crashing, reporting undecodable records as an error
// and inconsistent ones as lost blocks, and every recovered block must
// then survive the store's operations.
//
// Input: records, each [key length: 1 byte][key][value length: 2 bytes LE]
// [value]. A key is the encoded BlockKey ("namespace\0id") without the
// "b/" prefix, which the harness adds; a value is a serialized
// BlockRecordProto (or anything else).
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "storage/base/aligned_buffer.h"
#include "storage/block_store.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace st = tensorpager::storage;
using tensorpager::fuzz::Reader;

constexpr int kMaxRecords = 16;
constexpr uint64_t kMaxReadBytes = 256 << 10;
constexpr uint64_t kMaxWriteBytes = 64 << 10;

st::BlockStoreOptions Options(const std::string& dir) {
  st::BlockStoreOptions o;
  o.data_dir = dir;
  o.ram_budget_bytes = 4 << 20;
  o.max_swap_bytes = 16 << 20;
  o.max_block_bytes = 1 << 20;
  o.max_blocks = 64;
  o.file_growth_bytes = 1 << 20;
  o.io.kind = st::IoEngineKind::kThreads;
  o.io.direct_io = false;
  o.io.io_unit_bytes = 256 << 10;
  o.io.queue_depth = 2;
  o.max_concurrent_swaps = 1;
  o.eviction_batch_bytes = 1 << 20;
  o.prefetch_depth = 0;  // no thread of its own: deterministic
  return o;
}

// Writes the records as the metadata store keeps them.
bool WriteRecords(const std::string& path, Reader& in) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.write_buffer_size = 1 << 20;
  options.manifest_preallocation_size = 64 << 10;
  options.IncreaseParallelism(1);
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, path, &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteBatch batch;
  for (int i = 0; i < kMaxRecords && !in.empty(); ++i) {
    const absl::string_view key = in.Take(in.Byte());
    const absl::string_view value = in.Take(in.U16());
    batch.Put(absl::StrCat("b/", key),
              rocksdb::Slice(value.data(), value.size()));
  }
  const bool ok = db->Write(rocksdb::WriteOptions(), &batch).ok();
  return db->Close().ok() && ok;
}

void Exercise(st::BlockStore& store) {
  const st::RecoveryReport& rec = store.recovery();
  const st::StoreStats stats = store.Stats();
  TP_FUZZ_CHECK(stats.blocks_registered == rec.blocks);
  TP_FUZZ_CHECK(stats.blocks_lost == rec.blocks_lost);
  TP_FUZZ_CHECK(rec.blocks_lost <= rec.blocks);
  TP_FUZZ_CHECK(rec.blocks_on_disk <= rec.blocks);

  st::ListFilter all;
  all.all_namespaces = true;
  absl::StatusOr<st::ListPage> page = store.List(all, 1000, "");
  TP_FUZZ_CHECK(page.ok());
  TP_FUZZ_CHECK(page->blocks.size() == rec.blocks);
  for (const st::BlockInfo& listed : page->blocks) {
    absl::StatusOr<st::BlockKey> key = st::BlockKey::Make(listed.ns, listed.id);
    TP_FUZZ_CHECK(key.ok());
    absl::StatusOr<st::BlockInfo> info = store.Get(*key);
    TP_FUZZ_CHECK(info.ok());
    TP_FUZZ_CHECK(info->tier != st::Tier::kLost || !info->lost_reason.empty());
    const uint64_t size = info->attrs.size_bytes;
    if (size <= kMaxReadBytes) {
      absl::StatusOr<st::ReadResult> read = store.Read(*key, st::ReadOptions{});
      if (read.ok() && read->data != nullptr) {
        TP_FUZZ_CHECK(read->offset + read->length <= read->data->size());
      }
    }
    (void)store.SwapIn({*key});
    (void)store.SetPinned(*key, !info->attrs.pinned);
    if (size > 0 && size <= kMaxWriteBytes) {
      tensorpager::base::AlignedBuffer data = store.NewBuffer(size);
      TP_FUZZ_CHECK(data.ok());
      std::memset(data.data(), 0x5a, size);
      absl::StatusOr<st::WriteResult> w =
          store.Write(*key, 0, std::move(data), st::WriteOptions{});
      (void)store.SwapOut({*key});
      if (w.ok()) {
        absl::StatusOr<st::ReadResult> back =
            store.Read(*key, st::ReadOptions{});
        TP_FUZZ_CHECK(back.ok());
        TP_FUZZ_CHECK(back->length == size);
        TP_FUZZ_CHECK(std::to_integer<int>(back->data->data()[size - 1]) ==
                      0x5a);
      }
    }
    (void)store.ReportAccesses({{*key, 3}});
  }
  (void)store.SwapOutBytes(8 << 20);
  (void)store.SwapInBytes(8 << 20);
  for (const st::BlockInfo& listed : page->blocks) {
    absl::StatusOr<st::BlockKey> key = st::BlockKey::Make(listed.ns, listed.id);
    TP_FUZZ_CHECK(store.Unregister(*key).ok());
  }
  TP_FUZZ_CHECK(store.Stats().blocks_registered == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = tensorpager::fuzz::ScratchDir() + "/store";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  // Private, as the store makes them (it warns about anything else).
  if (::mkdir(dir.c_str(), 0700) != 0 ||
      ::mkdir((dir + "/metadata").c_str(), 0700) != 0) {
    return 0;
  }
  Reader in(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!WriteRecords(dir + "/metadata", in)) return 0;

  absl::StatusOr<std::unique_ptr<st::BlockStore>> store =
      st::BlockStore::Open(Options(dir));
  if (!store.ok()) {
    // Only an undecodable key or record may keep the store from opening.
    TP_FUZZ_CHECK(absl::IsDataLoss(store.status()));
    return 0;
  }
  Exercise(**store);
  return 0;
}
