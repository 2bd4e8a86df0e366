// Helpers shared by the doctor tests: temp trees and finding lookups.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/temp_dir.hpp"
#include "doctor/doctor.hpp"

namespace sg::doctor::test {

class TempDir : public sg::test::TempDir {
 public:
  TempDir() : sg::test::TempDir("sgdoctor") {}
};

// Writes `text` to root/rel (parents created) with `mode`; returns the path.
inline std::filesystem::path put(const std::filesystem::path& root, const std::string& rel,
                                 const std::string& text, mode_t mode = 0644) {
  auto p = root / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
  ::chmod(p.c_str(), mode);
  return p;
}

inline std::vector<std::string> ids(const std::vector<Finding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.id);
  return out;
}

inline const Finding* find(const std::vector<Finding>& findings, const std::string& id) {
  auto it =
      std::find_if(findings.begin(), findings.end(), [&](const Finding& f) { return f.id == id; });
  return it == findings.end() ? nullptr : &*it;
}

}  // namespace sg::doctor::test
