# The trainer image: a codeset's Python environment plus the trainer step.
#
# Template of the builder step (steps/builder), which prepares the context:
#   build/  requirements.txt, constraints.txt, build-requirements.txt,
#           python-constraint, check_python.py, install.sh, installer, run,
#           pip-ca.crt (empty if none), uv (the builder's own, when it has one)
#   app/    steps/trainer/ and the common/ modules it imports (the trainer step's code)
# and passes BASE_IMAGE, SOURCE, REVISION, CREATED and ENVIRONMENT (the tag).
# Works with the classic builder (docker SDK), BuildKit and buildah alike: no
# RUN --mount, so the PyPI CA travels through the throwaway stage below.
ARG BASE_IMAGE=python:3.11-slim

# Throwaway stage: uv (or pip, see install.sh) runs here, with the PyPI CA
# bundle when one is given. Only the finished virtualenv leaves it; the CA, uv
# and the installers' caches stay behind. No bytecode is compiled (FUSEML_BYTECODE=none:
# the image keeps none, see below). The venv gets pip from install.sh, as the venv backend's.
FROM ${BASE_IMAGE} AS environment
COPY build/ /tmp/build/
RUN set -eu; \
    python3 /tmp/build/check_python.py /tmp/build/python-constraint; \
    python3 -m venv --without-pip /opt/venv; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off; \
    export UV_NO_CACHE=1 FUSEML_BYTECODE=none; \
    sh /tmp/build/install.sh /opt/venv/bin/python /tmp/build /tmp/build/uv; \
    site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
    echo /opt/fuseml > "$site/fuseml-steps.pth"; \
    install -m 0755 /tmp/build/run /opt/venv/bin/run; \
    # Trim what a training run never reads (keeps the image under 700 MB):
    # bytecode caches, test suites, C headers, Cython sources, type stubs,
    # static libraries, and the MLflow tracking UI's web build.
    sp="$site"; \
    find /opt/venv -depth -name '__pycache__' -type d -exec rm -rf {} +; \
    find "$sp" -mindepth 2 -depth -type d \( -name tests -o -name test \) -exec rm -rf {} +; \
    find "$sp" -mindepth 2 -depth -type d -name include -exec rm -rf {} +; \
    find "$sp" -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.pyi' \
        -o -name '*.a' -o -name '*.c' -o -name '*.cpp' \) -delete; \
    rm -rf "$sp/mlflow/server/js"

# The image: the base, a non-root user, the environment, then the trainer code
# (the layer that changes most often comes last).
FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 1000 --user-group --shell /bin/sh fuseml
COPY --from=environment /opt/venv /opt/venv
COPY app/ /opt/fuseml/
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/fuseml
USER 1000:1000
WORKDIR /project
CMD ["run"]

ARG SOURCE=""
ARG REVISION=""
ARG CREATED=""
ARG ENVIRONMENT=""
LABEL org.opencontainers.image.title="FuseML trainer" \
      org.opencontainers.image.description="MLflow project trainer with the codeset's Python environment" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      io.fuseml.environment="${ENVIRONMENT}"
