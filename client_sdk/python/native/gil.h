// Releasing the GIL around blocking calls, safely at interpreter exit.
//
// Python 3.11 ends a thread that asks for the GIL once finalization has
// begun with pthread_exit. Unwinding that through C++ frames aborts the
// process as soon as it meets a noexcept one (a destructor that takes the
// GIL back, such as pybind11's gil_scoped_release). So a daemon thread that
// comes back from the SDK after the interpreter began to exit must not ask
// for the GIL: it waits for the process to end instead, as Python 3.14
// does with such threads. The atexit hook (log_bridge.h) marks the exit.
#ifndef TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_GIL_H_
#define TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_GIL_H_

#include <pybind11/pybind11.h>  // Python.h, included the way pybind11 needs

namespace tensorpager::python {

class GilRelease {
 public:
  GilRelease() : state_(PyEval_SaveThread()) {}
  ~GilRelease();
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;

 private:
  PyThreadState* state_;
};

// False once the interpreter began to exit (MarkPythonExiting).
bool PythonAlive();
// Called with the GIL, before finalization, by the thread that will
// finalize (atexit runs there): it alone may still take the GIL back.
void MarkPythonExiting();

}  // namespace tensorpager::python

#endif  // TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_GIL_H_
