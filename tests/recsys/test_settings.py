"""Settings that cannot work together are refused where they are set, naming both."""

from __future__ import annotations

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
