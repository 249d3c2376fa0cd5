"""LMCache's remote-connector classes (``RemoteConnector``,
``ConnectorAdapter``, ``ConnectorContext``, ``CacheEngineKey``,
``MemoryObj``, ``MemoryFormat``), or, where LMCache is not installed,
stand-ins with the same constructor arguments, attributes and method set,
so that :mod:`tensorpager.integrations.lmcache` imports and is tested
without the engine. Checked against LMCache at commit
9f5cee0c4923cd65a5c6708f356097f5be7b10ac
(``lmcache/v1/storage_backend/connector/base_connector.py`` and
``connector/__init__.py``, ``lmcache/utils.py``,
``lmcache/v1/memory_management.py``).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import enum
from typing import Any, List, Optional, Tuple


def _load_lmcache() -> Tuple[bool, Any, Any, Any, Any, Any, Any]:
    try:
        from lmcache.utils import CacheEngineKey as key_cls
        from lmcache.v1.memory_management import MemoryFormat as fmt_cls
        from lmcache.v1.memory_management import MemoryObj as obj_cls
        from lmcache.v1.storage_backend.connector import (
            ConnectorAdapter as adapter_cls, ConnectorContext as ctx_cls)
        from lmcache.v1.storage_backend.connector.base_connector import (
            RemoteConnector as conn_cls)
    except ImportError:
        return False, None, None, None, None, None, None
    return True, key_cls, fmt_cls, obj_cls, adapter_cls, ctx_cls, conn_cls


(LMCACHE_AVAILABLE, _LmcKey, _LmcFormat, _LmcMemoryObj, _LmcAdapter,
 _LmcContext, _LmcConnector) = _load_lmcache()


class _LocalMemoryFormat(enum.Enum):
    """Stand-in for LMCache's ``MemoryFormat`` (same member names)."""

    UNDEFINED = 0
    KV_2LTD = enum.auto()
    KV_T2D = enum.auto()
    KV_2TD = enum.auto()
    BINARY = enum.auto()
    BINARY_BUFFER = enum.auto()
    KV_MLA_FMT = enum.auto()


@dataclasses.dataclass(frozen=True)
class _LocalCacheEngineKey:
    """Stand-in for LMCache's ``CacheEngineKey``: the same fields that its
    ``to_string`` joins with ``@``."""

    model_name: str
    world_size: int
    worker_id: int
    chunk_hash: int
    dtype: str = "bfloat16"

    def to_string(self) -> str:
        return (f"{self.model_name}@{self.world_size}@{self.worker_id}@"
                f"{self.chunk_hash:x}@{self.dtype}")

    def __str__(self) -> str:
        return self.to_string()


def _itemsize(dtype: Any) -> int:
    size = getattr(dtype, "itemsize", None)
    if size is None:
        import torch
        size = torch.empty(0, dtype=dtype).element_size()
    return int(size)


class _LocalMemoryObj(abc.ABC):
    """Stand-in for the part of LMCache's ``MemoryObj`` that connectors
    use: ``metadata``/``meta`` (shape, dtype, fmt), ``tensor``,
    ``byte_array``, ``get_shapes``, ``get_dtypes``,
    ``get_memory_format``, ``get_size`` and ``ref_count_down``."""

    @property
    @abc.abstractmethod
    def metadata(self) -> Any:
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def tensor(self) -> Any:
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def byte_array(self) -> Any:
        raise NotImplementedError

    @abc.abstractmethod
    def get_shapes(self) -> List[Any]:
        raise NotImplementedError

    @abc.abstractmethod
    def get_dtypes(self) -> List[Any]:
        raise NotImplementedError

    @abc.abstractmethod
    def get_memory_format(self) -> Any:
        raise NotImplementedError

    @abc.abstractmethod
    def get_size(self) -> int:
        raise NotImplementedError

    @abc.abstractmethod
    def ref_count_down(self) -> None:
        raise NotImplementedError


class _LocalRemoteConnector(abc.ABC):
    """Stand-in for LMCache's ``RemoteConnector``: the same abstract
    methods, optional methods and ``support_*`` defaults. Its
    ``__init__(config, metadata)`` sets the same chunk attributes
    (``meta_shapes``, ``meta_dtypes``, ``meta_fmt``,
    ``full_chunk_size_bytes``, ``single_token_size``) from
    ``metadata.get_shapes()``, ``get_dtypes()`` and ``chunk_size``."""

    def __init__(self, config: Any, metadata: Any) -> None:
        assert metadata is not None
        self.meta_shapes: List[Any] = list(metadata.get_shapes())
        self.meta_dtypes: List[Any] = list(metadata.get_dtypes())
        self.meta_fmt: Any = (
            _LocalMemoryFormat.KV_MLA_FMT
            if getattr(metadata, "use_mla", False)
            else _LocalMemoryFormat.KV_2LTD)
        size = 0
        for shape, dtype in zip(self.meta_shapes, self.meta_dtypes):
            count = 1
            for dim in shape:
                count *= int(dim)
            size += count * _itemsize(dtype)
        self.full_chunk_size_bytes: int = size
        self.single_token_size: int = size // int(metadata.chunk_size)

    def post_init(self) -> None:
        return None

    @abc.abstractmethod
    async def exists(self, key: Any) -> bool:
        raise NotImplementedError

    @abc.abstractmethod
    def exists_sync(self, key: Any) -> bool:
        raise NotImplementedError

    @abc.abstractmethod
    async def get(self, key: Any) -> Optional[Any]:
        raise NotImplementedError

    @abc.abstractmethod
    async def put(self, key: Any, memory_obj: Any) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    async def list(self) -> List[str]:
        raise NotImplementedError

    @abc.abstractmethod
    async def close(self) -> None:
        raise NotImplementedError

    def support_ping(self) -> bool:
        return False

    async def ping(self) -> int:
        raise NotImplementedError

    def support_batched_get(self) -> bool:
        return False

    async def batched_get(self, keys: List[Any]) -> List[Optional[Any]]:
        raise NotImplementedError

    def support_batched_put(self) -> bool:
        return False

    async def batched_put(self, keys: List[Any],
                          memory_objs: List[Any]) -> None:
        raise NotImplementedError

    def support_batched_async_contains(self) -> bool:
        return True

    async def batched_async_contains(self, lookup_id: str, keys: List[Any],
                                     pin: bool = False) -> int:
        found = await asyncio.gather(*(self.exists(k) for k in keys))
        return found.index(False) if False in found else len(found)

    def support_batched_get_non_blocking(self) -> bool:
        return True

    async def batched_get_non_blocking(self, lookup_id: str,
                                       keys: List[Any]) -> List[Any]:
        raise NotImplementedError

    def remove_sync(self, key: Any) -> bool:
        raise NotImplementedError

    def batched_contains(self, keys: List[Any]) -> int:
        raise NotImplementedError

    def support_batched_contains(self) -> bool:
        return False


class _LocalConnectorContext:
    """Stand-in for LMCache's ``ConnectorContext`` (same arguments)."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop,
                 local_cpu_backend: Any, config: Any, metadata: Any,
                 plugin_name: Optional[str] = None) -> None:
        self.url = url
        self.loop = loop
        self.local_cpu_backend = local_cpu_backend
        self.config = config
        self.metadata = metadata
        self.plugin_name = plugin_name


class _LocalConnectorAdapter(abc.ABC):
    """Stand-in for LMCache's ``ConnectorAdapter``."""

    def __init__(self, schema: str = "") -> None:
        self.schema = schema

    def can_parse(self, url: str) -> bool:
        return self.schema != "" and url.startswith(self.schema)

    @abc.abstractmethod
    def create_connector(self, context: Any) -> Any:
        raise NotImplementedError


if LMCACHE_AVAILABLE:
    CacheEngineKey: Any = _LmcKey
    MemoryFormat: Any = _LmcFormat
    MemoryObj: Any = _LmcMemoryObj
    ConnectorAdapter: Any = _LmcAdapter
    ConnectorContext: Any = _LmcContext
    RemoteConnector: Any = _LmcConnector
else:
    CacheEngineKey = _LocalCacheEngineKey
    MemoryFormat = _LocalMemoryFormat
    MemoryObj = _LocalMemoryObj
    ConnectorAdapter = _LocalConnectorAdapter
    ConnectorContext = _LocalConnectorContext
    RemoteConnector = _LocalRemoteConnector

__all__ = ["LMCACHE_AVAILABLE", "CacheEngineKey", "ConnectorAdapter",
           "ConnectorContext", "MemoryFormat", "MemoryObj",
           "RemoteConnector"]
