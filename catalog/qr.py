"""What the order form's QR code says (shared by the edition and its stamps)."""

from __future__ import annotations


def qr_payload(member_id: str, key_code: str = "") -> str:
    """The member number, then the key code of the mailing after a space
    (``M0000042 2026Q4-S1-C``); the member number alone without one."""
    return f"{member_id} {key_code}" if key_code else member_id
