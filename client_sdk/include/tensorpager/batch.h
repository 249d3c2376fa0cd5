// Batch calls of tensorpager::Client: many whole blocks of one namespace
// in one call, for inference engines that move KV cache as batches of small
// pages. Each block gets its own outcome; one bad or missing block fails
// alone and changes nothing. A batch larger than the server's limits is
// split by the SDK into calls within them.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BATCH_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager {

// A whole block to write, created when it does not exist yet. An existing
// block is overwritten when its size, dtype and shape match the put's;
// otherwise the put fails with FAILED_PRECONDITION for that block.
struct PutItem {
  std::string id;
  // Host memory; must stay valid until the call returns.
  absl::Span<const std::byte> data;
  // Attributes of a block the put creates.
  v1::RegionType region_type = v1::TENSOR_DATA;
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
  std::map<std::string, std::string> labels;
  std::optional<std::pair<std::string, uint32_t>> sequence;  // group, index
  v1::Compression compression = v1::COMPRESSION_UNSPECIFIED;
  bool pinned = false;
};

struct PutOutcome {
  absl::Status status;
  bool created = false;
  uint64_t version = 0;
  bool durable = false;
};

// A whole block to read into host memory of at least the block's size.
struct GetItem {
  std::string id;
  absl::Span<std::byte> out;
};

struct GetOutcome {
  absl::Status status;
  uint64_t size_bytes = 0;  // bytes written to the front of `out`
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
  v1::RegionType region_type = v1::TENSOR_DATA;
  std::map<std::string, std::string> labels;
  bool hit = false;
  uint64_t version = 0;
};

struct LookupOutcome {
  // One per id, in order.
  std::vector<v1::LookupEntry> entries;
  // Ids present, counting from the first (TIER_EMPTY and TIER_LOST blocks
  // are not present).
  uint32_t prefix_hits = 0;
};

struct UnregisterOutcome {
  // One per id for the ids form; empty for the prefix form.
  std::vector<absl::Status> results;
  uint64_t blocks_removed = 0;
  uint64_t ram_bytes_freed = 0;
  uint64_t disk_bytes_freed = 0;
  // Prefix form: blocks that could not be removed, and the first reason.
  uint64_t blocks_failed = 0;
  absl::Status first_failure;
};

// Which way a client's batches travel, and why (said once in its log).
struct BatchPath {
  bool shared_memory = false;  // arena + request ring, else gRPC messages
  std::string reason;
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BATCH_H_
