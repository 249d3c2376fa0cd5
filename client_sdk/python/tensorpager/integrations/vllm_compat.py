"""vLLM's secondary-tier classes (``SecondaryTierManager``,
``TransferJob``, ``JobResult``, ``LookupResult``, ``ReqContext``,
``RequestOffloadingContext``, ``Medium``, ``OffloadKey``,
``OffloadingConnectorStats``, ``OffloadingCounterMetadata``), or, where
vLLM is not installed, stand-ins with the same fields and method set, so
that :mod:`tensorpager.integrations.vllm` imports and is tested without
the engine. Checked against vLLM at commit
017e9f4448b700e85ee16023287b025693c72b9e (``vllm/v1/kv_offload/base.py``,
``vllm/v1/kv_offload/tiering/base.py``, and
``vllm/distributed/kv_transfer/kv_connector/v1/offloading/metrics.py``).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from typing import Any, ClassVar, Collection, Dict, Iterable
from typing import NewType, Optional, Tuple

try:
    from vllm.v1.kv_offload import base as _vb
    from vllm.v1.kv_offload.tiering import base as _vt
    VLLM_AVAILABLE = True
except ImportError:
    _vb = None
    _vt = None
    VLLM_AVAILABLE = False

_vm: Any = None
if VLLM_AVAILABLE:
    try:
        from vllm.distributed.kv_transfer.kv_connector.v1.offloading import \
            metrics as _vm
    except ImportError:
        _vm = None


class _LocalLookupResult(enum.Enum):
    """Stand-in for vLLM's ``LookupResult``."""

    MISS = enum.auto()
    HIT = enum.auto()
    HIT_PENDING = enum.auto()
    RETRY = enum.auto()


class _LocalMedium(enum.Enum):
    """Stand-in for vLLM's ``Medium``."""

    CPU = "CPU"
    STORAGE = "STORAGE"


@dataclasses.dataclass
class _LocalReqContext:
    """Stand-in for vLLM's ``ReqContext`` (without the tier filter)."""

    req_id: str
    kv_transfer_params: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class _LocalRequestOffloadingContext:
    """Stand-in for vLLM's ``RequestOffloadingContext`` (the default
    block-level policy, as a string)."""

    policy: str = "block_level"


@dataclasses.dataclass
class _LocalTransferJob:
    """Stand-in for vLLM's ``TransferJob``."""

    job_id: int
    keys: Collection[bytes]
    block_ids: Any  # np.ndarray of primary-tier slot indices
    is_promotion: bool
    req_context: Any


@dataclasses.dataclass
class _LocalJobResult:
    """Stand-in for vLLM's ``JobResult``."""

    job_id: int
    success: bool
    successful_keys: Optional[Collection[bytes]] = None
    transfer_time: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class _LocalCounterMetadata:
    """Stand-in for vLLM's ``OffloadingCounterMetadata``."""

    documentation: str
    labelnames: Tuple[str, ...] = ()


@dataclasses.dataclass
class _LocalConnectorStats:
    """Stand-in for vLLM's ``OffloadingConnectorStats``: the same ``data``
    layout (metric types and per-label values) and the counter methods."""

    data: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if "data" not in self.data:
            self.reset()

    def reset(self) -> None:
        self.data = {"types": {}, "data": {}}

    def is_empty(self) -> bool:
        return not self.data.get("data")

    def increase_counter(self, counter_name: str,
                         counter_increase_value: float = 1,
                         labelvalues: Tuple[str, ...] = ()) -> None:
        self.data["types"].setdefault(counter_name, "counter")
        values = self.data["data"].setdefault(counter_name, {})
        values[labelvalues] = values.get(labelvalues, 0) + \
            counter_increase_value

    def reduce(self) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for name, by_label in self.data["data"].items():
            for labels, value in by_label.items():
                out[f"{name}:{labels}" if labels else name] = value
        return out


class _LocalSecondaryTierManager(abc.ABC):
    """Stand-in for vLLM's ``SecondaryTierManager``: the same constructor,
    abstract methods and default hooks."""

    medium: ClassVar[Any] = None

    def __init__(self, offloading_spec: Any, primary_kv_view: memoryview,
                 tier_type: str) -> None:
        self._offloading_spec = offloading_spec
        self._primary_kv_view: memoryview = primary_kv_view
        self.tier_type = tier_type
        self.locality: Any = None

    @abc.abstractmethod
    def lookup(self, key: bytes, req_context: Any) -> Any:
        """HIT, MISS, or RETRY while the answer is not known yet."""

    @abc.abstractmethod
    def submit_store(self, job_metadata: Any) -> None:
        """Starts copying primary slots into this tier."""

    @abc.abstractmethod
    def submit_load(self, job_metadata: Any) -> None:
        """Starts copying blocks of this tier into primary slots."""

    @abc.abstractmethod
    def get_finished_jobs(self) -> Iterable[Any]:
        """Jobs finished since the last call."""

    def has_pending_work(self) -> bool:
        return False

    def take_events(self) -> Iterable[Any]:
        return ()

    def touch(self, keys: Collection[bytes], req_context: Any) -> None:
        return

    @abc.abstractmethod
    def on_new_request(self, req_context: Any) -> Any:
        """The request's offloading preference."""

    def on_request_finished(self, req_context: Any) -> None:
        return

    def serve_external_requests(self, parent: Any) -> None:
        return

    def on_schedule_end(self, context: Any) -> None:
        return

    @abc.abstractmethod
    def drain_jobs(self) -> None:
        """Waits until no job touches the primary view."""

    def shutdown(self) -> None:
        return

    @classmethod
    def build_metric_definitions(cls, extra_config: Dict[str, Any]
                                 ) -> Dict[str, Any]:
        return {}

    def get_stats(self) -> Any:
        return None


_LocalOffloadKey = NewType("_LocalOffloadKey", bytes)


def _local_make_offload_key(block_hash: bytes, group_idx: int) -> bytes:
    """The block hash then the 4-byte big-endian group index (vLLM's
    ``make_offload_key``)."""
    return _LocalOffloadKey(block_hash + group_idx.to_bytes(4, "big",
                                                            signed=False))


def _pick(module: Any, name: str, local: Any) -> Any:
    return getattr(module, name) if module is not None else local


LookupResult: Any = _pick(_vb, "LookupResult", _LocalLookupResult)
Medium: Any = _pick(_vb, "Medium", _LocalMedium)
ReqContext: Any = _pick(_vb, "ReqContext", _LocalReqContext)
RequestOffloadingContext: Any = _pick(_vb, "RequestOffloadingContext",
                                      _LocalRequestOffloadingContext)
OffloadingCounterMetadata: Any = _pick(_vb, "OffloadingCounterMetadata",
                                       _LocalCounterMetadata)
TransferJob: Any = _pick(_vt, "TransferJob", _LocalTransferJob)
JobResult: Any = _pick(_vt, "JobResult", _LocalJobResult)
SecondaryTierManager: Any = _pick(_vt, "SecondaryTierManager",
                                  _LocalSecondaryTierManager)
OffloadingConnectorStats: Any = _pick(_vm, "OffloadingConnectorStats",
                                      _LocalConnectorStats)
OffloadKey: Any = _pick(_vb, "OffloadKey", _LocalOffloadKey)
make_offload_key: Any = _pick(_vb, "make_offload_key",
                              _local_make_offload_key)

__all__ = ["VLLM_AVAILABLE", "JobResult", "LookupResult", "Medium",
           "OffloadKey", "OffloadingConnectorStats",
           "OffloadingCounterMetadata", "ReqContext",
           "RequestOffloadingContext", "SecondaryTierManager", "TransferJob",
           "make_offload_key"]
