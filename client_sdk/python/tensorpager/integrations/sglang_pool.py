"""Views of an SGLang host memory pool's pages, for the adapter's
zero-copy ``batch_get_v1`` / ``batch_set_v1``: the pool describes each
page as chunks (address, size) through ``get_page_buffer_meta``; each
chunk becomes a ``uint8`` slice of the pool's own buffer."""

from __future__ import annotations

import bisect
from typing import Any, Callable, List, Tuple, TypeVar

import torch

T = TypeVar("T")


class PoolPages:
    """Zero-copy views of a registered host pool's pages.

    The pool describes a page set with ``get_page_buffer_meta(indices)``:
    (address, size) chunks, the same for every page. Each chunk becomes a
    flat uint8 view of the pool's own tensor, so tensorpager reads into and
    writes from the pool's memory directly.
    """

    def __init__(self, pool: Any):
        self.page_size = int(pool.page_size)
        self.layout = str(getattr(pool, "layout", "unknown"))
        self._pool = pool
        getter = getattr(pool, "get_hybrid_pool_buffer", None)
        buffers = list(getter()) if getter is not None else \
            [getattr(pool, "kv_buffer", None)]
        regions: List[Tuple[int, int, torch.Tensor]] = []
        for buffer in buffers:
            if buffer is None:
                continue
            if buffer.device.type != "cpu" or not buffer.is_contiguous():
                raise ValueError("the host pool's buffers must be "
                                 "contiguous CPU tensors")
            flat = buffer.view(-1).view(torch.uint8)
            regions.append((buffer.data_ptr(), flat.numel(), flat))
        if not regions:
            raise ValueError("the host pool has no KV buffer")
        regions.sort(key=lambda r: r[0])
        self._starts = [r[0] for r in regions]
        self._regions = regions
        ptrs, sizes = pool.get_page_buffer_meta(
            torch.arange(self.page_size, dtype=torch.int64))
        if not ptrs:
            raise ValueError("get_page_buffer_meta describes no chunk")
        self.chunks_per_page = len(ptrs)
        self.page_bytes = int(sum(sizes))

    def _region(self, ptr: int, size: int) -> Tuple[int, torch.Tensor]:
        """(offset, flat buffer) of the pool buffer that holds the chunk."""
        i = bisect.bisect_right(self._starts, ptr) - 1
        if i >= 0:
            start, length, flat = self._regions[i]
            offset = ptr - start
            if offset + size <= length:
                return offset, flat
        raise ValueError(f"chunk at {ptr:#x} (+{size}) is outside the host "
                         "pool's buffers")

    def views(self, host_indices: torch.Tensor,
              pages: int) -> List[List[torch.Tensor]]:
        """The chunks of each of `pages` pages at `host_indices` (token
        indices, page_size per page), as uint8 views."""
        def view(ptr: int, size: int) -> torch.Tensor:
            offset, flat = self._region(ptr, size)
            return flat[offset:offset + size]
        return self._chunks(host_indices, pages, view)

    def spans(self, host_indices: torch.Tensor,
              pages: int) -> List[List[Tuple[int, int]]]:
        """The same chunks as (address, size), each checked to lie inside
        the pool's buffers: the SDK reads into them with no per-chunk
        tensor. The pool keeps its buffers while it is registered."""
        def span(ptr: int, size: int) -> Tuple[int, int]:
            self._region(ptr, size)
            return ptr, size
        return self._chunks(host_indices, pages, span)

    def _chunks(self, host_indices: torch.Tensor, pages: int,
                make: Callable[[int, int], T]) -> List[List[T]]:
        if host_indices.numel() != pages * self.page_size:
            raise ValueError(
                f"{host_indices.numel()} host indices for {pages} pages of "
                f"{self.page_size} tokens")
        ptrs, sizes = self._pool.get_page_buffer_meta(host_indices)
        n = self.chunks_per_page
        if len(ptrs) != pages * n or len(sizes) != len(ptrs):
            raise ValueError(f"the host pool gave {len(ptrs)} chunks for "
                             f"{pages} pages, expected {pages * n}")
        chunks = [make(int(p), int(s)) for p, s in zip(ptrs, sizes)]
        return [chunks[i * n:(i + 1) * n] for i in range(pages)]
