// Strong identifier types shared by the public API.
//
// An Offset is not a partition number is not a timestamp: each is its own type, so the
// compiler catches a swapped argument. All are trivially copyable values.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace factory {

template <typename T, typename Tag>
class NamedType {
 public:
  using value_type = T;
  constexpr NamedType() = default;
  constexpr explicit NamedType(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  constexpr auto operator<=>(const NamedType&) const = default;

 private:
  T v_{};
};

// Position of a record within one partition; the first record ever appended has offset 0.
using Offset = NamedType<int64_t, struct OffsetTag>;

}  // namespace factory

template <typename T, typename Tag>
struct std::hash<factory::NamedType<T, Tag>> {
  size_t operator()(const factory::NamedType<T, Tag>& n) const { return std::hash<T>()(n.value()); }
};
