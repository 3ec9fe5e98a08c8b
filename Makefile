# Two commands on a fresh machine: `make run` (set up + materialize the whole graph) and
# `make test` (set up + run the test suite). Everything lives under the repo.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV := $(VENV)/bin/uv
export DAGSTER_HOME := $(CURDIR)/data/dagster_home

.PHONY: services run test test-fast dev dg-dev check-defs mlflow-ui serve lint bench clean-state reap

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# uv resolves and installs the same pinned set as pip, in parallel: ~20 s instead of ~90 s.
	$(PY) -m pip install --quiet -c constraints.txt uv
	@# A venv made before the CPU-only XGBoost build holds the full wheel (and 470 MB of NCCL).
	$(UV) pip uninstall --quiet --python $(PY) xgboost nvidia-nccl-cu12 2>/dev/null || true
	$(UV) pip install --quiet --python $(PY) -c constraints.txt -e ".[dev]"
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# `make run REPLAY_MONTHS=3` replays only the newest 3 months of each dataset (spec: replay.months).
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m ml_assets.run $(if $(REPLAY_MONTHS),--replay-months $(REPLAY_MONTHS))

# The Redis online store's tests start a real redis-server on a loopback port: Debian's,
# installed here when missing (the only service the tests need that the repo does not ship).
services:
	@command -v redis-server >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "the tests need redis-server: apt-get install redis-server" >&2; exit 1; }; \
	  echo "installing Debian's redis-server (for the Redis online store's tests)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }; }

# Everything, slow tier included (what CI runs); two workers, one per core.
test: $(STAMP) $(DAGSTER_HOME)/dagster.yaml services
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n 2 --dist load

# Everything but the slow tier (full replay, concurrent CLI processes, dg CLI, benchmark smoke).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist load -m "not slow"

dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml

# The same UI through Dagster's project CLI.
dg-dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dg dev

# Validate every dataset component and load the definitions, as `dg` does.
check-defs: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dg check yaml
	$(VENV)/bin/dg check defs

# Fail runs whose processes are gone and free the pool slots they (or finished runs) still hold.
reap: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m ml_assets.instance_health

mlflow-ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///data/mlflow/mlflow.db --port 5000

# Online predictions for every dataset with a champion and an online snapshot, on 127.0.0.1:8000
# (`make serve HOST=0.0.0.0 PORT=9000` needs ML_ASSETS_API_TOKEN; see README, Serving).
serve: $(STAMP)
	$(PY) -m ml_assets.serving $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) -m benchmarks.run

# Replay bundled flights through librdkafka's mock Kafka cluster into raw/validated (bounded):
# `make stream-demo DAYS=2 RATE=300 SECONDS=180`.
.PHONY: stream-demo
stream-demo: $(STAMP)
	$(PY) -m ml_assets.streaming.demo $(if $(DAYS),--days $(DAYS)) $(if $(RATE),--rate $(RATE)) $(if $(SECONDS),--seconds $(SECONDS))

clean-state:
	rm -rf data/warehouse data/mlflow data/reports data/dagster_home data/cache data/online
