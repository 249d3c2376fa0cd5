#include "client_sdk/python/native/gil.h"

#include <atomic>
#include <chrono>
#include <thread>

namespace tensorpager::python {
namespace {
std::atomic<bool> python_alive{true};
std::atomic<std::thread::id> exiting_thread;
}  // namespace

GilRelease::~GilRelease() {
  if (!python_alive.load() &&
      std::this_thread::get_id() != exiting_thread.load()) {
    // See gil.h: the process is ending; this thread must not unwind.
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }
  PyEval_RestoreThread(state_);
}

bool PythonAlive() { return python_alive.load(); }

void MarkPythonExiting() {
  exiting_thread.store(std::this_thread::get_id());
  python_alive.store(false);
}

}  // namespace tensorpager::python
