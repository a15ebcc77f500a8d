# Deskbell's developer commands. `make demo` and `make test` set everything up from scratch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export QT_API := pyside6

.PHONY: demo run test check bench package system-packages clean

$(BIN)/deskbell: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

# Debian/Ubuntu libraries Qt needs (and the test servers); skipped where apt is absent. Only
# what is missing is installed, so `apt-get update` runs only then; apt waits up to 10 minutes
# for another apt or dpkg (an unattended upgrade) to let go of its lock instead of failing.
APT_WAIT := -o DPkg::Lock::Timeout=600
system-packages:
	@if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then \
	  missing=; \
	  for p in $$(grep -v '^#' packaging/debian-packages.txt); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q 'install ok installed' \
	      || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    echo "installing:$$missing"; \
	    $$SUDO apt-get $(APT_WAIT) update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get $(APT_WAIT) install -y -qq \
	      --no-install-recommends $$missing >/dev/null; \
	  fi; \
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

# Both halves always run; `make test` fails if either did. The offscreen half runs on
# TEST_WORKERS pytest-xdist workers (0: in one process): one per CPU that nproc counts (the
# affinity a container's cpuset sets; xdist's own `auto` counts physical cores, one on many 2-vCPU
# machines), at most 4, as a container may see many more CPUs than its quota lets it use.
# worksteal hands a worker that ran out of tests some of a busier one's, so a few long
# end-to-end files do not leave a worker idle.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -gt 4 ] && n=4; echo $$n)
test: system-packages $(BIN)/deskbell
	@status=0; \
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider --ignore=tests/xvfb \
	  -n $(TEST_WORKERS) --dist worksteal \
	  || status=$$?; \
	PYTHON=$(BIN)/python tests/xvfb/run.sh -p no:cacheprovider || status=$$?; \
	exit $$status

# The `bench` extra: what bench/bench_http.py compares aiohttp with (never the app's).
bench: $(BIN)/deskbell
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

# Linux installers from a PyInstaller bundle: dist/deskbell_<version>_<arch>.deb, the AppDir
# (an AppImage where appimagetool is installed) and a tarball (packaging/README.md).
package: system-packages $(BIN)/deskbell
	$(BIN)/python -m PyInstaller packaging/deskbell.spec --noconfirm --log-level WARN
	$(BIN)/python packaging/linux/build.py

clean:
	rm -rf $(VENV) build dist *.egg-info
