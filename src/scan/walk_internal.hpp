// Internals shared by walk.cpp and git.cpp (not part of the scan module's
// interface): display names for untrusted file names, and reading the
// objects of a .git directory through libgit2.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "scan/scan.hpp"

namespace sg::scan::detail {

// A file name as shown in findings and warnings: valid UTF-8 passes through;
// '\' becomes "\\", newline/tab/CR "\n"/"\t"/"\r", any other control byte or
// byte that is not valid UTF-8 "\xHH". The mapping is reversible (the CLI
// undoes it to re-read a secret for --verify).
std::string display_name(std::string_view raw);
// Empty when `name` is ordinary, else why it is odd ("not valid UTF-8", ...).
std::string_view odd_name_reason(std::string_view name);

// One blob of a repository, named after the first commit (oldest first)
// whose tree holds it: "DISPLAY_OF_GITDIR:COMMIT12:PATH/IN/TREE".
struct BlobRef {
  std::size_t repo = 0;  // index into the gitdirs given to BlobReader
  std::array<unsigned char, 20> oid{};
  std::string display;
  std::size_t file_at = 0;  // where PATH/IN/TREE starts in `display`
};

// Every blob reachable from any ref (and HEAD), each once. Fails when the
// repository cannot be opened or walked.
Result<std::vector<BlobRef>> list_blobs(std::size_t repo, const std::string& gitdir,
                                        const std::string& display_gitdir);

// Reads blobs; one per thread (libgit2 wants a repository handle per thread).
class BlobReader {
 public:
  explicit BlobReader(const std::vector<std::string>& gitdirs);
  ~BlobReader();
  BlobReader(const BlobReader&) = delete;
  BlobReader& operator=(const BlobReader&) = delete;
  // The blob's bytes, valid until the next read(). The error message is a
  // finished Warning text ("skipped: larger than ...", "unreadable: ...").
  Result<std::string_view> read(const BlobRef& ref, std::uint64_t max_size);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// libgit2's global state for the duration of a walk that reads .git.
class GitLibrary {
 public:
  GitLibrary();
  ~GitLibrary();
  GitLibrary(const GitLibrary&) = delete;
  GitLibrary& operator=(const GitLibrary&) = delete;
};

}  // namespace sg::scan::detail
