"""The student's side of the check service: send a saved notebook, print the report that comes back.

Standard library only (urllib, json): it ships in the student edition, which has no grader. Used by
``%check`` (``course.magic``) and ``course check`` when ``COURSE_CHECK_URL`` names a service, e.g.
``http://127.0.0.1:8000/services/check/``. The request carries ``Authorization: token ...``: the
token of ``COURSE_CHECK_TOKEN`` if set (outside a hub), else ``JUPYTERHUB_API_TOKEN`` (every JupyterHub
server has it, and its kernels inherit it). The service decides who is asking from the token alone.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

URL_VARIABLE = "COURSE_CHECK_URL"
TOKEN_VARIABLES = ("COURSE_CHECK_TOKEN", "JUPYTERHUB_API_TOKEN")
MAX_NOTEBOOK_BYTES = 32 * 1024 ** 2  # the service's cap (course.ingest.MAX_FILE_BYTES), checked before sending
DEFAULT_TIMEOUT = 3600.0             # a check may wait for a free grader, then run up to its deadline

# Exit codes, as `course check` has them: 0 full marks, 1 points lost, 2 not checked (bad input, refused).
FULL, LOST, NOT_CHECKED = 0, 1, 2


@dataclass
class Reply:
    """What the service said: ``status`` (HTTP), the report to print, and the data behind it."""

    status: int
    report: str
    data: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.status != 200 or self.data.get("problem"):
            return NOT_CHECKED if self.status != 200 else LOST
        return FULL if self.data.get("score") == self.data.get("max_score") else LOST


def service_url() -> str | None:
    """The check service's URL, or None: then checks stay local (self-study)."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    return url or None


def service_token() -> str | None:
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def guess_assignment(notebook: Path) -> str:
    """The assignment's name from the notebook's own name (the service says if it is not one)."""
    return notebook.stem


def load_notebook(path: Path) -> dict:
    """The saved notebook as JSON, outputs dropped (the service re-runs every cell and never returns them)."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{path.name} is {size / 1024 ** 2:.1f} MiB, more than the check service takes "
                         f"({MAX_NOTEBOOK_BYTES // 1024 ** 2} MiB): clear its outputs and save it again")
    try:
        nb = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path.name} is not a valid notebook (not JSON: {exc})") from None
    if not isinstance(nb, dict):
        raise ValueError(f"{path.name} is not a valid notebook (not a JSON object)")
    for cell in nb.get("cells", []) if isinstance(nb.get("cells"), list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def check_notebook(path: Path, assignment: str | None = None, url: str | None = None, token: str | None = None,
                   timeout: float | None = None) -> Reply:
    """Send ``path`` to the service; its reply (a refusal is a reply too, with the service's reason)."""
    url = url or service_url()
    if not url:
        raise ValueError(f"no check service configured (set {URL_VARIABLE})")
    token = token or service_token()
    if not token:
        return Reply(0, "The check service needs your identity, and this environment has no token "
                        f"({' or '.join(TOKEN_VARIABLES)} is not set). Ask your instructor.")
    path = Path(path)
    assignment = assignment or guess_assignment(path)
    body = json.dumps({"assignment": assignment, "notebook": load_notebook(path)}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/check", data=body, method="POST", headers={
        "Authorization": f"token {token}", "Content-Type": "application/json"})
    timeout = timeout or float(os.environ.get("COURSE_CHECK_TIMEOUT", DEFAULT_TIMEOUT))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the instructor's URL
            return _reply(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return _reply(exc.code, exc.read())
    except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out
        reason = getattr(exc, "reason", exc)
        return Reply(0, f"The check service at {url} could not be reached ({reason}). Your notebook was not "
                        "checked and no check was counted; try again in a minute, or tell your instructor.")


def _reply(status: int, raw: bytes) -> Reply:
    try:
        data = json.loads(raw)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if status == 200:
        lines = [str(data.get("report", ""))]
    else:
        lines = [f"Not checked: {data.get('error') or f'the check service answered HTTP {status}'}"]
    for key in ("waited", "budget_text"):
        if data.get(key) and str(data[key]) not in lines[0]:
            lines.append(str(data[key]))
    return Reply(status, "\n".join(line for line in lines if line), data)


def print_check(path: Path, assignment: str | None = None) -> int:
    """Check ``path`` with the service and print the reply; the exit code of ``course check``."""
    try:
        reply = check_notebook(path, assignment)
    except (OSError, ValueError) as exc:
        print(f"Not checked: {exc}")
        return NOT_CHECKED
    print(reply.report)
    return reply.exit_code
