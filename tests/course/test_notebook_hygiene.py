"""Notebook hygiene for reading in a browser (JupyterLab): a table of contents whose links land, plots
rendered inline, and no output so long that the reader has to scroll past it."""

import re

import nbformat
import pytest

from course.notebooks import read_notebook
from course.paths import assignments
from tests.conftest import ROOT

ALL = assignments(ROOT)
MAX_OUTPUT_LINES = 300
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def source_nb(name):
    return read_notebook(ROOT / "source" / name / f"{name}.ipynb")


def solution_nb(name):
    return nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)


def rendered_text(markdown_inline: str) -> str:
    """The text of a rendered markdown heading: links, code and emphasis markers gone."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown_inline)
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*)", "", text)
    return text.strip()


def heading_anchors(nb) -> set[str]:
    """The anchors JupyterLab gives markdown headings (data-jupyter-id): the text, spaces replaced by "-"."""
    anchors = set()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            found = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
            if found:
                anchors.add(rendered_text(found.group(1)).replace(" ", "-"))
    return anchors


def output_lines(output) -> int:
    if output.output_type == "stream":
        return len(output.text.splitlines())
    if output.output_type == "error":
        return len("\n".join(output.traceback).splitlines())
    data = output.get("data", {})
    texts = [v if isinstance(v, str) else "".join(v) for k, v in data.items() if k.startswith("text/")]
    return max((len(t.splitlines()) for t in texts), default=0)


@pytest.mark.parametrize("name", ALL)
def test_first_cell_is_a_title_and_a_table_of_contents_whose_links_land(name):
    nb = source_nb(name)
    first = nb.cells[0]
    assert first.cell_type == "markdown", "the first cell is markdown: the title and the contents"
    assert re.match(r"#\s+\S", first.source), "the first cell starts with the notebook's title (# ...)"
    assert re.search(r"(?im)^\s*(\*\*|#+\s*)?(table of )?contents\b", first.source), "the first cell has a Contents list"
    links = re.findall(r"\]\(#([^)\s]+)\)", first.source)
    assert len(links) >= 3, f"the table of contents links to the sections (found {links})"
    missing = [link for link in links if link not in heading_anchors(nb)]
    assert not missing, f"table-of-contents links that match no heading (JupyterLab's ids): {missing}"


@pytest.mark.parametrize("name", ALL)
def test_plots_render_inline(name):
    nb = source_nb(name)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has code"
    backends = re.findall(r"%matplotlib\s+(\w+)", "\n".join(code))
    assert all(b == "inline" for b in backends), f"only the inline backend renders in every browser: {backends}"
    setup_inline = "%matplotlib inline" in code[0]
    solution_pngs = sum("image/png" in o.get("data", {}) for c in solution_nb(name).cells
                        if c.cell_type == "code" for o in c.outputs)
    assert setup_inline or solution_pngs, "the setup cell uses `%matplotlib inline` or the solution holds PNG plots"
    if "matplotlib" in "\n".join(code):
        assert solution_pngs, "a notebook that plots shows its plots in solutions/ (image/png outputs)"


@pytest.mark.parametrize("name", ALL)
def test_no_solution_output_is_too_long_to_read(name):
    nb = solution_nb(name)
    long = [(i, o.output_type, output_lines(o)) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.outputs if output_lines(o) > MAX_OUTPUT_LINES]
    assert not long, f"outputs over {MAX_OUTPUT_LINES} lines (cell, type, lines): {long}"


@pytest.mark.parametrize("name", ALL)
def test_solution_outputs_need_no_live_kernel(name):
    nb = solution_nb(name)
    widgets = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.outputs if WIDGET_MIME in o.get("data", {})]
    assert not widgets, f"widget outputs (blank or 'Loading widget...' when read without a kernel) in cells {widgets}"
