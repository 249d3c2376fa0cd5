#include "client_sdk/src/batch_transport.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/get_blocks_reply.h"
#include "client_sdk/src/rpc_util.h"
#include "client_sdk/src/shared_arena.h"
#include "storage/shared_memory/ring_layout.h"

namespace tensorpager::internal {
namespace {

// A batch over gRPC messages is cut into calls of at least this many
// bytes, one per connection, that run side by side: while the server takes
// one part, the client and the kernel move the next.
constexpr uint64_t kMinPartBytes = 1 << 20;
// A put through the ring is posted in up to this many parts, each as soon
// as its bytes are in the arena (the ring's server has two threads).
constexpr int kMaxRingParts = 2;

// Blocks share one arena range, each at a 64-byte boundary.
constexpr uint64_t kAlign = 64;
uint64_t Align(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Reply areas: bounds of a serialized reply per block. The server cuts a
// block's message at 1 KiB; a get's labels take at most 2 KiB of keys and
// values plus up to 12 bytes of framing for each of 64 labels, and its
// shape at most 16 dimensions of 11 bytes.
constexpr uint64_t kReplyBase = 256;
constexpr uint64_t kLookupReplyPerBlock = 32;
constexpr uint64_t kPutReplyPerBlock = 1024 + 64;
constexpr uint64_t kGetReplyPerBlock = 1024 + 2048 + 64 * 12 + 16 * 11 + 128;

// INTERNAL unless a batch reply has one result per block asked for.
template <typename Response>
absl::Status Answered(const Response& response, size_t blocks) {
  if (static_cast<size_t>(response.results_size()) == blocks) {
    return absl::OkStatus();
  }
  return absl::InternalError(
      absl::StrCat("a batch reply answered for ", response.results_size(),
                   " blocks, not the ", blocks, " asked for"));
}

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

std::optional<BatchTransport::Posted> BatchTransport::PostRing(
    SharedArena& arena, uint32_t op, const google::protobuf::MessageLite& in,
    uint64_t reply_bytes) {
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
  std::optional<uint32_t> slot = arena.ring().Post(call);
  if (!slot) return std::nullopt;
  return Posted{*std::move(range), Align(request_bytes), reply_bytes, *slot};
}

std::optional<absl::Status> BatchTransport::AwaitRing(
    SharedArena& arena, const Posted& posted,
    google::protobuf::MessageLite* out) {
  std::optional<shared_memory::RingCompletion> reply =
      arena.ring().Await(posted.slot, options_.timeout);
  if (!reply) return std::nullopt;
  if (!reply->status.ok()) return reply->status;
  if (reply->length > posted.reply_bytes ||
      !out->ParseFromArray(posted.range.data() + posted.reply_offset,
                           static_cast<int>(reply->length))) {
    return absl::InternalError("unreadable batch reply in the ring");
  }
  return absl::OkStatus();
}

std::optional<absl::Status> BatchTransport::CallRing(
    SharedArena& arena, uint32_t op, const google::protobuf::MessageLite& in,
    uint64_t reply_bytes, google::protobuf::MessageLite* out) {
  std::optional<Posted> posted = PostRing(arena, op, in, reply_bytes);
  if (!posted) return std::nullopt;
  return AwaitRing(arena, *posted, out);
}

absl::Status BatchTransport::Lookup(const v1::LookupRequest& request,
                                    v1::LookupResponse* response) {
  if (SharedArena* arena = blocks_->Arena()) {
    if (std::optional<absl::Status> s = CallRing(
            *arena, shared_memory::kLookup, request,
            kReplyBase + kLookupReplyPerBlock * request.ids_size(), response)) {
      return *s;
    }
  }
  return FromGrpc(
      WithRetries(options_.timeout, options_.max_retries,
                  options_.retry_backoff, [&](grpc::ClientContext& ctx) {
                    response->Clear();
                    return blocks_->data_stub().Lookup(&ctx, request, response);
                  }));
}

absl::StatusOr<v1::PutBlocksResponse> BatchTransport::Put(
    v1::PutBlocksRequest request,
    absl::Span<const absl::Span<const std::byte>> sources) {
  SharedArena* arena = blocks_->Arena();
  const Layout layout = LayOut(sources);
  std::optional<SharedArena::Range> range =
      arena != nullptr ? arena->Allocate(layout.bytes) : std::nullopt;
  if (range) {
    if (std::optional<absl::StatusOr<v1::PutBlocksResponse>> piped =
            PutThroughRing(*arena, *range, layout.offsets, request, sources)) {
      return *std::move(piped);
    }
    // No ring: the shared-memory RPC names the same ranges.
    for (size_t i = 0; i < sources.size(); ++i) {
      std::memcpy(range->data() + layout.offsets[i], sources[i].data(),
                  sources[i].size());
      Name(*range, layout.offsets[i], sources[i].size(),
           request.mutable_blocks(static_cast<int>(i))->mutable_shared());
    }
    return PutPartByRpc(std::move(request), sources);
  }
  return PutInline(std::move(request), sources);
}

std::optional<absl::StatusOr<v1::PutBlocksResponse>>
BatchTransport::PutThroughRing(
    SharedArena& arena, const SharedArena::Range& range,
    absl::Span<const uint64_t> offsets, const v1::PutBlocksRequest& request,
    absl::Span<const absl::Span<const std::byte>> sources) {
  std::vector<uint64_t> sizes;
  for (const auto& source : sources) sizes.push_back(source.size());
  const std::vector<std::pair<int, int>> parts = Parts(sizes, kMaxRingParts);
  std::vector<v1::PutBlocksRequest> requests(parts.size());
  std::vector<std::optional<Posted>> posted(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    v1::PutBlocksRequest& part = requests[p];
    part.set_namespace_(request.namespace_());
    if (request.has_durable()) part.set_durable(request.durable());
    for (int i = parts[p].first; i < parts[p].second; ++i) {
      std::memcpy(range.data() + offsets[i], sources[i].data(),
                  sources[i].size());
      v1::PutBlock* b = part.add_blocks();
      *b = request.blocks(i);
      Name(range, offsets[i], sources[i].size(), b->mutable_shared());
    }
    // Posted as soon as its bytes are in: the server copies this part
    // out while the next one is copied in.
    if (std::optional<Posted> sent =
            PostRing(arena, shared_memory::kPutBlocks, part,
                     kReplyBase + kPutReplyPerBlock * part.blocks_size())) {
      posted[p].emplace(*std::move(sent));
    }
    if (p == 0 && !posted[p]) return std::nullopt;  // no ring: the RPCs
  }
  std::vector<v1::PutBlocksResponse> responses(parts.size());
  std::vector<grpc::Status> statuses(parts.size());
  uint64_t moved = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    std::optional<absl::Status> s;
    if (posted[p]) s = AwaitRing(arena, *posted[p], &responses[p]);
    if (!s) {
      // Not taken by the ring (no room, or the server went away before
      // it claimed the part): the same part through the RPCs.
      absl::StatusOr<v1::PutBlocksResponse> r = PutPartByRpc(
          std::move(requests[p]),
          sources.subspan(parts[p].first, parts[p].second - parts[p].first));
      s = r.status();
      if (r.ok()) responses[p] = *std::move(r);
    } else if (s->ok()) {
      for (int i = parts[p].first; i < parts[p].second; ++i) {
        moved += sources[i].size();
      }
    }
    if (!s->ok()) {
      statuses[p] = grpc::Status(static_cast<grpc::StatusCode>(s->code()),
                                 std::string(s->message()));
    }
  }
  blocks_->CountShared(moved, /*ring=*/true);
  return Merge(parts, statuses, responses);
}

absl::StatusOr<v1::PutBlocksResponse> BatchTransport::PutPartByRpc(
    v1::PutBlocksRequest request,
    absl::Span<const absl::Span<const std::byte>> sources) {
  v1::PutBlocksResponse response;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  absl::Status s =
      FromGrpc(blocks_->data_stub().PutBlocks(&ctx, request, &response));
  if (s.ok()) s = Answered(response, sources.size());
  if (s.ok()) {
    uint64_t bytes = 0;
    for (const auto& source : sources) bytes += source.size();
    blocks_->CountShared(bytes, /*ring=*/false);
    return response;
  }
  const std::string capability = request.blocks(0).shared().capability();
  if (!blocks_->SharedPathLost(s, &capability)) return s;
  return PutInline(std::move(request), sources);
}

std::vector<std::pair<int, int>> BatchTransport::Parts(
    absl::Span<const uint64_t> sizes, int max_parts) const {
  uint64_t total = 0;
  for (uint64_t n : sizes) total += n;
  const int parts = static_cast<int>(std::clamp<uint64_t>(
      total / kMinPartBytes, 1,
      std::min<uint64_t>(sizes.size(), static_cast<uint64_t>(max_parts))));
  std::vector<std::pair<int, int>> out;
  int begin = 0;
  uint64_t bytes = 0;
  for (int i = 0; i < static_cast<int>(sizes.size()); ++i) {
    bytes += sizes[i];
    // Cut where the running total passes the next equal share.
    const uint64_t share = total * (out.size() + 1) / parts;
    if (bytes >= share && static_cast<int>(out.size()) + 1 < parts) {
      out.emplace_back(begin, i + 1);
      begin = i + 1;
    }
  }
  if (begin < static_cast<int>(sizes.size())) {
    out.emplace_back(begin, static_cast<int>(sizes.size()));
  }
  return out;
}

template <typename Request, typename Response, typename Start>
std::vector<grpc::Status> BatchTransport::SideBySide(
    const std::vector<Request>& requests, std::vector<Response>& responses,
    Start start) {
  std::vector<grpc::Status> out(requests.size());
  std::vector<size_t> todo(requests.size());
  for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
  for (int attempt = 0;; ++attempt) {
    std::mutex mu;
    std::condition_variable done;
    size_t left = todo.size();
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    for (size_t i : todo) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      SetDeadline(*contexts.back(), options_.timeout);
      responses[i].Clear();
      start(blocks_->data_stub(), contexts.back().get(), &requests[i],
            &responses[i], [&, i](grpc::Status s) {
              std::lock_guard<std::mutex> lock(mu);
              out[i] = std::move(s);
              if (--left == 0) done.notify_all();
            });
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      done.wait(lock, [&] { return left == 0; });
    }
    // Parts the server could not take (restarting) go again; a batch put
    // or get is safe to repeat.
    std::vector<size_t> again;
    for (size_t i : todo) {
      if (out[i].error_code() == grpc::StatusCode::UNAVAILABLE) {
        again.push_back(i);
      }
    }
    if (again.empty() || attempt >= options_.max_retries) return out;
    std::this_thread::sleep_for(
        absl::ToChronoNanoseconds(options_.retry_backoff * (attempt + 1)));
    todo = std::move(again);
  }
}

template <typename Response>
absl::StatusOr<Response> BatchTransport::Merge(
    const std::vector<std::pair<int, int>>& parts,
    const std::vector<grpc::Status>& statuses,
    std::vector<Response>& responses) {
  Response merged;
  size_t failed_parts = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    const int blocks = parts[p].second - parts[p].first;
    if (statuses[p].ok()) {
      if (absl::Status a = Answered(responses[p], blocks); !a.ok()) return a;
    }
    if (statuses[p].ok()) {
      for (auto& r : *responses[p].mutable_results()) {
        *merged.add_results() = std::move(r);
      }
      merged.set_failed(merged.failed() + responses[p].failed());
      continue;
    }
    // This part's call failed whole: each of its blocks failed with it.
    ++failed_parts;
    for (int i = 0; i < blocks; ++i) {
      v1::BlockStatus* status = merged.add_results()->mutable_status();
      status->set_code(static_cast<int32_t>(statuses[p].error_code()));
      status->set_message(statuses[p].error_message());
    }
    merged.set_failed(merged.failed() + blocks);
  }
  // Every call failed: the batch did, and changed nothing.
  if (failed_parts == parts.size()) return FromGrpc(statuses.front());
  return merged;
}

absl::StatusOr<v1::PutBlocksResponse> BatchTransport::PutInline(
    v1::PutBlocksRequest request,
    absl::Span<const absl::Span<const std::byte>> sources) {
  std::vector<uint64_t> sizes;
  for (const auto& source : sources) sizes.push_back(source.size());
  const std::vector<std::pair<int, int>> parts =
      Parts(sizes, blocks_->connections());
  std::vector<v1::PutBlocksRequest> heads(parts.size());
  std::vector<PutBlocksLent> requests(parts.size());
  // The blocks' bytes are lent to gRPC, not copied: the caller's buffers
  // stay valid until every slice is released.
  SliceLatch lent;
  for (size_t p = 0; p < parts.size(); ++p) {
    v1::PutBlocksRequest& head = heads[p];
    head.set_namespace_(request.namespace_());
    if (request.has_durable()) head.set_durable(request.durable());
    for (int i = parts[p].first; i < parts[p].second; ++i) {
      v1::PutBlock* b = head.add_blocks();
      *b = std::move(*request.mutable_blocks(i));
      b->clear_source();  // a range of the arena, when it fell back here
    }
    requests[p] = PutBlocksLent{
        &head,
        sources.subspan(parts[p].first, parts[p].second - parts[p].first),
        &lent};
  }
  std::vector<v1::PutBlocksResponse> responses(parts.size());
  const std::vector<grpc::Status> statuses =
      SideBySide(requests, responses,
                 [this](v1::TensorPager::Stub&, grpc::ClientContext* ctx,
                        const PutBlocksLent* req, v1::PutBlocksResponse* resp,
                        std::function<void(grpc::Status)> done) {
                   blocks_->StartPutBlocks(ctx, req, resp, std::move(done));
                 });
  lent.Wait();
  return Merge(parts, statuses, responses);
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
    // A reply for other blocks must not index past the caller's buffers.
    if (s.ok()) s = Answered(response, outs.size());
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
  std::vector<uint64_t> sizes;
  for (const auto& out : outs) sizes.push_back(out.size());
  const std::vector<std::pair<int, int>> parts =
      Parts(sizes, blocks_->connections());
  std::vector<v1::GetBlocksRequest> requests(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    requests[p].set_namespace_(request.namespace_());
    for (int i = parts[p].first; i < parts[p].second; ++i) {
      requests[p].add_ids(request.ids(i));
    }
  }
  // Each part's bytes land in the caller's buffers as they arrive.
  std::vector<GetBlocksReply> replies(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    replies[p].outs =
        outs.subspan(parts[p].first, parts[p].second - parts[p].first);
  }
  const std::vector<grpc::Status> statuses =
      SideBySide(requests, replies,
                 [this](v1::TensorPager::Stub&, grpc::ClientContext* ctx,
                        const v1::GetBlocksRequest* req, GetBlocksReply* reply,
                        std::function<void(grpc::Status)> done) {
                   blocks_->StartGetBlocks(ctx, req, reply, std::move(done));
                 });
  std::vector<v1::GetBlocksResponse> responses(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    GetBlocksReply& reply = replies[p];
    if (!statuses[p].ok()) continue;
    if (absl::Status a = Answered(reply.response, reply.outs.size()); !a.ok()) {
      return a;
    }
    for (int i = 0; i < reply.response.results_size(); ++i) {
      v1::GetResult* r = reply.response.mutable_results(i);
      if (r->status().code() != 0 ||
          reply.data_bytes[i] <= reply.outs[i].size()) {
        continue;
      }
      r->mutable_status()->set_code(
          static_cast<int32_t>(absl::StatusCode::kInvalidArgument));
      r->mutable_status()->set_message(absl::StrCat(
          "block ", request.ids(parts[p].first + i), " holds ",
          reply.data_bytes[i], " bytes; the buffer given for it holds ",
          reply.outs[i].size()));
      reply.response.set_failed(reply.response.failed() + 1);
    }
    responses[p] = std::move(reply.response);
  }
  return Merge(parts, statuses, responses);
}

BatchPath BatchTransport::path() {
  BatchPath path;
  path.shared_memory = blocks_->Arena() != nullptr;
  path.reason = blocks_->SharedPathReason();
  return path;
}

}  // namespace tensorpager::internal
