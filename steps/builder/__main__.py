"""``python -m steps.builder`` (``run`` in the builder image)."""

from common.entrypoint import main
from steps.builder.step import build

if __name__ == "__main__":
    main("builder", build)
