# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check i18n bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/saathi run

test: $(STAMP)
	$(BIN)/saathi check
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/saathi check

i18n: $(STAMP)
	$(BIN)/saathi i18n

bench: $(STAMP)
	$(BIN)/python bench/conversations.py

clean:
	rm -rf $(VENV) .pytest_cache
