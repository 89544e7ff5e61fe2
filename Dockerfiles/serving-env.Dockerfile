# A model's serving environment: the model's own requirements plus the serving runtime.
#
# Template of common/serving_env.py (the predictor's docker target) and of the builder
# step's serving kind (input model), which prepare the context:
#   build/  requirements.txt, constraints.txt (the model's requirements and the runtime's,
#           serving/requirements.txt), build-requirements.txt, python-constraint,
#           check_python.py, install.sh, installer, run, pip-ca.crt (empty if none),
#           uv (the builder's own, when it has one)
#   app/    serving/ and the common/ modules it imports (the runtime's code)
# and pass BASE_IMAGE, SOURCE, REVISION, CREATED and ENVIRONMENT (the tag).
# Run it as the serving image is run:
#   docker run -v /path/to/model:/mnt/models:ro -p 8080:8080 IMAGE --model /mnt/models --name wine --port 8080
# Works with the classic builder (docker SDK), BuildKit and buildah alike: no
# RUN --mount, so the PyPI CA travels through the throwaway stage below.
ARG BASE_IMAGE=python:3.11-slim

# Throwaway stage: uv (or pip, see install.sh) runs here, with the PyPI CA bundle
# when one is given. Only the finished virtualenv leaves it; the CA, uv and the
# installers' caches stay behind. Bytecode is kept (install.sh compiles it, whichever
# installer ran): without it every start compiles kserve, pandas and the model's
# libraries. The venv gets pip from install.sh, as the venv backend's.
FROM ${BASE_IMAGE} AS environment
COPY build/ /tmp/build/
RUN set -eu; \
    python3 /tmp/build/check_python.py /tmp/build/python-constraint; \
    python3 -m venv --without-pip /opt/venv; \
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_PROGRESS_BAR=off; \
    export UV_NO_CACHE=1 FUSEML_BYTECODE=all; \
    sh /tmp/build/install.sh /opt/venv/bin/python /tmp/build /tmp/build/uv; \
    site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
    echo /opt/fuseml > "$site/fuseml-steps.pth"; \
    install -m 0755 /tmp/build/run /opt/venv/bin/run; \
    # Trim what serving never reads: test suites, C headers, Cython sources, static libraries.
    find "$site" -mindepth 2 -depth -type d \( -name tests -o -name test \) -exec rm -rf {} +; \
    find "$site" -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.pxd' -o -name '*.pyx' \
        -o -name '*.a' -o -name '*.c' -o -name '*.cpp' \) -delete

# The image: the base, a non-root user, the environment, then the runtime's code
# (the layer that changes most often comes last), compiled.
FROM ${BASE_IMAGE}
RUN (getent group fuseml || groupadd --system --gid 1000 fuseml) \
    && useradd --system --uid 1000 --gid fuseml --home-dir /opt/fuseml --no-create-home fuseml
COPY --from=environment /opt/venv /opt/venv
COPY app/ /opt/fuseml/
RUN /opt/venv/bin/python -m compileall -q /opt/fuseml
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /opt/fuseml
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["run"]
CMD ["--model", "/mnt/models", "--name", "model", "--port", "8080", "--grpc-port", "8081"]

ARG SOURCE=""
ARG REVISION=""
ARG CREATED=""
ARG ENVIRONMENT=""
LABEL org.opencontainers.image.title="FuseML serving environment" \
      org.opencontainers.image.description="The MLflow serving runtime (Open Inference Protocol V2) in a model's own Python environment" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      io.fuseml.environment="${ENVIRONMENT}"
