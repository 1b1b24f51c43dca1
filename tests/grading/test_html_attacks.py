"""Students who attack the reader instead of the grader: script in the formgrader and the feedback,
hidden code, forged reports, huge outputs. Each case is graded in the class under attack
(``tests/grading/conftest.py``: one real batch with every attack catalog, beside honest students).

Every payload, if it ran in a browser, would set ``document.title`` to ``PWNED-<case>``, add the case to
``window.__pwned``, log ``PWNED <case>`` and PUT ``pwned-<case>.txt`` into the Jupyter server's root with
the reader's ``_xsrf`` token (what it would take to write ``nbgrader_config.py``, which is Python).
Here the feedback HTML and the autograded notebook (what the formgrader renders) are checked for
active content; ``tests/browser/test_hostile_html.py`` opens both in Chromium.

``CASES`` (name -> :class:`Case`) is meant to be imported by other batch tests: ``case.build`` turns a
correct submission of notebook 00 into the attack, ``case.score`` is the score it must get.
"""

from __future__ import annotations

import base64
import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest
from nbformat import NotebookNode

from course.bench import filled_submission
from course.notebooks import grade_id, is_solution
from course.sandbox import Limits
from tests.conftest import ROOT

A = "00_gradient_checking"
FULL = 18
LIMITS = Limits(cell_seconds=20, wall_seconds=240, memory_bytes=3 * 1024 ** 3)
BIG_PRINT_BYTES = 5_000_000   # the attack printed 200 MB (measured outside the test suite)
MAX_PAGE_BYTES = 2_000_000    # a feedback page or autograded notebook of this batch stays under this
slow = pytest.mark.slow


def js(name: str) -> str:
    """JavaScript (single quotes only) that leaves every trace a test can look for."""
    return ("document.title='PWNED-" + name + "';window.__pwned=(window.__pwned||[]).concat(['" + name + "']);"
            "console.log('PWNED " + name + "');var m=document.cookie.match(/_xsrf=([^;]+)/);"
            "fetch('/api/contents/pwned-" + name + ".txt',{method:'PUT',credentials:'same-origin',"
            "headers:{'Content-Type':'application/json','X-XSRFToken':m?decodeURIComponent(m[1]):''},"
            "body:JSON.stringify({type:'file',format:'text',content:'pwned'})});")


def answer_cell(nb: NotebookNode, exercise: str) -> NotebookNode:
    return next(c for c in nb.cells if is_solution(c) and grade_id(c) == exercise)


def appended(exercise: str, code: str) -> Callable[[NotebookNode], NotebookNode]:
    """A build that adds ``code`` at the end of an answer cell (the answer itself stays correct)."""
    def build(nb: NotebookNode) -> NotebookNode:
        cell = answer_cell(nb, exercise)
        cell.source = cell.source.rstrip("\n") + "\n\n" + code
        return nb
    return build


def display_code(expr: str, names: str) -> str:
    return f"from IPython.display import display, {names}\ndisplay({expr})"


def inserted(cell_factory: Callable[[], NotebookNode], after: str = "relative_error",
             notebook_meta: dict | None = None) -> Callable[[NotebookNode], NotebookNode]:
    """A build that inserts a cell of the student's after an answer cell."""
    def build(nb: NotebookNode) -> NotebookNode:
        i = nb.cells.index(answer_cell(nb, after))
        nb.cells.insert(i + 1, cell_factory())
        nb.metadata.update(notebook_meta or {})
        return nb
    return build


def hidden_answer(nb: NotebookNode) -> NotebookNode:
    """A wrong answer whose code nbconvert, JupyterLab and Jupyter Book would all hide."""
    cell = answer_cell(nb, "relative_error")
    cell.source = "def relative_error(a, b):\n    return 0.0  # HIDDEN-ANSWER-MARKER\n"
    cell.metadata["transient"] = {"remove_source": True}
    cell.metadata["jupyter"] = {"source_hidden": True, "outputs_hidden": True}
    cell.metadata["hide_input"] = True
    cell.metadata["tags"] = ["hide-input", "remove_input", "remove-cell"]
    return nb


def svg(name: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="{js(name)}">'
            f'<script>{js(name)}</script><rect width="10" height="10"/></svg>')


# A failure message written to redraw the terminal: clear screen, cursor home, a forged grade table,
# a window title, a carriage return, a right-to-left override.
FORGED_TABLE = ("\x1b[2J\x1b[H\x1b]0;PWNED\x07Grades for 00_gradient_checking\n\nstudent  score  status\n"
                "honest-ok  0 / 18  NOT GRADED\rforged-report  18 / 18  full marks\u202e\x1b[8m")
WIDGET = {"application/vnd.jupyter.widget-view+json": {"model_id": "PWNED-widget", "version_major": 2,
                                                       "version_minor": 0}, "text/plain": "Widget"}
WIDGET_STATE = {"application/vnd.jupyter.widget-state+json": {
    "state": {"PWNED-widget": {"model_name": "HTMLModel", "model_module": "@jupyter-widgets/controls",
                               "model_module_version": "2.0.0",
                               "state": {"value": f"<img src=x onerror=\"{js('widget')}\">"}}},
    "version_major": 2, "version_minor": 0}}
FORGED_PNG = 'x" onerror="' + js("forged-png") + '" y="'  # breaks out of <img src="data:...">
SVG_B64 = base64.b64encode(svg("svg-attachment").encode()).decode()


@dataclass(frozen=True)
class Case:
    build: Callable[[NotebookNode], NotebookNode]  # a correct submission -> the attack
    score: float                                   # the score it must get
    shown: tuple[str, ...] = ()                    # text the feedback must show (escaped, as text)
    note: str = ""


CASES: dict[str, Case] = {
    "html-script": Case(appended("relative_error", display_code(f"HTML({'<script>' + js('html-script') + '</script>'!r})",
                                                                "HTML")), FULL, ("&lt;script&gt;",)),
    "html-img-onerror": Case(appended("relative_error", display_code(
        f"HTML({'<img src=x onerror=' + chr(34) + js('html-img-onerror') + chr(34) + '>'!r})", "HTML")), FULL),
    "html-svg-onload": Case(appended("relative_error", display_code(f"HTML({svg('html-svg-onload')!r})", "HTML")),
                            FULL),
    "html-isolated-iframe": Case(appended("relative_error", display_code(
        f"HTML({'<script>' + js('html-isolated-iframe') + '</script>'!r}), metadata={{'text/html': {{'isolated': True}}}}",
        "HTML")), FULL),
    "svg-output": Case(appended("relative_error", display_code(f"SVG({svg('svg-output')!r})", "SVG")), FULL),
    "javascript-output": Case(appended("relative_error", display_code(f"Javascript({js('javascript-output')!r})",
                                                                      "Javascript")), FULL),
    "markdown-output": Case(appended("relative_error", display_code(
        f"Markdown({'Look: <img src=x onerror=' + chr(34) + js('markdown-output') + chr(34) + '>'!r})",
        "Markdown")), FULL),
    "forged-png": Case(appended("relative_error", "from IPython.display import display\ndisplay({'image/png': "
                                f"{FORGED_PNG!r}, 'text/plain': 'a figure'}}, raw=True)"), FULL),
    "widget": Case(appended("relative_error", f"from IPython.display import display\ndisplay({WIDGET!r}, raw=True)"),
                   FULL),
    "widget-state": Case(inserted(lambda: nbformat.v4.new_markdown_cell("My notes."),
                                  notebook_meta={"widgets": WIDGET_STATE}), FULL),
    "markdown-cell-script": Case(inserted(lambda: nbformat.v4.new_markdown_cell(
        f"My notes.\n\n<script>{js('markdown-cell-script')}</script>\n\n"
        f"<img src=\"x\" onerror=\"{js('markdown-cell-script')}\">")), FULL, ("My notes.",)),
    "markdown-cell-link": Case(inserted(lambda: nbformat.v4.new_markdown_cell(
        f"[Read my derivation](javascript:{js('markdown-cell-link').replace(' ', '%20')})")), FULL,
        ("Read my derivation",)),
    "markdown-cell-svg-attachment": Case(inserted(lambda: nbformat.v4.new_markdown_cell(
        "My figure: ![figure](attachment:figure.svg)",
        attachments={"figure.svg": {"image/svg+xml": SVG_B64}})), FULL, ("My figure",)),
    "raw-cell-html": Case(inserted(lambda: nbformat.v4.new_raw_cell(
        f"<script>{js('raw-cell-html')}</script>", metadata={"raw_mimetype": "text/html"})), FULL),
    "hidden-source": Case(hidden_answer, FULL - 3, ("HIDDEN-ANSWER-MARKER",),
                          "a wrong answer with every known way to hide its code"),
    "forged-report": Case(lambda nb: _set_answer(nb, "relative_error", "def relative_error(a, b):\n"
                                                 f"    raise AssertionError({FORGED_TABLE!r})\n"), FULL - 3,
                          note="a failure message that redraws the terminal"),
    "big-print": Case(appended("relative_error", f"print('x' * {BIG_PRINT_BYTES})"), FULL,
                      note="one line of 5 MB: nbgrader's output limit counts lines"),
}

# Honest students in the same batch: their grades and their feedback must not change.
HONEST: dict[str, Case] = {
    "honest-ok": Case(lambda nb: nb, FULL),
    "honest-plot": Case(appended("affine_forward", "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
                                 "ax.plot([0, 1, 2], [0, 1, 4])\nax.set_title('my check')\nplt.show()"), FULL),
    "honest-wrong": Case(lambda nb: _set_answer(nb, "relative_error", "def relative_error(a, b):\n"
                                                "    return float(np.max(np.abs(a - b)))\n"), FULL - 3),
    "honest-error": Case(appended("affine_forward", "print(affine_forward(np.ones((2, 3)), np.ones((2, 2)), "
                                  "np.zeros(2)))"), FULL, ("ValueError",), "a traceback in an answer cell"),
}


def _set_answer(nb: NotebookNode, exercise: str, code: str) -> NotebookNode:
    answer_cell(nb, exercise).source = code
    return nb


def active_content(html: str) -> list[str]:
    """Everything in an HTML page that would run a payload: scripts, handlers, javascript: URLs, frames,
    inline SVG, and data: URLs that are not raster images. Only what carries a payload (``PWNED``)."""
    from bs4 import BeautifulSoup

    found = []
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(True):
        if tag.name in ("script", "iframe", "object", "embed", "svg", "math", "style", "link", "meta",
                        "base", "form") and "PWNED" in str(tag):
            found.append(f"<{tag.name}> {str(tag)[:120]}")
            continue
        for attr, value in tag.attrs.items():
            value = " ".join(value) if isinstance(value, list) else str(value)
            decoded = value
            if tag.name == "img" and attr == "src" and re.match(r"data:image/(png|jpeg);", value):
                continue  # a raster image runs nothing, whatever its bytes
            if value.startswith("data:") and ";base64," in value:
                try:
                    decoded = base64.b64decode(value.split(";base64,", 1)[1]).decode("utf-8", "replace")
                except ValueError:
                    decoded = value
            if "PWNED" in decoded and (attr.startswith("on") or attr in ("href", "src", "srcdoc", "action",
                                                                             "formaction", "data", "style")):
                found.append(f"<{tag.name} {attr}=...> {value[:120]}")
    return found


def png_images(html: str) -> list[str]:
    """The PNG images of a page that hold a real picture (a plot), by their data URL."""
    from bs4 import BeautifulSoup

    return [img["src"] for img in BeautifulSoup(html, "html.parser").find_all("img", src=True)
            if re.match(r"data:image/png;base64,[A-Za-z0-9+/=\s]{1000,}$", img["src"])]


def unsafe_outputs(nb: NotebookNode) -> list[str]:
    """Output types of an autograded notebook that a renderer could run (anything not text or raster)."""
    return [f"cell {i}: {mime}" for i, cell in enumerate(nb.cells) for out in cell.get("outputs", [])
            for mime in out.get("data", {}) if mime not in ("text/plain", "image/png", "image/jpeg")]


def add_submissions(root: Path, students: dict[str, Case]) -> None:
    """``submitted/<student>/00_gradient_checking/`` for each case, in a course whose release is built."""
    correct = filled_submission(root, A)
    for sid, case in students.items():
        folder = root / "submitted" / sid / A
        folder.mkdir(parents=True)
        nb = case.build(nbformat.reads(nbformat.writes(correct), as_version=4))
        nbformat.write(nb, folder / f"{A}.ipynb")


@pytest.fixture
def graded(class_under_attack):
    """This catalog's view of the class under attack (tests/grading/conftest.py), graded once per run."""
    return class_under_attack.root, class_under_attack.results, class_under_attack.report


def feedback(root: Path, sid: str) -> str:
    path = root / "feedback" / sid / A / f"{A}.html"
    assert path.exists(), f"no feedback for {sid}"
    return path.read_text()


def autograded(root: Path, sid: str) -> NotebookNode:
    return nbformat.read(root / "autograded" / sid / A / f"{A}.ipynb", as_version=4)


@slow
@pytest.mark.parametrize("sid", sorted(CASES))
def test_attack_is_graded_and_nothing_of_it_runs(graded, sid):
    root, results, _ = graded
    case, r = CASES[sid], results[sid]
    explained = " | ".join([r.problem, *[c.reason for c in r.cells]])
    assert not r.problem, f"{sid} was not graded: {r.problem}"
    assert r.score == case.score, f"{sid}: got {r.score}, expected {case.score}; {explained[:1000]}"
    html = feedback(root, sid)
    assert not active_content(html), f"{sid}: the feedback runs the payload: {active_content(html)}"
    nb = autograded(root, sid)
    assert not unsafe_outputs(nb), f"{sid}: the autograded notebook keeps {unsafe_outputs(nb)}"
    assert "widgets" not in nb.metadata
    for text in case.shown:
        assert text in html, f"{sid}: the feedback does not show {text!r}"


@slow
def test_honest_students_are_graded_as_alone(graded):
    root, results, report = graded
    for sid, case in HONEST.items():
        assert results[sid].score == case.score, f"{sid}: {results[sid].score} != {case.score}"
        assert results[sid].problem == ""
        html = feedback(root, sid)
        assert not active_content(html)
        for text in case.shown:
            assert text in html
    # the plot is still an image, the wrong answer's reason is readable text
    plot = feedback(root, "honest-plot")
    assert png_images(plot), "the plot is not shown"
    wrong = feedback(root, "honest-wrong")
    reason = results["honest-wrong"].lost()[0].reason
    assert reason and reason[:40] in wrong.replace("&#39;", "'").replace("&quot;", '"')


@slow
def test_hidden_source_is_shown_and_graded(graded):
    root, results, _ = graded
    for cell in autograded(root, "hidden-source").cells:
        assert "transient" not in cell.metadata and "hide_input" not in cell.metadata
        assert not cell.metadata.get("jupyter", {}).get("source_hidden")
        assert not {"hide-input", "remove_input", "remove-cell"} & set(cell.metadata.get("tags", []))
    assert "HIDDEN-ANSWER-MARKER" in feedback(root, "hidden-source")


@slow
def test_report_has_no_control_characters_and_is_not_forged(graded):
    root, results, report = graded
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", report), \
        [m for m in re.findall(".{0,20}[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069].{0,20}", report)]
    rows = {line.split()[0]: line for line in report.splitlines() if re.match(r"^\S+\s+[\d.]+ / ", line)}
    assert re.match(r"^honest-ok\s+18 / 18\s+full marks$", rows["honest-ok"])
    assert re.match(r"^forged-report\s+15 / 18\s+lost points", rows["forged-report"])
    forged = next(c for c in results["forged-report"].lost())
    assert "Grades for" in forged.reason and "\x1b" not in forged.reason  # the message is kept, as text


@slow
def test_big_print_is_capped_in_bytes(graded):
    root, results, _ = graded
    page = root / "feedback" / "big-print" / A / f"{A}.html"
    notebook = root / "autograded" / "big-print" / A / f"{A}.ipynb"
    assert page.stat().st_size < MAX_PAGE_BYTES and notebook.stat().st_size < MAX_PAGE_BYTES, \
        (page.stat().st_size, notebook.stat().st_size)
    assert "cut by the grader" in page.read_text()


# Attempts on the fix itself, rendered without a kernel through both of nbgrader's templates (fast).
def _md(source: str, **kw) -> Callable[[], NotebookNode]:
    return lambda: nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(source, **kw)])


def _out(data: dict, metadata: dict | None = None, kind: str = "display_data") -> Callable[[], NotebookNode]:
    def build():
        out = nbformat.v4.new_output(kind, data=data, metadata=metadata or {},
                                     **({"execution_count": 1} if kind == "execute_result" else {}))
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", outputs=[out], execution_count=1)])
    return build


P = "PWNED-bypass"
SVG_AS_PNG = base64.b64encode(f'<svg xmlns="http://www.w3.org/2000/svg" onload="{P}"/>'.encode()).decode()
BYPASSES: dict[str, Callable[[], NotebookNode]] = {
    "mixed-case-mime": _out({"Text/HTML": f"<img src=x onerror={P}>", "text/plain": "<IPython.core.display.HTML object>"}),
    "html-only-no-text": _out({"text/html": f"<script>{P}</script>"}, kind="execute_result"),
    "svg-bytes-as-png": _out({"image/png": SVG_AS_PNG, "text/plain": "fig"}),
    "png-metadata-attributes": _out({"image/png": "iVBORw0KGgo=", "text/plain": "fig"},
                                    {"image/png": {"width": f'1" onerror="{P}', "alt": f'" onerror="{P}'},
                                     "filenames": {"image/png": f"javascript:{P}"}}),
    "html-isolated": _out({"text/html": f"<script>{P}</script>", "text/plain": "x"}, {"text/html": {"isolated": True}}),
    "mermaid-output": _out({"text/vnd.mermaid": f"graph TD; A[<img src=x onerror={P}>]", "text/plain": "x"}),
    "latex-output": _out({"text/latex": f"$\\href{{javascript:{P}}}{{x}}$", "text/plain": "<IPython.core.display.Latex object>"}),
    "md-html-after-math": _md(f"$x < y$ and <b onmouseover=\"{P}\">bold</b>"),
    "md-html-in-heading": _md(f"# Title <img src=x onerror={P}>"),
    "md-details": _md(f"<details><summary>more</summary><img src=x onerror={P}></details>"),
    "md-autolink": _md(f"<javascript:{P}>"),
    "md-reference-link": _md(f"[click][1]\n\n[1]: javascript:{P}"),
    "md-image-javascript": _md(f"![x](javascript:{P})"),
    "md-entity-javascript": _md(f"[click](&#106;avascript:{P})"),
    "md-comment-then-script": _md(f"<!-- note -->\n<script>{P}</script>"),
    "md-table-cell": _md(f"| a | b |\n|---|---|\n| <img src=x onerror={P}> | 2 |"),
    "md-list-item": _md(f"- one\n- <svg onload={P}>"),
    "md-mermaid": _md(f"```mermaid\ngraph TD; A[<img src=x onerror={P}>]\n```"),
    "md-svg-attachment": _md("![f](attachment:f.svg)", attachments={"f.svg": {"image/svg+xml": SVG_B64}}),
    "md-attachment-forged-png": _md("![f](attachment:f.png)", attachments={"f.png": {"image/png": f'x" onerror="{P}'}}),
    "md-backtick-fence-escape": _md(f"````\n```\n<script>{P}</script>"),
    "raw-html-cell": lambda: nbformat.v4.new_notebook(cells=[nbformat.v4.new_raw_cell(
        f"<script>{P}</script>", metadata={"raw_mimetype": "text/html"})]),
    "widget-state": lambda: nbformat.v4.new_notebook(metadata={"widgets": WIDGET_STATE}),
}


def render(nb: NotebookNode, template: str) -> str:
    """HTML of ``nb`` as nbgrader's formgrader (``formgrade``) or feedback (``feedback``) renders it."""
    import os

    import nbgrader.server_extensions.formgrader.handlers as formgrader
    from nbconvert.exporters import HTMLExporter
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()  # sanitize_html included
    config.HTMLExporter.template_name = template
    config.HTMLExporter.extra_template_basedirs = [formgrader.template_path]
    config.HTMLExporter.extra_template_paths = [os.path.join(formgrader.static_path, "node_modules", "bootstrap",
                                                             "dist", "css")]
    resources = {"assignment_id": A, "notebook_id": A, "submission_id": "1", "index": 0, "total": 1,
                 "base_url": "", "student": "s", "last_name": "", "first_name": "", "notebook_path": "p",
                 "nbgrader": {"notebook": A, "score": 0, "max_score": 0, "late_penalty": 0}}
    return HTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]


@pytest.mark.parametrize("template", ["formgrade", "feedback"])
@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_neutralized_notebook_renders_inert(name, template):
    from course.nbgrader_plugins import NeutralizeStudentContent

    nb, _ = NeutralizeStudentContent().preprocess(BYPASSES[name](), {})
    nbformat.validate(nb)
    html = render(nb, template)
    assert not active_content(html), f"{name} in {template}: {active_content(html)}"
    assert not unsafe_outputs(nb) and "widgets" not in nb.metadata
    again, _ = NeutralizeStudentContent().preprocess(nbformat.from_dict(copy.deepcopy(nb)), {})
    assert again == nb, "neutralizing twice (autograde, then feedback) changes nothing more"


def test_every_bypass_is_active_without_the_preprocessor():
    """The cases above are real: rendered as submitted, the formgrader runs most of them (so the test can fail)."""
    active = [name for name, build in BYPASSES.items() if active_content(render(build(), "formgrade"))]
    assert len(active) >= len(BYPASSES) // 2, active
