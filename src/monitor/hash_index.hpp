// monitor/hash_index: the name hash and the flat index shared by the Exim
// log reader and the detectors. The reader hashes an identity's name once
// when it meets it and hands the hash on with every observation, so the
// detectors find the identity's state without hashing the name again.
// Header-only, I/O-free, never throws on input (only std::bad_alloc).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace sg::monitor {

// The last n (1-7) bytes before end as a little-endian word, upper bytes
// zero, as memcpy into a zeroed word would give; whole loads instead of a
// byte loop, whose stores the next load would wait for. total: bytes
// available before end (>= n).
inline std::uint64_t tail_word(const char* end, std::size_t n, std::size_t total) {
  std::uint64_t w;
  if (total >= 8) {
    std::memcpy(&w, end - 8, 8);
    return w >> (8 * (8 - n));
  }
  const char* p = end - n;
  if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, end - 4, 4);
    return lo | (std::uint64_t(hi) << (8 * (n - 4)));
  }
  const auto byte = [](char c) { return std::uint64_t(static_cast<unsigned char>(c)); };
  return byte(p[0]) | (byte(p[n / 2]) << (8 * (n / 2))) | (byte(p[n - 1]) << (8 * (n - 1)));
}

// A 64-bit hash of the bytes, 8 at a time (names are mostly 10-40 bytes),
// each word passed through `word` first (e.g. lower-casing). Not keyed:
// like std::hash it is no defence against chosen collisions; the tables
// using it stay correct (they compare the keys), only slower.
template <class Word>
std::uint64_t word_hash(std::string_view s, std::uint64_t seed, Word&& word) {
  constexpr std::uint64_t k = 0x9e3779b97f4a7c15ull;
  std::uint64_t h = seed ^ (s.size() * k);
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ word(w)) * k;
    h ^= h >> 32;
  }
  if (n > 0) {
    h = (h ^ word(tail_word(p + n, n, s.size()))) * k;
    h ^= h >> 32;
  }
  h *= 0xc2b2ae3d27d4eb4full;
  return h ^ (h >> 29);
}

inline std::uint64_t name_hash(std::string_view s) {
  return word_hash(s, 0x243f6a8885a308d3ull, [](std::uint64_t w) { return w; });
}

namespace detail {

// Backward-shift deletion from a linear-probing table whose size is a power
// of two: slot i is emptied and later slots of its probe run move up, so
// every entry stays reachable from its home (no tombstones). is_empty(slot)
// and home_of(slot) read a slot; `empty` is the empty slot.
template <class Slot, std::size_t N, class IsEmpty, class HomeOf>
void erase_shifting(std::span<Slot, N> table, std::size_t i, const Slot& empty, IsEmpty&& is_empty,
                    HomeOf&& home_of) {
  const std::size_t mask = table.size() - 1;
  for (std::size_t j = i;;) {
    table[i] = empty;
    for (;;) {
      j = (j + 1) & mask;
      if (is_empty(table[j])) return;
      const std::size_t k = home_of(table[j]);
      const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (!stays) break;
    }
    table[i] = table[j];
    i = j;
  }
}

// Open addressing from a 64-bit hash to a caller's uint32 index (linear
// probing, at most half full). The keys live with the caller, which says
// whether an index holds the key looked for; a slot keeps the hash's top
// 32 bits, which pick its home and spare most key comparisons.
class HashIndex {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  std::size_t size() const { return size_; }
  // The index whose key has this hash and satisfies is_key(index), or kNone.
  template <class IsKey>
  std::uint32_t find(std::uint64_t hash, IsKey&& is_key) const {
    if (slots_.empty()) return kNone;
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    for (std::size_t i = home(tag);; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (s.index == kNone) return kNone;
      if (s.tag == tag && is_key(s.index)) return s.index;
    }
  }
  // Adds an index whose key is absent.
  void insert(std::uint64_t hash, std::uint32_t index) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place({static_cast<std::uint32_t>(hash >> 32), index});
    ++size_;
  }
  // Removes the slot of index (inserted with this hash); no-op when absent.
  void erase(std::uint64_t hash, std::uint32_t index) {
    if (slots_.empty()) return;
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    for (std::size_t i = home(tag);; i = (i + 1) & mask()) {
      if (slots_[i].index == kNone) return;
      if (slots_[i].index == index) {
        erase_slot(i);
        --size_;
        return;
      }
    }
  }
  void clear() {
    slots_.clear();
    bits_ = 0;
    size_ = 0;
  }

 private:
  struct Slot {
    std::uint32_t tag = 0;
    std::uint32_t index = kNone;
  };
  std::size_t mask() const { return slots_.size() - 1; }
  // The tag's top bits: tables never exceed 2^32 slots.
  std::size_t home(std::uint32_t tag) const {
    return bits_ == 0 ? 0 : static_cast<std::size_t>(tag >> (32 - bits_));
  }
  void place(Slot s) {
    std::size_t i = home(s.tag);
    while (slots_[i].index != kNone) i = (i + 1) & mask();
    slots_[i] = s;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    bits_ = old.empty() ? 4 : bits_ + 1;
    slots_.assign(std::size_t(1) << bits_, Slot{});
    for (const Slot& s : old)
      if (s.index != kNone) place(s);
  }
  void erase_slot(std::size_t i) {
    erase_shifting(
        std::span(slots_), i, Slot{}, [](const Slot& s) { return s.index == kNone; },
        [&](const Slot& s) { return home(s.tag); });
  }

  std::vector<Slot> slots_;
  unsigned bits_ = 0;  // slots_.size() == 1 << bits_ (0 when empty)
  std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace sg::monitor
