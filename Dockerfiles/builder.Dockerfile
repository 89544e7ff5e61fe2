# The builder image: the builder step, buildah for daemonless builds in
# Kubernetes pods, the docker SDK for when a daemon is reachable, uv (a
# dependency of the builder extra: /opt/venv/bin/uv, which the builder copies
# into every build context), and the trainer image template with the trainer
# code it copies into every image.
#
#   DOCKER_BUILDKIT=1 docker build -f Dockerfiles/builder.Dockerfile \
#     --build-arg BASE_IMAGE=python:3.11-slim \
#     [--secret id=pip_ca,src=/path/to/ca.crt] -t fuseml/mlflow-builder .
#
# In a pod it needs root, an unconfined seccomp profile (or CAP_SYS_ADMIN) and
# an emptyDir on /var/lib/containers; see steps/builder/README.md.
# The pip_ca secret is used only by the pip RUN below, never written to a layer.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first (layer cache): pyproject alone installs the builder extra
# and an empty project, removed again; the sources go to the final stage.
COPY pyproject.toml README.m[d] ./
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi; \
    touch README.md && /opt/venv/bin/pip install ".[builder]" \
    && /opt/venv/bin/pip uninstall -y fuseml-steps pip \
    && find /opt/venv -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} +

FROM ${BASE_IMAGE}
# buildah from Debian (the base is Debian); vfs storage works in any pod.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/fuseml \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BUILDAH_ISOLATION=chroot \
    STORAGE_DRIVER=vfs
COPY --from=build /opt/venv /opt/venv
COPY common/ /opt/fuseml/common/
COPY steps/__init__.py /opt/fuseml/steps/__init__.py
COPY steps/builder/ /opt/fuseml/steps/builder/
COPY steps/trainer/ /opt/fuseml/steps/trainer/
COPY Dockerfiles/trainer.Dockerfile /opt/fuseml/Dockerfiles/trainer.Dockerfile
# Data, not code: what a model's serving environment is built from (input model; common/build_payload.py),
# kept under payload/, off the import path.
COPY serving/ /opt/fuseml/payload/serving/
COPY Dockerfiles/serving-env.Dockerfile /opt/fuseml/Dockerfiles/serving-env.Dockerfile
RUN python3 -m compileall -q /opt/fuseml \
    && printf '#!/bin/sh\nexec /opt/venv/bin/python -m steps.builder "$@"\n' > /usr/local/bin/run \
    && chmod 0755 /usr/local/bin/run
# Root: buildah in a pod needs it (FuseML runs this step at /project, the codeset).
WORKDIR /project
CMD ["run"]
