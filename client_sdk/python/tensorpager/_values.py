"""Python values as block bytes and back, without copies where possible.

A value to put becomes an :class:`Encoded`: the object the native layer
reads (a buffer-protocol object, or ``(address, size)`` for a torch tensor,
which the caller's frame keeps alive during the call), with the dtype and
shape the block records and the kind of object it came from. The kind is
kept in the label ``tensorpager.python`` ("numpy" or "torch"; absent for
raw bytes), so that a get returns the same kind of object.

numpy and torch are optional: they are used only when the caller passes
their objects (found in ``sys.modules``, so importing this package never
imports torch) or asks for their kind.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Dict, List, Optional, Sequence

from .types import DType

LABEL_KIND = "tensorpager.python"
KINDS = ("bytes", "numpy", "torch")
HOST = -1  # Encoded.device of host memory

_NUMPY_NAMES = {
    DType.FLOAT32: "float32", DType.FLOAT16: "float16",
    DType.FLOAT64: "float64", DType.INT8: "int8", DType.UINT8: "uint8",
    DType.INT16: "int16", DType.INT32: "int32", DType.INT64: "int64",
    DType.BOOL: "bool",
}
_TORCH_NAMES = {
    **_NUMPY_NAMES,
    DType.BFLOAT16: "bfloat16",
    # Only in torch builds that have them (2.1 and later).
    DType.FLOAT8_E4M3: "float8_e4m3fn", DType.FLOAT8_E5M2: "float8_e5m2",
}


@dataclasses.dataclass
class Encoded:
    """A value (or a buffer to read into) as the native layer takes it."""

    data: Any  # buffer-protocol object, or (address, size)
    size: int
    dtype: DType
    shape: List[int]
    kind: str
    device: int  # HOST, or the CUDA device ordinal
    source: Any  # the caller's object


def _torch() -> Any:
    return sys.modules.get("torch")


def _numpy() -> Any:
    return sys.modules.get("numpy")


def is_tensor(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _torch_to_dtype(torch: Any, dtype: Any) -> DType:
    for proto, name in _TORCH_NAMES.items():
        if getattr(torch, name, None) == dtype:
            return proto
    raise TypeError(
        f"torch dtype {dtype} has no tensorpager DType; supported: "
        f"{', '.join(n for n in _TORCH_NAMES.values() if hasattr(torch, n))}"
        "; view it as torch.uint8 to store its raw bytes")


def _numpy_to_dtype(np: Any, dtype: Any) -> DType:
    for proto, name in _NUMPY_NAMES.items():
        # np.dtype("float32") is the native byte order: '>f4' matches none.
        if np.dtype(name) == dtype:
            return proto
    raise TypeError(
        f"numpy dtype {dtype} has no tensorpager DType; supported: "
        f"{', '.join(_NUMPY_NAMES.values())} in native byte order; view "
        "it as np.uint8 to store its raw bytes")


def torch_dtype(dtype: DType) -> Any:
    """The torch dtype of a block's DType (uint8 for UNSPECIFIED)."""
    torch = _import("torch")
    name = _TORCH_NAMES.get(dtype, "uint8" if dtype == DType.UNSPECIFIED
                            else None)
    if name is None or not hasattr(torch, name):
        raise TypeError(f"this torch has no dtype for {dtype.name}")
    return getattr(torch, name)


def _numpy_dtype(dtype: DType) -> Any:
    np = _import("numpy")
    if dtype == DType.UNSPECIFIED:
        return np.uint8
    name = _NUMPY_NAMES.get(dtype)
    if name is None:
        raise TypeError(
            f"numpy has no {dtype.name}: get the block as a torch tensor "
            "(kind='torch')")
    return np.dtype(name)


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as e:
        raise ImportError(
            f"this block is returned as a {name} object, and {name} is not "
            f"installed ({e}); pass kind='bytes' to get its raw bytes") \
            from e


def tensor_device(tensor: Any) -> int:
    """HOST for a CPU tensor, the CUDA ordinal for a CUDA tensor."""
    device = tensor.device
    if device.type == "cpu":
        return HOST
    if device.type == "cuda":
        return device.index if device.index is not None else \
            _torch().cuda.current_device()
    raise TypeError(f"tensors on {device} are not supported (cpu or cuda)")


def _encode_tensor(tensor: Any, writable: bool) -> Encoded:
    torch = _torch()
    if tensor.layout != torch.strided:
        raise TypeError(f"{tensor.layout} tensors are not supported; pass a "
                        "dense tensor")
    if not tensor.is_contiguous():
        raise ValueError("the tensor is not contiguous; pass "
                         "tensor.contiguous()")
    if writable and tensor.requires_grad and tensor.is_leaf:
        raise ValueError("cannot read into a leaf tensor that requires grad;"
                         " pass tensor.detach()")
    dtype = _torch_to_dtype(torch, tensor.dtype)
    size = tensor.numel() * tensor.element_size()
    return Encoded((tensor.data_ptr(), size), size, dtype, list(tensor.shape),
                   "torch", tensor_device(tensor), tensor)


def encode(value: Any) -> Encoded:
    """A value to put: a torch tensor (CPU or CUDA), a numpy array, or any
    C-contiguous buffer (bytes, bytearray, memoryview, array.array...)."""
    if is_tensor(value):
        return _encode_tensor(value, writable=False)
    np = _numpy()
    if np is not None and isinstance(value, np.ndarray):
        if not value.flags.c_contiguous:
            raise ValueError("the array is not C-contiguous; pass "
                             "np.ascontiguousarray(array)")
        return Encoded(value, value.nbytes,
                       _numpy_to_dtype(np, value.dtype), list(value.shape),
                       "numpy", HOST, value)
    if isinstance(value, (bytes, bytearray)):
        return Encoded(value, len(value), DType.UNSPECIFIED, [], "bytes",
                       HOST, value)
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(
            "a value is bytes, bytearray, memoryview, a numpy array or a "
            f"torch tensor, not {type(value).__name__}") from None
    if not view.c_contiguous:
        raise ValueError("the buffer is not C-contiguous")
    return Encoded(view, view.nbytes, DType.UNSPECIFIED, [], "bytes", HOST,
                   value)


def target(buffer: Any) -> Encoded:
    """A buffer to read a block into: writable and C-contiguous."""
    if is_tensor(buffer):
        return _encode_tensor(buffer, writable=True)
    if isinstance(buffer, bytes):
        raise TypeError("bytes are immutable: read into a bytearray, a "
                        "numpy array or a torch tensor")
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(
            "a buffer is a bytearray, a writable memoryview, a numpy array "
            f"or a torch tensor, not {type(buffer).__name__}") from None
    if view.readonly:
        raise TypeError("the buffer is read-only")
    if not view.c_contiguous:
        raise ValueError("the buffer is not C-contiguous")
    return Encoded(view, view.nbytes, DType.UNSPECIFIED, [], "bytes", HOST,
                   buffer)


_buffer_numpy: Any = None  # numpy for new_buffer; False without it


def new_buffer(size: int) -> Any:
    """Uninitialised host memory for a block of `size` bytes (a numpy uint8
    array when numpy is there: no zero-fill, and views of it are free)."""
    global _buffer_numpy
    if _buffer_numpy is None:
        # An import statement, not sys.modules: there another thread's
        # import may still be half done.
        try:
            import numpy
            _buffer_numpy = numpy
        except ImportError:
            _buffer_numpy = False
    if _buffer_numpy is False:
        return bytearray(size)
    return _buffer_numpy.empty(size, _buffer_numpy.uint8)


def labels_for(kind: str,
               labels: Optional[Dict[str, str]]) -> Dict[str, str]:
    """The labels of a put: the caller's, plus the kind for a get to
    rebuild the same kind of object."""
    out = dict(labels) if labels else {}
    if kind != "bytes":
        out[LABEL_KIND] = kind
    else:
        out.pop(LABEL_KIND, None)
    return out


def block_shape(shape: Sequence[int], size: int,
                itemsize: int) -> Sequence[int]:
    # No shape recorded: one element is a 0-d value (a scalar tensor put
    # records shape []), more are one-dimensional.
    if shape or size == itemsize:
        return tuple(shape)
    return (-1,)


def decode(raw: Any, size: int, dtype: DType, shape: Sequence[int],
           labels: Dict[str, str], kind: Optional[str]) -> Any:
    """The value of a block read into `raw` (from :func:`new_buffer`, or a
    bytes object the native layer read into):
    `kind` when given, else the kind its labels record, else bytes."""
    if kind is None:
        kind = labels.get(LABEL_KIND, "bytes")
        if kind not in KINDS:
            kind = "bytes"
    if isinstance(raw, bytes):
        # Read into a bytes object (the native layer made it): the value
        # itself for bytes, else copied once into memory arrays may write.
        if kind == "bytes":
            return raw if len(raw) == size else raw[:size]
        raw = bytearray(raw)
    if kind == "bytes":
        # ndarray.tobytes copies in one memcpy; bytes(memoryview) is far
        # slower per call.
        return bytes(raw[:size]) if isinstance(raw, bytearray) else \
            raw[:size].tobytes()
    if kind == "numpy":
        np = _import("numpy")
        np_dtype = _numpy_dtype(dtype)
        array = np.frombuffer(raw, np.uint8, size) \
            if isinstance(raw, bytearray) else raw[:size]
        return array.view(np_dtype).reshape(
            block_shape(shape, size, np.dtype(np_dtype).itemsize))
    if kind == "torch":
        torch = _import("torch")
        t_dtype = torch_dtype(dtype)
        if isinstance(raw, bytearray):
            flat = torch.frombuffer(raw, dtype=torch.uint8, count=size) \
                if size else torch.empty(0, dtype=torch.uint8)
        else:
            flat = torch.from_numpy(raw[:size])
        itemsize = torch.empty(0, dtype=t_dtype).element_size()
        return flat.view(t_dtype).reshape(
            block_shape(shape, size, itemsize))
    raise ValueError(f"kind is one of {', '.join(KINDS)}, not {kind!r}")
