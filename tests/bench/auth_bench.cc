// tp-auth-bench: what authentication and TLS cost the C++ SDK over TCP,
// all figures from one run. Starts tensorpagerd three times on the same
// data dir: plaintext with no tenants; with a tenants file (every call
// carries a bearer token the server checks); with the tenants file and
// TLS (certificates made with the openssl command). Each time it writes
// and reads 4 MiB blocks (shared memory off, so every byte crosses the
// socket) with 1 and 4 streams, and prints GiB/s and the ratio to
// plaintext. The shared-memory path authenticates once, at attach, and is
// not measured here. Exit 77 when openssl is missing.
//
//   tp-auth-bench --data_dir=DIR [--seconds=1] [--streams=1,4]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/auth/tenant_table.h"
#include "storage/encryption.h"
#include "tensorpager/client.h"
#include "tests/testing/server_process.h"
#include "tests/testing/test_pki.h"

ABSL_FLAG(std::string, data_dir, "", "Directory for the servers' data");
ABSL_FLAG(double, seconds, 1.0, "Measuring time per case");
ABSL_FLAG(std::string, streams, "1,4", "Concurrent streams");
ABSL_FLAG(int64_t, size, 4 << 20, "Block bytes");

namespace tensorpager {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kBlocksPerStream = 16;

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "tp-auth-bench: %s: %s\n", what.c_str(),
               s.ToString().c_str());
  std::exit(1);
}

// Runs `op(stream, i)` on `streams` threads for `seconds`; GiB/s.
double Timed(int streams, double seconds, uint64_t bytes_per_op,
             const std::function<absl::Status(int, uint64_t)>& op) {
  std::atomic<uint64_t> ops{0};
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(seconds));
  for (int t = 0; t < streams; ++t) {
    threads.emplace_back([&, t] {
      uint64_t n = 0;
      for (uint64_t i = 0; Clock::now() < end; ++i, ++n) {
        if (absl::Status s = op(t, i); !s.ok()) Die("operation", s);
      }
      ops.fetch_add(n);
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  return ops.load() * static_cast<double>(bytes_per_op) / elapsed /
         (1ull << 30);
}

struct Setup {
  std::string name;
  std::vector<std::string> flags;
  ClientOptions options;
};

// GiB/s of writes and reads for each stream count.
std::vector<std::pair<double, double>> Measure(
    const Setup& setup, const std::string& data_dir,
    const std::vector<int>& streams) {
  std::filesystem::remove_all(data_dir);
  testing::ServerProcess::Options so;
  so.data_dir = data_dir;
  so.flags = setup.flags;
  so.flags.push_back("--ram_budget=1GiB");
  auto server = testing::ServerProcess::Start(so);
  if (!server.ok()) Die("start " + setup.name, server.status());
  ClientOptions o = setup.options;
  o.shared_memory_bytes = 0;
  o.tune_allocator = true;
  o.log_sink = [](absl::string_view) {};
  auto client = Client::Connect((*server)->target(), o);
  if (!client.ok()) Die("connect", client.status());
  Client& c = **client;
  if (absl::Status s = c.WaitUntilReady(absl::Seconds(30)); !s.ok()) {
    Die("ready (" + setup.name + ")", s);
  }
  const uint64_t size = static_cast<uint64_t>(absl::GetFlag(FLAGS_size));
  const std::string value(size, 'v');
  const int most = *std::max_element(streams.begin(), streams.end());
  for (int b = 0; b < most * kBlocksPerStream; ++b) {
    BlockSpec spec(BlockName("a", absl::StrCat("b", b)), size);
    if (auto r = c.Register(spec); !r.ok()) Die("register", r.status());
    if (auto w = c.Write(spec.name, value); !w.ok()) Die("write", w.status());
  }
  std::vector<std::pair<double, double>> out;
  const double seconds = absl::GetFlag(FLAGS_seconds);
  for (int n : streams) {
    auto name = [](int t, uint64_t i) {
      return BlockName(
          "a", absl::StrCat("b", t * kBlocksPerStream + i % kBlocksPerStream));
    };
    const double w = Timed(n, seconds, size, [&](int t, uint64_t i) {
      return c.Write(name(t, i), value).status();
    });
    std::vector<std::string> buffers(n, std::string(size, '\0'));
    const double r = Timed(n, seconds, size, [&](int t, uint64_t i) {
      return c
          .ReadInto(name(t, i),
                    absl::MakeSpan(
                        reinterpret_cast<std::byte*>(buffers[t].data()), size))
          .status();
    });
    out.emplace_back(w, r);
  }
  return out;
}

// Seconds one core takes to encrypt and then decrypt `size` bytes with
// AES-256-GCM (OpenSSL, as TLS uses it): what a TLS call adds to the
// critical path of a single stream, one side sealing and the other
// opening every byte.
double AesGcmSecondsPerCall(uint64_t size) {
  storage::KeyRing::Key key{"bench", {}};
  const std::string nonce = storage::NewNonce();
  std::vector<std::byte> plain(size, std::byte{7});
  std::vector<std::byte> sealed(size + storage::kGcmTagBytes);
  int rounds = 0;
  const Clock::time_point start = Clock::now();
  Clock::time_point now = start;
  while (now - start < std::chrono::milliseconds(500) || rounds < 3) {
    if (!storage::Seal(key, nonce, {}, plain, absl::MakeSpan(sealed)).ok() ||
        !storage::Open(key, nonce, {}, sealed, absl::MakeSpan(plain)).ok()) {
      Die("AES-GCM reference", absl::InternalError("seal/open failed"));
    }
    ++rounds;
    now = Clock::now();
  }
  return std::chrono::duration<double>(now - start).count() / rounds;
}

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_data_dir);
  if (dir.empty()) {
    std::fprintf(stderr, "tp-auth-bench: --data_dir is required\n");
    return 2;
  }
  if (!testing::TestPki::Available()) {
    std::printf(
        "SKIPPED: the openssl command is missing (apt-get install "
        "openssl); it makes the TLS certificates\n");
    return 77;
  }
  std::vector<int> streams;
  for (absl::string_view s :
       absl::StrSplit(absl::GetFlag(FLAGS_streams), ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n <= 0) Die("--streams", {});
    streams.push_back(n);
  }
  const std::string pki = dir + "/pki";
  std::filesystem::create_directories(pki);
  const testing::TestPki certs(pki);
  if (!certs.MakeCa("ca") || !certs.MakeCert("s", "ca", "IP:127.0.0.1")) {
    Die("openssl could not make the certificates", absl::InternalError(pki));
  }
  const std::string tenants = pki + "/tenants.yaml";
  std::ofstream(tenants) << "tenants:\n  - {name: a, namespaces: [a], "
                            "tokens: [\""
                         << server::auth::TokenHash("bench-token") << "\"]}\n";

  std::vector<Setup> setups(3);
  setups[0].name = "plaintext, no authentication";
  setups[1].name = "bearer token";
  setups[1].flags = {"--tenants_file=" + tenants};
  setups[1].options.token = "bench-token";
  setups[2].name = "TLS + bearer token";
  setups[2].flags = {"--tenants_file=" + tenants,
                     "--tls_cert_file=" + pki + "/s.crt",
                     "--tls_key_file=" + pki + "/s.key"};
  setups[2].options.token = "bench-token";
  setups[2].options.tls_ca_file = pki + "/ca.crt";

  std::vector<std::vector<std::pair<double, double>>> results;
  for (const Setup& s : setups) {
    results.push_back(Measure(s, dir + "/data", streams));
  }
  std::printf("%-30s %-8s %8s %8s %10s %10s\n", "server", "streams", "write",
              "read", "write/pt", "read/pt");
  for (size_t s = 0; s < setups.size(); ++s) {
    for (size_t k = 0; k < streams.size(); ++k) {
      const auto& [w, r] = results[s][k];
      const auto& [w0, r0] = results[0][k];
      std::printf("%-30s %-8d %8.2f %8.2f %10.2f %10.2f\n",
                  setups[s].name.c_str(), streams[k], w, r, w / w0, r / r0);
    }
  }
  std::printf(
      "GiB/s of %lld-byte blocks over TCP (shared memory off); "
      "ratios to plaintext in this run\n",
      static_cast<long long>(absl::GetFlag(FLAGS_size)));
  // The bounds: a single stream's call takes at least its plaintext time
  // plus one encryption and one decryption of the block (one after the
  // other), or plus one of them (were the two sides' work to overlap
  // completely, record by record).
  const uint64_t size = static_cast<uint64_t>(absl::GetFlag(FLAGS_size));
  const double crypto = AesGcmSecondsPerCall(size);
  const double gib = static_cast<double>(size) / (1 << 30);
  for (size_t k = 0; k < streams.size(); ++k) {
    if (streams[k] != 1) continue;
    const auto& [w0, r0] = results[0][k];
    auto bound = [&](double rate, double added) {
      const double plain = gib / rate;
      return plain / (plain + added);
    };
    std::printf(
        "AES-256-GCM reference, one core: seal + open of one block takes "
        "%.2f ms (%.2f GiB/s each way); so at 1 stream TLS can reach at "
        "most %.2f (write) / %.2f (read) of plaintext on this machine, or "
        "%.2f / %.2f were sealing and opening to overlap completely\n",
        crypto * 1e3, 2 * gib / crypto, bound(w0, crypto), bound(r0, crypto),
        bound(w0, crypto / 2), bound(r0, crypto / 2));
  }
  std::filesystem::remove_all(dir + "/data");
  std::filesystem::remove_all(pki);
  return 0;
}

}  // namespace
}  // namespace tensorpager

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tensorpager::Main();
}
