#include "server/http/http_connection.h"

#include <poll.h>

#include <algorithm>

#include "absl/status/statusor.h"

namespace tensorpager::http {
namespace {

constexpr size_t kChunkBytes = 4096;
// Reads per readiness event while draining, so that a client streaming
// garbage cannot keep the loop away from the other connections.
constexpr int kMaxDrainReads = 16;
constexpr HttpConnection::Clock::duration kMaxLinger = std::chrono::seconds(2);

}  // namespace

HttpConnection::HttpConnection(std::unique_ptr<ByteStream> stream,
                               Limits limits, Clock::time_point now)
    : stream_(std::move(stream)),
      limits_(limits),
      deadline_(now + limits.request_timeout) {}

short HttpConnection::poll_events() const {
  if (blocked_on_ != 0) return blocked_on_;
  return state_ == State::kWriting ? POLLOUT : POLLIN;
}

void HttpConnection::OnReady(short revents, Clock::time_point now,
                             Handler handler) {
  if (revents & POLLNVAL) {
    Close();
    return;
  }
  // Errors and hang-ups are acted on by the recv/send they make fail, so
  // they take the same path as readiness.
  const short wanted = poll_events() | POLLERR | POLLHUP;
  if (!(revents & wanted)) return;
  switch (state_) {
    case State::kReading:
      Read(now, handler);
      break;
    case State::kWriting:
      Write(now);
      break;
    case State::kDraining:
      Drain();
      break;
    case State::kClosed:
      break;
  }
}

void HttpConnection::OnDeadline(Clock::time_point now) {
  if (state_ == State::kReading) {
    RespondWithError(408, "the request head did not arrive in time\n", now);
  } else {
    Close();
  }
}

void HttpConnection::Read(Clock::time_point now, Handler handler) {
  char chunk[kChunkBytes];
  while (state_ == State::kReading) {
    // Never hold more than one byte past the limit: enough to know it was
    // exceeded.
    const size_t room = limits_.max_request_bytes + 1 - in_.size();
    const ByteStream::Result r =
        stream_->Read(chunk, std::min(room, sizeof(chunk)));
    if (r.outcome != ByteStream::Outcome::kBytes) {
      // End of stream: the client gave up before finishing its request.
      if (r.outcome == ByteStream::Outcome::kWouldBlock) {
        blocked_on_ = r.wait_for;
      } else {
        Close();
      }
      return;
    }
    blocked_on_ = 0;
    in_.append(chunk, r.bytes);
    const std::optional<size_t> head_length = RequestHeadLength(in_);
    if (head_length.has_value() && *head_length <= limits_.max_request_bytes) {
      const absl::StatusOr<HttpRequest> request =
          ParseRequestLine(absl::string_view(in_).substr(0, *head_length));
      if (!request.ok()) {
        const int status = absl::IsUnimplemented(request.status()) ? 505 : 400;
        RespondWithError(status, std::string(request.status().message()) + "\n",
                         now);
        return;
      }
      const HttpResponse response = handler(*request);
      Respond(SerializeResponse(response, request->method == "HEAD"), now,
              limits_.io_timeout);
      return;
    }
    if (in_.size() > limits_.max_request_bytes) {
      RespondWithError(431, "the request head is too large\n", now);
      return;
    }
  }
}

void HttpConnection::RespondWithError(int status, absl::string_view message,
                                      Clock::time_point now) {
  HttpResponse response;
  response.status = status;
  response.body = std::string(message);
  Respond(SerializeResponse(response, /*head_only=*/false), now, LingerTime());
}

void HttpConnection::Respond(std::string wire, Clock::time_point now,
                             Clock::duration time_allowed) {
  // The request (and anything after it) is no longer needed.
  in_.clear();
  in_.shrink_to_fit();
  out_ = std::move(wire);
  out_sent_ = 0;
  state_ = State::kWriting;
  deadline_ = now + time_allowed;
  // The socket is almost always writable: try now rather than after
  // another poll() round.
  Write(now);
}

void HttpConnection::Write(Clock::time_point now) {
  while (out_sent_ < out_.size()) {
    const ByteStream::Result r =
        stream_->Write(out_.data() + out_sent_, out_.size() - out_sent_);
    if (r.outcome != ByteStream::Outcome::kBytes) {
      if (r.outcome == ByteStream::Outcome::kWouldBlock) {
        blocked_on_ = r.wait_for;
      } else {
        Close();
      }
      return;
    }
    blocked_on_ = 0;
    out_sent_ += r.bytes;
  }
  // All sent. Half-close so the client sees the end of the response, then
  // read until it closes too: closing with unread input would make the
  // kernel send a reset, which can destroy the response before the client
  // has read it.
  out_.clear();
  out_.shrink_to_fit();
  stream_->CloseWrite();
  blocked_on_ = 0;
  state_ = State::kDraining;
  deadline_ = std::min(deadline_, now + LingerTime());
  Drain();
}

void HttpConnection::Drain() {
  char chunk[kChunkBytes];
  for (int i = 0; i < kMaxDrainReads; ++i) {
    const ByteStream::Result r = stream_->Read(chunk, sizeof(chunk));
    if (r.outcome == ByteStream::Outcome::kBytes) continue;
    if (r.outcome == ByteStream::Outcome::kWouldBlock) {
      blocked_on_ = r.wait_for;
      return;
    }
    Close();  // end of stream or an error: either way, done
    return;
  }
}

void HttpConnection::Close() {
  stream_.reset();
  state_ = State::kClosed;
}

HttpConnection::Clock::duration HttpConnection::LingerTime() const {
  return std::min(limits_.io_timeout, kMaxLinger);
}

}  // namespace tensorpager::http
