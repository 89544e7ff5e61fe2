# Every target is phony: nothing here is a file we keep up to date.
.PHONY: venv lint format test test-unit test-integration demo bench winery images clean help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Narrow a test run: make test file=tests/unit/test_inputs.py
file ?=
PYTEST_ARGS ?=

help:
	@echo "make demo   - run the main job (the end-to-end workflow on this machine)"
	@echo "make test   - lint, then run every test (starts the services it needs)"
	@echo "make bench  - benchmarks, printing ratios against the peers"
	@echo "make venv   - create $(VENV) and install the project with its dev tools"
	@echo "make winery - the Winery web app on http://127.0.0.1:$(WINERY_PORT) (url=<prediction URL from make demo>)"

# The venv is rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest $(if $(file),$(file),tests) $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
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

# Our step images, built with BuildKit; pip's CA (PIP_CERT) goes in as a build
# secret and never into a layer. Debian's client: the docker on PATH may lack buildx.
BASE_IMAGE ?= python:3.11-slim
IMAGE_PREFIX ?= ghcr.io/fuseml-steps
IMAGE_TAG ?= 0.1.0
DOCKER ?= /usr/bin/docker
PIP_CERT ?= /etc/ssl/certs/ca-certificates.crt
IMAGES := builder:mlflow-builder predictor:kserve-predictor serving:mlflow-serving

images:
	@for pair in $(IMAGES); do \
		file=$${pair%%:*}; name=$${pair#*:}; \
		echo "=== $(IMAGE_PREFIX)/$$name:$(IMAGE_TAG) from Dockerfiles/$$file.Dockerfile ==="; \
		DOCKER_BUILDKIT=1 $(DOCKER) build -f Dockerfiles/$$file.Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) \
			--secret id=pip_ca,src=$(PIP_CERT) -t $(IMAGE_PREFIX)/$$name:$(IMAGE_TAG) . || exit 1; \
	done
	DOCKER_BUILDKIT=1 $(DOCKER) build --build-arg BASE_IMAGE=$(BASE_IMAGE) --secret id=pip_ca,src=$(PIP_CERT) \
		-t $(IMAGE_PREFIX)/winery:$(IMAGE_TAG) examples/webapps/winery

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
