#include "storage/testing/memory_io_engine.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tensorpager::storage::testing {

uint64_t MemoryFile::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_.size();
}

void MemoryFile::Grow(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes > bytes_.size()) bytes_.resize(bytes);
}

absl::Status MemoryFile::ReadAt(uint64_t offset,
                                absl::Span<std::byte> out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset > bytes_.size() || out.size() > bytes_.size() - offset) {
    return absl::OutOfRangeError(
        absl::StrCat("reading ", out.size(), " bytes at offset ", offset,
                     " of the memory file: the file ends at ", bytes_.size()));
  }
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return absl::OkStatus();
}

void MemoryFile::WriteAt(uint64_t offset, absl::Span<const std::byte> data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset + data.size() > bytes_.size()) bytes_.resize(offset + data.size());
  if (!data.empty())
    std::memcpy(bytes_.data() + offset, data.data(), data.size());
}

void MemoryFile::Zero(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  const uint64_t end = std::min<uint64_t>(offset + length, bytes_.size());
  for (uint64_t i = offset; i < end; ++i) bytes_[i] = std::byte{0};
}

void MemoryFile::Damage(uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t end = std::min<uint64_t>(offset + length, bytes_.size());
  for (uint64_t i = offset; i < end; ++i) bytes_[i] = ~bytes_[i];
}

void MemoryIoEngine::TransferBatch(absl::Span<IoRequest> requests) {
  for (IoRequest& r : requests) {
    r.status = CheckIoRequest(r.offset, r.data.data(), r.data.size());
    if (!r.status.ok()) continue;
    if (r.op == IoOp::kWrite) {
      file_->WriteAt(r.offset, r.data);
    } else {
      r.status = file_->ReadAt(r.offset, r.data);
    }
  }
}

absl::Status MemoryIoEngine::Reserve(uint64_t bytes) {
  file_->Grow(bytes);
  return absl::OkStatus();
}

absl::StatusOr<bool> MemoryIoEngine::Discard(uint64_t offset, uint64_t length) {
  file_->Zero(offset, length);
  return true;
}

}  // namespace tensorpager::storage::testing
