"""A character-level LSTM language model: ``python -m tinytorch.examples.char_lstm``.

Trains Embedding -> LSTM -> Linear to predict the next character of the bundled
text (original lighthouse stories and verse, ~21 KB; ``--text FILE`` for your
own), reports train and validation loss, then samples new text one character
at a time, carrying the LSTM state so each new character costs one step.

Loss is cross-entropy in nats per character: ln(vocab size) ~ 4.1 for guessing,
~3 for letter frequencies; a few hundred steps reach ~1.6-1.8, where words and
line breaks start to look right.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tinytorch.examples._backend import run_main
from tinytorch.examples._text import CharCorpus, add_text_args

__all__ = ["build_model", "main"]


def build_model(nn: Any, vocab_size: int, embed: int, hidden: int, layers: int) -> Any:
    """An LSTM language model over characters (defined in the backend's ``nn``)."""

    class CharLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, embed)
            self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, vocab_size)

        def forward(self, idx: Any, state: Any = None) -> tuple[Any, Any]:
            out, state = self.lstm(self.embed(idx), state)  # (B, T, E) -> (B, T, H)
            return self.head(out), state  # (B, T, V)

    return CharLSTM()


def estimate_loss(torch: Any, model: Any, corpus: CharCorpus, args: Any, gen: Any) -> dict:
    """Mean loss over a few random batches of each split (eval mode, no grad)."""
    F = torch.nn.functional
    model.eval()
    out = {}
    with torch.no_grad():
        for split in ("train", "val"):
            total = 0.0
            for _ in range(args.eval_batches):
                x, y = corpus.batch(torch, split, args.batch_size, args.block, gen)
                logits, _ = model(x)
                total += F.cross_entropy(
                    logits.reshape(-1, corpus.vocab_size), y.reshape(-1)
                ).item()
            out[split] = total / args.eval_batches
    model.train()
    return out


def sample(torch: Any, model: Any, corpus: CharCorpus, prompt: str, length: int,
           temperature: float, gen: Any) -> str:  # fmt: skip
    """Continue ``prompt`` by ``length`` characters drawn from the model's distribution."""
    F = torch.nn.functional
    model.eval()
    chars = list(prompt)
    with torch.no_grad():
        x = torch.from_numpy(corpus.encode(prompt)[None])  # (1, T)
        logits, state = model(x)  # read the whole prompt once
        for _ in range(length):
            probs = F.softmax(logits[:, -1, :] / temperature, dim=-1)  # (1, V)
            nxt = torch.multinomial(probs, 1, generator=gen)  # (1, 1)
            chars.append(corpus.chars[int(nxt.item())])
            logits, state = model(nxt, state)  # one step, carrying (h, c)
    model.train()
    return "".join(chars)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_text_args(p, block_help="characters per training sequence")
    p.add_argument("--embed", type=int, default=32, help="character embedding size")
    p.add_argument("--hidden", type=int, default=128, help="LSTM hidden size")
    p.add_argument("--layers", type=int, default=1, help="stacked LSTM layers")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    return run_main(p, argv, run)


def run(args: argparse.Namespace, torch: Any) -> int:
    """Train and report; ``torch`` is the backend's module."""
    F = torch.nn.functional

    corpus = CharCorpus(args.text)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = build_model(torch.nn, corpus.vocab_size, args.embed, args.hidden, args.layers)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(corpus.text):,} characters, vocabulary {corpus.vocab_size}, "
          f"{n_params:,} parameters, {args.backend}")  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = corpus.batch(torch, "train", args.batch_size, args.block, gen)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, corpus.vocab_size), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # LSTMs can spike
        optimizer.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == args.steps:
            losses = estimate_loss(torch, model, corpus, args, gen)
            rate = step * args.batch_size * args.block / (time.perf_counter() - start)
            print(f"step {step:>5}  train loss {losses['train']:.4f}  val loss "
                  f"{losses['val']:.4f}  {rate:,.0f} chars/s")  # fmt: skip
    seconds = time.perf_counter() - start
    print(f"final train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
          f"({seconds:.1f}s)")  # fmt: skip
    print("--- sample ---")
    print(sample(torch, model, corpus, args.prompt, args.sample_len, args.temperature, gen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
