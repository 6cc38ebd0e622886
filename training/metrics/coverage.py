"""Catalog coverage: the share of titles that appear in anyone's top k."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def catalog_coverage(recommended: npt.NDArray[np.int64], n_titles: int) -> float:
    """Distinct valid title indices in ``recommended`` (any shape, -1 = padding) / ``n_titles``."""
    if n_titles <= 0:
        return 0.0
    flat = np.asarray(recommended).ravel()
    return float(np.unique(flat[flat >= 0]).size / n_titles)
