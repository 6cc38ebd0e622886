"""Contacts against the files written: no PDF without a contact, no mailed contact without its PDF.

Every mailed (and web) contact names the print file its piece is in, relative to the
catalogs folder; every member edition on disk must belong to a mailed or web contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from recsys.storage import contacts as contacts_db
from recsys.storage.campaigns import CampaignRecord

__all__ = ["Reconciliation", "reconcile_files"]


@dataclass(frozen=True)
class Reconciliation:
    campaign: str
    mailed: int  # mailed contacts
    files: int  # distinct print files they name
    editions_on_disk: int  # member edition PDFs found
    missing: list[str]  # files named by a mailed contact that are not there
    orphans: list[str]  # member edition PDFs no contact names

    @property
    def ok(self) -> bool:
        return not self.missing and not self.orphans

    def summary(self) -> str:
        head = (
            f"campaign {self.campaign}: {self.mailed:,} mailed contact(s) in {self.files:,} print file(s); "
            f"{self.editions_on_disk:,} member edition(s) on disk"
        )
        if self.ok:
            return head + " — every mailed contact has its PDF and every PDF its contact"
        lines = [head]
        if self.missing:
            lines.append(f"  {len(self.missing):,} mailed contact file(s) missing, e.g. {', '.join(self.missing[:5])}")
        if self.orphans:
            lines.append(f"  {len(self.orphans):,} PDF(s) without a contact, e.g. {', '.join(self.orphans[:5])}")
        return "\n".join(lines)


def reconcile_files(
    connection: Connection, campaign: CampaignRecord, catalogs_dir: Path, member_dir: Path
) -> Reconciliation:
    """Compare the campaign's contacts with ``member_dir`` (the quarter's member editions) and
    the files the contacts name under ``catalogs_dir``."""
    contacts = contacts_db.contacts_with_files(connection, campaign.id)
    named = {c.file for c in contacts if c.file}
    mailed_files = {c.file for c in contacts if c.file and c.arm == "mailed"}
    missing = sorted(f for f in mailed_files if not (catalogs_dir / f).is_file())
    on_disk = sorted(member_dir.glob("*.pdf")) if member_dir.is_dir() else []
    orphans = [
        p.relative_to(catalogs_dir).as_posix()
        for p in on_disk
        if p.relative_to(catalogs_dir).as_posix() not in named
    ]
    return Reconciliation(
        campaign=campaign.name,
        mailed=sum(1 for c in contacts if c.arm == "mailed"),
        files=len(mailed_files),
        editions_on_disk=len(on_disk),
        missing=missing,
        orphans=orphans,
    )
