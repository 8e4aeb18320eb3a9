# kubetrove: every target a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
export PYTHONPATH := $(CURDIR)/operator

.DEFAULT_GOAL := help

help: ## List targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-18s %s\n",$$1,$$2}'

setup: ## Install everything the tests need (apt packages, venv, Kubernetes binaries, engines); cached, idempotent
	bash hack/setup.sh

venv: ## Create .venv with the project and its dev tools
	bash hack/setup.sh venv

lint: venv ## ruff, mypy --strict, import-linter
	$(VENV)/bin/ruff check operator tests benchmarks hack
	$(VENV)/bin/ruff format --check operator tests benchmarks hack
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PYTEST) --collect-only -qq -p no:cacheprovider tests --with-integration --with-e2e >/dev/null  # every test module imports

fmt: venv ## Format and autofix
	$(VENV)/bin/ruff format operator tests benchmarks hack
	$(VENV)/bin/ruff check --fix operator tests benchmarks hack

crds: venv ## Regenerate crds/*.yaml from the pydantic models (and the Helm chart's copy)
	$(PY) -m kubetrove.api.crdgen crds
	cp crds/*.yaml charts/kubetrove/crds/

docs-gen: venv ## Regenerate docs/api-reference.md (from the models) and examples/argocd/argocd-cm.yaml
	$(PY) hack/gen-api-docs.py
	$(PY) hack/gen-argocd-cm.py

test: setup ## Run ALL test tiers: unit, then integration (real engines) beside e2e (real local Kubernetes)
	VENV=$(VENV) bash hack/test-tiers.sh

test-unit: venv ## Unit tier only (pure code, seconds)
	$(PYTEST) tests/unit

test-integration: setup ## Integration tier: agent + drivers against real engine servers
	$(PYTEST) tests/integration --with-integration

test-e2e: setup ## e2e tier: the local Kubernetes control plane (etcd, apiserver, KCM, scheduler, kwok)
	$(PYTEST) tests/e2e --with-e2e

images: setup ## Build every image (hack/images: Debian packages, no Docker) and push it to the local registry on 127.0.0.1:5000
	PYTHONPATH=hack $(PY) -m images --push

cluster-up: setup ## Start the local Kubernetes (prints the kubeconfig path)
	$(PY) hack/localkube.py up

cluster-down: ## Stop the local Kubernetes
	$(PY) hack/localkube.py down

demo: setup ## The main job: local cluster + real node + operator + a 3-member MariaDB DatabaseCluster, connect and write a row
	bash hack/demo.sh

run: ## Run the operator against the local cluster (start it with `make cluster-up`)
	$(PY) hack/localkube.py kubeconfig >/dev/null
	KUBECONFIG="$$($(PY) hack/localkube.py kubeconfig)" $(PY) -m kubetrove.handlers.main

.PHONY: help setup venv lint fmt crds docs-gen images test test-unit test-integration test-e2e cluster-up cluster-down run demo
