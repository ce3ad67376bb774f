# twinguard — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock

.PHONY: install system-packages deps kafka-jars demo test lint unit wheel-check lock clean

install: system-packages deps kafka-jars  ## Debian packages, venv + the locked Python dependencies, Kafka jars

system-packages:  ## Mosquitto, promtool and headless Chromium for the tests (apt-get, when missing)
	bash deploy/system-packages.sh

# Exactly the versions in the lock (what CI tested), then twinguard itself in editable mode.
deps: $(STAMP)
$(STAMP): pyproject.toml $(DEV_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=24'
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

kafka-jars: deps  ## the local broker's jars, fetched once with Maven into ~/.cache/twinguard
	@command -v mvn >/dev/null || { echo "Maven (mvn) is required to fetch the Kafka jars: apt-get install maven"; exit 1; }
	$(BIN)/twinguard kafka fetch

# Refresh the locks from pyproject.toml (then `make test`, and commit both files).
lock: deps
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --quiet -o $(DEV_LOCK)

demo: deps  ## the main job on the embedded simulated fleet, no Kafka
	$(BIN)/twinguard demo --out out/demo

lint: deps
	$(BIN)/ruff check pipelines operators schemas tests benchmarks
	$(BIN)/python tests/typecheck.py

unit: deps
	$(BIN)/python -m pytest tests/unit tests/flow -q

# The built wheel in a fresh venv outside the checkout, used from another directory.
wheel-check: deps kafka-jars
	bash tests/wheel/check.sh $(BIN)/python $(LOCK)

test: install lint  ## everything: lint, types, unit, flow and integration tests on a real broker, the wheel
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest tests/unit/operators/twin/test_kernels.py tests/unit/operators/detect/test_treewalk.py -q -p no:cacheprovider
	bash deploy/kafka/with-broker.sh $(BIN)/python -m pytest -q
	$(MAKE) wheel-check

clean:
	rm -rf $(VENV) out build dist *.egg-info
