"""Hidden tests for notebook 00: gradient checking, the affine layer and softmax cross-entropy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course.testing import (Mistake, call, check_array, check_backward, check_close, check_scalar, check_unchanged,
                            diagnose, fail, snapshot)
from nnlab import gradcheck as ref_gc
from nnlab import layers as ref_layers

SHAPES = [(1,), (5,), (3, 4), (1, 1), (2, 3, 2)]
FORWARD_DIFFERENCE = ("{name} uses a forward difference (f(x+h) - f(x)) / h; use the central difference "
                      "(f(x+h) - f(x-h)) / (2h), whose error shrinks like h^2 instead of h.")


def _forward_difference(f, x, h):
    grad = np.zeros_like(x)
    fx = f(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        grad[i] = (f(x) - fx) / h
        x[i] = old
    return grad


def check_numerical_gradient(numerical_gradient: Callable) -> None:
    """Central differences on several shapes, ``h`` honoured, ``x`` restored exactly."""
    name = "numerical_gradient"
    rng = np.random.default_rng(100)
    for shape in SHAPES:
        c = rng.standard_normal(shape)
        f = lambda v, c=c: float(np.sum(np.sin(v) * c + v ** 2))  # noqa: E731
        x = rng.standard_normal(shape)
        x_before = x.copy()
        got = call(numerical_gradient, f, x, name=name)
        if not np.array_equal(x, x_before):
            fail(f"{name} left `x` changed after it returned. Save x[i] before you perturb it and put that "
                 "saved value back (x[i] + h - h is not exactly x[i] in floating point).")
        expected = ref_gc.numerical_gradient(f, x.copy())
        check_array(got, what=f"{name}(f, x) for x of shape {shape}", shape=shape)
        message = diagnose(got, [
            (_forward_difference(f, x.copy(), 1e-5), FORWARD_DIFFERENCE.format(name=name)),
        ], rtol=1e-8, atol=1e-12) or diagnose(got, [
            (2 * expected, f"{name} is twice the true gradient: central differences divide by 2h, not h."),
            (0.5 * expected, f"{name} is half the true gradient: divide by 2h, not 4h."),
        ], rtol=1e-4)
        check_close(got, expected, what=f"{name}(f, x) for x of shape {shape}", rtol=1e-5, atol=1e-8, hint=message)

    # h must be used, and the difference must be central: for f = sum(x^3) the central
    # difference is exactly 3x^2 + h^2, the forward difference 3x^2 + 3xh + h^2.
    x = rng.standard_normal((4,))
    cube = lambda v: float(np.sum(v ** 3))  # noqa: E731
    got = call(numerical_gradient, cube, x.copy(), h=0.1, name=name)
    expected = 3 * x ** 2 + 0.01
    message = diagnose(got, [
        (_forward_difference(cube, x.copy(), 0.1), FORWARD_DIFFERENCE.format(name=name)),
        (3 * x ** 2 + 1e-10, f"{name} ignores its argument `h`: use the h it is given, not a fixed step."),
    ], rtol=1e-4)
    check_close(got, expected, what=f"{name}(f, x, h=0.1) for f = sum(x**3)", rtol=1e-6, atol=1e-8,
                hint=message or "Expected exactly the central difference 3x^2 + h^2.")


def check_numerical_gradient_array(numerical_gradient_array: Callable) -> None:
    """Gradient of sum(f(x) * dout): dout used, outputs copied, x restored, dout unchanged."""
    name = "numerical_gradient_array"
    rng = np.random.default_rng(101)
    cases = [
        ("f(x) = x**2 + 3x", lambda v: v ** 2 + 3 * v, (4,), None),
        ("f(x) = tanh(x)", np.tanh, (3, 5), None),
        ("f(x) = x @ M", None, (2, 3), (3, 4)),
        ("f(x) = x.T (a view of x)", lambda v: v.T, (3, 2), None),
        ("f(x) = x**2 + 3x", lambda v: v ** 2 + 3 * v, (1, 1), None),
    ]
    for label, f, shape, m_shape in cases:
        if f is None:
            M = rng.standard_normal(m_shape)
            f = lambda v, M=M: v @ M  # noqa: E731
        x = rng.standard_normal(shape)
        dout = rng.standard_normal(np.shape(f(x)))
        x_before, dout_before = snapshot(x, dout)
        got = call(numerical_gradient_array, f, x, dout, name=name)
        check_unchanged([x_before, dout_before], [x, dout], ["x", "dout"], fn_name=name)
        expected = ref_gc.numerical_gradient_array(f, x.copy(), dout)
        message = diagnose(got, [
            (ref_gc.numerical_gradient_array(f, x.copy(), np.ones_like(dout)),
             f"{name} ignores `dout`: it must return the gradient of sum(f(x) * dout), "
             "so multiply the difference of outputs by dout before summing."),
            (np.zeros_like(x), f"{name} returns zeros for {label}. f(x) returned a view of x, which changed when "
             "you perturbed x again: copy the output (f(x).copy()) before evaluating f at x - h."),
            (2 * expected, f"{name} is twice the true gradient: divide by 2h, not h."),
        ], rtol=1e-4)
        check_close(got, expected, what=f"{name} for {label}, x of shape {shape}", rtol=1e-5, atol=1e-8,
                    hint=message)
    x = rng.standard_normal(3)
    got = call(numerical_gradient_array, lambda v: v ** 3, x.copy(), np.ones(3), h=0.1, name=name)
    check_close(got, 3 * x ** 2 + 0.01, what=f"{name}(f, x, dout, h=0.1) for f = x**3", rtol=1e-6,
                hint="Use the h it is given and the central difference (f(x+h) - f(x-h)) / (2h).")


def check_relative_error(relative_error: Callable) -> None:
    """Norm-based, symmetric, scale-free, 0 for two zero arrays, a plain float."""
    name = "relative_error"
    rng = np.random.default_rng(102)
    zeros = np.zeros((2, 3))
    try:
        call(relative_error, zeros, zeros.copy(), name=name)
    except Mistake as exc:
        if "not implemented yet" in str(exc):
            raise
        fail(f"relative_error(zeros, zeros) fails: {exc} Two zero arrays have error 0: return 0.0 when "
             "||a|| + ||b|| is 0, before dividing.")
    for shape in [(3,), (4, 5), (1,), (2, 3, 4)]:
        a = rng.standard_normal(shape)
        b = a + rng.standard_normal(shape) * rng.choice([1e-8, 1e-3, 1.0])
        got = check_scalar(call(relative_error, a, b, name=name), what=f"{name}(a, b)")
        expected = ref_gc.relative_error(a, b)
        elementwise = float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
        message = diagnose(got, [
            (elementwise, f"{name} uses an element-wise maximum; the course defines it with norms: "
             "||a - b|| / (||a|| + ||b||)."),
            (float(np.linalg.norm(a - b) / np.linalg.norm(a)),
             f"{name} divides by ||a|| only; divide by ||a|| + ||b|| so the error is symmetric."),
            (float(np.linalg.norm(a - b)), f"{name} is missing the denominator ||a|| + ||b||."),
        ], rtol=1e-6)
        check_close(got, expected, what=f"{name}(a, b) for shape {shape}", rtol=1e-8, atol=0, hint=message)
        check_close(call(relative_error, b, a, name=name), expected, what=f"{name}(b, a)", rtol=1e-8, atol=0,
                    hint="relative_error(a, b) must equal relative_error(b, a).")
    a = rng.standard_normal((3, 3))
    check_close(call(relative_error, a * 1e6, a * 1e6 * (1 + 1e-3), name=name),
                call(relative_error, a, a * (1 + 1e-3), name=name), what=f"{name} of the same arrays scaled by 1e6",
                rtol=1e-6, hint="The relative error must not depend on the scale of the arrays.")
    zeros = np.zeros((2, 3))
    got = call(relative_error, zeros, zeros.copy(), name=name)
    check_close(got, 0.0, what=f"{name}(zeros, zeros)", atol=0,
                hint="When both arrays are zero the error is 0 (test for it before dividing).")
    check_close(call(relative_error, zeros, np.ones((2, 3)), name=name), 1.0, what=f"{name}(zeros, ones)",
                rtol=1e-12)


def check_affine_forward(affine_forward: Callable) -> None:
    """x @ W + b for many shapes, one sample and one feature included, dtype kept, inputs intact."""
    name = "affine_forward"
    rng = np.random.default_rng(103)
    for (n, d, m) in [(4, 3, 5), (1, 1, 1), (1, 6, 2), (7, 1, 3), (5, 4, 4)]:
        for dtype in (np.float64, np.float32):
            x = rng.standard_normal((n, d)).astype(dtype)
            W = rng.standard_normal((d, m)).astype(dtype)
            b = rng.standard_normal(m).astype(dtype)
            before = snapshot(x, W, b)
            result = call(affine_forward, x, W, b, name=name)
            if not (isinstance(result, tuple) and len(result) == 2):
                fail(f"{name} should return a pair (out, cache).")
            out = result[0]
            check_unchanged(before, [x, W, b], ["x", "W", "b"], fn_name=name)
            expected = x @ W + b
            what = f"out of {name} for x {x.shape}, W {W.shape}, b {b.shape} ({np.dtype(dtype).name})"
            check_array(out, what=what, shape=(n, m), dtype=dtype)
            message = diagnose(out, [
                (x @ W, f"{name} forgets the bias: out = x @ W + b."),
                (x @ W.T + b if d == m else None, f"{name} uses W.T; W has shape (D, M), so out = x @ W + b."),
            ], rtol=1e-5)
            check_close(out, expected, what=what, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-5,
                        hint=message)


def check_affine_backward(affine_forward: Callable, affine_backward: Callable) -> None:
    """Numerical gradient check of dx, dW, db (with your own forward's cache), shapes, dtype, dout intact."""
    name = "affine_backward"
    rng = np.random.default_rng(104)
    for (n, d, m) in [(4, 3, 5), (1, 1, 1), (1, 5, 2), (6, 1, 3), (3, 4, 4)]:
        x, W, b = rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m)
        out, cache = call(affine_forward, x, W, b, name="affine_forward")
        dout = rng.standard_normal((n, m))
        before = snapshot(dout, x, W, b)
        grads = call(affine_backward, dout, cache, name=name)
        check_unchanged(before, [dout, x, W, b], ["dout", "x (in the cache)", "W (in the cache)",
                                                   "b (in the cache)"], fn_name=name)
        if not (isinstance(grads, tuple) and len(grads) == 3):
            fail(f"{name} should return a tuple (dx, dW, db).")
        dx, dW, db = grads
        shapes = f"x {x.shape}, W {W.shape}, dout {dout.shape}"
        if isinstance(db, np.ndarray) and db.shape == (n, m) and (n, m) != (m,):
            fail(f"db has shape {db.shape} but should have shape ({m},) like b: sum dout over the samples "
                 "(axis 0), because b is added to every row.")
        check_array(dx, what=f"dx for {shapes}", shape=x.shape)
        check_array(dW, what=f"dW for {shapes}", shape=W.shape)
        check_array(db, what=f"db for {shapes}", shape=b.shape)
        ex, eW, eb = dout @ W.T, x.T @ dout, dout.sum(axis=0)
        check_close(db, eb, what=f"db for {shapes}", rtol=1e-8, hint=diagnose(db, [
            (dout.mean(axis=0), "db averages dout over the samples; it should sum them (the 1/N is already "
             "in the loss's gradient).")]))
        check_close(dW, eW, what=f"dW for {shapes}", rtol=1e-8, hint=diagnose(dW, [
            (eW / n, "dW is divided by N; the loss's gradient already carries the 1/N, do not average again.")]))
        check_close(dx, ex, what=f"dx for {shapes}", rtol=1e-8, hint=diagnose(dx, [
            (dout @ W if d == m else None, "dx uses W instead of W.T: dx = dout @ W.T.")]))
    check_backward(affine_forward, affine_backward, [rng.standard_normal((3, 4)), rng.standard_normal((4, 2)),
                                                     rng.standard_normal(2)], names=["x", "W", "b"])
    x32 = rng.standard_normal((3, 2)).astype(np.float32)
    W32 = rng.standard_normal((2, 4)).astype(np.float32)
    b32 = rng.standard_normal(4).astype(np.float32)
    _, cache = call(affine_forward, x32, W32, b32, name="affine_forward")
    dx, dW, db = call(affine_backward, np.ones((3, 4), np.float32), cache, name=name)
    for g, gname in ((dx, "dx"), (dW, "dW"), (db, "db")):
        check_array(g, what=f"{gname} for float32 inputs", dtype=np.float32)


def check_softmax_cross_entropy(softmax_cross_entropy: Callable) -> None:
    """Mean loss and its gradient on many shapes; stable for scores of 1e3; scores intact; gradient check."""
    name = "softmax_cross_entropy"
    rng = np.random.default_rng(105)
    for (n, c), scale in [((5, 3), 1.0), ((1, 2), 1.0), ((20, 10), 5.0), ((4, 1), 1.0), ((8, 4), 1e3),
                          ((3, 5), -1e3)]:
        scores = rng.standard_normal((n, c)) * abs(scale) + (scale if scale < 0 else 0)
        y = rng.integers(0, c, size=n)
        before = snapshot(scores, y)
        result = call(softmax_cross_entropy, scores, y, name=name)
        check_unchanged(before, [scores, y], ["scores", "y"], fn_name=name)
        if not (isinstance(result, tuple) and len(result) == 2):
            fail(f"{name} should return a pair (loss, dscores).")
        loss, dscores = result
        e_loss, e_d = ref_layers.softmax_cross_entropy(scores, y)
        what = f"{name} for scores of shape {(n, c)} and magnitude {abs(scale):g}"
        loss = check_scalar(loss, what=f"the loss of {what}")
        check_close(loss, e_loss, what=f"the loss of {what}", rtol=1e-7, atol=1e-10, hint=diagnose(loss, [
            (e_loss * n, "The loss is summed over the batch; the course uses the mean (divide by N)."),
            (e_loss * n / c if c > 1 else None, "The loss is divided by the number of classes; divide by N."),
        ], rtol=1e-6))
        check_close(dscores, e_d, what=f"dscores of {what}", rtol=1e-6, atol=1e-10, hint=diagnose(dscores, [
            (e_d * n, "dscores is not divided by N: the loss is a mean, so its gradient carries 1/N."),
            (e_d + np.eye(c)[y] / n, "dscores is missing the -1 on the correct class: d loss / d scores = "
             "(softmax - one_hot(y)) / N."),
        ]))
    scores = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 2])
    f = lambda s: np.array(softmax_cross_entropy(s, y)[0])  # noqa: E731
    numeric = ref_gc.numerical_gradient_array(f, scores.copy(), np.array(1.0))
    check_close(call(softmax_cross_entropy, scores, y, name=name)[1], numeric,
                what="dscores against the numerical gradient of your loss", rtol=1e-5, atol=1e-8)
    s32 = rng.standard_normal((6, 5)).astype(np.float32) * 100
    y32 = rng.integers(0, 5, size=6)
    loss32, d32 = call(softmax_cross_entropy, s32, y32, name=name)
    e_loss32, e_d32 = ref_layers.softmax_cross_entropy(s32.astype(np.float64), y32)
    check_close(loss32, e_loss32, what=f"the loss of {name} for float32 scores", rtol=1e-4)
    check_close(np.asarray(d32, dtype=np.float64), e_d32, what=f"dscores of {name} for float32 scores",
                rtol=1e-3, atol=1e-6)


# Named mistakes (course.mistakes): identifier -> a phrase of its message above.
MISTAKES = {
    "numerical_gradient:forward-difference": "forward difference",
    "numerical_gradient:divides-by-h": "twice the true gradient",
    "numerical_gradient:restores-x-by-arithmetic": "left `x` changed",
    "numerical_gradient:ignores-h": "ignores its argument `h`",
    "numerical_gradient_array:ignores-dout": "ignores `dout`",
    "numerical_gradient_array:keeps-a-view-of-the-output": "view of x",
    "relative_error:no-zero-case": "warning",
    "relative_error:element-wise-denominator": "element-wise maximum",
    "relative_error:divides-by-a-only": "divides by ||a|| only",
    "affine_forward:forgets-the-bias": "forgets the bias",
    "affine_forward:casts-to-float64": "dtype",
    "affine_backward:db-not-summed": "sum dout over the samples",
    "affine_backward:db-averaged": "averages dout",
    "affine_backward:dw-averaged-over-the-batch": "divided by N",
    "softmax_cross_entropy:summed-loss": "summed over the batch",
    "softmax_cross_entropy:no-max-subtraction": "warning",
    "softmax_cross_entropy:subtracts-the-max-in-place": "changed its argument `scores` in place",
    "softmax_cross_entropy:gradient-not-divided-by-n": "not divided by N",
}
