#include "client_sdk/python/native/native_client.h"

#include <pybind11/stl.h>

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client_sdk/python/native/buffers.h"
#include "client_sdk/python/native/errors.h"
#include "client_sdk/python/native/gil.h"
#include "client_sdk/python/native/log_bridge.h"
#include "client_sdk/python/native/proto_dict.h"

namespace tensorpager::python {
namespace py = pybind11;

namespace {

// The attributes a put gives a block it creates; shared by the host batch
// path and the device path.
struct PutAttributes {
  v1::RegionType region_type = v1::TENSOR_DATA;
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
  std::map<std::string, std::string> labels;
  v1::Compression compression = v1::COMPRESSION_UNSPECIFIED;
  bool pinned = false;
  std::optional<std::pair<std::string, uint32_t>> sequence;
};

template <typename Enum>
Enum EnumFrom(py::handle value, bool (*valid)(int), const char* what) {
  const int number = value.cast<int>();
  if (!valid(number)) {
    throw py::value_error(absl::StrCat("unknown ", what, " ", number));
  }
  return static_cast<Enum>(number);
}

// Fields 2.. of a put item: (id, data, region_type, dtype, shape, labels,
// compression, pinned, sequence).
PutAttributes AttributesOf(const py::tuple& item) {
  if (item.size() != 9) {
    throw py::type_error("a put item has 9 fields (see _native.pyi)");
  }
  PutAttributes a;
  a.region_type =
      EnumFrom<v1::RegionType>(item[2], v1::RegionType_IsValid, "region type");
  a.dtype = EnumFrom<v1::DType>(item[3], v1::DType_IsValid, "dtype");
  a.shape = item[4].cast<std::vector<int64_t>>();
  a.labels = item[5].cast<std::map<std::string, std::string>>();
  a.compression = EnumFrom<v1::Compression>(item[6], v1::Compression_IsValid,
                                            "compression");
  a.pinned = item[7].cast<bool>();
  if (!item[8].is_none()) {
    a.sequence = item[8].cast<std::pair<std::string, uint32_t>>();
  }
  return a;
}

py::tuple UnregisterResult(const UnregisterOutcome& o) {
  py::list results;
  for (const absl::Status& s : o.results) {
    results.append(
        py::make_tuple(static_cast<int>(s.code()), std::string(s.message())));
  }
  py::object first_failure = py::none();
  if (!o.first_failure.ok()) {
    first_failure = py::make_tuple(static_cast<int>(o.first_failure.code()),
                                   std::string(o.first_failure.message()));
  }
  return py::make_tuple(results, o.blocks_removed, o.ram_bytes_freed,
                        o.disk_bytes_freed, o.blocks_failed, first_failure);
}

// A block id from a str (what the Python layer passes).
std::string IdOf(PyObject* id) {
  Py_ssize_t size = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(id, &size);
  if (utf8 == nullptr) throw py::error_already_set();
  return std::string(utf8, static_cast<size_t>(size));
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The device path's answer to an existing block: PutBatch's rule (same
// size, dtype and shape, else FAILED_PRECONDITION and no change).
absl::Status CheckOverwrite(const BlockName& name, const v1::BlockInfo& info,
                            uint64_t size, const PutAttributes& a) {
  const std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
  if (info.size_bytes() == size && info.dtype() == a.dtype &&
      shape == a.shape) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "block ", name.ToString(), " exists with ", info.size_bytes(),
      " bytes, dtype ", v1::DType_Name(info.dtype()), ", shape ",
      ShapeText(shape), "; the put has ", size, " bytes, dtype ",
      v1::DType_Name(a.dtype), ", shape ", ShapeText(a.shape),
      ": unregister it first"));
}

}  // namespace

uintptr_t DeviceBlock::address() const {
  if (!handle_.valid()) throw py::value_error("the device block is released");
  return reinterpret_cast<uintptr_t>(handle_.data());
}

uint64_t DeviceBlock::size() const {
  if (!handle_.valid()) throw py::value_error("the device block is released");
  return handle_.size();
}

void DeviceBlock::Release() {
  if (!handle_.valid()) return;
  GilRelease release;
  handle_.Release();
}

NativeClient::NativeClient(const std::string& target, const NativeOptions& o) {
  if (!(o.timeout_s > 0)) throw py::value_error("timeout must be positive");
  ClientOptions options;
  options.timeout = absl::Seconds(o.timeout_s);
  options.max_retries = o.max_retries;
  options.connections = o.connections;
  options.shared_memory_bytes = o.shared_memory_bytes;
  options.client_id = o.client_id;
  options.cache.host_budget_bytes = o.host_cache_bytes;
  options.reporting.watch_pressure = o.watch_pressure;
  options.tune_allocator = o.tune_allocator;
  options.token = o.token;
  options.tls_ca_file = o.tls_ca_file;
  options.tls_cert_file = o.tls_cert_file;
  options.tls_key_file = o.tls_key_file;
  options.tls_server_name = o.tls_server_name;
  if (o.python_logging) options.log_sink = PythonLogSink();
  if (o.fake_devices > 0) {
    fake_ = std::make_shared<testing::FakeDeviceRuntime>(
        testing::FakeDeviceRuntime::Options{.devices = o.fake_devices});
    options.device_runtime = fake_;
  }
  absl::StatusOr<std::unique_ptr<Client>> client;
  {
    // Connect starts threads that log through the sink, which takes the
    // GIL.
    GilRelease release;
    client = Client::Connect(target, std::move(options));
  }
  client_ = ValueOrThrow(std::move(client));
  TrackClient(client_);
}

NativeClient::~NativeClient() {
  std::shared_ptr<Client> client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    client.swap(client_);
  }
  if (client == nullptr) return;
  GilRelease release;
  client.reset();  // ~Client closes it, logging what it could not do
}

std::shared_ptr<Client> NativeClient::Use() {
  std::lock_guard<std::mutex> lock(mu_);
  if (client_ == nullptr) {
    throw StatusError(absl::FailedPreconditionError("the client is closed"));
  }
  return client_;
}

void NativeClient::Close() {
  std::shared_ptr<Client> client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    client.swap(client_);
  }
  if (client == nullptr) return;
  absl::Status closed;
  {
    GilRelease release;
    closed = client->Close();
    client.reset();
  }
  ThrowIfError(closed);
}

bool NativeClient::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return client_ == nullptr;
}

void NativeClient::WaitUntilReady(double timeout_s) {
  std::shared_ptr<Client> c = Use();
  absl::Status s;
  {
    GilRelease release;
    s = c->WaitUntilReady(absl::Seconds(timeout_s));
  }
  ThrowIfError(s);
}

py::tuple NativeClient::Lookup(const std::string& ns,
                               const std::vector<std::string>& ids) {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<LookupOutcome> outcome;
  {
    GilRelease release;
    outcome = c->Lookup(ns, ids);
  }
  const LookupOutcome o = ValueOrThrow(std::move(outcome));
  // Three lists rather than a tuple per id: bools and small ints are
  // shared objects, so a lookup of 128 ids builds few.
  const size_t n = o.entries.size();
  py::list present(n);
  py::list tiers(n);
  py::list sizes(n);
  for (size_t i = 0; i < n; ++i) {
    const v1::LookupEntry& e = o.entries[i];
    present[i] = py::bool_(e.present());
    tiers[i] = py::int_(static_cast<int>(e.tier()));
    sizes[i] = py::int_(e.size_bytes());
  }
  return py::make_tuple(std::move(present), std::move(tiers), std::move(sizes),
                        o.prefix_hits);
}

py::list NativeClient::PutBatch(const std::string& ns, py::list items,
                                std::optional<bool> durable) {
  std::shared_ptr<Client> c = Use();
  BufferViews views(items.size());
  std::vector<PutItem> puts;
  puts.reserve(items.size());
  for (py::handle h : items) {
    const py::tuple item = h.cast<py::tuple>();
    PutAttributes a = AttributesOf(item);
    PutItem& p = puts.emplace_back();
    p.id = item[0].cast<std::string>();
    p.data = views.Add(item[1], /*writable=*/false);
    p.region_type = a.region_type;
    p.dtype = a.dtype;
    p.shape = std::move(a.shape);
    p.labels = std::move(a.labels);
    p.sequence = std::move(a.sequence);
    p.compression = a.compression;
    p.pinned = a.pinned;
  }
  absl::StatusOr<std::vector<PutOutcome>> outcomes;
  {
    GilRelease release;
    outcomes = c->PutBatch(ns, puts, durable);
  }
  py::list results;
  for (const PutOutcome& o : ValueOrThrow(std::move(outcomes))) {
    results.append(py::make_tuple(static_cast<int>(o.status.code()),
                                  std::string(o.status.message()), o.created,
                                  o.version, o.durable));
  }
  return results;
}

py::list NativeClient::GetBatch(const std::string& ns, py::list items) {
  std::shared_ptr<Client> c = Use();
  BufferViews views(items.size());
  std::vector<GetItem> gets;
  gets.reserve(items.size());
  // Items that give a size instead of a buffer get a bytes object of it,
  // read into in place: a block wanted as bytes then costs no copy beyond
  // the transfer. Nothing else refers to such an object until it is
  // returned, so writing it with the GIL released is safe.
  std::vector<py::object> made(items.size());
  // A batch of 128 pages spends microseconds per item here, as much as the
  // transfer of a small page: plain CPython calls, no casters.
  for (py::handle h : items) {
    if (!PyTuple_Check(h.ptr()) || PyTuple_GET_SIZE(h.ptr()) != 2) {
      throw py::type_error("a get item is (id, buffer) or (id, size)");
    }
    PyObject* target = PyTuple_GET_ITEM(h.ptr(), 1);
    absl::Span<std::byte> out;
    if (PyLong_Check(target)) {
      const Py_ssize_t n = PyLong_AsSsize_t(target);
      if (n < 0) {
        if (PyErr_Occurred()) throw py::error_already_set();
        throw py::value_error("a get item's size is not negative");
      }
      py::object bytes = py::reinterpret_steal<py::object>(
          PyBytes_FromStringAndSize(nullptr, n));
      if (!bytes) throw py::error_already_set();
      out = {reinterpret_cast<std::byte*>(PyBytes_AS_STRING(bytes.ptr())),
             static_cast<size_t>(n)};
      made[gets.size()] = std::move(bytes);
    } else {
      out = views.Add(target, /*writable=*/true);
    }
    gets.push_back(GetItem{IdOf(PyTuple_GET_ITEM(h.ptr(), 0)), out});
  }
  absl::StatusOr<std::vector<GetOutcome>> outcomes;
  {
    GilRelease release;
    outcomes = c->GetBatch(ns, gets);
  }
  const std::vector<GetOutcome> done = ValueOrThrow(std::move(outcomes));
  py::list results(done.size());
  for (size_t i = 0; i < done.size(); ++i) {
    const GetOutcome& o = done[i];
    py::object value = made[i] ? std::move(made[i]) : py::none();
    if (!o.status.ok()) {
      results[i] = py::make_tuple(
          static_cast<int>(o.status.code()), std::string(o.status.message()), 0,
          0, py::none(), 0, py::none(), false, 0, py::none());
      continue;
    }
    py::list shape(o.shape.size());
    for (size_t d = 0; d < o.shape.size(); ++d) shape[d] = py::int_(o.shape[d]);
    py::dict labels;
    for (const auto& [key, value] : o.labels) labels[py::str(key)] = value;
    results[i] =
        py::make_tuple(0, py::str(), o.size_bytes, static_cast<int>(o.dtype),
                       std::move(shape), static_cast<int>(o.region_type),
                       std::move(labels), o.hit, o.version, std::move(value));
  }
  return results;
}

py::tuple NativeClient::UnregisterBatch(const std::string& ns,
                                        const std::vector<std::string>& ids) {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<UnregisterOutcome> outcome;
  {
    GilRelease release;
    outcome = c->UnregisterBatch(ns, ids);
  }
  return UnregisterResult(ValueOrThrow(std::move(outcome)));
}

py::tuple NativeClient::UnregisterPrefix(const std::string& ns,
                                         const std::string& prefix) {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<UnregisterOutcome> outcome;
  {
    GilRelease release;
    outcome = c->UnregisterPrefix(ns, prefix);
  }
  return UnregisterResult(ValueOrThrow(std::move(outcome)));
}

py::tuple NativeClient::BatchPath() {
  std::shared_ptr<Client> c = Use();
  tensorpager::BatchPath path;
  {
    GilRelease release;  // may attach the segment first
    path = c->batch_path();
  }
  return py::make_tuple(path.shared_memory, path.reason);
}

py::tuple NativeClient::Unregister(const std::string& ns,
                                   const std::string& id) {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<v1::UnregisterBlockResponse> r;
  {
    GilRelease release;
    r = c->Unregister(BlockName(ns, id));
  }
  const v1::UnregisterBlockResponse resp = ValueOrThrow(std::move(r));
  return py::make_tuple(resp.ram_bytes_freed(), resp.disk_bytes_freed());
}

py::dict NativeClient::GetInfo(const std::string& ns, const std::string& id) {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<v1::BlockInfo> r;
  {
    GilRelease release;
    r = c->Get(BlockName(ns, id));
  }
  return MessageToDict(ValueOrThrow(std::move(r)));
}

namespace {
std::vector<BlockName> NamesOf(const std::string& ns,
                               const std::vector<std::string>& ids) {
  std::vector<BlockName> names;
  names.reserve(ids.size());
  for (const std::string& id : ids) names.emplace_back(ns, id);
  return names;
}
}  // namespace

py::dict NativeClient::SwapOut(const std::string& ns,
                               const std::vector<std::string>& ids) {
  std::shared_ptr<Client> c = Use();
  const std::vector<BlockName> names = NamesOf(ns, ids);
  absl::StatusOr<v1::SwapResponse> r;
  {
    GilRelease release;
    r = c->SwapOut(names);
  }
  return MessageToDict(ValueOrThrow(std::move(r)));
}

py::dict NativeClient::SwapIn(const std::string& ns,
                              const std::vector<std::string>& ids) {
  std::shared_ptr<Client> c = Use();
  const std::vector<BlockName> names = NamesOf(ns, ids);
  absl::StatusOr<v1::SwapResponse> r;
  {
    GilRelease release;
    r = c->SwapIn(names);
  }
  return MessageToDict(ValueOrThrow(std::move(r)));
}

py::tuple NativeClient::ListPage(const std::string& ns,
                                 const std::string& prefix, int tier,
                                 int region_type, const std::string& page_token,
                                 uint32_t page_size) {
  std::shared_ptr<Client> c = Use();
  v1::ListBlocksRequest req;
  req.set_namespace_(ns);
  req.set_id_prefix(prefix);
  req.set_tier(static_cast<v1::Tier>(tier));
  req.set_region_type(static_cast<v1::RegionType>(region_type));
  req.set_page_token(page_token);
  req.set_page_size(page_size);
  absl::StatusOr<v1::ListBlocksResponse> r;
  {
    GilRelease release;
    r = c->List(req);
  }
  const v1::ListBlocksResponse page = ValueOrThrow(std::move(r));
  py::list blocks;
  for (const v1::BlockInfo& block : page.blocks()) {
    blocks.append(MessageToDict(block));
  }
  return py::make_tuple(std::move(blocks), page.next_page_token());
}

py::dict NativeClient::Pin(const std::string& ns, const std::string& id) {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<v1::BlockInfo> r;
  {
    GilRelease release;
    r = c->Pin(BlockName(ns, id));
  }
  return MessageToDict(ValueOrThrow(std::move(r)));
}

py::dict NativeClient::Unpin(const std::string& ns, const std::string& id) {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<v1::BlockInfo> r;
  {
    GilRelease release;
    r = c->Unpin(BlockName(ns, id));
  }
  return MessageToDict(ValueOrThrow(std::move(r)));
}

py::dict NativeClient::Status() {
  std::shared_ptr<Client> c = Use();
  absl::StatusOr<v1::StatusResponse> r;
  {
    GilRelease release;
    r = c->Status();
  }
  return MessageToDict(ValueOrThrow(std::move(r)));
}

py::tuple NativeClient::PutFromDevice(const std::string& ns, py::tuple item,
                                      int device, std::optional<bool> durable) {
  std::shared_ptr<Client> c = Use();
  const PutAttributes a = AttributesOf(item);
  const BlockName name(ns, item[0].cast<std::string>());
  if (!PyTuple_Check(item[1].ptr())) {
    throw py::type_error("device memory is passed as (address, size)");
  }
  BufferViews views(1);
  const absl::Span<std::byte> data = views.Add(item[1], /*writable=*/false);
  if (device < 0) throw py::value_error("a device ordinal is >= 0");
  // Refused before anything is registered (WriteFrom would refuse it only
  // after Register).
  const DeviceRuntime& runtime = c->device_runtime();
  if (device >= runtime.device_count()) {
    throw StatusError(absl::FailedPreconditionError(absl::StrCat(
        "cannot read a tensor from cuda:", device, ": ",
        runtime.device_count() == 0
            ? absl::StrCat("the SDK runs in host mode (",
                           runtime.unavailable_reason(), ")")
            : absl::StrCat(runtime.device_count(), " device(s) present"))));
  }
  absl::StatusOr<v1::WriteBlockResponse> written;
  bool created = false;
  {
    GilRelease release;
    BlockSpec spec(name, data.size());
    spec.region_type = a.region_type;
    spec.pinned = a.pinned;
    spec.dtype = a.dtype;
    spec.shape = a.shape;
    spec.labels = a.labels;
    spec.sequence = a.sequence;
    spec.compression = a.compression;
    absl::Status ready = c->Register(spec).status();
    created = ready.ok();
    if (ready.code() == absl::StatusCode::kAlreadyExists) {
      absl::StatusOr<v1::BlockInfo> info = c->Get(name);
      ready = info.ok() ? CheckOverwrite(name, *info, data.size(), a)
                        : info.status();
    }
    if (!ready.ok()) {
      written = ready;
    } else {
      written = c->WriteFrom(name, data.data(), data.size(),
                             Placement::Device(device), 0, durable);
      if (!written.ok() && created) {
        // As Register(spec, data, from): no registered block without bytes.
        static_cast<void>(c->Unregister(name));
      }
    }
  }
  const v1::WriteBlockResponse w = ValueOrThrow(std::move(written));
  return py::make_tuple(created, w.block().version(), w.durable());
}

std::unique_ptr<DeviceBlock> NativeClient::AccessDevice(const std::string& ns,
                                                        const std::string& id,
                                                        int device) {
  std::shared_ptr<Client> c = Use();
  if (device < 0) throw py::value_error("a device ordinal is >= 0");
  absl::StatusOr<BlockHandle> handle;
  {
    GilRelease release;
    handle = c->Access(BlockName(ns, id), Placement::Device(device));
  }
  return std::make_unique<DeviceBlock>(c, ValueOrThrow(std::move(handle)));
}

bool NativeClient::host_mode() { return Use()->host_mode(); }

int NativeClient::device_count() {
  return Use()->device_runtime().device_count();
}

std::string NativeClient::device_runtime_name() {
  return Use()->device_runtime().name();
}

std::string NativeClient::device_unavailable_reason() {
  return Use()->device_runtime().unavailable_reason();
}

std::string NativeClient::client_id() { return Use()->client_id(); }

std::shared_ptr<grpc::Channel> NativeClient::channel() {
  return Use()->channel();
}

}  // namespace tensorpager::python
