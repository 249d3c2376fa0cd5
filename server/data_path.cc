#include "server/data_path.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tensorpager::server {

absl::StatusOr<storage::WriteResult> DataPath::StagedWrite::Commit(
    uint64_t bytes, std::optional<bool> durable) {
  staging_.Truncate(bytes);
  return store_->Write(key_, offset_, std::move(staging_),
                       storage::WriteOptions{durable});
}

absl::StatusOr<uint64_t> DataPath::BlockSize(
    const storage::BlockKey& key) const {
  absl::StatusOr<storage::BlockInfo> info = store_->Get(key);
  if (!info.ok()) return info.status();
  return info->attrs.size_bytes;
}

absl::StatusOr<DataPath::StagedWrite> DataPath::Stage(
    const storage::BlockKey& key, uint64_t offset, uint64_t capacity,
    absl::string_view transport) {
  absl::StatusOr<InflightBudget::Hold> hold = inflight_->Take(
      capacity, absl::StrCat(transport, " of ", key.ToString()));
  if (!hold.ok()) return hold.status();
  base::AlignedBuffer staging = store_->NewBuffer(capacity);
  if (!staging.ok()) {
    return absl::ResourceExhaustedError(
        "server is out of memory for the write's staging buffer; retry "
        "later");
  }
  return StagedWrite(store_, key, offset, *std::move(hold), std::move(staging));
}

absl::StatusOr<storage::WriteResult> DataPath::Write(
    const storage::BlockKey& key, uint64_t offset, std::optional<bool> durable,
    absl::Span<const std::byte> source, absl::string_view transport) {
  return Write(key, offset, durable, {&source, 1}, transport);
}

absl::StatusOr<storage::WriteResult> DataPath::Write(
    const storage::BlockKey& key, uint64_t offset, std::optional<bool> durable,
    absl::Span<const absl::Span<const std::byte>> pieces,
    absl::string_view transport) {
  uint64_t length = 0;
  for (const absl::Span<const std::byte>& p : pieces) length += p.size();
  // Checked before anything is allocated: the block must exist and the
  // range fit it (the store checks again under its lock).
  absl::StatusOr<uint64_t> size = BlockSize(key);
  if (!size.ok()) return size.status();
  if (offset > *size || length > *size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "write of ", length, " bytes at offset ", offset,
        " does not fit block ", key.ToString(), " of ", *size, " bytes"));
  }
  absl::StatusOr<StagedWrite> staged = Stage(key, offset, length, transport);
  if (!staged.ok()) return staged.status();
  std::byte* to = staged->data();
  for (const absl::Span<const std::byte>& p : pieces) {
    std::memcpy(to, p.data(), p.size());
    to += p.size();
  }
  return staged->Commit(length, durable);
}

absl::StatusOr<storage::ReadResult> DataPath::Read(
    const storage::BlockKey& key, const storage::ReadOptions& options) {
  return store_->Read(key, options);
}

absl::StatusOr<storage::ReadResult> DataPath::ReadInto(
    const storage::BlockKey& key, uint64_t offset, uint64_t length,
    absl::Span<std::byte> destination, bool swapped_in_for_read) {
  storage::ReadOptions options;
  options.offset = offset;
  options.length = length;
  options.swapped_in_for_read = swapped_in_for_read;
  absl::StatusOr<storage::ReadResult> read = Read(key, options);
  if (!read.ok()) return read.status();
  if (read->length > destination.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "destination holds ", destination.size(), " bytes but ", read->length,
        " bytes of ", key.ToString(), " were asked for; give a larger range"));
  }
  std::memcpy(destination.data(), read->data->data() + read->offset,
              read->length);
  // Copied: the block's snapshot goes back now, not when the caller has
  // answered.
  read->data.reset();
  return read;
}

}  // namespace tensorpager::server
