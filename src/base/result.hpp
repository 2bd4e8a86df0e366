// Result<T>: a value or a typed Error. Used at every module boundary for
// failures caused by input, the environment or a peer; exceptions are not.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace sg {

// Broad classes; callers map them to exit codes and SMTP replies.
enum class Errc {
  invalid_input,  // malformed data or arguments
  not_found,      // missing file, entry or name
  permission,     // unsafe or insufficient permissions
  io,             // read/write/fsync failure
  crypto,         // authentication failed, wrong key
  corrupt,        // stored data damaged or truncated
  unsupported,    // unknown version, feature or option
  config,         // configuration problem
  protocol,       // peer spoke badly
  tls,            // handshake or verification failure
  auth,           // peer refused our credentials
  temp_failure,   // 4xx or transient network failure
  perm_failure,   // 5xx
  timeout,
  conflict,  // already exists, locked
};

struct Error {
  Errc code;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_{};
  bool ok_ = true;
};

inline Error make_error(Errc code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace sg
