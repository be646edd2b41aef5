import datetime
import unittest

from invoices import line_total, parse_date, subtotal_cents


class CoreTest(unittest.TestCase):
    def test_line_total_multiplies_quantity_by_unit_price(self):
        self.assertEqual(line_total({"quantity": 3, "unit_cents": 250}), 750)

    def test_line_total_defaults_quantity_to_one(self):
        self.assertEqual(line_total({"unit_cents": 999}), 999)

    def test_line_total_rejects_negative_amounts(self):
        with self.assertRaises(ValueError):
            line_total({"quantity": -1, "unit_cents": 100})

    def test_subtotal_sums_lines(self):
        invoice = {"lines": [{"quantity": 2, "unit_cents": 500}, {"quantity": 1, "unit_cents": 125}]}
        self.assertEqual(subtotal_cents(invoice), 1125)

    def test_subtotal_of_no_lines_is_zero(self):
        self.assertEqual(subtotal_cents({"lines": []}), 0)
        self.assertEqual(subtotal_cents({}), 0)

    def test_parse_date_accepts_iso_strings_and_dates(self):
        self.assertEqual(parse_date("2024-03-31"), datetime.date(2024, 3, 31))
        self.assertEqual(parse_date(datetime.date(2024, 1, 2)), datetime.date(2024, 1, 2))
        self.assertEqual(parse_date(datetime.datetime(2024, 1, 2, 10, 30)), datetime.date(2024, 1, 2))

    def test_parse_date_rejects_other_values(self):
        with self.assertRaises(ValueError):
            parse_date("31/03/2024")
        with self.assertRaises(ValueError):
            parse_date(20240331)


if __name__ == "__main__":
    unittest.main()
