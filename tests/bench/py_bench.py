#!/usr/bin/python3
"""The tensorpager Python package against Redis, all figures from one run.

    tests/bench/py_bench.sh [BUILD_DIR] [DATA_DIR]      (or this file)

Starts tensorpagerd and redis-server on free loopback ports, then with 1,
4 and 8 client processes moves the same values as batches of 128 pages of
64 KiB and of 8 blocks of 4 MiB:
  * tensorpager batch_put / batch_get / batch_get_into over shared memory
    (co-located, the default) and over gRPC messages only
    (shared_memory_bytes=0), against
  * redis-py MSET / MGET (one pipelined command per batch) of the same
    values.
Then lookup() of 128 keys (keys/s, one process) and the Python batch get
against the C++ SDK's (tp-batch-bench) at 64 KiB, one process each.
Prints GiB/s and ratios with the goals: shared memory >= 2x Redis, TCP >=
1x Redis, lookup >= 1M keys/s, Python batch get >= 0.8x C++. Timings are
reported, never asserted. --quick: a smoke run of a few seconds. Exit code
77 (ctest: skipped) when numpy, redis, the package or a server is missing.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing as mp
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
SKIP = 77  # exit code when something the benchmark needs is missing
CASES = [(128, 64 * KiB), (8, 4 * MiB)]  # (blocks per batch, block bytes)


def case_name(case: Tuple[int, int]) -> str:
    count, size = case
    unit = f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"
    return f"{count} x {unit}"


# ---- Worker processes (spawned: gRPC does not survive fork) ----

class Batches:
    """The batches one worker moves: `sets` batches of distinct keys, the
    same value bytes for all (what matters is the bytes moved)."""

    def __init__(self, worker: int, case: Tuple[int, int], sets: int):
        count, size = case
        self.values = [os.urandom(size) for _ in range(count)]
        self.keys = [[f"w{worker}-{size}-{s}-{i}" for i in range(count)]
                     for s in range(sets)]
        self.bytes_per_batch = count * size


def _run_for(seconds: float, op) -> Tuple[int, float]:
    """Calls op(i) until `seconds` pass; (calls, elapsed)."""
    start = time.perf_counter()
    n = 0
    while True:
        op(n)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n, elapsed


def tune_allocator(args: Dict) -> None:
    """What Client(tune_allocator=True) does to glibc malloc, for the Redis
    workers too, so both sides allocate their received values alike (on a
    VM, fresh pages fault in one trap each)."""
    if not args["tune_allocator"]:
        return
    libc = ctypes.CDLL(None)
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    libc.mallopt(m_arena_max, 1)
    libc.mallopt(m_mmap_threshold, 32 * MiB)
    libc.mallopt(m_trim_threshold, 512 * MiB)


def tensorpager_worker(args: Dict, barrier, results) -> None:
    import numpy as np
    import tensorpager
    b = Batches(args["worker"], args["case"], args["sets"])
    # The SDK's INFO lines go to Python logging (the default), which is
    # not configured here: they do not clutter the table.
    client = tensorpager.Client(
        args["target"], shared_memory_bytes=args["shared_memory_bytes"],
        namespace="py-bench", tune_allocator=args["tune_allocator"])
    client.wait_until_ready(30)
    sets = len(b.keys)

    def check(outcomes) -> None:
        for r in outcomes:
            r.raise_if_error()

    def put(i: int) -> None:
        check(client.batch_put(b.keys[i % sets], b.values,
                               region_type="KV_CACHE"))

    for s in range(sets):
        put(s)  # create every block before timing overwrites
    buffers = [np.empty(len(v), np.uint8) for v in b.values]

    def get(i: int) -> None:
        check(client.batch_get(b.keys[i % sets]))

    def get_into(i: int) -> None:
        check(client.batch_get_into(b.keys[i % sets], buffers))

    out = {}
    for name, op in (("put", put), ("get", get), ("get_into", get_into)):
        barrier.wait()
        n, elapsed = _run_for(args["seconds"], op)
        out[name] = n * b.bytes_per_batch / elapsed
    for keys in b.keys:
        client.batch_delete(keys)
    client.close()
    results.put(out)


def redis_worker(args: Dict, barrier, results) -> None:
    import redis
    tune_allocator(args)
    b = Batches(args["worker"], args["case"], args["sets"])
    r = redis.Redis(host="127.0.0.1", port=args["port"])
    sets = len(b.keys)
    mappings = [dict(zip(keys, b.values)) for keys in b.keys]

    def put(i: int) -> None:
        r.mset(mappings[i % sets])

    for s in range(sets):
        put(s)

    def get(i: int) -> None:
        values = r.mget(b.keys[i % sets])
        if any(v is None for v in values):
            raise RuntimeError("redis lost a value")

    out = {}
    for name, op in (("put", put), ("get", get)):
        barrier.wait()
        n, elapsed = _run_for(args["seconds"], op)
        out[name] = n * b.bytes_per_batch / elapsed
    out["get_into"] = out["get"]  # MGET has no in-place form
    r.delete(*[k for keys in b.keys for k in keys])
    results.put(out)


def lookup_worker(args: Dict, barrier, results) -> None:
    import tensorpager
    client = tensorpager.Client(args["target"], namespace="py-bench-lookup")
    keys = [f"chain-{i:04d}" for i in range(128)]
    client.batch_put(keys[:100], [b"x" * 4096] * 100)
    barrier.wait()
    n, elapsed = _run_for(args["seconds"], lambda i: client.lookup(keys))
    client.delete_prefix("chain-")
    client.close()
    results.put({"keys_per_s": n * len(keys) / elapsed})


def py_get_worker(args: Dict, barrier, results) -> None:
    """One process, one batch of 128 x 64 KiB read in place, as
    tp-batch-bench does in C++."""
    import numpy as np
    import tensorpager
    count, size = 128, 64 * KiB
    client = tensorpager.Client(
        args["target"], shared_memory_bytes=args["shared_memory_bytes"],
        namespace="py-bench-vs-cxx", tune_allocator=args["tune_allocator"])
    keys = [f"page-{size}-{i}" for i in range(count)]
    value = bytes((i * 7) & 0xFF for i in range(size))
    for r in client.batch_put(keys, [value] * count, region_type="KV_CACHE"):
        r.raise_if_error()
    buffers = [np.empty(size, np.uint8) for _ in range(count)]

    def get_into(i: int) -> None:
        for r in client.batch_get_into(keys, buffers):
            r.raise_if_error()

    get_into(0)
    barrier.wait()
    n, elapsed = _run_for(args["seconds"], get_into)
    client.delete_prefix("page-")
    client.close()
    results.put({"gib_per_s": n * count * size / elapsed / GiB})


def run_workers(target, processes: int, args: Dict) -> List[Dict]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(dict(args, worker=w), barrier,
                                              results))
             for w in range(processes)]
    for p in procs:
        p.start()
    out = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
        if p.exitcode != 0:
            raise RuntimeError(f"a {target.__name__} exited with "
                               f"{p.exitcode}")
    return out


# ---- Servers ----

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, binary: str, workdir: str):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", workdir,
             "--protected-mode", "no", "--logfile",
             os.path.join(workdir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def version(self, binary: str) -> str:
        return subprocess.run([binary, "--version"], capture_output=True,
                              text=True).stdout.split(" sha")[0]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def cxx_batch_get(bench: str, target: str, seconds: float,
                  shared_memory_bytes: int,
                  tune_allocator: bool) -> Optional[float]:
    if not os.access(bench, os.X_OK):
        print(f"py_bench: {bench} not built: no C++ reference",
              file=sys.stderr)
        return None
    line = subprocess.run(
        [bench, f"--target={target}", f"--seconds={seconds}",
         f"--shared_memory_bytes={shared_memory_bytes}",
         f"--tune_allocator={str(tune_allocator).lower()}"],
        check=True, capture_output=True, text=True).stdout
    fields = dict(f.split("=", 1) for f in line.split())
    return float(fields["gib_per_s"])


# ---- Report ----

def ratio(a: float, b: float) -> str:
    return f"{a / b:6.2f}x" if b > 0 else "     -"


def missing(redis_server: str) -> str:
    """Why the benchmark cannot run here, or ""."""
    for module, package in (("numpy", "python3-numpy"),
                            ("redis", "python3-redis"),
                            ("tensorpager", "the tensorpager_python target")):
        try:
            __import__(module)
        except ImportError as e:
            return f"{module} missing ({e}): install {package}"
    if not os.access(redis_server, os.X_OK):
        return f"{redis_server} not found (apt-get install redis-server)"
    if not os.access(os.environ["TENSORPAGERD"], os.X_OK):
        return f"{os.environ['TENSORPAGERD']} not built"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build_dir", default=str(REPO / "build"))
    parser.add_argument("--data_dir", default=None,
                        help="tensorpagerd's data dir parent (a real disk); "
                        "default: BUILD_DIR/py-bench")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="measuring time per case")
    parser.add_argument("--processes", default="1,4,8")
    parser.add_argument("--sets", type=int, default=4,
                        help="distinct batches per process")
    parser.add_argument("--redis_server", default="/usr/bin/redis-server")
    parser.add_argument("--tune_allocator", type=int, default=1,
                        help="1: Client(tune_allocator=True) and the same "
                        "malloc settings for the Redis workers and "
                        "tp-batch-bench (as sdk_bench does)")
    parser.add_argument("--rows", default="table,lookup,cxx",
                        help="what to measure: table (tensorpager vs "
                        "Redis), lookup, cxx (Python vs C++ batch get)")
    parser.add_argument("--turns", type=int, default=3,
                        help="runs of each side of the Python vs C++ row")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 0.2 s per case, 1 and 2 processes")
    a = parser.parse_args()
    if a.quick:
        a.seconds, a.processes, a.sets, a.turns = 0.2, "1,2", 1, 1
    processes = [int(p) for p in a.processes.split(",")]
    build = os.path.abspath(a.build_dir)
    os.environ.setdefault("TENSORPAGERD",
                          os.path.join(build, "server", "tensorpagerd"))
    sys.path.insert(0, os.path.join(build, "client_sdk", "python"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(build, "client_sdk", "python"),
         os.environ.get("PYTHONPATH", "")])
    reason = missing(a.redis_server)
    if reason:
        print(f"SKIPPED: {reason}")
        return SKIP
    from tensorpagerd_process import ServerProcess

    data_parent = os.path.abspath(a.data_dir or
                                  os.path.join(build, "py-bench"))
    os.makedirs(data_parent, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="py-bench.", dir=data_parent)
    server = ServerProcess(["--algorithm=lru", "--ram_budget=6GiB"],
                           workdir=workdir)
    redis_server = Redis(a.redis_server, workdir)
    try:
        print(f"py_bench: {os.cpu_count()} CPUs, "
              f"{redis_server.version(a.redis_server)}, "
              f"{a.seconds} s per case", file=sys.stderr)
        report(a, processes, server.target, redis_server.port, build)
    finally:
        redis_server.stop()
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(a, processes: List[int], target: str, redis_port: int,
           build: str) -> None:
    common = {"seconds": a.seconds, "sets": a.sets,
              "tune_allocator": bool(a.tune_allocator)}
    rows = a.rows.split(",")
    if "table" in rows:
        table(common, processes, target, redis_port)
    if "lookup" in rows:
        lookup = run_workers(lookup_worker, 1,
                             dict(common, target=target))[0]
        print(f"lookup of 128 keys, 1 process: "
              f"{lookup['keys_per_s'] / 1e6:.3f} M keys/s (goal >= 1 M)")
    if "cxx" in rows:
        python_vs_cxx(a, common, target, build)


def table(common: Dict, processes: List[int], target: str,
          redis_port: int) -> None:
    print(f"{'op':9} {'batch':14} {'procs':>5} {'shm GiB/s':>10} "
          f"{'tcp GiB/s':>10} {'redis GiB/s':>12} {'shm/redis':>10} "
          f"{'tcp/redis':>10}")
    for case in CASES:
        for n in processes:
            args = dict(common, case=case, target=target)
            shm = run_workers(tensorpager_worker, n,
                              dict(args, shared_memory_bytes=64 * MiB))
            tcp = run_workers(tensorpager_worker, n,
                              dict(args, shared_memory_bytes=0))
            red = run_workers(redis_worker, n, dict(args, port=redis_port))
            for op in ("put", "get", "get_into"):
                s = sum(r[op] for r in shm) / GiB
                t = sum(r[op] for r in tcp) / GiB
                r = sum(r[op] for r in red) / GiB
                print(f"{op:9} {case_name(case):14} {n:5d} {s:10.3f} "
                      f"{t:10.3f} {r:12.3f} {ratio(s, r):>10} "
                      f"{ratio(t, r):>10}", flush=True)
    print("goals: shared memory >= 2x Redis, TCP >= 1x Redis "
          "(get_into is compared with MGET)")


def python_vs_cxx(a, common: Dict, target: str, build: str) -> None:
    """Python's batch_get_into against the C++ SDK's GetBatch, one process
    each, in turns (the median of `a.turns` runs of each), so that load
    from elsewhere on the machine weighs on both alike."""
    bench = os.path.join(build, "tests", "bench", "tp-batch-bench")
    for path, shm_bytes in (("shm", 64 * MiB), ("tcp", 0)):
        py_runs: List[float] = []
        cxx_runs: List[float] = []
        for _ in range(a.turns):
            py_runs.append(run_workers(
                py_get_worker, 1,
                dict(common, target=target,
                     shared_memory_bytes=shm_bytes))[0]["gib_per_s"])
            cxx = cxx_batch_get(bench, target, a.seconds, shm_bytes,
                                bool(a.tune_allocator))
            if cxx is not None:
                cxx_runs.append(cxx)
        py = statistics.median(py_runs)
        cxx_text, vs = "n/a", "-"
        if cxx_runs:
            cxx = statistics.median(cxx_runs)
            cxx_text, vs = f"{cxx:.3f}", ratio(py, cxx)
        print(f"batch get 128 x 64 KiB ({path}), 1 process: Python "
              f"{py:.3f} GiB/s, C++ {cxx_text} GiB/s, Python/C++ {vs} "
              f"(goal >= 0.8x; median of {a.turns})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
