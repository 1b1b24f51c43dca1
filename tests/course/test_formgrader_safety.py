"""course/formgrader_safety.py without a browser: every nbgrader formgrader template, rendered with hostile
ids and names, shows them as text (no element or attribute of theirs), gives them back intact to its
scripts, and tags each of its own scripts with the response's nonce. The browser test
(tests/browser/test_formgrader_ids.py) clicks through the real pages; this one covers each template
where Chromium is missing and says which template and which value when one slips through.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbgrader.server_extensions.formgrader import handlers

from course import formgrader_safety as fs

TEMPLATES = Path(handlers.template_path)
NONCE = "n0nce"
# what nbgrader's own templates and scripts have: no value may add another element or handler
OWN_HANDLERS = {"toggleAllNames()", "createAssignmentModal();", "createStudentModal();",
                "toggle_name(true);", "toggle_name(false);"}
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "\"><svg onload=alert(1)>",
    "</script><script>alert(1)</script>",
    "\";alert(1);//",
    "x' onmouseover='alert(1)' x=\"",
    "<script src=/files/submitted/mallory/a/evil.js></script>",
]


class Page(HTMLParser):
    """The elements, handler attributes and scripts of a page (as a browser would parse them)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.handlers: list[str] = []
        self.scripts: list[dict] = []
        self._script: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.handlers += [v for k, v in attrs if k.startswith("on")]
        if tag == "script":
            self._script = {"attrs": dict(attrs), "text": ""}
            self.scripts.append(self._script)

    def handle_data(self, data):
        if self._script is not None:
            self._script["text"] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def is_nbconverts_mathjax(script: dict) -> bool:
    """nbconvert's MathJax (``{{ mathjax() }}`` in the submission page): from a CDN, with an inline config."""
    return "/mathjax/" in script["attrs"].get("src", "") or "MathJax.Hub.Config" in script["text"]


def check(html: str, plain_html: str, where: str, value: str) -> Page:
    """``html`` (rendered with ``value``) has the elements and handlers of ``plain_html`` (with a plain id)."""
    page, plain = Page(html), Page(plain_html)
    assert page.tags == plain.tags, f"{where}: {value!r} became an element"
    assert page.handlers == plain.handlers and set(page.handlers) <= OWN_HANDLERS, \
        f"{where}: {value!r} added a handler {set(page.handlers) - OWN_HANDLERS}"
    for script in page.scripts:
        if is_nbconverts_mathjax(script):
            continue  # no nonce: the policy refuses it (it came from a CDN, unreachable offline, anyway)
        assert script["attrs"].get("nonce") == NONCE, f"{where}: a script without the nonce: {script}"
        assert "/files/" not in script["attrs"].get("src", ""), f"{where}: {value!r} loads a file"
        assert "alert(1)" not in re.sub(r'"(?:[^"\\]|\\.)*"', "", script["text"]), \
            f"{where}: {value!r} is code in a script, not inside a string: {script['text']!r}"
    return page


PAGES = sorted(p.name for p in TEMPLATES.glob("*.tpl") if p.name not in {"formgrade_404.tpl"})


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("template", PAGES)
def test_every_formgrader_page_shows_a_hostile_value_as_text(template, value):
    env = fs.page_environment(TEMPLATES)
    names = dict(student_id=value, assignment_id=value, notebook_id=value, course_dir=value, url_prefix=value,
                 exchange=value, current_config=value, default_timezone=value, course_id=value,
                 exchange_missing=True, base_url="", windows=False, error_code=500)
    html = env.get_template(template).render(csp_nonce=NONCE, **names)
    plain = env.get_template(template).render(csp_nonce=NONCE, **{k: "ada" if v == value else v
                                                                  for k, v in names.items()})
    page = check(html, plain, template, value)
    # the scripts get the value back intact (JSON), not an HTML-escaped copy
    for script in page.scripts:
        for var, literal in re.findall(r"var (\w+) = (.*?);\n", script["text"]):
            if var in names and var != "base_url":
                assert json.loads(literal) == value, (template, var, literal)


def test_the_submission_page_shows_hostile_names_and_cell_names_as_text(tmp_path):
    from nbconvert.exporters import HTMLExporter

    exporter = HTMLExporter(template_name="formgrade", extra_template_basedirs=[str(TEMPLATES)])
    fs.escape_notebook_pages(exporter, TEMPLATES)
    def render(value: str) -> str:
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {
            "grade": True, "solution": False, "points": 1, "grade_id": value, "schema_version": 3}}))
        path = tmp_path / "nb.ipynb"
        nbformat.write(nb, path)
        resources = dict(assignment_id=value, notebook_id=value, submission_id="abc", index=0, total=1,
                         base_url="", student=value, last_name=value, first_name=value,
                         notebook_path=value, csp_nonce=NONCE)
        return exporter.from_filename(str(path), resources=resources)[0]

    plain = render("ada")
    for value in HOSTILE:
        html = render(value)
        page = check(html, plain, "the submission page", value)
        texts = [s["text"] for s in page.scripts if "var notebook_id" in s["text"]]
        assert texts and json.loads(re.search(r"var notebook_id = (.*);", texts[0]).group(1)) == value
        assert html.count(f'href="/formgrader/gradebook/{fs.path_segment(value)}"') == 1  # the breadcrumb


def test_the_policy_allows_only_the_static_folders_the_nonce_and_nbgraders_handlers():
    hashes = fs.inline_handler_hashes([TEMPLATES])
    assert len(hashes) == len(OWN_HANDLERS)
    policy = fs.content_security_policy("http://127.0.0.1:8888", "/", "N", hashes)
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src")).split()[1:]
    assert script_src[:3] == ["http://127.0.0.1:8888/formgrader/static/",
                              "http://127.0.0.1:8888/course-formgrader/static/", "'nonce-N'"]
    assert "'unsafe-inline'" not in script_src and "'self'" not in script_src  # /files/ is 'self'
    assert "object-src 'none'" in policy and "base-uri 'none'" in policy


def test_another_nbgrader_is_refused(monkeypatch):
    import nbgrader

    monkeypatch.setattr(nbgrader, "__version__", "0.9.7")
    with pytest.raises(fs.FormgraderSafetyError, match="not loaded"):
        fs._check_nbgrader()
