"""What the calls of :class:`tensorpager.Client` return.

Batch calls give one result per item, in the order of the keys: a failed
item carries its exception in ``error`` (``ok`` is False) and changed
nothing on the server; the other items went ahead.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from .errors import Error
from .types import DType, RegionType, Tier


_EMPTY_LABELS: Mapping[str, str] = types.MappingProxyType({})


def _raise_if_error(error: Optional[Error]) -> None:
    if error is not None:
        raise error


# Per-item results are NamedTuples: a batch makes one per block, and a
# NamedTuple is built several times faster than a frozen dataclass.


class PutResult(NamedTuple):
    """One block of :meth:`Client.batch_put` (or a :meth:`Client.put`)."""

    key: str
    error: Optional[Error] = None
    created: bool = False  # the put registered the block
    version: int = 0  # the block's version after the put
    durable: bool = False  # on disk when acknowledged

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_if_error(self) -> None:
        """Raises ``error`` when the item failed."""
        _raise_if_error(self.error)


class GetResult(NamedTuple):
    """One block of :meth:`Client.batch_get` or
    :meth:`Client.batch_get_into`.

    ``value`` is the block (bytes, a numpy array or a torch tensor, see
    :meth:`Client.get`) for ``batch_get``, the caller's buffer for
    ``batch_get_into``, and None when the item failed.
    """

    key: str
    error: Optional[Error] = None
    value: Any = None
    size: int = 0  # bytes of the block (written to the buffer's front)
    dtype: DType = DType.UNSPECIFIED
    shape: Tuple[int, ...] = ()
    region_type: RegionType = RegionType.UNSPECIFIED
    labels: Mapping[str, str] = _EMPTY_LABELS
    hit: bool = False  # it was in the server's RAM
    version: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_if_error(self) -> None:
        """Raises ``error`` when the item failed."""
        _raise_if_error(self.error)


class LookupEntry(NamedTuple):
    """One key of :meth:`Client.lookup`. ``present``: written and readable
    (in RAM or on disk); a registered block that is EMPTY or LOST is not
    present. ``tier`` is UNSPECIFIED when no such block exists."""

    key: str
    present: bool
    tier: Tier
    size: int


class LookupResult:
    """:meth:`Client.lookup`: ``prefix_hits``, how many keys from the first
    are present (the part of a chain of page hashes that can be loaded
    instead of recomputed), ``present`` per key, and ``entries``, a
    :class:`LookupEntry` per key in order (built when first asked for:
    an engine that needs only ``prefix_hits`` does not pay for them)."""

    __slots__ = ("keys", "present", "sizes", "prefix_hits", "_tiers",
                 "_entries")

    def __init__(self, keys: List[str], present: List[bool],
                 tiers: List[int], sizes: List[int], prefix_hits: int):
        self.keys = keys
        self.present = present
        self.sizes = sizes  # bytes of each block, 0 where none
        self.prefix_hits = prefix_hits
        self._tiers = tiers
        self._entries: Optional[List[LookupEntry]] = None

    @property
    def entries(self) -> List[LookupEntry]:
        if self._entries is None:
            tiers = {m.value: m for m in Tier}
            self._entries = [
                LookupEntry(k, p, tiers[t] if t in tiers else Tier(t), n)
                for k, p, t, n in zip(self.keys, self.present, self._tiers,
                                      self.sizes)]
        return self._entries

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return (f"LookupResult(prefix_hits={self.prefix_hits}, "
                f"present={self.present})")


@dataclasses.dataclass(frozen=True)
class DeleteResult:
    """:meth:`Client.batch_delete` and :meth:`Client.delete_prefix`.

    ``errors`` has one entry per key for ``batch_delete`` (None where the
    block was removed, :class:`NotFound` where there was none) and is empty
    for ``delete_prefix``, where ``blocks_failed`` counts the matching
    blocks that could not be removed (a read or write in flight: call
    again) and ``first_failure`` says why the first of them stayed.
    """

    errors: List[Optional[Error]]
    blocks_removed: int
    ram_bytes_freed: int
    disk_bytes_freed: int
    blocks_failed: int = 0
    first_failure: Optional[Error] = None

    @property
    def ok(self) -> bool:
        return self.blocks_failed == 0 and all(e is None for e in self.errors)


@dataclasses.dataclass(frozen=True)
class BatchPath:
    """How this client's batches travel: through a shared-memory arena
    with the server (same host), else gRPC messages; ``reason`` says
    why."""

    shared_memory: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class PressureEvent:
    """A pressure level of one resource ("host_ram", "gpu0", ...) from
    :meth:`Client.watch_pressure`. Levels are "LOW", "MEDIUM", "HIGH",
    "CRITICAL" ("PRESSURE_LEVEL_UNSPECIFIED" before the first);
    ``state`` is the resource's ResourcePressure message as a dict (usage,
    trend, thresholds)."""

    resource: str
    previous_level: str
    level: str
    unix_ms: int
    state: Dict[str, Any]

    @classmethod
    def from_dict(cls, event: Dict[str, Any]) -> "PressureEvent":
        return cls(resource=event["resource"],
                   previous_level=str(event["previous_level"]),
                   level=str(event["level"]),
                   unix_ms=int(event["unix_ms"]),
                   state=event["state"] or {})
