// tp-gpu-bench: the SDK's GPU transfers, all figures from one run.
//  (a) 4 MiB blocks between the SDK's host cache and the GPU, both ways,
//      against plain cudaMemcpy from/to page-locked memory (goal >= 0.8);
//  (b) end-to-end Access of 4 MiB blocks from a real tensorpagerd on
//      loopback placed on the GPU, against the same Access placed in host
//      memory (goal >= 0.9).
// Finds tensorpagerd under $TP_BINARY_DIR/server (tests/gpu/run.sh sets it).
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tensorpager/client.h"
#include "tests/gpu/gpu_test_env.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(int, blocks, 32, "4 MiB blocks in the working set");
ABSL_FLAG(int, rounds, 10, "Passes over the working set per figure");

namespace tensorpager::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kBlock = 4 << 20;

[[noreturn]] void Die(absl::string_view what, const std::string& why) {
  std::fprintf(stderr, "tp-gpu-bench: %s: %s\n", std::string(what).c_str(),
               why.c_str());
  std::exit(1);
}

void Check(cudaError_t e, absl::string_view what) {
  if (e != cudaSuccess) Die(what, testing::CudaText(e));
}

void Check(const absl::Status& s, absl::string_view what) {
  if (!s.ok()) Die(what, s.ToString());
}

double GiBps(uint64_t bytes, double seconds) {
  return bytes / seconds / (1ull << 30);
}

std::string Id(int i) { return absl::StrCat("g", i); }

// Plain cudaMemcpy of `n` 4 MiB blocks, `rounds` times; GiB/s.
double PlainCopy(int n, int rounds, bool pinned, cudaMemcpyKind kind) {
  std::vector<void*> host(n), dev(n);
  for (int i = 0; i < n; ++i) {
    if (pinned) {
      Check(cudaHostAlloc(&host[i], kBlock, cudaHostAllocDefault),
            "cudaHostAlloc");
    } else {
      host[i] = std::aligned_alloc(4096, kBlock);
      std::memset(host[i], 1, kBlock);
    }
    Check(cudaMalloc(&dev[i], kBlock), "cudaMalloc");
  }
  auto copy = [&](int i) {
    if (kind == cudaMemcpyHostToDevice) {
      Check(cudaMemcpy(dev[i], host[i], kBlock, kind), "cudaMemcpy");
    } else {
      Check(cudaMemcpy(host[i], dev[i], kBlock, kind), "cudaMemcpy");
    }
  };
  for (int i = 0; i < n; ++i) copy(i);  // warm-up
  const Clock::time_point start = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < n; ++i) copy(i);
  }
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  for (int i = 0; i < n; ++i) {
    if (pinned) {
      cudaFreeHost(host[i]);
    } else {
      std::free(host[i]);
    }
    cudaFree(dev[i]);
  }
  return GiBps(uint64_t(n) * rounds * kBlock, s);
}

// Times only the Access calls; `before` runs untimed ahead of each.
double TimedAccesses(Client& sdk, int n, int rounds, Placement where,
                     const std::function<void(int)>& before) {
  double seconds = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < n; ++i) {
      before(i);
      const Clock::time_point t0 = Clock::now();
      absl::StatusOr<BlockHandle> h = sdk.Access(Id(i), where);
      seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      Check(h.status(), "Access");
    }
  }
  return GiBps(uint64_t(n) * rounds * kBlock, seconds);
}

// `streams` threads each Access their share of the blocks `rounds` times
// (evicting first, so every access is a fetch from the server); GiB/s.
double EndToEnd(Client& sdk, int n, int rounds, Placement where, int streams) {
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < streams; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < rounds; ++r) {
        for (int i = t; i < n; i += streams) {
          Check(sdk.Evict(Id(i)), "Evict");
          absl::StatusOr<BlockHandle> h = sdk.Access(Id(i), where);
          Check(h.status(), "Access");
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  return GiBps(uint64_t(n) * rounds * kBlock, s);
}

int Main() {
  if (const std::string why = testing::NoGpuReason(); !why.empty()) {
    Die("no CUDA device", why);
  }
  const int n = absl::GetFlag(FLAGS_blocks);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  cudaDeviceProp prop{};
  Check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");

  testing::ServerProcess::Options so;
  so.flags = {"--ram_budget=2GiB"};
  auto server = testing::ServerProcess::Start(so);
  Check(server.status(), "start tensorpagerd");
  ClientOptions o;
  o.cache.host_budget_bytes = 2ull * n * kBlock;
  o.cache.gpu_budget_bytes = 2ull * n * kBlock;
  o.log_sink = [](absl::string_view) {};
  auto sdk = Client::Connect((*server)->target(), o);
  Check(sdk.status(), "connect");
  Check((*sdk)->WaitUntilReady(absl::Seconds(30)), "tensorpagerd ready");
  Client& c = **sdk;
  std::string value(kBlock, '\0');
  for (size_t i = 0; i < value.size(); ++i)
    value[i] = static_cast<char>(i * 131);
  for (int i = 0; i < n; ++i) {
    BlockSpec spec{Id(i)};
    spec.size_bytes = kBlock;
    spec.region_type = v1::KV_CACHE;
    Check(c.Register(spec, value.data(), Placement::Host()).status(),
          "register");
  }

  // (a) host cache <-> GPU.
  const double plain_h2d = PlainCopy(n, rounds, true, cudaMemcpyHostToDevice);
  const double plain_d2h = PlainCopy(n, rounds, true, cudaMemcpyDeviceToHost);
  const double pageable_h2d =
      PlainCopy(n, rounds, false, cudaMemcpyHostToDevice);
  for (int i = 0; i < n; ++i) Check(c.Access(Id(i)).status(), "warm host");
  const Placement gpu = Placement::Device(0);
  // Warm-up pass (device buffers come from the pool after it).
  TimedAccesses(c, n, 1, gpu,
                [&](int i) { Check(c.Evict(Id(i), gpu), "evict"); });
  const double sdk_h2d = TimedAccesses(c, n, rounds, gpu, [&](int i) {
    Check(c.Evict(Id(i), gpu), "evict device copy");
  });
  const double sdk_d2h =
      TimedAccesses(c, n, rounds, Placement::Host(), [&](int i) {
        Check(c.Evict(Id(i), Placement::Host()), "evict host copy");
      });

  // (b) end-to-end from tensorpagerd, GPU vs host placement, interleaved.
  double e2e_host_1 = 0, e2e_gpu_1 = 0, e2e_host_4 = 0, e2e_gpu_4 = 0;
  for (int pass = 0; pass < 2; ++pass) {
    e2e_host_1 += EndToEnd(c, n, rounds / 2, Placement::Host(), 1) / 2;
    e2e_gpu_1 += EndToEnd(c, n, rounds / 2, gpu, 1) / 2;
    e2e_host_4 += EndToEnd(c, n, rounds / 2, Placement::Host(), 4) / 2;
    e2e_gpu_4 += EndToEnd(c, n, rounds / 2, gpu, 4) / 2;
  }

  std::printf("tp-gpu-bench on %s (%s), %d x 4 MiB blocks, %d rounds\n",
              prop.name, c.device_runtime().name().c_str(), n, rounds);
  std::printf(
      "\n(a) SDK host cache <-> GPU vs cudaMemcpy from page-locked "
      "memory (goal >= 0.8)\n");
  std::printf("%-16s %-12s %-14s %-6s %s\n", "direction", "SDK GiB/s",
              "cudaMemcpy", "ratio", "goal");
  for (auto [name, sdk_v, ref] : {std::tuple<const char*, double, double>{
                                      "host -> GPU", sdk_h2d, plain_h2d},
                                  {"GPU -> host", sdk_d2h, plain_d2h}}) {
    const double ratio = sdk_v / ref;
    std::printf("%-16s %-12.2f %-14.2f %-6.2f %s\n", name, sdk_v, ref, ratio,
                ratio >= 0.8 ? "met" : "MISSED");
  }
  std::printf("(pageable cudaMemcpy host -> GPU for reference: %.2f GiB/s)\n",
              pageable_h2d);
  std::printf(
      "\n(b) Access of 4 MiB blocks from tensorpagerd on loopback: GPU "
      "placement vs host placement (goal >= 0.9)\n");
  std::printf("%-8s %-14s %-15s %-6s %s\n", "streams", "GPU GiB/s",
              "host GiB/s", "ratio", "goal");
  for (auto [streams, g, h] :
       {std::tuple<int, double, double>{1, e2e_gpu_1, e2e_host_1},
        {4, e2e_gpu_4, e2e_host_4}}) {
    const double ratio = g / h;
    std::printf("%-8d %-14.2f %-15.2f %-6.2f %s\n", streams, g, h, ratio,
                ratio >= 0.9 ? "met" : "MISSED");
  }
  return 0;
}

}  // namespace
}  // namespace tensorpager::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tensorpager::bench::Main();
}
