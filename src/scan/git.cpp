// Reading a .git directory with libgit2: loose and packed objects alike,
// without running git and without touching the repository (read-only opens;
// no index, no config writes).
#include <git2.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "scan/walk_internal.hpp"

namespace sg::scan::detail {
namespace {

std::string git_message(std::string_view what) {
  const git_error* e = git_error_last();
  return std::string(what) + ": " + (e != nullptr && e->message != nullptr ? e->message : "failed");
}

std::string oid_key(const git_oid* oid) {
  return std::string(reinterpret_cast<const char*>(oid->id), GIT_OID_RAWSZ);
}

struct WalkState {
  std::size_t repo = 0;
  std::string prefix;  // "DISPLAY_GITDIR:COMMIT12:"
  std::unordered_set<std::string>* seen_trees = nullptr;
  std::unordered_set<std::string>* seen_blobs = nullptr;
  std::vector<BlobRef>* out = nullptr;
};

// Pre-order tree walk callback: a positive return skips a subtree, which is
// how trees shared between commits are read once.
int visit_entry(const char* root, const git_tree_entry* entry, void* payload) {
  auto& st = *static_cast<WalkState*>(payload);
  const git_oid* oid = git_tree_entry_id(entry);
  switch (git_tree_entry_type(entry)) {
    case GIT_OBJECT_TREE:
      return st.seen_trees->insert(oid_key(oid)).second ? 0 : 1;
    case GIT_OBJECT_BLOB: {
      if (!st.seen_blobs->insert(oid_key(oid)).second) return 0;
      BlobRef ref;
      ref.repo = st.repo;
      std::memcpy(ref.oid.data(), oid->id, ref.oid.size());
      ref.display = st.prefix + display_name(root) + display_name(git_tree_entry_name(entry));
      ref.file_at = st.prefix.size();
      st.out->push_back(std::move(ref));
      return 0;
    }
    default:  // submodule commits
      return 0;
  }
}

struct Repo {
  git_repository* repo = nullptr;
  ~Repo() { git_repository_free(repo); }
};
struct Walk {
  git_revwalk* walk = nullptr;
  ~Walk() { git_revwalk_free(walk); }
};

// Pushes every ref that peels to a commit (tags to blobs are not history).
void push_refs(git_repository* repo, git_revwalk* walk) {
  git_reference_iterator* it = nullptr;
  if (git_reference_iterator_new(&it, repo) != 0) return;
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, it) == 0) {
    git_object* target = nullptr;
    if (git_reference_peel(&target, ref, GIT_OBJECT_COMMIT) == 0) {
      git_revwalk_push(walk, git_object_id(target));
      git_object_free(target);
    }
    git_reference_free(ref);
  }
  git_reference_iterator_free(it);
  git_revwalk_push_head(walk);  // detached HEAD; fails harmlessly when unborn
}

}  // namespace

GitLibrary::GitLibrary() {
  git_libgit2_init();
  // We only read. Owner validation would refuse, say, a web root's checkout
  // owned by www-data when root scans it.
  git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
}
GitLibrary::~GitLibrary() {
  git_libgit2_shutdown();
}

Result<std::vector<BlobRef>> list_blobs(std::size_t repo_index, const std::string& gitdir,
                                        const std::string& display_gitdir) {
  Repo repo;
  if (git_repository_open_ext(&repo.repo, gitdir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) !=
      0)
    return make_error(Errc::io, git_message("unreadable git repository"));
  Walk walk;
  if (git_revwalk_new(&walk.walk, repo.repo) != 0)
    return make_error(Errc::io, git_message("unreadable git history"));
  // Oldest first, so that a blob is named after the commit that added it.
  git_revwalk_sorting(walk.walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME | GIT_SORT_REVERSE);
  push_refs(repo.repo, walk.walk);

  std::unordered_set<std::string> seen_trees, seen_blobs;
  std::vector<BlobRef> out;
  git_oid oid;
  while (git_revwalk_next(&oid, walk.walk) == 0) {
    git_commit* commit = nullptr;
    if (git_commit_lookup(&commit, repo.repo, &oid) != 0) continue;
    git_tree* tree = nullptr;
    if (git_commit_tree(&tree, commit) == 0) {
      char hex[GIT_OID_HEXSZ + 1];
      git_oid_tostr(hex, sizeof hex, &oid);
      WalkState st{repo_index, display_gitdir + ":" + std::string(hex, 12) + ":", &seen_trees,
                   &seen_blobs, &out};
      if (seen_trees.insert(oid_key(git_tree_id(tree))).second)
        git_tree_walk(tree, GIT_TREEWALK_PRE, visit_entry, &st);
      git_tree_free(tree);
    }
    git_commit_free(commit);
  }
  return out;
}

struct BlobReader::Impl {
  std::vector<std::string> gitdirs;
  std::unordered_map<std::size_t, git_repository*> open;
  git_blob* current = nullptr;
  ~Impl() {
    git_blob_free(current);
    for (auto& [i, r] : open) git_repository_free(r);
  }
};

BlobReader::BlobReader(const std::vector<std::string>& gitdirs) : impl_(std::make_unique<Impl>()) {
  impl_->gitdirs = gitdirs;
}
BlobReader::~BlobReader() = default;

Result<std::string_view> BlobReader::read(const BlobRef& ref, std::uint64_t max_size) {
  git_blob_free(impl_->current);
  impl_->current = nullptr;
  git_repository*& repo = impl_->open[ref.repo];
  if (repo == nullptr && git_repository_open_ext(&repo, impl_->gitdirs.at(ref.repo).c_str(),
                                                 GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    repo = nullptr;
    return make_error(Errc::io, git_message("unreadable"));
  }
  git_oid oid;
  std::memcpy(oid.id, ref.oid.data(), ref.oid.size());
  // The header gives the size without inflating a huge blob.
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, repo) != 0) return make_error(Errc::io, git_message("unreadable"));
  std::size_t size = 0;
  git_object_t type{};
  int rc = git_odb_read_header(&size, &type, odb, &oid);
  git_odb_free(odb);
  if (rc != 0) return make_error(Errc::io, git_message("unreadable"));
  if (size > max_size)
    return make_error(Errc::unsupported,
                      "skipped: larger than the size limit (" + std::to_string(size) + " bytes)");
  if (git_blob_lookup(&impl_->current, repo, &oid) != 0)
    return make_error(Errc::io, git_message("unreadable"));
  return std::string_view(static_cast<const char*>(git_blob_rawcontent(impl_->current)),
                          static_cast<std::size_t>(git_blob_rawsize(impl_->current)));
}

}  // namespace sg::scan::detail
