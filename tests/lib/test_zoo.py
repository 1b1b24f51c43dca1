"""The model zoo: the committed checkpoint loads safely, reproduces its recorded accuracy, and the pretraining
script reproduces the checkpoint."""

import zipfile

import pytest
import torch
from torch import nn

from nnlab import zoo
from nnlab.zoo import pretrain

# A fresh run of the pretraining script reaches the committed checkpoint's source test accuracy within this
# (absolute) tolerance: 2 of the 270 test images. On the machine that made the checkpoint it is exact.
ACCURACY_TOLERANCE = 2 / 270


def test_checkpoint_is_small_and_loads_with_weights_only():
    assert zoo.CHECKPOINT.stat().st_size < 200_000
    ckpt = torch.load(zoo.CHECKPOINT, map_location="cpu", weights_only=True)
    assert {"state_dict", "channels", "num_classes", "source_test_acc", "seed"} <= set(ckpt)
    assert ckpt["num_classes"] == 5 and ckpt["source_classes"] == [0, 1, 2, 3, 4]
    assert zipfile.is_zipfile(zoo.CHECKPOINT)  # torch's zip format, no legacy pickle


def test_pretrained_model_has_a_backbone_and_a_linear_head():
    model = zoo.load_pretrained()
    assert not model.training and all(p.requires_grad for p in model.parameters())
    assert isinstance(model.classifier, nn.Linear) and model.classifier.in_features == 128
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        features = model.features(x)
        assert features.shape == (3, 128)
        torch.testing.assert_close(model(x), model.classifier(features))


def test_checkpoint_reproduces_its_recorded_source_accuracy():
    ckpt = zoo.load_checkpoint()
    data = zoo.digits_images(zoo.SOURCE_CLASSES, seed=ckpt["seed"])
    assert len(data["y_test"]) == 270 and set(data["y_test"].tolist()) == {0, 1, 2, 3, 4}
    acc = zoo.accuracy(zoo.load_pretrained(), data["X_test"], data["y_test"])
    assert acc == pytest.approx(ckpt["source_test_acc"], abs=1e-12)
    assert acc > 0.97


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nnlab.zoo.pretrain"):
        zoo.load_pretrained(tmp_path / "none.pt")


def test_random_shift_moves_images_by_at_most_one_pixel():
    X = torch.zeros(50, 1, 8, 8)
    X[:, 0, 3, 4] = 1.0
    shifted = zoo.random_shift(X, torch.Generator().manual_seed(0))
    assert shifted.shape == X.shape
    rows, cols = torch.nonzero(shifted[:, 0])[:, 1], torch.nonzero(shifted[:, 0])[:, 2]
    assert shifted.sum() == 50 and set(rows.tolist()) <= {2, 3, 4} and set(cols.tolist()) <= {3, 4, 5}
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 3


@pytest.mark.slow
def test_pretraining_script_reproduces_the_checkpoint(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "cnn.pt"
    assert pretrain.main(["--out", str(out)]) == 0
    fresh, committed = torch.load(out, weights_only=True), zoo.load_checkpoint()
    assert abs(fresh["source_test_acc"] - committed["source_test_acc"]) <= ACCURACY_TOLERANCE
    model = zoo.load_pretrained(out)
    data = zoo.digits_images()
    assert zoo.accuracy(model, data["X_test"], data["y_test"]) == pytest.approx(fresh["source_test_acc"])
