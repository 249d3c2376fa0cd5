// SoakClient: calls that touch no slot's bytes (listing, status, access
// reports, pressure watches, shared-memory segments) and bad inputs, each
// of which must fail with its precise code.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/bench/soak_client.h"

namespace tensorpager::soak {

using grpc::StatusCode;

void SoakClient::ListOp() {
  if (Chance(20)) {
    // Everyone's blocks, first page only.
    CallRecorder call = Begin(Rpc::kListBlocks);
    v1::ListBlocksRequest req;
    req.set_all_namespaces(true);
    req.set_page_size(100);
    v1::ListBlocksResponse resp;
    call.Valid(stub_->ListBlocks(Context().get(), req, &resp), "list all");
    return;
  }
  // This client's blocks, page by page: exactly the registered slots.
  const uint64_t start_epoch = shared_->life.epoch();
  const uint32_t page = 1 + static_cast<uint32_t>(Random(40));
  std::map<std::string, uint64_t> listed;
  std::string token;
  std::optional<CallRecorder> last;
  for (int pages = 0; pages < 1000; ++pages) {
    last.emplace(Begin(Rpc::kListBlocks));
    v1::ListBlocksRequest req;
    req.set_id_prefix(prefix_);
    req.set_page_size(page);
    req.set_page_token(token);
    v1::ListBlocksResponse resp;
    if (!last->Valid(stub_->ListBlocks(Context().get(), req, &resp),
                     absl::StrCat("list ", prefix_, " page ", pages))) {
      return;
    }
    if (resp.blocks_size() > static_cast<int>(page)) {
      last->Wrong(absl::StrCat("a page of ", resp.blocks_size(),
                               " blocks for page_size ", page));
    }
    for (const v1::BlockInfo& b : resp.blocks()) {
      if (!listed.emplace(b.id(), b.size_bytes()).second) {
        last->Wrong(absl::StrCat(b.id(), " listed twice"));
      }
    }
    token = resp.next_page_token();
    if (token.empty()) break;
  }
  if (shared_->life.Overlapped(start_epoch)) return;
  std::map<std::string, uint64_t> expected;
  for (const Slot& s : slots_) {
    if (s.state == State::kUncertain) return;
    if (s.state != State::kAbsent) expected.emplace(s.id, s.size);
  }
  if (listed != expected) {
    std::string diff;
    for (const auto& [id, size] : expected) {
      auto it = listed.find(id);
      if (it == listed.end()) {
        absl::StrAppend(&diff, " missing ", id, ";");
      } else if (it->second != size) {
        absl::StrAppend(&diff, " ", id, " size ", it->second, "/", size, ";");
      }
    }
    for (const auto& [id, size] : listed) {
      if (!expected.contains(id)) absl::StrAppend(&diff, " extra ", id, ";");
    }
    last->Wrong(absl::StrCat("listing of ", prefix_, " differs:", diff));
  }
}

void SoakClient::StatusOp() {
  CallRecorder call = Begin(Rpc::kStatus);
  v1::StatusRequest req;
  v1::StatusResponse resp;
  if (!call.Valid(stub_->Status(Context().get(), req, &resp), "status")) {
    return;
  }
  if (resp.ram().capacity_bytes() == 0 ||
      resp.ram().used_bytes() > resp.ram().capacity_bytes()) {
    call.Wrong(absl::StrCat("RAM tier uses ", resp.ram().used_bytes(),
                            " bytes of a budget of ",
                            resp.ram().capacity_bytes()));
  }
}

void SoakClient::ReportAccessesOp() {
  v1::ReportAccessesRequest req;
  req.set_client_id("soak-" + prefix_);
  const int n = 1 + static_cast<int>(Random(8));
  for (int i = 0; i < n; ++i) {
    v1::AccessReport* a = req.add_accesses();
    a->set_id(slots_[Random(slots_.size())].id);
    a->set_count(1 + static_cast<uint32_t>(Random(5)));
  }
  v1::AccessReport* ghost = req.add_accesses();  // never registered
  ghost->set_id(prefix_ + "ghost");
  ghost->set_count(1);
  CallRecorder call = Begin(Rpc::kReportAccesses);
  v1::ReportAccessesResponse resp;
  if (!call.Valid(stub_->ReportAccesses(Context().get(), req, &resp),
                  "report accesses")) {
    return;
  }
  if (resp.accepted() + resp.unknown() !=
          static_cast<uint32_t>(req.accesses_size()) ||
      resp.unknown() < 1) {
    call.Wrong(absl::StrCat("ReportAccesses of ", req.accesses_size(),
                            " answered accepted=", resp.accepted(),
                            " unknown=", resp.unknown()));
  }
}

void SoakClient::WatchPressureOp() {
  CallRecorder call = Begin(Rpc::kWatchPressure);
  auto ctx = Context();
  v1::WatchPressureRequest req;
  req.set_send_current(true);
  auto reader = stub_->WatchPressure(ctx.get(), req);
  v1::PressureEvent event;
  if (!reader->Read(&event)) {
    grpc::Status st = reader->Finish();
    if (st.ok()) {
      // Ended without the current state: only a server shutting down may.
      st = grpc::Status(StatusCode::UNAVAILABLE,
                        "the stream ended before its first event");
    }
    call.Valid(st, "watch pressure");
    return;
  }
  // Briefly open, then the client goes away.
  std::this_thread::sleep_for(std::chrono::milliseconds(Random(200)));
  ctx->TryCancel();
  while (reader->Read(&event)) {
  }
  grpc::Status st = reader->Finish();
  if (st.error_code() == StatusCode::CANCELLED) st = grpc::Status::OK;
  if (call.Valid(st, "watch pressure") && event.resource().empty()) {
    call.Wrong("a pressure event without a resource");
  }
}

bool SoakClient::CreateSegment() {
  segment_.size = kSegmentHeader + shared_->max_block_bytes;
  segment_.fd = ::memfd_create("soak", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (segment_.fd < 0 || ::ftruncate(segment_.fd, segment_.size) != 0) {
    return false;
  }
  void* p = ::mmap(nullptr, segment_.size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   segment_.fd, 0);
  if (p == MAP_FAILED) return false;
  segment_.base = static_cast<char*>(p);
  segment_.token = absl::StrCat("soak-token-", prefix_, rng_());
  std::memcpy(segment_.base, segment_.token.data(), segment_.token.size());
  shared_memory::FormatRing(segment_.base);
  if (::fcntl(segment_.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    return false;
  }
  unsealed_fd_ = ::memfd_create("soak-unsealed", MFD_CLOEXEC);
  if (unsealed_fd_ < 0 || ::ftruncate(unsealed_fd_, 65536) != 0 ||
      ::pwrite(unsealed_fd_, segment_.token.data(), segment_.token.size(), 0) !=
          static_cast<ssize_t>(segment_.token.size())) {
    return false;
  }
  return true;
}

void SoakClient::DetachSegment() {
  CallRecorder call = Begin(Rpc::kDetachSharedMemory);
  v1::DetachSharedMemoryRequest req;
  req.set_segment_id(segment_.id);
  req.set_capability(segment_.capability);
  v1::DetachSharedMemoryResponse resp;
  grpc::Status st = stub_->DetachSharedMemory(Context().get(), req, &resp);
  // A detach that met a restart may have been done, or forgotten.
  if (call.Valid(st, absl::StrCat("detach segment ", segment_.id),
                 {StatusCode::NOT_FOUND}) ||
      call.overlapped()) {
    segment_.attached = false;
  }
}

void SoakClient::SegmentOp() {
  if (!shared_->shared_memory) return;
  if (segment_.fd < 0 && !CreateSegment()) {
    CallRecorder call = Begin(Rpc::kAttachSharedMemory);
    call.Wrong(
        absl::StrCat("cannot create a sealed memfd: ", std::strerror(errno)));
    shared_->shared_memory = false;
    return;
  }
  // While a restart is under way the old server may still answer.
  const uint64_t epoch = shared_->life.epoch();
  if ((epoch & 1) != 0) return;
  const uint64_t life = ServerLife::LifetimeOf(epoch);
  if (segment_.attached && segment_.life != life) {
    if (segment_.life == 0) {
      // Attached around a restart, by either server: detached now, or
      // unknown to this one.
      CallRecorder call = Begin(Rpc::kDetachSharedMemory);
      v1::DetachSharedMemoryRequest req;
      req.set_segment_id(segment_.id);
      req.set_capability(segment_.capability);
      v1::DetachSharedMemoryResponse resp;
      grpc::Status st = stub_->DetachSharedMemory(Context().get(), req, &resp);
      if (st.error_code() == StatusCode::NOT_FOUND) st = grpc::Status::OK;
      call.Valid(st, absl::StrCat("detach segment ", segment_.id,
                                  " attached around a restart"));
      segment_.attached = false;
      return;
    }
    // The restarted server never saw this segment: its id and capability
    // must name nothing there (whoever got the same id since).
    CallRecorder call = Begin(Rpc::kBadSegment);
    v1::DetachSharedMemoryRequest req;
    req.set_segment_id(segment_.id);
    req.set_capability(segment_.capability);
    v1::DetachSharedMemoryResponse resp;
    call.Bad(
        stub_->DetachSharedMemory(Context().get(), req, &resp),
        StatusCode::NOT_FOUND,
        absl::StrCat("detach segment ", segment_.id, " of an earlier server"));
    segment_.attached = false;
    return;
  }
  if (segment_.attached) {
    if (Chance(40)) DetachSegment();
    return;
  }
  CallRecorder call = Begin(Rpc::kAttachSharedMemory);
  v1::AttachSharedMemoryRequest req;
  req.set_pid(::getpid());
  req.set_fd(segment_.fd);
  req.set_size_bytes(segment_.size);
  req.set_token(segment_.token);
  req.set_ring(Chance(25));
  v1::AttachSharedMemoryResponse resp;
  if (!call.Valid(stub_->AttachSharedMemory(Context().get(), req, &resp),
                  "attach segment")) {
    return;
  }
  if (resp.capability().size() < 16) {
    call.Wrong(
        absl::StrCat("a capability of ", resp.capability().size(), " bytes"));
  }
  segment_.attached = true;
  segment_.id = resp.segment_id();
  segment_.capability = resp.capability();
  segment_.life =
      call.overlapped() ? 0 : ServerLife::LifetimeOf(call.start_epoch());
}

void SoakClient::BadInput() {
  switch (Random(11)) {
    case 0: {
      static const std::string kIds[] = {"", std::string(257, 'x'), "tab\tid",
                                         std::string("nul\0id", 6)};
      CallRecorder call = Begin(Rpc::kBadId);
      v1::RegisterBlockRequest req;
      req.set_id(kIds[Random(4)]);
      req.set_size_bytes(4096);
      v1::RegisterBlockResponse resp;
      call.Bad(stub_->RegisterBlock(Context().get(), req, &resp),
               StatusCode::INVALID_ARGUMENT, "register an invalid id");
      return;
    }
    case 1: {
      Slot* s = PickUsable(/*written_only=*/false, /*unpinned_only=*/false);
      if (s == nullptr) return;
      CallRecorder call = Begin(Rpc::kBadDuplicate);
      v1::RegisterBlockRequest req;
      req.set_id(s->id);
      req.set_size_bytes(s->size);
      v1::RegisterBlockResponse resp;
      call.Bad(stub_->RegisterBlock(Context().get(), req, &resp),
               StatusCode::ALREADY_EXISTS, "register " + s->id + " again");
      return;
    }
    case 2: {
      CallRecorder call = Begin(Rpc::kBadZeroSize);
      v1::RegisterBlockRequest req;
      req.set_id(prefix_ + "zero");
      v1::RegisterBlockResponse resp;
      call.Bad(stub_->RegisterBlock(Context().get(), req, &resp),
               StatusCode::INVALID_ARGUMENT, "register 0 bytes");
      return;
    }
    case 3:
    case 4: {
      Slot* s = PickUsable(/*written_only=*/true, /*unpinned_only=*/false);
      if (s != nullptr) BadWrite(*s);
      return;
    }
    case 5: {
      Slot* s = PickUsable(/*written_only=*/true, /*unpinned_only=*/false);
      if (s != nullptr) BadRead(*s);
      return;
    }
    case 6:
      return BadUnknown();
    case 7: {
      CallRecorder call = Begin(Rpc::kBadSwapRequest);
      v1::SwapRequest req;
      const uint64_t kind = Random(3);
      if (kind != 1) req.add_ids(prefix_ + "0");
      if (kind != 0) req.set_direction(v1::SWAP_OUT);
      if (kind == 2) req.set_target_bytes(4096);
      v1::SwapResponse resp;
      call.Bad(stub_->Swap(Context().get(), req, &resp),
               StatusCode::INVALID_ARGUMENT,
               absl::StrCat("malformed swap ", kind));
      return;
    }
    case 8: {
      CallRecorder call = Begin(Rpc::kBadListToken);
      v1::ListBlocksRequest req;
      req.set_page_token("%%%not-a-token");
      v1::ListBlocksResponse resp;
      call.Bad(stub_->ListBlocks(Context().get(), req, &resp),
               StatusCode::INVALID_ARGUMENT, "list with a bad page token");
      return;
    }
    case 9:
      return BadShared(
          PickUsable(/*written_only=*/true, /*unpinned_only=*/false));
    default:
      return BadAttach();
  }
}

void SoakClient::BadWrite(Slot& s) {
  const uint64_t kind = Random(5);
  const bool oversize = kind == 0;
  CallRecorder call =
      Begin(oversize ? Rpc::kBadOversizeChunk : Rpc::kBadWriteRange);
  std::vector<v1::WriteBlockRequest> msgs(1);
  msgs[0].set_id(s.id);
  std::string what;
  switch (kind) {
    case 0:  // one message above the 1 MiB chunk limit
      msgs[0].set_data(std::string((1 << 20) + 1, 'o'));
      what = "a chunk of 1 MiB + 1";
      break;
    case 1:  // offset at the end
      msgs[0].set_offset(s.size);
      msgs[0].set_data("x");
      what = "offset at the block's end";
      break;
    case 2:  // declares more than fits
      msgs[0].set_offset(s.size / 2);
      msgs[0].set_total_bytes(s.size - s.size / 2 + 1);
      msgs[0].set_data("x");
      what = "total_bytes past the end";
      break;
    case 3:  // sends more than the block holds
      msgs[0].set_data(std::string(s.size, 'y'));  // at most 1 MiB
      msgs.emplace_back().set_data("z");
      what = "more bytes than the block holds";
      break;
    default:  // declares more than it sends
      msgs[0].set_total_bytes(s.size);
      msgs[0].set_data(std::string(s.size / 2, 'w'));
      what = "fewer bytes than total_bytes";
      break;
  }
  auto ctx = Context();
  v1::WriteBlockResponse resp;
  auto writer = stub_->WriteBlock(ctx.get(), &resp);
  for (const v1::WriteBlockRequest& m : msgs) {
    if (!writer->Write(m)) break;
  }
  writer->WritesDone();
  call.Bad(writer->Finish(), StatusCode::INVALID_ARGUMENT,
           absl::StrCat("write ", s.id, " of ", s.size, " with ", what));
  // The block's bytes stay as they were: the next read checks them.
}

void SoakClient::BadRead(Slot& s) {
  const uint64_t kind = Random(4);
  CallRecorder call =
      Begin(kind == 3 ? Rpc::kBadChunkBytes : Rpc::kBadReadRange);
  if (kind == 2) {
    absl::StatusOr<ReadResult> r = sdk_->Read(s.id, s.size + 1, 0);
    call.Bad(FromAbsl(r.status()), StatusCode::OUT_OF_RANGE,
             absl::StrCat("sdk read ", s.id, " at ", s.size + 1));
    return;
  }
  v1::AccessRequest req;
  req.set_id(s.id);
  if (kind == 0) {
    req.set_offset(s.size + 1 + Random(4096));
  } else if (kind == 1) {
    req.set_offset(Random(s.size));
    req.set_length(s.size - req.offset() + 1 + Random(4096));
  } else {
    req.set_chunk_bytes(4u << 20);  // above the 3 MiB limit
  }
  auto ctx = Context();
  auto reader = stub_->Access(ctx.get(), req);
  v1::AccessResponse msg;
  while (reader->Read(&msg)) {
  }
  call.Bad(reader->Finish(),
           kind == 3 ? StatusCode::INVALID_ARGUMENT : StatusCode::OUT_OF_RANGE,
           absl::StrCat("access ", s.id, " of ", s.size, " at ", req.offset(),
                        " +", req.length(), " chunk ", req.chunk_bytes()));
}

void SoakClient::BadUnknown() {
  const std::string ghost = absl::StrCat(prefix_, "ghost-", Random(1000));
  CallRecorder call = Begin(Rpc::kBadUnknownBlock);
  grpc::Status st;
  const uint64_t kind = Random(9);
  switch (kind) {
    case 0: {
      v1::GetBlockRequest req;
      req.set_id(ghost);
      v1::GetBlockResponse resp;
      st = stub_->GetBlock(Context().get(), req, &resp);
      break;
    }
    case 1:
    case 2: {
      v1::PinRequest req;
      req.set_id(ghost);
      v1::PinResponse resp;
      st = kind == 1 ? stub_->Pin(Context().get(), req, &resp)
                     : stub_->Unpin(Context().get(), req, &resp);
      break;
    }
    case 3: {
      v1::UnregisterBlockRequest req;
      req.set_id(ghost);
      v1::UnregisterBlockResponse resp;
      st = stub_->UnregisterBlock(Context().get(), req, &resp);
      break;
    }
    case 4: {
      v1::AccessRequest req;
      req.set_id(ghost);
      auto ctx = Context();
      auto reader = stub_->Access(ctx.get(), req);
      v1::AccessResponse msg;
      while (reader->Read(&msg)) {
      }
      st = reader->Finish();
      break;
    }
    case 5: {
      // One unknown id fails the whole swap before anything moves.
      v1::SwapRequest req;
      req.set_direction(Chance(50) ? v1::SWAP_OUT : v1::SWAP_IN);
      if (Slot* s = PickUsable(true, true)) req.add_ids(s->id);
      req.add_ids(ghost);
      v1::SwapResponse resp;
      st = stub_->Swap(Context().get(), req, &resp);
      break;
    }
    case 6: {
      auto ctx = Context();
      v1::WriteBlockResponse resp;
      auto writer = stub_->WriteBlock(ctx.get(), &resp);
      v1::WriteBlockRequest m;
      m.set_id(ghost);
      m.set_data(std::string(4096, 'g'));
      writer->Write(m);
      writer->WritesDone();
      st = writer->Finish();
      break;
    }
    case 7:
      st = FromAbsl(sdk_->Read(ghost).status());
      break;
    default:
      st = FromAbsl(sdk_->Get(ghost).status());
      break;
  }
  call.Bad(st, StatusCode::NOT_FOUND,
           absl::StrCat("call ", kind, " on ", ghost));
}

void SoakClient::BadShared(Slot* s) {
  const bool usable = segment_.attached &&
                      segment_.life == shared_->life.lifetime() && s != nullptr;
  const uint64_t kind = Random(usable ? 5 : 2);
  CallRecorder call = Begin(kind < 2 ? Rpc::kBadSegment : Rpc::kBadSharedRange);
  v1::SharedRange range;
  range.set_segment_id(segment_.id);
  range.set_capability(segment_.capability);
  range.set_offset(kSegmentHeader);
  range.set_length(4096);
  StatusCode want = StatusCode::INVALID_ARGUMENT;
  if (kind == 0) {  // a capability that is not this segment's
    std::string cap = segment_.capability.empty() ? std::string(16, 'c')
                                                  : segment_.capability;
    cap[Random(cap.size())] ^= 0x20;
    range.set_capability(cap);
    want = StatusCode::NOT_FOUND;
  } else if (kind == 1) {  // a segment nobody attached
    range.set_segment_id((1ull << 40) + Random(1000));
    want = StatusCode::NOT_FOUND;
  } else if (kind == 2) {  // past the segment's end
    range.set_offset(segment_.size - 100);
  }
  const std::string id = s != nullptr ? s->id : prefix_ + "ghost";
  grpc::Status st;
  if (kind == 3) {
    // A write that does not fit the block (checked before any copy).
    v1::WriteBlockSharedRequest req;
    req.set_id(id);
    req.set_offset(s->size - 1);
    range.set_length(2);
    *req.mutable_source() = range;
    v1::WriteBlockResponse resp;
    st = stub_->WriteBlockShared(Context().get(), req, &resp);
  } else if (kind == 1 && Chance(50)) {
    v1::DetachSharedMemoryRequest req;
    req.set_segment_id(range.segment_id());
    req.set_capability(range.capability());
    v1::DetachSharedMemoryResponse resp;
    st = stub_->DetachSharedMemory(Context().get(), req, &resp);
  } else {
    // kind 4: a destination smaller than the block's bytes.
    if (kind == 4) range.set_length(s->size - 1);
    if (kind == 4 && s->size < 2) return;
    v1::AccessSharedRequest req;
    req.set_id(id);
    *req.mutable_destination() = range;
    v1::AccessSharedResponse resp;
    st = stub_->AccessShared(Context().get(), req, &resp);
  }
  call.Bad(st, want, absl::StrCat("shared-memory call ", kind, " on ", id));
}

void SoakClient::BadAttach() {
  if (!shared_->shared_memory) return;
  if (segment_.fd < 0 && !CreateSegment()) return;
  CallRecorder call = Begin(Rpc::kBadAttach);
  v1::AttachSharedMemoryRequest req;
  req.set_pid(::getpid());
  req.set_fd(segment_.fd);
  req.set_size_bytes(segment_.size);
  req.set_token(segment_.token);
  StatusCode want = StatusCode::INVALID_ARGUMENT;
  const uint64_t kind = Random(5);
  switch (kind) {
    case 0: {  // not the segment's first bytes
      std::string token = segment_.token;
      token[0] ^= 1;
      req.set_token(token);
      want = StatusCode::PERMISSION_DENIED;
      break;
    }
    case 1:  // not the segment's size
      req.set_size_bytes(segment_.size + 4096);
      break;
    case 2:  // a memfd without seals
      req.set_fd(unsealed_fd_);
      req.set_size_bytes(65536);
      want = StatusCode::FAILED_PRECONDITION;
      break;
    case 3:  // a token too short to prove anything
      req.set_token(segment_.token.substr(0, 4));
      break;
    default:
      req.set_pid(0);
      break;
  }
  v1::AttachSharedMemoryResponse resp;
  call.Bad(stub_->AttachSharedMemory(Context().get(), req, &resp), want,
           absl::StrCat("attach with bad input ", kind));
}

}  // namespace tensorpager::soak
