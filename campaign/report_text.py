"""The campaign report as a reader sees it on the terminal (``bookclub campaigns report``).

:func:`report_text` renders a :class:`campaign.report.CampaignReport` — computed by
:func:`campaign.report.campaign_report`, which also gives its JSON (``to_json``) — as lines:
the sample-ratio verdict first, then each arm's effect per member with its intervals and what
matchback credited it, all arms together, the model versions live, the auto-ship section
(:func:`campaign.autoship_report.autoship_lines_text`) and the matchback totals.
"""

from __future__ import annotations

from campaign.autoship_report import autoship_lines_text
from campaign.effects import ArmEffect
from campaign.report import CampaignReport

__all__ = ["report_text"]


def _interval(effect: ArmEffect, outcome: str, scale: float = 1.0, digits: int = 2) -> str:
    o = effect.outcome(outcome)
    return f"{o.incremental * scale:+.{digits}f} [{o.low * scale:+.{digits}f}, {o.high * scale:+.{digits}f}]"


def _arm_lines(effect: ArmEffect, extra: str = "") -> list[str]:
    r = effect.response
    lines = [
        f"  {effect.arm}{extra}: {effect.mailed_members:,} mailed, {effect.holdout_members:,} held out",
        f"    response   {r.mailed:.2%} vs {r.holdout:.2%}  incremental {_interval(effect, 'response', 100)} pts",
        f"    orders     {effect.orders.mailed:.3f} vs {effect.orders.holdout:.3f}  incremental "
        f"{_interval(effect, 'orders', 1, 4)} per piece",
        f"    revenue    {effect.revenue.mailed:.2f} vs {effect.revenue.holdout:.2f}  incremental "
        f"{_interval(effect, 'revenue')} per piece",
        f"    margin     {effect.margin.mailed:.2f} vs {effect.margin.holdout:.2f}  incremental "
        f"{_interval(effect, 'margin')} per piece",
    ]
    net = effect.net_profit_per_piece
    anyway = effect.revenue_anyway
    lines.append(
        f"    net profit {net.estimate:+.2f} [{net.low:+.2f}, {net.high:+.2f}] per piece after "
        f"{effect.cost_per_piece:.{2 if effect.cost_per_piece >= 0.01 else 3}f} cost"
        + ("" if anyway is None else f"; {anyway.estimate:.0%} of the mailed members' revenue would have come anyway")
    )
    return lines


def report_text(report: CampaignReport) -> str:
    """The report as a reader sees it on the terminal."""
    c = report.campaign
    out = [
        f"campaign {c.name}: in home {c.in_home_date}, response window {c.response_days} days"
        + (f" (+{c.late_days} late)" if c.late_days else "")
        + f", margin {report.margin_rate:.0%} of revenue, intervals at {round(100 * _confidence(report))} %",
    ]
    if report.mismatch:
        out.extend(f"!! {w}" for w in report.warnings if w.startswith("SAMPLE RATIO"))
    else:
        out.append(f"sample ratio: {len(report.sample_ratio)} check(s), arms are the sizes they should be")
    out.extend(f"note: {w}" for w in report.warnings if not w.startswith("SAMPLE RATIO"))
    counts = ", ".join(f"{arm} {n:,}" for arm, n in sorted(report.contacts.items()))
    out.append(f"contacts: {counts}")
    if report.suppressed:
        out.append("suppressed: " + ", ".join(f"{r} {n:,}" for r, n in sorted(report.suppressed.items())))
    scope = "active orders, " if report.autoship is not None else ""
    out.append(f"effect per arm ({scope}mailed vs holdout, per member):")
    for arm in report.arms:
        key = f" [{arm.treatment.key_code}]" if arm.treatment.key_code else ""
        out.extend(_arm_lines(arm.effect, key))
        credited = arm.credited
        incremental_total = arm.effect.revenue.incremental * arm.effect.mailed_members
        out.append(
            f"    matchback credits {credited['last']:,.0f} (last) / {credited['fractional']:,.0f} (fractional) / "
            f"{credited['all']:,.0f} (all) of revenue; the holdout says {incremental_total:,.0f} was incremental"
        )
    if report.total is not None:
        out.append("all arms together:")
        out.extend(_arm_lines(report.total))
    if len(report.model_versions) > 1:
        out.append("by model version:")
        for version, names, effect in report.model_versions:
            out.append(f"  {version}: {', '.join(names)}")
            if effect is not None:
                out.extend("  " + line for line in _arm_lines(effect)[1:4])
    else:
        for version, names, _effect in report.model_versions:
            out.append(f"model version live: {version} ({len(names)} arm(s))")
    if report.autoship is not None:
        out.extend(autoship_lines_text(report.autoship))
    lines, revenue = report.matchback.lines, report.matchback.revenue
    if lines:
        out.append(
            "matchback: "
            + ", ".join(f"{kind} {lines.get(kind, 0):,} lines ({revenue.get(kind, 0.0):,.0f})"
                        for kind in ("direct", "inferred", "unattributed"))
            + (f"; {report.matchback.late_lines:,} late" if report.matchback.late_lines else "")
        )
    else:
        out.append("matchback: not run yet (`bookclub campaigns matchback --campaign NAME`)")
    return "\n".join(out)


def _confidence(report: CampaignReport) -> float:
    return report.arms[0].effect.confidence if report.arms else 0.95
