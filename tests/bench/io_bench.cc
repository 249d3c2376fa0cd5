// tp-io-bench: drives an I/O engine the way the NVMe tier does, for
// io_bench.sh to compare against fio on the same directory.
//
//   tp-io-bench --dir=DIR --engine=io_uring|threads --bs=BYTES --qd=N
//               --size=BYTES [--callers=N] [--request=BYTES]
//     Writes a fresh file of --size bytes sequentially, syncs, then reads it
//     back. --callers threads (default --qd) each issue requests of
//     --request bytes (default --bs); the engine splits them into --bs units
//     with at most --qd in flight. Prints one RESULT line per direction.
//   tp-io-bench --dir=DIR --engine=... --latency --size=BYTES [--count=N]
//     Times single 1 MiB reads at random aligned offsets of the file written
//     by a previous run (QD1, like a swap-in). Prints p50/p99.
//   tp-io-bench --dir=DIR --store --bs=BYTES --qd=N --size=BYTES
//               [--codec=none|lz4|zstd] [--batch=N] [--encrypt]
//     The whole swap path of tensorpagerd's BlockStore: --size bytes of bf16
//     blocks of --bs bytes written to the RAM tier, swapped out with SwapOut
//     calls of --batch blocks (default 128 MiB worth, as one eviction of the
//     policy thread would pick) (--qd of them compressed and written side by
//     side, one group commit per call: data sync + RocksDB sync), then
//     swapped back in with SwapIn calls of --batch blocks (checksums
//     verified, decompressed). GiB/s counts logical bytes. --encrypt: the
//     NVMe tier encrypted with AES-256-GCM (--encryption_key_file).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/base/aligned_buffer.h"
#include "storage/base/allocator_tuning.h"
#include "storage/block_store.h"
#include "storage/encryption.h"
#include "storage/io_engine.h"
#include "tests/testing/tensor_bytes.h"

namespace tensorpager::storage {
namespace {

constexpr uint64_t kLatencyReadBytes = 1ull << 20;

struct BenchOptions {
  std::string dir;
  IoEngineKind kind = IoEngineKind::kIoUring;
  uint64_t bs = 4ull << 20;
  uint32_t qd = 8;
  uint64_t size = 1ull << 30;
  uint32_t callers = 0;  // 0: qd
  uint64_t request = 0;  // 0: bs
  bool latency = false;
  uint32_t count = 300;
  bool store = false;
  Codec codec = Codec::kNone;
  uint32_t batch = 0;  // 0: 128 MiB worth of blocks per call
  bool encrypt = false;
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "tp-io-bench: %s\nusage: tp-io-bench --dir=DIR "
               "[--engine=io_uring|threads] [--bs=BYTES] [--qd=N] "
               "[--size=BYTES] [--callers=N] [--request=BYTES] [--latency] "
               "[--count=N] [--store [--codec=none|lz4|zstd] [--batch=N]]\n",
               why);
  return 2;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "tp-io-bench: %s\n", status.ToString().c_str());
  return 1;
}

bool ParseArgs(int argc, char** argv, BenchOptions* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--latency" || arg == "--store") {
      (arg == "--latency" ? o->latency : o->store) = true;
      continue;
    }
    if (arg == "--encrypt") {
      o->encrypt = true;
      continue;
    }
    const size_t eq = arg.find('=');
    if (!arg.starts_with("--") || eq == std::string_view::npos) return false;
    const std::string key(arg.substr(2, eq - 2));
    const std::string value(arg.substr(eq + 1));
    bool ok = true;
    if (key == "dir") {
      o->dir = value;
    } else if (key == "engine") {
      ok = ParseIoEngineKind(value, &o->kind);
    } else if (key == "bs") {
      ok = absl::SimpleAtoi(value, &o->bs);
    } else if (key == "qd") {
      ok = absl::SimpleAtoi(value, &o->qd);
    } else if (key == "size") {
      ok = absl::SimpleAtoi(value, &o->size);
    } else if (key == "callers") {
      ok = absl::SimpleAtoi(value, &o->callers);
    } else if (key == "request") {
      ok = absl::SimpleAtoi(value, &o->request);
    } else if (key == "count") {
      ok = absl::SimpleAtoi(value, &o->count);
    } else if (key == "codec") {
      ok = ParseCodec(value, &o->codec);
    } else if (key == "batch") {
      ok = absl::SimpleAtoi(value, &o->batch);
    } else {
      ok = false;
    }
    if (!ok) return false;
  }
  if (o->callers == 0) o->callers = o->qd;
  if (o->batch == 0) {
    o->batch =
        static_cast<uint32_t>(std::max<uint64_t>(1, (128ull << 20) / o->bs));
  }
  if (o->request == 0) o->request = o->bs;
  return !o->dir.empty() && o->qd > 0 && o->bs > 0 &&
         o->request % base::kIoAlignment == 0 && o->size >= o->request;
}

absl::StatusOr<std::unique_ptr<IoEngine>> Open(const BenchOptions& o) {
  IoEngineOptions io;
  io.path = o.dir + "/tp-io-bench.dat";
  io.kind = o.kind;
  io.io_unit_bytes = o.bs;
  io.queue_depth = o.qd;
  return OpenIoEngine(io);
}

// Moves the whole file with `callers` threads claiming consecutive requests.
absl::StatusOr<absl::Duration> Pass(IoEngine& engine, const BenchOptions& o,
                                    bool write) {
  const uint64_t requests = o.size / o.request;
  std::atomic<uint64_t> next{0};
  std::vector<absl::Status> errors(o.callers);
  std::vector<base::AlignedBuffer> buffers;
  for (uint32_t c = 0; c < o.callers; ++c) {
    base::AlignedBuffer b(o.request);
    if (!b.ok()) return absl::ResourceExhaustedError("out of memory");
    // Non-zero, non-repeating bytes, so nothing below can shortcut zeros.
    for (uint64_t i = 0; i < b.size(); i += 8) {
      const uint64_t v = (i + 1) * 0x9E3779B97F4A7C15ull + c;
      std::copy_n(reinterpret_cast<const std::byte*>(&v), 8, b.data() + i);
    }
    buffers.push_back(std::move(b));
  }
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (uint32_t c = 0; c < o.callers; ++c) {
    threads.emplace_back([&, c] {
      for (uint64_t r = next++; r < requests; r = next++) {
        const uint64_t at = r * o.request;
        absl::Status s = write ? engine.Write(at, buffers[c].span())
                               : engine.Read(at, buffers[c].span());
        if (!s.ok()) {
          errors[c] = s;
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  if (write) {
    if (absl::Status s = engine.Sync(); !s.ok()) return s;
  }
  const absl::Duration elapsed = absl::Now() - start;
  for (const absl::Status& s : errors) {
    if (!s.ok()) return s;
  }
  return elapsed;
}

int RunThroughput(const BenchOptions& o) {
  std::filesystem::remove(o.dir + "/tp-io-bench.dat");
  absl::StatusOr<std::unique_ptr<IoEngine>> engine = Open(o);
  if (!engine.ok()) return Fail(engine.status());
  // Preallocated before timing, as fio lays out its file before it starts.
  if (absl::Status s = (*engine)->Reserve(o.size); !s.ok()) {
    return Fail(s);
  }
  for (const bool write : {true, false}) {
    absl::StatusOr<absl::Duration> d = Pass(**engine, o, write);
    if (!d.ok()) return Fail(d.status());
    const double seconds = absl::ToDoubleSeconds(*d);
    const uint64_t bytes = o.size / o.request * o.request;
    std::printf(
        "RESULT op=%s engine=%s bs=%llu qd=%u callers=%u request=%llu "
        "bytes=%llu seconds=%.4f gib_per_s=%.4f\n",
        write ? "write" : "read", std::string((*engine)->name()).c_str(),
        static_cast<unsigned long long>(o.bs), o.qd, o.callers,
        static_cast<unsigned long long>(o.request),
        static_cast<unsigned long long>(bytes), seconds,
        static_cast<double>(bytes) / seconds / (1ull << 30));
  }
  return 0;
}

int RunLatency(const BenchOptions& o) {
  BenchOptions one = o;
  one.qd = std::max<uint32_t>(o.qd, 1);
  absl::StatusOr<std::unique_ptr<IoEngine>> engine = Open(one);
  if (!engine.ok()) return Fail(engine.status());
  const uint64_t slots = (*engine)->file_size() / kLatencyReadBytes;
  if (slots == 0) {
    return Fail(absl::FailedPreconditionError(
        "the file is empty: run a throughput pass first"));
  }
  base::AlignedBuffer buf(kLatencyReadBytes);
  std::mt19937_64 rng(42);
  std::vector<double> micros;
  micros.reserve(o.count);
  for (uint32_t i = 0; i < o.count; ++i) {
    const uint64_t at = rng() % slots * kLatencyReadBytes;
    const absl::Time start = absl::Now();
    if (absl::Status s = (*engine)->Read(at, buf.span()); !s.ok()) {
      return Fail(s);
    }
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  std::sort(micros.begin(), micros.end());
  const auto pct = [&](double p) {
    return micros[std::min<size_t>(micros.size() - 1,
                                   static_cast<size_t>(p * micros.size()))];
  };
  std::printf(
      "RESULT op=latency engine=%s bytes=%llu count=%u p50_us=%.1f "
      "p99_us=%.1f\n",
      std::string((*engine)->name()).c_str(),
      static_cast<unsigned long long>(kLatencyReadBytes), o.count, pct(0.50),
      pct(0.99));
  return 0;
}

void PrintStoreResult(const char* op, const BenchOptions& o,
                      const std::string& engine, uint64_t bytes,
                      absl::Duration d, double ratio) {
  const double seconds = absl::ToDoubleSeconds(d);
  std::printf(
      "RESULT op=%s engine=%s bs=%llu qd=%u batch=%u bytes=%llu "
      "seconds=%.4f gib_per_s=%.4f compression_ratio=%.3f\n",
      op, engine.c_str(), static_cast<unsigned long long>(o.bs), o.qd, o.batch,
      static_cast<unsigned long long>(bytes), seconds,
      static_cast<double>(bytes) / seconds / (1ull << 30), ratio);
}

int RunStore(const BenchOptions& o) {
  const std::string dir = o.dir + "/tp-store-bench";
  std::filesystem::remove_all(dir);
  const uint64_t blocks = o.size / o.bs;
  BlockStoreOptions options;
  options.data_dir = dir;
  options.ram_budget_bytes = 2 * blocks * o.bs + (64ull << 20);
  options.max_swap_bytes = base::AlignUp(blocks * o.bs) + (64ull << 20);
  options.max_block_bytes = o.bs;
  options.io.kind = o.kind;
  options.io.queue_depth = o.qd;
  options.max_concurrent_swaps = o.qd;
  options.prefetch_depth = 0;
  options.compression.codec = o.codec;
  if (o.encrypt) {
    absl::StatusOr<std::shared_ptr<const KeyRing>> keys = KeyRing::Parse(
        "bench 000102030405060708090a0b0c0d0e0f"
        "101112131415161718191a1b1c1d1e1f",
        "io_bench");
    if (!keys.ok()) return Fail(keys.status());
    options.encryption_keys = *std::move(keys);
  }
  absl::StatusOr<std::unique_ptr<BlockStore>> store = BlockStore::Open(options);
  if (!store.ok()) return Fail(store.status());
  const std::string tensor = testing::Bf16TensorBytes(o.bs, 1);
  std::vector<BlockKey> keys;
  for (uint64_t b = 0; b < blocks; ++b) {
    BlockKey key{"bench", absl::StrCat("b", b)};
    BlockAttributes attrs;
    attrs.size_bytes = o.bs;
    attrs.dtype = DType::kBFloat16;
    if (auto r = (*store)->Register(key, attrs); !r.ok())
      return Fail(r.status());
    base::AlignedBuffer data(o.bs);
    std::memcpy(data.data(), tensor.data(), o.bs);
    std::memcpy(data.data(), &b, sizeof(b));  // every block differs
    if (auto w = (*store)->Write(key, 0, std::move(data), {}); !w.ok()) {
      return Fail(w.status());
    }
    keys.push_back(std::move(key));
  }
  const std::string engine =
      absl::StrCat("store+", (*store)->Stats().io_engine, "+",
                   CodecName(o.codec), o.encrypt ? "+aes256gcm" : "");
  for (const bool out : {true, false}) {
    const absl::Time start = absl::Now();
    for (size_t i = 0; i < keys.size(); i += o.batch) {
      const std::vector<BlockKey> batch(
          keys.begin() + i,
          keys.begin() + std::min<size_t>(keys.size(), i + o.batch));
      absl::StatusOr<SwapResult> r =
          out ? (*store)->SwapOut(batch) : (*store)->SwapIn(batch);
      if (!r.ok()) return Fail(r.status());
      if (r->moved.size() != batch.size()) {
        return Fail(absl::InternalError("a block did not move"));
      }
    }
    const absl::Duration elapsed = absl::Now() - start;
    PrintStoreResult(out ? "write" : "read", o, engine, blocks * o.bs, elapsed,
                     (*store)->Stats().compression_ratio());
  }
  store->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace tensorpager::storage

int main(int argc, char** argv) {
  // Malloc behaves as in tensorpagerd: the codecs' scratch buffers would
  // otherwise be faulted in afresh on every call.
  tensorpager::base::TuneProcessAllocator();
  tensorpager::storage::BenchOptions options;
  if (!tensorpager::storage::ParseArgs(argc, argv, &options)) {
    return tensorpager::storage::Usage("bad arguments");
  }
  if (options.store) return tensorpager::storage::RunStore(options);
  return options.latency ? tensorpager::storage::RunLatency(options)
                         : tensorpager::storage::RunThroughput(options);
}
