"""LMCache's side of the remote-connector interface, faked for the adapter
tests (LMCache commit 9f5cee0c4923cd65a5c6708f356097f5be7b10ac,
lmcache/v1/storage_backend/connector/base_connector.py and __init__.py):

* ``FakeMemoryObj``: a MemoryObj over a CPU tensor;
* ``FakeMetadata``: the part of LMCacheMetadata that
  ``RemoteConnector.__init__`` reads, its chunk size, full chunk shape and
  dtype given to the constructor;
* ``FakeCPUBackend``: LocalCPUBackend's ``allocate``;
* ``Engine``: an event loop on its own thread plus a backend, as
  RemoteBackend has them, making connectors as ConnectorManager does;
* ``url_of``: a tensorpager remote URL.

The tests import torch through ``pytest.importorskip`` before this module.
"""

from __future__ import annotations

import asyncio
import threading
import types
from typing import Any, List, Optional

import torch

from tensorpager.integrations.lmcache import (
    ConnectorContext, MemoryFormat, TensorPagerConnectorAdapter)
from tensorpagerd_process import ServerProcess

# FakeMetadata's defaults: a chunk of CHUNK tokens, KV_2LTD.
LAYERS = 2
CHUNK = 16
HIDDEN = 8
FULL = torch.Size([2, LAYERS, CHUNK, HIDDEN])


class FakeMemoryObj:
    """A MemoryObj over a CPU tensor: metadata, tensor, byte_array (a
    writable view of its own memory), get_shapes/get_dtypes/
    get_memory_format/get_size and a reference count."""

    def __init__(self, backend: "FakeCPUBackend", shape: Any, dtype: Any,
                 fmt: Any) -> None:
        self.backend = backend
        item = torch.empty(0, dtype=dtype).element_size()
        self.raw = torch.zeros(int(torch.Size(shape).numel()) * item,
                               dtype=torch.uint8)
        self.meta = types.SimpleNamespace(shape=torch.Size(shape),
                                          dtype=dtype, fmt=fmt)
        self.refs = 1

    @property
    def metadata(self) -> Any:
        return self.meta

    @property
    def tensor(self) -> Any:
        return self.raw.view(self.meta.dtype).view(self.meta.shape)

    @property
    def byte_array(self) -> memoryview:
        return memoryview(self.raw.numpy())

    def get_shapes(self) -> List[Any]:
        return [self.meta.shape]

    def get_dtypes(self) -> List[Any]:
        return [self.meta.dtype]

    def get_memory_format(self) -> Any:
        return self.meta.fmt

    def get_size(self) -> int:
        return self.raw.numel()

    def ref_count_down(self) -> None:
        assert self.refs > 0
        self.refs -= 1
        if self.refs == 0:
            self.backend.live.remove(self)


class FakeMetadata:
    """LMCacheMetadata's part that RemoteConnector.__init__ reads:
    ``chunk_size``, ``use_mla`` (attributes), ``get_shapes()`` (the full
    chunk's shape), ``get_dtypes()`` and ``get_num_groups()``."""

    def __init__(self, chunk_size: int = CHUNK, shape: Any = FULL,
                 dtype: Optional[torch.dtype] = None,
                 use_mla: bool = False) -> None:
        self.chunk_size = chunk_size
        self.use_mla = use_mla
        self.shape = torch.Size(shape)
        self.dtype = dtype or torch.bfloat16

    def get_shapes(self) -> List[Any]:
        return [self.shape]

    def get_dtypes(self) -> List[Any]:
        return [self.dtype]

    def get_num_groups(self) -> int:
        return 1


class FakeCPUBackend:
    """LocalCPUBackend.allocate(shapes, dtypes, fmt) -> MemoryObj, with
    the engine's metadata; ``fail`` makes allocations fail; ``live`` holds
    the MemoryObjs not released."""

    def __init__(self, metadata: Optional[FakeMetadata] = None) -> None:
        self.metadata = metadata or FakeMetadata()
        self.live: List[FakeMemoryObj] = []
        self.fail = False

    def allocate(self, shapes: Any, dtypes: Any, fmt: Any = None
                 ) -> Optional[FakeMemoryObj]:
        if self.fail:
            return None
        assert len(shapes) == 1 and len(dtypes) == 1
        obj = FakeMemoryObj(self, shapes[0], dtypes[0], fmt)
        self.live.append(obj)
        return obj

    def filled(self, seed: int, shape: Any = None, dtype: Any = None,
               fmt: Any = MemoryFormat.KV_2LTD) -> FakeMemoryObj:
        """A MemoryObj of random values; the metadata's full chunk shape
        and dtype unless given."""
        if shape is None:
            shape = self.metadata.get_shapes()[0]
        obj = self.allocate([shape], [dtype or self.metadata.get_dtypes()[0]],
                            fmt)
        assert obj is not None
        gen = torch.Generator().manual_seed(seed)
        obj.tensor.copy_(torch.randn(obj.meta.shape, generator=gen))
        return obj


class Engine:
    """An event loop on its own thread plus a backend, as LMCache's
    RemoteBackend has them: the given backend, or a FakeCPUBackend over
    the given metadata (default: FakeMetadata())."""

    def __init__(self, metadata: Optional[FakeMetadata] = None,
                 backend: Optional[FakeCPUBackend] = None) -> None:
        if backend is not None and metadata is not None:
            raise ValueError("pass a backend or a metadata, not both")
        self.backend = backend or FakeCPUBackend(metadata)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.thread.start()
        self.made: List[Any] = []

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(
            timeout)

    def connect(self, url: str, **extra: Any) -> Any:
        config = types.SimpleNamespace(extra_config=dict(extra),
                                       use_layerwise=False)
        adapter = TensorPagerConnectorAdapter()
        assert adapter.can_parse(url)
        conn = adapter.create_connector(ConnectorContext(
            url, self.loop, self.backend, config, self.backend.metadata))
        self.made.append(conn)
        return conn

    def stop(self) -> None:
        for conn in self.made:
            self.run(conn.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def url_of(server: ServerProcess, namespace: str = "lmc") -> str:
    return f"tensorpager://{server.target}/{namespace}"
