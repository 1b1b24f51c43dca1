"""Experiments of notebook 06: optimizers on hard surfaces and on a network, minibatch noise, schedules, Newton.

The update rules, schedules and minibatch iterator are arguments, so the notebook runs the student's own
functions; the networks are :class:`nnlab.network.FullyConnectedNet` trained by :class:`nnlab.trainer.Trainer`
on the 8x8 digits. Each network experiment is repeated over
:data:`SEEDS` (the initial weights and the minibatch order; the split stays the same) and run in worker
processes where the platform forks (:func:`nnlab.experiments.seeds.run_all`). Everything is deterministic given
the seeds, except the wall-time measurement
(:func:`epoch_seconds`), whose result the notebook takes from :data:`RECORDED_EPOCH_SECONDS` unless asked to
measure on the reader's machine.

``python -m nnlab.experiments.optimizers`` measures the seconds per epoch of each optimizer here and prints
them (the recorded values below come from that command).
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nnlab import data as _data
from nnlab import optim
from nnlab.experiments.seeds import run_all
from nnlab.network import FullyConnectedNet
from nnlab.trainer import Trainer, evaluate

Rule = Callable[..., tuple[np.ndarray, dict]]
RuleSetup = tuple[Rule, dict[str, Any]]

# ----------------------------------------------------------------------------------------------- surfaces

#: The three 2-D surfaces: (value, gradient, start, steps, plot bounds, each rule's hyperparameters).
#: The learning rates are stable ones near the best of a coarse grid for each rule and surface.
SURFACES: dict[str, dict[str, Any]] = {
    "ill-conditioned quadratic": {
        "problem": _data.IllConditionedQuadratic(50.0), "start": (-4.0, 1.0), "steps": 50,
        "bounds": (-4.5, 1.0, -1.3, 1.3),
        "configs": {"sgd": {"learning_rate": 0.035}, "sgd_momentum": {"learning_rate": 0.035, "momentum": 0.5},
                    "nesterov": {"learning_rate": 0.025, "momentum": 0.5}, "adagrad": {"learning_rate": 1.0},
                    "rmsprop": {"learning_rate": 0.1}, "adam": {"learning_rate": 0.3}},
    },
    "saddle": {
        "f": _data.saddle, "grad": _data.saddle_grad, "start": (-1.5, 1e-3), "steps": 40,
        "bounds": (-1.7, 1.7, -1.5, 1.5),
        "configs": {"sgd": {"learning_rate": 0.05}, "sgd_momentum": {"learning_rate": 0.05, "momentum": 0.9},
                    "nesterov": {"learning_rate": 0.05, "momentum": 0.9}, "adagrad": {"learning_rate": 0.3},
                    "rmsprop": {"learning_rate": 0.05}, "adam": {"learning_rate": 0.1}},
    },
    "Rosenbrock": {
        "f": _data.rosenbrock, "grad": _data.rosenbrock_grad, "start": (-1.2, 1.0), "steps": 300,
        "bounds": (-1.6, 1.5, -0.4, 1.6),
        "configs": {"sgd": {"learning_rate": 3e-3}, "sgd_momentum": {"learning_rate": 2e-3, "momentum": 0.9},
                    "nesterov": {"learning_rate": 1e-3, "momentum": 0.9}, "adagrad": {"learning_rate": 1.0},
                    "rmsprop": {"learning_rate": 0.05}, "adam": {"learning_rate": 0.3}},
    },
}


def run_path(rule: Rule, config: Mapping[str, Any] | None, grad: Callable[[np.ndarray], np.ndarray],
             start: Sequence[float], num_steps: int, bound: float = 1e3) -> np.ndarray:
    """The iterates of ``rule`` from ``start`` on a function with gradient ``grad``.

    Returns
    -------
    path : (T + 1, 2) array, the start then every iterate; it ends early once a coordinate leaves
        ``[-bound, bound]`` or is not finite (diverged).
    """
    w = np.array(start, dtype=np.float64)
    cfg = copy.deepcopy(dict(config)) if config is not None else None
    out = [w.copy()]
    for _ in range(int(num_steps)):
        w, cfg = rule(w, grad(w), cfg)
        w = np.array(w, dtype=np.float64)
        out.append(w.copy())
        if not np.all(np.isfinite(w)) or np.max(np.abs(w)) > bound:
            break
    return np.array(out)


def surface_paths(rules: Mapping[str, Rule], surface: str,
                  configs: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every rule's path on one of :data:`SURFACES`, with the value reached.

    ``rules`` maps the rule's name (``"sgd"``, ...) to the function; ``configs`` overrides the
    surface's hyperparameters.

    Returns
    -------
    runs : dict name -> {``"path"``: (T + 1, 2), ``"final"``: f at the last iterate, ``"dist"``: the distance
        from the last iterate to the minimizer (NaN for the saddle, which has none), ``"config"``}.
    """
    s = SURFACES[surface]
    f, grad = (s["problem"].f, s["problem"].grad) if "problem" in s else (s["f"], s["grad"])
    minimum = {"ill-conditioned quadratic": (0.0, 0.0), "Rosenbrock": (1.0, 1.0)}.get(surface)
    runs = {}
    for name, rule in rules.items():
        config = (configs or {}).get(name, s["configs"][name])
        path = run_path(rule, config, grad, s["start"], s["steps"], bound=10.0)
        last = path[-1]
        runs[name] = {"path": path, "final": float(f(last)), "config": dict(config),
                      "dist": float(np.linalg.norm(last - minimum)) if minimum else float("nan")}
    return runs


def surface_function(surface: str) -> Callable[[np.ndarray], float]:
    s = SURFACES[surface]
    return s["problem"].f if "problem" in s else s["f"]


# ----------------------------------------------------------------------------------------------- digits net

def digits(seed: int = 0) -> dict[str, np.ndarray]:
    """The digits split 60 / 20 / 20 (1079 / 359 / 359), stratified."""
    return _data.load_digits(np.random.default_rng(seed))


def make_net(seed: int = 0, hidden: Sequence[int] = (100,)) -> FullyConnectedNet:
    return FullyConnectedNet([64, *hidden, 10], rng=np.random.default_rng(seed))


def train(rule: Rule, config: Mapping[str, Any], data: Mapping[str, np.ndarray], *, num_epochs: int = 20,
          batch_size: int = 64, seed: int = 0, minibatches: Callable | None = None, lr_decay: Any = 1.0,
          on_epoch_end: Callable | None = None) -> dict[str, Any]:
    """Train the 64-100-10 ReLU net with ``rule``; the same initial weights and batch order for every rule.

    Returns
    -------
    history : the trainer's history (``loss`` per iteration; ``train_loss``, ``val_loss``, ``val_acc``,
        ``lr`` per epoch) plus ``"initial_train_loss"`` (before any step) and ``"test_acc"``.
    """
    net = make_net(seed)
    initial = evaluate(net, data["X_train"], data["y_train"])[0]
    kw = {"minibatches": minibatches} if minibatches is not None else {}
    trainer = Trainer(net, data, update_rule=rule, optim_config=dict(config), batch_size=batch_size,
                      num_epochs=num_epochs, rng=np.random.default_rng(seed + 1), progress=False,
                      lr_decay=lr_decay, on_epoch_end=on_epoch_end, **kw)
    # Matrices of 64 x 100: a second BLAS thread only adds overhead on a busy 2-core machine.
    with threadpool_limits(1, user_api="blas"):
        history = trainer.train()
    history["initial_train_loss"] = initial
    history["test_acc"] = evaluate(net, data["X_test"], data["y_test"])[1]
    return history


#: Each rule's hyperparameters on the digits net: the learning rate with the lowest training loss after 20 epochs
#: on the grid 1e-4, 3e-4, 1e-3, ..., 1, 3 (momentum 0.9, other hyperparameters at their defaults).
NET_CONFIGS: dict[str, dict[str, Any]] = {
    "sgd": {"learning_rate": 1.0}, "sgd_momentum": {"learning_rate": 0.3, "momentum": 0.9},
    "nesterov": {"learning_rate": 0.3, "momentum": 0.9}, "adagrad": {"learning_rate": 0.1},
    "rmsprop": {"learning_rate": 0.01}, "adam": {"learning_rate": 0.03},
}


#: The seeds of every network experiment: each run is repeated once per seed (initial weights, batch order).
SEEDS: tuple[int, ...] = (0, 1, 2)


def compare_optimizers(rules: Mapping[str, Rule], data: Mapping[str, np.ndarray],
                       configs: Mapping[str, Mapping[str, Any]] = NET_CONFIGS, num_epochs: int = 20,
                       minibatches: Callable | None = None, seeds: Sequence[int] = SEEDS,
                       processes: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Train the same net (same initial weights, same minibatches) with each rule, once per seed.

    Returns
    -------
    histories : dict rule name -> one history per seed, in the order of ``seeds``.
    """
    jobs = [lambda r=rule, n=name, s=seed: train(r, configs[n], data, num_epochs=num_epochs, seed=s,
                                                  minibatches=minibatches)
            for name, rule in rules.items() for seed in seeds]
    results = iter(run_all(jobs, processes))
    return {name: [next(results) for _ in seeds] for name in rules}


def epoch_seconds(rules: Mapping[str, Rule], data: Mapping[str, np.ndarray],
                  configs: Mapping[str, Mapping[str, Any]] = NET_CONFIGS, num_epochs: int = 5,
                  repeats: int = 15) -> dict[str, float]:
    """Seconds per training epoch (minibatch steps only, no evaluation) of each rule on this machine.

    The rules take turns (``repeats`` rounds of ``num_epochs`` epochs each) and each keeps its fastest
    round: on a shared machine the other jobs only ever add time. Machine dependent: this is the one
    non-deterministic result of the notebook.
    """
    best = {name: float("inf") for name in rules}
    X, y = data["X_train"], data["y_train"]
    with threadpool_limits(1, user_api="blas"):
        for _ in range(repeats):
            for name, rule in rules.items():
                net = make_net()
                cfgs = {k: copy.deepcopy(dict(configs[name])) for k in net.params}
                rng = np.random.default_rng(1)
                start = time.perf_counter()
                for _ in range(num_epochs):
                    for Xb, yb in optim.iterate_minibatches(X, y, 64, rng):
                        _, grads = net.loss(Xb, yb)
                        for k, w in net.params.items():
                            net.params[k], cfgs[k] = rule(w, grads[k], cfgs[k])
                best[name] = min(best[name], (time.perf_counter() - start) / num_epochs)
    return best


#: Seconds per epoch (17 minibatch steps of 64 on the 1079 training digits) measured by
#: ``python -m nnlab.experiments.optimizers`` on the course's 2-core build machine, shared with other jobs.
#: Only the ratios matter; they depend on the machine.
RECORDED_EPOCH_SECONDS: dict[str, float] = {
    "sgd": 0.0021, "sgd_momentum": 0.0022, "nesterov": 0.0023, "adagrad": 0.0025, "rmsprop": 0.0032, "adam": 0.0033,
}


def step_ratios(rule_a: Rule, config_a: Mapping[str, Any], rule_b: Rule, config_b: Mapping[str, Any],
                data: Mapping[str, np.ndarray], num_steps: int = 100, batch_size: int = 64, seed: int = 0,
                minibatches: Callable = optim.iterate_minibatches) -> np.ndarray:
    """How the steps of two rules compare when both see the same gradients.

    The net is trained by ``rule_b``; at every step ``rule_a`` gets the same gradients (and keeps its own
    state), and the length of its step (all parameters together) is divided by ``rule_b``'s.

    Returns
    -------
    ratios : (num_steps,) array, ``||step_a|| / ||step_b||`` at steps 1, 2, ...
    """
    net = make_net(seed)
    cfg_a = {k: copy.deepcopy(dict(config_a)) for k in net.params}
    cfg_b = {k: copy.deepcopy(dict(config_b)) for k in net.params}
    rng = np.random.default_rng(seed + 1)
    ratios: list[float] = []
    with threadpool_limits(1, user_api="blas"):
        while len(ratios) < num_steps:
            for Xb, yb in minibatches(data["X_train"], data["y_train"], batch_size, rng):
                _, grads = net.loss(Xb, yb)
                sq_a = sq_b = 0.0
                for k, w in net.params.items():
                    wa, cfg_a[k] = rule_a(w.copy(), grads[k], cfg_a[k])
                    wb, cfg_b[k] = rule_b(w.copy(), grads[k], cfg_b[k])
                    sq_a += float(np.sum((wa - w) ** 2))
                    sq_b += float(np.sum((wb - w) ** 2))
                    net.params[k] = wb
                ratios.append(np.sqrt(sq_a / sq_b))
                if len(ratios) == num_steps:
                    break
    return np.array(ratios)


# ----------------------------------------------------------------------------------------------- noise vs batch size

def gradient_noise(minibatches: Callable, data: Mapping[str, np.ndarray], batch_sizes: Sequence[int],
                   seed: int = 0, max_batches: int = 256) -> dict[int, dict[str, float]]:
    """How far minibatch gradients stray from the full-batch gradient, at the net's initial weights.

    For each batch size, the first ``max_batches`` full batches of one epoch of ``minibatches(X, y, B, rng)``
    give minibatch gradients of all the parameters (flattened); their distance to the full gradient is
    measured relative to its norm (a last, smaller batch is left out).

    Returns
    -------
    noise : dict B -> {``"rel_error"``: mean ||g_B - g|| / ||g||, ``"cosine"``: mean cosine similarity
        between g_B and g, ``"batches"``: how many batches were measured}.
    """
    net = make_net(seed)
    X, y = data["X_train"], data["y_train"]

    def flat_grad(Xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
        _, grads = net.loss(Xb, yb)
        return np.concatenate([grads[k].ravel() for k in sorted(grads)])

    with threadpool_limits(1, user_api="blas"):
        full = flat_grad(X, y)
        out = {}
        for B in batch_sizes:
            errs, cosines = [], []
            for Xb, yb in minibatches(X, y, B, np.random.default_rng(seed + B)):
                if len(yb) < B:
                    continue
                if len(errs) == max_batches:
                    break
                g = flat_grad(Xb, yb)
                errs.append(np.linalg.norm(g - full) / np.linalg.norm(full))
                cosines.append(g @ full / (np.linalg.norm(g) * np.linalg.norm(full)))
            out[int(B)] = {"rel_error": float(np.mean(errs)), "cosine": float(np.mean(cosines)),
                           "batches": len(errs)}
    return out


def batch_size_runs(rule: Rule, minibatches: Callable, data: Mapping[str, np.ndarray], batch_sizes: Sequence[int],
                    config: Mapping[str, Any], num_epochs: int = 3, seeds: Sequence[int] = SEEDS,
                    processes: int | None = None) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Train the same net with each batch size and the same learning rate, compared two ways.

    ``"epochs"``: every batch size for ``num_epochs`` epochs (the same number of sample gradients, so the
    small batches take many more updates); ``"updates"``: every batch size for the number of updates the
    largest batch size below the full set takes in ``num_epochs`` epochs (the full batch runs more epochs,
    a small batch stops within its first epoch). Once per seed.

    Returns
    -------
    runs : ``{"epochs": {B: [history per seed]}, "updates": {B: [history per seed]}, "num_updates": int}``;
        each history also holds ``"updates"``, the number of steps taken.
    """
    N = len(data["y_train"])
    sizes = [int(B) for B in batch_sizes]
    below = [B for B in sizes if B < N]
    num_updates = num_epochs * -(-N // max(below)) if below else num_epochs

    def run(B: int, seed: int, equal_updates: bool) -> dict[str, Any]:
        per_epoch = -(-N // B)
        if not equal_updates:
            epochs, batches = num_epochs, minibatches
        elif num_updates % per_epoch == 0:
            epochs, batches = num_updates // per_epoch, minibatches
        else:  # stop within an epoch: the first num_updates batches of one epoch
            epochs = 1
            batches = lambda X, y, b, rng: itertools.islice(minibatches(X, y, b, rng), num_updates)  # noqa: E731
        history = train(rule, config, data, num_epochs=epochs, batch_size=B, seed=seed, minibatches=batches)
        history["updates"] = len(history["loss"])
        return history

    same = {B for B in sizes if num_epochs * -(-N // B) == num_updates}  # one run serves both comparisons
    keys = [(mode, B, seed) for mode in ("epochs", "updates") for B in sizes for seed in seeds
            if mode == "epochs" or B not in same]
    results = run_all([lambda k=k: run(k[1], k[2], k[0] == "updates") for k in keys], processes)
    out: dict[str, Any] = {"epochs": {B: [] for B in sizes}, "updates": {B: [] for B in sizes},
                           "num_updates": num_updates}
    for (mode, B, _), h in zip(keys, results):
        out[mode][B].append(h)
    for B in same:
        out["updates"][B] = out["epochs"][B]
    return out


# ----------------------------------------------------------------------------------------------- schedules

class ReduceOnPlateau:
    """Multiply every learning rate by ``factor`` when the validation loss has not improved for ``patience``
    epochs (an ``on_epoch_end`` hook for :class:`nnlab.trainer.Trainer`, like ``torch.optim.lr_scheduler
    .ReduceLROnPlateau`` with ``threshold=0``)."""

    def __init__(self, factor: float = 0.5, patience: int = 3) -> None:
        self.factor, self.patience = factor, patience
        self.best, self.bad, self.reductions = float("inf"), 0, []

    def __call__(self, trainer: Trainer, epoch: int) -> None:
        val = trainer.history["val_loss"][-1]
        if val < self.best:
            self.best, self.bad = val, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            for cfg in trainer.optim_configs.values():
                cfg["learning_rate"] *= self.factor
            self.reductions.append(epoch)
            self.bad = 0


def schedule_runs(rule: Rule, schedules: Mapping[str, Callable[[float, int], float] | None],
                  data: Mapping[str, np.ndarray], lr0: float, num_epochs: int = 30, plateau: bool = True,
                  config: Mapping[str, Any] | None = None, seeds: Sequence[int] = SEEDS,
                  processes: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Train the same net with each learning-rate schedule ``schedule(lr0, epoch)`` (None: constant), and,
    with ``plateau``, once more halving the rate when the validation loss stalls for 3 epochs; once per seed.

    Returns
    -------
    runs : dict name -> one history per seed (``lr`` per epoch, ``train_loss``, ``val_loss``, ``val_acc``, ...;
        the plateau runs also hold ``"reductions"``, the epochs after which the rate was halved).
    """
    cfg = {**(config or {}), "learning_rate": lr0}

    def scheduled(s: Callable | None, seed: int) -> dict[str, Any]:
        return train(rule, cfg, data, num_epochs=num_epochs, lr_decay=s if s is not None else 1.0, seed=seed)

    def on_plateau(seed: int) -> dict[str, Any]:
        hook = ReduceOnPlateau()
        history = train(rule, cfg, data, num_epochs=num_epochs, on_epoch_end=hook, seed=seed)
        history["reductions"] = hook.reductions
        return history

    names = list(schedules) + (["reduce on plateau"] if plateau else [])
    jobs = [(lambda s=schedules[n], seed=seed: scheduled(s, seed)) if n in schedules
            else (lambda seed=seed: on_plateau(seed)) for n in names for seed in seeds]
    results = iter(run_all(jobs, processes))
    return {name: [next(results) for _ in seeds] for name in names}


# ----------------------------------------------------------------------------------------------- second order

def newton_step(problem: _data.IllConditionedQuadratic, w: Sequence[float]) -> np.ndarray:
    """One Newton step ``w - H^-1 grad(w)`` on the quadratic (exact for a quadratic)."""
    w = np.asarray(w, dtype=np.float64)
    return w - np.linalg.solve(problem.hessian, problem.grad(w))


def hessian_bytes(num_params: int, bytes_per_number: int = 4) -> int:
    """Memory of a dense Hessian: ``num_params ** 2`` numbers."""
    return int(num_params) ** 2 * int(bytes_per_number)


def format_bytes(n: float) -> str:
    """``451.1 MB``, ``40 PB``: bytes in the largest decimal unit that keeps the number >= 1."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(n) < 1000 or unit == "EB":
            return f"{n:.4g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def count_params(layer_sizes: Sequence[int]) -> int:
    """Weights and biases of a fully connected net ``[D, H1, ..., C]``."""
    return sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


def main() -> None:  # pragma: no cover - a measurement, printed
    rules = {name: getattr(optim, name) for name in NET_CONFIGS}
    seconds = epoch_seconds(rules, digits())
    print("RECORDED_EPOCH_SECONDS = {")
    for name, s in seconds.items():
        print(f"    {name!r}: {s:.4f},  # {s / seconds['sgd']:.2f} x sgd")
    print("}")


if __name__ == "__main__":  # pragma: no cover
    main()
