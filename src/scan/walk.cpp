// walk(): one thread lists the tree (sorted, so runs are reproducible) and
// feeds a queue; `jobs` workers, each with its own Scratch, read and scan.
// Files are read with large preads into a per-thread buffer, in chunks of
// kChunk bytes that overlap by kOverlap, so memory stays bounded and a file
// truncated while we read it (a rotated log) cannot crash us the way a
// mmap would (SIGBUS).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <variant>

#include "scan/walk_internal.hpp"

namespace sg::scan {
namespace {

constexpr std::size_t kChunk = 16u << 20;
constexpr std::size_t kOverlap = 64u << 10;  // > any secret plus its context window
constexpr std::size_t kBinaryProbe = 8192;   // NUL in here: binary (as git and ripgrep)

struct FileItem {
  std::string real;     // path to open
  std::string display;  // path to show
  bool via_link = false;
};
using Item = std::variant<FileItem, detail::BlobRef>;

// Unbounded work queue; the lister only holds names, so memory is modest.
class Queue {
 public:
  void push(Item item) {
    {
      std::lock_guard lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  std::optional<Item> pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    Item item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  bool closed_ = false;
};

std::string errno_text(int err) {
  return std::strerror(err);
}

struct Shared {
  const Scanner& scanner;
  const WalkOptions& options;
  Queue queue;
  std::vector<std::string> gitdirs;
  std::atomic<std::uint64_t> files{0}, bytes{0};
  std::atomic<std::size_t> finished{0};  // workers done
};

// What one worker thread owns.
class Worker {
 public:
  Worker(Shared& shared, Scanner::Scratch scratch)
      : sh_(shared), scratch_(std::move(scratch)), blobs_(shared.gitdirs) {}

  void run() {
    while (auto item = sh_.queue.pop()) {
      if (auto* f = std::get_if<FileItem>(&*item)) {
        scan_file(*f);
      } else {
        scan_blob(std::get<detail::BlobRef>(*item));
      }
    }
    sh_.finished.fetch_add(1);
  }

  std::vector<Finding> findings;
  std::vector<Warning> warnings;

 private:
  void warn(const std::string& path, std::string message) {
    warnings.push_back({path, std::move(message)});
  }

  bool is_binary(std::string_view head) const {
    return std::memchr(head.data(), '\0', std::min(head.size(), kBinaryProbe)) != nullptr;
  }

  void count(std::uint64_t n) {
    sh_.files.fetch_add(1, std::memory_order_relaxed);
    sh_.bytes.fetch_add(n, std::memory_order_relaxed);
  }

  void scan_blob(const detail::BlobRef& ref) {
    auto content = blobs_.read(ref, sh_.options.max_file_size);
    if (!content) return warn(ref.display, content.error().message);
    if (is_binary(*content)) return warn(ref.display, "skipped: binary");
    count(content->size());
    // The scanner judges file types by the last path component, so it gets
    // "GITDIR:COMMIT/PATH" (".env" stays ".env" at the top of the tree).
    std::string scan_path =
        ref.display.substr(0, ref.file_at - 1) + "/" + ref.display.substr(ref.file_at);
    for (auto& f : sh_.scanner.scan(*content, scan_path, scratch_)) {
      f.path = ref.display;
      findings.push_back(std::move(f));
    }
  }

  static int open_ro(const FileItem& item) {
    // O_NONBLOCK: a FIFO swapped in after listing must not hang us.
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (item.via_link ? 0 : O_NOFOLLOW);
    int fd = ::open(item.real.c_str(), flags | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = ::open(item.real.c_str(), flags);  // not our file
    return fd;
  }

  // Reads up to `want` bytes at `pos` into buf_+have; stops early at EOF.
  bool fill(int fd, std::uint64_t pos, std::size_t& have, std::size_t want, int& err) {
    while (have < want) {
      ssize_t n = ::pread(fd, buf_.data() + have, want - have, static_cast<off_t>(pos + have));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        return false;
      }
      if (n == 0) break;
      have += static_cast<std::size_t>(n);
    }
    return true;
  }

  void scan_file(const FileItem& item) {
    int fd = open_ro(item);
    if (fd < 0) {
      int err = errno;
      if (err == ELOOP || err == ENOENT) return;  // replaced by a symlink or gone since listing
      return warn(item.display, "unreadable: " + errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
      ::close(fd);
      return;  // special files and empty (or pseudo) files hold nothing to scan
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > sh_.options.max_file_size) {
      ::close(fd);
      return warn(item.display,
                  "skipped: larger than the size limit (" + std::to_string(size) + " bytes)");
    }
    int err = 0;
    if (!scan_chunks(fd, size, item.display, err) && err != 0)
      warn(item.display, "unreadable: " + errno_text(err));
    ::close(fd);
  }

  // Scans [0, size) chunk by chunk. A finding is kept by the chunk in whose
  // [keep_from, keep_to) it starts; each chunk after the first starts at a
  // line start inside the previous chunk's last kOverlap bytes, so every
  // finding is seen once with at least kOverlap/2 bytes of context before it.
  bool scan_chunks(int fd, std::uint64_t size, const std::string& display, int& err) {
    const std::size_t first = static_cast<std::size_t>(std::min<std::uint64_t>(size, kChunk));
    if (buf_.size() < first) buf_.resize(first);
    std::size_t have = 0;
    if (!fill(fd, 0, have, first, err)) return false;
    if (is_binary(std::string_view(buf_.data(), have))) {
      warn(display, "skipped: binary");
      return true;
    }
    std::uint64_t pos = 0;           // file offset of buf_[0]
    std::uint64_t lines_before = 0;  // newlines in [0, pos)
    std::uint64_t col_shift = 0;     // bytes between the start of buf_[0]'s line and pos
    std::uint64_t keep_from = 0;
    std::uint64_t scanned = 0;
    for (;;) {
      const bool last = have < kChunk || pos + have >= size;
      const std::uint64_t keep_to =
          last ? std::numeric_limits<std::uint64_t>::max() : pos + have - kOverlap / 2;
      for (auto& f : sh_.scanner.scan(std::string_view(buf_.data(), have), display, scratch_)) {
        const std::uint64_t at = pos + f.offset;
        if (at < keep_from || at >= keep_to) continue;
        if (f.line == 1) f.column += col_shift;
        f.line += lines_before;
        f.offset = at;
        f.path = display;
        findings.push_back(std::move(f));
      }
      scanned = std::max(scanned, pos + have);
      if (last) break;
      // Next chunk: from the line start nearest before have - kOverlap.
      std::size_t start = have - kOverlap;
      const void* nl = memrchr(buf_.data() + start - kOverlap, '\n', kOverlap);
      if (nl != nullptr)
        start = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data()) + 1;
      const auto newlines =
          static_cast<std::uint64_t>(std::count(buf_.data(), buf_.data() + start, '\n'));
      if (nl != nullptr) {
        col_shift = 0;
      } else {
        const void* prev = memrchr(buf_.data(), '\n', start);
        col_shift = prev == nullptr ? col_shift + start
                                    : start - (static_cast<const char*>(prev) - buf_.data() + 1);
      }
      lines_before += newlines;
      std::memmove(buf_.data(), buf_.data() + start, have - start);
      have -= start;
      pos += start;
      keep_from = keep_to;
      if (buf_.size() < kChunk) buf_.resize(kChunk);
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - pos));
      const std::size_t before = have;
      if (!fill(fd, pos, have, want, err)) return false;
      if (have == before) break;  // truncated while we read
    }
    count(scanned);
    return true;
  }

  Shared& sh_;
  Scanner::Scratch scratch_;
  detail::BlobReader blobs_;
  std::string buf_;
};

// Lists the tree on the calling thread and fills the queue.
class Lister {
 public:
  // Real paths of all roots first: a link in one root may point into another.
  Lister(Shared& shared, std::vector<Warning>& warnings,
         const std::vector<std::filesystem::path>& roots)
      : sh_(shared), warnings_(warnings) {
    for (const auto& root : roots) {
      if (char* rp = ::realpath(root.c_str(), nullptr)) {
        root_reals_.emplace_back(rp);
        std::free(rp);
      }
    }
  }

  // not_found when the root does not exist; other problems are Warnings.
  Result<void> add_root(const std::filesystem::path& root) {
    std::string real = root.string();
    std::string display = detail::display_name(real);
    while (real.size() > 1 && real.back() == '/') real.pop_back();
    while (display.size() > 1 && display.back() == '/') display.pop_back();
    struct stat st {};
    if (::stat(real.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR)
        return make_error(Errc::not_found, display + ": " + errno_text(err));
      warnings_.push_back({display, "unreadable: " + errno_text(err)});
      return {};
    }
    if (S_ISDIR(st.st_mode)) {
      list_tree(real, display);
    } else if (S_ISREG(st.st_mode)) {
      if (!sh_.options.follow_symlinks || files_seen_.insert({st.st_dev, st.st_ino}).second)
        sh_.queue.push(FileItem{real, display, true});
    }
    return {};
  }

  void maybe_progress() {
    if (!sh_.options.progress || (++ticks_ & 255) != 0) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_progress_ < std::chrono::milliseconds(100)) return;
    last_progress_ = now;
    sh_.options.progress(sh_.files.load(), sh_.bytes.load());
  }

  std::vector<std::pair<std::string, std::string>> gitdirs;  // (real, display)

 private:
  struct Dir {
    std::string real, display;
    bool via_link;
  };

  bool inside_tree(const std::string& real) const {
    for (const auto& r : root_reals_) {
      if (real == r) return true;
      if (real.size() > r.size() && real.compare(0, r.size(), r) == 0 &&
          (r == "/" || real[r.size()] == '/'))
        return true;
    }
    return false;
  }

  void list_tree(const std::string& real, const std::string& display) {
    std::vector<Dir> stack{{real, display, true}};
    while (!stack.empty()) {
      Dir dir = std::move(stack.back());
      stack.pop_back();
      list_dir(dir, stack);
    }
  }

  void list_dir(const Dir& dir, std::vector<Dir>& stack) {
    int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (dir.via_link ? 0 : O_NOFOLLOW);
    int fd = ::open(dir.real.c_str(), flags | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = ::open(dir.real.c_str(), flags);
    if (fd < 0) {
      if (errno != ELOOP && errno != ENOENT)
        warnings_.push_back({dir.display, "unreadable: " + errno_text(errno)});
      return;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !dirs_seen_.insert({st.st_dev, st.st_ino}).second) {
      ::close(fd);
      return;  // a directory reached twice through symlinks: a loop or an alias
    }
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      warnings_.push_back({dir.display, "unreadable: " + errno_text(errno)});
      ::close(fd);
      return;
    }
    std::vector<std::pair<std::string, unsigned char>> entries;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name != "." && name != "..") entries.emplace_back(std::string(name), e->d_type);
    }
    if (errno != 0) warnings_.push_back({dir.display, "unreadable: " + errno_text(errno)});
    std::sort(entries.begin(), entries.end());
    std::vector<Dir> subdirs;
    for (auto& [name, type] : entries) {
      maybe_progress();
      std::string real = dir.real == "/" ? "/" + name : dir.real + "/" + name;
      std::string display =
          dir.display + (dir.display == "/" ? "" : "/") + detail::display_name(name);
      if (auto why = detail::odd_name_reason(name); !why.empty())
        warnings_.push_back({display, "odd name: " + std::string(why)});
      if (type == DT_UNKNOWN) {
        struct stat est {};
        if (::fstatat(::dirfd(d), name.c_str(), &est, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = S_ISDIR(est.st_mode)   ? DT_DIR
               : S_ISREG(est.st_mode) ? DT_REG
               : S_ISLNK(est.st_mode) ? DT_LNK
                                      : DT_UNKNOWN;
      }
      if (type == DT_DIR) {
        if (name == ".git") {
          if (sh_.options.git) gitdirs.emplace_back(real, display);
          continue;  // objects are compressed: only libgit2 can read them
        }
        subdirs.push_back({std::move(real), std::move(display), false});
      } else if (type == DT_REG) {
        if (sh_.options.follow_symlinks) {
          struct stat fst {};
          if (::fstatat(::dirfd(d), name.c_str(), &fst, AT_SYMLINK_NOFOLLOW) != 0 ||
              !files_seen_.insert({fst.st_dev, fst.st_ino}).second)
            continue;
        }
        sh_.queue.push(FileItem{std::move(real), std::move(display), false});
      } else if (type == DT_LNK) {
        follow_link(real, display, subdirs);
      }
    }
    ::closedir(d);
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }

  // Without --follow-symlinks a link is never followed: one into the tree
  // names something listed under its real path anyway, one out of the tree
  // is reported. With it, links are followed and (dev, inode) sets make
  // every file and directory count once, so loops end.
  void follow_link(const std::string& real, const std::string& display, std::vector<Dir>& subdirs) {
    char* rp = ::realpath(real.c_str(), nullptr);
    if (rp == nullptr) {
      if (errno == ELOOP) warnings_.push_back({display, "skipped: symlink loop"});
      // A dangling link (ENOENT) holds nothing.
      else if (errno != ENOENT && errno != ENOTDIR)
        warnings_.push_back({display, "unreadable: " + errno_text(errno)});
      return;
    }
    std::string target = rp;
    std::free(rp);
    if (!sh_.options.follow_symlinks) {
      if (!inside_tree(target))
        warnings_.push_back({display, "skipped: symlink out of the tree (--follow-symlinks)"});
      return;
    }
    struct stat st {};
    if (::stat(real.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
      subdirs.push_back({real, display, true});
    } else if (S_ISREG(st.st_mode) && files_seen_.insert({st.st_dev, st.st_ino}).second) {
      sh_.queue.push(FileItem{real, display, true});
    }
  }

  Shared& sh_;
  std::vector<Warning>& warnings_;
  std::vector<std::string> root_reals_;
  std::set<std::pair<dev_t, ino_t>> dirs_seen_, files_seen_;
  unsigned ticks_ = 0;
  std::chrono::steady_clock::time_point last_progress_{};
};

// Length of the valid UTF-8 sequence at s[i], or 0.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  std::uint32_t min;
  std::uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0)
    n = 2, min = 0x80, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0)
    n = 3, min = 0x800, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0)
    n = 4, min = 0x10000, cp = c & 0x07;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

namespace detail {

std::string display_name(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size();) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    } else if (std::size_t n = utf8_len(raw, i); n > 0) {
      out.append(raw.substr(i, n));
      i += n;
      continue;
    } else {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    }
    ++i;
  }
  return out;
}

std::string_view odd_name_reason(std::string_view name) {
  bool control = false;
  for (std::size_t i = 0; i < name.size();) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) control = true;
    std::size_t n = utf8_len(name, i);
    if (n == 0) return "not valid UTF-8";
    i += n;
  }
  return control ? "control characters (newline, tab, ...)" : "";
}

}  // namespace detail

Result<WalkResult> walk(const Scanner& scanner, const std::vector<std::filesystem::path>& roots,
                        const WalkOptions& options) {
  for (const auto& root : roots) {
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR))
      return make_error(Errc::not_found,
                        detail::display_name(root.string()) + ": " + errno_text(errno));
  }
  Shared shared{scanner, options, {}, {}, {}, {}, {}};
  WalkResult result;
  std::optional<detail::GitLibrary> git_library;
  if (options.git) git_library.emplace();

  // Workers need their git directories up front; they are filled in before
  // any BlobRef is queued, and each worker opens a repository lazily.
  const unsigned jobs =
      options.jobs != 0 ? options.jobs : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<Worker>> workers;
  Lister lister(shared, result.warnings, roots);
  std::vector<std::thread> threads;
  auto start_workers = [&]() -> Result<void> {
    for (unsigned i = 0; i < jobs; ++i) {
      auto scratch = scanner.make_scratch();
      if (!scratch) return scratch.error();
      workers.push_back(std::make_unique<Worker>(shared, std::move(scratch).value()));
    }
    for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
    return {};
  };
  auto finish = [&] {
    shared.queue.close();
    // Progress while the workers drain the queue; each ends when it is empty.
    while (options.progress && shared.finished.load() < threads.size()) {
      options.progress(shared.files.load(), shared.bytes.load());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (auto& t : threads) t.join();
  };

  if (!options.git) {
    // Scanning starts while the tree is still being listed.
    if (auto r = start_workers(); !r) return finish(), r.error();
    for (const auto& root : roots) {
      if (auto r = lister.add_root(root); !r) return finish(), r.error();
    }
  } else {
    // .git directories are known only once the tree is listed; listing
    // first keeps the BlobReaders' repository list fixed.
    for (const auto& root : roots) {
      if (auto r = lister.add_root(root); !r) return r.error();
    }
    for (std::size_t i = 0; i < lister.gitdirs.size(); ++i) {
      const auto& [real, display] = lister.gitdirs[i];
      shared.gitdirs.push_back(real);
      auto blobs = detail::list_blobs(i, real, display);
      if (!blobs) {
        result.warnings.push_back({display, blobs.error().message});
        continue;
      }
      for (auto& b : *blobs) shared.queue.push(std::move(b));
    }
    if (auto r = start_workers(); !r) return finish(), r.error();
  }
  finish();
  if (options.progress) options.progress(shared.files.load(), shared.bytes.load());

  for (auto& w : workers) {
    std::move(w->findings.begin(), w->findings.end(), std::back_inserter(result.findings));
    std::move(w->warnings.begin(), w->warnings.end(), std::back_inserter(result.warnings));
  }
  std::sort(result.findings.begin(), result.findings.end(), [](const Finding& a, const Finding& b) {
    return std::tie(a.path, a.offset, a.rule_id) < std::tie(b.path, b.offset, b.rule_id);
  });
  std::sort(result.warnings.begin(), result.warnings.end(), [](const Warning& a, const Warning& b) {
    return std::tie(a.path, a.message) < std::tie(b.path, b.message);
  });
  result.files_scanned = shared.files.load();
  result.bytes_scanned = shared.bytes.load();
  return result;
}

}  // namespace sg::scan
