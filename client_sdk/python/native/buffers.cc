#include "client_sdk/python/native/buffers.h"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace tensorpager::python {
namespace py = pybind11;

BufferViews::BufferViews(size_t capacity)
    : views_(new Py_buffer[capacity]), capacity_(capacity) {}

BufferViews::~BufferViews() {
  for (size_t i = 0; i < used_; ++i) PyBuffer_Release(&views_[i]);
}

absl::Span<std::byte> BufferViews::Add(py::handle object, bool writable) {
  if (PyTuple_Check(object.ptr())) {
    // (address, size): the Python layer holds the tensor for the call.
    py::tuple raw = py::reinterpret_borrow<py::tuple>(object);
    if (raw.size() != 2) {
      throw py::type_error("a raw buffer is an (address, size) tuple");
    }
    const auto address = raw[0].cast<uintptr_t>();
    const auto size = raw[1].cast<uint64_t>();
    if (address == 0 && size != 0) {
      throw py::value_error("a raw buffer's address is null");
    }
    return absl::Span<std::byte>(reinterpret_cast<std::byte*>(address),
                                 static_cast<size_t>(size));
  }
  if (!PyObject_CheckBuffer(object.ptr())) {
    throw py::type_error(
        std::string("expected bytes, bytearray, memoryview, a numpy array "
                    "or a torch tensor, not ") +
        Py_TYPE(object.ptr())->tp_name);
  }
  if (writable && PyBytes_Check(object.ptr())) {
    throw py::type_error(
        "bytes are immutable: read into a bytearray, a numpy array or a "
        "torch tensor");
  }
  if (used_ == capacity_) throw std::logic_error("BufferViews is full");
  Py_buffer* view = &views_[used_];
  const int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(object.ptr(), view, flags) != 0) {
    throw py::error_already_set();
  }
  ++used_;
  return absl::Span<std::byte>(static_cast<std::byte*>(view->buf),
                               static_cast<size_t>(view->len));
}

}  // namespace tensorpager::python
