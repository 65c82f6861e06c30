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
	@# Hindi in pictures is shaped by HarfBuzz through Pillow's libraqm, which loads FriBiDi from the system.
	@$(BIN)/python -c 'from PIL import features; raise SystemExit(not features.check("raqm"))' 2>/dev/null || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installing libfribidi0 (needed to draw Hindi text)"; \
	    apt-get install -y -q libfribidi0 >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libfribidi0 >/dev/null; }; \
	  else echo "Note: install libfribidi0 (e.g. sudo apt-get install libfribidi0) so Hindi text in pictures is shaped"; fi; }
	@# The dashboard's browser tests drive Debian's chromium through Playwright (its own browser download is not used).
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installing chromium (for the dashboard's browser tests)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else echo "Note: install chromium (e.g. sudo apt-get install chromium) to run the dashboard's browser tests"; fi; }
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
