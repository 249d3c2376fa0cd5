"""A real tensorpagerd for Python tests and benchmarks: loopback, a port
the kernel picks (port 0 + the ready file), a temporary data dir, and no
process left behind (the child dies with its parent, and stop() kills
what SIGTERM does not end).

The binary: $TENSORPAGERD, else $TP_BINARY_DIR/server/tensorpagerd, else
build/server/tensorpagerd under the repository.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from typing import Callable, List, Optional, Sequence

_REPO = pathlib.Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1
# Servers not stopped yet, killed at interpreter exit whatever happened.
_running: "weakref.WeakSet[ServerProcess]" = weakref.WeakSet()


def binary_path() -> str:
    if os.environ.get("TENSORPAGERD"):
        return os.environ["TENSORPAGERD"]
    build = os.environ.get("TP_BINARY_DIR", str(_REPO / "build"))
    return os.path.join(build, "server", "tensorpagerd")


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the server must not outlive
    # a test run that crashes or is killed. The kernel sends the signal
    # when the *thread* that forked ends, so only the main thread asks for
    # it (see _launch).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerProcess:
    """tensorpagerd on 127.0.0.1 with its own data dir."""

    def __init__(self, flags: Sequence[str] = (),
                 data_dir: Optional[str] = None,
                 workdir: Optional[str] = None):
        self.binary = binary_path()
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError(
                f"{self.binary} not built (cmake --build build --target "
                "tensorpagerd), or set TENSORPAGERD")
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="tensorpager-py-")
        self.data_dir = data_dir or os.path.join(self.workdir, "data")
        self.flags = list(flags)
        self.ready_file = os.path.join(self.workdir, "ready")
        self.log_path = os.path.join(self.workdir, "server.log")
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self._launch(0)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _launch(self, port: int) -> None:
        if os.path.exists(self.ready_file):
            os.remove(self.ready_file)
        cmd = [self.binary, f"--data_dir={self.data_dir}",
               f"--grpc_address=127.0.0.1:{port}",
               "--metrics_address=127.0.0.1:0",
               f"--ready_file={self.ready_file}"] + self.flags
        # Started from another thread, the server would be killed when
        # that thread ends: there it relies on stop() and the atexit hook.
        main = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if main else None)
        _running.add(self)
        self.port = self._wait_ready(60.0)

    def _wait_ready(self, timeout: float) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tensorpagerd exited during startup:\n" +
                                   self.log())
            try:
                with open(self.ready_file) as f:
                    for line in f:
                        key, _, value = line.strip().partition("=")
                        if key == "grpc_port" and value.isdigit():
                            return int(value)
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"tensorpagerd not ready in {timeout:.0f} s:\n" +
                           self.log())

    def log(self, tail: int = 8000) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-tail:]
        except FileNotFoundError:
            return ""

    def stop(self) -> int:
        """SIGTERM (the server's graceful stop), SIGKILL after 30 s;
        returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case it is paused
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, same_port: bool = True,
                while_stopped: Optional[Callable[[], None]] = None) -> None:
        """Stops gracefully and starts again on the same data dir; on the
        same port by default, so connected clients reach the new process.
        `while_stopped` runs in between (to damage the data file, say)."""
        code = self.stop()
        if code != 0:
            raise RuntimeError(f"tensorpagerd exited with {code}:\n" +
                               self.log())
        if while_stopped is not None:
            while_stopped()
        self._launch(self.port if same_port else 0)

    def pause(self) -> None:
        """SIGSTOP: the server holds every request until resume(). Returns
        once every thread of the server has stopped: the signal reaches
        them one by one, and a thread still running could take a request
        sent after pause() returned."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        tasks = f"/proc/{self.proc.pid}/task"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = []
            for tid in os.listdir(tasks):
                try:
                    with open(f"{tasks}/{tid}/stat") as f:
                        # "pid (comm) S ...": the state follows the last ')'.
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
                except FileNotFoundError:
                    continue  # a thread that ended meanwhile
            if all(s in ("T", "t") for s in states):
                return
            time.sleep(0.001)
        raise AssertionError(f"tensorpagerd {self.proc.pid} did not stop")

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> int:
        """Stops the server and removes its files; returns the exit
        code."""
        code = self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return code


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.kill()


def server_flags(extra: List[str]) -> List[str]:
    """Flags that make a test server's behaviour independent of the host:
    LRU (the hardware profile may pick another), a RAM budget."""
    return ["--algorithm=lru", "--ram_budget=256MiB"] + extra
