#include "client_sdk/src/block_transport.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/device_pipeline.h"
#include "client_sdk/src/rpc_util.h"

namespace tensorpager::internal {

BlockTransport::BlockTransport(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const ClientOptions& options, StreamPool* streams)
    : options_(options), streams_(streams) {
  for (const std::shared_ptr<grpc::Channel>& c : channels) {
    stubs_.push_back(v1::TensorPager::NewStub(c));
    connections_.push_back(Connection{
        c,
        grpc::internal::RpcMethod("/tensorpager.v1.TensorPager/Access",
                                  grpc::internal::RpcMethod::SERVER_STREAMING,
                                  c),
        grpc::internal::RpcMethod("/tensorpager.v1.TensorPager/WriteBlock",
                                  grpc::internal::RpcMethod::CLIENT_STREAMING,
                                  c)});
  }
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
  return info;
}

absl::StatusOr<v1::WriteBlockResponse> BlockTransport::Store(
    BlockIdView id, Placement from, const void* data, uint64_t size,
    uint64_t offset, std::optional<bool> durable) {
  std::optional<StreamPool::Lease> lease;
  if (from.is_device()) {
    absl::StatusOr<StreamPool::Lease> l = streams_->Acquire(from.device());
    if (!l.ok()) return l.status();
    lease.emplace(*std::move(l));
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

absl::StatusOr<v1::BlockInfo> BlockTransport::FetchBlock(BlockIdView id,
                                                         Placement where,
                                                         AllocateFn allocate) {
  v1::AccessRequest request;
  request.set_namespace_(id.ns.data(), id.ns.size());
  request.set_id(id.id.data(), id.id.size());
  request.set_chunk_bytes(options_.transfer.chunk_bytes);
  return Fetch(
      request, where,
      [&](const v1::BlockInfo& block, uint64_t) { return allocate(block); },
      nullptr);
}

absl::Status BlockTransport::StoreBlock(BlockIdView id, Placement from,
                                        const void* data, uint64_t size) {
  return Store(id, from, data, size, 0, std::nullopt).status();
}

absl::StatusOr<v1::BlockInfo> BlockTransport::DescribeBlock(BlockIdView id) {
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
