// Reading secrets from a person or a pipe, never from argv: the controlling
// terminal with echo off when stdin is a tty, otherwise stdin to EOF, or an
// explicit file descriptor. One trailing newline (LF or CRLF) is dropped.
#pragma once

#include <optional>
#include <string_view>

#include "base/result.hpp"
#include "base/secret.hpp"

namespace sg {

struct SecretPrompt {
  std::string_view prompt = "Password: ";
  bool confirm = false;  // ask twice on a tty
  bool allow_empty = false;
  std::optional<int> fd;  // read from this descriptor instead
};

Result<Secret> read_secret(const SecretPrompt& how);

// Reads all of `fd` into guarded memory (limit 64 KiB), dropping one
// trailing newline.
Result<Secret> read_secret_fd(int fd);

bool stdin_is_tty();

}  // namespace sg
