// tensorpager._native.Client: tensorpager::Client for the Python layer
// (tensorpager/client.py). Every call that does I/O or waits releases the
// GIL. Items and results cross as tuples (cheap to build on both sides);
// tensorpager/_native.pyi spells out their fields.
#ifndef TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_NATIVE_CLIENT_H_
#define TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_NATIVE_CLIENT_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client_sdk/testing/fake_device_runtime.h"
#include "tensorpager/client.h"

namespace tensorpager::python {

struct NativeOptions {
  double timeout_s = 60.0;
  int max_retries = 3;
  int connections = 4;
  uint64_t shared_memory_bytes = 64ull << 20;
  std::string client_id;
  uint64_t host_cache_bytes = 1ull << 30;
  bool watch_pressure = true;
  bool tune_allocator = false;
  bool python_logging = true;
  // ClientOptions' token and TLS files (tensorpager/client_options.h).
  std::string token;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;
  // Tests only: a simulated CUDA runtime with this many devices
  // (client_sdk/testing/fake_device_runtime.h), whose "device memory" is
  // host memory, so the device paths run on machines without a GPU.
  int fake_devices = 0;
};

// A block handle on a CUDA device (Client::Access with a device placement)
// for the Python layer to copy from with torch; see
// __cuda_array_interface__ in module.cc.
class DeviceBlock {
 public:
  DeviceBlock(std::shared_ptr<Client> client, BlockHandle handle)
      : client_(std::move(client)), handle_(std::move(handle)) {}
  ~DeviceBlock() { Release(); }
  uintptr_t address() const;
  uint64_t size() const;
  int device() const { return handle_.placement().device(); }
  bool valid() const { return handle_.valid(); }
  // Gives the local copy back to the SDK's cache, with the GIL released:
  // the cache's lock may be held by a thread that waits for the GIL to log.
  void Release();

 private:
  std::shared_ptr<Client> client_;  // handles must not outlive it
  BlockHandle handle_;
};

class NativeClient {
 public:
  NativeClient(const std::string& target, const NativeOptions& options);
  // Closes the client with the GIL released (its threads may be waiting
  // for it to log).
  ~NativeClient();

  void WaitUntilReady(double timeout_s);
  void Close();
  bool closed();

  // ---- Batches: one outcome per item; the call raises only when it
  // fails whole (unreachable server, bad namespace, closed client). ----
  // -> ([present], [tier], [size_bytes], prefix_hits), one per id
  pybind11::tuple Lookup(const std::string& ns,
                         const std::vector<std::string>& ids);
  // items: [(id, data, region_type, dtype, shape, labels, compression,
  // pinned, sequence)]; -> [(code, message, created, version, durable)]
  pybind11::list PutBatch(const std::string& ns, pybind11::list items,
                          std::optional<bool> durable);
  // items: [(id, writable buffer or size)]; -> [(code, message,
  // size_bytes, dtype, shape, region_type, labels, hit, version, value)]:
  // value is the bytes object read into for an item given by size, else
  // None.
  pybind11::list GetBatch(const std::string& ns, pybind11::list items);
  // -> ([(code, message)], blocks_removed, ram_bytes_freed,
  // disk_bytes_freed, blocks_failed, (code, message) of the first failure
  // or None); the prefix form has no per-id results.
  pybind11::tuple UnregisterBatch(const std::string& ns,
                                  const std::vector<std::string>& ids);
  pybind11::tuple UnregisterPrefix(const std::string& ns,
                                   const std::string& prefix);
  // -> (shared_memory, reason)
  pybind11::tuple BatchPath();

  // ---- Single blocks (raise on failure) ----
  // -> (ram_bytes_freed, disk_bytes_freed)
  pybind11::tuple Unregister(const std::string& ns, const std::string& id);
  pybind11::dict GetInfo(const std::string& ns, const std::string& id);
  pybind11::dict SwapOut(const std::string& ns,
                         const std::vector<std::string>& ids);
  pybind11::dict SwapIn(const std::string& ns,
                        const std::vector<std::string>& ids);
  // One page of ListBlocks (tier and region_type 0: any).
  // -> ([BlockInfo dict], next_page_token: "" on the last page)
  pybind11::tuple ListPage(const std::string& ns, const std::string& prefix,
                           int tier, int region_type,
                           const std::string& page_token, uint32_t page_size);
  pybind11::dict Pin(const std::string& ns, const std::string& id);
  pybind11::dict Unpin(const std::string& ns, const std::string& id);
  pybind11::dict Status();

  // A whole block from device memory (a CUDA tensor): registered when new,
  // overwritten when its size, dtype and shape match (FAILED_PRECONDITION
  // otherwise, as for PutBatch). -> (created, version, durable)
  pybind11::tuple PutFromDevice(const std::string& ns, pybind11::tuple item,
                                int device, std::optional<bool> durable);
  std::unique_ptr<DeviceBlock> AccessDevice(const std::string& ns,
                                            const std::string& id, int device);

  bool host_mode();
  int device_count();
  std::string device_runtime_name();
  std::string device_unavailable_reason();
  std::string client_id();
  // The client's channel, for watch_pressure.
  std::shared_ptr<grpc::Channel> channel();

  // Tests only, with fake_devices: memory on a simulated device, and its
  // bytes (checked to lie inside such memory).
  uintptr_t FakeDeviceAlloc(int device, uint64_t size);
  void FakeDeviceFree(int device, uintptr_t address);
  void FakeDeviceWrite(int device, uintptr_t address, pybind11::bytes data);
  pybind11::bytes FakeDeviceRead(int device, uintptr_t address, uint64_t size);

 private:
  // The client for one call; FAILED_PRECONDITION once closed. Calls in
  // flight keep it alive, so close() never frees it under them.
  std::shared_ptr<Client> Use();

  // The simulated device; null unless fake_devices.
  testing::FakeDeviceRuntime& fake();

  std::mutex mu_;
  std::shared_ptr<Client> client_;  // guarded by mu_; null once closed
  std::shared_ptr<testing::FakeDeviceRuntime> fake_;
};

}  // namespace tensorpager::python

#endif  // TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_NATIVE_CLIENT_H_
