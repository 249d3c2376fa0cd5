"""SGLang's storage-backend classes (``HiCacheStorage``,
``HiCacheStorageConfig``, ``HiCacheStorageExtraInfo``, ``StorageMetrics``),
or, where SGLang is not installed, stand-ins with the same fields and
method set, so that :mod:`tensorpager.integrations.sglang` imports and is
tested without the engine. Checked against SGLang at commit
17313cf4b25d7420e1fd10b969d8b911d28e6498.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    import torch

def _load_sglang() -> Tuple[bool, Any, Any, Any, Any]:
    try:
        from sglang.srt.mem_cache import hicache_storage as hs
    except ImportError:
        return False, None, None, None, None
    try:
        from sglang.srt.observability.metrics_collector import StorageMetrics
    except ImportError:
        StorageMetrics = None
    return (True, hs.HiCacheStorage, hs.HiCacheStorageConfig,
            hs.HiCacheStorageExtraInfo, StorageMetrics)


(SGLANG_AVAILABLE, _SglHiCacheStorage, _SglConfig, _SglExtraInfo,
 _SglStorageMetrics) = _load_sglang()


@dataclasses.dataclass
class _LocalHiCacheStorageConfig:
    """Stand-in for SGLang's ``HiCacheStorageConfig`` (same fields)."""

    tp_rank: int
    tp_size: int
    pp_rank: int
    pp_size: int
    attn_cp_rank: int
    attn_cp_size: int
    is_mla_model: bool
    enable_storage_metrics: bool
    is_page_first_layout: bool
    model_name: Optional[str]
    tp_lcm_size: Optional[int] = None
    should_split_heads: bool = False
    extra_config: Optional[dict] = None


@dataclasses.dataclass
class _LocalHiCacheStorageExtraInfo:
    """Stand-in for SGLang's ``HiCacheStorageExtraInfo``."""

    prefix_keys: Optional[List[str]] = None
    extra_info: Optional[dict] = None


@dataclasses.dataclass
class LocalStorageMetrics:
    """Stand-in for SGLang's ``StorageMetrics`` (same fields)."""

    prefetch_pgs: List[int] = dataclasses.field(default_factory=list)
    backup_pgs: List[int] = dataclasses.field(default_factory=list)
    prefetch_bandwidth: List[float] = dataclasses.field(default_factory=list)
    backup_bandwidth: List[float] = dataclasses.field(default_factory=list)


class _LocalHiCacheStorage(abc.ABC):
    """Stand-in for SGLang's ``HiCacheStorage`` when SGLang is absent: the
    same methods, arguments and defaults (v1 page methods answer None,
    the v2 ones raise NotImplementedError)."""

    mem_pool_host: Any

    def register_mem_pool_host(self, mem_pool_host: Any) -> None:
        self.mem_pool_host = mem_pool_host

    def register_mem_host_pool_v2(self, host_pool: Any,
                                  host_pool_name: Any) -> None:
        if not hasattr(self, "registered_pools"):
            self.registered_pools: Dict[Any, Any] = {}
        self.registered_pools[host_pool_name] = host_pool

    def batch_exists_v2(self, keys: List[str],
                        pool_transfers: Optional[List[Any]] = None,
                        extra_info: Optional[Any] = None) -> Any:
        raise NotImplementedError()

    def batch_get_v2(self, transfers: List[Any],
                     extra_info: Optional[Any] = None
                     ) -> Dict[str, List[bool]]:
        raise NotImplementedError()

    def batch_set_v2(self, transfers: List[Any],
                     extra_info: Optional[Any] = None
                     ) -> Dict[str, List[bool]]:
        raise NotImplementedError()

    def batch_get_v1(self, keys: List[str], host_indices: torch.Tensor,
                     extra_info: Optional[Any] = None
                     ) -> Optional[List[bool]]:
        return None

    def batch_set_v1(self, keys: List[str], host_indices: torch.Tensor,
                     extra_info: Optional[Any] = None
                     ) -> Optional[List[bool]]:
        return None

    @abc.abstractmethod
    def get(self, key: str, target_location: Optional[Any] = None,
            target_sizes: Optional[Any] = None) -> Optional[torch.Tensor]:
        """The page, or None when absent."""

    @abc.abstractmethod
    def batch_get(self, keys: List[str],
                  target_locations: Optional[Any] = None,
                  target_sizes: Optional[Any] = None) -> Any:
        """One page or None per key."""

    @abc.abstractmethod
    def set(self, key: str, value: Optional[Any] = None,
            target_location: Optional[Any] = None,
            target_sizes: Optional[Any] = None) -> bool:
        """Stores one page; True on success."""

    @abc.abstractmethod
    def batch_set(self, keys: List[str], values: Optional[Any] = None,
                  target_locations: Optional[Any] = None,
                  target_sizes: Optional[Any] = None) -> bool:
        """Stores pages; True when all were stored."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether the page is stored."""

    def batch_exists(self, keys: List[str],
                     extra_info: Optional[Any] = None) -> int:
        for i, key in enumerate(keys):
            if not self.exists(key):
                return i
        return len(keys)

    def clear(self) -> None:
        return None

    def get_stats(self) -> Any:
        return None


HiCacheStorage: Any = (_SglHiCacheStorage if SGLANG_AVAILABLE
                       else _LocalHiCacheStorage)
HiCacheStorageConfig: Any = (_SglConfig if SGLANG_AVAILABLE
                             else _LocalHiCacheStorageConfig)
HiCacheStorageExtraInfo: Any = (_SglExtraInfo if SGLANG_AVAILABLE
                                else _LocalHiCacheStorageExtraInfo)
StorageMetrics: Any = (_SglStorageMetrics if _SglStorageMetrics is not None
                       else LocalStorageMetrics)
