// TempDir for unit tests: a fresh directory under the system temp dir,
// removed with everything in it when the object goes. Failing to make it
// is a test failure (a gtest EXPECT), not an exception.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace sg::test {

class TempDir {
 public:
  // `prefix` names the directory (prefix.XXXXXX), so leftovers say whose they are.
  explicit TempDir(const std::string& prefix = "sgtest") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace sg::test
