#include "client_sdk/src/block_transport.h"

#include <grpcpp/support/client_callback.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client_sdk/src/device_pipeline.h"
#include "client_sdk/src/rpc_util.h"
#include "storage/shared_memory/ring_layout.h"

namespace tensorpager::internal {

BlockTransport::BlockTransport(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const ClientOptions& options, StreamPool* streams, DeviceRuntime* runtime)
    : options_(options), streams_(streams), runtime_(runtime) {
  for (const std::shared_ptr<grpc::Channel>& c : channels) {
    connections_.push_back(Connection{
        c, v1::TensorPager::NewStub(c),
        grpc::internal::RpcMethod("/tensorpager.v1.TensorPager/Access",
                                  grpc::internal::RpcMethod::SERVER_STREAMING,
                                  c),
        grpc::internal::RpcMethod("/tensorpager.v1.TensorPager/WriteBlock",
                                  grpc::internal::RpcMethod::CLIENT_STREAMING,
                                  c),
        grpc::internal::RpcMethod("/tensorpager.v1.TensorPager/GetBlocks",
                                  grpc::internal::RpcMethod::NORMAL_RPC, c),
        grpc::internal::RpcMethod("/tensorpager.v1.TensorPager/PutBlocks",
                                  grpc::internal::RpcMethod::NORMAL_RPC, c)});
  }
}

namespace {

// Sizes remembered for the shared-memory path; past this many, start over
// (a miss only costs one fetch over a stream).
constexpr size_t kMaxKnownSizes = 1 << 20;

}  // namespace

void BlockTransport::OfferSharedMemory(uint64_t bytes, base::Logger* log) {
  std::lock_guard<std::mutex> lock(arena_mu_);
  arena_bytes_ = bytes;
  shared_wanted_ = bytes > 0;
  shared_reason_ = "server on this host: the arena is attached on first use";
  log_ = log;
}

SharedArena* BlockTransport::Arena() {
  if (arena_ready_.load(std::memory_order_acquire)) return arena_.get();
  std::lock_guard<std::mutex> lock(arena_mu_);
  if (arena_ready_.load(std::memory_order_relaxed)) return arena_.get();
  if (arena_bytes_ == 0) return nullptr;
  absl::StatusOr<std::unique_ptr<SharedArena>> arena =
      SharedArena::Create(control(), arena_bytes_, options_.timeout, runtime_);
  if (!arena.ok()) {
    const absl::StatusCode code = arena.status().code();
    if (code == absl::StatusCode::kUnavailable ||
        code == absl::StatusCode::kDeadlineExceeded) {
      return nullptr;  // server not up yet: try again next time
    }
    shared_reason_ = absl::StrCat("the server did not attach the arena: ",
                                  arena.status().ToString());
    log_->Info(absl::StrCat("shared-memory data path off (",
                            arena.status().ToString(),
                            "); block bytes go over gRPC"));
    arena_bytes_ = 0;
    shared_wanted_ = false;
    return nullptr;
  }
  shared_reason_ = absl::StrCat(
      "server on this host attached a ", arena_bytes_ >> 20, " MiB arena",
      (*arena)->ring().served() ? " and serves its request ring"
                                : "; its ring is not served, so the "
                                  "shared-memory RPCs carry requests",
      (*arena)->device_registered()
          ? "; page-locked, so GPU transfers copy straight through it"
          : "");
  log_->Info(absl::StrCat("shared-memory data path on: ", shared_reason_));
  arena_ = *std::move(arena);
  arena_ready_.store(true, std::memory_order_release);
  return arena_.get();
}

void BlockTransport::StartGetBlocks(grpc::ClientContext* context,
                                    const v1::GetBlocksRequest* request,
                                    GetBlocksReply* reply,
                                    std::function<void(grpc::Status)> done) {
  const Connection& c = Next();
  grpc::internal::CallbackUnaryCall<v1::GetBlocksRequest, GetBlocksReply,
                                    grpc::protobuf::MessageLite,
                                    GetBlocksReply>(
      c.channel.get(), c.get_blocks, context, request, reply, std::move(done));
}

void BlockTransport::StartPutBlocks(grpc::ClientContext* context,
                                    const PutBlocksLent* request,
                                    v1::PutBlocksResponse* response,
                                    std::function<void(grpc::Status)> done) {
  const Connection& c = Next();
  grpc::internal::CallbackUnaryCall<PutBlocksLent, v1::PutBlocksResponse,
                                    PutBlocksLent, grpc::protobuf::MessageLite>(
      c.channel.get(), c.put_blocks, context, request, response,
      std::move(done));
}

std::string BlockTransport::SharedPathReason() {
  std::lock_guard<std::mutex> lock(arena_mu_);
  return shared_reason_;
}

void BlockTransport::RefuseSharedMemory(const std::string& reason,
                                        base::Logger* log) {
  {
    std::lock_guard<std::mutex> lock(arena_mu_);
    arena_bytes_ = 0;
    shared_wanted_ = false;
    shared_reason_ = reason;
  }
  log->Info(absl::StrCat("shared-memory data path off (", reason,
                         "); block bytes go over gRPC"));
}

void BlockTransport::DisableSharedMemory() {
  std::lock_guard<std::mutex> lock(arena_mu_);
  arena_bytes_ = 0;
  shared_wanted_ = false;
  if (arena_ != nullptr) arena_->Detach(control(), options_.timeout);
}

void BlockTransport::NoteBlockSize(storage::BlockKeyView id, uint64_t size) {
  // Sizes only serve the shared-memory path: no bookkeeping without it.
  if (!shared_wanted_.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(sizes_mu_);
  if (sizes_.size() >= kMaxKnownSizes) sizes_.clear();
  sizes_.insert_or_assign(storage::BlockKey(id), size);
}

uint64_t BlockTransport::KnownSize(storage::BlockKeyView id) {
  std::lock_guard<std::mutex> lock(sizes_mu_);
  auto it = sizes_.find(id);
  return it == sizes_.end() ? 0 : it->second;
}

namespace {

// One copy between a device and the arena, which the device runtime
// page-locked: no staging buffer, no second copy.
absl::Status CopyDirect(StagingStream* staging, void* dst, const void* src,
                        uint64_t size, CopyDirection direction) {
  if (absl::Status s = staging->stream().CopyAsync(dst, src, size, direction);
      !s.ok()) {
    return s;
  }
  return staging->stream().Synchronize();
}

// Between the arena and the transfer's memory: a plain copy for host
// memory; for a device, one copy when the arena is page-locked (`direct`),
// else the pinned staging pipeline.
absl::Status CopyOut(StagingStream* staging, bool direct, void* dst,
                     const std::byte* src, uint64_t size) {
  if (staging == nullptr) {
    std::memcpy(dst, src, size);
    return absl::OkStatus();
  }
  if (direct) {
    return CopyDirect(staging, dst, src, size, CopyDirection::kHostToDevice);
  }
  DeviceUpload upload(staging, dst);
  if (absl::Status s = upload.Add(
          0, absl::string_view(reinterpret_cast<const char*>(src), size));
      !s.ok()) {
    return s;
  }
  return upload.Finish();
}

absl::Status CopyIn(StagingStream* staging, bool direct, std::byte* dst,
                    const void* src, uint64_t size) {
  if (staging == nullptr) {
    std::memcpy(dst, src, size);
    return absl::OkStatus();
  }
  if (direct) {
    return CopyDirect(staging, dst, src, size, CopyDirection::kDeviceToHost);
  }
  DeviceDownload download(staging, src, size);
  uint64_t at = 0;
  for (;;) {
    absl::StatusOr<absl::string_view> chunk = download.Next();
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) break;
    std::memcpy(dst + at, chunk->data(), chunk->size());
    at += chunk->size();
  }
  return absl::OkStatus();
}

}  // namespace

void BlockTransport::CountShared(uint64_t bytes, bool ring) {
  shared_transfers_.fetch_add(1, std::memory_order_relaxed);
  shared_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  if (ring) ring_transfers_.fetch_add(1, std::memory_order_relaxed);
}

bool BlockTransport::SharedPathLost(const absl::Status& s,
                                    const std::string* capability) {
  if (absl::StrContains(s.message(), "shared-memory segment")) {
    // The server restarted and forgot the segment: attach it again (once,
    // however many transfers found it gone) for the next transfer; this
    // one goes over a stream.
    SharedArena* arena = capability != nullptr ? Arena() : nullptr;
    if (arena != nullptr) {
      arena->Reattach(*capability, control(), options_.timeout).IgnoreError();
    }
    return true;
  }
  return absl::StrContains(s.message(), "destination holds");
}

std::optional<absl::StatusOr<v1::WriteBlockResponse>>
BlockTransport::StoreShared(storage::BlockKeyView id, const void* data,
                            uint64_t size, uint64_t offset,
                            std::optional<bool> durable,
                            StagingStream* staging) {
  SharedArena* arena = Arena();
  if (arena == nullptr) return std::nullopt;
  std::optional<SharedArena::Range> range = arena->Allocate(size);
  if (!range) return std::nullopt;
  if (absl::Status s = CopyIn(staging, arena->device_registered(),
                              range->data(), data, size);
      !s.ok()) {
    return s;
  }
  shared_memory::RingRequest call;
  call.op = shared_memory::kWrite;
  call.ns = std::string(id.ns);
  call.id = std::string(id.id);
  call.offset = offset;
  call.durable = durable;
  // Only the bytes written: the range is rounded up to whole pages.
  call.data_offset = range->offset();
  call.data_length = size;
  if (std::optional<shared_memory::RingCompletion> reply =
          arena->ring().Call(call, options_.timeout)) {
    if (!reply->status.ok()) return reply->status;
    v1::WriteBlockResponse resp;
    if (!resp.mutable_block()->ParseFromString(reply->info)) {
      return absl::InternalError("unreadable BlockInfo in a ring reply");
    }
    resp.set_bytes_written(reply->length);
    resp.set_durable(reply->durable);
    CountShared(size, /*ring=*/true);
    return resp;
  }
  v1::WriteBlockSharedRequest req;
  req.set_namespace_(id.ns.data(), id.ns.size());
  req.set_id(id.id.data(), id.id.size());
  req.set_offset(offset);
  if (durable) req.set_durable(*durable);
  v1::SharedRange* source = req.mutable_source();
  range->Describe(source);
  source->set_length(size);
  v1::WriteBlockResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  absl::Status s = FromGrpc(Next().stub->WriteBlockShared(&ctx, req, &resp));
  if (!s.ok()) {
    if (SharedPathLost(s, &source->capability())) return std::nullopt;
    return s;
  }
  CountShared(size, /*ring=*/false);
  return resp;
}

std::optional<absl::StatusOr<v1::BlockInfo>> BlockTransport::FetchShared(
    const v1::AccessRequest& request, RangeAllocateFn allocate, bool* hit,
    StagingStream* staging) {
  if (request.touch_only()) return std::nullopt;
  SharedArena* arena = Arena();
  if (arena == nullptr) return std::nullopt;
  const storage::BlockKeyView key =
      storage::BlockKeyView::Resolve(request.namespace_(), request.id());
  uint64_t want = request.length();
  if (want == 0) {
    const uint64_t size = KnownSize(key);
    if (size <= request.offset()) return std::nullopt;
    want = size - request.offset();
  }
  std::optional<SharedArena::Range> range = arena->Allocate(want);
  if (!range) return std::nullopt;
  shared_memory::RingRequest call;
  call.op = shared_memory::kRead;
  call.ns = std::string(key.ns);
  call.id = std::string(key.id);
  call.offset = request.offset();
  call.length = request.length();
  call.data_offset = range->offset();
  call.data_length = range->length();
  if (std::optional<shared_memory::RingCompletion> reply =
          arena->ring().Call(call, options_.timeout)) {
    if (!reply->status.ok()) {
      // The ring is the segment's own: it names no segment to forget.
      if (SharedPathLost(reply->status, /*capability=*/nullptr))
        return std::nullopt;
      return reply->status;
    }
    v1::BlockInfo info;
    if (!info.ParseFromString(reply->info)) {
      return absl::InternalError("unreadable BlockInfo in a ring reply");
    }
    absl::StatusOr<void*> dst = allocate(info, reply->length);
    if (!dst.ok()) return dst.status();
    if (absl::Status s = CopyOut(staging, arena->device_registered(), *dst,
                                 range->data(), reply->length);
        !s.ok()) {
      return s;
    }
    if (hit != nullptr) *hit = reply->hit;
    CountShared(reply->length, /*ring=*/true);
    return info;
  }
  v1::AccessSharedRequest req;
  req.set_namespace_(request.namespace_());
  req.set_id(request.id());
  req.set_offset(request.offset());
  req.set_length(request.length());
  v1::SharedRange* dest = req.mutable_destination();
  range->Describe(dest);
  v1::AccessSharedResponse resp;
  const Connection& conn = Next();
  grpc::Status rpc =
      WithRetries(options_.timeout, options_.max_retries,
                  options_.retry_backoff, [&](grpc::ClientContext& ctx) {
                    return conn.stub->AccessShared(&ctx, req, &resp);
                  });
  if (absl::Status s = FromGrpc(rpc); !s.ok()) {
    if (SharedPathLost(s, &dest->capability())) return std::nullopt;
    return s;
  }
  absl::StatusOr<void*> dst = allocate(resp.block(), resp.length());
  if (!dst.ok()) return dst.status();
  if (absl::Status s = CopyOut(staging, arena->device_registered(), *dst,
                               range->data(), resp.length());
      !s.ok()) {
    return s;
  }
  if (hit != nullptr) *hit = resp.hit();
  CountShared(resp.length(), /*ring=*/false);
  return std::move(*resp.mutable_block());
}

absl::StatusOr<v1::BlockInfo> BlockTransport::Fetch(
    const v1::AccessRequest& request, Placement where, RangeAllocateFn allocate,
    bool* hit) {
  std::optional<StreamPool::Lease> lease;
  if (where.is_device() && !request.touch_only()) {
    absl::StatusOr<StreamPool::Lease> l = streams_->Acquire(where.device());
    if (!l.ok()) return l.status();
    lease.emplace(*std::move(l));
  }
  if (auto shared =
          FetchShared(request, allocate, hit, lease ? &**lease : nullptr)) {
    return *std::move(shared);
  }
  v1::BlockInfo info;
  char* dst = nullptr;
  uint64_t length = 0;
  uint64_t received = 0;
  absl::Status sink_error;
  const uint64_t base = request.offset();
  grpc::Status rpc = WithRetries(
      options_.timeout, options_.max_retries, options_.retry_backoff,
      [&](grpc::ClientContext& ctx) {
        sink_error = absl::OkStatus();
        received = 0;
        std::optional<DeviceUpload> upload;
        const Connection& conn = Next();
        std::unique_ptr<grpc::ClientReader<AccessChunk>> reader(
            grpc::internal::ClientReaderFactory<AccessChunk>::Create(
                conn.channel.get(), conn.access, &ctx, request));
        AccessChunk msg;
        bool first = true;
        while (reader->Read(&msg)) {
          if (!sink_error.ok()) continue;  // drain until the cancel lands
          if (first) {
            first = false;
            info = std::move(msg.block);
            if (hit != nullptr) *hit = msg.hit;
            if (request.touch_only()) continue;
            const uint64_t size = info.size_bytes();
            const uint64_t want = request.length() != 0
                                      ? request.length()
                                      : (size > base ? size - base : 0);
            if (dst == nullptr) {
              absl::StatusOr<void*> p = allocate(info, want);
              if (!p.ok()) {
                sink_error = p.status();
                ctx.TryCancel();
                continue;
              }
              dst = static_cast<char*>(*p);
              length = want;
            } else if (want != length) {
              sink_error = absl::AbortedError(absl::StrCat(
                  "block ", request.id(), " changed size from ", length, " to ",
                  want, " bytes while its Access was retried"));
              ctx.TryCancel();
              continue;
            }
            if (lease) upload.emplace(&**lease, dst);
          }
          if (msg.data_bytes == 0) continue;
          const uint64_t at = msg.offset;
          if (at < base || at - base > length ||
              msg.data_bytes > length - (at - base)) {
            sink_error = absl::DataLossError(absl::StrCat(
                "Access stream of ", request.id(), " sent bytes at offset ", at,
                " outside the range asked for"));
            ctx.TryCancel();
            continue;
          }
          uint64_t pos = at - base;
          for (absl::string_view piece : msg.data) {
            if (upload) {
              sink_error = upload->Add(pos, piece);
              if (!sink_error.ok()) {
                ctx.TryCancel();
                break;
              }
            } else {
              std::memcpy(dst + pos, piece.data(), piece.size());
            }
            pos += piece.size();
          }
          received += msg.data_bytes;
        }
        grpc::Status s = reader->Finish();
        if (upload && sink_error.ok()) sink_error = upload->Finish();
        return s;
      });
  if (!sink_error.ok()) return sink_error;
  if (absl::Status s = FromGrpc(rpc); !s.ok()) return s;
  if (!request.touch_only() && received != length) {
    return absl::DataLossError(absl::StrCat("Access of ", request.id(),
                                            " returned ", received, " of ",
                                            length, " bytes"));
  }
  NoteBlockSize(
      storage::BlockKeyView::Resolve(request.namespace_(), request.id()),
      info.size_bytes());
  return info;
}

absl::StatusOr<v1::WriteBlockResponse> BlockTransport::Store(
    storage::BlockKeyView id, Placement from, const void* data, uint64_t size,
    uint64_t offset, std::optional<bool> durable) {
  std::optional<StreamPool::Lease> lease;
  if (from.is_device()) {
    absl::StatusOr<StreamPool::Lease> l = streams_->Acquire(from.device());
    if (!l.ok()) return l.status();
    lease.emplace(*std::move(l));
  }
  if (auto shared = StoreShared(id, data, size, offset, durable,
                                lease ? &**lease : nullptr)) {
    return *std::move(shared);
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  v1::WriteBlockResponse resp;
  const Connection& conn = Next();
  std::unique_ptr<grpc::ClientWriter<WriteChunk>> writer(
      grpc::internal::ClientWriterFactory<WriteChunk>::Create(
          conn.channel.get(), conn.write, &ctx, &resp));
  v1::WriteBlockRequest header;
  header.set_namespace_(id.ns.data(), id.ns.size());
  header.set_id(id.id.data(), id.id.size());
  header.set_offset(offset);
  header.set_total_bytes(size);
  if (durable) header.set_durable(*durable);
  const v1::WriteBlockRequest empty;
  // Host bytes are lent to gRPC without a copy; they must stay untouched
  // until gRPC lets go of them (latch.Wait below).
  SliceLatch latch;
  absl::Status source_error;
  if (lease) {
    DeviceDownload download(&**lease, data, size);
    for (bool first = true;; first = false) {
      absl::StatusOr<absl::string_view> chunk = download.Next();
      if (!chunk.ok()) {
        source_error = chunk.status();
        ctx.TryCancel();
        break;
      }
      if (chunk->empty()) break;
      // Staging buffers are reused at once: copied, not lent.
      if (!writer->Write(
              WriteChunk{first ? &header : &empty, *chunk, nullptr})) {
        break;  // the server ended the call early
      }
    }
  } else {
    const char* bytes = static_cast<const char*>(data);
    uint64_t sent = 0;
    bool first = true;
    do {
      const uint64_t n =
          std::min<uint64_t>(options_.write_chunk_bytes, size - sent);
      if (!writer->Write(WriteChunk{first ? &header : &empty,
                                    absl::string_view(bytes + sent, n),
                                    &latch})) {
        break;
      }
      first = false;
      sent += n;
    } while (sent < size);
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  writer.reset();
  latch.Wait();
  if (!source_error.ok()) return source_error;
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::BlockInfo> BlockTransport::FetchBlock(
    storage::BlockKeyView id, Placement where, AllocateFn allocate) {
  v1::AccessRequest request;
  request.set_namespace_(id.ns.data(), id.ns.size());
  request.set_id(id.id.data(), id.id.size());
  request.set_chunk_bytes(options_.transfer.chunk_bytes);
  return Fetch(
      request, where,
      [&](const v1::BlockInfo& block, uint64_t) { return allocate(block); },
      nullptr);
}

absl::Status BlockTransport::StoreBlock(storage::BlockKeyView id,
                                        Placement from, const void* data,
                                        uint64_t size) {
  return Store(id, from, data, size, 0, std::nullopt).status();
}

absl::StatusOr<v1::BlockInfo> BlockTransport::DescribeBlock(
    storage::BlockKeyView id) {
  v1::GetBlockRequest req;
  req.set_namespace_(id.ns.data(), id.ns.size());
  req.set_id(id.id.data(), id.id.size());
  v1::GetBlockResponse resp;
  grpc::Status s =
      WithRetries(options_.timeout, options_.max_retries,
                  options_.retry_backoff, [&](grpc::ClientContext& ctx) {
                    return control().GetBlock(&ctx, req, &resp);
                  });
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return std::move(*resp.mutable_block());
}

}  // namespace tensorpager::internal
