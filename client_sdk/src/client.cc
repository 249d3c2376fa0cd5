// The direct-RPC layer of tensorpager::Client; the cache layer is in
// client_cache.cc.
#include "tensorpager/client.h"

#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client_sdk/src/batch_transport.h"
#include "client_sdk/src/block_name_key.h"
#include "client_sdk/src/block_transport.h"
#include "client_sdk/src/channel_security.h"
#include "client_sdk/src/local_cache.h"
#include "client_sdk/src/pressure_follower.h"
#include "client_sdk/src/rpc_util.h"
#include "client_sdk/src/server_pressure_source.h"
#include "client_sdk/src/stream_pool.h"
#include "client_sdk/src/usage_reporter.h"
#include "client_sdk/src/work_queue.h"
#include "storage/base/allocator_tuning.h"
#include "storage/base/log.h"

namespace tensorpager {
namespace {

using internal::CheckedKey;
using internal::FromGrpc;
using internal::LocalKey;
using internal::SetDeadline;

// Room for a batch of the largest the server allows (--max_batch_bytes is
// at most 1 GiB) plus its blocks' names and attributes; the server's
// limits keep what it sends and takes below its own settings.
constexpr int kMaxMessageBytes = (1 << 30) + (64 << 20);
constexpr uint32_t kMaxChunkBytes = 1u << 20;
constexpr uint32_t kMinChunkBytes = 4096;

// Targets on this host, where the shared-memory data path can work (the
// server checks the same from its side).
bool IsLocalTarget(absl::string_view target) {
  absl::ConsumePrefix(&target, "dns:///");
  absl::ConsumePrefix(&target, "ipv4:");
  absl::ConsumePrefix(&target, "ipv6:");
  return absl::StartsWith(target, "unix:") ||
         absl::StartsWith(target, "localhost") ||
         absl::StartsWith(target, "127.") || absl::StartsWith(target, "[::1]");
}

absl::Status ValidateOptions(const ClientOptions& o) {
  if (o.write_chunk_bytes == 0 || o.write_chunk_bytes > kMaxChunkBytes) {
    return absl::InvalidArgumentError("write_chunk_bytes must be 1..1 MiB");
  }
  if (o.transfer.chunk_bytes < kMinChunkBytes ||
      o.transfer.chunk_bytes > kMaxChunkBytes) {
    return absl::InvalidArgumentError(
        "transfer.chunk_bytes must be 4 KiB..1 MiB");
  }
  if (o.transfer.staging_buffers < 2 || o.transfer.staging_buffers > 64) {
    return absl::InvalidArgumentError(
        "transfer.staging_buffers must be 2..64 (2 are needed to overlap)");
  }
  if (o.transfer.streams_per_device < 1 || o.transfer.streams_per_device > 64) {
    return absl::InvalidArgumentError(
        "transfer.streams_per_device must be 1..64");
  }
  if (o.connections < 1 || o.connections > 64) {
    return absl::InvalidArgumentError("connections must be 1..64");
  }
  if (o.prefetch_threads < 1 || o.prefetch_threads > 64) {
    return absl::InvalidArgumentError("prefetch_threads must be 1..64");
  }
  for (double share : {o.cache.high_pressure_budget_share,
                       o.cache.critical_pressure_budget_share}) {
    if (!(share >= 0.0 && share <= 1.0)) {
      return absl::InvalidArgumentError(
          "cache pressure budget shares must lie in [0, 1]");
    }
  }
  if (o.reporting.access_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "reporting.access_interval must be positive");
  }
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  return absl::OkStatus();
}

std::string DefaultClientId() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) {
    std::strcpy(host, "unknown-host");
  }
  return absl::StrCat(host, ":", ::getpid());
}

std::string FormatMiB(uint64_t bytes) {
  return absl::StrCat(bytes >> 20, " MiB");
}

}  // namespace

Client::Client(std::vector<std::shared_ptr<grpc::Channel>> channels,
               ClientOptions options)
    : options_(std::move(options)),
      client_id_(options_.client_id.empty() ? DefaultClientId()
                                            : options_.client_id),
      channels_(std::move(channels)),
      channel_(channels_.front()),
      stub_(v1::TensorPager::NewStub(channel_)),
      log_(
          std::make_unique<base::Logger>(options_.log_sink, "tensorpager-sdk")),
      runtime_(options_.device_runtime != nullptr ? options_.device_runtime
                                                  : DefaultDeviceRuntime()) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const std::string& target, ClientOptions options) {
  if (target.empty()) {
    return absl::InvalidArgumentError(
        "target is empty; use host:port or unix:/path");
  }
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  if (absl::Status s = internal::ValidateSecurityOptions(options); !s.ok()) {
    return s;
  }
  if (options.tune_allocator) base::TuneProcessAllocator();
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    // Each channel gets its own TCP connection (channels with equal
    // arguments would share one subchannel).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Bulk transfers: big HTTP/2 frames and a deep stream window.
    args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 4 << 20);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        internal::MakeChannel(target, options, args);
    if (!channel.ok()) return channel.status();
    channels.push_back(*std::move(channel));
  }
  std::unique_ptr<Client> client(
      new Client(std::move(channels), std::move(options)));
  client->Start();
  if (client->options_.shared_memory_bytes == 0) {
    client->transport_->RefuseSharedMemory("shared_memory_bytes is 0",
                                           client->log_.get());
  } else if (!IsLocalTarget(target)) {
    client->transport_->RefuseSharedMemory(
        absl::StrCat("target ", target,
                     " is not on this host (shared memory needs localhost, "
                     "127.x, [::1] or unix:)"),
        client->log_.get());
  } else {
    client->transport_->OfferSharedMemory(client->options_.shared_memory_bytes,
                                          client->log_.get());
  }
  return client;
}

void Client::Start() {
  const CacheOptions& c = options_.cache;
  if (runtime_->device_count() == 0) {
    log_->Info(absl::StrCat(
        "no CUDA device (", runtime_->unavailable_reason(),
        "): host mode, device placements fail with FAILED_PRECONDITION; "
        "host cache ",
        FormatMiB(c.host_budget_bytes)));
  } else {
    log_->Info(absl::StrCat(
        runtime_->name(), "; host cache ", FormatMiB(c.host_budget_bytes),
        c.pin_host_memory ? " (page-locked)" : "", ", GPU cache ",
        FormatMiB(c.gpu_budget_bytes), " per device"));
  }
  streams_ = std::make_unique<internal::StreamPool>(
      runtime_, options_.transfer.streams_per_device,
      options_.transfer.staging_buffers, options_.transfer.chunk_bytes);
  transport_ = std::make_unique<internal::BlockTransport>(
      channels_, options_, streams_.get(), runtime_.get());
  batches_ =
      std::make_unique<internal::BatchTransport>(transport_.get(), options_);
  cache_ = std::make_unique<internal::LocalCache>(
      c, options_.reporting.access_batch, runtime_, streams_.get(),
      transport_.get(), log_.get());
  const bool own_source = options_.pressure_source != nullptr;
  reporter_ = std::make_unique<internal::UsageReporter>(
      stub_.get(), client_id_, options_, runtime_.get(), cache_.get(),
      log_.get(), /*apply_pressure=*/!own_source);
  if (own_source) {
    pressure_ = std::make_unique<internal::PressureFollower>(
        options_.pressure_source, cache_.get(), log_.get());
  } else if (options_.reporting.watch_pressure) {
    pressure_ = std::make_unique<internal::PressureFollower>(
        std::make_shared<internal::ServerPressureSource>(stub_.get()),
        cache_.get(), log_.get());
  }
  prefetch_ = std::make_unique<internal::WorkQueue>(options_.prefetch_threads);
}

absl::Status Client::Close() {
  if (closed_.exchange(true)) return absl::OkStatus();
  prefetch_->Shutdown();
  if (pressure_ != nullptr) pressure_->Stop();
  reporter_->Stop();
  absl::Status flushed = cache_->FlushAll();
  transport_->DisableSharedMemory();
  return flushed;
}

Client::~Client() {
  if (absl::Status s = Close(); !s.ok()) {
    log_->Warning(absl::StrCat("closing the client: ", s.ToString()));
  }
  // Threads first (they use the cache), then the cache (it uses the
  // transport and streams), then the streams.
  prefetch_.reset();
  pressure_.reset();
  reporter_.reset();
  cache_.reset();
  batches_.reset();
  transport_.reset();
  streams_.reset();
}

absl::Status Client::WaitUntilReady(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::StatusResponse> s = Status();
    if (s.ok()) return absl::OkStatus();
    if (s.status().code() != absl::StatusCode::kUnavailable &&
        s.status().code() != absl::StatusCode::kDeadlineExceeded) {
      return s.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "tensorpagerd did not answer within ", absl::FormatDuration(timeout)));
}

absl::StatusOr<v1::BlockInfo> Client::Register(const BlockSpec& spec) {
  absl::StatusOr<storage::BlockKeyView> key = CheckedKey(spec.name);
  if (!key.ok()) return key.status();
  v1::RegisterBlockRequest req;
  req.set_namespace_(spec.name.ns);
  req.set_id(spec.name.id);
  req.set_size_bytes(spec.size_bytes);
  req.set_region_type(spec.region_type);
  req.set_pinned(spec.pinned);
  req.set_dtype(spec.dtype);
  req.set_compression(spec.compression);
  for (int64_t d : spec.shape) req.add_shape(d);
  req.mutable_labels()->insert(spec.labels.begin(), spec.labels.end());
  if (spec.sequence) {
    req.mutable_sequence()->set_group(spec.sequence->first);
    req.mutable_sequence()->set_index(spec.sequence->second);
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  v1::RegisterBlockResponse resp;
  if (absl::Status s = FromGrpc(stub_->RegisterBlock(&ctx, req, &resp));
      !s.ok()) {
    return s;
  }
  transport_->NoteBlockSize(*key, spec.size_bytes);
  return std::move(*resp.mutable_block());
}

absl::StatusOr<v1::BlockInfo> Client::Register(const BlockSpec& spec,
                                               const void* data,
                                               Placement from) {
  if (data == nullptr) {
    return absl::InvalidArgumentError("Register: data is null");
  }
  if (from.is_device() && from.device() >= runtime_->device_count()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read a tensor from ", from.ToString(), ": ",
        runtime_->device_count() == 0
            ? absl::StrCat("the SDK runs in host mode (",
                           runtime_->unavailable_reason(), ")")
            : absl::StrCat(runtime_->device_count(), " device(s) present")));
  }
  absl::StatusOr<v1::BlockInfo> info = Register(spec);
  if (!info.ok()) return info;
  absl::StatusOr<v1::WriteBlockResponse> w = transport_->Store(
      LocalKey(spec.name), from, data, spec.size_bytes, 0, std::nullopt);
  if (!w.ok()) {
    // Leave nothing half-made behind: a registered block with no bytes.
    static_cast<void>(Unregister(spec.name));
    return absl::Status(
        w.status().code(),
        absl::StrCat("writing the bytes of ", spec.name.ToString(),
                     " failed (registration undone): ", w.status().message()));
  }
  return std::move(*w->mutable_block());
}

absl::StatusOr<v1::WriteBlockResponse> Client::Write(
    const BlockName& name, absl::string_view data, uint64_t offset,
    std::optional<bool> durable) {
  return WriteFrom(name, data.data(), data.size(), Placement::Host(), offset,
                   durable);
}

absl::StatusOr<v1::WriteBlockResponse> Client::Write(
    const BlockName& name, absl::Span<const std::byte> data, uint64_t offset,
    std::optional<bool> durable) {
  return WriteFrom(name, data.data(), data.size(), Placement::Host(), offset,
                   durable);
}

absl::StatusOr<v1::WriteBlockResponse> Client::WriteFrom(
    const BlockName& name, const void* data, uint64_t size, Placement from,
    uint64_t offset, std::optional<bool> durable) {
  if (from.is_device() && from.device() >= runtime_->device_count()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write from ", from.ToString(), ": ",
                     runtime_->device_count(), " CUDA device(s) present"));
  }
  absl::StatusOr<storage::BlockKeyView> key = CheckedKey(name);
  if (!key.ok()) return key.status();
  // A partial write must land on top of the newest bytes, and the local
  // copies are stale afterwards.
  if (absl::Status s = FlushIfDirty(name); !s.ok()) return s;
  if (absl::Status s = cache_->Invalidate(*key); !s.ok()) return s;
  return transport_->Store(*key, from, data, size, offset, durable);
}

absl::Status Client::FlushIfDirty(const BlockName& name) {
  if (!cache_->IsDirty(LocalKey(name))) return absl::OkStatus();
  return cache_->Flush(LocalKey(name));
}

absl::StatusOr<ReadResult> Client::Read(const BlockName& name, uint64_t offset,
                                        uint64_t length) {
  if (absl::Status s = CheckedKey(name).status(); !s.ok()) return s;
  if (absl::Status s = FlushIfDirty(name); !s.ok()) return s;
  v1::AccessRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  req.set_offset(offset);
  req.set_length(length);
  ReadResult result;
  absl::StatusOr<v1::BlockInfo> info = transport_->Fetch(
      req, Placement::Host(),
      [&](const v1::BlockInfo&, uint64_t n) -> absl::StatusOr<void*> {
        result.data.resize(n);
        return result.data.data();
      },
      &result.hit);
  if (!info.ok()) return info.status();
  result.block = *std::move(info);
  return result;
}

absl::StatusOr<v1::BlockInfo> Client::ReadInto(const BlockName& name,
                                               absl::Span<std::byte> out,
                                               uint64_t offset, bool* hit) {
  if (absl::Status s = CheckedKey(name).status(); !s.ok()) return s;
  if (absl::Status s = FlushIfDirty(name); !s.ok()) return s;
  v1::AccessRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  req.set_offset(offset);
  req.set_length(out.size());
  return transport_->Fetch(
      req, Placement::Host(),
      [&](const v1::BlockInfo&, uint64_t n) -> absl::StatusOr<void*> {
        if (n != out.size()) {
          return absl::DataLossError(
              absl::StrCat("Access of ", name.ToString(), " answers ", n,
                           " bytes for a buffer of ", out.size()));
        }
        return out.data();
      },
      hit);
}

absl::StatusOr<ReadResult> Client::Touch(const BlockName& name) {
  if (absl::Status s = CheckedKey(name).status(); !s.ok()) return s;
  v1::AccessRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  req.set_touch_only(true);
  ReadResult result;
  absl::StatusOr<v1::BlockInfo> info = transport_->Fetch(
      req, Placement::Host(),
      [](const v1::BlockInfo&, uint64_t) -> absl::StatusOr<void*> {
        return absl::InternalError("a touch-only Access carries no data");
      },
      &result.hit);
  if (!info.ok()) return info.status();
  result.block = *std::move(info);
  return result;
}

absl::StatusOr<v1::SwapResponse> Client::DoSwap(const v1::SwapRequest& req) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  v1::SwapResponse resp;
  if (absl::Status s = FromGrpc(stub_->Swap(&ctx, req, &resp)); !s.ok()) {
    return s;
  }
  return resp;
}

// The request names every block in the first name's namespace, and the
// server checks them as such: so does this.
static absl::StatusOr<v1::SwapRequest> SwapRequestFor(
    v1::SwapDirection direction, const std::vector<BlockName>& names) {
  v1::SwapRequest req;
  req.set_direction(direction);
  if (!names.empty()) req.set_namespace_(names.front().ns);
  for (const BlockName& n : names) {
    absl::Status s =
        storage::BlockKeyView::Make(req.namespace_(), n.id).status();
    if (!s.ok()) return s;
    req.add_ids(n.id);
  }
  return req;
}

absl::StatusOr<v1::SwapResponse> Client::SwapOut(
    const std::vector<BlockName>& names) {
  absl::StatusOr<v1::SwapRequest> req = SwapRequestFor(v1::SWAP_OUT, names);
  if (!req.ok()) return req.status();
  return DoSwap(*req);
}

absl::StatusOr<v1::SwapResponse> Client::SwapIn(
    const std::vector<BlockName>& names) {
  absl::StatusOr<v1::SwapRequest> req = SwapRequestFor(v1::SWAP_IN, names);
  if (!req.ok()) return req.status();
  return DoSwap(*req);
}

absl::StatusOr<v1::SwapResponse> Client::SwapBytes(v1::SwapDirection direction,
                                                   uint64_t target_bytes) {
  v1::SwapRequest req;
  req.set_direction(direction);
  req.set_target_bytes(target_bytes);
  return DoSwap(req);
}

absl::StatusOr<v1::BlockInfo> Client::SetPinned(const BlockName& name,
                                                bool pinned) {
  if (absl::Status s = CheckedKey(name).status(); !s.ok()) return s;
  v1::PinRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  v1::PinResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  const grpc::Status s =
      pinned ? stub_->Pin(&ctx, req, &resp) : stub_->Unpin(&ctx, req, &resp);
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  cache_->SetPinned(LocalKey(name), resp.block().pinned());
  return std::move(*resp.mutable_block());
}

absl::StatusOr<v1::BlockInfo> Client::Pin(const BlockName& name) {
  return SetPinned(name, true);
}

absl::StatusOr<v1::BlockInfo> Client::Unpin(const BlockName& name) {
  return SetPinned(name, false);
}

absl::StatusOr<v1::UnregisterBlockResponse> Client::Unregister(
    const BlockName& name) {
  absl::StatusOr<storage::BlockKeyView> key = CheckedKey(name);
  if (!key.ok()) return key.status();
  if (absl::Status s = cache_->Invalidate(*key); !s.ok()) return s;
  v1::UnregisterBlockRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  v1::UnregisterBlockResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  if (absl::Status s = FromGrpc(stub_->UnregisterBlock(&ctx, req, &resp));
      !s.ok()) {
    return s;
  }
  return resp;
}

absl::StatusOr<v1::BlockInfo> Client::Get(const BlockName& name) {
  absl::StatusOr<storage::BlockKeyView> key = CheckedKey(name);
  if (!key.ok()) return key.status();
  return transport_->DescribeBlock(*key);
}

absl::StatusOr<v1::ListBlocksResponse> Client::List(
    const v1::ListBlocksRequest& req) {
  v1::ListBlocksResponse resp;
  grpc::Status s = internal::WithRetries(
      options_.timeout, options_.max_retries, options_.retry_backoff,
      [&](grpc::ClientContext& ctx) {
        return stub_->ListBlocks(&ctx, req, &resp);
      });
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::StatusResponse> Client::Status() {
  v1::StatusResponse resp;
  grpc::Status s = internal::WithRetries(
      options_.timeout, options_.max_retries, options_.retry_backoff,
      [&](grpc::ClientContext& ctx) {
        return stub_->Status(&ctx, v1::StatusRequest(), &resp);
      });
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::SetPolicyResponse> Client::SetPolicy(
    v1::Algorithm algorithm) {
  v1::SetPolicyRequest req;
  req.set_algorithm(algorithm);
  v1::SetPolicyResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.timeout);
  if (absl::Status s = FromGrpc(stub_->SetPolicy(&ctx, req, &resp)); !s.ok()) {
    return s;
  }
  return resp;
}

}  // namespace tensorpager
