// Python objects as (pointer, length) spans, without copying: any object
// with the buffer protocol (bytes, bytearray, memoryview, numpy arrays), or
// an (address, size) tuple that the Python layer built from a torch
// tensor's data_ptr() and which it keeps alive for the call.
#ifndef TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_BUFFERS_H_
#define TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_BUFFERS_H_

#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/types/span.h"

namespace tensorpager::python {

// Views of many objects at once. Acquire and destroy it with the GIL held;
// the spans stay valid in between, also while the GIL is released.
class BufferViews {
 public:
  explicit BufferViews(size_t capacity);
  ~BufferViews();
  BufferViews(const BufferViews&) = delete;
  BufferViews& operator=(const BufferViews&) = delete;

  // The bytes of `object`, C-contiguous, writable when asked. Throws
  // TypeError, BufferError or ValueError as Python would.
  absl::Span<std::byte> Add(pybind11::handle object, bool writable);

 private:
  // Py_buffer must not move: the exporter may keep pointers into it.
  std::unique_ptr<Py_buffer[]> views_;
  size_t capacity_;
  size_t used_ = 0;
};

}  // namespace tensorpager::python

#endif  // TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_BUFFERS_H_
