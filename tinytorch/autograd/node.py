"""``Node``: one recorded application of a primitive, the unit of the graph.

A primitive is a ``Node`` subclass with

* ``forward(self, *arrays, **params) -> ndarray`` in plain numpy, and
* ``backward(self, grad_out: Tensor) -> Tensor | tuple[Tensor | None, ...]``
  written with tinytorch ops, so that running it with grad enabled
  (``create_graph=True``) records the backward itself and gives gradients of
  any order from one formula.

The node *is* the ``ctx`` of its own forward/backward: parameters are stored
on it as attributes. Graph edges point from a node to what produced its
inputs (``next_nodes``): another node, a leaf ``Tensor`` that requires grad,
or ``None``. A node never references its own output tensor (that would be a
reference cycle and leave graphs to the cyclic garbage collector); an op that
needs its output saves the array and ``self.output`` rebuilds a tensor whose
``grad_fn`` is this node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from tinytorch.autograd.grad_mode import STATE

if TYPE_CHECKING:
    from tinytorch.tensor import Tensor

# Set by tinytorch.tensor (to break the import cycle): the Tensor class and its two
# constructors, ``_wrap(array)`` (no history) and ``_wrap_recorded(array, node)``.
_tensor_cls: Any = None
_wrap: Any = None
_wrap_recorded: Any = None
#: While set, called as ``trace_hook(node, inputs, params, out)`` after every primitive's
#: forward, recorded or not (``tinytorch.onnx`` traces a forward pass with it).
trace_hook: Any = None
_new_object = object.__new__


class Node:
    """Base class of every recorded op (and of user ``autograd.Function``\\ s)."""

    __slots__ = (
        "__weakref__",
        "_hooks",
        "_out",
        "_retained",
        "_saved",
        "_trace",
        "_versions",
        "next_nodes",
        "out_dtype",
        "out_shape",
    )
    # The slots' types (annotations only: set in ``apply`` on recorded nodes).
    next_nodes: tuple[Any, ...]  # per input: the Node or leaf Tensor that made it, or None
    out_shape: tuple[int, ...]
    out_dtype: np.dtype
    _hooks: list[Any] | None
    _retained: Any  # weakref to the tensor that retain_grad()s this output, or None
    _trace: Any
    _saved: tuple[Any, ...] | None  # Tensors (None: an input not kept, see save_crossed)
    _versions: tuple[int, ...]
    _out: tuple[np.ndarray, list[int]] | None
    #: Set on ops that save their inputs / output for backward.
    save_inputs: bool = False
    save_output: bool = False
    #: For two-input ops that save their inputs: per input, whether only the *other*
    #: input's gradient reads it (``Mul``: da = g b, db = g a). Such an input is not kept
    #: when the other one needs no gradient (``x * 0.5`` keeps no copy of x).
    save_crossed: tuple[bool, bool] | None = None
    #: Set on ops whose backward drops to raw numpy: no second derivative.
    once_differentiable: bool = False
    #: Set on ops whose forward is exactly one numpy ufunc of their one or two input
    #: arrays (no parameters): ``apply`` then calls it directly, without a Node, when
    #: nothing is recorded — the case of every op run inside a first-order backward.
    ufunc: Any = None
    #: False on subclasses that override ``release`` (the engine frees a plain node's
    #: saved values itself, without the method call).
    plain_release: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.plain_release = cls.release is Node.release

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        if self.ufunc is not None:
            return self.ufunc(*arrays)
        raise NotImplementedError

    def backward(self, grad_out: Tensor) -> Any:
        raise NotImplementedError(f"{self.name()} has no backward")

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and record the node if needed."""
        # The hot path of every op: one- and two-input ops are spelled out (no loops or
        # comprehensions), which saves ~0.3 us per op in Python 3.11.
        n = len(inputs)
        a = inputs[0]
        b = inputs[1] if n == 2 else None
        record = False
        if STATE.enabled:
            if n <= 2:
                record = a._requires_grad or (b is not None and b._requires_grad)
            else:
                for t in inputs:
                    if t._requires_grad:
                        record = True
                        break
        ufunc = cls.ufunc
        if ufunc is not None:  # one or two inputs, no parameters
            out = ufunc(a.data) if b is None else ufunc(a.data, b.data)
            if not record and trace_hook is None:
                # Nothing to record (every op inside a first-order backward lands here):
                # wrap the ufunc's result, no Node at all.
                return _wrap(out if type(out) is np.ndarray else np.asarray(out))
            node = _new_object(cls)
        else:
            node = _new_object(cls)
            if n == 1:
                out = node.forward(a.data, **params)
            elif n == 2:
                out = node.forward(a.data, b.data, **params)  # type: ignore[union-attr]
            elif n == 3:
                out = node.forward(a.data, inputs[1].data, inputs[2].data, **params)
            else:
                out = node.forward(*[t.data for t in inputs], **params)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if trace_hook is not None:
            trace_hook(node, inputs, params, out)
        if not record:
            return _wrap(out)
        # Edges: what made each input (its node, itself if a leaf that requires grad, or None).
        fa = a.grad_fn
        ea = fa if fa is not None else (a if a._requires_grad else None)
        if n == 1:
            node.next_nodes = (ea,)
        elif n == 2:
            fb = b.grad_fn  # type: ignore[union-attr]
            node.next_nodes = (ea, fb if fb is not None else (b if b._requires_grad else None))  # type: ignore[union-attr]
        else:
            edges = [ea]
            for t in inputs[1:]:
                f = t.grad_fn
                edges.append(f if f is not None else (t if t._requires_grad else None))
            node.next_nodes = tuple(edges)
        node.out_shape = out.shape
        node.out_dtype = out.dtype
        node._hooks = node._retained = node._trace = None
        result = _wrap_recorded(out, node)
        if cls.save_inputs:
            node._saved = inputs
            if n == 1:
                node._versions = (a._vc[0],)
            elif n == 2:
                node._versions = (a._vc[0], b._vc[0])  # type: ignore[union-attr]
                crossed = cls.save_crossed
                if crossed is not None:
                    ea, eb = node.next_nodes
                    node._saved = (
                        None if crossed[0] and eb is None else a,
                        None if crossed[1] and ea is None else b,
                    )
            else:
                versions = []
                for t in inputs:
                    versions.append(t._vc[0])
                node._versions = tuple(versions)
        else:
            node._saved = None
        node._out = (out, result._vc) if cls.save_output else None
        if STATE.anomaly:
            from tinytorch.autograd.anomaly import record_forward

            record_forward(node, out, inputs)
        return result

    # --- what backward reads -------------------------------------------------

    @staticmethod
    def vjp(formula: Any, g: Tensor, *operands: Tensor) -> Tensor:
        """``formula(g, *operands)``: a backward formula written with operators only
        (``+ - * /`` and Python numbers), which numpy arrays and Tensors both support.

        Under ``create_graph`` it runs on the Tensors and is recorded (so it can be
        differentiated again); in a first-order backward it runs on their arrays: the
        same formula, and numpy calls only.
        """
        if STATE.enabled:
            return formula(g, *operands)
        if len(operands) == 1:
            out = formula(g.data, operands[0].data)
        else:
            out = formula(g.data, *[t.data for t in operands])
        return _wrap(out if type(out) is np.ndarray else np.asarray(out))

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        return tuple(n is not None for n in self.next_nodes)

    def vjp_output(self, formula: Any, g: Tensor) -> Tensor:
        """``vjp(formula, g, self.output)``: in a first-order backward the formula reads
        the saved output array itself (no tensor is built around it)."""
        if STATE.enabled:
            return formula(g, self.output)
        out = formula(g.data, self._output_array())
        return _wrap(out if type(out) is np.ndarray else np.asarray(out))

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """The input tensors saved at forward time (checked for in-place edits)."""
        saved = self._saved
        if saved is None:
            self._raise_freed()
        versions = self._versions
        if len(saved) == 2:  # the common case, spelled out (None: not kept, see save_crossed)
            s0, s1 = saved
            if (s0 is None or s0._vc[0] == versions[0]) and (
                s1 is None or s1._vc[0] == versions[1]
            ):
                return saved
        for t, v in zip(saved, versions):
            if t is not None and t._vc[0] != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been "
                    f"modified by an inplace operation: [{t.dtype}{list(t.shape)}] is at "
                    f"version {t._vc[0]}; expected version {v} instead "
                    f"(saved by {self.name()})"
                )
        return saved

    def _output_array(self) -> np.ndarray:
        """The saved forward output (checked for in-place edits)."""
        if self._out is None:
            self._raise_freed()
        out, vc = self._out
        if vc[0] != 0:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified "
                f"by an inplace operation: the output of {self.name()} "
                f"[{list(out.shape)}] is at version {vc[0]}; expected version 0 instead"
            )
        return out

    @property
    def output(self) -> Tensor:
        """The forward output as a tensor connected to this node."""
        t = _wrap_recorded(self._output_array(), self)
        t._vc = self._out[1]  # type: ignore[index]
        return t

    def _raise_freed(self) -> NoReturn:
        raise RuntimeError(
            f"Trying to backward through the graph a second time (or directly access "
            f"saved tensors after they have already been freed) in {self.name()}. "
            f"Saved intermediate values of the graph are freed when you call "
            f".backward() or autograd.grad(). Specify retain_graph=True if you need "
            f"to backward through the graph a second time or if you need to access "
            f"saved tensors after calling backward."
        )

    def release(self) -> None:
        """Free saved tensors (called by the engine unless ``retain_graph``)."""
        self._saved = None
        self._out = None

    @classmethod
    def name(cls) -> str:
        return cls.__name__ + "Backward0"

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"
