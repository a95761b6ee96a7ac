# Two commands do everything: `make book` and `make test` (see README.md).
# Both create .venv with the pinned requirements on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch==2.13.0 from PyPI is the multi-GB CUDA build except on this project's machines (whose pip
# finds the CPU wheel on disk). Elsewhere: make book TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_VERSION := $(shell sed -n 's/^torch==\([^ #]*\).*/\1/p' requirements.txt)
# make robust SEEDS="1 2 3 4 5" CPUS=0   (CPUS: pin every notebook to these cores with taskset)
# make robust SEEDS="1 2 3" CPUS=0,1 JOBS=2   (two runs at a time, each on one core of its own)
SEEDS ?= 1 2 3
CPUS  ?=
JOBS  ?= 1

.PHONY: setup book test unit notebooks build-strict browser binder bench robust student course-time pins figures clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet --disable-pip-version-check --index-url $(TORCH_INDEX) "torch==$(TORCH_VERSION)+cpu")
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
	@touch $@

setup: $(STAMP)

# `jupyter-book build .`, reading (executing) two pages at a time (tools/build_book.py).
# Sphinx re-reads (re-executes) only the notebooks that changed since the last build, and
# every notebook when attention_course/ or the pins change (book/_ext/course_html.py).
book: $(STAMP)
	$(BIN)/python tools/build_book.py

test: unit notebooks build-strict binder browser

unit: $(STAMP)
	$(BIN)/python -m pytest tests/ --ignore=tests/browser --ignore=tests/binder

# Two notebooks at a time (pytest-xdist), each one whole in one worker (--dist loadfile).
notebooks: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env chapters/ book/

# Every page read and executed again, so that a warning on any page fails the build
# (`jupyter-book build . --all -W -n --keep-going`, two pages at a time).
build-strict: $(STAMP)
	$(BIN)/python tools/build_book.py --strict --all

# The built book in Chromium, and JupyterLab (started from the Binder environment) in Chromium.
browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser

# The Binder environment, built without Docker from binder/ (tools/binder_env.py), runs
# chapter 0, a training chapter and every student notebook as "Run All" does.
binder: $(STAMP)
	$(BIN)/python -m pytest tests/binder

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Every notebook's asserted claims at each of SEEDS (not part of make test: it takes long).
robust: $(STAMP)
	$(BIN)/python bench/robust.py --seeds $(SEEDS) --jobs $(JOBS) $(if $(CPUS),--cpus $(CPUS))

# Student versions of the exercise notebooks, made by nbgrader, into student/ (committed).
student: $(STAMP)
	$(BIN)/python tools/student.py

# book/course_time.md, the instructors' guide's time table (words, code cells, run times on one core).
course-time: $(STAMP)
	$(BIN)/python tools/course_time.py

# binder/requirements.txt, written from requirements.txt (the one list of pins).
# The concept figures, book/figures/*.svg, drawn by tools/diagrams/ (committed).
figures: $(STAMP)
	$(BIN)/python tools/figures.py

pins: $(STAMP)
	$(BIN)/python tools/pins.py

clean:
	rm -rf _build .pytest_cache .hypothesis
