"""nnlab.optim: update rules step for step against torch.optim; schedules; minibatches."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab import optim

fast = settings(max_examples=20, deadline=None, database=None, derandomize=True)

NUM_STEPS = 12  # the course promises "a run of at least 10 steps matches torch.optim"

# rule -> (torch optimizer factory taking (params, hyperparameters), our config from the same
# hyperparameters, the hyperparameters hypothesis varies with their ranges)
RULES = {
    "sgd": (optim.sgd, lambda p, h: torch.optim.SGD(p, lr=h["lr"]),
            lambda h: {"learning_rate": h["lr"]}),
    "sgd_momentum": (optim.sgd_momentum, lambda p, h: torch.optim.SGD(p, lr=h["lr"], momentum=h["rho"]),
                     lambda h: {"learning_rate": h["lr"], "momentum": h["rho"]}),
    "nesterov": (optim.nesterov,
                 lambda p, h: torch.optim.SGD(p, lr=h["lr"], momentum=h["rho"], nesterov=True),
                 lambda h: {"learning_rate": h["lr"], "momentum": h["rho"]}),
    "adagrad": (optim.adagrad,
                lambda p, h: torch.optim.Adagrad(p, lr=h["lr"], eps=h["eps"], initial_accumulator_value=0.0),
                lambda h: {"learning_rate": h["lr"], "epsilon": h["eps"]}),
    "rmsprop": (optim.rmsprop, lambda p, h: torch.optim.RMSprop(p, lr=h["lr"], alpha=h["rho"], eps=h["eps"]),
                lambda h: {"learning_rate": h["lr"], "decay_rate": h["rho"], "epsilon": h["eps"]}),
    "adam": (optim.adam,
             lambda p, h: torch.optim.Adam(p, lr=h["lr"], betas=(h["rho"], h["beta2"]), eps=h["eps"]),
             lambda h: {"learning_rate": h["lr"], "beta1": h["rho"], "beta2": h["beta2"], "epsilon": h["eps"]}),
}

# Defaults the course specifies, and the matching torch hyperparameters (Adam's learning rate is 1e-3).
DEFAULTS = {"lr": 1e-2, "rho": 0.9, "eps": 1e-8, "beta2": 0.999}
DEFAULT_LR = {"sgd": 1e-2, "sgd_momentum": 1e-2, "nesterov": 1e-2, "adagrad": 1e-2, "rmsprop": 1e-2, "adam": 1e-3}
DEFAULT_RHO = {"sgd": None, "sgd_momentum": 0.9, "nesterov": 0.9, "adagrad": None, "rmsprop": 0.99, "adam": 0.9}


def run_both(name, h, shape, seed, config=None, dtype=np.float64):
    rule, make_torch, _ = RULES[name]
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) * rng.choice([0.01, 1.0, 10.0]) for _ in range(NUM_STEPS)]
    # A few exact zeros: adagrad/rmsprop/adam must not divide 0 by 0.
    grads[0].flat[0] = 0.0

    tp = torch.tensor(w0, requires_grad=True)
    opt = make_torch([tp], h)
    w = w0.astype(dtype)
    ours, gold = [], []
    for g in grads:
        g_ours = g.astype(dtype)
        g_copy, w_copy = g_ours.copy(), w.copy()
        w_next, config = rule(w, g_ours, config)
        np.testing.assert_array_equal(g_ours, g_copy, err_msg=f"{name} modified dw")
        np.testing.assert_array_equal(w, w_copy, err_msg=f"{name} (reference) modified w")
        w = w_next
        tp.grad = torch.tensor(g)
        opt.step()
        ours.append(w.copy())
        gold.append(tp.detach().numpy().copy())
    return ours, gold, config


@pytest.mark.parametrize("name", RULES)
@fast
@given(shape=st.one_of(st.tuples(st.integers(1, 5)), st.tuples(st.integers(1, 4), st.integers(1, 4))),
       seed=st.integers(0, 2**32 - 1), lr=st.sampled_from([1e-3, 1e-2, 0.3]),
       rho=st.sampled_from([0.5, 0.9, 0.99]), eps=st.sampled_from([1e-8, 1e-4]),
       beta2=st.sampled_from([0.9, 0.999]))
def test_matches_torch_over_several_steps(name, shape, seed, lr, rho, eps, beta2):
    h = {"lr": lr, "rho": rho, "eps": eps, "beta2": beta2}
    config = RULES[name][2](h)
    ours, gold, _ = run_both(name, h, shape, seed, config)
    for step, (a, b) in enumerate(zip(ours, gold), start=1):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{name}, step {step}")


@pytest.mark.parametrize("name", RULES)
def test_defaults_match_the_spec_and_torch(name):
    h = dict(DEFAULTS, lr=DEFAULT_LR[name])
    if DEFAULT_RHO[name] is not None:
        h["rho"] = DEFAULT_RHO[name]
    ours, gold, config = run_both(name, h, (3, 2), 0, config=None)
    for a, b in zip(ours, gold):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    expected_keys = {
        "sgd": {"learning_rate"},
        "sgd_momentum": {"learning_rate", "momentum", "velocity"},
        "nesterov": {"learning_rate", "momentum", "velocity"},
        "adagrad": {"learning_rate", "epsilon", "cache"},
        "rmsprop": {"learning_rate", "decay_rate", "epsilon", "cache"},
        "adam": {"learning_rate", "beta1", "beta2", "epsilon", "m", "v", "t"},
    }[name]
    assert set(config) == expected_keys
    assert config["learning_rate"] == DEFAULT_LR[name]
    if name == "adam":
        assert config["t"] == NUM_STEPS


@pytest.mark.parametrize("name", RULES)
def test_float32_stays_float32(name):
    rule = RULES[name][0]
    w = np.ones((3, 3), dtype=np.float32)
    config = None
    for _ in range(3):
        w, config = rule(w, np.full((3, 3), 0.5, dtype=np.float32), config)
    assert w.dtype == np.float32
    for key in ("velocity", "cache", "m", "v"):
        if key in config:
            assert config[key].dtype == np.float32


@pytest.mark.parametrize("name", RULES)
def test_state_is_per_config(name):
    rule = RULES[name][0]
    w = np.ones(4)
    _, c1 = rule(w, np.ones(4), None)
    _, c2 = rule(w, np.ones(4), None)
    assert c1 is not c2


def test_adam_t_is_incremented_before_use():
    w, config = optim.adam(np.zeros(1), np.array([1.0]), {"learning_rate": 0.1})
    assert config["t"] == 1
    # With t = 1 the bias corrections make the first step exactly lr * sign(g).
    np.testing.assert_allclose(w, [-0.1], rtol=1e-6)


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError):
        optim.sgd(np.ones(2), np.ones(2), {"learning_rate": -1.0})
    with pytest.raises(ValueError):
        optim.sgd_momentum(np.ones(2), np.ones(2), {"momentum": 1.5})
    with pytest.raises(ValueError):
        optim.adam(np.ones(2), np.ones(2), {"beta2": 1.0})


# --------------------------------------------------------------------------- schedules

def test_step_decay():
    assert [optim.step_decay(1.0, e) for e in (0, 9, 10, 19, 20, 35)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    assert optim.step_decay(0.3, 4, drop=0.1, epochs_per_drop=2) == pytest.approx(0.3 * 0.01)


def test_exponential_and_inverse_time_decay():
    assert optim.exponential_decay(0.5, 0, 0.3) == 0.5
    assert optim.exponential_decay(0.5, 4, 0.3) == pytest.approx(0.5 * math.exp(-1.2))
    assert optim.inverse_time_decay(0.5, 0, 2.0) == 0.5
    assert optim.inverse_time_decay(0.5, 3, 2.0) == pytest.approx(0.5 / 7)


# --------------------------------------------------------------------------- minibatches

@fast
@given(n=st.integers(1, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**32 - 1))
def test_minibatches_cover_every_sample_once(n, batch_size, seed):
    X = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n)
    batches = list(optim.iterate_minibatches(X, y, batch_size, np.random.default_rng(seed)))
    sizes = [len(yb) for _, yb in batches]
    assert len(batches) == math.ceil(n / batch_size)
    assert all(s == batch_size for s in sizes[:-1]) and 1 <= sizes[-1] <= batch_size
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen) == list(range(n))
    for Xb, yb in batches:
        np.testing.assert_array_equal(Xb, X[yb])  # rows and labels stay paired


def test_minibatches_shuffle_false_keeps_order_and_shuffle_is_deterministic():
    X, y = np.arange(10)[:, None], np.arange(10)
    ordered = [yb.tolist() for _, yb in optim.iterate_minibatches(X, y, 4, None, shuffle=False)]
    assert ordered == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    a = [yb.tolist() for _, yb in optim.iterate_minibatches(X, y, 4, np.random.default_rng(3))]
    b = [yb.tolist() for _, yb in optim.iterate_minibatches(X, y, 4, np.random.default_rng(3))]
    assert a == b and a != ordered


def test_minibatches_reject_bad_batch_size():
    with pytest.raises(ValueError):
        list(optim.iterate_minibatches(np.ones((3, 1)), np.ones(3), 0, np.random.default_rng(0)))


def test_torch_defaults_are_the_course_defaults():
    # The comparison above passes torch the course's defaults; these are torch's own.
    p = [torch.zeros(1, requires_grad=True)]
    assert torch.optim.Adam(p).defaults["lr"] == DEFAULT_LR["adam"]
    assert torch.optim.Adam(p).defaults["betas"] == (0.9, 0.999)
    assert torch.optim.RMSprop(p).defaults["alpha"] == 0.99 and torch.optim.RMSprop(p).defaults["lr"] == 1e-2
    assert torch.optim.Adagrad(p).defaults["lr"] == 1e-2


@pytest.mark.parametrize("name", RULES)
def test_two_parameters_interleaved_keep_their_own_state(name):
    rule = RULES[name][0]
    rng = np.random.default_rng(1)
    grads = [(rng.standard_normal(3), rng.standard_normal(3)) for _ in range(NUM_STEPS)]
    a, b, ca, cb = np.ones(3), -np.ones(3), None, None
    for ga, gb in grads:
        a, ca = rule(a, ga, ca)
        b, cb = rule(b, gb, cb)
    alone, c = np.ones(3), None
    for ga, _ in grads:
        alone, c = rule(alone, ga, c)
    np.testing.assert_array_equal(a, alone)


@pytest.mark.parametrize("name", ["sgd_momentum", "nesterov", "rmsprop", "adam"])
def test_learning_rate_change_between_steps_matches_torch(name):
    # A schedule changes config["learning_rate"] between steps; torch changes param_groups' lr.
    rule, make_torch, make_config = RULES[name]
    h = {"lr": 0.1, "rho": 0.8, "eps": 1e-8, "beta2": 0.99}
    rng = np.random.default_rng(5)
    w = rng.standard_normal(4)
    tp = torch.tensor(w.copy(), requires_grad=True)
    opt = make_torch([tp], h)
    config = make_config(h)
    for step in range(NUM_STEPS):
        lr = 0.1 / (1 + step)
        config["learning_rate"] = lr
        for group in opt.param_groups:
            group["lr"] = lr
        g = rng.standard_normal(4)
        w, config = rule(w, g, config)
        tp.grad = torch.tensor(g)
        opt.step()
        np.testing.assert_allclose(w, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_trainer_uses_the_given_minibatches_and_a_schedule_needs_lr0():
    from nnlab.network import FullyConnectedNet
    from nnlab.trainer import Trainer

    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((10, 3)), "y_train": rng.integers(0, 2, 10),
            "X_val": rng.standard_normal((4, 3)), "y_val": rng.integers(0, 2, 4)}
    seen = []

    def batches(X, y, batch_size, rng):
        seen.append(batch_size)
        return optim.iterate_minibatches(X, y, batch_size, rng, shuffle=False)

    net = FullyConnectedNet([3, 4, 2], rng=np.random.default_rng(1))
    Trainer(net, data, batch_size=4, num_epochs=2, rng=rng, progress=False, minibatches=batches).train()
    assert seen == [4, 4]
    with pytest.raises(ValueError, match="learning_rate"):
        Trainer(net, data, rng=rng, update_rule=optim.adam, lr_decay=lambda lr0, e: lr0)
