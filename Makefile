# Two commands do everything: `make book` and `make test` (see README.md).
# Both create .venv with the pinned requirements on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup book test unit notebooks build-strict bench clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
	@touch $@

setup: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build .
	@echo
	@echo "Book built. Open: file://$(CURDIR)/_build/html/index.html"

test: unit notebooks build-strict

unit: $(STAMP)
	$(BIN)/python -m pytest tests/

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env chapters/

build-strict: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf _build .pytest_cache .hypothesis
