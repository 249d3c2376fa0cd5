#include "gtest/gtest.h"
#include "server/http/host_port.h"
#include "server/http/http_request.h"
#include "server/http/http_response.h"

namespace tensorpager::http {
namespace {

TEST(MetricsHttpRequestTest, HeadEndsAtTheFirstEmptyLine) {
  EXPECT_EQ(RequestHeadLength(""), std::nullopt);
  EXPECT_EQ(RequestHeadLength("GET / HTTP/1.1\r\nHost: x\r\n"), std::nullopt);
  EXPECT_EQ(RequestHeadLength("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), 27u);
  EXPECT_EQ(RequestHeadLength("GET / HTTP/1.1\n\nbody"), 16u);
  EXPECT_EQ(RequestHeadLength("GET / HTTP/1.1\r\n\r"), std::nullopt);
}

TEST(MetricsHttpRequestTest, ParsesTheRequestLine) {
  absl::StatusOr<HttpRequest> r =
      ParseRequestLine("GET /metrics?name[]=x HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/metrics");
  r = ParseRequestLine("HEAD / HTTP/1.0\n\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->method, "HEAD");
  EXPECT_EQ(r->path, "/");
}

TEST(MetricsHttpRequestTest, RejectsMalformedRequestLines) {
  for (absl::string_view bad :
       {"\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n",
        "GET  /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1 x\r\n\r\n",
        "G(T /metrics HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
        "GET http://h/metrics HTTP/1.1\r\n\r\n", "GET /a\x01 HTTP/1.1\r\n\r\n",
        "GET /metrics FTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x05\n\n"}) {
    EXPECT_EQ(ParseRequestLine(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(ParseRequestLine("GET /metrics HTTP/2.0\r\n\r\n").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(MetricsHttpResponseTest, SerializesHeadersAndBody) {
  HttpResponse r;
  r.status = 405;
  r.body = "no\n";
  r.allow = "GET, HEAD";
  EXPECT_EQ(SerializeResponse(r, false),
            "HTTP/1.1 405 Method Not Allowed\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 3\r\nConnection: close\r\n"
            "Allow: GET, HEAD\r\n\r\nno\n");
  r.allow.clear();
  r.status = 200;
  EXPECT_EQ(SerializeResponse(r, true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\n");
}

TEST(MetricsHostPortTest, ParsesListenAddresses) {
  struct Case {
    absl::string_view address;
    std::string host;
    uint16_t port;
  };
  for (const Case& c :
       {Case{"0.0.0.0:9464", "0.0.0.0", 9464},
        Case{"localhost:0", "localhost", 0}, Case{"[::1]:80", "::1", 80},
        Case{"[::]:65535", "::", 65535}, Case{":9464", "", 9464}}) {
    absl::StatusOr<HostPort> hp = ParseHostPort(c.address);
    ASSERT_TRUE(hp.ok()) << c.address << ": " << hp.status();
    EXPECT_EQ(hp->host, c.host);
    EXPECT_EQ(hp->port, c.port);
  }
  for (absl::string_view bad :
       {"", "9464", "host:", "host:http", "host:65536", "host:-1", "::1:80",
        "[::1]80", "[::1", "host:12a"}) {
    EXPECT_EQ(ParseHostPort(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace tensorpager::http
