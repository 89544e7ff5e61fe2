"""The builder step: a codeset's Python environment as a trainer image (or virtualenv), tagged by content."""
