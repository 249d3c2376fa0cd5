"""Round trips of every buffer kind at odd sizes, through the server's RAM
and after a swap to disk, over shared memory and over gRPC messages."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import tensorpager
from conftest import ODD_SIZES, pattern

np = pytest.importorskip("numpy")
KINDS = ["bytes", "bytearray", "memoryview", "numpy", "torch"]


def make_value(kind: str, data: bytes) -> Any:
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(bytearray(data))
    if kind == "numpy":
        return np.frombuffer(data, np.uint8).copy()
    torch = pytest.importorskip("torch")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, np.ndarray):
        return value.tobytes()
    return value.numpy().tobytes()  # a torch tensor


def expected_type(kind: str) -> type:
    if kind == "numpy":
        return np.ndarray
    if kind == "torch":
        return pytest.importorskip("torch").Tensor
    return bytes


@pytest.mark.parametrize("tier", ["ram", "disk"])
@pytest.mark.parametrize("size", ODD_SIZES, ids=lambda s: f"{s}B")
@pytest.mark.parametrize("kind", KINDS)
def test_put_get_round_trip(any_client: tensorpager.Client,
                            key: Callable[[str], str], kind: str, size: int,
                            tier: str) -> None:
    data = pattern(size, seed=size % 251)
    k = key("v")
    result = any_client.put(k, make_value(kind, data))
    assert result.ok and result.created
    if tier == "disk":
        moved = any_client.swap_out(k)
        assert moved["blocks_moved"] == 1
        assert any_client.info(k)["tier"] == "TIER_DISK"
    value = any_client.get(k)
    assert isinstance(value, expected_type(kind))
    assert as_bytes(value) == data
    if kind in ("numpy", "torch"):
        assert tuple(value.shape) == (size,)
    any_client.delete(k)


@pytest.mark.parametrize("tier", ["ram", "disk"])
@pytest.mark.parametrize("size", ODD_SIZES, ids=lambda s: f"{s}B")
@pytest.mark.parametrize("kind", ["bytearray", "memoryview", "numpy",
                                  "torch"])
def test_get_into_round_trip(any_client: tensorpager.Client,
                             key: Callable[[str], str], kind: str, size: int,
                             tier: str) -> None:
    data = pattern(size, seed=7)
    k = key("v")
    any_client.put(k, data)
    if tier == "disk":
        any_client.swap_out([k])
    # One byte of slack: a buffer may be larger than the block.
    buffer = make_value(kind, bytes(size + 1))
    result = any_client.get_into(k, buffer)
    assert result.ok and result.size == size and result.value is buffer
    assert as_bytes(buffer)[:size] == data
    assert as_bytes(buffer)[size:] == b"\0"
    any_client.delete(k)


def test_put_overwrites_a_block_of_the_same_shape(
        client: tensorpager.Client, key: Callable[[str], str]) -> None:
    k = key("v")
    first = client.put(k, np.zeros((4, 4), np.float32))
    second = client.put(k, np.ones((4, 4), np.float32))
    assert first.created and not second.created
    assert second.version > first.version
    assert (client.get(k) == 1).all()
    with pytest.raises(tensorpager.FailedPrecondition) as e:
        client.put(k, np.ones((2, 8), np.float32))
    assert e.value.code == tensorpager.StatusCode.FAILED_PRECONDITION
    # The failed put changed nothing.
    assert client.info(k)["version"] == second.version
    assert client.get(k).shape == (4, 4)


def test_durable_put_is_on_disk_when_acknowledged(
        client: tensorpager.Client, key: Callable[[str], str]) -> None:
    result = client.put(key("v"), b"x" * 5000, durable=True,
                        region_type="kv_cache", labels={"layer": "3"},
                        sequence=("req-9", 2))
    assert result.durable
    info = client.info(key("v"))
    assert info["region_type"] == "KV_CACHE"
    assert info["labels"] == {"layer": "3"}
    assert info["sequence"] == {"group": "req-9", "index": 2}


def test_get_into_a_buffer_too_small_fails_alone(
        client: tensorpager.Client, key: Callable[[str], str]) -> None:
    client.put(key("big"), pattern(8192, 1))
    client.put(key("small"), pattern(100, 2))
    big, small = client.batch_get_into([key("big"), key("small")],
                                       [bytearray(100), bytearray(100)])
    assert not big.ok and big.value is None
    assert isinstance(big.error, tensorpager.Error)
    assert small.ok and bytes(small.value) == pattern(100, 2)
    with pytest.raises(tensorpager.Error):
        client.get_into(key("big"), bytearray(10))


def test_unsupported_values_raise_before_sending(
        client: tensorpager.Client, key: Callable[[str], str]) -> None:
    with pytest.raises(TypeError):
        client.put(key("v"), "a str is not bytes")
    with pytest.raises(ValueError, match="contiguous"):
        client.put(key("v"), np.zeros((4, 4), np.float32)[:, 1])
    with pytest.raises(TypeError, match="dtype"):
        client.put(key("v"), np.zeros(4, np.complex64))
    with pytest.raises(TypeError, match="immutable"):
        client.get_into(key("v"), b"1234")
    with pytest.raises(ValueError, match="keys"):
        client.batch_put([key("a"), key("b")], [b"1"])
    assert not client.exists(key("v"))
