#include "server/batch_calls.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/proto_convert.h"
#include "server/proto_enums.h"

namespace tensorpager::server {
namespace {

// A block's message in a batch reply is cut here, so that a reply's size
// is bounded by its block count (the ring's reply area is sized by it).
constexpr size_t kMaxBlockMessageBytes = 1024;
// Blocks of an id-prefix unregister are collected a page at a time.
constexpr uint32_t kPrefixPage = 1000;

void SetStatus(const absl::Status& status, v1::BlockStatus* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  if (!status.ok()) {
    out->set_message(
        std::string(status.message().substr(0, kMaxBlockMessageBytes)));
  }
}

// Keys for a call's ids (BlockKeys, or views into the request):
// INVALID_ARGUMENT, naming the first bad id's position, fails the whole
// call (a bad id is the caller's bug, not a block's state).
template <typename Key>
absl::StatusOr<std::vector<Key>> KeysOf(
    const std::string& ns,
    const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::vector<Key> keys;
  keys.reserve(ids.size());
  for (int i = 0; i < ids.size(); ++i) {
    absl::StatusOr<Key> key = Key::Make(ns, ids[i]);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ids[", i, "]: ", key.status().message()));
    }
    keys.push_back(*std::move(key));
  }
  return keys;
}

// A block's shared-memory range, resolved before the batch changes
// anything.
using Resolved = absl::StatusOr<absl::Span<std::byte>>;

// Resolves the range `range_of` gives for each item (null: none). A
// segment that is not the caller's, or not attached (the server restarted
// since), fails the whole call with NOT_FOUND before anything changed: it
// is the caller's arena, not a block, that is wrong, and the SDK attaches
// it again. A range outside the segment fails only its block.
template <typename Items, typename RangeOf>
absl::StatusOr<std::vector<Resolved>> ResolveAll(const Items& items,
                                                 RangeOf range_of,
                                                 SharedRanges& ranges) {
  std::vector<Resolved> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    const v1::SharedRange* range = range_of(item);
    if (range == nullptr) {
      out.emplace_back(absl::Span<std::byte>());
      continue;
    }
    Resolved r = ranges.Resolve(*range);
    if (absl::IsNotFound(r.status())) return r.status();
    out.push_back(std::move(r));
  }
  return out;
}

// Lengths in a request are the client's numbers: a sum must not wrap
// below a limit.
uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a
             ? std::numeric_limits<uint64_t>::max()
             : a + b;
}

bool Present(const std::optional<storage::BlockStore::Presence>& p) {
  return p.has_value() && p->tier != storage::Tier::kEmpty &&
         p->tier != storage::Tier::kLost;
}

}  // namespace

absl::Status BatchCalls::CheckCount(int blocks, const char* call) const {
  if (static_cast<uint64_t>(blocks) > limits_.max_blocks) {
    return absl::InvalidArgumentError(
        absl::StrCat(call, " names ", blocks,
                     " blocks; one call may name at most ", limits_.max_blocks,
                     " (--max_batch_blocks); split the batch (the SDK does)"));
  }
  return absl::OkStatus();
}

absl::Status BatchCalls::CheckBytes(uint64_t bytes, const char* call) const {
  if (bytes > limits_.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        call, " moves ", bytes, " bytes of blocks; one call may move at most ",
        limits_.max_bytes,
        " (--max_batch_bytes); split the batch (the SDK does)"));
  }
  return absl::OkStatus();
}

absl::Status BatchCalls::Lookup(const v1::LookupRequest& request,
                                v1::LookupResponse* response) const {
  if (absl::Status s = storage::ValidateNamespace(request.namespace_());
      !s.ok())
    return s;
  if (absl::Status s = CheckCount(request.ids_size(), "Lookup"); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<storage::BlockKeyView>> keys =
      KeysOf<storage::BlockKeyView>(request.namespace_(), request.ids());
  if (!keys.ok()) return keys.status();
  const std::vector<std::optional<storage::BlockStore::Presence>> found =
      store_->Lookup(*keys);
  bool chain = true;
  uint32_t prefix = 0;
  response->mutable_entries()->Reserve(static_cast<int>(found.size()));
  for (const auto& p : found) {
    v1::LookupEntry* entry = response->add_entries();
    const bool present = Present(p);
    entry->set_present(present);
    if (p) {
      entry->set_tier(ToProto(p->tier));
      entry->set_size_bytes(p->size_bytes);
    }
    chain = chain && present;
    prefix += chain ? 1 : 0;
  }
  response->set_prefix_hits(prefix);
  return absl::OkStatus();
}

absl::Status BatchCalls::Put(const v1::PutBlocksRequest& request,
                             SharedRanges& ranges,
                             v1::PutBlocksResponse* response,
                             const std::vector<Pieces>* received,
                             const AdmitNew& admit_new) {
  if (absl::Status s = storage::ValidateNamespace(request.namespace_());
      !s.ok())
    return s;
  if (absl::Status s = CheckCount(request.blocks_size(), "PutBlocks");
      !s.ok()) {
    return s;
  }
  if (received != nullptr &&
      received->size() != static_cast<size_t>(request.blocks_size())) {
    return absl::InternalError("PutBlocks: received bytes for other blocks");
  }
  // Block i's bytes in the message, as pieces.
  auto message_bytes = [&](int i) -> Pieces {
    if (received != nullptr) return (*received)[i];
    const std::string& data = request.blocks(i).data();
    return {absl::MakeConstSpan(reinterpret_cast<const std::byte*>(data.data()),
                                data.size())};
  };
  uint64_t total = 0;
  uint64_t inline_bytes = 0;
  for (int i = 0; i < request.blocks_size(); ++i) {
    const v1::PutBlock& b = request.blocks(i);
    if (b.has_shared()) {
      total = SaturatingAdd(total, b.shared().length());
    } else {
      for (const auto& piece : message_bytes(i)) {
        total += piece.size();
        inline_bytes += piece.size();
      }
    }
  }
  if (absl::Status s = CheckBytes(total, "PutBlocks"); !s.ok()) return s;
  // The message's bytes are held until the call answers: they count
  // against the in-flight budget like a stream's staging.
  absl::StatusOr<InflightBudget::Hold> hold =
      inflight_->Take(inline_bytes, "PutBlocks");
  if (!hold.ok()) return hold.status();

  absl::StatusOr<std::vector<Resolved>> sources = ResolveAll(
      request.blocks(),
      [](const v1::PutBlock& b) -> const v1::SharedRange* {
        return b.has_shared() ? &b.shared() : nullptr;
      },
      ranges);
  if (!sources.ok()) return sources.status();

  std::optional<bool> durable;
  if (request.has_durable()) durable = request.durable();
  uint32_t failed = 0;
  response->mutable_results()->Reserve(request.blocks_size());
  for (int i = 0; i < request.blocks_size(); ++i) {
    const v1::PutBlock& b = request.blocks(i);
    v1::PutResult* result = response->add_results();
    absl::Status status = [&]() -> absl::Status {
      absl::StatusOr<storage::BlockKey> key =
          storage::BlockKey::Make(request.namespace_(), b.id());
      if (!key.ok()) return key.status();
      Pieces bytes;
      if (b.has_shared()) {
        const Resolved& range = (*sources)[i];
        if (!range.ok()) return range.status();
        bytes = {*range};
      } else if (b.source_case() == v1::PutBlock::kData) {
        bytes = message_bytes(i);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("put of ", key->ToString(),
                         " carries no bytes; set data or shared"));
      }
      return PutOne(*key, b, bytes, durable, admit_new, result);
    }();
    SetStatus(status, result->mutable_status());
    if (!status.ok()) ++failed;
  }
  response->set_failed(failed);
  return absl::OkStatus();
}

absl::Status BatchCalls::PutOne(
    const storage::BlockKey& key, const v1::PutBlock& block,
    absl::Span<const absl::Span<const std::byte>> bytes,
    std::optional<bool> durable, const AdmitNew& admit_new,
    v1::PutResult* result) {
  uint64_t carried = 0;
  for (const auto& piece : bytes) carried += piece.size();
  const uint64_t size = block.size_bytes() != 0 ? block.size_bytes() : carried;
  if (carried != size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "put of ", key.ToString(), " carries ", carried,
        " bytes but size_bytes is ", size, "; a put writes the whole block"));
  }
  if (size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "put of ", key.ToString(), " carries no bytes; blocks are not empty"));
  }
  absl::StatusOr<storage::BlockAttributes> attrs = AttributesFromRequest(block);
  if (!attrs.ok()) return attrs.status();
  attrs->size_bytes = size;
  bool created = false;
  absl::StatusOr<storage::BlockInfo> existing = store_->Get(key);
  if (absl::IsNotFound(existing.status())) {
    if (admit_new) {
      if (absl::Status s = admit_new(size); !s.ok()) return s;
    }
    absl::StatusOr<storage::BlockInfo> registered =
        store_->Register(key, *attrs);
    if (registered.ok()) {
      created = true;
    } else if (absl::IsAlreadyExists(registered.status())) {
      existing = store_->Get(key);  // another put made it meanwhile
    } else {
      return registered.status();
    }
  }
  if (!created) {
    if (!existing.ok()) return existing.status();
    const storage::BlockAttributes& had = existing->attrs;
    if (had.size_bytes != size || had.dtype != attrs->dtype ||
        had.shape != attrs->shape) {
      return absl::FailedPreconditionError(absl::StrCat(
          "block ", key.ToString(), " exists with ", had.size_bytes,
          " bytes, dtype ", v1::DType_Name(ToProto(had.dtype)), " and ",
          had.shape.size(),
          " dimensions; the put differs: unregister the "
          "block first to change its shape"));
    }
  }
  absl::StatusOr<storage::WriteResult> written =
      data_path_->Write(key, 0, durable, bytes, "PutBlocks");
  if (!written.ok()) {
    // A failed put changes nothing: the block it made goes again.
    if (created) (void)store_->Unregister(key);
    return written.status();
  }
  result->set_created(created);
  result->set_version(written->block.version);
  result->set_durable(written->durable);
  return absl::OkStatus();
}

absl::Status BatchCalls::Get(const v1::GetBlocksRequest& request,
                             SharedRanges& ranges,
                             v1::GetBlocksResponse* response,
                             InlineBytes* inline_bytes) {
  if (absl::Status s = storage::ValidateNamespace(request.namespace_());
      !s.ok())
    return s;
  if (absl::Status s = CheckCount(request.ids_size(), "GetBlocks"); !s.ok()) {
    return s;
  }
  const bool shared = request.destinations_size() > 0;
  if (shared && request.destinations_size() != request.ids_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GetBlocks names ", request.ids_size(), " ids but ",
        request.destinations_size(),
        " destinations; give one per id, or none to get the bytes in the "
        "reply"));
  }
  if (!shared && inline_bytes == nullptr && request.ids_size() > 0) {
    return absl::InvalidArgumentError(
        "a GetBlocks through the shared-memory ring names a destination per "
        "id; its reply area holds no block bytes");
  }
  absl::StatusOr<std::vector<storage::BlockKey>> keys =
      KeysOf<storage::BlockKey>(request.namespace_(), request.ids());
  if (!keys.ok()) return keys.status();
  std::vector<storage::BlockKeyView> views;
  views.reserve(keys->size());
  for (const storage::BlockKey& key : *keys) views.push_back(key.view());
  const std::vector<std::optional<storage::BlockStore::Presence>> found =
      store_->Lookup(views);
  uint64_t total = 0;
  for (const auto& p : found) total += p ? p->size_bytes : 0;
  if (absl::Status s = CheckBytes(total, "GetBlocks"); !s.ok()) return s;
  // Bytes sent back in the reply are held until they are sent.
  absl::StatusOr<InflightBudget::Hold> hold =
      inflight_->Take(shared ? 0 : total, "GetBlocks");
  if (!hold.ok()) return hold.status();

  absl::StatusOr<std::vector<Resolved>> destinations = ResolveAll(
      request.destinations(), [](const v1::SharedRange& r) { return &r; },
      ranges);
  if (!destinations.ok()) return destinations.status();
  if (!shared) {
    inline_bytes->blocks.assign(keys->size(), InlineBytes::Block{});
    inline_bytes->hold = *std::move(hold);
  }

  const std::vector<bool> swapped_in = SwapInTogether(*keys, found);
  uint32_t failed = 0;
  response->mutable_results()->Reserve(request.ids_size());
  for (size_t i = 0; i < keys->size(); ++i) {
    v1::GetResult* result = response->add_results();
    const storage::BlockKey& key = (*keys)[i];
    absl::Status status = [&]() -> absl::Status {
      absl::StatusOr<storage::ReadResult> read;
      if (shared) {
        const Resolved& range = (*destinations)[i];
        if (!range.ok()) return range.status();
        read = data_path_->ReadInto(key, 0, 0, *range, swapped_in[i]);
        if (!read.ok()) return read.status();
      } else {
        // The reply sends the block's bytes from the store's snapshot.
        storage::ReadOptions options;
        options.swapped_in_for_read = swapped_in[i];
        read = data_path_->Read(key, options);
        if (!read.ok()) return read.status();
        // Held against the budget by the lookup's sizes: a block that was
        // registered anew, larger, since then is asked for again.
        if (!found[i] || read->length > found[i]->size_bytes) {
          return absl::AbortedError(absl::StrCat(
              "block ", key.ToString(),
              " was registered anew during the call; ask for it again"));
        }
        inline_bytes->blocks[i] = {read->data, read->offset, read->length};
      }
      const storage::BlockAttributes& attrs = read->block.attrs;
      result->set_size_bytes(read->length);
      result->set_dtype(ToProto(attrs.dtype));
      for (int64_t d : attrs.shape) result->add_shape(d);
      result->set_region_type(ToProto(attrs.region_type));
      result->mutable_labels()->insert(attrs.labels.begin(),
                                       attrs.labels.end());
      result->set_hit(read->hit);
      result->set_version(read->block.version);
      return absl::OkStatus();
    }();
    SetStatus(status, result->mutable_status());
    if (!status.ok()) ++failed;
  }
  response->set_failed(failed);
  return absl::OkStatus();
}

std::vector<bool> BatchCalls::SwapInTogether(
    const std::vector<storage::BlockKey>& keys,
    const std::vector<std::optional<storage::BlockStore::Presence>>& found) {
  std::vector<bool> tried(keys.size(), false);
  std::vector<storage::BlockKey> on_disk;
  uint64_t bytes = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (found[i] && found[i]->tier == storage::Tier::kDisk) {
      on_disk.push_back(keys[i]);
      bytes += found[i]->size_bytes;
    }
  }
  // One block gains nothing. Nor do blocks that would not all stay in RAM
  // until they are read: each read swaps in its own block then.
  if (on_disk.size() < 2 || bytes > store_->ram_budget() / 4) return tried;
  // Read side by side (and small blocks in one batch of the I/O engine)
  // rather than one after another as the reads below would. A block that
  // fails here (DATA_LOSS, say) fails again, alone, in its own read.
  (void)store_->SwapIn(on_disk);
  for (size_t i = 0; i < keys.size(); ++i) {
    tried[i] = found[i] && found[i]->tier == storage::Tier::kDisk;
  }
  return tried;
}

absl::Status BatchCalls::Unregister(const v1::UnregisterBlocksRequest& request,
                                    v1::UnregisterBlocksResponse* response) {
  if (absl::Status s = storage::ValidateNamespace(request.namespace_());
      !s.ok())
    return s;
  auto count = [response](const storage::BlockStore::Freed& freed) {
    response->set_blocks_removed(response->blocks_removed() + 1);
    response->set_ram_bytes_freed(response->ram_bytes_freed() +
                                  freed.ram_bytes);
    response->set_disk_bytes_freed(response->disk_bytes_freed() +
                                   freed.disk_bytes);
  };
  if (request.ids_size() > 0) {
    if (!request.id_prefix().empty()) {
      return absl::InvalidArgumentError(
          "UnregisterBlocks takes ids or an id_prefix, not both");
    }
    if (absl::Status s = CheckCount(request.ids_size(), "UnregisterBlocks");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<std::vector<storage::BlockKey>> keys =
        KeysOf<storage::BlockKey>(request.namespace_(), request.ids());
    if (!keys.ok()) return keys.status();
    for (const absl::StatusOr<storage::BlockStore::Freed>& freed :
         store_->UnregisterMany(*keys)) {
      SetStatus(freed.status(), response->add_results());
      if (freed.ok()) count(*freed);
    }
    return absl::OkStatus();
  }
  if (request.id_prefix().empty()) {
    return absl::InvalidArgumentError(
        "UnregisterBlocks needs ids or a non-empty id_prefix (an empty "
        "prefix would remove the whole namespace)");
  }
  storage::ListFilter filter;
  filter.ns = request.namespace_();
  filter.id_prefix = request.id_prefix();
  std::string token;
  do {
    absl::StatusOr<storage::ListPage> page =
        store_->List(filter, kPrefixPage, token);
    if (!page.ok()) return page.status();
    std::vector<storage::BlockKey> keys;
    for (const storage::BlockInfo& block : page->blocks) {
      absl::StatusOr<storage::BlockKey> key =
          storage::BlockKey::Make(block.ns, block.id);
      if (!key.ok()) return key.status();
      keys.push_back(*std::move(key));
    }
    // A page at a time: one metadata commit per page.
    for (const absl::StatusOr<storage::BlockStore::Freed>& freed :
         store_->UnregisterMany(keys)) {
      if (freed.ok()) {
        count(*freed);
      } else if (!absl::IsNotFound(freed.status())) {
        // Gone meanwhile is fine; anything else stays registered.
        if (response->blocks_failed() == 0) {
          SetStatus(freed.status(), response->mutable_first_failure());
        }
        response->set_blocks_failed(response->blocks_failed() + 1);
      }
    }
    token = page->next_page_token;
  } while (!token.empty());
  return absl::OkStatus();
}

}  // namespace tensorpager::server
