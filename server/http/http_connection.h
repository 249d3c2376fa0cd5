// One accepted connection of the HTTP server (http_server.h), as a state
// machine the server's poll() loop drives: read the request head, write
// the response, half-close, drain what the client still sends, close.
// It reads and writes a ByteStream: the socket, or TLS over it.
#ifndef TENSORPAGER_SERVER_HTTP_HTTP_CONNECTION_H_
#define TENSORPAGER_SERVER_HTTP_HTTP_CONNECTION_H_

#include <chrono>
#include <cstddef>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "server/http/byte_stream.h"
#include "server/http/http_request.h"
#include "server/http/http_response.h"

namespace tensorpager::http {

class HttpConnection {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = absl::FunctionRef<HttpResponse(const HttpRequest&)>;

  struct Limits {
    // To send the request head, counted from the accept.
    Clock::duration request_timeout;
    // To take the response.
    Clock::duration io_timeout;
    size_t max_request_bytes;
  };

  // `stream`: over a connected, non-blocking socket.
  HttpConnection(std::unique_ptr<ByteStream> stream, Limits limits,
                 Clock::time_point now);

  int fd() const { return stream_ != nullptr ? stream_->fd() : -1; }
  // What to poll() for: POLLIN or POLLOUT.
  short poll_events() const;
  Clock::time_point deadline() const { return deadline_; }
  bool closed() const { return state_ == State::kClosed; }
  // Still waiting for (the rest of) its request head.
  bool awaiting_request() const { return state_ == State::kReading; }
  // Has sent no byte yet.
  bool silent() const { return awaiting_request() && in_.empty(); }

  // Acts on poll()'s revents; runs `handler` once a whole request head
  // has arrived and parses.
  void OnReady(short revents, Clock::time_point now, Handler handler);

  // Called at or after deadline(): a client that has not finished its
  // request head gets 408, any other is dropped.
  void OnDeadline(Clock::time_point now);

  // Closes the connection at once, without a response: its slot is wanted
  // for a new one.
  void Evict() { Close(); }

 private:
  enum class State { kReading, kWriting, kDraining, kClosed };

  void Read(Clock::time_point now, Handler handler);
  void Respond(std::string wire, Clock::time_point now,
               Clock::duration time_allowed);
  void RespondWithError(int status, absl::string_view message,
                        Clock::time_point now);
  void Write(Clock::time_point now);
  void Drain();
  void Close();
  // How long a closing connection may linger: enough for the kernel to
  // deliver the last bytes, short enough that a client that never reads
  // cannot hold a slot.
  Clock::duration LingerTime() const;

  std::unique_ptr<ByteStream> stream_;
  // What the stream's last call that would have blocked waits for (a TLS
  // read may need to write); 0 after progress.
  short blocked_on_ = 0;
  const Limits limits_;
  State state_ = State::kReading;
  Clock::time_point deadline_;
  std::string in_;
  std::string out_;
  size_t out_sent_ = 0;
};

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_HTTP_CONNECTION_H_
