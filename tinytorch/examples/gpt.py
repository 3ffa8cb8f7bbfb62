"""A small GPT, nanoGPT-style, on characters: ``python -m tinytorch.examples.gpt``.

The model follows Karpathy's nanoGPT ``model.py``: token + position embeddings,
pre-LayerNorm blocks of causal self-attention (one fused q/k/v projection,
``F.scaled_dot_product_attention(is_causal=True)``) and a GELU MLP, a final
LayerNorm, and an LM head tied to the token embedding; ``configure_optimizers``
puts weight decay on matrices only. Trained on the bundled text (or
``--text FILE``), it reports train/validation loss (nats per character) and
samples new text at the end.

Shape letters: B batch, T time (sequence position), C embedding channels,
nh heads, hs = C / nh head size, V vocabulary.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

from tinytorch.examples._backend import run_main
from tinytorch.examples._text import CharCorpus, add_text_args

__all__ = ["GPTConfig", "build_gpt", "main"]


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = True


def build_gpt(torch: Any, config: GPTConfig) -> Any:
    """Define the nanoGPT classes on ``torch.nn`` and return a ``GPT(config)``."""
    nn: Any  # the backend's nn, chosen at run time
    nn, F = torch.nn, torch.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            assert config.n_embd % config.n_head == 0
            self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
            self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
            self.resid_dropout = nn.Dropout(config.dropout)
            self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

        def forward(self, x: Any) -> Any:
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0.0,
                is_causal=True,
            )  # (B, nh, T, hs)  # fmt: skip
            y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble heads: (B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
            self.dropout = nn.Dropout(config.dropout)

        def forward(self, x: Any) -> Any:
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
            self.mlp = MLP()

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block() for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            ))  # fmt: skip
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # weight tying
            self.apply(self._init_weights)
            for name, p in self.named_parameters():  # GPT-2's scaled residual projections
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

        def _init_weights(self, module: Any) -> None:
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx: Any, targets: Any = None) -> tuple[Any, Any]:
            _, t = idx.size()  # (B, T)
            assert t <= config.block_size, f"sequence of {t} > block size {config.block_size}"
            pos = torch.arange(0, t, dtype=torch.long)  # (T,)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            for block in self.transformer.h:
                x = block(x)  # (B, T, C)
            x = self.transformer.ln_f(x)
            if targets is None:  # inference: only the last position is needed
                return self.lm_head(x[:, [-1], :]), None  # (B, 1, V)
            logits = self.lm_head(x)  # (B, T, V)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
            return logits, loss

        def configure_optimizers(self, weight_decay: float, learning_rate: float,
                                 betas: tuple[float, float]) -> Any:  # fmt: skip
            params = [p for p in self.parameters() if p.requires_grad]
            decay = [p for p in params if p.dim() >= 2]  # matrices and embeddings
            no_decay = [p for p in params if p.dim() < 2]  # biases and LayerNorm gains
            groups = [{"params": decay, "weight_decay": weight_decay},
                      {"params": no_decay, "weight_decay": 0.0}]  # fmt: skip
            return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)

        @torch.no_grad()
        def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0,
                     generator: Any = None) -> Any:  # fmt: skip
            for _ in range(max_new_tokens):
                idx_cond = idx if idx.size(1) <= config.block_size else idx[:, -config.block_size :]
                logits, _ = self(idx_cond)
                probs = F.softmax(logits[:, -1, :] / temperature, dim=-1)  # (B, V)
                idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    return GPT()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_text_args(p, block_help="context length in characters")
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=0.1)
    return run_main(p, argv, run)


def run(args: argparse.Namespace, torch: Any) -> int:
    """Train and report; ``torch`` is the backend's module."""

    corpus = CharCorpus(args.text)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    config = GPTConfig(block_size=args.block, vocab_size=corpus.vocab_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)  # fmt: skip
    model = build_gpt(torch, config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(corpus.text):,} characters, vocabulary {corpus.vocab_size}, "
          f"{n_params:,} parameters, {args.backend}")  # fmt: skip
    optimizer = model.configure_optimizers(args.weight_decay, args.lr, (0.9, 0.99))
    warmup = max(1, args.steps // 10)

    def lr_factor(step: int) -> float:
        """nanoGPT's schedule: linear warm-up, then cosine decay to a tenth of the peak."""
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, args.steps - warmup))
        return 0.1 + 0.45 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    def estimate_loss() -> dict[str, float]:
        model.eval()
        out = {}
        with torch.no_grad():
            for split in ("train", "val"):
                losses = [model(*corpus.batch(torch, split, args.batch_size, args.block, gen))[1]
                          .item() for _ in range(args.eval_batches)]  # fmt: skip
                out[split] = sum(losses) / len(losses)
        model.train()
        return out

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = corpus.batch(torch, "train", args.batch_size, args.block, gen)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == args.steps:
            losses = estimate_loss()
            rate = step * args.batch_size * args.block / (time.perf_counter() - start)
            print(f"step {step:>5}  train loss {losses['train']:.4f}  val loss "
                  f"{losses['val']:.4f}  {rate:,.0f} chars/s")  # fmt: skip
    seconds = time.perf_counter() - start
    print(f"final train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
          f"({seconds:.1f}s)")  # fmt: skip
    print("--- sample ---")
    model.eval()
    context = torch.from_numpy(corpus.encode(args.prompt)[None])  # (1, T)
    out = model.generate(context, args.sample_len, args.temperature, generator=gen)
    print(corpus.decode(out[0].tolist()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
