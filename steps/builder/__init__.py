"""The builder step: a codeset's Python environment as a trainer image (or virtualenv), tagged by content."""

__version__ = "0.1.0"
