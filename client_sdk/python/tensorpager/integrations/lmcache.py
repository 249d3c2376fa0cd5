"""LMCache remote-storage plugin on tensorpagerd.

Checked against LMCache at commit 9f5cee0c4923cd65a5c6708f356097f5be7b10ac:
``lmcache/v1/storage_backend/connector/base_connector.py``
(``RemoteConnector``), ``connector/__init__.py`` (``ConnectorAdapter``,
``ConnectorContext``, ``DynamicConnectorAdapter``), the fs connector's use
of ``local_cpu_backend.allocate(shapes, dtypes, fmt)`` and
``memory_obj.byte_array``, and
``docs/source/developer_guide/extending_lmcache/remote_storage_plugins.rst``.

Loading it into LMCache::

    remote_storage_plugins: ["tensorpager"]
    extra_config:
      remote_storage_plugin.tensorpager.module_path:
        tensorpager.integrations.lmcache
      remote_storage_plugin.tensorpager.class_name:
        TensorPagerConnectorAdapter
    remote_url: "tensorpager://127.0.0.1:50051/my-namespace"

``TensorPagerConnectorAdapter`` parses ``tensorpager://host:port/namespace``
(the path, without its leading ``/``, is the tensorpager namespace; none
is the server's default). Naming ``TensorPagerConnector`` itself as the
class also works: LMCache's ``DynamicConnectorAdapter`` then calls
``TensorPagerConnector(loop=, local_cpu_backend=, config=)``, and the
target comes from ``extra_config``.

Keys of ``config.extra_config`` read here (all optional):

``tensorpager.target``
    tensorpagerd's address when the URL gives none.
``tensorpager.namespace``
    namespace when the URL gives none.
``tensorpager.tenant_salt``
    any string; engines with different salts never see each other's
    chunks (it is part of the key scope's digest).
``tensorpager.timeout_s`` (5.0)
    per-RPC deadline; an async call gives up (a miss) after twice this.
``tensorpager.durable`` (server default)
    whether chunks are written to disk before a put returns.
``tensorpager.shared_memory_bytes`` (64 MiB)
    shared-memory arena with a server on the same host (0: gRPC only).

Keys: ``CacheEngineKey.to_string()`` under ``lmcache/<digest>/`` where the
digest covers the tenant salt. Each chunk is two blocks: ``.../d/<key>``,
the MemoryObj's bytes, written from its ``byte_array`` with no copy and
read straight into a MemoryObj from ``local_cpu_backend.allocate``; and
``.../m/<key>``, a small JSON header (shapes, dtypes, memory format, byte
count) that says what to allocate, the equivalent of LMCache's
``RemoteMetadata`` header. A chunk exists only when both blocks do.

Failures never reach LMCache as exceptions: an unreachable or restarting
server, a deadline, a DATA_LOSS block, a failed allocation or any other
error is a miss (``None``, ``False``, a shorter prefix) and is logged once
per operation and kind. LMCache has no stats hook for plugins: counters
(hits, misses, errors, bytes, seconds) come from :meth:`get_stats` and
:meth:`TensorPagerConnector.counters`.

Not supported: ``list()`` returns only the keys this connector stored that
are still present (tensorpager has no key listing); ``pin`` of
``batched_async_contains`` is ignored; layer-wise keys are stored like any
other key.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import threading
import time
from typing import (Any, Callable, Dict, List, Optional, Sequence, Set,
                    Tuple, TypeVar)
from urllib.parse import urlparse

import torch

from ..client import Client
from ..errors import NotFound
from ..types import RegionType
from .lmcache_compat import (LMCACHE_AVAILABLE, CacheEngineKey,
                             ConnectorAdapter, ConnectorContext,
                             MemoryFormat, MemoryObj, RemoteConnector)

__all__ = ["LMCACHE_AVAILABLE", "CacheEngineKey", "ConnectorAdapter",
           "ConnectorContext", "MemoryFormat", "MemoryObj",
           "RemoteConnector", "TensorPagerConnector",
           "TensorPagerConnectorAdapter", "TensorPagerCounters",
           "scope_prefix"]

logger = logging.getLogger(__name__)

SCHEME = "tensorpager://"
_MiB = 1 << 20
_MAX_BLOCK_ID = 256
# Tiers a chunk can be read from (not EMPTY, not LOST).
_READABLE = ("TIER_RAM", "TIER_DISK", "TIER_RAM_AND_DISK")
T = TypeVar("T")


def scope_prefix(tenant_salt: str = "") -> str:
    """The block-id prefix of one tenant's chunks: ``lmcache/<digest>/``."""
    digest = hashlib.sha256(json.dumps(
        {"salt": tenant_salt}).encode()).hexdigest()[:20]
    return f"lmcache/{digest}/"


@dataclasses.dataclass
class TensorPagerCounters:
    """What the connector did since it was made."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    puts: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    get_seconds: float = 0.0
    put_seconds: float = 0.0
    lookup_seconds: float = 0.0


def _extra(config: Any) -> Dict[str, Any]:
    extra = getattr(config, "extra_config", None) if config else None
    return dict(extra or {})


def _writable_bytes(memory_obj: Any) -> memoryview:
    """A flat byte view of the MemoryObj's own memory (no copy)."""
    view = memoryview(memory_obj.byte_array)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _header(memory_obj: Any, nbytes: int, key_text: str) -> bytes:
    # The key's text rides along so that list() can name chunks whose
    # block id is a hash of it (keys too long for an id).
    return json.dumps({
        "key": key_text,
        "shapes": [list(map(int, s)) for s in memory_obj.get_shapes()],
        "dtypes": [str(d).replace("torch.", "")
                   for d in memory_obj.get_dtypes()],
        "fmt": memory_obj.get_memory_format().name,
        "nbytes": nbytes}).encode()


def _key_text(key: Any) -> str:
    return key.to_string() if hasattr(key, "to_string") else str(key)


def _parse_header(raw: bytes) -> Tuple[List[torch.Size], List[torch.dtype],
                                       Any, int]:
    h = json.loads(raw)
    dtypes = []
    for name in h["dtypes"]:
        dtype = getattr(torch, name)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"bad dtype {name!r}")
        dtypes.append(dtype)
    return ([torch.Size(s) for s in h["shapes"]], dtypes,
            MemoryFormat[h["fmt"]], int(h["nbytes"]))


class TensorPagerConnector(RemoteConnector):  # type: ignore[misc]
    """LMCache ``RemoteConnector`` over a tensorpagerd (see the module
    docstring)."""

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop],
                 local_cpu_backend: Any, config: Any,
                 metadata: Any = None, *, url: Optional[str] = None,
                 client: Optional[Client] = None) -> None:
        """`url`: ``tensorpager://host:port/namespace`` (else
        ``extra_config``); `client`: an existing client to use (not closed
        by :meth:`close`); `metadata`: LMCache's engine metadata (else
        ``local_cpu_backend.metadata``)."""
        if metadata is None:
            metadata = getattr(local_cpu_backend, "metadata", None)
        super().__init__(config, metadata)
        extra = _extra(config)
        self.loop = loop
        self.local_cpu_backend = local_cpu_backend
        self.tenant_salt = str(extra.get("tensorpager.tenant_salt") or "")
        self.prefix = scope_prefix(self.tenant_salt)
        self.timeout_s = float(extra.get("tensorpager.timeout_s") or 5.0)
        durable = extra.get("tensorpager.durable")
        self.durable: Optional[bool] = None if durable is None else \
            str(durable).strip().lower() in ("1", "true", "yes", "on")
        self._counters = TensorPagerCounters()
        self._lock = threading.Lock()
        self._logged: Set[Tuple[str, str]] = set()
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="tensorpager-lmcache")
        self._owns_client = client is None
        if client is None:
            target = str(extra.get("tensorpager.target") or "")
            namespace = str(extra.get("tensorpager.namespace") or "")
            if url:
                parsed = urlparse(url)
                if parsed.hostname and parsed.port:
                    target = f"{parsed.hostname}:{parsed.port}"
                if parsed.path.strip("/"):
                    namespace = parsed.path.strip("/")
            if not target:
                raise ValueError("tensorpager: no target (give "
                                 "tensorpager://host:port/namespace or "
                                 "extra_config 'tensorpager.target')")
            client = Client(target, namespace=namespace,
                            shared_memory_bytes=int(extra.get(
                                "tensorpager.shared_memory_bytes",
                                64 * _MiB)),
                            timeout=self.timeout_s, max_retries=1,
                            connections=2)
        self.client = client

    # ---- Keys ----
    def _base(self, key: Any) -> str:
        text = _key_text(key)
        room = _MAX_BLOCK_ID - len(self.prefix) - 2
        if len(text) <= room and text.isascii() and text.isprintable():
            return text
        return "h-" + hashlib.sha256(text.encode()).hexdigest()

    def _ids(self, key: Any) -> Tuple[str, str]:
        base = self._base(key)
        return f"{self.prefix}d/{base}", f"{self.prefix}m/{base}"

    # ---- Failures, counters, threads ----
    def _note(self, op: str, error: BaseException) -> None:
        tag = (op, type(error).__name__)
        with self._lock:
            self._counters.errors += 1
            first = tag not in self._logged
            self._logged.add(tag)
        log = logger.warning if first else logger.debug
        log("tensorpager %s failed, reported as a miss (%s: %s)", op,
            type(error).__name__, error)

    def _add(self, **fields: float) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self._counters, name,
                        getattr(self._counters, name) + value)

    def counters(self) -> TensorPagerCounters:
        """A snapshot of the counters."""
        with self._lock:
            return dataclasses.replace(self._counters)

    def get_stats(self) -> Dict[str, float]:
        """The counters as a dict."""
        return dataclasses.asdict(self.counters())

    def _guard(self, op: str, fn: Callable[[], T], miss: T) -> T:
        """fn(), or `miss` (noted) when it raises or the connector is
        closed."""
        if self._closed:
            return miss
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - never into LMCache
            self._note(op, e)
            return miss

    async def _run(self, op: str, fn: Callable[[], T], miss: T,
                   on_late: Optional[Callable[[T], None]] = None) -> T:
        """Runs the blocking `fn` in a worker thread; `miss` when it fails
        or outlasts the deadline (`on_late` then gets its late result)."""
        if self._closed:
            return miss
        loop = asyncio.get_running_loop()
        try:
            fut = loop.run_in_executor(
                self._executor, lambda: self._guard(op, fn, miss))
        except RuntimeError as e:  # executor shut down
            self._note(op, e)
            return miss
        done, _ = await asyncio.wait({fut}, timeout=2 * self.timeout_s + 1)
        if not done:
            if on_late is not None:
                late = on_late
                fut.add_done_callback(lambda f: late(f.result()))
            self._note(op, TimeoutError("no answer before the deadline"))
            return miss
        return fut.result()

    # ---- Blocking operations ----
    def _present(self, keys: Sequence[Any]) -> List[bool]:
        ids = [i for key in keys for i in self._ids(key)]
        start = time.monotonic()
        present = self.client.lookup(ids).present
        self._add(lookup_seconds=time.monotonic() - start)
        return [present[2 * k] and present[2 * k + 1]
                for k in range(len(keys))]

    def _prefix(self, keys: Sequence[Any]) -> int:
        present = self._present(keys)
        return present.index(False) if False in present else len(present)

    def _get_many(self, keys: Sequence[Any]) -> List[Optional[Any]]:
        start = time.monotonic()
        out: List[Optional[Any]] = [None] * len(keys)
        ids = [self._ids(key) for key in keys]
        heads = self.client.batch_get([m for _, m in ids], kind="bytes")
        objs: List[Tuple[int, Any, memoryview, int]] = []
        try:
            for k, r in enumerate(heads):
                if r.error is not None:
                    if not isinstance(r.error, NotFound):
                        self._note("get", r.error)
                    continue
                try:
                    shapes, dtypes, fmt, nbytes = _parse_header(r.value)
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    self._note("get", e)
                    continue
                obj = self.local_cpu_backend.allocate(shapes, dtypes, fmt)
                if obj is None:
                    self._note("get", MemoryError("allocate gave None"))
                    continue
                view = _writable_bytes(obj)
                if len(view) != nbytes:
                    obj.ref_count_down()
                    self._note("get", ValueError(
                        f"allocated {len(view)} bytes, stored {nbytes}"))
                    continue
                objs.append((k, obj, view, nbytes))
            results = self.client.batch_get_into(
                [ids[k][0] for k, _, _, _ in objs],
                [view for _, _, view, _ in objs]) if objs else []
        except BaseException:
            for _, obj, _, _ in objs:
                obj.ref_count_down()
            raise
        nbytes_read = 0
        for (k, obj, _, nbytes), r in zip(objs, results):
            if r.error is None and r.size == nbytes:
                out[k] = obj
                nbytes_read += nbytes
                continue
            obj.ref_count_down()
            if r.error is not None and not isinstance(r.error, NotFound):
                self._note("get", r.error)
            elif r.error is None:
                self._note("get", ValueError(
                    f"read {r.size} bytes, expected {nbytes}"))
        hits = sum(o is not None for o in out)
        self._add(hits=hits, misses=len(keys) - hits,
                  bytes_read=nbytes_read,
                  get_seconds=time.monotonic() - start)
        return out

    def _put_many(self, keys: Sequence[Any],
                  memory_objs: Sequence[Any]) -> None:
        start = time.monotonic()
        present = self._present(keys)
        put_ids: List[str] = []
        values: List[Any] = []
        owners: List[Any] = []
        for key, obj, there in zip(keys, memory_objs, present):
            if there:
                continue
            data_id, meta_id = self._ids(key)
            view = memoryview(obj.byte_array)
            put_ids += [data_id, meta_id]
            values += [view, _header(obj, view.nbytes, _key_text(key))]
            owners.append(key)
        if not put_ids:
            return
        results = self.client.batch_put(
            put_ids, values, region_type=RegionType.KV_CACHE,
            durable=self.durable)
        written = 0
        for j, key in enumerate(owners):
            data, meta = results[2 * j], results[2 * j + 1]
            if data.error is None and meta.error is None:
                written += values[2 * j].nbytes
                with self._lock:
                    self._counters.puts += 1
            else:
                self._note("put", data.error or meta.error)
        self._add(bytes_written=written,
                  put_seconds=time.monotonic() - start)

    # ---- RemoteConnector ----
    async def exists(self, key: Any) -> bool:
        return await self._run("exists", lambda: self._present([key])[0],
                               False)

    def exists_sync(self, key: Any) -> bool:
        return self._guard("exists", lambda: self._present([key])[0], False)

    async def get(self, key: Any) -> Optional[Any]:
        return (await self.batched_get([key]))[0]

    async def put(self, key: Any, memory_obj: Any) -> None:
        await self.batched_put([key], [memory_obj])

    async def list(self) -> List[str]:
        """The keys of every readable chunk in this scope (namespace,
        model scope and tenant salt), whoever stored it."""
        return await self._run("list", self._listing, [])

    def _listing(self) -> List[str]:
        def readable(part: str) -> Set[str]:
            start = len(self.prefix) + 2
            return {b["id"][start:] for b in self.client.list_blocks(
                f"{self.prefix}{part}/") if b["tier"] in _READABLE}
        bases = sorted(readable("d") & readable("m"))
        hashed = [b for b in bases if b.startswith("h-")]
        texts = {b: b for b in bases}
        if hashed:
            headers = self.client.batch_get(
                [f"{self.prefix}m/{b}" for b in hashed], kind="bytes")
            for base, header in zip(hashed, headers):
                try:
                    texts[base] = json.loads(header.value)["key"]
                except (TypeError, ValueError, KeyError):
                    del texts[base]  # gone meanwhile, or not ours
        return [texts[b] for b in bases if b in texts]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(
            None, self._executor.shutdown, True)
        if self._owns_client:
            self.client.close()

    def support_ping(self) -> bool:
        return True

    async def ping(self) -> int:
        """0 when tensorpagerd answers, 1 otherwise."""
        def status() -> int:
            self.client.status()
            return 0
        return await self._run("ping", status, 1)

    def support_batched_get(self) -> bool:
        return True

    async def batched_get(self, keys: List[Any]) -> List[Optional[Any]]:
        keys = list(keys)
        if not keys:
            return []
        miss: List[Optional[Any]] = [None] * len(keys)

        def release(late: List[Optional[Any]]) -> None:
            for obj in late:
                if obj is not None:
                    obj.ref_count_down()
        result = await self._run("get", lambda: self._get_many(keys), miss,
                                 release)
        if result is miss:
            self._add(misses=len(keys))
        return result

    def support_batched_put(self) -> bool:
        return True

    async def batched_put(self, keys: List[Any],
                          memory_objs: List[Any]) -> None:
        keys = list(keys)
        memory_objs = list(memory_objs)
        if len(keys) != len(memory_objs):
            self._note("put", ValueError(
                f"{len(keys)} keys for {len(memory_objs)} objects"))
            return
        if keys:
            await self._run("put", lambda: self._put_many(keys, memory_objs),
                            None)

    def support_batched_async_contains(self) -> bool:
        return True

    async def batched_async_contains(self, lookup_id: str, keys: List[Any],
                                     pin: bool = False) -> int:
        """How many keys from the first are stored (one lookup)."""
        keys = list(keys)
        return await self._run("contains", lambda: self._prefix(keys), 0)

    def support_batched_get_non_blocking(self) -> bool:
        return True

    async def batched_get_non_blocking(self, lookup_id: str,
                                       keys: List[Any]) -> List[Any]:
        """The leading chunks that loaded; later ones are released."""
        got = await self.batched_get(keys)
        out: List[Any] = []
        for k, obj in enumerate(got):
            if obj is None:
                for rest in got[k + 1:]:
                    if rest is not None:
                        rest.ref_count_down()
                break
            out.append(obj)
        return out

    def remove_sync(self, key: Any) -> bool:
        """Deletes the chunk; True when it was stored and is gone."""
        def remove() -> bool:
            res = self.client.batch_delete(list(self._ids(key)))
            return res.errors[0] is None
        return self._guard("remove", remove, False)

    def support_batched_contains(self) -> bool:
        return True

    def batched_contains(self, keys: List[Any]) -> int:
        """How many keys from the first are stored (one lookup)."""
        keys = list(keys)
        return self._guard("contains", lambda: self._prefix(keys), 0)

    def __repr__(self) -> str:
        return f"<TensorPagerConnector {getattr(self, 'prefix', '')}>"


class TensorPagerConnectorAdapter(ConnectorAdapter):  # type: ignore[misc]
    """Makes a :class:`TensorPagerConnector` for
    ``tensorpager://host:port/namespace`` (and ``plugin://tensorpager``,
    the URL LMCache gives named plugins)."""

    def __init__(self) -> None:
        super().__init__(SCHEME)

    def can_parse(self, url: str) -> bool:
        if url.startswith(SCHEME):
            return True
        if url.startswith("plugin://"):
            name = url[len("plugin://"):]
            return name.split(".", 1)[0] == "tensorpager"
        return False

    def create_connector(self, context: Any) -> Any:
        url = context.url if str(context.url).startswith(SCHEME) else None
        return TensorPagerConnector(
            context.loop, context.local_cpu_backend, context.config,
            getattr(context, "metadata", None), url=url)
