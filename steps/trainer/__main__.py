"""``python -m steps.trainer`` (``run`` in the trainer image); ``--help`` lists its inputs.

The collector of reference cycles is off in this process: its work is importing
MLflow (and SQLAlchemy, boto3) and relaying the entry point's output, which
leave few cycles, while collecting during the imports costs about a fifth of
their CPU time. Training runs in the entry point's own process, collector on.
"""

import gc

from common.entrypoint import main
from steps.trainer.fast_exit import teardown_skipped
from steps.trainer.input_docs import DOC
from steps.trainer.step import train

if __name__ == "__main__":
    gc.disable()
    with teardown_skipped():
        main("trainer", train, DOC)
