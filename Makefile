# depth-pipeline: `make run` and `make test` set everything up on first use.
# Each target installs what it needs: run the package alone, test/lint the dev tools and
# every extra the tests cover, docs the docs tools (one stamp file per set in .venv/).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast test-all lint format bench docs clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package (what running needs)

run: $(STAMP) ## run the default pipeline on the built-in synthetic data (ARGS='key=value ...')
	$(BIN)/depth-pipeline $(ARGS)

# the tests cover the s3, torch and slurm extras and the strict docs build: installed for them (not by make run)
$(VENV)/.test-installed: $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,all-stores,torch,slurm,docs]'
	touch $@

# azurite (the Azure Blob server of the az:// tests) comes from npm into .stores/ (gitignored)
AZURITE := .stores/node_modules/.bin/azurite-blob
$(AZURITE):
	npm install --prefix .stores --no-audit --no-fund --silent azurite@3.37.0

test: $(VENV)/.test-installed $(AZURITE) ## run every test, slow ones included (what CI runs)
	$(BIN)/pytest -n 2 -q -rs

test-fast: $(VENV)/.test-installed $(AZURITE) ## run the tests not marked slow (a quick check while editing)
	$(BIN)/pytest -n 2 -q -m 'not slow'

test-all: test ## the same as make test (kept for old habits)

$(VENV)/.dev-installed: $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

lint: $(VENV)/.dev-installed ## ruff check + format check
	$(BIN)/ruff check pipeline tests
	$(BIN)/ruff format --check pipeline tests

format: $(VENV)/.dev-installed ## ruff format + import sort
	$(BIN)/ruff check --fix pipeline tests
	$(BIN)/ruff format pipeline tests

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,all-stores,bench,torch]'
	touch $@

bench: $(VENV)/.bench-installed $(AZURITE) ## benchmark on real photographs and synthetic renders (ARGS='--samples 600')
	$(BIN)/python -m pipeline.bench $(ARGS)

$(VENV)/.docs-installed: $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed ## regenerate the config reference, build the docs site into outputs/site/
	$(BIN)/python -m pipeline.docs.reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -f pipeline/docs/mkdocs.yml

clean: ## remove the venv, caches and outputs
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info .stores
	find . -name __pycache__ -prune -exec rm -rf {} +
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
