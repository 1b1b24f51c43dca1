"""nbgrader's formgrader with every id and name it shows escaped, behind a Content-Security-Policy.

nbgrader 0.9.6's formgrader prints student ids, names, e-mails, assignment, notebook and cell names as
HTML: its Jinja environment has no autoescaping, its templates put them into ``<script>`` blocks and links
as they are, its nbconvert template (the submission page) does the same, and its failure dialogs insert
them as HTML. An id such as ``<img src=x onerror=...>`` ran as the instructor (issue 23). The course's
ingest refuses such ids; this server extension makes the formgrader show whatever reaches it as text.
``jupyter_server_config.py`` enables it *instead of* ``nbgrader.server_extensions.formgrader``: it loads
nbgrader's formgrader itself, then:

1. the formgrader's pages are rendered with autoescaping, from nbgrader's own templates rewritten as they
   are loaded: a value in a ``<script>`` block goes through ``tojson``, a value in a link's path through
   :func:`path_segment`; the submission page's nbconvert templates escape ``resources`` and cell names;
2. ``formgrader_static/formgrader_safety.js``, loaded after nbgrader's scripts, shows the failure dialogs'
   messages and a missing notebook's name as text (nbgrader's JavaScript inserts those two as HTML);
3. nbgrader's API answers are served as ``text/plain`` (not ``text/html``: opened as a page, an id in
   them was markup), and every formgrader response carries a Content-Security-Policy: scripts only from nbgrader's and the
   course's static folders, inline scripts only with this response's nonce, inline event handlers only
   those of nbgrader's templates (by hash). An element injected despite 1 and 2 runs nothing, and a script a
   student handed in (``/files/submitted/...``) is not loaded.

4. the formgrader's Autograde button is off: nbgrader's autograde would run the student's code in this
   server, unsandboxed; it answers with the reason and points to ``course grade``.

The rewriting is checked against the nbgrader it was written for: with another version the formgrader is
not loaded at all (the server logs why) rather than served unescaped.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

NBGRADER_VERSION = "0.9.6"
STATIC = Path(__file__).parent / "formgrader_static"
STATIC_URL = "course-formgrader/static/"  # under the server's base_url; outside /formgrader/ (its 404 catches all)
SAFETY_JS = "formgrader_safety.js"

_SCRIPT_BLOCK = re.compile(r"(<script\b[^>]*>)(.*?)(</script>)", re.S | re.I)
_QUOTED_VALUE = re.compile(r"\"\{\{\s*([\w.]+)\s*\}\}\"")           # "{{ name }}" inside a script
_HREF = re.compile(r"href=\"([^\"]*)\"")
_BARE_VALUE = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")                  # {{ name }}, no filter or call
_SCRIPT_TAG = re.compile(r"<script\b", re.I)
_HANDLER = re.compile(r"\son[a-z]+=\"([^\"]*)\"", re.I)             # onclick="..." in nbgrader's templates


class FormgraderSafetyError(RuntimeError):
    """nbgrader is not the version these rewrites were written for: the formgrader is not loaded."""


def path_segment(value: Any) -> str:
    """``value`` as one segment of a URL path (``/``, ``?``, ``#`` and quotes percent-encoded)."""
    return quote(str(value), safe="")


def _in_links(source: str, filter_: str, keep: Callable[[str], bool]) -> str:
    def link(m: re.Match) -> str:
        return "href=\"" + _BARE_VALUE.sub(
            lambda v: v.group(0) if keep(v.group(1)) else "{{ %s|%s }}" % (v.group(1), filter_), m.group(1)) + "\""
    return _HREF.sub(link, source)


def _in_scripts(source: str, nonce: str) -> str:
    """Values in ``<script>`` blocks as JSON (not a quoted string they can leave); each tag with the nonce."""
    def block(m: re.Match) -> str:
        return m.group(1) + _QUOTED_VALUE.sub(r"{{ \1|tojson }}", m.group(2)) + m.group(3)
    source = _SCRIPT_BLOCK.sub(block, source)
    return _SCRIPT_TAG.sub('<script nonce="{{ %s }}"' % nonce, source)


def rewrite_page_template(source: str) -> str:
    """One of the formgrader's ``.tpl`` templates, for an autoescaping environment."""
    source = _in_links(source, "path_segment", keep=lambda name: name == "base_url")
    source = source.replace("</head>", '<script src="{{ base_url }}/%s%s"></script>\n</head>' % (STATIC_URL, SAFETY_JS))
    return _in_scripts(source, "csp_nonce")


def _escaped_value(name: str) -> bool:
    return name.startswith(("resources.", "cell.metadata."))


def rewrite_notebook_template(source: str) -> str:
    """One of the submission page's nbconvert templates (no autoescaping there: each value escaped here)."""
    source = _in_links(source, "path_segment", keep=lambda name: not _escaped_value(name) or name.endswith("base_url"))
    source = source.replace(
        'js/utils.js"></script>',
        'js/utils.js"></script>\n<script src="{{ resources.base_url }}/%s%s"></script>' % (STATIC_URL, SAFETY_JS))
    source = _in_scripts(source, "resources.csp_nonce")
    return _BARE_VALUE.sub(lambda m: "{{ %s|e }}" % m.group(1) if _escaped_value(m.group(1)) else m.group(0), source)


def _loader(search_path: str, rewrite: Callable[[str], str]):
    from jinja2 import FileSystemLoader

    class RewritingLoader(FileSystemLoader):
        def get_source(self, environment, template):
            source, filename, uptodate = super().get_source(environment, template)
            return rewrite(source), filename, uptodate

    return RewritingLoader(search_path)


def page_environment(templates: Path):
    """The Jinja environment of the formgrader's pages: autoescaping, nbgrader's templates rewritten."""
    from jinja2 import Environment

    env = Environment(loader=_loader(str(templates), rewrite_page_template), autoescape=True)
    env.filters["path_segment"] = path_segment
    return env


def escape_notebook_pages(exporter, templates: Path) -> None:
    """nbgrader's HTMLExporter for the submission page: its ``formgrade`` templates rewritten."""
    exporter.extra_loaders = [_loader(str(templates / "formgrade"), rewrite_notebook_template)]
    exporter.filters = {**exporter.filters, "path_segment": path_segment}


def inline_handler_hashes(template_dirs: list[Path]) -> list[str]:
    """CSP hashes of the inline event handlers in nbgrader's templates (``onclick="toggleAllNames()"``)."""
    handlers = set()
    for folder in template_dirs:
        for path in folder.rglob("*"):
            if path.suffix in (".tpl", ".j2"):
                handlers.update(_HANDLER.findall(path.read_text()))
    return sorted("'sha256-%s'" % base64.b64encode(hashlib.sha256(h.encode()).digest()).decode() for h in handlers)


def content_security_policy(origin: str, base_url: str, nonce: str, handler_hashes: list[str]) -> str:
    """The formgrader's policy: script only from the two static folders, this nonce, these handlers."""
    base = origin + "/" + base_url.strip("/") + ("/" if base_url.strip("/") else "")
    scripts = [base + "formgrader/static/", base + STATIC_URL, f"'nonce-{nonce}'"]
    if handler_hashes:
        scripts += ["'unsafe-hashes'", *handler_hashes]
    return "; ".join([
        "default-src 'self'",
        "script-src " + " ".join(scripts),
        "style-src 'self' 'unsafe-inline'",  # nbgrader's pages and nbconvert's inline CSS
        "img-src 'self' data: blob:",         # the notebooks' plots are data: URIs
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ])


def _check_nbgrader() -> None:
    import nbgrader
    from nbgrader.server_extensions.formgrader import apihandlers, base, formgrader

    if nbgrader.__version__ != NBGRADER_VERSION:
        raise FormgraderSafetyError(
            f"nbgrader {nbgrader.__version__} is installed; course/formgrader_safety.py was written for "
            f"{NBGRADER_VERSION}: the formgrader is not loaded (check its templates and scripts, then update it)")
    for cls, name in [(base.BaseHandler, "render"), (base.BaseHandler, "exporter"), (base, "BaseApiHandler"),
                      (formgrader.FormgradeExtension, "init_tornado_settings"),
                      (apihandlers, "AutogradeHandler")]:
        if not hasattr(cls, name):
            raise FormgraderSafetyError(f"nbgrader's {cls.__name__}.{name} is missing: the formgrader is not loaded")


class _ExporterForThisResponse:
    """nbgrader's HTMLExporter, handing this response's CSP nonce to the submission page's template."""

    def __init__(self, exporter, nonce: str):
        self._exporter, self._nonce = exporter, nonce

    def from_filename(self, filename: str, resources: dict | None = None, **kw):
        resources = dict(resources or {}, csp_nonce=self._nonce)
        return self._exporter.from_filename(filename, resources=resources, **kw)

    def __getattr__(self, name: str):
        return getattr(self._exporter, name)


def _patch_handlers(handler_hashes: list[str]) -> None:
    """Every formgrader handler (nbgrader's BaseHandler): a nonce per response, in its header and pages."""
    from jupyter_server.base.handlers import JupyterHandler
    from nbgrader.server_extensions.formgrader.base import BaseApiHandler, BaseHandler

    def nonce(self) -> str:
        if not hasattr(self, "_course_csp_nonce"):
            self._course_csp_nonce = secrets.token_urlsafe(18)
        return self._course_csp_nonce

    def csp(self) -> str:
        origin = f"{self.request.protocol}://{self.request.host}"
        policy = content_security_policy(origin, self.base_url, nonce(self), handler_hashes)
        return JupyterHandler.content_security_policy.fget(self) + "; " + policy  # keeps frame-ancestors 'self'

    def render(self, name: str, **ns) -> str:
        template = self.settings["nbgrader_jinja2_env"].get_template(name)
        return template.render(csp_nonce=nonce(self), **ns)

    def api_headers(self) -> None:
        # nbgrader's API writes its JSON as a string, served as text/html: opened as a page, the ids in it
        # would be markup. As text/plain (nosniff is set) it is shown as text; nbgrader's scripts parse it
        # themselves (JSON.parse, or Backbone's dataType "json"), whatever its type.
        BaseHandler.set_default_headers(self)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")

    BaseHandler.content_security_policy = property(csp)
    BaseApiHandler.set_default_headers = api_headers
    BaseHandler.render = render
    BaseHandler.exporter = property(lambda self: _ExporterForThisResponse(self.settings["nbgrader_exporter"], nonce(self)))


AUTOGRADE_OFF = (
    "Autograde from the formgrader is off in this course: nbgrader's autograde would run the student's "
    "code here, unsandboxed, as this server's user, and believe what their kernel reports. Grade with "
    "`course grade ASSIGNMENT` (each kernel sandboxed, the tests re-run where the student cannot fake them), "
    "then reload this page.")


def _autograde_off() -> None:
    """The formgrader's Autograde button answers with the reason it is off (its dialog shows it as text)."""
    import json

    from nbgrader.server_extensions.formgrader.apihandlers import AutogradeHandler
    from tornado import web

    @web.authenticated
    def post(self, assignment_id: str, student_id: str) -> None:
        self.write(json.dumps({"success": False, "log": "", "error": AUTOGRADE_OFF}))

    AutogradeHandler.post = post


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "course.formgrader_safety"}]


def _load_jupyter_server_extension(serverapp) -> None:
    """Load nbgrader's formgrader, then escape what it shows and put its pages behind the policy."""
    from jupyter_server.utils import url_path_join
    from tornado import web

    _check_nbgrader()
    from nbgrader.server_extensions.formgrader import formgrader, handlers

    if serverapp.jpserver_extensions.get("nbgrader.server_extensions.formgrader"):
        raise FormgraderSafetyError(
            "nbgrader.server_extensions.formgrader is enabled as well: disable it (course.formgrader_safety "
            "loads the formgrader itself, escaped); the formgrader is not loaded twice")
    templates = Path(handlers.template_path)
    hashes = inline_handler_hashes([templates])
    _patch_handlers(hashes)
    _autograde_off()
    formgrader.load_jupyter_server_extension(serverapp)

    settings = serverapp.web_app.settings
    settings["nbgrader_jinja2_env"] = page_environment(templates)
    escape_notebook_pages(settings["nbgrader_exporter"], templates)
    serverapp.web_app.add_handlers(".*$", [(url_path_join(settings["base_url"], STATIC_URL + "(.*)"),
                                            web.StaticFileHandler, {"path": str(STATIC)})])
    serverapp.log.info("course.formgrader_safety: nbgrader's formgrader loaded, escaped, behind a CSP")
