# The README's two commands: `make demo` and `make test`. Both set up .venv on first use
# (torch==2.13.0 first, so pip does not pull a CUDA build, then the project with dev
# extras) and skip what is already installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench pose tui clean-venv help

help:
	@echo "make demo   train the demo preset on the built-in synthetic dataset"
	@echo "make test   ruff check + pytest"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make tui    open the terminal UI (slr-tui)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch-$(TORCH_VERSION): | $(BIN)/python
	$(PIP) install "torch==$(TORCH_VERSION)"
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch-$(TORCH_VERSION)
	$(PIP) install -e ".[dev]"
	@touch $@

# MediaPipe 0.10.21 (the last release that ships the Holistic models) declares numpy<2,
# which would downgrade numpy under pandas 3; it runs fine on numpy 2, so it is installed
# without its declared dependencies, plus the ones it really imports.
MEDIAPIPE_VERSION ?= 0.10.21
$(VENV)/.mediapipe-$(MEDIAPIPE_VERSION): $(VENV)/.installed
	$(PIP) install --no-deps "mediapipe==$(MEDIAPIPE_VERSION)"
	$(PIP) install absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib sounddevice scikit-image
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/slr run --preset demo

lint: $(VENV)/.installed
	$(BIN)/ruff check .

pose: $(VENV)/.mediapipe-$(MEDIAPIPE_VERSION)

test: $(VENV)/.installed $(VENV)/.mediapipe-$(MEDIAPIPE_VERSION)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

tui: $(VENV)/.installed
	$(BIN)/slr-tui

bench: $(VENV)/.installed
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
