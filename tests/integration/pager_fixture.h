// Shared fixture: a real tensorpagerd on loopback plus a connected Client.
#ifndef TENSORPAGER_TESTS_INTEGRATION_PAGER_FIXTURE_H_
#define TENSORPAGER_TESTS_INTEGRATION_PAGER_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "tensorpager/client.h"
#include "tests/testing/server_process.h"

namespace tensorpager::testing {

// Deterministic bytes for block `seed`, so any byte read back can be
// checked without keeping the data around.
inline std::string PatternBytes(uint64_t size, uint64_t seed) {
  std::string out(size, '\0');
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 1);
  for (uint64_t i = 0; i + 8 <= size; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (uint64_t i = size / 8 * 8; i < size; ++i)
    out[i] = static_cast<char>(rng());
  return out;
}

// Collects an SDK client's log lines (ClientOptions::log_sink) so tests
// can check what it said.
class SdkLogCapture {
 public:
  std::function<void(absl::string_view)> Sink() {
    return [this](absl::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(line);
    };
  }
  int LinesWith(absl::string_view text) {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const std::string& l : lines_) n += absl::StrContains(l, text);
    return n;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// A client of `server` over gRPC messages (no shared memory) that proves
// its tenant with `token`, its log lines dropped; null (and a test
// failure) when it cannot connect.
inline std::unique_ptr<Client> ConnectWithToken(const ServerProcess& server,
                                                const std::string& token) {
  ClientOptions options;
  options.shared_memory_bytes = 0;
  options.token = token;
  options.log_sink = [](absl::string_view) {};
  auto c = Client::Connect(server.target(), options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

class PagerTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> flags) {
    ServerProcess::Options o;
    o.flags = std::move(flags);
    auto server = ServerProcess::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    Reconnect();
  }

  void Reconnect() {
    auto client = Client::Connect(server_->target(), client_options_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    ASSERT_TRUE(client_->WaitUntilReady(absl::Seconds(30)).ok());
  }

  // Registers and writes a block with PatternBytes(size, seed).
  void Put(const std::string& id, uint64_t size, uint64_t seed,
           bool pinned = false, v1::RegionType type = v1::TENSOR_DATA) {
    BlockSpec spec{id};
    spec.size_bytes = size;
    spec.pinned = pinned;
    spec.region_type = type;
    auto reg = client_->Register(spec);
    ASSERT_TRUE(reg.ok()) << id << ": " << reg.status();
    auto w = client_->Write(id, PatternBytes(size, seed));
    ASSERT_TRUE(w.ok()) << id << ": " << w.status();
  }

  void ExpectBytes(const std::string& id, uint64_t size, uint64_t seed) {
    auto r = client_->Read(id);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status();
    ASSERT_EQ(r->data.size(), size) << id;
    EXPECT_TRUE(r->data == PatternBytes(size, seed)) << id << " differs";
  }

  std::unique_ptr<ServerProcess> server_;
  // Options of client_ (set before StartServer).
  ClientOptions client_options_;
  std::unique_ptr<Client> client_;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_INTEGRATION_PAGER_FIXTURE_H_
