"""``python -m steps.predictor``: deploy (the step), or ``stop <app>``.

The container's command ``run`` calls this with no arguments: inputs come from
``FUSEML_*`` variables. By hand, ``--dry-run`` sets the dry_run input and
``stop <app>`` ends a local or docker deployment.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from common import names
from common.entrypoint import main as step_main
from common.entrypoint import run_step
from common.inputs import Inputs
from steps.predictor.deploy import deploy, stop
from steps.predictor.settings import DRY_RUN


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m steps.predictor", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan and manifests; change nothing")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("deploy", help="deploy the model (the default)")
    stop_parser = commands.add_parser("stop", help="stop a local or docker deployment")
    stop_parser.add_argument("app", help="the application name")
    args = parser.parse_args(argv)
    if args.command == "stop":
        environ = {k: v for k, v in os.environ.items() if k != names.TASK_RESULT}  # stopping has no result
        sys.exit(run_step("predictor stop", lambda env: _stop(args.app, env), environ))
    if args.dry_run:
        os.environ[Inputs(os.environ).variable(DRY_RUN)] = "true"
    step_main("predictor", deploy)


def _stop(app: str, environ: Mapping[str, str]) -> str:
    outcome = "stopped" if stop(app, environ) else "not running"
    print(f"{app}: {outcome}")  # stdout, for scripts; the log line below is for people
    return outcome


if __name__ == "__main__":
    main()
