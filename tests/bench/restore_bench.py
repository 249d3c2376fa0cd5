#!/usr/bin/python3
"""Restoring a conversation's KV prefix from tensorpager against
recomputing it, for the Qwen3-VL-shaped model of the adapter tests
(tests/python/vl_model.py), all figures from one run.

    /usr/bin/python3 tests/bench/restore_bench.py [--build_dir=build]
        [--data_dir=DIR] [--contexts=2048,8192] [--repeats=5] [--quick]
        [--model=test|wide]

For each context length: a prompt of text and a 256x256 image (256 image
tokens) filled up with text. Recompute: the vision encoder and a prefill
in 512-token chunks (the engine's work that a restored prefix saves).
Then the prefix's KV pages (16 tokens each) are stored and restored into
an empty KV cache, the median of --repeats restores:
  * through each adapter (SGLang batch_set_v1/batch_get_v1 in calls of 128
    pages, vLLM store/load jobs, LMCache batched put/get in 2-page chunks)
    from tensorpagerd's RAM, over shared memory; SGLang's also over TCP;
  * through the SGLang adapter after every page was swapped to tensorpager's
    NVMe tier (O_DIRECT: the page cache does not help);
  * SGLang's own file backend approach (HiCacheFile: one file per page in a
    directory, written to a temp file and renamed, read with readinto),
    from the page cache and cold (each file's cached pages dropped with
    posix_fadvise before every restore).
Restored pages are checked byte for byte once. Prints seconds, GiB/s and
ratios (recompute / restore, file / tensorpager); timings are reported,
never asserted. --quick: a smoke run of one short context. Exit code 77
(ctest: skipped) when torch, the package or the server is missing.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))

SKIP = 77
# "test": the model of test_model_workload.py (12 KiB pages); "wide":
# the same shape with 4x the KV per token (64 KiB pages), slower to
# recompute.
MODELS: Dict[str, Dict[str, object]] = {
    "test": {},
    "wide": {"hidden": 256, "layers": 4, "heads": 8, "kv_heads": 4,
             "head_dim": 64, "mlp": 512, "mrope": (8, 12, 12)},
}
MiB = 1 << 20
GiB = 1 << 30


def missing(build_dir: pathlib.Path) -> str:
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        return f"{e.name} missing: apt-get install python3-torch python3-numpy"
    sys.path.insert(0, str(build_dir / "client_sdk" / "python"))
    try:
        import tensorpager._native  # noqa: F401
    except ImportError as e:
        return (f"the tensorpager package is not built ({e}): build the "
                "tensorpager_python target")
    server = build_dir / "server" / "tensorpagerd"
    if not os.access(server, os.X_OK):
        return f"{server} not built"
    os.environ["TENSORPAGERD"] = str(server)
    return ""


class FileStore:
    """SGLang's HiCacheFile approach: a file per page, named by its key."""

    name = "file (HiCacheFile approach)"
    pages_per_key = 1

    def __init__(self, config, directory: pathlib.Path, pages: int):
        import torch
        self.config = config
        self.pool = torch.empty((pages,) + config.page_shape(),
                                dtype=config.kv_dtype)
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.buffer = torch.empty(config.page_bytes(), dtype=torch.uint8)
        self.view = memoryview(self.buffer.numpy())

    def _path(self, key: bytes) -> pathlib.Path:
        return self.dir / f"{key.hex()}.bin"

    def store(self, hashes, pages) -> None:
        import torch
        for key, page in zip(hashes, pages):
            path = self._path(key)
            tmp = path.with_suffix(f".tmp.{os.getpid()}")
            page.contiguous().view(torch.uint8).numpy().tofile(tmp)
            os.replace(tmp, path)

    def hits(self, hashes) -> int:
        n = 0
        while n < len(hashes) and self._path(hashes[n]).exists():
            n += 1
        return n

    def load(self, hashes) -> int:
        """What SGLang's controller does with a backend without the v1
        calls: batch_exists, then get() of each page into a flat page
        buffer, then set_from_flat_data_page into the host pool."""
        n = self.hits(hashes)
        shape = self.config.page_shape()
        for i in range(n):
            with open(self._path(hashes[i]), "rb", buffering=0) as f:
                if f.readinto(self.view) != len(self.view):
                    return i
            self.pool[i].copy_(self.buffer.view(self.config.kv_dtype).view(
                shape))
        return n

    def copy_out(self, cache, pages: int) -> None:
        for i in range(pages):
            cache.set_page(i, self.pool[i])

    def restore(self, hashes, cache) -> int:
        n = self.load(hashes)
        self.copy_out(cache, n)
        return n

    def drop_cache(self, hashes) -> None:
        """Makes the next restore read the disk: the files' cached pages
        are written back and dropped."""
        os.sync()
        for key in hashes:
            fd = os.open(self._path(key), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def prompt_of(model, tokens: int, seed: int):
    import torch
    from vl_model import IMAGE_PAD, Prompt, random_image
    image = random_image(seed, 256, 256)
    features, grid = model.encode_image(image)
    gen = torch.Generator().manual_seed(seed)
    text = tokens - 16 - features.shape[0]
    ids = (torch.randint(2, model.config.vocab, (16,), generator=gen).tolist()
           + [IMAGE_PAD] * features.shape[0] +
           torch.randint(2, model.config.vocab, (text,),
                         generator=gen).tolist())
    return image, Prompt(ids, features, [grid])


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_context(model, server, tokens: int, repeats: int,
                data_dir: pathlib.Path, seed: int) -> None:
    import tensorpager
    import torch
    from model_stores import LMCacheStore, SGLangStore, VLLMStore
    from vl_model import KVCache, image_digest, page_hashes

    config = model.config
    image, prompt = prompt_of(model, tokens, seed)
    cache = KVCache(config, tokens)
    recompute = timed(lambda: (model.encode_image(image),
                               model.extend(prompt, cache, 0, 32)))
    hashes = page_hashes(prompt.tokens, image_digest(image),
                         config.page_tokens)
    pages = [cache.page(i) for i in range(len(hashes))]
    kv_bytes = len(pages) * config.page_bytes()
    print(f"\ncontext {tokens} tokens: {len(pages)} pages, "
          f"{kv_bytes / MiB:.1f} MiB of KV; recompute (vision encoder + "
          f"prefill in 512-token chunks) {recompute:.3f} s")
    print(f"  {'store':<44} {'write s':>8} {'restore s':>10} "
          f"{'GiB/s':>7} {'recompute/restore':>18}")

    n = len(pages)
    target = server.target
    tag = f"{tokens}-{seed}"
    operator = tensorpager.Client(target, namespace=f"sg-disk-{tag}")
    cases: List[Tuple[str, Callable[[], object],
                      Optional[Callable[[], None]]]] = [
        ("tensorpager SGLang adapter, shm, RAM",
         lambda: SGLangStore(config, f"sg-shm-{tag}", target,
                             pool_pages=2 * n), None),
        ("tensorpager SGLang adapter, TCP, RAM",
         lambda: SGLangStore(config, f"sg-tcp-{tag}", target,
                             shared_memory=False, pool_pages=2 * n), None),
        ("tensorpager vLLM adapter, shm, RAM",
         lambda: VLLMStore(config, f"vl-shm-{tag}", target, slots=2 * n),
         None),
        ("tensorpager LMCache adapter, shm, RAM",
         lambda: LMCacheStore(config, f"lm-shm-{tag}", target), None),
        ("tensorpager SGLang adapter, shm, NVMe tier",
         lambda: SGLangStore(config, f"sg-disk-{tag}", target,
                             pool_pages=2 * n),
         lambda: operator.swap_out(
             [b["id"] for b in operator.list_blocks()])),
        ("file (HiCacheFile approach), page cache",
         lambda: FileStore(config, data_dir / f"files-warm-{tag}", n), None),
    ]
    cold_files = FileStore(config, data_dir / f"files-cold-{tag}", n)
    cases.append(("file (HiCacheFile approach), cold",
                  lambda: cold_files,
                  lambda: cold_files.drop_cache(hashes)))
    results: Dict[str, float] = {}
    restored = KVCache(config, tokens)
    for name, make, before in cases:
        store = make()
        try:
            # Connections, arenas and directories exist before the clock.
            warm = page_hashes([seed] * config.page_tokens * 2,
                               name.encode(), config.page_tokens)
            store.store(warm, pages[:2])
            write = timed(lambda: store.store(hashes, pages))
            # Whole chunks only for LMCache: its pages per chunk divide n.
            want = n // store.pages_per_key * store.pages_per_key
            times = []
            for _ in range(repeats):
                if before is not None:
                    before()
                restored.kv.zero_()
                got = []
                # Into the engine's buffers: the copy from there into the
                # KV cache is the engine's, the same for every store.
                times.append(timed(lambda: got.append(store.load(hashes))))
                store.copy_out(restored, got[0])
                if got[0] != want:
                    raise RuntimeError(f"{name}: restored {got[0]} of "
                                       f"{want} pages")
            for i in range(want):
                if not torch.equal(restored.page(i), pages[i]):
                    raise RuntimeError(f"{name}: page {i} differs")
        finally:
            store.close()
        restore = statistics.median(times)
        results[name] = restore
        print(f"  {name:<44} {write:8.3f} {restore:10.4f} "
              f"{want * config.page_bytes() / restore / GiB:7.2f} "
              f"{recompute / restore:17.0f}x")
    operator.close()
    ram = results["tensorpager SGLang adapter, shm, RAM"]
    disk = results["tensorpager SGLang adapter, shm, NVMe tier"]
    print(f"  file / tensorpager restore time: page cache vs RAM "
          f"{results['file (HiCacheFile approach), page cache'] / ram:.2f}x,"
          f" cold vs NVMe tier "
          f"{results['file (HiCacheFile approach), cold'] / disk:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build_dir", default=str(REPO / "build"))
    parser.add_argument("--data_dir", default="")
    parser.add_argument("--contexts", default="2048,8192")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", choices=sorted(MODELS), default="test")
    args = parser.parse_args()
    build_dir = pathlib.Path(args.build_dir).resolve()
    reason = missing(build_dir)
    if reason:
        print(f"SKIPPED: {reason}")
        return SKIP
    from tensorpagerd_process import ServerProcess
    from vl_model import ModelConfig, VLModel

    contexts = [512] if args.quick else [
        int(c) for c in args.contexts.split(",")]
    repeats = 1 if args.quick else args.repeats
    data_dir = pathlib.Path(args.data_dir or build_dir / "restore-bench")
    data_dir.mkdir(parents=True, exist_ok=True)
    model = VLModel(ModelConfig(**MODELS[args.model]))
    c = model.config
    print(f"restore_bench: model hidden {c.hidden}, {c.layers} layers, "
          f"{c.heads} query / {c.kv_heads} KV heads of {c.head_dim}, "
          f"{str(c.kv_dtype).replace('torch.', '')} KV; page "
          f"{c.page_tokens} tokens = {c.page_bytes() // 1024} KiB; torch "
          "on the CPU")
    workdir = data_dir / "server"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    server = ServerProcess(["--algorithm=lru", "--ram_budget=1GiB"],
                           workdir=str(workdir))
    try:
        for i, tokens in enumerate(contexts):
            run_context(model, server, tokens, repeats, data_dir, i + 1)
    finally:
        code = server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
