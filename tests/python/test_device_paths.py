"""The native CUDA paths (put from device memory, Access on a device) on a
simulated device: tensorpager._native's fake_devices option puts the
SDK's fake runtime (client_sdk/testing) under the client, whose "device
memory" is host memory the fake tracks and checks. The torch side of
these paths (CUDA tensors) is in test_tensors.py and needs a GPU."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

import tensorpager
from conftest import MiB, pattern
from tensorpager import _native
from tensorpager._values import LABEL_KIND
from tensorpagerd_process import ServerProcess


@pytest.fixture(params=["shm", "tcp"])
def native(request, server: ServerProcess) -> Iterator[_native.Client]:
    c = _native.Client(
        server.target, fake_devices=1,
        shared_memory_bytes=0 if request.param == "tcp" else 64 * MiB)
    c.wait_until_ready(30)
    yield c
    c.close()


def put_item(key: str, address: int, size: int, shape: list) -> tuple:
    return (key, (address, size), int(tensorpager.RegionType.KV_CACHE),
            int(tensorpager.DType.UINT8), shape, {LABEL_KIND: "torch"}, 0,
            False, None)


def test_put_from_device_and_access_on_device(
        native: _native.Client, client: tensorpager.Client,
        key: Callable[[str], str]) -> None:
    assert not native.host_mode
    assert native.device_count == 1 and native.device_runtime_name == "fake"
    size = 3 * MiB + 5
    data = pattern(size, 1)
    address = native.fake_device_alloc(0, size)
    native.fake_device_write(0, address, data)

    k = key("kv")
    created, version, durable = native.put_from_device(
        "", put_item(k, address, size, [size]), 0)
    assert created and version >= 1 and not durable
    info = client.info(k)
    assert info["size_bytes"] == size and info["region_type"] == "KV_CACHE"
    assert client.get(k, kind="bytes") == data

    # The same size, dtype and shape overwrite; another shape changes
    # nothing.
    native.fake_device_write(0, address, pattern(size, 2))
    created, again, _ = native.put_from_device(
        "", put_item(k, address, size, [size]), 0, True)
    assert not created and again > version
    with pytest.raises(tensorpager.FailedPrecondition, match="shape"):
        native.put_from_device("", put_item(k, address, size, [1, size]), 0)
    assert client.info(k)["version"] == again
    assert client.get(k, kind="bytes") == pattern(size, 2)

    # Access on the device: a handle on the SDK's copy there.
    block = native.access_device("", k, 0)
    assert block.valid and block.device == 0 and block.size == size
    assert native.fake_device_read(0, block.address, size) == pattern(size, 2)
    interface = block.__cuda_array_interface__
    assert interface["shape"] == (size,) and interface["typestr"] == "|u1"
    assert interface["data"] == (block.address, True)
    block.release()
    assert not block.valid
    with pytest.raises(ValueError):
        block.address
    native.fake_device_free(0, address)


def test_device_path_errors(native: _native.Client,
                            client: tensorpager.Client,
                            key: Callable[[str], str]) -> None:
    # Host memory passed as device memory: the copy fails, and the block
    # the put registered is unregistered again.
    host = bytearray(4096)
    import ctypes
    host_address = ctypes.addressof(ctypes.c_char.from_buffer(host))
    with pytest.raises(tensorpager.Error):
        native.put_from_device("", put_item(key("h"), host_address, 4096,
                                            [4096]), 0)
    assert not client.exists(key("h"))
    with pytest.raises(tensorpager.NotFound):
        client.info(key("h"))
    # A device the runtime does not have.
    address = native.fake_device_alloc(0, 16)
    with pytest.raises(tensorpager.FailedPrecondition):
        native.put_from_device("", put_item(key("d"), address, 16, [16]), 3)
    with pytest.raises(tensorpager.NotFound):
        native.access_device("", key("missing"), 0)
    with pytest.raises(TypeError, match="address, size"):
        native.put_from_device("", (key("b"), b"bytes", 1, 6, [5], {}, 0,
                                    False, None), 0)
    native.fake_device_free(0, address)


def test_device_paths_refused_in_host_mode(server: ServerProcess,
                                           key: Callable[[str], str]) -> None:
    plain = _native.Client(server.target)
    if not plain.host_mode:
        pytest.skip("a CUDA device is present: host mode not reachable")
    assert plain.device_unavailable_reason
    with pytest.raises(tensorpager.FailedPrecondition):
        plain.put_from_device("", put_item(key("x"), 1 << 20, 16, [16]), 0)
    with pytest.raises(tensorpager.FailedPrecondition):
        plain.fake_device_alloc(0, 16)
    plain.close()
