"""The engine side of each adapter, for the model workload
(test_model_workload.py) and the restore benchmark: pages of a VLModel's
KV cache go from the engine's own buffers to tensorpager through an
adapter, and back, the way each engine moves them.

* SGLang: the host pool (FakeHostPool, "page_first" or "layer_first")
  holds the pages; ``batch_set_v1`` / ``batch_exists`` /
  ``batch_get_v1`` move them by host index.
* vLLM: the CPU primary tier's slots (one page per slot) hold them;
  ``submit_store`` / ``lookup`` / ``submit_load`` move them by block id.
* LMCache: MemoryObjs in KV_2LTD format hold chunks of ``pages_per_chunk``
  pages; ``batched_put`` / ``batched_async_contains`` /
  ``batched_get_non_blocking`` move them.

Each store answers ``hits(hashes)`` (the leading pages the adapter says it
has) and ``restore(hashes, cache)`` (the leading pages it could load,
written into the cache), and names, for a page, a run of bytes that
tensorpager keeps verbatim (``probe``) so that a test can damage it on
disk.
"""

from __future__ import annotations

import abc
import time
from typing import Any, List

import torch

from fake_lmcache import Engine, FakeMetadata
from fake_sglang import FakeHostPool, load_backend, make_config
from fake_vllm import create_tier, job, make_spec, settle
from tensorpager.integrations.lmcache import CacheEngineKey, MemoryFormat
from tensorpager.integrations.vllm_compat import (LookupResult, ReqContext,
                                                  make_offload_key)
from vl_model import KVCache, ModelConfig


def _raw(t: torch.Tensor) -> bytes:
    return bytes(t.contiguous().view(torch.uint8).numpy())


class PageStore(abc.ABC):
    """An adapter and the engine-side buffers it moves pages through."""

    name = ""
    pages_per_key = 1  # pages that one adapter key covers

    def __init__(self, config: ModelConfig, namespace: str):
        self.config = config
        self.namespace = namespace

    @abc.abstractmethod
    def store(self, hashes: List[bytes], pages: List[torch.Tensor]
              ) -> None:
        """Stores pages[i] under hashes[i]; asserts that the adapter took
        them all."""

    @abc.abstractmethod
    def hits(self, hashes: List[bytes]) -> int:
        """Leading pages the adapter reports present."""

    @abc.abstractmethod
    def load(self, hashes: List[bytes]) -> int:
        """Loads the leading present pages into the engine's buffers (what
        the adapter does); returns how many it loaded."""

    @abc.abstractmethod
    def copy_out(self, cache: KVCache, pages: int) -> None:
        """Copies the loaded pages from the engine's buffers into cache
        (the engine's own work, the same whatever the store)."""

    def restore(self, hashes: List[bytes], cache: KVCache) -> int:
        """Loads the leading present pages into cache; returns how many
        it loaded."""
        n = self.load(hashes)
        self.copy_out(cache, n)
        return n

    @abc.abstractmethod
    def probe(self, page: torch.Tensor) -> bytes:
        """Bytes of `page` that tensorpager stores as they are."""

    @abc.abstractmethod
    def close(self) -> None:
        ...


class SGLangStore(PageStore):
    name = "sglang"

    def __init__(self, config: ModelConfig, namespace: str, target: str,
                 layout: str = "page_first", shared_memory: bool = True,
                 pool_pages: int = 64, batch_pages: int = 128):
        super().__init__(config, namespace)
        c = config
        self.pool = FakeHostPool(
            layout, page_size=c.page_tokens, layers=c.layers,
            heads=c.kv_heads, head_dim=c.head_dim,
            size=pool_pages * c.page_tokens, dtype=c.kv_dtype)
        extra: Any = {"namespace": namespace, "timeout_s": 5.0}
        if not shared_memory:
            extra["shared_memory_bytes"] = 0
        self.storage = load_backend(make_config(
            target, model="vl-model", **extra))
        self.storage.register_mem_pool_host(self.pool)
        self.pool_pages = pool_pages
        # SGLang's controller moves at most this many pages per call.
        self.batch_pages = batch_pages

    def _slot(self, slot: int) -> torch.Tensor:
        """The pool's memory of one page, as [2, layers, tokens, ...]."""
        p = self.config.page_tokens
        kv = self.pool.kv_buffer
        if self.pool.layout == "page_first":
            return kv[:, slot * p:(slot + 1) * p].transpose(1, 2)
        return kv[:, :, slot * p:(slot + 1) * p]

    def store(self, hashes: List[bytes], pages: List[torch.Tensor]
              ) -> None:
        assert len(pages) <= self.pool_pages // 2
        for slot, page in enumerate(pages):
            self._slot(slot).copy_(page)
        keys = [h.hex() for h in hashes]
        for first in range(0, len(pages), self.batch_pages):
            last = min(first + self.batch_pages, len(pages))
            done = self.storage.batch_set_v1(
                keys[first:last], self.pool.page_indices(
                    list(range(first, last))))
            assert done == [True] * (last - first), done

    def hits(self, hashes: List[bytes]) -> int:
        return self.storage.batch_exists([h.hex() for h in hashes])

    def load(self, hashes: List[bytes]) -> int:
        n = self.hits(hashes)
        # Into the upper half of the pool: other slots than the store used.
        slots = list(range(self.pool_pages // 2, self.pool_pages // 2 + n))
        keys = [h.hex() for h in hashes[:n]]
        got: List[bool] = []
        for first in range(0, n, self.batch_pages):
            last = min(first + self.batch_pages, n)
            got += self.storage.batch_get_v1(
                keys[first:last], self.pool.page_indices(slots[first:last]))
            if not all(got):
                break
        loaded = 0
        while loaded < n and got[loaded]:
            loaded += 1
        return loaded

    def copy_out(self, cache: KVCache, pages: int) -> None:
        for i in range(pages):
            cache.set_page(i, self._slot(self.pool_pages // 2 + i))

    def probe(self, page: torch.Tensor) -> bytes:
        # A page is stored as the chunks get_page_buffer_meta names: K
        # then V, token-major (page_first), or per layer (layer_first).
        if self.pool.layout == "page_first":
            return _raw(page[0].transpose(0, 1))
        return _raw(page[0, 0])

    def close(self) -> None:
        self.storage.close()


class VLLMStore(PageStore):
    name = "vllm"

    def __init__(self, config: ModelConfig, namespace: str, target: str,
                 shared_memory: bool = True, slots: int = 64):
        super().__init__(config, namespace)
        self.slot_bytes = config.page_bytes()
        memory = bytearray(slots * self.slot_bytes)
        self.primary = memoryview(memory).cast("B", (slots, self.slot_bytes))
        self._rows = torch.frombuffer(memory, dtype=torch.uint8).view(
            slots, self.slot_bytes)
        extra: Any = {"namespace": namespace, "timeout_s": 5.0}
        if not shared_memory:
            extra["shared_memory_bytes"] = 0
        self.tier = create_tier(
            target, self.primary,
            spec=make_spec(model="vl-model", slot_bytes=self.slot_bytes,
                           tokens_per_block=config.page_tokens), **extra)
        self.slots = slots
        self._request = 0

    def _keys(self, hashes: List[bytes]) -> List[bytes]:
        return [make_offload_key(h, 0) for h in hashes]

    def _slot(self, slot: int) -> torch.Tensor:
        return self._rows[slot].view(self.config.kv_dtype).view(self.config.page_shape())

    def store(self, hashes: List[bytes], pages: List[torch.Tensor]
              ) -> None:
        assert len(pages) <= self.slots // 2
        for slot, page in enumerate(pages):
            self._slot(slot).copy_(page)
        j = job(self._keys(hashes), range(len(pages)), promotion=False)
        self.tier.submit_store(j)
        assert self._wait(j).success

    def _wait(self, submitted: Any, seconds: float = 30) -> Any:
        """Polls get_finished_jobs, as vLLM's scheduler does each step,
        until the job is reported; nothing else may be."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for result in self.tier.get_finished_jobs():
                assert result.job_id == submitted.job_id, result
                return result
            time.sleep(0.0005)
        raise AssertionError(f"job {submitted.job_id} not finished")

    def hits(self, hashes: List[bytes]) -> int:
        # vLLM asks block by block, until the first block that is not a
        # HIT, and asks again while the answer is RETRY.
        self._request += 1
        request = f"req-{self._request}"
        n = 0
        for key in self._keys(hashes):
            if settle(self.tier, key, req=request)[-1] is not \
                    LookupResult.HIT:
                break
            n += 1
        self.tier.on_request_finished(ReqContext(req_id=request))
        return n

    def load(self, hashes: List[bytes]) -> int:
        n = self.hits(hashes)
        if n == 0:
            return 0
        keys = self._keys(hashes[:n])
        slots = list(range(self.slots // 2, self.slots // 2 + n))
        j = job(keys, slots, promotion=True)
        self.tier.submit_load(j)
        result = self._wait(j)
        if result.success:
            good = set(keys)
        else:
            good = set(bytes(k) for k in result.successful_keys or ())
        loaded = 0
        while loaded < n and keys[loaded] in good:
            loaded += 1
        return loaded

    def copy_out(self, cache: KVCache, pages: int) -> None:
        for i in range(pages):
            cache.set_page(i, self._slot(self.slots // 2 + i))

    def probe(self, page: torch.Tensor) -> bytes:
        return _raw(page)[:4096]

    def close(self) -> None:
        self.tier.shutdown()


class LMCacheStore(PageStore):
    name = "lmcache"

    def __init__(self, config: ModelConfig, namespace: str, target: str,
                 shared_memory: bool = True, pages_per_chunk: int = 2):
        super().__init__(config, namespace)
        c = config
        self.pages_per_key = pages_per_chunk
        self.chunk_tokens = pages_per_chunk * c.page_tokens
        self.shape = torch.Size([2, c.layers, self.chunk_tokens,
                                 c.kv_heads * c.head_dim])
        self.engine = Engine(FakeMetadata(
            chunk_size=self.chunk_tokens, shape=self.shape,
            dtype=c.kv_dtype))
        extra: Any = {"tensorpager.timeout_s": 5.0}
        if not shared_memory:
            extra["tensorpager.shared_memory_bytes"] = 0
        self.conn = self.engine.connect(
            f"tensorpager://{target}/{namespace}", **extra)
        self._request = 0
        self._loaded: List[Any] = []

    def _keys(self, hashes: List[bytes]) -> List[Any]:
        """One key per whole chunk, named by the hash of its last page
        (which covers the whole prefix, as LMCache's chunk hashes do)."""
        k = self.pages_per_key
        return [CacheEngineKey("vl-model", 1, 0,
                               int.from_bytes(hashes[i + k - 1][:8], "big"),
                               str(self.config.kv_dtype).replace(
                                   "torch.", ""))
                for i in range(0, len(hashes) - k + 1, k)]

    def store(self, hashes: List[bytes], pages: List[torch.Tensor]
              ) -> None:
        keys = self._keys(hashes)
        objs = []
        for j in range(len(keys)):
            obj = self.engine.backend.allocate(
                [self.shape], [self.config.kv_dtype], MemoryFormat.KV_2LTD)
            assert obj is not None
            k = self.pages_per_key
            chunk = torch.cat(pages[j * k:(j + 1) * k], dim=2)
            obj.tensor.copy_(chunk.reshape(self.shape))
            objs.append(obj)
        self.engine.run(self.conn.batched_put(keys, objs))
        for obj in objs:
            obj.ref_count_down()
        assert self.conn.batched_contains(keys) == len(keys)

    def hits(self, hashes: List[bytes]) -> int:
        self._request += 1
        chunks = self.engine.run(self.conn.batched_async_contains(
            f"lookup-{self._request}", self._keys(hashes), False))
        return chunks * self.pages_per_key

    def load(self, hashes: List[bytes]) -> int:
        n = self.hits(hashes) // self.pages_per_key
        self._loaded = []
        if n > 0:
            self._loaded = self.engine.run(
                self.conn.batched_get_non_blocking(
                    f"lookup-{self._request}", self._keys(hashes)[:n]))
        return len(self._loaded) * self.pages_per_key

    def copy_out(self, cache: KVCache, pages: int) -> None:
        c = self.config
        objs, self._loaded = self._loaded, []
        assert len(objs) * self.pages_per_key == pages
        for j, obj in enumerate(objs):
            chunk = obj.tensor.reshape(2, c.layers, self.chunk_tokens,
                                       c.kv_heads, c.head_dim)
            for i in range(self.pages_per_key):
                p = c.page_tokens
                cache.set_page(j * self.pages_per_key + i,
                               chunk[:, :, i * p:(i + 1) * p])
            obj.ref_count_down()

    def probe(self, page: torch.Tensor) -> bytes:
        return _raw(page[0, 0])

    def close(self) -> None:
        self.engine.stop()
