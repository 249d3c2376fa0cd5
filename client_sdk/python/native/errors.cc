#include "client_sdk/python/native/errors.h"

#include <string>

namespace tensorpager::python {
namespace py = pybind11;

py::object ErrorFor(const absl::Status& status) {
  // Imported per error rather than cached in a static: errors are rare,
  // sys.modules makes the import a dict lookup, and a cached py::object
  // would outlive the interpreter.
  py::module_ errors = py::module_::import("tensorpager.errors");
  return errors.attr("from_status")(static_cast<int>(status.code()),
                                    std::string(status.message()));
}

void RegisterErrors(py::module_& m) {
  static_cast<void>(m);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      try {
        py::object error = ErrorFor(e.status());
        PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())),
                        error.ptr());
      } catch (const py::error_already_set&) {
        // _native imported without its package: still say what failed.
        PyErr_SetString(PyExc_RuntimeError, e.what());
      }
    }
  });
}

}  // namespace tensorpager::python
