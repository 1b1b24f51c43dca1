"""The references of notebook 07 against PyTorch's own behaviour: frozen parameters do not move, the new head
is used by forward, features equal eval-mode features, the groups work in torch.optim, and an epoch equals the
plain training loop with the sample-weighted mean loss."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nnlab import transfer as T
from nnlab.zoo import SmallCNN, load_pretrained


def test_freeze_stops_every_parameter_and_only_those_of_the_module():
    model = load_pretrained()
    assert T.freeze(model.features) is model.features
    assert not any(p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model.train()
    nn.functional.cross_entropy(model(torch.rand(8, 1, 8, 8)), torch.arange(8) % 5).backward()
    opt.step()
    after = model.state_dict()
    for name, p in model.features.named_parameters():
        assert torch.equal(before[f"features.{name}"], after[f"features.{name}"]), name
        assert p.grad is None
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_replace_head_keeps_dtype_and_is_used_by_forward(dtype):
    model = T.freeze(SmallCNN(channels=(4, 8, 6)).to(dtype))
    assert T.replace_head(model, 7) is model
    head = model.classifier
    assert (head.in_features, head.out_features, head.weight.dtype) == (24, 7, dtype)
    assert head.weight.requires_grad and head.bias.requires_grad
    x = torch.rand(3, 1, 8, 8, dtype=dtype)
    torch.testing.assert_close(model(x), head(model.features(x)))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 70), batch_size=st.integers(1, 80), training=st.booleans())
def test_extract_features_equals_eval_features_in_batches(n, batch_size, training):
    model = SmallCNN(channels=(3, 4, 5)).train(training)
    X = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        expected = copy.deepcopy(model).eval().features(X)
    sizes = []
    hook = model.features.register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
    out = T.extract_features(model, X, batch_size=batch_size)
    hook.remove()
    assert model.training == training and not out.requires_grad
    assert max(sizes) <= batch_size and sum(sizes) == n
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_param_groups_work_in_torch_optim_with_their_rates():
    model = load_pretrained()
    T.freeze(model.features[0])
    groups = T.param_groups(model, 1e-3, 0.1)
    opt = torch.optim.SGD(groups)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 0.1]
    listed = [p for g in groups for p in g["params"]]
    assert len(listed) == len({id(p) for p in listed}) == sum(p.requires_grad for p in model.parameters())
    T.freeze(model.features)
    assert [g["lr"] for g in T.param_groups(model, 1e-3, 0.1)] == [0.1]  # an empty group is left out


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 40), batch_size=st.integers(2, 16), momentum=st.sampled_from([0.0, 0.9]))
def test_train_epoch_equals_the_plain_loop_and_weights_by_batch_size(n, batch_size, momentum):
    if n % batch_size == 1:  # batch norm cannot train on a batch of one
        n += 1
    torch.manual_seed(n)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    gold = copy.deepcopy(model)
    X, y = torch.randn(n, 3), torch.arange(n) % 2
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    model.eval()
    loss = T.train_epoch(model, loader, torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum), loss_fn)
    opt, total = torch.optim.SGD(gold.parameters(), lr=0.1, momentum=momentum), 0.0
    for xb, yb in loader:
        opt.zero_grad()
        batch = loss_fn(gold(xb), yb)
        batch.backward()
        opt.step()
        total += batch.item() * len(xb)
    assert isinstance(loss, float) and model.training
    assert loss == pytest.approx(total / n, rel=1e-6)
    for p, q in zip(model.parameters(), gold.parameters()):
        torch.testing.assert_close(p, q)
