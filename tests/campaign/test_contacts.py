"""A quarter's campaign and contacts: written once, before rendering, reproducible, on both databases."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import Engine, delete, func, select, update

from campaign.contact_plan import plan_contacts
from campaign.contacts import PrintFiles, key_code, write_quarter_contacts
from campaign.holdouts import campaign_seed
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage.schema import CampaignContact, Member, MemberSegment
from tests.campaign.club import QUARTER, insert_club, member_id

FILES = PrintFiles(member=lambda m: f"{QUARTER}/members/{m}.pdf", segment=lambda s: f"{QUARTER}/segment-{s}.pdf")
START = dt.date(2026, 10, 1)


def _contacts(engine: Engine) -> dict[str, tuple[str, str | None, int, str | None, float | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Member.member_id, CampaignContact.arm, CampaignContact.reason, CampaignContact.treatment_id,
                CampaignContact.file, CampaignContact.holdout_share,
            ).join(Member, Member.id == CampaignContact.member_key)
        )
        return {m: (arm, reason, t, file, share) for m, arm, reason, t, file, share in rows}


def test_contacts_are_written_once_with_arms_reasons_files_and_lineage(engine: Engine) -> None:
    settings = CampaignSettings(holdout_share=0.10, universal_holdout_share=0.01, suppress_tiers=["lapsed"])
    with engine.begin() as connection:
        insert_club(connection, 4_000)
        result = write_quarter_contacts(
            connection, settings, QUARTER, START, files=FILES, in_home=dt.date(2026, 10, 5)
        )
    assert result.written == 4_000
    contacts = _contacts(engine)
    assert len(contacts) == 4_000  # one per member of the quarter
    arms = Counter(arm for arm, *_ in contacts.values())
    assert arms["mailed"] + arms["holdout"] + arms["suppressed"] == 4_000
    reasons = Counter(reason for arm, reason, *_ in contacts.values() if arm == "suppressed")
    closed = sum(1 for i in range(4_000) if i % 97 == 3)
    no_address = sum(1 for i in range(4_000) if i % 89 == 5 and i % 97 != 3)
    assert reasons["member closed"] == closed
    assert reasons["no postal address"] == no_address
    assert reasons["tier lapsed is not mailed"] > 0
    # the holdout is about 10 % (+1 % universal) of the members who could be mailed
    eligible = arms["mailed"] + arms["holdout"]
    assert 0.08 < arms["holdout"] / eligible < 0.14
    assert {r for arm, r, *_ in contacts.values() if arm == "holdout"} <= {"random", "universal"}
    for mid, (arm, _reason, _t, file, share) in contacts.items():
        if arm == "mailed":
            assert file == f"{QUARTER}/members/{mid}.pdf"
            assert share == pytest.approx(0.01 + 0.99 * 0.10)
        else:
            assert file is None
    # lineage and costs: edition → plan, model version; key codes per segment
    with engine.connect() as connection:
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None and campaign.in_home_date == dt.date(2026, 10, 5)
        assert campaign.seed == campaign_seed(QUARTER)
        editions = campaigns_db.editions(connection, campaign.id)
        treatments = campaigns_db.treatments(connection, campaign.id)
        costs = connection.execute(
            select(func.min(CampaignContact.cost), func.max(CampaignContact.cost)).where(CampaignContact.arm == "mailed")
        ).one()
    assert [e.segment for e in editions] == [0, 1, 2, 3]
    assert all(e.model_version == "v-test" and e.plan_hash == f"hash{e.segment}" and e.plan_id for e in editions)
    assert [t.key_code for t in treatments] == [key_code(QUARTER, s, "catalog") for s in range(4)]
    assert treatments[1].key_code == "2026Q4-S1-C"
    assert float(costs[0]) == float(costs[1]) == pytest.approx(settings.catalog.total)

    # re-running writes nothing and changes nothing
    with engine.begin() as connection:
        again = write_quarter_contacts(connection, settings, QUARTER, START, files=FILES)
    assert again.written == 0
    assert _contacts(engine) == contacts


def test_members_segmented_later_get_their_contacts_and_the_others_keep_theirs(engine: Engine) -> None:
    settings = CampaignSettings()
    with engine.begin() as connection:
        insert_club(connection, 600)
        keys = [k for (k,) in connection.execute(select(Member.id).where(Member.member_id.in_([member_id(1), member_id(2)])))]
        connection.execute(delete(MemberSegment).where(MemberSegment.member_key.in_(keys)))
        write_quarter_contacts(connection, settings, QUARTER, START, files=FILES)
    before = _contacts(engine)
    assert len(before) == 598
    with engine.begin() as connection:
        # the two members are segmented now; and segments were reshuffled for everyone else
        connection.execute(update(MemberSegment).values(segment=(MemberSegment.segment + 1) % 4))
        for key, segment in zip(keys, (1, 2), strict=True):
            connection.execute(
                MemberSegment.__table__.insert().values(
                    quarter=QUARTER, member_key=key, tier="core", segment=segment, frequency=1, monetary=1.0
                )
            )
        result = write_quarter_contacts(connection, settings, QUARTER, START, files=FILES)
    after = _contacts(engine)
    assert result.written == 2
    assert {m: after[m] for m in before} == before


def test_the_same_arms_on_another_database() -> None:
    """The arms are a pure function of the member ids and the campaign name (no database state)."""
    from recsys.storage.contacts import Audience

    n = 1_000
    audience = Audience(
        member_key=np.arange(1, n + 1), member_id=[member_id(i) for i in range(n)],
        segment=np.arange(n) % 4, tier=["regular"] * n, status=["active"] * n,
        has_address=np.ones(n, dtype=np.bool_), monetary=np.zeros(n),
    )
    reordered = Audience(
        member_key=audience.member_key[::-1], member_id=audience.member_id[::-1],
        segment=audience.segment[::-1], tier=audience.tier, status=audience.status,
        has_address=audience.has_address, monetary=audience.monetary,
    )
    first = plan_contacts(audience, CampaignSettings(), campaign_seed(QUARTER))
    second = plan_contacts(reordered, CampaignSettings(), campaign_seed(QUARTER))
    assert first.arm == second.arm[::-1]


def test_personalising_only_the_best_mailed_members(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_club(connection, 400)
        write_quarter_contacts(connection, CampaignSettings(), QUARTER, START, files=FILES, personal=6)
    contacts = _contacts(engine)
    personal = [m for m, (arm, _r, _t, file, _s) in contacts.items() if file and "/members/" in file]
    assert len(personal) == 6
    assert all(contacts[m][0] == "mailed" for m in personal)
    mailed_segment_files = {file for arm, _r, _t, file, _s in contacts.values() if arm == "mailed" and file and "segment-" in file}
    assert mailed_segment_files == {f"{QUARTER}/segment-{s}.pdf" for s in range(4)}


def test_a_quarter_without_segments_or_plans_is_refused(engine: Engine) -> None:
    with engine.begin() as connection, pytest.raises(BookclubError, match="no segments"):
        write_quarter_contacts(connection, CampaignSettings(), "2030Q1", dt.date(2030, 1, 1), files=FILES)


def test_the_first_campaign_mails_everyone_eligible_and_respects_the_suppression_list_and_rules(
    engine: Engine, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    """Nothing to learn from yet: everyone eligible is mailed (and the result says why), but the
    suppression list and the contact rules hold — a member on the list is suppressed with its
    reason, a member a frequency cap blocks is not mailed with the rule's name."""
    from campaign.suppression import SuppressionEntry, add_suppression_entries
    from recsys.settings import FrequencyCapSetting, MailingSettings, Settings

    settings = Settings(
        data_dir=tmp_path, campaign=CampaignSettings(holdout_share=0.1, universal_holdout_share=0.0),
        mailing=MailingSettings(frequency_caps=[FrequencyCapSetting(pieces=1, days=30)]),
    )  # fmt: skip
    with engine.begin() as connection:
        insert_club(connection, 600)
        add_suppression_entries(connection, [
            SuppressionEntry(member_id(10), "do_not_mail", "member's call", dt.date(2026, 1, 1)),
            SuppressionEntry(member_id(11), "moved", "returned piece", dt.date(2026, 1, 1), dt.date(2026, 3, 1)),
            SuppressionEntry(member_id(12), "do_not_email", "member's call", dt.date(2026, 1, 1)),
        ])  # fmt: skip
        # an earlier mailing of the quarter, ten days before: the cap of one piece in 30 days blocks its members
        early = write_quarter_contacts(
            connection, settings.campaign, QUARTER, START, files=FILES, in_home=dt.date(2026, 9, 25), name="early"
        )  # fmt: skip
        result = write_quarter_contacts(connection, settings, QUARTER, START, files=FILES, in_home=dt.date(2026, 10, 5))
    assert result.mailing is None and result.fallback is not None and "nothing to learn" in result.fallback
    assert any("everyone eligible" in line for line in result.summary())
    first = dict(zip(early.plan.audience.member_id, early.plan.arm, strict=True))
    with engine.connect() as connection:
        rows = connection.execute(
            select(Member.member_id, CampaignContact.arm, CampaignContact.reason, CampaignContact.expected_profit)
            .join(Member, Member.id == CampaignContact.member_key)
            .where(CampaignContact.campaign_id == result.campaign.id)
        ).all()
    arms = {m: (arm, reason, profit) for m, arm, reason, profit in rows}
    assert arms[member_id(10)][:2] == ("suppressed", "suppressed: do_not_mail")
    assert arms[member_id(12)][0] != "suppressed"  # e-mail only: a catalog may go
    assert arms[member_id(11)][1] != "suppressed: moved"  # ended before the in-home date
    for m, (arm, reason, profit) in arms.items():
        assert profit is None  # nothing planned by expected profit
        if first[m] == "mailed" and arm != "suppressed":
            assert (arm, reason) == ("not_mailed", "cap 1 per 30 d")
        if arm == "mailed":
            assert first[m] != "mailed"
    assert sum(1 for arm, *_ in arms.values() if arm == "not_mailed") == sum(
        1 for m, a in first.items() if a == "mailed" and arms[m][0] != "suppressed"
    )
    assert result.counts["mailed"] > 0 and result.counts["holdout"] > 0
