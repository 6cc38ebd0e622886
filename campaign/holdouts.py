"""Randomized holdouts: a seeded hash of (member id, campaign) decides who is not mailed.

The hash is portable and stateless, so re-running the assignment, on another machine
or database, gives the same arms:

    h(member_id, seed) = splitmix64(fnv1a64(utf-8 of member_id) XOR splitmix64(seed))
    u = (h >> 11) / 2**53                                    (uniform on [0, 1))

A member is in the campaign's holdout when ``u(member_id, campaign seed) < share`` of
their segment × value tier (default 5 %, :class:`HoldoutRule`). The **universal
holdout** uses the same hash under a fixed seed of its own, so the same members
(e.g. 0.5 %) are held out of every campaign, quarter after quarter, and show what the
club would sell with no mailing at all. A member is held out with probability
``p = universal + (1 − universal) · share``: that is the ``holdout_share`` stored on
each contact and the expectation the sample-ratio check compares with.

Vectorised over all members at once (numpy, 64-bit wrapping arithmetic): 1.5 M member
ids take well under a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["Assignment", "HoldoutRule", "assign_holdouts", "campaign_seed", "uniform_hash"]

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def _fnv1a64(member_ids: Sequence[str]) -> npt.NDArray[np.uint64]:
    """FNV-1a over each id's UTF-8 bytes, all ids at once (a column of bytes per step)."""
    encoded = [m.encode("utf-8") for m in member_ids]
    n = len(encoded)
    hashes = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return hashes
    width = max(len(b) for b in encoded)
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=n)
    table = np.frombuffer(b"".join(b.ljust(width, b"\0") for b in encoded), dtype=np.uint8).reshape(n, width)
    with np.errstate(over="ignore"):
        for j in range(width):
            live = lengths > j
            mixed = (hashes ^ table[:, j].astype(np.uint64)) * _FNV_PRIME
            hashes = np.where(live, mixed, hashes)
    return hashes


def uniform_hash(member_ids: Sequence[str], seed: int) -> npt.NDArray[np.float64]:
    """A uniform number in [0, 1) per member id, fixed by (member id, seed) (module docstring)."""
    key = _splitmix64(np.array([seed & _MASK64], dtype=np.uint64))[0]
    mixed = _splitmix64(_fnv1a64(member_ids) ^ key)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def campaign_seed(name: str) -> int:
    """The hash seed of a campaign, from its name: the same name gives the same arms."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big") >> 1


@dataclass(frozen=True)
class HoldoutRule:
    """Holdout shares per segment × tier; ``overrides`` keys are ``"SEGMENT/TIER"`` with ``*``
    for any (``"*/core"``, ``"2/*"``, ``"2/core"``); the most specific rule wins."""

    share: float = 0.05
    overrides: Mapping[str, float] = field(default_factory=dict)
    universal_share: float = 0.0
    universal_seed: int = 0

    def __post_init__(self) -> None:
        for key, value in {"*/*": self.share, **self.overrides}.items():
            if not 0.0 <= value < 1.0:
                raise ValueError(f"holdout share {key}: {value} must be in [0, 1)")
            if key.count("/") != 1:
                raise ValueError(f"holdout share key {key!r}: write SEGMENT/TIER, '*' for any")
        if not 0.0 <= self.universal_share < 1.0:
            raise ValueError(f"universal holdout share {self.universal_share} must be in [0, 1)")

    def share_for(self, segment: int | None, tier: str | None) -> float:
        seg = "*" if segment is None else str(segment)
        for key in (f"{seg}/{tier}", f"{seg}/*", f"*/{tier}"):
            if key in self.overrides:
                return float(self.overrides[key])
        return float(self.overrides.get("*/*", self.share))

    def probability(self, segment: int | None, tier: str | None) -> float:
        """P(held out) for a member of this segment and tier, universal holdout included."""
        u = self.universal_share
        return u + (1.0 - u) * self.share_for(segment, tier)


@dataclass(frozen=True, eq=False)
class Assignment:
    """Per member: held out of the campaign, and why (``universal`` or the campaign's draw)."""

    held: npt.NDArray[np.bool_]
    universal: npt.NDArray[np.bool_]
    probability: npt.NDArray[np.float64]  # P(held out) the member had


def assign_holdouts(
    member_ids: Sequence[str],
    segments: Sequence[int | None] | npt.NDArray[np.int64],
    tiers: Sequence[str | None],
    rule: HoldoutRule,
    seed: int,
) -> Assignment:
    """Hold out members at random: the universal holdout first, then each segment × tier's share."""
    n = len(member_ids)
    if len(segments) != n or len(tiers) != n:
        raise ValueError("member_ids, segments and tiers must be equally long")
    if n == 0:
        empty = np.zeros(0, dtype=np.bool_)
        return Assignment(held=empty, universal=empty, probability=np.zeros(0, dtype=np.float64))
    # one share per distinct (segment, tier), spread back over the members
    tier_names = sorted({t or "" for t in tiers})
    tier_code = {t: i for i, t in enumerate(tier_names)}
    seg = np.asarray([-1 if s is None else int(s) for s in segments], dtype=np.int64)
    codes = np.fromiter((tier_code[t or ""] for t in tiers), dtype=np.int64, count=n)
    combos, inverse = np.unique(np.stack([seg, codes], axis=1), axis=0, return_inverse=True)
    per_combo = np.array(
        [
            rule.share_for(None if s < 0 else int(s), tier_names[int(t)] or None)
            for s, t in combos
        ],
        dtype=np.float64,
    )
    shares = per_combo[np.asarray(inverse).reshape(-1)] if n else np.empty(0, dtype=np.float64)
    universal = (
        uniform_hash(member_ids, rule.universal_seed) < rule.universal_share
        if rule.universal_share > 0
        else np.zeros(n, dtype=np.bool_)
    )
    drawn = uniform_hash(member_ids, seed) < shares
    u = rule.universal_share
    return Assignment(held=universal | drawn, universal=universal, probability=u + (1.0 - u) * shares)
