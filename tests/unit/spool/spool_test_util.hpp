// Helpers shared by the spool tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "spool/spool.hpp"

namespace sg::spool_test {

// A fresh directory on a real file system (so fsync is real), removed at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/sg-spool-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline spool::Message message(std::string data) {
  spool::Message m;
  m.envelope.received_at = 1700000000;
  m.envelope.identity = "shop";
  m.envelope.peer = "uid 1000";
  m.envelope.helo = "localhost";
  m.envelope.mail_from = "orders@shop.example.com";
  m.envelope.recipients = {{"a@example.org"}, {"b@example.org"}};
  m.envelope.verdict = "accept";
  m.data = std::move(data);
  return m;
}

// Spool::open that fails the test (and returns null) on an error.
inline std::unique_ptr<spool::Spool> open_spool_with(const std::filesystem::path& dir,
                                                     spool::Options options) {
  auto s = spool::Spool::open(dir, nullptr, std::move(options));
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

// Names in a directory.
inline std::size_t entries(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

inline unsigned file_mode(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0xffff;
  return st.st_mode & 07777;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace sg::spool_test
