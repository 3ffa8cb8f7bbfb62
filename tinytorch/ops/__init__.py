"""The primitives: each a ``Node`` subclass with a numpy forward and a Tensor backward."""

from tinytorch.ops.conv import Col2Im, Conv, Im2Col
from tinytorch.ops.elementwise import (
    Abs,
    Add,
    Cast,
    Cos,
    Div,
    Exp,
    Expm1,
    Log,
    Log1p,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    PowScalar,
    Relu,
    Sigmoid,
    Sin,
    Sqrt,
    Sub,
    Tanh,
    Where,
)
from tinytorch.ops.linalg import Einsum, MatMul
from tinytorch.ops.reduce import Amax, Amin, Cumsum, Prod, Sum
from tinytorch.ops.shape import Cat, Expand, Index, IndexAdd, IndexSet, Pad, Permute, Reshape
from tinytorch.ops.special import Erf

__all__ = [
    "Abs", "Add", "Amax", "Amin", "Cast", "Cat", "Col2Im", "Conv", "Cos", "Cumsum", "Div",
    "Einsum", "Erf", "Exp", "Expand", "Expm1", "Im2Col", "Index", "IndexAdd", "IndexSet", "Log",
    "Log1p", "MatMul", "Maximum", "Minimum", "Mul", "Neg", "Pad", "Permute", "Pow", "PowScalar",
    "Prod", "Relu", "Reshape", "Sigmoid", "Sin", "Sqrt", "Sub", "Sum", "Tanh", "Where",
]  # fmt: skip
