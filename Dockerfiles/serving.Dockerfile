# The MLflow serving runtime: kserve.ModelServer speaking V2 for an MLflow model.
#
#   DOCKER_BUILDKIT=1 docker build -f Dockerfiles/serving.Dockerfile \
#     --build-arg BASE_IMAGE=python:3.11-slim \
#     [--secret id=pip_ca,src=/path/to/ca.crt] -t fuseml/mlflow-serving .
#   docker run -v /path/to/model:/mnt/models:ro -p 8080:8080 fuseml/mlflow-serving \
#     --model /mnt/models --name wine
#
# The pip_ca secret (a CA bundle for a TLS-intercepting proxy) is used only by
# the pip RUN below and is never written to a layer. Without it pip uses the
# base image's own CAs.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# kserve pins psutil<6, which has no linux/arm64 wheel: pip compiles it there, so this
# stage (only; nothing of it reaches the image) gets a C compiler and Python's headers.
RUN case "$(uname -m)" in \
      x86_64) ;; \
      *) apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
         && { python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
              || apt-get install -y --no-install-recommends python3-dev; } \
         && rm -rf /var/lib/apt/lists/* ;; \
    esac
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first (layer cache): pyproject alone installs the serving extra
# and an empty project; the sources are copied into the final stage. pip's
# bytecode stays in the image: without it every start compiles kserve, pandas
# and scikit-learn again (cold start).
COPY pyproject.toml README.m[d] ./
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi; \
    touch README.md && /opt/venv/bin/pip install ".[serving]" \
    && /opt/venv/bin/pip uninstall -y fuseml-steps pip \
    && find /opt/venv -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} +

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN (getent group fuseml || groupadd --system --gid 1000 fuseml) \
    && useradd --system --uid 1000 --gid fuseml --home-dir /app --no-create-home fuseml
COPY --from=build /opt/venv /opt/venv
COPY common/ /app/common/
COPY serving/ /app/serving/
# Bytecode is kept (pip compiled the venv; compile ours too): cold start is a target.
RUN python3 -m compileall -q /app
WORKDIR /app
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "serving"]
CMD ["--model", "/mnt/models", "--name", "model", "--port", "8080", "--grpc-port", "8081"]
