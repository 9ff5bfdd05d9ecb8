"""Figures: matplotlib without a display (the package's one `matplotlib.use('Agg')`) and the one way a figure is
saved. Every module that draws imports `plt` from here."""

import json
import pathlib
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

__all__ = ['plt', 'save']


def save(
    figure: Any, path: str | pathlib.Path, *, dpi: int = 110, title: str = '', names: Sequence[str] = ()
) -> pathlib.Path:
  """Lays `figure` out, writes it to `path` (making its folder) and closes it. `title` and `names` (what it plots)
  go into the PNG's metadata, so that tests and tools can read them."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  figure.tight_layout()
  metadata = {'Title': title, 'Description': json.dumps(list(names))} if title or names else None
  figure.savefig(path, dpi=dpi, bbox_inches='tight', metadata=metadata)
  plt.close(figure)
  return path
