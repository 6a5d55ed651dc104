#include "k8s/objects.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
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
// An EndpointSlice's endpoints are most of a large cluster's objects (see AddressList).
static_assert(sizeof(AddressList) == 18);
static_assert(sizeof(Endpoint) == 64);
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

AddressList::AddressList(std::initializer_list<IpAddr> ips) : AddressList() {
  for (const IpAddr& ip : ips) {
    push_back(ip);
  }
}

IpAddr* AddressList::many() const noexcept {
  IpAddr* array = nullptr;
  std::memcpy(&array, manyBytes_, sizeof array);
  return array;
}

void AddressList::setMany(IpAddr* array) noexcept {
  std::memcpy(manyBytes_, &array, sizeof array);
}

AddressList::AddressList(const AddressList& other) : AddressList() {
  *this = other;
}

AddressList::AddressList(AddressList&& other) noexcept : AddressList() {
  *this = std::move(other);
}

AddressList& AddressList::operator=(const AddressList& other) {
  if (this == &other) {
    return *this;
  }
  if (other.size_ <= 1) {
    clear();
    new (&one_) IpAddr(other.one_);
    size_ = other.size_;
    return *this;
  }
  auto array = std::make_unique<IpAddr[]>(other.size_);
  std::copy(other.begin(), other.end(), array.get());
  clear();
  setMany(array.release());
  size_ = other.size_;
  return *this;
}

AddressList& AddressList::operator=(AddressList&& other) noexcept {
  if (this == &other) {
    return *this;
  }
  clear();
  if (other.size_ <= 1) {
    new (&one_) IpAddr(other.one_);
  } else {
    setMany(other.many());  // the array changes owner
  }
  size_ = other.size_;
  other.size_ = 0;
  new (&other.one_) IpAddr();
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
    new (&one_) IpAddr(ip);
    size_ = 1;
    return;
  }
  if (size_ == 255) {
    throw std::length_error("AddressList: more than 255 addresses");
  }
  auto grown = std::make_unique<IpAddr[]>(size_ + 1u);
  std::copy(begin(), end(), grown.get());
  grown[size_] = ip;
  const auto size = static_cast<std::uint8_t>(size_ + 1);
  clear();
  setMany(grown.release());
  size_ = size;
}

void AddressList::clear() noexcept {
  if (size_ > 1) {
    delete[] many();
  }
  size_ = 0;
  new (&one_) IpAddr();
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
