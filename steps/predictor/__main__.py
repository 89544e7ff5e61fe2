"""``python -m steps.predictor``: deploy a model (the step).

The container's command ``run`` calls this with no arguments: inputs come from
``FUSEML_*`` variables. By hand, ``--dry-run`` sets the dry_run input. What a
deployment leaves running on this machine is listed and stopped with
``fuseml-steps apps`` and ``fuseml-steps apps stop NAME``.
"""

from __future__ import annotations

import os
import sys

from common.entrypoint import main as step_main
from common.inputs import Inputs
from common.step_help import step_parser
from steps.predictor.deploy import deploy
from steps.predictor.input_docs import DOC
from steps.predictor.settings import DRY_RUN

MOVED_STOP_EXIT = 2


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stop"]:
        app = argv[1] if len(argv) > 1 else "NAME"
        print(
            f"predictor: error: 'stop' moved to the local runner; use `fuseml-steps apps stop {app}`", file=sys.stderr
        )
        sys.exit(MOVED_STOP_EXIT)
    parser = step_parser(DOC)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and manifests; change nothing")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("deploy", help="deploy the model (the default)")
    args = parser.parse_args(argv)
    if args.dry_run:
        os.environ[Inputs(os.environ).variable(DRY_RUN)] = "true"
    step_main("predictor", deploy)


if __name__ == "__main__":
    main()
