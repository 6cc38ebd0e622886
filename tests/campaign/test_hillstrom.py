"""The Hillstrom e-mail test imported as a campaign: the report equals the file's difference of means."""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import func, select
from typer.testing import CliRunner

from bookclub_cli.main import app
from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage.db import make_engine
from recsys.storage.schema import CampaignContact, Purchase
from tests.conftest import shared_data

pytestmark = pytest.mark.slow


def _file(path: Path) -> dict[str, dict[str, np.ndarray]]:
    arms: dict[str, dict[str, list[float]]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            arm = arms.setdefault(row["segment"], {"conversion": [], "spend": []})
            arm["conversion"].append(float(row["conversion"]))
            arm["spend"].append(float(row["spend"]))
    return {a: {k: np.asarray(v) for k, v in cols.items()} for a, cols in arms.items()}


def _newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Newcombe's method 10 from scipy's Wilson limits (written independently of campaign.effects)."""
    ci1 = stats.binomtest(x1, n1).proportion_ci(0.95, method="wilson")
    ci2 = stats.binomtest(x2, n2).proportion_ci(0.95, method="wilson")
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    return (
        d - math.sqrt((p1 - ci1.low) ** 2 + (ci2.high - p2) ** 2),
        d + math.sqrt((ci1.high - p1) ** 2 + (p2 - ci2.low) ** 2),
    )


def test_hillstrom_report_equals_the_difference_of_means_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_data("hillstrom", "hillstrom.csv.gz")
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOOKCLUB_SHARED_DATA_DIR", str(path.parent.parent))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    runner = CliRunner()
    imported = runner.invoke(app, ["import", "hillstrom"])
    assert imported.exit_code == 0, imported.output
    assert "Mens E-Mail 21,307, Womens E-Mail 21,387, No E-Mail 21,306" in " ".join(imported.output.split())
    again = runner.invoke(app, ["import", "hillstrom"])  # adds nothing
    assert again.exit_code == 0 and "0 contact(s) written" in " ".join(again.output.split())
    matched = runner.invoke(app, ["campaigns", "matchback", "--campaign", "hillstrom"])
    assert matched.exit_code == 0, matched.output
    result = runner.invoke(app, ["campaigns", "report", "--campaign", "hillstrom", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)

    data = _file(path)
    control = data["No E-Mail"]
    assert report["sample_ratio"]["mismatch"] is False
    assert report["campaign"]["name"] == "hillstrom"
    assert [a["arm"] for a in report["arms"]] == ["Mens E-Mail", "Womens E-Mail"]
    for arm in report["arms"]:
        mailed = data[arm["arm"]]
        assert arm["holdout_arm"] == "No E-Mail"
        assert arm["members"] == {"mailed": mailed["spend"].size, "holdout": control["spend"].size}
        # conversion: the incremental response rate, with Newcombe's interval
        p1, p0 = mailed["conversion"].mean(), control["conversion"].mean()
        assert arm["response"]["mailed"] == pytest.approx(p1, abs=1e-12)
        assert arm["response"]["holdout"] == pytest.approx(p0, abs=1e-12)
        assert arm["response"]["incremental"] == pytest.approx(p1 - p0, abs=1e-12)
        low, high = _newcombe(
            int(mailed["conversion"].sum()), mailed["conversion"].size,
            int(control["conversion"].sum()), control["conversion"].size,
        )
        assert (arm["response"]["low"], arm["response"]["high"]) == pytest.approx((low, high), abs=1e-9)
        # spend: the incremental revenue per member, its bootstrap interval close to Welch's
        s1, s0 = mailed["spend"].mean(), control["spend"].mean()
        assert arm["revenue"]["mailed"] == pytest.approx(s1, rel=1e-9)
        assert arm["revenue"]["holdout"] == pytest.approx(s0, rel=1e-9)
        assert arm["revenue"]["incremental"] == pytest.approx(s1 - s0, rel=1e-9)
        welch = stats.ttest_ind(mailed["spend"], control["spend"], equal_var=False).confidence_interval(0.95)
        width = welch.high - welch.low
        assert arm["revenue"]["method"] == "bootstrap"
        assert arm["revenue"]["low"] == pytest.approx(welch.low, abs=0.1 * width)
        assert arm["revenue"]["high"] == pytest.approx(welch.high, abs=0.1 * width)
        assert arm["revenue"]["high"] - arm["revenue"]["low"] == pytest.approx(width, rel=0.1)
        # one order per converting customer
        assert arm["orders"]["incremental"] == pytest.approx(p1 - p0, abs=1e-12)
    mens, womens = report["arms"]
    assert mens["response"]["low"] > 0 and womens["response"]["low"] > 0  # both e-mails worked
    assert report["matchback"]["lines"] == {"inferred": 456, "unattributed": 122}

    settings = Settings(data_dir=tmp_path / "var")
    engine = make_engine(settings.db_url)
    with engine.connect() as connection:
        campaign = campaigns_db.campaign_by_name(connection, "hillstrom")
        assert campaign is not None
        contacts = connection.execute(
            select(CampaignContact.arm, func.count()).group_by(CampaignContact.arm)
        ).all()
        window = connection.execute(
            select(func.count(), func.sum(Purchase.unit_price)).where(Purchase.line_id.like("%-C"))
        ).one()
    engine.dispose()
    assert dict(contacts) == {"mailed": 42_694, "holdout": 21_306}
    conversions = sum(int(d["conversion"].sum()) for d in data.values())
    assert window[0] == conversions == 578
    assert float(window[1]) == pytest.approx(sum(float(d["spend"].sum()) for d in data.values()), abs=0.01)
