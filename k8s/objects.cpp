#include "k8s/objects.h"

#include <algorithm>
#include <array>
#include <atomic>
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
static_assert(sizeof(Endpoint) == 56);
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

// --- CompactStringMap ------------------------------------------------------------------------

CompactStringMap::CompactStringMap(std::initializer_list<value_type> items) {
  for (const auto& [key, value] : items) {
    insert_or_assign(key, value);
  }
}

CompactStringMap::CompactStringMap(const StringMap& map) {
  if (!map.empty()) {
    items_ = std::make_unique<std::vector<value_type>>(map.begin(), map.end());
  }
}

CompactStringMap::CompactStringMap(const CompactStringMap& other) {
  *this = other;
}

CompactStringMap& CompactStringMap::operator=(const CompactStringMap& other) {
  if (this != &other) {
    items_ = other.empty() ? nullptr : std::make_unique<std::vector<value_type>>(*other.items_);
  }
  return *this;
}

namespace {
template <class Items>  // const or not
auto lowerBoundOf(Items& items, std::string_view key) {
  return std::lower_bound(items.begin(), items.end(), key,
                          [](const auto& item, std::string_view k) { return item.first < k; });
}
}  // namespace

CompactStringMap::const_iterator CompactStringMap::find(std::string_view key) const noexcept {
  if (!items_) {
    return end();
  }
  auto it = lowerBoundOf(*items_, key);
  return it != items_->end() && it->first == key ? &*it : end();
}

const std::string& CompactStringMap::at(std::string_view key) const {
  auto it = find(key);
  if (it == end()) {
    throw std::out_of_range("CompactStringMap::at: no key " + std::string(key));
  }
  return it->second;
}

void CompactStringMap::insert_or_assign(std::string_view key, std::string_view value) {
  if (!items_) {
    items_ = std::make_unique<std::vector<value_type>>();
  }
  auto it = lowerBoundOf(*items_, key);
  if (it != items_->end() && it->first == key) {
    it->second.assign(value);
  } else {
    items_->emplace(it, std::string(key), std::string(value));
  }
}

std::string& CompactStringMap::operator[](std::string_view key) {
  if (!items_) {
    items_ = std::make_unique<std::vector<value_type>>();
  }
  auto it = lowerBoundOf(*items_, key);
  if (it == items_->end() || it->first != key) {
    it = items_->emplace(it, std::string(key), std::string());
  }
  return it->second;
}

void CompactStringMap::emplace(std::string_view key, std::string_view value) {
  if (!items_) {
    items_ = std::make_unique<std::vector<value_type>>();
  }
  auto it = lowerBoundOf(*items_, key);
  if (it == items_->end() || it->first != key) {
    items_->emplace(it, std::string(key), std::string(value));
  }
}

std::size_t CompactStringMap::erase(std::string_view key) {
  if (!items_) {
    return 0;
  }
  auto it = lowerBoundOf(*items_, key);
  if (it == items_->end() || it->first != key) {
    return 0;
  }
  items_->erase(it);
  if (items_->empty()) {
    items_.reset();
  }
  return 1;
}

bool operator==(const CompactStringMap& a, const CompactStringMap& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

bool operator==(const CompactStringMap& a, const StringMap& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const auto& x, const auto& y) { return x.first == y.first && x.second == y.second; });
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
    extra = SharedDetails(std::move(d));
  }
}

// --- SharedDetails ---------------------------------------------------------------------------

struct SharedDetails::Block {
  std::atomic<std::uint32_t> refs{1};
  EndpointDetails value;
};

SharedDetails::SharedDetails(EndpointDetails details)
    : block_(new Block{{1}, std::move(details)}) {}

SharedDetails::SharedDetails(const SharedDetails& other) noexcept : block_(other.block_) {
  if (block_ != nullptr) {
    block_->refs.fetch_add(1, std::memory_order_relaxed);
  }
}

void SharedDetails::reset() noexcept {
  // Release/acquire as std::shared_ptr: the last owner sees every other owner's reads done.
  if (block_ != nullptr && block_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    delete block_;
  }
  block_ = nullptr;
}

const EndpointDetails* SharedDetails::get() const noexcept {
  return block_ != nullptr ? &block_->value : nullptr;
}

bool Endpoint::operator==(const Endpoint& other) const {
  return addresses == other.addresses && conditions == other.conditions &&
         hostname == other.hostname && nodeName == other.nodeName &&
         targetPodName == other.targetPodName &&
         (extra == other.extra || details() == other.details());
}

}  // namespace kdp::k8s
