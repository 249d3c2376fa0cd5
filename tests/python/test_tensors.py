"""Tensors keep their dtype and shape; the kind of object comes back."""

from __future__ import annotations

from typing import Callable

import pytest

import tensorpager

np = pytest.importorskip("numpy")

NUMPY_DTYPES = {
    "float32": tensorpager.DType.FLOAT32, "float16": tensorpager.DType.FLOAT16,
    "float64": tensorpager.DType.FLOAT64, "int8": tensorpager.DType.INT8,
    "uint8": tensorpager.DType.UINT8, "int16": tensorpager.DType.INT16,
    "int32": tensorpager.DType.INT32, "int64": tensorpager.DType.INT64,
    "bool": tensorpager.DType.BOOL,
}
SHAPES = [(), (7,), (3, 5), (2, 3, 4)]


def sample_array(dtype: str, shape: tuple) -> "np.ndarray":
    rng = np.random.default_rng(len(shape) * 100 + len(dtype))
    # np.asarray: with shape () the generators give numpy scalars.
    if dtype == "bool":
        return np.asarray(rng.integers(0, 2, shape), dtype=bool)
    if dtype.startswith("float"):
        return np.asarray(rng.standard_normal(shape), dtype=dtype)
    info = np.iinfo(dtype)
    return np.asarray(rng.integers(info.min, info.max, shape, dtype=dtype,
                                   endpoint=True), dtype=dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", list(NUMPY_DTYPES))
def test_numpy_arrays_keep_dtype_and_shape(client: tensorpager.Client,
                                           key: Callable[[str], str],
                                           dtype: str, shape: tuple) -> None:
    array = sample_array(dtype, shape)
    client.put(key("a"), array)
    info = client.info(key("a"))
    assert tensorpager.DType[info["dtype"]] == NUMPY_DTYPES[dtype]
    assert tuple(info["shape"]) == shape
    back = client.get(key("a"))
    assert isinstance(back, np.ndarray)
    assert back.dtype == array.dtype and back.shape == shape
    assert back.flags.writeable
    np.testing.assert_array_equal(back, array)


def _torch():
    return pytest.importorskip("torch", reason="python3-torch not installed")


TORCH_DTYPES = ["float32", "float16", "bfloat16", "float64", "int8", "uint8",
                "int16", "int32", "int64", "bool"]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_torch_tensors_keep_dtype_and_shape(client: tensorpager.Client,
                                            key: Callable[[str], str],
                                            dtype: str, shape: tuple) -> None:
    torch = _torch()
    t_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(len(shape))
    if dtype == "bool":
        tensor = torch.randint(0, 2, shape, generator=generator).bool()
    elif t_dtype.is_floating_point:
        tensor = torch.randn(shape, generator=generator).to(t_dtype)
    else:
        tensor = torch.randint(-100 if dtype != "uint8" else 0, 100, shape,
                               generator=generator).to(t_dtype)
    client.put(key("t"), tensor)
    back = client.get(key("t"))
    assert isinstance(back, torch.Tensor)
    assert back.dtype == t_dtype and tuple(back.shape) == shape
    assert torch.equal(back, tensor)
    # Over the disk tier too (bfloat16 is only a torch dtype).
    client.swap_out(key("t"))
    assert torch.equal(client.get(key("t")), tensor)


def test_torch_get_into_a_tensor(client: tensorpager.Client,
                                 key: Callable[[str], str]) -> None:
    torch = _torch()
    tensor = torch.arange(24, dtype=torch.bfloat16).reshape(2, 3, 4)
    client.put(key("t"), tensor)
    out = torch.empty(2, 3, 4, dtype=torch.bfloat16)
    result = client.get_into(key("t"), out)
    assert result.dtype == tensorpager.DType.BFLOAT16
    assert result.shape == (2, 3, 4)
    assert torch.equal(out, tensor)
    assert torch.equal(client.get(key("t"), device="cpu"), tensor)


def test_kind_can_be_asked_for(client: tensorpager.Client,
                               key: Callable[[str], str]) -> None:
    array = np.arange(6, dtype=np.int32).reshape(2, 3)
    client.put(key("a"), array)
    assert client.get(key("a"), kind="bytes") == array.tobytes()
    torch = _torch()
    as_tensor = client.get(key("a"), kind="torch")
    assert as_tensor.dtype == torch.int32 and tuple(as_tensor.shape) == (2, 3)
    client.put(key("bf"), torch.zeros(4, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="bfloat16|BFLOAT16"):
        client.get(key("bf"), kind="numpy")
    with pytest.raises(ValueError):
        client.get(key("a"), kind="pandas")


def test_non_contiguous_tensors_are_refused(client: tensorpager.Client,
                                            key: Callable[[str], str]) -> None:
    torch = _torch()
    with pytest.raises(ValueError, match="contiguous"):
        client.put(key("t"), torch.zeros(4, 4).t())
    with pytest.raises(TypeError, match="dtype"):
        client.put(key("t"), torch.zeros(4, dtype=torch.complex64))
    client.put(key("t"), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="contiguous"):
        client.get_into(key("t"), torch.zeros(8, 8)[:, :4])


@pytest.fixture
def cuda(client: tensorpager.Client):
    torch = _torch()
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device for torch (this torch build: "
                    f"{torch.__version__}, CUDA {torch.version.cuda})")
    if client.host_mode:
        pytest.skip("the SDK runs in host mode: "
                    f"{client.device_unavailable_reason}")
    return torch


def test_cuda_tensor_round_trip(client: tensorpager.Client,
                                key: Callable[[str], str], cuda) -> None:
    torch = cuda
    tensor = torch.randn(64, 1024, device="cuda").to(torch.float16)
    result = client.put(key("g"), tensor)
    assert result.ok and result.created
    # Read back to the host (the block records dtype and shape) ...
    host = client.get(key("g"))
    assert host.device.type == "cpu" and host.dtype == torch.float16
    assert torch.equal(host, tensor.cpu())
    # ... and onto the device, through the SDK's device placement.
    on_device = client.get(key("g"), device="cuda:0")
    assert on_device.is_cuda and torch.equal(on_device, tensor)
    out = torch.empty_like(tensor)
    assert client.get_into(key("g"), out).size == tensor.numel() * 2
    assert torch.equal(out, tensor)
    # A CUDA put over an existing block of the same shape overwrites it.
    again = client.put(key("g"), tensor * 2)
    assert not again.created
    assert torch.equal(client.get(key("g"), device="cuda"), tensor * 2)


def test_cuda_and_host_items_in_one_batch(client: tensorpager.Client,
                                          key: Callable[[str], str],
                                          cuda) -> None:
    torch = cuda
    values = [torch.arange(10, device="cuda"), np.arange(10),
              torch.ones(3, 3), b"raw"]
    keys = [key(str(i)) for i in range(4)]
    assert all(r.ok for r in client.batch_put(keys, values))
    outs = [torch.empty(10, dtype=torch.int64, device="cuda"),
            np.empty(10, np.int64), torch.empty(3, 3), bytearray(3)]
    results = client.batch_get_into(keys, outs)
    assert all(r.ok for r in results), [r.error for r in results]
    assert torch.equal(outs[0], values[0])
    np.testing.assert_array_equal(outs[1], values[1])
    assert torch.equal(outs[2], values[2]) and outs[3] == b"raw"


@pytest.mark.parametrize("order", ["bytes_first", "arrays_first"])
def test_batch_get_of_mixed_kinds_gives_each_its_own(
        client: tensorpager.Client, key: Callable[[str], str],
        order: str) -> None:
    """batch_get reads bytes blocks into bytes objects and the others into
    arrays, whichever kind the previous call read: values are equal and
    arrays writable either way."""
    torch = pytest.importorskip("torch")
    keys = [key("b"), key("n"), key("t")]
    raw = bytes(range(256)) * 20
    array = sample_array("float32", (4, 5))
    tensor = torch.arange(12, dtype=torch.int16).reshape(3, 4)
    assert all(r.ok for r in client.batch_put(keys, [raw, array, tensor]))
    for turn in range(3):
        ordered = keys if order == "bytes_first" else keys[::-1]
        got = {k: r.value for k, r in zip(ordered, client.batch_get(ordered))}
        assert type(got[keys[0]]) is bytes and got[keys[0]] == raw
        n = got[keys[1]]
        assert isinstance(n, np.ndarray) and n.dtype == array.dtype
        assert n.shape == array.shape and (n == array).all()
        assert n.flags.writeable
        n[0, 0] = -1.0  # writes its own memory
        t = got[keys[2]]
        assert isinstance(t, torch.Tensor) and t.dtype == torch.int16
        assert torch.equal(t, tensor)
        t.add_(1)
        # One kind alone, as the next call's first guess.
        alone = client.batch_get([keys[turn % 3]])[0].value
        assert type(alone) is type(got[keys[turn % 3]])
    assert client.get(keys[1], kind="bytes") == array.tobytes()
    assert bytes(client.get(keys[0], kind="numpy")) == raw
