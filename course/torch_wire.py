"""PyTorch objects as plain data, for the trusted re-run's protocol (``course.remote``).

A test of notebook 07 hands the student's function a module, tensors, an optimizer, a DataLoader and a
loss; none of them may cross between the grader and the student's process as an object (no pickle, no
handle on the grader's own object). Each crosses as a *description* instead, from a closed set:

- a tensor: its values (a NumPy array), ``requires_grad``, whether it is an ``nn.Parameter``, its ``grad``;
- a module of :data:`MODULE_TYPES` (torch's layers, ``Sequential``, the course's features-then-classifier
  model :class:`HeadedModel`, two losses): its type, the attributes its type declares (``in_features``,
  ``kernel_size``...), ``training``, its parameters, buffers and submodules (described in turn), the plain
  attributes a student set on it, and the :class:`CallLog` hooks a test put on it;
- an optimizer of :data:`OPTIMIZER_TYPES`: its type, defaults, groups (hyperparameters and parameters) and
  per-parameter state;
- a ``DataLoader`` over a ``TensorDataset`` read in order: its tensors, ``batch_size`` and ``drop_last``;
- a :class:`CallLog`: what the module it watches was called with (batch sizes, autograd on or off).

The other side rebuilds real objects from the description (:func:`build`, never a constructor that a
description's numbers could make allocate: memory comes only from the arrays in the message). After the
call the student's process sends back the new state of each object it was given, and the grader applies
it to its own objects in place (:func:`apply`), so that ``freeze(model) is model``, ``model.classifier is
old`` or ``id(p)`` of a parameter in a returned group mean what they mean in one process. Everything the
student's process sends is type-checked here (exact types of the closed set, names, plain values); a
malformed description is a protocol violation.

This file runs in the student's process too (copied beside ``course.remote``): it imports only torch
and NumPy, never ``course`` or ``nnlab``. The grader registers its own features-then-classifier classes
(``nnlab.zoo.SmallCNN``) with :func:`register_headed`.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset
from torch.utils.data._utils.collate import default_collate

try:
    from course.call_log import CallLog
except ImportError:  # the student's process of the trusted re-run: a copy beside this file, no course package
    from call_log import CallLog  # type: ignore[no-redef]

MAX_CALLS = 100_000   # entries of a CallLog carried back
MAX_EXTRA = 16        # plain attributes a student set on one module
_PLAIN = (type(None), bool, int, float, str)


class HeadedModel(nn.Module):
    """A backbone ``features`` then a head ``classifier`` (the shape of ``nnlab.zoo.SmallCNN``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# type name -> (class, the attributes its instances carry)
_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "transposed",
         "output_padding", "groups", "padding_mode")
_BN = ("num_features", "eps", "momentum", "affine", "track_running_stats")
MODULE_TYPES: dict[str, tuple[type, tuple[str, ...]]] = {
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "Conv1d": (nn.Conv1d, _CONV),
    "Conv2d": (nn.Conv2d, _CONV),
    "BatchNorm1d": (nn.BatchNorm1d, _BN),
    "BatchNorm2d": (nn.BatchNorm2d, _BN),
    "LayerNorm": (nn.LayerNorm, ("normalized_shape", "eps", "elementwise_affine")),
    "ReLU": (nn.ReLU, ("inplace",)),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope", "inplace")),
    "Tanh": (nn.Tanh, ()),
    "Sigmoid": (nn.Sigmoid, ()),
    "GELU": (nn.GELU, ("approximate",)),
    "Dropout": (nn.Dropout, ("p", "inplace")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                 "divisor_override")),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "Identity": (nn.Identity, ()),
    "Sequential": (nn.Sequential, ()),
    "HeadedModel": (HeadedModel, ()),
    "CrossEntropyLoss": (nn.CrossEntropyLoss, ("reduction", "ignore_index", "label_smoothing")),
    "MSELoss": (nn.MSELoss, ("reduction",)),
}
_MODULE_NAMES: dict[type, str] = {cls: name for name, (cls, _) in MODULE_TYPES.items()}
OPTIMIZER_TYPES: dict[str, type] = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW,
                                    "RMSprop": torch.optim.RMSprop, "Adagrad": torch.optim.Adagrad}
_OPTIMIZER_NAMES = {cls: name for name, cls in OPTIMIZER_TYPES.items()}
# Optimizer settings that would make torch run something else than the plain update (another device, kernel).
_FIXED_SETTINGS = {"foreach": (None, False), "fused": (None, False), "capturable": (False,),
                   "differentiable": (False,)}


def register_headed(cls: type) -> None:
    """Let modules of ``cls`` (a features-then-classifier model, ``forward = classifier(features(x))``) cross."""
    _MODULE_NAMES[cls] = "HeadedModel"


try:  # the grader's end: the zoo's CNN crosses as a HeadedModel (the student's process has no nnlab)
    from nnlab.zoo import SmallCNN as _SmallCNN
except ImportError:
    pass
else:
    register_headed(_SmallCNN)


class Malformed(ValueError):
    """A description that does not describe an object of the closed set."""


def _refuse(obj: Any, why: str = "") -> TypeError:
    return TypeError(f"a {type(obj).__module__}.{type(obj).__name__} cannot be passed between the grader and your "
                     f"code{why}: only tensors, torch.nn's layers ({', '.join(sorted(MODULE_TYPES)[:8])}, ...), "
                     f"the optimizers {', '.join(OPTIMIZER_TYPES)} and a DataLoader over a TensorDataset can")


# -- what crosses ---------------------------------------------------------------------------------

def kind_of(obj: Any) -> str | None:
    """``"tensor"``, ``"module"``, ``"optimizer"``, ``"loader"`` or ``"calllog"``; None for what is not torch's.

    A torch object outside the closed set raises ``TypeError`` (it must not turn into a handle).
    """
    t = type(obj)
    if t is torch.Tensor or t is nn.Parameter:
        return "tensor"
    if t in _MODULE_NAMES:
        return "module"
    if t in _OPTIMIZER_NAMES:
        return "optimizer"
    if t is DataLoader:
        return "loader"
    if t is CallLog:
        return "calllog"
    if isinstance(obj, (torch.Tensor, nn.Module, torch.optim.Optimizer, torch.utils.data.DataLoader,
                        torch.utils.data.Dataset, torch.dtype, torch.device, torch.Generator)):
        raise _refuse(obj)
    return None


def describe(obj: Any, kind: str, strict: bool) -> dict:
    """The description of ``obj`` as a dict of plain values (its tensors and submodules left as objects).

    ``strict`` is the grader's end: an object it cannot describe faithfully (a hook of its own) is refused.
    """
    if kind == "tensor":
        return _describe_tensor(obj)
    if kind == "module":
        return _describe_module(obj, strict)
    if kind == "optimizer":
        return {"type": _OPTIMIZER_NAMES[type(obj)], "defaults": dict(obj.defaults),
                "groups": [dict(g) for g in obj.param_groups],
                "state": [[p, dict(s)] for p, s in obj.state.items() if s]}
    if kind == "loader":
        if not (type(obj.dataset) is TensorDataset and type(obj.sampler) is SequentialSampler
                and type(obj.batch_sampler) is BatchSampler and obj.collate_fn is default_collate
                and type(obj.batch_size) is int):
            raise _refuse(obj, " unless it reads a TensorDataset in order with the default collate")
        return {"tensors": list(obj.dataset.tensors), "batch_size": obj.batch_size, "drop_last": bool(obj.drop_last)}
    return {"calls": [list(c) for c in obj.calls[:MAX_CALLS]]}


def _describe_tensor(t: torch.Tensor) -> dict:
    if t.device.type != "cpu":
        raise TypeError(f"a tensor on {t.device} cannot be passed between the grader and your code (CPU only)")
    try:
        data = t.detach().numpy()
        grad = None if t.grad is None else t.grad.detach().numpy()
    except (TypeError, RuntimeError) as exc:
        raise TypeError(f"a {t.dtype} tensor cannot be passed between the grader and your code ({exc})") from None
    return {"data": data, "requires_grad": bool(t.requires_grad), "parameter": type(t) is nn.Parameter, "grad": grad}


def _hooks(module: nn.Module, strict: bool) -> list:
    logs = [h for h in module._forward_pre_hooks.values() if kind_of_safe(h) == "calllog"]
    if strict:
        others = [d for d in (module._forward_hooks, module._backward_hooks, module._backward_pre_hooks,
                              module._forward_pre_hooks_with_kwargs, module._forward_hooks_with_kwargs) if d]
        if others or len(logs) != len(module._forward_pre_hooks):
            raise TypeError(f"a {type(module).__name__} with hooks cannot be passed to the student's process (only "
                            "course.torch_wire.CallLog hooks can)")
    return logs


def _describe_module(m: nn.Module, strict: bool) -> dict:
    name = _MODULE_NAMES[type(m)]
    declared = MODULE_TYPES[name][1]
    return {"type": name, "training": bool(m.training),
            "attrs": {a: m.__dict__[a] for a in declared if a in m.__dict__},
            "extra": _extras(m, declared),
            "params": dict(m._parameters), "buffers": dict(m._buffers), "modules": dict(m._modules),
            "hooks": _hooks(m, strict)}


def _extras(m: nn.Module, declared: tuple[str, ...]) -> dict:
    """Plain attributes set on the module beyond its type's own (``module.requires_grad = False``)."""
    out = {}
    for key, value in m.__dict__.items():
        if (type(key) is str and not key.startswith("_") and key != "training" and key not in declared
                and type(value) in _PLAIN and not hasattr(type(m), key)
                and not any(key in d for d in (m._parameters, m._buffers, m._modules))):
            out[key] = value
            if len(out) >= MAX_EXTRA:
                break
    return out


def kind_of_safe(obj: Any) -> str | None:
    try:
        return kind_of(obj)
    except TypeError:
        return None


# -- rebuilding -----------------------------------------------------------------------------------

def _need(cond: bool, what: str) -> None:
    if not cond:
        raise Malformed(what)


def _dict(state: Any, keys: tuple[str, ...]) -> dict:
    _need(type(state) is dict and set(state) == set(keys), "a description with the wrong fields")
    return state


def _name(key: Any) -> str:
    _need(type(key) is str and 0 < len(key) <= 100 and "." not in key and (key.isidentifier() or key.isdigit()),
          "a malformed parameter or module name")
    return key


def _plain_attr(value: Any, depth: int = 0) -> bool:
    if type(value) in _PLAIN:
        return True
    return type(value) in (tuple, list) and depth == 0 and len(value) <= 8 and all(_plain_attr(v, 1) for v in value)


def build(kind: str, state: Any, strict: bool) -> Any:
    """A real object from a description (every field checked: a problem raises :class:`Malformed`).

    The grader's end (``strict``) never builds an optimizer: it only reads the state of its own one back
    (:class:`OptimizerState`).
    """
    if kind == "tensor":
        return _build_tensor(state)
    if kind == "module":
        return _build_module(state)
    if kind == "optimizer":
        return _build_optimizer(state, strict)
    if kind == "loader":
        s = _dict(state, ("tensors", "batch_size", "drop_last"))
        _need(type(s["tensors"]) is list and all(type(t) is torch.Tensor for t in s["tensors"])
              and type(s["batch_size"]) is int and s["batch_size"] > 0 and type(s["drop_last"]) is bool,
              "a malformed DataLoader")
        return DataLoader(TensorDataset(*s["tensors"]), batch_size=s["batch_size"], shuffle=False,
                          drop_last=s["drop_last"])
    if kind == "calllog":
        s = _dict(state, ("calls",))
        _need(type(s["calls"]) is list and len(s["calls"]) <= MAX_CALLS
              and all(type(c) is list and len(c) == 2 and type(c[0]) is int and type(c[1]) is bool for c in s["calls"]),
              "a malformed call log")
        log = CallLog()
        log.calls = s["calls"]
        return log
    raise Malformed(f"an unknown kind of torch object {kind[:30]!r}")


def _build_tensor(state: Any) -> torch.Tensor:
    s = _dict(state, ("data", "requires_grad", "parameter", "grad"))
    data, grad = s["data"], s["grad"]
    _need(type(data) is np.ndarray and type(s["requires_grad"]) is bool and type(s["parameter"]) is bool
          and (grad is None or type(grad) is np.ndarray and grad.shape == data.shape and grad.dtype == data.dtype),
          "a malformed tensor")
    try:
        t = torch.from_numpy(np.array(data, copy=True))
    except TypeError as exc:  # a dtype torch has no tensor for (uint32 in old versions, complex32...)
        raise Malformed(f"a tensor of an unsupported type ({exc})") from None
    floating = t.is_floating_point() or t.is_complex()
    _need(floating or not s["requires_grad"], "a tensor of integers that requires grad")
    t = nn.Parameter(t, requires_grad=s["requires_grad"]) if s["parameter"] else t.requires_grad_(s["requires_grad"])
    if grad is not None:
        t.grad = torch.from_numpy(np.array(grad, copy=True))
    return t


def _build_module(state: Any) -> nn.Module:
    s = _dict(state, ("type", "training", "attrs", "extra", "params", "buffers", "modules", "hooks"))
    _need(type(s["type"]) is str and s["type"] in MODULE_TYPES, "a module of a type outside the closed set")
    cls, declared = MODULE_TYPES[s["type"]]
    attrs, extra = s["attrs"], s["extra"]
    _need(type(s["training"]) is bool, "a module whose training flag is not a bool")
    _need(type(attrs) is dict and set(attrs) == set(declared) and all(_plain_attr(v) for v in attrs.values()),
          f"a {s['type']} with the wrong attributes")
    _need(type(extra) is dict and len(extra) <= MAX_EXTRA
          and all(type(k) is str and k.isidentifier() and not k.startswith("_") and k not in declared
                  and k != "training" and not hasattr(cls, k) and type(v) in _PLAIN for k, v in extra.items()),
          "a module with malformed attributes")
    _need(all(type(s[f]) is not dict or not set(extra) & set(s[f]) for f in ("params", "buffers", "modules")),
          "a plain attribute that hides a parameter or a submodule")
    m = cls.__new__(cls)
    nn.Module.__init__(m)  # no constructor: its numbers could allocate; the tensors come from the message
    for key, value in attrs.items():
        object.__setattr__(m, key, tuple(value) if type(value) is list else value)
    if s["type"] in ("Conv1d", "Conv2d"):
        _need(all(type(v) is int and 0 <= v < 2 ** 20 for v in _ints(attrs["padding"])), "a conv's padding")
        m._reversed_padding_repeated_twice = tuple(x for x in reversed(_ints(attrs["padding"])) for _ in range(2))
    for key, value in extra.items():
        object.__setattr__(m, key, value)
    m.training = s["training"]
    for field, kinds in (("params", (nn.Parameter,)), ("buffers", (torch.Tensor,)), ("modules", tuple(_MODULE_NAMES))):
        items = s[field]
        _need(type(items) is dict and all(v is None or type(v) in kinds for v in items.values()),
              f"a module whose {field} are of the wrong kind")
        target = getattr(m, "_" + field if field != "params" else "_parameters")
        for key, value in items.items():
            target[_name(key)] = value
    _need(type(s["hooks"]) is list and all(kind_of_safe(h) == "calllog" for h in s["hooks"]), "malformed hooks")
    for log in s["hooks"]:
        m.register_forward_pre_hook(log)
    return m


def _ints(value: Any) -> tuple:
    return tuple(value) if type(value) in (tuple, list) else (value,)


class OptimizerState:
    """An optimizer's state as the student's process sent it back (the grader applies it to its own one)."""

    def __init__(self, name: str, groups: list[dict], state: list[list]):
        self.name, self.groups, self.state = name, groups, state


def _build_optimizer(state: Any, strict: bool) -> Any:
    s = _dict(state, ("type", "defaults", "groups", "state"))
    _need(type(s["type"]) is str and s["type"] in OPTIMIZER_TYPES, "an optimizer outside the closed set")
    groups, per_param = s["groups"], s["state"]
    _need(type(groups) is list and all(type(g) is dict and all(type(k) is str for k in g) and type(g.get("params"))
                                       is list and all(type(p) is nn.Parameter for p in g["params"]) for g in groups),
          "malformed optimizer groups")
    _need(type(per_param) is list and all(type(e) is list and len(e) == 2 and type(e[0]) is nn.Parameter
                                          and type(e[1]) is dict and all(type(k) is str for k in e[1])
                                          for e in per_param), "a malformed optimizer state")
    for g in groups:
        _need(all(_plain_attr(v) for k, v in g.items() if k != "params"), "malformed optimizer settings")
    for _, st in per_param:
        _need(all(type(v) is torch.Tensor or type(v) in (int, float, bool, type(None)) for v in st.values()),
              "a malformed optimizer state")
    if strict:
        return OptimizerState(s["type"], groups, per_param)
    defaults = s["defaults"]
    _need(type(defaults) is dict, "malformed optimizer defaults")
    opt = OPTIMIZER_TYPES[s["type"]]([{k: tuple(v) if type(v) is list else v for k, v in g.items()} for g in groups],
                                     **{k: tuple(v) if type(v) is list else v for k, v in defaults.items()})
    for p, st in per_param:
        opt.state[p] = dict(st)
    return opt


# -- writing back ---------------------------------------------------------------------------------

def snapshot(obj: Any, kind: str) -> Any:
    """What to compare after a call (the student's end): has the call changed ``obj``?"""
    if kind == "tensor":
        return (obj.detach().clone(), obj.dtype, obj.requires_grad, None if obj.grad is None else obj.grad.clone())
    if kind == "module":
        return _shallow(obj)
    if kind == "calllog":
        return len(obj.calls)
    return None  # an optimizer always goes back; a loader never


def changed(obj: Any, kind: str, before: Any) -> bool:
    if kind == "tensor":
        data, dtype, rg, grad = before
        now = obj.detach()
        if now.dtype != dtype or now.shape != data.shape or obj.requires_grad != rg or not torch.equal(now, data):
            return True
        return (obj.grad is None) != (grad is None) or grad is not None and not torch.equal(obj.grad, grad)
    if kind == "module":
        return _shallow(obj) != before
    if kind == "calllog":
        return len(obj.calls) != before
    return kind == "optimizer"


def _shallow(m: nn.Module) -> tuple:
    """A module's own state, its parts by identity (each part that changes is sent back on its own)."""
    plain = [(k, v) for k, v in m.__dict__.items() if type(v) in _PLAIN or type(v) is tuple]
    return (type(m), m.training, plain, [(k, id(v)) for k, v in m._parameters.items()],
            [(k, id(v)) for k, v in m._buffers.items()], [(k, id(v)) for k, v in m._modules.items()])


def apply(original: Any, new: Any, kind: str) -> None:
    """Give the grader's ``original`` the state ``new`` that the student's process sent back (checked by build)."""
    if kind == "tensor":
        _need(type(new) is type(original) or type(new) is torch.Tensor and type(original) is torch.Tensor,
              "a tensor written back as a parameter, or the reverse")
        with torch.no_grad():
            original.data = new.data
        if original.is_leaf:
            _need(original.is_floating_point() or original.is_complex() or not new.requires_grad,
                  "a tensor of integers that requires grad")
            original.requires_grad_(new.requires_grad)
            original.grad = new.grad
        return
    if kind == "module":
        name = _MODULE_NAMES.get(type(new))
        _need(name == _MODULE_NAMES[type(original)], "a module written back as another type")
        for key in [k for k in _extras(original, MODULE_TYPES[name][1])]:
            del original.__dict__[key]
        for key in MODULE_TYPES[name][1]:
            object.__setattr__(original, key, new.__dict__[key])
        if "_reversed_padding_repeated_twice" in new.__dict__:
            original._reversed_padding_repeated_twice = new._reversed_padding_repeated_twice
        for key, value in _extras(new, MODULE_TYPES[name][1]).items():
            object.__setattr__(original, key, value)
        original.training = new.training
        for field in ("_parameters", "_buffers", "_modules"):
            target = getattr(original, field)
            target.clear()
            target.update(getattr(new, field))
        return
    if kind == "optimizer":
        _apply_optimizer(original, new)
        return
    if kind == "calllog":
        original.calls[:] = new.calls
        return
    raise Malformed(f"a {kind} cannot be written back")


def _apply_optimizer(original: torch.optim.Optimizer, new: Any) -> None:
    _need(type(new) is OptimizerState and new.name == _OPTIMIZER_NAMES[type(original)]
          and len(new.groups) == len(original.param_groups), "an optimizer written back with other groups")
    for group, sent in zip(original.param_groups, new.groups):
        _need(len(sent["params"]) == len(group["params"])
              and all(a is b for a, b in zip(sent["params"], group["params"])),
              "an optimizer written back with other parameters")
        for key, value in sent.items():
            if key != "params" and key in group:
                value = tuple(value) if type(value) is list else value
                if key in _FIXED_SETTINGS:
                    _need(value in _FIXED_SETTINGS[key], f"an optimizer setting {key!r} the grader does not run")
                _need(type(value) is type(group[key]) or {type(value), type(group[key])} <= {int, float},
                      f"an optimizer setting {key!r} of another type")
                group[key] = value
    mine = {id(p) for g in original.param_groups for p in g["params"]}
    _need(all(id(p) in mine for p, _ in new.state), "optimizer state for a parameter it does not train")
    original.state = collections.defaultdict(dict, {p: dict(st) for p, st in new.state})
