"""The builder's inputs as ``run --help`` (and the Tekton catalog's params) describe them."""

from common import names
from common.step_help import VERBOSE, InputDoc, StepDoc

IGNORED = "FuseML's input; accepted and ignored"
MODEL = (
    "a model URI (s3://..., a path, mlflow-artifacts:/..., runs:/<run_id>/<path>, models:/<name>/<version> or "
    "models:/<name>@<alias>): build its serving environment (its own requirements plus the serving runtime) "
    "instead of the codeset's; no MLproject needed"
)

DOC = StepDoc(
    step="builder",
    summary=(
        "Build the codeset's Python environment into a trainer image (or, with model, that model's serving "
        "environment), tagged by a content hash; nothing is built when the registry has the tag."
    ),
    inputs=(
        InputDoc("model", MODEL),
        InputDoc("registry", "registry the image is pushed to and looked up in (default registry.fuseml-registry)"),
        InputDoc(
            "pull_registry", "registry host in the returned reference (default 127.0.0.1:30500; empty = registry)"
        ),
        InputDoc("repository", "repository in both registries (default mlflow/trainer; mlflow/serving with model)"),
        InputDoc("base_image", "base of the built image (default python:3.11-slim)"),
        InputDoc("backend", "auto, docker, buildah or venv (default auto: buildah in a pod)"),
        InputDoc("cache_dir", "where the venv backend keeps environments"),
        InputDoc("pip_ca", "CA bundle pip needs behind a TLS-intercepting proxy (a path in the pod)"),
        InputDoc("registry_ca", "CA bundle for registries with a private CA (a path in the pod)"),
        InputDoc("insecure_registries", "registries reachable over plain http, space or comma separated"),
        InputDoc("no_cache", "true to rebuild every layer"),
        InputDoc(
            "installer",
            "auto (uv, pip as the fallback), uv or pip: what installs the environment (the tag does not depend on it)",
        ),
        InputDoc("miniconda_version", IGNORED),
        InputDoc("intel_optimized", IGNORED),
        InputDoc("compressed_caching", IGNORED),
        VERBOSE,
    ),
    output="the image reference (or venv://PATH for the venv backend)",
    environment=(
        InputDoc(names.MLFLOW_TRACKING_URI, "the tracking server, for mlflow-artifacts:/, runs:/ and models:/ models"),
        InputDoc(f"{names.MLFLOW_TRACKING_USERNAME}/_PASSWORD", "basic auth for the tracking server; or _TOKEN"),
        InputDoc(names.MLFLOW_S3_ENDPOINT_URL, "S3 endpoint of an s3:// model"),
        InputDoc(f"{names.AWS_ACCESS_KEY_ID}/{names.AWS_SECRET_ACCESS_KEY}", "S3 credentials to read the model"),
        InputDoc("DOCKER_CONFIG", "folder of the config.json with registry credentials (default ~/.docker)"),
        InputDoc("DOCKER_HOST", "the Docker engine the docker backend uses (default the local socket)"),
    ),
)
