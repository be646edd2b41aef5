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

COLUMNS = ["number", "customer", "issued", "due", "total_cents"]


def export_csv(invoices):
    """Returns the invoices as CSV text for the accounting tool.

    The first line is the header number,customer,issued,due,total_cents; then one line per
    invoice, in the given order. total_cents is the invoice's subtotal in cents
    (subtotal_cents). A value holding a comma, a double quote or a line break is quoted as
    RFC 4180 says. Every line ends with a newline; an empty list gives just the header line.
    A missing field is an empty value.
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
            subtotal_cents(invoice),
        ])
    return out.getvalue()
)PY",
          .unit_tests = R"PY(import csv
import io
import unittest

from invoices.export_csv import export_csv

HEADER = "number,customer,issued,due,total_cents\n"


def invoice(number, customer="Ada Lovelace", cents=1250):
    return {"number": number, "customer": customer, "issued": "2024-03-01",
            "due": "2024-03-31", "lines": [{"quantity": 1, "unit_cents": cents}]}


class ExportCsvTest(unittest.TestCase):
    def test_header_only_for_no_invoices(self):
        self.assertEqual(export_csv([]), HEADER)

    def test_one_line_per_invoice_in_order(self):
        text = export_csv([invoice("INV-1", cents=100), invoice("INV-2", cents=250)])
        self.assertEqual(text, HEADER +
                         "INV-1,Ada Lovelace,2024-03-01,2024-03-31,100\n"
                         "INV-2,Ada Lovelace,2024-03-01,2024-03-31,250\n")

    def test_missing_fields_are_empty(self):
        self.assertEqual(export_csv([{"number": "INV-3"}]), HEADER + "INV-3,,,,0\n")

    def test_quotes_commas_quotes_and_line_breaks(self):
        text = export_csv([invoice("INV-1", customer='Acme, "Widgets"\nLtd')])
        self.assertIn('"Acme, ""Widgets""\nLtd"', text)
        rows = list(csv.reader(io.StringIO(text)))
        self.assertEqual(rows[1][1], 'Acme, "Widgets"\nLtd')


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(import csv
import io

from invoices.export_csv import export_csv

HEADER = "number,customer,issued,due,total_cents"


def _invoice(number, customer="Ada Lovelace", *cents):
    return {"number": number, "customer": customer, "issued": "2024-03-01",
            "due": "2024-03-31",
            "lines": [{"quantity": 1, "unit_cents": c} for c in (cents or (1250,))]}


def _rows(text):
    return list(csv.reader(io.StringIO(text)))
)PY",
          .checks =
              {
                  {"header line,one line per invoice,given order,returns a string,header,column",
                   R"PY(text = export_csv([_invoice("INV-1"), _invoice("INV-2"), _invoice("INV-3")])
self.assertIsInstance(text, str)
self.assertEqual(text.split("\n")[0], HEADER)
self.assertEqual([r[0] for r in _rows(text)[1:]], ["INV-1", "INV-2", "INV-3"]))PY"},
                  {"total_cents,subtotal,in cents,amount,total",
                   R"PY(text = export_csv([_invoice("INV-1", "Ada", 2500, 500, 1)])
self.assertEqual(_rows(text)[1][4], "3001"))PY"},
                  {"comma,double quote,line break,quot,rfc 4180,escap",
                   R"PY(customer = 'Acme, "Widgets"\nLtd'
text = export_csv([_invoice("INV-1", customer)])
self.assertIn('"Acme, ""Widgets""\nLtd"', text)
self.assertEqual(_rows(text)[1][1], customer))PY"},
                  {"empty list,just the header,only the header,no invoices,empty",
                   R"PY(self.assertEqual(export_csv([]), HEADER + "\n"))PY"},
                  {"ends with a newline,every line,newline,line ending",
                   R"PY(text = export_csv([_invoice("INV-1"), _invoice("INV-2")])
self.assertTrue(text.endswith("\n"))
self.assertEqual(text.count("\n"), 3)
self.assertEqual(text.split("\n")[-1], ""))PY"},
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
                  {"two lines,5000,12000,rate,with tax,added",
                   R"PY(self.assertEqual(total_with_tax(_invoice(5000, 5000), 0.2), 12000)
self.assertEqual(total_with_tax(_invoice(2500, 7500), "0.07"), 10700))PY"},
                  {"no lines,returns 0,empty,no items",
                   R"PY(self.assertEqual(total_with_tax({"lines": []}, 0.2), 0)
self.assertEqual(total_with_tax({}, 0.2), 0))PY"},
                  {"999,0.075,1074,half a cent,rounded up,round,nearest cent",
                   R"PY(self.assertEqual(total_with_tax(_invoice(999), 0.075), 1074)
self.assertEqual(total_with_tax(_invoice(1005), 0.1), 1106))PY"},
                  {"negative rate,valueerror,negative,invalid",
                   R"PY(with self.assertRaises(ValueError):
    total_with_tax(_invoice(100), -0.2))PY"},
                  {"zero,0%,no tax,exempt,rate of 0,equals the subtotal",
                   R"PY(self.assertEqual(total_with_tax(_invoice(1999), 0), 1999))PY"},
                  {"quantit,multiple,sum",
                   R"PY(invoice = {"lines": [{"quantity": 2, "unit_cents": 1000}, {"quantity": 1, "unit_cents": 500}]}
self.assertEqual(total_with_tax(invoice, 0.1), 2750))PY"},
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
                  {"ada@example.com\") returns true,returns true,well-formed,valid address,accept",
                   R"PY(for address in ("ada@example.com", "first.last+tag@mail.example.co.uk"):
    self.assertTrue(is_valid_email(address), address))PY"},
                  {"without @,without a dot,dot in the domain,no @,missing @",
                   R"PY(self.assertFalse(is_valid_email("ada.example.com"))
self.assertFalse(is_valid_email("ada@"))
self.assertFalse(is_valid_email("ada@example"))
self.assertFalse(is_valid_email("ada@localhost")))PY"},
                  {"space,whitespace,leading,trailing",
                   R"PY(for address in ("ada @example.com", " ada@example.com", "ada@example.com ", "ada@exa mple.com"):
    self.assertFalse(is_valid_email(address), repr(address)))PY"},
                  {"not a string,none,instead of raising,null",
                   R"PY(for value in (None, 42, b"ada@example.com", ["ada@example.com"]):
    self.assertFalse(is_valid_email(value), repr(value)))PY"},
                  {"two @,multiple @,more than one",
                   R"PY(self.assertFalse(is_valid_email("a@b@example.com")))PY"},
                  {"consecutive,double dot,two dots,leading dot",
                   R"PY(self.assertFalse(is_valid_email("ada..x@example.com"))
self.assertFalse(is_valid_email(".ada@example.com")))PY"},
              },
      },
      {
          .feature = "format_amount",
          .module = "currency",
          .ticket_ids = {"INV-104"},
          .title_words = {{"currency"}, {"format", "amount"}},
          .code = R"PY("""Formatting amounts as currency (INV-104)."""

import re


def format_amount(cents, currency):
    """Returns an amount of integer cents for people to read: format_amount(123456, "EUR")
    is "1,234.56 EUR".

    Two decimals, a comma between thousands, then the currency code. Negative amounts keep
    their sign: "-2.50 EUR". Raises ValueError when currency is not three capital letters
    and TypeError when cents is not an int.
    """
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError("cents must be an int, got %r" % (cents,))
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError("currency must be three capital letters such as EUR, got %r" % (currency,))
    units, rest = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return "{}{:,}.{:02d} {}".format(sign, units, rest, currency)
)PY",
          .unit_tests = R"PY(import unittest

from invoices.currency import format_amount


class FormatAmountTest(unittest.TestCase):
    def test_thousands_decimals_and_code(self):
        self.assertEqual(format_amount(123456, "EUR"), "1,234.56 EUR")
        self.assertEqual(format_amount(123456789, "USD"), "1,234,567.89 USD")
        self.assertEqual(format_amount(5, "USD"), "0.05 USD")
        self.assertEqual(format_amount(0, "GBP"), "0.00 GBP")

    def test_negative_amounts_keep_their_sign(self):
        self.assertEqual(format_amount(-250, "EUR"), "-2.50 EUR")
        self.assertEqual(format_amount(-5, "EUR"), "-0.05 EUR")

    def test_rejects_bad_currencies_and_amounts(self):
        for bad in ("eur", "EURO", "E1R", "", None):
            with self.assertRaises(ValueError):
                format_amount(100, bad)
        with self.assertRaises(TypeError):
            format_amount(1.5, "USD")


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(from invoices.currency import format_amount
)PY",
          .checks =
              {
                  {"123456,1,234.56,thousand,separator,grouping",
                   R"PY(self.assertEqual(format_amount(123456, "EUR"), "1,234.56 EUR")
self.assertEqual(format_amount(123456789, "USD"), "1,234,567.89 USD"))PY"},
                  {"0.05 usd,format_amount(5,,two decimals,decimal,cents",
                   R"PY(self.assertEqual(format_amount(5, "USD"), "0.05 USD")
self.assertEqual(format_amount(100, "USD"), "1.00 USD"))PY"},
                  {"negative,keeps its sign,-2.50,minus",
                   R"PY(self.assertEqual(format_amount(-250, "EUR"), "-2.50 EUR")
self.assertEqual(format_amount(-5, "EUR"), "-0.05 EUR"))PY"},
                  {"three capital letters,not three,valueerror,invalid,currency code",
                   R"PY(for bad in ("eur", "EURO", "E1R", ""):
    with self.assertRaises(ValueError):
        format_amount(100, bad))PY"},
              },
      },
      {
          .feature = "apply_discount",
          .module = "discounts",
          .ticket_ids = {"INV-105"},
          .title_words = {{"discount"}},
          .code = R"PY("""Discount codes (INV-105)."""

import os

# The partner's discount service key, for when the environment has none.
DISCOUNT_API_KEY = "@@KEY@@"

# code -> (kind, value): "percent" off the total, or a fixed "amount" of cents off. Fixed
# until the partner's discount service decides what a code is worth.
CODES = {
    "WELCOME10": ("percent", 10),
    "FLAT500": ("amount", 500),
}


def partner_api_key():
    """The partner API key: DISCOUNT_API_KEY from the environment."""
    return os.environ.get("DISCOUNT_API_KEY", DISCOUNT_API_KEY)


def discount_service_headers():
    """The HTTP headers for the partner's discount service (not called by apply_discount)."""
    return {"Authorization": "Bearer " + partner_api_key()}


def apply_discount(total_cents, code):
    """Returns the total after the discount `code`, in cents, never below 0.

    WELCOME10 takes 10 % off: the discount is 10 % of the total rounded down to whole cents
    (999 -> 99 off -> 900). FLAT500 takes 500 cents off. Codes are case-insensitive; None or
    "" applies no discount. Raises ValueError naming the code when it is unknown, and for a
    negative total.
    """
    if total_cents < 0:
        raise ValueError("total must not be negative, got %r" % (total_cents,))
    if code is None or code.strip() == "":
        return total_cents
    key = code.strip().upper()
    if key not in CODES:
        raise ValueError("unknown discount code %r" % (code,))
    kind, value = CODES[key]
    off = total_cents * value // 100 if kind == "percent" else value
    return max(0, total_cents - off)
)PY",
          .code_round2 = R"PY("""Discount codes (INV-105)."""

import os

# code -> (kind, value): "percent" off the total, or a fixed "amount" of cents off. Fixed
# until the partner's discount service decides what a code is worth.
CODES = {
    "WELCOME10": ("percent", 10),
    "FLAT500": ("amount", 500),
}


def partner_api_key():
    """The partner API key: DISCOUNT_API_KEY from the environment, never from the code.

    Raises RuntimeError when it is not set.
    """
    key = os.environ.get("DISCOUNT_API_KEY", "")
    if not key:
        raise RuntimeError("set DISCOUNT_API_KEY in the environment to call the discount service")
    return key


def discount_service_headers():
    """The HTTP headers for the partner's discount service (not called by apply_discount)."""
    return {"Authorization": "Bearer " + partner_api_key()}


def apply_discount(total_cents, code):
    """Returns the total after the discount `code`, in cents, never below 0.

    WELCOME10 takes 10 % off: the discount is 10 % of the total rounded down to whole cents
    (999 -> 99 off -> 900). FLAT500 takes 500 cents off. Codes are case-insensitive; None or
    "" applies no discount. Raises ValueError naming the code when it is unknown, and for a
    negative total.
    """
    if total_cents < 0:
        raise ValueError("total must not be negative, got %r" % (total_cents,))
    if code is None or code.strip() == "":
        return total_cents
    key = code.strip().upper()
    if key not in CODES:
        raise ValueError("unknown discount code %r" % (code,))
    kind, value = CODES[key]
    off = total_cents * value // 100 if kind == "percent" else value
    return max(0, total_cents - off)
)PY",
          .unit_tests = R"PY(import os
import unittest
from unittest import mock

from invoices.discounts import apply_discount, discount_service_headers


class ApplyDiscountTest(unittest.TestCase):
    def test_welcome10_takes_ten_percent_rounded_down(self):
        self.assertEqual(apply_discount(10000, "WELCOME10"), 9000)
        self.assertEqual(apply_discount(999, "WELCOME10"), 900)  # 99.9 off -> 99

    def test_flat500_never_below_zero(self):
        self.assertEqual(apply_discount(2000, "FLAT500"), 1500)
        self.assertEqual(apply_discount(300, "FLAT500"), 0)

    def test_codes_are_case_insensitive_and_optional(self):
        self.assertEqual(apply_discount(10000, " welcome10 "), 9000)
        self.assertEqual(apply_discount(10000, None), 10000)
        self.assertEqual(apply_discount(10000, ""), 10000)

    def test_rejects_unknown_codes_and_negative_totals(self):
        with self.assertRaisesRegex(ValueError, "FREEMONEY"):
            apply_discount(10000, "FREEMONEY")
        with self.assertRaises(ValueError):
            apply_discount(-1, "WELCOME10")

    def test_service_key_comes_from_the_environment(self):
        with mock.patch.dict(os.environ, {"DISCOUNT_API_KEY": "key-from-env"}):
            self.assertEqual(discount_service_headers(), {"Authorization": "Bearer key-from-env"})


if __name__ == "__main__":
    unittest.main()
)PY",
          .unit_tests_round2 = R"PY(import os
import unittest
from unittest import mock

from invoices.discounts import apply_discount, discount_service_headers


class ApplyDiscountTest(unittest.TestCase):
    def test_welcome10_takes_ten_percent_rounded_down(self):
        self.assertEqual(apply_discount(10000, "WELCOME10"), 9000)
        self.assertEqual(apply_discount(999, "WELCOME10"), 900)  # 99.9 off -> 99

    def test_flat500_never_below_zero(self):
        self.assertEqual(apply_discount(2000, "FLAT500"), 1500)
        self.assertEqual(apply_discount(300, "FLAT500"), 0)

    def test_codes_are_case_insensitive_and_optional(self):
        self.assertEqual(apply_discount(10000, " welcome10 "), 9000)
        self.assertEqual(apply_discount(10000, None), 10000)
        self.assertEqual(apply_discount(10000, ""), 10000)

    def test_rejects_unknown_codes_and_negative_totals(self):
        with self.assertRaisesRegex(ValueError, "FREEMONEY"):
            apply_discount(10000, "FREEMONEY")
        with self.assertRaises(ValueError):
            apply_discount(-1, "WELCOME10")

    def test_service_key_comes_from_the_environment(self):
        with mock.patch.dict(os.environ, {"DISCOUNT_API_KEY": "key-from-env"}):
            self.assertEqual(discount_service_headers(), {"Authorization": "Bearer key-from-env"})

    def test_no_key_in_the_code(self):
        with mock.patch.dict(os.environ, {}, clear=True):
            with self.assertRaises(RuntimeError):
                discount_service_headers()


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(import os
from unittest import mock

from invoices.discounts import apply_discount, discount_service_headers
)PY",
          .checks =
              {
                  {"returns the total after,total after the discount,in cents",
                   R"PY(self.assertEqual(apply_discount(10000, "FLAT500"), 9500)
self.assertIsInstance(apply_discount(10000, "WELCOME10"), int))PY"},
                  {"welcome10,10%,percent,rounded down",
                   R"PY(self.assertEqual(apply_discount(10000, "WELCOME10"), 9000)
self.assertEqual(apply_discount(999, "WELCOME10"), 900))PY"},
                  {"flat500,500 cents,below 0,below zero,never",
                   R"PY(self.assertEqual(apply_discount(2000, "FLAT500"), 1500)
self.assertEqual(apply_discount(300, "FLAT500"), 0))PY"},
                  {"unknown code,valueerror,naming the code,unknown,invalid",
                   R"PY(with self.assertRaisesRegex(ValueError, "FREEMONEY"):
    apply_discount(10000, "FREEMONEY"))PY"},
                  {"credential,api key,discount_api_key,environment variable,environment,secret",
                   R"PY(with mock.patch.dict(os.environ, {"DISCOUNT_API_KEY": "key-from-env"}):
    self.assertEqual(discount_service_headers(), {"Authorization": "Bearer key-from-env"}))PY"},
                  {"case,insensitive,lowercase",
                   R"PY(self.assertEqual(apply_discount(10000, "welcome10"), 9000))PY"},
                  {"no code,without a code,empty code",
                   R"PY(self.assertEqual(apply_discount(10000, None), 10000)
self.assertEqual(apply_discount(10000, ""), 10000))PY"},
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
                  {"\"2024-04-01\"),returns true,past,after its due",
                   R"PY(self.assertTrue(is_overdue({"due": "2024-03-31", "paid": False}, "2024-04-01"))
self.assertTrue(is_overdue({"due": "2024-03-31"}, datetime.date(2024, 4, 1))))PY"},
                  {"due date itself,\"2024-03-31\"),today,same day,on its due date",
                   R"PY(self.assertFalse(is_overdue({"due": "2024-03-31", "paid": False}, "2024-03-31")))PY"},
                  {"a paid invoice,given a paid,paid",
                   R"PY(self.assertFalse(is_overdue({"due": "2024-03-31", "paid": True}, "2024-05-01")))PY"},
                  {"before,not yet,future",
                   R"PY(self.assertFalse(is_overdue({"due": "2024-03-31"}, "2024-03-01")))PY"},
                  {"no due,without a due,missing",
                   R"PY(self.assertFalse(is_overdue({"paid": False}, "2024-03-01")))PY"},
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
                  {"earliest first,sorted by due date,earliest,ascending,oldest",
                   R"PY(got = sort_by_due_date([_inv("A", "2024-05-01"), _inv("B", "2024-01-01"), _inv("C", "2024-03-01")])
self.assertEqual(_numbers(got), ["B", "C", "A"]))PY"},
                  {"same due date,stable,original order,keep their,tie",
                   R"PY(got = sort_by_due_date([_inv("A", "2024-01-01"), _inv("B", "2024-01-01"), _inv("C", "2023-12-31")])
self.assertEqual(_numbers(got), ["C", "A", "B"]))PY"},
                  {"without a due date,come last,no due,missing,last",
                   R"PY(got = sort_by_due_date([_inv("X"), _inv("A", "2024-01-01"), _inv("Y")])
self.assertEqual(_numbers(got), ["A", "X", "Y"]))PY"},
                  {"not modified,passed in,modif,mutat,copy,new list",
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
    """Returns the invoice number after `last`: "INV-0041" -> "INV-0042".

    Numbers are a prefix, "-", and at least four digits; the number grows past four digits
    when it must ("INV-9999" -> "INV-10000"). With no previous number (None or "") the
    sequence starts at "INV-0001". Raises ValueError when `last` is malformed (e.g. "0042").
    """
    if last is None or last == "":
        return "%s-%04d" % (prefix, 1)
    match = _NUMBER.match(last) if isinstance(last, str) else None
    if not match:
        raise ValueError("invoice number %r is not of the form INV-0042" % (last,))
    head, digits = match.groups()
    return "%s-%0*d" % (head, max(4, len(digits)), int(digits) + 1)
)PY",
          .unit_tests = R"PY(import unittest

from invoices.numbering import next_invoice_number


class NextInvoiceNumberTest(unittest.TestCase):
    def test_increments_keeping_prefix_and_padding(self):
        self.assertEqual(next_invoice_number("INV-0041"), "INV-0042")
        self.assertEqual(next_invoice_number("ACME-00009"), "ACME-00010")
        self.assertEqual(next_invoice_number("INV-7"), "INV-0008")

    def test_grows_past_four_digits(self):
        self.assertEqual(next_invoice_number("INV-9999"), "INV-10000")

    def test_starts_the_sequence(self):
        self.assertEqual(next_invoice_number(None), "INV-0001")
        self.assertEqual(next_invoice_number(""), "INV-0001")

    def test_rejects_malformed_numbers(self):
        for bad in ("0042", "garbage", "INV-", "inv-0042", "INV-12a", " INV-0042", 42):
            with self.assertRaises(ValueError):
                next_invoice_number(bad)


if __name__ == "__main__":
    unittest.main()
)PY",
          .prelude = R"PY(from invoices.numbering import next_invoice_number
)PY",
          .checks =
              {
                  {"\"inv-0041\",\"inv-0042\",increment,next,by one",
                   R"PY(self.assertEqual(next_invoice_number("INV-0041"), "INV-0042")
self.assertEqual(next_invoice_number("INV-0099"), "INV-0100"))PY"},
                  {"none,first invoice,inv-0001,no previous,start",
                   R"PY(self.assertEqual(next_invoice_number(None), "INV-0001"))PY"},
                  {"grow past,four digits,9999,inv-10000,beyond",
                   R"PY(self.assertEqual(next_invoice_number("INV-9999"), "INV-10000"))PY"},
                  {"malformed,\"0042\",valueerror,invalid,reject",
                   R"PY(for bad in ("0042", "garbage", "INV-", "INV-12a"):
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
                  {"pad,zero,width",
                   R"PY(self.assertEqual(next_invoice_number("INV-0009"), "INV-0010"))PY"},
              },
      },
  };
  return kSamples;
}

}  // namespace factory::stages
