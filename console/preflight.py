"""Preflight of a segment's mailing before print: members the mail house cannot deliver or
whose envelope window would cut their name or address, and duplicate households.

Read through :func:`recsys.storage.console_reads.mailing_rows` (keyset batches, so a segment
of a million members is never held at once) and computed off the request path
(``console.cache``). Members with fewer picks than the layout needs and editions over their
page budget need every edition scored or rendered: they are not checked here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection

from recsys.storage import console_reads

NAME_WINDOW = 16  # characters the envelope window holds on the name line
ADDRESS_WINDOW = 40  # and on the address line
EXAMPLES = 5
FLAGS = ("missing_address", "missing_postcode", "name_too_long", "address_too_long", "duplicate_household")


@dataclass
class Preflight:
    members: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def flag(self, name: str, member_id: str) -> None:
        self.counts[name] += 1
        if len(self.examples[name]) < EXAMPLES:
            self.examples[name].append(member_id)


def _household(address: str, postcode: str) -> str:
    return "".join(address.split()).lower() + "|" + postcode.strip()


def preflight(connection: Connection, *, quarter: str, segment: int) -> Preflight:
    out = Preflight()
    first_at: dict[str, str] = {}
    for row in console_reads.mailing_rows(connection, quarter, segment):
        out.members += 1
        address, postcode = (row.address or "").strip(), (row.postcode or "").strip()
        if not address:
            out.flag("missing_address", row.member_id)
        if not postcode:
            out.flag("missing_postcode", row.member_id)
        if len(row.name or "") > NAME_WINDOW:
            out.flag("name_too_long", row.member_id)
        if len(address) > ADDRESS_WINDOW:
            out.flag("address_too_long", row.member_id)
        if address and postcode:
            household = _household(address, postcode)
            if household in first_at:
                out.flag("duplicate_household", row.member_id)
            else:
                first_at[household] = row.member_id
    return out
