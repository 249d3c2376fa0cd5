// The hostile client of abuse_test and shared_memory_abuse_test: a
// PagerTest with a raw stub, unary calls under deadlines, and ways to wait
// for the server's Status and to read its resident memory.
#ifndef TENSORPAGER_TESTS_INTEGRATION_ABUSE_FIXTURE_H_
#define TENSORPAGER_TESTS_INTEGRATION_ABUSE_FIXTURE_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/pager_fixture.h"

namespace tensorpager::testing {

inline constexpr uint64_t kMiB = 1024 * 1024;

// The server's resident memory, from /proc.
inline uint64_t RssBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    // "VmRSS:     123456 kB"
    uint64_t kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lu kB", &kib) == 1) {
      return kib * 1024;
    }
  }
  return 0;
}

class AbuseTest : public PagerTest {
 protected:
  void Start(std::vector<std::string> flags) {
    StartServer(std::move(flags));
    stub_ = v1::TensorPager::NewStub(grpc::CreateChannel(
        server_->target(), grpc::InsecureChannelCredentials()));
  }
  // A unary call with a deadline, so a hang fails the test instead of
  // hanging it.
  template <typename Req, typename Resp, typename Method>
  grpc::Status Call(Method method, const Req& req, Resp* resp,
                    int deadline_s = 30) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(deadline_s));
    return ((*stub_).*method)(&ctx, req, resp);
  }
  grpc::Status SwapOut(std::vector<std::string> ids) {
    v1::SwapRequest req;
    req.set_direction(v1::SWAP_OUT);
    for (const std::string& id : ids) req.add_ids(id);
    v1::SwapResponse resp;
    return Call(&v1::TensorPager::Stub::Swap, req, &resp);
  }
  grpc::Status Unregister(const std::string& id) {
    v1::UnregisterBlockRequest req;
    req.set_id(id);
    v1::UnregisterBlockResponse resp;
    return Call(&v1::TensorPager::Stub::UnregisterBlock, req, &resp);
  }
  grpc::Status Register(const std::string& id, uint64_t size) {
    v1::RegisterBlockRequest req;
    req.set_id(id);
    req.set_size_bytes(size);
    v1::RegisterBlockResponse resp;
    return Call(&v1::TensorPager::Stub::RegisterBlock, req, &resp);
  }
  // Waits (a bounded while) until the server's Status satisfies `done`.
  template <typename Done>
  void WaitForStatus(Done done, const std::string& what) {
    v1::StatusResponse status;
    for (int i = 0; i < 300; ++i) {
      v1::StatusRequest req;
      ASSERT_TRUE(Call(&v1::TensorPager::Stub::Status, req, &status).ok());
      if (done(status)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the server never reached " << what << ": "
           << status.ShortDebugString();
  }
  void WaitForOpenDataStreams(uint32_t n) {
    WaitForStatus(
        [n](const v1::StatusResponse& s) { return s.open_data_streams() == n; },
        absl::StrCat(n, " open data streams"));
  }
  void ExpectServing() {
    v1::StatusRequest req;
    v1::StatusResponse resp;
    grpc::Status s = Call(&v1::TensorPager::Stub::Status, req, &resp, 10);
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server_->Log();
  }
  std::unique_ptr<v1::TensorPager::Stub> stub_;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_INTEGRATION_ABUSE_FIXTURE_H_
