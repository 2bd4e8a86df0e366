// Helpers shared by the vault tests: temp directories, pipes, configs.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/file.hpp"
#include "common/temp_dir.hpp"
#include "config/config.hpp"
#include "vault/vault.hpp"

namespace sg::vault::test {

class TempDir : public sg::test::TempDir {
 public:
  TempDir() : sg::test::TempDir("sgvault") {}
};

// A readable descriptor that yields `text` then EOF (the caller's to close).
inline int pipe_with(std::string_view text) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  EXPECT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fds[1]);
  return fds[0];
}

// A config whose state (key file, vault) lives under `dir`.
inline config::Config config_in(const std::filesystem::path& dir, std::string key = "") {
  config::Config cfg;
  cfg.relay.state_dir = dir / "state";
  cfg.vault.key = key.empty() ? "file:" + (dir / "state" / "master.key").string() : key;
  cfg.vault.path = dir / "state" / "vault.sealed";
  return cfg;
}

inline std::string slurp(const std::filesystem::path& path) {
  auto data = read_file(path);
  EXPECT_TRUE(data.ok()) << (data.ok() ? "" : data.error().message);
  return data.ok() ? *data : std::string();
}

inline EntryUpdate update(std::string name, std::string username, std::string_view password,
                          std::optional<std::string> host = std::nullopt) {
  EntryUpdate u;
  u.name = std::move(name);
  u.username = std::move(username);
  u.upstream_host = std::move(host);
  u.password = Secret::copy_of(password);
  return u;
}

// A clean error: one line, says something.
inline ::testing::AssertionResult clean_error(const Error& e) {
  if (e.message.empty()) return ::testing::AssertionFailure() << "empty message";
  if (e.message.find('\n') != std::string::npos)
    return ::testing::AssertionFailure() << "multi-line message: " << e.message;
  return ::testing::AssertionSuccess();
}

}  // namespace sg::vault::test
