// The batch layer of tensorpager::Client (tensorpager/batch.h): checks
// names before anything is sent, keeps local copies coherent, splits a
// caller's batch into calls within the server's limits and turns replies
// into one outcome per item. The calls themselves travel through
// BatchTransport (batch_transport.h).
#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_sdk/src/batch_transport.h"
#include "client_sdk/src/block_name_key.h"
#include "client_sdk/src/local_cache.h"
#include "client_sdk/src/rpc_util.h"
#include "google/protobuf/arena.h"
#include "tensorpager/client.h"

namespace tensorpager {
namespace {

using internal::BatchTransport;
using internal::CheckedKey;
using internal::FromGrpc;
using internal::LocalKey;

absl::Status StatusOf(const v1::BlockStatus& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.code()), s.message());
}

// Consecutive runs of items, each within the limits of one call. An item
// larger than a call's bytes goes alone (the server then refuses it, and
// only it).
template <typename SizeOf>
std::vector<std::pair<size_t, size_t>> Split(size_t n, SizeOf size_of,
                                             BatchTransport::Limits limits) {
  std::vector<std::pair<size_t, size_t>> runs;
  size_t begin = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t size = size_of(i);
    if (i > begin &&
        (i - begin >= limits.max_blocks || bytes + size > limits.max_bytes)) {
      runs.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (n > begin) runs.emplace_back(begin, n);
  return runs;
}

// After a call of a caller's batch failed whole: the first call's error
// is the batch's (nothing happened); a later one's is the outcome of each
// item it and the calls after it carried (the earlier calls stand).
template <typename Outcome>
void SetError(const absl::Status& error, Outcome& outcome) {
  if constexpr (std::is_same_v<Outcome, absl::Status>) {
    outcome = error;
  } else {
    outcome.status = error;
  }
}

template <typename Outcome>
absl::Status FailRest(const absl::Status& error, bool first,
                      const std::vector<size_t>& sent, size_t from,
                      std::vector<Outcome>& outcomes) {
  if (first) return error;
  for (size_t j = from; j < sent.size(); ++j)
    SetError(error, outcomes[sent[j]]);
  return absl::OkStatus();
}

// Checks an item's name and drops its local copies (the server's block
// changes or goes).
absl::Status CheckAndDrop(internal::LocalCache& cache, absl::string_view ns,
                          absl::string_view id) {
  absl::StatusOr<storage::BlockKeyView> key =
      storage::BlockKeyView::Make(ns, id);
  if (!key.ok()) return key.status();
  return cache.Invalidate(*key);
}

// The positions of the items `check` passes, to be sent; each other item's
// outcome is its error.
template <typename Outcome, typename Check>
std::vector<size_t> Sendable(std::vector<Outcome>& outcomes, Check check) {
  std::vector<size_t> sent;
  sent.reserve(outcomes.size());
  for (size_t i = 0; i < outcomes.size(); ++i) {
    absl::Status s = check(i);
    if (s.ok()) {
      sent.push_back(i);
    } else {
      SetError(s, outcomes[i]);
    }
  }
  return sent;
}

// After the call that carried items sent[begin, end) failed whole: a lone
// item over a call's limits is that item's failure, and the batch goes on
// (nullopt); otherwise FailRest says what the batch returns.
template <typename Outcome>
std::optional<absl::Status> AfterFailedCall(const absl::Status& error,
                                            size_t begin, size_t end,
                                            const std::vector<size_t>& sent,
                                            std::vector<Outcome>& outcomes) {
  if (end - begin == 1 && absl::IsInvalidArgument(error)) {
    SetError(error, outcomes[sent[begin]]);
    return std::nullopt;
  }
  return FailRest(error, begin == 0, sent, begin, outcomes);
}

}  // namespace

absl::StatusOr<LookupOutcome> Client::Lookup(
    absl::string_view ns, absl::Span<const std::string> ids) {
  if (absl::Status s = storage::ValidateNamespace(ns); !s.ok()) return s;
  LookupOutcome outcome;
  outcome.entries.reserve(ids.size());
  bool chain = true;
  const BatchTransport::Limits limits = batches_->limits();
  for (size_t begin = 0; begin < ids.size(); begin += limits.max_blocks) {
    const size_t end = std::min<size_t>(ids.size(), begin + limits.max_blocks);
    // Request and reply on one arena: their ids and entries cost no
    // malloc each.
    google::protobuf::Arena arena;
    auto* request =
        google::protobuf::Arena::CreateMessage<v1::LookupRequest>(&arena);
    auto* response =
        google::protobuf::Arena::CreateMessage<v1::LookupResponse>(&arena);
    request->set_namespace_(ns.data(), ns.size());
    request->mutable_ids()->Add(ids.begin() + begin, ids.begin() + end);
    if (absl::Status s = batches_->Lookup(*request, response); !s.ok()) {
      return s;
    }
    if (response->entries_size() != static_cast<int>(end - begin)) {
      return absl::InternalError("Lookup answered for other ids than asked");
    }
    for (const v1::LookupEntry& e : response->entries()) {
      outcome.entries.push_back(e);
    }
    if (chain) outcome.prefix_hits += response->prefix_hits();
    chain = chain && response->prefix_hits() == end - begin;
  }
  return outcome;
}

absl::StatusOr<std::vector<PutOutcome>> Client::PutBatch(
    absl::string_view ns, absl::Span<const PutItem> items,
    std::optional<bool> durable) {
  if (absl::Status s = storage::ValidateNamespace(ns); !s.ok()) return s;
  std::vector<PutOutcome> outcomes(items.size());
  // The put replaces the block whole: local copies are stale after it.
  const std::vector<size_t> sent = Sendable(outcomes, [&](size_t i) {
    return CheckAndDrop(*cache_, ns, items[i].id);
  });
  const auto runs = Split(
      sent.size(), [&](size_t j) { return items[sent[j]].data.size(); },
      batches_->limits());
  for (const auto& [begin, end] : runs) {
    v1::PutBlocksRequest request;
    request.set_namespace_(ns.data(), ns.size());
    if (durable) request.set_durable(*durable);
    std::vector<absl::Span<const std::byte>> sources;
    sources.reserve(end - begin);
    for (size_t j = begin; j < end; ++j) {
      const PutItem& item = items[sent[j]];
      v1::PutBlock* b = request.add_blocks();
      b->set_id(item.id);
      b->set_size_bytes(item.data.size());
      b->set_region_type(item.region_type);
      b->set_dtype(item.dtype);
      b->mutable_shape()->Add(item.shape.begin(), item.shape.end());
      b->mutable_labels()->insert(item.labels.begin(), item.labels.end());
      if (item.sequence) {
        b->mutable_sequence()->set_group(item.sequence->first);
        b->mutable_sequence()->set_index(item.sequence->second);
      }
      b->set_compression(item.compression);
      b->set_pinned(item.pinned);
      sources.push_back(item.data);
    }
    absl::StatusOr<v1::PutBlocksResponse> response =
        batches_->Put(std::move(request), sources);
    if (!response.ok()) {
      std::optional<absl::Status> stop =
          AfterFailedCall(response.status(), begin, end, sent, outcomes);
      if (stop) return *stop;
      continue;
    }
    for (size_t j = begin; j < end; ++j) {
      const v1::PutResult& r = response->results(static_cast<int>(j - begin));
      PutOutcome& o = outcomes[sent[j]];
      o.status = StatusOf(r.status());
      o.created = r.created();
      o.version = r.version();
      o.durable = r.durable();
    }
  }
  return outcomes;
}

absl::StatusOr<std::vector<GetOutcome>> Client::GetBatch(
    absl::string_view ns, absl::Span<const GetItem> items) {
  if (absl::Status s = storage::ValidateNamespace(ns); !s.ok()) return s;
  std::vector<GetOutcome> outcomes(items.size());
  // The server's bytes must be current: a dirty local copy goes first.
  const std::vector<size_t> sent = Sendable(outcomes, [&](size_t i) {
    const BlockName name(std::string(ns), items[i].id);
    absl::Status s = CheckedKey(name).status();
    return s.ok() ? FlushIfDirty(name) : s;
  });
  const auto runs = Split(
      sent.size(), [&](size_t j) { return items[sent[j]].out.size(); },
      batches_->limits());
  for (const auto& [begin, end] : runs) {
    v1::GetBlocksRequest request;
    request.set_namespace_(ns.data(), ns.size());
    std::vector<absl::Span<std::byte>> outs;
    outs.reserve(end - begin);
    for (size_t j = begin; j < end; ++j) {
      request.add_ids(items[sent[j]].id);
      outs.push_back(items[sent[j]].out);
    }
    absl::StatusOr<v1::GetBlocksResponse> response =
        batches_->Get(std::move(request), outs);
    if (!response.ok()) {
      std::optional<absl::Status> stop =
          AfterFailedCall(response.status(), begin, end, sent, outcomes);
      if (stop) return *stop;
      continue;
    }
    for (size_t j = begin; j < end; ++j) {
      v1::GetResult* r = response->mutable_results(static_cast<int>(j - begin));
      GetOutcome& o = outcomes[sent[j]];
      o.status = StatusOf(r->status());
      if (!o.status.ok()) continue;
      o.size_bytes = r->size_bytes();
      o.dtype = r->dtype();
      o.shape.assign(r->shape().begin(), r->shape().end());
      o.region_type = r->region_type();
      o.labels.insert(r->labels().begin(), r->labels().end());
      o.hit = r->hit();
      o.version = r->version();
    }
  }
  return outcomes;
}

absl::StatusOr<UnregisterOutcome> Client::UnregisterBatch(
    absl::string_view ns, absl::Span<const std::string> ids) {
  if (absl::Status s = storage::ValidateNamespace(ns); !s.ok()) return s;
  UnregisterOutcome outcome;
  outcome.results.resize(ids.size());
  const std::vector<size_t> sent = Sendable(outcome.results, [&](size_t i) {
    return CheckAndDrop(*cache_, ns, ids[i]);
  });
  const uint32_t max_blocks = batches_->limits().max_blocks;
  for (size_t begin = 0; begin < sent.size(); begin += max_blocks) {
    const size_t end = std::min<size_t>(sent.size(), begin + max_blocks);
    v1::UnregisterBlocksRequest request;
    request.set_namespace_(ns.data(), ns.size());
    for (size_t j = begin; j < end; ++j) request.add_ids(ids[sent[j]]);
    v1::UnregisterBlocksResponse response;
    grpc::ClientContext ctx;
    internal::SetDeadline(ctx, options_.timeout);
    absl::Status s =
        FromGrpc(stub_->UnregisterBlocks(&ctx, request, &response));
    if (s.ok() && response.results_size() != static_cast<int>(end - begin)) {
      s = absl::InternalError("UnregisterBlocks answered for other blocks");
    }
    if (!s.ok()) return FailRest(s, begin == 0, sent, begin, outcome.results);
    for (size_t j = begin; j < end; ++j) {
      outcome.results[sent[j]] =
          StatusOf(response.results(static_cast<int>(j - begin)));
    }
    outcome.blocks_removed += response.blocks_removed();
    outcome.ram_bytes_freed += response.ram_bytes_freed();
    outcome.disk_bytes_freed += response.disk_bytes_freed();
  }
  return outcome;
}

absl::StatusOr<UnregisterOutcome> Client::UnregisterPrefix(
    absl::string_view ns, absl::string_view id_prefix) {
  if (absl::Status s = storage::ValidateNamespace(ns); !s.ok()) return s;
  if (id_prefix.empty()) {
    return absl::InvalidArgumentError(
        "the id prefix is empty; it would remove the whole namespace");
  }
  const absl::string_view resolved =
      ns.empty() ? absl::string_view(storage::kDefaultNamespace) : ns;
  if (absl::Status s = cache_->InvalidatePrefix(resolved, id_prefix); !s.ok()) {
    return s;
  }
  v1::UnregisterBlocksRequest request;
  request.set_namespace_(ns.data(), ns.size());
  request.set_id_prefix(id_prefix.data(), id_prefix.size());
  v1::UnregisterBlocksResponse response;
  grpc::ClientContext ctx;
  internal::SetDeadline(ctx, options_.timeout);
  if (absl::Status s =
          FromGrpc(stub_->UnregisterBlocks(&ctx, request, &response));
      !s.ok()) {
    return s;
  }
  UnregisterOutcome outcome;
  outcome.blocks_removed = response.blocks_removed();
  outcome.ram_bytes_freed = response.ram_bytes_freed();
  outcome.disk_bytes_freed = response.disk_bytes_freed();
  outcome.blocks_failed = response.blocks_failed();
  if (response.blocks_failed() > 0) {
    outcome.first_failure = StatusOf(response.first_failure());
  }
  return outcome;
}

BatchPath Client::batch_path() { return batches_->path(); }

}  // namespace tensorpager
