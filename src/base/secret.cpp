#include "base/secret.hpp"

#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace sg {

void ensure_sodium() {
  // sodium_init is idempotent and thread-safe; < 0 means no usable RNG.
  if (sodium_init() < 0) std::abort();
}

Secret::Secret(std::size_t size) : size_(size) {
  ensure_sodium();
  // sodium_malloc(0) is legal but we keep a null pointer for empty secrets.
  if (size == 0) return;
  data_ = static_cast<unsigned char*>(sodium_malloc(size));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, size);
}

Secret Secret::copy_of(std::string_view bytes) {
  Secret s(bytes.size());
  if (!bytes.empty()) std::memcpy(s.data_, bytes.data(), bytes.size());
  return s;
}

Secret::~Secret() {
  if (data_ != nullptr) sodium_free(data_);  // zeroes before freeing
}

Secret::Secret(Secret&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

bool Secret::equals(const Secret& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

void Secret::truncate(std::size_t new_size) {
  if (new_size >= size_) return;
  sodium_memzero(data_ + new_size, size_ - new_size);
  size_ = new_size;
}

void harden_process() {
  ensure_sodium();
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  struct rlimit no_core {
    0, 0
  };
  setrlimit(RLIMIT_CORE, &no_core);
}

void wipe(void* data, std::size_t size) {
  if (data != nullptr && size > 0) sodium_memzero(data, size);
}

}  // namespace sg
