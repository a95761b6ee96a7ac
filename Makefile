# Two commands do everything: `make book` and `make test` (see README.md).
# Both create .venv with the pinned requirements on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup book test unit notebooks build-strict browser bench robust student clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
	@touch $@

setup: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build .
	@echo
	@echo "Book built. Open: file://$(CURDIR)/_build/html/index.html"

test: unit notebooks build-strict browser

unit: $(STAMP)
	$(BIN)/python -m pytest tests/ --ignore=tests/browser

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env chapters/ book/

# The book caches executed notebooks (and Sphinx its doctrees) keyed on the notebooks
# alone; a change in attention_course would not invalidate them: start from scratch.
build-strict: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going

browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Every chapter's asserted claims at seeds 1, 2, 3 (not part of make test: minutes).
robust: $(STAMP)
	$(BIN)/python bench/robust.py

# Student versions of the exercise notebooks, made by nbgrader, into student/ (committed).
student: $(STAMP)
	$(BIN)/python tools/student.py

clean:
	rm -rf _build .pytest_cache .hypothesis
