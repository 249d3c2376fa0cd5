"""SGLang's side of the HiCache storage interface, faked for the adapter
tests (SGLang commit 17313cf4b25d7420e1fd10b969d8b911d28e6498,
mem_cache/hicache_storage.py):

* ``FakeHostPool``: a CPU host KV pool with the storage-facing surface of
  SGLang's MHATokenToKVPoolHost ("page_first", "layer_first") and
  MLATokenToKVPoolHost ("mla"), its dimensions given to the constructor;
* ``make_config``: a ``HiCacheStorageConfig`` naming the adapter as a
  "dynamic" backend; ``load_backend``: what StorageBackendFactory does
  with it;
* ``page_keys``: page hashes shaped like SGLang's.

The tests import torch through ``pytest.importorskip`` before this module.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import time
from typing import Any, Dict, List, Optional, Tuple

import torch

from tensorpager.integrations.sglang import (
    HiCacheStorage, HiCacheStorageConfig)

# FakeHostPool's default dimensions.
PAGE = 4  # tokens per page
LAYERS = 3
HEADS = 2
HEAD_DIM = 8
POOL_TOKENS = 32 * PAGE


class FakeHostPool:
    """A CPU host KV pool with the storage-facing surface of SGLang's
    MHATokenToKVPoolHost ("page_first", "layer_first") and
    MLATokenToKVPoolHost ("mla": page_first with one latent of head_dim
    values per token and layer; heads is not used)."""

    def __init__(self, layout: str, page_size: int = PAGE,
                 layers: int = LAYERS, heads: int = HEADS,
                 head_dim: int = HEAD_DIM, size: int = POOL_TOKENS,
                 dtype: Optional[torch.dtype] = None,
                 seed: int = 0) -> None:
        if page_size <= 0 or size <= 0 or size % page_size:
            raise ValueError(f"size {size} is not a whole number of "
                             f"{page_size}-token pages")
        self.layout = layout
        self.page_size = page_size
        self.size = size
        self.layer_num = layers
        self.head_num = heads
        self.head_dim = head_dim
        self.dtype = dtype or torch.bfloat16
        if layout == "page_first":
            dims: Tuple[int, ...] = (2, size, layers, heads, head_dim)
        elif layout == "layer_first":
            dims = (2, layers, size, heads, head_dim)
        elif layout == "mla":
            dims = (size, layers, 1, head_dim)
        else:
            raise ValueError(layout)
        gen = torch.Generator().manual_seed(seed)
        self.kv_buffer = torch.randn(dims, generator=gen).to(self.dtype)

    def _item(self) -> int:
        return self.kv_buffer.element_size()

    def get_page_buffer_meta(self, indices: Any) -> Tuple[List[int],
                                                          List[int]]:
        assert len(indices) % self.page_size == 0
        base = self.kv_buffer.data_ptr()
        firsts = indices.tolist()[::self.page_size]
        item = self._item()
        layers = self.layer_num
        ptrs: List[int] = []
        if self.layout == "mla":
            token = layers * self.head_dim * item
            for first in firsts:
                ptrs.append(base + first * token)
            return ptrs, [token * self.page_size] * len(ptrs)
        token = self.head_num * self.head_dim * item
        v_offset = self.kv_buffer[0].numel() * item
        if self.layout == "page_first":
            for first in firsts:
                ptrs += [base + first * layers * token,
                         base + first * layers * token + v_offset]
            return ptrs, [layers * token * self.page_size] * len(ptrs)
        for first in firsts:  # layer_first: one K and one V chunk per layer
            for layer in range(layers):
                k = base + (layer * self.size + first) * token
                ptrs += [k, k + v_offset]
        return ptrs, [token * self.page_size] * len(ptrs)

    def get_data_page(self, index: int, flat: bool = True) -> Any:
        end = index + self.page_size
        if self.layout == "page_first":
            page = self.kv_buffer[:, index:end]
        elif self.layout == "layer_first":
            page = self.kv_buffer[:, :, index:end]
        else:
            page = self.kv_buffer[index:end]
        return page.flatten() if flat else page

    def get_dummy_flat_data_page(self) -> Any:
        return torch.zeros_like(self.get_data_page(0, flat=True))

    def set_from_flat_data_page(self, index: int, data_page: Any) -> None:
        target = self.get_data_page(index, flat=False)
        target.copy_(data_page.reshape(target.shape))

    def page_indices(self, pages: List[int]) -> Any:
        """The host token indices of these pages, as SGLang passes them."""
        return torch.cat([torch.arange(p * self.page_size,
                                       (p + 1) * self.page_size)
                          for p in pages])


_serial = itertools.count()


def page_keys(n: int, tag: str = "") -> List[str]:
    """n page hashes no other test uses (64 hex digits, as SGLang's)."""
    run = f"{time.time_ns()}-{next(_serial)}-{tag}"
    return [hashlib.sha256(f"{run}-{i}".encode()).hexdigest()
            for i in range(n)]


def make_config(target: str, *, model: str = "org/model-a",
                tp_rank: int = 0, tp_size: int = 1, mla: bool = False,
                metrics: bool = False, **extra: Any) -> Any:
    """The HiCacheStorageConfig of a "dynamic" tensorpager backend; extra
    keys go into its extra_config."""
    extra_config: Dict[str, Any] = {
        "backend_name": "tensorpager",
        "module_path": "tensorpager.integrations.sglang",
        "class_name": "TensorPagerHiCacheStorage",
        "interface_v1": 1, "target": target, "timeout_s": 5.0}
    extra_config.update(extra)
    return HiCacheStorageConfig(
        tp_rank=tp_rank, tp_size=tp_size, pp_rank=0, pp_size=1,
        attn_cp_rank=0, attn_cp_size=1, is_mla_model=mla,
        enable_storage_metrics=metrics, is_page_first_layout=True,
        model_name=model, extra_config=extra_config)


def load_backend(config: Any) -> Any:
    """What SGLang's StorageBackendFactory does for "dynamic"."""
    extra = config.extra_config
    cls = getattr(importlib.import_module(extra["module_path"]),
                  extra["class_name"])
    assert issubclass(cls, HiCacheStorage)
    return cls(config, {})
