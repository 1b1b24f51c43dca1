"""Hidden tests for notebook 06: update rules, learning-rate schedules and minibatches.

Every update rule is run for 12 or more steps on many shapes, dtypes and hyperparameters and compared
step by step with the library's reference (which the library's own tests tie to ``torch.optim``).
What the exercises state, and these checks enforce:

- ``rule(w, dw, config=None) -> (next_w, config)``; ``next_w`` has the shape and dtype of ``w``; ``w``
  may be changed in place or left alone; ``dw`` is left unchanged;
- ``config=None`` creates a dict holding every hyperparameter's default; missing keys of a given
  config get their defaults; the rule reads ``config["learning_rate"]`` on every call (a schedule
  changes it between calls);
- the state lives in ``config`` under the documented keys (``velocity``, ``cache``, ``m``, ``v``,
  ``t`` = steps already taken), starts as zeros, and is used when the caller provides it; two
  parameters with their own configs never share state.

Known mistakes are simulated on the same inputs, so a failure names the mistake.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.testing import Mistake, check_scalar, describe, fail
from course.visible_checks import (DEFAULTS, STATE, _call_rule, _check_defaults, _check_fresh_runs_agree,  # noqa: F401
                                   _check_state_is_used, _check_two_parameters, _copy_config, _gradients,
                                   check_rule_contract)
from nnlab import optim as ref

# ----------------------------------------------------------------------------------------------- update rules

FORMULA = {
    "sgd": "w - lr * dw",
    "sgd_momentum": "v = momentum * v + dw; w = w - lr * v",
    "nesterov": "v = momentum * v + dw; w = w - lr * (dw + momentum * v)",
    "adagrad": "cache = cache + dw**2; w = w - lr * dw / (sqrt(cache) + epsilon)",
    "rmsprop": "cache = decay_rate * cache + (1 - decay_rate) * dw**2; w = w - lr * dw / (sqrt(cache) + epsilon)",
    "adam": "t += 1; m = beta1*m + (1-beta1)*dw; v = beta2*v + (1-beta2)*dw**2; "
            "w = w - lr * m_hat / (sqrt(v_hat) + epsilon) with m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t)",
}
NUM_STEPS = 12


def _hp(config: dict, name: str, variant: str) -> dict[str, float]:
    """The hyperparameters a variant uses: those of config, or the defaults for the ones it ignores."""
    h = {**DEFAULTS[name], **{k: v for k, v in config.items() if k in DEFAULTS[name]}}
    for key in DEFAULTS[name]:
        if variant == f"ignores_{key}":
            h[key] = DEFAULTS[name][key]
    return h


def _variant_step(name: str, variant: str, w: np.ndarray, dw: np.ndarray, config: dict) -> np.ndarray:
    """One step of the rule, or of a known mistake ``variant``, in float64; updates config's state."""
    h = _hp(config, name, variant)
    lr = h["learning_rate"]
    sign = -1.0 if variant == "ascent" else 1.0
    w, dw = w.astype(np.float64), dw.astype(np.float64)
    zeros = np.zeros_like(w)
    if name == "sgd":
        return w - sign * lr * dw
    if name in ("sgd_momentum", "nesterov"):
        rho = h["momentum"]
        v_old = config.get("velocity", zeros) if variant != "no_store" else zeros
        if variant == "cs231n":  # v holds -lr * (torch's v)
            v = rho * v_old - lr * dw
            config["velocity"] = v
            if name == "sgd_momentum":
                return w + v
            return w - rho * v_old + (1 + rho) * v
        if variant == "lr_twice":
            v = rho * v_old + lr * dw
        elif variant == "dampened":
            v = rho * v_old + (1 - rho) * dw
        else:
            v = rho * v_old + dw
        config["velocity"] = v
        if name == "sgd_momentum":
            return w - sign * lr * (v_old if variant == "old_velocity" else v)
        if variant == "plain_momentum":
            return w - lr * v
        look = v_old if variant == "old_velocity" else v
        return w - sign * lr * (dw + rho * look)
    eps = h["epsilon"]
    if name in ("adagrad", "rmsprop"):
        cache_old = config.get("cache", zeros) if variant != "no_store" else zeros
        if name == "adagrad":
            cache = dw * dw if variant == "no_accumulation" else cache_old + dw * dw
        else:
            g = h["decay_rate"]
            if variant == "no_one_minus":
                cache = g * cache_old + dw * dw
            elif variant == "swapped":
                cache = (1 - g) * cache_old + g * dw * dw
            else:
                cache = g * cache_old + (1 - g) * dw * dw
        config["cache"] = cache
        with np.errstate(all="ignore"):
            if variant == "no_sqrt":
                denom = cache + eps
            elif variant == "eps_inside":
                denom = np.sqrt(cache + eps)
            else:
                denom = np.sqrt(cache) + eps
            return w - sign * lr * dw / denom
    # adam
    b1, b2 = h["beta1"], h["beta2"]
    t_old = int(config.get("t", 0))
    if variant == "t_after":  # uses t, then increments it: t = 0 at the first step
        t_use, t_new = t_old, t_old + 1
    elif variant == "t_not_stored":
        t_use, t_new = 1, 0
    else:
        t_use = t_new = t_old + 1
    m = b1 * config.get("m", zeros) + (1 - b1) * dw
    v = b2 * config.get("v", zeros) + (1 - b2) * (dw if variant == "v_not_squared" else dw * dw)
    config["m"], config["v"], config["t"] = m, v, t_new
    with np.errstate(all="ignore"):
        c1, c2 = 1 - b1 ** t_use, 1 - b2 ** t_use
        if variant == "no_bias_correction":
            c1 = c2 = 1.0
        elif variant == "bias_m_only":
            c2 = 1.0
        elif variant == "bias_v_only":
            c1 = 1.0
        m_hat, v_hat = m / c1, v / c2
        if variant == "no_sqrt":
            return w - lr * m_hat / (v_hat + eps)
        if variant == "eps_inside":
            return w - lr * m_hat / np.sqrt(v_hat + eps)
        if variant == "efficient_form":  # Kingma & Ba's lr_t form: epsilon next to sqrt(v), not sqrt(v_hat)
            return w - lr * math.sqrt(c2) / c1 * m / (np.sqrt(v) + eps)
        return w - sign * lr * m_hat / (np.sqrt(v_hat) + eps)


# (variant, message) for each rule; the message follows "<name> ...".
VARIANTS: dict[str, list[tuple[str, str]]] = {
    "sgd": [
        ("ascent", "steps uphill (w + lr * dw is gradient *ascent*): subtract the gradient, w - lr * dw."),
        ("ignores_learning_rate", "ignores config['learning_rate'] (it always steps with 1e-2): read the learning "
                                  "rate from config on every call."),
    ],
    "sgd_momentum": [
        ("ascent", "steps uphill (w + lr * v): subtract, w = w - lr * v."),
        ("lr_twice", "multiplies by the learning rate twice: v = momentum * v + dw has no lr in it; lr appears "
                     "once, in w = w - lr * v."),
        ("no_store", "does not carry the velocity from one call to the next: store v in config['velocity'] and "
                     "start from it on the next call (with no memory, momentum is plain SGD)."),
        ("dampened", "averages the gradient into the velocity (v = momentum * v + (1 - momentum) * dw); this "
                     "course's momentum (PyTorch's) adds the whole gradient: v = momentum * v + dw."),
        ("old_velocity", "updates w with the velocity of the previous call: first v = momentum * v + dw, then "
                         "w = w - lr * v with the new v."),
        ("cs231n", "keeps the learning rate inside the velocity (v = momentum * v - lr * dw; w = w + v). That "
                   "gives the same steps only while the learning rate never changes; the course's form "
                   "(PyTorch's) is v = momentum * v + dw; w = w - lr * v, and config['velocity'] holds that v."),
        ("ignores_momentum", "ignores config['momentum'] (it always uses 0.9): read it from config."),
        ("ignores_learning_rate", "ignores config['learning_rate']: read it from config on every call."),
    ],
    "nesterov": [
        ("plain_momentum", "is plain momentum (w = w - lr * v, which is also what the look-ahead with the "
                           "previous call's velocity, w - lr * (dw + momentum * v_old), amounts to): Nesterov steps "
                           "with the look-ahead w = w - lr * (dw + momentum * v), v the new velocity."),
        ("ascent", "steps uphill: w = w - lr * (dw + momentum * v), with a minus."),
        ("lr_twice", "multiplies by the learning rate twice: v = momentum * v + dw has no lr in it."),
        ("no_store", "does not carry the velocity from one call to the next: store v in config['velocity']."),
        ("dampened", "averages the gradient into the velocity (1 - momentum) * dw; the course's (PyTorch's) "
                     "velocity adds the whole gradient: v = momentum * v + dw."),
        ("cs231n", "keeps the learning rate inside the velocity (CS231n's form v = mu * v - lr * dw). That gives "
                   "the same steps only while the learning rate never changes; the course's form (PyTorch's) is "
                   "v = momentum * v + dw; w = w - lr * (dw + momentum * v), and config['velocity'] holds that v."),
        ("ignores_momentum", "ignores config['momentum'] (it always uses 0.9): read it from config."),
        ("ignores_learning_rate", "ignores config['learning_rate']: read it from config on every call."),
    ],
    "adagrad": [
        ("no_accumulation", "does not accumulate: cache = cache + dw**2 adds every squared gradient so far "
                            "(cache = dw**2 forgets them)."),
        ("no_store", "does not carry the cache from one call to the next: store it in config['cache']."),
        ("no_sqrt", "divides by cache + epsilon: divide by the square root, sqrt(cache) + epsilon."),
        ("eps_inside", "puts epsilon inside the square root: divide by sqrt(cache) + epsilon (epsilon outside)."),
        ("ascent", "steps uphill: w = w - lr * dw / (sqrt(cache) + epsilon), with a minus."),
        ("ignores_epsilon", "ignores config['epsilon'] (it always uses 1e-8): read it from config."),
        ("ignores_learning_rate", "ignores config['learning_rate']: read it from config on every call."),
    ],
    "rmsprop": [
        ("no_one_minus", "adds the whole dw**2 to the cache: the leaky average is decay_rate * cache + "
                         "(1 - decay_rate) * dw**2 (the 1 - decay_rate is missing)."),
        ("swapped", "swaps decay_rate and 1 - decay_rate: cache = decay_rate * cache + (1 - decay_rate) * dw**2 "
                    "(the old cache keeps the large weight)."),
        ("no_store", "does not carry the cache from one call to the next: store it in config['cache']."),
        ("no_sqrt", "divides by cache + epsilon: divide by the square root, sqrt(cache) + epsilon."),
        ("eps_inside", "puts epsilon inside the square root: divide by sqrt(cache) + epsilon (epsilon outside)."),
        ("ascent", "steps uphill: w = w - lr * dw / (sqrt(cache) + epsilon), with a minus."),
        ("ignores_decay_rate", "ignores config['decay_rate'] (it always uses 0.99): read it from config."),
        ("ignores_epsilon", "ignores config['epsilon'] (it always uses 1e-8): read it from config."),
        ("ignores_learning_rate", "ignores config['learning_rate']: read it from config on every call."),
    ],
    "adam": [
        ("no_bias_correction", "has no bias correction: divide m by 1 - beta1**t and v by 1 - beta2**t "
                               "(m_hat, v_hat) before the step."),
        ("bias_m_only", "corrects the bias of m but not of v: v_hat = v / (1 - beta2**t) too."),
        ("bias_v_only", "corrects the bias of v but not of m: m_hat = m / (1 - beta1**t) too."),
        ("t_after", "uses t before incrementing it (t = 0 at the first step makes 1 - beta**t zero): increment "
                    "t first, so the first step uses t = 1."),
        ("t_not_stored", "does not carry t from one call to the next: store it in config['t'] (the bias "
                         "corrections use the number of steps taken)."),
        ("v_not_squared", "averages dw into v instead of dw**2: v = beta2 * v + (1 - beta2) * dw**2."),
        ("no_sqrt", "divides by v_hat + epsilon: divide by the square root, sqrt(v_hat) + epsilon."),
        ("eps_inside", "puts epsilon inside the square root: divide by sqrt(v_hat) + epsilon."),
        ("efficient_form", "adds epsilon to sqrt(v) with the bias corrections folded into the learning rate "
                           "(the paper's 'efficient' form); the course (and PyTorch) divide by sqrt(v_hat) + "
                           "epsilon, which differs when the gradients are small."),
        ("ascent", "steps uphill: w = w - lr * m_hat / (sqrt(v_hat) + epsilon), with a minus."),
        ("ignores_beta1", "ignores config['beta1'] (it always uses 0.9): read it from config."),
        ("ignores_beta2", "ignores config['beta2'] (it always uses 0.999): read it from config."),
        ("ignores_epsilon", "ignores config['epsilon'] (it always uses 1e-8): read it from config."),
        ("ignores_learning_rate", "ignores config['learning_rate']: read it from config on every call."),
    ],
}


def _fmt_config(config: dict | None) -> str:
    if config is None:
        return "None"
    parts = []
    for k, v in config.items():
        parts.append(f"{k}: {describe(v)}" if isinstance(v, np.ndarray) else f"{k}: {v!r}")
    return "{" + ", ".join(parts) + "}"


def _reference_run(name: str, w0: np.ndarray, grads: list[np.ndarray], config: dict | None,
                   lrs: list[float] | None, variant: str = "") -> list[np.ndarray]:
    """Trajectory (one array per step) of the reference, or of a known mistake in float64."""
    rule = getattr(ref, name)
    config = _copy_config(config)
    w, out = w0.copy(), []
    for i, g in enumerate(grads):
        if lrs is not None:
            config["learning_rate"] = lrs[i]
        if variant:
            if config is None:
                config = {}
            w = _variant_step(name, variant, w, g, config)
        else:
            w, config = rule(w, g, config)
        out.append(np.array(w, dtype=np.float64))
    return out


def _tolerances(dtype: Any) -> tuple[float, float]:
    return (2e-4, 1e-5) if np.dtype(dtype) == np.float32 else (1e-7, 1e-10)


def _close(a: np.ndarray, b: np.ndarray, dtype: Any, scale: float) -> bool:
    rtol, atol = _tolerances(dtype)
    with np.errstate(all="ignore"):
        return bool(np.allclose(np.asarray(a, dtype=np.float64), b, rtol=rtol, atol=atol * scale, equal_nan=True))


def _diagnose_run(name: str, got: list[np.ndarray], w0: np.ndarray, grads: list[np.ndarray], config: dict | None,
                  lrs: list[float] | None, dtype: Any, scale: float) -> str:
    """The message of the known mistake whose trajectory the student's reproduces, or ""."""
    for variant, message in VARIANTS[name]:
        key = variant.removeprefix("ignores_")
        if variant.startswith("ignores_") and (config is None or config.get(key, DEFAULTS[name][key])
                                               == DEFAULTS[name][key]):
            continue  # the default is the given value: nothing to tell apart
        try:
            wrong = _reference_run(name, w0, grads[:len(got)], config, lrs, variant)
        except (ValueError, FloatingPointError, ZeroDivisionError, OverflowError):
            continue
        if all(_close(g, e, dtype, scale) for g, e in zip(got, wrong)):
            return f"{name} {message}"
    return ""


def _run_case(rule: Callable, name: str, w0: np.ndarray, grads: list[np.ndarray], config: dict | None,
              lrs: list[float] | None = None, what: str = "") -> dict:
    """Run the student's rule over ``grads`` and compare every step with the reference; returns the last config."""
    dtype = w0.dtype
    scale = max(1.0, float(np.max(np.abs(w0))))
    expected = _reference_run(name, w0, grads, config, lrs)
    cfg = _copy_config(config)
    given = _fmt_config(config)
    w = w0.copy()
    got: list[np.ndarray] = []
    for i, g in enumerate(grads):
        step = i + 1
        where = f"step {step} of a run from config={given}, w {describe(w0)}{what}"
        if lrs is not None:
            cfg["learning_rate"] = lrs[i]
            where += f", config['learning_rate'] changed to {lrs[i]:g} before this step"
        w, cfg, warning = _call_rule(rule, name, w, g.astype(dtype), cfg, where)
        got.append(np.array(w, dtype=np.float64))
        if not _close(got[-1], expected[i], dtype, scale):
            first_wrong = got[-1]
            _finish_run(rule, name, w, grads, i + 1, cfg, lrs, dtype, got)  # the whole run tells mistakes apart
            hint = _diagnose_run(name, got, w0, grads, config, lrs, dtype, scale)
            if not hint and warning:
                hint = (f"It emitted a warning ({warning}): a correct rule never divides by zero or takes the "
                        "square root of a negative number.")
            if not hint and not np.all(np.isfinite(w)):
                hint = "next_w contains NaN or inf."
            err = np.nanmax(np.abs(first_wrong - expected[i])) if np.all(np.isfinite(first_wrong)) else float("nan")
            hint = hint or f"The rule is: {FORMULA[name]}."
            fail(f"{name} gives a wrong w at {where} (largest difference {err:.3g}). {hint}")
        if warning:
            fail(f"{name} emitted a warning at {where}: {warning}. A correct rule never divides by zero or takes "
                 "the square root of a negative number.")
        if name == "adam" and "t" in cfg and (not isinstance(cfg["t"], (int, np.integer)) or
                                              cfg["t"] != int((config or {}).get("t", 0)) + step):
            fail(f"config['t'] is {cfg['t']!r} after {step} call(s) of adam ({where}); t counts the steps already "
                 f"taken, an integer, so it should be {int((config or {}).get('t', 0)) + step}: increment it (before "
                 "using it) once per call.")
    return cfg


def _finish_run(rule: Callable, name: str, w: np.ndarray, grads: list[np.ndarray], start: int, cfg: Any,
                lrs: list[float] | None, dtype: Any, got: list[np.ndarray]) -> None:
    """Run the student's rule over the remaining gradients (after a wrong step), appending to ``got``."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for i in range(start, len(grads)):
            try:
                if lrs is not None:
                    cfg["learning_rate"] = lrs[i]
                w, cfg = rule(w, grads[i].astype(dtype), cfg)
                got.append(np.array(w, dtype=np.float64))
            except Exception:  # noqa: BLE001 - only used to tell mistakes apart
                return


def _resume(rule: Callable, name: str, rng: np.random.Generator) -> None:
    """A config that already holds state (as after 5 steps) is continued, compared with the reference."""
    if not STATE[name]:
        return
    w = rng.standard_normal(4)
    config = {"learning_rate": 0.05}
    for g in _gradients(rng, (4,), 5, 1.0):
        w, config = getattr(ref, name)(w, g, config)
    _run_case(rule, name, w, _gradients(rng, (4,), 7, 1.0), config,
              what=" that already holds the state of 5 earlier steps")


def _check_rule(rule: Callable, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    _check_fresh_runs_agree(rule, name, rng)
    _check_defaults(rule, name, rng)
    _check_two_parameters(rule, name, rng)
    nondefault = {
        "sgd": {"learning_rate": 0.3},
        "sgd_momentum": {"learning_rate": 0.05, "momentum": 0.5},
        "nesterov": {"learning_rate": 0.05, "momentum": 0.6},
        "adagrad": {"learning_rate": 0.2, "epsilon": 1e-3},
        "rmsprop": {"learning_rate": 0.02, "decay_rate": 0.8, "epsilon": 1e-4},
        "adam": {"learning_rate": 0.05, "beta1": 0.7, "beta2": 0.95, "epsilon": 1e-4},
    }[name]
    only_lr = {"learning_rate": nondefault["learning_rate"]}
    cases: list[tuple[tuple[int, ...], Any, dict | None, float, float]] = [
        # (shape, dtype, config, scale of w, scale of dw)
        ((5,), np.float64, None, 1.0, 1.0),
        ((3, 4), np.float64, nondefault, 1.0, 1.0),
        ((1,), np.float64, only_lr, 1.0, 1.0),
        ((2, 3, 2), np.float64, nondefault, 1.0, 1e-4),   # tiny gradients: epsilon matters
        ((1, 1), np.float64, nondefault, 1.0, 1.0),
        ((4, 2), np.float64, nondefault, 1e3, 1e3),       # large magnitudes
        ((6,), np.float32, nondefault, 1.0, 1.0),
        ((3, 3), np.float32, None, 1.0, 1.0),
    ]
    for shape, dtype, config, w_scale, g_scale in cases:
        w0 = (w_scale * rng.standard_normal(shape)).astype(dtype)
        grads = _gradients(rng, shape, NUM_STEPS, g_scale)
        if dtype == np.float32:
            grads = [g.astype(np.float32) for g in grads]
        _run_case(rule, name, w0, grads, config)
    # A schedule changes the learning rate between calls.
    w0 = rng.standard_normal(4)
    lrs = [nondefault["learning_rate"] / (1 + 0.5 * i) for i in range(NUM_STEPS)]
    _run_case(rule, name, w0, _gradients(rng, (4,), NUM_STEPS, 1.0), dict(nondefault), lrs)
    _resume(rule, name, rng)
    _check_state_is_used(rule, name, rng)


def check_sgd(sgd: Callable) -> None:
    """w - lr * dw over 12 steps, many shapes and dtypes, config defaults and learning_rate used."""
    _check_rule(sgd, "sgd", 600)


def check_sgd_momentum(sgd_momentum: Callable) -> None:
    """v = momentum * v + dw; w -= lr * v over 12+ steps, state carried and per parameter, vs the reference."""
    _check_rule(sgd_momentum, "sgd_momentum", 601)


def check_nesterov(nesterov: Callable) -> None:
    """v = momentum * v + dw; w -= lr * (dw + momentum * v) (torch's nesterov=True), over 12+ steps."""
    _check_rule(nesterov, "nesterov", 602)


def check_adagrad(adagrad: Callable) -> None:
    """cache += dw**2; w -= lr * dw / (sqrt(cache) + epsilon), over 12+ steps, tiny gradients included."""
    _check_rule(adagrad, "adagrad", 603)


def check_rmsprop(rmsprop: Callable) -> None:
    """cache = decay_rate * cache + (1 - decay_rate) * dw**2, same step as adagrad, over 12+ steps."""
    _check_rule(rmsprop, "rmsprop", 604)


def check_adam(adam: Callable) -> None:
    """Bias-corrected Adam with t incremented before use, over 12+ steps, every hyperparameter used."""
    _check_rule(adam, "adam", 605)


# ----------------------------------------------------------------------------------------------- schedules

def _schedule_value(fn: Callable, name: str, args: tuple, kwargs: dict, what: str,
                    no_one_zero_division: bool = False) -> float:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = fn(*args, **kwargs)
        except NotImplementedError:
            fail(f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code.")
        except Mistake:
            raise
        except ZeroDivisionError as exc:
            if no_one_zero_division:
                fail(f"{what} raised ZeroDivisionError ({exc}): lr0 / (k * epoch) divides by 0 at epoch 0; the "
                     "formula is lr0 / (1 + k * epoch), with the 1.")
            fail(f"{what} raised ZeroDivisionError: {exc}")
        except Exception as exc:
            fail(f"{what} raised {type(exc).__name__}: {exc}")
    if no_one_zero_division and any(issubclass(w.category, RuntimeWarning) for w in caught):
        fail(f"{what} divides by zero at epoch 0: the formula is lr0 / (1 + k * epoch), with the 1.")
    if any(issubclass(w.category, RuntimeWarning) for w in caught):
        fail(f"{what} emitted a warning: {caught[0].message}")
    return check_scalar(value, what=what)


def _check_schedule(fn: Callable, name: str, cases: Iterable[tuple[tuple, dict]], expected: Callable,
                    variants: list[tuple[Callable, str]]) -> None:
    for args, kwargs in cases:
        shown = ", ".join([*(f"{a!r}" for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        what = f"{name}({shown})"
        got = _schedule_value(fn, name, args, kwargs, what, no_one_zero_division=(name == "inverse_time_decay"))
        want = expected(*args, **kwargs)
        if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-15):
            continue
        hint = ""
        for variant, message in variants:
            try:
                with np.errstate(all="ignore"):
                    wrong = float(variant(*args, **kwargs))
            except (ZeroDivisionError, ValueError, OverflowError):
                continue
            if math.isclose(got, wrong, rel_tol=1e-9, abs_tol=1e-15):
                hint = message
                break
        fail(f"{what} is {got:.8g}, but it should be {want:.8g}. {hint}".strip())


def check_step_decay(step_decay: Callable) -> None:
    """lr0 * drop ** floor(epoch / epochs_per_drop), epochs from 0, defaults 0.5 and 10, every argument used."""
    cases: list[tuple[tuple, dict]] = [((0.1, e), {}) for e in (0, 1, 5, 9, 10, 11, 19, 20, 21, 29, 30, 45, 99)]
    cases += [((0.3, e), {"drop": 0.1, "epochs_per_drop": 3}) for e in (0, 1, 2, 3, 4, 5, 6, 8, 9, 13)]
    cases += [((2.0, e), {"drop": 0.9, "epochs_per_drop": 1}) for e in (0, 1, 2, 7)]
    cases += [((1e-3, e), {"drop": 0.25, "epochs_per_drop": 7}) for e in (0, 6, 7, 13, 14, 15, 28)]
    cases += [((0.5, 12, 0.2, 4), {}), ((0.05, np.int64(23)), {})]

    def args_of(lr0, epoch, drop=0.5, epochs_per_drop=10):
        return lr0, int(epoch), drop, epochs_per_drop

    def expected(*a, **k):
        lr0, e, d, n = args_of(*a, **k)
        return lr0 * d ** (e // n)

    def v(f):
        return lambda *a, **k: f(*args_of(*a, **k))

    variants = [
        (v(lambda lr0, e, d, n: lr0 * d ** (e / n)), "step_decay has no floor: the exponent is floor(epoch / "
         "epochs_per_drop) (epoch // epochs_per_drop), so the rate stays flat between two drops."),
        (v(lambda lr0, e, d, n: lr0 * d ** ((e + 1) // n)), "step_decay drops one epoch too early: epochs count "
         "from 0, so the first drop happens at epoch epochs_per_drop, floor(epoch / epochs_per_drop)."),
        (v(lambda lr0, e, d, n: lr0 * d ** ((e - 1) // n)), "step_decay drops one epoch too late (it counts epochs "
         "from 1): epochs count from 0, floor(epoch / epochs_per_drop)."),
        (v(lambda lr0, e, d, n: lr0 * d ** math.ceil(e / n)), "step_decay rounds the exponent up (ceil): use "
         "floor(epoch / epochs_per_drop)."),
        (v(lambda lr0, e, d, n: lr0 * d ** round(e / n)), "step_decay rounds the exponent to the nearest integer: "
         "use floor(epoch / epochs_per_drop)."),
        (v(lambda lr0, e, d, n: lr0 * d * (e // n)), "step_decay multiplies by drop * floor(epoch / "
         "epochs_per_drop): drop is raised to that power, drop ** floor(epoch / epochs_per_drop)."),
        (v(lambda lr0, e, d, n: lr0 * 0.5 ** (e // n)), "step_decay ignores its argument `drop` (it always "
         "uses 0.5)."),
        (v(lambda lr0, e, d, n: lr0 * d ** (e // 10)), "step_decay ignores its argument `epochs_per_drop` (it "
         "always uses 10)."),
    ]
    _check_schedule(step_decay, "step_decay", cases, expected, variants)


def check_exponential_decay(exponential_decay: Callable) -> None:
    """lr0 * exp(-k * epoch), epochs from 0, several lr0 and k."""
    cases = [((lr0, e, k), {}) for lr0, k in ((0.1, 0.1), (0.5, 0.03), (2.0, 1.5), (1e-3, 0.5))
             for e in (0, 1, 2, 5, 10, 37)]
    cases += [((0.2, 7), {"k": 0.25}), ((0.2, np.int64(3), 0.4), {})]

    def args_of(lr0, epoch, k):
        return lr0, int(epoch), k

    def v(f):
        return lambda *a, **kw: f(*args_of(*a, **kw))

    variants = [
        (v(lambda lr0, e, k: lr0 * k ** e), "exponential_decay is written as a power lr0 * k ** epoch: the rate "
         "is lr0 * exp(-k * epoch) (np.exp or math.exp)."),
        (v(lambda lr0, e, k: lr0 * (1 - k) ** e), "exponential_decay is written as a power lr0 * (1 - k) ** "
         "epoch: the rate is lr0 * exp(-k * epoch)."),
        (v(lambda lr0, e, k: lr0 * math.exp(k * e)), "exponential_decay grows: the exponent is -k * epoch, "
         "with a minus."),
        (v(lambda lr0, e, k: lr0 * math.exp(-k) * e), "exponential_decay multiplies by the epoch: the epoch "
         "belongs in the exponent, lr0 * exp(-k * epoch)."),
        (v(lambda lr0, e, k: lr0 * math.exp(-e / k)), "exponential_decay divides the epoch by k: the rate is "
         "lr0 * exp(-k * epoch)."),
        (v(lambda lr0, e, k: lr0 * math.exp(-k * (e + 1))), "exponential_decay counts epochs from 1: at epoch 0 "
         "the rate is lr0, exp(0) = 1."),
    ]
    _check_schedule(exponential_decay, "exponential_decay", cases,
                    lambda lr0, epoch, k: lr0 * math.exp(-k * int(epoch)), variants)


def check_inverse_time_decay(inverse_time_decay: Callable) -> None:
    """lr0 / (1 + k * epoch), epochs from 0, several lr0 and k."""
    cases = [((lr0, e, k), {}) for lr0, k in ((0.1, 0.1), (0.5, 2.0), (2.0, 0.01), (1e-3, 0.5))
             for e in (0, 1, 2, 5, 10, 37)]
    cases += [((0.2, 7), {"k": 0.25}), ((0.2, np.int64(3), 0.4), {})]

    def args_of(lr0, epoch, k):
        return lr0, int(epoch), k

    def v(f):
        return lambda *a, **kw: f(*args_of(*a, **kw))

    variants = [
        (v(lambda lr0, e, k: lr0 / (1 + e)), "inverse_time_decay ignores k: the rate is lr0 / (1 + k * epoch)."),
        (v(lambda lr0, e, k: lr0 / (1 + k) ** e), "inverse_time_decay divides by (1 + k) ** epoch, an "
         "exponential decay: the rate is lr0 / (1 + k * epoch)."),
        (v(lambda lr0, e, k: lr0 / (1 + k) * e), "inverse_time_decay computes lr0 / (1 + k) * epoch (operator "
         "precedence): the rate is lr0 / (1 + k * epoch), with the parentheses around 1 + k * epoch."),
        (v(lambda lr0, e, k: lr0 + k * e), "inverse_time_decay computes lr0 / 1 + k * epoch (operator precedence): "
         "the rate is lr0 / (1 + k * epoch), with the parentheses around 1 + k * epoch."),
        (v(lambda lr0, e, k: lr0 * (1 - k * e)), "inverse_time_decay decays linearly, lr0 * (1 - k * epoch): the "
         "rate is lr0 / (1 + k * epoch)."),
        (v(lambda lr0, e, k: lr0 / (1 + e / k)), "inverse_time_decay divides the epoch by k: the rate is "
         "lr0 / (1 + k * epoch)."),
        (v(lambda lr0, e, k: lr0 / (1 + k * (e + 1))), "inverse_time_decay counts epochs from 1: at epoch 0 the "
         "rate is lr0."),
    ]
    _check_schedule(inverse_time_decay, "inverse_time_decay", cases,
                    lambda lr0, epoch, k: lr0 / (1 + k * int(epoch)), variants)


# ----------------------------------------------------------------------------------------------- minibatches

def _data(rng: np.random.Generator, n: int, d: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """X whose column 0 is the sample's index (so every row can be traced), y labels tied to the index."""
    X = rng.standard_normal((n, d)).astype(dtype)
    X[:, 0] = np.arange(n)
    y = 100 + (n - 1 - np.arange(n))  # distinct labels: a label says which sample it is
    return X, y.astype(np.int64)


def _batches(fn: Callable, X: np.ndarray, y: np.ndarray, batch_size: int, rng: Any, shuffle: bool | None,
             what: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The student's minibatches as a list of (X_batch, y_batch), checked for types and shapes."""
    X_before, y_before = X.copy(), y.copy()
    try:
        result = fn(X, y, batch_size, rng) if shuffle is None else fn(X, y, batch_size, rng, shuffle=shuffle)
        items = list(result)
    except NotImplementedError:
        fail("iterate_minibatches is not implemented yet: replace `raise NotImplementedError()` with your code.")
    except Mistake:
        raise
    except Exception as exc:
        fail(f"{what} raised {type(exc).__name__}: {exc}")
    if not np.array_equal(X, X_before) or not np.array_equal(y, y_before):
        arg = "X" if not np.array_equal(X, X_before) else "y"
        fail(f"{what} changed the caller's `{arg}` (shuffled it in place?): leave X and y as they are and index "
             "them with a permutation, X[idx], y[idx].")
    out = []
    for i, item in enumerate(items):
        if not (isinstance(item, tuple) and len(item) == 2):
            fail(f"{what} should yield pairs (X_batch, y_batch), but batch {i} is {describe(item)}.")
        Xb, yb = item
        if not isinstance(Xb, np.ndarray) or not isinstance(yb, np.ndarray):
            fail(f"{what} should yield NumPy arrays (X_batch, y_batch), but batch {i} holds "
                 f"{type(Xb).__name__} and {type(yb).__name__}.")
        if Xb.ndim != 2 or Xb.shape[1] != X.shape[1] or yb.shape != (len(Xb),):
            fail(f"{what}: batch {i} has X_batch {Xb.shape} and y_batch {yb.shape}; they should be (B, "
                 f"{X.shape[1]}) and (B,), rows of X and the matching entries of y.")
        if Xb.dtype != X.dtype or yb.dtype != y.dtype:
            fail(f"{what}: batch {i} has dtypes {Xb.dtype} and {yb.dtype}; the rows of X ({X.dtype}) and y "
                 f"({y.dtype}) keep their dtypes.")
        out.append((Xb, yb))
    return out


def _order(batches: list[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    return [int(i) for Xb, _ in batches for i in Xb[:, 0]]


def _check_epoch(fn: Callable, n: int, d: int, batch_size: int, dtype: Any, shuffle: bool | None,
                 rng: np.random.Generator) -> list[int]:
    X, y = _data(rng, n, d, dtype)
    flag = "" if shuffle is None else f", shuffle={shuffle}"
    what = f"iterate_minibatches(X {describe(X)}, y, batch_size={batch_size}, rng{flag})"
    batches = _batches(fn, X, y, batch_size, np.random.default_rng(int(rng.integers(2**31))), shuffle, what)
    sizes = [len(yb) for _, yb in batches]
    full, rest = divmod(n, batch_size)
    want = [batch_size] * full + ([rest] if rest else [])
    if sizes != want:
        if sorted(sizes) == sorted(want):
            fail(f"{what} yields batches of sizes {sizes}: the smaller batch should come last ({want}). Shuffle the "
                 "samples (a permutation of all the indices), then cut the batches in order; do not shuffle the "
                 "order of fixed batches.")
        if rest and sizes == [batch_size] * full:
            fail(f"{what} drops the last, smaller batch of {rest} sample(s): every sample is used once per "
                 f"epoch, so the last batch may be smaller (sizes should be {want}).")
        fail(f"{what} yields batches of sizes {sizes}; they should be {want} (every sample once, in batches of "
             "batch_size, the last one smaller when batch_size does not divide N).")
    order = _order(batches)
    if sorted(order) != list(range(n)):
        fail(f"{what} does not use every sample exactly once (some appear twice, others never): draw a "
             "permutation of the indices (rng.permutation(N)), not indices with replacement.")
    for Xb, yb in batches:
        idx = Xb[:, 0].astype(int)
        if not np.array_equal(yb, y[idx]):
            fail(f"{what} pairs rows of X with the wrong labels: X and y must be shuffled with the same "
                 "permutation (idx = rng.permutation(N), then X[idx] and y[idx]).")
        if not np.array_equal(Xb, X[idx]):
            fail(f"{what} yields rows that are not rows of X.")
    if shuffle is False and order != list(range(n)):
        fail(f"{what} shuffles although shuffle=False: then the batches follow the stored order (X[0:B], "
             "X[B:2B], ...).")
    if shuffle is not False and n >= 20 and order == list(range(n)):
        fail(f"{what} does not shuffle: with shuffle=True (the default) each epoch visits the samples in a new "
             "random order drawn from rng.")
    return order


def check_iterate_minibatches(iterate_minibatches: Callable) -> None:
    """Every sample once per epoch, last batch smaller, X and y paired, rng used (deterministic), shuffle=False."""
    fn = iterate_minibatches
    rng = np.random.default_rng(606)
    for n, d, bs, dtype in [(10, 3, 4, np.float64), (12, 2, 4, np.float64), (1, 1, 1, np.float64),
                            (7, 1, 10, np.float32), (100, 5, 32, np.float64), (33, 4, 1, np.float64),
                            (64, 2, 64, np.float32), (50, 3, 7, np.float64)]:
        for shuffle in (None, True, False):
            _check_epoch(fn, n, d, bs, dtype, shuffle, rng)
    # Determinism from rng, and nothing from numpy's global random state.
    X, y = _data(rng, 40, 2, np.float64)
    what = "iterate_minibatches(X, y, 4, rng)"
    orders = []
    for seed, global_seed in ((1, 0), (1, 123), (2, 0)):
        np.random.seed(global_seed)
        orders.append(_order(_batches(fn, X, y, 4, np.random.default_rng(seed), None, what)))
    if orders[0] != orders[1]:
        fail(f"{what} gives different orders for two generators with the same seed: it uses numpy's global "
             "random state (np.random.shuffle / np.random.permutation); draw the order from the rng argument "
             "(rng.permutation(N)).")
    if orders[0] == orders[2]:
        fail(f"{what} gives the same order for generators with different seeds: it ignores the rng argument; "
             "draw the order from it (rng.permutation(N)).")
    gen = np.random.default_rng(3)
    epoch1 = _order(_batches(fn, X, y, 4, gen, None, what))
    epoch2 = _order(_batches(fn, X, y, 4, gen, None, what))
    if epoch1 == epoch2:
        fail(f"{what} gives the same order in two epochs drawn from the same rng: draw a new permutation from rng "
             "on every call (do not re-seed).")
    # A uniformly random order: every sample equally likely at every position, batches mixed.
    X, y = _data(rng, 6, 1, np.float64)
    gen = np.random.default_rng(7)
    first, together, epochs = np.zeros(6), 0, 600
    for _ in range(epochs):
        batches = _batches(fn, X, y, 4, gen, None, "iterate_minibatches(X (6, 1), y, 4, rng)")
        order = _order(batches)
        first[order[0]] += 1
        together += any({0, 1} <= set(int(i) for i in Xb[:, 0]) for Xb, _ in batches)
    # 600 epochs: each sample first 1/6 of the time (std 0.015); samples 0 and 1 together 14/30 (std 0.02).
    if np.any(np.abs(first / epochs - 1 / 6) > 0.075) or abs(together / epochs - 14 / 30) > 0.1:
        fail("iterate_minibatches(X (6, 1), y, 4, rng) does not shuffle the samples uniformly over 600 epochs (each "
             f"sample came first {np.round(first / epochs, 3).tolist()} of the time, expected about 1/6 each; "
             f"samples 0 and 1 shared a batch {together / epochs:.2f} of the time, expected 0.47): permute all the "
             "samples (rng.permutation(N)), not the order of fixed batches.")


# ----------------------------------------------------------------------------------------------- named mistakes

def _rule_mistakes() -> dict[str, str]:
    """The named mistakes of the update rules: each known variant, then what every rule can get wrong."""
    phrases = {
        "ascent": "steps uphill", "ignores_learning_rate": "ignores config['learning_rate']",
        "ignores_momentum": "ignores config['momentum']", "ignores_epsilon": "ignores config['epsilon']",
        "ignores_decay_rate": "ignores config['decay_rate']", "ignores_beta1": "ignores config['beta1']",
        "ignores_beta2": "ignores config['beta2']", "lr_twice": "learning rate twice",
        "no_store": {"sgd_momentum": "does not carry the velocity", "nesterov": "does not carry the velocity",
                     "adagrad": "does not carry the cache", "rmsprop": "does not carry the cache"},
        "dampened": "averages the gradient", "old_velocity": "velocity of the previous call",
        "cs231n": "keeps the learning rate inside the velocity", "plain_momentum": "is plain momentum",
        "no_accumulation": "does not accumulate", "no_one_minus": "1 - decay_rate is missing",
        "swapped": "swaps decay_rate", "no_sqrt": {"adagrad": "divides by cache + epsilon",
                                                  "rmsprop": "divides by cache + epsilon",
                                                  "adam": "divides by v_hat + epsilon"},
        "eps_inside": "puts epsilon inside the square root", "no_bias_correction": "has no bias correction",
        "bias_m_only": "but not of v", "bias_v_only": "but not of m", "t_after": "before incrementing",
        "t_not_stored": "does not carry t", "v_not_squared": "instead of dw**2", "efficient_form": "'efficient' form",
    }
    generic = {
        "state-outside-config": "state outside `config`", "parameters-share-state": "share state",
        "same-config-dict": "returns the same config dict", "config-none": "The first call passes config=None",
        "wrong-default": "its default is", "missing-default": "returns a config without",
        "modifies-dw": "changed its argument `dw`", "not-a-pair": "pair (next_w, config)",
        "config-not-returned": "should return its config dict", "dtype": "keep w's dtype",
        "lr-zero-moves-w": "moves w although", "warning": "emitted a warning",
    }
    out: dict[str, str] = {}
    for name, variants in VARIANTS.items():
        for variant, _ in variants:
            phrase = phrases[variant]
            out[f"{name}:{variant.replace('_', '-')}"] = phrase[name] if isinstance(phrase, dict) else phrase
        if name == "adam":
            out["adam:t-miscounted"] = "t counts the steps already taken"
        if STATE[name]:
            out[f"{name}:ignores-given-state"] = "ignores the state in its config"
            out[f"{name}:state-keys-missing"] = "keeps no"
        out.update({f"{name}:{key}": phrase for key, phrase in generic.items()})
    return out


MISTAKES = {
    "iterate_minibatches:drops-last-batch": "drops the last, smaller batch",
    "iterate_minibatches:smaller-batch-not-last": "the smaller batch should come last",
    "iterate_minibatches:wrong-sizes": "yields batches of sizes",
    "iterate_minibatches:x-y-different-permutations": "with the wrong labels",
    "iterate_minibatches:global-random-state": "global random state",
    "iterate_minibatches:ignores-shuffle-false": "although shuffle=False",
    "iterate_minibatches:not-uniform": "does not shuffle the samples uniformly",
    "iterate_minibatches:never-shuffles": "does not shuffle",
    "iterate_minibatches:with-replacement": "exactly once",
    "iterate_minibatches:shuffles-in-place": "changed the caller's",
    "iterate_minibatches:ignores-rng": "ignores the rng argument",
    "iterate_minibatches:same-order-every-epoch": "same order in two epochs",
    "iterate_minibatches:not-pairs": "should yield pairs",
    "iterate_minibatches:wrong-shapes": "they should be (B,",
    "iterate_minibatches:dtypes": "keep their dtypes",
    **_rule_mistakes(),
    "step_decay:no-floor": "has no floor",
    "step_decay:drops-early": "one epoch too early",
    "step_decay:drops-late": "one epoch too late",
    "step_decay:ceil": "rounds the exponent up",
    "step_decay:round": "rounds the exponent to the nearest",
    "step_decay:product-not-power": "multiplies by drop *",
    "step_decay:ignores-drop": "ignores its argument `drop`",
    "step_decay:ignores-epochs-per-drop": "ignores its argument `epochs_per_drop`",
    "exponential_decay:power-of-k": "written as a power lr0 * k ** epoch",
    "exponential_decay:power-of-1-minus-k": "written as a power lr0 * (1 - k) ** epoch",
    "exponential_decay:grows": "with a minus",
    "exponential_decay:epoch-outside-exponent": "belongs in the exponent",
    "exponential_decay:divides-by-k": "divides the epoch by k",
    "exponential_decay:epochs-from-1": "counts epochs from 1",
    "inverse_time_decay:without-the-1": "with the 1",
    "inverse_time_decay:ignores-k": "ignores k",
    "inverse_time_decay:exponential": "(1 + k) ** epoch",
    "inverse_time_decay:precedence-times-epoch": "lr0 / (1 + k) * epoch (operator precedence)",
    "inverse_time_decay:precedence-plus": "lr0 / 1 + k * epoch (operator precedence)",
    "inverse_time_decay:linear": "decays linearly",
    "inverse_time_decay:divides-by-k": "divides the epoch by k",
    "inverse_time_decay:epochs-from-1": "counts epochs from 1",
}
