# The predictor step (deploy only): reads the model's MLmodel, picks the serving
# runtime and deploys to KServe. No serving stack here (that is serving.Dockerfile):
# only the kubernetes client, boto3, requests and pyyaml, the `predictor` extra.
#
#   DOCKER_BUILDKIT=1 docker build -f Dockerfiles/predictor.Dockerfile \
#     --build-arg BASE_IMAGE=python:3.11-slim \
#     [--secret id=pip_ca,src=/path/to/ca.crt] -t fuseml/kserve-predictor .
#   docker run --rm -e FUSEML_MODEL=s3://... -e FUSEML_DRY_RUN=true ... fuseml/kserve-predictor
#
# The container's command is `run` (docs/contract.md): /usr/local/bin/run starts the
# step, reading FUSEML_* inputs and writing the result to /tekton/results.
# The pip_ca secret (a CA bundle for a TLS-intercepting proxy) is used only by
# the pip RUN below and never written to a layer.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first (layer cache): pyproject alone installs the predictor extra
# and an empty project, removed again; the sources come in the final stage.
COPY pyproject.toml README.m[d] ./
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi; \
    touch README.md && /opt/venv/bin/pip install ".[predictor]" \
    && /opt/venv/bin/pip uninstall -y fuseml-steps setuptools pip \
    && find /opt/venv -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} +
# botocore ships every AWS service's API model (~100 MB); the step talks to S3 only.
RUN data=$(echo /opt/venv/lib/python3*/site-packages/botocore/data) \
    && find "$data" -mindepth 1 -maxdepth 1 -type d ! -name s3 ! -name sts -exec rm -rf {} + \
    && find /opt/venv -name "*.pyc" -delete

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN (getent group fuseml || groupadd --system --gid 1000 fuseml) \
    && useradd --system --uid 1000 --gid fuseml --home-dir /app --no-create-home fuseml \
    && printf '#!/bin/sh\nexec /opt/venv/bin/python -m steps.predictor "$@"\n' > /usr/local/bin/run \
    && chmod 0755 /usr/local/bin/run
COPY --from=build /opt/venv /opt/venv
COPY common/ /app/common/
COPY steps/__init__.py /app/steps/__init__.py
COPY steps/predictor/ /app/steps/predictor/
# Data, not code: what a model's serving environment is built from (common/build_payload.py),
# kept under payload/, off the import path (the predictor never imports the serving stack).
COPY serving/ /app/payload/serving/
COPY Dockerfiles/serving-env.Dockerfile /app/Dockerfiles/serving-env.Dockerfile
WORKDIR /app
USER 1000:1000
CMD ["run"]
