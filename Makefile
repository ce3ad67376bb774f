# twinguard — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KAFKA_LIB := deploy/kafka/lib
KAFKA_STAMP := $(KAFKA_LIB)/.fetched

.PHONY: install deps kafka-jars demo test lint unit clean

install: deps kafka-jars  ## venv + Python dependencies + Kafka broker jars

deps: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

kafka-jars: $(KAFKA_STAMP)
$(KAFKA_STAMP): deploy/kafka/pom.xml
	@command -v mvn >/dev/null || { echo "Maven (mvn) is required to fetch the Kafka jars: apt-get install maven"; exit 1; }
	rm -rf $(KAFKA_LIB)
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(KAFKA_LIB)
	touch $@

demo: deps  ## the main job on the embedded simulated fleet, no Kafka
	$(BIN)/twinguard demo --out out/demo

lint: deps
	$(BIN)/ruff check pipelines operators schemas tests benchmarks
	$(BIN)/mypy

unit: deps
	$(BIN)/python -m pytest tests/unit tests/flow -q

test: install lint  ## everything: lint, types, unit, flow and integration tests on a real broker
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest tests/unit/test_kernels.py tests/unit/test_treewalk.py -q -p no:cacheprovider
	bash deploy/kafka/with-broker.sh $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(KAFKA_LIB) out .twinguard
