// Secret: bytes that must not leak. Stored in libsodium guarded memory
// (mlock'd, guard pages, zeroed on free), move-only, and deliberately not
// printable: there is no operator<< and no fmt formatter.
#pragma once

#include <cstddef>
#include <string_view>

namespace sg {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::size_t size);  // zero-filled
  static Secret copy_of(std::string_view bytes);
  ~Secret();

  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;

  unsigned char* data() { return data_; }
  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Read access at the point of use; do not copy the view into a std::string.
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  Secret clone() const { return copy_of(view()); }
  // Constant-time comparison.
  bool equals(const Secret& other) const;

  // Drops a prefix or suffix in place (e.g. a trailing newline).
  void truncate(std::size_t new_size);

 private:
  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

// Makes sure libsodium is initialised; safe to call repeatedly.
void ensure_sodium();

// Called by any process before it holds a secret: no core dumps, no ptrace
// by same-uid processes (PR_SET_DUMPABLE 0), RLIMIT_CORE 0.
void harden_process();

// Best-effort wipe of an ordinary buffer that briefly held secret bytes.
void wipe(void* data, std::size_t size);

}  // namespace sg
