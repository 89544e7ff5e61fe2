"""``python -m steps.trainer`` (``run`` in the trainer image); ``--help`` lists its inputs."""

from common.entrypoint import main
from steps.trainer.input_docs import DOC
from steps.trainer.step import train

if __name__ == "__main__":
    main("trainer", train, DOC)
