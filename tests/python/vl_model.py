"""A small attention model shaped like Qwen3-VL, for the engine adapters'
model workload (test_model_workload.py) and the restore-versus-recompute
benchmark (tests/bench/restore_bench.py).

Random weights from a fixed seed, torch on the CPU. What it shares with
Qwen3-VL: a vision encoder turns an image into patch embeddings, merged
2x2 into image tokens that take the place of image-pad tokens in the
prompt; grouped-query attention with RMS-normed queries and keys; rotary
positions in three sections (temporal, height, width: M-RoPE), so that an
image token's position is its place in the image grid; SwiGLU MLPs; a
paged KV cache in bf16 or fp32.

Why results are bit-exact: the model runs one page of tokens at a time,
always with the same shapes (a page of rows, padded past the last token,
against the keys up to the page's end, later ones masked). Row i of a
matrix product depends on row i's inputs only, so a token's keys, values
and logits are a function of the tokens up to it, not of how they were
batched: prefill, decode, and prefill after a prefix restored from a
store all compute the same bits. A restored page with one wrong byte
changes the logits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import List, Optional, Sequence, Tuple

import torch

IMAGE_PAD = 1  # token id standing for one image token
PAD = 0  # token id that fills the rows of a page past the last token


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    vocab: int = 256
    hidden: int = 128
    layers: int = 3
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    mlp: int = 256
    page_tokens: int = 16
    patch: int = 8  # image pixels per patch side
    vision: int = 64  # vision encoder width
    rope_theta: float = 1e6
    # Rotary frequency pairs per position section (temporal, height,
    # width); they add up to head_dim / 2.
    mrope: Tuple[int, int, int] = (4, 6, 6)
    kv_dtype: torch.dtype = torch.bfloat16
    seed: int = 0

    def page_shape(self) -> Tuple[int, ...]:
        """One page of the KV cache: K and V, per layer, per token."""
        return (2, self.layers, self.page_tokens, self.kv_heads,
                self.head_dim)

    def page_bytes(self) -> int:
        item = torch.empty(0, dtype=self.kv_dtype).element_size()
        return math.prod(self.page_shape()) * item


class KVCache:
    """The engine-side KV cache: [K/V, layer, token, kv head, dim]."""

    def __init__(self, config: ModelConfig, capacity_tokens: int):
        pages = -(-capacity_tokens // config.page_tokens)
        self.config = config
        self.kv = torch.zeros(
            (2, config.layers, pages * config.page_tokens, config.kv_heads,
             config.head_dim), dtype=config.kv_dtype)

    def page(self, index: int) -> torch.Tensor:
        """Page `index` as a contiguous copy, shaped config.page_shape()."""
        p = self.config.page_tokens
        return self.kv[:, :, index * p:(index + 1) * p].contiguous()

    def set_page(self, index: int, data: torch.Tensor) -> None:
        p = self.config.page_tokens
        self.kv[:, :, index * p:(index + 1) * p] = data.reshape(
            self.config.page_shape())


@dataclasses.dataclass
class Prompt:
    """Token ids (IMAGE_PAD for each image token), the image features that
    replace the pads, and the grid of each image in order."""

    tokens: List[int]
    features: Optional[torch.Tensor]  # [image tokens, hidden], fp32
    grids: List[Tuple[int, int]]


def _weights(gen: torch.Generator, rows: int, cols: int) -> torch.Tensor:
    return torch.randn(rows, cols, generator=gen) / math.sqrt(rows)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    return x * scale * weight


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class VLModel:
    def __init__(self, config: ModelConfig = ModelConfig()):
        c = config
        assert sum(c.mrope) * 2 == c.head_dim, "mrope must cover head_dim"
        assert c.heads % c.kv_heads == 0
        self.config = c
        gen = torch.Generator().manual_seed(c.seed)
        patch_in = 3 * c.patch * c.patch
        self.patch_embed = _weights(gen, patch_in, c.vision)
        self.vision_mlp = _weights(gen, c.vision, c.vision)
        self.merger = _weights(gen, 4 * c.vision, c.hidden)
        self.embed = torch.randn(c.vocab, c.hidden, generator=gen)
        self.layers = []
        for _ in range(c.layers):
            self.layers.append({
                "norm_in": 1 + 0.1 * torch.randn(c.hidden, generator=gen),
                "q": _weights(gen, c.hidden, c.heads * c.head_dim),
                "k": _weights(gen, c.hidden, c.kv_heads * c.head_dim),
                "v": _weights(gen, c.hidden, c.kv_heads * c.head_dim),
                "q_norm": 1 + 0.1 * torch.randn(c.head_dim, generator=gen),
                "k_norm": 1 + 0.1 * torch.randn(c.head_dim, generator=gen),
                "o": _weights(gen, c.heads * c.head_dim, c.hidden),
                "norm_mlp": 1 + 0.1 * torch.randn(c.hidden, generator=gen),
                "gate": _weights(gen, c.hidden, c.mlp),
                "up": _weights(gen, c.hidden, c.mlp),
                "down": _weights(gen, c.mlp, c.hidden),
            })
        self.norm_out = 1 + 0.1 * torch.randn(c.hidden, generator=gen)
        self.lm_head = _weights(gen, c.hidden, c.vocab)
        pairs = torch.arange(0, c.head_dim, 2, dtype=torch.float64)
        self.inv_freq = (1.0 / c.rope_theta ** (pairs / c.head_dim)).float()
        # Which position section (0 t, 1 h, 2 w) drives each frequency.
        self.section = torch.cat([torch.full((n,), s, dtype=torch.long)
                                  for s, n in enumerate(c.mrope)])

    # ---- Vision ----

    def encode_image(self, image: torch.Tensor
                     ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """image [3, H, W] -> (features [tokens, hidden], (rows, cols)):
        patches, a vision MLP, then 2x2 patches merged into one token."""
        p = self.config.patch
        _, height, width = image.shape
        if height % (2 * p) or width % (2 * p):
            raise ValueError(f"image sides must be multiples of {2 * p}")
        gh, gw = height // p, width // p
        patches = image.reshape(3, gh, p, gw, p).permute(1, 3, 0, 2, 4)
        x = patches.reshape(gh * gw, 3 * p * p) @ self.patch_embed
        x = x + torch.nn.functional.gelu(x) @ self.vision_mlp
        x = x.reshape(gh // 2, 2, gw // 2, 2, -1).permute(0, 2, 1, 3, 4)
        merged = x.reshape((gh // 2) * (gw // 2), -1) @ self.merger
        return merged.contiguous(), (gh // 2, gw // 2)

    # ---- Text ----

    def positions(self, prompt: Prompt, length: int) -> torch.Tensor:
        """M-RoPE position ids [3, length]: a text token steps all three
        by one; an image's tokens share one temporal id and take height
        and width ids from their place in the grid; text after an image
        goes on after the largest id the image used. Rows past the prompt
        (padding) go on as text."""
        ids = torch.zeros(3, length, dtype=torch.long)
        next_id, i, image = 0, 0, 0
        tokens = prompt.tokens
        while i < length:
            if i < len(tokens) and tokens[i] == IMAGE_PAD:
                rows, cols = prompt.grids[image]
                image += 1
                n = rows * cols
                grid = torch.arange(n)
                ids[0, i:i + n] = next_id
                ids[1, i:i + n] = next_id + grid // cols
                ids[2, i:i + n] = next_id + grid % cols
                next_id += max(rows, cols)
                i += n
            else:
                ids[:, i] = next_id
                next_id += 1
                i += 1
        return ids

    def embeddings(self, prompt: Prompt, length: int) -> torch.Tensor:
        """[length, hidden]: token embeddings, image features in place of
        the pads (in order), PAD's embedding past the prompt."""
        tokens = list(prompt.tokens) + [PAD] * (length - len(prompt.tokens))
        x = self.embed[torch.tensor(tokens[:length], dtype=torch.long)]
        pads = torch.tensor([t == IMAGE_PAD for t in tokens[:length]])
        if bool(pads.any()):
            assert prompt.features is not None, "image tokens, no features"
            x[pads] = prompt.features[:int(pads.sum())]
        return x

    def extend(self, prompt: Prompt, cache: KVCache, start: int,
               chunk_pages: int = 1) -> torch.Tensor:
        """Runs tokens [start, len(prompt.tokens)) with cache holding the
        keys and values of [0, start); returns their logits [n, vocab].
        Work starts at the page that holds `start` (rows before it are
        recomputed to the same bits). `chunk_pages` > 1 runs several pages
        per step, faster, as an engine's chunked prefill does; results
        are then bit-exact only against the same chunking."""
        c = self.config
        end = len(prompt.tokens)
        first_page = start // c.page_tokens
        padded = -(-end // c.page_tokens) * c.page_tokens
        if padded > cache.kv.shape[2]:
            raise ValueError(f"{end} tokens do not fit the cache")
        x_all = self.embeddings(prompt, padded)
        pos_all = self.positions(prompt, padded)
        out = []
        for page in range(first_page, padded // c.page_tokens, chunk_pages):
            a = page * c.page_tokens
            b = min(a + chunk_pages * c.page_tokens, padded)
            h = x_all[a:b]
            cos, sin = self._rope(pos_all[:, a:b])
            for index, layer in enumerate(self.layers):
                h = self._layer(index, layer, h, cos, sin, cache, a, b)
            logits = _rms_norm(h, self.norm_out) @ self.lm_head
            out.append(logits)
        return torch.cat(out)[start - first_page * c.page_tokens:
                              end - first_page * c.page_tokens]

    def _rope(self, pos: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        chosen = pos[self.section].T.float()  # [tokens, head_dim / 2]
        angles = chosen * self.inv_freq
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos()[:, None, :], angles.sin()[:, None, :]

    def _layer(self, index: int, w: dict, h: torch.Tensor,
               cos: torch.Tensor, sin: torch.Tensor, cache: KVCache,
               a: int, b: int) -> torch.Tensor:
        c = self.config
        rows = b - a
        x = _rms_norm(h, w["norm_in"])
        q = _rms_norm((x @ w["q"]).view(rows, c.heads, c.head_dim),
                      w["q_norm"])
        k = _rms_norm((x @ w["k"]).view(rows, c.kv_heads, c.head_dim),
                      w["k_norm"])
        v = (x @ w["v"]).view(rows, c.kv_heads, c.head_dim)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        cache.kv[0, index, a:b] = k.to(c.kv_dtype)
        cache.kv[1, index, a:b] = v.to(c.kv_dtype)
        group = c.heads // c.kv_heads
        keys = cache.kv[0, index, :b].float().repeat_interleave(group, 1)
        values = cache.kv[1, index, :b].float().repeat_interleave(group, 1)
        scores = (q.transpose(0, 1) @ keys.permute(1, 2, 0)) / math.sqrt(
            c.head_dim)  # [heads, rows, keys]
        later = torch.arange(b)[None, :] > torch.arange(a, b)[:, None]
        probs = torch.softmax(scores.masked_fill(later, float("-inf")), -1)
        attended = (probs @ values.transpose(0, 1)).transpose(0, 1)
        h = h + attended.reshape(rows, -1) @ w["o"]
        x = _rms_norm(h, w["norm_mlp"])
        gated = torch.nn.functional.silu(x @ w["gate"]) * (x @ w["up"])
        return h + gated @ w["down"]

    # ---- Generation ----

    def decode(self, prompt: Prompt, cache: KVCache, steps: int
               ) -> List[torch.Tensor]:
        """Greedy decoding: appends `steps` tokens to prompt.tokens;
        returns the logits each token was chosen from."""
        chosen = []
        logits = self.extend(prompt, cache, len(prompt.tokens) - 1)[-1]
        for _ in range(steps):
            chosen.append(logits)
            # Never PAD or IMAGE_PAD: they are not text.
            prompt.tokens.append(int(torch.argmax(logits[2:])) + 2)
            logits = self.extend(prompt, cache, len(prompt.tokens) - 1)[-1]
        return chosen


def page_hashes(tokens: Sequence[int], image_digest: bytes,
                page_tokens: int) -> List[bytes]:
    """Chained hashes of the full pages of `tokens`, as engines key prefix
    pages: each covers its page's ids and every page before it; a page
    with image tokens also covers the image's content."""
    hashes: List[bytes] = []
    parent = b""
    for start in range(0, len(tokens) - page_tokens + 1, page_tokens):
        page = tokens[start:start + page_tokens]
        h = hashlib.sha256(parent)
        h.update(torch.tensor(page, dtype=torch.int64).numpy().tobytes())
        if IMAGE_PAD in page:
            h.update(image_digest)
        parent = h.digest()
        hashes.append(parent)
    return hashes


def image_digest(image: torch.Tensor) -> bytes:
    return hashlib.sha256(image.contiguous().numpy().tobytes()).digest()


def first_turn(model: VLModel, image: torch.Tensor, seed: int,
               text_before: int = 10, text_after: int = 30
               ) -> Prompt:
    """A user turn: some text, the image, more text (ids from `seed`)."""
    gen = torch.Generator().manual_seed(seed)
    features, grid = model.encode_image(image)
    vocab = model.config.vocab

    def text(n: int) -> List[int]:
        return torch.randint(2, vocab, (n,), generator=gen).tolist()
    tokens = (text(text_before) + [IMAGE_PAD] * features.shape[0] +
              text(text_after))
    return Prompt(tokens=tokens, features=features, grids=[grid])


def follow_up(prompt: Prompt, vocab: int, seed: int, n: int) -> Prompt:
    """The conversation so far plus a second user turn of n text tokens."""
    gen = torch.Generator().manual_seed(seed)
    more = torch.randint(2, vocab, (n,), generator=gen).tolist()
    return Prompt(tokens=list(prompt.tokens) + more,
                  features=prompt.features, grids=list(prompt.grids))


def random_image(seed: int, height: int = 96, width: int = 64
                 ) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(3, height, width, generator=gen)
