"""Matchback: every order line of a campaign's window tied to the contact that may have caused it.

The work is set-based SQL in :func:`recsys.storage.matches.match_orders` (its
docstring has the rules): **direct** by the key code on the order form,
**inferred** by member within the response window after the in-home date (and the
late window after it, flagged ``late``), **unattributed** otherwise, with the credit
rules last / fractional / all stored side by side. Re-running classifies the lines
that arrived since and leaves every stored row as it was.

Matchback says which orders a campaign *could* claim; what it *caused* is the
difference with its random holdout (:mod:`campaign.report`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from recsys.storage import campaigns as campaigns_db
from recsys.storage import matches as matches_db
from recsys.storage.matches import MatchCounts

__all__ = ["MatchCounts", "run_matchback"]


def run_matchback(connection: Connection, ref: str | int, timezone: str = "UTC") -> MatchCounts:
    """Classify the campaign's new order lines (``ref``: its name or id), in the caller's transaction;
    the windows are days of ``timezone`` (``campaign.timezone``, the club's)."""
    campaign = campaigns_db.find_campaign(connection, ref)
    return matches_db.match_orders(connection, campaign.id, timezone)
