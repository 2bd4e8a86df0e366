// Internal to the spool module: encoded parts, ids, file helpers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "spool/spool.hpp"

namespace sg::spool {

struct EncodedParts {
  std::string head;       // magic .. data length
  std::string_view data;  // points into the Message
  std::string tail;       // whole-file checksum
  std::size_t size() const { return head.size() + data.size() + tail.size(); }
};

// A queue file in three parts, so the committer can writev() it without
// copying the (possibly large) data. `message` must outlive the result.
EncodedParts encode_parts(const Message& message);

struct Spool::Pending {
  Message message;
  Done done;
};

// Id from microseconds since the epoch and 5 random base32 characters.
std::string make_id(std::int64_t micros);
// The time part of a valid id.
std::int64_t id_micros(std::string_view id);

// Writes the whole of `parts` to fd (writev, retrying short writes); errno on failure.
int write_parts(int fd, const EncodedParts& parts);
// fsync of a directory fd; errno on failure.
int sync_fd(int fd);

}  // namespace sg::spool
