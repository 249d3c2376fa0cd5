// BlockStore: rebuilding the index from the metadata records at start.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {

absl::Status BlockStore::Recover() {
  const absl::Time start = absl::Now();
  MutexLock lock(&mu_);
  // Entries with a disk copy, whose extents are claimed in one pass.
  std::vector<Entry*> on_disk;
  absl::Status s = meta_->ForEach([&](const BlockKey& key,
                                      const BlockRecordProto&
                                          r) ABSL_NO_THREAD_SAFETY_ANALYSIS {
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
    e->lost_reason = std::string(r.lost_reason());
    if (!invalid.empty() && e->lost_reason.empty()) {
      e->lost_reason = absl::StrCat(
          "its metadata record is invalid after restart (", invalid, ")");
    }
    ++recovery_.blocks;
    std::optional<DiskCopy> copy = DiskCopy::FromRecord(r);
    if (copy && e->lost_reason.empty()) {
      e->disk.emplace(*copy);  // claimed below, with all the others
      on_disk.push_back(e.get());
    } else if (r.written() && e->lost_reason.empty()) {
      e->lost_reason =
          "it was only in RAM when the server stopped; write it again";
    }
    IndexSequence(e.get());
    const absl::string_view index_key = e->encoded;
    blocks_.emplace(index_key, std::move(e));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
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
