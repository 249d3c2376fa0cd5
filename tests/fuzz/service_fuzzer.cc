// Fuzzes every RPC of the TensorPager service (server/tensorpager_service.h):
// fuzzed bytes parsed as each RPC's request go to a real service over a
// real BlockStore in a scratch directory.
//
// Input: calls, each [rpc: 1 byte][request length: 2 bytes LE][request].
// The first byte picks the RPC (kRpcs below, modulo their number); the
// request is the serialized protobuf message. A kWriteMore call adds one
// more message to the WriteBlock stream just before it.
//
// Each input starts from the same state: blocks "a" (written, in RAM),
// "b" and "c" (a sequence, c only on disk) and "e" (registered, empty) in
// the default namespace, and one shared-memory segment of the harness's
// own. A SharedRange that leaves segment_id unset (0) names that segment
// (with its capability, unless the request gives one), so the fuzzer
// reaches the shared-memory data path with ranges of its choosing.
// Afterwards every block is unregistered and the state put back.
//
// Unary calls go straight to the handlers with a grpc::ServerContext; the
// streams (WriteBlock, Access, WatchPressure) go through the server's
// in-process channel; the shared-memory calls go through loopback TCP,
// since the service checks the calling user's uid on those.
#include <fcntl.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/config/server_config.h"
#include "server/pressure/pressure_monitor.h"
#include "server/profile/hardware_profile.h"
#include "server/tensorpager_service.h"
#include "storage/block_store.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

namespace st = tensorpager::storage;
namespace tps = tensorpager::server;
namespace v1 = tensorpager::v1;
using tensorpager::fuzz::Reader;

enum Rpc : uint8_t {
  kRegisterBlock,
  kWriteBlock,
  kWriteMore,
  kAccess,
  kSwap,
  kPin,
  kUnpin,
  kUnregisterBlock,
  kGetBlock,
  kListBlocks,
  kStatus,
  kWatchPressure,
  kSetPolicy,
  kReportAccesses,
  kReportClientUsage,
  kAttachSharedMemory,
  kDetachSharedMemory,
  kWriteBlockShared,
  kAccessShared,
  kLookup,
  kPutBlocks,
  kGetBlocks,
  kUnregisterBlocks,
  kNumRpcs,
};

constexpr int kMaxCalls = 24;
constexpr uint64_t kRamBudget = 4 << 20;
constexpr uint64_t kSegmentBytes = 1 << 20;
constexpr size_t kTokenBytes = 16;

struct Harness {
  std::string dir;
  tps::ServerConfig config;
  std::unique_ptr<st::BlockStore> store;
  std::unique_ptr<tps::PressureMonitor> pressure;
  tps::HardwareProfile profile;
  // Authentication off (no tenants file), as a default server runs.
  tps::auth::Authenticator auth;
  tps::PeerIdentity peers;
  std::unique_ptr<tps::TensorPagerService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::TensorPager::Stub> inproc;  // streams
  std::unique_ptr<v1::TensorPager::Stub> tcp;     // shared memory
  // The harness's own segment.
  int memfd = -1;
  std::byte* segment = nullptr;
  uint64_t segment_id = 0;
  std::string capability;
};

void WriteFile(const std::string& path, absl::string_view text) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::trunc) << text;
}

std::string Token() { return std::string(kTokenBytes, 'T'); }

void AttachOwnSegment(Harness& h) {
  h.memfd = ::memfd_create("tp-fuzz-segment", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  TP_FUZZ_CHECK(h.memfd >= 0);
  TP_FUZZ_CHECK(::ftruncate(h.memfd, kSegmentBytes) == 0);
  TP_FUZZ_CHECK(::fcntl(h.memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) ==
                0);
  void* p = ::mmap(nullptr, kSegmentBytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                   h.memfd, 0);
  TP_FUZZ_CHECK(p != MAP_FAILED);
  h.segment = static_cast<std::byte*>(p);
  for (uint64_t i = 0; i < kSegmentBytes; ++i) {
    h.segment[i] = static_cast<std::byte>(i * 7);
  }
  std::memcpy(h.segment, Token().data(), kTokenBytes);
  v1::AttachSharedMemoryRequest request;
  request.set_pid(::getpid());
  request.set_fd(h.memfd);
  request.set_size_bytes(kSegmentBytes);
  request.set_token(Token());
  v1::AttachSharedMemoryResponse response;
  grpc::ClientContext context;
  const grpc::Status s =
      h.tcp->AttachSharedMemory(&context, request, &response);
  if (!s.ok()) {
    std::fprintf(stderr,
                 "service_fuzzer: cannot attach a segment (%s); the "
                 "shared-memory calls stay shallow\n",
                 s.error_message().c_str());
    return;
  }
  h.segment_id = response.segment_id();
  h.capability = response.capability();
}

Harness& H() {
  static Harness* h = [] {
    auto* h = new Harness;
    h->dir = tensorpager::fuzz::ScratchDir();
    tps::ServerConfig& c = h->config;
    c.data_dir = h->dir + "/data";
    c.ram_budget_bytes = kRamBudget;
    c.max_swap_bytes = 32 << 20;
    c.max_block_bytes = 1 << 20;
    c.max_inflight_bytes = 4 << 20;
    c.max_blocks = 256;
    c.io_engine = "threads";
    c.io_block_bytes = 256 << 10;
    c.io_queue_depth = 2;
    c.max_concurrent_swaps = 2;
    c.eviction_batch_bytes = 1 << 20;
    c.prefetch_depth = 0;  // no background thread: deterministic
    c.max_watch_streams = 1024;
    c.max_watch_streams_per_client = 1024;
    c.max_batch_blocks = 16;
    c.max_batch_bytes = 2 << 20;
    absl::StatusOr<st::BlockStoreOptions> options = tps::StoreOptionsFor(c);
    TP_FUZZ_CHECK(options.ok());
    options->file_growth_bytes = 1 << 20;
    options->io.direct_io = false;
    absl::StatusOr<std::unique_ptr<st::BlockStore>> store =
        st::BlockStore::Open(*std::move(options));
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(store.status().message()).c_str());
    }
    TP_FUZZ_CHECK(store.ok());
    h->store = *std::move(store);

    // A host of 16 GiB with 4 free, read from a fake /proc: no sampling of
    // the real machine, so every run sees the same pressure.
    const std::string root = h->dir + "/root";
    WriteFile(root + "/proc/meminfo",
              "MemTotal:       16777216 kB\nMemFree:         4194304 kB\n"
              "MemAvailable:    4194304 kB\n");
    tps::PressureMonitorOptions po;
    po.root = root;
    po.use_nvml = false;
    absl::StatusOr<std::unique_ptr<tps::PressureMonitor>> pressure =
        tps::PressureMonitor::Create(std::move(po));
    TP_FUZZ_CHECK(pressure.ok());
    h->pressure = *std::move(pressure);

    h->service = std::make_unique<tps::TensorPagerService>(
        h->store.get(), &h->config, h->pressure.get(), &h->profile, &h->auth,
        &h->peers);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(h->service.get());
    h->server = builder.BuildAndStart();
    TP_FUZZ_CHECK(h->server != nullptr && port != 0);
    h->inproc = v1::TensorPager::NewStub(
        h->server->InProcessChannel(grpc::ChannelArguments()));
    h->tcp = v1::TensorPager::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    AttachOwnSegment(*h);
    // libFuzzer ends with exit(): stop the server and its threads first,
    // so that the leak check at exit sees only what the code leaked.
    std::atexit([] {
      Harness& h = H();
      h.server->Shutdown(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
      h.server->Wait();
      h.inproc.reset();
      h.tcp.reset();
      h.server.reset();
      h.service.reset();
      h.pressure.reset();
      h.store.reset();
      if (h.segment != nullptr) ::munmap(h.segment, kSegmentBytes);
      if (h.memfd >= 0) ::close(h.memfd);
    });
    return h;
  }();
  return *h;
}

void Register(Harness& h, const std::string& id, uint64_t size,
              const std::string& group, uint32_t index) {
  v1::RegisterBlockRequest request;
  request.set_id(id);
  request.set_size_bytes(size);
  if (!group.empty()) {
    request.mutable_sequence()->set_group(group);
    request.mutable_sequence()->set_index(index);
  }
  v1::RegisterBlockResponse response;
  grpc::ServerContext context;
  TP_FUZZ_CHECK(h.service->RegisterBlock(&context, &request, &response).ok());
}

void Fill(Harness& h, const std::string& id, uint64_t size) {
  absl::StatusOr<st::BlockKey> key = st::BlockKey::Make("", id);
  tensorpager::base::AlignedBuffer data = h.store->NewBuffer(size);
  TP_FUZZ_CHECK(data.ok());
  for (uint64_t i = 0; i < size; ++i) {
    data.data()[i] = static_cast<std::byte>(i % 251);
  }
  TP_FUZZ_CHECK(
      h.store->Write(*key, 0, std::move(data), st::WriteOptions{}).ok());
}

void SetUp(Harness& h) {
  Register(h, "a", 4096, "", 0);
  Fill(h, "a", 4096);
  Register(h, "b", 8192, "s", 0);
  Fill(h, "b", 8192);
  Register(h, "c", 8192, "s", 1);
  Fill(h, "c", 8192);
  TP_FUZZ_CHECK(h.store->SwapOut({*st::BlockKey::Make("", "c")}).ok());
  Register(h, "e", 65536, "", 0);
}

void TearDown(Harness& h) {
  for (;;) {
    st::ListFilter all;
    all.all_namespaces = true;
    absl::StatusOr<st::ListPage> page = h.store->List(all, 1000, "");
    TP_FUZZ_CHECK(page.ok());
    if (page->blocks.empty()) break;
    for (const st::BlockInfo& b : page->blocks) {
      TP_FUZZ_CHECK(h.store->Unregister(*st::BlockKey::Make(b.ns, b.id)).ok());
    }
  }
  const st::StoreStats stats = h.store->Stats();
  TP_FUZZ_CHECK(stats.blocks_registered == 0);
  TP_FUZZ_CHECK(stats.ram_bytes == 0);
  TP_FUZZ_CHECK(stats.disk.used_bytes == 0);
  h.store->SetAlgorithm(tensorpager::policy::Algorithm::kLru);
  if (h.segment != nullptr) std::memcpy(h.segment, Token().data(), kTokenBytes);
}

template <typename Message>
bool Parse(absl::string_view bytes, Message* message) {
  return message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

// The harness's segment, when the range leaves the segment unset.
void UseOwnSegment(Harness& h, v1::SharedRange* range) {
  if (range->segment_id() != 0 || h.segment_id == 0) return;
  range->set_segment_id(h.segment_id);
  if (range->capability().empty()) range->set_capability(h.capability);
}

// TP_FUZZ_VERBOSE=1: each call's outcome on stderr, to check what the
// seeds reach.
void Note(int rpc, const grpc::Status& status) {
  static const bool verbose = std::getenv("TP_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "rpc %d: %d %s\n", rpc,
                 static_cast<int>(status.error_code()),
                 status.error_message().c_str());
  }
}

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(20);
}

void CallWriteBlock(Harness& h, const std::vector<absl::string_view>& parts) {
  std::vector<v1::WriteBlockRequest> messages;
  for (absl::string_view part : parts) {
    v1::WriteBlockRequest m;
    if (Parse(part, &m)) messages.push_back(std::move(m));
  }
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  v1::WriteBlockResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::WriteBlockRequest>> writer =
      h.inproc->WriteBlock(&context, &response);
  for (const v1::WriteBlockRequest& m : messages) {
    if (!writer->Write(m)) break;
  }
  writer->WritesDone();
  const grpc::Status s = writer->Finish();
  Note(kWriteBlock, s);
  TP_FUZZ_CHECK(s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
  if (s.ok()) {
    TP_FUZZ_CHECK(response.bytes_written() > 0);
    TP_FUZZ_CHECK(response.bytes_written() <= response.block().size_bytes());
  }
}

void CallAccess(Harness& h, const v1::AccessRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  std::unique_ptr<grpc::ClientReader<v1::AccessResponse>> reader =
      h.inproc->Access(&context, request);
  v1::AccessResponse response;
  uint64_t bytes = 0;
  uint64_t size = 0;
  bool first = true;
  while (reader->Read(&response)) {
    if (first) size = response.block().size_bytes();
    first = false;
    bytes += response.data().size();
    TP_FUZZ_CHECK(bytes <= size);
    TP_FUZZ_CHECK(response.offset() + response.data().size() <= size);
  }
  const grpc::Status s = reader->Finish();
  Note(kAccess, s);
  TP_FUZZ_CHECK(s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
}

void CallWatchPressure(Harness& h, const v1::WatchPressureRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  std::unique_ptr<grpc::ClientReader<v1::PressureEvent>> reader =
      h.inproc->WatchPressure(&context, request);
  if (request.send_current()) {
    v1::PressureEvent event;
    TP_FUZZ_CHECK(reader->Read(&event));
    TP_FUZZ_CHECK(!event.resource().empty());
  }
  // The stream runs until the client goes away.
  context.TryCancel();
  (void)reader->Finish();
}

// Parses `bytes` as the request and calls the handler directly; nullopt
// when the bytes are no such message.
template <typename Request, typename Response>
std::optional<grpc::Status> Direct(
    Harness& h, int rpc, absl::string_view bytes,
    grpc::Status (tps::TensorPagerService::*handler)(grpc::ServerContext*,
                                                     const Request*, Response*),
    Request* request, Response* response) {
  if (!Parse(bytes, request)) return std::nullopt;
  grpc::ServerContext context;
  const grpc::Status s =
      (h.service.get()->*handler)(&context, request, response);
  Note(rpc, s);
  return s;
}

// A unary call over loopback TCP, where the service knows the caller's uid.
template <typename Request, typename Response>
grpc::Status OverTcp(Harness& h, int rpc,
                     grpc::Status (v1::TensorPager::Stub::*method)(
                         grpc::ClientContext*, const Request&, Response*),
                     const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  const grpc::Status s = (h.tcp.get()->*method)(&context, request, response);
  Note(rpc, s);
  TP_FUZZ_CHECK(s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
  return s;
}

void Run(Harness& h, Reader& in) {
  struct Call {
    uint8_t rpc;
    absl::string_view request;
  };
  std::vector<Call> calls;
  while (!in.empty() && calls.size() < kMaxCalls) {
    const uint8_t rpc = in.Byte() % kNumRpcs;
    calls.push_back({rpc, in.Take(in.U16())});
  }
  using S = tps::TensorPagerService;
  using Stub = v1::TensorPager::Stub;
  for (size_t i = 0; i < calls.size(); ++i) {
    const int rpc = calls[i].rpc;
    const absl::string_view bytes = calls[i].request;
    switch (rpc) {
      case kRegisterBlock: {
        v1::RegisterBlockRequest r;
        v1::RegisterBlockResponse out;
        Direct(h, rpc, bytes, &S::RegisterBlock, &r, &out);
        break;
      }
      case kWriteBlock:
      case kWriteMore: {
        std::vector<absl::string_view> parts = {bytes};
        while (i + 1 < calls.size() && calls[i + 1].rpc == kWriteMore) {
          parts.push_back(calls[++i].request);
        }
        CallWriteBlock(h, parts);
        break;
      }
      case kAccess: {
        v1::AccessRequest r;
        if (Parse(bytes, &r)) CallAccess(h, r);
        break;
      }
      case kSwap: {
        v1::SwapRequest r;
        v1::SwapResponse out;
        Direct(h, rpc, bytes, &S::Swap, &r, &out);
        break;
      }
      case kPin:
      case kUnpin: {
        v1::PinRequest r;
        v1::PinResponse out;
        Direct(h, rpc, bytes, rpc == kPin ? &S::Pin : &S::Unpin, &r, &out);
        break;
      }
      case kUnregisterBlock: {
        v1::UnregisterBlockRequest r;
        v1::UnregisterBlockResponse out;
        Direct(h, rpc, bytes, &S::UnregisterBlock, &r, &out);
        break;
      }
      case kGetBlock: {
        v1::GetBlockRequest r;
        v1::GetBlockResponse out;
        std::optional<grpc::Status> s =
            Direct(h, rpc, bytes, &S::GetBlock, &r, &out);
        if (s && s->ok()) TP_FUZZ_CHECK(out.block().id() == r.id());
        break;
      }
      case kListBlocks: {
        v1::ListBlocksRequest r;
        v1::ListBlocksResponse out;
        std::optional<grpc::Status> s =
            Direct(h, rpc, bytes, &S::ListBlocks, &r, &out);
        if (s && s->ok()) TP_FUZZ_CHECK(out.blocks_size() <= 1000);
        break;
      }
      case kStatus: {
        v1::StatusRequest r;
        v1::StatusResponse out;
        std::optional<grpc::Status> s =
            Direct(h, rpc, bytes, &S::Status, &r, &out);
        TP_FUZZ_CHECK(!s || s->ok());
        break;
      }
      case kWatchPressure: {
        v1::WatchPressureRequest r;
        if (Parse(bytes, &r)) CallWatchPressure(h, r);
        break;
      }
      case kSetPolicy: {
        v1::SetPolicyRequest r;
        v1::SetPolicyResponse out;
        Direct(h, rpc, bytes, &S::SetPolicy, &r, &out);
        break;
      }
      case kReportAccesses: {
        v1::ReportAccessesRequest r;
        v1::ReportAccessesResponse out;
        Direct(h, rpc, bytes, &S::ReportAccesses, &r, &out);
        break;
      }
      case kReportClientUsage: {
        v1::ReportClientUsageRequest r;
        v1::ReportClientUsageResponse out;
        Direct(h, rpc, bytes, &S::ReportClientUsage, &r, &out);
        break;
      }
      case kAttachSharedMemory: {
        v1::AttachSharedMemoryRequest r;
        if (!Parse(bytes, &r)) break;
        // Only this process's descriptors: never another process's.
        r.set_pid(::getpid());
        if (r.fd() == 0) r.set_fd(h.memfd);
        r.set_ring(false);  // the harness's segment holds no ring
        v1::AttachSharedMemoryResponse out;
        if (!OverTcp(h, rpc, &Stub::AttachSharedMemory, r, &out).ok()) break;
        // Detached again at once, so the next input finds the same
        // segments.
        v1::DetachSharedMemoryRequest d;
        d.set_segment_id(out.segment_id());
        d.set_capability(out.capability());
        v1::DetachSharedMemoryResponse dout;
        TP_FUZZ_CHECK(
            OverTcp(h, rpc, &Stub::DetachSharedMemory, d, &dout).ok());
        break;
      }
      case kDetachSharedMemory: {
        v1::DetachSharedMemoryRequest r;
        if (!Parse(bytes, &r)) break;
        v1::DetachSharedMemoryResponse out;
        // Never the harness's segment: its capability is not the fuzzer's
        // to know.
        TP_FUZZ_CHECK(r.capability() != h.capability);
        TP_FUZZ_CHECK(
            !OverTcp(h, rpc, &Stub::DetachSharedMemory, r, &out).ok());
        break;
      }
      case kWriteBlockShared: {
        v1::WriteBlockSharedRequest r;
        if (!Parse(bytes, &r)) break;
        UseOwnSegment(h, r.mutable_source());
        v1::WriteBlockResponse out;
        const grpc::Status s =
            OverTcp(h, rpc, &Stub::WriteBlockShared, r, &out);
        if (s.ok()) TP_FUZZ_CHECK(out.bytes_written() == r.source().length());
        break;
      }
      case kAccessShared: {
        v1::AccessSharedRequest r;
        if (!Parse(bytes, &r)) break;
        UseOwnSegment(h, r.mutable_destination());
        v1::AccessSharedResponse out;
        const grpc::Status s = OverTcp(h, rpc, &Stub::AccessShared, r, &out);
        if (s.ok()) TP_FUZZ_CHECK(out.length() <= r.destination().length());
        break;
      }
      case kLookup: {
        v1::LookupRequest r;
        v1::LookupResponse out;
        std::optional<grpc::Status> s =
            Direct(h, rpc, bytes, &S::Lookup, &r, &out);
        if (s && s->ok()) {
          TP_FUZZ_CHECK(out.entries_size() == r.ids_size());
          TP_FUZZ_CHECK(out.prefix_hits() <=
                        static_cast<uint32_t>(r.ids_size()));
        }
        break;
      }
      case kPutBlocks: {
        v1::PutBlocksRequest r;
        if (!Parse(bytes, &r)) break;
        for (v1::PutBlock& b : *r.mutable_blocks()) {
          if (b.has_shared()) UseOwnSegment(h, b.mutable_shared());
        }
        v1::PutBlocksResponse out;
        if (OverTcp(h, rpc, &Stub::PutBlocks, r, &out).ok()) {
          TP_FUZZ_CHECK(out.results_size() == r.blocks_size());
        }
        break;
      }
      case kGetBlocks: {
        v1::GetBlocksRequest r;
        if (!Parse(bytes, &r)) break;
        for (v1::SharedRange& d : *r.mutable_destinations()) {
          UseOwnSegment(h, &d);
        }
        v1::GetBlocksResponse out;
        if (OverTcp(h, rpc, &Stub::GetBlocks, r, &out).ok()) {
          TP_FUZZ_CHECK(out.results_size() == r.ids_size());
          for (int j = 0; j < out.results_size(); ++j) {
            const v1::GetResult& g = out.results(j);
            if (r.destinations_size() > 0 && g.status().code() == 0) {
              TP_FUZZ_CHECK(g.size_bytes() <= r.destinations(j).length());
            }
          }
        }
        break;
      }
      case kUnregisterBlocks: {
        v1::UnregisterBlocksRequest r;
        v1::UnregisterBlocksResponse out;
        Direct(h, rpc, bytes, &S::UnregisterBlocks, &r, &out);
        break;
      }
      default:
        break;
    }
  }
  TearDown(h);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& h = H();
  SetUp(h);
  Reader in(absl::string_view(reinterpret_cast<const char*>(data), size));
  Run(h, in);
  return 0;
}
