"""A hostile submission in the instructor's browser: nbgrader's formgrader and the feedback, in Chromium.

One student (``mallory``) hands in a correct notebook carrying every browser payload of
``tests/grading/test_html_attacks.py`` at once (scripts, event handlers, SVG, JavaScript and Markdown
outputs, widgets, markdown and raw cells, a forged image); an honest one (``ada``) draws a plot. Both
are graded by ``course grade``'s pipeline, then, in headless Chromium:

- the formgrader's page of mallory's submission, inside the instructor's authenticated JupyterLab
  (``test_jupyterlab``'s server and logged-in page);
- mallory's feedback HTML, opened from disk and through JupyterLab (same origin as the instructor);
- ada's feedback: the plot is an image that loaded.

Every payload would set ``document.title``, ``window.__pwned``, log ``PWNED`` and PUT a file into the
course root with the instructor's ``_xsrf``; none of it may happen. Screenshots: tests/artifacts/browser/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from course import grade
# JupyterLab on a scratch copy of the course, and a page logged in to it (skipped there without Chromium)
from tests.browser.test_jupyterlab import ARTIFACTS, lab, page  # noqa: F401  (fixtures)
from tests.grading.test_html_attacks import A, CASES, FULL, HONEST, LIMITS, Case, add_submissions

pytestmark = pytest.mark.slow

# The payloads that target a browser (the others hide code, forge the report or flood the output).
BROWSER_CASES = ["html-script", "html-img-onerror", "html-svg-onload", "html-isolated-iframe", "svg-output",
                 "javascript-output", "markdown-output", "forged-png", "widget", "widget-state",
                 "markdown-cell-script", "markdown-cell-link", "markdown-cell-svg-attachment", "raw-cell-html"]
SETTLE_S = 3  # an <img onerror> fires and a fetch completes well within this, offline


def every_payload(nb):
    for name in BROWSER_CASES:
        nb = CASES[name].build(nb)
    return nb


@pytest.fixture(scope="module")
def graded(lab):
    """mallory and ada graded in the course JupyterLab serves (the formgrader reads its gradebook)."""
    add_submissions(lab.root, {"mallory": Case(every_payload, FULL), "ada": HONEST["honest-plot"]})
    problems = grade.autograde(lab.root, A, ["ada", "mallory"], workers=2, progress=False, limits=LIMITS)
    grade.feedback_and_export(lab.root, A)
    scores = {r.student_id: r.score for r in grade.results(lab.root, A, ["ada", "mallory"], problems)}
    assert scores == {"ada": FULL, "mallory": FULL}, (scores, problems)
    return lab


@pytest.fixture(scope="module")
def browser(graded, page):
    """The instructor's Chromium, logged in to JupyterLab (token and ``_xsrf`` cookies set by /lab)."""
    assert any(c["name"] == "_xsrf" for c in page.context.cookies())
    return page.context


class Visit:
    """One page, with everything a payload could leave behind recorded."""

    def __init__(self, context, url: str):
        self.console: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda msg: self.console.append(msg.text))
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        time.sleep(SETTLE_S)

    def traces(self, root: Path) -> list[str]:
        title = self.page.title()
        pwned = self.page.evaluate("() => window.__pwned || null")
        found = [f"document.title = {title!r}"] if "PWNED" in title else []
        found += [f"window.__pwned = {pwned}"] if pwned else []
        found += [f"console: {m}" for m in self.console if "PWNED" in m]
        found += [f"file written: {p.name}" for p in root.rglob("pwned-*")]
        return found

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=False)


def submission_id(root: Path, student: str) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(A, A, student).id


def test_formgrader_shows_the_hostile_submission_without_running_it(graded, browser):
    sid = submission_id(graded.root, "mallory")
    visit = Visit(browser, graded.url(f"/formgrader/submissions/{sid}/"))
    visit.page.get_by_text("My notes.").first.scroll_into_view_if_needed()
    visit.screenshot("06_formgrader_hostile_submission.png")
    assert not visit.traces(graded.root), f"student script ran in the formgrader: {visit.traces(graded.root)}"
    text = visit.page.locator("body").inner_text()
    assert "Student's answer" in text and "def relative_error" in text  # the student's cells are shown ...
    assert "PWNED" in text  # ... and the payloads with them, as text
    visit.page.close()


@pytest.mark.parametrize("how", ["file", "jupyterlab"])
def test_hostile_feedback_runs_no_student_script(graded, browser, how):
    path = graded.root / "feedback" / "mallory" / A / f"{A}.html"
    url = path.as_uri() if how == "file" else graded.url(f"/files/feedback/mallory/{A}/{A}.html")
    visit = Visit(browser, url)
    visit.page.get_by_text("My notes.").first.scroll_into_view_if_needed()
    visit.screenshot(f"07_feedback_hostile_{how}.png")
    assert not visit.traces(graded.root), f"student script ran in the feedback ({how}): {visit.traces(graded.root)}"
    text = visit.page.locator("body").inner_text()
    assert "relative_error" in text and "PWNED" in text, text[:2000]
    visit.page.close()


def test_honest_feedback_shows_the_plot(graded, browser):
    visit = Visit(browser, (graded.root / "feedback" / "ada" / A / f"{A}.html").as_uri())
    images = visit.page.locator("img[src^='data:image/png;base64,']")
    assert images.count() >= 1
    assert images.first.evaluate("img => img.complete && img.naturalWidth > 100")
    images.first.scroll_into_view_if_needed()
    visit.screenshot("08_feedback_honest_plot.png")
    text = visit.page.locator("body").inner_text()
    assert f"Score: {FULL:.1f} / {FULL:.1f}" in text
    visit.page.close()
