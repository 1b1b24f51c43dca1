"""PyTorch objects across the trusted re-run's protocol (course.remote + course.torch_wire), in seconds.

The grader's end (strict) and a student's end are linked by two pipes in this process, the student's end
serving in a thread: what a call does to the model, its optimizer or a returned group comes back as a call
in one process would leave it (identity included), and whatever the student's end sends is checked.
"""

from __future__ import annotations

import copy
import os
import struct
import threading

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course import remote, torch_wire
from course.torch_wire import CallLog, Malformed
from nnlab.zoo import load_pretrained


def linked(fn):
    """A proxy, on a strict grader's end, of ``fn`` served by a student's end in a thread."""
    a_r, b_w = os.pipe()
    b_r, a_w = os.pipe()
    grader = remote.Peer(os.fdopen(a_r, "rb", buffering=0), os.fdopen(a_w, "wb", buffering=0), strict=True)
    student = remote.Peer(os.fdopen(b_r, "rb", buffering=0), os.fdopen(b_w, "wb", buffering=0))
    token, kind, name = student.export(fn)
    threading.Thread(target=student.serve_forever, daemon=True).start()
    return grader.proxy(token, kind, name)


def freeze(module):
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def test_a_model_changed_in_place_comes_back_as_the_callers_own():
    model = load_pretrained().train()
    features, head = model.features, model.classifier
    before = copy.deepcopy(model.state_dict())
    out = linked(freeze)(model)
    assert out is model and model.features is features and model.classifier is head
    assert not any(p.requires_grad for p in model.parameters()) and model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    linked(lambda m: m.eval())(model.features[1])  # a part: the model it belongs to sees the change
    assert model.training and not model.features[1].training and model.features[2].training


def test_a_new_head_a_new_attribute_and_a_changed_number_come_back():
    model = load_pretrained()
    features, old = model.features, model.classifier

    def replace(m, k):
        m.classifier = nn.Linear(m.classifier.in_features, k, dtype=torch.float64)
        m.note = "replaced"
        m.features[0][0].out_channels = 99  # only a number: the weights keep their 16 filters
        return m

    assert linked(replace)(model, 3) is model
    assert model.features is features and model.classifier is not old and type(model.classifier) is nn.Linear
    assert model.classifier.weight.shape == (3, 128) and model.classifier.weight.dtype == torch.float64
    assert model.classifier.weight.requires_grad and model.__dict__["note"] == "replaced"
    assert model.features[0][0].out_channels == 99 and model.features[0][0].weight.shape[0] == 16


def test_an_epoch_steps_the_callers_parameters_and_optimizer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    reference = copy.deepcopy(model)
    loader = DataLoader(TensorDataset(torch.randn(10, 4), torch.tensor([0, 1, 2] * 3 + [0])), batch_size=4)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def epoch(m, batches, opt, loss):
        m.train()
        total = 0.0
        for xb, yb in batches:
            opt.zero_grad()
            value = loss(m(xb), yb)
            value.backward()
            opt.step()
            total += value.item() * len(xb)
        return total / len(batches.dataset)

    remote_epoch = linked(epoch)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
    for _ in range(2):  # the second epoch needs the momentum the first one left in the caller's optimizer
        got, expected = remote_epoch(model, loader, opt, loss_fn), epoch(reference, loader, ref_opt, loss_fn)
        assert got == pytest.approx(expected, rel=1e-6)
        for p, q in zip(model.parameters(), reference.parameters()):
            assert torch.allclose(p, q, rtol=1e-6, atol=1e-7)
        assert all(torch.allclose(opt.state[p]["momentum_buffer"], ref_opt.state[q]["momentum_buffer"])
                   for p, q in zip(model.parameters(), reference.parameters()))
    assert torch.equal(model[1].running_mean, reference[1].running_mean)


def test_returned_groups_hold_the_callers_parameters_even_from_an_iterator():
    model = load_pretrained()
    model.features[0].requires_grad_(False)

    def groups(m, blr, hlr):
        return [{"params": filter(lambda p: p.requires_grad, m.features.parameters()), "lr": blr},
                {"params": list(m.classifier.parameters()), "lr": hlr}]

    got = linked(groups)(model, 1e-4, 1e-2)
    mine = {id(p) for p in model.parameters()}
    listed = [p for g in got for p in g["params"]]
    assert all(id(p) in mine for p in listed) and len(listed) == len(set(map(id, listed))) == 14 - 4
    torch.optim.SGD(got)


def test_a_call_log_sees_the_batches_of_the_other_side():
    model = load_pretrained()
    log = CallLog.attach(model.features)

    def extract(m, X, batch_size):
        with torch.no_grad():
            return torch.cat([m.features(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])

    out = linked(extract)(model, torch.rand(10, 1, 8, 8), 4)
    log.remove()
    assert log.sizes == [4, 4, 2] and log.grad_modes == [False] * 3
    assert type(out) is torch.Tensor and out.shape == (10, 128) and not out.requires_grad


def test_what_cannot_cross_is_refused_with_a_reason():
    class Head(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="cannot be passed between the grader and your code"):
        linked(lambda m: Head())(nn.Linear(2, 2))  # the student's own module class
    hooked = nn.Linear(2, 2)
    hooked.register_forward_hook(lambda *a: None)
    for obj in (nn.LSTM(2, 2), hooked, DataLoader(TensorDataset(torch.zeros(4)), shuffle=True)):
        with pytest.raises(remote.CannotCross):
            linked(lambda *a: None)(obj)


LINEAR = {"type": "Linear", "training": True, "attrs": {"in_features": 2, "out_features": 2}, "extra": {},
          "params": {}, "buffers": {}, "modules": {}, "hooks": []}


@pytest.mark.parametrize("change, phrase", [
    ({"type": "LSTM"}, "closed set"),
    ({"attrs": {"in_features": 2}}, "wrong attributes"),
    ({"extra": {"forward": 1}}, "malformed attributes"),  # a plain attribute over a method
    ({"params": {"weight": torch.zeros(2, 2)}}, "wrong kind"),  # a plain tensor as a parameter
    ({"params": {"a.b": None}}, "name"),
    ({"modules": {"classifier": None}, "extra": {"classifier": 3}}, "hides"),
    ({"training": 1}, "not a bool"),
])
def test_the_grader_checks_every_module_it_is_sent(change, phrase):
    with pytest.raises(Malformed, match=phrase):
        torch_wire.build("module", {**LINEAR, **change}, strict=True)


def test_the_grader_never_builds_an_optimizer_and_checks_the_one_written_back():
    p = nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.1)
    state = {"type": "SGD", "defaults": {}, "groups": [{"params": [nn.Parameter(torch.zeros(2))], "lr": 0.1}],
             "state": []}
    sent = torch_wire.build("optimizer", state, strict=True)
    assert type(sent) is torch_wire.OptimizerState
    with pytest.raises(Malformed, match="other parameters"):
        torch_wire.apply(opt, sent, "optimizer")
    fused = torch_wire.build("optimizer", {**state, "groups": [{"params": [p], "lr": 0.1, "foreach": True}]}, True)
    with pytest.raises(Malformed, match="does not run"):
        torch_wire.apply(opt, fused, "optimizer")
    with pytest.raises(Malformed, match="integers that requires grad"):
        torch_wire.build("tensor", {"data": torch.zeros(2, dtype=torch.int64).numpy(), "requires_grad": True,
                                    "parameter": False, "grad": None}, strict=True)


def test_a_malformed_torch_object_is_a_protocol_violation():
    r, w = os.pipe()
    _, w_out = os.pipe()
    peer = remote.Peer(os.fdopen(r, "rb", buffering=0), os.fdopen(w_out, "wb", buffering=0), strict=True)
    enc = remote._Encoder(remote.Peer(os.fdopen(os.dup(r), "rb", buffering=0),
                                      os.fdopen(os.dup(w_out), "wb", buffering=0)))
    enc.put(b"O")
    enc.text(b"s", "module")
    enc.value({**LINEAR, "type": "Evil"})
    body = enc.message()
    os.write(w, struct.pack(">Q", len(body)) + body)
    with pytest.raises(remote.ProtocolError, match="malformed torch object"):
        peer._receive()
    back = b"Q" + struct.pack(">I", 0)
    os.write(w, struct.pack(">Q", len(back)) + back)
    with pytest.raises(remote.ProtocolError):
        peer._receive()
