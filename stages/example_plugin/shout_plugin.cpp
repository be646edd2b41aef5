// An example stage plugin: `shout` upper-cases every string value of the JSON payload (keys are
// left alone). Built as factory_example_plugin.so; load it by listing its directory under
// `plugins:` in a pipeline file. See README.md.
//
// Only ASCII letters change, so multi-byte UTF-8 stays valid. Stateless, so thread-safe.
#include <cctype>
#include <memory>
#include <string>

#include <boost/json.hpp>

#include "factory/plugin.h"

namespace {

namespace json = boost::json;

void shout(json::value& v) {
  switch (v.kind()) {
    case json::kind::string: {
      json::string& s = v.get_string();
      for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      break;
    }
    case json::kind::array:
      for (json::value& item : v.get_array()) shout(item);
      break;
    case json::kind::object:
      for (auto& member : v.get_object()) shout(member.value());
      break;
    default:
      break;
  }
}

class ShoutStage final : public factory::Stage {
 public:
  factory::StageInfo info() const override {
    return {.name = "shout", .version = "1.0.0", .side_effects = factory::SideEffects::kPure};
  }

  factory::StageResult process(const factory::Event& event, factory::StageContext& ctx) override {
    json::error_code ec;
    json::value v = json::parse(event.payload, ec);
    if (ec) {
      return factory::StageResult::permanent("shout: the payload is not JSON: " + ec.message());
    }
    shout(v);
    ctx.emit({.payload = json::serialize(v)});
    return factory::StageResult::success();
  }
};

}  // namespace

FACTORY_PLUGIN("factory-example-plugin",
               []() -> std::unique_ptr<factory::Stage> { return std::make_unique<ShoutStage>(); });
