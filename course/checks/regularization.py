"""Hidden tests for notebook 03: L2 and L1 penalties, their gradients, and early stopping.

Weights are the entries of ``params`` whose name starts with ``"W"``; biases ``"b*"`` and the
normalization parameters ``"gamma*"``, ``"beta*"`` are never penalized (zero gradients).
The penalties are compared with the library's references, with PyTorch autograd of the same
penalty and with a numerical gradient; ``EarlyStopping`` is driven over many epochs with several
``patience`` and ``min_delta`` values and compared with the reference call by call up to the
first call that says stop (what a trainer does afterwards is left open).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from itertools import combinations
from typing import Any

import numpy as np

from course.testing import (Mistake, call, check_array, check_close, check_gradient, check_scalar, check_unchanged,
                            diagnose, fail, snapshot)
from nnlab import regularization as ref
from nnlab.gradcheck import numerical_gradient

NON_WEIGHTS = ("b", "gamma", "beta")


# --------------------------------------------------------------------------- shared helpers

def _params(rng: np.random.Generator, sizes: list[int], *, dtype: Any = np.float64, norm: bool = False,
            scale: float = 1.0, order: str = "natural") -> dict[str, np.ndarray]:
    """A network's parameter dict: W (a, b), b (b,), and gamma/beta (b,) for hidden layers when ``norm``.

    Biases, gammas and betas are nonzero so that penalizing them changes the result.
    """
    params: dict[str, np.ndarray] = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = (scale * rng.standard_normal((a, b))).astype(dtype)
        params[f"b{i}"] = (1.0 + rng.standard_normal(b)).astype(dtype)
        if norm and i < len(sizes) - 1:
            params[f"gamma{i}"] = (1.0 + 0.5 * rng.standard_normal(b)).astype(dtype)
            params[f"beta{i}"] = (0.5 + rng.standard_normal(b)).astype(dtype)
    if order == "shuffled":  # a dict whose biases come before the weights
        keys = list(params)
        params = {k: params[k] for k in (keys[1::2] + keys[0::2])}
    return params


# (sizes, normalization parameters, dtype, scale of W, lam, m)
CASES = [
    ([3, 4, 2], False, np.float64, 1.0, 0.7, 7),
    ([5, 1, 3], True, np.float64, 1.0, 3.0, 13),
    ([1, 1], False, np.float64, 1.0, 2.5, 1),
    ([2, 6, 4, 3], True, np.float64, 1.0, 1e-3, 50),
    ([4, 3], False, np.float64, 1e3, 0.5, 9),
    ([3, 5, 2], True, np.float32, 1.0, 0.9, 11),
    ([6, 2, 2], False, np.float64, 1.0, 4.0, 2),
]


def _is_weight(k: str) -> bool:
    return k.startswith("W")


def _group(k: str) -> str:
    for g in ("gamma", "beta", "b"):
        if k.startswith(g):
            return g
    return "W"


def _describe(params: Mapping[str, np.ndarray], lam: float, m: int) -> str:
    arrays = ", ".join(f"{k} {v.shape}" for k, v in params.items())
    dtype = next(iter(params.values())).dtype
    return f"params {{{arrays}}} ({dtype}), lam={lam:g}, m={m}"


def _call_checked(fn: Callable, params: dict[str, np.ndarray], lam: float, m: int, name: str) -> Any:
    """Call ``fn(params, lam, m)`` and fail if it changed ``params`` (a key or an array)."""
    keys = list(params)
    before = {k: v.copy() for k, v in params.items()}
    result = call(fn, params, lam, m, name=name)
    if list(params) != keys:
        fail(f"{name} changed the keys of its argument `params`; leave the caller's dict as it is.")
    for k in keys:
        check_unchanged([before[k]], [params[k]], [f"params[{k!r}]"], fn_name=name)
    return result


def _torch_penalty(params: Mapping[str, np.ndarray], lam: float, m: int, kind: str) -> tuple[float, dict] | None:
    """The penalty and its gradients by PyTorch autograd (float64), or None without PyTorch."""
    try:
        import torch
    except ImportError:  # the references are compared with torch in the library's own tests too
        return None
    tensors = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in params.items()}
    weights = [t for k, t in tensors.items() if _is_weight(k)]
    if kind == "l2":
        value = lam / (2 * m) * sum((w ** 2).sum() for w in weights)
    else:
        value = lam / m * sum(w.abs().sum() for w in weights)
    value.backward()
    grads = {k: (t.grad.numpy() if t.grad is not None else np.zeros(t.shape)) for k, t in tensors.items()}
    return float(value.detach()), grads


def _penalty_with(params: Mapping[str, np.ndarray], lam: float, m: int, groups: tuple[str, ...], kind: str) -> float:
    """The penalty over the arrays of the given groups (e.g. ("W", "b") penalizes the biases too)."""
    f = (lambda v: np.sum(np.square(v, dtype=np.float64))) if kind == "l2" else \
        (lambda v: np.sum(np.abs(v), dtype=np.float64))
    total = sum(float(f(v)) for k, v in params.items() if _group(k) in groups)
    return lam / (2 * m) * total if kind == "l2" else lam / m * total


def _penalized_extras(params: Mapping[str, np.ndarray], lam: float, m: int, kind: str,
                      name: str) -> list[tuple[float, str]]:
    """Known-wrong values that also penalize biases and/or gamma/beta, with their messages."""
    present = [g for g in NON_WEIGHTS if any(_group(k) == g for k in params)]
    out = []
    for r in range(len(present), 0, -1):
        for extra in combinations(present, r):
            names = " and ".join({"b": "the biases b", "gamma": "gamma", "beta": "beta"}[g] for g in extra)
            out.append((_penalty_with(params, lam, m, ("W", *extra), kind),
                        f"{name} also penalizes {names}: penalize the weights only (the keys that start with "
                        f"'W'); biases and batch norm's gamma/beta are never penalized."))
    return out


# --------------------------------------------------------------------------- L2

def check_l2_penalty(l2_penalty: Callable) -> None:
    """lam/(2m) * sum ||W||_F^2 over the weights only, many shapes and dtypes, params unchanged, vs torch."""
    name = "l2_penalty"
    rng = np.random.default_rng(300)
    for sizes, norm, dtype, scale, lam, m in CASES:
        for order in ("natural", "shuffled"):
            params = _params(rng, sizes, dtype=dtype, norm=norm, scale=scale, order=order)
            what = f"{name}({_describe(params, lam, m)})"
            got = check_scalar(_call_checked(l2_penalty, params, lam, m, name), what=what)
            expected = ref.l2_penalty(params, lam, m)
            sq = [float(np.sum(np.square(v, dtype=np.float64))) for k, v in params.items() if _is_weight(k)]
            first_w = next(k for k in params if _is_weight(k))
            mistakes = _penalized_extras(params, lam, m, "l2", name) + [
                (2 * expected, f"{name} is twice the right value: it is missing the 1/2 in lam / (2m) * sum ||W||^2."),
                (m * expected if m > 2 else None, f"{name} does not divide by m: the penalty is lam / (2m) * sum "
                 "||W||^2, on the scale of a data loss averaged over m samples."),
                (2 * m * expected if m > 1 else None, f"{name} is missing both the 1/2 and the 1/m: lam / (2m) * "
                 "sum ||W||^2."),
                (expected / lam if lam != 1 else None, f"{name} ignores `lam`: multiply by lam / (2m)."),
                (lam / (2 * m) * sum(math.sqrt(s) for s in sq), f"{name} sums the Frobenius norms ||W||; the "
                 "penalty uses the squared norms ||W||^2 = np.sum(W ** 2)."),
                (lam / (2 * m) * sum(s / params[k].size for s, k in zip(sq, [k for k in params if _is_weight(k)])),
                 f"{name} averages the squared weights (np.mean); sum them (np.sum(W ** 2))."),
                (lam / (2 * m) * float(np.sum(np.square(params[first_w], dtype=np.float64)))
                 if len(sq) > 1 else None, f"{name} penalizes only one weight matrix; sum over every weight "
                 "matrix W1, W2, ... in params."),
            ]
            rtol = 1e-5 if dtype == np.float32 else 1e-9
            hint = diagnose(got, [(w, msg) for w, msg in mistakes if w is not None], rtol=rtol, atol=0)
            check_close(got, expected, what=what, rtol=rtol, atol=1e-12, hint=hint)
    params = _params(rng, [3, 4, 2], norm=True)
    check_close(check_scalar(call(l2_penalty, params, 0.0, 5, name=name), what=f"{name} with lam=0"), 0.0,
                what=f"{name} with lam=0", atol=0)
    gold = _torch_penalty(params, 1.3, 6, "l2")
    if gold is not None:
        check_close(call(l2_penalty, params, 1.3, 6, name=name), gold[0], what=f"{name} against PyTorch's "
                    "lam / (2m) * sum((W ** 2).sum())", rtol=1e-9)


def _check_grads_dict(grads: Any, params: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """A dict with exactly the keys of params, each an array of its parameter's shape and dtype."""
    if not isinstance(grads, Mapping):
        fail(f"{name} should return a dict name -> gradient array (the keys of params), "
             f"but it returned {type(grads).__name__}.")
    missing = [k for k in params if k not in grads]
    if missing:
        fail(f"{name} returns no gradient for {missing}: return a dict with the same keys as params "
             f"(zeros, np.zeros_like(p), for the parameters that are not penalized, such as the biases).")
    extra = [k for k in grads if k not in params]
    if extra:
        fail(f"{name} returns keys {extra} that are not in params; use the keys of params.")
    for k, p in params.items():
        g = grads[k]
        if isinstance(g, np.ndarray) and g.shape == p.shape and g.dtype != p.dtype:
            fail(f"{name}: the gradient for {k!r} has dtype {g.dtype}, but it should keep the parameter's dtype "
                 f"{p.dtype} (np.zeros_like(p) and lam / m * W both keep it).")
        check_array(g, what=f"the gradient for {k!r} from {name}", shape=p.shape, dtype=p.dtype)
        if g is p:
            fail(f"{name} returns the parameter array {k!r} itself as its gradient; return a new array.")
    return dict(grads)


def _check_no_bias_grads(grads: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray], name: str) -> None:
    for k in params:
        if not _is_weight(k) and np.any(grads[k] != 0):
            what = "bias" if _group(k) == "b" else f"normalization parameter ({_group(k)})"
            fail(f"{name} gives the {what} {k!r} a nonzero gradient: only the weights (keys starting with 'W') "
                 f"are penalized, so every other gradient is zeros (np.zeros_like).")


def _numerical_and_torch(grads_fn: Callable, kind: str, name: str) -> None:
    """Float64 gradient check against the numerical gradient of the penalty, and against torch autograd."""
    penalty = ref.l2_penalty if kind == "l2" else ref.l1_penalty
    rng = np.random.default_rng(310 if kind == "l2" else 311)
    params = _params(rng, [4, 3, 2], norm=True)
    if kind == "l1":  # keep the weights away from the kink at 0, where the numerical gradient is meaningless
        for k in params:
            if _is_weight(k):
                params[k] = np.where(np.abs(params[k]) < 0.05, 0.3, params[k])
    lam, m = 0.8, 6
    grads = _check_grads_dict(_call_checked(grads_fn, params, lam, m, name), params, name)
    for k in params:
        numeric = numerical_gradient(lambda _: penalty(params, lam, m), params[k])
        check_gradient(grads[k], numeric, what=f"the gradient for {k!r} from {name}", tol=1e-7)
    gold = _torch_penalty(params, lam, m, kind)
    if gold is not None:
        for k in params:
            check_close(grads[k], gold[1][k], what=f"the gradient for {k!r} from {name} against PyTorch autograd",
                        rtol=1e-9, atol=1e-12)


def check_l2_penalty_grads(l2_penalty_grads: Callable) -> None:
    """lam/m * W for the weights, zeros elsewhere, same keys/shapes/dtypes, params unchanged, numerical and torch."""
    name = "l2_penalty_grads"
    rng = np.random.default_rng(301)
    for sizes, norm, dtype, scale, lam, m in CASES:
        params = _params(rng, sizes, dtype=dtype, norm=norm, scale=scale, order="shuffled" if norm else "natural")
        grads = _check_grads_dict(_call_checked(l2_penalty_grads, params, lam, m, name), params, name)
        _check_no_bias_grads(grads, params, name)
        rtol = 1e-5 if dtype == np.float32 else 1e-10
        for k, W in params.items():
            if not _is_weight(k):
                continue
            expected = ref.l2_penalty_grads(params, lam, m)[k]
            W64 = W.astype(np.float64)
            hint = diagnose(grads[k], [
                (lam / (2 * m) * W64, f"{name} is half the right gradient: the derivative of lam / (2m) * ||W||^2 "
                 "is lam / m * W (the 2 of the square cancels the 1/2)."),
                (2 * lam / m * W64, f"{name} is twice the right gradient: the 2 of the square cancels the 1/2, "
                 "so the gradient is lam / m * W."),
                (lam * W64 if m > 2 else None, f"{name} does not divide by m: the gradient is lam / m * W."),
                (W64 / m if lam != 1 else None, f"{name} ignores `lam`: the gradient is lam / m * W."),
                (lam / m * np.sign(W64), f"{name} returns lam / m * sign(W), the L1 gradient; L2's is lam / m * W."),
            ], rtol=rtol, atol=0)
            check_close(grads[k], expected, what=f"the gradient for {k!r} from {name}({_describe(params, lam, m)})",
                        rtol=rtol, atol=1e-12, hint=hint)
    params = _params(rng, [3, 2, 2], norm=True)
    grads = _check_grads_dict(call(l2_penalty_grads, params, 0.0, 4, name=name), params, name)
    for k in params:
        check_close(grads[k], np.zeros_like(params[k]), what=f"the gradient for {k!r} with lam=0", atol=0)
    _numerical_and_torch(l2_penalty_grads, "l2", name)


# --------------------------------------------------------------------------- L1

def check_l1_penalty(l1_penalty: Callable) -> None:
    """lam/m * sum |W| over the weights only, many shapes and dtypes, params unchanged, vs torch."""
    name = "l1_penalty"
    rng = np.random.default_rng(302)
    for sizes, norm, dtype, scale, lam, m in CASES:
        for order in ("natural", "shuffled"):
            params = _params(rng, sizes, dtype=dtype, norm=norm, scale=scale, order=order)
            first = next(k for k in params if _is_weight(k))
            params[first].flat[0] = 0.0  # an exact zero changes nothing, but must not break anything
            what = f"{name}({_describe(params, lam, m)})"
            got = check_scalar(_call_checked(l1_penalty, params, lam, m, name), what=what)
            expected = ref.l1_penalty(params, lam, m)
            absw = [float(np.sum(np.abs(v), dtype=np.float64)) for k, v in params.items() if _is_weight(k)]
            raw = [float(np.sum(v, dtype=np.float64)) for k, v in params.items() if _is_weight(k)]
            mistakes = _penalized_extras(params, lam, m, "l1", name) + [
                (expected / 2, f"{name} is half the right value: the L1 penalty is lam / m * sum |W|, with no 1/2 "
                 "(the 1/2 belongs to L2, where it cancels the 2 of the derivative of W^2)."),
                (m * expected if m > 1 else None, f"{name} does not divide by m: the penalty is lam / m * sum |W|."),
                (expected / lam if lam != 1 else None, f"{name} ignores `lam`: multiply by lam / m."),
                (lam / m * sum(raw), f"{name} forgets the absolute value: sum |W| (np.abs), not W."),
                (ref.l2_penalty(params, lam, m), f"{name} computes the L2 penalty (squares); L1 sums absolute "
                 "values: lam / m * sum |W|."),
                (lam / m * absw[0] if len(absw) > 1 else None, f"{name} penalizes only one weight matrix; sum "
                 "over every weight matrix W1, W2, ... in params."),
            ]
            rtol = 1e-5 if dtype == np.float32 else 1e-9
            hint = diagnose(got, [(w, msg) for w, msg in mistakes if w is not None], rtol=rtol, atol=0)
            check_close(got, expected, what=what, rtol=rtol, atol=1e-12, hint=hint)
    params = _params(rng, [3, 4, 2], norm=True)
    check_close(check_scalar(call(l1_penalty, params, 0.0, 5, name=name), what=f"{name} with lam=0"), 0.0,
                what=f"{name} with lam=0", atol=0)
    gold = _torch_penalty(params, 1.3, 6, "l1")
    if gold is not None:
        check_close(call(l1_penalty, params, 1.3, 6, name=name), gold[0], what=f"{name} against PyTorch's "
                    "lam / m * sum(W.abs().sum())", rtol=1e-9)


NAN_AT_ZERO = ("{name} is NaN (0/0) where a weight is exactly 0: W / |W| divides by zero there. Use np.sign(W), "
               "which is 0 at 0 (the subgradient of |w| the course uses).")


def _call_l1_grads(fn: Callable, params: dict[str, np.ndarray], lam: float, m: int, name: str) -> Any:
    has_zero = any(np.any(v == 0) for k, v in params.items() if _is_weight(k))
    try:
        grads = _call_checked(fn, params, lam, m, name)
    except Mistake as exc:
        if has_zero and "warning" in str(exc) and ("invalid value" in str(exc) or "divide" in str(exc)):
            fail(NAN_AT_ZERO.format(name=name))
        raise
    if isinstance(grads, Mapping):
        for k, v in params.items():
            g = grads.get(k)
            if _is_weight(k) and isinstance(g, np.ndarray) and g.shape == v.shape and np.any(np.isnan(g) & (v == 0)):
                fail(NAN_AT_ZERO.format(name=name))
    return grads


def check_l1_penalty_grads(l1_penalty_grads: Callable) -> None:
    """lam/m * sign(W) (0 at W == 0, exact for tiny weights), zeros elsewhere, same keys/dtypes, numerical and torch."""
    name = "l1_penalty_grads"
    rng = np.random.default_rng(303)
    for sizes, norm, dtype, scale, lam, m in CASES:
        params = _params(rng, sizes, dtype=dtype, norm=norm, scale=scale, order="shuffled" if norm else "natural")
        for k in params:
            if _is_weight(k):  # exact zeros and tiny weights in every weight matrix
                params[k].flat[0] = 0.0
                if params[k].size > 2:
                    params[k].flat[1] = dtype(-3e-13)
                    params[k].flat[2] = dtype(1e-12)
        grads = _check_grads_dict(_call_l1_grads(l1_penalty_grads, params, lam, m, name), params, name)
        _check_no_bias_grads(grads, params, name)
        rtol = 1e-5 if dtype == np.float32 else 1e-10
        for k, W in params.items():
            if not _is_weight(k):
                continue
            expected = ref.l1_penalty_grads(params, lam, m)[k]
            W64 = W.astype(np.float64)
            g = grads[k]
            what = f"the gradient for {k!r} from {name}({_describe(params, lam, m)})"
            if np.any(g[W == 0] != 0):
                fail(f"{name} gives a nonzero gradient where a weight is exactly 0 ({what}): the course uses "
                     "sign(0) = 0 (np.sign(W)), not +1 or -1.")
            if np.allclose(g, expected, rtol=rtol, atol=1e-12):
                continue
            hint = diagnose(g, [
                (lam / (2 * m) * np.sign(W64), f"{name} is half the right gradient: L1 has no 1/2, the gradient "
                 "is lam / m * sign(W)."),
                (lam * np.sign(W64) if m > 1 else None, f"{name} does not divide by m: the gradient is "
                 "lam / m * sign(W)."),
                (np.sign(W64) / m if lam != 1 else None, f"{name} ignores `lam`: the gradient is lam / m * sign(W)."),
                (lam / m * W64, f"{name} returns lam / m * W, the L2 gradient; L1's is lam / m * sign(W)."),
            ], rtol=rtol, atol=0)
            if hint:
                fail(f"{what} is wrong. {hint}")
            tiny = (W != 0) & (np.abs(W64) < 1e-9)
            if np.any(tiny) and not np.allclose(g[tiny], expected[tiny], rtol=rtol, atol=0):
                fail(f"{name} is not lam / m * sign(W) for tiny weights such as 1e-12 ({what}): dividing by "
                     "|W| + eps shrinks the gradient of small weights. Use np.sign(W), exactly +-1 for any "
                     "nonzero weight and 0 at 0.")
            check_close(g, expected, what=what, rtol=rtol, atol=1e-12)
    _numerical_and_torch(l1_penalty_grads, "l1", name)


# --------------------------------------------------------------------------- early stopping

Trace = list[tuple[bool, float, Any]]


def _simulate(losses: list[float], patience: int, min_delta: float, variant: str = "") -> Trace:
    """(stop, best_loss, best_epoch) after each call, up to the first stop, for the rule or a known mistake."""
    best, best_epoch, bad, prev = math.inf, None, 0, math.inf
    trace: Trace = []
    for epoch, loss in enumerate(losses):
        md = 0.0 if variant == "ignore_min_delta" else min_delta
        target = (prev if variant == "vs_previous" else best) - md
        if variant == "less_equal":
            improved = loss <= target
        elif variant == "nan_improves":
            improved = not loss >= target
        else:
            improved = loss < target
        if improved:
            best, best_epoch = loss, epoch
            if variant != "no_reset":
                bad = 0
        else:
            bad += 1
            if variant == "track_min" and loss < best:
                best = loss
        prev = loss
        if variant == "late":
            stop = bad > patience
        elif variant == "early":
            stop = bad >= patience - 1
        else:
            stop = bad >= patience
        trace.append((stop, best, best_epoch))
        if stop:
            break
    return trace


STOP_MISTAKES = [
    ("late", "stops one call late: return True as soon as `patience` consecutive calls brought no improvement "
             "(count >= patience, not count > patience)."),
    ("early", "stops one call early: after an improvement the count of calls without improvement restarts at 0, "
              "and it stops when that count reaches `patience`."),
    ("ignore_min_delta", "ignores min_delta: a call improves only when val_loss < best_loss - min_delta."),
    ("less_equal", "counts a loss equal to best_loss - min_delta as an improvement; the rule is strict: "
                   "val_loss < best_loss - min_delta."),
    ("no_reset", "does not reset its count after an improvement: it must count *consecutive* calls without "
                 "improvement."),
    ("vs_previous", "compares val_loss with the previous call's loss; compare it with the best loss so far "
                    "(best_loss)."),
    ("track_min", "changes best_loss on a call that did not improve by more than min_delta: update best_loss "
                  "(and best_epoch, best_params) only when a call improves."),
    ("nan_improves", "counts a NaN loss as an improvement (a diverged run must never become the best): test "
                     "`val_loss < best_loss - min_delta`, which is False for NaN."),
]


def _fmt_losses(losses: list[float], upto: int) -> str:
    shown = ", ".join(f"{v:.4g}" for v in losses[:upto + 1])
    return f"[{shown}]"


def _reference_trace(losses: list[float], patience: int, min_delta: float) -> Trace:
    """(stop, best_loss, best_epoch) after each call of the library's EarlyStopping, up to the first stop."""
    stopper = ref.EarlyStopping(patience, min_delta=min_delta)
    trace: Trace = []
    for loss in losses:
        stop = stopper.step(loss, {})
        trace.append((stop, stopper.best_loss, stopper.best_epoch))
        if stop:
            break
    return trace


def _same_trace(got: Trace, other: Trace) -> bool:
    """Same decisions, best losses and best epochs, call by call."""
    if len(got) != len(other):
        return False
    for (g_stop, g_loss, g_epoch), (o_stop, o_loss, o_epoch) in zip(got, other):
        try:
            same_loss = float(g_loss) == o_loss or (math.isnan(o_loss) and math.isnan(float(g_loss)))
        except (TypeError, ValueError):
            return False
        if g_stop != o_stop or not same_loss or g_epoch != o_epoch:
            return False
    return True


def _first_stop(trace: Trace) -> int | None:
    return next((i for i, t in enumerate(trace) if t[0]), None)


def _next_params(rng: np.random.Generator, params: dict[str, np.ndarray], epoch: int) -> None:
    """One 'epoch' of training: change the arrays in place (most epochs) or replace them (every third)."""
    for k in params:
        if epoch % 3 == 2:
            params[k] = params[k] + rng.standard_normal(params[k].shape)
        else:
            params[k] += rng.standard_normal(params[k].shape)


def _run_early_stopping(EarlyStopping: Callable, losses: list[float], patience: int, min_delta: float | None,
                        seed: int) -> None:
    """Drive the student's EarlyStopping over ``losses``; compare with the rule call by call up to the first stop."""
    name = "EarlyStopping"
    args = f"EarlyStopping({patience})" if min_delta is None else f"EarlyStopping({patience}, min_delta={min_delta})"
    md = 0.0 if min_delta is None else min_delta
    es = call(EarlyStopping, patience, name=name) if min_delta is None else \
        call(EarlyStopping, patience, min_delta=min_delta, name=name)
    expected = _reference_trace(losses, patience, md)
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((3, 2)), "b1": rng.standard_normal(2), "W2": rng.standard_normal((2, 2))}
    history: list[dict[str, np.ndarray]] = []
    got: Trace = []
    problems: list[str] = []  # best_params problems, reported after the decisions and attributes

    def check_params(call_index: int) -> None:
        if call_index < len(expected) and expected[call_index][2] is not None:
            problem = _best_params_problem(es, history, params, expected[call_index][2], args, losses, call_index)
            if problem:
                problems.append(problem)

    for epoch, loss in enumerate(losses):
        if epoch:
            _next_params(rng, params, epoch)  # the trainer updates the weights between two calls
            check_params(epoch - 1)
        history.append({k: v.copy() for k, v in params.items()})
        before = snapshot(*params.values())
        decision = call(es.step, loss, params, name="EarlyStopping.step")
        check_unchanged(before, list(params.values()), [f"params[{k!r}]" for k in params],
                        fn_name="EarlyStopping.step")
        if not isinstance(decision, (bool, np.bool_)):
            fail(f"EarlyStopping.step should return True or False, but it returned {decision!r}.")
        for attr in ("best_loss", "best_epoch", "best_params"):
            if not hasattr(es, attr):
                fail(f"EarlyStopping has no attribute `{attr}` after a call to step(); set best_loss, best_epoch "
                     "and best_params when a call improves.")
        got.append((bool(decision), es.best_loss, es.best_epoch))
        if decision:
            break
    _next_params(rng, params, len(got))  # one more update after the last call: the copies must not follow it
    check_params(len(got) - 1)
    _compare_traces(got, expected, losses, patience, md, args)
    if problems:
        fail(problems[0])


def _compare_traces(got: Trace, expected: Trace, losses: list[float], patience: int, md: float, args: str) -> None:
    g_stop, e_stop = _first_stop(got), _first_stop(expected)
    if g_stop != e_stop:
        upto = max(i for i in (g_stop, e_stop, len(got) - 1) if i is not None)
        said = f"returned True first at call {g_stop}" if g_stop is not None else "never returned True"
        should = f"should return True first at call {e_stop}" if e_stop is not None else "should never return True"
        hint = next((msg for variant, msg in STOP_MISTAKES
                     if _same_trace(got, _simulate(losses, patience, md, variant))), "")
        fail(f"{args}.step {said} (calls counted from 0) for the validation losses {_fmt_losses(losses, upto)}; "
             f"it {should}. {hint}".strip())
    for i, ((_, g_loss, g_epoch), (_, e_loss, e_epoch)) in enumerate(zip(got, expected)):
        where = f"after call {i} of {args}.step with the losses {_fmt_losses(losses, i)}"
        is_int = isinstance(g_epoch, (int, np.integer)) and not isinstance(g_epoch, (bool, np.bool_))
        if not is_int or g_epoch != e_epoch:
            hint = ""
            if is_int and e_epoch is not None and g_epoch == e_epoch + 1:
                hint = "best_epoch counts from 1; count the calls from 0 (the first call is epoch 0)."
            elif is_int and g_epoch == i:
                hint = "best_epoch is the current call's index; it should change only when a call improves."
            fail(f"best_epoch is {g_epoch!r} {where}; it should be {e_epoch}. {hint}".strip())
        try:
            g_val = float(g_loss)
        except (TypeError, ValueError):
            fail(f"best_loss is {g_loss!r} {where}; it should be the number {e_loss}.")
        if not (g_val == e_loss or math.isclose(g_val, e_loss, rel_tol=1e-12)):
            track = _simulate(losses, patience, md, "track_min")
            hint = ""
            if i < len(track) and math.isclose(g_val, track[i][1], rel_tol=1e-12):
                hint = ("best_loss changed on a call that did not improve by more than min_delta: update "
                        "best_loss (and best_epoch, best_params) only when a call improves.")
            fail(f"best_loss is {g_val:.6g} {where}; it should be {e_loss:.6g}. {hint}".strip())


def _best_params_problem(es: Any, history: list[dict[str, np.ndarray]], live: Mapping[str, np.ndarray],
                         best_epoch: int, args: str, losses: list[float], call_index: int) -> str:
    """What is wrong with es.best_params after call ``call_index`` (and one more parameter update), or ""."""
    best = getattr(es, "best_params", None)
    where = f"after call {call_index} of {args}.step (losses {_fmt_losses(losses, call_index)})"
    if not isinstance(best, Mapping):
        return (f"best_params is {type(best).__name__} {where}; it should be a dict name -> a copy of each "
                f"parameter array at the best call ({best_epoch}).")
    want = history[best_epoch]
    if set(best) != set(want):
        return f"best_params has the keys {sorted(best)}; it should have the keys of params {sorted(want)}."
    for k, v in want.items():
        b = np.asarray(best[k])
        if b.shape == v.shape and np.array_equal(b, v):
            continue
        if b.shape == v.shape and np.array_equal(b, live[k]):
            return (f"best_params[{k!r}] {where} follows the live parameters, which the trainer went on updating "
                    f"in place after the best call {best_epoch}: best_params keeps references, not copies. "
                    "Store a copy of each array ({k: v.copy() for k, v in params.items()}), not the dict or its "
                    "arrays.")
        other = next((j for j, h in enumerate(history) if h[k].shape == b.shape and np.array_equal(h[k], b)), None)
        if other is not None:
            return (f"best_params[{k!r}] {where} holds the parameters of call {other}, not those of the best call "
                    f"{best_epoch}: copy the parameters only on a call that improves.")
        return (f"best_params[{k!r}] {where} is not a copy of the parameters passed to the best call "
                f"{best_epoch}.")
    return ""


def _losses_curve(rng: np.random.Generator, n: int, noise: float, quantum: float | None = None) -> list[float]:
    """A validation-loss-like curve: falls, bottoms out, rises, with noise (and ties when quantized)."""
    t = np.arange(n)
    curve = 2.0 / (1 + 0.3 * t) + 0.004 * t + noise * rng.standard_normal(n)
    if quantum:
        curve = np.round(curve / quantum) * quantum
    return [float(v) for v in curve]


def check_EarlyStopping(EarlyStopping: Callable) -> None:
    """patience, min_delta (strict <), best_loss / best_epoch (from 0) / best_params (copies), over many epochs."""
    # Sequences that tell the known mistakes apart, then many noisy curves. Ties are exact only with min_delta = 0:
    # with min_delta > 0 no loss lies near best_loss - min_delta, where float rounding would decide.
    designed = [
        ([5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0], 2, None),       # ties are not improvements
        ([5.0, 4.0, 4.5, 3.0, 3.5, 3.2, 1.0, 2.0], 2, None),
        ([1.0, 0.95, 0.85, 0.80, 0.76, 0.7, 0.6], 2, 0.1),          # improvements smaller than min_delta
        ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], 3, 0.15),
        ([5.0, 6.0, 4.0, 6.0, 3.0, 7.0, 2.0, 8.0, 1.0, 9.0], 2, None),  # consecutive, not total
        ([5.0, 6.0, 5.5, 5.2, 5.1, 5.05, 5.01], 3, None),          # against the best, not the previous loss
        ([3.0, 2.0, 2.5, 2.4, 2.3, 2.2, 2.1, 2.05], 1, 0.0),
        ([1.0, 2.0, 3.0, 4.0], 1, None),
        ([1.0, 0.5, 0.25], 4, None),                                # never stops
        ([2.0, 1.0, 1.5, 1.25, 1.1, 0.95, 1.3, 1.2, 1.4, 1.6], 3, 0.1),
    ]
    for i, (losses, patience, md) in enumerate(designed):
        _run_early_stopping(EarlyStopping, losses, patience, md, seed=320 + i)
    rng = np.random.default_rng(330)
    for i, (patience, md, noise, quantum) in enumerate([
            (1, None, 0.02, None), (2, 0.0, 0.05, None), (3, 0.01, 0.03, None), (5, None, 0.05, 0.05),
            (5, 0.05, 0.05, None), (8, 0.02, 0.1, None), (10, None, 0.05, 0.02), (4, 0.2, 0.05, None),
            (2, 0.0, 0.0, 0.01)]):
        _run_early_stopping(EarlyStopping, _losses_curve(rng, 80, noise, quantum), patience, md, seed=340 + i)
    _run_early_stopping(EarlyStopping, [1.0, 0.8, float("nan"), float("nan"), float("nan")], 2, None, seed=350)


# Named mistakes (course.mistakes): identifier -> a phrase of its message above.
MISTAKES = {
    "l2_penalty:penalizes-gamma-not-b": "also penalizes gamma",
    "l2_penalty:penalizes-the-biases": "penalize the weights only",
    "l2_penalty:drops-the-1-2": "missing the 1/2",
    "l2_penalty:drops-the-1-m": "does not divide by m",
    "l2_penalty:norms-not-squared-norms": "sums the Frobenius norms",
    "l2_penalty:only-w1": "only one weight matrix",
    "l2_penalty_grads:biases-get-lam-m-b": "nonzero gradient",
    "l2_penalty_grads:only-the-weights-keys": "returns no gradient for",
    "l2_penalty_grads:keeps-the-2-of-the-square": "twice the right gradient",
    "l2_penalty_grads:differentiates-to-lam-2m-w": "half the right gradient",
    "l2_penalty_grads:drops-the-1-m": "does not divide by m",
    "l2_penalty_grads:float64-zeros-for-float32-biases": "keep the parameter's dtype",
    "l2_penalty_grads:scales-params-in-place": "changed its argument",
    "l1_penalty:a-1-2-copied-from-l2": "no 1/2",
    "l1_penalty:no-absolute-value": "forgets the absolute value",
    "l1_penalty:penalizes-the-biases": "penalize the weights only",
    "l1_penalty:drops-the-1-m": "does not divide by m",
    "l1_penalty_grads:w-w-nan-at-0": "NaN (0/0)",
    "l1_penalty_grads:w-w-eps": "tiny weights",
    "l1_penalty_grads:1-at-zero": "exactly 0",
    "l1_penalty_grads:l2-s-gradient": "the L2 gradient",
    "l1_penalty_grads:biases-get-a-sign-too": "nonzero gradient",
    "l1_penalty_grads:a-1-2-copied-from-l2": "no 1/2",
    "EarlyStopping:stops-one-epoch-late": "one call late",
    "EarlyStopping:stops-one-epoch-early": "one call early",
    "EarlyStopping:ignores-min-delta": "ignores min_delta",
    "EarlyStopping:ties-improve": "strict",
    "EarlyStopping:best-epoch-from-1": "counts from 1",
    "EarlyStopping:keeps-the-live-dict": "keeps references",
    "EarlyStopping:compares-with-the-previous-loss": "previous call's loss",
    "EarlyStopping:counts-all-bad-epochs": "consecutive",
    "EarlyStopping:best-loss-ignores-min-delta": "did not improve by more than min_delta",
    "EarlyStopping:nan-counts-as-an-improvement": "NaN",
}
