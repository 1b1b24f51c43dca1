"""JupyterLab for this course (`make lab`): loopback only, a token, the course as root, nbgrader on,
the formgrader escaped and behind a Content-Security-Policy, no terminal.

Passed explicitly (`jupyter lab --config=jupyter_server_config.py`), never copied to ~/.jupyter.
JupyterLab must be started in the course root (the Makefile does): nbgrader's server extensions read
`nbgrader_config.py` from the server's current folder, so the formgrader finds this course there.
"""

import os

c = get_config()  # noqa: F821  (injected by traitlets when Jupyter loads this file)

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

# Loopback only, with a token (generated at each start and printed in the URL); no browser opened.
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.allow_remote_access = False
c.ServerApp.open_browser = False
c.ServerApp.root_dir = COURSE_ROOT  # the course root (not release/: the formgrader needs the course inside)
c.LabApp.default_url = "/lab/tree/release"  # students start in release/

# nbgrader 0.9.6: the formgrader (instructors), the assignment list, Validate and the course list (students).
# The formgrader is loaded by course.formgrader_safety, never by nbgrader's own entry (that one prints ids and
# names as HTML: issue 23): it escapes what the formgrader shows and puts its pages behind a CSP.
# Off: terminals (a shell, as the server's user, for any script that runs in this origin: nothing here needs
# one; `course` commands run in the shell that started `make lab`, and `%check` in a notebook) and the
# language-server proxy (jupyter_lsp: would start language servers; none is used). Kernels stay (notebooks
# need them), so the escaping above, not this, is what keeps a student's markup from running code here.
c.ServerApp.jpserver_extensions = {
    "course.formgrader_safety": True,
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.assignment_list": True,
    "nbgrader.server_extensions.course_list": True,
    "nbgrader.server_extensions.validate_assignment": True,
    "jupyter_server_terminals": False,
    "jupyter_lsp": False,
}
c.ServerApp.terminals_enabled = False

# Offline: no update check and no news feed (both would try to reach the internet).
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.news_url = None
# The extension manager would query PyPI; students install nothing from JupyterLab here.
c.LabApp.extension_manager = "readonly"
