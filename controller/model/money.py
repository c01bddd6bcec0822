"""Amounts of US dollars for people: `$12.40`, and small amounts with enough digits to tell
them apart (`$0.0290`), since one short agent run costs a fraction of a cent."""

from __future__ import annotations


def format_usd(amount: float) -> str:
    """`$12.40` from one dollar up, `$0.0290` below."""
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    return f"${amount:.4f}"
