// SoakClient: reads (every path, each checked byte for byte against what
// was written), swaps, pins, GetBlock and unregistering of a slot.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "tests/bench/soak_client.h"

namespace tensorpager::soak {

using grpc::StatusCode;

void SoakClient::Verify(CallRecorder& call, const Slot& s, uint64_t offset,
                        const char* data, uint64_t length) {
  shared_->stats.verified_reads.fetch_add(1);
  if (length == 0 || offset + length > s.data.size()) {
    call.Wrong(absl::StrCat("read of ", s.id, " at ", offset, " returned ",
                            length, " bytes; the block has ", s.data.size()));
    return;
  }
  const char* want = s.data.data() + offset;
  if (std::memcmp(want, data, length) == 0) return;
  uint64_t i = 0;
  while (want[i] == data[i]) ++i;
  call.Wrong(absl::StrCat("bytes of ", s.id, " differ from the last write at ",
                          offset + i, " (read [", offset, ", +", length,
                          ") of ", s.size, ")"));
}

void SoakClient::ReadSlot(Slot& s) {
  uint64_t offset = 0;
  uint64_t length = 0;  // to the end
  if (Chance(50)) {
    offset = Random(s.size);
    length = 1 + Random(s.size - offset);
  }
  const uint64_t want = length == 0 ? s.size - offset : length;
  const bool segment_ok =
      segment_.attached && segment_.life == shared_->life.lifetime();
  const uint64_t path = Random(100);
  Rpc rpc = path < 40   ? Rpc::kAccess
            : path < 60 ? Rpc::kSdkRead
            : path < 75 ? Rpc::kSdkAccess
            : path < 92 ? Rpc::kAccessShared
                        : Rpc::kAccessTouch;
  if (rpc == Rpc::kAccessShared && !segment_ok) rpc = Rpc::kAccess;
  CallRecorder call = Begin(rpc);
  const std::string what =
      absl::StrCat("read ", s.id, " [", offset, ", +", length, ") of ", s.size);
  // Around a restart the block may be lost, the segment forgotten.
  const std::initializer_list<StatusCode> restarted = {StatusCode::DATA_LOSS,
                                                       StatusCode::NOT_FOUND};
  switch (rpc) {
    case Rpc::kAccess:
    case Rpc::kAccessTouch: {
      v1::AccessRequest req;
      req.set_id(s.id);
      req.set_offset(offset);
      req.set_length(length);
      req.set_touch_only(rpc == Rpc::kAccessTouch);
      static constexpr uint32_t kChunks[] = {0, 65536, 262144, 1 << 20};
      req.set_chunk_bytes(kChunks[Random(4)]);
      auto ctx = Context();
      auto reader = stub_->Access(ctx.get(), req);
      v1::AccessResponse msg;
      std::string got;
      bool first = true;
      bool in_order = true;
      v1::BlockInfo info;
      while (reader->Read(&msg)) {
        if (first) info = msg.block();
        first = false;
        if (msg.offset() != offset + got.size()) in_order = false;
        got += msg.data();
      }
      const grpc::Status st = reader->Finish();
      if (!call.Valid(st, what, restarted, got.size())) return;
      if (first || info.size_bytes() != s.size || !in_order) {
        call.Wrong(absl::StrCat(what, ": ", first ? "no message" : "", " size ",
                                info.size_bytes(),
                                in_order ? "" : ", chunks out of order"));
        return;
      }
      if (rpc == Rpc::kAccess) {
        Verify(call, s, offset, got.data(), got.size());
        if (got.size() != want) call.Wrong(what + ": short");
      } else if (!got.empty()) {
        call.Wrong(what + ": touch_only returned data");
      }
      return;
    }
    case Rpc::kSdkRead: {
      absl::StatusOr<ReadResult> r = sdk_->Read(s.id, offset, length);
      if (!call.Valid(FromAbsl(r.status()), what, restarted,
                      r.ok() ? r->data.size() : 0)) {
        return;
      }
      if (r->data.size() != want) call.Wrong(what + ": wrong length");
      Verify(call, s, offset, r->data.data(), r->data.size());
      return;
    }
    case Rpc::kSdkAccess: {
      absl::Status evicted;
      {
        absl::StatusOr<BlockHandle> h = sdk_->Access(s.id);
        if (!call.Valid(FromAbsl(h.status()), what, restarted,
                        h.ok() ? h->size() : 0)) {
          return;
        }
        if (h->size() != s.size) call.Wrong(what + ": wrong handle size");
        Verify(call, s, 0, h->data_as<const char>(), h->size());
      }
      // The local copy goes again: raw writes by this client bypass the
      // SDK's cache.
      evicted = sdk_->Evict(s.id);
      if (!evicted.ok()) {
        CallRecorder evict = Begin(Rpc::kSdkAccess);
        evict.Valid(FromAbsl(evicted), "evict " + s.id);
      }
      return;
    }
    case Rpc::kAccessShared: {
      v1::AccessSharedRequest req;
      req.set_id(s.id);
      req.set_offset(offset);
      req.set_length(length);
      v1::SharedRange* dst = req.mutable_destination();
      dst->set_segment_id(segment_.id);
      dst->set_capability(segment_.capability);
      dst->set_offset(kSegmentHeader);
      dst->set_length(segment_.size - kSegmentHeader);
      v1::AccessSharedResponse resp;
      const grpc::Status st = stub_->AccessShared(Context().get(), req, &resp);
      if (!call.Valid(st, what, restarted, resp.length())) return;
      if (resp.length() != want || resp.block().size_bytes() != s.size) {
        call.Wrong(absl::StrCat(what, ": AccessShared answered length ",
                                resp.length()));
        return;
      }
      Verify(call, s, offset, segment_.base + kSegmentHeader, resp.length());
      return;
    }
    default:
      return;
  }
}

void SoakClient::GetSlot(Slot& s) {
  CallRecorder call = Begin(Rpc::kGetBlock);
  v1::GetBlockRequest req;
  req.set_id(s.id);
  v1::GetBlockResponse resp;
  const grpc::Status st = stub_->GetBlock(Context().get(), req, &resp);
  if (!call.Valid(st, "get " + s.id) || call.overlapped()) return;
  const v1::BlockInfo& b = resp.block();
  if (b.size_bytes() != s.size || b.pinned() != s.pinned ||
      b.tier() == v1::TIER_LOST || b.tier() == v1::TIER_EMPTY ||
      b.id() != s.id) {
    call.Wrong(absl::StrCat("get ", s.id, ": size ", b.size_bytes(), "/",
                            s.size, " pinned ", b.pinned(), "/", s.pinned,
                            " tier ", v1::Tier_Name(b.tier())));
  }
}

void SoakClient::SwapSlots(Slot& s, bool out) {
  if (out && s.pinned) {
    // A pinned block never leaves RAM.
    CallRecorder call = Begin(Rpc::kBadSwapPinned);
    v1::SwapRequest req;
    req.set_direction(v1::SWAP_OUT);
    req.add_ids(s.id);
    v1::SwapResponse resp;
    call.Bad(stub_->Swap(Context().get(), req, &resp),
             StatusCode::FAILED_PRECONDITION, "swap out pinned " + s.id);
    return;
  }
  v1::SwapRequest req;
  req.set_direction(out ? v1::SWAP_OUT : v1::SWAP_IN);
  req.add_ids(s.id);
  for (int i = 0, extra = static_cast<int>(Random(3)); i < extra; ++i) {
    Slot* o = PickUsable(/*written_only=*/true, /*unpinned_only=*/out);
    if (o != nullptr && o != &s) req.add_ids(o->id);
  }
  CallRecorder call = Begin(out ? Rpc::kSwapOut : Rpc::kSwapIn);
  v1::SwapResponse resp;
  const grpc::Status st = stub_->Swap(Context().get(), req, &resp);
  // Around a restart a block may have come back lost.
  call.Valid(
      st,
      absl::StrCat("swap ", out ? "out " : "in ", req.ids_size(), " blocks"),
      {StatusCode::FAILED_PRECONDITION}, resp.bytes_moved());
}

void SoakClient::PinToggle(Slot& s) {
  Slot* target = &s;
  for (Slot& o : slots_) {
    if (o.pinned && Usable(o)) target = &o;  // at most one pinned at a time
  }
  const bool pin = !target->pinned;
  CallRecorder call = Begin(pin ? Rpc::kPin : Rpc::kUnpin);
  // "swapped out while being pinned; retry": the policy took it meanwhile.
  if (pin) call.AlsoTransient(StatusCode::UNAVAILABLE);
  v1::PinRequest req;
  req.set_id(target->id);
  v1::PinResponse resp;
  const grpc::Status st = pin ? stub_->Pin(Context().get(), req, &resp)
                              : stub_->Unpin(Context().get(), req, &resp);
  if (!call.Valid(st, absl::StrCat(pin ? "pin " : "unpin ", target->id),
                  {StatusCode::FAILED_PRECONDITION})) {
    // Refused (RESOURCE_EXHAUSTED, or the retry answer above): nothing
    // changed. Anything else may have changed the pin.
    const bool refused =
        st.error_code() == StatusCode::RESOURCE_EXHAUSTED ||
        (st.error_code() == StatusCode::UNAVAILABLE && !call.overlapped());
    if (!refused) MarkUncertain(*target);
    return;
  }
  if (resp.block().pinned() != pin) {
    call.Wrong(
        absl::StrCat(target->id, " answered pinned=", resp.block().pinned()));
  }
  target->pinned = pin;
  if (pin && Chance(30)) SwapSlots(*target, /*out=*/true);
}

void SoakClient::UnregisterSlot(Slot& s) {
  const bool via_sdk = Chance(50);
  CallRecorder call =
      Begin(via_sdk ? Rpc::kSdkUnregister : Rpc::kUnregisterBlock);
  grpc::Status st;
  if (via_sdk) {
    st = FromAbsl(sdk_->Unregister(s.id).status());
  } else {
    v1::UnregisterBlockRequest req;
    req.set_id(s.id);
    v1::UnregisterBlockResponse resp;
    st = stub_->UnregisterBlock(Context().get(), req, &resp);
  }
  if (!call.Valid(st, "unregister " + s.id)) {
    if (st.error_code() != StatusCode::RESOURCE_EXHAUSTED) {
      MarkUncertain(s);
    }
    return;
  }
  s = FreshSlot(s.id);
}

}  // namespace tensorpager::soak
