"""A graded class on JupyterHub, in real browsers: one headless Chromium context per user.

``course classroom up`` (course/hub.py) on a state folder of this test's own and free ports: JupyterHub with
an instructor and three students as real Unix users. Then:

1. the instructor logs in, opens the formgrader (a page of its own: JupyterHub >= 4.1 forbids the iframe Lab
   would use, nbgrader#1870) and, with its buttons, generates and releases notebook 00;
2. each student logs in, fetches it in Lab's Assignment List, answers (the notebook written through the
   Jupyter contents API from the student's own page: cookie and XSRF token), opens it in Lab and runs it
   (``%check`` first), and submits with the Assignment List's button: ``ada`` with every reference answer,
   ``ben`` with a named mistake of the catalog (``affine_backward``: dW averaged over the batch), ``cleo`` with
   every reference answer, after a notebook of her own that reads what she can (nnlab's reference, ada's
   submission by its real name) and hands in a forged ``ada+...`` submission;
3. the instructor collects (``course collect --exchange``, owners checked), grades (``course grade``) and
   releases the feedback (``course release-feedback --owner-only``), as root;
4. each student fetches their feedback in the Assignment List and reads their own score; then each runs a
   notebook that tries to read the instructor's course folder, gradebook.db, source/, the full library, a
   classmate's home, submission and feedback (by their real names), and a classmate's server through the hub.

What each student could read is written to ``tests/artifacts/classroom/access.json`` and the cycle's time
(first log-in to the last student's feedback) to ``timing.json``. Skipped, with the reason, without root,
node/npm, bubblewrap, playwright or Chromium.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course.classroom import feedback_score
from course.notebooks import grade_cells, grade_id, read_notebook, reference_answers
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.serial]

A = "00_gradient_checking"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("COURSE_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "classroom"
TIMEOUT_MS = 180_000
MISTAKE = "dW averaged over the batch"
CHECK_BUDGET = 2  # ada checks once more than that: the last is refused


def _missing() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the classroom creates Unix users and starts servers as them: run as root"
    for tool, why in (("node", "JupyterHub's proxy"), ("npm", "installing JupyterHub's proxy"),
                      ("bwrap", "each student's view of the machine"), ("useradd", "the demo users")):
        if not shutil.which(tool):
            return f"{tool} is missing ({why})"
    try:
        import jupyterhub  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (requirements.txt: `make setup`)"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (`make browser-deps`, or set CHROMIUM=/path/to/chromium)"
    return None


if _missing():
    pytest.skip(_missing(), allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from course import hub  # noqa: E402

expect.set_options(timeout=TIMEOUT_MS)  # the first formgrader page makes the gradebook: seconds, on a busy machine


def free_port_block(n: int = 4) -> int:
    """A port p with p..p+n-1 free on 127.0.0.1 (the hub uses four)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65000:
            continue
        try:
            socks = []
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


def reset_home(name: str) -> None:
    """The demo users stay between runs; what a previous run left in their homes goes."""
    home = Path(pwd.getpwnam(name).pw_dir)
    for entry in home.iterdir():
        if entry.name not in (".bashrc", ".profile", ".bash_logout"):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def user_pids() -> list[str]:
    uids = {pwd.getpwnam(n).pw_uid for n in (hub.INSTRUCTOR, *hub.STUDENTS)}
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid in uids:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120]
                found.append(f"{entry.name}: {cmdline!r}")
        except OSError:
            pass
    return found


# The test's own classroom folder: its environments (hard links, built in about a minute) are kept between
# runs and rebuilt when the course's code changes; everything else is made fresh and removed afterwards.
TEST_STATE = Path("/srv/nn-classroom-test")


def _clear_state(state: Path) -> None:
    for entry in state.iterdir():
        if entry.name != "envs":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


@pytest.fixture(scope="module")
def classroom():
    """`course classroom up` on a fresh state folder; `down` afterwards, checked to leave nothing running."""
    state = TEST_STATE
    state.mkdir(parents=True, exist_ok=True)
    _clear_state(state)
    layout = hub.Layout(state, free_port_block(), check_budget=CHECK_BUDGET, check_window_hours=1)
    hub.ensure_users()
    for name in (hub.INSTRUCTOR, *hub.STUDENTS):
        reset_home(name)
    started = time.monotonic()
    try:
        hub.up(layout, stage="00")
        layout.up_seconds = time.monotonic() - started
        yield layout
    finally:
        hub.down(layout)
        deadline = time.monotonic() + 20
        while user_pids() and time.monotonic() < deadline:
            time.sleep(0.5)
        left = user_pids()
        hub_left = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True).stdout.split()
        _clear_state(state)
        assert not left, f"processes of the classroom's users left after `down`: {left}"
        assert not hub_left, f"processes of this hub left after `down`: {hub_left}"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


def passwords(layout) -> dict[str, str]:
    return json.loads(layout.passwords.read_text())


def log_in(browser: Browser, layout, name: str) -> Page:
    """A fresh browser context for one user: the hub's log-in form, then their server's Lab."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{layout.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", passwords(layout)[name])
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf".*/user/{name}/lab.*"), timeout=TIMEOUT_MS)
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").wait_for()
    return page


API_JS = """async ([method, url, body]) => {
    const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
    const reply = await fetch(url, {method, credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf)},
        body: body === null ? undefined : JSON.stringify(body)});
    return {status: reply.status, text: await reply.text()};
}"""


def api(page: Page, method: str, url: str, body: object = None) -> dict:
    """A request from this user's page, as Lab's own would be (their cookie, their XSRF token)."""
    return page.evaluate(API_JS, [method, url, body])


def contents(page: Page, name: str, path: str) -> dict:
    reply = api(page, "GET", f"/user/{name}/api/contents/{path}?content=1")
    assert reply["status"] == 200, f"{name}: GET {path}: {reply['status']} {reply['text'][:300]}"
    return json.loads(reply["text"])


def put_notebook(page: Page, name: str, path: str, nb) -> None:
    reply = api(page, "PUT", f"/user/{name}/api/contents/{path}",
                {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))})
    assert reply["status"] in (200, 201), f"{name}: PUT {path}: {reply['status']} {reply['text'][:300]}"


def menu(page: Page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"
OUTPUTS_JS = f"""() => [...document.querySelectorAll({CELLS!r})].map(cell => {{
    const out = cell.querySelector('.jp-OutputArea');
    return out ? out.textContent : '';
}})"""


def open_and_run(page: Page, base: str, name: str, path: str, n_cells: int, until: str) -> list[str]:
    """Open a notebook in this user's Lab, Run All Cells, wait until an output holds ``until`` and the kernel is
    idle again; the cells' outputs."""
    page.goto(f"{base}/user/{name}/lab/tree/{path}")
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_function(f"() => document.querySelectorAll({CELLS!r}).length >= {n_cells}")
    page.wait_for_timeout(1000)
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        screenshot(page, f"dialog_{name}.png")
        pytest.fail(f"{name}: a dialog in Lab when opening {path}: {dialog.first.inner_text()[:500]}")
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(f"() => ({OUTPUTS_JS})().some(t => t.includes({until!r}))", timeout=TIMEOUT_MS)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=TIMEOUT_MS)
    return page.evaluate(OUTPUTS_JS)


def assignment_list(page: Page) -> None:
    menu(page, "Nbgrader", "Assignment List")
    expect(page.locator("#released_assignments_list, #fetched_assignments_list").first).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def as_root_in_course(layout, *args: str) -> str:
    """A `course` command as the instructor's tools run it: root, in the instructor's course folder."""
    env = {**os.environ, "COURSE_ROOT": str(layout.course), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=layout.course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"course {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


SNOOP = r'''
import inspect, json, os, urllib.error, urllib.request
TARGETS = json.loads({targets!r})
def attempt(path):
    try:
        if os.path.isdir(path):
            return "LISTED %d entries" % len(os.listdir(path))
        with open(path, "rb") as f:
            return "READ %d bytes" % len(f.read())
    except Exception as e:
        return type(e).__name__
found = {{label: attempt(path) for label, path in TARGETS["read"].items()}}
for label, path in TARGETS["write"].items():
    try:
        with open(path, "w") as f:
            f.write("overwritten")
        found[label] = "WROTE"
    except Exception as e:
        found[label] = type(e).__name__
import nnlab.gradcheck
found["inspect.getsource(nnlab.gradcheck.numerical_gradient)"] = inspect.getsource(nnlab.gradcheck.numerical_gradient)
try:
    nnlab.gradcheck.numerical_gradient(lambda v: 0.0, __import__("numpy").zeros(2))
    found["calling nnlab.gradcheck.numerical_gradient"] = "RETURNED"
except Exception as e:
    found["calling nnlab.gradcheck.numerical_gradient"] = f"{{type(e).__name__}}: {{e}}"
request = urllib.request.Request(TARGETS["classmate_server"],
                                 headers={{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}})
try:
    urllib.request.urlopen(request, timeout=20)
    found["classmate's server through the hub (own token)"] = "OPENED"
except urllib.error.HTTPError as e:
    found["classmate's server through the hub (own token)"] = "HTTP %d" % e.code
print("SNOOP" + json.dumps(found))
'''

FORGE = r'''
import os, secrets, shutil, time
inbound = {inbound!r}
name = "ada+{assignment}+" + time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime(time.time() + 60)) + "+forged"
folder = os.path.join(inbound, name)
os.mkdir(folder)
shutil.copy({notebook!r}, os.path.join(folder, "{assignment}.ipynb"))
open(os.path.join(folder, "timestamp.txt"), "w").write(name.split("+")[2])
open(os.path.join(folder, "submission_secret.txt"), "w").write(secrets.token_hex(64))
print("FORGED " + name)
'''


def snoop_targets(layout, who: str, classmate: str, classmate_submission: str | None,
                  feedback_names: dict[str, str]) -> dict:
    inbound = layout.exchange / hub.COURSE_ID / "inbound"
    feedback = layout.exchange / hub.COURSE_ID / "feedback"
    site = hub._site_packages(layout.instructor_env)
    read = {
        "repository: lib/nnlab/gradcheck.py": ROOT / "lib" / "nnlab" / "gradcheck.py",
        "repository: source/ notebook 00 (solutions, hidden tests)": ROOT / "source" / A / f"{A}.ipynb",
        "repository: course/checks/gradient_checking.py": ROOT / "course" / "checks" / "gradient_checking.py",
        "/root": Path("/root"),
        "instructor's course folder": layout.course,
        "instructor's gradebook.db": layout.course / "gradebook.db",
        "instructor's source/ notebook 00": layout.course / "source" / A / f"{A}.ipynb",
        "full library (instructor's environment)": site / "nnlab" / "gradcheck.py",
        "hub's passwords": layout.passwords,
        f"classmate's home ({classmate})": Path(pwd.getpwnam(classmate).pw_dir),
        f"classmate's notebook ({classmate})": Path(pwd.getpwnam(classmate).pw_dir) / A / f"{A}.ipynb",
        "exchange inbound (list)": inbound,
        "exchange feedback (list)": feedback,
        "own feedback in the exchange (its name)": feedback / f"{feedback_names[who]}.html",
        f"classmate's feedback in the exchange ({classmate}, its real name)": feedback / f"{feedback_names[classmate]}.html",
        "released notebook (outbound)": layout.exchange / hub.COURSE_ID / "outbound" / A / f"{A}.ipynb",
    }
    write = {}
    if classmate_submission:
        read[f"classmate's submission ({classmate}, its real name)"] = inbound / classmate_submission / f"{A}.ipynb"
        write[f"overwrite classmate's submission ({classmate})"] = inbound / classmate_submission / f"{A}.ipynb"
    return {"read": {k: str(v) for k, v in read.items()}, "write": {k: str(v) for k, v in write.items()},
            "classmate_server": f"{layout.url}/user/{classmate}/api/contents"}


def reference_lines(name: str = "numerical_gradient") -> set[str]:
    """The lines of the full library's reference body (docstring left out) of an exercise of notebook 00."""
    import ast

    tree = ast.parse((ROOT / "lib" / "nnlab" / "gradcheck.py").read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    body = node.body[1:] if ast.get_docstring(node) else node.body
    return {line.strip() for stmt in body for line in ast.unparse(stmt).splitlines() if len(line.strip()) > 12}


def assert_no_reference(saw: dict) -> None:
    source = saw["inspect.getsource(nnlab.gradcheck.numerical_gradient)"]
    leaked = reference_lines() & {line.strip() for line in source.splitlines()}
    assert not leaked, f"the student's nnlab holds the reference of numerical_gradient: {leaked}"
    called = saw["calling nnlab.gradcheck.numerical_gradient"]
    assert "exercise" in called and "00" in called, called


def max_points() -> float:
    return float(sum(c.metadata.nbgrader["points"] for c in grade_cells(read_notebook(ROOT / "source" / A / f"{A}.ipynb"))))


def answered(release_nb, answers: dict[str, str], edits: dict[str, str] | None = None, checks: int = 1):
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers:
            cell.source = (edits or {}).get(gid, answers[gid])
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    for _ in range(checks):
        nb.cells.insert(setup + 1, nbformat.v4.new_code_cell("%check"))
    return nb


def inbound_of(layout, student: str) -> list[str]:
    inbound = layout.exchange / hub.COURSE_ID / "inbound"
    return sorted(p.name for p in inbound.iterdir()
                  if p.name.startswith(f"{student}+{A}+") and p.stat().st_uid == pwd.getpwnam(student).pw_uid)


def test_the_whole_cycle_in_browsers(classroom, browser):
    layout = classroom
    from tests.course.catalogs import catalog_00

    mistake = next(code for ex, label, code, _ in catalog_00.MISTAKES if label == MISTAKE)
    answers = reference_answers(read_notebook(ROOT / "source" / A / f"{A}.ipynb"))
    check_service = bool(hub.check_service_entry(layout)[0])
    timings: dict[str, float] = {"course classroom up (first, in this test)": round(layout.up_seconds, 1)}
    access: dict[str, dict] = {}

    # 1. the instructor releases notebook 00 with the formgrader's buttons
    teacher = log_in(browser, layout, hub.INSTRUCTOR)
    teacher.goto(f"{layout.url}/user/{hub.INSTRUCTOR}/formgrader/manage_assignments")
    row = teacher.locator("#main-table tr", has_text=A)
    expect(row).to_be_visible()
    row.locator(".glyphicon-education").click()
    expect(teacher.locator("#success-modal")).to_be_visible()
    teacher.locator("#success-modal .modal-footer button", has_text="OK").click()
    expect(teacher.locator("#success-modal")).to_have_count(0)
    row.locator(".glyphicon-cloud-upload").click()
    expect(teacher.locator("#success-modal")).to_be_visible()
    teacher.locator("#success-modal .modal-footer button", has_text="OK").click()
    expect(row).to_contain_text("released")
    screenshot(teacher, "01_instructor_released.png")
    released = layout.exchange / hub.COURSE_ID / "outbound" / A / f"{A}.ipynb"
    assert released.is_file(), "the formgrader's Release put notebook 00 in the exchange"
    release_nb = nbformat.read(released, as_version=4)
    assert "BEGIN SOLUTION" not in released.read_text() and "BEGIN HIDDEN" not in released.read_text()

    # 2. three students log in, fetch, answer, run (%check), submit
    cycle_start = time.monotonic()
    pages: dict[str, Page] = {}
    plans = {"ada": answered(release_nb, answers, checks=CHECK_BUDGET + 1 if check_service else 1),
             "ben": answered(release_nb, answers, {"affine_backward": mistake}),
             "cleo": answered(release_nb, answers)}
    check_reports: dict[str, str] = {}
    for name in hub.STUDENTS:
        page = pages[name] = log_in(browser, layout, name)
        assignment_list(page)
        released_list = page.locator("#released_assignments_list")
        expect(released_list).to_contain_text(A)
        released_list.get_by_role("button", name="Fetch").click()
        fetched = page.locator("#fetched_assignments_list")
        expect(fetched).to_contain_text(A)
        path = f"{A}/{A}.ipynb"
        assert contents(page, name, path)["type"] == "notebook", "fetched into the student's home"
        put_notebook(page, name, path, plans[name])
        outputs = open_and_run(page, layout.url, name, path, len(plans[name].cells), until="the saved file")  # "Checking ..." (local), "Sending ..." (the service)
        check_reports[name] = [outputs[i] for i, c in enumerate(plans[name].cells) if c.source == "%check"]
        screenshot(page, f"02_{name}_notebook.png")
        if name == "cleo":  # before handing in: what she can read of nnlab and of ada's submission; a forgery
            ada_submission = inbound_of(layout, "ada")
            assert ada_submission, "ada has submitted"
            attack = nbformat.v4.new_notebook(metadata=release_nb.metadata, cells=[
                nbformat.v4.new_code_cell(SNOOP.format(targets=json.dumps(snoop_targets(
                    layout, "cleo", "ada", ada_submission[-1], {"cleo": "x", "ada": "x"})))),
                nbformat.v4.new_code_cell(FORGE.format(inbound=str(layout.exchange / hub.COURSE_ID / "inbound"),
                                                       assignment=A, notebook=f"{A}/{A}.ipynb"))])
            put_notebook(page, name, "attack.ipynb", attack)
            out = open_and_run(page, layout.url, name, "attack.ipynb", 2, until="FORGED")
            access["cleo, before grading"] = json.loads(re.search(r"SNOOP(\{.*\})", "".join(out)).group(1))
        assignment_list(page)
        fetched = page.locator("#fetched_assignments_list")
        fetched.get_by_role("button", name="Submit").click()
        expect(page.locator("#submitted_assignments_list")).to_contain_text(A)
        assert inbound_of(layout, name), f"{name}'s submission is in the exchange, owned by {name}"
        screenshot(page, f"03_{name}_submitted.png")
    timings["3 students: log-in, fetch, answer, run, submit"] = round(time.monotonic() - cycle_start, 1)

    # each submission is its author's alone: a 0700 folder, 0600 files (PrivateSubmit)
    inbound = layout.exchange / hub.COURSE_ID / "inbound"
    for name in hub.STUDENTS:
        folder = inbound / inbound_of(layout, name)[-1]
        assert (folder.stat().st_mode & 0o777) == 0o700, oct(folder.stat().st_mode)
        assert all((p.stat().st_mode & 0o777) == 0o600 for p in folder.iterdir())
    cleo_saw = access["cleo, before grading"]
    assert_no_reference(cleo_saw)
    for label, result in cleo_saw.items():
        if label.startswith(("repository", "instructor", "full library", "hub's", "classmate", "/root",
                             "exchange inbound", "overwrite")):
            assert result in ("FileNotFoundError", "PermissionError", "HTTP 403", "HTTP 404"), (label, result)

    # %check: answered by the check service, or, without one, nothing is graded in the student's server
    top = max_points()
    points = re.compile(rf"(\d+(?:\.\d+)?)\s*/\s*{top:g}\b")  # "15 / 18": a score out of the notebook's points
    for name, reports in check_reports.items():
        for report in reports:
            assert "check_affine_backward" not in report and "BEGIN HIDDEN" not in report, report
        if not check_service:
            assert not points.search(reports[0]), \
                f"{name}'s %check graded in the student's server (it has no hidden tests): {reports[0][-500:]}"
    if check_service:
        expected = {"ada": top, "ben": top - 3, "cleo": top}
        for name, reports in check_reports.items():
            found = points.search(reports[0])
            assert found and float(found.group(1)) == expected[name], f"{name}'s %check: {reports[0][-800:]}"
        assert points.search(check_reports["ada"][CHECK_BUDGET - 1]), "within the budget: answered"
        refused = check_reports["ada"][CHECK_BUDGET]
        assert not points.search(refused) and "left" in refused, f"check {CHECK_BUDGET + 1} of {CHECK_BUDGET}: {refused}"

    # 3. the instructor collects (owners checked), grades, releases the feedback
    t = time.monotonic()
    collected = as_root_in_course(layout, "collect", A, "--exchange", str(layout.exchange), "--course-id", hub.COURSE_ID)
    assert "forged" in collected and "belongs to the Unix user cleo" in collected, collected
    timings["course collect"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    as_root_in_course(layout, "grade", A)
    timings["course grade (3 students)"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    released_fb = as_root_in_course(layout, "release-feedback", A, "--exchange", str(layout.exchange),
                                    "--course-id", hub.COURSE_ID, "--owner-only")
    assert "3 student(s)" in released_fb, released_fb
    timings["course release-feedback"] = round(time.monotonic() - t, 1)

    # 4. each student fetches their feedback and sees their own score
    from nbgrader.utils import notebook_hash

    feedback_names = {}
    for name in hub.STUDENTS:
        secret = (layout.course / "feedback" / name / A / "submission_secret.txt").read_text().strip()
        feedback_names[name] = notebook_hash(secret=secret, notebook_id=A)
    scores = {}
    for name in hub.STUDENTS:
        page = pages[name]
        assignment_list(page)
        page.locator("#submitted_assignments_list").get_by_role("button", name="Fetch Feedback").click()
        deadline = time.monotonic() + 60
        while True:
            listing = api(page, "GET", f"/user/{name}/api/contents/{A}/feedback")
            if listing["status"] == 200 and json.loads(listing["text"])["content"]:
                break
            assert time.monotonic() < deadline, f"{name} fetched no feedback: {listing}"
            time.sleep(1)
        stamp = sorted(e["name"] for e in json.loads(listing["text"])["content"])[-1]
        html = contents(page, name, f"{A}/feedback/{stamp}/{A}.html")["content"]
        scores[name] = feedback_score(html)
        page.goto(f"{layout.url}/user/{name}/files/{A}/feedback/{stamp}/{A}.html")
        screenshot(page, f"04_{name}_feedback.png")
        page.goto(f"{layout.url}/user/{name}/lab")
    timings["cycle: first student's log-in to the last one's feedback"] = round(time.monotonic() - cycle_start, 1)

    assert scores["ada"] == (top, top), scores
    assert scores["cleo"] == (top, top), f"cleo's forged 'ada' submission changed nothing of hers: {scores}"
    assert scores["ben"] == (top - 3, top), f"ben loses affine_backward's hidden points ({MISTAKE}): {scores}"

    # ... and nothing of another's: through the hub, and from a notebook
    for i, name in enumerate(hub.STUDENTS):
        classmate = hub.STUDENTS[(i + 1) % len(hub.STUDENTS)]
        page = pages[name]
        other = api(page, "GET", f"/user/{classmate}/api/contents/{A}")
        assert other["status"] != 200 or '"content"' not in other["text"], \
            f"{name} read {classmate}'s files through the hub: {other['text'][:300]}"
        access[f"{name}: GET /user/{classmate}/api/contents from {name}'s browser"] = other["status"]
        targets = snoop_targets(layout, name, classmate, inbound_of(layout, classmate)[-1], feedback_names)
        put_notebook(page, name, "snoop.ipynb", nbformat.v4.new_notebook(
            metadata=release_nb.metadata, cells=[nbformat.v4.new_code_cell(SNOOP.format(targets=json.dumps(targets)))]))
        out = open_and_run(page, layout.url, name, "snoop.ipynb", 1, until="SNOOP")
        saw = access[name] = json.loads(re.search(r"SNOOP(\{.*\})", "".join(out)).group(1))
        assert saw["own feedback in the exchange (its name)"].startswith("READ"), saw
        assert saw["released notebook (outbound)"].startswith("READ"), saw
        assert_no_reference(saw)
        for label, result in saw.items():
            if label.startswith(("repository", "instructor", "full library", "hub's", "classmate", "/root",
                                 "exchange inbound", "exchange feedback", "overwrite")):
                assert result in ("FileNotFoundError", "PermissionError", "HTTP 403", "HTTP 404"), (name, label, result)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "access.json").write_text(json.dumps(access, indent=1))
    (ARTIFACTS / "timing.json").write_text(json.dumps({"timings_s": timings, "scores": scores,
                                                       "check_service": check_service,
                                                       "check_reports": check_reports}, indent=1))
    print(json.dumps(timings, indent=1))
