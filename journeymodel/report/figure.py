"""The pieces a report is made of: figures (PNG bytes), tables and sections, and the
matplotlib helpers every figure module shares.

Figures are drawn on :class:`matplotlib.figure.Figure` objects attached to the Agg canvas
directly, never through ``pyplot``: no global figure state, no interactive backend, nothing that
depends on a display.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import pandas as pd

#: Resolution of the PNGs (dots per inch); a 10-inch figure is 1100 pixels wide.
DPI = 110
#: Base font size of every figure, in points.
FONT_SIZE = 10


@dataclass
class Figure:
    """One rendered figure.

    Attributes
    ----------
    key : str
        File stem, unique in the report (``markov-flow``): the PNG's name in ``--png-dir``.
    title : str
    caption : str
        What the figure shows and how uncertain it is.
    png : bytes
    """

    key: str
    title: str
    caption: str
    png: bytes

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, read from the PNG header."""
        return png_size(self.png)


@dataclass
class Table:
    """A table of the report (rendered as an HTML table).

    ``styles``, if given, has the frame's shape and holds a CSS declaration per cell (used to
    shade probability tables).
    """

    key: str
    title: str
    caption: str
    frame: pd.DataFrame
    styles: Any = None


@dataclass
class Section:
    """A section of the page: a heading, a short introduction, figures and tables in order."""

    id: str
    title: str
    intro: str
    items: list[Figure | Table] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        return [item for item in self.items if isinstance(item, Figure)]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG from its IHDR chunk.

    Raises
    ------
    ValueError
        ``data`` is not a PNG.
    """
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", data[16:24])


def new_figure(width: float, height: float) -> matplotlib.figure.Figure:
    """A matplotlib Figure (inches) on an Agg canvas, with the report's fonts and layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def render(fig: matplotlib.figure.Figure) -> bytes:
    """PNG bytes of ``fig`` (white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def style_axes(ax, *, grid: str | None = "x") -> None:
    """The report's axes style: no top/right spines, light grid on ``grid`` ("x", "y", None)."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    if grid:
        ax.grid(axis=grid, color="#e6e6e6", linewidth=0.8)
        ax.set_axisbelow(True)


def rc_context():
    """matplotlib settings of every report figure (a context manager)."""
    import matplotlib

    return matplotlib.rc_context({
        "font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1, "axes.titleweight": "bold",
        "axes.labelsize": FONT_SIZE, "legend.fontsize": FONT_SIZE - 1, "svg.fonttype": "none",
        "axes.titlelocation": "left", "figure.constrained_layout.h_pad": 0.08,
        "figure.constrained_layout.w_pad": 0.08})


def text_colour(hex_colour: str) -> str:
    """Black or white, whichever reads better on ``hex_colour``."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def pct(x: float, digits: int = 1) -> str:
    """``0.1234 -> '12.3%'`` (``'-'`` for NaN)."""
    if x != x:
        return "-"
    return f"{100 * x:.{digits}f}%"


def chance(p: float) -> str:
    """A probability as tables print it: ``'97.5%'``, ``'>99.9%'``, ``'<0.1%'`` (``'-'`` for NaN).

    Examples
    --------
    >>> chance(0.975), chance(0.99995), chance(float("nan"))
    ('97.5%', '>99.9%', '-')
    """
    if p != p:
        return "-"
    if p > 0.999:
        return ">99.9%"
    if p < 0.001:
        return "<0.1%"
    return f"{100 * p:.1f}%"


def shade(value: float, colour: str) -> str:
    """CSS background of a table cell: ``colour`` at opacity ``value`` (0..1).

    Examples
    --------
    >>> shade(1.0, "#ff0000")
    'background: rgba(255, 0, 0, 0.75); color: #ffffff'
    """
    import numpy as np

    h = colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    alpha = float(np.clip(value, 0.0, 1.0)) * 0.75
    ink = "#ffffff" if alpha > 0.5 else "#1d2733"
    return f"background: rgba({r}, {g}, {b}, {alpha:.2f}); color: {ink}"


def percent_format():
    """The tick format of shares on the report's axes: whole percent (0.25 -> 25%)."""
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


def spread(values, min_gap: float):
    """Label positions near ``values`` that are at least ``min_gap`` apart (same order).

    Examples
    --------
    >>> [round(float(v), 3) for v in spread([1.0, 1.05, 3.0], 0.2)]
    [0.925, 1.125, 3.0]
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    pos = values[order].copy()
    for _ in range(len(pos)):
        moved = False
        for i in range(1, len(pos)):
            if pos[i] - pos[i - 1] < min_gap - 1e-12:
                centre = (pos[i] + pos[i - 1]) / 2
                pos[i - 1], pos[i] = centre - min_gap / 2, centre + min_gap / 2
                moved = True
        if not moved:
            break
    out = np.empty_like(pos)
    out[order] = pos
    return out
