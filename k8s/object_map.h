#pragma once
// A persistent sorted map from key to immutable object: copying it is O(1), and changing one
// entry copies one chunk of at most kMaxChunk entries plus the chunk index (n / kChunk pointers),
// never the whole map. Snapshots of the store are made of these, so that a change to one Service
// costs work proportional to that Service and readers of older snapshots never see it.
//
// Not thread-safe for writing: the store mutates its private working copy only. Readers may share
// copies freely across threads (all shared state is immutable once published).

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kdp::k8s {

template <class T>
class ObjectMap {
 public:
  using Ptr = std::shared_ptr<const T>;
  struct Entry {
    std::string key;
    Ptr value;
  };

 private:
  using Chunk = std::vector<Entry>;
  using ChunkPtr = std::shared_ptr<Chunk>;
  using Index = std::vector<ChunkPtr>;
  static constexpr std::size_t kChunk = 64;
  static constexpr std::size_t kMaxChunk = 2 * kChunk;

 public:
  class Iterator {
   public:
    using value_type = Entry;
    using difference_type = std::ptrdiff_t;
    using reference = const Entry&;
    using pointer = const Entry*;
    using iterator_category = std::forward_iterator_tag;

    Iterator() = default;
    reference operator*() const { return (*(*index_)[chunk_])[pos_]; }
    pointer operator->() const { return &**this; }
    Iterator& operator++() {
      if (++pos_ == (*index_)[chunk_]->size()) {
        ++chunk_;
        pos_ = 0;
      }
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const Iterator& o) const { return chunk_ == o.chunk_ && pos_ == o.pos_; }

   private:
    friend class ObjectMap;
    Iterator(const Index* index, std::size_t chunk, std::size_t pos)
        : index_(index), chunk_(chunk), pos_(pos) {}
    const Index* index_ = nullptr;
    std::size_t chunk_ = 0;
    std::size_t pos_ = 0;
  };

  ObjectMap() : index_(std::make_shared<Index>()) {}

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  Iterator begin() const { return {index_.get(), 0, 0}; }
  Iterator end() const { return {index_.get(), index_->size(), 0}; }

  /// The first entry whose key is not less than `key`.
  Iterator lowerBound(std::string_view key) const {
    std::size_t c = chunkFor(key);
    if (c == index_->size()) {
      return end();
    }
    const Chunk& chunk = *(*index_)[c];
    auto it = std::lower_bound(chunk.begin(), chunk.end(), key,
                               [](const Entry& e, std::string_view k) { return e.key < k; });
    if (it == chunk.end()) {
      return {index_.get(), c + 1, 0};
    }
    return {index_.get(), c, static_cast<std::size_t>(it - chunk.begin())};
  }

  /// The object under `key`, or null.
  Ptr find(std::string_view key) const {
    auto it = lowerBound(key);
    if (it == end() || it->key != key) {
      return nullptr;
    }
    return it->value;
  }
  const T* get(std::string_view key) const {
    auto it = lowerBound(key);
    return it == end() || it->key != key ? nullptr : it->value.get();
  }

  /// Calls fn(entry) for every entry whose key starts with `prefix`, in key order.
  template <class Fn>
  void forEachWithPrefix(std::string_view prefix, Fn&& fn) const {
    for (auto it = lowerBound(prefix); it != end() && it->key.starts_with(prefix); ++it) {
      fn(*it);
    }
  }

  /// Inserts or replaces. Returns the previous value (null when new).
  Ptr set(std::string key, Ptr value) {
    ownIndex();
    Index& index = *index_;
    std::size_t c = 0;
    if (index.empty()) {
      index.push_back(std::make_shared<Chunk>());
    } else {
      c = std::min(chunkFor(key), index.size() - 1);
    }
    Chunk& chunk = ownChunk(c);
    auto it = std::lower_bound(chunk.begin(), chunk.end(), key,
                               [](const Entry& e, const std::string& k) { return e.key < k; });
    if (it != chunk.end() && it->key == key) {
      return std::exchange(it->value, std::move(value));
    }
    if (chunk.size() == chunk.capacity()) {
      // Grown by an eighth, not doubled: chunks live as long as their entries, and doubling
      // would leave a third of every chunk empty on average.
      const auto pos = it - chunk.begin();
      chunk.reserve(chunk.size() + std::max<std::size_t>(4, chunk.size() / 8));
      it = chunk.begin() + pos;
    }
    chunk.insert(it, Entry{std::move(key), std::move(value)});
    ++size_;
    if (chunk.size() > kMaxChunk) {
      auto upper = std::make_shared<Chunk>(std::make_move_iterator(chunk.begin() + kChunk),
                                           std::make_move_iterator(chunk.end()));
      chunk.erase(chunk.begin() + kChunk, chunk.end());
      chunk.shrink_to_fit();
      index.insert(index.begin() + static_cast<std::ptrdiff_t>(c) + 1, std::move(upper));
    }
    return nullptr;
  }

  /// Removes `key`. Returns the removed value (null when absent).
  Ptr erase(std::string_view key) {
    std::size_t c = chunkFor(key);
    if (c == index_->size()) {
      return nullptr;
    }
    const Chunk& peek = *(*index_)[c];
    auto pit = std::lower_bound(peek.begin(), peek.end(), key,
                                [](const Entry& e, std::string_view k) { return e.key < k; });
    if (pit == peek.end() || pit->key != key) {
      return nullptr;
    }
    const auto pos = pit - peek.begin();
    ownIndex();
    Chunk& chunk = ownChunk(c);
    Ptr old = std::move(chunk[static_cast<std::size_t>(pos)].value);
    chunk.erase(chunk.begin() + pos);
    --size_;
    if (chunk.empty()) {
      index_->erase(index_->begin() + static_cast<std::ptrdiff_t>(c));
    }
    return old;
  }

 private:
  // The chunk that holds `key` or where it would go: the last chunk whose last key is >= key,
  // i.e. the first chunk whose last key is not less than key; index size when past all.
  std::size_t chunkFor(std::string_view key) const {
    auto it = std::lower_bound(index_->begin(), index_->end(), key,
                               [](const ChunkPtr& c, std::string_view k) {
                                 return c->back().key < k;
                               });
    return static_cast<std::size_t>(it - index_->begin());
  }

  // Copy-on-write: a use count of 1 means no snapshot shares it, so it may change in place.
  void ownIndex() {
    if (index_.use_count() != 1) {
      index_ = std::make_shared<Index>(*index_);
    }
  }
  Chunk& ownChunk(std::size_t c) {
    ChunkPtr& chunk = (*index_)[c];
    if (chunk.use_count() != 1) {
      chunk = std::make_shared<Chunk>(*chunk);
    }
    return *chunk;
  }

  std::shared_ptr<Index> index_;
  std::size_t size_ = 0;
};

}  // namespace kdp::k8s
