# Deskbell's developer commands. `make demo` and `make test` set everything up from scratch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export QT_API := pyside6

.PHONY: demo run test check bench system-packages clean

$(BIN)/deskbell: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

# Debian/Ubuntu libraries Qt needs (and the test servers); skipped where apt is absent.
system-packages:
	@if command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    $$(grep -v '^#' packaging/debian-packages.txt) >/dev/null; \
	fi

demo: system-packages $(BIN)/deskbell
	$(BIN)/deskbell --demo

run: $(BIN)/deskbell
	$(BIN)/deskbell

check: $(BIN)/deskbell
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services app
	$(BIN)/lint-imports

test: system-packages $(BIN)/deskbell
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/xvfb
	PYTHON=$(BIN)/python tests/xvfb/run.sh -p no:cacheprovider

bench: $(BIN)/deskbell
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info
