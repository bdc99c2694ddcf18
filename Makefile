# The README's two commands: `make run` (main job on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint unit integration e2e compose-e2e benchmark evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first and pinned: anything that depends on torch would otherwise pull a CUDA build of several GB.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,otel]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/plantwatch run

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q tests -m "not integration and not e2e"

integration: install
	$(BIN)/pytest -q tests -m "integration"

e2e: install
	$(BIN)/pytest -q tests -m "e2e"

test: lint
	$(BIN)/pytest -q tests

# The compose stack end to end in real containers (needs root on Debian: it installs and starts Docker when
# missing and builds the base images without a registry). See docs/deployment.md.
compose-e2e: install
	docker/local/start-docker.sh
	docker/local/build-base-images.sh $(abspath $(BIN))/pip
	PLANTWATCH_COMPOSE_E2E=1 $(BIN)/pytest -q -s -p no:cacheprovider -m compose tests/compose

# The plain rule at the 99 % normal quantile for every set, then each real set under its chosen alarm rule
# (docs/benchmarks.md says why). About 20 minutes on two shared cores.
evaluate: install
	OMP_NUM_THREADS=1 $(BIN)/plantwatch evaluate --threshold quantile:0.99 --output docs/benchmarks.md
	OMP_NUM_THREADS=1 $(BIN)/plantwatch evaluate --dataset tep --models pca,robust_z,fusion,gru \
		--threshold quantile:0.99 --alarm-rule cusum:0.99 --output docs/benchmarks-tep-cusum.md
	OMP_NUM_THREADS=1 $(BIN)/plantwatch evaluate --dataset batadal-windows --models pca,hbos,fusion,gru \
		--threshold quantile:0.99 --alarm-rule ewma:0.3 --output docs/benchmarks-batadal-ewma.md

benchmark: install
	$(BIN)/python benchmarks/streaming_benchmark.py
	$(BIN)/python benchmarks/api_load.py
	$(BIN)/python benchmarks/chatbot_benchmark.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/incident_benchmark.py
	$(BIN)/python benchmarks/lifecycle_benchmark.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache plantwatch.db
