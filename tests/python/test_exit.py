"""Interpreter exit with the SDK busy: daemon threads inside calls, a
pressure watch, clients never closed. The process must end with exit code
0 (no abort from a thread unwinding C++ frames), at once, or within one RPC
timeout when the server does not answer (closing a client detaches its
shared memory)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tensorpagerd_process import ServerProcess

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent("""
    import logging, os, signal, sys, threading, time
    logging.basicConfig(level=logging.INFO)
    import tensorpager
    target, mode, server_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = 3.0 if mode == "paused" else 30.0
    clients = [tensorpager.Client(target, timeout=timeout) for _ in range(2)]
    keys = [f"exit-{i}" for i in range(32)]
    clients[0].batch_put(keys, [os.urandom(65536) for _ in keys])
    watch = clients[1].watch_pressure()
    next(watch)

    def loop(c):
        while True:
            c.batch_get(keys)

    threading.Thread(target=lambda: list(watch), daemon=True).start()
    for c in clients:
        for _ in range(2):
            threading.Thread(target=loop, args=(c,), daemon=True).start()
    time.sleep(0.3)
    if mode == "paused":
        # Every call now waits on the server until its deadline.
        os.kill(server_pid, signal.SIGSTOP)
        time.sleep(0.2)
    print("exiting", flush=True)
""")


@pytest.mark.parametrize("mode", ["busy", "paused"])
def test_exit_with_calls_in_flight(fresh_server: ServerProcess,
                                   mode: str) -> None:
    assert fresh_server.proc is not None
    env = dict(os.environ)
    for _ in range(3):
        try:
            run = subprocess.run(
                [sys.executable, "-c", SCRIPT, fresh_server.target, mode,
                 str(fresh_server.proc.pid)],
                env=env, capture_output=True, text=True, timeout=60)
        finally:
            fresh_server.resume()
        assert run.returncode == 0, run.stdout + run.stderr
        assert "exiting" in run.stdout
