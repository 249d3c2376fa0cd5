// tensorpager._native: the C++ SDK for tensorpager/client.py. Not a public
// API; tensorpager/_native.pyi describes it.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>

#include "client_sdk/python/native/errors.h"
#include "client_sdk/python/native/log_bridge.h"
#include "client_sdk/python/native/native_client.h"
#include "client_sdk/python/native/pressure_watch.h"

namespace tensorpager::python {
namespace py = pybind11;
using py::arg;

namespace {

void DefineClient(py::module_& m) {
  NativeOptions d;
  py::class_<NativeClient>(m, "Client")
      .def(py::init(
               [](const std::string& target, double timeout_s, int max_retries,
                  int connections, uint64_t shared_memory_bytes,
                  const std::string& client_id, uint64_t host_cache_bytes,
                  bool watch_pressure, bool tune_allocator, bool python_logging,
                  const std::string& token, const std::string& tls_ca_file,
                  const std::string& tls_cert_file,
                  const std::string& tls_key_file,
                  const std::string& tls_server_name, int fake_devices) {
                 NativeOptions o;
                 o.timeout_s = timeout_s;
                 o.max_retries = max_retries;
                 o.connections = connections;
                 o.shared_memory_bytes = shared_memory_bytes;
                 o.client_id = client_id;
                 o.host_cache_bytes = host_cache_bytes;
                 o.watch_pressure = watch_pressure;
                 o.tune_allocator = tune_allocator;
                 o.python_logging = python_logging;
                 o.token = token;
                 o.tls_ca_file = tls_ca_file;
                 o.tls_cert_file = tls_cert_file;
                 o.tls_key_file = tls_key_file;
                 o.tls_server_name = tls_server_name;
                 o.fake_devices = fake_devices;
                 return std::make_unique<NativeClient>(target, o);
               }),
           arg("target"), py::kw_only(), arg("timeout_s") = d.timeout_s,
           arg("max_retries") = d.max_retries,
           arg("connections") = d.connections,
           arg("shared_memory_bytes") = d.shared_memory_bytes,
           arg("client_id") = d.client_id,
           arg("host_cache_bytes") = d.host_cache_bytes,
           arg("watch_pressure") = d.watch_pressure,
           arg("tune_allocator") = d.tune_allocator,
           arg("python_logging") = d.python_logging, arg("token") = "",
           arg("tls_ca_file") = "", arg("tls_cert_file") = "",
           arg("tls_key_file") = "", arg("tls_server_name") = "",
           arg("fake_devices") = d.fake_devices)
      .def("wait_until_ready", &NativeClient::WaitUntilReady, arg("timeout_s"))
      .def("close", &NativeClient::Close)
      .def_property_readonly("closed", &NativeClient::closed)
      .def("lookup", &NativeClient::Lookup, arg("ns"), arg("ids"))
      .def("put_batch", &NativeClient::PutBatch, arg("ns"), arg("items"),
           arg("durable") = py::none())
      .def("get_batch", &NativeClient::GetBatch, arg("ns"), arg("items"))
      .def("unregister_batch", &NativeClient::UnregisterBatch, arg("ns"),
           arg("ids"))
      .def("unregister_prefix", &NativeClient::UnregisterPrefix, arg("ns"),
           arg("prefix"))
      .def("batch_path", &NativeClient::BatchPath)
      .def("unregister", &NativeClient::Unregister, arg("ns"), arg("id"))
      .def("get_info", &NativeClient::GetInfo, arg("ns"), arg("id"))
      .def("swap_out", &NativeClient::SwapOut, arg("ns"), arg("ids"))
      .def("swap_in", &NativeClient::SwapIn, arg("ns"), arg("ids"))
      .def("list_page", &NativeClient::ListPage, arg("ns"), arg("prefix"),
           arg("tier"), arg("region_type"), arg("page_token"), arg("page_size"))
      .def("pin", &NativeClient::Pin, arg("ns"), arg("id"))
      .def("unpin", &NativeClient::Unpin, arg("ns"), arg("id"))
      .def("status", &NativeClient::Status)
      .def("put_from_device", &NativeClient::PutFromDevice, arg("ns"),
           arg("item"), arg("device"), arg("durable") = py::none())
      .def("access_device", &NativeClient::AccessDevice, arg("ns"), arg("id"),
           arg("device"))
      .def(
          "watch_pressure",
          [](NativeClient& c, bool send_current) {
            return std::make_unique<PressureWatch>(c.channel(), send_current);
          },
          arg("send_current") = true)
      .def_property_readonly("host_mode", &NativeClient::host_mode)
      .def_property_readonly("device_count", &NativeClient::device_count)
      .def_property_readonly("device_runtime_name",
                             &NativeClient::device_runtime_name)
      .def_property_readonly("device_unavailable_reason",
                             &NativeClient::device_unavailable_reason)
      .def_property_readonly("client_id", &NativeClient::client_id)
      // Tests only (fake_devices): see native_client.h.
      .def("fake_device_alloc", &NativeClient::FakeDeviceAlloc, arg("device"),
           arg("size"))
      .def("fake_device_free", &NativeClient::FakeDeviceFree, arg("device"),
           arg("address"))
      .def("fake_device_write", &NativeClient::FakeDeviceWrite, arg("device"),
           arg("address"), arg("data"))
      .def("fake_device_read", &NativeClient::FakeDeviceRead, arg("device"),
           arg("address"), arg("size"));
}

void DefineDeviceBlock(py::module_& m) {
  py::class_<DeviceBlock>(m, "DeviceBlock")
      .def_property_readonly("address", &DeviceBlock::address)
      .def_property_readonly("size", &DeviceBlock::size)
      .def_property_readonly("device", &DeviceBlock::device)
      .def_property_readonly("valid", &DeviceBlock::valid)
      .def("release", &DeviceBlock::Release)
      // Lets torch.as_tensor(block, device=...) view the bytes in place
      // (one-dimensional uint8, read-only) for a device-to-device copy.
      .def_property_readonly("__cuda_array_interface__",
                             [](const DeviceBlock& b) {
                               py::dict i;
                               i["shape"] = py::make_tuple(b.size());
                               i["typestr"] = "|u1";
                               i["data"] = py::make_tuple(b.address(), true);
                               i["version"] = 2;
                               return i;
                             });
}

void DefinePressureWatch(py::module_& m) {
  py::class_<PressureWatch>(m, "PressureWatch")
      .def("next", &PressureWatch::Next, arg("timeout_s") = py::none())
      .def("close", &PressureWatch::Close)
      .def_property_readonly("closed", &PressureWatch::closed);
}

}  // namespace

void DefineModule(py::module_& m) {
  m.doc() = "The tensorpager C++ SDK, for the tensorpager package.";
  RegisterErrors(m);
  DefineClient(m);
  DefineDeviceBlock(m);
  DefinePressureWatch(m);
  // Before finalization starts: later SDK log lines go to stderr and every
  // client still open is closed (see log_bridge.h).
  py::module_::import("atexit").attr("register")(
      py::cpp_function(&ShutdownAtExit));
}

}  // namespace tensorpager::python

PYBIND11_MODULE(_native, m) { tensorpager::python::DefineModule(m); }
