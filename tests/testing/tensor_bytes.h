// Tensor-like test data: bf16 values drawn like activations or KV-cache
// entries (normal, small scale), whose sign/exponent bytes repeat a lot
// while the mantissa bytes are close to random — the shape of data the
// NVMe tier's shuffle + codec is meant for.
#ifndef TENSORPAGER_TESTS_TESTING_TENSOR_BYTES_H_
#define TENSORPAGER_TESTS_TESTING_TENSOR_BYTES_H_

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace tensorpager::testing {

// `bytes` (even) of bf16 values ~ N(0, scale).
inline std::string Bf16TensorBytes(uint64_t bytes, uint64_t seed,
                                   float scale = 0.05f) {
  std::string out(bytes, '\0');
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  for (uint64_t i = 0; i + 2 <= bytes; i += 2) {
    const float v = normal(rng);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    const uint16_t bf16 = static_cast<uint16_t>(bits >> 16);
    std::memcpy(out.data() + i, &bf16, 2);
  }
  return out;
}

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_TESTING_TENSOR_BYTES_H_
