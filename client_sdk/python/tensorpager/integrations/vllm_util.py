"""Helpers of :mod:`tensorpager.integrations.vllm`: the block-id scope,
zero-copy views of the primary tier's slots, the tier's counters and its
configuration keys."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any, Dict, Optional, Set

logger = logging.getLogger("tensorpager.integrations.vllm")


PREFIX = "vllm:kv_offload_tensorpager_"
# Counter name -> documentation; get_stats reports them under PREFIX.
METRICS: Dict[str, str] = {
    "store_jobs": "store jobs finished",
    "store_failed_jobs": "store jobs that failed",
    "blocks_stored": "blocks written to tensorpager",
    "blocks_already_present": "blocks a store skipped as already stored",
    "bytes_written": "bytes written to tensorpager",
    "load_jobs": "load jobs finished",
    "load_failed_jobs": "load jobs that failed (all or some blocks)",
    "blocks_loaded": "blocks read into the primary tier",
    "bytes_read": "bytes read into the primary tier",
    "lookups": "lookup calls",
    "lookup_hits": "lookups answered HIT",
    "lookup_retries": "lookups answered RETRY (check in flight)",
    "lookup_rpcs": "batched lookup RPCs sent",
    "touched": "keys touched",
    "errors": "failed RPCs and blocks other than not found",
}


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def scope_prefix(offloading_spec: Any, slot_bytes: int,
                 tenant_salt: str = "", model: Optional[str] = None) -> str:
    """``vllm/<digest>/``: the digest covers what makes a block's bytes
    mean something (model, dtype, tokens per block and hash, parallel
    layout unless parallelism-agnostic, slot size) and the tenant salt."""
    config = _get(offloading_spec, "config")
    parallel = _get(config, "parallel")
    parts: Dict[str, Any] = {
        "model": model or _get(config, "model", "name") or "",
        "dtype": str(_get(config, "model", "dtype") or ""),
        "tokens_per_block": list(
            getattr(offloading_spec, "tokens_per_block", ()) or ()),
        "tokens_per_hash": _get(config, "cache", "tokens_per_hash"),
        "replicated": bool(getattr(offloading_spec, "replicated_layout",
                                   False)),
        "slot_bytes": int(slot_bytes),
        "salt": tenant_salt,
    }
    if parallel is not None and not getattr(
            parallel, "is_parallelism_agnostic", False):
        parts["parallel"] = [getattr(parallel, n, None) for n in (
            "rank", "world_size", "tp_size", "pp_size", "pcp_size",
            "dcp_size")]
    digest = hashlib.sha256(json.dumps(
        parts, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"vllm/{digest}/"


class Slots:
    """Zero-copy byte views of the primary tier's slots."""

    def __init__(self, view: memoryview, block_bytes: Optional[int],
                 spec: Any):
        size = block_bytes
        if not size and view.ndim > 1:
            size = view.strides[0]  # as vLLM's example tier does
        if not size:
            size = _get(spec, "config", "worker_kv_bytes_per_block")
        if not size or int(size) <= 0:
            raise ValueError("cannot tell the primary tier's slot size: "
                             "pass block_bytes")
        flat = view if view.ndim == 1 and view.format == "B" else \
            view.cast("B")
        if flat.nbytes % int(size):
            raise ValueError(f"the primary view ({flat.nbytes} bytes) is "
                             f"not a whole number of {size}-byte slots")
        self.size = int(size)
        self.count = flat.nbytes // self.size
        self._flat = flat

    def view(self, block_id: int) -> memoryview:
        i = int(block_id)
        if not 0 <= i < self.count:
            raise IndexError(f"block id {i} is outside the primary tier "
                             f"({self.count} slots)")
        return self._flat[i * self.size:(i + 1) * self.size]


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total: Dict[str, int] = dict.fromkeys(METRICS, 0)
        self._interval: Dict[str, int] = {}

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._total[name] += delta
                self._interval[name] = self._interval.get(name, 0) + delta

    def total(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._total)

    def take(self) -> Dict[str, int]:
        with self._lock:
            out, self._interval = self._interval, {}
        return {k: v for k, v in out.items() if v}


_CLIENT_KEYS = {"target", "namespace", "shared_memory_bytes", "timeout_s",
                "connections", "max_retries", "wait_ready_s"}


class Options:
    """The factory's extra keys, with types and defaults."""

    def __init__(self, config: Dict[str, Any]):
        self._config = dict(config)
        self._used: Set[str] = set()

    def get(self, name: str, kind: Any, default: Any) -> Any:
        self._used.add(name)
        value = self._config.get(name)
        if value is None:
            return default
        if kind is bool and isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return kind(value)

    def warn_unused(self) -> None:
        unused = sorted(set(self._config) - self._used - _CLIENT_KEYS)
        if unused:
            logger.warning("tensorpager vLLM tier: ignoring keys %s",
                           unused)
