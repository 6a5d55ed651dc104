#include "k8s/objects.h"

#include <array>
#include <type_traits>
#include <utility>

namespace kdp::k8s {

namespace {
constexpr std::array<std::string_view, kKindCount> kKindNames = {
    "Namespace", "Service", "EndpointSlice", "Ingress", "IngressClass", "Secret", "Pod", "Node"};
static_assert(std::variant_size_v<Object> == kKindCount);
static_assert(std::variant_size_v<SharedObject> == kKindCount);
}  // namespace

std::string_view kindName(Kind kind) {
  return kKindNames[static_cast<std::size_t>(kind)];
}

std::optional<Kind> kindFromName(std::string_view name) {
  for (std::size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) {
      return static_cast<Kind>(i);
    }
  }
  return std::nullopt;
}

std::string_view protocolName(Protocol p) {
  switch (p) {
    case Protocol::TCP: return "TCP";
    case Protocol::UDP: return "UDP";
    case Protocol::SCTP: return "SCTP";
  }
  return "TCP";
}

std::optional<std::uint16_t> targetPortIn(const EndpointSlice& slice, std::string_view portName,
                                          Protocol protocol) {
  for (const auto& p : slice.ports) {
    if (p.name == portName && p.protocol == protocol) {
      if (p.port && *p.port > 0 && *p.port <= 65535) {
        return static_cast<std::uint16_t>(*p.port);
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

Kind kindOf(const Object& object) {
  return static_cast<Kind>(object.index());
}

const ObjectMeta& metaOf(const Object& object) {
  return std::visit([](const auto& o) -> const ObjectMeta& { return o.meta; }, object);
}

SharedObject share(Object&& object) {
  return std::visit(
      [](auto&& o) -> SharedObject {
        using T = std::decay_t<decltype(o)>;
        return std::make_shared<const T>(std::move(o));
      },
      std::move(object));
}

Kind kindOf(const SharedObject& object) {
  return static_cast<Kind>(object.index());
}

const ObjectMeta& metaOf(const SharedObject& object) {
  return std::visit([](const auto& o) -> const ObjectMeta& { return o->meta; }, object);
}

bool sameValue(const SharedObject& a, const SharedObject& b) {
  if (a.index() != b.index()) {
    return false;
  }
  return std::visit(
      [&](const auto& x) {
        const auto& y = std::get<std::decay_t<decltype(x)>>(b);
        return x == y || *x == *y;
      },
      a);
}

}  // namespace kdp::k8s
