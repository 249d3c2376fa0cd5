// /metrics of a live tensorpagerd: promtool accepts it, the families carry
// the workload's figures, and a real Prometheus server scrapes it.
#include <google/protobuf/descriptor.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/pager_fixture.h"
#include "tests/testing/http_get.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kKiB = 1024;

class MetricsTest : public PagerTest {
 protected:
  // The RPC families are what is checked: keep block bytes on the gRPC
  // streams rather than the shared-memory ring (which needs no RPC).
  MetricsTest() { client_options_.shared_memory_bytes = 0; }

  void Workload() {
    for (int i = 0; i < 12; ++i) Put(absl::StrCat("m", i), 256 * kKiB, i);
    ASSERT_TRUE(client_->SwapOut({"m0", "m1", "m2", "m3"}).ok());
    for (int i = 0; i < 6; ++i)
      ExpectBytes(absl::StrCat("m", i), 256 * kKiB, i);
    EXPECT_FALSE(client_->Read("missing").ok());
  }

  std::string Scrape() {
    auto r = HttpGet(server_->metrics_port(), "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    return r->body;
  }
};

// Value of the first sample line starting with `series` (name + labels).
double Sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const size_t sp = text.find(' ', at + series.size() - 1);
      return std::stod(text.substr(sp + 1, text.find('\n', sp) - sp - 1));
    }
    ++at;
  }
  return -1;
}

TEST_F(MetricsTest, LiveScrapePassesPromtoolAndCountsTheWorkload) {
  StartServer({"--ram_budget=64MiB"});
  Workload();
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, "tensorpager_swap_out_bytes_total "), 4 * 256 * kKiB);
  EXPECT_EQ(Sample(text, "tensorpager_swap_in_bytes_total "), 4 * 256 * kKiB);
  EXPECT_EQ(Sample(text, "tensorpager_accesses_total{result=\"disk_hit\"}"), 4);
  EXPECT_EQ(Sample(text, "tensorpager_accesses_total{result=\"ram_hit\"}"), 2);
  EXPECT_EQ(Sample(text, "tensorpager_accesses_total{result=\"miss\"}"), 1);
  EXPECT_EQ(Sample(text, "tensorpager_swap_in_duration_seconds_count "), 4);
  EXPECT_EQ(Sample(text, "tensorpager_tier_blocks{tier=\"ram\"}"), 12);
  EXPECT_EQ(Sample(text, "tensorpager_blocks_registered "), 12);
  EXPECT_EQ(
      Sample(text, "tensorpager_region_blocks{region_type=\"TENSOR_DATA\"}"),
      12);
  EXPECT_GE(Sample(text,
                   "tensorpager_rpc_requests_total{method=\"Access\",code="
                   "\"NOT_FOUND\"}"),
            1);
  EXPECT_GE(
      Sample(
          text,
          "tensorpager_rpc_requests_total{method=\"WriteBlock\",code=\"OK\"}"),
      12);
  EXPECT_TRUE(absl::StrContains(
      text, "tensorpager_rpc_duration_seconds_bucket{method=\"Swap\""));
  EXPECT_TRUE(absl::StrContains(
      text, "tensorpager_pressure_ratio{resource=\"host_ram\"}"));
  EXPECT_TRUE(absl::StrContains(text, "tensorpager_build_info{"));
  EXPECT_GT(Sample(text, "tensorpager_disk_capacity_bytes "), 0);

  if (!std::filesystem::exists("/usr/bin/promtool")) {
    GTEST_SKIP() << "promtool missing (Debian package prometheus)";
  }
  TempDir dir;
  { std::ofstream(dir.Sub("metrics.txt")) << text; }
  const std::string cmd = absl::StrCat("/usr/bin/promtool check metrics < ",
                                       dir.Sub("metrics.txt"), " 2>&1");
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  std::string out;
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int rc = ::pclose(p);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << out;
}

// The `method` label values of one family's samples.
std::set<std::string> MethodLabels(const std::string& text,
                                   const std::string& family) {
  std::set<std::string> methods;
  const std::string prefix = family + "{method=\"";
  size_t at = 0;
  while ((at = text.find("\n" + prefix, at)) != std::string::npos) {
    at += 1 + prefix.size();
    methods.insert(text.substr(at, text.find('"', at) - at));
  }
  return methods;
}

TEST_F(MetricsTest, UnknownMethodsShareOneSeries) {
  StartServer({"--ram_budget=64MiB"});
  ASSERT_TRUE(client_->Status().ok());
  // What may have a series of its own: the methods served, and "other".
  std::set<std::string> allowed = {"Check", "Watch", "List",
                                   "ServerReflectionInfo", "other"};
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "tensorpager.v1.TensorPager");
  ASSERT_NE(service, nullptr);
  for (int i = 0; i < service->method_count(); ++i) {
    allowed.insert(service->method(i)->name());
  }

  // Made-up paths, as a probing client sends them: new methods of the real
  // service, other services, and one that borrows a real method's name.
  grpc::GenericStub stub(grpc::CreateChannel(
      server_->target(), grpc::InsecureChannelCredentials()));
  constexpr int kCalls = 300;
  for (int i = 0; i < kCalls; ++i) {
    const std::string method =
        i % 3 == 0   ? absl::StrCat("/tensorpager.v1.TensorPager/NoSuch", i)
        : i % 3 == 1 ? absl::StrCat("/evil.v", i, ".Service/Method")
                     : absl::StrCat("/evil.v", i, ".Service/Status");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    ASSERT_EQ(done.get_future().get().error_code(), grpc::UNIMPLEMENTED)
        << method;
  }

  const std::string text = Scrape();
  for (const char* family : {"tensorpager_rpc_requests_total",
                             "tensorpager_rpc_duration_seconds_count"}) {
    const std::set<std::string> methods = MethodLabels(text, family);
    EXPECT_TRUE(methods.contains("Status")) << family;
    EXPECT_TRUE(methods.contains("other")) << family;
    for (const std::string& m : methods) {
      EXPECT_TRUE(allowed.contains(m))
          << family << " has method=\"" << m << "\"";
    }
  }
  EXPECT_EQ(Sample(text,
                   "tensorpager_rpc_requests_total{method=\"other\",code="
                   "\"UNIMPLEMENTED\"}"),
            kCalls);
  // A borrowed name is not the real method's.
  EXPECT_FALSE(
      absl::StrContains(text, "{method=\"Status\",code=\"UNIMPLEMENTED\"}"));
}

TEST_F(MetricsTest, PrometheusScrapesSwapCountersAndHistogramQuantiles) {
  const std::string prometheus = "/usr/bin/prometheus";
  if (!std::filesystem::exists(prometheus)) {
    GTEST_SKIP() << "prometheus missing (Debian package prometheus)";
  }
  StartServer({"--ram_budget=64MiB"});
  Workload();
  TempDir dir;
  {
    std::ofstream cfg(dir.Sub("prometheus.yml"));
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: tensorpager\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << server_->metrics_port() << "']\n";
  }
  const int port = FreePort();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const std::string log = dir.Sub("prometheus.log");
    std::freopen(log.c_str(), "w", stderr);
    std::freopen(log.c_str(), "a", stdout);
    const std::string config = "--config.file=" + dir.Sub("prometheus.yml");
    const std::string storage = "--storage.tsdb.path=" + dir.Sub("tsdb");
    const std::string listen =
        absl::StrCat("--web.listen-address=127.0.0.1:", port);
    ::execl(prometheus.c_str(), prometheus.c_str(), config.c_str(),
            storage.c_str(), listen.c_str(), "--web.enable-lifecycle",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto query = [&](const std::string& expr) -> std::string {
    auto r = HttpGet(port, "/api/v1/query?query=" + UrlEncode(expr));
    return r.ok() ? r->body : "";
  };
  // The first scrape lands a few seconds after start: poll.
  std::string swapped, quantile;
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  while (absl::Now() < deadline) {
    swapped = query("tensorpager_swap_out_bytes_total");
    quantile = query(
        "histogram_quantile(0.99, sum by (le) "
        "(tensorpager_swap_in_duration_seconds_bucket))");
    if (absl::StrContains(swapped, "\"value\":[") &&
        absl::StrContains(quantile, "\"value\":[")) {
      break;
    }
    // Keep traffic flowing so rates and histograms move.
    ASSERT_TRUE(client_->Status().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  EXPECT_TRUE(absl::StrContains(swapped, "\"value\":[")) << swapped;
  EXPECT_TRUE(absl::StrContains(swapped, "\"1048576\"")) << swapped;
  EXPECT_TRUE(absl::StrContains(quantile, "\"value\":[")) << quantile;
  EXPECT_FALSE(absl::StrContains(quantile, "NaN")) << quantile;
}

}  // namespace
}  // namespace tensorpager::testing
