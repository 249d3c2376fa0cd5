// The byte stream an HTTP connection reads its request from and writes its
// response to: the socket itself, or TLS over it (tls_stream.h). Both are
// non-blocking; a call that would block says which poll() event to wait
// for, since a TLS read may need to write (a handshake) and the reverse.
#ifndef TENSORPAGER_SERVER_HTTP_BYTE_STREAM_H_
#define TENSORPAGER_SERVER_HTTP_BYTE_STREAM_H_

#include <poll.h>

#include <cstddef>
#include <memory>

#include "server/http/scoped_fd.h"

namespace tensorpager::http {

class ByteStream {
 public:
  enum class Outcome {
    kBytes,       // `bytes` were read or written (more than 0)
    kEnd,         // the peer closed its side
    kWouldBlock,  // try again once poll() reports `wait_for`
    kError,       // the connection is unusable
  };
  struct Result {
    Outcome outcome;
    size_t bytes = 0;
    short wait_for = POLLIN;
  };

  virtual ~ByteStream() = default;
  virtual int fd() const = 0;
  virtual Result Read(char* buffer, size_t size) = 0;
  virtual Result Write(const char* data, size_t size) = 0;
  // Ends this side's writing, so the peer sees the end of the response.
  virtual void CloseWrite() = 0;
};

// The socket itself.
std::unique_ptr<ByteStream> PlainStream(ScopedFd fd);

}  // namespace tensorpager::http

#endif  // TENSORPAGER_SERVER_HTTP_BYTE_STREAM_H_
