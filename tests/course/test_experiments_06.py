"""What notebook 06 says about its experiments holds, checked on the references.

Most runs are the notebook's own (they take seconds); the slow ones are shortened where the claim survives it
(gradient noise on fewer batches, batch sizes over one epoch). The assertions use margins, not printed digits.
"""

import numpy as np
import pytest

from nnlab import optim as O
from nnlab.experiments import optimizers as exp

RULES = {name: getattr(O, name) for name in ["sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam"]}


@pytest.fixture(scope="module")
def data():
    return exp.digits()


def test_quadratic_sgd_zigzags_momentum_damps_adaptive_methods_go_straight():
    runs = exp.surface_paths(RULES, "ill-conditioned quadratic")
    sgd_w1 = runs["sgd"]["path"][1:11, 1]
    assert np.all(np.sign(sgd_w1[1:]) == -np.sign(sgd_w1[:-1]))  # w1 flips sign at every step
    np.testing.assert_allclose(sgd_w1[1:] / sgd_w1[:-1], -0.75)  # 1 - 0.035 * 50
    d = {name: r["dist"] for name, r in runs.items()}
    assert d["sgd"] > 0.6 and d["sgd_momentum"] < 0.1 and d["nesterov"] < 0.35       # 0.674, 0.084, 0.295
    assert d["adagrad"] < 1e-3 and d["rmsprop"] < 1e-3 and 0.1 < d["adam"] < 0.4       # 8e-4, 2.6e-4, 0.26
    assert np.max(runs["adam"]["path"][:, 0]) > 0.3                                   # loops past the minimum


def test_saddle_sgd_stays_momentum_escapes_late_adaptive_methods_at_once():
    runs = exp.surface_paths(RULES, "saddle")
    assert len(runs["sgd"]["path"]) == 41 and abs(runs["sgd"]["final"]) < 0.01      # -0.0016 after 40 steps
    np.testing.assert_allclose(runs["sgd"]["path"][-1, 1], 1e-3 * 1.1 ** 40)         # the offset grows by 1.1
    assert 25 <= len(runs["sgd_momentum"]["path"]) - 1 < 40 and 25 <= len(runs["nesterov"]["path"]) - 1 < 40
    for name in ("adagrad", "rmsprop", "adam"):
        assert runs[name]["final"] < -10                                             # escaped
        assert abs(runs[name]["path"][5, 1]) > 0.3                                   # ... from the first steps


def test_rosenbrock_momentum_adam_nesterov_get_close_sgd_adagrad_rmsprop_lag():
    d = {name: r["dist"] for name, r in exp.surface_paths(RULES, "Rosenbrock").items()}
    assert d["sgd_momentum"] < 0.15 and d["adam"] < 0.25 and d["nesterov"] < 0.3       # 0.12, 0.21, 0.28
    assert d["sgd"] > 0.7 and d["adagrad"] > 1.2 and d["rmsprop"] > 0.9               # 0.82, 1.31, 1.0


def test_gradient_noise_falls_as_one_over_sqrt_b_then_faster(data):
    sizes = [1, 4, 16, 64, 256, 1024]
    noise = exp.gradient_noise(O.iterate_minibatches, data, sizes, max_batches=64)
    rel = np.array([noise[b]["rel_error"] for b in sizes])
    N = len(data["y_train"])
    predicted = rel[0] * np.sqrt((N - np.array(sizes)) / ((N - 1) * np.array(sizes)))
    np.testing.assert_allclose(rel, predicted, rtol=0.15)
    assert 3 < rel[0] < 5 and rel[-1] < 0.05 and noise[1]["cosine"] < 0.35        # 4.01, 0.026, 0.22
    assert rel[-1] < 0.5 * rel[0] / np.sqrt(1024)                                   # faster than 1/sqrt(B) at the end


def test_per_epoch_many_noisy_steps_beat_few_exact_ones(data):
    runs = exp.batch_size_runs(O.sgd, O.iterate_minibatches, data, [1079, 64, 1], {"learning_rate": 0.02},
                               num_epochs=1)
    full, b64, b1 = (runs[b]["train_loss"][-1] for b in (1079, 64, 1))
    assert b1 < 0.5 < 2.0 < b64 < full and full > 0.95 * runs[1079]["initial_train_loss"]


def test_tuned_optimizers_on_the_digits_net(data):
    h = exp.compare_optimizers(RULES, data, num_epochs=20)
    final = {name: run["train_loss"][-1] for name, run in h.items()}
    assert max(final["sgd_momentum"], final["adam"], final["nesterov"]) < 0.004       # 0.0009, 0.0013, 0.0023
    assert min(final["rmsprop"], final["sgd"], final["adagrad"]) > 0.008              # 0.012, 0.014, 0.026
    assert final["sgd_momentum"] < final["adam"] < final["nesterov"] < final["rmsprop"] < final["sgd"] < \
        final["adagrad"]
    assert h["nesterov"]["train_loss"][4] == min(run["train_loss"][4] for run in h.values())  # leads after 5
    assert all(0.97 <= run["val_acc"][-1] <= 0.99 for run in h.values())
    assert set(exp.RECORDED_EPOCH_SECONDS) == set(RULES) and all(s > 0 for s in exp.RECORDED_EPOCH_SECONDS.values())


def test_adam_is_rmsprop_and_momentum_up_to_bias_correction(data):
    t = np.arange(1, 41)
    r = exp.step_ratios(O.adam, {"learning_rate": 1e-3, "beta1": 0.0, "beta2": 0.9},
                        O.rmsprop, {"learning_rate": 1e-3, "decay_rate": 0.9}, data, 40)
    np.testing.assert_allclose(r, np.sqrt(1 - 0.9 ** t), atol=1e-3)
    m = exp.step_ratios(O.adam, {"learning_rate": 0.02 * 1e4 / 0.1, "beta1": 0.9, "epsilon": 1e4},
                        O.sgd_momentum, {"learning_rate": 0.02, "momentum": 0.9}, data, 40)
    np.testing.assert_allclose(m, 1 / (1 - 0.9 ** t), rtol=1e-3)
    # and the comparison is not vacuous: plain SGD is not Adam with beta1 = 0
    s = exp.step_ratios(O.adam, {"learning_rate": 1e-3, "beta1": 0.0, "beta2": 0.9},
                        O.sgd, {"learning_rate": 1e-3}, data, 10)
    assert np.max(np.abs(s - np.sqrt(1 - 0.9 ** t[:10]))) > 0.5


def test_schedules_cost_a_little_from_a_good_rate_and_rescue_a_too_large_one(data):
    schedules = {"constant": None, "step": lambda lr0, e: O.step_decay(lr0, e),
                 "exponential": lambda lr0, e: O.exponential_decay(lr0, e, k=0.1),
                 "1/t": lambda lr0, e: O.inverse_time_decay(lr0, e, k=0.3)}
    good = exp.schedule_runs(O.sgd, schedules, data, lr0=1.0, num_epochs=30)
    loss = {name: h["train_loss"][-1] for name, h in good.items()}
    assert loss["constant"] < loss["step"] < loss["exponential"] < loss["1/t"]      # 0.0087 < 0.017 < 0.038 < 0.050
    assert good["reduce on plateau"]["reductions"] == [25] and loss["reduce on plateau"] < 1.1 * loss["constant"]
    bad = exp.schedule_runs(O.sgd, {k: schedules[k] for k in ("constant", "step", "exponential")}, data, lr0=2.0,
                            num_epochs=30)
    loss = {name: h["train_loss"][-1] for name, h in bad.items()}
    assert loss["constant"] > 2.2 and bad["constant"]["val_acc"][-1] < 0.15         # diverged to chance
    assert loss["exponential"] < 0.05 and loss["step"] > 0.5                          # 0.038, 1.18
    assert 0.1 < loss["reduce on plateau"] < 0.5                                      # 0.20


def test_reduce_on_plateau_halves_after_patience_epochs():
    class FakeTrainer:
        history = {"val_loss": []}
        optim_configs = {"W1": {"learning_rate": 1.0}, "b1": {"learning_rate": 1.0}}

    hook, trainer = exp.ReduceOnPlateau(factor=0.5, patience=2), FakeTrainer()
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.1, 1.0, 1.5, 1.5, 1.5, 1.5]):
        trainer.history["val_loss"].append(loss)
        hook(trainer, epoch)
    assert hook.reductions == [3, 6, 8]
    assert all(c["learning_rate"] == 0.125 for c in trainer.optim_configs.values())


def test_newton_step_and_hessian_memory():
    quad = exp.SURFACES["ill-conditioned quadratic"]["problem"]
    np.testing.assert_array_equal(exp.newton_step(quad, [-4.0, 1.0]), [0.0, 0.0])
    P = exp.count_params([64, 100, 10])
    assert P == 7510 and exp.hessian_bytes(P) == 225_600_400 and exp.hessian_bytes(10**8) == 4 * 10**16
    assert exp.format_bytes(exp.hessian_bytes(P)) == "225.6 MB" and exp.format_bytes(4 * 10**16) == "40 PB"
    assert exp.format_bytes(4 * P) == "30.04 kB" and exp.format_bytes(999) == "999 B"


def test_epoch_seconds_measures_every_rule(data):
    seconds = exp.epoch_seconds({"sgd": O.sgd, "adam": O.adam}, data, num_epochs=1, repeats=1)
    assert set(seconds) == {"sgd", "adam"} and all(0 < s < 10 for s in seconds.values())
