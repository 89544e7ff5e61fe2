"""``python -m steps.trainer`` (``run`` in the trainer image)."""

from common.entrypoint import main
from steps.trainer.step import train

if __name__ == "__main__":
    main("trainer", train)
