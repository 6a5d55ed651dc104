#include "k8s/objects.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <ostream>
#include <stdexcept>
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

// --- CompactString ---------------------------------------------------------------------------

void CompactString::assign(std::string_view text) {
  if (text.empty()) {
    block_.reset();
    return;
  }
  const auto size = static_cast<std::uint32_t>(text.size());
  auto block = std::make_unique_for_overwrite<char[]>(sizeof size + size);
  std::memcpy(block.get(), &size, sizeof size);
  std::memcpy(block.get() + sizeof size, text.data(), size);
  block_ = std::move(block);
}

std::string_view CompactString::view() const noexcept {
  if (!block_) {
    return {};
  }
  std::uint32_t size = 0;
  std::memcpy(&size, block_.get(), sizeof size);
  return {block_.get() + sizeof size, size};
}

std::ostream& operator<<(std::ostream& out, const CompactString& s) {
  return out << s.view();
}

// --- AddressList -----------------------------------------------------------------------------

AddressList::AddressList(std::initializer_list<IpAddr> ips) {
  for (const IpAddr& ip : ips) {
    push_back(ip);
  }
}

AddressList::AddressList(const AddressList& other) : one_(other.one_), size_(other.size_) {
  if (size_ > 1) {
    many_ = std::make_unique<IpAddr[]>(size_);
    std::copy(other.begin(), other.end(), many_.get());
  }
}

AddressList::AddressList(AddressList&& other) noexcept
    : one_(other.one_), size_(other.size_), many_(std::move(other.many_)) {
  other.size_ = 0;
}

AddressList& AddressList::operator=(const AddressList& other) {
  if (this != &other) {
    *this = AddressList(other);
  }
  return *this;
}

AddressList& AddressList::operator=(AddressList&& other) noexcept {
  if (this != &other) {
    one_ = other.one_;
    size_ = other.size_;
    many_ = std::move(other.many_);
    other.size_ = 0;
  }
  return *this;
}

const IpAddr& AddressList::at(std::size_t i) const {
  if (i >= size_) {
    throw std::out_of_range("AddressList::at");
  }
  return data()[i];
}

void AddressList::push_back(const IpAddr& ip) {
  if (size_ == 0) {
    one_ = ip;
    size_ = 1;
    return;
  }
  auto grown = std::make_unique<IpAddr[]>(size_ + 1);
  std::copy(begin(), end(), grown.get());
  grown[size_] = ip;
  many_ = std::move(grown);
  ++size_;
}

void AddressList::clear() noexcept {
  many_.reset();
  size_ = 0;
}

bool operator==(const AddressList& a, const AddressList& b) noexcept {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

bool operator==(const AddressList& a, const std::vector<IpAddr>& b) noexcept {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// --- Endpoint --------------------------------------------------------------------------------

const EndpointDetails& Endpoint::details() const {
  static const EndpointDetails kNone;
  return extra ? *extra : kNone;
}

void Endpoint::setDetails(EndpointDetails d) {
  if (d.empty()) {
    extra.reset();
  } else {
    extra = std::make_shared<const EndpointDetails>(std::move(d));
  }
}

bool Endpoint::operator==(const Endpoint& other) const {
  return addresses == other.addresses && conditions == other.conditions &&
         hostname == other.hostname && nodeName == other.nodeName &&
         targetPodName == other.targetPodName &&
         (extra == other.extra || details() == other.details());
}

}  // namespace kdp::k8s
