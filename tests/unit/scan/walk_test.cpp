// scan::walk() on real trees in temp dirs: binary and oversized files,
// symlinks (loops, out of the tree, aliases), odd names, chunked reading of
// large files, thread counts, and git history through libgit2 (repositories
// made with the git program).
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <tuple>

#include "scan/scan.hpp"

namespace sg::scan {
namespace {

namespace fs = std::filesystem;

// A line one rule always reports, and its secret.
constexpr std::string_view kSecret = "Wq8zR2vLx7TnPp4K";
const std::string kLine = "MAIL_PASSWORD=" + std::string(kSecret) + "\n";

class TempTree {
 public:
  TempTree() {
    char tmpl[] = "/tmp/sg-walk-XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const fs::path& root() const { return root_; }
  fs::path write(const std::string& rel, const std::string& data) const {
    fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }

 private:
  fs::path root_;
};

const Scanner& scanner() {
  static Scanner s = [] {
    auto r = Scanner::create();
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(r).value();
  }();
  return s;
}

WalkResult run(const std::vector<fs::path>& roots, WalkOptions opts = {}) {
  auto r = walk(scanner(), roots, opts);
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(r).value();
}

// (path relative to `root`, line) of each finding.
std::multiset<std::pair<std::string, std::uint64_t>> where(const WalkResult& r,
                                                           const fs::path& root) {
  std::multiset<std::pair<std::string, std::uint64_t>> out;
  for (const auto& f : r.findings) {
    std::string p = f.path;
    if (p.rfind(root.string() + "/", 0) == 0) p = p.substr(root.string().size() + 1);
    out.insert({p, f.line});
  }
  return out;
}

bool has_warning(const WalkResult& r, const std::string& path, const std::string& start) {
  for (const auto& w : r.warnings)
    if (w.path == path && w.message.rfind(start, 0) == 0) return true;
  return false;
}

int sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

TEST(Walk, FindsSecretsInNestedFilesWithLineAndColumn) {
  TempTree t;
  t.write("app/.env", "APP_NAME=shop\n\n" + kLine);
  t.write("app/README", "nothing here\n");
  auto r = run({t.root()});
  ASSERT_EQ(r.findings.size(), 1u);
  const auto& f = r.findings[0];
  EXPECT_EQ(f.path, (t.root() / "app/.env").string());
  EXPECT_EQ(f.line, 3u);
  EXPECT_EQ(f.column, 15u);
  EXPECT_EQ(f.offset, 15u + 14u);
  EXPECT_EQ(f.length, kSecret.size());
  EXPECT_EQ(r.files_scanned, 2u);
  EXPECT_TRUE(r.warnings.empty());
}

TEST(Walk, MissingRootFailsAndFileRootsWork) {
  TempTree t;
  auto missing = walk(scanner(), {t.root() / "nope"}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  auto file = t.write(".env", kLine);
  auto r = run({file});
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].path, file.string());
}

TEST(Walk, SkipsBinaryAndOversizedFilesWithWarnings) {
  TempTree t;
  std::string binary = kLine + std::string(1, '\0') + kLine;
  t.write("img/.env", binary);
  // A NUL after the first 8 KiB does not make a file binary.
  t.write("late/.env", std::string(9000, 'x') + "\n" + std::string(1, '\0') + "\n" + kLine);
  t.write("big/.env", kLine + std::string(20000, '#') + "\n");
  WalkOptions opts;
  opts.max_file_size = 10000;
  auto r = run({t.root()}, opts);
  EXPECT_EQ(where(r, t.root()),
            (std::multiset<std::pair<std::string, std::uint64_t>>{{"late/.env", 3}}));
  EXPECT_TRUE(has_warning(r, (t.root() / "img/.env").string(), "skipped: binary"));
  EXPECT_TRUE(has_warning(r, (t.root() / "big/.env").string(), "skipped: larger"));
}

TEST(Walk, SymlinkLoopsEndAndLinksOutOfTheTreeAreNotFollowed) {
  TempTree t, outside;
  t.write("a/.env", kLine);
  outside.write("o/.env", kLine);
  fs::create_directory_symlink("..", t.root() / "a/up");            // loop through a dir
  fs::create_symlink("self", t.root() / "self");                    // loop of one link
  fs::create_symlink(t.root() / "a/.env", t.root() / "alias.env");  // file inside
  fs::create_directory_symlink(outside.root() / "o", t.root() / "out");
  fs::create_symlink(t.root() / "missing", t.root() / "dangling");

  auto r = run({t.root()});
  EXPECT_EQ(where(r, t.root()),
            (std::multiset<std::pair<std::string, std::uint64_t>>{{"a/.env", 1}}));
  EXPECT_TRUE(has_warning(r, (t.root() / "out").string(), "skipped: symlink out of the tree"));
  EXPECT_TRUE(has_warning(r, (t.root() / "self").string(), "skipped: symlink loop"));

  WalkOptions follow;
  follow.follow_symlinks = true;
  auto f = run({t.root()}, follow);
  // Every file once, whichever name reached it first; the outside one too.
  EXPECT_EQ(f.findings.size(), 2u);
  std::set<std::string> secrets_in;
  for (const auto& x : f.findings) secrets_in.insert(fs::path(x.path).parent_path().filename());
  EXPECT_TRUE(secrets_in.count("out") == 1 || secrets_in.count("o") == 1);
}

TEST(Walk, OddNamesAreScannedEscapedAndWarnedAbout) {
  TempTree t;
  t.write("new\nline/.env", kLine);
  t.write(std::string("latin1-\xe9/.env"), kLine);
  t.write("back\\slash/ok.txt", "nothing\n");
  auto r = run({t.root()});
  EXPECT_EQ(where(r, t.root()), (std::multiset<std::pair<std::string, std::uint64_t>>{
                                    {"latin1-\\xe9/.env", 1}, {"new\\nline/.env", 1}}));
  EXPECT_TRUE(has_warning(r, (t.root() / "new\\nline").string(), "odd name: control"));
  EXPECT_TRUE(has_warning(r, (t.root() / "latin1-\\xe9").string(), "odd name: not valid UTF-8"));
  EXPECT_FALSE(has_warning(r, (t.root() / "back\\\\slash").string(), "odd name"));
}

// Walks `root` (an unreadable locked/.env and closed/ dir, a readable
// open/.env) as the calling user: 0 when the one readable finding is found
// and both unreadable places are warnings, else which check failed.
int walk_unreadable(const fs::path& root) {
  WalkResult r;
  try {
    WalkOptions opts;
    opts.jobs = 1;
    r = run({root}, opts);
  } catch (...) {
    return 10;
  }
  if (r.findings.size() != 1 || r.findings[0].path != (root / "open/.env").string()) return 11;
  if (!has_warning(r, (root / "locked/.env").string(), "unreadable: Permission denied")) return 12;
  if (!has_warning(r, (root / "closed").string(), "unreadable: Permission denied")) return 13;
  return 0;
}

TEST(Walk, UnreadableFilesAndDirectoriesAreWarnings) {
  TempTree t;
  ::chmod(t.root().c_str(), 0755);  // uid 65534 must get in
  t.write("open/.env", kLine);
  t.write("closed/.env", kLine);
  auto locked = t.write("locked/.env", kLine);
  ::chmod((t.root() / "open").c_str(), 0755);
  ::chmod((t.root() / "open/.env").c_str(), 0644);
  ::chmod((t.root() / "locked").c_str(), 0755);
  ::chmod(locked.c_str(), 0);
  ::chmod((t.root() / "closed").c_str(), 0);
  if (::geteuid() != 0) {
    EXPECT_EQ(walk_unreadable(t.root()), 0);
    ::chmod((t.root() / "closed").c_str(), 0755);  // so that TempTree can remove it
    return;
  }
  // Root reads everything: walk in a child that is uid/gid 65534 (nobody),
  // as relay/control_test does, and read its verdict from the exit status.
  scanner();  // compiled here, not in the child
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(4);
    ::_exit(walk_unreadable(t.root()));
  }
  int status = -1;
  for (int i = 0; i < 600 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::usleep(50'000);
  if (::waitpid(pid, &status, WNOHANG) == 0) {  // 30 s: hung
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "the walk as uid 65534 did not finish in 30 s";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "child died: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "4: cannot drop to 65534, 10: walk failed, 11: findings, 12: no warning for the "
         "unreadable file, 13: none for the unreadable directory";
}

TEST(Walk, SpecialFilesAreIgnoredWithoutBlocking) {
  TempTree t;
  ASSERT_EQ(::mkfifo((t.root() / "fifo").c_str(), 0600), 0);
  t.write(".env", kLine);
  auto r = run({t.root()});
  EXPECT_EQ(r.findings.size(), 1u);
}

// Files larger than a read chunk (16 MiB) are read in overlapping chunks:
// secrets before, across and after chunk boundaries are each found once,
// with the right line and column.
TEST(Walk, LargeFilesAreScannedInChunksWithExactPositions) {
  TempTree t;
  std::string data;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> planted;  // (line, column)
  std::uint64_t line = 1;
  const std::string filler(99, 'l');
  auto plant = [&](std::string_view prefix) {
    data += prefix;
    planted.emplace_back(line, prefix.size() + 15);
    data += kLine;
    ++line;
  };
  plant("");
  const std::size_t marks[] = {(16u << 20) - 70000, (16u << 20) - 40000, (16u << 20) - 10,
                               (32u << 20) - 33000, (40u << 20)};
  for (std::size_t mark : marks) {
    while (data.size() + 100 < mark) {
      data += filler + "\n";
      ++line;
    }
    plant("x ");
  }
  // One very long line across a boundary: columns stay right without newlines nearby.
  data += std::string(200000, 'y');
  planted.emplace_back(line, 200000 + 15);
  data += kLine;
  t.write("storage/logs/.env", data);
  for (unsigned jobs : {1u, 3u}) {
    WalkOptions opts;
    opts.jobs = jobs;
    auto r = run({t.root()}, opts);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> got;
    for (const auto& f : r.findings) {
      got.emplace_back(f.line, f.column);
      EXPECT_EQ(data.substr(f.offset, f.length), kSecret);
    }
    EXPECT_EQ(got, planted);
    EXPECT_EQ(r.bytes_scanned, data.size());
  }
}

TEST(Walk, ThreadCountDoesNotChangeResultsAndProgressIsReported) {
  TempTree t;
  for (int i = 0; i < 200; ++i)
    t.write("d" + std::to_string(i % 7) + "/f" + std::to_string(i) + "/.env",
            i % 3 == 0 ? kLine : "A=1\n");
  WalkOptions one;
  one.jobs = 1;
  std::uint64_t last_files = 0;
  WalkOptions many;
  many.jobs = 8;
  many.progress = [&](std::uint64_t files, std::uint64_t) { last_files = files; };
  auto a = run({t.root()}, one);
  auto b = run({t.root()}, many);
  EXPECT_EQ(a.findings.size(), 67u);
  ASSERT_EQ(a.findings.size(), b.findings.size());
  for (std::size_t i = 0; i < a.findings.size(); ++i) {
    EXPECT_EQ(a.findings[i].path, b.findings[i].path);
    EXPECT_EQ(a.findings[i].fingerprint, b.findings[i].fingerprint);
  }
  EXPECT_EQ(last_files, 200u);
}

TEST(Walk, GitHistoryIsReadOnlyWhenAsked) {
  TempTree t;
  const std::string repo = (t.root() / "site").string();
  const std::string git = "git -C '" + repo + "' -c user.name=t -c user.email=t@example.com ";
  t.write("site/index.php", "<?php echo 1;\n");
  ASSERT_EQ(sh("git init -q '" + repo + "'"), 0);
  t.write("site/config/.env", "A=1\n" + kLine);
  ASSERT_EQ(sh(git + "add -A && " + git + "commit -qm add"), 0);
  fs::remove(t.root() / "site/config/.env");
  t.write("site/.env", "A=1\n" + kLine);  // the same blob at another path: read once
  ASSERT_EQ(sh(git + "add -A && " + git + "commit -qm move"), 0);
  fs::remove(t.root() / "site/.env");
  ASSERT_EQ(sh(git + "add -A && " + git + "commit -qm remove"), 0);

  EXPECT_TRUE(run({t.root()}).findings.empty());  // .git skipped by default

  WalkOptions opts;
  opts.git = true;
  for (bool packed : {false, true}) {
    if (packed) {
      ASSERT_EQ(sh(git + "gc -q --prune=now"), 0);
      bool have_pack = false;
      for (const auto& e : fs::directory_iterator(repo + "/.git/objects/pack"))
        have_pack |= e.path().extension() == ".pack";
      ASSERT_TRUE(have_pack);
    }
    auto r = run({t.root()}, opts);
    ASSERT_EQ(r.findings.size(), 1u) << "packed=" << packed;
    const auto& f = r.findings[0];
    const std::string prefix = repo + "/.git:";
    EXPECT_EQ(f.path.rfind(prefix, 0), 0u) << f.path;
    EXPECT_EQ(f.path.substr(prefix.size() + 12), ":config/.env") << f.path;
    EXPECT_EQ(f.line, 2u);
  }
}

}  // namespace
}  // namespace sg::scan
