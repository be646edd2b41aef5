// Feature specs shaped like the ones ingest makes from the bundled sample tickets
// (config/samples/tickets/), and the codegen/testsynth payloads a DAG would send for them.
// Shared by codegen_test.cpp and testsynth_test.cpp.
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
       {"The export starts with a header row naming the columns",
        "Each invoice becomes one row, in the given order", "Totals are written with two decimals",
        "Customer names with commas or quotes are escaped",
        "Exporting no invoices yields only the header"}},
      {"INV-102",
       "Compute the invoice total with tax",
       {"Given an invoice with a subtotal of 100.00 When the tax rate is 20% Then the total is "
        "120.00",
        "Given a tax rate of 0 When the total is computed Then it equals the subtotal",
        "Given a total with fractions of a cent When tax is applied Then it is rounded to the "
        "nearest cent",
        "Given a negative tax rate When the total is computed Then an error is raised"}},
      {"acme/invoices#103",
       "Validate customer email addresses",
       {"Well-formed addresses like ada@example.com are accepted",
        "Addresses without an @ are rejected", "Addresses whose domain has no dot are rejected",
        "Addresses containing spaces are rejected"}},
      {"INV-104",
       "Format amounts as currency",
       {"USD amounts show the $ symbol", "Thousands are grouped with a comma separator",
        "Amounts always have two decimals", "Negative amounts start with a minus sign",
        "Unknown currency codes follow the number"}},
      {"INV-105",
       "Apply discount codes",
       {"A percentage code takes that percent off the total",
        "A fixed amount code takes that many cents off", "The total never goes below zero",
        "Unknown codes are rejected with an error", "Codes are case insensitive"}},
      {"acme/invoices#106",
       "Detect overdue invoices",
       {"Given an unpaid invoice When today is after its due date Then it is overdue",
        "Given a paid invoice When today is after its due date Then it is not overdue",
        "Given an unpaid invoice When today is its due date Then it is not overdue"}},
      {"INV-107",
       "Sort invoices by due date",
       {"Invoices are ordered with the earliest due date first",
        "Invoices with the same due date keep their order", "Invoices without a due date come last",
        "The original list is not modified"}},
      {"INV-109",
       "Generate invoice numbers",
       {"The next number increments the last one by one",
        "The first number is INV-0001 when there is no previous one",
        "Numbers keep their zero padding", "Malformed numbers are rejected"}},
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
