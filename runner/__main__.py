"""``python -m runner``: the same as the ``fuseml-steps`` command."""

from runner.cli import main

if __name__ == "__main__":
    main()
