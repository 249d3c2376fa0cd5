"""A two-turn conversation with a Qwen3-VL-shaped model (vl_model.py)
whose KV pages go through each engine adapter (model_stores.py):

Turn 1 prefills a prompt of text and an image, decodes, and stores its
full KV pages through the adapter and the image features as an
IMAGE_FEATURES block. The server swaps every block to disk and is
restarted. Turn 2 (the conversation plus a new user message) asks the
adapter for the shared prefix, loads those pages into the engine's
buffers, prefills the rest and decodes. Its logits must equal a full
recomputation's bit for bit.

Over shared memory and TCP, with the disk copies compressed or not, and
with a page damaged on disk on purpose: the adapter then reports the
shorter prefix and the model recomputes the rest, still bit-exact.
"""

from __future__ import annotations

import itertools
import os
from typing import Callable, Iterator, List, Optional

import pytest

torch = pytest.importorskip("torch")

import tensorpager  # noqa: E402
from conftest import close_server, start_server, wait_until  # noqa: E402
from model_stores import (LMCacheStore, PageStore, SGLangStore,  # noqa: E402
                          VLLMStore)
from tensorpagerd_process import ServerProcess  # noqa: E402
from vl_model import (KVCache, ModelConfig, Prompt, VLModel,  # noqa: E402
                      first_turn, follow_up, image_digest, page_hashes,
                      random_image)

TURN1_DECODE = 20  # turn 1 ends at 84 tokens: 5 full pages of 16
TURN2_TEXT = 40
TURN2_DECODE = 8
CAPACITY = 256  # tokens

_serial = itertools.count()
_models = {}


def model_for(kv_dtype: torch.dtype) -> VLModel:
    if kv_dtype not in _models:
        _models[kv_dtype] = VLModel(ModelConfig(kv_dtype=kv_dtype))
    return _models[kv_dtype]


def make_store(kind: str, config: ModelConfig, namespace: str, target: str,
               shared_memory: bool) -> PageStore:
    if kind == "sglang":
        return SGLangStore(config, namespace, target, "page_first",
                           shared_memory)
    if kind == "sglang-layer-first":
        return SGLangStore(config, namespace, target, "layer_first",
                           shared_memory)
    if kind == "vllm":
        return VLLMStore(config, namespace, target, shared_memory)
    assert kind == "lmcache"
    return LMCacheStore(config, namespace, target, shared_memory)


@pytest.fixture(scope="module", params=["plain", "lz4"])
def compressed_server(request) -> Iterator[ServerProcess]:
    """A server per codec of the disk tier; min ratio 1.0 so that every
    page that shrinks at all is kept compressed."""
    flags = [] if request.param == "plain" else [
        "--compression=lz4", "--compression_min_ratio=1.0"]
    server = start_server(flags)
    server.codec = request.param  # type: ignore[attr-defined]
    yield server
    close_server(server)


def damage(data_file: str, needle: bytes) -> Callable[[], None]:
    """Flips a byte in the middle of the one copy of `needle`."""
    def run() -> None:
        with open(data_file, "r+b") as f:
            data = f.read()
            at = data.find(needle)
            assert at >= 0, "the page's bytes are not in the data file"
            assert data.find(needle, at + 1) < 0, "the page is there twice"
            f.seek(at + len(needle) // 2)
            f.write(bytes([data[at + len(needle) // 2] ^ 0x5A]))
    return run


def swap_everything_out(client: tensorpager.Client) -> List[dict]:
    ids = [b["id"] for b in client.list_blocks()]
    client.swap_out(ids)
    blocks = list(client.list_blocks())
    assert [b["id"] for b in blocks] == ids
    assert {b["tier"] for b in blocks} == {"TIER_DISK"}, blocks
    return blocks


def conversation(server: ServerProcess, kind: str, path: str,
                 kv_dtype: torch.dtype = torch.bfloat16,
                 lost_page: Optional[int] = None) -> None:
    model = model_for(kv_dtype)
    config = model.config
    p = config.page_tokens
    seed = next(_serial)
    namespace = f"conv-{kind}-{path}-{seed}"
    shm = path == "shm"
    store = make_store(kind, config, namespace, server.target, shm)
    engine = tensorpager.Client(server.target, namespace=namespace,
                                shared_memory_bytes=(64 << 20) if shm else 0)
    try:
        # ---- Turn 1 ----
        image = random_image(seed)
        digest = image_digest(image)
        prompt = first_turn(model, image, seed)
        cache = KVCache(config, CAPACITY)
        model.extend(prompt, cache, 0)
        model.decode(prompt, cache, TURN1_DECODE)
        hashes = page_hashes(prompt.tokens, digest, p)
        assert len(hashes) == 5
        pages = [cache.page(i) for i in range(len(hashes))]
        store.store(hashes, pages)
        image_key = f"image/{digest.hex()}"
        engine.put(image_key, prompt.features, region_type="image_features")

        blocks = swap_everything_out(engine)
        assert len(blocks) > len(hashes) // store.pages_per_key
        if getattr(server, "codec", "plain") == "lz4":
            codecs = {b["codec"] for b in blocks}
            assert any(c.startswith("lz4") for c in codecs), codecs
        if lost_page is None:
            server.restart()
        else:
            server.restart(while_stopped=damage(
                os.path.join(server.data_dir, "blocks.dat"),
                store.probe(pages[lost_page])))

        # ---- Turn 2 ----
        # The engine's clients reconnect on their own; the image features
        # come back from the store instead of the vision encoder.
        assert wait_until(lambda: _readable(engine, image_key), 30)
        features = engine.get(image_key)
        assert features.dtype == torch.float32
        assert torch.equal(features, prompt.features)
        turn2 = follow_up(Prompt(prompt.tokens, features, prompt.grids),
                          config.vocab, seed + 1000, TURN2_TEXT)
        hashes2 = page_hashes(turn2.tokens, digest, p)
        assert hashes2[:len(hashes)] == hashes

        # LMCache keeps whole chunks only.
        stored = len(hashes) // store.pages_per_key * store.pages_per_key
        assert wait_until(lambda: store.hits(hashes2) == stored, 30)
        restored = KVCache(config, CAPACITY)
        loaded = store.restore(hashes2, restored)
        expected = stored if lost_page is None else lost_page
        assert loaded == expected
        if lost_page is not None:
            # The damaged page is now known lost: the prefix is shorter.
            assert store.hits(hashes2) == lost_page
        for i in range(loaded):
            assert torch.equal(restored.page(i), pages[i]), i

        # A full recomputation: no cache, the features from the encoder.
        reference = Prompt(list(turn2.tokens), model.encode_image(image)[0],
                           list(turn2.grids))
        got = model.extend(turn2, restored, loaded * p)
        got_decoded = model.decode(turn2, restored, TURN2_DECODE)
        fresh = KVCache(config, CAPACITY)
        want = model.extend(reference, fresh, 0)
        want_decoded = model.decode(reference, fresh, TURN2_DECODE)
        assert torch.equal(got, want[loaded * p:])
        assert reference.tokens == turn2.tokens
        assert len(got_decoded) == TURN2_DECODE
        for a, b in zip(got_decoded, want_decoded):
            assert torch.equal(a, b)
    finally:
        store.close()
        engine.close()


def _readable(client: tensorpager.Client, key: str) -> bool:
    try:
        return client.exists(key)
    except tensorpager.Error:
        return False


@pytest.mark.parametrize("path", ["shm", "tcp"])
@pytest.mark.parametrize("kind", ["sglang", "vllm", "lmcache"])
def test_second_turn_restored_from_disk_is_bit_exact(
        compressed_server: ServerProcess, kind: str, path: str) -> None:
    conversation(compressed_server, kind, path)


@pytest.mark.parametrize("path", ["shm", "tcp"])
@pytest.mark.parametrize("kind", ["sglang-layer-first", "vllm", "lmcache"])
def test_damaged_page_gives_a_shorter_prefix_still_bit_exact(
        fresh_server: ServerProcess, kind: str, path: str) -> None:
    conversation(fresh_server, kind, path, lost_page=2)


def test_fp32_kv_cache_is_bit_exact(server: ServerProcess) -> None:
    conversation(server, "sglang", "shm", kv_dtype=torch.float32)


def test_the_check_fails_on_a_wrong_byte() -> None:
    """The comparison the tests rely on sees one wrong bit in a page."""
    model = model_for(torch.bfloat16)
    config = model.config
    prompt = first_turn(model, random_image(7), 7)
    cache = KVCache(config, CAPACITY)
    model.extend(prompt, cache, 0)
    turn2 = follow_up(prompt, config.vocab, 8, TURN2_TEXT)
    want = model.extend(turn2, KVCache(config, CAPACITY), 0)
    pages = len(prompt.tokens) // config.page_tokens
    restored = KVCache(config, CAPACITY)
    for i in range(pages):
        restored.set_page(i, cache.page(i))
    raw = restored.kv.view(torch.int16)
    raw[1, 1, 17, 0, 5] ^= 1  # the lowest mantissa bit of one value
    got = model.extend(turn2, restored, pages * config.page_tokens)
    assert not torch.equal(got, want[pages * config.page_tokens:])
