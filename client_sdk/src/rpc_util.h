// Small helpers shared by the SDK's RPC code.
#ifndef TENSORPAGER_CLIENT_SDK_SRC_RPC_UTIL_H_
#define TENSORPAGER_CLIENT_SDK_SRC_RPC_UTIL_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tensorpager::internal {

// The server's code and message, unchanged.
inline absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

inline void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

// Runs `call` (which fills a fresh context) again while it fails with
// UNAVAILABLE (a server restarting), up to `max_retries` times. Only for
// calls that are safe to repeat.
template <typename Fn>
grpc::Status WithRetries(absl::Duration timeout, int max_retries,
                         absl::Duration backoff, Fn call) {
  grpc::Status s;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout);
    s = call(ctx);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE ||
        attempt >= max_retries) {
      return s;
    }
    std::this_thread::sleep_for(
        absl::ToChronoNanoseconds(backoff * (attempt + 1)));
  }
}

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_RPC_UTIL_H_
