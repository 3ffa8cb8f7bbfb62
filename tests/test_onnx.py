"""ONNX export: every exported model is run by onnxruntime and compared with tinytorch.

Runs when the optional ``onnx`` and ``onnxruntime`` packages are installed
(``pip install -e '.[onnx]'``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import tinytorch  # noqa: E402
import tinytorch.nn as nn  # noqa: E402
import tinytorch.nn.functional as F  # noqa: E402
from tinytorch.autograd import node as _node  # noqa: E402
from tinytorch.onnx import ExportError, export  # noqa: E402

TOL = 1e-5


def roundtrip(model: Any, *args: Any, others: tuple = (), **kw: Any) -> float:
    """Export, run with onnxruntime on ``args`` (and each tuple in ``others``), and
    return the max abs difference from tinytorch's outputs over all outputs."""
    names = [f"in{i}" for i in range(len(args))]
    proto = export(model, args, None, input_names=names, **kw)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 0.0
    for xs in (args, *others):
        model.eval()
        with tinytorch.no_grad():
            ref = model(*xs)
        refs = [r for r in (ref if isinstance(ref, tuple) else (ref,)) if r is not None]
        got = sess.run(None, {n: x.data for n, x in zip(names, xs)})
        assert len(got) == len(refs)
        for r, g in zip(refs, got):
            assert g.shape == r.shape and g.dtype == r.data.dtype
            worst = max(worst, float(np.max(np.abs(r.data - g), initial=0.0)))
    return worst


@pytest.fixture(autouse=True)
def _seed() -> None:
    tinytorch.manual_seed(0)


def test_mlp_to_file_with_dynamic_batch(tmp_path: Any) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    path = tmp_path / "mlp.onnx"
    export(model, tinytorch.randn(5, 4), path, input_names=["x"], output_names=["logits"],
           dynamic_axes={"x": {0: "batch"}})  # fmt: skip
    assert model.training and all(m.training for m in model.modules())  # mode restored
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "Relu", "Gemm", "Identity"]
    assert {i.name for i in proto.graph.initializer} == {"0.weight", "0.bias", "3.weight", "3.bias"}
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 4
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    for n in (1, 5, 9):
        x = tinytorch.randn(n, 4)
        (got,) = sess.run(None, {"x": x.data})
        with tinytorch.no_grad():
            assert np.abs(got - model(x).data).max() < TOL


def test_cnn_with_batchnorm_pooling_and_dynamic_batch() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding="valid"), nn.GELU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Dropout(), nn.Linear(6, 2),
    )  # fmt: skip
    bn = model[1]
    bn.running_mean.data[:] = np.linspace(-1, 1, 4)
    bn.running_var.data[:] = np.linspace(0.5, 2, 4)
    x, x2 = tinytorch.randn(2, 3, 12, 12), tinytorch.randn(3, 3, 12, 12)
    assert roundtrip(model, x, others=((x2,),), dynamic_axes={"in0": [0]}) < TOL


@pytest.mark.parametrize("layer", [
    nn.Conv2d(3, 6, 3, padding="same", dilation=2, groups=3),
    nn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect"),
    nn.Conv2d(3, 4, 3, padding=1, padding_mode="replicate"),
    nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
    nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    nn.MaxPool2d(2, dilation=2),
    nn.AvgPool2d(3, 2, 1, count_include_pad=False),
    nn.AvgPool2d(3, 2, 1, ceil_mode=True),
    nn.AdaptiveAvgPool2d((3, 1)),
    nn.AdaptiveMaxPool2d(1),
    nn.GroupNorm(3, 3),
    nn.InstanceNorm2d(3),
    nn.BatchNorm2d(3, track_running_stats=False),
], ids=repr)  # fmt: skip
def test_conv_pool_norm_layers(layer: Any) -> None:
    assert roundtrip(layer, tinytorch.randn(2, 3, 9, 9)) < TOL


@pytest.mark.parametrize("layer", [
    nn.Conv1d(3, 2, 3), nn.MaxPool1d(3), nn.AvgPool1d(3, 2, 1), nn.AdaptiveAvgPool1d(1),
    nn.ConvTranspose1d(3, 2, 3), nn.BatchNorm1d(3),
], ids=repr)  # fmt: skip
def test_1d_layers(layer: Any) -> None:
    assert roundtrip(layer, tinytorch.randn(2, 3, 11)) < TOL


def test_3d_and_unbatched_conv() -> None:
    model = nn.Sequential(nn.Conv3d(2, 2, 3), nn.MaxPool3d(2), nn.AvgPool3d(1))
    assert roundtrip(model, tinytorch.randn(1, 2, 6, 6, 6)) < TOL
    assert roundtrip(nn.Conv2d(3, 2, 3), tinytorch.randn(3, 7, 7)) < TOL


ACTIVATIONS = [
    nn.ReLU(), nn.ReLU6(), nn.Hardtanh(-0.5, 0.5), nn.LeakyReLU(0.1), nn.RReLU(), nn.PReLU(3),
    nn.ELU(), nn.CELU(0.7), nn.SELU(), nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Mish(),
    nn.Sigmoid(), nn.Tanh(), nn.Softplus(2.0, 5.0), nn.Softsign(), nn.Hardsigmoid(),
    nn.Hardswish(), nn.LogSigmoid(), nn.Tanhshrink(), nn.Threshold(0.1, 20.0),
    nn.Hardshrink(0.3), nn.Softshrink(0.3), nn.Softmax(1), nn.LogSoftmax(-1), nn.Softmin(1),
]  # fmt: skip


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda m: type(m).__name__)
def test_activations(act: Any) -> None:
    assert roundtrip(act, tinytorch.randn(2, 3, 4) * 3) < TOL


class GRUModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)

    def forward(self, x: Any) -> Any:
        return self.rnn(x)[0]


def test_gru_unrolled() -> None:
    assert roundtrip(GRUModel(), tinytorch.randn(2, 5, 3)) < TOL


def test_embedding_layernorm() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4), nn.Tanh())
    ids = tinytorch.tensor([[1, 2, 3], [4, 5, 9]])
    assert roundtrip(model, ids) < TOL
    # opset 13 has no LayerNormalization: the layer is traced through its primitives
    assert roundtrip(model, ids, opset_version=13) < TOL


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: Any) -> Any:
        return self.mha(x, x, x, need_weights=False)[0]


def test_multihead_attention_and_encoder_layer() -> None:
    x, x2 = tinytorch.randn(2, 5, 8), tinytorch.randn(4, 5, 8)
    assert roundtrip(SelfAttention(), x, others=((x2,),), dynamic_axes={"in0": [0]}) < TOL
    enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    assert roundtrip(enc, x, others=((x2,),), dynamic_axes={"in0": [0]}) < TOL


def test_nanogpt_with_dynamic_batch() -> None:
    from test_nanogpt import CONFIG, build

    GPT, Config = build(tinytorch)
    model = GPT(Config(**CONFIG))
    idx = tinytorch.randint(0, CONFIG["vocab_size"], (2, 8))
    other = tinytorch.randint(0, CONFIG["vocab_size"], (5, 8))
    assert roundtrip(model, idx, others=((other,),), dynamic_axes={"in0": {0: "batch"}}) < TOL
    proto = export(model, idx)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Gather", "MatMul", "ReduceMax", "Erf", "Where"} <= ops  # F.layer_norm: traced
    # weight tying: lm_head and wte share one initializer
    assert sum(i.name.endswith("wte.weight") for i in proto.graph.initializer) == 1
    assert not any(i.name.endswith("lm_head.weight") for i in proto.graph.initializer)
    # the positions (arange(T)) are a constant: a dynamic sequence axis is reported
    with pytest.raises(ExportError, match="dynamic axis"):
        export(model, idx, dynamic_axes={"input_0": {1: "time"}})


class TensorCode(nn.Module):
    """Ops a custom forward uses, traced through the primitives."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(tinytorch.randn(4, 4) * 0.5)

    def forward(self, x: Any, i: Any) -> Any:
        y = tinytorch.einsum("bi,ij->bj", x, self.w)
        y = tinytorch.stack([y, y * 2], 1).sum(1) / 3
        y = F.pad(y, (1, 2), value=0.5)
        y = y.gather(1, i) + y[:, 1:3].exp() - y[:, [0]]
        y = tinytorch.cat([y, y.cumsum(1), y.amax(1, keepdim=True), y.abs().sqrt().log1p(),
                           y.tanh().expm1(), y.floor(), y.clamp(-0.5, 0.5)], 1)  # fmt: skip
        z = y.unsqueeze(1).transpose(0, 1).squeeze(0)
        return (z.mean(0), F.log_softmax(z, 1), tinytorch.logsumexp(z, 1), (z * 0.25) ** 3,
                z.relu() ** 0.5, tinytorch.where(z > 0, z, z * 0.1), F.leaky_relu(z, 0.2),
                z.masked_fill(z < 0, 0.0), z[..., None, ::2].transpose(-1, -2))  # fmt: skip


def test_tensor_code() -> None:
    x = tinytorch.randn(3, 4)
    i = tinytorch.tensor([[0, 1], [2, 3], [6, 6]])
    assert roundtrip(TensorCode(), x, i) < TOL
    for opset in (13, 18):
        assert roundtrip(TensorCode(), x, i, opset_version=opset) < TOL


def test_float64_model() -> None:
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    assert roundtrip(model, tinytorch.randn(4, 3, dtype=tinytorch.float64)) < 1e-12


class Item(nn.Module):
    def forward(self, x: Any) -> Any:
        return x * x.sum().item()  # a Python number computed from the input


class ArgmaxGather(nn.Module):
    def forward(self, x: Any) -> Any:
        return x.max(1).values  # values gathered at an argmax computed in numpy


class Threshold(nn.Module):
    def forward(self, x: Any) -> Any:
        return x.masked_fill(x < -0.2, 0.0)  # a mask from a comparison with -0.2


class ScatterAdd(nn.Module):
    def forward(self, x: Any) -> Any:
        return x.scatter_add(0, tinytorch.tensor([[0, 1]]), x[:1])


def test_errors_name_the_op_and_the_reason() -> None:
    x = tinytorch.randn(3, 2)
    with pytest.raises(ExportError, match=r"op Mul in the model \(called at test_onnx.py"):
        export(Item(), x)
    with pytest.raises(ExportError, match="outside tinytorch's ops"):
        export(ArgmaxGather(), x)
    with pytest.raises(ExportError, match="a data-dependent mask"):
        export(Threshold(), tinytorch.randn(50, 2))
    with pytest.raises(ExportError, match="IndexAdd has no ONNX converter"):
        export(ScatterAdd(), x)
    with pytest.raises(ExportError, match="return_indices"):
        export(nn.MaxPool1d(2, return_indices=True), tinytorch.randn(1, 2, 4))
    with pytest.raises(ValueError, match="opset_version"):
        export(nn.ReLU(), x, opset_version=7)
    with pytest.raises(ValueError, match="dynamic_axes names"):
        export(nn.ReLU(), x, dynamic_axes={"nope": [0]})
    assert _node.trace_hook is None


def test_export_leaves_the_model_as_it_was() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].weight.requires_grad_(False)
    handles = (len(model[0]._forward_hooks), len(model[0]._forward_pre_hooks))
    export(model, tinytorch.randn(1, 2))
    assert not model[0].weight.requires_grad and model[1].weight.requires_grad
    assert (len(model[0]._forward_hooks), len(model[0]._forward_pre_hooks)) == handles
    assert _node.trace_hook is None

    class Boom(nn.Module):
        def forward(self, x: Any) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        export(Boom(), tinytorch.randn(1))
    assert _node.trace_hook is None


def test_detached_max_is_exported_as_reducemax() -> None:
    proto = export(nn.Sequential(nn.Linear(3, 3)), tinytorch.randn(2, 3))
    assert "ReduceMax" not in {n.op_type for n in proto.graph.node}

    class Soft(nn.Module):
        def forward(self, x: Any) -> Any:
            return F.softmax(x * math.pi, -1)

    proto = export(Soft(), tinytorch.randn(2, 3))
    assert "ReduceMax" in {n.op_type for n in proto.graph.node}
    assert roundtrip(Soft(), tinytorch.randn(2, 3) * 100) < TOL


class FunctionalPoolAndLinear(nn.Module):
    """``F.max_pool2d`` and ``F.linear`` called directly: their fused primitives convert."""

    def __init__(self) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(tinytorch.randn(3, 12)), nn.Parameter(tinytorch.randn(3))

    def forward(self, x: Any) -> Any:
        y = F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)  # (N, 2, 3, 3)
        z = F.max_pool2d(x, 2, dilation=2)  # (N, 2, 2, 2)
        flat = tinytorch.cat([y.flatten(1)[:, :4], z.flatten(1)], 1)  # (N, 12)
        return F.linear(flat, self.w, self.b), F.linear(flat, self.w)


def test_functional_max_pool_and_linear() -> None:
    assert roundtrip(FunctionalPoolAndLinear(), tinytorch.randn(2, 2, 6, 6)) < TOL
