# Two commands: `make book` builds the website, `make test` runs the unit tests and every
# chapter notebook. Both create (or reuse) the virtual environment .venv first.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
# Without an NVIDIA GPU, take PyTorch's CPU build (a few hundred MB instead of several GB).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

MATHJAX_ROOT ?= .mathjax
MATHJAX := $(MATHJAX_ROOT)/static/mathjax/tex-mml-chtml.js

.PHONY: book notebooks student check-site test venv clean check-colab check-minimums

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install "torch==$(TORCH_VERSION)"; \
	else \
		$(PY) -m pip install --retries 1 "torch==$(TORCH_VERSION)" --extra-index-url $(TORCH_CPU_INDEX); \
	fi
	$(PY) -m pip install -e ".[book,dev]"
	touch $(STAMP)

# MathJax 3.2, served with the website so that math renders offline. It comes from PyPI
# (django-static-mathjax, MathJax's own static files under Apache 2.0, no dependencies; in the
# [book] extra), so Python and make are all a reader needs: no Node or npm.
$(MATHJAX): $(STAMP)
	rm -rf $(MATHJAX_ROOT)/static && mkdir -p $(MATHJAX_ROOT)/static
	cp -r "$$($(PY) -c 'import mathjax, pathlib; print(pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5")')" \
		$(MATHJAX_ROOT)/static/mathjax

# `make book EDITION=student` also builds the student edition (every solution left out, the same
# executed outputs, _build/student/_build/html) and checks it against the teacher edition.
EDITION ?= teacher

# Each chapter executed once into _build/executed (tools/book_build.py): the website, the student
# edition and `make test` all read that execution; a chapter runs again only when it or the package
# changed. FORCE=1 executes every chapter again.
notebooks: $(STAMP)
	$(PY) tools/book_build.py execute $(if $(FORCE),--force)

book: notebooks $(MATHJAX)
	$(PY) tools/book_build.py html
	@echo "The website is in _build/html/index.html"
	if [ "$(EDITION)" = student ]; then $(MAKE) student; \
	elif [ "$(EDITION)" != teacher ]; then echo "EDITION must be teacher or student, got $(EDITION)"; exit 2; fi

# The student edition from the chapters the teacher edition shows, then its page-by-page check.
student: $(STAMP)
	$(PY) tools/student_edition.py build && $(PY) tools/student_edition.py check

# Internal links, then every page in headless Chromium (console errors, failed requests, raw TeX);
# screenshots in _build/screenshots. Needs a built book.
check-site: $(STAMP)
	$(PY) tools/check_site.py _build/html --screenshots _build/screenshots

test: $(STAMP)
	$(PY) -m pytest tests book --durations=10  # each chapter: one test on its one execution (conftest.py)

# The package on other software stacks (tools/stack_check.py; each in its own environment under
# _build/stacks): Colab's preinstalled versions (stacks/colab-gpu.txt), the install cell, the unit
# tests and two chapters; and the oldest Python and dependency versions pyproject.toml allows.
check-colab: $(STAMP)
	$(PY) tools/stack_check.py colab $(if $(SUBSET),--subset)

check-minimums: $(STAMP)
	$(PY) tools/stack_check.py minimums $(if $(SUBSET),--subset)

clean:
	rm -rf _build .pytest_cache .mathjax
