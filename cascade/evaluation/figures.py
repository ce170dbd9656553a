"""Matplotlib without a display, and figures saved as PNG atomically: shared by every plot."""

from __future__ import annotations

import io
from pathlib import Path

from data_prep.atomic import write_bytes_atomic


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (headless machines, CI, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, **savefig_kwargs) -> bytes:
    """Render to PNG in memory and close the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, **savefig_kwargs)
    pyplot().close(fig)
    return buf.getvalue()


def save_png(fig, path: Path, **savefig_kwargs) -> Path:
    """Lay out, render, write atomically, close the figure."""

    fig.tight_layout()
    return write_bytes_atomic(Path(path), png_bytes(fig, **savefig_kwargs))
