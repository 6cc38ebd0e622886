"""The demo club's side of the quarter: a randomized test campaign of the quarter before (there is
nothing to learn whom a piece moves from otherwise), and the planned mailing valued at the
simulation's true effects.

A generated demo club has no past campaigns. Before its first quarter the job runs the previous
quarter's campaign as a randomized test (:func:`demo_history`: segments and plans of that
quarter, a catalog to every eligible member with ``DEMO_TEST_HOLDOUT`` of them held out at random,
the club's simulated responses with their known true effect, matchback): the same steps as every
quarter, on the quarter before, with a larger holdout — what a club does once to start learning.
:func:`simulated_truth` then values the plan and "a catalog to everyone" at the true effects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Connection, Engine

from campaign.contacts import ContactsResult, PrintFiles, write_quarter_contacts
from campaign.mailing_plan import edition_affinity
from campaign.matchback import MatchCounts, run_matchback
from campaign.simulate import MemberFeatures, ResponseModel, true_effects
from catalog.paths import catalog_file, edition_file
from catalog.period import Quarter
from catalog.planning import plan_quarter
from catalog.segments import segment_quarter
from demo.respond import TIER_INDEX, simulate_responses
from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import mailing as mailing_db
from recsys.storage.categories import CategoryNode

if TYPE_CHECKING:
    from recsys.model.trained import TrainedModel
    from recsys.storage.titles import TitleRecord

__all__ = ["DEMO_TEST_HOLDOUT", "DemoHistory", "demo_history", "earlier_campaigns", "simulated_truth"]


@dataclass(frozen=True)
class DemoHistory:
    """The demo club's randomized test campaign of the quarter before (see the module docstring)."""

    campaign: str
    counts: dict[str, int]  # arm → contacts
    responders: int
    lines: int  # simulated order lines written
    matched: MatchCounts

    def summary(self) -> str:
        counts = ", ".join(f"{arm} {n:,}" for arm, n in sorted(self.counts.items()))
        return (
            f"   the demo club's test campaign {self.campaign} (to learn whom a piece moves): {counts}; "
            f"{self.responders:,} simulated responders, {self.matched.lines:,} line(s) matched back"
        )



def simulated_truth(connection: Connection, settings: Settings, contacts: ContactsResult) -> dict[str, dict[str, float]]:
    """On the demo club: the planned mailing and a catalog to everyone (as the plan counts them)
    valued at the simulation's true incremental margin per member (:func:`campaign.simulate.true_effects`,
    the members' features as :func:`demo.respond.simulate_responses` builds them). The simulation
    knows one kind of piece: a planned postcard or e-mail is valued at the catalog's effect."""
    plan = contacts.mailing
    assert plan is not None and plan.allowed is not None and plan.holdout is not None
    campaign = contacts.campaign
    segments = mailing_db.segment_features(connection, plan.quarter)
    rows = np.searchsorted(segments.member_key, plan.member_key)
    affinity = edition_affinity(connection, plan.quarter, campaign.in_home_date, segments)[rows]
    recency = segments.recency_days[rows]
    features = MemberFeatures(
        segment=np.maximum(segments.segment[rows], 0),
        tier=np.asarray([TIER_INDEX.get(segments.tier[r], 0) for r in rows.tolist()], dtype=np.int64),
        affinity=affinity,
        recency_days=np.where(recency < 0, 730.0, np.minimum(recency, 730.0)),
    )
    margin = true_effects(features, ResponseModel(margin_rate=(settings.campaign.margin_rate,) * 3)).incremental_margin
    d = plan.decision
    mailed = d.mailed
    cost_each = np.where(d.choice >= 0, plan.cost[np.maximum(d.choice, 0)], 0.0)
    everyone = plan.allowed[:, plan.options.index("catalog")] & ~plan.holdout.held
    catalog = settings.campaign.costs("catalog").total
    out = {}
    for label, mask, cost in (
        ("planned", mailed, float(cost_each[mailed].sum())), ("everyone", everyone, float(everyone.sum() * catalog))
    ):
        total = float(margin[mask].sum())
        out[label] = {"pieces": float(mask.sum()), "cost": cost, "margin": total, "profit": total - cost}
    return out


DEMO_TEST_HOLDOUT = 0.3
"""The share of the demo club's test campaign held out at random (a test cell, not a quarter's 5 %)."""


def earlier_campaigns(connection: Connection, quarter: str) -> bool:
    """Whether a campaign of an earlier quarter has mailed and held-out contacts to learn from."""
    for record in campaigns_db.campaigns(connection):
        if record.quarter is not None and record.quarter < quarter:
            counts = contacts_db.contact_counts(connection, record.id)
            if counts.get("mailed") and counts.get("holdout"):
                return True
    return False


def demo_history(
    engine: Engine, settings: Settings, quarter: str, model: TrainedModel, tree: Mapping[str, CategoryNode],
    titles: Sequence[TitleRecord],
) -> DemoHistory:
    """The demo club's randomized test campaign of ``quarter`` (the one before the job's): that
    quarter's segments and catalog plans, a catalog to every eligible member less a random
    ``DEMO_TEST_HOLDOUT``, in home on the quarter's first day, the simulated responses (their
    true effect known) and matchback. Nothing is rendered: the test is there to learn from.
    ``titles``: a later quarter's (those of ``quarter`` are among them: read once)."""
    period = Quarter.parse(quarter)
    titles = [t for t in titles if t.published_on is None or t.published_on < period.end]
    with engine.begin() as connection:
        segmentation = segment_quarter(connection, model, settings.segments, quarter, tree=tree)
        plans = plan_quarter(
            connection, model, settings, quarter, profiles=segmentation.profiles, titles=titles, tree=tree
        )
        files = PrintFiles(member=partial(edition_file, quarter), segment=partial(catalog_file, quarter))
        # the club's own contact rules and suppressions, everyone eligible mailed, a larger holdout
        test = settings.model_copy(update={
            "campaign": settings.campaign.model_copy(update={"holdout_share": DEMO_TEST_HOLDOUT, "holdout_shares": {}}),
            "mailing": settings.mailing.model_copy(update={"plan_by_profit": False}),
        })  # fmt: skip
        contacts = write_quarter_contacts(
            connection, test, quarter, period.start, files=files, in_home=period.start, personal=0,
            segment_names={p.segment: p.name for p in segmentation.profiles},
        )  # fmt: skip
        simulated = simulate_responses(
            connection, quarter, sections={p.segment: [s.code for s in p.sections] for p in plans},
            plan_titles={p.segment: p.title_ids for p in plans}, margin_rate=settings.campaign.margin_rate,
        )  # fmt: skip
    with engine.begin() as connection:
        matched = run_matchback(connection, quarter, settings.campaign.timezone)
    return DemoHistory(quarter, contacts.counts, simulated.responders, simulated.lines, matched)
