"""The parts of ``Module`` that are long but not central: loading a state_dict (with
torch's collect-every-problem error report), hook handles, and repr helpers."""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tinytorch import _dtype
from tinytorch.nn.parameter import Parameter
from tinytorch.tensor import Size, Tensor

if TYPE_CHECKING:
    from tinytorch.nn.modules.module import Module

EXTRA_STATE_KEY_SUFFIX = "_extra_state"
_TENSOR_TYPES = {
    "float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
    "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor",
    "uint8": "ByteTensor", "bool": "BoolTensor",
}  # fmt: skip


def typename(obj: Any) -> str:
    """torch.typename: ``tinytorch.FloatTensor`` for tensors, ``module.Class`` otherwise."""
    if isinstance(obj, Tensor):
        return "tinytorch." + _TENSOR_TYPES[obj.dtype.name]
    cls = type(obj)
    module = cls.__module__ or ""
    return cls.__qualname__ if module in ("", "builtins") else f"{module}.{cls.__qualname__}"


def addindent(s: str, num_spaces: int) -> str:
    """Indent every line but the first (blank lines stay empty), as torch's repr."""
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    rest = [(num_spaces * " ") + line if line.strip() else "" for line in lines[1:]]
    return "\n".join([lines[0], *rest])


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: ``(missing_keys, unexpected_keys)``."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class RemovableHandle:
    """Returned by ``register_forward_(pre_)hook``; ``remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, *dicts: dict) -> None:
        self.id = next(RemovableHandle._ids)
        self._dicts = dicts

    @classmethod
    def add(cls, hooks: OrderedDict, with_kwargs_ids: dict, hook: Any, prepend: bool,
            with_kwargs: bool) -> RemovableHandle:  # fmt: skip
        """Register ``hook`` in ``hooks`` (first if ``prepend``) and return its handle."""
        handle = cls(hooks, with_kwargs_ids)
        hooks[handle.id] = hook
        if with_kwargs:
            with_kwargs_ids[handle.id] = True
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def remove(self) -> None:
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def call_with_hooks(module: Module, args: tuple, kwargs: dict) -> Any:
    """Forward pre-hooks (may replace the arguments), ``forward``, forward hooks (may
    replace the output)."""
    for hook_id, hook in list(module._forward_pre_hooks.items()):
        if hook_id in module._forward_pre_hooks_with_kwargs:
            res = hook(module, args, kwargs)
            if res is not None:
                if not (isinstance(res, tuple) and len(res) == 2):
                    raise RuntimeError("forward pre-hook must return None or a tuple of "
                                       f"(new_args, new_kwargs), but got {res}.")  # fmt: skip
                args, kwargs = res
        else:
            res = hook(module, args)
            if res is not None:
                args = res if isinstance(res, tuple) else (res,)
    result = module.forward(*args, **kwargs)
    for hook_id, hook in list(module._forward_hooks.items()):
        if hook_id in module._forward_hooks_with_kwargs:
            res = hook(module, args, kwargs, result)
        else:
            res = hook(module, args, result)
        if res is not None:
            result = res
    return result


def check_name(module: Module, kind: str, name: Any, registry: str) -> None:
    """torch's checks on the name of a parameter, buffer or submodule being registered."""
    if registry not in module.__dict__:
        raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {typename(name)}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if hasattr(module, name) and name not in module.__dict__[registry]:
        raise KeyError(f"attribute '{name}' already exists")


def parse_to_args(args: tuple, kwargs: dict) -> np.dtype | None:
    """The floating dtype asked for by ``Module.to(...)`` (None: no change); any device
    other than the cpu is an error."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() received an invalid combination of arguments: {kwargs}")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, (_dtype.dtype, np.dtype)) or (
            isinstance(a, type) and (a in (float, int, bool) or issubclass(a, np.generic))
        ):
            dtype = a
        elif not isinstance(a, bool):
            device = a
    if device is not None and str(device) not in ("cpu", "cpu:0"):
        raise RuntimeError(f"tinytorch only has the cpu device, got {device!r}")
    if dtype is None:
        return None
    npd = _dtype.to_numpy_dtype(dtype)
    assert npd is not None  # dtype is not None here
    if npd.kind != "f":
        raise TypeError(
            "nn.Module.to only accepts floating point or complex dtypes, but got desired "
            f"dtype={_dtype.from_numpy_dtype(npd)}"
        )
    return npd


def _as_array(value: Any) -> np.ndarray | None:
    """The array behind a checkpoint entry: a Tensor, an ndarray or another tensor-like
    with ``__array__`` (a torch tensor); None if it is none of these."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "shape") and hasattr(value, "__array__"):
        if hasattr(value, "detach"):
            value = value.detach()
        return np.asarray(value)
    return None


def _overrides(module: Module, name: str) -> bool:
    from tinytorch.nn.modules.module import Module

    return getattr(type(module), name) is not getattr(Module, name)


def save_to_state_dict(module: Module, destination: dict, prefix: str, keep_vars: bool) -> None:
    """Put the module's own parameters and persistent buffers (not its children's) into
    ``destination`` under ``prefix + name``."""
    for name, param in module._parameters.items():
        if param is not None:
            destination[prefix + name] = param if keep_vars else param.detach()
    for name, buf in module._buffers.items():
        if buf is not None and name not in module._non_persistent_buffers_set:
            destination[prefix + name] = buf if keep_vars else buf.detach()
    if _overrides(module, "get_extra_state"):
        destination[prefix + EXTRA_STATE_KEY_SUFFIX] = module.get_extra_state()


def _copy_entry(module: Module, name: str, param: Tensor, arr: np.ndarray, assign: bool) -> None:
    if assign:
        new = Tensor._make(np.array(arr, copy=True))
        if isinstance(param, Parameter):
            new = Parameter(new, requires_grad=param.requires_grad)
        setattr(module, name, new)
    else:
        # In place, so that optimizers holding these arrays keep seeing them.
        np.copyto(param.data, arr, casting="unsafe")
        param._vc[0] += 1


def load_from_state_dict(module: Module, state_dict: Mapping[str, Any], prefix: str,
                         local_metadata: dict, strict: bool, missing_keys: list[str],
                         unexpected_keys: list[str], error_msgs: list[str]) -> None:  # fmt: skip
    """Copy the module's own entries from ``state_dict``, collecting every problem in the
    three lists instead of raising (torch's ``_load_from_state_dict``)."""
    local_state = {
        k: v
        for k, v in itertools.chain(module._parameters.items(), module._buffers.items())
        if v is not None and k not in module._non_persistent_buffers_set
    }
    assign = local_metadata.get("assign_to_params_buffers", False)
    for name, param in local_state.items():
        key = prefix + name
        if key not in state_dict:
            if strict:
                missing_keys.append(key)
            continue
        arr = _as_array(state_dict[key])
        if arr is None:
            error_msgs.append(
                f'While copying the parameter named "{key}", expected tinytorch.Tensor or '
                f"Tensor-like object from checkpoint but received {type(state_dict[key])}"
            )
            continue
        if param.data.ndim == 0 and arr.shape == (1,):
            arr = arr[0]
        if arr.shape != param.data.shape:
            error_msgs.append(
                f"size mismatch for {key}: copying a param with shape {Size(arr.shape)} from "
                f"checkpoint, the shape in current model is {param.shape}."
            )
            continue
        _copy_entry(module, name, param, arr, assign)
    extra_key = prefix + EXTRA_STATE_KEY_SUFFIX
    if _overrides(module, "set_extra_state"):
        if extra_key in state_dict:
            module.set_extra_state(state_dict[extra_key])
        elif strict:
            missing_keys.append(extra_key)
    elif strict and extra_key in state_dict:
        unexpected_keys.append(extra_key)
    if strict:
        for key in state_dict:
            if key.startswith(prefix) and key != extra_key:
                head = key[len(prefix) :].split(".", 1)
                known = module._modules if len(head) > 1 else local_state
                if head[0] not in known:
                    unexpected_keys.append(key)


def load_state_dict(module: Module, state_dict: Mapping[str, Any], strict: bool, assign: bool
                    ) -> IncompatibleKeys:  # fmt: skip
    """Walk the module tree calling each ``_load_from_state_dict`` on its slice of the
    dict, then raise one RuntimeError listing every problem (torch's format)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []
    metadata = getattr(state_dict, "_metadata", None)
    todo: list[tuple[Module, dict[str, Any], str]] = [(module, OrderedDict(state_dict), "")]
    while todo:  # depth first, children in registration order (as torch's recursion)
        mod, local, prefix = todo.pop()
        meta = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
        if assign:
            meta["assign_to_params_buffers"] = True
        mod._load_from_state_dict(local, prefix, meta, True, missing, unexpected, errors)
        children: list[tuple[Module, dict[str, Any], str]] = []
        for name, child in mod._modules.items():
            if child is not None:
                p = prefix + name + "."
                children.append((child, {k: v for k, v in local.items() if k.startswith(p)}, p))
        todo.extend(reversed(children))
    if strict:
        if unexpected:
            keys = ", ".join(f'"{k}"' for k in unexpected)
            errors.insert(0, f"Unexpected key(s) in state_dict: {keys}. ")
        if missing:
            keys = ", ".join(f'"{k}"' for k in missing)
            errors.insert(0, f"Missing key(s) in state_dict: {keys}. ")
    if errors:
        raise RuntimeError(
            f"Error(s) in loading state_dict for {type(module).__name__}:\n\t" + "\n\t".join(errors)
        )
    return IncompatibleKeys(missing, unexpected)
