"""The mistake catalog of notebook 07 (transfer learning): data read by tests/course/test_mistake_catalogs.py.

MISTAKES: (exercise, label, code, phrase) -- a wrong answer; `phrase` appears in the hidden test's message.
CORRECT: (exercise, code) -- a correct answer written differently from the reference ("a+b": code that
defines both). EXERCISES: every graded function, in notebook order.
"""

NOTEBOOK = "07_transfer_learning"

EXERCISES = ["freeze", "replace_head", "extract_features", "param_groups", "train_epoch"]

# (exercise, label, code, expected phrase in the hidden test's message)
MISTAKES = [
    ("freeze", "eval() only", """
def freeze(module):
    return module.eval()""", "only switched the model to eval mode"),
    ("freeze", "the weights, not the biases", """
def freeze(module):
    for name, p in module.named_parameters():
        if name.endswith("weight"):
            p.requires_grad = False
    return module""", "not the biases"),
    ("freeze", "conv and linear layers only, batch norm left trainable", """
def freeze(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            for p in m.parameters():
                p.requires_grad = False
    return module""", "batch norm's scale and shift"),
    ("freeze", "an attribute on the module", """
def freeze(module):
    module.requires_grad = False
    return module""", "set an attribute `requires_grad` on the module itself"),
    ("freeze", "the children's parameters only", """
def freeze(module):
    for child in module.children():
        child.requires_grad_(False)
    return module""", "requires_grad is still True"),
    ("freeze", "a frozen copy", """
def freeze(module):
    frozen = copy.deepcopy(module)
    for p in frozen.parameters():
        p.requires_grad = False
    return frozen""", "returned a frozen copy"),
    ("freeze", "no return", """
def freeze(module):
    for p in module.parameters():
        p.requires_grad = False""", "should return the module it was given"),
    ("freeze", "calls the library's reference", """
from nnlab.transfer import freeze as library_freeze

def freeze(module):
    return library_freeze(module)""", "calls the course library's reference"),
    ("train_epoch", "calls the library's reference through the module", """
import nnlab.transfer

def train_epoch(model, loader, optimizer, loss_fn):
    return nnlab.transfer.train_epoch(model, loader, optimizer, loss_fn)""", "calls the course library's reference"),
    ("replace_head", "in_features from the old head's out_features", """
def replace_head(model, num_classes):
    model.classifier = nn.Linear(model.classifier.out_features, num_classes, dtype=model.classifier.weight.dtype)
    return model""", "uses the old head's out_features"),
    ("replace_head", "hard-coded in_features", """
def replace_head(model, num_classes):
    model.classifier = nn.Linear(128, num_classes, dtype=model.classifier.weight.dtype)
    return model""", "Do not hard-code it"),
    ("replace_head", "a new attribute", """
def replace_head(model, num_classes):
    model.head = nn.Linear(model.classifier.in_features, num_classes, dtype=model.classifier.weight.dtype)
    return model""", "new attribute"),
    ("replace_head", "changes out_features only", """
def replace_head(model, num_classes):
    model.classifier.out_features = num_classes
    return model""", "changed the old head's out_features attribute"),
    ("replace_head", "float32 head on a float64 model", """
def replace_head(model, num_classes):
    model.classifier = nn.Linear(model.classifier.in_features, num_classes)
    return model""", "create it with the old head's dtype"),
    ("replace_head", "a Sequential head", """
def replace_head(model, num_classes):
    old = model.classifier
    model.classifier = nn.Sequential(nn.Linear(old.in_features, num_classes, dtype=old.weight.dtype))
    return model""", "the new head is one nn.Linear"),
    ("replace_head", "no bias", """
def replace_head(model, num_classes):
    old = model.classifier
    model.classifier = nn.Linear(old.in_features, num_classes, bias=False, dtype=old.weight.dtype)
    return model""", "has no bias"),
    ("extract_features", "train mode", """
def extract_features(model, X, batch_size=256):
    with torch.no_grad():
        return torch.cat([model.features(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])""",
     "running statistics"),
    ("extract_features", "with gradients", """
def extract_features(model, X, batch_size=256):
    was = model.training
    model.eval()
    out = torch.cat([model.features(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train(was)
    return out""", "with gradients"),
    ("extract_features", "gradients detached afterwards", """
def extract_features(model, X, batch_size=256):
    was = model.training
    model.eval()
    out = torch.cat([model.features(X[i:i + batch_size]).detach() for i in range(0, len(X), batch_size)])
    model.train(was)
    return out""", "with gradients"),
    ("extract_features", "mode not restored", """
def extract_features(model, X, batch_size=256):
    model.eval()
    with torch.no_grad():
        return torch.cat([model.features(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])""",
     "restore the mode"),
    ("extract_features", "always back to train mode", """
def extract_features(model, X, batch_size=256):
    model.eval()
    with torch.no_grad():
        out = torch.cat([model.features(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train()
    return out""", "restore the mode"),
    ("extract_features", "the classifier's output", """
def extract_features(model, X, batch_size=256):
    was = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train(was)
    return out""", "the classifier's output"),
    ("extract_features", "batch_size ignored", """
def extract_features(model, X, batch_size=256):
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model.features(X)
    model.train(was)
    return out""", "use batch_size"),
    ("extract_features", "the last, partial batch dropped", """
def extract_features(model, X, batch_size=256):
    was = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model.features(X[i:i + batch_size])
                         for i in range(0, max(len(X) - batch_size + 1, 1), batch_size)])
    model.train(was)
    return out""", "no batch dropped"),
    ("extract_features", "returns a NumPy array", """
def extract_features(model, X, batch_size=256):
    was = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model.features(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train(was)
    return out.numpy()""", "should return a torch tensor"),
    ("param_groups", "frozen parameters included", """
def param_groups(model, backbone_lr, head_lr):
    return [{"params": list(model.features.parameters()), "lr": backbone_lr},
            {"params": list(model.classifier.parameters()), "lr": head_lr}]""", "includes frozen parameters"),
    ("param_groups", "the head listed twice", """
def param_groups(model, backbone_lr, head_lr):
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": backbone_lr},
            {"params": [p for p in model.classifier.parameters() if p.requires_grad], "lr": head_lr}]""",
     "lists a parameter twice"),
    ("param_groups", "learning rates swapped", """
def param_groups(model, backbone_lr, head_lr):
    return [{"params": [p for p in model.features.parameters() if p.requires_grad], "lr": head_lr},
            {"params": [p for p in model.classifier.parameters() if p.requires_grad], "lr": backbone_lr}]""",
     "swapped the learning rates"),
    ("param_groups", "one group at the head's rate", """
def param_groups(model, backbone_lr, head_lr):
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": head_lr}]""",
     "instead of backbone_lr"),
    ("param_groups", "names instead of parameters", """
def param_groups(model, backbone_lr, head_lr):
    return [{"params": [(n, p) for n, p in model.features.named_parameters() if p.requires_grad], "lr": backbone_lr},
            {"params": [(n, p) for n, p in model.classifier.named_parameters() if p.requires_grad], "lr": head_lr}]""",
     "not their names"),
    ("param_groups", "no lr for the backbone", """
def param_groups(model, backbone_lr, head_lr):
    return [{"params": [p for p in model.features.parameters() if p.requires_grad]},
            {"params": [p for p in model.classifier.parameters() if p.requires_grad], "lr": head_lr}]""",
     "has no 'lr'"),
    ("train_epoch", "no zero_grad", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total, n = 0.0, 0
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        n += len(xb)
    return total / n""", "never zeroes the gradients"),
    ("train_epoch", "zero_grad between backward and step", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total, n = 0.0, 0
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        total += loss.item() * len(xb)
        n += len(xb)
    return total / n""", "between backward() and step()"),
    ("train_epoch", "eval mode (no model.train())", """
def train_epoch(model, loader, optimizer, loss_fn):
    total, n = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        n += len(xb)
    return total / n""", "in eval mode after the epoch"),
    ("train_epoch", "the last batch's loss", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    return loss.item()""", "returns the last batch's loss"),
    ("train_epoch", "the mean of the batch losses", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    losses = []
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)""", "without weighting them by the batch size"),
    ("train_epoch", "the sum of the losses", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
    return total""", "returns the sum of the losses"),
    ("train_epoch", "returns a tensor", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total, n = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total = total + loss * len(xb)
        n += len(xb)
    return total / n""", "returned a tensor"),
    ("train_epoch", "cross-entropy instead of loss_fn", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total, n = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        n += len(xb)
    return total / n""", "differ from those of a correct epoch"),
    ("train_epoch", "a new optimizer", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    total, n = 0.0, 0
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        total += loss.item() * len(xb)
        n += len(xb)
    return total / n""", "differ from those of a correct epoch"),
]

CORRECT = [
    ("freeze", """
def freeze(module):
    module.requires_grad_(False)
    return module"""),
    ("freeze", """
def freeze(module):
    module.eval()  # not required, not graded
    for _, parameter in module.named_parameters():
        parameter.requires_grad = False
    return module"""),
    ("freeze", """
def freeze(module):
    for m in module.modules():
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
    return module"""),
    ("replace_head", """
def replace_head(model, num_classes):
    w = model.classifier.weight
    head = nn.Linear(w.shape[1], num_classes).to(device=w.device, dtype=w.dtype)
    setattr(model, "classifier", head)
    return model"""),
    ("replace_head", """
def replace_head(model, num_classes):
    old = model.classifier
    new = nn.Linear(old.in_features, num_classes, bias=True, dtype=next(old.parameters()).dtype)
    new.requires_grad_(True)
    model.classifier = new
    return model"""),
    ("extract_features", """
def extract_features(model, X, batch_size=256):
    mode = model.training
    model.eval()
    try:
        with torch.inference_mode():
            feats = [model.features(chunk) for chunk in torch.split(X, batch_size)]
        return torch.cat(feats, dim=0)
    finally:
        model.train(mode)"""),
    ("extract_features", """
@torch.no_grad()
def _features(backbone, X, batch_size):
    out = None
    start = 0
    while start < X.shape[0]:
        part = backbone(X[start:start + batch_size])
        out = part if out is None else torch.cat([out, part])
        start += batch_size
    return out

def extract_features(model, X, batch_size=256):
    was_training = model.training
    model.train(False)
    features = _features(model.features, X, batch_size)
    if was_training:
        model.train()
    return features"""),
    ("param_groups", """
def param_groups(model, backbone_lr, head_lr):
    backbone = [p for n, p in model.named_parameters() if n.startswith("features.") and p.requires_grad]
    head = [p for n, p in model.named_parameters() if n.startswith("classifier.") and p.requires_grad]
    return [dict(params=backbone, lr=backbone_lr), dict(params=head, lr=head_lr)]"""),
    ("param_groups", """
def param_groups(model, backbone_lr, head_lr):
    groups = []
    for lr, part in ((head_lr, model.classifier), (backbone_lr, model.features)):
        trainable = list(filter(lambda p: p.requires_grad, part.parameters()))
        if len(trainable) > 0:
            groups.append({"lr": lr, "params": trainable, "weight_decay": 0.0})
    return groups"""),
    ("param_groups", """
def param_groups(model, backbone_lr, head_lr):
    groups = []
    for part, lr in ((model.features, backbone_lr), (model.classifier, head_lr)):
        if any(p.requires_grad for p in part.parameters()):
            groups.append({"params": filter(lambda p: p.requires_grad, part.parameters()), "lr": lr})
    return groups"""),
    ("train_epoch", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train()
    total = torch.zeros(())
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        model.zero_grad()
        total += loss.detach() * xb.shape[0]
    return float(total) / len(loader.dataset)"""),
    ("train_epoch", """
def train_epoch(model, loader, optimizer, loss_fn):
    model.train(True)
    losses, sizes = [], []
    for batch in loader:
        inputs, targets = batch
        optimizer.zero_grad(set_to_none=False)
        scores = model(inputs)
        loss = loss_fn(scores, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(targets.size(0))
    return float(np.average(losses, weights=sizes))"""),
]
