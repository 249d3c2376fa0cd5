#include "client_sdk/python/native/log_bridge.h"

#include <pybind11/pybind11.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_sdk/python/native/gil.h"
#include "storage/base/log.h"
#include "tensorpager/client.h"

namespace tensorpager::python {
namespace py = pybind11;

namespace {

std::mutex clients_mu;
// Weak: the Python objects own their clients; this only finds the ones
// still open at exit.
std::vector<std::weak_ptr<Client>>& Clients() {
  static auto* clients = new std::vector<std::weak_ptr<Client>>();
  return *clients;
}

// logging's level for the SDK's severity letter (base::FormatLogLine).
int LevelOf(char letter) {
  switch (letter) {
    case 'W':
      return 30;  // logging.WARNING
    case 'E':
      return 40;  // logging.ERROR
    default:
      return 20;  // logging.INFO
  }
}

// "<letter><time> tensorpager-sdk: <message>": Python's logging adds its
// own time and name, so only the message goes on.
absl::string_view MessageOf(absl::string_view line) {
  const size_t space = line.find(' ');
  if (space == absl::string_view::npos) return line;
  absl::string_view rest = line.substr(space + 1);
  const size_t colon = rest.find(": ");
  return colon == absl::string_view::npos ? rest : rest.substr(colon + 2);
}

void Forward(absl::string_view line) {
  if (!PythonAlive()) {
    base::WriteToStderr(absl::StrCat(line, "\n"));
    return;
  }
  const int level = line.empty() ? 20 : LevelOf(line[0]);
  const std::string message(MessageOf(line));
  py::gil_scoped_acquire gil;
  if (!PythonAlive()) {
    base::WriteToStderr(absl::StrCat(line, "\n"));
    return;
  }
  try {
    py::module_::import("logging")
        .attr("getLogger")("tensorpager")
        .attr("log")(level, "%s", message);
  } catch (py::error_already_set& e) {
    // A failing handler must not take the SDK's thread down with it.
    e.discard_as_unraisable("tensorpager log sink");
    base::WriteToStderr(absl::StrCat(line, "\n"));
  }
}

}  // namespace

std::function<void(absl::string_view)> PythonLogSink() { return Forward; }

void TrackClient(const std::shared_ptr<Client>& client) {
  std::lock_guard<std::mutex> lock(clients_mu);
  std::vector<std::weak_ptr<Client>>& clients = Clients();
  std::erase_if(clients,
                [](const std::weak_ptr<Client>& c) { return c.expired(); });
  clients.push_back(client);
}

void ShutdownAtExit() {
  MarkPythonExiting();
  std::vector<std::shared_ptr<Client>> open;
  {
    std::lock_guard<std::mutex> lock(clients_mu);
    for (const std::weak_ptr<Client>& weak : Clients()) {
      if (std::shared_ptr<Client> c = weak.lock()) open.push_back(c);
    }
    Clients().clear();
  }
  // A thread may be waiting for the GIL to log a line it began before the
  // exit was marked, or to return from a call: release it so that such
  // threads get it now, before finalization (the main thread may take it
  // back; see gil.h).
  GilRelease release;
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // All at once: a server that does not answer holds each Close for up to
  // one RPC timeout (the SDK detaches its shared memory), so the exit
  // waits one timeout, not one per client.
  std::vector<std::thread> closers;
  for (const std::shared_ptr<Client>& c : open) {
    closers.emplace_back([c] {
      if (absl::Status s = c->Close(); !s.ok()) {
        base::WriteToStderr(absl::StrCat(
            "tensorpager: closing a client at exit: ", s.ToString(), "\n"));
      }
    });
  }
  for (std::thread& t : closers) t.join();
  open.clear();
}

}  // namespace tensorpager::python
