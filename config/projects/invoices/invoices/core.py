"""The basics every feature builds on: line totals, invoice subtotals and dates."""

import datetime


def line_total(line):
    """Returns quantity * unit_cents of one invoice line, in cents.

    Raises ValueError for a negative quantity or price.
    """
    quantity = int(line.get("quantity", 1))
    unit_cents = int(line["unit_cents"])
    if quantity < 0 or unit_cents < 0:
        raise ValueError("quantity and unit_cents must not be negative: %r" % (line,))
    return quantity * unit_cents


def subtotal_cents(invoice):
    """Returns the sum of the invoice's line totals, in cents (0 for no lines)."""
    return sum(line_total(line) for line in invoice.get("lines", []))


def parse_date(value):
    """Returns a datetime.date for a date, a datetime or an ISO "YYYY-MM-DD" string.

    Raises ValueError for anything else.
    """
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        return datetime.date.fromisoformat(value)
    raise ValueError("not a date: %r" % (value,))
