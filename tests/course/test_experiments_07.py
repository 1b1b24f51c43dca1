"""What notebook 07 says about its experiments holds, checked on the references.

The notebook's runs are small already (8x8 images, 100 Adam steps each); these are the same runs, on fewer
sample sizes. The assertions use margins rather than the printed digits.
"""

import pytest

from nnlab import transfer as T
from nnlab.experiments import transfer as exp

FNS = {name: getattr(T, name) for name in T.__all__}


@pytest.fixture(scope="module")
def curves():
    exp.setup_torch(threads=1)
    return exp.accuracy_vs_samples(FNS, sizes=(5, None), strategies=exp.STRATEGIES + (exp.CONTROL,))


def test_target_tasks_are_the_digits_5_to_9_plain_and_negative_with_noise():
    similar, different = exp.target_task("similar"), exp.target_task("different")
    assert len(similar["y_train"]) == len(different["y_train"]) > 600 and len(similar["y_test"]) > 250
    assert set(similar["y_train"].tolist()) == {0, 1, 2, 3, 4}
    assert similar["X_train"].mean() < 0.35 < 0.5 < different["X_train"].mean()  # dark digits on white
    with pytest.raises(ValueError, match="similar"):
        exp.target_task("other")


def test_from_scratch_wins_or_ties_in_all_four_scenarios(curves):
    # "training from scratch wins or ties in all four scenarios"
    for kind in ("similar", "different"):
        for i in (0, 1):
            best_transfer = max(curves[kind][s][i] for s in exp.STRATEGIES[1:])
            assert curves[kind]["scratch"][i] >= best_transfer - 0.01, (kind, i)
    assert curves["similar"]["scratch"][0] > curves["similar"]["fine-tune all"][0] + 0.01  # 94.4% vs 91.4%


def test_more_trained_layers_transfer_better_and_matter_more_on_the_different_task(curves):
    # "features + linear < fine-tune the top < fine-tune all", "gains 1.8 points on similar and 10.7 on different"
    for kind in ("similar", "different"):
        for i in (0, 1):
            c = curves[kind]
            assert c["features + linear"][i] < c["fine-tune top"][i] - 0.005 < c["fine-tune all"][i] + 0.005, (kind, i)
    gain = {k: curves[k]["fine-tune all"][1] - curves[k]["features + linear"][1] for k in curves}
    assert gain["different"] > gain["similar"] + 0.05 and gain["similar"] > 0


def test_random_features_beat_the_pretrained_ones_with_few_samples_only(curves):
    # "92.2% against 81.4% at 5 per class ... 96.3% against 90.0% with all"
    c = curves["similar"]
    assert c[exp.CONTROL][0] > c["features + linear"][0] + 0.05
    assert c["features + linear"][1] > c[exp.CONTROL][1] + 0.03


def test_a_large_backbone_rate_helps_the_target_and_overwrites_the_source():
    exp.setup_torch(threads=1)
    r = exp.learning_rates(FNS, backbone_lrs=(1e-4, 1e-2, 3e-2), scratch_lrs=(3e-3,))
    ft = r["finetune"]
    assert ft[1e-2]["acc"] > ft[1e-4]["acc"] + 0.03 and ft[1e-4]["acc"] > r["frozen"]["acc"]
    assert ft[1e-4]["drift"] < 0.05 < ft[1e-2]["drift"] < 1 < ft[3e-2]["drift"]
    assert ft[1e-4]["source_acc"] > 0.99 and r["pretrained_source_acc"] > 0.99
    assert ft[1e-2]["source_acc"] < 0.9 and ft[3e-2]["source_acc"] < 0.6
    # "the best backbone rate is not smaller than the best rate from scratch"
    assert ft[1e-2]["acc"] >= r["scratch"][3e-3] - 0.01
