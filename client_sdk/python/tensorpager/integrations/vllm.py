"""vLLM secondary offloading tier on tensorpagerd.

Checked against vLLM at commit 017e9f4448b700e85ee16023287b025693c72b9e:
``vllm/v1/kv_offload/tiering/base.py`` (``SecondaryTierManager``,
``TransferJob``, ``JobResult``), ``vllm/v1/kv_offload/base.py``
(``OffloadKey``, ``LookupResult``, ``OffloadingSpec``),
``tiering/factory.py`` (how a tier is built) and
``tiering/example/manager.py`` (the slot size of the primary view).

Loading it into vLLM (an out-of-tree tier: ``type`` is the class name)::

    --kv-transfer-config '{"kv_connector": "OffloadingConnector",
      "kv_connector_extra_config": {
        "spec_name": "TieringOffloadingSpec",
        "secondary_tiers": [{
          "type": "TensorPagerSecondaryTier",
          "module_path": "tensorpager.integrations.vllm",
          "target": "127.0.0.1:50051"}]}}'

The factory calls ``TensorPagerSecondaryTier(offloading_spec=...,
primary_kv_view=..., tier_type=..., **other_keys)``. Keys read here:

``target`` (required)
    tensorpagerd's address, ``host:port`` or ``unix:/path``.
``namespace`` ("": the server's default), ``tenant_salt`` ("")
    engines with different salts never see each other's blocks.
``timeout_s`` (5.0), ``max_retries`` (1), ``connections`` (2),
``shared_memory_bytes`` (64 MiB), ``wait_ready_s`` (2.0)
    client settings; a server that is not up is logged, not raised.
``durable`` (server default), ``region_type`` ("kv_cache")
    how blocks are stored.
``io_threads`` (2), ``drain_timeout_s`` (60.0)
    transfer threads, and the longest ``drain_jobs`` waits.
``max_known_keys`` (1000000)
    keys remembered as stored; the least recently used go first, and a
    forgotten key is checked with the server again.
``block_bytes`` (the primary view's ``strides[0]``), ``model``
    slot size, and the model name when the spec does not give one.

Every scheduler-side method returns at once. ``lookup`` answers from a
local index (the blocks this tier stored or found, refreshed by
background batched ``lookup`` RPCs): ``HIT``, ``MISS``, or ``RETRY``
while a check is in flight, as vLLM's own ``AsyncLookupManager`` does
(verdicts are kept per request until ``on_request_finished``).
``submit_store``/``submit_load`` hand the copy to a thread pool that moves
the primary view's slots with ``batch_put``/``batch_get_into`` on
memoryview slices (no extra copy). ``touch`` re-checks the keys with a
background ``lookup`` (vLLM documents it as an eviction hint; tensorpager
keeps its own recency, so this only refreshes the index).

Block ids are ``vllm/<scope digest>/<hex of the OffloadKey>``; the digest
covers the model, dtype, block geometry, parallel layout, slot size and
tenant salt. Failures (server down or restarted, DATA_LOSS, deadlines)
never raise into vLLM: jobs report ``success=False`` and the keys become
misses. Counters come back from :meth:`get_stats` as vLLM's
``OffloadingConnectorStats``.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
import queue
import threading
import time
from typing import Any, Collection, Dict, Iterable, List, Optional, Set
from typing import Tuple

from ..client import Client
from ..errors import Error, NotFound
from ..types import RegionType, coerce
from .vllm_compat import (VLLM_AVAILABLE, JobResult, LookupResult, Medium,
                          OffloadingConnectorStats,
                          OffloadingCounterMetadata, RequestOffloadingContext,
                          SecondaryTierManager)
from .vllm_util import METRICS, PREFIX, Counters, Options, Slots, \
    scope_prefix

__all__ = ["VLLM_AVAILABLE", "TensorPagerSecondaryTier", "METRICS",
           "scope_prefix"]

logger = logging.getLogger(__name__)

_MiB = 1 << 20
_LOOKUP_BATCH = 1024


class TensorPagerSecondaryTier(SecondaryTierManager):  # type: ignore[misc]
    """vLLM ``SecondaryTierManager`` over a tensorpagerd (see the module
    docstring for the configuration)."""

    medium = Medium.STORAGE

    def __init__(self, offloading_spec: Any, primary_kv_view: memoryview,
                 tier_type: str, *, client: Optional[Client] = None,
                 **config: Any) -> None:
        """`client`: an existing client instead of connecting to
        ``target`` (the tier then does not close it)."""
        super().__init__(offloading_spec=offloading_spec,
                         primary_kv_view=primary_kv_view,
                         tier_type=tier_type)
        opt = Options(config)
        self.tenant_salt = str(opt.get("tenant_salt", str, ""))
        self._slots = Slots(primary_kv_view,
                             opt.get("block_bytes", int, None),
                             offloading_spec)
        self.prefix = scope_prefix(offloading_spec, self._slots.size,
                                   self.tenant_salt,
                                   opt.get("model", str, None))
        self.durable: Optional[bool] = opt.get("durable", bool, None)
        self.region_type = coerce(RegionType, opt.get(
            "region_type", str, "kv_cache"))
        self.drain_timeout_s = float(opt.get("drain_timeout_s", float, 60.0))
        self._owns_client = client is None
        if client is None:
            target = opt.get("target", str, None)
            if not target:
                raise ValueError("tensorpager: the tier config needs "
                                 "'target' (host:port or unix:/path)")
            client = Client(
                target, namespace=opt.get("namespace", str, ""),
                shared_memory_bytes=opt.get("shared_memory_bytes", int,
                                            64 * _MiB),
                timeout=opt.get("timeout_s", float, 5.0),
                connections=opt.get("connections", int, 2),
                max_retries=opt.get("max_retries", int, 1))
            wait = opt.get("wait_ready_s", float, 2.0)
            try:
                if wait > 0:
                    client.wait_until_ready(wait)
            except Error as e:
                logger.warning("tensorpager: %s not ready (%s); the tier "
                               "misses until it answers", target, e)
        io_threads = max(1, opt.get("io_threads", int, 2))
        # The index of stored keys is bounded: a key it forgot is checked
        # with the server again (RETRY, then HIT), never lost.
        self._max_known = max(1, opt.get("max_known_keys", int, 1_000_000))
        opt.warn_unused()
        self.client = client
        self._counters = Counters()
        self._logged: Set[Tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        # Keys known stored (LRU order); guarded by _lock.
        self._present: "collections.OrderedDict[bytes, None]" = \
            collections.OrderedDict()
        # Per-request verdicts of background checks (None: in flight).
        self._verdict: Dict[bytes, Optional[bool]] = {}
        self._key_reqs: Dict[bytes, Set[str]] = {}
        self._req_keys: Dict[str, Set[bytes]] = {}
        self._jobs: Dict[int, cf.Future] = {}
        self._job_seq = 0
        self._finished: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._checks: "queue.SimpleQueue[Optional[Tuple[bytes, bool]]]" = \
            queue.SimpleQueue()
        self._closed = False
        self._pool = cf.ThreadPoolExecutor(
            max_workers=io_threads, thread_name_prefix="tensorpager-vllm-io")
        self._checker = threading.Thread(
            target=self._check_loop, name="tensorpager-vllm-lookup",
            daemon=True)
        self._checker.start()
        logger.info("tensorpager vLLM tier %r: scope %s, %d slots of %d "
                    "bytes", tier_type, self.prefix, self._slots.count,
                    self._slots.size)

    # ---- Keys and failures ----

    def block_id(self, key: bytes) -> str:
        """The tensorpager block id of an ``OffloadKey``."""
        return self.prefix + bytes(key).hex()

    def _note(self, op: str, error: BaseException) -> None:
        self._counters.add(errors=1)
        tag = (op, type(error).__name__)
        with self._lock:
            first = tag not in self._logged
            self._logged.add(tag)
        log = logger.warning if first else logger.debug
        log("tensorpager %s failed, reported as a miss (%s: %s)", op,
            type(error).__name__, error)

    def _remember(self, key: bytes) -> None:
        """Records `key` as stored, most recent; the lock is held."""
        self._present[key] = None
        self._present.move_to_end(key)
        while len(self._present) > self._max_known:
            self._present.popitem(last=False)

    def _mark_present(self, keys: Iterable[bytes]) -> None:
        with self._lock:
            for key in keys:
                self._remember(key)

    def _mark_missing(self, keys: Iterable[bytes]) -> None:
        """Forgets keys that failed to load, so that vLLM stops promoting
        them (its own tiers do the same against a livelock)."""
        with self._lock:
            for key in keys:
                self._present.pop(key, None)
                if key in self._verdict:
                    self._verdict[key] = False

    # ---- Lookups ----

    def lookup(self, key: Any, req_context: Any) -> Any:
        key = bytes(key)
        req_id = str(req_context.req_id)
        with self._lock:
            if key in self._present:
                self._present.move_to_end(key)
                verdict: Optional[bool] = True
            elif key in self._verdict:
                verdict = self._verdict[key]
            else:
                verdict = None
                self._verdict[key] = None
                self._checks.put((key, False))
            if verdict is not True:
                self._key_reqs.setdefault(key, set()).add(req_id)
                self._req_keys.setdefault(req_id, set()).add(key)
        self._counters.add(lookups=1, lookup_hits=int(verdict is True),
                           lookup_retries=int(verdict is None))
        if verdict is None:
            return LookupResult.RETRY
        return LookupResult.HIT if verdict else LookupResult.MISS

    def touch(self, keys: Collection[Any], req_context: Any) -> None:
        """Re-checks the stored keys in the background (a batched
        ``lookup``), refreshing the index; never blocks."""
        n = 0
        with self._lock:
            for key in keys:
                key = bytes(key)
                if key in self._present:
                    self._present.move_to_end(key)
                    self._checks.put((key, True))
                    n += 1
        self._counters.add(touched=n)

    def on_request_finished(self, req_context: Any) -> None:
        req_id = str(req_context.req_id)
        with self._lock:
            for key in self._req_keys.pop(req_id, ()):
                reqs = self._key_reqs.get(key)
                if reqs is not None:
                    reqs.discard(req_id)
                    if not reqs:
                        del self._key_reqs[key]
                        self._verdict.pop(key, None)

    def _check_loop(self) -> None:
        while True:
            item = self._checks.get()
            if item is None:
                return
            batch: List[Tuple[bytes, bool]] = [item]
            while len(batch) < _LOOKUP_BATCH:
                try:
                    item = self._checks.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    return
                batch.append(item)
            self._check(batch)

    def _check(self, batch: List[Tuple[bytes, bool]]) -> None:
        keys = list(dict.fromkeys(key for key, _ in batch))
        try:
            present = list(self.client.batch_exists(
                [self.block_id(k) for k in keys]))
        except Exception as e:  # never into vLLM's threads
            self._note("lookup", e)
            present = [False] * len(keys)
        self._counters.add(lookup_rpcs=1)
        with self._lock:
            for key, found in zip(keys, present):
                if found:
                    self._remember(key)
                else:
                    self._present.pop(key, None)
                if key in self._verdict and self._verdict[key] is None:
                    self._verdict[key] = bool(found)

    # ---- Jobs ----

    def submit_store(self, job_metadata: Any) -> None:
        keys = [bytes(k) for k in job_metadata.keys]
        blocks = [int(b) for b in job_metadata.block_ids]
        if len(keys) != len(blocks):
            # The job fails as a whole (reported once, like any other).
            self._note("store", ValueError(
                f"{len(keys)} keys for {len(blocks)} block ids"))
            self._submit(job_metadata.job_id, self._store, [], False,
                         is_load=False)
            return
        with self._lock:
            missing = [(k, b) for k, b in zip(keys, blocks)
                       if k not in self._present]
        self._counters.add(blocks_already_present=len(keys) - len(missing))
        self._submit(job_metadata.job_id, self._store, missing, True,
                     is_load=False)

    def submit_load(self, job_metadata: Any) -> None:
        keys = [bytes(k) for k in job_metadata.keys]
        blocks = [int(b) for b in job_metadata.block_ids]
        ok = len(keys) == len(blocks)
        if not ok:
            self._note("load", ValueError(
                f"{len(keys)} keys for {len(blocks)} block ids"))
        self._submit(job_metadata.job_id, self._load,
                     list(zip(keys, blocks)) if ok else [], ok,
                     is_load=True)

    def _submit(self, job_id: int, work: Any, items: List[Tuple[bytes, int]],
                ok: bool, is_load: bool) -> None:
        if not items:
            self._finish(job_id, is_load, JobResult(
                job_id=job_id, success=ok, transfer_time=0.0))
            return
        with self._lock:
            self._job_seq += 1
            seq = self._job_seq
            try:
                future = self._pool.submit(work, job_id, items)
            except RuntimeError as e:  # shut down
                future = None
                error: Optional[RuntimeError] = e
            else:
                error = None
                self._jobs[seq] = future
        if future is None:
            self._note("load" if is_load else "store",
                       error or RuntimeError("closed"))
            self._finish(job_id, is_load,
                         JobResult(job_id=job_id, success=False))
            return
        future.add_done_callback(
            lambda f: self._done(seq, job_id, is_load, f))

    def _done(self, seq: int, job_id: int, is_load: bool,
              future: cf.Future) -> None:
        if future.cancelled():
            result = JobResult(job_id=job_id, success=False)
        else:
            error = future.exception()
            if error is not None:
                self._note("load" if is_load else "store", error)
                result = JobResult(job_id=job_id, success=False)
            else:
                result = future.result()
        self._finish(job_id, is_load, result)
        with self._idle:
            self._jobs.pop(seq, None)
            self._idle.notify_all()

    def _finish(self, job_id: int, is_load: bool, result: Any) -> None:
        if is_load:
            self._counters.add(load_jobs=1,
                               load_failed_jobs=int(not result.success))
        else:
            self._counters.add(store_jobs=1,
                               store_failed_jobs=int(not result.success))
        self._finished.put(result)

    def _store(self, job_id: int, items: List[Tuple[bytes, int]]) -> Any:
        start = time.perf_counter()
        keys = [k for k, _ in items]
        try:
            results = self.client.batch_put(
                [self.block_id(k) for k in keys],
                [self._slots.view(b) for _, b in items],
                region_type=self.region_type, durable=self.durable)
        except Exception as e:
            self._note("store", e)
            return JobResult(job_id=job_id, success=False)
        stored = []
        for key, result in zip(keys, results):
            if result.error is None:
                stored.append(key)
            else:
                self._note("store", result.error)
        self._mark_present(stored)
        self._counters.add(blocks_stored=len(stored),
                           bytes_written=len(stored) * self._slots.size)
        return JobResult(job_id=job_id, success=len(stored) == len(keys),
                         transfer_time=time.perf_counter() - start)

    def _load(self, job_id: int, items: List[Tuple[bytes, int]]) -> Any:
        start = time.perf_counter()
        keys = [k for k, _ in items]
        try:
            results = self.client.batch_get_into(
                [self.block_id(k) for k in keys],
                [self._slots.view(b) for _, b in items])
        except Exception as e:
            self._note("load", e)
            self._mark_missing(keys)
            return JobResult(job_id=job_id, success=False)
        loaded: List[bytes] = []
        failed: List[bytes] = []
        for key, result in zip(keys, results):
            if result.error is None and result.size == self._slots.size:
                loaded.append(key)
                continue
            failed.append(key)
            error = result.error or ValueError(
                f"block of {result.size} bytes for a "
                f"{self._slots.size}-byte slot")
            if not isinstance(error, NotFound):
                self._note("load", error)
        self._mark_missing(failed)
        self._counters.add(blocks_loaded=len(loaded),
                           bytes_read=len(loaded) * self._slots.size)
        return JobResult(
            job_id=job_id, success=not failed,
            successful_keys=loaded if failed and loaded else None,
            transfer_time=time.perf_counter() - start)

    def get_finished_jobs(self) -> Iterable[Any]:
        done: List[Any] = []
        while True:
            try:
                done.append(self._finished.get_nowait())
            except queue.Empty:
                return done

    def drain_jobs(self) -> None:
        """Waits (at most ``drain_timeout_s``) until no job is in flight;
        past that, cancels the jobs not started (they report failure) and
        logs the ones still copying."""
        deadline = time.monotonic() + self.drain_timeout_s
        with self._idle:
            while self._jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(left)
            stuck = list(self._jobs.values())
        if stuck:
            for future in stuck:
                future.cancel()
            with self._lock:
                running = len(self._jobs)
            if running:
                logger.error("tensorpager: %d transfers still running "
                             "after %.1fs", running, self.drain_timeout_s)

    def has_pending_work(self) -> bool:
        with self._lock:
            return bool(self._jobs) or not self._finished.empty() or any(
                v is None for v in self._verdict.values())

    def on_new_request(self, req_context: Any) -> Any:
        return RequestOffloadingContext()

    # ---- Metrics and lifetime ----

    @classmethod
    def build_metric_definitions(cls, extra_config: Dict[str, Any]
                                 ) -> Dict[str, Any]:
        return {PREFIX + name: OffloadingCounterMetadata(documentation=doc)
                for name, doc in METRICS.items()}

    def get_stats(self) -> Any:
        """The counters since the last call, as vLLM's
        ``OffloadingConnectorStats`` (None when nothing happened)."""
        deltas = self._counters.take()
        if not deltas:
            return None
        stats = OffloadingConnectorStats()
        for name, value in deltas.items():
            stats.increase_counter(PREFIX + name, value)
        return stats

    def counters(self) -> Dict[str, int]:
        """Cumulative counters since the tier was built."""
        return self._counters.total()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.drain_jobs()
        self._pool.shutdown(wait=False)
        self._checks.put(None)
        self._checker.join(timeout=self.drain_timeout_s)
        if self._owns_client:
            self.client.close()
