"""Base class shared by all tinytorch optimizers, mirroring ``torch.optim.Optimizer``.

Differences from torch (deliberate, documented):

* ``state[p]["step"]`` (and NAdam's ``mu_product``) are plain Python floats, not 0-d tensors.
* ``foreach`` / ``fused`` / ``capturable`` / ``differentiable`` are not supported and are not
  accepted as arguments; every update runs the single-tensor algorithm with numpy ufuncs.
* ``load_state_dict`` always deep-copies the loaded state (torch aliases tensors whose dtype
  already matches), so the loaded dictionary is never mutated by later steps.
* Step / state-dict hooks, sparse and complex parameters are not supported.

Updates write ``p.data`` in place with numpy ufuncs (``out=``, preallocated state), never
build a graph, keep the parameter's dtype (float32 stays float32) and bump the tensor's
version counter like torch's in-place ops, so a graph that saved the old value refuses to
backpropagate.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from itertools import chain
from typing import Any, TypeAlias

import numpy as np

import tinytorch

ParamsT: TypeAlias = Iterable[Any]  # iterable of Tensors, (name, Tensor) pairs or group dicts
StateDict: TypeAlias = dict[str, Any]

__all__ = ["Optimizer", "ParamsT", "StateDict", "required"]


class _RequiredParameter:
    """Singleton marking a hyper-parameter that every param group must specify."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj: object) -> str:
    """Mimic ``torch.typename`` for error messages."""
    if isinstance(obj, tinytorch.Tensor):
        return "tinytorch.Tensor"
    cls = type(obj)
    module = cls.__module__
    if module in ("", "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _enable_grad() -> AbstractContextManager[Any]:
    # The closure must build a graph even though ``step`` itself never does.
    return tinytorch.enable_grad()


def _no_grad() -> AbstractContextManager[Any]:
    return tinytorch.no_grad()


def _to_float(value: Any) -> float:
    """Float of a loss that may be a Tensor or a Python number."""
    if isinstance(value, tinytorch.Tensor):
        return float(value.item())
    return float(value)


def _is_floating(t: Any) -> bool:
    return bool(np.issubdtype(t.data.dtype, np.floating))


def _bump_version(p: Any) -> None:
    """Record an in-place write to ``p.data`` in the core's version counter (as torch's
    in-place updates do), so autograd rejects graphs that saved the old value."""
    vc = getattr(p, "_vc", None)
    if vc is not None:
        vc[0] += 1


def _zeros_like(p: Any) -> Any:
    """Fresh zero state tensor with the parameter's shape and dtype (never aliased)."""
    return tinytorch.from_numpy(np.zeros_like(p.data))


class Optimizer:
    r"""Base class for all optimizers.

    Args:
        params: an iterable of :class:`tinytorch.Tensor` (or ``(name, tensor)`` pairs), or
            of dicts defining parameter groups (each with a ``"params"`` entry).
        defaults: default values of the optimization options, used for groups that do not
            specify them.

    ``state`` maps each parameter tensor to a dict of per-parameter buffers, under torch's key
    names; ``param_groups`` is the list of group dicts.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, tinytorch.Tensor):
            raise TypeError(
                "params argument given to the optimizer should be "
                "an iterable of Tensors or dicts, but got " + _typename(params)
            )
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []

        # Like torch, a bare set is accepted here (it is turned into a list); only a
        # group's "params" entry being a set is rejected, in add_param_group.
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __repr__(self) -> str:
        format_string = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            format_string += "\n"
            format_string += f"Parameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    format_string += f"    {key}: {group[key]}\n"
        format_string += ")"
        return format_string

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group to :attr:`param_groups` (e.g. to unfreeze layers while training).

        Args:
            param_group: dict with a ``"params"`` entry and optional group-specific options.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")

        params = param_group["params"]
        if isinstance(params, tinytorch.Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. "
                "Please use a list instead."
            )
        else:
            param_group["params"] = list(params)

        tensors: list[Any] = []
        names: list[Any] = []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) == len(tensors):
                param_group["param_names"] = names
            else:
                raise ValueError(
                    "all optimizer params should be with/without names. "
                    "Some param names are missing"
                )

        for param in param_group["params"]:
            if not isinstance(param, tinytorch.Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, "
                    "but one of the params is " + _typename(param)
                )
            if not (getattr(param, "is_leaf", True) or getattr(param, "retains_grad", False)):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required "
                    f"optimization parameter {name}"
                )
            param_group.setdefault(name, default)

        params = param_group["params"]
        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )

        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")

        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ grads
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors.

        Args:
            set_to_none: set ``.grad`` to ``None`` (default) instead of filling it with zeros.
                Optimizers skip parameters whose grad is ``None`` but do step with zero grads.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; returns the closure's loss (or ``None``)."""
        raise NotImplementedError

    def _eval_closure(self, closure: Callable[[], Any] | None) -> Any:
        # The closure re-evaluates the model, so it runs with grad mode on.
        if closure is None:
            return None
        with _enable_grad():
            return closure()

    @staticmethod
    def _params_with_grad(group: dict[str, Any]) -> list[Any]:
        """Parameters of ``group`` that received a gradient; the others are skipped."""
        return [p for p in group["params"] if p.grad is not None]

    # ------------------------------------------------------------- state dict
    def state_dict(self) -> StateDict:
        """Return the optimizer state as ``{"state": {idx: {...}}, "param_groups": [...]}``.

        Parameters are replaced by their integer position (in group order), exactly like
        torch; the state values are the live tensors (not copies), as in torch.
        """
        mapping: dict[int, int] = {}
        start_index = 0

        def pack_group(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start_index):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {
            (mapping[id(k)] if isinstance(k, tinytorch.Tensor) else k): v
            for k, v in self.state.items()
        }
        return {"state": packed_state, "param_groups": param_groups}

    @staticmethod
    def _cast(param: Any, value: Any, key: Any = None) -> Any:
        """Deep copy ``value``; floating state tensors take the parameter's dtype."""
        if isinstance(value, tinytorch.Tensor):
            if key == "step":
                # Our "step" is a float; accept a tensor step from foreign state dicts.
                return float(value.item())
            arr = value.data
            if _is_floating(param):
                arr = arr.astype(param.data.dtype, copy=True)
            else:
                arr = arr.copy()
            return tinytorch.from_numpy(arr)
        if isinstance(value, dict):
            return {k: Optimizer._cast(param, v, key=k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(Optimizer._cast(param, v) for v in value)
        return copy.deepcopy(value)

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Load optimizer state produced by :meth:`state_dict` (possibly via save/load).

        Raises:
            ValueError: if the number of groups or of parameters per group differs.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group "
                "that doesn't match the size of optimizer's group"
            )

        id_map = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = self._cast(id_map[k], v)
            else:
                state[k] = copy.deepcopy(v)

        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for name, default in self.defaults.items():
                saved.setdefault(name, default)
            new_groups.append(saved)
        self.__setstate__({"state": state, "param_groups": new_groups})


class _GroupwiseOptimizer(Optimizer):
    """Shared ``step`` of the first-order optimizers: evaluate the closure, then update each
    group in place (``_update_group``) with autograd off."""

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one update; returns the closure's loss if one is given."""
        loss = self._eval_closure(closure)
        with _no_grad():
            for group in self.param_groups:
                params = self._params_with_grad(group)
                self._update_group(group, params)
                for p in params:
                    _bump_version(p)
        return loss

    def _update_group(self, group: dict[str, Any], params: list[Any]) -> None:
        raise NotImplementedError
