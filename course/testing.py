"""Helpers for the notebooks' test cells, visible and hidden, written once.

Every failure raises :class:`Mistake` (an ``AssertionError``) whose message says,
in a student's words, what is wrong and usually what to do about it. Test cells
call these helpers; they never paste their own ``rel_error``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from nnlab.gradcheck import numerical_gradient_array, relative_error


class Mistake(AssertionError):
    """A test failure whose message names the student's mistake."""


def fail(message: str) -> None:
    raise Mistake(message)


def call(fn: Callable, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
    """Call a student's function, turning 'not done yet' and crashes into a plain message.

    Warnings raised inside (overflow, divide by zero) are recorded and reported as a
    mistake: a stable implementation emits none.
    """
    name = name or getattr(fn, "__name__", "your function")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn(*args, **kwargs)
        except NotImplementedError:
            fail(f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code.")
        except Mistake:
            raise
        except Exception as exc:  # the student's own error, shown as it is
            shapes = ", ".join(describe(a) for a in args)
            fail(f"{name}({shapes}) raised {type(exc).__name__}: {exc}")
    numeric = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    if numeric:
        fail(
            f"{name} emitted a warning: {numeric[0].category.__name__}: {numeric[0].message}. "
            "A numerically stable implementation never overflows, divides by zero or takes log(0)."
        )
    return result


def describe(a: Any) -> str:
    """A short description of an argument for messages: ``float64 array (3, 4)``."""
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array {a.shape}"
    if callable(a):
        return "a function"
    return repr(a) if len(repr(a)) < 30 else type(a).__name__


def check_array(actual: Any, *, what: str, shape: Sequence[int] | None = None, dtype: Any = None) -> np.ndarray:
    """``actual`` is a NumPy array of the given shape and dtype, with no NaN or inf."""
    if not isinstance(actual, np.ndarray):
        fail(f"{what} should be a NumPy array, but it is {type(actual).__name__}.")
    if shape is not None and actual.shape != tuple(shape):
        fail(f"{what} has shape {actual.shape}, but it should have shape {tuple(shape)}.")
    if dtype is not None and actual.dtype != np.dtype(dtype):
        fail(f"{what} has dtype {actual.dtype}, but it should keep the input's dtype {np.dtype(dtype)}.")
    if actual.dtype.kind == "f" and not np.all(np.isfinite(actual)):
        fail(f"{what} contains NaN or inf; look for an overflow, a division by zero or log(0).")
    return actual


def check_scalar(actual: Any, *, what: str) -> float:
    """``actual`` is one finite real number (a Python float or a 0-d NumPy value)."""
    if isinstance(actual, np.ndarray) and actual.size == 1 and actual.ndim <= 1:
        actual = actual.reshape(())[()]
    if isinstance(actual, (bool, np.bool_)) or not isinstance(actual, (int, float, np.integer, np.floating)):
        fail(f"{what} should be a single number (a float), but it is {type(actual).__name__} "
             f"{getattr(actual, 'shape', '')}.")
    if not np.isfinite(actual):
        fail(f"{what} is {actual}; look for an overflow, a division by zero or log(0).")
    return float(actual)


def check_close(actual: Any, expected: Any, *, what: str, rtol: float = 1e-6, atol: float = 1e-9,
                hint: str = "") -> None:
    """``actual`` matches ``expected`` in shape and value (within ``rtol``/``atol``)."""
    expected = np.asarray(expected)
    if np.ndim(expected) == 0:
        value = check_scalar(actual, what=what)
        if not np.isclose(value, float(expected), rtol=rtol, atol=atol):
            fail(f"{what} is {value:.8g}, but it should be {float(expected):.8g}. {hint}".strip())
        return
    actual = check_array(actual, what=what, shape=expected.shape)
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        err = np.max(np.abs(actual - expected))
        fail(f"{what} has the right shape {expected.shape} but wrong values "
             f"(largest difference {err:.3g}). {hint}".strip())


def check_gradient(analytic: Any, numeric: np.ndarray, *, what: str, tol: float = 1e-6) -> None:
    """An analytic gradient agrees with a numerical one: relative error below ``tol``."""
    analytic = check_array(analytic, what=what, shape=numeric.shape)
    err = relative_error(analytic, numeric)
    if err > tol:
        fail(f"{what} disagrees with the numerical gradient: relative error {err:.2e} (a correct gradient "
             f"gives less than {tol:.0e}). Work the chain rule through once more for this input.")


def snapshot(*arrays: Any) -> list[Any]:
    """Copies of the arrays among ``arrays`` (other values are kept as they are)."""
    return [a.copy() if isinstance(a, np.ndarray) else a for a in arrays]


def check_unchanged(before: Sequence[Any], after: Sequence[Any], names: Sequence[str], *, fn_name: str) -> None:
    """Each array in ``after`` still equals its snapshot in ``before``."""
    for old, new, arg in zip(before, after, names):
        if isinstance(old, np.ndarray) and not np.array_equal(old, new, equal_nan=True):
            fail(f"{fn_name} changed its argument `{arg}` in place. Work on a copy "
                 f"(e.g. `{arg} = {arg}.copy()` or a new array) so the caller's data stays intact.")


def check_backward(forward: Callable, backward: Callable, inputs: Sequence[np.ndarray], *, names: Sequence[str],
                   dout_seed: int = 0, tol: float = 1e-6, h: float = 1e-6) -> None:
    """Gradient-check ``backward`` against the numerical gradient of ``forward``, in float64.

    ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache) -> grad or tuple of grads``,
    one gradient per input, named by ``names`` (``["x", "W", "b"]``). ``dout`` and the cache
    must be left unchanged by ``backward``.
    """
    inputs = [np.array(a, dtype=np.float64) for a in inputs]
    fname, bname = _name(forward), _name(backward)
    out, cache = _unpack_forward(call(forward, *inputs, name=fname), fname)
    rng = np.random.default_rng(dout_seed)
    dout = rng.standard_normal(np.shape(out))
    dout_before = dout.copy()
    grads = call(backward, dout, cache, name=bname)
    check_unchanged([dout_before], [dout], ["dout"], fn_name=bname)
    if len(inputs) == 1 and not isinstance(grads, tuple):
        grads = (grads,)
    if not isinstance(grads, tuple) or len(grads) != len(inputs):
        fail(f"{bname} should return {len(inputs)} gradient(s) ({', '.join('d' + n for n in names)}) as a tuple, "
             f"in that order.")
    for i, (grad, name) in enumerate(zip(grads, names)):
        def f(v, i=i):
            args = list(inputs)
            args[i] = v
            return _unpack_forward(forward(*args), fname)[0]
        numeric = numerical_gradient_array(f, inputs[i].copy(), dout, h=h)
        check_gradient(grad, numeric, what=f"d{name} from {bname}", tol=tol)


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", "your function")


def _unpack_forward(result: Any, fname: str) -> tuple[Any, Any]:
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"{fname} should return a pair (out, cache).")
    return result


def diagnose(actual: Any, mistakes: Iterable[tuple[Any, str]], *, rtol: float = 1e-6, atol: float = 1e-9) -> str:
    """The message of the first known mistake whose output ``actual`` reproduces, or ``""``.

    ``mistakes`` pairs the output of a known-wrong implementation with the message for it.
    """
    for wrong, message in mistakes:
        try:
            if np.shape(actual) == np.shape(wrong) and np.allclose(actual, wrong, rtol=rtol, atol=atol):
                return message
        except (TypeError, ValueError):
            continue
    return ""
