#include "storage/packed_copy.h"

#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "storage/codec.h"

namespace tensorpager::storage {
namespace {

constexpr int kCodecBits = 2;
constexpr uint8_t kCodecMask = (1 << kCodecBits) - 1;
constexpr uint32_t kMaxShuffle = 0xff >> kCodecBits;

// Codec numbers start at 1; the code's low bits at 0.
uint8_t LowBits(Codec c) { return static_cast<uint8_t>(c) - 1; }

std::string CodecText(uint8_t code) {
  std::string name = CodecName(static_cast<Codec>((code & kCodecMask) + 1));
  if (const uint32_t shuffle = code >> kCodecBits; shuffle != 0) {
    absl::StrAppend(&name, "+shuffle", shuffle);
  }
  return name;
}

// The number of `name` ("zstd+shuffle2": zstd, element size 2), or
// `in_rare` when it has none: only names that CodecText gives back
// identical have one.
uint8_t CodecCode(absl::string_view name, uint8_t in_rare) {
  absl::string_view base = name;
  uint32_t shuffle = 0;
  if (const size_t plus = name.find('+'); plus != absl::string_view::npos) {
    base = name.substr(0, plus);
    absl::string_view suffix = name.substr(plus + 1);
    // Digits only, no leading zero: the number prints back as it was.
    if (!absl::ConsumePrefix(&suffix, "shuffle") || suffix.empty() ||
        suffix[0] == '0' ||
        suffix.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(suffix, &shuffle) || shuffle > kMaxShuffle) {
      return in_rare;
    }
  }
  for (Codec c : {Codec::kNone, Codec::kLz4, Codec::kZstd}) {
    if (base == CodecName(c)) {
      return static_cast<uint8_t>(LowBits(c) | (shuffle << kCodecBits));
    }
  }
  return in_rare;
}

}  // namespace

PackedCopy::PackedCopy(const DiskCopy& copy)
    : extent_(copy.extent),
      stored_checksum_(copy.stored_checksum),
      codec_(CodecCode(copy.codec, kCodecInRare)),
      flags_(kPresent) {
  const bool fits = copy.stored_bytes <= copy.extent.length &&
                    copy.extent.length - copy.stored_bytes <=
                        std::numeric_limits<uint32_t>::max();
  if (fits) {
    padding_ = static_cast<uint32_t>(copy.extent.length - copy.stored_bytes);
  } else {
    flags_ |= kStoredInRare;
  }
  if (codec_ == kCodecInRare || !fits || !copy.key_id.empty() ||
      !copy.nonce.empty()) {
    rare_ = std::make_unique<const Rare>(
        Rare{codec_ == kCodecInRare ? copy.codec : "", copy.key_id, copy.nonce,
             fits ? 0 : copy.stored_bytes});
  }
}

uint64_t PackedCopy::stored_bytes() const {
  if ((flags_ & kStoredInRare) != 0) return rare_->stored_bytes;
  return extent_.length - padding_;
}

std::string PackedCopy::codec() const {
  if (codec_ == kCodecInRare) return rare_->codec;
  return CodecText(codec_);
}

bool PackedCopy::compressed() const {
  if (codec_ == kCodecInRare) return rare_->codec != "none";
  return (codec_ & kCodecMask) != LowBits(Codec::kNone) ||
         (codec_ >> kCodecBits) != 0;
}

DiskCopy PackedCopy::Unpack() const {
  DiskCopy copy;
  copy.extent = extent_;
  copy.stored_bytes = stored_bytes();
  copy.stored_checksum = stored_checksum_;
  copy.codec = codec();
  if (rare_ != nullptr) {
    copy.key_id = rare_->key_id;
    copy.nonce = rare_->nonce;
  }
  return copy;
}

}  // namespace tensorpager::storage
