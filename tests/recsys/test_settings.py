"""Settings that cannot work together are refused where they are set, naming both."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from recsys.settings import CampaignSettings, Settings


def test_a_negative_option_with_a_reply_period_shorter_than_its_notice_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"reply_days \(7\) is shorter than .*notice_days \(10\)"):
        CampaignSettings(negative_option=True, reply_days=7, negative_option_notice_days=10)
    assert CampaignSettings(negative_option=True, reply_days=10, negative_option_notice_days=10).reply_days == 10
    assert not CampaignSettings(reply_days=7, negative_option_notice_days=10).negative_option  # off: no matter


def test_the_environment_is_checked_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKCLUB_CAMPAIGN__NEGATIVE_OPTION", "true")
    monkeypatch.setenv("BOOKCLUB_CAMPAIGN__REPLY_DAYS", "5")
    with pytest.raises(ValidationError, match="negative_option_notice_days"):
        Settings()


def test_the_clubs_calendar_day_of_a_stored_utc_timestamp() -> None:
    assert CampaignSettings().timezone == "UTC"
    shanghai, new_york = CampaignSettings(timezone="Asia/Shanghai"), CampaignSettings(timezone="America/New_York")
    assert shanghai.club_date(dt.datetime(2026, 11, 4, 15, 59)) == dt.date(2026, 11, 4)  # 23:59 there
    assert shanghai.club_date(dt.datetime(2026, 11, 4, 16, 0)) == dt.date(2026, 11, 5)  # midnight there
    assert new_york.club_date(dt.datetime(2026, 11, 5, 4, 59)) == dt.date(2026, 11, 4)  # 23:59 EST
    assert new_york.club_date(dt.datetime(2026, 11, 5, 5, 0)) == dt.date(2026, 11, 5)
    assert CampaignSettings().club_date(dt.datetime(2026, 11, 4, 23, 59)) == dt.date(2026, 11, 4)
    assert shanghai.club_day_start(dt.date(2026, 11, 5)) == dt.datetime(2026, 11, 4, 16, 0)
    assert new_york.club_day_start(dt.date(2026, 7, 1)) == dt.datetime(2026, 7, 1, 4, 0)  # EDT
    with pytest.raises(ValidationError, match="not a time zone"):
        CampaignSettings(timezone="Mars/Olympus")
