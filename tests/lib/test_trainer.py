"""nnlab.trainer: history, schedules, early stopping, determinism."""

import numpy as np
import pytest

from nnlab import optim
from nnlab.network import FullyConnectedNet
from nnlab.regularization import EarlyStopping
from nnlab.trainer import Trainer, accuracy, evaluate


def toy_data(seed=0, n_train=50, n_val=30, d=6, c=3):
    rng = np.random.default_rng(seed)
    centers = 2.0 * rng.standard_normal((c, d))
    y_train, y_val = rng.integers(0, c, n_train), rng.integers(0, c, n_val)
    return {"X_train": centers[y_train] + rng.standard_normal((n_train, d)), "y_train": y_train,
            "X_val": centers[y_val] + rng.standard_normal((n_val, d)), "y_val": y_val}


def make(seed=0, **kwargs):
    data = toy_data()
    net = FullyConnectedNet([6, 16, 3], rng=np.random.default_rng(seed))
    kwargs.setdefault("progress", False)
    trainer = Trainer(net, data, rng=np.random.default_rng(seed + 100), **kwargs)
    return net, data, trainer


def test_history_keys_and_lengths():
    net, data, trainer = make(batch_size=16, num_epochs=3, update_rule=optim.sgd_momentum,
                              optim_config={"learning_rate": 0.05})
    h = trainer.train()
    assert {"loss", "train_loss", "val_loss", "train_acc", "val_acc", "epochs_run", "stopped_early"} <= set(h)
    assert len(h["loss"]) == 3 * 4  # ceil(50 / 16) = 4 iterations per epoch
    for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr"):
        assert len(h[key]) == 3, key
    assert h["epochs_run"] == 3 and h["stopped_early"] is False
    assert all(isinstance(v, float) for v in h["loss"])
    assert h["train_acc"][-1] == pytest.approx(accuracy(net, data["X_train"], data["y_train"]))
    assert h["val_acc"][-1] == pytest.approx(accuracy(net, data["X_val"], data["y_val"]))
    assert h["val_loss"][-1] == pytest.approx(evaluate(net, data["X_val"], data["y_val"])[0])
    assert h["loss"][-1] < h["loss"][0]


def test_training_learns_the_toy_problem():
    net, data, trainer = make(num_epochs=30, batch_size=10, update_rule=optim.adam,
                              optim_config={"learning_rate": 1e-2})
    h = trainer.train()
    assert h["val_acc"][-1] > 0.9


def test_deterministic_given_rng():
    def run():
        net, _, trainer = make(seed=4, batch_size=8, num_epochs=2, update_rule=optim.adam)
        return trainer.train(), net.params

    h1, p1 = run()
    h2, p2 = run()
    assert h1["loss"] == h2["loss"] and h1["val_acc"] == h2["val_acc"]
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_optim_config_is_copied_per_parameter():
    config = {"learning_rate": 1e-2}
    net, _, trainer = make(update_rule=optim.adam, optim_config=config, num_epochs=1, batch_size=25)
    trainer.train()
    assert config == {"learning_rate": 1e-2}
    assert set(trainer.optim_configs) == set(net.params)
    ids = {id(c) for c in trainer.optim_configs.values()}
    assert len(ids) == len(net.params)
    assert all(c["t"] == 2 for c in trainer.optim_configs.values())  # 50 / 25 iterations


def test_lr_decay_factor_and_schedule():
    _, _, trainer = make(optim_config={"learning_rate": 0.1}, lr_decay=0.5, num_epochs=3)
    assert trainer.train()["lr"] == pytest.approx([0.1, 0.05, 0.025])
    schedule = lambda lr0, epoch: optim.inverse_time_decay(lr0, epoch, k=1.0)
    _, _, trainer = make(optim_config={"learning_rate": 0.1}, lr_decay=schedule, num_epochs=3)
    assert trainer.train()["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_any_update_rule_works():
    calls = []

    def my_sgd(w, dw, config=None):
        config = config if config is not None else {}
        calls.append(1)
        return w - config.get("learning_rate", 1e-2) * dw, config

    net, _, trainer = make(update_rule=my_sgd, num_epochs=1, batch_size=50)
    trainer.train()
    assert len(calls) == len(net.params)  # one iteration, one call per parameter


def test_early_stopping_stops_and_restores_best_params_in_place():
    # min_delta is huge: only the first epoch counts as an improvement.
    es = EarlyStopping(patience=2, min_delta=100.0)
    net, _, trainer = make(num_epochs=10, early_stopping=es, update_rule=optim.adam,
                           optim_config={"learning_rate": 1e-2})
    h = trainer.train()
    assert h["stopped_early"] is True
    assert h["epochs_run"] == 3 and len(h["val_loss"]) == 3
    assert h["best_epoch"] == 0
    for k, v in es.best_params.items():
        np.testing.assert_array_equal(net.params[k], v)
    assert not any(net.params[k] is v for k, v in es.best_params.items())


class ScriptedStopper:
    """Early stopping stand-in: best at epoch 1, stop at epoch 3; records params' identities."""

    def __init__(self):
        self.best_params = None
        self.calls = 0

    def step(self, val_loss, params):
        if self.calls == 1:
            self.best_params = {k: v.copy() for k, v in params.items()}
        self.calls += 1
        self.arrays_when_called = dict(params)  # the arrays the trainer must restore into
        self.values_when_called = {k: v.copy() for k, v in params.items()}
        return self.calls == 4


def test_custom_early_stopper_params_restored_into_the_same_arrays():
    stopper = ScriptedStopper()
    net, _, trainer = make(num_epochs=10, early_stopping=stopper, update_rule=optim.sgd,
                           optim_config={"learning_rate": 0.1})
    h = trainer.train()
    assert h["epochs_run"] == 4 and h["stopped_early"]
    for k, v in stopper.best_params.items():
        np.testing.assert_array_equal(net.params[k], v)
        assert net.params[k] is stopper.arrays_when_called[k]
    assert not np.array_equal(stopper.values_when_called["W1"], stopper.best_params["W1"])  # restore mattered


def test_best_params_restored_at_the_end_without_stopping():
    es = EarlyStopping(patience=50, min_delta=100.0)
    net, _, trainer = make(num_epochs=3, early_stopping=es)
    h = trainer.train()
    assert h["stopped_early"] is False and h["epochs_run"] == 3
    for k, v in es.best_params.items():
        np.testing.assert_array_equal(net.params[k], v)


def test_print_every_and_progress(capsys):
    _, _, trainer = make(num_epochs=1, batch_size=10, print_every=2)
    trainer.train()
    out = capsys.readouterr().out
    assert "(iteration 2 / 5)" in out and "(iteration 4 / 5)" in out and "(iteration 1 /" not in out
    _, _, trainer = make(num_epochs=2, progress=True)
    trainer.train()
    assert "epochs" in capsys.readouterr().err  # the tqdm bar


def test_accuracy_helper_batches():
    class Stub:
        def predict(self, X):
            return (X[:, 0] > 0).astype(int)

    X = np.array([[1.0], [-1.0], [2.0], [-3.0], [5.0]])
    y = np.array([1, 0, 0, 0, 1])
    assert accuracy(Stub(), X, y, batch_size=2) == pytest.approx(0.8)


def test_missing_data_key_raises():
    net = FullyConnectedNet([6, 3], rng=np.random.default_rng(0))
    with pytest.raises(KeyError):
        Trainer(net, {"X_train": np.ones((2, 6)), "y_train": np.zeros(2, int)}, rng=np.random.default_rng(0))


def test_on_epoch_end_sees_each_epoch():
    seen = []

    def record(trainer, epoch):
        seen.append((epoch, len(trainer.history["val_acc"]), trainer.model.params["W1"].copy()))

    net, _, trainer = make(num_epochs=3, on_epoch_end=record)
    trainer.train()
    assert [(e, n) for e, n, _ in seen] == [(0, 1), (1, 2), (2, 3)]
    np.testing.assert_array_equal(seen[-1][2], net.params["W1"])
    assert not np.array_equal(seen[0][2], seen[1][2])


def test_trains_on_image_shaped_inputs_and_float32():
    rng = np.random.default_rng(0)
    data = toy_data(d=8)
    data = {k: (v.reshape(-1, 2, 4) if k.startswith("X") else v) for k, v in data.items()}
    net = FullyConnectedNet([8, 10, 3], rng=rng, dtype=np.float32)
    h = Trainer(net, data, rng=rng, num_epochs=2, progress=False).train()
    assert len(h["val_acc"]) == 2
    assert all(p.dtype == np.float32 for p in net.params.values())


def blas_threads():
    from threadpoolctl import threadpool_info
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


@pytest.mark.parametrize("limit, expected", [(1, {1}), (None, {2})])
def test_training_limits_blas_threads_and_restores_them(limit, expected):
    from threadpoolctl import threadpool_limits
    seen = []
    with threadpool_limits(2, user_api="blas"):
        net, data, trainer = make(num_epochs=2, blas_threads=limit,
                                  on_epoch_end=lambda t, epoch: seen.append(blas_threads()))
        trainer.train()
        assert blas_threads() == {2}  # restored after training
    assert seen == [expected, expected]
