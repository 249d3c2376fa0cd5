"""tensorpager.integrations.vllm against a real tensorpagerd, driven the
way vLLM's TieringOffloadingManager drives a secondary tier (vLLM commit
017e9f4448b700e85ee16023287b025693c72b9e, vllm/v1/kv_offload/tiering/):

* built as ``SecondaryTierFactory.create_secondary_tier`` does for an
  out-of-tree tier: the class named by ``type`` in ``module_path``, called
  with ``offloading_spec=``, ``primary_kv_view=`` (a memoryview of the CPU
  primary tier, one slot per row), ``tier_type=`` and the other keys;
* ``lookup(key, req_context)`` polled until it stops answering RETRY;
* ``submit_store`` / ``submit_load(TransferJob)`` then
  ``get_finished_jobs()`` polled until every job is reported (once);
* ``touch``, ``on_request_finished``, ``drain_jobs``, ``get_stats``.

vLLM's side (the spec, the primary tier, the factory, the jobs and the
polling) is faked in fake_vllm.py.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List, Optional

import pytest

pytest.importorskip("numpy")

from conftest import stopped, wait_until  # noqa: E402
from fake_vllm import (  # noqa: E402
    SLOT_BYTES, SLOTS, create_tier, finish, job, make_primary, make_spec,
    new_keys, settle)
from tensorpagerd_process import ServerProcess  # noqa: E402
from tensorpager.integrations.vllm import (  # noqa: E402
    METRICS, TensorPagerSecondaryTier)
from tensorpager.integrations.vllm_compat import (  # noqa: E402
    LookupResult, OffloadingConnectorStats, ReqContext,
    SecondaryTierManager)


@pytest.fixture
def tiers() -> Any:
    built: List[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        tier = create_tier(*args, **kwargs)
        built.append(tier)
        return tier

    yield make
    for tier in built:
        tier.shutdown()


def slot(primary: Any, i: int) -> bytes:
    flat = memoryview(primary).cast("B")
    return bytes(flat[i * SLOT_BYTES:(i + 1) * SLOT_BYTES])


def test_built_like_the_factory(server: ServerProcess, tiers: Any) -> None:
    tier = tiers(server.target, make_primary(0), tenant_salt="s")
    assert isinstance(tier, SecondaryTierManager)
    assert tier.tier_type == "TensorPagerSecondaryTier"
    key = new_keys(1, group=3)[0]
    block = tier.block_id(key)
    scope, digest, hexkey = block.split("/")
    assert scope == "vllm" and len(digest) == 24
    assert bytes.fromhex(hexkey) == key and hexkey.endswith("00000003")
    with pytest.raises(ValueError):
        create_tier("", make_primary(0))
    # The scope follows the model, the slot size and the salt.
    other_model = tiers(server.target, make_primary(0),
                        spec=make_spec("other"), tenant_salt="s")
    assert other_model.block_id(key) != block
    same = tiers(server.target, make_primary(1), tenant_salt="s")
    assert same.block_id(key) == block
    defs = TensorPagerSecondaryTier.build_metric_definitions({})
    assert len(defs) == len(METRICS)


def test_store_lookup_load_round_trip(server: ServerProcess,
                                      tiers: Any) -> None:
    primary = make_primary(1, torch_backed=True)
    tier = tiers(server.target, primary)
    keys = new_keys(4)
    store = job(keys, [0, 1, 2, 3], promotion=False)
    tier.submit_store(store)
    assert tier.has_pending_work()
    assert finish(tier, [store])[store.job_id].success
    # This tier stored them: HIT at once, from its index.
    assert tier.lookup(keys[0], ReqContext(req_id="a")) is LookupResult.HIT
    # Another engine's tier finds them with a background lookup.
    other = tiers(server.target, make_primary(2))
    answers = settle(other, keys[1])
    assert answers[0] is LookupResult.RETRY
    assert answers[-1] is LookupResult.HIT
    unknown = settle(other, new_keys(1)[0])
    assert unknown[0] is LookupResult.RETRY
    assert unknown[-1] is LookupResult.MISS
    # Load into other slots of another primary tier; bytes match.
    other_primary = other._primary_kv_view
    load = job(keys, [12, 13, 14, 15], promotion=True)
    other.submit_load(load)
    result = finish(other, [load])[load.job_id]
    assert result.success and result.successful_keys is None
    for src, dst in zip([0, 1, 2, 3], [12, 13, 14, 15]):
        assert slot(other_primary, dst) == slot(primary, src)
    assert slot(other_primary, 11) != slot(primary, 3)
    counters = other.counters()
    assert counters["blocks_loaded"] == 4
    assert counters["bytes_read"] == 4 * SLOT_BYTES
    stats = other.get_stats()
    assert isinstance(stats, OffloadingConnectorStats)
    reduced = stats.reduce()
    assert reduced["vllm:kv_offload_tensorpager_bytes_read"] == \
        4 * SLOT_BYTES
    assert reduced["vllm:kv_offload_tensorpager_load_jobs"] == 1
    assert other.get_stats() is None  # taken: reset


def test_store_skips_blocks_already_stored(server: ServerProcess,
                                           tiers: Any) -> None:
    tier = tiers(server.target, make_primary(3))
    keys = new_keys(3)
    first = job(keys[:2], [0, 1], promotion=False)
    tier.submit_store(first)
    assert finish(tier, [first])[first.job_id].success
    again = job(keys, [0, 1, 2], promotion=False)
    tier.submit_store(again)
    assert finish(tier, [again])[again.job_id].success
    counters = tier.counters()
    assert counters["blocks_already_present"] == 2
    assert counters["blocks_stored"] == 3
    assert counters["store_jobs"] == 2


def test_index_of_stored_keys_is_bounded(server: ServerProcess,
                                         tiers: Any) -> None:
    """max_known_keys bounds the local index; a key it forgot is checked
    with the server again and still hits."""
    tier = tiers(server.target, make_primary(4), max_known_keys=2)
    keys = new_keys(3)
    store = job(keys, [0, 1, 2], promotion=False)
    tier.submit_store(store)
    assert finish(tier, [store])[store.job_id].success
    # The two most recent are remembered: HIT at once.
    assert tier.lookup(keys[2], ReqContext(req_id="a")) is LookupResult.HIT
    assert tier.lookup(keys[1], ReqContext(req_id="a")) is LookupResult.HIT
    # The first was forgotten: checked again, then found.
    answers = settle(tier, keys[0], req="b")
    assert answers[0] is LookupResult.RETRY
    assert answers[-1] is LookupResult.HIT


def test_partial_load_names_the_loaded_keys(server: ServerProcess,
                                            tiers: Any) -> None:
    primary = make_primary(4)
    tier = tiers(server.target, primary)
    stored, absent = new_keys(1)[0], new_keys(1)[0]
    store = job([stored], [5], promotion=False)
    tier.submit_store(store)
    assert finish(tier, [store])[store.job_id].success
    load = job([stored, absent], [9, 10], promotion=True)
    tier.submit_load(load)
    result = finish(tier, [load])[load.job_id]
    assert not result.success
    assert list(result.successful_keys) == [stored]
    assert slot(primary, 9) == slot(primary, 5)
    assert settle(tier, absent)[-1] is LookupResult.MISS
    assert tier.counters()["load_failed_jobs"] == 1


def test_tenant_salt_scopes_blocks(server: ServerProcess,
                                   tiers: Any) -> None:
    a = tiers(server.target, make_primary(5), tenant_salt="tenant-a")
    keys = new_keys(2)
    store = job(keys, [0, 1], promotion=False)
    a.submit_store(store)
    assert finish(a, [store])[store.job_id].success
    b = tiers(server.target, make_primary(6), tenant_salt="tenant-b")
    assert settle(b, keys[0])[-1] is LookupResult.MISS
    load = job(keys, [2, 3], promotion=True)
    b.submit_load(load)
    assert not finish(b, [load])[load.job_id].success
    a2 = tiers(server.target, make_primary(7), tenant_salt="tenant-a")
    assert settle(a2, keys[0])[-1] is LookupResult.HIT


def test_verdicts_last_until_the_request_finishes(server: ServerProcess,
                                                  tiers: Any) -> None:
    reader = tiers(server.target, make_primary(8))
    writer = tiers(server.target, make_primary(9))
    key = new_keys(1)[0]
    assert settle(reader, key, req="r1")[-1] is LookupResult.MISS
    store = job([key], [0], promotion=False)
    writer.submit_store(store)
    assert finish(writer, [store])[store.job_id].success
    # Same request: the verdict stands (no re-check per step).
    assert reader.lookup(key, ReqContext(req_id="r1")) is LookupResult.MISS
    reader.on_request_finished(ReqContext(req_id="r1"))
    answers = settle(reader, key, req="r2")
    assert answers[0] is LookupResult.RETRY
    assert answers[-1] is LookupResult.HIT


def test_touch_rechecks_stored_keys(server: ServerProcess,
                                    tiers: Any) -> None:
    tier = tiers(server.target, make_primary(10))
    keys = new_keys(3)
    store = job(keys, [0, 1, 2], promotion=False)
    tier.submit_store(store)
    assert finish(tier, [store])[store.job_id].success
    rpcs = tier.counters()["lookup_rpcs"]
    start = time.monotonic()
    tier.touch(keys + new_keys(2), ReqContext(req_id="t"))
    assert time.monotonic() - start < 0.1
    assert tier.counters()["touched"] == 3  # only keys it knows
    assert wait_until(lambda: tier.counters()["lookup_rpcs"] > rpcs, 10)
    # Still stored on the server: still a HIT.
    assert tier.lookup(keys[0], ReqContext(req_id="t")) is LookupResult.HIT


def test_drain_jobs_waits_for_every_job(server: ServerProcess,
                                        tiers: Any) -> None:
    primary = make_primary(11)
    tier = tiers(server.target, primary, io_threads=2)
    stores = [job(new_keys(2), [2 * i, 2 * i + 1], promotion=False)
              for i in range(8)]
    for store in stores:
        tier.submit_store(store)
    tier.drain_jobs()
    assert tier.has_pending_work()  # results not taken yet
    results = list(tier.get_finished_jobs())
    assert sorted(r.job_id for r in results) == sorted(
        s.job_id for s in stores)
    assert all(r.success for r in results)
    assert list(tier.get_finished_jobs()) == []
    assert not tier.has_pending_work()


def test_server_pause_and_restart_give_failures_not_exceptions(
        fresh_server: ServerProcess, tiers: Any) -> None:
    primary = make_primary(12)
    tier = tiers(fresh_server.target, primary, durable=False,
                 timeout_s=1.0, drain_timeout_s=30.0)
    keys = new_keys(4)
    store = job(keys, [0, 1, 2, 3], promotion=False)
    tier.submit_store(store)
    assert finish(tier, [store])[store.job_id].success

    # A server that does not answer: the scheduler-side calls still
    # return at once, the jobs fail by their deadline.
    fresh_server.pause()
    try:
        assert wait_until(lambda: stopped(fresh_server), 10)
        start = time.monotonic()
        paused_store = job(new_keys(2), [4, 5], promotion=False)
        tier.submit_store(paused_store)
        paused_load = job(keys[:2], [8, 9], promotion=True)
        tier.submit_load(paused_load)
        unknown = new_keys(1)[0]
        assert tier.lookup(unknown, ReqContext(req_id="p")) is \
            LookupResult.RETRY
        assert time.monotonic() - start < 0.5
        done = finish(tier, [paused_store, paused_load], seconds=30)
        assert not done[paused_store.job_id].success
        assert not done[paused_load.job_id].success
        assert settle(tier, unknown, req="p")[-1] is LookupResult.MISS
    finally:
        fresh_server.resume()

    # keys[2:] are still in the index; a restart loses them (RAM only).
    assert tier.lookup(keys[2], ReqContext(req_id="q")) is LookupResult.HIT
    fresh_server.restart()
    load = job([keys[2]], [10], promotion=True)
    tier.submit_load(load)
    assert not finish(tier, [load], seconds=30)[load.job_id].success
    assert settle(tier, keys[2], req="q2")[-1] is LookupResult.MISS
    # touch re-checks keys[3] and drops it from the index.
    assert tier.lookup(keys[3], ReqContext(req_id="q3")) is LookupResult.HIT
    tier.touch([keys[3]], ReqContext(req_id="q3"))
    assert wait_until(lambda: tier.lookup(
        keys[3], ReqContext(req_id="q4")) is not LookupResult.HIT, 20)
    assert settle(tier, keys[3], req="q4")[-1] is LookupResult.MISS
    assert tier.counters()["errors"] > 0
    # Storing and loading work again (a gRPC channel that saw the port
    # closed may refuse a call or two while it reconnects: those jobs
    # fail and are submitted again, as vLLM would).
    assert until_success(tier, lambda: job(keys, [0, 1, 2, 3], False))
    assert until_success(tier, lambda: job(keys, [12, 13, 14, 15], True))
    assert slot(primary, 15) == slot(primary, 3)


def until_success(tier: Any, make_job: Callable[[], Any],
                  seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        attempt = make_job()
        if attempt.is_promotion:
            tier.submit_load(attempt)
        else:
            tier.submit_store(attempt)
        if finish(tier, [attempt])[attempt.job_id].success:
            return True
        time.sleep(0.2)
    return False


def test_shutdown_then_jobs_fail_quietly(server: ServerProcess) -> None:
    tier = create_tier(server.target, make_primary(13))
    tier.shutdown()
    store = job(new_keys(1), [0], promotion=False)
    tier.submit_store(store)
    results = list(tier.get_finished_jobs())
    assert [(r.job_id, r.success) for r in results] == [
        (store.job_id, False)]
    tier.shutdown()  # twice is fine


def test_mismatched_job_fails(server: ServerProcess, tiers: Any) -> None:
    tier = tiers(server.target, make_primary(14))
    bad: Optional[Any] = job(new_keys(2), [0], promotion=True)
    tier.submit_load(bad)
    out_of_range = job(new_keys(1), [SLOTS + 3], promotion=False)
    tier.submit_store(out_of_range)
    done = finish(tier, [bad, out_of_range])
    assert not any(r.success for r in done.values())
