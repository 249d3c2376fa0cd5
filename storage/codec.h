// Compression of block images before they go to the NVMe tier. Tensors are
// often incompressible (fp16 weights and activations are close to random in
// their low bytes), so every codec is tried on a sample first and the block
// is stored raw when the ratio is poor. A byte shuffle by element size (as
// Blosc does) groups the exponent bytes of fp16/bf16/fp32 elements, which is
// where most of a tensor's redundancy is.
#ifndef TENSORPAGER_STORAGE_CODEC_H_
#define TENSORPAGER_STORAGE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "storage/base/aligned_buffer.h"
#include "storage/buffer_pool.h"

namespace tensorpager::storage {

// Values equal tensorpager.v1.Compression.
enum class Codec : uint8_t { kNone = 1, kLz4 = 2, kZstd = 3 };

// "none", "lz4", "zstd" (what ParseCodec accepts, case-insensitive).
const char* CodecName(Codec codec);
bool ParseCodec(absl::string_view text, Codec* out);

struct CompressionSettings {
  Codec codec = Codec::kNone;
  // 1 (fastest) .. 9 (smallest).
  int level = 1;
  // A block is stored compressed only when logical / stored bytes reaches
  // this; below it the CPU spent on every swap-in is not worth the space.
  double min_ratio = 1.1;
};

// INVALID_ARGUMENT unless level is 1..9 and min_ratio is at least 1.
absl::Status ValidateCompressionSettings(const CompressionSettings& s);

// A block's bytes as stored on disk when compressed.
struct CompressedImage {
  base::AlignedBuffer bytes;  // size() is the stored length
  // What the record keeps and Decompress takes: the codec's name, plus
  // "+shuffleN" when bytes were shuffled by N-byte elements.
  std::string codec;
};

// Compresses `data`, whose elements are `element_bytes` wide (0 or 1: no
// shuffle). nullopt when settings.codec is kNone, the data is too large for
// the codec, memory is short, or the ratio misses settings.min_ratio: the
// caller then stores the bytes raw. Buffers come from `pool` when given.
std::optional<CompressedImage> Compress(absl::Span<const std::byte> data,
                                        uint32_t element_bytes,
                                        const CompressionSettings& settings,
                                        BufferPool* pool = nullptr);

// Restores `out.size()` logical bytes from an image Compress produced.
// DATA_LOSS when the image does not decode to exactly that many bytes.
absl::Status Decompress(absl::string_view codec,
                        absl::Span<const std::byte> stored,
                        absl::Span<std::byte> out);

}  // namespace tensorpager::storage

#endif  // TENSORPAGER_STORAGE_CODEC_H_
