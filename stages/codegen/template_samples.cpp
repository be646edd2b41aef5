// The bundled sample features of the invoices project (template_samples.h): the Python code,
// unit tests and acceptance checks the template provider hands out. Tested by
// tests/stages/codegen_test.cpp, which runs every sample's tests in a checkout.
#include "codegen/template_samples.h"

namespace factory::stages {

const std::vector<SampleFeature>& sample_features() {
  static const std::vector<SampleFeature> kSamples = {
      {
          .feature = "export_csv",
          .module = "export_csv",
          .ticket_ids = {"INV-101"},
          .title_words = {{"csv"}, {"export"}},
          .code = R"PY("""Export invoices as CSV (INV-101)."""

import csv
import io

from invoices.core import subtotal_cents

COLUMNS = ["number", "customer", "issued", "due", "currency", "total"]


def _money(cents):
    """12.50 for 1250 cents; -0.05 for -5."""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return "%s%d.%02d" % (sign, cents // 100, cents % 100)


def export_csv(invoices):
    """Returns the invoices as CSV text: a header row, then one row per invoice, in order.

    Columns: number, customer, issued, due, currency, total. The total is the invoice's
    subtotal in major units with two decimals (1250 cents -> 12.50). Fields holding commas,
    quotes or line breaks are quoted as RFC 4180 says; lines end with "\\n". A missing field
    is an empty cell.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for invoice in invoices:
        writer.writerow([
            invoice.get("number", ""),
            invoice.get("customer", ""),
            invoice.get("issued", ""),
            invoice.get("due", ""),
            invoice.get("currency", ""),
            _money(subtotal_cents(invoice)),
        ])
    return out.getvalue()
)PY",
          .unit_tests = R"PY(import csv
import io
import unittest

from invoices.export_csv import COLUMNS, export_csv


def invoice(number, customer="Ada Lovelace", cents=1250):
    return {"number": number, "customer": customer, "issued": "2024-03-01",
            "due": "2024-03-31", "currency": "EUR",
            "lines": [{"quantity": 1, "unit_cents": cents}]}


class ExportCsvTest(unittest.TestCase):
    def test_header_only_for_no_invoices(self):
        self.assertEqual(export_csv([]), ",".join(COLUMNS) + "\n")

    def test_one_row_per_invoice_in_order(self):
        rows = list(csv.reader(io.StringIO(export_csv([invoice("INV-1"), invoice("INV-2")]))))
        self.assertEqual([r[0] for r in rows], ["number", "INV-1", "INV-2"])

    def test_total_has_two_decimals(self):
        rows = list(csv.reader(io.StringIO(export_csv([invoice("INV-1", cents=1205)]))))
        self.assertEqual(rows[1][5], "12.05")

    def test_quotes_commas_and_quotes(self):
        text = export_csv([invoice("INV-1", customer='Acme, "Widgets" Ltd')])
        self.assertIn('"Acme, ""Widgets"" Ltd"', text)
        rows = list(csv.reader(io.StringIO(text)))
        self.assertEqual(rows[1][1], 'Acme, "Widgets" Ltd')


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(import csv
import io

from invoices.export_csv import export_csv

HEADER = ["number", "customer", "issued", "due", "currency", "total"]


def _invoice(number, customer="Ada Lovelace", cents=1250):
    return {"number": number, "customer": customer, "issued": "2024-03-01",
            "due": "2024-03-31", "currency": "EUR",
            "lines": [{"quantity": 1, "unit_cents": cents}]}


def _rows(text):
    return list(csv.reader(io.StringIO(text)))
)PY",
          .checks =
              {
                  {"header,column,heading",
                   R"PY(rows = _rows(export_csv([_invoice("INV-1")]))
self.assertEqual(rows[0], HEADER))PY"},
                  {"each invoice,one row,per invoice,row per,rows",
                   R"PY(rows = _rows(export_csv([_invoice("INV-1"), _invoice("INV-2"), _invoice("INV-3")]))
self.assertEqual(len(rows), 4)
self.assertEqual([r[0] for r in rows[1:]], ["INV-1", "INV-2", "INV-3"]))PY"},
                  {"amount,total,decimal,cents,money",
                   R"PY(rows = _rows(export_csv([_invoice("INV-1", cents=123456), _invoice("INV-2", cents=5)]))
self.assertEqual(rows[1][5], "1234.56")
self.assertEqual(rows[2][5], "0.05"))PY"},
                  {"comma,quot,escap,special",
                   R"PY(customer = 'Acme, "Widgets" Ltd'
text = export_csv([_invoice("INV-1", customer=customer)])
self.assertIn('"Acme, ""Widgets"" Ltd"', text)
self.assertEqual(_rows(text)[1][1], customer))PY"},
                  {"empty,no invoice,zero invoice,only the header",
                   R"PY(self.assertEqual(_rows(export_csv([])), [HEADER]))PY"},
                  {"string,text,utf",
                   R"PY(text = export_csv([_invoice("INV-1", customer="Zo\u00eb")])
self.assertIsInstance(text, str)
self.assertIn("Zo\u00eb", text))PY"},
              },
      },
      {
          .feature = "total_with_tax",
          .module = "tax",
          .ticket_ids = {"INV-102"},
          .title_words = {{"tax"}},
          .code = R"PY("""The invoice total with tax (INV-102)."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from invoices.core import subtotal_cents


def total_with_tax(invoice, rate):
    """Returns the invoice's subtotal plus tax at `rate`, in cents, rounded half up.

    `rate` is a fraction: 0.2 (or "0.2", or Decimal("0.2")) for 20 %. Raises ValueError for a
    negative rate or one that is not a number.
    """
    try:
        rate = Decimal(str(rate))
    except InvalidOperation:
        raise ValueError("tax rate %r is not a number" % (rate,)) from None
    if not rate.is_finite() or rate < 0:
        raise ValueError("tax rate must be a number >= 0, got %r" % (rate,))
    total = Decimal(subtotal_cents(invoice)) * (1 + rate)
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
)PY",
          .unit_tests = R"PY(import unittest

from invoices.tax import total_with_tax


def invoice(*cents):
    return {"lines": [{"quantity": 1, "unit_cents": c} for c in cents]}


class TotalWithTaxTest(unittest.TestCase):
    def test_adds_tax(self):
        self.assertEqual(total_with_tax(invoice(10000), 0.2), 12000)

    def test_zero_rate_is_the_subtotal(self):
        self.assertEqual(total_with_tax(invoice(999, 1), 0), 1000)

    def test_rounds_half_up_to_the_cent(self):
        self.assertEqual(total_with_tax(invoice(1005), "0.1"), 1106)  # 1105.5

    def test_rejects_negative_or_non_numeric_rates(self):
        for rate in (-0.1, "abc", float("nan")):
            with self.assertRaises(ValueError):
                total_with_tax(invoice(100), rate)


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(from invoices.tax import total_with_tax


def _invoice(*cents):
    return {"lines": [{"quantity": 1, "unit_cents": c} for c in cents]}
)PY",
          .checks =
              {
                  {"rate,tax is added,apply,with tax,added",
                   R"PY(self.assertEqual(total_with_tax(_invoice(10000), 0.2), 12000)
self.assertEqual(total_with_tax(_invoice(2500, 7500), "0.07"), 10700))PY"},
                  {"zero,0%,no tax,exempt",
                   R"PY(self.assertEqual(total_with_tax(_invoice(1999), 0), 1999))PY"},
                  {"round,nearest cent,half",
                   R"PY(self.assertEqual(total_with_tax(_invoice(1005), 0.1), 1106)
self.assertEqual(total_with_tax(_invoice(999), 0.075), 1074))PY"},
                  {"negative,invalid,reject,error",
                   R"PY(with self.assertRaises(ValueError):
    total_with_tax(_invoice(100), -0.2)
with self.assertRaises(ValueError):
    total_with_tax(_invoice(100), "twenty"))PY"},
                  {"lines,sum,subtotal,multiple,quantit",
                   R"PY(invoice = {"lines": [{"quantity": 2, "unit_cents": 1000}, {"quantity": 1, "unit_cents": 500}]}
self.assertEqual(total_with_tax(invoice, 0.1), 2750))PY"},
                  {"empty,no lines,no items",
                   R"PY(self.assertEqual(total_with_tax({"lines": []}, 0.2), 0))PY"},
              },
      },
      {
          .feature = "is_valid_email",
          .module = "emails",
          .ticket_ids = {"acme/invoices#103"},
          .title_words = {{"email"}, {"e-mail"}},
          .code = R"PY("""Customer email address validation (acme/invoices#103)."""

import re

_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(r"^%s(\.%s)*$" % (_LOCAL_ATOM, _LOCAL_ATOM))
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def is_valid_email(address):
    """Returns True when `address` is a plausible email address: local@domain.tld.

    The local part is dot-separated atoms (no leading, trailing or double dots); the domain has
    at least two labels and an alphabetic top-level label of two letters or more. No
    whitespace anywhere; at most 254 characters. Anything that is not a string is invalid.
    """
    if not isinstance(address, str) or not address or len(address) > 254:
        return False
    if any(c.isspace() for c in address):
        return False
    local, at, domain = address.rpartition("@")
    if not at or not local or len(local) > 64 or not _LOCAL.match(local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    return labels[-1].isalpha() and len(labels[-1]) >= 2
)PY",
          .unit_tests = R"PY(import unittest

from invoices.emails import is_valid_email


class IsValidEmailTest(unittest.TestCase):
    def test_accepts_ordinary_addresses(self):
        for a in ("ada@example.com", "first.last+tag@mail.example.co.uk", "x_y-z@a-b.io"):
            self.assertTrue(is_valid_email(a), a)

    def test_rejects_malformed_addresses(self):
        for a in ("", "ada", "ada@", "@example.com", "ada@example", "ada@@example.com",
                  "a@b@example.com", "ada..x@example.com", ".ada@example.com",
                  "ada @example.com", "ada@exa mple.com", "ada@-example.com", "ada@example.c0m"):
            self.assertFalse(is_valid_email(a), a)

    def test_rejects_non_strings(self):
        self.assertFalse(is_valid_email(None))
        self.assertFalse(is_valid_email(42))

    def test_rejects_overlong_addresses(self):
        self.assertFalse(is_valid_email("a" * 65 + "@example.com"))
        self.assertFalse(is_valid_email("a@" + "b" * 250 + ".com"))


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(from invoices.emails import is_valid_email
)PY",
          .checks =
              {
                  {"valid address,accept,well-formed,well formed,correct",
                   R"PY(for address in ("ada@example.com", "first.last+tag@mail.example.co.uk"):
    self.assertTrue(is_valid_email(address), address))PY"},
                  {"missing @,without @,no @,without an @,at sign",
                   R"PY(self.assertFalse(is_valid_email("ada.example.com"))
self.assertFalse(is_valid_email("ada@"))
self.assertFalse(is_valid_email("@example.com")))PY"},
                  {"domain,tld,dot",
                   R"PY(self.assertFalse(is_valid_email("ada@localhost"))
self.assertFalse(is_valid_email("ada@example"))
self.assertFalse(is_valid_email("ada@-bad.com")))PY"},
                  {"space,whitespace",
                   R"PY(self.assertFalse(is_valid_email("ada @example.com"))
self.assertFalse(is_valid_email(" ada@example.com")))PY"},
                  {"empty,none,null,not a string,blank",
                   R"PY(self.assertFalse(is_valid_email(""))
self.assertFalse(is_valid_email(None)))PY"},
                  {"multiple @,two @,more than one",
                   R"PY(self.assertFalse(is_valid_email("a@b@example.com")))PY"},
                  {"consecutive,double dot,two dots,leading dot",
                   R"PY(self.assertFalse(is_valid_email("ada..x@example.com"))
self.assertFalse(is_valid_email(".ada@example.com")))PY"},
                  {"long,length,254,64",
                   R"PY(self.assertFalse(is_valid_email("a" * 65 + "@example.com"))
self.assertTrue(is_valid_email("a" * 64 + "@example.com")))PY"},
              },
      },
      {
          .feature = "format_amount",
          .module = "currency",
          .ticket_ids = {"INV-104"},
          .title_words = {{"currency"}, {"format", "amount"}},
          .code = R"PY("""Formatting amounts as currency (INV-104)."""

import re

SYMBOLS = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3"}


def format_amount(cents, currency):
    """Returns `cents` formatted for display in `currency` (an ISO 4217 code, any case).

    Two decimals and a comma between thousands: format_amount(123456, "USD") == "$1,234.56".
    USD, EUR and GBP get their symbol in front; other codes follow the number
    ("1,234.56 CHF"). Negative amounts start with "-". Raises TypeError when cents is not an
    int and ValueError when currency is not a three-letter code.
    """
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError("cents must be an int, got %r" % (cents,))
    code = currency.upper() if isinstance(currency, str) else ""
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError("currency must be a three-letter ISO 4217 code, got %r" % (currency,))
    units, rest = divmod(abs(cents), 100)
    number = "{:,}.{:02d}".format(units, rest)
    sign = "-" if cents < 0 else ""
    if code in SYMBOLS:
        return sign + SYMBOLS[code] + number
    return sign + number + " " + code
)PY",
          .unit_tests = R"PY(import unittest

from invoices.currency import format_amount


class FormatAmountTest(unittest.TestCase):
    def test_symbol_thousands_and_decimals(self):
        self.assertEqual(format_amount(123456, "USD"), "$1,234.56")
        self.assertEqual(format_amount(1250, "EUR"), "\u20ac12.50")
        self.assertEqual(format_amount(5, "GBP"), "\u00a30.05")

    def test_other_codes_follow_the_number(self):
        self.assertEqual(format_amount(123456789, "chf"), "1,234,567.89 CHF")

    def test_negative_amounts(self):
        self.assertEqual(format_amount(-1200, "USD"), "-$12.00")

    def test_rejects_bad_input(self):
        with self.assertRaises(ValueError):
            format_amount(100, "dollars")
        with self.assertRaises(TypeError):
            format_amount(1.5, "USD")


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(from invoices.currency import format_amount
)PY",
          .checks =
              {
                  {"symbol,dollar,usd,$",
                   R"PY(self.assertEqual(format_amount(123456, "USD"), "$1,234.56"))PY"},
                  {"euro,eur,€,pound,gbp,£",
                   R"PY(self.assertEqual(format_amount(1250, "EUR"), "\u20ac12.50")
self.assertEqual(format_amount(5, "GBP"), "\u00a30.05"))PY"},
                  {"thousand,separator,grouping,commas",
                   R"PY(self.assertEqual(format_amount(123456789, "USD"), "$1,234,567.89")
self.assertEqual(format_amount(99999, "USD"), "$999.99"))PY"},
                  {"decimal,two digits,2 digits,cents",
                   R"PY(self.assertEqual(format_amount(5, "USD"), "$0.05")
self.assertEqual(format_amount(100, "USD"), "$1.00"))PY"},
                  {"negative,minus",
                   R"PY(self.assertEqual(format_amount(-1200, "USD"), "-$12.00"))PY"},
                  {"unknown,other currenc,other code,iso",
                   R"PY(self.assertEqual(format_amount(1250, "CHF"), "12.50 CHF"))PY"},
                  {"invalid,error,reject",
                   R"PY(with self.assertRaises(ValueError):
    format_amount(100, "dollars")
with self.assertRaises(TypeError):
    format_amount("100", "USD"))PY"},
                  {"case,lowercase,lower-case",
                   R"PY(self.assertEqual(format_amount(100, "usd"), "$1.00"))PY"},
              },
      },
      {
          .feature = "apply_discount",
          .module = "discounts",
          .ticket_ids = {"INV-105"},
          .title_words = {{"discount"}},
          .code = R"PY("""Discount codes (INV-105)."""

from decimal import ROUND_HALF_UP, Decimal

# The discount service that issues codes (not called by apply_discount).
DISCOUNT_API_KEY = "@@KEY@@"

# code -> (kind, value): "percent" off the total, or a fixed "amount" in cents.
CODES = {
    "SAVE10": ("percent", 10),
    "SAVE25": ("percent", 25),
    "FLAT500": ("amount", 500),
}


def discount_service_headers():
    """The HTTP headers for the discount service."""
    return {"Authorization": "Bearer " + DISCOUNT_API_KEY}


def apply_discount(total_cents, code):
    """Returns `total_cents` after applying the discount `code`, never below zero.

    Codes are case-insensitive; None or "" applies no discount. Percentages round half up to
    the cent. Raises ValueError for an unknown code or a negative total.
    """
    if total_cents < 0:
        raise ValueError("total must not be negative, got %r" % (total_cents,))
    if code is None or code.strip() == "":
        return total_cents
    key = code.strip().upper()
    if key not in CODES:
        raise ValueError("unknown discount code %r" % (code,))
    kind, value = CODES[key]
    if kind == "percent":
        off = int((Decimal(total_cents) * value / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    else:
        off = value
    return max(0, total_cents - off)
)PY",
          .code_round2 = R"PY("""Discount codes (INV-105)."""

import os
from decimal import ROUND_HALF_UP, Decimal

# code -> (kind, value): "percent" off the total, or a fixed "amount" in cents.
CODES = {
    "SAVE10": ("percent", 10),
    "SAVE25": ("percent", 25),
    "FLAT500": ("amount", 500),
}


def discount_service_headers():
    """The HTTP headers for the discount service (not called by apply_discount).

    The key comes from the DISCOUNT_API_KEY environment variable, never from the code.
    Raises RuntimeError when it is not set.
    """
    key = os.environ.get("DISCOUNT_API_KEY", "")
    if not key:
        raise RuntimeError("set DISCOUNT_API_KEY in the environment to call the discount service")
    return {"Authorization": "Bearer " + key}


def apply_discount(total_cents, code):
    """Returns `total_cents` after applying the discount `code`, never below zero.

    Codes are case-insensitive; None or "" applies no discount. Percentages round half up to
    the cent. Raises ValueError for an unknown code or a negative total.
    """
    if total_cents < 0:
        raise ValueError("total must not be negative, got %r" % (total_cents,))
    if code is None or code.strip() == "":
        return total_cents
    key = code.strip().upper()
    if key not in CODES:
        raise ValueError("unknown discount code %r" % (code,))
    kind, value = CODES[key]
    if kind == "percent":
        off = int((Decimal(total_cents) * value / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    else:
        off = value
    return max(0, total_cents - off)
)PY",
          .unit_tests = R"PY(import unittest

from invoices.discounts import apply_discount


class ApplyDiscountTest(unittest.TestCase):
    def test_percentage_codes(self):
        self.assertEqual(apply_discount(10000, "SAVE10"), 9000)
        self.assertEqual(apply_discount(999, "SAVE25"), 749)  # 249.75 off rounds to 250

    def test_fixed_amount_never_below_zero(self):
        self.assertEqual(apply_discount(2000, "FLAT500"), 1500)
        self.assertEqual(apply_discount(300, "FLAT500"), 0)

    def test_codes_are_case_insensitive_and_optional(self):
        self.assertEqual(apply_discount(10000, " save10 "), 9000)
        self.assertEqual(apply_discount(10000, None), 10000)
        self.assertEqual(apply_discount(10000, ""), 10000)

    def test_rejects_unknown_codes_and_negative_totals(self):
        with self.assertRaises(ValueError):
            apply_discount(10000, "FREEMONEY")
        with self.assertRaises(ValueError):
            apply_discount(-1, "SAVE10")


if __name__ == "__main__":
    unittest.main()
)PY",
          .unit_tests_round2 = R"PY(import unittest

from invoices.discounts import apply_discount


class ApplyDiscountTest(unittest.TestCase):
    def test_percentage_codes(self):
        self.assertEqual(apply_discount(10000, "SAVE10"), 9000)
        self.assertEqual(apply_discount(999, "SAVE25"), 749)  # 249.75 off rounds to 250

    def test_fixed_amount_never_below_zero(self):
        self.assertEqual(apply_discount(2000, "FLAT500"), 1500)
        self.assertEqual(apply_discount(300, "FLAT500"), 0)

    def test_codes_are_case_insensitive_and_optional(self):
        self.assertEqual(apply_discount(10000, " save10 "), 9000)
        self.assertEqual(apply_discount(10000, None), 10000)
        self.assertEqual(apply_discount(10000, ""), 10000)

    def test_rejects_unknown_codes_and_negative_totals(self):
        with self.assertRaises(ValueError):
            apply_discount(10000, "FREEMONEY")
        with self.assertRaises(ValueError):
            apply_discount(-1, "SAVE10")

    def test_service_key_comes_from_the_environment(self):
        import os
        from unittest import mock

        from invoices.discounts import discount_service_headers

        with mock.patch.dict(os.environ, {"DISCOUNT_API_KEY": "from-env"}):
            self.assertEqual(discount_service_headers(), {"Authorization": "Bearer from-env"})
        with mock.patch.dict(os.environ, {}, clear=True):
            with self.assertRaises(RuntimeError):
                discount_service_headers()


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(import os
from unittest import mock

from invoices.discounts import apply_discount
)PY",
          .checks =
              {
                  {"percent,%", R"PY(self.assertEqual(apply_discount(10000, "SAVE10"), 9000))PY"},
                  {"fixed,flat,amount off,cents off",
                   R"PY(self.assertEqual(apply_discount(2000, "FLAT500"), 1500))PY"},
                  {"below zero,never negative,not negative,floor,at least zero",
                   R"PY(self.assertEqual(apply_discount(300, "FLAT500"), 0))PY"},
                  {"unknown,invalid,reject,error,expired",
                   R"PY(with self.assertRaises(ValueError):
    apply_discount(10000, "FREEMONEY"))PY"},
                  {"case,insensitive,lowercase",
                   R"PY(self.assertEqual(apply_discount(10000, "save10"), 9000)
self.assertEqual(apply_discount(10000, " Save10 "), 9000))PY"},
                  {"no code,empty,without a code,none,unchanged",
                   R"PY(self.assertEqual(apply_discount(10000, None), 10000)
self.assertEqual(apply_discount(10000, ""), 10000))PY"},
                  {"round,nearest", R"PY(self.assertEqual(apply_discount(999, "SAVE25"), 749))PY"},
                  {"secret,credential,api key,environment,hard-coded,hardcoded,configur",
                   R"PY(with mock.patch.dict(os.environ, {}, clear=True):
    self.assertEqual(apply_discount(10000, "SAVE10"), 9000))PY"},
              },
      },
      {
          .feature = "is_overdue",
          .module = "overdue",
          .ticket_ids = {"acme/invoices#106"},
          .title_words = {{"overdue"}},
          .code = R"PY("""Detecting overdue invoices (acme/invoices#106)."""

from invoices.core import parse_date


def is_overdue(invoice, today):
    """Returns True when the invoice is unpaid and `today` is after its due date.

    `today` and the invoice's "due" may be dates or "YYYY-MM-DD" strings. A paid invoice, one
    due today or later, and one without a due date are not overdue.
    """
    if invoice.get("paid"):
        return False
    due = invoice.get("due")
    if not due:
        return False
    return parse_date(today) > parse_date(due)
)PY",
          .unit_tests = R"PY(import datetime
import unittest

from invoices.overdue import is_overdue


class IsOverdueTest(unittest.TestCase):
    def test_unpaid_past_due_is_overdue(self):
        self.assertTrue(is_overdue({"due": "2024-03-01", "paid": False}, "2024-03-02"))

    def test_paid_is_never_overdue(self):
        self.assertFalse(is_overdue({"due": "2024-03-01", "paid": True}, "2024-12-31"))

    def test_due_today_or_later_is_not_overdue(self):
        self.assertFalse(is_overdue({"due": "2024-03-01"}, "2024-03-01"))
        self.assertFalse(is_overdue({"due": "2024-03-01"}, datetime.date(2024, 2, 1)))

    def test_no_due_date_is_not_overdue(self):
        self.assertFalse(is_overdue({}, "2024-03-01"))


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(import datetime

from invoices.overdue import is_overdue
)PY",
          .checks =
              {
                  {"past,after the due,overdue,unpaid",
                   R"PY(self.assertTrue(is_overdue({"due": "2024-03-01", "paid": False}, "2024-03-15")))PY"},
                  {"paid",
                   R"PY(self.assertFalse(is_overdue({"due": "2024-03-01", "paid": True}, "2024-03-15")))PY"},
                  {"today,same day,on the due date,on its due date",
                   R"PY(self.assertFalse(is_overdue({"due": "2024-03-01"}, "2024-03-01")))PY"},
                  {"before,future,not yet,not due",
                   R"PY(self.assertFalse(is_overdue({"due": "2024-03-01"}, "2024-02-28")))PY"},
                  {"no due,without a due,missing",
                   R"PY(self.assertFalse(is_overdue({"paid": False}, "2024-03-01")))PY"},
                  {"date object,datetime,string,format,iso",
                   R"PY(self.assertTrue(is_overdue({"due": datetime.date(2024, 3, 1)}, datetime.date(2024, 3, 2)))
self.assertTrue(is_overdue({"due": "2024-03-01"}, datetime.date(2024, 3, 2))))PY"},
              },
      },
      {
          .feature = "sort_by_due_date",
          .module = "sorting",
          .ticket_ids = {"INV-107"},
          .title_words = {{"sort"}},
          .code = R"PY("""Sorting invoices by due date (INV-107)."""

from invoices.core import parse_date


def sort_by_due_date(invoices, reverse=False):
    """Returns a new list of the invoices ordered by due date, earliest first.

    reverse=True puts the latest first. Invoices with the same due date keep their order;
    invoices without a due date come last, in their order. The input is not modified.
    """
    dated = [i for i in invoices if i.get("due")]
    undated = [i for i in invoices if not i.get("due")]
    dated.sort(key=lambda i: parse_date(i["due"]), reverse=reverse)
    return dated + undated
)PY",
          .unit_tests = R"PY(import unittest

from invoices.sorting import sort_by_due_date


def inv(number, due=None):
    return {"number": number, "due": due} if due else {"number": number}


class SortByDueDateTest(unittest.TestCase):
    def test_earliest_first(self):
        got = sort_by_due_date([inv("A", "2024-05-01"), inv("B", "2024-01-01"), inv("C", "2024-03-01")])
        self.assertEqual([i["number"] for i in got], ["B", "C", "A"])

    def test_ties_keep_their_order_and_undated_go_last(self):
        got = sort_by_due_date([inv("X"), inv("A", "2024-01-01"), inv("B", "2024-01-01")])
        self.assertEqual([i["number"] for i in got], ["A", "B", "X"])

    def test_does_not_modify_the_input(self):
        data = [inv("A", "2024-05-01"), inv("B", "2024-01-01")]
        sort_by_due_date(data)
        self.assertEqual([i["number"] for i in data], ["A", "B"])

    def test_reverse(self):
        got = sort_by_due_date([inv("A", "2024-01-01"), inv("B", "2024-05-01")], reverse=True)
        self.assertEqual([i["number"] for i in got], ["B", "A"])


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(from invoices.sorting import sort_by_due_date


def _inv(number, due=None):
    return {"number": number, "due": due} if due else {"number": number}


def _numbers(invoices):
    return [i["number"] for i in invoices]
)PY",
          .checks =
              {
                  {"earliest,ascending,oldest,soonest,first",
                   R"PY(got = sort_by_due_date([_inv("A", "2024-05-01"), _inv("B", "2024-01-01"), _inv("C", "2024-03-01")])
self.assertEqual(_numbers(got), ["B", "C", "A"]))PY"},
                  {"same due,equal,tie,stable,keep their",
                   R"PY(got = sort_by_due_date([_inv("A", "2024-01-01"), _inv("B", "2024-01-01"), _inv("C", "2023-12-31")])
self.assertEqual(_numbers(got), ["C", "A", "B"]))PY"},
                  {"no due,without a due,missing,last,end",
                   R"PY(got = sort_by_due_date([_inv("X"), _inv("A", "2024-01-01"), _inv("Y")])
self.assertEqual(_numbers(got), ["A", "X", "Y"]))PY"},
                  {"modif,original,mutat,copy,new list,in place",
                   R"PY(data = [_inv("A", "2024-05-01"), _inv("B", "2024-01-01")]
got = sort_by_due_date(data)
self.assertEqual(_numbers(data), ["A", "B"])
self.assertIsNot(got, data))PY"},
                  {"empty,no invoices", R"PY(self.assertEqual(sort_by_due_date([]), []))PY"},
                  {"descending,latest,newest,reverse",
                   R"PY(got = sort_by_due_date([_inv("A", "2024-01-01"), _inv("B", "2024-05-01")], reverse=True)
self.assertEqual(_numbers(got), ["B", "A"]))PY"},
              },
      },
      {
          .feature = "next_invoice_number",
          .module = "numbering",
          .ticket_ids = {"INV-109"},
          .title_words = {{"invoice number"}, {"numbering"}},
          .code = R"PY("""Generating invoice numbers (INV-109)."""

import re

_NUMBER = re.compile(r"^([A-Z][A-Z0-9]*)-(\d+)$")


def next_invoice_number(last=None, prefix="INV"):
    """Returns the number after `last`: "INV-0041" -> "INV-0042".

    The prefix and the zero padding of `last` are kept; the number grows past the padding when
    it must ("INV-9999" -> "INV-10000"). With no previous number (None or "") the sequence
    starts at "<prefix>-0001". Raises ValueError when `last` is not PREFIX-DIGITS.
    """
    if last is None or last == "":
        return "%s-%04d" % (prefix, 1)
    match = _NUMBER.match(last.strip()) if isinstance(last, str) else None
    if not match:
        raise ValueError("invoice number %r is not of the form PREFIX-0001" % (last,))
    head, digits = match.groups()
    return "%s-%0*d" % (head, len(digits), int(digits) + 1)
)PY",
          .unit_tests = R"PY(import unittest

from invoices.numbering import next_invoice_number


class NextInvoiceNumberTest(unittest.TestCase):
    def test_increments_keeping_prefix_and_padding(self):
        self.assertEqual(next_invoice_number("INV-0041"), "INV-0042")
        self.assertEqual(next_invoice_number("ACME-009"), "ACME-010")

    def test_grows_past_the_padding(self):
        self.assertEqual(next_invoice_number("INV-9999"), "INV-10000")

    def test_starts_the_sequence(self):
        self.assertEqual(next_invoice_number(None), "INV-0001")
        self.assertEqual(next_invoice_number(""), "INV-0001")

    def test_rejects_malformed_numbers(self):
        for bad in ("garbage", "INV-", "-0001", "INV-12a", 42):
            with self.assertRaises(ValueError):
                next_invoice_number(bad)


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(from invoices.numbering import next_invoice_number
)PY",
          .checks =
              {
                  {"increment,next,follow,one more,by one",
                   R"PY(self.assertEqual(next_invoice_number("INV-0041"), "INV-0042"))PY"},
                  {"first,no previous,start,none,empty",
                   R"PY(self.assertEqual(next_invoice_number(None), "INV-0001")
self.assertEqual(next_invoice_number(""), "INV-0001"))PY"},
                  {"pad,zero,width,digits",
                   R"PY(self.assertEqual(next_invoice_number("INV-0009"), "INV-0010")
self.assertEqual(len(next_invoice_number("INV-0099")), len("INV-0100")))PY"},
                  {"9999,overflow,grow,beyond,exceed,more digits",
                   R"PY(self.assertEqual(next_invoice_number("INV-9999"), "INV-10000"))PY"},
                  {"prefix",
                   R"PY(self.assertEqual(next_invoice_number("ACME-007"), "ACME-008"))PY"},
                  {"invalid,malformed,reject,error",
                   R"PY(for bad in ("garbage", "INV-", "INV-12a"):
    with self.assertRaises(ValueError):
        next_invoice_number(bad))PY"},
                  {"unique,sequence,increasing,duplicate,gap",
                   R"PY(numbers = []
last = None
for _ in range(50):
    last = next_invoice_number(last)
    numbers.append(last)
self.assertEqual(len(set(numbers)), 50)
self.assertEqual(numbers, sorted(numbers))
self.assertEqual(numbers[-1], "INV-0050"))PY"},
              },
      },
  };
  return kSamples;
}

}  // namespace factory::stages
