"""tensorpager.integrations.lmcache against a real tensorpagerd, driven the
way LMCache's ConnectorManager and RemoteBackend drive a remote connector
(LMCache commit 9f5cee0c4923cd65a5c6708f356097f5be7b10ac,
lmcache/v1/storage_backend/connector/base_connector.py and __init__.py):

* ``ConnectorAdapter.can_parse(url)`` then
  ``create_connector(ConnectorContext(url, loop, local_cpu_backend, config,
  metadata))``, or, for a ``RemoteConnector`` class named as a plugin,
  ``cls(loop=, local_cpu_backend=, config=)``;
* coroutines run on the context's loop from another thread
  (``run_coroutine_threadsafe``): async ``exists``, ``get`` (MemoryObj or
  None), ``put``, ``list`` (key strings), ``close``, ``ping`` (0 = ok),
  ``batched_get``, ``batched_put``, ``batched_async_contains(lookup_id,
  keys, pin) -> int`` (leading keys present),
  ``batched_get_non_blocking(lookup_id, keys)`` (leading MemoryObjs);
* sync ``exists_sync``, ``remove_sync -> bool``, ``batched_contains ->
  int``; ``support_*()`` flags.

LMCache's side (MemoryObjs, the metadata, the CPU backend, the loop) is
faked in fake_lmcache.py.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any, Iterator, List

import pytest

torch = pytest.importorskip("torch")

from conftest import stopped, wait_until  # noqa: E402
from fake_lmcache import (  # noqa: E402
    CHUNK, HIDDEN, LAYERS, Engine, FakeMetadata, url_of)
from tensorpagerd_process import ServerProcess  # noqa: E402
from tensorpager.integrations import lmcache as lmc  # noqa: E402
from tensorpager.integrations.lmcache import (  # noqa: E402
    CacheEngineKey, MemoryFormat, RemoteConnector, TensorPagerConnector,
    TensorPagerConnectorAdapter)


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = Engine()
    yield e
    e.stop()


_n = [0]


def keys(count: int, model: str = "m") -> List[Any]:
    _n[0] += 1
    return [CacheEngineKey(model, 1, 0, _n[0] * 1000 + i, "bfloat16")
            for i in range(count)]


def same(a: Any, b: Any) -> bool:
    return (bytes(a.byte_array) == bytes(b.byte_array)
            and a.get_shapes() == b.get_shapes()
            and a.get_dtypes() == b.get_dtypes()
            and a.get_memory_format() == b.get_memory_format())


def test_adapter_parses_urls_and_makes_a_connector(
        engine: Engine, server: ServerProcess) -> None:
    adapter = TensorPagerConnectorAdapter()
    assert adapter.can_parse("tensorpager://h:1/ns")
    assert adapter.can_parse("plugin://tensorpager")
    assert not adapter.can_parse("redis://h:1")
    assert not adapter.can_parse("plugin://fs")
    conn = engine.connect(url_of(server))
    assert isinstance(conn, RemoteConnector)
    assert conn.client.namespace == "lmc"
    for flag in ("ping", "batched_get", "batched_put", "batched_contains",
                 "batched_async_contains", "batched_get_non_blocking"):
        assert getattr(conn, f"support_{flag}")() is True
    assert engine.run(conn.ping()) == 0


def test_put_get_round_trip_bytes_and_metadata(
        engine: Engine, server: ServerProcess) -> None:
    conn = engine.connect(url_of(server))
    k, missing = keys(2)
    obj = engine.backend.filled(1)
    assert engine.run(conn.exists(k)) is False
    assert conn.exists_sync(k) is False
    engine.run(conn.put(k, obj))
    assert engine.run(conn.exists(k)) is True
    assert conn.exists_sync(k) is True
    got = engine.run(conn.get(k))
    assert got is not None and got is not obj
    assert same(got, obj)
    assert torch.equal(got.tensor, obj.tensor)
    assert engine.run(conn.get(missing)) is None
    c = conn.counters()
    assert (c.hits, c.misses, c.puts) == (1, 1, 1)
    assert c.bytes_read == c.bytes_written == obj.get_size()
    assert conn.get_stats()["hits"] == 1
    assert c.errors == 0


def test_other_shapes_dtypes_and_formats_round_trip(
        engine: Engine, server: ServerProcess) -> None:
    conn = engine.connect(url_of(server))
    ks = keys(3)
    objs = [
        engine.backend.filled(2, torch.Size([2, LAYERS, 5, HIDDEN])),
        engine.backend.filled(3, torch.Size([1, LAYERS, CHUNK, HIDDEN]),
                              torch.float16, MemoryFormat.KV_MLA_FMT),
        engine.backend.filled(4, torch.Size([CHUNK, 2, HIDDEN]),
                              torch.float32, MemoryFormat.KV_T2D)]
    engine.run(conn.batched_put(ks, objs))
    got = engine.run(conn.batched_get(ks))
    for g, o in zip(got, objs):
        assert g is not None and same(g, o)


def test_batched_forms_count_leading_hits_and_release_the_rest(
        engine: Engine, server: ServerProcess) -> None:
    conn = engine.connect(url_of(server))
    ks = keys(5)
    stored = [0, 1, 3, 4]
    objs = [engine.backend.filled(10 + i) for i in stored]
    engine.run(conn.batched_put([ks[i] for i in stored], objs))
    assert conn.batched_contains(ks) == 2
    assert engine.run(conn.batched_async_contains("req", ks)) == 2
    assert conn.batched_contains([ks[i] for i in stored]) == 4
    assert conn.batched_contains(ks[2:]) == 0
    got = engine.run(conn.batched_get(ks))
    assert [g is not None for g in got] == [True, True, False, True, True]
    assert same(got[3], objs[2])
    for g in got:
        if g is not None:
            g.ref_count_down()
    live = len(engine.backend.live)
    prefix = engine.run(conn.batched_get_non_blocking("req", ks))
    assert len(prefix) == 2
    assert same(prefix[0], objs[0]) and same(prefix[1], objs[1])
    # Chunks loaded after the first miss were released.
    assert len(engine.backend.live) == live + 2


def test_list_and_remove_sync(engine: Engine, server: ServerProcess) -> None:
    conn = engine.connect(url_of(server, "listing"))
    ks = keys(3)
    engine.run(conn.batched_put(ks, [engine.backend.filled(i)
                                     for i in range(3)]))
    assert sorted(engine.run(conn.list())) == sorted(
        k.to_string() for k in ks)
    assert conn.remove_sync(ks[1]) is True
    assert conn.remove_sync(ks[1]) is False
    assert conn.exists_sync(ks[1]) is False
    assert engine.run(conn.get(ks[1])) is None
    assert sorted(engine.run(conn.list())) == sorted(
        [ks[0].to_string(), ks[2].to_string()])


def test_list_names_every_readable_chunk_of_the_scope(
        engine: Engine, server: ServerProcess) -> None:
    """list() asks the server: chunks another engine stored in the same
    scope are listed, keys too long for a block id by their own text,
    lost chunks and other scopes are not."""
    writer = engine.connect(url_of(server, "listing-all"))
    reader = engine.connect(url_of(server, "listing-all"))
    other = engine.connect(url_of(server, "listing-all"),
                           **{"tensorpager.tenant_salt": "other"})
    long_model = "org/" + "m" * 300
    ks = keys(2) + keys(1, model=long_model)
    assert len(ks[2].to_string()) > 256
    engine.run(writer.batched_put(ks, [engine.backend.filled(i)
                                       for i in range(3)]))
    engine.run(other.batched_put(keys(1), [engine.backend.filled(9)]))
    assert sorted(engine.run(reader.list())) == sorted(
        k.to_string() for k in ks)
    # A chunk whose data block is gone is not readable: not listed.
    writer.client.delete(writer._ids(ks[0])[0])
    assert sorted(engine.run(reader.list())) == sorted(
        k.to_string() for k in ks[1:])


def test_tenants_and_namespaces_do_not_share_chunks(
        engine: Engine, server: ServerProcess) -> None:
    a = engine.connect(url_of(server), **{"tensorpager.tenant_salt": "a"})
    a2 = engine.connect(url_of(server), **{"tensorpager.tenant_salt": "a"})
    b = engine.connect(url_of(server), **{"tensorpager.tenant_salt": "b"})
    other_ns = engine.connect(url_of(server, "elsewhere"),
                              **{"tensorpager.tenant_salt": "a"})
    assert a.prefix != b.prefix and a.prefix.startswith("lmcache/")
    (k,) = keys(1)
    obj = engine.backend.filled(5)
    engine.run(a.put(k, obj))
    assert a2.exists_sync(k) is True
    assert same(engine.run(a2.get(k)), obj)
    assert b.exists_sync(k) is False
    assert engine.run(b.get(k)) is None
    assert other_ns.exists_sync(k) is False


def test_failed_allocation_is_a_miss(engine: Engine,
                                     server: ServerProcess) -> None:
    conn = engine.connect(url_of(server))
    (k,) = keys(1)
    engine.run(conn.put(k, engine.backend.filled(6)))
    engine.backend.fail = True
    assert engine.run(conn.get(k)) is None
    assert conn.counters().errors >= 1


def test_plugin_class_form_reads_target_from_extra_config(
        engine: Engine, server: ServerProcess) -> None:
    config = types.SimpleNamespace(extra_config={
        "tensorpager.target": server.target,
        "tensorpager.namespace": "lmc"}, use_layerwise=False)
    conn = TensorPagerConnector(loop=engine.loop,
                                local_cpu_backend=engine.backend,
                                config=config)
    engine.made.append(conn)
    first = engine.connect(url_of(server))
    (k,) = keys(1)
    obj = engine.backend.filled(7)
    engine.run(first.put(k, obj))
    assert same(engine.run(conn.get(k)), obj)
    with pytest.raises(ValueError):
        TensorPagerConnector(engine.loop, engine.backend,
                             types.SimpleNamespace(extra_config={}))



async def _get_while_ticking(conn: Any, k: Any) -> Any:
    ticks = [0]

    async def tick() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0.01)
    ticker = asyncio.ensure_future(tick())
    try:
        got = await conn.get(k)
    finally:
        ticker.cancel()
    return got, ticks[0]


def test_server_pause_and_restart_give_misses_not_exceptions(
        engine: Engine, fresh_server: ServerProcess) -> None:
    url = url_of(fresh_server)
    conn = engine.connect(url, **{"tensorpager.timeout_s": 1.0,
                                  "tensorpager.durable": "false"})
    durable = engine.connect(url, **{"tensorpager.timeout_s": 1.0,
                                     "tensorpager.durable": "true",
                                     "tensorpager.tenant_salt": "d"})
    ks = keys(3)
    objs = [engine.backend.filled(20 + i) for i in range(3)]
    engine.run(conn.batched_put(ks, objs))
    engine.run(durable.batched_put(ks, objs))
    assert conn.batched_contains(ks) == 3

    fresh_server.pause()
    try:
        assert wait_until(lambda: stopped(fresh_server), 10)
        live = len(engine.backend.live)
        # The loop keeps running while a call waits on the server.
        got, ticks = engine.run(_get_while_ticking(conn, ks[0]))
        assert got is None and ticks > 10
        assert engine.run(conn.exists(ks[0])) is False
        assert conn.exists_sync(ks[0]) is False
        assert conn.batched_contains(ks) == 0
        assert engine.run(conn.ping()) != 0
        engine.run(conn.put(keys(1)[0], engine.backend.filled(30)))
        assert len(engine.backend.live) == live + 1
    finally:
        fresh_server.resume()

    fresh_server.restart()
    assert engine.run(conn.batched_get(ks)) == [None] * 3
    assert wait_until(lambda: durable.batched_contains(ks) == 3, 30)
    assert conn.batched_contains(ks) == 0
    assert engine.run(conn.batched_async_contains("r", ks)) == 0
    assert engine.run(conn.get(ks[0])) is None
    assert engine.run(conn.batched_get_non_blocking("r", ks)) == []
    # The lost chunk's registration can be removed, once.
    assert conn.remove_sync(ks[0]) is True
    assert conn.remove_sync(ks[0]) is False
    got = engine.run(durable.batched_get(ks))
    assert all(g is not None and same(g, o) for g, o in zip(got, objs))
    # Storing works again. A put that meets its 1 s deadline on a loaded
    # machine is a miss, as it should be, so the engine just puts again.
    (fresh,) = keys(1)

    def stored() -> bool:
        engine.run(conn.put(fresh, engine.backend.filled(31)))
        return conn.exists_sync(fresh) is True
    assert wait_until(stored, 30)
    assert conn.counters().errors > 0
    assert engine.run(conn.ping()) == 0


def test_closed_connector_misses(engine: Engine,
                                 server: ServerProcess) -> None:
    conn = engine.connect(url_of(server))
    (k,) = keys(1)
    engine.run(conn.put(k, engine.backend.filled(8)))
    engine.run(conn.close())
    assert engine.run(conn.get(k)) is None
    assert conn.exists_sync(k) is False


def test_module_stands_in_for_lmcache_when_absent() -> None:
    if lmc.LMCACHE_AVAILABLE:
        pytest.skip("LMCache is installed: its own classes are used")
    from tensorpager.integrations import lmcache_compat
    assert RemoteConnector is lmcache_compat._LocalRemoteConnector
    with pytest.raises(TypeError):
        RemoteConnector(None, FakeMetadata())  # abstract
