"""Counters of the SGLang adapter: cumulative hits, misses, bytes and
per-call latency, plus the per-interval page counts and bandwidths that
SGLang's ``StorageMetrics`` carries (its ``get_stats`` hook)."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Dict

from .sglang_compat import LocalStorageMetrics, StorageMetrics

_GiB = 1 << 30

@dataclasses.dataclass
class TensorPagerCounters:
    """Cumulative counters of one adapter (a snapshot)."""

    hits: int = 0  # pages read into the engine's memory
    misses: int = 0  # pages asked for and not read
    bytes_read: int = 0
    bytes_written: int = 0
    pages_written: int = 0
    pages_already_present: int = 0  # backups skipped: page already stored
    write_failures: int = 0  # pages a backup could not store
    errors: int = 0  # failed calls and items other than "not found"
    calls: Dict[str, int] = dataclasses.field(default_factory=dict)
    latency_s: Dict[str, float] = dataclasses.field(default_factory=dict)
    max_latency_s: Dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TensorPagerStorageMetrics(StorageMetrics):  # type: ignore[misc]
    """SGLang's ``StorageMetrics`` (per-interval page counts and
    bandwidths in GiB/s), plus this adapter's cumulative counters."""

    counters: TensorPagerCounters = dataclasses.field(
        default_factory=TensorPagerCounters)


class Stats:
    """Thread-safe counters: the prefetch and backup threads call the
    adapter at the same time."""

    def __init__(self, record_intervals: bool):
        self._lock = threading.Lock()
        self._c = TensorPagerCounters()
        self._record_intervals = record_intervals
        self._interval = LocalStorageMetrics()

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self._c, name, getattr(self._c, name) + delta)

    def call(self, op: str, seconds: float) -> None:
        with self._lock:
            c = self._c
            c.calls[op] = c.calls.get(op, 0) + 1
            c.latency_s[op] = c.latency_s.get(op, 0.0) + seconds
            c.max_latency_s[op] = max(c.max_latency_s.get(op, 0.0), seconds)

    def transfer(self, prefetch: bool, pages: int, nbytes: int,
                 seconds: float) -> None:
        """One v1 transfer, for SGLang's page-count and bandwidth
        histograms (kept only with enable_storage_metrics)."""
        if not self._record_intervals or pages == 0:
            return
        bandwidth = nbytes / _GiB / max(seconds, 1e-9)
        with self._lock:
            if prefetch:
                self._interval.prefetch_pgs.append(pages)
                self._interval.prefetch_bandwidth.append(bandwidth)
            else:
                self._interval.backup_pgs.append(pages)
                self._interval.backup_bandwidth.append(bandwidth)

    def counters(self) -> TensorPagerCounters:
        with self._lock:
            c = self._c
            return dataclasses.replace(
                c, calls=dict(c.calls), latency_s=dict(c.latency_s),
                max_latency_s=dict(c.max_latency_s))

    def drain(self) -> TensorPagerStorageMetrics:
        counters = self.counters()
        with self._lock:
            interval, self._interval = self._interval, LocalStorageMetrics()
        return TensorPagerStorageMetrics(
            prefetch_pgs=interval.prefetch_pgs,
            backup_pgs=interval.backup_pgs,
            prefetch_bandwidth=interval.prefetch_bandwidth,
            backup_bandwidth=interval.backup_bandwidth,
            counters=counters)


class Timer:
    def __init__(self, stats: Stats, op: str):
        self._stats = stats
        self._op = op
        self._start = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stats.call(self._op, self.elapsed())
