# Every target bootstraps .venv itself: a fresh clone needs only python3 and the registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
ARGS ?=

.PHONY: venv tools demo test lint typecheck unit bench chaos chart lock clean cold-check

# Three distributions, installed editable together: the worker (worker/), the operator
# and CLI (the root), the development tools (devtools/: demo, emulators, mTLS service).
# Every version comes from requirements/constraints.txt, the file both images install
# from too: the tests run what the images hold (make lock rewrites it).
CONSTRAINTS := requirements/constraints.txt
$(STAMP): pyproject.toml worker/pyproject.toml devtools/pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -r requirements/build.txt
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ./worker -e ./devtools -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# helm, kubectl, hadolint and checkov for the deployment checks, under .tools/bin
TOOLS_STAMP := .tools/.installed
$(TOOLS_STAMP): scripts/install_tools.py | $(STAMP)
	$(BIN)/python scripts/install_tools.py
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

demo: venv
	$(BIN)/snowflake-processor demo $(ARGS)

# The CRD (crds/ and the chart's files/crds/) is generated from the model: scripts/gen_crd.py
# writes both, --check fails while either differs from what snowflake_operator.spec says.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/gen_crd.py --check
	$(BIN)/python scripts/set_version.py --check

typecheck: venv
	$(BIN)/mypy

# The real-cluster tests and the others side by side (snowflake_devtools/test_tiers.py);
# with ARGS, one pytest run of what ARGS selects.
test: lint typecheck tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/python -m snowflake_devtools.test_tiers $(ARGS)

unit: venv
	$(BIN)/pytest tests/unit $(ARGS)

bench: venv
	$(BIN)/python benchmarks/run.py $(ARGS)

chaos: venv
	$(BIN)/python benchmarks/chaos.py $(ARGS)

# The Helm chart as a package, its README (what `helm show readme` prints) checked against
# values.yaml and its CRD (files/crds/) against the model first. Push it to an OCI registry
# with `helm push` (docs/install.md).
# Needs helm only (not the checkers `make tools` adds). The chart publishes no image, so it is
# linted with the values of ci/ (which name image repositories), as chart-testing does.
DIST ?= dist
HELM := .tools/bin/helm
$(HELM): scripts/install_tools.py | $(STAMP)
	$(BIN)/python scripts/install_tools.py helm
	@touch $(HELM)

chart: venv $(HELM)
	$(BIN)/python scripts/gen_chart_readme.py --check
	$(BIN)/python scripts/gen_crd.py --check
	for values in charts/snowflake-processor/ci/*-values.yaml; do \
	  $(HELM) lint --strict charts/snowflake-processor --values "$$values" || exit 1; \
	done
	@mkdir -p $(DIST)
	$(HELM) package charts/snowflake-processor --destination $(DIST)

# Rehearse CI on a new machine: removes the Debian packages the project installs, buildah's
# images and the project's cache (the Kubernetes binaries kept unless ARGS=--full), then
# runs `bash .ci/run` on a fresh clone of HEAD and prints each phase's wall time. Root only.
cold-check: venv
	$(BIN)/python -m snowflake_devtools.cold_check $(ARGS)

# Re-resolve every dependency at the newest versions the pyproject.toml files allow.
lock:
	$(PYTHON) scripts/lock_requirements.py $(ARGS)

clean:
	rm -rf .demo .tools .mypy_cache .ruff_cache .pytest_cache .test-logs

# Local Kubernetes cluster targets (cluster-build, cluster-up, cluster-down, ...)
-include Makefile.cluster
