"""Case 6: small-transformer training step (nanoGPT-like, 2 blocks, causal attention).

d_model 128, 4 heads, sequence 64, batch 16, vocabulary 65 (character level), MLP 4x
with GELU, pre-LayerNorm, learned position embedding, untied head, no dropout.
Attention is written out by hand (``q @ k^T``, additive causal mask, ``softmax``,
``@ v``) so that torch and tinytorch run the same ops; SGD(lr=0.01).
torch-API features used: ``nn.Module``/``nn.ModuleList``, ``nn.Embedding``,
``nn.LayerNorm``, ``nn.Linear``, ``Tensor.split/reshape/transpose``, ``F.softmax``,
``F.gelu``, ``F.cross_entropy``, ``optim.SGD``.  No numpy reference (N/A).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from bench.cases._common import Bench, Case, data_rng, load_params, torch_like, train_step

NAME = "transformer"
TITLE = "2-block GPT d128 h4 T64 B16 V65, train step (SGD)"
SIZES: tuple[str, ...] = ("d128",)
QUICK_SIZES: tuple[str, ...] = ("d32",)
ENGINES: tuple[str, ...] = ("torch", "tinytorch")
UNIT: tuple[str, float] = ("ms", 1e3)
LR = 0.01


@dataclass(frozen=True)
class GPTConfig:
    """Model and batch dimensions."""

    d_model: int = 128
    n_head: int = 4
    n_layer: int = 2
    seq: int = 64
    batch: int = 16
    vocab: int = 65


CONFIGS: dict[str, GPTConfig] = {
    "d128": GPTConfig(),
    "d32": GPTConfig(d_model=32, n_head=2, seq=16, batch=4),
}


def make_model(tt: ModuleType, cfg: GPTConfig) -> object:
    """Build the GPT with ``tt.nn`` (classes are created per engine)."""
    nn = tt.nn
    F = nn.functional
    d, nh = cfg.d_model, cfg.n_head
    hd = d // nh

    class Block(nn.Module):
        """Pre-LN transformer block."""

        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.fc = nn.Linear(d, 4 * d)
            self.fc2 = nn.Linear(4 * d, d)

        def forward(self, x: object, mask: object) -> object:
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q = q.reshape(b, t, nh, hd).transpose(1, 2)
            k = k.reshape(b, t, nh, hd).transpose(1, 2)
            v = v.reshape(b, t, nh, hd).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd)) + mask
            att = F.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).reshape(b, t, d)
            x = x + self.proj(y)
            return x + self.fc2(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        """Embeddings, blocks, final LayerNorm, head."""

        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(cfg.vocab, d)
            self.pos = nn.Embedding(cfg.seq, d)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.n_layer)])
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, cfg.vocab)

        def forward(self, idx: object, pos: object, mask: object) -> object:
            x = self.tok(idx) + self.pos(pos)
            for block in self.blocks:
                x = block(x, mask)
            return self.head(self.ln_f(x))

    return GPT()


def make_data(cfg: GPTConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Token ids, next-token targets, positions and the additive causal mask."""
    rng = data_rng()
    tokens = rng.integers(0, cfg.vocab, (cfg.batch, cfg.seq + 1)).astype(np.int64)
    pos = np.arange(cfg.seq, dtype=np.int64)
    mask = np.triu(np.full((cfg.seq, cfg.seq), -1e9, np.float32), 1)
    return tokens[:, :-1].copy(), tokens[:, 1:].reshape(-1).copy(), pos, mask


def build(engine: str, size: str) -> Bench:
    """Build the transformer step for ``engine`` (torch or tinytorch)."""
    tt = torch_like(engine)
    cfg = CONFIGS[size]
    model = make_model(tt, cfg)
    load_params(tt, model)
    opt = tt.optim.SGD(model.parameters(), lr=LR)
    idx_n, tgt_n, pos_n, mask_n = make_data(cfg)
    idx, tgt, pos, mask = (tt.tensor(a) for a in (idx_n, tgt_n, pos_n, mask_n))
    cross_entropy = tt.nn.functional.cross_entropy
    return train_step(opt, lambda: cross_entropy(model(idx, pos, mask).reshape(-1, cfg.vocab), tgt))


_case = Case(build)
setup = _case.setup
step = _case.step
check = _case.check
scratch_bytes = _case.scratch_bytes
