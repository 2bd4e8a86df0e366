// OwnMatcher: finds copies of our own credentials in content from their
// keyed digests alone (see own.cpp).
#pragma once

#include <array>
#include <cstddef>
#include <limits>
#include <vector>

#include "scan/internal.hpp"

namespace sg::scan::detail {

// Which characters a form can contain; content is cut into tokens of them.
enum class TokenClass { base64 = 0, url = 1, text = 2 };
TokenClass token_class(std::string_view form);

class OwnMatcher {
 public:
  explicit OwnMatcher(OwnSecrets own);
  bool empty() const { return own_.digests.empty(); }
  void scan(const Ctx& ctx) const;

 private:
  static constexpr std::size_t kMaxToken = 4096;
  struct Index {
    std::array<bool, 256> member{};
    std::vector<std::vector<std::size_t>> by_length;  // length -> digest indices
    std::size_t min_length = std::numeric_limits<std::size_t>::max();
  };
  void check(const Ctx& ctx, const Index& ix, std::size_t b, std::size_t len) const;
  void tokens(const Ctx& ctx, const Index& ix, TokenClass cls) const;
  OwnSecrets own_;
  std::array<Index, 3> index_{};
};

}  // namespace sg::scan::detail
