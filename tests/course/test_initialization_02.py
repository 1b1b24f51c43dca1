"""Notebook 02's checks beyond its mistake catalog: the exercises' signatures, and statistical checks that
accept every sample a correct answer may draw."""

import pytest

from tests.conftest import ROOT

NB = ROOT / "source" / "02_initialization" / "02_initialization.ipynb"


def test_notebook_02_has_the_catalog_exercises_with_their_signatures():
    from course.notebooks import grade_id, is_solution, read_notebook

    nb = read_notebook(NB)
    assert [grade_id(c) for c in nb.cells if is_solution(c)] == ["zeros_init", "random_init", "xavier_init",
                                                                    "he_init", "init_params"]
    text = "\n".join(c.source for c in nb.cells if is_solution(c))
    for signature in ["zeros_init(fan_in, fan_out, rng)", "random_init(fan_in, fan_out, rng, scale=0.01)",
                      "xavier_init(fan_in, fan_out, rng)", "he_init(fan_in, fan_out, rng)",
                      "init_params(layer_sizes, init_fn, rng)"]:
        assert f"def {signature}:" in text, signature


@pytest.mark.parametrize("skip", range(12))
def test_statistical_checks_accept_other_samples_of_a_correct_answer(skip):
    # A correct answer that consumes the rng differently draws another sample: the tolerances must hold for it too.
    import numpy as np

    from course.checks import initialization as checks

    def burn(rng):
        rng.standard_normal(skip * 1000 + 1)

    def random_init(fan_in, fan_out, rng, scale=0.01):
        burn(rng)
        return scale * rng.standard_normal((fan_in, fan_out))

    def xavier_init(fan_in, fan_out, rng):
        burn(rng)
        return np.sqrt(2 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out))

    def he_init(fan_in, fan_out, rng):
        burn(rng)
        return np.sqrt(2 / fan_in) * rng.standard_normal((fan_in, fan_out))

    checks.check_random_init(random_init)
    checks.check_xavier_init(xavier_init)
    checks.check_he_init(he_init)
