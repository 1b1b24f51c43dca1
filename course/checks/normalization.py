"""Hidden tests for notebook 05: input standardization, batch normalization and layer normalization.

Every check compares the student's function with the library's reference (nnlab.normalization, itself tested
against PyTorch) on many shapes (one sample, one feature, square batches that hide an axis mix-up), float32 and
float64, and large offsets; backward passes are also checked against the numerical gradient of the student's own
forward pass, whatever its cache holds. Batch norm's running averages are followed over several calls, with the
momentum and eps given and absent. Known mistakes are named in the failure message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course.testing import Mistake, call, check_array, check_close, check_gradient, check_unchanged, diagnose, fail, snapshot
from nnlab import normalization as ref
from nnlab.gradcheck import numerical_gradient_array


def _pair(result: Any, name: str) -> tuple[Any, Any]:
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"{name} should return a pair (out, cache); it returned {type(result).__name__}.")
    return result


def _triple(result: Any, name: str) -> tuple[Any, Any, Any]:
    if not (isinstance(result, tuple) and len(result) == 3):
        fail(f"{name} should return a tuple (dx, dgamma, dbeta), in that order.")
    return result


def _tol(dtype: Any) -> dict[str, float]:
    return {"rtol": 2e-4, "atol": 2e-4} if np.dtype(dtype) == np.float32 else {"rtol": 1e-7, "atol": 1e-8}


def _data(rng: np.random.Generator, n: int, d: int, dtype: Any = np.float64, shift: float = 0.0,
          scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (n, d) with feature-wise offsets and spreads, gamma (d,) and beta (d,)."""
    offsets = shift * (1 + rng.random(d))
    spreads = scale * rng.uniform(0.5, 2.0, d)
    x = offsets + spreads * rng.standard_normal((n, d))
    gamma = rng.uniform(0.5, 2.0, d)
    beta = rng.standard_normal(d)
    return x.astype(dtype), gamma.astype(dtype), beta.astype(dtype)


def _normalize(x: np.ndarray, axis: int, eps: float, ddof: int = 0, eps_outside: bool = False) -> np.ndarray:
    x = x.astype(np.float64)
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True, ddof=ddof)
    if eps_outside:
        return (x - mu) / (np.sqrt(var) + eps)
    return (x - mu) / np.sqrt(var + eps)


def _diagnose_out(out: Any, expected: np.ndarray, mistakes: list[tuple[Any, str]]) -> str:
    """The known mistake ``out`` reproduces: first exactly (small slips such as eps outside the square root
    change the output by 1e-5 only), then loosely among the mistakes that differ clearly from ``expected``."""
    candidates = [(w, msg) for w, msg in mistakes if w is not None]
    exact = diagnose(out, candidates, rtol=1e-10, atol=1e-12)
    if exact:
        return exact
    distinct = [(w, msg) for w, msg in candidates
                if np.shape(w) != np.shape(expected) or not np.allclose(w, expected, rtol=1e-5, atol=1e-7)]
    return diagnose(out, distinct, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- standardization

CONSTANT_FEATURE = ("{name} gives the constant feature {j} (every value {v:g}) a std of {s:.3g}; a constant feature "
                    "gets std 1 (it is centred to 0 and left there). ")
TINY_STD = ("np.std of a constant column is not always exactly 0 (here {s:.3g}: the mean of n copies of {v:g} is "
            "rounded), so `std == 0` misses it; detect a constant feature from the values, e.g. "
            "np.ptp(X, axis=0) == 0 or np.all(X == X[0], axis=0).")


def check_standardize_fit(standardize_fit: Callable) -> None:
    """Per-feature mean and population std of many data sets, constant features get std 1, X unchanged."""
    name = "standardize_fit"
    rng = np.random.default_rng(500)
    # (N, D, dtype, shift, scale, constant features {column: value})
    cases = [(50, 4, np.float64, 5.0, 3.0, {2: 0.0}), (9, 9, np.float64, 1.0, 1.0, {}),
             (7, 1, np.float64, -2.0, 0.5, {}), (30, 3, np.float32, 2.0, 0.5, {0: 3.7}),
             (200, 6, np.float64, 1e6, 10.0, {4: 0.3}), (2, 3, np.float64, 0.0, 1.0, {}),
             (1000, 5, np.float64, 0.0, 2.0, {0: 0.1, 3: -1.5}), (1, 5, np.float64, 3.0, 1.0, {}),
             (40, 3, np.float64, 1.0, 1.0, {1: 0.1})]
    for n, d, dtype, shift, scale, constants in cases:
        X, _, _ = _data(rng, n, d, dtype, shift, scale)
        for j, v in constants.items():
            X[:, j] = v
        before = X.copy()
        what = f"{name}(X) for X {dtype.__name__} {X.shape}"
        mean, std = _pair(call(standardize_fit, X, name=name), name)
        check_unchanged([before], [X], ["X"], fn_name=name)
        if n != d and any(isinstance(a, np.ndarray) and a.shape == (n,) for a in (mean, std)):
            fail(f"{what} returns statistics of shape ({n},), one per sample: take them per feature, over the "
                 f"samples (axis=0), which gives shape ({d},).")
        check_array(mean, what=f"the mean from {what}", shape=(d,))
        check_array(std, what=f"the std from {what}", shape=(d,))
        X64 = X.astype(np.float64)
        constant = np.all(X64 == X64[0], axis=0)
        tol = {"rtol": 1e-5, "atol": 1e-5 * max(1.0, abs(shift))} if dtype == np.float32 else \
            {"rtol": 1e-9, "atol": 1e-12 * max(1.0, abs(shift))}
        check_close(mean, X64.mean(axis=0), what=f"the mean from {what}", **tol, hint=diagnose(
            mean, [(X64.mean(axis=1) if n == d else None, f"{name} averages over the features of each sample "
                    "(axis=1); the statistics are per feature, over the samples (axis=0).")]))
        for j in np.flatnonzero(constant):
            s = float(std[j])
            if not np.isclose(s, 1.0, rtol=1e-6, atol=0):
                v = float(X64[0, j])
                if 0 < s <= 16 * np.finfo(dtype).eps * max(1.0, abs(v)):  # a rounding residue, not an eps
                    hint = TINY_STD.format(s=s, v=v)
                elif 0 < s < 1e-3:
                    hint = ("Adding a small eps to every std does not help: the constant feature still gets a tiny "
                            "std, and standardize_apply turns any difference from the training value into a huge "
                            "number. Set the std of a constant feature to 1.")
                else:
                    hint = ("Without that guard, standardize_apply divides by 0 and returns NaN." if s == 0 else
                            "")
                fail(CONSTANT_FEATURE.format(name=name, j=j, v=v, s=s) + hint)
        varying = ~constant
        if varying.any():
            expected = X64.std(axis=0)[varying]
            got = np.asarray(std)[varying]
            hint = diagnose(got, [
                (X64.std(axis=0, ddof=1)[varying] if n > 1 else None, f"{name} uses the sample std (ddof=1); the "
                 "course uses the population std, ddof=0 (np.std's default), like batch norm."),
                (X64.var(axis=0)[varying], f"{name} returns the variance; return the standard deviation "
                 "(its square root)."),
                (X64.std(axis=1)[varying] if n == d else None, f"{name} takes the std over the features of each "
                 "sample (axis=1); the statistics are per feature, over the samples (axis=0)."),
            ], rtol=1e-6, atol=0)
            check_close(got, expected, what=f"the std of the non-constant features from {what}", **tol, hint=hint)


def check_standardize_apply(standardize_apply: Callable) -> None:
    """(X - mean) / std with the statistics given (the training set's), dtype of X kept, nothing modified."""
    name = "standardize_apply"
    rng = np.random.default_rng(501)
    # (N_train, N, D, X dtype, shift): the data given to standardize_apply comes from another distribution
    for n_train, n, d, dtype, shift in [(40, 10, 3, np.float64, 5.0), (60, 7, 7, np.float64, 0.0),
                                        (25, 12, 1, np.float64, -3.0), (30, 8, 4, np.float32, 2.0),
                                        (50, 5, 6, np.float64, 1e5), (20, 1, 4, np.float64, 1.0)]:
        X_train, _, _ = _data(rng, n_train, d, np.float64, shift, 2.0)
        mean, std = ref.standardize_fit(X_train)
        X = (X_train[:n] if n <= n_train else X_train) * 1.3 + 0.7 * std  # shifted and stretched: other statistics
        X = X[:n].astype(dtype)
        before = snapshot(X, mean, std)
        what = f"{name}(X, mean, std) for X {dtype.__name__} {X.shape}"
        got = call(standardize_apply, X, mean, std, name=name)
        check_unchanged(before, [X, mean, std], ["X", "mean", "std"], fn_name=name)
        if isinstance(got, np.ndarray) and got.shape == X.shape and got.dtype != X.dtype:
            fail(f"{what} returns {got.dtype}; it should keep X's dtype {X.dtype} (mean and std may be float64: "
                 "convert the result with .astype(X.dtype)).")
        check_array(got, what=what, shape=X.shape, dtype=X.dtype)
        X64 = X.astype(np.float64)
        expected = (X64 - mean) / std
        own = None
        if n > 1:
            own_std = X64.std(axis=0)
            own = (X64 - X64.mean(axis=0)) / np.where(own_std > 0, own_std, 1)
        hint = diagnose(got, [
            (own, f"{name} standardizes X with its own mean and std; use the `mean` and `std` passed in (the "
             "training set's statistics), so that every split is shifted and scaled the same way."),
            ((X64 - mean) * std, f"{name} multiplies by std; divide: (X - mean) / std."),
            (X64 - mean, f"{name} only subtracts the mean; also divide by std."),
            ((X64 - mean) / std ** 2, f"{name} divides by std ** 2 (the variance); divide by std."),
            (X64 / std - mean, f"{name} computes X / std - mean; subtract the mean first: (X - mean) / std."),
        ], rtol=1e-5, atol=1e-8)
        check_close(got, expected, what=what, **_tol(dtype), hint=hint)


# --------------------------------------------------------------------------- batch norm, forward

def _bn_param(mode: str, d: int, rng: np.random.Generator, *, momentum: float | None, eps: float | None,
              running: bool = True, dtype: Any = np.float64) -> dict[str, Any]:
    param: dict[str, Any] = {"mode": mode}
    if momentum is not None:
        param["momentum"] = momentum
    if eps is not None:
        param["eps"] = eps
    if running:
        param["running_mean"] = rng.standard_normal(d).astype(dtype)
        param["running_var"] = rng.uniform(0.5, 3.0, d).astype(dtype)
    return param


def _describe_param(param: dict[str, Any]) -> str:
    keys = [f"{k}={v!r}" for k, v in param.items() if not isinstance(v, np.ndarray)]
    arrays = [k for k, v in param.items() if isinstance(v, np.ndarray)]
    return "{" + ", ".join(keys + [f"{k}=<array>" for k in arrays]) + "}"


def _train_out_mistakes(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, param: dict[str, Any],
                        name: str) -> list[tuple[Any, str]]:
    eps = param.get("eps", 1e-5)
    g, b = gamma.astype(np.float64), beta.astype(np.float64)
    n = x.shape[0]
    out = [
        (g * _normalize(x, 0, eps, ddof=1) + b if n > 1 else None, f"{name} normalizes with the sample variance "
         "(ddof=1); batch norm uses the batch variance mean((x - mu) ** 2), ddof=0."),
        (g * _normalize(x, 0, eps, eps_outside=True) + b, f"{name} adds eps "
         "outside the square root; divide by np.sqrt(var + eps)."),
        (g * _normalize(x, 0, 0.0) + b if n > 1 else None, f"{name} ignores bn_param['eps']; divide by "
         "np.sqrt(var + eps)."),
        (g * _normalize(x, 0, 1e-5) + b if eps != 1e-5 else None, f"{name} uses eps = 1e-5 whatever "
         "bn_param['eps'] says; read it with bn_param.get('eps', 1e-5)."),
        (_normalize(x, 0, eps), f"{name} forgets gamma and beta: out = gamma * x_hat + beta."),
        (b * _normalize(x, 0, eps) + g, f"{name} swaps gamma and beta: out = gamma * x_hat + beta."),
        (_normalize(x, 1, eps) * g + b if x.shape[0] == x.shape[1] else None, f"{name} normalizes each sample "
         "over its features (that is layer norm); batch norm takes the statistics of each feature over the batch "
         "(axis=0)."),
    ]
    if "running_mean" in param:
        rm, rv = param["running_mean"].astype(np.float64), param["running_var"].astype(np.float64)
        out.append((g * (x - rm) / np.sqrt(rv + eps) + b, f"{name} uses the running averages in train mode; "
                    "train mode normalizes with the statistics of the batch itself."))
    return out


def _expected_running(param: dict[str, Any], mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = param.get("momentum", 0.9)
    rm = param.get("running_mean", np.zeros_like(mu))
    rv = param.get("running_var", np.ones_like(var))
    return m * rm + (1 - m) * mu, m * rv + (1 - m) * var


def _running_mistakes(param: dict[str, Any], x: np.ndarray, name: str) -> list[tuple[Any, Any, str]]:
    """(running_mean, running_var) of known-wrong updates, with their messages."""
    x = x.astype(np.float64)
    n = x.shape[0]
    m = param.get("momentum", 0.9)
    eps = param.get("eps", 1e-5)
    rm = param.get("running_mean", np.zeros(x.shape[1])).astype(np.float64)
    rv = param.get("running_var", np.ones(x.shape[1])).astype(np.float64)
    mu, var = x.mean(axis=0), x.var(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    out = [
        (rm, rv, f"{name} leaves bn_param['running_mean'] and bn_param['running_var'] as they were after a "
         "train-mode call: the caller never sees new running averages. Update them and store them in the dict "
         "you were given (bn_param['running_mean'] = ...); a copy of bn_param, or a local variable, is lost when "
         "the function returns."),
        ((1 - m) * rm + m * mu, (1 - m) * rv + m * var, f"{name} swaps the momentum weights: the course's momentum "
         "is the weight of the OLD value, running = momentum * running + (1 - momentum) * batch (PyTorch's "
         "momentum means the opposite)."),
        (mu, var, f"{name} replaces the running averages by the last batch's statistics; average them: "
         "running = momentum * running + (1 - momentum) * batch."),
        (m * rm + (1 - m) * mu, m * rv + (1 - m) * x.var(axis=0, ddof=1) if n > 1 else None,
         f"{name} averages the unbiased batch variance (ddof=1, what PyTorch keeps); the course averages the "
         "batch variance that normalized the batch (ddof=0)."),
        (m * rm + (1 - m) * mu, m * rv + (1 - m) * (var + eps), f"{name} adds eps to the running variance; "
         "average the batch variance itself (eps is added when the running variance is used)."),
        (m * rm + (1 - m) * mu, m * rv + (1 - m) * np.sqrt(var), f"{name} averages the batch std into "
         "running_var; average the variance."),
        (m * rm + (1 - m) * x_hat.mean(axis=0), m * rv + (1 - m) * x_hat.var(axis=0), f"{name} averages the "
         "statistics of the normalized values x_hat (always about 0 and 1); average the mean and variance of "
         "the input x."),
    ]
    if "momentum" in param and m != 0.9:
        out.append((0.9 * rm + 0.1 * mu, 0.9 * rv + 0.1 * var, f"{name} uses momentum 0.9 whatever "
                    "bn_param['momentum'] says; read it with bn_param.get('momentum', 0.9)."))
    return out


def _check_running(got_param: dict[str, Any], param_before: dict[str, Any], x: np.ndarray, name: str,
                   where: str) -> None:
    d = x.shape[1]
    for key in ("running_mean", "running_var"):
        if key not in got_param or got_param[key] is None:
            absent = key not in param_before
            fail(f"bn_param has no '{key}' after a train-mode call {where}" + (
                f"; when it is absent, start from {'zeros' if key == 'running_mean' else 'ones'} of shape (D,) "
                f"and store the updated average in bn_param['{key}']." if absent else
                f"; store the updated average in bn_param['{key}']."))
        check_array(got_param[key], what=f"bn_param['{key}'] after a train-mode call {where}", shape=(d,))
    x64 = x.astype(np.float64)
    mu, var = x64.mean(axis=0), x64.var(axis=0)
    want_rm, want_rv = _expected_running(
        {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v) for k, v in param_before.items()}, mu, var)
    got_rm = np.asarray(got_param["running_mean"], dtype=np.float64)
    got_rv = np.asarray(got_param["running_var"], dtype=np.float64)
    tol = {"rtol": 1e-5, "atol": 1e-6} if x.dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-12}
    if np.allclose(got_rm, want_rm, **tol) and np.allclose(got_rv, want_rv, **tol):
        return
    for rm, rv, message in _running_mistakes(param_before, x, name):
        if rv is None:
            continue
        if np.allclose(got_rm, rm, **tol) and np.allclose(got_rv, rv, **tol):
            fail(f"The running averages are wrong {where}. {message}")
    if "running_mean" not in param_before:
        fail(f"The running averages are wrong {where}: bn_param had no running statistics, so they start as "
                 "zeros (running_mean) and ones (running_var) of shape (D,), then take one update: running = "
                 "momentum * running + (1 - momentum) * batch.")
    check_close(got_rm, want_rm, what=f"bn_param['running_mean'] {where}", **tol,
                hint="running_mean = momentum * running_mean + (1 - momentum) * mean of the batch.")
    check_close(got_rv, want_rv, what=f"bn_param['running_var'] {where}", **tol,
                hint="running_var = momentum * running_var + (1 - momentum) * variance of the batch (ddof=0).")


def _test_mode_mistakes(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, param: dict[str, Any],
                        name: str) -> list[tuple[Any, str]]:
    eps = param.get("eps", 1e-5)
    g, b = gamma.astype(np.float64), beta.astype(np.float64)
    rm, rv = param["running_mean"].astype(np.float64), param["running_var"].astype(np.float64)
    x = x.astype(np.float64)
    return [
        (g * _normalize(x, 0, eps) + b if x.shape[0] > 1 else None, f"{name} uses the batch's own statistics in "
         "test mode; test mode normalizes with bn_param['running_mean'] and bn_param['running_var'], so that a "
         "prediction does not depend on the other samples of the batch."),
        (g * (x - rm) / (rv + eps) + b, f"{name} divides by running_var + eps in test mode; divide by the "
         "standard deviation np.sqrt(running_var + eps)."),
        (g * (x - rm) / (np.sqrt(rv) + eps) + b, f"{name} adds eps outside the "
         "square root in test mode; divide by np.sqrt(running_var + eps)."),
        ((x - rm) / np.sqrt(rv + eps), f"{name} forgets gamma and beta in test mode: out = gamma * x_hat + beta."),
    ]


def _check_test_mode_left_param(param: dict[str, Any], before: dict[str, Any], name: str, where: str) -> None:
    if set(param) != set(before):
        fail(f"{name} changed the keys of bn_param in test mode {where} (now {sorted(param)}, before "
             f"{sorted(before)}); test mode changes nothing in bn_param.")
    for key, old in before.items():
        new = param[key]
        if isinstance(old, np.ndarray):
            if not (isinstance(new, np.ndarray) and new.shape == old.shape and np.array_equal(new, old)):
                fail(f"{name} changed bn_param['{key}'] in test mode {where}: test mode changes nothing in "
                     "bn_param, it only reads the running averages; update them in train mode only (a prediction "
                     "must not change the network).")
        elif new != old:
            fail(f"{name} changed bn_param['{key}'] from {old!r} to {new!r} in test mode {where}; test mode "
                 "changes nothing in bn_param.")


def _call_bn(batchnorm_forward: Callable, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
             param: dict[str, Any], name: str) -> Any:
    try:
        return call(batchnorm_forward, x, gamma, beta, param, name=name)
    except Mistake as exc:
        absent = [k for k in ("running_mean", "running_var", "momentum", "eps") if k not in param]
        if "KeyError" in str(exc) and any(k in str(exc) for k in absent):
            fail(f"{name} raised {str(exc).split('raised ', 1)[-1]} with bn_param {_describe_param(param)}: "
                 "on the first call there are no running statistics yet (start from zeros and ones of shape "
                 "(D,)), and eps and momentum may be absent too (defaults 1e-5 and 0.9): use bn_param.get(key, "
                 "default).")
        raise


def _copy_param(param: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in param.items()}


def check_batchnorm_forward(batchnorm_forward: Callable) -> None:
    """Train mode vs the reference (out and running averages), test mode, several steps, dtypes, inputs intact."""
    name = "batchnorm_forward"
    rng = np.random.default_rng(502)
    # Single train-mode calls: (N, D, dtype, shift, scale, momentum, eps, running statistics given)
    cases = [(8, 3, np.float64, 2.0, 3.0, 0.9, 1e-5, True), (6, 6, np.float64, 0.0, 1.0, 0.5, 1e-5, True),
             (5, 1, np.float64, -1.0, 0.5, 0.7, None, True), (10, 4, np.float64, 1.0, 2.0, None, 0.3, True),
             (16, 5, np.float32, 3.0, 2.0, 0.9, 1e-5, True), (4, 3, np.float64, 0.0, 1.0, None, None, False),
             (12, 4, np.float64, 1e6, 1.0, 0.8, 1e-5, True), (2, 5, np.float64, 0.0, 1.0, 0.6, 1e-5, True),
             (64, 10, np.float64, 0.5, 4.0, 0.99, 1e-5, True), (1, 4, np.float64, 2.0, 1.0, 0.5, 1e-5, True)]
    for n, d, dtype, shift, scale, momentum, eps, running in cases:
        x, gamma, beta = _data(rng, n, d, dtype, shift, scale)
        param = _bn_param("train", d, rng, momentum=momentum, eps=eps, running=running, dtype=dtype)
        param_before = _copy_param(param)
        inputs = snapshot(x, gamma, beta)
        where = f"(train mode, x {dtype.__name__} {x.shape}, bn_param {_describe_param(param_before)})"
        out, _ = _pair(_call_bn(batchnorm_forward, x, gamma, beta, param, name), name)
        check_unchanged(inputs, [x, gamma, beta], ["x", "gamma", "beta"], fn_name=name)
        if isinstance(out, np.ndarray) and out.shape == x.shape and out.dtype != x.dtype:
            fail(f"out has dtype {out.dtype} {where}; it should keep x's dtype {x.dtype}.")
        check_array(out, what=f"out {where}", shape=x.shape, dtype=x.dtype)
        expected, _ = ref.batchnorm_forward(x, gamma, beta, _copy_param(param_before))
        mistakes = _train_out_mistakes(x, gamma, beta, param_before, name)
        hint = _diagnose_out(out, expected, mistakes)
        if not hint and shift >= 1e3:
            hint = ("With inputs around 1e6, mean(x ** 2) - mean(x) ** 2 loses every digit (cancellation); "
                    "compute the variance as mean((x - mu) ** 2).")
        check_close(out, expected, what=f"out {where}", **_tol(dtype), hint=hint)
        _check_running(param, param_before, x, name, where)

    # Several steps: train, train, ..., test, train; the running averages carry over from call to call.
    for momentum, dtype in [(0.8, np.float64), (None, np.float64), (0.95, np.float32)]:
        d = 4
        param: dict[str, Any] = {"mode": "train", "eps": 1e-5}
        if momentum is not None:
            param["momentum"] = momentum
        if dtype == np.float32:  # running statistics of x's dtype, as a network keeps them
            param.update(running_mean=np.zeros(d, dtype), running_var=np.ones(d, dtype))
        mine = param
        reference = _copy_param(param)
        start = _describe_param(reference)
        gamma, beta = rng.uniform(0.5, 2, d).astype(dtype), rng.standard_normal(d).astype(dtype)
        for step, mode in enumerate(["train"] * 5 + ["test", "train", "test", "test"]):
            x = (rng.normal(3.0, 2.0, (16, d)) * rng.uniform(0.5, 2, d)).astype(dtype)
            mine["mode"] = reference["mode"] = mode
            before = _copy_param(mine)
            where = (f"at call {step} (calls counted from 0) of the sequence train x5, test, train, test, test with "
                     f"bn_param starting as {start}" +
                     f" and batches x {dtype.__name__} (16, {d})")
            out, _ = _pair(_call_bn(batchnorm_forward, x, gamma, beta, mine, name), name)
            check_array(out, what=f"out {where}", shape=x.shape, dtype=x.dtype)
            expected, _ = ref.batchnorm_forward(x, gamma, beta, reference)
            if mode == "train":
                _check_running(mine, before, x, name, where)
                for key in ("running_mean", "running_var"):  # follow the reference exactly from here on
                    reference[key] = np.asarray(mine[key]).copy()
                check_close(out, expected, what=f"out {where}", **_tol(dtype))
            else:
                hint = _diagnose_out(out, expected, _test_mode_mistakes(x, gamma, beta, before, name))
                check_close(out, expected, what=f"out in test mode {where}", **_tol(dtype), hint=hint)
                _check_test_mode_left_param(mine, before, name, where)

    # Test mode alone, many shapes, eps given and absent; one sample.
    for n, d, eps, dtype in [(5, 3, 1e-5, np.float64), (1, 4, None, np.float64), (7, 1, 0.5, np.float64),
                             (6, 6, 1e-5, np.float32)]:
        x, gamma, beta = _data(rng, n, d, dtype, 1.0, 2.0)
        param = _bn_param("test", d, rng, momentum=0.9, eps=eps, dtype=dtype)
        before = _copy_param(param)
        where = f"(test mode, x {dtype.__name__} {x.shape}, bn_param {_describe_param(before)})"
        out, _ = _pair(call(batchnorm_forward, x, gamma, beta, param, name=name), name)
        check_array(out, what=f"out {where}", shape=x.shape, dtype=x.dtype)
        expected, _ = ref.batchnorm_forward(x, gamma, beta, _copy_param(before))
        hint = _diagnose_out(out, expected, _test_mode_mistakes(x, gamma, beta, before, name))
        check_close(out, expected, what=f"out {where}", **_tol(dtype), hint=hint)
        _check_test_mode_left_param(param, before, name, where)


# --------------------------------------------------------------------------- backward passes

def _grads_checked(backward: Callable, dout: np.ndarray, cache: Any, x: np.ndarray, name: str,
                   where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    before = dout.copy()
    dx, dgamma, dbeta = _triple(call(backward, dout, cache, name=name), name)
    check_unchanged([before], [dout], ["dout"], fn_name=name)
    d = x.shape[1]
    for g, gname, shape in ((dx, "dx", x.shape), (dgamma, "dgamma", (d,)), (dbeta, "dbeta", (d,))):
        if gname != "dx" and isinstance(g, np.ndarray) and g.shape == x.shape and x.shape != (d,):
            fail(f"{gname} has shape {g.shape} {where}; it should have shape ({d},) like {gname[1:]}: sum over "
                 "the samples (axis 0), since the same parameter scales or shifts every sample.")
        check_array(g, what=f"{gname} {where}", shape=shape)
        if g.dtype != x.dtype:
            fail(f"{gname} has dtype {g.dtype} {where}; the gradients keep x's dtype {x.dtype}.")
    return dx, dgamma, dbeta


def _backward_cases() -> list[tuple[int, int, Any, float, float]]:
    return [(8, 3, np.float64, 2.0, 3.0), (6, 6, np.float64, 0.0, 1.0), (5, 1, np.float64, -1.0, 0.5),
            (2, 5, np.float64, 0.0, 1.0), (16, 6, np.float32, 1.0, 2.0), (32, 4, np.float64, 50.0, 3.0),
            (1, 4, np.float64, 1.0, 1.0)]


def _check_dgamma_dbeta(dgamma: np.ndarray, dbeta: np.ndarray, e_dgamma: np.ndarray, e_dbeta: np.ndarray,
                        dout: np.ndarray, x: np.ndarray, x_hat: np.ndarray, name: str, where: str,
                        tol: dict[str, float]) -> None:
    """dgamma = sum(dout * x_hat) and dbeta = sum(dout) over the samples, with the known mistakes named."""
    g_hint = diagnose(dgamma, [
        (dout.sum(axis=0), f"{name}'s dgamma is sum(dout); gamma multiplies x_hat, so dgamma = "
         "sum over the samples of dout * x_hat."),
        ((dout * x).sum(axis=0), f"{name}'s dgamma uses x; gamma multiplies the normalized x_hat, so dgamma = "
         "sum(dout * x_hat, axis=0)."),
        ((dout * x_hat).mean(axis=0) if x.shape[0] > 1 else None, f"{name}'s dgamma averages over the samples; "
         "sum them: dgamma = sum(dout * x_hat, axis=0)."),
    ], rtol=1e-5, atol=1e-8)
    b_hint = diagnose(dbeta, [
        (dout.mean(axis=0) if x.shape[0] > 1 else None, f"{name}'s dbeta averages dout; sum it over the samples "
         "(axis 0)."),
        ((dout * x_hat).sum(axis=0), f"{name} swaps dgamma and dbeta: return (dx, dgamma, dbeta)."),
    ], rtol=1e-5, atol=1e-8)
    check_close(dbeta, e_dbeta, what=f"dbeta {where}", **tol, hint=b_hint)
    check_close(dgamma, e_dgamma, what=f"dgamma {where}", **tol, hint=g_hint)


def _numerical_check(forward: Callable, backward: Callable, param_factory: Callable[[], dict], x: np.ndarray,
                     gamma: np.ndarray, beta: np.ndarray, rng: np.random.Generator, fname: str, bname: str) -> None:
    """The student's backward against the numerical gradient of the student's own forward, float64."""
    out, cache = _pair(call(forward, x, gamma, beta, param_factory(), name=fname), fname)
    dout = rng.standard_normal(x.shape)
    grads = _triple(call(backward, dout, cache, name=bname), bname)
    again = _triple(call(backward, dout, cache, name=bname), bname)
    for g, h, gname in zip(grads, again, ("dx", "dgamma", "dbeta")):
        if not (isinstance(g, np.ndarray) and isinstance(h, np.ndarray) and np.array_equal(g, h)):
            fail(f"{bname} returned a different {gname} when called twice with the same dout and cache: it must "
                 "not modify the cache (work on copies).")
    for i, gname in enumerate(("x", "gamma", "beta")):
        args = [x.copy(), gamma.copy(), beta.copy()]

        def f(v: np.ndarray, i: int = i, args: list = args) -> np.ndarray:
            args[i] = v
            return forward(*args, param_factory())[0]
        numeric = numerical_gradient_array(f, args[i].copy(), dout)
        check_gradient(grads[i], numeric, what=f"d{gname} from {bname} (x {x.shape}, train mode)", tol=1e-6)


def check_batchnorm_backward(batchnorm_forward: Callable, batchnorm_backward: Callable) -> None:
    """dx, dgamma, dbeta of train-mode forwards vs the reference and the numerical gradient; dout and cache intact."""
    name = "batchnorm_backward"
    rng = np.random.default_rng(503)
    for n, d, dtype, shift, scale in _backward_cases():
        x, gamma, beta = _data(rng, n, d, dtype, shift, scale)
        param = _bn_param("train", d, rng, momentum=0.9, eps=1e-5, dtype=dtype)
        _, cache = _pair(call(batchnorm_forward, x, gamma, beta, param, name="batchnorm_forward"), "batchnorm_forward")
        dout = rng.standard_normal(x.shape).astype(dtype)
        where = f"(train mode, x {dtype.__name__} {x.shape})"
        dx, dgamma, dbeta = _grads_checked(batchnorm_backward, dout, cache, x, name, where)
        _, ref_cache = ref.batchnorm_forward(x, gamma, beta, _bn_param("train", d, rng, momentum=0.9, eps=1e-5))
        e_dx, e_dgamma, e_dbeta = ref.batchnorm_backward(dout, ref_cache)
        x64, g64, d64 = x.astype(np.float64), gamma.astype(np.float64), dout.astype(np.float64)
        mu, var = x64.mean(axis=0), x64.var(axis=0)
        inv_std = 1 / np.sqrt(var + 1e-5)
        x_hat = (x64 - mu) * inv_std
        tol = _tol(dtype)
        _check_dgamma_dbeta(dgamma, dbeta, e_dgamma, e_dbeta, d64, x64, x_hat, name, where, tol)
        dxhat = d64 * g64
        no_var = inv_std * (dxhat - dxhat.mean(axis=0))
        no_mean = inv_std * (dxhat - x_hat * (dxhat * x_hat).mean(axis=0))
        dx_hint = diagnose(dx, [
            (dxhat * inv_std if n > 1 else None, f"{name}'s dx is dout * gamma / sqrt(var + eps), as if the batch "
             "mean and variance were constants; in train mode they depend on every sample, so dx has two more "
             "terms: dx = gamma / sqrt(var + eps) / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat))."),
            (no_var if n > 1 else None, f"{name}'s dx misses the path through the variance: dx = gamma / sqrt(var "
             "+ eps) / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat))."),
            (no_mean if n > 1 else None, f"{name}'s dx misses the path through the mean: dx = gamma / sqrt(var + "
             "eps) / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat))."),
            (e_dx / g64, f"{name}'s dx forgets gamma: the gradient reaching x_hat is dout * gamma."),
            (e_dx * (n - 1) / n if n > 1 else None, f"{name}'s dx divides by N - 1 somewhere; the batch variance "
             "is a mean over N samples (ddof=0)."),
        ], rtol=1e-5, atol=1e-8)
        check_close(dx, e_dx, what=f"dx {where}", **tol, hint=dx_hint)
    for n, d in [(6, 3), (4, 5)]:
        x, gamma, beta = _data(rng, n, d, np.float64, 1.0, 2.0)
        _numerical_check(batchnorm_forward, batchnorm_backward, lambda: {"mode": "train", "eps": 1e-5}, x, gamma,
                         beta, rng, "batchnorm_forward", name)


# --------------------------------------------------------------------------- layer norm

def _ln_param(rng: np.random.Generator, eps: float | None, extra: bool) -> dict[str, Any]:
    param: dict[str, Any] = {}
    if eps is not None:
        param["eps"] = eps
    if extra:  # what a network passes to any normalization: ignored by layer norm
        param.update({"mode": str(rng.choice(["train", "test"])), "momentum": 0.9})
    return param


def check_layernorm_forward(layernorm_forward: Callable) -> None:
    """Statistics over the features of each sample, eps read from ln_param, same in every mode, inputs intact."""
    name = "layernorm_forward"
    rng = np.random.default_rng(504)
    for n, d, dtype, shift, scale, eps, extra in [
            (4, 6, np.float64, 2.0, 3.0, 1e-5, False), (5, 5, np.float64, 0.0, 1.0, 1e-5, True),
            (1, 7, np.float64, -1.0, 2.0, None, False), (8, 3, np.float64, 1.0, 1.0, 0.3, True),
            (6, 8, np.float32, 1.0, 2.0, 1e-5, False), (3, 6, np.float64, 1e6, 1.0, 1e-5, False),
            (7, 1, np.float64, 0.0, 1.0, 1e-5, True), (10, 2, np.float64, 0.0, 1.0, None, True)]:
        x, gamma, beta = _data(rng, n, d, dtype, 0.0, 1.0)
        x = x + (shift * (1 + rng.random((n, 1)))).astype(dtype)  # offsets per sample, spreads per sample
        x = x * rng.uniform(0.5, 2.0, (n, 1)).astype(dtype) * scale
        param = _ln_param(rng, eps, extra)
        before_param = _copy_param(param)
        inputs = snapshot(x, gamma, beta)
        where = f"(x {dtype.__name__} {x.shape}, ln_param {_describe_param(before_param)})"
        try:
            out, _ = _pair(call(layernorm_forward, x, gamma, beta, param, name=name), name)
        except Mistake as exc:
            if "broadcast" in str(exc):
                fail(f"{exc} Hint: x.mean(axis=1) has shape (N,), which does not line up with x (N, D); keep the "
                     "axis with keepdims=True (shape (N, 1)) so that each sample's statistics broadcast over its "
                     "features.")
            raise
        check_unchanged(inputs, [x, gamma, beta], ["x", "gamma", "beta"], fn_name=name)
        if param != before_param:
            fail(f"{name} changed ln_param {where}; layer norm keeps no state: leave ln_param as it is.")
        if isinstance(out, np.ndarray) and out.shape == x.shape and out.dtype != x.dtype:
            fail(f"out has dtype {out.dtype} {where}; it should keep x's dtype {x.dtype}.")
        check_array(out, what=f"out {where}", shape=x.shape, dtype=x.dtype)
        expected, _ = ref.layernorm_forward(x, gamma, beta, _copy_param(before_param))
        e = before_param.get("eps", 1e-5)
        g, b, x64 = gamma.astype(np.float64), beta.astype(np.float64), x.astype(np.float64)
        no_keepdims = None
        if n == d:
            no_keepdims = g * (x64 - x64.mean(axis=1)) / np.sqrt(x64.var(axis=1) + e) + b
        hint = _diagnose_out(out, expected, [
            (g * _normalize(x64, 0, e) + b, f"{name} takes the statistics over the batch (axis=0), like batch "
             "norm; layer norm normalizes each sample over its own features (axis=1, keepdims=True)."),
            (no_keepdims, f"{name} subtracts the per-sample statistics along the wrong axis: "
             "x.mean(axis=1) has shape (N,) and broadcasts along the features; use keepdims=True (shape (N, 1))."),
            (g * _normalize(x64, 1, e, ddof=1) + b if d > 1 else None, f"{name} uses the sample variance "
             "(ddof=1); layer norm uses mean((x - mu) ** 2) over the features (ddof=0)."),
            (g * _normalize(x64, 1, e, eps_outside=True) + b, f"{name} adds eps "
             "outside the square root; divide by np.sqrt(var + eps)."),
            (g * _normalize(x64, 1, 1e-5) + b if e != 1e-5 else None, f"{name} uses eps = 1e-5 whatever "
             "ln_param['eps'] says; read it with ln_param.get('eps', 1e-5)."),
            (_normalize(x64, 1, e), f"{name} forgets gamma and beta: out = gamma * x_hat + beta."),
        ])
        if not hint and shift >= 1e3:
            hint = ("With inputs around 1e6, mean(x ** 2) - mean(x) ** 2 loses every digit (cancellation); "
                    "compute the variance as mean((x - mu) ** 2).")
        check_close(out, expected, what=f"out {where}", **_tol(dtype), hint=hint)
    # The same computation in training and at test time.
    x, gamma, beta = _data(rng, 5, 4, np.float64, 1.0, 2.0)
    outs = [_pair(call(layernorm_forward, x, gamma, beta, {"eps": 1e-5, "mode": m}, name=name), name)[0]
            for m in ("train", "test")]
    check_close(outs[1], outs[0], what=f"{name} in test mode vs train mode",
                hint="layer norm does the same thing in both modes (it has no running statistics).")


def check_layernorm_backward(layernorm_forward: Callable, layernorm_backward: Callable) -> None:
    """dx, dgamma, dbeta vs the reference and the numerical gradient of your forward; dout and cache intact."""
    name = "layernorm_backward"
    rng = np.random.default_rng(505)
    for n, d, dtype, shift, scale in [(4, 6, np.float64, 2.0, 3.0), (5, 5, np.float64, 0.0, 1.0),
                                      (1, 7, np.float64, 1.0, 2.0), (8, 3, np.float64, -1.0, 1.0),
                                      (6, 8, np.float32, 1.0, 2.0), (3, 6, np.float64, 50.0, 3.0),
                                      (7, 1, np.float64, 0.0, 1.0)]:
        x, gamma, beta = _data(rng, n, d, dtype, 0.0, scale)
        x = x + (shift * (1 + rng.random((n, 1)))).astype(dtype)
        _, cache = _pair(call(layernorm_forward, x, gamma, beta, {"eps": 1e-5}, name="layernorm_forward"),
                         "layernorm_forward")
        dout = rng.standard_normal(x.shape).astype(dtype)
        where = f"(x {dtype.__name__} {x.shape})"
        dx, dgamma, dbeta = _grads_checked(layernorm_backward, dout, cache, x, name, where)
        _, ref_cache = ref.layernorm_forward(x, gamma, beta, {"eps": 1e-5})
        e_dx, e_dgamma, e_dbeta = ref.layernorm_backward(dout, ref_cache)
        x64, g64, d64 = x.astype(np.float64), gamma.astype(np.float64), dout.astype(np.float64)
        mu, var = x64.mean(axis=1, keepdims=True), x64.var(axis=1, keepdims=True)
        inv_std = 1 / np.sqrt(var + 1e-5)
        x_hat = (x64 - mu) * inv_std
        tol = _tol(dtype)
        _check_dgamma_dbeta(dgamma, dbeta, e_dgamma, e_dbeta, d64, x64, x_hat, name, where, tol)
        dxhat = d64 * g64
        batch_axis = batch_sums = None
        if n > 1:
            bmu, bvar = x64.mean(axis=0), x64.var(axis=0)
            binv = 1 / np.sqrt(bvar + 1e-5)
            bxh = (x64 - bmu) * binv
            batch_axis = binv / n * (n * dxhat - dxhat.sum(axis=0) - bxh * (dxhat * bxh).sum(axis=0))
            batch_sums = inv_std / n * (n * dxhat - dxhat.sum(axis=0) - x_hat * (dxhat * x_hat).sum(axis=0))
        formula = ("dx = 1 / sqrt(var + eps) / D * (D * g - sum_d g - x_hat * sum_d(g * x_hat)) with g = dout * "
                   "gamma and the sums over the features of each sample (axis=1, keepdims=True).")
        dx_hint = diagnose(dx, [
            (dxhat * inv_std if d > 1 else None, f"{name}'s dx is dout * gamma / sqrt(var + eps), as if each "
             f"sample's mean and variance were constants; they depend on every feature of the sample: {formula}"),
            (inv_std * (dxhat - dxhat.mean(axis=1, keepdims=True)) if d > 1 else None, f"{name}'s dx misses the "
             f"path through the variance: {formula}"),
            (inv_std * (dxhat - x_hat * (dxhat * x_hat).mean(axis=1, keepdims=True)) if d > 1 else None,
             f"{name}'s dx misses the path through the mean: {formula}"),
            (batch_axis, f"{name}'s dx sums over the batch (batch norm's formula); layer norm's statistics are "
             f"per sample: {formula}"),
            (batch_sums if n > 1 else None, f"{name}'s dx sums over the batch (axis=0, batch norm's formula); "
             f"layer norm's statistics are per sample: {formula}"),
            (e_dx / g64, f"{name}'s dx forgets gamma: the gradient reaching x_hat is dout * gamma."),
        ], rtol=1e-5, atol=1e-8)
        check_close(dx, e_dx, what=f"dx {where}", **tol, hint=dx_hint)
    for n, d in [(3, 5), (4, 4)]:
        x, gamma, beta = _data(rng, n, d, np.float64, 0.0, 1.0)
        x = x * rng.uniform(0.5, 2.0, (n, 1)) + rng.standard_normal((n, 1))
        _numerical_check(layernorm_forward, layernorm_backward, lambda: {"eps": 1e-5}, x, gamma, beta, rng,
                         "layernorm_forward", name)


#: Named mistakes (see course.mistakes): identifier -> a phrase of its message. More specific phrases come first.
MISTAKES = {
    "standardize_fit:constant-std-rounded": "is not always exactly 0",
    "standardize_fit:constant-std-plus-eps": "Adding a small eps to every std",
    "standardize_fit:constant-std-0": "Without that guard",
    "standardize_fit:constant-feature-not-std-1": "a constant feature gets std 1",
    "standardize_fit:ddof-1": "sample std (ddof=1)",
    "standardize_fit:returns-variance": "returns the variance",
    "standardize_fit:per-sample": "per feature, over the samples",
    "standardize_fit:modifies-x": "changed its argument `X`",
    "standardize_apply:own-statistics": "with its own mean and std",
    "standardize_apply:multiplies-by-std": "multiplies by std",
    "standardize_apply:only-subtracts-mean": "only subtracts the mean",
    "standardize_apply:divides-by-variance": "divides by std ** 2",
    "standardize_apply:divides-before-subtracting": "subtract the mean first",
    "standardize_apply:dtype": "keep X's dtype",
    "standardize_apply:modifies-input": "changed its argument",
    "batchnorm_forward:test-eps-outside-sqrt": "outside the square root in test mode",
    "batchnorm_forward:test-batch-statistics": "batch's own statistics in test mode",
    "batchnorm_forward:test-divides-by-variance": "divides by running_var + eps in test mode",
    "batchnorm_forward:test-changes-bn-param": "test mode changes nothing in bn_param",
    "batchnorm_forward:ddof-1": "normalizes with the sample variance (ddof=1)",
    "batchnorm_forward:eps-outside-sqrt": "adds eps outside the square root",
    "batchnorm_forward:ignores-eps": "ignores bn_param['eps']",
    "batchnorm_forward:eps-hard-coded": "whatever bn_param['eps'] says",
    "batchnorm_forward:no-gamma-beta": "forgets gamma and beta",
    "batchnorm_forward:gamma-beta-swapped": "swaps gamma and beta",
    "batchnorm_forward:per-sample-statistics": "(that is layer norm)",
    "batchnorm_forward:running-averages-in-train-mode": "uses the running averages in train mode",
    "batchnorm_forward:running-not-stored": "the caller never sees new running averages",
    "batchnorm_forward:momentum-swapped": "swaps the momentum weights",
    "batchnorm_forward:running-replaced-by-batch": "replaces the running averages by the last batch's statistics",
    "batchnorm_forward:running-unbiased-variance": "unbiased batch variance",
    "batchnorm_forward:running-var-plus-eps": "adds eps to the running variance",
    "batchnorm_forward:running-std": "averages the batch std",
    "batchnorm_forward:running-of-x-hat": "statistics of the normalized values",
    "batchnorm_forward:momentum-hard-coded": "whatever bn_param['momentum'] says",
    "batchnorm_forward:keyerror-first-call": "no running statistics yet",
    "batchnorm_forward:running-key-missing": "bn_param has no '",
    "batchnorm_forward:running-not-from-zeros-and-ones": "start as zeros (running_mean) and ones",
    "batchnorm_forward:cancellation": "cancellation",
    "batchnorm_forward:dtype": "keep x's dtype",
    "batchnorm_forward:modifies-input": "changed its argument",
    "batchnorm_backward:no-mean-variance-paths": "as if the batch mean and variance were constants",
    "batchnorm_backward:no-variance-path": "misses the path through the variance",
    "batchnorm_backward:no-mean-path": "misses the path through the mean",
    "batchnorm_backward:dx-without-gamma": "forgets gamma",
    "batchnorm_backward:n-minus-1": "divides by N - 1",
    "batchnorm_backward:dgamma-without-x-hat": "dgamma is sum(dout)",
    "batchnorm_backward:dgamma-uses-x": "dgamma uses x;",
    "batchnorm_backward:dgamma-averaged": "dgamma averages over the samples",
    "batchnorm_backward:dbeta-averaged": "dbeta averages dout",
    "batchnorm_backward:dgamma-dbeta-swapped": "swaps dgamma and dbeta",
    "batchnorm_backward:parameter-gradient-not-summed": "since the same parameter scales or shifts every sample",
    "batchnorm_backward:dtype": "the gradients keep x's dtype",
    "batchnorm_backward:modifies-dout": "changed its argument `dout`",
    "batchnorm_backward:modifies-cache": "must not modify the cache",
    "layernorm_forward:batch-axis": "over the batch (axis=0)",
    "layernorm_forward:no-keepdims": "keepdims=True (shape (N, 1))",
    "layernorm_forward:ddof-1": "sample variance (ddof=1)",
    "layernorm_forward:eps-outside-sqrt": "adds eps outside the square root",
    "layernorm_forward:eps-hard-coded": "whatever ln_param['eps'] says",
    "layernorm_forward:no-gamma-beta": "forgets gamma and beta",
    "layernorm_forward:changes-ln-param": "changed ln_param",
    "layernorm_forward:mode-dependent": "does the same thing in both modes",
    "layernorm_forward:cancellation": "cancellation",
    "layernorm_forward:dtype": "keep x's dtype",
    "layernorm_forward:modifies-input": "changed its argument",
    "layernorm_backward:no-mean-variance-paths": "as if each sample's mean and variance were constants",
    "layernorm_backward:no-variance-path": "misses the path through the variance",
    "layernorm_backward:no-mean-path": "misses the path through the mean",
    "layernorm_backward:batch-sums": "sums over the batch",
    "layernorm_backward:dx-without-gamma": "forgets gamma",
    "layernorm_backward:dgamma-without-x-hat": "dgamma is sum(dout)",
    "layernorm_backward:dgamma-uses-x": "dgamma uses x;",
    "layernorm_backward:dgamma-averaged": "dgamma averages over the samples",
    "layernorm_backward:dbeta-averaged": "dbeta averages dout",
    "layernorm_backward:dgamma-dbeta-swapped": "swaps dgamma and dbeta",
    "layernorm_backward:parameter-gradient-not-summed": "since the same parameter scales or shifts every sample",
    "layernorm_backward:dtype": "the gradients keep x's dtype",
    "layernorm_backward:modifies-dout": "changed its argument `dout`",
    "layernorm_backward:modifies-cache": "must not modify the cache",
}
