"""tensorpager.integrations.sglang against a real tensorpagerd, driven the
way SGLang's HiCacheController drives a storage backend (SGLang commit
17313cf4b25d7420e1fd10b969d8b911d28e6498, mem_cache/hicache_storage.py):

* built as a "dynamic" backend: ``cls(storage_config, kwargs)`` with a
  ``HiCacheStorageConfig`` whose ``extra_config`` holds the target;
* ``register_mem_pool_host(pool)``, where the pool exposes what SGLang's
  host pools expose to storage: ``page_size``, ``layout``, ``kv_buffer``,
  ``get_page_buffer_meta(indices) -> (ptrs, sizes)``,
  ``get_data_page(index, flat)``, ``get_dummy_flat_data_page()`` and
  ``set_from_flat_data_page(index, page)``;
* ``batch_exists(keys) -> int`` (leading pages present),
  ``batch_get_v1`` / ``batch_set_v1(keys, host_indices) -> List[bool]``,
  ``get`` / ``batch_get`` (tensor or None per key), ``set`` / ``batch_set``
  (bool), ``exists`` (bool), ``get_stats()`` (a StorageMetrics).

SGLang's side (the host pool, the config, the factory) is faked in
fake_sglang.py.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterator, List

import pytest

torch = pytest.importorskip("torch")

from conftest import stopped, wait_until  # noqa: E402
from fake_sglang import (  # noqa: E402
    PAGE, FakeHostPool, load_backend, make_config, page_keys)
from tensorpagerd_process import ServerProcess  # noqa: E402
from tensorpager.integrations import sglang as adapter_mod  # noqa: E402
from tensorpager.integrations import sglang_compat  # noqa: E402
from tensorpager.integrations.sglang import (  # noqa: E402
    HiCacheStorage, StorageMetrics)

Factory = Callable[..., Any]


@pytest.fixture
def backends(server: ServerProcess) -> Iterator[Factory]:
    """make(layout=..., **config) -> a registered adapter; all closed at
    the end."""
    made: List[Any] = []

    def make(layout: str = "page_first", seed: int = 0,
             **config: Any) -> Any:
        storage = load_backend(make_config(server.target, **config))
        storage.register_mem_pool_host(FakeHostPool(layout, seed=seed))
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


def page_bytes(pool: FakeHostPool, page: int) -> bytes:
    data = pool.get_data_page(page * PAGE, flat=True).contiguous()
    return bytes(data.view(torch.uint8).numpy())


@pytest.mark.parametrize("layout", ["page_first", "layer_first", "mla"])
def test_v1_pages_round_trip_with_prefix_counting(
        backends: Factory, layout: str) -> None:
    storage = backends(layout, mla=layout == "mla", model=f"m-{layout}")
    pool = storage.mem_pool_host
    keys = page_keys(9, layout)
    # Pages 0-5 and 7-8 are backed up; page 6 is a hole in the chain.
    assert storage.batch_set_v1(keys[:6], pool.page_indices(
        [0, 1, 2, 3, 4, 5])) == [True] * 6
    assert storage.batch_set_v1(keys[7:], pool.page_indices([7, 8])) == \
        [True, True]
    assert storage.batch_exists(keys) == 6
    assert storage.batch_exists(keys[7:]) == 2
    assert storage.batch_exists(keys[6:]) == 0
    assert storage.exists(keys[0]) and not storage.exists(keys[6])

    # Load the first six pages into other host slots, page 7 too.
    dest = [20, 21, 22, 23, 24, 25, 26]
    before = [page_bytes(pool, p) for p in dest]
    got = storage.batch_get_v1(keys[:6] + [keys[7]], pool.page_indices(dest))
    assert got == [True] * 7
    for src, dst in zip([0, 1, 2, 3, 4, 5, 7], dest):
        assert page_bytes(pool, dst) == page_bytes(pool, src)
    assert before[0] != page_bytes(pool, 20)

    # The hole is a miss; the pages around it still load.
    assert storage.batch_get_v1([keys[5], keys[6], keys[8]],
                                pool.page_indices([27, 28, 29])) == \
        [True, False, True]
    assert page_bytes(pool, 29) == page_bytes(pool, 8)

    counters = storage.get_stats().counters
    page_size = pool.get_data_page(0).numel() * pool.kv_buffer.element_size()
    assert counters.hits == 9 and counters.misses == 1
    assert counters.bytes_read == 9 * page_size
    assert counters.pages_written == 8
    assert counters.bytes_written == 8 * page_size
    assert counters.calls["batch_get_v1"] == 2
    assert counters.latency_s["batch_get_v1"] > 0


def test_v1_reads_and_writes_the_pool_in_place(backends: Factory) -> None:
    """No staging copy: what tensorpager reads lands in kv_buffer itself,
    and a backup reads the bytes kv_buffer holds at the time."""
    storage = backends("page_first", model="in-place")
    pool = storage.mem_pool_host
    keys = page_keys(2, "inplace")
    pool.kv_buffer[:, 4:8].fill_(3.0)  # page 1
    assert storage.batch_set_v1(keys[:1], pool.page_indices([1])) == [True]
    pool.kv_buffer[:, 40:44].zero_()  # page 10
    buffer_id = pool.kv_buffer.data_ptr()
    assert storage.batch_get_v1(keys[:1], pool.page_indices([10])) == [True]
    assert pool.kv_buffer.data_ptr() == buffer_id
    assert bool((pool.kv_buffer[:, 40:44] == 3.0).all())


def test_batch_set_v1_skips_pages_already_stored(backends: Factory) -> None:
    storage = backends("page_first", model="skip")
    pool = storage.mem_pool_host
    keys = page_keys(3, "skip")
    assert storage.batch_set_v1(keys[:2], pool.page_indices([0, 1])) == \
        [True, True]
    # Page 1 again (from other bytes: content-addressed, not rewritten)
    # and one new page.
    assert storage.batch_set_v1(keys[1:], pool.page_indices([5, 2])) == \
        [True, True]
    counters = storage.counters()
    assert counters.pages_written == 3
    assert counters.pages_already_present == 1
    assert storage.batch_get_v1([keys[1]], pool.page_indices([9])) == [True]
    assert page_bytes(pool, 9) == page_bytes(pool, 1)


def test_v1_rejects_a_host_index_count_that_does_not_match(
        backends: Factory) -> None:
    storage = backends("page_first", model="mismatch")
    pool = storage.mem_pool_host
    keys = page_keys(2, "mismatch")
    indices = pool.page_indices([0, 1])[:-1]
    assert storage.batch_set_v1(keys, indices) == [False, False]
    assert storage.batch_exists(keys) == 0
    assert storage.batch_get_v1(keys, indices) == [False, False]


def test_models_and_tenants_do_not_share_pages(backends: Factory) -> None:
    keys = page_keys(4, "scope")
    writer = backends("page_first", model="org/model-a", tenant_salt="t1")
    pool = writer.mem_pool_host
    assert writer.batch_set_v1(keys, pool.page_indices([0, 1, 2, 3])) == \
        [True] * 4
    same = backends("page_first", model="org/model-a", tenant_salt="t1",
                    seed=1)
    other_model = backends("page_first", model="org/model-b",
                           tenant_salt="t1")
    other_salt = backends("page_first", model="org/model-a",
                          tenant_salt="t2")
    no_salt = backends("page_first", model="org/model-a")
    assert same.batch_exists(keys) == 4
    for storage in (other_model, other_salt, no_salt):
        assert storage.batch_exists(keys) == 0
        assert storage.batch_get_v1(
            keys[:1], storage.mem_pool_host.page_indices([5])) == [False]
    assert same.batch_get_v1(keys[:1], same.mem_pool_host.page_indices(
        [5])) == [True]
    assert page_bytes(same.mem_pool_host, 5) == page_bytes(pool, 0)
    # clear() removes this scope's pages only.
    other_model.batch_set_v1(keys, other_model.mem_pool_host.page_indices(
        [0, 1, 2, 3]))
    writer.clear()
    assert same.batch_exists(keys) == 0
    assert other_model.batch_exists(keys) == 4


def test_mla_pages_are_shared_across_tp_ranks_mha_pages_are_not(
        backends: Factory) -> None:
    keys = page_keys(3, "tp")
    mla0 = backends("mla", mla=True, model="mla", tp_rank=0, tp_size=2)
    mla1 = backends("mla", mla=True, model="mla", tp_rank=1, tp_size=2,
                    seed=7)
    assert mla0.batch_set_v1(keys, mla0.mem_pool_host.page_indices(
        [0, 1, 2])) == [True] * 3
    assert mla1.batch_exists(keys) == 3
    assert mla1.batch_get_v1(keys[2:], mla1.mem_pool_host.page_indices(
        [6])) == [True]
    assert page_bytes(mla1.mem_pool_host, 6) == \
        page_bytes(mla0.mem_pool_host, 2)

    mha0 = backends("page_first", model="mha", tp_rank=0, tp_size=2)
    mha1 = backends("page_first", model="mha", tp_rank=1, tp_size=2)
    mha0_of4 = backends("page_first", model="mha", tp_rank=0, tp_size=4)
    assert mha0.batch_set_v1(keys, mha0.mem_pool_host.page_indices(
        [0, 1, 2])) == [True] * 3
    assert mha0.batch_exists(keys) == 3
    assert mha1.batch_exists(keys) == 0
    assert mha0_of4.batch_exists(keys) == 0
    assert mha1.batch_get_v1(keys[:1], mha1.mem_pool_host.page_indices(
        [6])) == [False]


def test_generic_get_set_and_batches(server: ServerProcess) -> None:
    """The non-zero-copy path SGLang uses without interface_v1: pages are
    flat tensors from get_data_page, read back into dummy pages."""
    storage = load_backend(make_config(server.target, model="generic",
                                       interface_v1=0))
    pool = FakeHostPool("page_first")
    storage.register_mem_pool_host(pool)
    try:
        keys = page_keys(5, "generic")
        assert storage.set(keys[0], pool.get_data_page(0))
        assert storage.exists(keys[0])
        assert not storage.exists(keys[1])
        dummy = pool.get_dummy_flat_data_page()
        got = storage.get(keys[0], dummy)
        assert got is dummy
        assert torch.equal(got, pool.get_data_page(0))
        assert storage.get(keys[1], pool.get_dummy_flat_data_page()) is None

        # batch_set of pages 1-2 and 4 (3 is a hole), as _generic_page_set.
        assert storage.batch_set(
            [keys[1], keys[2], keys[4]],
            [pool.get_data_page(p * PAGE) for p in (1, 2, 4)])
        assert storage.batch_exists(keys) == 3
        targets = [pool.get_dummy_flat_data_page() for _ in keys]
        pages = storage.batch_get(keys, targets)
        assert [p is not None for p in pages] == [True] * 3 + [False, True]
        for i, src in ((0, 0), (1, 1), (2, 2), (4, 4)):
            assert pages[i] is targets[i]
            assert torch.equal(pages[i], pool.get_data_page(src * PAGE))
        # As _generic_page_get then does.
        pool.set_from_flat_data_page(10 * PAGE, pages[2])
        assert page_bytes(pool, 10) == page_bytes(pool, 2)
        # Without targets: new tensors of the stored dtype and shape.
        fresh = storage.batch_get([keys[4], keys[3]])
        assert fresh[1] is None
        assert fresh[0].dtype == pool.dtype
        assert torch.equal(fresh[0], pool.get_data_page(4 * PAGE))
        # A target of the wrong size is a miss, not a partial page.
        assert storage.get(keys[0], torch.zeros(3, dtype=pool.dtype)) is None
        # No values: False, not an exception.
        assert storage.set(keys[3]) is False
        assert storage.batch_set([keys[3]], None) is False
        assert storage.batch_set([], []) is True
        counters = storage.counters()
        assert counters.hits == 6 and counters.misses == 4
    finally:
        storage.close()


def test_v1_and_generic_keys_do_not_mix(server: ServerProcess) -> None:
    """batch_exists looks for the blocks of the path in use
    (interface_v1, as SGLang's controller picks it)."""
    keys = page_keys(2, "mix")
    v1 = load_backend(make_config(server.target, model="mix"))
    generic = load_backend(make_config(server.target, model="mix",
                                       interface_v1=0))
    pool = FakeHostPool("page_first")
    v1.register_mem_pool_host(pool)
    generic.register_mem_pool_host(pool)
    try:
        assert v1.batch_set_v1(keys[:1], pool.page_indices([0])) == [True]
        assert generic.batch_set(keys[1:], [pool.get_data_page(PAGE)])
        assert v1.batch_exists(keys) == 1
        assert generic.batch_exists(keys) == 0
        assert generic.batch_exists(keys[1:]) == 1
    finally:
        v1.close()
        generic.close()


def test_get_stats_is_a_storage_metrics(backends: Factory) -> None:
    storage = backends("page_first", model="stats", metrics=True)
    pool = storage.mem_pool_host
    keys = page_keys(3, "stats")
    storage.batch_set_v1(keys, pool.page_indices([0, 1, 2]))
    storage.batch_get_v1(keys[:2], pool.page_indices([3, 4]))
    stats = storage.get_stats()
    assert isinstance(stats, StorageMetrics)
    assert stats.backup_pgs == [3] and stats.prefetch_pgs == [2]
    assert len(stats.backup_bandwidth) == 1 and stats.backup_bandwidth[0] > 0
    assert len(stats.prefetch_bandwidth) == 1
    assert stats.counters.hits == 2
    # Intervals drain; counters accumulate.
    again = storage.get_stats()
    assert again.prefetch_pgs == [] and again.backup_pgs == []
    assert again.counters.hits == 2 and again.counters.pages_written == 3


def test_construction_needs_a_target() -> None:
    config = make_config("")
    config.extra_config.pop("target")
    with pytest.raises(ValueError, match="target"):
        load_backend(config)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_gives_misses() -> None:
    config = make_config(f"127.0.0.1:{unused_port()}", wait_ready_s=0.2,
                         timeout_s=1.0)
    storage = load_backend(config)
    pool = FakeHostPool("page_first")
    storage.register_mem_pool_host(pool)
    try:
        keys = page_keys(2, "down")
        assert storage.batch_exists(keys) == 0
        assert storage.batch_set_v1(keys, pool.page_indices([0, 1])) == \
            [False, False]
        assert storage.batch_get_v1(keys, pool.page_indices([0, 1])) == \
            [False, False]
        assert storage.set(keys[0], pool.get_data_page(0)) is False
        assert storage.get(keys[0], pool.get_dummy_flat_data_page()) is None
        assert storage.batch_get(keys) == [None, None]
        assert not storage.exists(keys[0])
        assert storage.counters().errors >= 6
    finally:
        storage.close()



def test_server_restart_gives_misses_not_exceptions(
        fresh_server: ServerProcess) -> None:
    config = make_config(fresh_server.target, model="restart",
                         timeout_s=1.0, durable=False)
    storage = load_backend(config)
    pool = FakeHostPool("page_first")
    storage.register_mem_pool_host(pool)
    durable_config = make_config(fresh_server.target, model="restart",
                                 timeout_s=1.0, durable=True)
    durable = load_backend(durable_config)
    durable.register_mem_pool_host(pool)
    try:
        keys = page_keys(6, "restart")
        assert storage.batch_set_v1(keys[:3], pool.page_indices(
            [0, 1, 2])) == [True] * 3
        assert durable.batch_set_v1(keys[3:], pool.page_indices(
            [3, 4, 5])) == [True] * 3
        assert storage.set(keys[0], pool.get_data_page(0))
        assert storage.batch_exists(keys) == 6

        # A server that does not answer: every call ends in its deadline
        # as a miss.
        fresh_server.pause()
        try:
            assert wait_until(lambda: stopped(fresh_server), 10)
            start = time.monotonic()
            assert storage.batch_exists(keys) == 0
            assert storage.batch_get_v1(keys[:1], pool.page_indices(
                [10])) == [False]
            assert storage.get(keys[0], pool.get_dummy_flat_data_page()) \
                is None
            assert storage.batch_set_v1(page_keys(1, "paused"),
                                        pool.page_indices([6])) == [False]
            assert time.monotonic() - start < 30
        finally:
            fresh_server.resume()

        fresh_server.restart()
        # Right after the restart, and once it is up: misses for the
        # pages kept only in RAM (DATA_LOSS / lost), never an exception.
        first = storage.batch_get_v1(keys[:3], pool.page_indices(
            [10, 11, 12]))
        assert first == [False] * 3
        assert wait_until(lambda: durable.batch_exists(keys[3:]) == 3, 30)
        assert storage.batch_exists(keys) == 0
        assert storage.batch_get_v1(keys[:3], pool.page_indices(
            [10, 11, 12])) == [False] * 3
        assert storage.get(keys[0], pool.get_dummy_flat_data_page()) is None
        assert storage.batch_get([keys[0]]) == [None]
        # The durable pages survived and load.
        assert durable.batch_get_v1(keys[3:], pool.page_indices(
            [13, 14, 15])) == [True] * 3
        assert page_bytes(pool, 15) == page_bytes(pool, 5)
        # Storing works again.
        fresh = page_keys(1, "after")
        assert storage.batch_set_v1(fresh, pool.page_indices([7])) == [True]
        assert storage.batch_exists(fresh) == 1
        assert storage.counters().errors > 0
    finally:
        storage.close()
        durable.close()


def test_module_stands_in_for_sglang_when_absent() -> None:
    if adapter_mod.SGLANG_AVAILABLE:
        pytest.skip("SGLang is installed: the real base class is used")
    base = sglang_compat._LocalHiCacheStorage
    assert HiCacheStorage is base
    for name in ("get", "batch_get", "set", "batch_set", "exists",
                 "batch_exists", "batch_get_v1", "batch_set_v1",
                 "batch_exists_v2", "batch_get_v2", "batch_set_v2",
                 "register_mem_pool_host", "register_mem_host_pool_v2",
                 "clear", "get_stats"):
        assert callable(getattr(base, name)), name
    assert base.__abstractmethods__ == {"get", "batch_get", "set",
                                        "batch_set", "exists"}


def test_unused_optional_argument_is_accepted(backends: Factory) -> None:
    """extra_info (HiCacheStorageExtraInfo) is passed through by SGLang;
    the adapter accepts and ignores it."""
    storage = backends("page_first", model="extra")
    pool = storage.mem_pool_host
    info = adapter_mod.HiCacheStorageExtraInfo(prefix_keys=["x"])
    keys = page_keys(1, "extra")
    assert storage.batch_set_v1(keys, pool.page_indices([0]), info) == [True]
    assert storage.batch_exists(keys, info) == 1
    assert storage.batch_get_v1(keys, pool.page_indices([1]), info) == [True]
