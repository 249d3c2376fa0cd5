"""Batch calls: one result per item; a missing, a lost and an oversized
block fail alone and change nothing; prefix hits over chains with holes."""

from __future__ import annotations

from typing import Callable, Iterator, List

import pytest

import tensorpager
from conftest import MiB, close_server, connect, pattern, start_server
from tensorpagerd_process import ServerProcess

MAX_BLOCK = MiB  # --max_block_size of this module's server


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    s = start_server([f"--max_block_size={MAX_BLOCK}"])
    yield s
    close_server(s)


@pytest.fixture(params=["shm", "tcp"])
def any_client(request, server: ServerProcess
               ) -> Iterator[tensorpager.Client]:
    with connect(server.target, request.param) as c:
        yield c


def lost_block(server: ServerProcess, c: tensorpager.Client,
               key: str) -> None:
    """Makes `key` TIER_LOST: written only to RAM (not durable), then the
    server restarts (on the same port, so `c` reconnects)."""
    c.put(key, pattern(4096, 3), durable=False)
    server.restart()
    c.wait_until_ready(30)
    assert c.lookup([key]).entries[0].tier == tensorpager.Tier.LOST


def test_batch_put_and_get_with_failures(server: ServerProcess,
                                         any_client: tensorpager.Client,
                                         key: Callable[[str], str]) -> None:
    c = any_client
    lost = key("lost")
    lost_block(server, c, lost)
    good = [key(f"good{i}") for i in range(3)]
    oversized = key("oversized")

    puts = c.batch_put(
        [good[0], oversized, good[1], "", good[2]],
        [pattern(1000, 1), b"x" * (MAX_BLOCK + 1), pattern(70000, 2),
         b"bad id", pattern(MAX_BLOCK, 3)])
    assert [r.ok for r in puts] == [True, False, True, False, True]
    assert all(r.created for r in puts if r.ok)
    assert isinstance(puts[1].error, tensorpager.Error)
    assert isinstance(puts[3].error, tensorpager.InvalidArgument)
    assert puts[1].key == oversized
    # The oversized block was not registered.
    assert not c.exists(oversized)
    assert c.lookup([oversized]).entries[0].tier == \
        tensorpager.Tier.UNSPECIFIED

    missing = key("missing")
    gets = c.batch_get([good[0], missing, lost, good[1], good[2]])
    assert [r.ok for r in gets] == [True, False, False, True, True]
    assert isinstance(gets[1].error, tensorpager.NotFound)
    assert gets[1].error.code == tensorpager.StatusCode.NOT_FOUND
    assert missing in gets[1].error.message
    assert isinstance(gets[2].error, tensorpager.DataLoss)
    assert gets[1].value is None and gets[2].value is None
    assert gets[0].value == pattern(1000, 1)
    assert gets[3].value == pattern(70000, 2)
    assert gets[4].value == pattern(MAX_BLOCK, 3)
    assert gets[4].size == MAX_BLOCK and gets[4].hit
    # Nothing changed for the failed ones.
    entries = c.lookup([missing, lost]).entries
    assert entries[0].tier == tensorpager.Tier.UNSPECIFIED
    assert entries[1].tier == tensorpager.Tier.LOST

    # A put heals the lost block, in a batch with a mismatched overwrite
    # that fails alone and leaves its block as it was.
    before = c.info(good[1])["version"]
    healed = c.batch_put([lost, good[1]], [pattern(4096, 4), b"short"])
    assert healed[0].ok and not healed[0].created
    assert isinstance(healed[1].error, tensorpager.FailedPrecondition)
    assert c.get(lost) == pattern(4096, 4)
    assert c.info(good[1])["version"] == before
    assert c.get(good[1]) == pattern(70000, 2)


def test_batch_get_into_reports_each_item(any_client: tensorpager.Client,
                                          key: Callable[[str], str]) -> None:
    keys = [key(f"p{i}") for i in range(4)]
    assert all(r.ok for r in any_client.batch_put(
        keys, [pattern(65536, i) for i in range(4)]))
    buffers = [bytearray(65536) for _ in range(5)]
    results = any_client.batch_get_into(keys + [key("none")], buffers)
    assert [r.ok for r in results] == [True] * 4 + [False]
    for i in range(4):
        assert results[i].value is buffers[i]
        assert buffers[i] == pattern(65536, i)
    assert isinstance(results[4].error, tensorpager.NotFound)
    assert buffers[4] == bytearray(65536)


def chain(key: Callable[[str], str], n: int) -> List[str]:
    return [key(f"page{i:03d}") for i in range(n)]


def test_prefix_hits_over_chains_with_holes(server: ServerProcess,
                                            any_client: tensorpager.Client,
                                            key: Callable[[str], str]) -> None:
    c = any_client
    pages = chain(key, 12)
    holes = {4, 9}
    present = [p for i, p in enumerate(pages) if i not in holes]
    assert all(r.ok for r in c.batch_put(
        present, [pattern(4096, i) for i in range(len(present))],
        region_type=tensorpager.RegionType.KV_CACHE, durable=True))

    result = c.lookup(pages)
    assert result.prefix_hits == 4
    assert result.present == [i not in holes for i in range(12)]
    assert [e.key for e in result.entries] == pages
    assert all(e.size == 4096 for e in result.entries if e.present)
    assert result.entries[4].tier == tensorpager.Tier.UNSPECIFIED
    assert c.batch_exists(pages) == result.present
    assert c.lookup(pages[:4]).prefix_hits == 4
    assert c.lookup(pages[4:]).prefix_hits == 0
    assert c.lookup(pages[5:9]).prefix_hits == 4
    assert c.lookup([]).prefix_hits == 0

    # A lost page is a hole too.
    lost = key("lost")
    lost_block(server, c, lost)
    assert c.lookup(pages[:2] + [lost] + pages[2:4]).prefix_hits == 2
    # Durable pages survived the restart.
    assert c.lookup(pages[:4]).prefix_hits == 4


def test_batch_delete_and_delete_prefix(any_client: tensorpager.Client,
                                        key: Callable[[str], str]) -> None:
    c = any_client
    pages = chain(key, 6)
    c.batch_put(pages, [pattern(1000, i) for i in range(6)])
    deleted = c.batch_delete([pages[0], key("none"), pages[1]])
    assert not deleted.ok
    assert deleted.errors[0] is None and deleted.errors[2] is None
    assert isinstance(deleted.errors[1], tensorpager.NotFound)
    assert deleted.blocks_removed == 2
    assert deleted.ram_bytes_freed >= 2000
    assert c.batch_exists(pages) == [False, False] + [True] * 4

    by_prefix = c.delete_prefix(key("page"))
    assert by_prefix.blocks_removed == 4 and by_prefix.errors == []
    assert c.batch_exists(pages) == [False] * 6
    with pytest.raises(tensorpager.InvalidArgument):
        c.delete_prefix("")


def test_batches_split_over_the_server_limits(
        any_client: tensorpager.Client, key: Callable[[str], str]) -> None:
    # 40 blocks of 1 MiB: more than one call's --max_batch_bytes (32 MiB).
    keys = [key(f"b{i}") for i in range(40)]
    values = [pattern(MiB, i) for i in range(40)]
    assert all(r.ok for r in any_client.batch_put(keys, values))
    got = any_client.batch_get(keys)
    assert all(r.ok for r in got)
    assert [r.value for r in got] == values
    assert any_client.batch_delete(keys).blocks_removed == 40


def test_empty_batches(any_client: tensorpager.Client) -> None:
    assert any_client.batch_put([], []) == []
    assert any_client.batch_get([]) == []
    assert any_client.batch_get_into([], []) == []
    assert any_client.batch_exists([]) == []
