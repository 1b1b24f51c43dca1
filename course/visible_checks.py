"""The visible tests' helpers that check what an exercise promises, whatever its formula: students may read them.

The release notebooks' visible test cells import these (``course.testing`` holds the general ones). They
compare a student's function with no reference: they check its contract (an update rule's config and state, a
``ValueError``, the offsets of shifted images), so they ship in the student edition of the library
(``course.student_edition``) beside ``course.testing``. The hidden tests in ``course/checks/`` use them too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course.testing import Mistake, describe, fail


# --------------------------------------------------------------------------- notebook 04: ValueError, offsets

def _is_value_error(exc: BaseException) -> bool:
    # In the trusted re-run the student's exception arrives as a StudentError named after the original class.
    return isinstance(exc, ValueError) or (type(exc).__name__ == "StudentError" and str(exc).startswith("ValueError"))



def check_offsets_cover(offsets: Sequence[Sequence[int]], max_shift: int) -> None:
    """Visible-test helper: offsets of many images cover every pair (dy, dx) in [-max_shift, max_shift]^2."""
    seen = {(int(a), int(b)) for a, b in offsets}
    missing = [(a, b) for a in range(-max_shift, max_shift + 1) for b in range(-max_shift, max_shift + 1)
               if (a, b) not in seen]
    if missing:
        fail(f"No image was moved by {missing[0]} (and {len(missing) - 1} other offsets missing): each image needs "
             f"its own offset, dy and dx each uniform over -max_shift..max_shift, both ends included.")



def check_raises_value_error(fn: Callable, *args: Any, what: str) -> None:
    """Visible-test helper: ``fn(*args)`` raises ValueError (in the student's kernel or in the trusted re-run)."""
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - any other exception is the mistake
        if _is_value_error(exc):
            return
        fail(f"{what} raised {type(exc).__name__} ({exc}); it should raise ValueError. Check the argument first: "
             "if not 0 < keep_prob <= 1: raise ValueError(...).")
    fail(f"{what} returned without an error; it should raise ValueError.")


def find_offsets(images: np.ndarray, shifted: np.ndarray, max_shift: int) -> np.ndarray:
    """The offset (dy, dx) with |dy|, |dx| <= max_shift that turns each image into its shifted copy.

    Returns an (N, 2) int array; a row is (-999, -999) where no such offset exists. Use images whose
    pixels are all different and nonzero (then each offset gives a different image) and
    ``max_shift`` smaller than H and W.
    """
    images, shifted = np.asarray(images), np.asarray(shifted)
    found = np.full((len(images), 2), -999, dtype=np.int64)
    if images.ndim != 3 or shifted.shape != images.shape:
        return found
    _, H, W = images.shape
    for i, (image, out) in enumerate(zip(images, shifted)):
        # Follow the pixels: every nonzero pixel of the copy is a pixel of the image (all different), moved by
        # one common offset, and every pixel that offset keeps inside the frame is there.
        flat = image.ravel()
        order = np.argsort(flat, kind="stable")
        rows, cols = np.nonzero(out)
        at = np.searchsorted(flat[order], out[rows, cols])
        if np.any(at >= flat.size):
            continue
        source = order[at]
        if not np.array_equal(flat[source], out[rows, cols]):
            continue
        dy, dx = rows - source // W, cols - source % W
        if len(dy) == 0 or np.any(dy != dy[0]) or np.any(dx != dx[0]):
            continue
        oy, ox = int(dy[0]), int(dx[0])
        if max(abs(oy), abs(ox)) <= max_shift and len(dy) == (H - abs(oy)) * (W - abs(ox)):
            found[i] = (oy, ox)
    return found


# --------------------------------------------------------------------------- notebook 06: the update rules' contract

DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "nesterov": {"learning_rate": 1e-2, "momentum": 0.9},
    "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-8},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
}
STATE: dict[str, tuple[str, ...]] = {"sgd": (), "sgd_momentum": ("velocity",), "nesterov": ("velocity",),
                                     "adagrad": ("cache",), "rmsprop": ("cache",), "adam": ("m", "v", "t")}

def _copy_config(config: dict | None) -> dict | None:
    if config is None:
        return None
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in config.items()}



def _call_rule(rule: Callable, name: str, w: np.ndarray, dw: np.ndarray, config: dict | None,
               where: str) -> tuple[np.ndarray, dict, str]:
    """One call of the student's rule, checked; returns (next_w, config, the first warning's text or "")."""
    dw_before = dw.copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = rule(w, dw, config)
        except NotImplementedError:
            fail(f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code.")
        except Mistake:
            raise
        except Exception as exc:
            hint = (" The first call passes config=None: create a new dict then (if config is None: config = {})."
                    if config is None else "")
            fail(f"{name}(w, dw, config) raised {type(exc).__name__}: {exc} ({where}).{hint}")
    if not np.array_equal(dw, dw_before, equal_nan=True):
        fail(f"{name} changed its argument `dw` in place ({where}); leave the gradient as it is (compute "
             "new arrays, e.g. lr * dw, instead of dw *= lr).")
    if not (isinstance(result, tuple) and len(result) == 2):
        fail(f"{name} should return a pair (next_w, config), but it returned {describe(result)} ({where}).")
    next_w, new_config = result
    if not isinstance(next_w, np.ndarray):
        fail(f"{name} should return next_w as a NumPy array, but it is {type(next_w).__name__} ({where}).")
    if next_w.shape != w.shape:
        fail(f"{name} returns next_w of shape {next_w.shape} for w of shape {w.shape} ({where}).")
    if next_w.dtype != w.dtype:
        fail(f"{name} returns next_w of dtype {next_w.dtype} for a {w.dtype} w ({where}): keep w's dtype. "
             "State arrays created with np.zeros_like(w) have it; np.zeros(w.shape) is float64.")
    if not isinstance(new_config, dict):
        fail(f"{name} should return its config dict as the second value, but it returned "
             f"{type(new_config).__name__} ({where}).")
    numeric = [w_ for w_ in caught if issubclass(w_.category, RuntimeWarning)]
    return next_w, new_config, (f"{numeric[0].category.__name__}: {numeric[0].message}" if numeric else "")



def _gradients(rng: np.random.Generator, shape: tuple[int, ...], n: int, scale: float) -> list[np.ndarray]:
    grads = [scale * rng.standard_normal(shape) * rng.choice([0.3, 1.0, 3.0]) for _ in range(n)]
    grads[0].flat[0] = 0.0  # a zero gradient in a fresh state: 0 / (0 + epsilon) must be 0, not NaN
    return grads



def _check_defaults(rule: Callable, name: str, rng: np.random.Generator) -> None:
    w = rng.standard_normal(5)
    _, config, _ = _call_rule(rule, name, w, rng.standard_normal(5), None, "a first call with config=None")
    for key, value in DEFAULTS[name].items():
        if key not in config:
            fail(f"{name}(w, dw) returns a config without {key!r}: a call with config=None creates a dict with "
                 f"every hyperparameter's default ({', '.join(f'{k}={v:g}' for k, v in DEFAULTS[name].items())}).")
        if config[key] != value:
            fail(f"{name}(w, dw) returns config[{key!r}] = {config[key]!r}; its default is {value:g}.")



def _check_fresh_runs_agree(rule: Callable, name: str, rng: np.random.Generator) -> None:
    """Two fresh runs on the same inputs give the same steps: no state outside config."""
    w0 = rng.standard_normal((2, 3))
    grads = _gradients(rng, (2, 3), 4, 1.0)
    runs = []
    for _ in range(2):
        w, cfg, out = w0.copy(), None, []
        for g in grads:
            w, cfg, _ = _call_rule(rule, name, w, g, cfg, "two fresh runs (config=None) on the same inputs")
            out.append(np.array(w, dtype=np.float64))
        runs.append(out)
    if not all(np.allclose(a, b, equal_nan=True) for a, b in zip(*runs)):
        fail(f"{name} gives different steps on two runs from config=None with the same w and gradients: it keeps "
             "state outside `config` (a global or module-level variable?). Keep all of a parameter's state in its "
             "own config dict, created by the first call.")



def _check_two_parameters(rule: Callable, name: str, rng: np.random.Generator) -> None:
    """Two parameters updated in turn, each with its own config (as a trainer does), keep their own state:
    W1's steps are the same with and without W2's calls in between."""
    shape = (3, 2)
    a0, b0 = rng.standard_normal(shape), 5 + rng.standard_normal(shape)
    grads_a, grads_b = _gradients(rng, shape, 6, 1.0), _gradients(rng, shape, 6, 4.0)
    alone, a, b, c_alone, ca, cb = a0.copy(), a0.copy(), b0.copy(), None, None, None
    for i in range(len(grads_a)):
        where = f"step {i + 1} of two parameters W1 and W2 updated in turn, each with its own config"
        alone, c_alone, _ = _call_rule(rule, name, alone, grads_a[i], c_alone, "W1 updated alone")
        a, ca, _ = _call_rule(rule, name, a, grads_a[i], ca, where)
        b, cb, _ = _call_rule(rule, name, b, grads_b[i], cb, where)
        if ca is cb:
            fail(f"{name} returns the same config dict for two parameters ({where}): create a new dict when "
                 "config is None (a default argument such as config={} is one dict shared by every call).")
        if not np.allclose(a, alone, rtol=1e-12, atol=0, equal_nan=True):
            fail(f"{name}: W1's step changes when another parameter W2 is updated in between ({where}): the two "
                 "parameters share state (a global or module-level variable?). Keep each parameter's state in "
                 "its own config dict.")



def _check_state_is_used(rule: Callable, name: str, rng: np.random.Generator) -> None:
    """After some steps the config holds the state under the documented keys, and the next call uses it."""
    if not STATE[name]:
        return
    w = rng.standard_normal(4)
    config = None
    for step in range(3):
        w, config, _ = _call_rule(rule, name, w, rng.standard_normal(4), config, f"step {step + 1} from config=None")
    missing = [k for k in STATE[name] if k not in config]
    if missing:
        fail(f"{name} keeps no {', '.join(repr(k) for k in missing)} in its config after 3 steps: the state lives "
             f"in config under the keys {', '.join(STATE[name])}.")
    if name == "adam" and not (isinstance(config["t"], (int, np.integer)) and config["t"] == 3):
        fail(f"config['t'] is {config['t']!r} after 3 calls of adam: t counts the steps already taken (3), "
             "incremented once per call, before it is used.")
    g = rng.standard_normal(4)
    hyper = {k: config[k] for k in DEFAULTS[name]}
    continued, _, _ = _call_rule(rule, name, w.copy(), g, _copy_config(config), "step 4, continuing the state")
    fresh, _, _ = _call_rule(rule, name, w.copy(), g, hyper, "a first step with the same hyperparameters")
    if np.allclose(continued, fresh):
        fail(f"{name} ignores the state in its config (config[{STATE[name][0]!r}]): a call must continue from the "
             "state the previous calls left there, not start again from zeros.")



def check_rule_contract(rule: Callable, name: str) -> None:
    """What every update rule promises, whatever its formula (the visible tests call this).

    - ``rule(w, dw)`` (config=None) returns ``(next_w, config)`` with a new dict holding every
      hyperparameter's default; ``next_w`` has the shape and dtype of ``w`` (float32 stays float32);
    - ``dw`` is left unchanged (``w`` may be changed in place or not);
    - the learning rate is read from ``config`` on every call (``learning_rate = 0`` leaves ``w`` still);
    - the state lives in ``config`` under the documented keys and the next call continues from it;
    - two fresh runs agree, and two parameters with their own configs do not share state.
    """
    rng = np.random.default_rng(650)
    _check_defaults(rule, name, rng)
    w = np.ones((2, 3), dtype=np.float32)
    config = None
    for step in range(3):
        w, config, _ = _call_rule(rule, name, w, np.full((2, 3), 0.5, dtype=np.float32), config,
                                  f"step {step + 1} with a float32 w")
    if name == "adam" and (not isinstance(config.get("t"), (int, np.integer)) or config.get("t") != 3):
        fail(f"config['t'] is {config.get('t')!r} after 3 calls of adam: t counts the steps already taken, an "
             "integer (3 here).")
    config = {"learning_rate": 0.0}
    w = rng.standard_normal(3)
    for step in range(3):
        w_next, config, _ = _call_rule(rule, name, w.copy(), rng.standard_normal(3), config,
                                       "config={'learning_rate': 0.0}")
        if not np.array_equal(w_next, w):
            fail(f"{name} moves w although config['learning_rate'] is 0: read the learning rate from config on "
                 "every call.")
    _check_state_is_used(rule, name, rng)
    _check_fresh_runs_agree(rule, name, rng)
    _check_two_parameters(rule, name, rng)


