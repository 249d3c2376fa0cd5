// BlockStore: rebuilding the index from the metadata records at start.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {
namespace {

// Threads that scan the records at start, each over its own key range.
constexpr int kRecoveryThreads = 4;

}  // namespace

std::unique_ptr<BlockStore::Entry> BlockStore::EntryFromRecord(
    BlockKeyView key, const BlockRecordProto& r) {
  auto e = std::make_unique<Entry>();
  e->encoded = key.Encode();
  e->attrs = PackedAttributes::FromRecord(r);
  // Values this server never writes make the block lost, not trusted: an
  // unknown region type would index past the per-region tallies, an
  // unknown codec would compress under another codec's name.
  std::string invalid;
  if (r.region_type() >= kNumRegionTypes) {
    invalid = absl::StrCat("unknown region type ", r.region_type());
    e->attrs.region_type = RegionType::kTensorData;
  }
  if (r.requested_codec() > static_cast<uint32_t>(Codec::kZstd)) {
    invalid = absl::StrCat("unknown codec ", r.requested_codec());
    e->attrs.codec.reset();
  }
  e->written = r.written();
  e->version = r.version();
  e->checksum = r.checksum();
  e->access_count = r.access_count();
  e->last_access_ms = r.last_access_unix_ms();
  e->created_ms = r.created_unix_ms();
  if (!r.lost_reason().empty()) {
    e->lost_reason = std::string(r.lost_reason());
  } else if (!invalid.empty()) {
    e->lost_reason = absl::StrCat(
        "its metadata record is invalid after restart (", invalid, ")");
  }
  std::optional<DiskCopy> copy = DiskCopy::FromRecord(r);
  if (copy && e->lost_reason.empty()) {
    e->disk.emplace(*copy);  // claimed later, with all the others
  } else if (r.written() && e->lost_reason.empty()) {
    e->lost_reason =
        "it was only in RAM when the server stopped; write it again";
  }
  return e;
}

absl::Status BlockStore::Recover() {
  const absl::Time start = absl::Now();
  // Records are scanned in key ranges on several threads, each building
  // its entries apart; the index is then filled in key order.
  const int threads = std::clamp<int>(
      static_cast<int>(std::thread::hardware_concurrency()), 1,
      kRecoveryThreads);
  const std::vector<std::string> splits = meta_->SplitKeys(threads);
  struct Part {
    std::vector<std::unique_ptr<Entry>> entries;
    absl::Status status;
  };
  std::vector<Part> parts(splits.size() + 1);
  auto scan = [&](size_t i) {
    const absl::string_view from = i == 0 ? "" : splits[i - 1];
    const absl::string_view to = i == splits.size() ? "" : splits[i];
    parts[i].status = meta_->ForEachIn(
        from, to, [&](BlockKeyView key, const BlockRecordProto& r) {
          parts[i].entries.push_back(EntryFromRecord(key, r));
          return absl::OkStatus();
        });
  };
  std::vector<std::thread> scanners;
  for (size_t i = 1; i < parts.size(); ++i) scanners.emplace_back(scan, i);
  scan(0);
  for (std::thread& t : scanners) t.join();

  MutexLock lock(&mu_);
  std::vector<Entry*> on_disk;  // claimed in one pass below
  size_t records = 0;
  for (const Part& part : parts) records += part.entries.size();
  by_key_.reserve(records);
  for (Part& part : parts) {
    if (!part.status.ok()) return part.status;
    for (std::unique_ptr<Entry>& e : part.entries) {
      ++recovery_.blocks;
      if (e->disk) on_disk.push_back(e.get());
      IndexSequence(e.get());
      Index(std::move(e));
    }
    std::vector<std::unique_ptr<Entry>>().swap(part.entries);
  }
  std::vector<Extent> extents;
  std::vector<uint64_t> stored_bytes;
  extents.reserve(on_disk.size());
  stored_bytes.reserve(on_disk.size());
  for (const Entry* e : on_disk) {
    extents.push_back(e->disk->extent());
    stored_bytes.push_back(e->disk->stored_bytes());
  }
  const std::vector<absl::Status> claims =
      disk_->ClaimMany(extents, stored_bytes);
  for (size_t i = 0; i < on_disk.size(); ++i) {
    Entry* e = on_disk[i];
    if (claims[i].ok()) {
      ++recovery_.blocks_on_disk;
      recovery_.bytes_on_disk += e->attrs.size_bytes;
    } else {
      e->disk.reset();
      e->lost_reason = absl::StrCat("its disk extent is invalid after restart (",
                                    claims[i].message(), ")");
    }
  }
  for (const auto& [key, e] : blocks_) {
    if (!e->lost_reason.empty()) ++recovery_.blocks_lost;
    Count(*e, +1);
  }
  recovery_.duration = absl::Now() - start;
  return absl::OkStatus();
}

}  // namespace tensorpager::storage
