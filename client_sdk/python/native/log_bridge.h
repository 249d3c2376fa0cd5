// The SDK's log lines (ClientOptions::log_sink) into Python's
// logging.getLogger("tensorpager"). The SDK logs from its own threads, so
// the sink takes the GIL; at interpreter exit (atexit, before finalization
// starts) the bridge closes and lines go to stderr instead, because a
// thread that asks for the GIL during finalization is stopped in place.
#ifndef TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_LOG_BRIDGE_H_
#define TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_LOG_BRIDGE_H_

#include <functional>
#include <memory>

#include "absl/strings/string_view.h"

namespace tensorpager {
class Client;
}  // namespace tensorpager

namespace tensorpager::python {

// A log_sink for ClientOptions that forwards to Python logging.
std::function<void(absl::string_view)> PythonLogSink();

// Clients to close at interpreter exit, so that none of their threads
// is left running into finalization.
void TrackClient(const std::shared_ptr<Client>& client);

// The atexit hook: sends later lines to stderr and closes every tracked
// client, all at once (a server that does not answer delays the exit by
// up to one RPC timeout). Call with the GIL held; it releases it while
// clients close.
void ShutdownAtExit();

}  // namespace tensorpager::python

#endif  // TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_LOG_BRIDGE_H_
