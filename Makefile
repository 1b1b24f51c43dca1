# The course's commands. `make demo` and `make test` each work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lab build clean

# The virtual environment from the pinned requirements (reinstalled when they change).
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# The main job: build release/ and solutions/, grade the bundled example class, feedback, grades.csv, report.
demo: setup
	$(VENV)/bin/course build
	$(VENV)/bin/course grade 00_gradient_checking --submissions examples/class_00

# The whole test suite.
test: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# For students: JupyterLab on the course (loopback only; open the URL it prints, token included).
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) --no-browser release

build: setup
	$(VENV)/bin/course build

clean:
	rm -rf autograded feedback submitted downloaded gradebook.db grades.csv grade_report_*.txt
