// The feature specs ingest makes from the bundled sample tickets (config/samples/tickets/: the
// same ids, titles and acceptance criteria, word for word), and the codegen/testsynth payloads a
// DAG would send for them. Shared by codegen_test.cpp and testsynth_test.cpp.
#pragma once

#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

namespace factory::test {

inline std::string invoices_project_dir() {
  return std::string(FACTORY_SOURCE_DIR) + "/config/projects/invoices";
}

struct SampleSpec {
  std::string id;
  std::string title;
  std::vector<std::string> criteria;
  std::string project = "invoices";

  std::string json() const {
    boost::json::array ac;
    for (const std::string& c : criteria) ac.emplace_back(c);
    boost::json::object o{{"id", id},
                          {"source", id.find('#') != std::string::npos ? "github" : "jira"},
                          {"link", "https://tracker.example.com/" + id},
                          {"title", title},
                          {"description", "As a bookkeeper I want: " + title},
                          {"acceptance_criteria", ac},
                          {"labels", boost::json::array{"invoices"}},
                          {"priority", "Medium"},
                          {"component", "billing"},
                          {"project", project}};
    return boost::json::serialize(o);
  }
};

inline const std::vector<SampleSpec>& sample_specs() {
  static const std::vector<SampleSpec> kSpecs = {
      {"INV-101",
       "Export invoices as CSV",
       {"export_csv(invoices) returns a string: the header line "
        "number,customer,issued,due,total_cents, then one line per invoice in the given order",
        "total_cents is the invoice's subtotal in cents (subtotal_cents(invoice))",
        "A value containing a comma, a double quote or a line break is quoted as in RFC 4180",
        "An empty list gives just the header line", "Every line ends with a newline"}},
      {"INV-102",
       "Compute the invoice total with tax",
       {"Given an invoice with two lines of 5000 cents When total_with_tax(invoice, 0.2) is called "
        "Then it returns 12000",
        "Given an invoice with no lines When total_with_tax(invoice, 0.2) is called Then it "
        "returns 0",
        "Given an invoice with a subtotal of 999 cents When total_with_tax(invoice, 0.075) is "
        "called Then it returns 1074 And half a cent is rounded up",
        "Given any invoice When total_with_tax is called with a negative rate Then it raises "
        "ValueError"}},
      {"acme/invoices#103",
       "Validate customer email addresses",
       {"is_valid_email(\"ada@example.com\") returns True",
        "an address without @, or without a dot in the domain, returns False",
        "an address with a space anywhere (leading and trailing ones too) returns False",
        "a value that is not a string (e.g. None) returns False instead of raising"}},
      {"INV-104",
       "Format amounts as currency",
       {"format_amount(123456, \"EUR\") returns \"1,234.56 EUR\"",
        "format_amount(5, \"USD\") returns \"0.05 USD\"",
        "a negative amount keeps its sign: format_amount(-250, \"EUR\") returns \"-2.50 EUR\"",
        "a currency that is not three capital letters raises ValueError"}},
      {"INV-105",
       "Apply discount codes",
       {"apply_discount(total_cents, code) returns the total after the discount, in cents",
        "Code WELCOME10 takes 10% off, rounded down to whole cents",
        "Code FLAT500 takes 500 cents off, never going below 0",
        "An unknown code raises ValueError naming the code",
        "No credentials in the code: the partner API key is read from the DISCOUNT_API_KEY "
        "environment variable"}},
      {"acme/invoices#106",
       "Detect overdue invoices",
       {"Given an unpaid invoice due 2024-03-31 When is_overdue(invoice, \"2024-04-01\") is called "
        "Then it returns True",
        "Given an unpaid invoice due 2024-03-31 When is_overdue(invoice, \"2024-03-31\") is called "
        "Then it returns False (the due date itself is not overdue)",
        "Given a paid invoice due 2024-03-31 When is_overdue(invoice, \"2024-05-01\") is called "
        "Then it returns False"}},
      {"INV-107",
       "Sort invoices by due date",
       {"sort_by_due_date(invoices) returns a new list sorted by due date, earliest first",
        "invoices with the same due date keep their original order (a stable sort)",
        "invoices without a due date come last", "the list passed in is not modified"}},
      {"INV-109",
       "Generate invoice numbers",
       {"next_invoice_number(\"INV-0041\") returns \"INV-0042\"",
        "next_invoice_number(None) returns \"INV-0001\" (the first invoice)",
        "numbers grow past four digits: next_invoice_number(\"INV-9999\") returns \"INV-10000\"",
        "a malformed number such as \"0042\" raises ValueError"}},
  };
  return kSpecs;
}

inline const SampleSpec& sample_spec(const std::string& id) {
  for (const SampleSpec& s : sample_specs()) {
    if (s.id == id) return s;
  }
  FAIL("no sample spec " << id);
  throw;  // unreachable
}

inline std::string codegen_payload(const std::string& spec_json, int attempt,
                                   const std::string& gate_report = "",
                                   const std::string& project_dir = invoices_project_dir()) {
  boost::json::object p{{"spec", boost::json::parse(spec_json)},
                        {"attempt", attempt},
                        {"gate_report", gate_report},
                        {"provider", "template"},
                        {"project_dir", project_dir}};
  return boost::json::serialize(p);
}

}  // namespace factory::test
