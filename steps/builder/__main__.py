"""``python -m steps.builder`` (``run`` in the builder image); ``--help`` lists its inputs."""

from common.entrypoint import main
from steps.builder.input_docs import DOC
from steps.builder.step import build

if __name__ == "__main__":
    main("builder", build, DOC)
