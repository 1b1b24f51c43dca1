"""Hidden tests for notebook 01: activation functions (forward and backward) and softmax.

Every forward is compared with the library's reference on many shapes (one sample, one
feature), in float32 and float64, on inputs up to 1e3 in magnitude with no warning allowed;
every backward is checked with the cache of the student's *own* forward (never a particular
cache layout), against the reference derivative and against a numerical gradient in float64.
Inputs, ``dout`` and the cache must be left unchanged. Known mistakes are recognised by
comparing the output with that of the wrong implementation, and named in the message.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from course.testing import (Mistake, call, check_array, check_backward, check_close, check_unchanged, diagnose, fail,
                            snapshot)
from nnlab import activations as ref

# Shapes an elementwise activation must handle: one sample, one feature, 1-D, 3-D.
SHAPES = [(4, 5), (1, 6), (7, 1), (1, 1), (5,), (1,), (2, 3, 4)]
LARGE = np.array([-1e3, -700.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 700.0, 1e3])
_REFERENCE_FILE = Path(ref.__file__).resolve()

STABILITY = {
    "sigmoid": ("sigmoid overflows: 1 / (1 + np.exp(-x)) computes exp(1000) = inf for x = -1000, and "
                "np.exp(x) / (1 + np.exp(x)) overflows for x = +1000. Use z = np.exp(-np.abs(x)), which never "
                "exceeds 1: sigmoid = 1 / (1 + z) where x >= 0 and z / (1 + z) where x < 0. np.where(cond, a, b) "
                "evaluates BOTH a and b on every element, so an overflowing branch warns even where it is not "
                "selected."),
    "tanh": ("tanh overflows: (e^x - e^-x) / (e^x + e^-x) is inf / inf for |x| = 1000. Use np.tanh (or "
             "2 sigmoid(2x) - 1 with a stable sigmoid)."),
    "softplus": ("softplus overflows: log(1 + exp(x)) computes exp(1000) = inf. Use the identity "
                 "log(1 + e^x) = max(x, 0) + log1p(exp(-|x|)) (or np.logaddexp(0, x)); np.where evaluates "
                 "both branches, so an overflowing branch warns even where it is not selected."),
    "swish": ("swish overflows: x / (1 + np.exp(-x)) computes exp(1000) = inf for x = -1000. Compute "
              "sigmoid(x) stably (with np.exp(-np.abs(x))) and multiply by x."),
}


# --------------------------------------------------------------------------- helpers

def _reference_called(fn: Callable, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run ``fn`` and report whether any function of the library's reference module ran inside it."""
    seen = []

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and not seen and Path(frame.f_code.co_filename).resolve() == _REFERENCE_FILE:
            seen.append(frame.f_code.co_name)

    previous = sys.getprofile()
    sys.setprofile(profiler)
    try:
        result = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    return bool(seen), result


def _call(fn: Callable, *args: Any, name: str, stability: str = "", where: str = "", own_work: bool = True,
          **kwargs: Any) -> Any:
    """``course.testing.call`` plus: the library's reference must not do the work (unless ``own_work``
    is False), and a warning (overflow) is explained with ``stability`` and ``where`` (which inputs
    triggered it)."""
    try:
        used_reference, result = _reference_called(call, fn, *args, name=name, **kwargs)
    except Mistake as exc:
        if "emitted a warning" in str(exc) and stability:
            fail(f"{name} is not numerically stable{where}: {exc} {stability}")
        raise
    if used_reference and own_work:
        fail(f"{name} calls the library's reference (nnlab.activations) instead of computing the result "
             "itself: write your own implementation with NumPy.")
    return result


def _pair(result: Any, name: str) -> tuple[Any, Any]:
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"{name} should return a pair (out, cache), but it returned {type(result).__name__}.")
    return result


def _leaves(cache: Any) -> list[Any]:
    """The arrays inside a cache (an array, or tuples, lists and dicts of them), in a fixed order."""
    if isinstance(cache, np.ndarray):
        return [cache]
    if isinstance(cache, (tuple, list)):
        return [leaf for item in cache for leaf in _leaves(item)]
    if isinstance(cache, dict):
        return [leaf for key in sorted(cache, key=str) for leaf in _leaves(cache[key])]
    return []


def _tolerances(dtype: Any) -> dict[str, float]:
    return {"rtol": 1e-4, "atol": 1e-6} if np.dtype(dtype) == np.float32 else {"rtol": 1e-8, "atol": 1e-12}


def _inputs(rng: np.random.Generator, *, zeros: bool = False, kink: bool = False) -> Iterable[tuple[np.ndarray, str]]:
    """Random inputs of every shape in float64 and float32, scales 1 and 5; with zeros, exact zeros included."""
    for shape in SHAPES:
        for dtype in (np.float64, np.float32):
            x = (rng.choice([1.0, 5.0]) * rng.standard_normal(shape)).astype(dtype)
            if kink:
                x[np.abs(x) < 1e-3] = 1e-3
            if zeros and x.size > 2:
                x.reshape(-1)[::3] = 0
            yield x, f"x of shape {shape} ({np.dtype(dtype).name})"


def _sign_where(sign: int) -> str:
    return " for large negative inputs (x = -1000)" if sign < 0 else " for large positive inputs (x = +1000)"


def _large(sign: int, dtype: Any) -> np.ndarray:
    """Inputs of magnitude up to 1e3 with one sign (0 included), shaped (2, 6)."""
    vals = np.abs(LARGE)
    return (sign * np.concatenate([vals, [5.0]])).reshape(2, 6).astype(dtype)


def _wrong_shape_hint(name: str) -> str:
    return (f"{name} must work elementwise and return an array of x's shape; np.max(x, 0) takes the maximum "
            "ALONG axis 0 (a reduction), np.maximum(x, 0) is the elementwise maximum.")


# --------------------------------------------------------------------------- generic checks

def _check_forward(forward: Callable, name: str, expected_fn: Callable[[np.ndarray], np.ndarray],
                   mistakes: Callable[[np.ndarray], list], *, stability: str = "", seed: int, zeros: bool = False,
                   kwargs: dict | None = None, label: str = "") -> None:
    """Values, shape, dtype, input unchanged, stability up to |x| = 1e3 (no warning)."""
    kwargs = kwargs or {}
    rng = np.random.default_rng(seed)
    cases = [(x, what, "") for x, what in _inputs(rng, zeros=zeros)]
    for sign in (-1, 1):  # one sign at a time, so a failure says which side overflows
        for dtype in (np.float64, np.float32):
            cases.append((_large(sign, dtype), f"x up to {sign * 1000:+g} ({np.dtype(dtype).name})",
                          _sign_where(sign)))
    for x, what, where in cases:
        before = x.copy()
        out, _ = _pair(_call(forward, x, name=name, stability=stability, where=where, **kwargs), name)
        check_unchanged([before], [x], ["x"], fn_name=name)
        what = f"out of {name}{label} for {what}"
        if isinstance(out, np.ndarray) and out.shape != x.shape:
            fail(f"{what} has shape {out.shape}, but it should have x's shape {x.shape}. " + _wrong_shape_hint(name))
        check_array(out, what=what, shape=x.shape, dtype=x.dtype)
        expected = expected_fn(x.astype(np.float64))
        with np.errstate(all="ignore"):  # a known-wrong formula may overflow; it is only compared
            hint = diagnose(out, [(m.astype(x.dtype) if isinstance(m, np.ndarray) else m, msg)
                                  for m, msg in mistakes(x.astype(np.float64))], **_tolerances(x.dtype))
        check_close(out.astype(np.float64), expected, what=what, hint=hint, **_tolerances(x.dtype))


def _check_backward(forward: Callable, backward: Callable, name: str, fname: str,
                    derivative: Callable[[np.ndarray], np.ndarray],
                    mistakes: Callable[[np.ndarray, np.ndarray], list], *, stability: str = "", seed: int,
                    zeros: bool = False, kink: bool = False, kwargs: dict | None = None, label: str = "",
                    at_zero: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None) -> None:
    """dx = dout * f'(x) with the student's own cache; dout and cache unchanged; dtype; stability;
    numerical gradient check in float64."""
    kwargs = kwargs or {}
    rng = np.random.default_rng(seed)
    cases = [(x, what, "") for x, what in _inputs(rng, zeros=zeros, kink=kink)]
    for sign in (-1, 1):
        for dtype in (np.float64, np.float32):
            cases.append((_large(sign, dtype), f"x up to {sign * 1000:+g} ({np.dtype(dtype).name})",
                          _sign_where(sign)))
    for x, what, where in cases:
        # The forward is graded in its own test (warnings, use of the reference); here it only builds
        # the cache that the backward pass must read, and only the backward pass is judged.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = _call(forward, x.copy(), name=f"{fname} (building the cache for {name})", own_work=False,
                           **kwargs)
        _, cache = _pair(result, fname)
        dout = rng.standard_normal(x.shape).astype(x.dtype)
        leaves = _leaves(cache)
        before = snapshot(dout, *leaves)
        dx = _call(backward, dout, cache, name=name, stability=stability, where=where)
        check_unchanged(before, [dout, *leaves], ["dout"] + ["cache"] * len(leaves), fn_name=name)
        what = f"dx of {name}{label} for {what}"
        check_array(dx, what=what, shape=x.shape, dtype=x.dtype)
        x64, d64 = x.astype(np.float64), dout.astype(np.float64)
        expected = d64 * derivative(x64)
        if at_zero is not None:
            expected = at_zero(x64, d64, expected, dx.astype(np.float64))
        with np.errstate(all="ignore"):
            hint = diagnose(dx, [(m.astype(x.dtype) if isinstance(m, np.ndarray) else m, msg)
                                 for m, msg in mistakes(x64, d64)], **_tolerances(x.dtype))
        check_close(dx.astype(np.float64), expected, what=what, hint=hint or (
            f"dx must be dout * f'(x). {name} receives exactly the cache your {fname} returned: check that it "
            "reads it the way it was written."), **_tolerances(x.dtype))

    # Numerical gradient check of the student's pair (float64, away from any kink).
    def fwd(x: np.ndarray) -> Any:
        return forward(x, **kwargs)
    fwd.__name__ = fname
    for shape in [(3, 4), (1, 1), (6,), (2, 1, 3)]:
        x = 2 * rng.standard_normal(shape)
        x[np.abs(x) < 1e-2] = 1e-2
        check_backward(fwd, backward, [x], names=["x"], dout_seed=int(rng.integers(1 << 30)), tol=1e-6)


def _sig(x: np.ndarray) -> np.ndarray:
    return ref.sigmoid_forward(x)[0]


def _ignores_dout(name: str) -> str:
    return (f"{name} ignores dout: the chain rule gives dx = dout * f'(x), not f'(x) alone.")


def _swapped(name: str, quantity: str) -> str:
    return (f"{name} uses the input where the output was cached (or the reverse): its formula needs "
            f"{quantity}. Look at what your forward put in the cache: if it holds x, compute the output from it; "
            "if it holds the output, do not apply the function to it again.")


# --------------------------------------------------------------------------- sigmoid

def check_sigmoid_forward(sigmoid_forward: Callable) -> None:
    """1 / (1 + e^-x) on many shapes and both dtypes, stable up to |x| = 1e3, x unchanged."""
    name = "sigmoid_forward"
    _check_forward(sigmoid_forward, name, _sig, lambda x: [
        (_sig(-x), f"{name} computes sigmoid(-x): the formula is 1 / (1 + exp(-x)) (mind the sign of the "
         "exponent)."),
        (np.tanh(x), f"{name} returns tanh(x); the sigmoid is 1 / (1 + exp(-x)), with values in (0, 1)."),
    ], stability=STABILITY["sigmoid"], seed=110)


def check_sigmoid_backward(sigmoid_forward: Callable, sigmoid_backward: Callable) -> None:
    """dout * s (1 - s), with your forward's cache; dout and cache unchanged; gradient check; stable."""
    name = "sigmoid_backward"
    _check_backward(sigmoid_forward, sigmoid_backward, name, "sigmoid_forward",
                    lambda x: _sig(x) * (1 - _sig(x)), lambda x, d: [
        (_sig(x) * (1 - _sig(x)), _ignores_dout(name)),
        (d * x * (1 - x), _swapped(name, "s = sigmoid(x) in s * (1 - s), but it got x")),
        (d * _sig(_sig(x)) * (1 - _sig(_sig(x))), _swapped(name, "s = sigmoid(x), but it applied the "
                                                          "sigmoid to the cached output again")),
        (d * _sig(x), f"{name} multiplies dout by s only: the derivative of the sigmoid is s * (1 - s)."),
        (d * (1 - _sig(x)), f"{name} multiplies dout by (1 - s) only: the derivative is s * (1 - s)."),
    ], stability=("sigmoid_backward overflows: write the derivative as s * (1 - s) with s = sigmoid(x) "
                  "computed stably, not as exp(-x) / (1 + exp(-x))**2."), seed=111)


# --------------------------------------------------------------------------- tanh

def check_tanh_forward(tanh_forward: Callable) -> None:
    """tanh(x) on many shapes and both dtypes, stable up to |x| = 1e3, x unchanged."""
    name = "tanh_forward"
    _check_forward(tanh_forward, name, np.tanh, lambda x: [
        (2 * _sig(x) - 1, f"{name} computes 2 sigmoid(x) - 1, which is tanh(x / 2): tanh(x) = 2 sigmoid(2x) - 1."),
        (_sig(x), f"{name} returns sigmoid(x); tanh has values in (-1, 1)."),
    ], stability=STABILITY["tanh"], seed=112)


def check_tanh_backward(tanh_forward: Callable, tanh_backward: Callable) -> None:
    """dout * (1 - tanh(x)^2), with your forward's cache; dout and cache unchanged; gradient check; stable."""
    name = "tanh_backward"
    t = np.tanh
    _check_backward(tanh_forward, tanh_backward, name, "tanh_forward", lambda x: 1 - t(x) ** 2, lambda x, d: [
        (1 - t(x) ** 2, _ignores_dout(name)),
        (d * (1 - x ** 2), _swapped(name, "t = tanh(x) in 1 - t**2, but it got x")),
        (d * (1 - t(t(x)) ** 2), _swapped(name, "t = tanh(x), but it applied tanh to the cached output again")),
        (d * (1 - t(x)), f"{name} multiplies dout by (1 - t): the derivative of tanh is 1 - t**2."),
        (d * (1 + t(x) ** 2), f"{name} uses 1 + t**2: the derivative of tanh is 1 - t**2."),
    ], stability=("tanh_backward overflows: 1 / np.cosh(x)**2 computes cosh(1000) = inf. Use 1 - t**2 with "
                  "t = tanh(x)."), seed=113)


# --------------------------------------------------------------------------- relu

def check_relu_forward(relu_forward: Callable) -> None:
    """max(0, x) elementwise on many shapes (zeros included), dtype kept, x unchanged."""
    name = "relu_forward"
    _check_forward(relu_forward, name, lambda x: np.maximum(x, 0), lambda x: [
        (np.abs(x), f"{name} returns |x|: negative inputs must give 0."),
        (np.minimum(x, 0), f"{name} returns min(x, 0): ReLU keeps the positive part, max(x, 0)."),
    ], seed=114, zeros=True)


def check_relu_backward(relu_forward: Callable, relu_backward: Callable) -> None:
    """dout where x > 0 and 0 elsewhere (0 at x == 0); dout and cache unchanged; gradient check."""
    name = "relu_backward"
    _check_backward(relu_forward, relu_backward, name, "relu_forward", lambda x: (x > 0).astype(float),
                    lambda x, d: [
        (d * (x >= 0), f"{name} lets gradient through where x == 0: the course (like PyTorch) uses gradient 0 "
         "at x == 0, so the mask is x > 0, not x >= 0."),
        ((x > 0).astype(float), _ignores_dout(name)),
        (d, f"{name} passes dout through unchanged: the gradient is 0 wherever x < 0. (If your cache holds the "
         "output, note that out >= 0 is true everywhere; use out > 0.)"),
        (d * (x < 0), f"{name} passes gradient where x < 0 instead of where x > 0."),
    ], seed=115, zeros=True)


# --------------------------------------------------------------------------- leaky relu

ALPHA = 0.2  # a non-default slope, so a hard-coded 0.01 is caught


def _leaky(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, alpha * x)


def check_leaky_relu_forward(leaky_relu_forward: Callable) -> None:
    """x for x > 0, alpha x otherwise; alpha honoured (0.2, 0.5, 0), default 0.01; dtype kept; x unchanged."""
    name = "leaky_relu_forward"
    for alpha, seed in [(ALPHA, 116), (0.5, 117), (0.0, 118)]:
        _check_forward(leaky_relu_forward, name, lambda x, a=alpha: _leaky(x, a), lambda x, a=alpha: [
            (_leaky(x, 0.01), f"{name} ignores its argument alpha: it used the slope 0.01, but was called with "
             f"alpha={a}. Use the alpha it is given."),
            (np.maximum(x, 0), f"{name} ignores alpha: it computes a plain ReLU (0 for x < 0); the slope for "
             "x <= 0 is alpha."),
            (np.where(x > 0, x, a), f"{name} returns alpha where x <= 0; it should return alpha * x."),
            (np.where(x > 0, a * x, x), f"{name} swaps the slopes: x for x > 0, alpha * x otherwise."),
        ], seed=seed, zeros=True, kwargs={"alpha": alpha}, label=f" with alpha={alpha}")
    x = np.array([[-3.0, -1.0, 0.0, 2.0]])
    out, _ = _pair(_call(leaky_relu_forward, x, name=name), name)
    check_close(out, _leaky(x, 0.01), what=f"{name}(x) with the default alpha", rtol=1e-12,
                hint="The default slope is alpha=0.01: def leaky_relu_forward(x, alpha=0.01).")


def _leaky_at_zero(alpha: float) -> Callable:
    """At x == 0 any slope between alpha (PyTorch) and 1 is a valid subgradient: accept alpha or 1."""
    def fix(x: np.ndarray, dout: np.ndarray, expected: np.ndarray, got: np.ndarray) -> np.ndarray:
        ones = (x == 0) & np.isclose(got, dout, rtol=1e-5, atol=1e-7)
        return np.where(ones, dout, expected)
    return fix


def check_leaky_relu_backward(leaky_relu_forward: Callable, leaky_relu_backward: Callable) -> None:
    """Slope 1 for x > 0 and alpha otherwise, alpha taken from your cache (0.2 and the default 0.01)."""
    name = "leaky_relu_backward"
    for alpha, seed in [(ALPHA, 119), (0.01, 120)]:
        _check_backward(leaky_relu_forward, leaky_relu_backward, name, "leaky_relu_forward",
                        lambda x, a=alpha: np.where(x > 0, 1.0, a), lambda x, d, a=alpha: [
            (np.where(x > 0, d, 0.01 * d), f"{name} ignores alpha: it used the slope 0.01, but the forward pass "
             f"was called with alpha={a}. Keep alpha in the cache and use it."),
            (d * (x > 0), f"{name} gives no gradient where x < 0: there the slope is alpha, not 0."),
            (np.where(x > 0, 1.0, a) + 0 * d, _ignores_dout(name)),
            (np.where(x > 0, d, a * x * d), f"{name} multiplies dout by alpha * x where x < 0; the slope there is "
             "alpha."),
            (np.where(x > 0, a * d, d), f"{name} swaps the slopes: 1 for x > 0, alpha otherwise."),
        ], seed=seed, zeros=True, kwargs={"alpha": alpha}, label=f" with alpha={alpha}",
            at_zero=_leaky_at_zero(alpha))


# --------------------------------------------------------------------------- softplus

def _softplus(x: np.ndarray) -> np.ndarray:
    return ref.softplus_forward(x)[0]


def check_softplus_forward(softplus_forward: Callable) -> None:
    """log(1 + e^x) on many shapes and both dtypes, stable up to |x| = 1e3, x unchanged."""
    name = "softplus_forward"
    _check_forward(softplus_forward, name, _softplus, lambda x: [
        (_softplus(-x), f"{name} computes log(1 + exp(-x)) = softplus(-x); softplus is log(1 + exp(x))."),
        (np.maximum(x, 0), f"{name} returns max(x, 0) only: add log1p(exp(-|x|)), which matters near 0."),
        (np.maximum(x, 0) + np.log1p(np.exp(-x)),
         f"{name} uses exp(-x) where it needs exp(-|x|): max(x, 0) + log1p(exp(-|x|))."),
    ], stability=STABILITY["softplus"], seed=121)


def check_softplus_backward(softplus_forward: Callable, softplus_backward: Callable) -> None:
    """dout * sigmoid(x), with your forward's cache; stable; dout and cache unchanged; gradient check."""
    name = "softplus_backward"
    _check_backward(softplus_forward, softplus_backward, name, "softplus_forward", _sig, lambda x, d: [
        (_sig(x), _ignores_dout(name)),
        (d * _sig(_softplus(x)), _swapped(name, "sigmoid(x), but it computed sigmoid of the cached output")),
        (d * _softplus(x), f"{name} multiplies dout by softplus(x): the derivative of softplus is sigmoid(x)."),
        (d * _sig(-x), f"{name} uses sigmoid(-x): the derivative of log(1 + e^x) is e^x / (1 + e^x) = sigmoid(x)."),
    ], stability=("softplus_backward overflows: the derivative of softplus is sigmoid(x); compute it stably "
                  "(with np.exp(-np.abs(x))), not as np.exp(x) / (1 + np.exp(x))."), seed=122)


# --------------------------------------------------------------------------- swish

def _swish_derivative(x: np.ndarray) -> np.ndarray:
    s = _sig(x)
    return s * (1 + x * (1 - s))


def check_swish_forward(swish_forward: Callable) -> None:
    """x * sigmoid(x) on many shapes and both dtypes, stable up to |x| = 1e3, x unchanged."""
    name = "swish_forward"
    _check_forward(swish_forward, name, lambda x: x * _sig(x), lambda x: [
        (_sig(x), f"{name} returns sigmoid(x); swish is x * sigmoid(x)."),
        (x * _sig(-x), f"{name} computes x * sigmoid(-x); swish is x * sigmoid(x) = x / (1 + exp(-x))."),
        (x * np.tanh(x), f"{name} computes x * tanh(x); swish is x * sigmoid(x)."),
    ], stability=STABILITY["swish"], seed=123)


def check_swish_backward(swish_forward: Callable, swish_backward: Callable) -> None:
    """dout * (s + x s (1 - s)), with your forward's cache; stable; dout and cache unchanged; gradient check."""
    name = "swish_backward"
    _check_backward(swish_forward, swish_backward, name, "swish_forward", _swish_derivative, lambda x, d: [
        (_swish_derivative(x), _ignores_dout(name)),
        (d * _sig(x), f"{name} is missing a term: by the product rule d/dx [x s(x)] = s + x s (1 - s); "
         "it only has s."),
        (d * x * _sig(x) * (1 - _sig(x)), f"{name} is missing a term: by the product rule d/dx [x s(x)] = "
         "s + x s (1 - s); it only has x s (1 - s)."),
        (d * _sig(x) * (1 - _sig(x)), f"{name} uses the sigmoid's derivative s (1 - s); the product rule gives "
         "s + x s (1 - s)."),
        (d * (_sig(x) + x * _sig(x)), f"{name} uses s + x s: the derivative of s is s (1 - s), so "
         "d/dx [x s] = s + x s (1 - s)."),
    ], stability=("swish_backward overflows: write the derivative with a stable sigmoid, "
                  "s + x s (1 - s) with s = sigmoid(x)."), seed=124)


# --------------------------------------------------------------------------- softmax

def check_softmax(softmax: Callable) -> None:
    """Sums to 1 along `axis` (0, 1, -1, 3-D), stable for offsets of +-1e3 per row, dtype kept, x unchanged."""
    name = "softmax"
    rng = np.random.default_rng(125)
    ref_sm = ref.softmax
    cases: list[tuple[np.ndarray, int | None, str, str]] = []
    for shape, axis in [((4, 5), None), ((4, 5), -1), ((5, 5), -1), ((4, 5), 0), ((5, 5), 0), ((3, 4), 1),
                        ((1, 6), -1), ((6, 1), 0), ((1, 1), -1), ((7,), None), ((1,), 0), ((2, 3, 4), 1),
                        ((2, 3, 4), -1), ((2, 3, 4), 0)]:
        for dtype in (np.float64, np.float32):
            x = (rng.choice([1.0, 3.0]) * rng.standard_normal(shape)).astype(dtype)
            cases.append((x, axis, f"x of shape {shape} ({np.dtype(dtype).name})", ""))
    # Every slice near +1000: overflows without the max subtraction.
    for dtype in (np.float64, np.float32):
        x = (1000 + rng.standard_normal((4, 6))).astype(dtype)
        cases.append((x, -1, f"x near +1000 ({np.dtype(dtype).name})",
                      "softmax(x) = softmax(x - c) for any constant c, so subtract the maximum along `axis` "
                      "(keepdims=True) before np.exp; then no exponent is positive and nothing overflows."))
    # Slices 1000 apart: subtracting the global maximum underflows the low slices to 0 / 0.
    for axis in (-1, 0):
        offsets = np.array([1000.0, 0.0, -1000.0])
        x = rng.standard_normal((3, 5)) + offsets[:, None]
        x = x if axis == -1 else x.T.copy()
        cases.append((x, axis, f"rows offset by +1000, 0 and -1000, axis={axis}",
                      "Subtract the maximum along `axis` (x.max(axis=axis, keepdims=True)), not the maximum of "
                      "the whole array: with the global maximum, a slice whose values all lie 2000 below it "
                      "underflows to 0 / 0."))
    for x, axis, what, stability in cases:
        before = x.copy()
        kwargs = {} if axis is None else {"axis": axis}
        label = f"{name}(x{'' if axis is None else f', axis={axis}'}) for {what}"
        try:
            probs = _call(softmax, x, name=name, stability=stability, where=f" for {what}", **kwargs)
        except Mistake as exc:
            if "broadcast" in str(exc):
                fail(f"{exc} Keep the reduced axis (x.max(axis=axis, keepdims=True), e.sum(axis=axis, "
                     "keepdims=True)) so that the max and the sum broadcast against x along `axis`.")
            raise
        check_unchanged([before], [x], ["x"], fn_name=name)
        if isinstance(probs, tuple):
            fail(f"{name} returns a tuple; it should return only the array of probabilities (it is not a "
                 "forward/backward pair).")
        check_array(probs, what=label, shape=x.shape, dtype=x.dtype)
        ax = -1 if axis is None else axis
        x64 = x.astype(np.float64)
        expected = ref_sm(x64, axis=ax)
        e = np.exp(x64 - x64.max(axis=ax, keepdims=True))
        wrong = [
            (ref_sm(x64, axis=-1) if ax not in (-1, x.ndim - 1) else None,
             f"{name} ignores its argument `axis`: it normalises along the last axis even when called with "
             f"axis={ax}. Use axis in the max and in the sum."),
            (ref_sm(x64.reshape(-1)).reshape(x.shape) if x.ndim > 1 and x.size > 1 else None,
             f"{name} normalises over the whole array: sum along `axis` only, so each slice sums to 1."),
            (e / e.sum(axis=ax) if x.ndim == 2 and x.shape[0] == x.shape[1] and ax in (1, -1) else None,
             f"{name} divides by the sums without keepdims=True, so they broadcast along the wrong axis: use "
             "e.sum(axis=axis, keepdims=True)."),
            (ref_sm(x64, axis=0) if x.ndim > 1 and ax not in (0, -x.ndim) else None,
             f"{name} normalises along axis 0 instead of the axis it was given."),
        ]
        with np.errstate(all="ignore"):
            hint = diagnose(probs, [(w.astype(x.dtype) if isinstance(w, np.ndarray) else w, m)
                                    for w, m in wrong], **_tolerances(x.dtype))
        check_close(probs.astype(np.float64), expected, what=label, hint=hint, **_tolerances(x.dtype))


# Named mistakes (course.mistakes): identifier -> a phrase of its message above.
MISTAKES = {
    "sigmoid_forward:naive-formula-overflows": "not numerically stable for large negative inputs",
    "sigmoid_forward:sign-of-the-exponent": "computes sigmoid(-x)",
    "sigmoid_forward:calls-the-reference": "calls the library's reference",
    "sigmoid_backward:ignores-dout": "ignores dout",
    "sigmoid_backward:output-from-the-input": "uses the input where the output was cached",
    "sigmoid_backward:multiplies-dout-in-place": "changed its argument `dout` in place",
    "sigmoid_backward:modifies-the-cache-in-place": "changed its argument `cache` in place",
    "sigmoid_backward:unstable-derivative-from-x": "sigmoid_backward is not numerically stable",
    "sigmoid_backward:calls-the-reference": "calls the library's reference",
    "tanh_forward:exponential-formula-overflows": "tanh_forward is not numerically stable",
    "tanh_forward:2-sigmoid-x-1": "which is tanh(x / 2)",
    "tanh_backward:ignores-dout": "ignores dout",
    "tanh_backward:output-from-the-input": "uses the input where the output was cached",
    "tanh_backward:1-cosh-2-overflows": "cosh(1000) = inf",
    "tanh_backward:1-t-instead-of-1-t-2": "the derivative of tanh is 1 - t**2",
    "relu_forward:np-max-instead-of-np-maximum": "np.maximum(x, 0) is the elementwise maximum",
    "relu_forward:zeroes-x-in-place": "changed its argument `x` in place",
    "relu_forward:absolute-value": "returns |x|",
    "relu_backward:gradient-at-x-0": "lets gradient through where x == 0",
    "relu_backward:mutates-dout": "changed its argument `dout` in place",
    "relu_backward:output-compared-with-0": "passes dout through unchanged",
    "relu_backward:ignores-dout": "ignores dout",
    "leaky_relu_forward:hard-coded-slope": "ignores its argument alpha",
    "leaky_relu_forward:alpha-instead-of-alpha-x": "it should return alpha * x",
    "leaky_relu_forward:wrong-default-alpha": "The default slope is alpha=0.01",
    "leaky_relu_backward:hard-coded-slope": "ignores alpha",
    "leaky_relu_backward:plain-relu-gradient": "gives no gradient where x < 0",
    "leaky_relu_backward:alpha-x-as-the-slope": "multiplies dout by alpha * x",
    "leaky_relu_backward:mutates-dout": "changed its argument `dout` in place",
    "softplus_forward:log-1-exp-x-overflows": "not numerically stable for large positive inputs",
    "softplus_forward:exp-x-instead-of-exp-x": "needs exp(-|x|)",
    "softplus_backward:unstable-sigmoid": "softplus_backward is not numerically stable",
    "softplus_backward:input-from-the-output": "uses the input where the output was cached",
    "softplus_backward:ignores-dout": "ignores dout",
    "swish_forward:x-1-exp-x-overflows": "not numerically stable for large negative inputs",
    "swish_forward:multiplies-x-in-place": "changed its argument `x` in place",
    "swish_backward:only-the-sigmoid-term": "missing a term",
    "swish_backward:s-x-s": "d/dx [x s] = s + x s (1 - s)",
    "softmax:no-max-subtraction": "subtract the maximum along `axis`",
    "softmax:ignores-axis": "ignores its argument `axis`",
    "softmax:global-maximum": "not the maximum of the whole array",
    "softmax:sum-without-keepdims": "keepdims=True",
    "softmax:subtracts-the-max-in-place": "changed its argument `x` in place",
    "softmax:returns-out-cache": "returns a tuple",
}
