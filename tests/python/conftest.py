"""Fixtures of the tensorpager package tests: a real tensorpagerd per
module (tensorpagerd_process.py) and clients over both data paths.

Run through ctest (python_package_test, see CMakeLists.txt here), or:
  PYTHONPATH=build/client_sdk/python TP_BINARY_DIR=build \\
      /usr/bin/python3 -m pytest tests/python
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from typing import Callable, Iterator, List

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorpager  # noqa: E402
from tensorpagerd_process import ServerProcess, server_flags  # noqa: E402

MiB = 1 << 20
# Odd sizes: one byte, just under a page, just over the 1 MiB wire chunk,
# and several chunks.
ODD_SIZES = [1, 4095, MiB + 1, 9 * MiB + 3]


def start_server(extra: List[str]) -> ServerProcess:
    return ServerProcess(server_flags(extra))


def close_server(server: ServerProcess) -> None:
    log = server.log()
    code = server.close()
    assert code == 0, f"tensorpagerd exited with {code}:\n{log}"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    s = start_server([])
    yield s
    close_server(s)


@pytest.fixture
def fresh_server() -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that restart or pause it."""
    s = start_server([])
    yield s
    close_server(s)


def connect(target: str, path: str, **options) -> tensorpager.Client:
    if path == "tcp":
        options["shared_memory_bytes"] = 0
    client = tensorpager.Client(target, **options)
    client.wait_until_ready(30)
    return client


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[tensorpager.Client]:
    """The default client: shared memory with the server."""
    with connect(server.target, "shm") as c:
        yield c


@pytest.fixture(scope="module")
def tcp_client(server: ServerProcess) -> Iterator[tensorpager.Client]:
    with connect(server.target, "tcp") as c:
        yield c


@pytest.fixture(params=["shm", "tcp"])
def any_client(request, client: tensorpager.Client,
               tcp_client: tensorpager.Client) -> tensorpager.Client:
    """Each data path in turn: shared memory, then gRPC messages only."""
    return client if request.param == "shm" else tcp_client


_unique = itertools.count()


@pytest.fixture
def key(request) -> Callable[[str], str]:
    """key("x"): a block id no other test uses."""
    test = request.node.name.replace("[", "-").replace("]", "")
    serial = next(_unique)
    return lambda name: f"{test}-{serial}-{name}"[-200:]


def pattern(size: int, seed: int) -> bytes:
    """`size` bytes that differ for each seed and offset (no zeros page)."""
    block = bytes((seed * 131 + i * 7 + (i >> 8)) & 0xFF for i in range(4096))
    return (block * (size // 4096 + 1))[:size]


def wait_until(check: Callable[[], bool], seconds: float) -> bool:
    """Polls `check` until it holds or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def stopped(server: ServerProcess) -> bool:
    """Whether SIGSTOP has taken hold of the server (state T)."""
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
