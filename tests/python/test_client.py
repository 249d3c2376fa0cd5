"""The client itself: errors, data paths, logging, status and pressure,
lifetime."""

from __future__ import annotations

import logging
import pickle
import threading
import time
from typing import Callable

import pytest

import tensorpager
from conftest import connect, pattern
from tensorpagerd_process import ServerProcess


def test_errors_carry_code_and_message(client: tensorpager.Client,
                                       key: Callable[[str], str]) -> None:
    missing = key("missing")
    with pytest.raises(tensorpager.NotFound) as e:
        client.get(missing)
    assert e.value.code == tensorpager.StatusCode.NOT_FOUND
    assert missing in e.value.message and missing in str(e.value)
    assert isinstance(e.value, tensorpager.Error)
    assert isinstance(e.value, LookupError)  # NotFound is a LookupError
    with pytest.raises(tensorpager.NotFound):
        client.delete(missing)
    with pytest.raises(tensorpager.NotFound):
        client.info(missing)
    assert not client.exists(missing)

    bad_ids = ["", "x" * 300, "tab\tin id"]
    for bad in bad_ids:
        with pytest.raises(tensorpager.InvalidArgument) as e:
            client.put(bad, b"123")
        assert e.value.code == tensorpager.StatusCode.INVALID_ARGUMENT
        assert e.value.message
        assert isinstance(e.value, ValueError)
        with pytest.raises(tensorpager.InvalidArgument):
            client.info(bad)
    # Exceptions survive pickling (multiprocessing) as their class.
    copy = pickle.loads(pickle.dumps(e.value))
    assert type(copy) is tensorpager.InvalidArgument
    assert copy.message == e.value.message


def test_error_classes_cover_every_code() -> None:
    for code in tensorpager.StatusCode:
        if code == tensorpager.StatusCode.OK:
            continue
        error = tensorpager.errors.from_status(int(code), "words")
        assert error.code == code and error.message == "words"
        assert type(error).__name__.lower() == code.name.replace("_", "")\
            .lower()
    assert isinstance(tensorpager.errors.from_status(99, "x"),
                      tensorpager.Unknown)


def test_batch_path_shared_memory_and_tcp(client: tensorpager.Client,
                                          tcp_client: tensorpager.Client,
                                          key: Callable[[str], str]) -> None:
    shm = client.batch_path
    assert shm.shared_memory, shm.reason
    assert shm.reason
    tcp = tcp_client.batch_path
    assert not tcp.shared_memory
    assert tcp.reason
    # The same blocks through both.
    client.batch_put([key("a")], [pattern(300000, 1)])
    assert tcp_client.batch_get([key("a")])[0].value == pattern(300000, 1)
    tcp_client.put(key("b"), pattern(5, 2))
    assert client.get(key("b")) == pattern(5, 2)


def test_sdk_log_goes_to_python_logging(server: ServerProcess,
                                        caplog: pytest.LogCaptureFixture
                                        ) -> None:
    caplog.set_level(logging.INFO, logger="tensorpager")
    with connect(server.target, "tcp") as c:
        c.batch_path
        c.exists("anything")
    records = [r for r in caplog.records if r.name == "tensorpager"]
    messages = [r.getMessage() for r in records]
    assert records, "the SDK's lines reach logging.getLogger('tensorpager')"
    # Host mode or a CUDA runtime: the SDK says which when it starts ...
    assert any("host mode" in m or "cache" in m for m in messages), messages
    # ... and once which way batches go, and why.
    said = [m for m in messages if "shared-memory data path" in m]
    assert len(said) == 1 and "shared_memory_bytes is 0" in said[0], messages
    # Python's logging has its own time and name: the SDK's are gone.
    assert not any(m.startswith(("I2", "tensorpager-sdk")) for m in messages)
    assert all(r.levelno >= logging.INFO for r in records)


def test_status_is_a_dict_with_ints(client: tensorpager.Client,
                                    key: Callable[[str], str]) -> None:
    client.put(key("s"), b"123")
    status = client.status()
    assert isinstance(status["blocks_registered"], int)
    assert status["blocks_registered"] >= 1
    assert status["algorithm"] == "LRU"
    assert isinstance(status["ram"]["capacity_bytes"], int)
    assert status["max_batch_blocks"] > 0
    assert any(p["resource"] == "host_ram" for p in status["pressure"])


def test_watch_pressure_streams_and_stops(client: tensorpager.Client) -> None:
    watch = client.watch_pressure()
    first = next(watch)
    assert isinstance(first, tensorpager.PressureEvent)
    assert first.resource == "host_ram"
    assert first.level in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    assert isinstance(first.unix_ms, int) and first.unix_ms > 0
    assert "usage_ratio" in first.state
    # Nothing changes now: a bounded wait returns None.
    while watch.next_event(0.05) is not None:
        pass  # the current level of other resources (GPUs)
    # close() from another thread ends a blocked iteration.
    closer = threading.Timer(0.2, watch.close)
    closer.start()
    assert list(watch) == []
    closer.join()
    assert watch.closed
    with client.watch_pressure() as second:
        assert next(second).resource == "host_ram"
    assert second.closed


def test_close_and_context_manager(server: ServerProcess) -> None:
    with connect(server.target, "shm") as c:
        c.put("close-test", b"1")
        assert not c.closed
    assert c.closed
    with pytest.raises(tensorpager.FailedPrecondition, match="closed"):
        c.get("close-test")
    c.close()  # idempotent
    with connect(server.target, "tcp") as c2:
        c2.delete("close-test")


def test_unreachable_server_is_unavailable() -> None:
    # Port 1 on loopback: nothing listens there.
    c = tensorpager.Client("127.0.0.1:1", timeout=5, max_retries=0)
    with pytest.raises(tensorpager.Unavailable) as e:
        c.get("x")
    assert isinstance(e.value, ConnectionError)
    with pytest.raises(tensorpager.Unavailable):
        c.batch_put(["x"], [b"1"])
    with pytest.raises(tensorpager.DeadlineExceeded):
        c.wait_until_ready(0.3)
    c.close()


def test_restart_during_a_batch_put_loop(fresh_server: ServerProcess) -> None:
    """tensorpagerd restarts while a loop puts batches: the loop retries
    what failed with Unavailable, and every acknowledged block is readable
    afterwards (durable puts, so they survive the restart)."""
    server = fresh_server
    c = connect(server.target, "shm", timeout=20)
    restarted = threading.Event()
    acknowledged = {}
    failures: list = []

    def put_loop() -> None:
        batch = 0
        after_restart = 0
        deadline = time.monotonic() + 120
        while after_restart < 10:
            keys = [f"restart-{batch}-{i}" for i in range(8)]
            values = [pattern(65536 + i, batch * 8 + i) for i in range(8)]
            pending = list(range(8))
            while pending:
                assert time.monotonic() < deadline, "no progress"
                try:
                    results = c.batch_put([keys[i] for i in pending],
                                          [values[i] for i in pending],
                                          durable=True)
                except tensorpager.Unavailable:
                    time.sleep(0.05)
                    continue
                failed = []
                for i, r in zip(pending, results):
                    if r.ok:
                        acknowledged[keys[i]] = values[i]
                    elif isinstance(r.error, tensorpager.Unavailable):
                        failed.append(i)
                    else:
                        raise r.error
                pending = failed
                if pending:
                    time.sleep(0.05)
            batch += 1
            if restarted.is_set():
                after_restart += 1

    def run() -> None:
        try:
            put_loop()
        except BaseException as e:  # reported by the main thread
            failures.append(e)

    # The loop runs in a thread; the restart happens here, in the main
    # thread, which owns the server process.
    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.3)
    server.restart()
    restarted.set()
    worker.join(180)
    assert not worker.is_alive()
    if failures:
        raise failures[0]
    assert len(acknowledged) >= 80
    got = c.batch_get(list(acknowledged))
    assert [r.error for r in got if not r.ok] == []
    assert all(r.value == acknowledged[r.key] for r in got)
    c.close()


def _paused_batch_gets(server: ServerProcess, c: tensorpager.Client,
                       keys: list, threads: int, pause: float) -> float:
    """Seconds `threads` threads take to finish one batch_get each while
    the server is stopped for `pause` seconds. If a call held the GIL, this
    thread could not resume the server until the call's deadline."""
    results: list = []
    workers = [threading.Thread(target=lambda: results.append(
        c.batch_get(keys))) for _ in range(threads)]
    server.pause()
    start = time.monotonic()
    try:
        for w in workers:
            w.start()
        time.sleep(pause)
    finally:
        server.resume()
    for w in workers:
        w.join(60)
    elapsed = time.monotonic() - start
    assert len(results) == threads
    assert all(r.ok for batch in results for r in batch)
    return elapsed


@pytest.mark.parametrize("path", ["shm", "tcp"])
def test_calls_release_the_gil(fresh_server: ServerProcess, path: str
                               ) -> None:
    c = connect(fresh_server.target, path, timeout=30)
    keys = [f"gil-{i}" for i in range(16)]
    c.batch_put(keys, [pattern(65536, i) for i in range(16)])

    # While one thread waits in the SDK on a stopped server, this one
    # keeps running Python code.
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (c.batch_get(keys), done.set()))
    fresh_server.pause()
    try:
        waiter.start()
        spins = 0
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            spins += 1
        assert not done.is_set(), "the call did not wait for the server"
        assert spins > 1000
    finally:
        fresh_server.resume()
    waiter.join(60)
    assert done.is_set()

    # Two threads in batch gets at once finish in about one's time (both
    # wait on the stopped server), below twice it. Were the GIL held, this
    # thread could not resume the server before the calls' deadline.
    one = _paused_batch_gets(fresh_server, c, keys, 1, 1.0)
    two = _paused_batch_gets(fresh_server, c, keys, 2, 1.0)
    assert two < 1.8 * one, (one, two)
    c.close()


def test_list_blocks_pages_through_a_prefix(any_client: tensorpager.Client,
                                            key: Callable[[str], str]
                                            ) -> None:
    keys = [key(f"page{i:02d}") for i in range(7)]
    for i, k in enumerate(keys):
        region = "kv_cache" if i % 2 else "image_features"
        any_client.put(k, pattern(4096 + i, i), region_type=region)
    other = key("elsewhere")
    any_client.put(other, b"x")
    prefix = keys[0][:-2]

    listed = list(any_client.list_blocks(prefix, page_size=3))
    assert [b["id"] for b in listed] == keys
    assert [int(b["size_bytes"]) for b in listed] == \
        [4096 + i for i in range(7)]
    kv = list(any_client.list_blocks(prefix, region_type="KV_CACHE"))
    assert [b["id"] for b in kv] == keys[1::2]

    any_client.swap_out(keys[:2])
    on_disk = [b["id"] for b in any_client.list_blocks(prefix, tier="disk")]
    assert on_disk == keys[:2]
    assert list(any_client.list_blocks(prefix + "none")) == []

    with pytest.raises(tensorpager.InvalidArgument, match="page_size"):
        any_client.list_blocks(prefix, page_size=5000)
    with pytest.raises(ValueError, match="not a Tier"):
        any_client.list_blocks(prefix, tier="tape")
