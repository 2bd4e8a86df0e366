// base: mail-agnostic building blocks shared by every module.
//  - Result<T>/Error: typed errors instead of exceptions at module boundaries.
//  - Secret: guarded, zeroed, unprintable memory for credentials and keys.
//  - Atomic file writes, whole-file reads, advisory locks.
//  - Base64/hex codecs and CSPRNG helpers; reading secrets from tty/stdin/fd.
// Trusts nothing it parses (decoders return errors); never throws for bad
// input (only std::bad_alloc on memory exhaustion).
#pragma once

#include "base/encoding.hpp"
#include "base/file.hpp"
#include "base/random.hpp"
#include "base/result.hpp"
#include "base/secret.hpp"
#include "base/secret_input.hpp"
#include "base/text.hpp"
