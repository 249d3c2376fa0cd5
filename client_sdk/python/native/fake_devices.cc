// The tests-only part of NativeClient: memory on the simulated device of
// a client made with fake_devices (see native_client.h).
#include <cstring>
#include <string_view>

#include "client_sdk/python/native/errors.h"
#include "client_sdk/python/native/native_client.h"

namespace tensorpager::python {
namespace py = pybind11;

testing::FakeDeviceRuntime& NativeClient::fake() {
  if (fake_ == nullptr) {
    throw StatusError(absl::FailedPreconditionError(
        "no simulated device: construct the client with fake_devices"));
  }
  return *fake_;
}

uintptr_t NativeClient::FakeDeviceAlloc(int device, uint64_t size) {
  return reinterpret_cast<uintptr_t>(
      ValueOrThrow(fake().AllocDevice(device, size)));
}

void NativeClient::FakeDeviceFree(int device, uintptr_t address) {
  if (!fake().IsDeviceMemory(device, reinterpret_cast<void*>(address))) {
    throw py::value_error("not simulated device memory");
  }
  fake().FreeDevice(device, reinterpret_cast<void*>(address));
}

namespace {
// [address, address + size) inside one simulated allocation: its first
// and last byte are (allocations do not touch, so both lie in the same).
void CheckFakeRange(testing::FakeDeviceRuntime& fake, int device,
                    uintptr_t address, uint64_t size) {
  if (size == 0) return;
  if (!fake.IsDeviceMemory(device, reinterpret_cast<void*>(address)) ||
      !fake.IsDeviceMemory(device,
                           reinterpret_cast<void*>(address + size - 1))) {
    throw py::value_error("outside simulated device memory");
  }
}
}  // namespace

void NativeClient::FakeDeviceWrite(int device, uintptr_t address,
                                   py::bytes data) {
  const std::string_view bytes = data;
  CheckFakeRange(fake(), device, address, bytes.size());
  std::memcpy(reinterpret_cast<void*>(address), bytes.data(), bytes.size());
}

py::bytes NativeClient::FakeDeviceRead(int device, uintptr_t address,
                                       uint64_t size) {
  CheckFakeRange(fake(), device, address, size);
  return py::bytes(reinterpret_cast<const char*>(address), size);
}

}  // namespace tensorpager::python
