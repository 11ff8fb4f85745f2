# Two commands set everything up:  `make run` (colour the samples into out/) and `make test`.
# Both create .venv on first use: torch first, from PyTorch's CPU index (on Linux a plain `pip
# install torch` from PyPI is the multi-GB CUDA build), falling back to the plain name where that
# index cannot be reached (a machine whose pip has a local wheel folder, or a mirror); then
# vidcolor with the extras each target needs. For CUDA: make TORCH_INDEX=https://download.pytorch.org/whl/cu128
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: run test lint clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --timeout 15 --retries 1 --index-url $(TORCH_INDEX) $(TORCH) \
		|| $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.core
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

run: $(VENV)/.core
	@mkdir -p out
	$(BIN)/vidcolor run samples/clip.mp4 out/clip_colour.mp4 --overwrite
	$(BIN)/vidcolor image samples/photos -o out/photos --overwrite
	@echo "coloured film: out/clip_colour.mp4   photos: out/photos/"

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
