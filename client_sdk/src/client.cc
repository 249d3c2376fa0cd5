#include "tensorpager/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tensorpager {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

}  // namespace

Client::Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : channel_(std::move(channel)),
      stub_(v1::TensorPager::NewStub(channel_)),
      options_(options) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const std::string& target, ClientOptions options) {
  if (target.empty()) {
    return absl::InvalidArgumentError(
        "target is empty; use host:port or unix:/path");
  }
  if (options.write_chunk_bytes == 0 || options.write_chunk_bytes > (1u << 20)) {
    return absl::InvalidArgumentError("write_chunk_bytes must be 1..1 MiB");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  args.SetMaxSendMessageSize(8 << 20);
  auto channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<Client>(new Client(std::move(channel), options));
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

// Retries read-only calls on UNAVAILABLE; `call` fills a fresh context.
template <typename Fn>
static grpc::Status WithRetries(const ClientOptions& o, Fn call) {
  grpc::Status s;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + o.timeout));
    s = call(ctx);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE ||
        attempt >= o.max_retries) {
      return s;
    }
    std::this_thread::sleep_for(
        absl::ToChronoNanoseconds(o.retry_backoff * (attempt + 1)));
  }
}

absl::StatusOr<v1::BlockInfo> Client::Register(const BlockSpec& spec) {
  v1::RegisterBlockRequest req;
  req.set_namespace_(spec.name.ns);
  req.set_id(spec.name.id);
  req.set_size_bytes(spec.size_bytes);
  req.set_region_type(spec.region_type);
  req.set_pinned(spec.pinned);
  req.set_dtype(spec.dtype);
  for (int64_t d : spec.shape) req.add_shape(d);
  req.mutable_labels()->insert(spec.labels.begin(), spec.labels.end());
  if (spec.sequence) {
    req.mutable_sequence()->set_group(spec.sequence->first);
    req.mutable_sequence()->set_index(spec.sequence->second);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  v1::RegisterBlockResponse resp;
  if (absl::Status s = FromGrpc(stub_->RegisterBlock(&ctx, req, &resp));
      !s.ok()) {
    return s;
  }
  return std::move(*resp.mutable_block());
}

absl::StatusOr<v1::WriteBlockResponse> Client::Write(
    const BlockName& name, absl::string_view data, uint64_t offset,
    std::optional<bool> durable) {
  return Write(name,
               absl::Span<const std::byte>(
                   reinterpret_cast<const std::byte*>(data.data()), data.size()),
               offset, durable);
}

absl::StatusOr<v1::WriteBlockResponse> Client::Write(
    const BlockName& name, absl::Span<const std::byte> data, uint64_t offset,
    std::optional<bool> durable) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  v1::WriteBlockResponse resp;
  std::unique_ptr<grpc::ClientWriter<v1::WriteBlockRequest>> writer =
      stub_->WriteBlock(&ctx, &resp);
  v1::WriteBlockRequest msg;
  msg.set_namespace_(name.ns);
  msg.set_id(name.id);
  msg.set_offset(offset);
  msg.set_total_bytes(data.size());
  if (durable) msg.set_durable(*durable);
  uint64_t sent = 0;
  do {
    const uint64_t n =
        std::min<uint64_t>(options_.write_chunk_bytes, data.size() - sent);
    msg.set_data(reinterpret_cast<const char*>(data.data()) + sent, n);
    sent += n;
    if (!writer->Write(msg)) break;  // the server ended the call early
    msg.Clear();
  } while (sent < data.size());
  writer->WritesDone();
  if (absl::Status s = FromGrpc(writer->Finish()); !s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::BlockInfo> Client::DoAccess(
    const v1::AccessRequest& request,
    absl::FunctionRef<absl::Status(uint64_t, absl::string_view)> sink,
    bool* hit) {
  v1::BlockInfo info;
  absl::Status sink_error;
  grpc::Status s = WithRetries(options_, [&](grpc::ClientContext& ctx) {
    sink_error = absl::OkStatus();
    std::unique_ptr<grpc::ClientReader<v1::AccessResponse>> reader =
        stub_->Access(&ctx, request);
    v1::AccessResponse msg;
    bool first = true;
    while (reader->Read(&msg)) {
      if (first) {
        info = std::move(*msg.mutable_block());
        if (hit != nullptr) *hit = msg.hit();
        first = false;
      }
      if (!msg.data().empty() && sink_error.ok()) {
        sink_error = sink(msg.offset(), msg.data());
        if (!sink_error.ok()) ctx.TryCancel();
      }
    }
    return reader->Finish();
  });
  if (!sink_error.ok()) return sink_error;
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return info;
}

absl::StatusOr<ReadResult> Client::Read(const BlockName& name, uint64_t offset,
                                        uint64_t length) {
  v1::AccessRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  req.set_offset(offset);
  req.set_length(length);
  ReadResult result;
  absl::StatusOr<v1::BlockInfo> info = DoAccess(
      req,
      [&](uint64_t at, absl::string_view chunk) {
        if (result.data.empty() && length != 0) result.data.reserve(length);
        if (at != offset + result.data.size()) {
          return absl::DataLossError("Access stream arrived out of order");
        }
        result.data.append(chunk.data(), chunk.size());
        return absl::OkStatus();
      },
      &result.hit);
  if (!info.ok()) return info.status();
  result.block = *std::move(info);
  return result;
}

absl::StatusOr<v1::BlockInfo> Client::ReadInto(const BlockName& name,
                                               absl::Span<std::byte> out,
                                               uint64_t offset, bool* hit) {
  v1::AccessRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  req.set_offset(offset);
  req.set_length(out.size());
  uint64_t received = 0;
  absl::StatusOr<v1::BlockInfo> info = DoAccess(
      req,
      [&](uint64_t at, absl::string_view chunk) {
        if (at < offset || at - offset + chunk.size() > out.size()) {
          return absl::DataLossError("Access stream went past the buffer");
        }
        std::memcpy(out.data() + (at - offset), chunk.data(), chunk.size());
        received += chunk.size();
        return absl::OkStatus();
      },
      hit);
  if (info.ok() && received != out.size()) {
    return absl::DataLossError(absl::StrCat("Access returned ", received,
                                            " of ", out.size(), " bytes"));
  }
  return info;
}

absl::StatusOr<ReadResult> Client::Touch(const BlockName& name) {
  v1::AccessRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  req.set_touch_only(true);
  ReadResult result;
  absl::StatusOr<v1::BlockInfo> info = DoAccess(
      req, [](uint64_t, absl::string_view) { return absl::OkStatus(); },
      &result.hit);
  if (!info.ok()) return info.status();
  result.block = *std::move(info);
  return result;
}

absl::StatusOr<v1::SwapResponse> Client::DoSwap(const v1::SwapRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  v1::SwapResponse resp;
  if (absl::Status s = FromGrpc(stub_->Swap(&ctx, req, &resp)); !s.ok()) {
    return s;
  }
  return resp;
}

static v1::SwapRequest SwapRequestFor(v1::SwapDirection direction,
                                      const std::vector<BlockName>& names) {
  v1::SwapRequest req;
  req.set_direction(direction);
  if (!names.empty()) req.set_namespace_(names.front().ns);
  for (const BlockName& n : names) req.add_ids(n.id);
  return req;
}

absl::StatusOr<v1::SwapResponse> Client::SwapOut(
    const std::vector<BlockName>& names) {
  return DoSwap(SwapRequestFor(v1::SWAP_OUT, names));
}

absl::StatusOr<v1::SwapResponse> Client::SwapIn(
    const std::vector<BlockName>& names) {
  return DoSwap(SwapRequestFor(v1::SWAP_IN, names));
}

absl::StatusOr<v1::SwapResponse> Client::SwapBytes(v1::SwapDirection direction,
                                                   uint64_t target_bytes) {
  v1::SwapRequest req;
  req.set_direction(direction);
  req.set_target_bytes(target_bytes);
  return DoSwap(req);
}

absl::StatusOr<v1::BlockInfo> Client::Pin(const BlockName& name) {
  v1::PinRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  v1::PinResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (absl::Status s = FromGrpc(stub_->Pin(&ctx, req, &resp)); !s.ok()) return s;
  return std::move(*resp.mutable_block());
}

absl::StatusOr<v1::BlockInfo> Client::Unpin(const BlockName& name) {
  v1::PinRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  v1::PinResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (absl::Status s = FromGrpc(stub_->Unpin(&ctx, req, &resp)); !s.ok()) {
    return s;
  }
  return std::move(*resp.mutable_block());
}

absl::StatusOr<v1::UnregisterBlockResponse> Client::Unregister(
    const BlockName& name) {
  v1::UnregisterBlockRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  v1::UnregisterBlockResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (absl::Status s = FromGrpc(stub_->UnregisterBlock(&ctx, req, &resp));
      !s.ok()) {
    return s;
  }
  return resp;
}

absl::StatusOr<v1::BlockInfo> Client::Get(const BlockName& name) {
  v1::GetBlockRequest req;
  req.set_namespace_(name.ns);
  req.set_id(name.id);
  v1::GetBlockResponse resp;
  grpc::Status s = WithRetries(options_, [&](grpc::ClientContext& ctx) {
    return stub_->GetBlock(&ctx, req, &resp);
  });
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return std::move(*resp.mutable_block());
}

absl::StatusOr<v1::ListBlocksResponse> Client::List(
    const v1::ListBlocksRequest& req) {
  v1::ListBlocksResponse resp;
  grpc::Status s = WithRetries(options_, [&](grpc::ClientContext& ctx) {
    return stub_->ListBlocks(&ctx, req, &resp);
  });
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return resp;
}

absl::StatusOr<v1::StatusResponse> Client::Status() {
  v1::StatusResponse resp;
  grpc::Status s = WithRetries(options_, [&](grpc::ClientContext& ctx) {
    return stub_->Status(&ctx, v1::StatusRequest(), &resp);
  });
  if (absl::Status st = FromGrpc(s); !st.ok()) return st;
  return resp;
}

}  // namespace tensorpager
