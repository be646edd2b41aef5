"""invoices: a tiny invoicing library (factoryd's bundled target project).

Invoices are plain dicts (see README.md); amounts are integer cents.
"""

from invoices.core import line_total, parse_date, subtotal_cents

__all__ = ["line_total", "parse_date", "subtotal_cents"]
__version__ = "0.1.0"
