// Fuzzes the scrape endpoint's request parsing (server/http/
// http_request.h) on its own and through a real HttpConnection over a
// socket pair, with the input sent in pieces as a client might.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/http/http_connection.h"
#include "server/http/http_request.h"
#include "server/http/http_response.h"
#include "server/http/scoped_fd.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using tensorpager::http::HttpConnection;
using tensorpager::http::HttpRequest;
using tensorpager::http::HttpResponse;

constexpr size_t kMaxRequestBytes = 8 * 1024;  // the server's default

void FuzzParser(absl::string_view data) {
  const std::optional<size_t> head = tensorpager::http::RequestHeadLength(data);
  if (head.has_value()) {
    TP_FUZZ_CHECK(*head >= 2 && *head <= data.size());
    TP_FUZZ_CHECK(data[*head - 1] == '\n');
  }
  const absl::string_view line = head ? data.substr(0, *head) : data;
  const absl::StatusOr<HttpRequest> request =
      tensorpager::http::ParseRequestLine(line);
  if (request.ok()) {
    TP_FUZZ_CHECK(!request->method.empty());
    TP_FUZZ_CHECK(absl::StartsWith(request->path, "/"));
    TP_FUZZ_CHECK(request->path.find_first_of("? \r\n") == std::string::npos);
  } else {
    TP_FUZZ_CHECK(absl::IsInvalidArgument(request.status()) ||
                  absl::IsUnimplemented(request.status()));
  }
}

void DrainPeer(int fd) {
  char buf[4096];
  while (::recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
}

// Sends the input to a connection in pieces whose sizes the input's own
// bytes pick, then half-closes and lets the deadline pass.
void FuzzConnection(absl::string_view data) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   fds) != 0) {
    return;
  }
  const int client = fds[1];
  auto now = HttpConnection::Clock::time_point();
  HttpConnection connection(
      tensorpager::http::PlainStream(tensorpager::http::ScopedFd(fds[0])),
      HttpConnection::Limits{std::chrono::seconds(2), std::chrono::seconds(2),
                             kMaxRequestBytes},
      now);
  int handled = 0;
  auto handler = [&](const HttpRequest& request) {
    ++handled;
    TP_FUZZ_CHECK(absl::StartsWith(request.path, "/"));
    HttpResponse response;
    response.body = request.method + " " + request.path + "\n";
    if (request.path == "/metrics") response.body.assign(3000, 'x');
    if (request.path == "/nope") response.status = 404;
    return response;
  };
  size_t sent = 0;
  size_t piece = data.empty() ? 1 : 1 + static_cast<uint8_t>(data[0]) % 97;
  while (sent < data.size() && !connection.closed()) {
    const size_t n = std::min(piece, data.size() - sent);
    const ssize_t w = ::send(client, data.data() + sent, n, MSG_NOSIGNAL);
    if (w <= 0) break;
    sent += static_cast<size_t>(w);
    piece = 1 + static_cast<uint8_t>(data[sent - 1]) % 251;
    now += std::chrono::milliseconds(1);
    connection.OnReady(connection.poll_events(), now, handler);
    DrainPeer(client);
  }
  ::shutdown(client, SHUT_WR);
  for (int i = 0; i < 4 && !connection.closed(); ++i) {
    connection.OnReady(connection.poll_events() | POLLHUP, now, handler);
    DrainPeer(client);
  }
  if (!connection.closed()) {
    connection.OnDeadline(connection.deadline());
    DrainPeer(client);
    if (!connection.closed()) connection.OnDeadline(connection.deadline());
  }
  TP_FUZZ_CHECK(connection.closed());
  TP_FUZZ_CHECK(handled <= 1);
  ::close(client);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  FuzzParser(input);
  FuzzConnection(input);
  return 0;
}
