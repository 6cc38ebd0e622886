"""Purchase histories simulated from the BG/NBD and Gamma-Gamma models with known parameters.

The generative story (Fader, Hardie & Lee 2005), per member ``i``, time in days:

- the first purchase happens at ``acquired_at_i ~ Uniform[0, acquisition_days)``;
- while alive, purchases follow a Poisson process with rate ``λ_i ~ Gamma(shape r, rate α)``;
- after each *repeat* purchase the member drops out for good with probability
  ``p_i ~ Beta(a, b)`` (never right after the first purchase, as in the model's likelihood);
- every purchase (the first included) is worth ``z ~ Gamma(shape p, rate ν_i)``, with
  ``ν_i ~ Gamma(shape q, rate v)``, so a member's mean spend is ``p/ν_i`` and the
  population mean ``p·v/(q − 1)``.

Purchases are simulated up to ``end_day``. :func:`exact_summary` gives the calibration
summary at a cutoff in continuous time (what the likelihood is written for, used to
check parameter recovery); the order lines go through :func:`campaign.value.summarise`
like real data (whole days) to check the forecast end to end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from campaign.value import BgNbdParams, GammaGammaParams, RfmSummary

__all__ = ["SimulatedPurchases", "exact_summary", "simulate_purchases"]


@dataclass(frozen=True)
class SimulatedPurchases:
    """Order lines (one per purchase, sorted by member then time) and each member's true latent values."""

    member_index: NDArray[np.int64]
    purchased_at_days: NDArray[np.float64]
    amount: NDArray[np.float64]
    n_members: int
    end_day: float
    params: BgNbdParams
    spend_params: GammaGammaParams
    acquired_at: NDArray[np.float64]
    rate: NDArray[np.float64]  # λ_i, purchases per day while alive
    dropout: NDArray[np.float64]  # p_i
    spend_rate: NDArray[np.float64]  # ν_i (mean spend p/ν_i)
    dropped_out_at: NDArray[np.float64]  # the purchase after which the member left; inf if alive at end_day


def simulate_purchases(
    n_members: int,
    params: BgNbdParams,
    spend_params: GammaGammaParams,
    *,
    end_day: float,
    acquisition_days: float = 84.0,
    seed: int = 0,
) -> SimulatedPurchases:
    """Simulate ``n_members`` members from first purchase to ``end_day`` (seeded, vectorised by purchase round)."""
    if n_members < 1:
        raise ValueError("n_members must be at least 1")
    if not 0 < acquisition_days <= end_day:
        raise ValueError("need 0 < acquisition_days ≤ end_day")
    rng = np.random.default_rng(seed)
    rate = rng.gamma(params.r, 1.0 / params.alpha, n_members)
    dropout = rng.beta(params.a, params.b, n_members)
    spend_rate = rng.gamma(spend_params.q, 1.0 / spend_params.v, n_members)
    acquired = rng.uniform(0.0, acquisition_days, n_members)
    dropped = np.full(n_members, math.inf)

    members: list[NDArray[np.int64]] = [np.arange(n_members, dtype=np.int64)]
    times: list[NDArray[np.float64]] = [acquired]
    active = np.arange(n_members, dtype=np.int64)
    clock = acquired.copy()
    while active.size:
        gaps = rng.exponential(1.0, active.size) / np.maximum(rate[active], 1e-300)
        clock_next = clock[active] + gaps
        in_window = clock_next < end_day
        active = active[in_window]
        clock[active] = clock_next[in_window]
        members.append(active)
        times.append(clock[active])
        leaves = rng.random(active.size) < dropout[active]
        dropped[active[leaves]] = clock[active[leaves]]
        active = active[~leaves]

    member_index = np.concatenate(members)
    purchased = np.concatenate(times)
    order = np.lexsort((purchased, member_index))
    member_index = member_index[order]
    purchased = purchased[order]
    amount = rng.gamma(spend_params.p, 1.0, member_index.size) / spend_rate[member_index]
    return SimulatedPurchases(
        member_index=member_index,
        purchased_at_days=purchased,
        amount=amount,
        n_members=n_members,
        end_day=float(end_day),
        params=params,
        spend_params=spend_params,
        acquired_at=acquired,
        rate=rate,
        dropout=dropout,
        spend_rate=spend_rate,
        dropped_out_at=dropped,
    )


def exact_summary(sim: SimulatedPurchases, cutoff_day: float) -> RfmSummary:
    """The summary at ``cutoff_day`` in continuous time (no rounding to days, no same-day merging)."""
    before = sim.purchased_at_days < cutoff_day
    member = sim.member_index[before]
    time = sim.purchased_at_days[before]
    value = sim.amount[before]
    n = sim.n_members
    counts = np.bincount(member, minlength=n)
    has = counts > 0
    ends = np.cumsum(counts)
    starts = ends - counts
    first = np.zeros(n)
    last = np.zeros(n)
    first_value = np.zeros(n)
    first[has] = time[starts[has]]
    last[has] = time[ends[has] - 1]
    first_value[has] = value[starts[has]]
    total = np.bincount(member, weights=value, minlength=n)
    frequency = np.maximum(counts - 1, 0).astype(np.int64)
    monetary = np.zeros(n)
    repeat = frequency > 0
    monetary[repeat] = (total[repeat] - first_value[repeat]) / frequency[repeat]
    return RfmSummary(
        frequency=frequency,
        recency=np.where(has, last - first, 0.0),
        age=np.where(has, cutoff_day - first, 0.0),
        monetary=monetary,
        has_purchase=has,
        cutoff_day=float(cutoff_day),
    )
