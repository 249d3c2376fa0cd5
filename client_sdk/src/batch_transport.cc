#include "client_sdk/src/batch_transport.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/rpc_util.h"
#include "client_sdk/src/shared_arena.h"
#include "storage/shared_memory/ring_layout.h"

namespace tensorpager::internal {
namespace {

// Blocks share one arena range, each at a 64-byte boundary.
constexpr uint64_t kAlign = 64;
uint64_t Align(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Reply areas: bounds of a serialized reply per block (the server cuts a
// block's message at 1 KiB; a get's labels take at most 2 KiB of keys and
// values plus their framing, its shape 16 dimensions).
constexpr uint64_t kReplyBase = 256;
constexpr uint64_t kLookupReplyPerBlock = 32;
constexpr uint64_t kPutReplyPerBlock = 1024 + 64;
constexpr uint64_t kGetReplyPerBlock = 1024 + 64 + 2560 + 16 * 11;

// The bytes of a batch's blocks laid out in one range of the arena.
struct Layout {
  std::vector<uint64_t> offsets;  // within the range
  uint64_t bytes = 0;
};

template <typename Sizes>
Layout LayOut(const Sizes& sizes) {
  Layout layout;
  layout.offsets.reserve(sizes.size());
  for (const auto& s : sizes) {
    layout.offsets.push_back(layout.bytes);
    layout.bytes += Align(s.size());
  }
  return layout;
}

void Name(const SharedArena::Range& range, uint64_t offset, uint64_t length,
          v1::SharedRange* out) {
  range.Describe(out);
  out->set_offset(range.offset() + offset);
  out->set_length(length);
}

}  // namespace

BatchTransport::Limits BatchTransport::limits() {
  std::call_once(limits_once_, [this] {
    v1::StatusResponse status;
    grpc::Status s = WithRetries(
        options_.timeout, options_.max_retries, options_.retry_backoff,
        [&](grpc::ClientContext& ctx) {
          return blocks_->control().Status(&ctx, v1::StatusRequest(), &status);
        });
    if (s.ok() && status.max_batch_blocks() > 0) {
      limits_.max_blocks = status.max_batch_blocks();
    }
    if (s.ok() && status.max_batch_bytes() > 0) {
      limits_.max_bytes = status.max_batch_bytes();
    }
    // A batch through shared memory takes one range of the arena: half of
    // it, so that two calls can be in flight.
    if (blocks_->shared_wanted() && options_.shared_memory_bytes > 0) {
      limits_.max_bytes =
          std::min(limits_.max_bytes, options_.shared_memory_bytes / 2);
    }
  });
  return limits_;
}

std::optional<absl::Status> BatchTransport::CallRing(
    SharedArena& arena, uint32_t op, const google::protobuf::MessageLite& in,
    uint64_t reply_bytes, google::protobuf::MessageLite* out) {
  const uint64_t request_bytes = in.ByteSizeLong();
  std::optional<SharedArena::Range> range =
      arena.Allocate(Align(request_bytes) + reply_bytes);
  if (!range) return std::nullopt;
  in.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(range->data()));
  shared_memory::RingRequest call;
  call.op = op;
  call.data_offset = range->offset();
  call.data_length = request_bytes;
  call.offset = range->offset() + Align(request_bytes);
  call.length = reply_bytes;
  std::optional<shared_memory::RingCompletion> reply =
      arena.ring().Call(call, options_.timeout);
  if (!reply) return std::nullopt;
  if (!reply->status.ok()) return reply->status;
  if (reply->length > reply_bytes ||
      !out->ParseFromArray(range->data() + Align(request_bytes),
                           static_cast<int>(reply->length))) {
    return absl::InternalError("unreadable batch reply in the ring");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::LookupResponse> BatchTransport::Lookup(
    const v1::LookupRequest& request) {
  v1::LookupResponse response;
  if (SharedArena* arena = blocks_->Arena()) {
    if (std::optional<absl::Status> s =
            CallRing(*arena, shared_memory::kLookup, request,
                     kReplyBase + kLookupReplyPerBlock * request.ids_size(),
                     &response)) {
      if (!s->ok()) return *s;
      return response;
    }
  }
  grpc::Status s = WithRetries(
      options_.timeout, options_.max_retries, options_.retry_backoff,
      [&](grpc::ClientContext& ctx) {
        return blocks_->data_stub().Lookup(&ctx, request, &response);
      });
  if (!s.ok()) return FromGrpc(s);
  return response;
}

absl::StatusOr<v1::PutBlocksResponse> BatchTransport::Put(
    v1::PutBlocksRequest request,
    absl::Span<const absl::Span<const std::byte>> sources) {
  SharedArena* arena = blocks_->Arena();
  const Layout layout = LayOut(sources);
  std::optional<SharedArena::Range> range =
      arena != nullptr ? arena->Allocate(layout.bytes) : std::nullopt;
  if (range) {
    for (size_t i = 0; i < sources.size(); ++i) {
      std::memcpy(range->data() + layout.offsets[i], sources[i].data(),
                  sources[i].size());
      Name(*range, layout.offsets[i], sources[i].size(),
           request.mutable_blocks(static_cast<int>(i))->mutable_shared());
    }
    v1::PutBlocksResponse response;
    if (std::optional<absl::Status> s =
            CallRing(*arena, shared_memory::kPutBlocks, request,
                     kReplyBase + kPutReplyPerBlock * request.blocks_size(),
                     &response)) {
      if (!s->ok()) return *s;
      blocks_->CountShared(layout.bytes, /*ring=*/true);
      return response;
    }
    grpc::ClientContext ctx;
    SetDeadline(ctx, options_.timeout);
    absl::Status s =
        FromGrpc(blocks_->data_stub().PutBlocks(&ctx, request, &response));
    if (s.ok()) {
      blocks_->CountShared(layout.bytes, /*ring=*/false);
      return response;
    }
    const std::string capability = request.blocks(0).shared().capability();
    if (!blocks_->SharedPathLost(s, &capability)) return s;
  }
  return PutInline(std::move(request), sources);
}

absl::StatusOr<v1::PutBlocksResponse> BatchTransport::PutInline(
    v1::PutBlocksRequest request,
    absl::Span<const absl::Span<const std::byte>> sources) {
  for (size_t i = 0; i < sources.size(); ++i) {
    request.mutable_blocks(static_cast<int>(i))
        ->set_data(reinterpret_cast<const char*>(sources[i].data()),
                   sources[i].size());
  }
  v1::PutBlocksResponse response;
  // A put writes whole blocks: repeating it after a restart is safe.
  grpc::Status s = WithRetries(
      options_.timeout, options_.max_retries, options_.retry_backoff,
      [&](grpc::ClientContext& ctx) {
        response.Clear();
        return blocks_->data_stub().PutBlocks(&ctx, request, &response);
      });
  if (!s.ok()) return FromGrpc(s);
  return response;
}

absl::StatusOr<v1::GetBlocksResponse> BatchTransport::Get(
    v1::GetBlocksRequest request,
    absl::Span<const absl::Span<std::byte>> outs) {
  SharedArena* arena = blocks_->Arena();
  const Layout layout = LayOut(outs);
  // Buffers far larger than the blocks would take the arena from others.
  std::optional<SharedArena::Range> range =
      arena != nullptr && layout.bytes <= limits().max_bytes
          ? arena->Allocate(layout.bytes)
          : std::nullopt;
  if (range) {
    for (size_t i = 0; i < outs.size(); ++i) {
      Name(*range, layout.offsets[i], outs[i].size(),
           request.add_destinations());
    }
    v1::GetBlocksResponse response;
    std::optional<absl::Status> ring = CallRing(
        *arena, shared_memory::kGetBlocks, request,
        kReplyBase + kGetReplyPerBlock * request.ids_size(), &response);
    absl::Status s;
    if (ring) {
      s = *ring;
    } else {
      grpc::ClientContext ctx;
      SetDeadline(ctx, options_.timeout);
      s = FromGrpc(blocks_->data_stub().GetBlocks(&ctx, request, &response));
    }
    if (s.ok()) {
      uint64_t moved = 0;
      for (int i = 0; i < response.results_size(); ++i) {
        const v1::GetResult& r = response.results(i);
        if (r.status().code() != 0) continue;
        // The server wrote at most the destination's length.
        const uint64_t n = std::min<uint64_t>(r.size_bytes(), outs[i].size());
        std::memcpy(outs[i].data(), range->data() + layout.offsets[i], n);
        moved += n;
      }
      blocks_->CountShared(moved, ring.has_value());
      return response;
    }
    const std::string capability = request.destinations(0).capability();
    if (ring || !blocks_->SharedPathLost(s, &capability)) return s;
    request.clear_destinations();
  }
  return GetInline(std::move(request), outs);
}

absl::StatusOr<v1::GetBlocksResponse> BatchTransport::GetInline(
    v1::GetBlocksRequest request,
    absl::Span<const absl::Span<std::byte>> outs) {
  v1::GetBlocksResponse response;
  grpc::Status s = WithRetries(
      options_.timeout, options_.max_retries, options_.retry_backoff,
      [&](grpc::ClientContext& ctx) {
        response.Clear();
        return blocks_->data_stub().GetBlocks(&ctx, request, &response);
      });
  if (!s.ok()) return FromGrpc(s);
  for (int i = 0; i < response.results_size(); ++i) {
    v1::GetResult* r = response.mutable_results(i);
    if (r->status().code() != 0) continue;
    if (r->data().size() > outs[i].size()) {
      r->mutable_status()->set_code(
          static_cast<int32_t>(absl::StatusCode::kInvalidArgument));
      r->mutable_status()->set_message(absl::StrCat(
          "block ", request.ids(i), " holds ", r->data().size(),
          " bytes; the buffer given for it holds ", outs[i].size()));
      response.set_failed(response.failed() + 1);
    } else {
      std::memcpy(outs[i].data(), r->data().data(), r->data().size());
    }
    r->clear_data();
  }
  return response;
}

BatchPath BatchTransport::path() {
  BatchPath path;
  path.shared_memory = blocks_->Arena() != nullptr;
  path.reason = blocks_->SharedPathReason();
  return path;
}

}  // namespace tensorpager::internal
