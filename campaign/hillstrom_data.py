"""Hillstrom's randomized e-mail test as arrays: its arms, outcomes and features, read from the file.

64,000 customers were sent, at random, a men's e-mail, a women's e-mail or nothing
(:data:`HILLSTROM_ARMS`); what they did in the next two weeks is known (visit, conversion,
spend: :data:`HILLSTROM_OUTCOMES`). :func:`load_hillstrom` reads the gzip'd CSV into a
:class:`HillstromData`; what is learned and valued on it is :mod:`campaign.hillstrom_eval`.

Features: recency, history (dollars; the file's ``history_segment`` is its binned copy and adds
nothing to trees), the men's / women's / newbie flags, zip code and channel one-hot.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["HILLSTROM_ARMS", "HILLSTROM_OUTCOMES", "HillstromData", "load_hillstrom"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HILLSTROM_ARMS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
HILLSTROM_OUTCOMES = ("spend", "conversion", "visit")


@dataclass(frozen=True, eq=False)
class HillstromData:
    features: FloatArray
    feature_names: tuple[str, ...]
    arm: IntArray  # index into HILLSTROM_ARMS
    visit: BoolArray
    conversion: BoolArray
    spend: FloatArray

    def outcome(self, name: str, margin_rate: float = 1.0) -> FloatArray:
        if name == "spend":
            return self.spend * margin_rate
        if name == "conversion":
            return self.conversion.astype(np.float64)
        if name == "visit":
            return self.visit.astype(np.float64)
        raise ValueError(f"unknown outcome {name!r}: one of {', '.join(HILLSTROM_OUTCOMES)}")


def load_hillstrom(path: Path) -> HillstromData:
    """The Hillstrom file (gzip'd CSV) as features and outcomes (recency and history as given;
    men's, women's, newbie flags; zip code and channel one-hot)."""
    zips = ("Urban", "Surburban", "Rural")
    channels = ("Phone", "Web", "Multichannel")
    rows: list[list[float]] = []
    arm: list[int] = []
    visit: list[bool] = []
    conversion: list[bool] = []
    spend: list[float] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                rows.append([
                    float(row["recency"]), float(row["history"]), float(row["mens"]), float(row["womens"]),
                    float(row["newbie"]), *(float(row["zip_code"] == z) for z in zips),
                    *(float(row["channel"] == c) for c in channels),
                ])  # fmt: skip
                arm.append(HILLSTROM_ARMS.index(row["segment"]))
                visit.append(row["visit"] == "1")
                conversion.append(row["conversion"] == "1")
                spend.append(float(row["spend"]))
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{path}, line {line}: not a Hillstrom row ({exc})") from None
    names = ("recency", "history", "mens", "womens", "newbie", *(f"zip_{z}" for z in zips),
             *(f"channel_{c}" for c in channels))  # fmt: skip
    return HillstromData(
        np.asarray(rows), names, np.asarray(arm, dtype=np.int64), np.asarray(visit), np.asarray(conversion),
        np.asarray(spend),
    )
