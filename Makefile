# The course's commands. `make demo` and `make test` each work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lab build clean browser-deps sandbox-deps classroom classroom-down

# The virtual environment from the pinned requirements (reinstalled when they change).
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# The main job: build release/ and solutions/, grade the bundled example class (30 students, notebooks 00 and
# 08: feedback, grades.csv, a grade report each), then the class report: what the class got wrong.
demo: setup sandbox-deps
	$(VENV)/bin/course build
	$(VENV)/bin/course grade --all --submissions examples/class
	$(VENV)/bin/course report --all

# The whole test suite: first in parallel, one pytest-xdist worker per core (TEST_WORKERS=1 for one), then
# the tests marked `serial` (they start processes of their own or have time limits) alone, one at a time.
# Each notebook is built once per run and shared between the tests of both passes (tests/conftest.py:
# shared_build, in the folder COURSE_TEST_BUILD names).
TEST_WORKERS ?= auto
test: setup sandbox-deps browser-deps
	@status=0; build=$$(mktemp -d -t course-test-build-XXXXXX); export COURSE_TEST_BUILD=$$build; \
	echo "pytest -n $(TEST_WORKERS) -m 'not serial'"; \
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup -m "not serial" || status=$$?; \
	echo "pytest -m serial"; \
	$(PY) -m pytest -q -p no:cacheprovider -m serial || status=$$?; \
	rm -rf "$$build"; exit $$status

# bubblewrap isolates the students' code while grading (file system, network, own user); from Debian's
# package when missing and we are root with apt-get. Without it grading still works with fewer protections
# (the grade report names those that were active).
sandbox-deps:
	@if ! command -v bwrap >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's bubblewrap for the grading sandbox (apt-get)..."; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap ) >/dev/null 2>&1 \
			|| echo "Could not install bubblewrap: grading runs with fewer protections."; \
	fi; true

# Headless Chromium for tests/browser, from Debian's package (playwright never downloads a browser).
# Installed only when missing and we are root with apt-get; if it cannot be, those tests skip and say why.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests (apt-get)..."; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ) >/dev/null 2>&1 \
			|| echo "Could not install chromium: the browser tests will be skipped."; \
	fi; true

# JupyterLab on the course with nbgrader (assignment list and Validate for students, formgrader for
# instructors): 127.0.0.1 only, with a token (open the URL it prints). Settings: jupyter_server_config.py.
# It runs in the course root, where nbgrader's extensions find nbgrader_config.py.
lab: setup
	cd $(CURDIR) && $(VENV)/bin/jupyter lab --config=$(CURDIR)/jupyter_server_config.py \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# JupyterHub on this machine (root): an instructor and demo students as Unix users, the exchange, the
# formgrader, each student's server with the student edition only (course/hub.py). Prints the URLs and logins.
# CLASSROOM_ARGS, e.g. "--port 8100 --state /srv/other-class --check-budget 5" (course classroom up --help).
CLASSROOM_ARGS ?=
classroom: setup sandbox-deps
	$(VENV)/bin/course classroom up $(CLASSROOM_ARGS)

classroom-down: setup
	$(VENV)/bin/course classroom down $(CLASSROOM_ARGS)

build: setup
	$(VENV)/bin/course build

clean:
	rm -rf autograded feedback submitted downloaded gradebook.db grades.csv grade_report_*.txt
