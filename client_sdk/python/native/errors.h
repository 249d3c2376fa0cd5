// absl::Status errors as Python exceptions. Native code throws StatusError;
// the translator turns it into the tensorpager.Error subclass of its gRPC
// code (tensorpager/errors.py), carrying the code and the server's message.
#ifndef TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_ERRORS_H_
#define TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_ERRORS_H_

#include <pybind11/pybind11.h>

#include <exception>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tensorpager::python {

class StatusError : public std::exception {
 public:
  explicit StatusError(absl::Status status)
      : status_(std::move(status)), what_(status_.ToString()) {}
  const absl::Status& status() const { return status_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  absl::Status status_;
  std::string what_;
};

inline void ThrowIfError(absl::Status status) {
  if (!status.ok()) throw StatusError(std::move(status));
}

template <typename T>
T ValueOrThrow(absl::StatusOr<T> result) {
  if (!result.ok()) throw StatusError(std::move(result).status());
  return *std::move(result);
}

// tensorpager.errors.from_status(code, message): the exception instance
// for one block's outcome in a batch (built with the GIL held).
pybind11::object ErrorFor(const absl::Status& status);

// Registers the StatusError translator.
void RegisterErrors(pybind11::module_& m);

}  // namespace tensorpager::python

#endif  // TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_ERRORS_H_
