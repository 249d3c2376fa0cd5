#include "storage/codec.h"

#include <blosc.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::storage {
namespace {

// Compressing a sample first keeps incompressible blocks (the common case
// for weights) from costing a full compression pass on every swap-out.
constexpr uint64_t kSampleBytes = 256 * 1024;

const char* BloscCompressor(Codec codec) {
  return codec == Codec::kZstd ? BLOSC_ZSTD_COMPNAME : BLOSC_LZ4_COMPNAME;
}

// Compresses into `dest`; 0 when the result does not fit it.
int BloscCompress(absl::Span<const std::byte> src, uint32_t element_bytes,
                  const CompressionSettings& s, absl::Span<std::byte> dest) {
  const bool shuffle = element_bytes > 1;
  return blosc_compress_ctx(s.level, shuffle ? BLOSC_SHUFFLE : BLOSC_NOSHUFFLE,
                            shuffle ? element_bytes : 1, src.size(), src.data(),
                            dest.data(), dest.size(), BloscCompressor(s.codec),
                            /*blocksize=*/0,
                            /*numinternalthreads=*/1);
}

// Largest stored size that still reaches the minimum ratio.
uint64_t StoredLimit(uint64_t logical, double min_ratio) {
  return static_cast<uint64_t>(static_cast<double>(logical) / min_ratio);
}

}  // namespace

const char* CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return "none";
    case Codec::kLz4:
      return "lz4";
    case Codec::kZstd:
      return "zstd";
  }
  return "none";
}

bool ParseCodec(absl::string_view text, Codec* out) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (Codec c : {Codec::kNone, Codec::kLz4, Codec::kZstd}) {
    if (lower == CodecName(c)) {
      *out = c;
      return true;
    }
  }
  return false;
}

absl::Status ValidateCompressionSettings(const CompressionSettings& s) {
  if (s.level < 1 || s.level > 9) {
    return absl::InvalidArgumentError(absl::StrCat(
        "compression level must be 1 (fastest) to 9 (smallest), not ",
        s.level));
  }
  if (!(s.min_ratio >= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "minimum compression ratio must be at least 1, not ", s.min_ratio));
  }
  return absl::OkStatus();
}

std::optional<CompressedImage> Compress(absl::Span<const std::byte> data,
                                        uint32_t element_bytes,
                                        const CompressionSettings& settings,
                                        BufferPool* pool) {
  auto take = [pool](uint64_t size) {
    return pool != nullptr ? pool->Take(size) : base::AlignedBuffer(size);
  };
  auto give = [pool](base::AlignedBuffer b) {
    if (pool != nullptr) pool->Give(std::move(b));
  };
  if (settings.codec == Codec::kNone || data.empty() ||
      data.size() > BLOSC_MAX_BUFFERSIZE) {
    return std::nullopt;
  }
  if (element_bytes > 255) element_bytes = 1;  // beyond Blosc's typesize
  const uint64_t limit = StoredLimit(data.size(), settings.min_ratio);
  if (limit <= BLOSC_MAX_OVERHEAD) return std::nullopt;
  if (data.size() >= 4 * kSampleBytes) {
    // The middle of the tensor: headers and padding at its ends would make
    // the sample look better than the block.
    const uint64_t at =
        (data.size() / 2) / base::kIoAlignment * base::kIoAlignment;
    base::AlignedBuffer probe = take(kSampleBytes + BLOSC_MAX_OVERHEAD);
    if (!probe.ok()) return std::nullopt;
    const int n = BloscCompress(
        data.subspan(at, kSampleBytes), element_bytes, settings,
        probe.span().subspan(0, StoredLimit(kSampleBytes, settings.min_ratio)));
    give(std::move(probe));
    if (n <= 0) return std::nullopt;
  }
  base::AlignedBuffer out = take(limit);
  if (!out.ok()) return std::nullopt;
  const int n = BloscCompress(data, element_bytes, settings, out.span());
  if (n <= 0) {
    give(std::move(out));
    return std::nullopt;
  }
  out.Truncate(static_cast<uint64_t>(n));
  // Padding up to the alignment reaches the disk: keep it deterministic.
  std::fill(out.data() + n, out.data() + out.capacity(), std::byte{0});
  CompressedImage image{std::move(out), CodecName(settings.codec)};
  if (element_bytes > 1)
    absl::StrAppend(&image.codec, "+shuffle", element_bytes);
  return image;
}

absl::Status Decompress(absl::string_view codec,
                        absl::Span<const std::byte> stored,
                        absl::Span<std::byte> out) {
  if (!absl::StartsWith(codec, "lz4") && !absl::StartsWith(codec, "zstd")) {
    return absl::DataLossError(
        absl::StrCat("unknown codec '", codec, "' in the block's record"));
  }
  size_t nbytes = 0;
  if (blosc_cbuffer_validate(stored.data(), stored.size(), &nbytes) != 0 ||
      nbytes != out.size()) {
    return absl::DataLossError(
        absl::StrCat("compressed image (", codec, ", ", stored.size(),
                     " bytes) does not hold ", out.size(), " bytes"));
  }
  const int n = blosc_decompress_ctx(stored.data(), out.data(), out.size(),
                                     /*numinternalthreads=*/1);
  if (n < 0 || static_cast<uint64_t>(n) != out.size()) {
    return absl::DataLossError(
        absl::StrCat("compressed image (", codec, ") failed to decode"));
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::storage
