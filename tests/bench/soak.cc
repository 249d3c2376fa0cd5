// soak: 64 concurrent clients against a real tensorpagerd for minutes,
// with every kind of call the service has (see soak_client.h), server
// restarts and bad inputs. Fails (exit 1) on any unexpected answer (see
// CallRecorder in soak_stats.h), a crash, a hang, a shutdown that does not
// exit cleanly, shared-memory segments left attached beyond the SDK
// clients' own arenas, or server RSS that grows after warm-up.
//
// Restarts and RSS: VmRSS (and its parts) of the server is sampled every
// second. A restart starts a new process whose memory fills again, so the
// restarts (SIGTERM, then the same data dir and port) happen only in a
// final phase (the last 20% of the run, --restart_phase) that the RSS rule
// leaves out. The rule, on the first server's lifetime: the first 20% of
// the run (--warmup_fraction) is warm-up; of the samples after it, the
// mean of the last fifth must stay within 5% (--rss_tolerance) of the
// mean of the first fifth (one sample swings by a few percent with the
// buffers in flight that second). The gated figure is VmRSS less RssShmem: the
// shared-memory segments clients attach are their memfds, mapped into the
// server and counted in its VmRSS page by page as transfers touch them, and
// they go when a client detaches; VmRSS itself is reported next to it. The
// restarted servers' RSS is reported, not judged (their lifetimes are too
// short for a warm-up of their own).
//
//   soak --seconds=600            (tests/bench/soak.sh)
//   soak --seconds=60 --rss_tolerance=0.2   (ctest: soak_60s, see
//                                            tests/bench/CMakeLists.txt)
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tensorpager/client.h"
#include "tests/bench/soak_client.h"
#include "tests/bench/soak_report.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(int, seconds, 600, "Length of the run");
ABSL_FLAG(int, clients, 64, "Concurrent clients, each with its own channel");
ABSL_FLAG(int, sdk_clients, 8,
          "C++ SDK clients (Client objects), each shared by clients/N of "
          "the clients");
ABSL_FLAG(int, ids_per_client, 32, "Block ids each client cycles over");
ABSL_FLAG(uint64_t, min_block_bytes, 4096, "Smallest block");
ABSL_FLAG(uint64_t, max_block_bytes, 1 << 20, "Largest block");
ABSL_FLAG(std::string, ram_budget, "256MiB", "The server's --ram_budget");
ABSL_FLAG(std::vector<std::string>, server_flags, {},
          "More tensorpagerd flags, comma-separated");
ABSL_FLAG(int, restarts, -1,
          "Server restarts, evenly spaced over the restart phase; -1: one "
          "per 200 s of run, at least one");
ABSL_FLAG(double, restart_phase, 0.2,
          "Share of the run, at its end, in which the restarts happen (left "
          "out of the RSS rule)");
ABSL_FLAG(double, warmup_fraction, 0.2,
          "Share of the run that is warm-up for the RSS rule");
ABSL_FLAG(double, rss_tolerance, 0.05,
          "Largest RSS after warm-up over the first one after warm-up");
ABSL_FLAG(double, max_transient_fraction, 0.05,
          "Most transient errors (limits, restarts) per valid call");
ABSL_FLAG(int, deadline_seconds, 120,
          "Deadline of every call; a client making no progress for this "
          "long plus 60 s is a hang");
ABSL_FLAG(std::string, rss_csv, "", "Also write the RSS samples here");
ABSL_FLAG(std::vector<std::string>, server_wrapper, {},
          "Command prefix for tensorpagerd, comma-separated (e.g. env,"
          "LD_PRELOAD=... to compare allocators)");

namespace tensorpager::soak {
namespace {

// /proc/<pid>/status: memory in KiB, and whether the process is a zombie.
struct ProcStatus {
  bool alive = false;
  uint64_t vm_rss = 0, rss_anon = 0, rss_file = 0, rss_shmem = 0;
  uint64_t threads = 0;
  uint64_t heap = 0;  // Rss of the [heap] mapping (glibc's main arena)
};

ProcStatus ReadProc(pid_t pid) {
  ProcStatus p;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 2) continue;
    uint64_t v = 0;
    (void)absl::SimpleAtoi(f[1], &v);
    if (f[0] == "State:") p.alive = f[1] != "Z" && f[1] != "X";
    if (f[0] == "VmRSS:") p.vm_rss = v;
    if (f[0] == "RssAnon:") p.rss_anon = v;
    if (f[0] == "RssFile:") p.rss_file = v;
    if (f[0] == "RssShmem:") p.rss_shmem = v;
    if (f[0] == "Threads:") p.threads = v;
  }
  std::ifstream smaps(absl::StrCat("/proc/", pid, "/smaps"));
  bool in_heap = false;
  while (std::getline(smaps, line)) {
    if (absl::EndsWith(line, "[heap]")) {
      in_heap = true;
    } else if (in_heap && absl::StartsWith(line, "Rss:")) {
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() >= 2) (void)absl::SimpleAtoi(f[1], &p.heap);
      break;
    }
  }
  return p;
}

// Whether the server maps this process's sealed memfds (same user, same
// PID namespace); where it does not, the clients leave segments alone.
std::string SharedMemoryUnavailable(const std::string& target) {
  auto stub = v1::TensorPager::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  const int fd = ::memfd_create("probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return "memfd_create failed";
  std::string why;
  if (::ftruncate(fd, 8192) != 0 ||
      ::pwrite(fd, "soak-probe-token", 16, 0) != 16 ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    why = "cannot prepare a sealed memfd";
  } else {
    v1::AttachSharedMemoryRequest req;
    req.set_pid(::getpid());
    req.set_fd(fd);
    req.set_size_bytes(8192);
    req.set_token("soak-probe-token");
    v1::AttachSharedMemoryResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    const grpc::Status s = stub->AttachSharedMemory(&ctx, req, &resp);
    if (s.ok()) {
      v1::DetachSharedMemoryRequest d;
      d.set_segment_id(resp.segment_id());
      d.set_capability(resp.capability());
      v1::DetachSharedMemoryResponse done;
      grpc::ClientContext detach_ctx;
      detach_ctx.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::seconds(30));
      // A probe segment left behind shows in the segment count checked at
      // the end of the run.
      static_cast<void>(stub->DetachSharedMemory(&detach_ctx, d, &done));
    } else {
      why = s.error_message();
    }
  }
  ::close(fd);
  return why;
}

int Main() {
  const int seconds = absl::GetFlag(FLAGS_seconds);
  const int n_clients = absl::GetFlag(FLAGS_clients);
  const int n_sdk = std::clamp(absl::GetFlag(FLAGS_sdk_clients), 1, n_clients);
  int restarts = absl::GetFlag(FLAGS_restarts);
  if (restarts < 0) restarts = std::max(1, seconds / 200);
  const auto deadline =
      std::chrono::seconds(absl::GetFlag(FLAGS_deadline_seconds));

  SoakShared shared;
  shared.ids_per_client = absl::GetFlag(FLAGS_ids_per_client);
  shared.min_block_bytes = absl::GetFlag(FLAGS_min_block_bytes);
  shared.max_block_bytes = absl::GetFlag(FLAGS_max_block_bytes);
  shared.deadline = deadline;

  // Limits raised to what this many clients of one user need, so the
  // server's caps (tested by abuse_test) do not turn valid calls away.
  testing::ServerProcess::Options options;
  options.flags = {
      "--ram_budget=" + absl::GetFlag(FLAGS_ram_budget),
      absl::StrCat("--max_block_size=", shared.max_block_bytes),
      "--max_data_streams=256",
      "--max_data_streams_per_client=256",
      "--max_watch_streams=128",
      "--max_watch_streams_per_client=128",
      "--max_rpc_threads=512",
      "--max_segments_per_client=256",
      "--max_rings_per_client=16",
  };
  for (const std::string& f : absl::GetFlag(FLAGS_server_flags)) {
    options.flags.push_back(f);
  }
  options.wrapper = absl::GetFlag(FLAGS_server_wrapper);
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> started =
      testing::ServerProcess::Start(options);
  if (!started.ok()) {
    std::fprintf(stderr, "soak: %s\n", started.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<testing::ServerProcess> server = *std::move(started);
  shared.target = server->target();
  if (std::string why = SharedMemoryUnavailable(shared.target); !why.empty()) {
    std::printf("soak: no raw shared-memory segments here: %s\n", why.c_str());
    shared.shared_memory = false;
  }

  SdkLog sdk_log;
  std::vector<std::unique_ptr<Client>> sdks;
  for (int i = 0; i < n_sdk; ++i) {
    ClientOptions o;
    o.client_id = absl::StrCat("soak-sdk-", i);
    o.timeout = absl::FromChrono(deadline);
    o.connections = 2;
    o.cache.host_budget_bytes = 32ull << 20;
    o.shared_memory_bytes = 16ull << 20;
    o.log_sink = sdk_log.Sink();
    absl::StatusOr<std::unique_ptr<Client>> c =
        Client::Connect(shared.target, o);
    absl::Status s =
        c.ok() ? (*c)->WaitUntilReady(absl::Seconds(60)) : c.status();
    if (!s.ok()) {
      std::fprintf(stderr, "soak: SDK client: %s\n", s.ToString().c_str());
      return 1;
    }
    sdks.push_back(*std::move(c));
  }

  std::printf(
      "soak: %d s, %d clients (%d SDK clients), %d ids each, blocks %llu.."
      "%llu bytes, %d restart(s), server %s\n",
      seconds, n_clients, n_sdk, shared.ids_per_client,
      static_cast<unsigned long long>(shared.min_block_bytes),
      static_cast<unsigned long long>(shared.max_block_bytes), restarts,
      absl::StrJoin(options.flags, " ").c_str());
  std::fflush(stdout);

  std::vector<std::unique_ptr<SoakClient>> clients;
  for (int i = 0; i < n_clients; ++i) {
    clients.push_back(
        std::make_unique<SoakClient>(i, &shared, sdks[i % n_sdk].get()));
  }
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& c : clients) threads.emplace_back([&c] { c->Run(); });

  Report report(&shared.stats);
  std::vector<std::string> failures;
  const auto run = std::chrono::seconds(seconds);
  const double phase = std::clamp(absl::GetFlag(FLAGS_restart_phase), 0.0, 0.9);
  const double phase_start = seconds * (1 - phase);
  auto restart_at = [&](int k) {  // seconds into the run
    return phase_start + k * seconds * phase / std::max(restarts, 1);
  };
  int restarts_done = 0;
  uint64_t life = shared.life.lifetime();
  report.BeginLifetime(life, 0);
  Clock::time_point next_sample = start;
  Clock::time_point next_line = start + std::chrono::seconds(10);
  while (Clock::now() - start < run && failures.empty()) {
    std::this_thread::sleep_until(next_sample);
    next_sample += std::chrono::seconds(1);
    const Clock::time_point now = Clock::now();
    const double t = std::chrono::duration<double>(now - start).count();
    const ProcStatus p = ReadProc(server->pid());
    if (!p.alive) {
      failures.push_back(
          absl::StrCat("tensorpagerd died at ", t, " s:\n", server->Log()));
      break;
    }
    report.Sample(life, t, p.vm_rss, p.rss_anon, p.rss_file, p.rss_shmem,
                  p.heap, p.threads);
    for (const auto& c : clients) {
      if (now - c->last_progress() > deadline + std::chrono::seconds(60)) {
        failures.push_back(absl::StrCat(
            "hang: client ", c->name(), " has been in ", RpcName(c->current()),
            " for ",
            std::chrono::duration_cast<std::chrono::seconds>(now -
                                                             c->last_progress())
                .count(),
            " s\n", server->Log()));
      }
    }
    if (now >= next_line) {
      next_line += std::chrono::seconds(10);
      report.ProgressLine(t, p.vm_rss, p.rss_shmem);
    }
    if (restarts_done < restarts && t >= restart_at(restarts_done)) {
      std::printf("soak: %.0f s: restarting tensorpagerd (SIGTERM)\n", t);
      std::fflush(stdout);
      shared.life.BeginRestart();
      const absl::Status s = server->Restart(/*same_port=*/true);
      shared.life.EndRestart();
      ++restarts_done;
      if (!s.ok()) {
        failures.push_back(
            absl::StrCat("restart ", restarts_done, ": ", s.ToString()));
        break;
      }
      life = shared.life.lifetime();
      report.BeginLifetime(
          life, std::chrono::duration<double>(Clock::now() - start).count());
      std::printf("soak: %.1f s: tensorpagerd is back (pid %d)\n",
                  std::chrono::duration<double>(Clock::now() - start).count(),
                  server->pid());
      std::fflush(stdout);
      next_sample = Clock::now() + std::chrono::seconds(1);
    }
  }
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  shared.stop = true;
  // The clients end within one deadline; past that, this is a hang.
  std::atomic<bool> joined{false};
  std::thread watchdog([&] {
    const Clock::time_point limit =
        Clock::now() + deadline + std::chrono::seconds(60);
    while (!joined.load() && Clock::now() < limit) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!joined.load()) {
      std::fprintf(stderr, "soak: clients did not stop; hang\n%s\n",
                   server->Log().c_str());
      std::fflush(stderr);
      std::_Exit(2);
    }
  });
  for (std::thread& t : threads) t.join();
  joined = true;
  watchdog.join();

  if (failures.empty()) {
    // Still serving, and a clean exit on SIGTERM.
    auto stub = v1::TensorPager::NewStub(
        grpc::CreateChannel(shared.target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(60));
    v1::StatusRequest req;
    v1::StatusResponse resp;
    if (grpc::Status s = stub->Status(&ctx, req, &resp); !s.ok()) {
      failures.push_back("Status after the run: " + s.error_message());
    } else {
      report.FinalStatus(resp);
      // The clients detached their segments: what is left are the SDK
      // clients' arenas, one each (none where the path is off). More are
      // segments nobody will detach (and their ring threads).
      if (resp.shared_memory_segments() > static_cast<uint32_t>(n_sdk) ||
          resp.shared_memory_rings() > static_cast<uint32_t>(n_sdk)) {
        failures.push_back(absl::StrCat(
            "after the run the server holds ", resp.shared_memory_segments(),
            " shared-memory segments (", resp.shared_memory_rings(),
            " rings) for ", n_sdk, " SDK clients of one arena each"));
      }
    }
  }
  uint64_t shared_transfers = 0, ring_transfers = 0, shared_bytes = 0;
  for (auto& c : sdks) {
    const CacheStats st = c->LocalStats();
    shared_transfers += st.shared_memory_transfers;
    ring_transfers += st.shared_memory_ring_transfers;
    shared_bytes += st.shared_memory_bytes;
  }
  report.Note(absl::StrFormat(
      "SDK shared-memory path: %d transfers (%d through the request ring), "
      "%.1f MiB",
      shared_transfers, ring_transfers, shared_bytes / 1048576.0));
  for (auto& c : sdks) {
    if (absl::Status s = c->Close(); !s.ok()) {
      failures.push_back("SDK Close: " + s.ToString());
    }
  }
  clients.clear();
  if (absl::Status s = server->Stop(); !s.ok()) {
    failures.push_back("tensorpagerd on SIGTERM at the end: " + s.ToString());
  }

  const std::string server_log = server->Log();
  const bool ok = report.Print(
      elapsed, absl::GetFlag(FLAGS_warmup_fraction) * seconds,
      absl::GetFlag(FLAGS_rss_tolerance),
      absl::GetFlag(FLAGS_max_transient_fraction), shared.shared_memory,
      sdk_log, failures, absl::GetFlag(FLAGS_rss_csv));
  if (!ok) {
    std::printf("\ntensorpagerd's log (tail):\n%s\n", server_log.c_str());
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tensorpager::soak

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tensorpager::soak::Main();
}
