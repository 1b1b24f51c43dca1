"""Hidden tests for notebook 07 (transfer learning, PyTorch): freeze, replace_head, extract_features,
param_groups, train_epoch.

Every check builds its own small models (the zoo's pretrained CNN, narrower CNNs, an MLP with batch norm,
float32 and float64), calls the student's function on them in this process, and compares what it did with
what the exercise text states: which parameters require gradients, the head's type and shape, the features'
values, the modes and batch norm's running statistics before and after, the optimizer groups, the
parameters after an epoch. In the trusted re-run (``course.trusted``) the student's function runs in another
process: the models, tensors, optimizers, loaders and losses given to it cross as descriptions
(``course.torch_wire``) and what it did to them comes back, so every check reads the same objects either way;
the one hook they use is ``torch_wire.CallLog``, which crosses. While a check runs in the student's kernel,
the library's references (``nnlab.transfer``) raise, however the student's code imported them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from course.testing import call, check_scalar, fail
from course.torch_wire import CallLog, register_headed
from nnlab import transfer as _references
from nnlab.zoo import SmallCNN, load_pretrained


# --------------------------------------------------------------------------- the library's references are off limits

def _refuse(*args: Any, **kwargs: Any) -> Any:  # runs with nnlab.transfer's globals: builtins only
    raise PermissionError("your function calls the course library's reference (nnlab.transfer), which holds the solutions; "
                  "graded code must be your own")


@contextlib.contextmanager
def _references_refused() -> Iterator[None]:
    """While a check runs, every reference of nnlab.transfer raises, however the student's code reached it
    (``from nnlab.transfer import freeze`` keeps the function object: its code is what is swapped)."""
    saved = {name: getattr(_references, name).__code__ for name in _references.__all__}
    try:
        for name in saved:
            getattr(_references, name).__code__ = _refuse.__code__
        yield
    finally:
        for name, code in saved.items():
            getattr(_references, name).__code__ = code


def _call(fn: Callable, *args: Any, name: str) -> Any:
    """``course.testing.call`` (not done yet, crashes and numerical warnings in words), for torch arguments."""
    return call(lambda: fn(*args), name=name)


def _guarded(check: Callable[[Callable], None]) -> Callable[[Callable], None]:
    @functools.wraps(check)
    def run(fn: Callable) -> None:
        with _references_refused():
            check(fn)
    return run


# --------------------------------------------------------------------------- models for the checks

class _Model(nn.Module):
    """``features`` then ``classifier``, like the zoo's CNN."""

    def __init__(self, features: nn.Module, classifier: nn.Linear):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


register_headed(_Model)  # it crosses to the student's process as a features-then-classifier model


def mlp(d_in: int = 12, hidden: int = 7, num_classes: int = 3, *, dropout: float = 0.0,
        dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    """A model whose features are ``Linear -> BatchNorm1d -> ReLU [-> Dropout]`` on ``(N, d_in)`` inputs."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    model = _Model(nn.Sequential(*layers), nn.Linear(hidden, num_classes)).to(dtype)
    _randomize_bn(model, seed)
    return model


def cnn(channels: tuple[int, int, int] = (4, 8, 6), num_classes: int = 5, *, pretrained: bool = False,
        dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    """The zoo's CNN (pretrained) or a narrower one with random weights and running statistics."""
    torch.manual_seed(seed)
    model = load_pretrained() if pretrained else SmallCNN(num_classes=num_classes, channels=channels)
    if not pretrained:
        _randomize_bn(model, seed)
    return model.to(dtype)


def _randomize_bn(model: nn.Module, seed: int) -> None:
    """Batch norm with running statistics and affine parameters far from the defaults (so eval != train)."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))


def images(n: int, *, dtype: torch.dtype = torch.float32, seed: int = 0, shape: tuple[int, ...] = (1, 8, 8)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=gen).to(dtype)


def _param_names(model: nn.Module) -> dict[int, str]:
    return {id(p): name for name, p in model.named_parameters()}


def _bn_param_names(model: nn.Module) -> set[str]:
    return {f"{mname}.{pname}" for mname, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for pname, _ in m.named_parameters(recurse=False)}


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """The names whose tensors differ at all between two state dicts."""
    return [k for k in a if k not in b or a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]


def _differ(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], rtol: float = 1e-5, atol: float = 1e-6) -> list[str]:
    """The names whose tensors differ by more than rounding (two correct epochs may sum in another order)."""
    return [k for k in a if k not in b or a[k].shape != b[k].shape
            or not torch.allclose(a[k].double(), b[k].double(), rtol=rtol, atol=atol)]


# --------------------------------------------------------------------------- freeze

def _freeze_cases() -> list[tuple[str, nn.Module]]:
    return [("the zoo's pretrained CNN", cnn(pretrained=True)),
            ("a narrow CNN", cnn((3, 5, 4), seed=1)),
            ("an MLP with batch norm (float64)", mlp(dtype=torch.float64, seed=2)),
            ("an MLP with dropout", mlp(9, 4, 2, dropout=0.5, seed=3)),
            ("a single nn.Linear (no submodules)", nn.Linear(4, 3)),
            ("a single nn.BatchNorm2d", nn.BatchNorm2d(3))]


@_guarded
def check_freeze(freeze: Callable) -> None:
    """Every parameter (weights, biases, batch norm) requires no gradient; in place; values untouched."""
    name = "freeze"
    for what, model in _freeze_cases():
        for training in (True, False):
            model.train(training)
            before = _state(model)
            out = _call(freeze, model, name=name)
            _check_frozen(model, out, what, name)
            changed = _same_state(before, _state(model))
            if changed:
                fail(f"{name} changed the values of {changed[0]!r} of {what}: freezing only stops training; "
                     "the weights and batch norm's statistics stay as they are.")
            for p in model.parameters():
                p.requires_grad_(True)
    # Freezing a part leaves the rest trainable.
    model = cnn(pretrained=True)
    _call(freeze, model.features[0], name=name)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if any(n.startswith("features.0.") for n in trainable):
        fail(f"after {name}(model.features[0]), parameters of model.features[0] still require gradients: "
             f"{[n for n in trainable if n.startswith('features.0.')][:3]}.")
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad and not n.startswith("features.0.")]
    if frozen:
        fail(f"{name}(model.features[0]) also froze {frozen[:3]}: freeze only the parameters of the module you are "
             "given (module.parameters()).")
    # A frozen model does not move when trained.
    model = cnn((3, 5, 4), seed=4)
    _call(freeze, model, name=name)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = list(model.parameters())
    if any(p.requires_grad for p in params):
        return
    x = images(6, seed=4)
    head = nn.Linear(model.classifier.out_features, 1)
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    head(model(x)).sum().backward()
    opt.step()
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    if moved:
        fail(f"after {name}, training still changed {moved[:3]}.")


def _check_frozen(model: nn.Module, out: Any, what: str, name: str) -> None:
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if out is not model:
        if isinstance(out, nn.Module) and not any(p.requires_grad for p in out.parameters()):
            fail(f"{name} returned a frozen copy of the module, but the module it was given is still trainable: "
                 "freeze the module in place (p.requires_grad_(False) on its own parameters) and return it.")
        if trainable:
            fail(f"{name} left {len(trainable)} parameters of {what} trainable, e.g. {trainable[:3]}. Set "
                 "requires_grad = False on every parameter in module.parameters().")
        fail(f"{name} should return the module it was given (frozen in place), but it returned "
             f"{type(out).__name__}.")
    if not trainable:
        return
    everything = [n for n, _ in model.named_parameters()]
    bn = _bn_param_names(model)
    if len(trainable) == len(everything):
        if not model.training:
            fail(f"{name} left every parameter of {what} trainable; it only switched the model to eval mode. "
                 "eval() changes how batch norm and dropout compute, not what the optimizer updates: set "
                 "requires_grad = False on every parameter.")
        if model.__dict__.get("requires_grad") is False:
            fail(f"{name} set an attribute `requires_grad` on the module itself, which torch ignores: set it on "
                 "each parameter (for p in module.parameters(): p.requires_grad = False).")
        fail(f"{name} left every parameter of {what} trainable (requires_grad is still True). Set "
             "requires_grad = False on every parameter in module.parameters().")
    if all(n.endswith("bias") for n in trainable):
        fail(f"{name} froze the weights but not the biases ({trainable[:3]}): a bias is a parameter too; freeze "
             "every parameter of module.parameters(), not only those named 'weight'.")
    if set(trainable) <= bn:
        fail(f"{name} left batch norm's scale and shift trainable ({trainable[:3]}): they are parameters like the "
             "conv and linear weights; freeze every parameter of module.parameters(), whatever its layer.")
    fail(f"{name} left {len(trainable)} of the {len(everything)} parameters of {what} trainable, e.g. "
         f"{trainable[:3]}: freeze every parameter in module.parameters() (it walks the submodules too).")


# --------------------------------------------------------------------------- replace_head

@_guarded
def check_replace_head(replace_head: Callable) -> None:
    """A new trainable nn.Linear(F, num_classes) with a bias, in model.classifier, old dtype; backbone untouched."""
    name = "replace_head"
    cases = [("the zoo's pretrained CNN", cnn(pretrained=True), 10, images(3)),
             ("the zoo's pretrained CNN, frozen", cnn(pretrained=True), 3, images(2)),
             ("a narrow CNN with 5 classes", cnn((3, 5, 7), seed=5), 5, images(4, seed=5)),
             ("an MLP (float64)", mlp(12, 9, 3, dtype=torch.float64, seed=6), 1, images(5, shape=(12,),
                                                                                        dtype=torch.float64)),
             ("an MLP with 7 classes", mlp(6, 11, 4, seed=7), 7, images(1, shape=(6,)))]
    for what, model, k, x in cases:
        if "frozen" in what:
            for p in model.parameters():
                p.requires_grad_(False)
        old = model.classifier
        F, old_k, dtype = old.in_features, old.out_features, old.weight.dtype
        flags = {n: p.requires_grad for n, p in model.features.named_parameters()}
        feats_before = _state(model.features)
        attrs = set(model._modules)
        desc = f"{name}(model, {k}) on {what} (F = {F} features, old head {old_k} classes)"
        out = _call(replace_head, model, k, name=name)
        new = model.classifier
        if out is not model:
            fail(f"{desc} should return the model it was given, with its new head, but it returned "
                 f"{type(out).__name__}.")
        added = [a for a in set(model._modules) - attrs]
        if new is old:
            if added:
                fail(f"{desc} stored the new head in a new attribute model.{added[0]}, so model.classifier and "
                     "forward() still use the old head: assign it to model.classifier.")
            if old.out_features == k and k != old_k and old.weight.shape[0] == old_k:
                fail(f"{desc} changed the old head's out_features attribute, but that is only a number: the "
                     f"weight keeps its {old_k} rows. Put a new nn.Linear in model.classifier.")
            fail(f"{desc} did not replace model.classifier: it is still the old head. Assign a new nn.Linear.")
        if not isinstance(new, nn.Linear):
            fail(f"{desc}: model.classifier is a {type(new).__name__}; the new head is one nn.Linear(F, num_classes).")
        if new.in_features != F:
            hint = (" It uses the old head's out_features; the new head reads the backbone's features, so its "
                    "in_features is the old head's in_features." if new.in_features == old_k else
                    " Do not hard-code it: read it from the old head (model.classifier.in_features).")
            fail(f"{desc}: the new head has in_features = {new.in_features}, but the backbone gives {F} features."
                 + hint)
        if new.out_features != k:
            fail(f"{desc}: the new head has out_features = {new.out_features}, but it should have num_classes = {k}.")
        if new.bias is None:
            fail(f"{desc}: the new head has no bias; nn.Linear(F, num_classes) has one (bias=True, the default).")
        if not (new.weight.requires_grad and new.bias.requires_grad):
            fail(f"{desc}: the new head is frozen (requires_grad is False); a new head must be trainable even when "
                 "the backbone is frozen.")
        if new.weight.dtype != dtype:
            fail(f"{desc}: the new head's weight is {new.weight.dtype}, but the model is {dtype}: create it with "
                 "the old head's dtype (nn.Linear(..., dtype=old.weight.dtype)).")
        changed = _same_state(feats_before, _state(model.features))
        now = {n: p.requires_grad for n, p in model.features.named_parameters()}
        if changed or now != flags:
            fail(f"{desc} changed the backbone ({'its values' if changed else 'which parameters are trainable'}): "
                 "replace_head only replaces model.classifier and leaves model.features as it is.")
        if new.weight.shape == old.weight.shape and torch.equal(new.weight, old.weight):
            fail(f"{desc}: the new head has the old head's weights; create a new nn.Linear.")
        model.eval()
        with torch.no_grad():
            y = model(x)
        if tuple(y.shape) != (len(x), k):
            fail(f"after {desc}, model(x) has shape {tuple(y.shape)}, but it should be ({len(x)}, {k}).")


# --------------------------------------------------------------------------- extract_features

def _expected_features(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        return ref.features(X)


def _train_mode_features(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    ref = copy.deepcopy(model).train()
    with torch.no_grad():
        torch.manual_seed(0)
        return ref.features(X)


@_guarded
def check_extract_features(extract_features: Callable) -> None:
    """model.features(X) in eval mode, no gradients, mode restored, batch_size used, X unchanged, (N, F)."""
    name = "extract_features"
    cases = [("the zoo's pretrained CNN", cnn(pretrained=True), images(37, seed=1), None),
             ("the zoo's pretrained CNN", cnn(pretrained=True), images(1, seed=2), 4),
             ("a narrow CNN", cnn((3, 5, 4), seed=3), images(300, seed=3), None),
             ("a narrow CNN", cnn((3, 5, 4), seed=3), images(23, seed=4), 5),
             ("a narrow CNN", cnn((3, 5, 4), seed=3), images(6, seed=4), 6),
             ("an MLP with batch norm and dropout (float64)", mlp(10, 6, 2, dropout=0.5, dtype=torch.float64, seed=5),
              images(17, shape=(10,), dtype=torch.float64, seed=5), 3),
             ("an MLP with batch norm", mlp(5, 8, 3, seed=6), images(600, shape=(5,), seed=6), 1000)]
    for what, model, X, batch_size in cases:
        for training in (True, False):
            model.train(training)
            _check_extract_case(extract_features, name, what, model, X, batch_size)


def _check_extract_case(extract_features: Callable, name: str, what: str, model: nn.Module, X: torch.Tensor,
                        batch_size: int | None) -> None:
    N = len(X)
    mode = "train" if model.training else "eval"
    desc = (f"{name}(model, X{'' if batch_size is None else f', batch_size={batch_size}'}) on {what} in {mode} "
            f"mode, X {tuple(X.shape)} {str(X.dtype).replace('torch.', '')}")
    expected = _expected_features(model, X)
    in_train = _train_mode_features(model, X)
    k = model.classifier.out_features
    modes, state = _modes(model), _state(model)
    flags = [p.requires_grad for p in model.parameters()]
    X_before = X.clone()
    recorder = CallLog.attach(model.features)  # the batch sizes model.features saw, and whether autograd was on
    try:
        torch.manual_seed(0)
        out = _call(extract_features, model, X, name=name) if batch_size is None else \
            _call(extract_features, model, X, batch_size, name=name)
    finally:
        recorder.remove()
    if not torch.equal(X, X_before):
        fail(f"{desc} changed X in place; leave the caller's images as they are.")
    if not isinstance(out, torch.Tensor):
        fail(f"{desc} should return a torch tensor (N, F), but it returned {type(out).__name__}"
             f"{' (keep it a tensor: no .numpy())' if isinstance(out, np.ndarray) else ''}.")
    if out.requires_grad or any(recorder.grad_modes):
        fail(f"{desc} computed the features with gradients (the result requires grad, or model.features ran "
             "with autograd on): wrap the forward passes in `with torch.no_grad():`. Gradients are not needed "
             "and cost memory.")
    if tuple(out.shape) != tuple(expected.shape):
        if tuple(out.shape) == (N, k) and k != expected.shape[1]:
            fail(f"{desc} returned shape {tuple(out.shape)}: the classifier's output (one score per class), not "
                 f"the backbone's features {tuple(expected.shape)}. Call model.features(X), not model(X).")
        fail(f"{desc} returned shape {tuple(out.shape)}, but model.features gives {tuple(expected.shape)} for "
             f"these {N} images (every image once, in order, no batch dropped).")
    if out.dtype != expected.dtype:
        fail(f"{desc} returned {out.dtype} features, but the model computes in {expected.dtype}.")
    after_modes = _modes(model)
    if after_modes != modes:
        now = "train" if model.training else "eval"
        fail(f"{desc} left the model in {now} mode: restore the mode it was in before "
             f"(was_training = model.training, then model.train(was_training)).")
    changed = _same_state(state, _state(model))
    if changed:
        stats = [c for c in changed if "running" in c or "num_batches" in c]
        if stats:
            fail(f"{desc} changed batch norm's running statistics ({stats[0]}): it ran model.features in train "
                 "mode. Switch to eval mode (model.eval()) before extracting.")
        fail(f"{desc} changed the model's parameters ({changed[0]}); extracting features must not train.")
    if [p.requires_grad for p in model.parameters()] != flags:
        fail(f"{desc} changed which parameters require gradients; use torch.no_grad() instead of freezing.")
    if not torch.allclose(out, expected, rtol=1e-4, atol=1e-5):
        if mode == "train" and torch.allclose(out, in_train, rtol=1e-4, atol=1e-5):
            fail(f"{desc} computed the features in train mode (batch norm with the batch's statistics, dropout "
                 "on): switch to eval mode first.")
        err = float((out - expected).abs().max())
        fail(f"{desc} gives features that differ from model.features(X) in eval mode (largest difference "
             f"{err:.3g}); the batches must be concatenated in order.")
    size = 256 if batch_size is None else batch_size
    seen = [s for s in recorder.sizes if s >= 0]
    if seen and max(seen) > size and N > size:
        fail(f"{desc} fed model.features a batch of {max(seen)} images: use batch_size (at most {size} images "
             "per forward pass), so that a large X fits in memory.")


# --------------------------------------------------------------------------- param_groups

@_guarded
def check_param_groups(param_groups: Callable) -> None:
    """Trainable parameters only, each once; model.features at backbone_lr, model.classifier at head_lr."""
    name = "param_groups"
    cases = [("nothing frozen", (), 1e-4, 1e-2),
             ("the first two blocks of model.features frozen", (0, 1), 3e-4, 0.1),
             ("all of model.features frozen", (0, 1, 2), 0.5, 0.02),
             ("the first block frozen, equal rates", (0,), 1e-3, 1e-3)]
    for what, frozen_blocks, blr, hlr in cases:
        model = cnn(pretrained=True)
        for b in frozen_blocks:
            for p in model.features[b].parameters():
                p.requires_grad_(False)
        if len(frozen_blocks) == 3:
            for p in model.features.parameters():
                p.requires_grad_(False)
        _check_groups(param_groups, name, model, blr, hlr, f"{name}(model, backbone_lr={blr:g}, head_lr={hlr:g}) "
                      f"on the zoo's CNN with {what}")
    model = mlp(8, 5, 4, seed=9)
    _check_groups(param_groups, name, model, 0.03, 0.3, f"{name}(model, 0.03, 0.3) on an MLP with batch norm")


def _check_groups(param_groups: Callable, name: str, model: nn.Module, blr: float, hlr: float, desc: str) -> None:
    flags = [p.requires_grad for p in model.parameters()]
    groups = _call(param_groups, model, blr, hlr, name=name)
    if isinstance(groups, dict):
        fail(f"{desc} returned one dict; return a list of dicts, one per parameter group.")
    if not isinstance(groups, (list, tuple)):
        fail(f"{desc} should return a list of dicts, but it returned {type(groups).__name__}.")
    names = _param_names(model)
    backbone = {id(p) for p in model.features.parameters()}
    head = {id(p) for p in model.classifier.parameters()}
    seen: dict[int, float] = {}
    duplicates, frozen, foreign = [], [], []
    for g in groups:
        if not isinstance(g, dict) or "params" not in g:
            fail(f"{desc}: every group is a dict with the keys 'params' and 'lr', but one is "
                 f"{type(g).__name__}{'' if not isinstance(g, dict) else ' without params'}.")
        if "lr" not in g:
            fail(f"{desc}: a group has no 'lr'; give each group its own learning rate.")
        params = g["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        g["params"] = params  # a generator is consumed once: keep the list for the optimizer below
        for p in params:
            if not isinstance(p, torch.Tensor):
                fail(f"{desc}: a group's 'params' holds a {type(p).__name__}; it holds the parameters themselves "
                     "(tensors from module.parameters()), not their names.")
            if id(p) not in names:
                foreign.append(p)
            elif id(p) in seen:
                duplicates.append(names[id(p)])
            elif not p.requires_grad:
                frozen.append(names[id(p)])
            seen.setdefault(id(p), g["lr"])
    if foreign:
        fail(f"{desc}: the groups hold tensors that are not parameters of the model.")
    if duplicates:
        fail(f"{desc} lists a parameter twice ({duplicates[0]}), e.g. in the backbone group and again in "
             "another one: every parameter belongs to exactly one group (torch.optim refuses duplicates).")
    if frozen:
        fail(f"{desc} includes frozen parameters ({frozen[:2]}, requires_grad False): keep only the trainable ones "
             "(if p.requires_grad).")
    missing = [names[id(p)] for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        fail(f"{desc} leaves trainable parameters out of every group ({missing[:3]}), so they would never be "
             "trained.")
    lr_back = {seen[i] for i in backbone if i in seen}
    lr_head = {seen[i] for i in head if i in seen}
    if lr_back == {hlr} and lr_head == {blr} and blr != hlr:
        fail(f"{desc} swapped the learning rates: the backbone (model.features) gets backbone_lr, the head "
             "(model.classifier) head_lr.")
    if lr_back and lr_back != {blr}:
        fail(f"{desc} gives the backbone (model.features) the learning rate {sorted(lr_back)[0]:g} instead of "
             f"backbone_lr = {blr:g}.")
    if lr_head and lr_head != {hlr}:
        fail(f"{desc} gives the head (model.classifier) the learning rate {sorted(lr_head)[0]:g} instead of "
             f"head_lr = {hlr:g}.")
    if [p.requires_grad for p in model.parameters()] != flags:
        fail(f"{desc} changed which parameters are trainable; it only reads requires_grad.")
    try:
        optimizer = torch.optim.SGD(groups, lr=12345.0)
    except Exception as exc:  # noqa: BLE001 - reported to the student as it is
        fail(f"{desc}: torch.optim.SGD(groups) refused the groups: {type(exc).__name__}: {exc}")
    del optimizer


# --------------------------------------------------------------------------- train_epoch

def _Loader(X: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.utils.data.DataLoader:
    """A torch DataLoader over a TensorDataset, without shuffling (so two runs see the same batches)."""
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size, shuffle=False)


def _epoch_variants(model: nn.Module, loader: Any, make_opt: Callable, loss_fn: Callable) -> dict[str, Any]:
    """The right epoch, and the known-wrong ones, each on its own copy: params after, returned values."""
    out: dict[str, Any] = {}
    for variant in ("right", "no zero_grad", "eval mode", "zero_grad before step"):
        m = copy.deepcopy(model)
        opt = make_opt(m)
        m.train(variant != "eval mode")
        losses, sizes = [], []
        for xb, yb in loader:
            if variant != "no zero_grad":
                opt.zero_grad()
            loss = loss_fn(m(xb), yb)
            loss.backward()
            if variant == "zero_grad before step":
                opt.zero_grad()
            opt.step()
            losses.append(loss.item())
            sizes.append(len(xb))
        out[variant] = {"state": _state(m), "losses": losses, "sizes": sizes}
    return out


def _train_epoch_cases() -> list[tuple[str, nn.Module, Any, Callable, Callable]]:
    X1, y1 = images(27, seed=11), torch.randint(0, 5, (27,), generator=torch.Generator().manual_seed(11))
    X2 = images(22, shape=(6,), dtype=torch.float64, seed=12)
    y2 = torch.randint(0, 3, (22,), generator=torch.Generator().manual_seed(12))
    X3, y3 = images(10, shape=(4,), seed=13), torch.randint(0, 2, (10,), generator=torch.Generator().manual_seed(13))
    return [
        ("a narrow CNN, SGD with momentum, batches of 8 (the last one 3)", cnn((3, 5, 4), seed=11),
         _Loader(X1, y1, 8), lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), nn.CrossEntropyLoss()),
        ("an MLP with batch norm (float64), Adam, batches of 5 (the last one 2), label-smoothed loss",
         mlp(6, 7, 3, dtype=torch.float64, seed=12), _Loader(X2, y2, 5),
         lambda m: torch.optim.Adam(m.parameters(), lr=0.01), nn.CrossEntropyLoss(label_smoothing=0.2)),
        ("the zoo's CNN with a new head, SGD, one batch of 27", cnn(pretrained=True), _Loader(X1, y1, 27),
         lambda m: torch.optim.SGD(m.parameters(), lr=0.05), nn.CrossEntropyLoss()),
        ("an MLP, SGD, batches of 4 (the last one 2)", mlp(4, 5, 2, seed=13), _Loader(X3, y3, 4),
         lambda m: torch.optim.SGD(m.parameters(), lr=0.2), nn.CrossEntropyLoss()),
    ]


@_guarded
def check_train_epoch(train_epoch: Callable) -> None:
    """Train mode, zero_grad/forward/loss/backward/step per batch, the sample-weighted mean loss, over epochs."""
    name = "train_epoch"
    for what, model, loader, make_opt, loss_fn in _train_epoch_cases():
        optimizer = make_opt(model)
        reference, ref_opt = copy.deepcopy(model), None
        for epoch in range(2):
            model.eval()  # the epoch must switch to train mode itself
            desc = f"{name} on {what}, epoch {epoch + 1}"
            variants = _epoch_variants(reference if epoch else model, loader,
                                       (lambda m: _clone_optimizer(ref_opt, m)) if epoch else make_opt, loss_fn)
            got = _call(train_epoch, model, loader, optimizer, loss_fn, name=name)
            _check_epoch(got, model, variants, desc, name)
            if ref_opt is None:
                ref_opt = make_opt(reference)
            _step_reference(reference, ref_opt, loader, loss_fn)
            if _differ(_state(reference), _state(model)):
                fail(f"{desc}: the parameters after the epoch differ from those of a correct epoch "
                     "(is the optimizer you were given the one that steps?).")


def _clone_optimizer(optimizer: Any, model: nn.Module) -> Any:
    """An optimizer for ``model`` (a copy of the reference) in the same state as ``optimizer``."""
    clone = type(optimizer)(model.parameters(), **optimizer.defaults)
    clone.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return clone


def _step_reference(model: nn.Module, optimizer: Any, loader: Any, loss_fn: Callable) -> None:
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimizer.step()


def _check_epoch(got: Any, model: nn.Module, variants: dict, desc: str, name: str) -> None:
    if isinstance(got, torch.Tensor):
        fail(f"{desc} returned a tensor; return a Python float (loss.item()), which also lets the graph go.")
    value = check_scalar(got, what=f"the loss returned by {desc}")
    right = variants["right"]
    losses, sizes = np.array(right["losses"]), np.array(right["sizes"])
    expected = float(np.sum(losses * sizes) / np.sum(sizes))
    state = _state(model)
    if not model.training:
        fail(f"{desc}: the model is in eval mode after the epoch; train in train mode (model.train() at the "
             "start), so that batch norm and dropout behave as in training.")
    for variant, message in [
        ("no zero_grad", "never zeroes the gradients: call optimizer.zero_grad() before each backward(), or the "
                         "gradients of all earlier batches add up"),
        ("zero_grad before step", "zeroes the gradients between backward() and step(), so step() sees zero "
                                  "gradients: zero them before the forward pass (or before backward())"),
        ("eval mode", "trains in eval mode: call model.train() at the start of the epoch")]:
        if not _differ(variants[variant]["state"], state) and _differ(right["state"], state):
            fail(f"{desc} {message}.")
    changed = _differ(right["state"], state)
    if changed:
        fail(f"{desc}: the parameters after the epoch differ from those of a correct epoch ({changed[0]}). Every "
             "batch: optimizer.zero_grad(), forward, loss_fn, backward(), optimizer.step().")
    wrong = [(losses[-1], "returns the last batch's loss; return the average over all the epoch's samples"),
             (float(np.mean(losses)), "averages the batch losses without weighting them by the batch size; the "
                                      "last batch is smaller: weight each batch's mean loss by its number of "
                                      "samples and divide by the number of samples"),
             (float(np.sum(losses * sizes)), "returns the sum of the losses; divide by the number of samples"),
             (float(np.sum(losses)), "returns the sum of the batch losses; return the sample-weighted mean")]
    if not np.isclose(value, expected, rtol=1e-5, atol=1e-7):
        for w, message in wrong:
            if np.isclose(value, w, rtol=1e-5, atol=1e-7):
                fail(f"{desc} {message}. It returned {value:.6g}; a correct epoch returns {expected:.6g}.")
        fail(f"{desc} returned {value:.6g}, but the loss averaged over the epoch's samples is {expected:.6g}.")


# Named mistakes (course.mistakes): identifier -> a phrase of its message above.
MISTAKES = {
    "freeze:eval-only": "only switched the model to eval mode",
    "freeze:weights-not-biases": "not the biases",
    "freeze:batch-norm-left-trainable": "batch norm's scale and shift",
    "freeze:attribute-on-the-module": "set an attribute `requires_grad` on the module itself",
    "freeze:nothing-frozen": "requires_grad is still True",
    "freeze:frozen-copy": "returned a frozen copy",
    "freeze:no-return": "should return the module it was given",
    "freeze:calls-the-reference": "calls the course library's reference",
    "replace_head:in-features-from-out-features": "uses the old head's out_features",
    "replace_head:hard-coded-in-features": "Do not hard-code it",
    "replace_head:new-attribute": "new attribute",
    "replace_head:changes-out-features-only": "changed the old head's out_features attribute",
    "replace_head:wrong-dtype": "create it with the old head's dtype",
    "replace_head:not-a-linear": "the new head is one nn.Linear",
    "replace_head:no-bias": "has no bias",
    "extract_features:train-mode": "running statistics",
    "extract_features:with-gradients": "with gradients",
    "extract_features:mode-not-restored": "restore the mode",
    "extract_features:classifier-output": "the classifier's output",
    "extract_features:batch-size-ignored": "use batch_size",
    "extract_features:batch-dropped": "no batch dropped",
    "extract_features:not-a-tensor": "should return a torch tensor",
    "param_groups:frozen-included": "includes frozen parameters",
    "param_groups:duplicates": "lists a parameter twice",
    "param_groups:rates-swapped": "swapped the learning rates",
    "param_groups:wrong-backbone-rate": "instead of backbone_lr",
    "param_groups:names-not-parameters": "not their names",
    "param_groups:no-lr": "has no 'lr'",
    "train_epoch:no-zero-grad": "never zeroes the gradients",
    "train_epoch:zero-grad-before-step": "between backward() and step()",
    "train_epoch:eval-mode": "in eval mode after the epoch",
    "train_epoch:last-batch-loss": "returns the last batch's loss",
    "train_epoch:unweighted-mean": "without weighting them by the batch size",
    "train_epoch:sum-of-losses": "returns the sum of the losses",
    "train_epoch:returns-a-tensor": "returned a tensor",
    "train_epoch:wrong-parameters": "differ from those of a correct epoch",
    "train_epoch:calls-the-reference": "calls the course library's reference",
}
