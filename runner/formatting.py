"""How the runner's commands show durations and tables to a person: short, aligned, readable by eye."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``4.2s``, ``3m07s``, ``1h02m``: short and sortable by eye."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_table(rows: list[tuple[str, ...]]) -> str:
    """``rows`` (the first is the header) as left-aligned columns two spaces apart, no trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
