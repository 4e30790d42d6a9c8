# khttpd-book: every command a reader, student or instructor needs.
# `make book` builds the online book (the main job); `make test` runs every test.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: help venv book serve-book lab serve bench grade release kmod vmtest test lint clean

help:
	@echo "make book        build the online book into _build/html (main job)"
	@echo "make test        run every test (lint, Python tests, VM test of the kernel module)"
	@echo "make serve-book  serve _build/html on http://$(HOST):$(PORT)/"
	@echo "make lab         start JupyterLab on the chapters (book/) and exercises/"
	@echo "make serve       run the Python khttpd on port 8081 (Ctrl-C stops it)"
	@echo "make bench       run the benchmark lab (quick run)"
	@echo "make grade       grade the exercises in this tree; make release OUT=dir [FORCE=1]"
	@echo "make kmod        build kmod/khttpd.ko and kmod/htstress; make vmtest boots it in QEMU"

# The venv is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "error: Python's venv module is missing; on Debian run: sudo apt-get install python3-venv" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[book,dev,plot]'
	@touch $@

venv: $(STAMP)

book: $(STAMP)
	$(PY) -m khttpd_py.booktools build

serve-book:
	@test -f _build/html/index.html || { echo "error: no built book; run 'make book' first" >&2; exit 1; }
	@echo "Serving the book at http://$(HOST):$(PORT)/ (Ctrl-C stops)"
	$(PYTHON) -m http.server --bind $(HOST) --directory _build/html $(PORT)

# Rooted at the repository, so exercises/ is reachable too; it opens on book/.
lab: $(STAMP)
	@echo "JupyterLab: chapters in book/, exercises in exercises/NN-name/exercise.ipynb"
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --allow-root \
	  --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/book

serve: $(STAMP)
	$(PY) -m khttpd_py serve

bench: $(STAMP)
	$(PY) -m khttpd_py bench --quick

# make grade ARGS="--only 03 --json"
grade: $(STAMP)
	$(PY) -m exercises.grade $(ARGS)

OUT ?= release
release: $(STAMP)
	$(PY) -m exercises.release $(OUT) $(if $(FORCE),--force)

KDIR ?= $(firstword $(wildcard /usr/src/linux-headers-*-amd64))
kmod:
	$(MAKE) -C kmod KDIR=$(KDIR)

vmtest:
	$(MAKE) -C kmod check KDIR=$(KDIR)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# pytest's exit 5 (no tests collected) is a failure here like any other non-zero exit.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	@# the C load generator, so the tests that compare both htstress engines run too
	@$(MAKE) -s -C kmod htstress >/dev/null 2>&1 || echo "# note: kmod/htstress not built (no C compiler?); its tests will SKIP"
	$(PY) -m pytest
	./kmod/vmtest-or-skip.sh

clean:
	rm -rf _build .pytest_cache .ruff_cache
	-$(MAKE) -C kmod clean
