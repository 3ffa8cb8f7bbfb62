"""Export a model to ONNX: ``tinytorch.onnx.export(model, x, "model.onnx")``.

Needs the ``onnx`` package (``pip install 'tinytorch[onnx]'``); the tests check
every exported model against ``onnxruntime``.

How it works: the model runs twice on example inputs while a hook records
every primitive (``tinytorch/ops``) it applies. Layers with a direct ONNX
operator are exported whole (their primitives are replaced by one node), and
everything else — containers, attention, a user's own ``forward`` — becomes
the ONNX form of its primitives. The second run uses other input values
(and other sizes along ``dynamic_axes``); every constant that changes between
the runs was computed from the input outside tinytorch's ops and would be
frozen by ONNX, so export stops with an error naming the op and the module.

Layers exported whole:

- ``Linear`` (``Gemm``, or ``MatMul`` + ``Add`` for batched input), ``Embedding``
  (``Gather``; not with ``max_norm``), ``Flatten`` (``start_dim=1``)
- ``Conv1d/2d/3d`` (any padding and padding mode; ``circular`` needs opset 19),
  ``ConvTranspose1d/2d/3d``
- ``MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d`` (not ``divisor_override`` or
  ``return_indices``), ``AdaptiveAvgPool1d/2d/3d``, ``AdaptiveMaxPool1d/2d``
  (output size 1, or dividing the input size)
- ``BatchNorm1d/2d/3d`` with running statistics (exported in eval mode),
  ``LayerNorm`` (opset >= 17; traced below that)
- activations: ``ReLU``, ``ReLU6``, ``Hardtanh``, ``LeakyReLU``, ``RReLU`` (eval),
  ``PReLU``, ``ELU``, ``CELU``, ``SELU``, ``GELU`` (both forms), ``SiLU``, ``Mish``,
  ``Sigmoid``, ``Tanh``, ``Softplus``, ``Softsign``, ``Hardsigmoid``, ``Hardswish``,
  ``LogSigmoid``, ``Tanhshrink``, ``Threshold``, ``Hardshrink``, ``Softshrink``,
  ``Softmax``, ``LogSoftmax``, ``Softmin``, ``Softmax2d``

Traced through their primitives (tested): ``Sequential`` and the other
containers, ``Dropout`` (identity in eval), ``Identity``, ``MultiheadAttention``,
``TransformerEncoderLayer``, ``GRU``, ``GroupNorm``, ``InstanceNorm``,
``BatchNorm`` without running statistics, nanoGPT's blocks
(``F.scaled_dot_product_attention`` with ``is_causal``, ``F.layer_norm``), and
tensor code: arithmetic, ``matmul``/``einsum``, reductions, ``F.softmax``/
``log_softmax``/``logsumexp`` (their stabilizing max, taken in numpy, becomes a
``ReduceMax``), ``view``/``reshape``/``permute``/``transpose``/``split``/``cat``/
``stack``, slicing and one-array indexing (``x[:, [-1]]``), ``gather``,
``F.pad`` (constant), and ``where``/``masked_fill``/``clamp``/``F.leaky_relu``
whose mask compares the op's operands with each other or with 0 (recognized,
then checked on the second run) or is a constant (a causal mask).

Not exportable (a clear ``ExportError``): values computed from the input in
numpy that are neither of those (``x.max(dim)``'s argmax, ``.item()``, a mask
``x < 0.3``, functional max pooling — use the module), in-place ops on values
computed from the input, boolean-mask indexing by a computed mask, ``IndexAdd``
(``scatter_add``), and ``Function``\\ s whose forward leaves tinytorch ops.

``dynamic_axes`` (e.g. ``{"x": {0: "batch"}}``) keeps those sizes symbolic:
reshapes copy or infer them, broadcasts and slices to the end follow them.
A constant whose shape follows such an axis (``torch.arange(T)`` with a
dynamic ``T``) can't be, and is reported.
"""

from tinytorch.onnx._export import export
from tinytorch.onnx._trace import ExportError

__all__ = ["ExportError", "export"]
