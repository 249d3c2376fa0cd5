// SoakClient: the loop, the slots (blocks this client owns), creating and
// writing them. Reads and the other calls on a slot are in
// soak_client_slots.cc; bad inputs and the calls that touch no slot in
// soak_client_ops.cc.
#include "tests/bench/soak_client.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tensorpager::soak {

using grpc::StatusCode;

SoakClient::SoakClient(int index, SoakShared* shared, Client* sdk)
    : shared_(shared),
      sdk_(sdk),
      prefix_(absl::StrFormat("c%03d-", index)),
      rng_(0x50A4ull * 1000003 + index) {
  grpc::ChannelArguments args;
  // Its own connection, as a separate client process would have, and
  // quick reconnects after a restart. (Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS:
  // gRPC takes it as the connection attempt's timeout, 20 s by default.)
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(8 << 20);
  channel_ = grpc::CreateCustomChannel(
      shared_->target, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::TensorPager::NewStub(channel_);
  slots_.resize(shared_->ids_per_client);
  for (int i = 0; i < shared_->ids_per_client; ++i) {
    slots_[i].id = absl::StrCat(prefix_, i);
  }
  progress_ = Clock::now().time_since_epoch().count();
}

SoakClient::~SoakClient() {
  if (segment_.base != nullptr) ::munmap(segment_.base, segment_.size);
  if (segment_.fd >= 0) ::close(segment_.fd);
  if (unsealed_fd_ >= 0) ::close(unsealed_fd_);
}

void SoakClient::Run() {
  // Connected before the first call, as a client that waits until the
  // server is ready: the soak judges calls on a working connection, not
  // the first connect (twice in CI the very first connect to the server
  // started a moment before failed, with "No such file or directory").
  channel_->WaitForConnected(std::chrono::system_clock::now() +
                             std::chrono::seconds(10));
  while (!shared_->stop.load(std::memory_order_relaxed)) {
    const uint64_t transients = TransientsOnThisThread();
    Iteration();
    Progress();
    // Refused or cut off (a limit, a restart): back off a little.
    if (TransientsOnThisThread() != transients) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // Leaves the server only the SDK clients' arenas (soak.cc checks).
  if (segment_.attached) {
    if (segment_.life == shared_->life.lifetime()) {
      DetachSegment();
    } else {  // attached around a restart, or by an earlier server
      v1::DetachSharedMemoryRequest req;
      req.set_segment_id(segment_.id);
      req.set_capability(segment_.capability);
      v1::DetachSharedMemoryResponse resp;
      (void)stub_->DetachSharedMemory(Context().get(), req, &resp);
    }
  }
}

std::unique_ptr<grpc::ClientContext> SoakClient::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + shared_->deadline);
  return ctx;
}

CallRecorder SoakClient::Begin(Rpc rpc) {
  current_.store(static_cast<int>(rpc));
  return CallRecorder(&shared_->stats, &shared_->life, rpc, prefix_);
}

void SoakClient::Progress() {
  progress_.store(Clock::now().time_since_epoch().count());
}

grpc::Status SoakClient::FromAbsl(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<StatusCode>(s.code()),
                      std::string(s.message()));
}

// Half the pages random, half a repeated word: codecs get both kinds.
std::string SoakClient::NewBytes(uint64_t size) {
  std::string out(size, '\0');
  uint64_t x = rng_() ^ ++seed_;
  auto next = [&x] {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (uint64_t page = 0; page < size; page += 4096) {
    const uint64_t end = std::min(size, page + 4096);
    const bool compressible = (next() & 1) != 0;
    const uint64_t word = next();
    for (uint64_t i = page; i < end; i += 8) {
      const uint64_t v = compressible ? word + i / 512 : next();
      std::memcpy(out.data() + i, &v, std::min<uint64_t>(8, end - i));
    }
  }
  return out;
}

SoakClient::Slot SoakClient::FreshSlot(const std::string& id) {
  Slot s;
  s.id = id;
  return s;
}

bool SoakClient::Usable(const Slot& s) const {
  return s.checked_life == shared_->life.lifetime() &&
         (s.state == State::kWritten || s.state == State::kEmpty);
}

SoakClient::Slot* SoakClient::PickUsable(bool written_only,
                                         bool unpinned_only) {
  const size_t start = Random(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[(start + i) % slots_.size()];
    if (!Usable(s) || (written_only && s.state != State::kWritten) ||
        (unpinned_only && s.pinned)) {
      continue;
    }
    return &s;
  }
  return nullptr;
}

void SoakClient::MarkUncertain(Slot& s) {
  s.state = State::kUncertain;
  s.pinned = false;
  s.data.clear();
}

void SoakClient::Iteration() {
  const uint64_t roll = Random(1000);
  if (roll < 15) return ListOp();
  if (roll < 30) return StatusOp();
  if (roll < 50) return ReportAccessesOp();
  if (roll < 54) return WatchPressureOp();
  if (roll < 90) return SegmentOp();
  if (roll < 150) return BadInput();
  Slot& s = slots_[Random(slots_.size())];
  if (!Settle(s)) return;
  switch (s.state) {
    case State::kAbsent:
      return Create(s);
    case State::kEmpty:
      return WriteSlot(s, /*whole=*/true);
    case State::kWritten:
      return SlotOp(s);
    case State::kUncertain:
      return;
  }
}

bool SoakClient::Settle(Slot& s) {
  const uint64_t life = shared_->life.lifetime();
  if (s.state == State::kUncertain) {
    // A mutating call failed around a restart: start the slot afresh.
    CallRecorder call = Begin(Rpc::kUnregisterBlock);
    v1::UnregisterBlockRequest req;
    req.set_id(s.id);
    v1::UnregisterBlockResponse resp;
    grpc::Status st = stub_->UnregisterBlock(Context().get(), req, &resp);
    if (st.error_code() == StatusCode::NOT_FOUND) st = grpc::Status::OK;
    if (call.Valid(st, absl::StrCat("unregister ", s.id, " (state unknown)"))) {
      s = FreshSlot(s.id);
    }
    return false;
  }
  if (s.state == State::kAbsent || s.checked_life == life) return true;
  // Known from an earlier server lifetime (or a call that met a restart):
  // a block only in RAM at SIGTERM comes back lost, any other as it was.
  CallRecorder call = Begin(Rpc::kGetBlock);
  v1::GetBlockRequest req;
  req.set_id(s.id);
  v1::GetBlockResponse resp;
  const grpc::Status st = stub_->GetBlock(Context().get(), req, &resp);
  if (!call.Valid(st, absl::StrCat("get ", s.id, " after a restart")) ||
      call.overlapped()) {
    return false;
  }
  const v1::BlockInfo& b = resp.block();
  if (b.size_bytes() != s.size) {
    call.Wrong(absl::StrCat(s.id, " came back with ", b.size_bytes(),
                            " bytes, registered with ", s.size));
  }
  if (b.pinned() != s.pinned) {
    call.Wrong(
        absl::StrCat(s.id, " came back ", b.pinned() ? "pinned" : "unpinned"));
    s.pinned = b.pinned();
  }
  const bool written = s.state == State::kWritten;
  if (b.tier() == v1::TIER_LOST) {
    if (written) shared_->stats.lost_after_restart.fetch_add(1);
    // Lost: registered, and the next write must cover it whole.
    s.state = State::kEmpty;
    s.data.clear();
  } else if ((b.tier() == v1::TIER_EMPTY) == written) {
    call.Wrong(absl::StrCat(s.id, " came back as tier ",
                            v1::Tier_Name(b.tier()), ", expected ",
                            written ? "data" : "TIER_EMPTY"));
    MarkUncertain(s);
    return false;
  }
  s.checked_life = ServerLife::LifetimeOf(call.start_epoch());
  return s.checked_life == life;
}

void SoakClient::Create(Slot& s) {
  // Log-uniform sizes, a third of them not a multiple of 4 KiB.
  const double lo = std::log(static_cast<double>(shared_->min_block_bytes));
  const double hi = std::log(static_cast<double>(shared_->max_block_bytes));
  const double r = static_cast<double>(Random(1 << 20)) / (1 << 20);
  uint64_t size = static_cast<uint64_t>(std::exp(lo + (hi - lo) * r));
  size =
      std::clamp<uint64_t>(Chance(66) ? size / 4096 * 4096 : size,
                           shared_->min_block_bytes, shared_->max_block_bytes);
  static constexpr v1::RegionType kTypes[] = {
      v1::TENSOR_DATA, v1::KV_CACHE,  v1::ACTIVATION,
      v1::WEIGHT,      v1::TEMPORARY, v1::IMAGE_FEATURES};
  static constexpr v1::Compression kCodecs[] = {
      v1::COMPRESSION_UNSPECIFIED, v1::COMPRESSION_NONE, v1::COMPRESSION_LZ4,
      v1::COMPRESSION_ZSTD};
  const v1::RegionType type = kTypes[Random(std::size(kTypes))];
  const v1::Compression codec = kCodecs[Random(std::size(kCodecs))];
  const bool sequence = Chance(50);
  const uint32_t index = static_cast<uint32_t>(&s - slots_.data());
  const bool via_sdk = Chance(50);
  CallRecorder call = Begin(via_sdk ? Rpc::kSdkRegister : Rpc::kRegisterBlock);
  grpc::Status st;
  v1::BlockInfo info;
  if (via_sdk) {
    BlockSpec spec{s.id, size};
    spec.region_type = type;
    spec.compression = codec;
    if (sequence) spec.sequence = std::make_pair(prefix_, index);
    absl::StatusOr<v1::BlockInfo> r = sdk_->Register(spec);
    st = FromAbsl(r.status());
    if (r.ok()) info = *r;
  } else {
    v1::RegisterBlockRequest req;
    req.set_id(s.id);
    req.set_size_bytes(size);
    req.set_region_type(type);
    req.set_compression(codec);
    (*req.mutable_labels())["soak"] = prefix_;
    if (sequence) {
      req.mutable_sequence()->set_group(prefix_);
      req.mutable_sequence()->set_index(index);
    }
    v1::RegisterBlockResponse resp;
    st = stub_->RegisterBlock(Context().get(), req, &resp);
    info = resp.block();
  }
  if (!call.Valid(st, absl::StrCat("register ", s.id, " of ", size))) {
    if (st.error_code() != StatusCode::RESOURCE_EXHAUSTED) {
      MarkUncertain(s);
    }
    return;
  }
  if (info.size_bytes() != size || info.tier() != v1::TIER_EMPTY) {
    call.Wrong(absl::StrCat("registered ", s.id, " of ", size, ": got size ",
                            info.size_bytes(), ", ",
                            v1::Tier_Name(info.tier())));
  }
  s.state = State::kEmpty;
  s.size = size;
  s.data.clear();
  s.pinned = false;
  s.checked_life =
      call.overlapped() ? 0 : ServerLife::LifetimeOf(call.start_epoch());
  if (!Usable(s)) return;
  if (Chance(10)) {
    // A block never written has nothing to read.
    CallRecorder bad = Begin(Rpc::kBadUnwritten);
    v1::AccessRequest req;
    req.set_id(s.id);
    auto ctx = Context();
    auto reader = stub_->Access(ctx.get(), req);
    v1::AccessResponse msg;
    while (reader->Read(&msg)) {
    }
    bad.Bad(reader->Finish(), StatusCode::FAILED_PRECONDITION,
            absl::StrCat("access of unwritten ", s.id));
  }
  WriteSlot(s, /*whole=*/true);
}

void SoakClient::SlotOp(Slot& s) {
  const uint64_t roll = Random(100);
  if (roll < 45) return ReadSlot(s);
  if (roll < 55) return WriteSlot(s, /*whole=*/true);
  if (roll < 67) return WriteSlot(s, /*whole=*/false);
  if (roll < 73) return GetSlot(s);
  if (roll < 80) return SwapSlots(s, /*out=*/true);
  if (roll < 85) return SwapSlots(s, /*out=*/false);
  if (roll < 91) return PinToggle(s);
  return UnregisterSlot(s);
}

grpc::Status SoakClient::WriteStream(const Slot& s, uint64_t offset,
                                     const std::string& bytes,
                                     std::optional<bool> durable) {
  auto ctx = Context();
  v1::WriteBlockResponse resp;
  auto writer = stub_->WriteBlock(ctx.get(), &resp);
  const uint64_t chunk = uint64_t{16384} << Random(7);  // 16 KiB .. 1 MiB
  uint64_t at = 0;
  do {
    v1::WriteBlockRequest m;
    if (at == 0 || Chance(30)) m.set_id(s.id);
    if (at == 0) {
      m.set_offset(offset);
      if (Chance(50)) m.set_total_bytes(bytes.size());
      if (durable) m.set_durable(*durable);
    }
    const uint64_t n = std::min<uint64_t>(chunk, bytes.size() - at);
    m.set_data(bytes.data() + at, n);
    at += n;
    if (!writer->Write(m)) break;
  } while (at < bytes.size());
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (st.ok() && (resp.bytes_written() != bytes.size() ||
                  resp.block().size_bytes() != s.size)) {
    return grpc::Status(
        StatusCode::INTERNAL,
        absl::StrCat("WriteBlock answered bytes_written=", resp.bytes_written(),
                     " size=", resp.block().size_bytes()));
  }
  return st;
}

grpc::Status SoakClient::WriteShared(const Slot& s, uint64_t offset,
                                     const std::string& bytes,
                                     std::optional<bool> durable) {
  std::memcpy(segment_.base + kSegmentHeader, bytes.data(), bytes.size());
  v1::WriteBlockSharedRequest req;
  req.set_id(s.id);
  req.set_offset(offset);
  if (durable) req.set_durable(*durable);
  v1::SharedRange* src = req.mutable_source();
  src->set_segment_id(segment_.id);
  src->set_capability(segment_.capability);
  src->set_offset(kSegmentHeader);
  src->set_length(bytes.size());
  v1::WriteBlockResponse resp;
  grpc::Status st = stub_->WriteBlockShared(Context().get(), req, &resp);
  if (st.ok() && (resp.bytes_written() != bytes.size() ||
                  resp.block().size_bytes() != s.size)) {
    return grpc::Status(StatusCode::INTERNAL,
                        absl::StrCat("WriteBlockShared answered bytes_written=",
                                     resp.bytes_written(),
                                     " size=", resp.block().size_bytes()));
  }
  return st;
}

void SoakClient::WriteSlot(Slot& s, bool whole) {
  uint64_t offset = 0;
  uint64_t length = s.size;
  if (!whole) {
    offset = Random(s.size);
    length = 1 + Random(s.size - offset);
  }
  const std::string bytes = NewBytes(length);
  std::optional<bool> durable;
  if (const uint64_t d = Random(100); d < 15) {
    durable = true;
  } else if (d < 25) {
    durable = false;
  }
  const bool segment_ok = segment_.attached &&
                          segment_.life == shared_->life.lifetime() &&
                          length <= segment_.size - kSegmentHeader;
  const uint64_t path = Random(100);
  const Rpc rpc = path < 40                  ? Rpc::kWriteBlock
                  : path < 75 || !segment_ok ? Rpc::kSdkWrite
                                             : Rpc::kWriteBlockShared;
  CallRecorder call = Begin(rpc);
  grpc::Status st;
  if (rpc == Rpc::kWriteBlock) {
    st = WriteStream(s, offset, bytes, durable);
  } else if (rpc == Rpc::kWriteBlockShared) {
    st = WriteShared(s, offset, bytes, durable);
  } else {
    absl::StatusOr<v1::WriteBlockResponse> r =
        sdk_->Write(s.id, bytes, offset, durable);
    st = FromAbsl(r.status());
    if (r.ok() &&
        (r->bytes_written() != length || r->block().size_bytes() != s.size)) {
      st = grpc::Status(StatusCode::INTERNAL,
                        absl::StrCat("sdk Write answered bytes_written=",
                                     r->bytes_written()));
    }
  }
  // Around a restart a partial write may find the block lost, and the
  // shared-memory segment forgotten.
  if (!call.Valid(st,
                  absl::StrCat(whole ? "write " : "partial write ", s.id, " [",
                               offset, ", +", length, ") of ", s.size),
                  {StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND,
                   StatusCode::DATA_LOSS},
                  length)) {
    if (st.error_code() != StatusCode::RESOURCE_EXHAUSTED) {
      MarkUncertain(s);
    }
    return;
  }
  if (whole) {
    s.data = bytes;
  } else {
    std::memcpy(s.data.data() + offset, bytes.data(), length);
  }
  s.state = State::kWritten;
  s.checked_life =
      call.overlapped() ? 0 : ServerLife::LifetimeOf(call.start_epoch());
}

}  // namespace tensorpager::soak
