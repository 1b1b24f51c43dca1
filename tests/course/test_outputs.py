"""course.outputs: a fresh build read against the committed one, as a reader compares them."""

import base64
import io

import matplotlib
import nbformat
import pytest

from course.outputs import differences, image_difference, numbers_match, text_difference

matplotlib.use("Agg")


@pytest.mark.parametrize("a, b", [("0.760", "0.761"), ("0.1234", "0.1233"), ("1.5e-03", "1.6e-03"), ("18", "18"),
                                  ("-0.25", "-0.26"), ("3.0", "3.0")])
def test_numbers_within_one_unit_of_their_last_place_match(a, b):
    assert numbers_match(a, b)


@pytest.mark.parametrize("a, b", [("0.760", "0.877"), ("0.760", "0.762"), ("17", "16"), ("6.2e-15", "8.4e-15"),
                                  ("0.125", "0.25")])
def test_numbers_that_a_reader_would_see_differ_do_not(a, b):
    assert not numbers_match(a, b)


def test_words_must_be_the_same():
    assert text_difference("dev acc 0.760 (train loss 0.690)", "dev acc 0.761 (train loss 0.689)") == ""
    assert "words differ" in text_difference("batch norm wins", "layer norm wins")
    assert "0.760 != 0.877" in text_difference("acc 0.760", "acc 0.877")


def png(ys) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=80)
    ax.plot(ys)
    ax.set_ylim(0, 10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def test_plots_are_compared_by_how_they_look():
    base = png([1, 2, 3, 4])
    assert image_difference(base, png([1, 2, 3, 4])) == ""
    assert image_difference(base, png([1, 2, 3, 4 + 1e-9])) == ""   # last bits: the same picture
    assert "the plots differ" in image_difference(base, png([1, 6, 2, 9]))


def test_differences_names_the_cell():
    def notebook(text):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("print(acc)")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
        return nb
    assert differences(notebook("acc 0.760\n"), notebook("acc 0.761\n")) == []
    assert differences(notebook("acc 0.760\n"), notebook("acc 0.877\n")) == [
        "cell 1 ('print(acc)'): 0.760 != 0.877 (more than one unit in the last printed place)"]
