// KV-cache offload for a vision-language model (Qwen3-VL style), through
// the tensorpager SDK. Several multi-turn conversations run round-robin, as
// in a serving engine: every turn attends over the conversation's whole KV
// history (its pages, accessed in order), appends the pages of its new
// tokens, and turns that carry an image first produce the image's
// vision-encoder features (IMAGE_FEATURES blocks) that later turns reuse.
// Pages and tiles are registered as sequences, so the server can prefetch
// the following members. The local cache is kept small on purpose, so the
// conversations evict each other and come back from tensorpagerd.
//
//   vlm_kv_offload [--target=127.0.0.1:50051] [--conversations=3]
//                  [--turns=6] [--local_cache_mib=24] [--placement=auto]
//
// At the end it prints the local hit rate and the bytes moved.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "tensorpager/client.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "tensorpagerd address");
ABSL_FLAG(int, conversations, 3, "Conversations served round-robin");
ABSL_FLAG(int, turns, 6, "Turns per conversation");
ABSL_FLAG(int, local_cache_mib, 24,
          "Local cache budget (GPU, or host in host mode)");
ABSL_FLAG(std::string, placement, "auto",
          "Where the model reads KV pages: auto (GPU 0 if present), host, "
          "gpu");
ABSL_FLAG(bool, keep, false, "Leave the blocks registered at the end");

namespace {

using tensorpager::AccessMode;
using tensorpager::BlockHandle;
using tensorpager::BlockName;
using tensorpager::BlockSpec;
using tensorpager::Client;
using tensorpager::ClientOptions;
using tensorpager::Placement;
namespace v1 = tensorpager::v1;

// One KV page: 16 tokens x 4 layers x (K, V) x 8 KV heads x 128 head dim,
// bfloat16 = 256 KiB. One image tile's features: 256 patches x 1024, bf16.
constexpr int kTokensPerPage = 16;
const std::vector<int64_t> kPageShape = {4, 2, kTokensPerPage, 8, 128};
const std::vector<int64_t> kTileShape = {256, 1024};
constexpr uint64_t kPageBytes = 4 * 2 * kTokensPerPage * 8 * 128 * 2;
constexpr uint64_t kTileBytes = 256 * 1024 * 2;
constexpr int kTilesPerImage = 4;

[[noreturn]] void Fail(absl::string_view what, const absl::Status& s) {
  std::fprintf(stderr, "vlm_kv_offload: %s: %s\n", std::string(what).c_str(),
               s.ToString().c_str());
  std::exit(1);
}

struct Conversation {
  std::string name;
  int pages = 0;   // KV pages so far
  int images = 0;  // images seen so far
  int tokens = 0;
};

// Synthetic "model output" for a block, so the example moves real bytes.
std::string Synthesize(uint64_t bytes, const std::string& seed) {
  std::string out(bytes, '\0');
  uint64_t x = std::hash<std::string>{}(seed) | 1;
  for (uint64_t i = 0; i + 8 <= bytes; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + i, &x, 8);
  }
  return out;
}

void RegisterBlock(Client& client, const BlockName& name, uint64_t bytes,
                   v1::RegionType type, const std::vector<int64_t>& shape,
                   const std::string& group, uint32_t index) {
  BlockSpec spec{name};
  spec.size_bytes = bytes;
  spec.region_type = type;
  spec.dtype = v1::BFLOAT16;
  spec.shape = shape;
  spec.sequence = {{group, index}};
  const std::string data = Synthesize(bytes, name.id);
  if (auto r = client.Register(spec, data.data(), Placement::Host()); !r.ok()) {
    Fail(absl::StrCat("register ", name.ToString()), r.status());
  }
}

// Reads the block where the model runs (the handle stands for the
// attention kernel's input).
void Use(Client& client, const BlockName& name, Placement where) {
  absl::StatusOr<BlockHandle> h = client.Access(name, where);
  if (!h.ok()) Fail(absl::StrCat("access ", name.ToString()), h.status());
}

int Run() {
  ClientOptions options;
  const uint64_t budget = uint64_t(absl::GetFlag(FLAGS_local_cache_mib)) << 20;
  options.cache.gpu_budget_bytes = budget;
  options.cache.host_budget_bytes = budget;
  absl::StatusOr<std::unique_ptr<Client>> connected =
      Client::Connect(absl::GetFlag(FLAGS_target), options);
  if (!connected.ok()) Fail("connect", connected.status());
  Client& client = **connected;
  if (absl::Status s = client.WaitUntilReady(absl::Seconds(10)); !s.ok()) {
    Fail(absl::StrCat("tensorpagerd at ", absl::GetFlag(FLAGS_target)), s);
  }

  const std::string mode = absl::GetFlag(FLAGS_placement);
  Placement where = Placement::Host();
  if (mode == "gpu" || (mode == "auto" && !client.host_mode())) {
    where = Placement::Device(0);
  } else if (mode != "host" && mode != "auto") {
    Fail("flags", absl::InvalidArgumentError("--placement: auto, host or gpu"));
  }
  std::printf(
      "serving %d conversations x %d turns, KV pages of %lu KiB, "
      "model on %s, local cache %lu MiB\n",
      absl::GetFlag(FLAGS_conversations), absl::GetFlag(FLAGS_turns),
      static_cast<unsigned long>(kPageBytes >> 10), where.ToString().c_str(),
      static_cast<unsigned long>(budget >> 20));

  const std::string run = absl::StrCat("vlm-", ::getpid());
  std::vector<Conversation> convs(absl::GetFlag(FLAGS_conversations));
  for (size_t c = 0; c < convs.size(); ++c) {
    convs[c].name = absl::StrCat("conv", c);
  }
  auto page = [&](const Conversation& c, int i) {
    return BlockName(run, absl::StrCat(c.name, "/kv/", i));
  };
  auto tile = [&](const Conversation& c, int image, int t) {
    return BlockName(run, absl::StrCat(c.name, "/image", image, "/tile", t));
  };
  std::vector<BlockName> registered;
  uint64_t model_accesses = 0;

  for (int turn = 0; turn < absl::GetFlag(FLAGS_turns); ++turn) {
    for (size_t ci = 0; ci < convs.size(); ++ci) {
      Conversation& c = convs[ci];
      // Every other turn of a conversation carries an image.
      const bool image = (turn + ci) % 2 == 0;
      if (image) {
        for (int t = 0; t < kTilesPerImage; ++t) {
          RegisterBlock(client, tile(c, c.images, t), kTileBytes,
                        v1::IMAGE_FEATURES, kTileShape,
                        absl::StrCat(run, "/", c.name, "/image", c.images), t);
          registered.push_back(tile(c, c.images, t));
        }
        ++c.images;
      }
      // Prefill: attend over the history while the next pages arrive.
      std::vector<std::future<absl::Status>> ahead;
      for (int i = 0; i < std::min(c.pages, 4); ++i) {
        ahead.push_back(client.Prefetch(page(c, i), where));
      }
      for (int img = 0; img < c.images; ++img) {
        for (int t = 0; t < kTilesPerImage; ++t) {
          Use(client, tile(c, img, t), where);
          ++model_accesses;
        }
      }
      for (int i = 0; i < c.pages; ++i) {
        Use(client, page(c, i), where);
        ++model_accesses;
      }
      for (auto& f : ahead) {
        if (absl::Status s = f.get(); !s.ok()) Fail("prefetch", s);
      }
      // The turn's new tokens: the prompt plus the reply.
      const int new_tokens = 48 + 16 * (turn % 3);
      const int pages_after =
          (c.tokens + new_tokens + kTokensPerPage - 1) / kTokensPerPage;
      for (int i = c.pages; i < pages_after; ++i) {
        RegisterBlock(client, page(c, i), kPageBytes, v1::KV_CACHE, kPageShape,
                      absl::StrCat(run, "/", c.name, "/kv"), i);
        registered.push_back(page(c, i));
      }
      c.pages = pages_after;
      c.tokens += new_tokens;
    }
  }

  if (absl::Status s = client.Flush(); !s.ok()) Fail("flush", s);
  const tensorpager::CacheStats s = client.LocalStats();
  absl::StatusOr<v1::StatusResponse> server = client.Status();
  std::printf(
      "\n%lu blocks registered (%lu KV pages, %lu image tiles), "
      "%lu model accesses\n",
      static_cast<unsigned long>(registered.size()),
      static_cast<unsigned long>(
          std::count_if(registered.begin(), registered.end(),
                        [](const BlockName& n) {
                          return n.id.find("/kv/") != std::string::npos;
                        })),
      static_cast<unsigned long>(
          std::count_if(registered.begin(), registered.end(),
                        [](const BlockName& n) {
                          return n.id.find("/tile") != std::string::npos;
                        })),
      static_cast<unsigned long>(model_accesses));
  std::printf(
      "local cache: hit rate %.1f%% (%lu hits, %lu host<->GPU copies, "
      "%lu fetched), %lu evictions\n",
      100 * s.hit_rate(), static_cast<unsigned long>(s.hits),
      static_cast<unsigned long>(s.local_transfers),
      static_cast<unsigned long>(s.misses),
      static_cast<unsigned long>(s.evictions));
  std::printf(
      "bytes moved: %.1f MiB from tensorpagerd, %.1f MiB written back, "
      "%.1f MiB host->GPU, %.1f MiB GPU->host\n",
      s.bytes_fetched / 1048576.0, s.bytes_written_back / 1048576.0,
      s.bytes_host_to_device / 1048576.0, s.bytes_device_to_host / 1048576.0);
  if (server.ok()) {
    const v1::Efficiency& e = server->efficiency();
    std::printf(
        "tensorpagerd: %lu accesses (%lu from RAM, %lu from disk), "
        "%lu reported by SDKs, %lu prefetched\n",
        static_cast<unsigned long>(e.accesses()),
        static_cast<unsigned long>(e.ram_hits()),
        static_cast<unsigned long>(e.disk_hits()),
        static_cast<unsigned long>(e.accesses_reported()),
        static_cast<unsigned long>(e.prefetched()));
  }
  if (!absl::GetFlag(FLAGS_keep)) {
    for (const BlockName& n : registered) {
      if (auto r = client.Unregister(n); !r.ok())
        Fail("unregister", r.status());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
