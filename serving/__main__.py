"""Serve an MLflow model over the Open Inference Protocol (V2).

    python -m serving --model URI --name NAME --port P [--host 127.0.0.1]

``URI`` is a folder holding MLmodel (a local path, ``file://``, ``s3://`` with
``MLFLOW_S3_ENDPOINT_URL``/``AWS_*``, or an MLflow ``runs:/``/``models:/`` URI).
The same command is the serving image's entrypoint and the KServe runtime's
container (``--model /mnt/models --name {{.Name}}``). Every flag also reads an
environment variable (``FUSEML_SERVE_*``) so a container can be configured
either way. Exit codes: 0 on a clean stop, 1 when the model cannot be fetched
or loaded (one line on stderr says why), 2 on a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.errors import StepError
from common.logs import configure_logging, masker

log = logging.getLogger("fuseml.serve")

DEFAULT_PORT = 8080
DEFAULT_HOST = "0.0.0.0"


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    def env(name: str, default: str | None = None) -> str | None:
        return environ.get(f"FUSEML_SERVE_{name}") or default

    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve an MLflow model over the Open Inference Protocol (V2) with kserve.ModelServer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--model", default=env("MODEL"), help="model URI: folder with MLmodel, file://, s3://, runs:/")
    parser.add_argument("--name", default=env("NAME", "model"), help="model name in /v2/models/<name>")
    parser.add_argument("--port", type=int, default=int(env("PORT", str(DEFAULT_PORT)) or DEFAULT_PORT))
    parser.add_argument("--host", default=env("HOST", DEFAULT_HOST), help="address to listen on")
    parser.add_argument("--workdir", default=env("WORKDIR"), help="where remote models are downloaded (a temp dir)")
    parser.add_argument("--verbose", action="store_true", default=env("VERBOSE", "") in ("true", "1"))
    args = parser.parse_args(list(argv))
    if not args.model:
        parser.error("--model is required (or set FUSEML_SERVE_MODEL)")
    return args


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    args = parse_args(argv, environ)
    configure_logging(args.verbose or environ.get("FUSEML_VERBOSE") == "true", environ)
    started = time.monotonic()
    # kserve.model_server parses sys.argv when imported; keep our flags away from it
    # (``--model`` would be read as its ``--model_name``).
    sys.argv = sys.argv[:1]
    try:
        from serving.loader import fetch_model
        from serving.model import MlflowModel
        from serving.server import serve

        workdir = Path(args.workdir) if args.workdir else None
        model = MlflowModel(args.name, fetch_model(args.model, environ, workdir), environ)
        model.load()
    except StepError as e:
        print(f"serve: error: {masker().mask(str(e))}", file=sys.stderr, flush=True)
        return e.exit_code
    log.info("model %r loaded in %.2fs (%s)", args.name, time.monotonic() - started, model.loaded.flavor)
    try:
        serve(model, args.host, args.port, verbose=args.verbose)
    except KeyboardInterrupt:
        return 0
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))


if __name__ == "__main__":
    main()
