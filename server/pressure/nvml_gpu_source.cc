#include "server/pressure/nvml_gpu_source.h"

#include <dlfcn.h>

#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::server {
namespace {

// The few NVML declarations used, as in nvml.h (ABI-stable since the _v2
// entry points of CUDA 5); declared here so no NVML header is needed.
using NvmlReturn = int;
constexpr NvmlReturn kNvmlSuccess = 0;
struct NvmlDeviceOpaque;
using NvmlDevice = NvmlDeviceOpaque*;
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr unsigned kNvmlDeviceNameBufferSize = 96;

using InitFn = NvmlReturn (*)();
using ShutdownFn = NvmlReturn (*)();
using GetCountFn = NvmlReturn (*)(unsigned*);
using GetHandleFn = NvmlReturn (*)(unsigned, NvmlDevice*);
using GetMemoryFn = NvmlReturn (*)(NvmlDevice, NvmlMemory*);
using GetNameFn = NvmlReturn (*)(NvmlDevice, char*, unsigned);
using ErrorStringFn = const char* (*)(NvmlReturn);

struct DlCloser {
  void operator()(void* handle) const { dlclose(handle); }
};

template <typename Fn>
absl::Status Bind(void* library, const char* symbol, Fn* out) {
  void* address = dlsym(library, symbol);
  if (address == nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        "NVML library lacks ", symbol, " (driver older than the _v2 API?)"));
  }
  *out = reinterpret_cast<Fn>(address);
  return absl::OkStatus();
}

}  // namespace

struct NvmlGpuSource::Api {
  std::unique_ptr<void, DlCloser> library;
  InitFn init = nullptr;
  ShutdownFn shutdown = nullptr;
  GetCountFn get_count = nullptr;
  GetHandleFn get_handle = nullptr;
  GetMemoryFn get_memory = nullptr;
  GetNameFn get_name = nullptr;  // optional
  ErrorStringFn error_string = nullptr;
  bool initialized = false;
  std::vector<NvmlDevice> devices;
  std::vector<std::string> names;

  std::string Error(NvmlReturn code) const {
    return absl::StrCat(error_string != nullptr ? error_string(code) : "error",
                        " (NVML code ", code, ")");
  }

  ~Api() {
    if (initialized) shutdown();
  }
};

absl::StatusOr<std::unique_ptr<NvmlGpuSource>> NvmlGpuSource::Open(
    absl::string_view library) {
  auto api = std::make_unique<Api>();
  const std::string library_name(library);
  api->library.reset(dlopen(library_name.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (api->library == nullptr) {
    const char* error = dlerror();
    return absl::NotFoundError(absl::StrCat(
        "dlopen failed: ", error != nullptr ? error : "unknown dlopen error"));
  }
  void* handle = api->library.get();
  for (absl::Status status :
       {Bind(handle, "nvmlInit_v2", &api->init),
        Bind(handle, "nvmlShutdown", &api->shutdown),
        Bind(handle, "nvmlDeviceGetCount_v2", &api->get_count),
        Bind(handle, "nvmlDeviceGetHandleByIndex_v2", &api->get_handle),
        Bind(handle, "nvmlDeviceGetMemoryInfo", &api->get_memory),
        Bind(handle, "nvmlErrorString", &api->error_string)}) {
    if (!status.ok()) return status;
  }
  if (!Bind(handle, "nvmlDeviceGetName", &api->get_name).ok()) {
    api->get_name = nullptr;
  }

  if (NvmlReturn rc = api->init(); rc != kNvmlSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("nvmlInit_v2 failed: ", api->Error(rc)));
  }
  api->initialized = true;
  unsigned count = 0;
  if (NvmlReturn rc = api->get_count(&count); rc != kNvmlSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("nvmlDeviceGetCount_v2 failed: ", api->Error(rc)));
  }
  for (unsigned index = 0; index < count; ++index) {
    NvmlDevice device = nullptr;
    if (NvmlReturn rc = api->get_handle(index, &device); rc != kNvmlSuccess) {
      return absl::FailedPreconditionError(
          absl::StrCat("nvmlDeviceGetHandleByIndex_v2(", index,
                       ") failed: ", api->Error(rc)));
    }
    char name[kNvmlDeviceNameBufferSize] = {};
    if (api->get_name == nullptr ||
        api->get_name(device, name, sizeof(name)) != kNvmlSuccess) {
      name[0] = '\0';
    }
    api->devices.push_back(device);
    api->names.emplace_back(name);
  }
  return absl::WrapUnique(new NvmlGpuSource(std::move(api)));
}

NvmlGpuSource::NvmlGpuSource(std::unique_ptr<Api> api) : api_(std::move(api)) {}

NvmlGpuSource::~NvmlGpuSource() = default;

size_t NvmlGpuSource::device_count() const { return api_->devices.size(); }

absl::StatusOr<std::vector<GpuMemory>> NvmlGpuSource::Sample() {
  std::vector<GpuMemory> gpus;
  gpus.reserve(api_->devices.size());
  for (size_t index = 0; index < api_->devices.size(); ++index) {
    NvmlMemory memory{};
    if (NvmlReturn rc = api_->get_memory(api_->devices[index], &memory);
        rc != kNvmlSuccess) {
      return absl::UnavailableError(absl::StrCat(
          "nvmlDeviceGetMemoryInfo(gpu", index, ") failed: ", api_->Error(rc)));
    }
    gpus.push_back(GpuMemory{.device = static_cast<uint32_t>(index),
                             .name = api_->names[index],
                             .used_bytes = memory.used,
                             .total_bytes = memory.total});
  }
  return gpus;
}

}  // namespace tensorpager::server
