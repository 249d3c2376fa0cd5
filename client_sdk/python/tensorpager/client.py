"""tensorpager.Client: the Python face of the C++ SDK."""

from __future__ import annotations

import os
from types import TracebackType
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Type, Union)

from . import _native
from . import _values
from .errors import Error, InvalidArgument, from_status
from .results import (BatchPath, DeleteResult, GetResult, LookupResult,
                      PressureEvent, PutResult)
from .types import Compression, DType, RegionType, Tier, coerce

_MiB = 1 << 20
SequenceRef = Optional[Tuple[str, int]]  # (group, index)


class PressureWatch(Iterator[PressureEvent]):
    """The server's pressure levels as they change (WatchPressure).

    Iterating blocks until the next event, with the GIL released (other
    threads run; Ctrl-C still interrupts). ``close()``, from any thread,
    ends the iteration; an ended stream (server gone) raises
    :class:`tensorpager.Unavailable` from ``next``.
    """

    def __init__(self, native: _native.PressureWatch):
        self._native = native

    def __iter__(self) -> "PressureWatch":
        return self

    def __next__(self) -> PressureEvent:
        return PressureEvent.from_dict(self._native.next(None))

    def next_event(self, timeout: Optional[float]) -> Optional[PressureEvent]:
        """The next event, or None when `timeout` seconds pass first or
        the watch is closed."""
        try:
            event = self._native.next(timeout)
        except StopIteration:
            return None
        return None if event is None else PressureEvent.from_dict(event)

    def close(self) -> None:
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __enter__(self) -> "PressureWatch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Client:
    """A connection to tensorpagerd, through the C++ SDK.

    Thread-safe; one per process is enough. Every call releases the GIL
    while it waits. On the server's host (a loopback or unix: target) bulk
    bytes cross through a shared-memory arena of ``shared_memory_bytes``
    (0: gRPC messages only); see :attr:`batch_path`.

    Values are bytes-like objects (returned as ``bytes``), numpy arrays or
    torch tensors (returned as the same kind, dtype and shape). Single-block
    calls raise a :class:`tensorpager.Error` subclass per gRPC code; batch
    calls return one result per key and raise only when the call fails as
    a whole (server unreachable, bad namespace, closed client).

    The SDK's log lines go to ``logging.getLogger("tensorpager")`` (with
    ``log_to_python=False``, to stderr).
    """

    def __init__(self, target: str = "127.0.0.1:50051", *,
                 namespace: str = "",
                 shared_memory_bytes: int = 64 * _MiB,
                 timeout: float = 60.0,
                 connections: int = 4,
                 max_retries: int = 3,
                 client_id: str = "",
                 host_cache_bytes: int = 1024 * _MiB,
                 follow_pressure: bool = True,
                 tune_allocator: bool = False,
                 log_to_python: bool = True,
                 token: Optional[str] = None,
                 tls_ca_file: str = "",
                 tls_cert_file: str = "",
                 tls_key_file: str = "",
                 tls_server_name: str = ""):
        """Connects lazily: a server that is not up fails the first call
        with :class:`Unavailable` (see :meth:`wait_until_ready`).

        namespace: the namespace of every block this client names ("" is
        "default"). timeout: seconds per RPC. connections: gRPC
        connections to spread transfers over. max_retries: retries of
        read-only calls that find the server restarting. client_id: this
        process in the server's Status (default host:pid).
        host_cache_bytes: the SDK's local host cache (used by the CUDA
        paths). follow_pressure: shrink the local caches when the server
        reports memory pressure. tune_allocator: process-wide, one glibc
        malloc arena with high mmap and trim thresholds, so that large
        buffers (received blocks, new arrays) are reused instead of mapped
        and faulted in afresh: several times faster batch_get where page
        faults are expensive (VMs); off by default because it changes the
        whole process.

        token: the bearer token that names this client's tenant on a server
        with a tenants file (default: $TENSORPAGER_TOKEN; "" sends none).
        tls_ca_file: PEM CA that signed the server's certificate; turns TLS
        on. tls_cert_file, tls_key_file: this client's certificate and key,
        for mutual TLS. tls_server_name: the name the server's certificate
        must carry (default: the target's host).
        """
        if token is None:
            token = os.environ.get("TENSORPAGER_TOKEN", "")
        self._namespace = namespace
        self._native = _native.Client(
            target, timeout_s=timeout, max_retries=max_retries,
            connections=connections, shared_memory_bytes=shared_memory_bytes,
            client_id=client_id, host_cache_bytes=host_cache_bytes,
            watch_pressure=follow_pressure, tune_allocator=tune_allocator,
            python_logging=log_to_python, token=token,
            tls_ca_file=tls_ca_file, tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file, tls_server_name=tls_server_name)
        # batch_get without a kind reads into bytes objects while the
        # blocks it read last were bytes (the common case costs no copy
        # after the transfer); blocks of another kind are then copied
        # once, and the next call reads into arrays.
        self._expect_bytes = True

    # ---- Lifetime ----

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Waits until the server answers, or raises
        :class:`DeadlineExceeded` after `timeout` seconds."""
        self._native.wait_until_ready(timeout)

    def close(self) -> None:
        """Stops the SDK's threads; later calls raise
        :class:`FailedPrecondition`. Idempotent."""
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def client_id(self) -> str:
        return self._native.client_id

    @property
    def batch_path(self) -> BatchPath:
        """Whether batches use shared memory or gRPC messages, and why
        (sets the shared-memory path up on first use)."""
        shared, reason = self._native.batch_path()
        return BatchPath(shared, reason)

    @property
    def host_mode(self) -> bool:
        """True without a usable CUDA device: CUDA tensors are refused
        (:attr:`device_unavailable_reason` says why)."""
        return self._native.host_mode

    @property
    def device_unavailable_reason(self) -> str:
        return self._native.device_unavailable_reason

    # ---- Single blocks ----

    def put(self, key: str, value: Any, *,
            region_type: Union[RegionType, str] = RegionType.TENSOR_DATA,
            labels: Optional[Mapping[str, str]] = None,
            durable: Optional[bool] = None,
            pinned: bool = False,
            compression: Union[Compression, str] = Compression.UNSPECIFIED,
            sequence: SequenceRef = None) -> PutResult:
        """Stores `value` as block `key`, creating it when new.

        An existing block is overwritten when its size, dtype and shape
        match `value`'s; otherwise :class:`FailedPrecondition` (delete it
        first). region_type, labels, pinned, compression and sequence
        ``(group, index)`` apply to a block the put creates. durable: True
        acknowledges only once the bytes are on disk, None leaves it to
        the server's default for the region type. A CUDA tensor is read
        straight off its device.
        """
        result = self.batch_put(
            [key], [value], region_type=region_type, labels=labels,
            durable=durable, pinned=pinned, compression=compression,
            sequence=sequence)[0]
        result.raise_if_error()
        return result

    def get(self, key: str, *, kind: Optional[str] = None,
            device: Any = None) -> Any:
        """Block `key`'s value: a torch tensor for a block put from one, a
        numpy array for one put from numpy (same dtype and shape), else
        ``bytes``. kind ("bytes", "numpy" or "torch") asks for that kind
        instead. device ("cuda:0", "cpu", a torch.device) returns a torch
        tensor on that device. Raises :class:`NotFound` for a missing block,
        :class:`DataLoss` for a lost one.
        """
        if device is not None:
            torch = _values._import("torch")
            device = torch.device(device)
            if device.type != "cpu":
                return self._get_on_device(key, device)
            kind = "torch"
        result = self.batch_get([key], kind=kind)[0]
        result.raise_if_error()
        return result.value

    def get_into(self, key: str, buffer: Any) -> GetResult:
        """Reads block `key` into the front of `buffer` (bytearray,
        writable memoryview, numpy array or torch tensor, CUDA included),
        which must hold at least the block; ``result.size`` says how many
        bytes it got. No copy beyond the transfer itself."""
        result = self.batch_get_into([key], [buffer])[0]
        result.raise_if_error()
        return result

    def exists(self, key: str) -> bool:
        """Whether block `key` is present: written and readable (not
        EMPTY, not LOST)."""
        return self._native.lookup(self._namespace, [key])[0][0]

    def delete(self, key: str) -> None:
        """Unregisters block `key` and frees its RAM and disk space
        (:class:`NotFound` when there is none)."""
        self._native.unregister(self._namespace, key)

    def info(self, key: str) -> Dict[str, Any]:
        """Block `key`'s metadata (the BlockInfo message as a dict: tier,
        size_bytes, dtype, shape, labels, version, ...)."""
        return self._native.get_info(self._namespace, key)

    def swap_out(self, keys: Union[str, Iterable[str]]) -> Dict[str, Any]:
        """Moves blocks from the server's RAM to its NVMe tier (the
        SwapResponse as a dict)."""
        return self._native.swap_out(self._namespace, _key_list(keys))

    def swap_in(self, keys: Union[str, Iterable[str]]) -> Dict[str, Any]:
        """Brings blocks from the NVMe tier back into RAM."""
        return self._native.swap_in(self._namespace, _key_list(keys))

    def list_blocks(self, prefix: str = "", *,
                    tier: Optional[Union[Tier, str, int]] = None,
                    region_type: Optional[Union[RegionType, str, int]] = None,
                    page_size: int = 1000) -> Iterator[Dict[str, Any]]:
        """The blocks of this client's namespace whose keys start with
        `prefix`, in key order, as BlockInfo dicts (see :meth:`info`);
        only those in `tier` or of `region_type` when given. Pages of
        `page_size` (at most 1000) are fetched as the iteration reaches
        them, so a large namespace is never held whole."""
        if not 1 <= page_size <= 1000:
            raise InvalidArgument(
                f"page_size is {page_size}; a ListBlocks page holds 1 to "
                "1000 blocks")
        tier_number = int(coerce(Tier, tier)) if tier is not None else 0
        region_number = (int(coerce(RegionType, region_type))
                         if region_type is not None else 0)
        return self._list_pages(prefix, tier_number, region_number,
                                page_size)

    def _list_pages(self, prefix: str, tier: int, region_type: int,
                    page_size: int) -> Iterator[Dict[str, Any]]:
        token = ""
        while True:
            blocks, token = self._native.list_page(
                self._namespace, prefix, tier, region_type, token, page_size)
            yield from blocks
            if not token:
                return

    def pin(self, key: str) -> Dict[str, Any]:
        """Keeps block `key` in the server's RAM until :meth:`unpin`."""
        return self._native.pin(self._namespace, key)

    def unpin(self, key: str) -> Dict[str, Any]:
        return self._native.unpin(self._namespace, key)

    # ---- Batches ----

    def batch_put(self, keys: Sequence[str], values: Sequence[Any], *,
                  region_type: Union[RegionType, str] = RegionType.TENSOR_DATA,
                  labels: Optional[Mapping[str, str]] = None,
                  durable: Optional[bool] = None,
                  pinned: bool = False,
                  compression: Union[Compression, str] =
                  Compression.UNSPECIFIED,
                  sequence: SequenceRef = None) -> List[PutResult]:
        """Puts many blocks in one call (see :meth:`put`); one
        :class:`PutResult` per key, in order. A block that fails (bad id,
        too large, a mismatched existing block) fails alone and changes
        nothing. sequence ``(group, first_index)`` numbers the blocks
        ``first_index, first_index + 1, ...`` in one group, so reading one
        prefetches the next. Values that cannot be encoded (wrong type,
        not contiguous) raise before anything is sent.
        """
        keys = list(keys)
        values = list(values)
        if len(keys) != len(values):
            raise ValueError(f"{len(keys)} keys for {len(values)} values")
        region = int(coerce(RegionType, region_type))
        codec = int(coerce(Compression, compression))
        encoded = [_values.encode(v) for v in values]
        items = []
        for i, (key, enc) in enumerate(zip(keys, encoded)):
            seq = None if sequence is None else \
                (sequence[0], sequence[1] + i)
            items.append((key, enc.data, region, int(enc.dtype), enc.shape,
                          _values.labels_for(enc.kind, labels), codec,
                          bool(pinned), seq))
        results: List[Optional[PutResult]] = [None] * len(keys)
        host = [i for i, e in enumerate(encoded) if e.device == _values.HOST]
        if host:
            outcomes = self._native.put_batch(
                self._namespace, [items[i] for i in host], durable)
            for i, (code, message, created, version, is_durable) in zip(
                    host, outcomes):
                results[i] = PutResult(keys[i], _error(code, message),
                                       created, version, is_durable)
        for i, enc in enumerate(encoded):
            if enc.device != _values.HOST:
                results[i] = self._put_from_device(items[i], enc, durable)
        return [r for r in results if r is not None]

    def batch_get(self, keys: Sequence[str], *,
                  kind: Optional[str] = None) -> List[GetResult]:
        """Reads many blocks; one :class:`GetResult` per key, in order,
        whose ``value`` is the block (as :meth:`get` returns it) or None
        where the item failed (``error``: :class:`NotFound` for a missing
        block, :class:`DataLoss` for a lost one, ...). Costs a
        :meth:`lookup` for the sizes first; :meth:`batch_get_into` skips
        it."""
        keys = list(keys)
        if not keys:
            return []
        present, _, sizes, _ = self._native.lookup(self._namespace, keys)
        # Absent blocks get an empty buffer: the read still runs for them,
        # so their error is the server's own (not found, lost, empty).
        sizes = [n if p else 0 for p, n in zip(present, sizes)]
        as_bytes = kind == "bytes" or (kind is None and self._expect_bytes)
        # A size makes the native layer read into a new bytes object.
        raws: List[Any] = list(sizes) if as_bytes else \
            [_values.new_buffer(n) for n in sizes]
        outcomes = self._native.get_batch(self._namespace,
                                          list(zip(keys, raws)))
        self._retry_resized(keys, sizes, raws, outcomes)
        if as_bytes:
            raws = [o[9] for o in outcomes]
        results = [_get_result(key, outcome, raw, kind)
                   for key, outcome, raw in zip(keys, outcomes, raws)]
        if kind is None:
            read = [r for r in results if r.error is None]
            if read:
                self._expect_bytes = isinstance(read[-1].value, bytes)
        return results

    def batch_get_into(self, keys: Sequence[str],
                       buffers: Sequence[Any]) -> List[GetResult]:
        """Reads block ``keys[i]`` into the front of ``buffers[i]`` (see
        :meth:`get_into`); one :class:`GetResult` per key whose ``value``
        is the buffer, or None where the item failed (a buffer smaller
        than its block fails that item)."""
        keys = list(keys)
        buffers = list(buffers)
        if len(keys) != len(buffers):
            raise ValueError(f"{len(keys)} keys for {len(buffers)} buffers")
        # Buffers other than torch tensors go to the native layer as they
        # are: it takes their buffer (writable, C-contiguous) or raises.
        items = []
        on_device = []
        for i, (key, buffer) in enumerate(zip(keys, buffers)):
            if _values.is_tensor(buffer):
                t = _values.target(buffer)
                if t.device != _values.HOST:
                    on_device.append((i, t))
                    continue
                buffer = t.data
            items.append((key, buffer))
        outcomes = self._native.get_batch(self._namespace, items) \
            if items else []
        if not on_device:
            return [_get_result(key, outcome, None, None, buffer)
                    for key, outcome, buffer in zip(keys, outcomes, buffers)]
        results: List[GetResult] = []
        host = iter(outcomes)
        device = dict(on_device)
        for i, (key, buffer) in enumerate(zip(keys, buffers)):
            if i in device:
                results.append(self._get_into_device(key, device[i]))
            else:
                results.append(_get_result(key, next(host), None, None,
                                           buffer))
        return results

    def lookup(self, keys: Sequence[str]) -> LookupResult:
        """Which blocks are present, and ``prefix_hits``: how many keys,
        from the first, are present."""
        keys = list(keys)
        present, tiers, sizes, prefix_hits = self._native.lookup(
            self._namespace, keys)
        return LookupResult(keys, present, tiers, sizes, prefix_hits)

    def batch_exists(self, keys: Sequence[str]) -> List[bool]:
        """:meth:`exists` of each key, in one call."""
        return self._native.lookup(self._namespace, list(keys))[0]

    def batch_delete(self, keys: Sequence[str]) -> DeleteResult:
        """Unregisters many blocks; ``errors[i]`` is None where block i
        was removed."""
        return _delete_result(
            self._native.unregister_batch(self._namespace, list(keys)))

    def delete_prefix(self, prefix: str) -> DeleteResult:
        """Unregisters every block whose key starts with `prefix` (not
        empty): one conversation's or one model's pages. Blocks that could
        not go (in use) are counted in ``blocks_failed``; call again for
        them."""
        return _delete_result(
            self._native.unregister_prefix(self._namespace, prefix))

    # ---- Server ----

    def status(self) -> Dict[str, Any]:
        """The server's Status (StatusResponse as a dict: tiers, counts,
        pressure, limits, ...), 64-bit counters as ints."""
        return self._native.status()

    def watch_pressure(self, *, send_current: bool = True) -> PressureWatch:
        """The server's pressure levels: the current one of each resource
        first (with `send_current`), then every change."""
        return PressureWatch(self._native.watch_pressure(send_current))

    # ---- Internals ----

    def _retry_resized(self, keys: List[str], sizes: List[int],
                       raws: List[Any], outcomes: List[Tuple[Any, ...]]
                       ) -> None:
        """Reads again, once, the blocks that failed because they were
        replaced by a larger one between the lookup and the read (raws[i]
        is a buffer, or a size for the native layer to make bytes of)."""
        failed = [i for i, o in enumerate(outcomes) if o[0] != 0]
        if not failed:
            return
        present, _, again, _ = self._native.lookup(
            self._namespace, [keys[i] for i in failed])
        redo = [i for i, p, size in zip(failed, present, again)
                if p and size != sizes[i]]
        for i, p, size in zip(failed, present, again):
            if p and size != sizes[i]:
                sizes[i] = size
                raws[i] = size if isinstance(raws[i], int) else \
                    _values.new_buffer(size)
        if redo:
            retried = self._native.get_batch(
                self._namespace, [(keys[i], raws[i]) for i in redo])
            for i, outcome in zip(redo, retried):
                outcomes[i] = outcome

    def _put_from_device(self, item: Tuple[Any, ...], enc: _values.Encoded,
                         durable: Optional[bool]) -> PutResult:
        torch = _values._torch()
        # The SDK copies on its own CUDA stream: the kernels that made the
        # tensor must be done first.
        torch.cuda.current_stream(enc.device).synchronize()
        try:
            created, version, is_durable = self._native.put_from_device(
                self._namespace, item, enc.device, durable)
        except Error as e:
            return PutResult(item[0], e)
        return PutResult(item[0], None, created, version, is_durable)

    def _get_into_device(self, key: str, t: _values.Encoded) -> GetResult:
        torch = _values._torch()
        tensor = t.source
        try:
            info = self._native.get_info(self._namespace, key)
            size = info["size_bytes"]
            if size > t.size:
                raise InvalidArgument(
                    f"block {key} has {size} bytes; the tensor holds "
                    f"{t.size}")
            block = self._native.access_device(self._namespace, key,
                                               t.device)
        except Error as e:
            return GetResult(key, e)
        try:
            # The SDK's copy on this device, viewed in place; copied on
            # torch's current stream, which must finish before the SDK may
            # evict its copy.
            source = torch.as_tensor(block, device=tensor.device)
            flat = tensor.view(-1).view(torch.uint8)
            flat[:size].copy_(source)
            torch.cuda.current_stream(tensor.device).synchronize()
        finally:
            block.release()
        return GetResult(key, None, tensor, size,
                         coerce(DType, info["dtype"]), tuple(info["shape"]),
                         coerce(RegionType, info["region_type"]),
                         dict(info["labels"]), False, info["version"])

    def _get_on_device(self, key: str, device: Any) -> Any:
        torch = _values._torch()
        info = self._native.get_info(self._namespace, key)
        dtype = coerce(DType, info["dtype"])
        t_dtype = _values.torch_dtype(dtype)
        itemsize = torch.empty(0, dtype=t_dtype).element_size()
        shape = _values.block_shape(info["shape"], info["size_bytes"],
                                    itemsize)
        tensor = torch.empty(shape, dtype=t_dtype, device=device)
        return self.get_into(key, tensor).value


def _key_list(keys: Union[str, Iterable[str]]) -> List[str]:
    return [keys] if isinstance(keys, str) else list(keys)


def _error(code: int, message: str) -> Optional[Error]:
    return None if code == 0 else from_status(code, message)


def _delete_result(outcome: Tuple[Any, ...]) -> DeleteResult:
    results, removed, ram, disk, failed, first = outcome
    return DeleteResult([_error(code, msg) for code, msg in results],
                        removed, ram, disk, failed,
                        None if first is None else from_status(*first))


# Enum members by number: a dict lookup per item instead of the enum
# constructor's slower path (batches convert three per block).
_DTYPES = {m.value: m for m in DType}
_REGION_TYPES = {m.value: m for m in RegionType}


def _member(table: Dict[int, Any], enum_type: Any, number: int) -> Any:
    member = table.get(number)
    # A number this package does not know (a newer server) raises here.
    return member if member is not None else enum_type(number)


def _get_result(key: str, outcome: Tuple[Any, ...], raw: Any,
                kind: Optional[str], buffer: Any = None) -> GetResult:
    (code, message, size, dtype, shape, region_type, labels, hit,
     version) = outcome[:9]
    if code != 0:
        return GetResult(key, from_status(code, message))
    dtype = _member(_DTYPES, DType, dtype)
    value = buffer if raw is None else \
        _values.decode(raw, size, dtype, shape, labels, kind)
    return GetResult(key, None, value, size, dtype, tuple(shape),
                     _member(_REGION_TYPES, RegionType, region_type),
                     labels, hit, version)
