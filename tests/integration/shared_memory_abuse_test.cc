// A hostile client against a real tensorpagerd's shared memory (issue 10):
// segments and rings belong to the user that attached them, answer a
// wrong capability as a missing segment, and are capped per user.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "storage/shared_memory/ring_layout.h"
#include "tests/integration/abuse_fixture.h"

namespace tensorpager::testing {
namespace {

struct Segment {
  int fd = -1;
  char* base = nullptr;
  uint64_t size = 0;
  uint64_t id = 0;
  std::string capability;
  std::string token;
  ~Segment() {
    if (base != nullptr) ::munmap(base, size);
    if (fd >= 0) ::close(fd);
  }
};

class SharedMemoryAbuseTest : public AbuseTest {
 protected:
  void SetUp() override {
    Start({"--ram_budget=64MiB"});
    segment_.size = 1 << 20;
    segment_.token = "victim-token-0123";
    segment_.fd = ::memfd_create("victim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_GE(segment_.fd, 0);
    ASSERT_EQ(::ftruncate(segment_.fd, segment_.size), 0);
    segment_.base = static_cast<char*>(::mmap(nullptr, segment_.size,
                                              PROT_READ | PROT_WRITE,
                                              MAP_SHARED, segment_.fd, 0));
    ASSERT_NE(segment_.base, MAP_FAILED);
    std::memcpy(segment_.base, segment_.token.data(), segment_.token.size());
    shared_memory::FormatRing(segment_.base);
    ASSERT_EQ(::fcntl(segment_.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW),
              0);
    v1::AttachSharedMemoryResponse resp;
    grpc::Status s = AttachSegment(/*ring=*/false, &resp);
    if (!s.ok()) GTEST_SKIP() << "cannot attach here: " << s.error_message();
    segment_.id = resp.segment_id();
    segment_.capability = resp.capability();
    ASSERT_EQ(segment_.capability.size(), 16u);
    Put("secret", 8192, 42);
  }
  // Attaches the fixture's segment (once more) for this process.
  grpc::Status AttachSegment(bool ring, v1::AttachSharedMemoryResponse* resp) {
    v1::AttachSharedMemoryRequest req;
    req.set_pid(::getpid());
    req.set_fd(segment_.fd);
    req.set_size_bytes(segment_.size);
    req.set_token(segment_.token);
    req.set_ring(ring);
    return Call(&v1::TensorPager::Stub::AttachSharedMemory, req, resp);
  }
  grpc::Status ReadInto(uint64_t id, const std::string& capability) {
    v1::AccessSharedRequest a;
    a.set_id("secret");
    a.mutable_destination()->set_segment_id(id);
    a.mutable_destination()->set_capability(capability);
    a.mutable_destination()->set_offset(8192);
    a.mutable_destination()->set_length(8192);
    v1::AccessSharedResponse ar;
    return Call(&v1::TensorPager::Stub::AccessShared, a, &ar);
  }
  Segment segment_;
};

TEST_F(SharedMemoryAbuseTest, WrongCapabilityLooksLikeAMissingSegment) {
  std::string guessed = segment_.capability;
  guessed[0] ^= 1;
  const grpc::Status wrong = ReadInto(segment_.id, guessed);
  const grpc::Status none = ReadInto(segment_.id, "");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::DetachSharedMemoryRequest detach;
  detach.set_segment_id(segment_.id);
  detach.set_capability(guessed);
  v1::DetachSharedMemoryResponse done;
  EXPECT_EQ(Call(&v1::TensorPager::Stub::DetachSharedMemory, detach, &done)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Still attached for its owner...
  ASSERT_TRUE(ReadInto(segment_.id, segment_.capability).ok());
  EXPECT_EQ(std::string(segment_.base + 8192, 8192), PatternBytes(8192, 42));
  // ...and once detached, the same segment answers exactly as before.
  detach.set_capability(segment_.capability);
  ASSERT_TRUE(
      Call(&v1::TensorPager::Stub::DetachSharedMemory, detach, &done).ok());
  const grpc::Status gone = ReadInto(segment_.id, segment_.capability);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(gone.error_message(), wrong.error_message());
  EXPECT_EQ(gone.error_message(), none.error_message());
}

TEST_F(SharedMemoryAbuseTest, SegmentsPerUserAreCapped) {
  server_->Stop().IgnoreError();
  Start({"--ram_budget=64MiB", "--max_segments_per_client=1"});
  v1::AttachSharedMemoryResponse resp;
  // The fixture's SDK client attached its arena to the first server only.
  ASSERT_TRUE(AttachSegment(/*ring=*/false, &resp).ok());
  grpc::Status second = AttachSegment(/*ring=*/false, &resp);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(second.error_message(), "most one user may"))
      << second.error_message();
}

TEST_F(SharedMemoryAbuseTest, RingThreadsPerUserAreCapped) {
  server_->Stop().IgnoreError();
  Start({"--ram_budget=64MiB", "--max_rings_per_client=1"});
  v1::AttachSharedMemoryResponse first;
  ASSERT_TRUE(AttachSegment(/*ring=*/true, &first).ok());
  EXPECT_TRUE(first.ring());
  // Over the cap the segment still attaches, served through the RPCs.
  v1::AttachSharedMemoryResponse second;
  ASSERT_TRUE(AttachSegment(/*ring=*/true, &second).ok());
  EXPECT_FALSE(second.ring());
  v1::StatusRequest sreq;
  v1::StatusResponse status;
  ASSERT_TRUE(Call(&v1::TensorPager::Stub::Status, sreq, &status).ok());
  EXPECT_EQ(status.shared_memory_rings(), 1u);
}

// Another local user, with everything the victim's segment has leaked
// (id, capability, the memfd's pid, fd and token), gets nothing: the
// server checks the caller's user on Attach and on every call.
TEST_F(SharedMemoryAbuseTest, AnotherUserCannotUseOrAttachTheSegment) {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs root and setpriv to run a client as another user";
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setenv("TP_INTRUDER_TARGET", server_->target().c_str(), 1);
    ::setenv("TP_INTRUDER_SEGMENT", absl::StrCat(segment_.id).c_str(), 1);
    ::setenv("TP_INTRUDER_CAPABILITY",
             absl::BytesToHexString(segment_.capability).c_str(), 1);
    ::setenv("TP_INTRUDER_PID", absl::StrCat(::getppid()).c_str(), 1);
    ::setenv("TP_INTRUDER_FD", absl::StrCat(segment_.fd).c_str(), 1);
    ::setenv("TP_INTRUDER_TOKEN", segment_.token.c_str(), 1);
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) ::_exit(120);
    self[n] = '\0';
    ::execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534",
            "--clear-groups", self, "--gtest_also_run_disabled_tests",
            "--gtest_filter=IntruderTest.*", static_cast<char*>(nullptr));
    ::_exit(121);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  // 121: setpriv would not start; 126/127: uid 65534 may not run this
  // binary (a build under a private home directory, say).
  const int code = WEXITSTATUS(status);
  if (code == 121 || code == 126 || code == 127) {
    GTEST_SKIP() << "cannot run this test binary as uid 65534 (exit " << code
                 << ")";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "the intruder (uid 65534) got something; see its output above";
  // The owner's segment is untouched and still served.
  ASSERT_TRUE(ReadInto(segment_.id, segment_.capability).ok());
  EXPECT_EQ(std::string(segment_.base + 8192, 8192), PatternBytes(8192, 42));
}

// Runs only as the child of the test above (as uid 65534), which enables
// it; ctest never runs it on its own.
TEST(IntruderTest, DISABLED_GetsNothingOfAnotherUsersSegment) {
  const char* target = std::getenv("TP_INTRUDER_TARGET");
  if (target == nullptr) GTEST_SKIP() << "runs as a child of the abuse test";
  auto stub = v1::TensorPager::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  uint64_t id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(std::getenv("TP_INTRUDER_SEGMENT"), &id));
  const std::string capability =
      absl::HexStringToBytes(std::getenv("TP_INTRUDER_CAPABILITY"));
  int pid = 0;
  int fd = 0;
  ASSERT_TRUE(absl::SimpleAtoi(std::getenv("TP_INTRUDER_PID"), &pid));
  ASSERT_TRUE(absl::SimpleAtoi(std::getenv("TP_INTRUDER_FD"), &fd));
  auto deadline = [](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
  };

  v1::AccessSharedRequest a;
  a.set_id("secret");
  a.mutable_destination()->set_segment_id(id);
  a.mutable_destination()->set_capability(capability);
  a.mutable_destination()->set_offset(0);
  a.mutable_destination()->set_length(8192);
  v1::AccessSharedResponse ar;
  grpc::ClientContext c1;
  deadline(&c1);
  EXPECT_EQ(stub->AccessShared(&c1, a, &ar).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::WriteBlockSharedRequest w;
  w.set_id("secret");
  *w.mutable_source() = a.destination();
  v1::WriteBlockResponse wr;
  grpc::ClientContext c2;
  deadline(&c2);
  EXPECT_EQ(stub->WriteBlockShared(&c2, w, &wr).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::DetachSharedMemoryRequest d;
  d.set_segment_id(id);
  d.set_capability(capability);
  v1::DetachSharedMemoryResponse dr;
  grpc::ClientContext c3;
  deadline(&c3);
  EXPECT_EQ(stub->DetachSharedMemory(&c3, d, &dr).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Naming the victim's memfd (with its token) attaches nothing, and says
  // no more than naming a descriptor that does not exist.
  auto attach = [&](int p, int f) {
    v1::AttachSharedMemoryRequest req;
    req.set_pid(p);
    req.set_fd(f);
    req.set_size_bytes(1 << 20);
    req.set_token(std::getenv("TP_INTRUDER_TOKEN"));
    v1::AttachSharedMemoryResponse resp;
    grpc::ClientContext ctx;
    deadline(&ctx);
    return stub->AttachSharedMemory(&ctx, req, &resp);
  };
  const grpc::Status victims = attach(pid, fd);
  const grpc::Status missing = attach(pid, 9999);
  EXPECT_EQ(victims.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << victims.error_message();
  EXPECT_EQ(victims.error_code(), missing.error_code());
  EXPECT_EQ(absl::StrReplaceAll(victims.error_message(),
                                {{absl::StrCat(" ", fd, " "), " N "}}),
            absl::StrReplaceAll(missing.error_message(), {{" 9999 ", " N "}}));
}

}  // namespace
}  // namespace tensorpager::testing
