#include "storage/packed_copy.h"

#include <algorithm>

namespace tensorpager::storage {

PackedCopy::PackedCopy(const DiskCopy& copy)
    : extent_(copy.extent),
      stored_bytes_(copy.stored_bytes),
      stored_checksum_(copy.stored_checksum) {
  const bool inline_codec = copy.codec.size() <= codec_.size();
  if (inline_codec) {
    std::copy(copy.codec.begin(), copy.codec.end(), codec_.begin());
    codec_size_ = static_cast<uint8_t>(copy.codec.size());
  } else {
    codec_size_ = kCodecInRare;
  }
  if (!inline_codec || !copy.key_id.empty() || !copy.nonce.empty()) {
    rare_ = std::make_shared<const Rare>(
        Rare{inline_codec ? "" : copy.codec, copy.key_id, copy.nonce});
  }
}

absl::string_view PackedCopy::codec() const {
  if (codec_size_ == kCodecInRare) return rare_->codec;
  return absl::string_view(codec_.data(), codec_size_);
}

DiskCopy PackedCopy::Unpack() const {
  DiskCopy copy;
  copy.extent = extent_;
  copy.stored_bytes = stored_bytes_;
  copy.stored_checksum = stored_checksum_;
  copy.codec = std::string(codec());
  if (rare_ != nullptr) {
    copy.key_id = rare_->key_id;
    copy.nonce = rare_->nonce;
  }
  return copy;
}

}  // namespace tensorpager::storage
