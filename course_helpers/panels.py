"""How a multi-panel figure arranges its panels: rows of at most a few, so that each panel keeps a
legible width in the course site's text column (about 660 px on a desktop)."""

import math

MAX_COLS = 5  # five 120 px panels fit the column; more side by side squeeze titles and ticks together


def panel_grid(n_panels: int, n_rows: int | None = None, n_cols: int | None = None,
               max_cols: int = MAX_COLS) -> tuple[int, int]:
    """(rows, cols) for `n_panels`. The author may ask for a number of rows or columns (a row per
    seed); that layout is kept while a row holds at most `max_cols` panels, otherwise the panels
    are spread evenly over as few rows as keep within `max_cols`."""
    cols = n_cols or (math.ceil(n_panels / n_rows) if n_rows else n_panels)
    if cols > max_cols:
        cols = math.ceil(n_panels / math.ceil(n_panels / max_cols))
    cols = max(1, min(cols, n_panels))
    return math.ceil(n_panels / cols), cols
