"""nnlab.dropout: inverted dropout and random shifts against PyTorch, gradients with a fixed mask, modes; the
hidden checks of notebook 04 accept correct answers and reject the mistakes for many seeds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab.dropout import dropout_backward, dropout_forward, random_shift
from nnlab.gradcheck import numerical_gradient_array, relative_error

fast = settings(max_examples=20, deadline=None, database=None, derandomize=True)


@pytest.mark.parametrize("keep_prob", [0.2, 0.5, 0.9])
def test_train_mode_statistics(keep_prob):
    x = np.full((500, 400), 2.0)
    out, _ = dropout_forward(x, keep_prob, "train", np.random.default_rng(0))
    kept = out != 0
    # 200,000 Bernoulli draws: the kept fraction is within 1% of keep_prob.
    assert kept.mean() == pytest.approx(keep_prob, abs=0.01)
    np.testing.assert_allclose(out[kept], 2.0 / keep_prob)  # inverted: kept units are scaled up
    assert out.mean() == pytest.approx(2.0, rel=0.02)       # so the expectation is unchanged


@fast
@given(n=st.integers(1, 6), d=st.integers(1, 7), seed=st.integers(0, 2**32 - 1),
       keep_prob=st.sampled_from([0.3, 0.5, 0.8, 1.0]))
def test_gradient_with_fixed_mask(n, d, seed, keep_prob):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    dout = rng.standard_normal((n, d))
    x0, dout0 = x.copy(), dout.copy()
    out, cache = dropout_forward(x, keep_prob, "train", np.random.default_rng(seed))
    dx = dropout_backward(dout, cache)
    # The same seed gives the same mask on every call of f, so f is a fixed linear map.
    num = numerical_gradient_array(
        lambda z: dropout_forward(z, keep_prob, "train", np.random.default_rng(seed))[0], x.copy(), dout)
    assert relative_error(dx, num) < 1e-8
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, dout0)
    # The units dropped in the forward pass get no gradient.
    assert np.all(dx[out == 0] == 0)


def test_test_mode_is_identity_and_does_not_draw():
    x = np.random.default_rng(0).standard_normal((5, 4))
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    out, cache = dropout_forward(x, 0.3, "test", rng)
    np.testing.assert_array_equal(out, x)
    assert rng.bit_generator.state == state
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), np.ones_like(x))


def test_keep_prob_one_is_identity_in_train_mode():
    x = np.random.default_rng(0).standard_normal((5, 4))
    out, cache = dropout_forward(x, 1.0, "train", np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(dropout_backward(x, cache), x)


def test_deterministic_given_rng_and_independent_of_global_state():
    x = np.ones((20, 20))
    np.random.seed(0)
    a, _ = dropout_forward(x, 0.5, "train", np.random.default_rng(7))
    np.random.seed(1)
    b, _ = dropout_forward(x, 0.5, "train", np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    c, _ = dropout_forward(x, 0.5, "train", np.random.default_rng(8))
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_float32_is_kept(mode):
    x = np.ones((8, 8), dtype=np.float32)
    out, cache = dropout_forward(x, 0.5, mode, np.random.default_rng(0))
    assert out.dtype == np.float32
    assert dropout_backward(np.ones_like(x), cache).dtype == np.float32


def test_bad_arguments_raise():
    x = np.ones((2, 2))
    with pytest.raises(ValueError):
        dropout_forward(x, 0.0, "train", np.random.default_rng(0))
    with pytest.raises(ValueError):
        dropout_forward(x, 1.5, "train", np.random.default_rng(0))
    with pytest.raises(ValueError):
        dropout_forward(x, 0.5, "eval", np.random.default_rng(0))


# --------------------------------------------------------------------------- against PyTorch

def test_train_mode_matches_torch_dropout_in_values_and_gradient():
    import torch
    x = 1.0 + np.random.default_rng(3).random((300, 200))
    keep_prob = 0.7
    out, cache = dropout_forward(x, keep_prob, "train", np.random.default_rng(4))
    gold = torch.nn.functional.dropout(torch.tensor(x), p=1 - keep_prob, training=True).numpy()
    # Different random streams, the same rule: kept units are x / keep_prob, the same fraction kept.
    np.testing.assert_allclose(out[out != 0], x[out != 0] / keep_prob, rtol=1e-15)
    np.testing.assert_allclose(gold[gold != 0], x[gold != 0] / keep_prob, rtol=1e-15)
    assert abs((out != 0).mean() - (gold != 0).mean()) < 0.01
    # With our mask, PyTorch's autograd of x * mask / keep_prob gives our dx.
    mask = torch.tensor((out != 0).astype(np.float64))
    xt = torch.tensor(x, requires_grad=True)
    dout = np.random.default_rng(5).standard_normal(x.shape)
    (xt * mask / keep_prob).backward(torch.tensor(dout))
    np.testing.assert_allclose(dropout_backward(dout, cache), xt.grad.numpy(), rtol=1e-15)
    test_gold = torch.nn.functional.dropout(torch.tensor(x), p=1 - keep_prob, training=False).numpy()
    np.testing.assert_array_equal(dropout_forward(x, keep_prob, "test", np.random.default_rng(0))[0], test_gold)


def _torch_shift(images, dy, dx, s):
    """Zero padding then a crop, in PyTorch: image i moved by (dy[i], dx[i])."""
    import torch
    t = torch.nn.functional.pad(torch.tensor(images), (s, s, s, s))
    H, W = images.shape[1:]
    return np.stack([t[i, s - a:s - a + H, s - b:s - b + W].numpy() for i, (a, b) in enumerate(zip(dy, dx))])


@fast
@given(n=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9), s=st.integers(0, 4),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float64, np.float32, np.uint8]))
def test_random_shift_matches_torch_pad_and_crop(n, h, w, s, seed, dtype):
    images = np.random.default_rng(seed).integers(1, 200, size=(n, h, w)).astype(dtype)
    before = images.copy()
    out = random_shift(images, s, np.random.default_rng(seed))
    offsets = np.random.default_rng(seed).integers(-s, s + 1, size=(n, 2))  # the reference's draw
    np.testing.assert_array_equal(out, _torch_shift(images, offsets[:, 0], offsets[:, 1], s))
    assert out.dtype == images.dtype and out.shape == images.shape and not np.shares_memory(out, images)
    np.testing.assert_array_equal(images, before)


def test_random_shift_offsets_are_uniform_and_independent():
    images = np.ones((20000, 3, 3))
    rng = np.random.default_rng(0)
    out = random_shift(images, 1, rng)
    # With 3x3 images of ones, the zero rows/columns reveal |dy| and |dx| and their signs.
    dy = np.where(out[:, 0, 1] == 0, 1, np.where(out[:, 2, 1] == 0, -1, 0))
    dx = np.where(out[:, 1, 0] == 0, 1, np.where(out[:, 1, 2] == 0, -1, 0))
    counts = np.zeros((3, 3))
    np.add.at(counts, (dy + 1, dx + 1), 1)
    np.testing.assert_allclose(counts / len(images), 1 / 9, atol=0.01)


def test_random_shift_rejects_bad_arguments():
    with pytest.raises(ValueError):
        random_shift(np.ones((2, 4)), 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        random_shift(np.ones((2, 4, 4)), -1, np.random.default_rng(0))


# --------------------------------------------------------------------------- the hidden checks, over many seeds

def _notebook_functions(code=""):
    """The notebook's solution functions, with ``code`` (a catalog answer) defined on top."""
    from course.inprocess import python_source
    from course.notebooks import BEGIN_SOLUTION, END_SOLUTION, is_solution, read_notebook, strip_markers
    from tests.conftest import ROOT
    nb = read_notebook(ROOT / "source" / "04_dropout" / "04_dropout.ipynb")
    ns = {"np": np}
    for cell in nb.cells:
        if is_solution(cell):
            exec(python_source(strip_markers(cell.source, BEGIN_SOLUTION, END_SOLUTION)), ns)  # noqa: S102
    exec(code, ns)  # noqa: S102
    return ns


def _run_check(exercise, ns, seed):
    from course.checks import dropout as checks
    if exercise == "dropout_forward":
        checks.check_dropout_forward(ns["dropout_forward"], seed=seed)
    elif exercise == "dropout_backward":
        checks.check_dropout_backward(ns["dropout_forward"], ns["dropout_backward"], seed=seed)
    else:
        checks.check_random_shift(ns["random_shift"], seed=seed)


@pytest.mark.parametrize("exercise", ["dropout_forward", "dropout_backward", "random_shift"])
def test_hidden_checks_accept_the_reference_for_many_seeds(exercise):
    import nnlab.dropout as ref
    ns = {"dropout_forward": ref.dropout_forward, "dropout_backward": ref.dropout_backward,
          "random_shift": ref.random_shift}
    for seed in range(25):
        _run_check(exercise, ns, seed)


def _catalog():
    from tests.course.catalogs import catalog_04
    return catalog_04


@pytest.mark.parametrize("index", range(len(_catalog().CORRECT)))
def test_hidden_checks_accept_correct_alternatives_for_many_seeds(index):
    exercise, code = _catalog().CORRECT[index]
    ns = _notebook_functions(code)
    for seed in range(8):
        for name in exercise.split("+"):
            _run_check(name, ns, seed)


@pytest.mark.parametrize("index", range(len(_catalog().MISTAKES)))
def test_hidden_checks_reject_every_mistake_for_several_seeds(index):
    from course.testing import Mistake
    exercise, label, code, phrase = _catalog().MISTAKES[index]
    for seed in range(4):
        ns = _notebook_functions(code)
        messages = []
        for name in exercise.split("+"):
            try:
                _run_check(name, ns, seed)
            except Mistake as exc:
                messages.append(str(exc))
        assert any(phrase in m for m in messages), (label, seed, messages)
