// The scrape endpoint over real sockets on 127.0.0.1, port 0.
#include "server/metrics/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/http/scoped_fd.h"
#include "server/metrics/text_format.h"

namespace tensorpager::metrics {
namespace {

using http::ScopedFd;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Connects to 127.0.0.1:port; reads give up after 10 s so a server bug
// fails the test instead of hanging it.
ScopedFd Connect(int port) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid());
  timeval timeout{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  return fd;
}

void SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Everything until the server closes the connection.
std::string ReadAll(int fd) {
  std::string out;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
      continue;
    }
    EXPECT_EQ(n, 0) << "recv: " << std::strerror(errno);
    return out;
  }
}

std::string Exchange(int port, absl::string_view request) {
  ScopedFd fd = Connect(port);
  SendAll(fd.get(), request);
  return ReadAll(fd.get());
}

struct Response {
  std::string head;
  std::string body;
};

Response Split(const std::string& raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return {raw, ""};
  return {raw.substr(0, end + 2), raw.substr(end + 4)};
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Family<Counter>*> requests =
        registry_.AddCounter({.name = "tp_requests_total",
                              .help = "Requests.",
                              .label_names = {"method"}});
    ASSERT_TRUE(requests.ok());
    (*requests)->WithLabels({"Access"}).Increment(3);
  }

  void StartServer(MetricsHttpServerOptions options = {}) {
    options.address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start(&registry_, std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
  }

  Registry registry_;
  std::unique_ptr<MetricsHttpServer> server_;
};

TEST_F(MetricsHttpServerTest, ServesTheRegistryAtMetrics) {
  StartServer();
  const Response r = Split(
      Exchange(server_->port(),
               "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"));
  EXPECT_THAT(r.head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r.head, HasSubstr(absl::StrCat(
                          "Content-Type: ", kTextFormatContentType, "\r\n")));
  EXPECT_THAT(r.head, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(r.head, HasSubstr(absl::StrCat("Content-Length: ", r.body.size(),
                                             "\r\n")));
  absl::StatusOr<std::string> expected = registry_.Render();
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(r.body, *expected);
  EXPECT_THAT(r.body, HasSubstr("tp_requests_total{method=\"Access\"} 3\n"));

  // A scrape sees updates made since the last one; query strings are
  // ignored; HTTP/1.0 and bare-LF clients are served too.
  (*registry_.AddGauge({.name = "tp_later", .help = "Later."}))
      ->WithLabels({})
      .Set(7);
  EXPECT_THAT(Exchange(server_->port(), "GET /metrics?x=1 HTTP/1.0\n\n"),
              HasSubstr("tp_later 7\n"));
}

TEST_F(MetricsHttpServerTest, IndexPageLinksToMetrics) {
  StartServer();
  const Response r = Split(Exchange(server_->port(), "GET / HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(r.head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r.head, HasSubstr("Content-Type: text/html; charset=utf-8\r\n"));
  EXPECT_THAT(r.body, HasSubstr("<a href=\"/metrics\">"));
}

TEST_F(MetricsHttpServerTest, HeadHasTheHeadersButNoBody) {
  StartServer();
  const Response r =
      Split(Exchange(server_->port(), "HEAD /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(r.head, StartsWith("HTTP/1.1 200 OK\r\n"));
  absl::StatusOr<std::string> expected = registry_.Render();
  ASSERT_TRUE(expected.ok());
  EXPECT_THAT(r.head, HasSubstr(absl::StrCat(
                          "Content-Length: ", expected->size(), "\r\n")));
  EXPECT_EQ(r.body, "");
}

TEST_F(MetricsHttpServerTest, UnknownPathsAre404) {
  StartServer();
  EXPECT_THAT(Exchange(server_->port(), "GET /metricsx HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(Exchange(server_->port(), "DELETE /nothing HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
}

TEST_F(MetricsHttpServerTest, OtherMethodsAre405WithAllow) {
  StartServer();
  for (absl::string_view request :
       {"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "PUT / HTTP/1.1\r\n\r\n", "get /metrics HTTP/1.1\r\n\r\n"}) {
    const Response r = Split(Exchange(server_->port(), request));
    EXPECT_THAT(r.head, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"))
        << request;
    EXPECT_THAT(r.head, HasSubstr("Allow: GET, HEAD\r\n")) << request;
  }
}

TEST_F(MetricsHttpServerTest, GarbageGets400AndOtherVersions505) {
  StartServer();
  EXPECT_THAT(Exchange(server_->port(), "hello there\r\n\r\n"),
              StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(Exchange(server_->port(),
                       std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\n\n", 10)),
              StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(Exchange(server_->port(), "GET /metrics HTTP/2.0\r\n\r\n"),
              StartsWith("HTTP/1.1 505 HTTP Version Not Supported\r\n"));
}

TEST_F(MetricsHttpServerTest, OversizedRequestHeadGets431) {
  StartServer({.max_request_bytes = 1024});
  // No end of head in sight: the server must stop reading at its limit.
  const std::string request = absl::StrCat(
      "GET /metrics HTTP/1.1\r\nX-Filler: ", std::string(64 * 1024, 'a'));
  EXPECT_THAT(Exchange(server_->port(), request),
              StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  // Still serving.
  EXPECT_THAT(Exchange(server_->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(MetricsHttpServerTest, SilentClientTimesOutWithoutBlockingOthers) {
  StartServer({.request_timeout = absl::Milliseconds(300)});
  ScopedFd silent = Connect(server_->port());
  SendAll(silent.get(), "GET /metr");
  ScopedFd gone = Connect(server_->port());
  gone.Reset();  // connects and leaves at once
  // Served while the silent connection is still open.
  EXPECT_THAT(Exchange(server_->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(ReadAll(silent.get()),
              StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
}

// True when `fd` has neither bytes nor an end of stream to read now.
bool StillOpenAndQuiet(int fd) {
  char byte;
  return ::recv(fd, &byte, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

TEST_F(MetricsHttpServerTest, AScrapeTakesTheSlotOfTheOldestIdleConnection) {
  // No timeout frees a slot during the test: only reclaiming can admit the
  // scrape (before, it waited in the backlog, here for an hour).
  StartServer({.request_timeout = absl::Hours(1),
               .io_timeout = absl::Hours(1),
               .max_connections = 4});
  std::vector<ScopedFd> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(Connect(server_->port()));
  EXPECT_THAT(Exchange(server_->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 200 OK\r\n"));
  // The oldest was closed without a word; the others are still open.
  EXPECT_EQ(ReadAll(idle[0].get()), "");
  for (int i = 1; i < 4; ++i) {
    EXPECT_TRUE(StillOpenAndQuiet(idle[i].get())) << i;
  }
  // A connection that was spared is served as usual.
  SendAll(idle[3].get(), "GET / HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadAll(idle[3].get()), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(MetricsHttpServerTest, IdleSocketsBeyondEverySlotDoNotDelayAScrape) {
  // The report: 64 idle sockets made a scrape wait 11.8 s for the 10 s
  // timeout, beyond Prometheus' own. Default options, more sockets than
  // slots; the bound only tells "answered" from "waited out a timeout".
  StartServer();
  std::vector<ScopedFd> idle;
  for (int i = 0; i < MetricsHttpServerOptions().max_connections + 16; ++i) {
    idle.push_back(Connect(server_->port()));
  }
  const absl::Time start = absl::Now();
  EXPECT_THAT(Exchange(server_->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(MetricsHttpServerTest, ScrapeErrorIs500WithTheReason) {
  ASSERT_TRUE(
      registry_
          .AddGaugeCallback(
              {.name = "tp_broken", .help = "Broken.", .label_names = {"a"}},
              [](SampleSink& s) { s.Add({}, 1); })
          .ok());
  StartServer();
  const Response r =
      Split(Exchange(server_->port(), "GET /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(r.head, StartsWith("HTTP/1.1 500 Internal Server Error\r\n"));
  EXPECT_THAT(r.body, HasSubstr("tp_broken"));
}

TEST_F(MetricsHttpServerTest, DestructionStopsPromptlyAndClosesConnections) {
  StartServer(
      {.request_timeout = absl::Hours(1), .io_timeout = absl::Hours(1)});
  const int port = server_->port();
  ScopedFd idle = Connect(port);
  SendAll(idle.get(), "GET /");
  // Only returns once the thread has joined; an hour-long timeout on the
  // open connection must not delay it.
  server_.reset();
  char byte;
  const ssize_t n = ::recv(idle.get(), &byte, 1, 0);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET))
      << n << " " << std::strerror(errno);
  // Nobody listens any more.
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_NE(
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
}

TEST_F(MetricsHttpServerTest, ReportsAddressErrors) {
  StartServer();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> taken =
      MetricsHttpServer::Start(
          &registry_, {.address = absl::StrCat("127.0.0.1:", server_->port())});
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(taken.status().message()),
              HasSubstr("Address already in use"));
  for (absl::string_view bad : {"nonsense", "127.0.0.1:99999", "[::1"}) {
    EXPECT_EQ(
        MetricsHttpServer::Start(&registry_, {.address = std::string(bad)})
            .status()
            .code(),
        absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(MetricsHttpServer::Start(&registry_, {.address = "192.0.2.1:0"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);  // not this machine's address
  EXPECT_EQ(MetricsHttpServer::Start(nullptr, {.address = "127.0.0.1:0"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      MetricsHttpServer::Start(&registry_, {.address = "127.0.0.1:0",
                                            .io_timeout = absl::ZeroDuration()})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsHttpServer::Start(&registry_,
                                     {.address = "127.0.0.1:0",
                                      .request_timeout = absl::ZeroDuration()})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tensorpager::metrics
