"""A nanoGPT-shaped model, written once and run on torch and on tinytorch unchanged.

``build(torch)`` is Karpathy's nanoGPT ``model.py`` (LayerNorm with optional bias,
causal self-attention through ``F.scaled_dot_product_attention``, GELU MLP, tied
token embedding and ``lm_head``, ``_init_weights``, ``configure_optimizers``),
parametrized by the library module. Both models start from torch's initial
weights (copied through ``state_dict`` as numpy arrays), train a few AdamW steps
in float64 on the same random tokens, and must report the same loss every step.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import tinytorch


def build(torch: Any) -> tuple[type, type]:
    """nanoGPT's ``model.py`` with ``torch`` being whichever library is passed in."""
    nn = torch.nn
    F = torch.nn.functional

    class LayerNorm(nn.Module):
        """LayerNorm but with an optional bias. PyTorch doesn't support simply bias=False"""

        def __init__(self, ndim: int, bias: bool) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(ndim))
            self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

        def forward(self, input: Any) -> Any:
            return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)

    class CausalSelfAttention(nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            assert config.n_embd % config.n_head == 0
            # key, query, value projections for all heads, but in a batch
            self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
            # output projection
            self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
            # regularization
            self.attn_dropout = nn.Dropout(config.dropout)
            self.resid_dropout = nn.Dropout(config.dropout)
            self.n_head = config.n_head
            self.n_embd = config.n_embd
            self.dropout = config.dropout
            self.flash = hasattr(torch.nn.functional, "scaled_dot_product_attention")
            assert self.flash

        def forward(self, x: Any) -> Any:
            B, T, C = x.size()  # batch size, sequence length, embedding dimensionality (n_embd)
            # calculate query, key, values for all heads in batch and move head forward
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            # causal self-attention; (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
            y = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0,
                is_causal=True,
            )  # fmt: skip
            # re-assemble all head outputs side by side
            y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, nh, T, hs) -> (B, T, C)
            # output projection
            y = self.resid_dropout(self.c_proj(y))
            return y

    class MLP(nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
            self.dropout = nn.Dropout(config.dropout)

        def forward(self, x: Any) -> Any:
            x = self.c_fc(x)
            x = self.gelu(x)
            x = self.c_proj(x)
            x = self.dropout(x)
            return x

    class Block(nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
            self.attn = CausalSelfAttention(config)
            self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
            self.mlp = MLP(config)

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln_1(x))
            x = x + self.mlp(self.ln_2(x))
            return x

    @dataclass
    class GPTConfig:
        block_size: int = 1024
        vocab_size: int = 50304  # GPT-2 vocab_size of 50257, padded up to nearest multiple of 64
        n_layer: int = 12
        n_head: int = 12
        n_embd: int = 768
        dropout: float = 0.0
        bias: bool = True  # True: bias in Linears and LayerNorms, like GPT-2. False: faster

    class GPT(nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            assert config.vocab_size is not None
            assert config.block_size is not None
            self.config = config

            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            ))  # fmt: skip
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            # with weight tying when using torch.compile() some warnings get generated:
            # "UserWarning: functional_call was passed multiple values for tied weights."
            # https://paperswithcode.com/method/weight-tying
            self.transformer.wte.weight = self.lm_head.weight

            # init all weights
            self.apply(self._init_weights)
            # apply special scaled init to the residual projections, per GPT-2 paper
            for pn, p in self.named_parameters():
                if pn.endswith("c_proj.weight"):
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

        def get_num_params(self, non_embedding: bool = True) -> int:
            n_params = sum(p.numel() for p in self.parameters())
            if non_embedding:
                n_params -= self.transformer.wpe.weight.numel()
            return n_params

        def _init_weights(self, module: Any) -> None:
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx: Any, targets: Any = None) -> tuple[Any, Any]:
            device = idx.device
            b, t = idx.size()  # noqa: RUF059 - nanoGPT's line
            assert t <= self.config.block_size, (
                f"Cannot forward sequence of length {t}, block size is only "
                f"{self.config.block_size}"
            )
            pos = torch.arange(0, t, dtype=torch.long, device=device)  # shape (t)

            # forward the GPT model itself
            tok_emb = self.transformer.wte(idx)  # token embeddings of shape (b, t, n_embd)
            pos_emb = self.transformer.wpe(pos)  # position embeddings of shape (t, n_embd)
            x = self.transformer.drop(tok_emb + pos_emb)
            for block in self.transformer.h:
                x = block(x)
            x = self.transformer.ln_f(x)

            if targets is not None:
                # if we are given some desired targets also calculate the loss
                logits = self.lm_head(x)
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                       ignore_index=-1)  # fmt: skip
            else:
                # inference-time mini-optimization: only forward the lm_head on the very last
                # position
                logits = self.lm_head(x[:, [-1], :])  # note: using list [-1] to keep the dim
                loss = None

            return logits, loss

        def configure_optimizers(self, weight_decay: float, learning_rate: float,
                                 betas: tuple[float, float], device_type: str) -> Any:  # fmt: skip
            # start with all of the candidate parameters
            param_dict = {pn: p for pn, p in self.named_parameters()}
            # filter out those that do not require grad
            param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
            # create optim groups. Any parameters that is 2D will be weight decayed, otherwise
            # no. i.e. all weight tensors in matmuls + embeddings decay, all biases and
            # layernorms don't.
            decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
            nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
            optim_groups = [
                {"params": decay_params, "weight_decay": weight_decay},
                {"params": nodecay_params, "weight_decay": 0.0},
            ]
            # Create AdamW optimizer and use the fused version if it is available
            fused_available = "fused" in inspect.signature(torch.optim.AdamW).parameters
            use_fused = fused_available and device_type == "cuda"
            extra_args = dict(fused=True) if use_fused else dict()
            optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas,
                                          **extra_args)  # fmt: skip
            return optimizer

        @torch.no_grad()
        def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0) -> Any:
            for _ in range(max_new_tokens):
                # if the sequence context is growing too long we must crop it at block_size
                idx_cond = (idx if idx.size(1) <= self.config.block_size
                            else idx[:, -self.config.block_size:])  # fmt: skip
                # forward the model to get the logits for the index in the sequence
                logits, _ = self(idx_cond)
                # pluck the logits at the final step and scale by desired temperature
                logits = logits[:, -1, :] / temperature
                # apply softmax to convert logits to (normalized) probabilities
                probs = F.softmax(logits, dim=-1)
                # sample from the distribution
                idx_next = torch.multinomial(probs, num_samples=1)
                # append sampled index to the running sequence and continue
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    return GPT, GPTConfig


CONFIG = dict(block_size=16, vocab_size=32, n_layer=2, n_head=2, n_embd=16, dropout=0.0)


def twin_gpts(**overrides: Any) -> tuple[Any, Any]:
    """The torch model and ours, ours loaded with torch's initial weights (float64)."""
    config = {**CONFIG, **overrides}
    GPT_th, Config_th = build(torch)
    GPT_tt, Config_tt = build(tinytorch)
    torch.manual_seed(0)
    theirs = GPT_th(Config_th(**config)).double()
    ours = GPT_tt(Config_tt(**config)).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def test_parameter_names_and_tying_match_torch() -> None:
    ours, theirs = twin_gpts()
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()
    ]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.transformer.wte.weight is ours.lm_head.weight
    assert ours.get_num_params() == theirs.get_num_params()
    assert repr(ours) == repr(theirs)


def test_init_follows_init_weights() -> None:
    GPT, Config = build(tinytorch)
    tinytorch.manual_seed(0)
    model = GPT(Config(**{**CONFIG, "n_embd": 64, "vocab_size": 256}))
    params = dict(model.named_parameters())
    std = float(np.std(params["transformer.wte.weight"].data))
    assert abs(std - 0.02) < 0.002
    proj = float(np.std(params["transformer.h.0.mlp.c_proj.weight"].data))
    assert abs(proj - 0.02 / math.sqrt(2 * 2)) < 0.002
    assert np.all(params["transformer.h.0.attn.c_attn.bias"].data == 0)


def test_training_steps_match_torch() -> None:
    ours, theirs = twin_gpts()
    rng = np.random.default_rng(0)
    opt_ours = ours.configure_optimizers(0.1, 1e-2, (0.9, 0.95), "cpu")
    opt_theirs = theirs.configure_optimizers(0.1, 1e-2, (0.9, 0.95), "cpu")
    assert [len(g["params"]) for g in opt_ours.param_groups] == [
        len(g["params"]) for g in opt_theirs.param_groups
    ]
    for _step in range(5):
        x = rng.integers(0, CONFIG["vocab_size"], size=(2, 12))
        y = rng.integers(0, CONFIG["vocab_size"], size=(2, 12))
        y[0, 3] = -1  # ignore_index
        losses = []
        for model, opt, lib in ((ours, opt_ours, tinytorch), (theirs, opt_theirs, torch)):
            _logits, loss = model(lib.tensor(x), lib.tensor(y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        np.testing.assert_allclose(losses[0], losses[1], rtol=1e-8)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.data, theirs_params[name].detach().numpy(), rtol=1e-8,
                                   atol=1e-10, err_msg=name)  # fmt: skip


def test_inference_and_generate() -> None:
    ours, theirs = twin_gpts()
    x = np.random.default_rng(1).integers(0, CONFIG["vocab_size"], size=(2, 7))
    logits, loss = ours(tinytorch.tensor(x))
    logits_th, _ = theirs(torch.tensor(x))
    assert loss is None and tuple(logits.shape) == (2, 1, CONFIG["vocab_size"])
    np.testing.assert_allclose(logits.data, logits_th.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours.eval()
    tinytorch.manual_seed(0)
    out = ours.generate(tinytorch.tensor(x), max_new_tokens=12)
    assert tuple(out.shape) == (2, 19) and out.requires_grad is False
    assert np.array_equal(out.data[:, :7], x)
