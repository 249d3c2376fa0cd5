"""vLLM's side of the secondary-tier interface, faked for the adapter
tests (vLLM commit 017e9f4448b700e85ee16023287b025693c72b9e,
vllm/v1/kv_offload/tiering/):

* ``make_spec``: the fields of an OffloadingSpec that the tier reads;
* ``make_primary``: the CPU primary tier's buffer, one slot per row;
* ``create_tier``: what ``SecondaryTierFactory.create_secondary_tier``
  does for an out-of-tree tier;
* ``new_keys``, ``job``: offload keys and TransferJobs as
  TieringOffloadingManager makes them; ``finish``, ``settle``: its polling
  of ``get_finished_jobs()`` and ``lookup()``.

The tests import numpy through ``pytest.importorskip`` before this module.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import time
import types
from typing import Any, Dict, Iterable, List

import numpy as np
import pytest

from tensorpager.integrations.vllm_compat import (
    JobResult, LookupResult, ReqContext, SecondaryTierManager, TransferJob,
    make_offload_key)

# The defaults: the primary tier's slot count and slot size.
SLOTS = 16
SLOT_BYTES = 3000  # not a power of two on purpose
TOKENS_PER_BLOCK = 16
_jobs = itertools.count(1)
_tags = itertools.count()


def make_spec(model: str = "m", slot_bytes: int = SLOT_BYTES,
              tokens_per_block: int = TOKENS_PER_BLOCK) -> Any:
    """The fields of vLLM's OffloadingSpec that the tier reads; one hash
    per block, slot_bytes in worker_kv_bytes_per_block."""
    parallel = types.SimpleNamespace(
        rank=0, world_size=1, tp_size=1, pp_size=1, pcp_size=1, dcp_size=1,
        is_parallelism_agnostic=False)
    config = types.SimpleNamespace(
        model=types.SimpleNamespace(name=model, dtype="bfloat16"),
        cache=types.SimpleNamespace(tokens_per_hash=tokens_per_block,
                                    blocks_per_chunk=1),
        parallel=parallel, worker_kv_bytes_per_block=slot_bytes)
    return types.SimpleNamespace(config=config,
                                 tokens_per_block=(tokens_per_block,),
                                 replicated_layout=False)


def make_primary(seed: int, torch_backed: bool = False, slots: int = SLOTS,
                 slot_bytes: int = SLOT_BYTES) -> Any:
    """The primary tier's CPU buffer, slots rows of slot_bytes random
    bytes: a 2-D memoryview, or a numpy array over a torch tensor's
    memory."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (slots, slot_bytes), dtype=np.uint8)
    if torch_backed:
        torch = pytest.importorskip("torch")
        return torch.from_numpy(data).numpy()
    return memoryview(bytearray(data.tobytes())).cast(
        "B", (slots, slot_bytes))


def create_tier(target: str, primary: Any, spec: Any = None,
                **keys: Any) -> Any:
    """What SecondaryTierFactory.create_secondary_tier does with
    ``{"type": ..., "module_path": ..., **keys}``."""
    tier_config: Dict[str, Any] = {
        "type": "TensorPagerSecondaryTier",
        "module_path": "tensorpager.integrations.vllm",
        "target": target, "timeout_s": 2.0, **keys}
    module = importlib.import_module(tier_config["module_path"])
    tier_cls = getattr(module, tier_config["type"])
    assert issubclass(tier_cls, SecondaryTierManager)
    config = tier_config.copy()
    tier_type = config.pop("type")
    config.pop("module_path", None)
    return tier_cls(offloading_spec=spec or make_spec(),
                    primary_kv_view=memoryview(primary),
                    tier_type=tier_type, **config)


def new_keys(n: int, group: int = 0) -> List[bytes]:
    """n offload keys no other test uses, of this KV cache group."""
    tag = next(_tags)
    return [make_offload_key(hashlib.sha256(f"{tag}/{i}".encode()).digest(),
                             group) for i in range(n)]


def job(keys: List[bytes], blocks: Iterable[int], promotion: bool,
        req: str = "r") -> Any:
    """A TransferJob: a load (promotion) or a store of these primary
    slots."""
    return TransferJob(job_id=next(_jobs), keys=keys,
                       block_ids=np.array(list(blocks), dtype=np.int64),
                       is_promotion=promotion,
                       req_context=ReqContext(req_id=req))


def finish(tier: Any, jobs: List[Any], seconds: float = 20) -> Dict[int, Any]:
    """Polls get_finished_jobs until every job is reported; each exactly
    once, nothing else."""
    want = {j.job_id for j in jobs}
    got: Dict[int, Any] = {}
    deadline = time.monotonic() + seconds
    while set(got) != want:
        assert time.monotonic() < deadline, f"unfinished: {want - set(got)}"
        for result in tier.get_finished_jobs():
            assert isinstance(result, JobResult)
            assert result.job_id in want, result
            assert result.job_id not in got, f"reported twice: {result}"
            got[result.job_id] = result
        time.sleep(0.01)
    time.sleep(0.1)
    assert list(tier.get_finished_jobs()) == []
    return got


def settle(tier: Any, key: bytes, req: str = "r",
           seconds: float = 20) -> List[Any]:
    """lookup() answers until it stops saying RETRY."""
    answers = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.monotonic()
        answer = tier.lookup(key, ReqContext(req_id=req))
        assert time.monotonic() - start < 0.1, "lookup blocked"
        answers.append(answer)
        if answer is not LookupResult.RETRY:
            return answers
        time.sleep(0.01)
    raise AssertionError(f"still RETRY after {seconds}s")
