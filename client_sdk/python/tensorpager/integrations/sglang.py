"""SGLang HiCache L3 storage backend on tensorpagerd.

Checked against SGLang's ``python/sglang/srt/mem_cache/hicache_storage.py``
at commit 17313cf4b25d7420e1fd10b969d8b911d28e6498 (``HiCacheStorage``,
``HiCacheStorageConfig``), the host pools' storage-facing methods in
``mem_cache/pool_host/`` (``get_page_buffer_meta``, ``get_data_page``,
``get_dummy_flat_data_page``, ``set_from_flat_data_page``) and the way
``managers/cache_controller.py`` and ``storage/backend_factory.py`` drive a
backend at the same commit.

Loading it into SGLang (a "dynamic" backend)::

    --hicache-storage-backend dynamic
    --hicache-storage-backend-extra-config '{
        "backend_name": "tensorpager",
        "module_path": "tensorpager.integrations.sglang",
        "class_name": "TensorPagerHiCacheStorage",
        "interface_v1": 1,
        "target": "127.0.0.1:50051"}'

SGLang's factory calls ``TensorPagerHiCacheStorage(storage_config, kwargs)``.
Keys of ``storage_config.extra_config`` read here:

``target`` (required)
    tensorpagerd's address, ``host:port`` or ``unix:/path``.
``namespace``
    tensorpager namespace of every page ("" is the server's default).
``tenant_salt``
    any string; engines with different salts never see each other's pages.
``timeout_s`` (5.0), ``max_retries`` (1), ``connections`` (2)
    per-RPC deadline, retries of read-only calls that meet a restarting
    server, gRPC connections.
``wait_ready_s`` (5.0)
    how long the constructor waits for the server; a server that is not up
    yet is logged, not raised: calls miss until it answers.
``shared_memory_bytes`` (64 MiB)
    shared-memory arena with a server on the same host (0: gRPC only).
``durable`` (server default), ``region_type`` ("kv_cache")
    how pages are stored.
``interface_v1``
    the flag SGLang's controller reads to use the zero-copy
    ``batch_get_v1``/``batch_set_v1`` path. It also tells
    :meth:`TensorPagerHiCacheStorage.batch_exists` which keys to look for:
    the v1 path stores each page as the chunks that the host pool's
    ``get_page_buffer_meta`` describes (K and V of a page-first MHA pool,
    one chunk for MLA), the generic ``batch_set`` path one flat block.

Keys are scoped: every block id starts with
``sglang/<model>/<digest>/`` where the digest covers the model name, the
tenant salt, MLA-ness, and for non-MLA models the TP rank and size (MLA
models keep one replicated copy of a page for all TP ranks, as SGLang's
own backends do), plus the PP and attention-CP rank when those are > 1.
Two models, tenants or TP shards therefore never read each other's pages.

Failures never reach the engine as exceptions: an unreachable or
restarting server, a deadline, a DATA_LOSS page or any other tensorpager
error is reported as a miss (``False``, ``None`` or a shorter prefix) and
logged once per kind of failure and operation. Counters (hits, misses,
bytes, per-call latency) come back from :meth:`get_stats`, SGLang's stats
hook, attached to the ``StorageMetrics`` object it expects.

When SGLang is importable the class subclasses SGLang's
``HiCacheStorage`` (its factory checks that). Without SGLang (tests, or
tools that only want the adapter) a small local stand-in with the same
method set, ``HiCacheStorageConfig``, ``HiCacheStorageExtraInfo`` and
``StorageMetrics`` takes its place.

Not supported: the multi-pool ``*_v2`` methods (they raise
``NotImplementedError`` as the base class does), split-heads layouts for
heterogeneous TP (``should_split_heads``: pages are then scoped to the
exact TP rank and size), and ``batch_set`` with raw pointers
(``target_locations`` without ``values``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from typing import Any, Dict, List, Optional, Set, Tuple

import torch

from ..client import Client
from ..errors import Error, NotFound
from ..results import GetResult, PutResult
from ..types import RegionType, coerce
from .sglang_compat import (SGLANG_AVAILABLE, HiCacheStorage,
                            HiCacheStorageConfig, HiCacheStorageExtraInfo,
                            StorageMetrics)
from .sglang_pool import PoolPages
from .sglang_stats import (Stats, TensorPagerCounters,
                           TensorPagerStorageMetrics, Timer)

__all__ = ["SGLANG_AVAILABLE", "HiCacheStorage", "HiCacheStorageConfig",
           "HiCacheStorageExtraInfo", "StorageMetrics", "TensorPagerCounters",
           "TensorPagerHiCacheStorage", "TensorPagerStorageMetrics",
           "scope_prefix"]

logger = logging.getLogger(__name__)

_MiB = 1 << 20
# tensorpager's limit on a block id (storage/base/block_key.h).
_MAX_BLOCK_ID = 256
# Room kept after the page id for the v1 chunk suffix (".<chunk>").
_CHUNK_SUFFIX_ROOM = 8


def scope_prefix(storage_config: Any, tenant_salt: str = "") -> str:
    """The block-id prefix of one engine shard's pages:
    ``sglang/<model>/<digest>/``.

    Non-MLA models store each TP rank's heads separately, so the rank and
    size are part of the scope; MLA models (``is_mla_model``, SGLang's
    "rank replicated") share one copy across TP ranks. PP and attention-CP
    ranks hold different layers or slices and are part of it when used.
    """
    model = storage_config.model_name or ""
    is_mla = bool(storage_config.is_mla_model)
    parts: Dict[str, Any] = {"model": model, "mla": is_mla,
                             "salt": tenant_salt}
    if not is_mla:
        parts["tp"] = [int(storage_config.tp_rank),
                       int(storage_config.tp_size)]
    pp_size = int(getattr(storage_config, "pp_size", 1) or 1)
    if pp_size > 1:
        parts["pp"] = [int(storage_config.pp_rank), pp_size]
    cp_size = int(getattr(storage_config, "attn_cp_size", 1) or 1)
    if cp_size > 1:
        parts["cp"] = [int(storage_config.attn_cp_rank), cp_size]
    digest = hashlib.sha256(
        json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")[-40:]
    return f"sglang/{slug or 'model'}/{digest}/"


def _option(extra: Dict[str, Any], name: str, kind: Any,
            default: Any) -> Any:
    value = extra.get(name)
    if value is None:
        return default
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return kind(value)


class TensorPagerHiCacheStorage(HiCacheStorage):  # type: ignore[misc]
    """SGLang ``HiCacheStorage`` over a tensorpagerd (see the module
    docstring for the configuration)."""

    def __init__(self, storage_config: Any,
                 kwargs: Optional[Dict[str, Any]] = None, *,
                 client: Optional[Client] = None):
        """`storage_config`: a ``HiCacheStorageConfig``; `kwargs`: what
        SGLang's factory passes along (unused). `client`: an existing
        client to use instead of connecting to ``extra_config['target']``
        (the adapter then does not close it)."""
        super().__init__()
        extra: Dict[str, Any] = dict(storage_config.extra_config or {})
        self.storage_config = storage_config
        self.extra_config = extra
        self.tenant_salt = str(extra.get("tenant_salt") or "")
        self.prefix = scope_prefix(storage_config, self.tenant_salt)
        self.interface_v1 = _option(extra, "interface_v1", bool, False)
        self.durable: Optional[bool] = _option(extra, "durable", bool, None)
        self.region_type = coerce(
            RegionType, extra.get("region_type") or RegionType.KV_CACHE)
        self._stats = Stats(bool(getattr(storage_config,
                                          "enable_storage_metrics", False)))
        self._logged: Set[Tuple[str, str]] = set()
        self._log_lock = threading.Lock()
        self._pages: Optional[PoolPages] = None
        self._max_page_id = (_MAX_BLOCK_ID - len(self.prefix) - 40 -
                             _CHUNK_SUFFIX_ROOM)
        if getattr(storage_config, "should_split_heads", False):
            logger.warning("tensorpager: split-heads layouts are not shared "
                           "across TP sizes; pages are scoped to TP rank %d "
                           "of %d", storage_config.tp_rank,
                           storage_config.tp_size)
        self._owns_client = client is None
        if client is None:
            target = extra.get("target")
            if not target:
                raise ValueError(
                    "tensorpager: extra_config needs 'target' (host:port or "
                    "unix:/path of tensorpagerd)")
            client = Client(
                str(target),
                namespace=str(extra.get("namespace") or ""),
                shared_memory_bytes=_option(extra, "shared_memory_bytes",
                                            int, 64 * _MiB),
                timeout=_option(extra, "timeout_s", float, 5.0),
                connections=_option(extra, "connections", int, 2),
                max_retries=_option(extra, "max_retries", int, 1))
            wait = _option(extra, "wait_ready_s", float, 5.0)
            if wait > 0:
                try:
                    client.wait_until_ready(wait)
                except Error as e:
                    logger.warning(
                        "tensorpager: %s not ready (%s); storage calls miss "
                        "until it answers", target, e)
        self.client = client
        logger.info("tensorpager HiCache storage: scope %s, interface_v1=%s",
                    self.prefix, self.interface_v1)

    # ---- Keys ----

    def _page_id(self, key: str) -> str:
        if (len(key) <= self._max_page_id and key.isascii()
                and key.isprintable()):
            return key
        return "h-" + hashlib.sha256(key.encode()).hexdigest()

    def _flat_id(self, key: str) -> str:
        """The block of a page stored whole (get/set/batch_*)."""
        return f"{self.prefix}pg/{self._page_id(key)}"

    def _chunk_ids(self, key: str, pages: PoolPages) -> List[str]:
        """The blocks of a page stored as the host pool's chunks (v1)."""
        base = (f"{self.prefix}v1.{pages.layout}.{pages.chunks_per_page}/"
                f"{self._page_id(key)}")
        return [f"{base}.{j}" for j in range(pages.chunks_per_page)]

    # ---- Failures and timing ----

    def _note(self, op: str, error: BaseException) -> None:
        """Counts a failure; logs the first of each kind per operation."""
        self._stats.add(errors=1)
        tag = (op, type(error).__name__)
        with self._log_lock:
            first = tag not in self._logged
            self._logged.add(tag)
        if first:
            logger.warning("tensorpager %s failed, reported as a miss (%s: "
                           "%s); further %s errors of this kind are logged "
                           "at debug level", op, type(error).__name__, error,
                           op)
        else:
            logger.debug("tensorpager %s failed: %s", op, error)

    def _item_ok(self, op: str, result: Any) -> bool:
        error = result.error
        if error is None:
            return True
        if not isinstance(error, NotFound):
            self._note(op, error)
        return False

    def _timed(self, op: str) -> Timer:
        return Timer(self._stats, op)

    # ---- Host pool ----

    def register_mem_pool_host(self, mem_pool_host: Any) -> None:
        super().register_mem_pool_host(mem_pool_host)
        try:
            self._pages = PoolPages(mem_pool_host)
        except (ValueError, AttributeError, TypeError) as e:
            self._pages = None
            logger.error("tensorpager: cannot serve the v1 page path from "
                         "this host pool (%s); batch_get_v1/batch_set_v1 "
                         "will miss", e)

    def _pool_pages(self, op: str) -> Optional[PoolPages]:
        if self._pages is None:
            self._note(op, RuntimeError("no usable host pool registered"))
        return self._pages

    # ---- Zero-copy page path ----

    def _host_views(self, op: str, host_indices: torch.Tensor, count: int,
                    spans: bool = False
                    ) -> Optional[Tuple[PoolPages, List[List[Any]]]]:
        """The host pool and views of its `count` pages at `host_indices`
        (uint8 tensors, or (address, size) with `spans`), or None (logged)
        without a pool or with indices that do not fit."""
        pages = self._pool_pages(op)
        if pages is None:
            return None
        try:
            if spans:
                return pages, pages.spans(host_indices, count)
            return pages, pages.views(host_indices, count)
        except ValueError as e:
            self._note(op, e)
            return None

    def batch_get_v1(self, keys: List[str], host_indices: torch.Tensor,
                     extra_info: Optional[Any] = None) -> List[bool]:
        """Reads each page into the host pool at `host_indices` (page_size
        indices per key); one bool per key."""
        keys = list(keys)
        if not keys:
            return []
        done = [False] * len(keys)
        with self._timed("batch_get_v1") as timer:
            # Spans, not tensors: a tensor per chunk costs more than the
            # chunk's bytes take to copy.
            got = self._host_views("batch_get_v1", host_indices, len(keys),
                                   spans=True)
            if got is None:
                self._stats.add(misses=len(keys))
                return done
            pages, views = got
            ids = [i for key in keys for i in self._chunk_ids(key, pages)]
            buffers = [v for page in views for v in page]
            try:
                results = self.client.batch_get_into(ids, buffers)
            except Error as e:
                self._note("batch_get_v1", e)
                self._stats.add(misses=len(keys))
                return done
            n = pages.chunks_per_page
            nbytes = 0
            for p in range(len(keys)):
                ok = True
                for r, (_, size) in zip(results[p * n:(p + 1) * n],
                                        views[p]):
                    ok = (self._item_ok("batch_get_v1", r)
                          and r.size == size) and ok
                done[p] = ok
                if ok:
                    nbytes += pages.page_bytes
            hits = sum(done)
            self._stats.add(hits=hits, misses=len(keys) - hits,
                            bytes_read=nbytes)
            self._stats.transfer(True, hits, nbytes, timer.elapsed())
        return done

    def batch_set_v1(self, keys: List[str], host_indices: torch.Tensor,
                     extra_info: Optional[Any] = None) -> List[bool]:
        """Stores the host pool's pages at `host_indices` under `keys`,
        skipping pages already stored; one bool per key."""
        keys = list(keys)
        if not keys:
            return []
        done = [False] * len(keys)
        with self._timed("batch_set_v1") as timer:
            got = self._host_views("batch_set_v1", host_indices, len(keys))
            if got is None:
                self._stats.add(write_failures=len(keys))
                return done
            pages, views = got
            ids = [self._chunk_ids(key, pages) for key in keys]
            written, present = self._put_missing(
                "batch_set_v1", ids, views)
            self._stats.transfer(False, written,
                                 written * pages.page_bytes,
                                 timer.elapsed())
        return present

    def _put_missing(self, op: str, ids: List[List[str]],
                     values: List[List[Any]]) -> Tuple[int, List[bool]]:
        """Puts the blocks of each page that are not stored yet (one
        lookup, one batch_put). Returns the pages written and, per page,
        whether all its blocks are now stored."""
        stored = [False] * len(ids)
        flat_ids = [i for page in ids for i in page]
        try:
            present = self.client.lookup(flat_ids).present
        except Error as e:
            self._note(op, e)
            self._stats.add(write_failures=len(ids))
            return 0, stored
        put_ids: List[str] = []
        put_values: List[Any] = []
        owner: List[int] = []
        k = 0
        for p, page in enumerate(ids):
            for block, value in zip(page, values[p]):
                if not present[k]:
                    put_ids.append(block)
                    put_values.append(value)
                    owner.append(p)
                k += 1
        results: List[PutResult] = []
        if put_ids:
            try:
                results = self.client.batch_put(
                    put_ids, put_values, region_type=self.region_type,
                    durable=self.durable)
            except (Error, ValueError, TypeError) as e:
                self._note(op, e)
                self._stats.add(write_failures=len(ids))
                return 0, stored
        failed: Set[int] = set()
        written: Set[int] = set()
        nbytes = 0
        for p, r, value in zip(owner, results, put_values):
            if self._item_ok(op, r):
                written.add(p)
                nbytes += _nbytes(value)
            else:
                failed.add(p)
        for p in range(len(ids)):
            stored[p] = p not in failed
        self._stats.add(
            pages_written=len(written - failed),
            pages_already_present=len(ids) - len(written | failed),
            write_failures=len(failed), bytes_written=nbytes)
        return len(written - failed), stored

    # ---- Generic path ----

    def get(self, key: str, target_location: Optional[Any] = None,
            target_sizes: Optional[Any] = None) -> Optional[torch.Tensor]:
        """The page: read into `target_location` (a contiguous tensor,
        returned) when given, else a new tensor. None when absent."""
        targets = None if target_location is None else [target_location]
        return self.batch_get([key], targets)[0]

    def batch_get(self, keys: List[str],
                  target_locations: Optional[Any] = None,
                  target_sizes: Optional[Any] = None
                  ) -> List[Optional[torch.Tensor]]:
        """One page per key (None where absent): read into
        ``target_locations[i]`` when given (SGLang passes dummy flat
        pages), else returned as new tensors."""
        keys = list(keys)
        out: List[Optional[torch.Tensor]] = [None] * len(keys)
        if not keys:
            return out
        with self._timed("batch_get"):
            targets = list(target_locations) if target_locations is not None \
                else [None] * len(keys)
            if len(targets) != len(keys):
                self._note("batch_get", ValueError(
                    f"{len(targets)} targets for {len(keys)} keys"))
                self._stats.add(misses=len(keys))
                return out
            into = [i for i, t in enumerate(targets) if t is not None]
            fresh = [i for i, t in enumerate(targets) if t is None]
            nbytes = 0
            try:
                if into:
                    usable = [i for i in into
                              if isinstance(targets[i], torch.Tensor)
                              and targets[i].is_contiguous()]
                    if len(usable) != len(into):
                        self._note("batch_get", ValueError(
                            "targets must be contiguous tensors"))
                    results = self.client.batch_get_into(
                        [self._flat_id(keys[i]) for i in usable],
                        [targets[i] for i in usable])
                    for i, r in zip(usable, results):
                        t = targets[i]
                        if (self._item_ok("batch_get", r)
                                and r.size == t.numel() * t.element_size()):
                            out[i] = t
                            nbytes += r.size
                if fresh:
                    got: List[GetResult] = self.client.batch_get(
                        [self._flat_id(keys[i]) for i in fresh],
                        kind="torch")
                    for i, r in zip(fresh, got):
                        if self._item_ok("batch_get", r):
                            out[i] = r.value
                            nbytes += r.size
            except Error as e:
                self._note("batch_get", e)
            hits = sum(v is not None for v in out)
            self._stats.add(hits=hits, misses=len(keys) - hits,
                            bytes_read=nbytes)
        return out

    def set(self, key: str, value: Optional[Any] = None,
            target_location: Optional[Any] = None,
            target_sizes: Optional[Any] = None) -> bool:
        """Stores `value` (a tensor or bytes-like page) under `key`."""
        return self.batch_set([key], None if value is None else [value])

    def batch_set(self, keys: List[str], values: Optional[Any] = None,
                  target_locations: Optional[Any] = None,
                  target_sizes: Optional[Any] = None) -> bool:
        """Stores ``values[i]`` under ``keys[i]``, skipping pages already
        stored; True when every page is stored."""
        keys = list(keys)
        if not keys:
            return True
        with self._timed("batch_set"):
            if values is None or len(values) != len(keys) or \
                    any(v is None for v in values):
                self._note("batch_set", ValueError(
                    "batch_set needs one value per key (raw target "
                    "locations are not supported)"))
                self._stats.add(write_failures=len(keys))
                return False
            flat = [v.contiguous() if isinstance(v, torch.Tensor) else v
                    for v in values]
            _, stored = self._put_missing(
                "batch_set", [[self._flat_id(k)] for k in keys],
                [[v] for v in flat])
        return all(stored)

    def exists(self, key: str) -> bool:
        """Whether `key`'s page is stored (as :meth:`batch_exists`)."""
        return self.batch_exists([key]) == 1

    def batch_exists(self, keys: List[str],
                     extra_info: Optional[Any] = None) -> int:
        """How many pages, from the first, are stored: one lookup. With
        ``interface_v1`` every chunk of a page must be there."""
        keys = list(keys)
        if not keys:
            return 0
        with self._timed("batch_exists"):
            if self.interface_v1:
                pages = self._pool_pages("batch_exists")
                if pages is None:
                    return 0
                per_page = pages.chunks_per_page
                ids = [i for key in keys for i in self._chunk_ids(key, pages)]
            else:
                per_page = 1
                ids = [self._flat_id(key) for key in keys]
            try:
                hits = self.client.lookup(ids).prefix_hits
            except Error as e:
                self._note("batch_exists", e)
                return 0
        return hits // per_page

    # ---- Housekeeping ----

    def clear(self) -> None:
        """Deletes this scope's pages (other models and tenants keep
        theirs)."""
        with self._timed("clear"):
            try:
                result = self.client.delete_prefix(self.prefix)
            except Error as e:
                self._note("clear", e)
                return
            if result.blocks_failed:
                logger.warning("tensorpager clear: %d blocks in use stayed",
                               result.blocks_failed)

    def counters(self) -> TensorPagerCounters:
        """The cumulative counters (a snapshot)."""
        return self._stats.counters()

    def get_stats(self) -> TensorPagerStorageMetrics:
        """SGLang's stats hook: the page counts and bandwidths since the
        last call (with ``enable_storage_metrics``) and the cumulative
        counters in ``.counters``."""
        return self._stats.drain()

    def close(self) -> None:
        """Closes the client the adapter opened (SGLang calls this on
        shutdown)."""
        if self._owns_client:
            self.client.close()


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    return memoryview(value).nbytes
