// ClientStore: clients.json on disk, locked read-modify-write, reload stamps.
#include "policy/store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "base/file.hpp"

namespace sg::policy {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sgpolicy.XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

StoredClient record(std::string name, std::string auth = "password") {
  StoredClient c;
  c.name = std::move(name);
  c.auth = std::move(auth);
  c.allowed_senders = {"*@example.com"};
  return c;
}

ClientStore open_store(const fs::path& dir) {
  auto s = ClientStore::open(dir);
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

TEST(ClientStore, MissingFileIsEmpty) {
  TempDir dir;
  ClientStore store = open_store(dir.path() / "state");
  auto loaded = store.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_TRUE(loaded->clients.empty());
  EXPECT_FALSE(loaded->stamp.exists);
  EXPECT_FALSE(store.changed_since(loaded->stamp));
}

TEST(ClientStore, AddRemovePasswdRoundTrip) {
  TempDir dir;
  ClientStore store = open_store(dir.path() / "state");
  StoredClient shop = record("shop");
  shop.max_message_size = 5'000'000;
  shop.rate = {30, 500, 5000};
  shop.recipient_rate = {100, 0, 0};
  shop.on_limit = config::OnLimit::hold;
  ASSERT_TRUE(store.add(shop).ok());
  StoredClient lan = record("lan", "address");
  lan.ip = {"10.0.0.0/8", "::1"};
  ASSERT_TRUE(store.add(lan).ok());

  auto dup = store.add(record("shop"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::conflict);

  struct stat st {};
  ASSERT_EQ(::stat(store.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  auto loaded = store.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->clients.size(), 2u);
  const StoredClient& s = loaded->clients[0];
  EXPECT_EQ(s.name, "shop");
  EXPECT_EQ(s.max_message_size, 5'000'000u);
  EXPECT_EQ(s.rate.per_hour, 500u);
  EXPECT_EQ(s.recipient_rate.per_minute, 100u);
  EXPECT_EQ(s.on_limit, config::OnLimit::hold);
  EXPECT_EQ(loaded->clients[1].ip, (std::vector<std::string>{"10.0.0.0/8", "::1"}));

  const FileStamp before = loaded->stamp;
  ASSERT_TRUE(store.set_password("shop", Secret::copy_of("pw one")).ok());
  EXPECT_TRUE(store.changed_since(before));
  auto after = store.load();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->clients[0].password_hash.rfind("$argon2id$", 0), 0u);
  auto table = IdentityTable::build(config::Config{}, *after);
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_NE(table->authenticate("shop", Secret::copy_of("pw one")), nullptr);
  EXPECT_EQ(table->authenticate("shop", Secret::copy_of("pw two")), nullptr);
  // The file never holds the password itself.
  auto text = read_file(store.path());
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->find("pw one"), std::string::npos);

  auto no_pw = store.set_password("lan", Secret::copy_of("x"));
  ASSERT_FALSE(no_pw.ok());
  EXPECT_THAT(no_pw.error().message, HasSubstr("not by password"));
  EXPECT_EQ(store.set_password("ghost", Secret::copy_of("x")).error().code, Errc::not_found);

  ASSERT_TRUE(store.remove("shop").ok());
  EXPECT_EQ(store.remove("shop").error().code, Errc::not_found);
  ASSERT_EQ(store.load()->clients.size(), 1u);
  EXPECT_EQ(store.load()->clients[0].name, "lan");
}

TEST(ClientStore, CheckRunsOnTheNewContentsAndCanVeto) {
  TempDir dir;
  ClientStore store = open_store(dir.path());
  auto veto = [](const StoredClients& s) -> Result<void> {
    if (s.clients.size() > 1) return make_error(Errc::config, "too many");
    return {};
  };
  ASSERT_TRUE(store.add(record("a"), veto).ok());
  auto r = store.add(record("b"), veto);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "too many");
  EXPECT_EQ(store.load()->clients.size(), 1u);
}

TEST(ClientStore, InvalidRecordsAreRefusedBeforeWriting) {
  TempDir dir;
  ClientStore store = open_store(dir.path());
  StoredClient bad = record("bad name");
  EXPECT_FALSE(store.add(bad).ok());
  bad = record("ok");
  bad.allowed_senders = {"*@[10.0.0.1]"};
  EXPECT_FALSE(store.add(bad).ok());
  EXPECT_FALSE(fs::exists(store.path()));
}

TEST(ClientStore, ConcurrentAddsFromTwoProcessesBothSurvive) {
  TempDir dir;
  const fs::path state = dir.path() / "state";
  constexpr int kPerProcess = 15;
  pid_t children[2];
  for (int p = 0; p < 2; ++p) {
    children[p] = ::fork();
    ASSERT_GE(children[p], 0);
    if (children[p] == 0) {
      auto store = ClientStore::open(state);
      for (int i = 0; i < kPerProcess; ++i) {
        if (!store->add(record("p" + std::to_string(p) + "-" + std::to_string(i))).ok()) ::_exit(1);
      }
      ::_exit(0);
    }
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto loaded = open_store(state).load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->clients.size(), 2u * kPerProcess);
}

TEST(ParseClientsJson, RejectsDamageWithOneLine) {
  for (std::string_view bad : {
           "",
           "[]",
           R"({"clients":[]})",
           R"({"version":2,"clients":[]})",
           R"({"version":1})",
           R"({"version":1,"clients":[1]})",
           R"({"version":1,"clients":[{"name":"a","max_recipients":-1}]})",
           R"({"version":1,"clients":[{"name":"a","rate":{"per_day":"x"}}]})",
           R"({"version":1,"clients":[{"name":"a","on_limit":"drop"}]})",
           R"({"version":1,"clients":[{"name":"a"},{"name":"a"}]})",
           R"({"version":1,"clients":[{"name":"a","auth":"address"}]})",
           R"({"version":1,"clients":[{"name":"a","allowed_senders":["a@b@c"]}]})",
       }) {
    auto r = parse_clients_json(bad, "clients.json");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message.rfind("clients.json: ", 0), 0u) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
  auto ok = parse_clients_json(R"({"version":1,"clients":[{"name":"a"}]})", "f");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->clients[0].auth, "password");
  EXPECT_EQ(ok->clients[0].max_recipients, 50u);
}

TEST(ClientStore, CorruptFileIsAnErrorNotEmpty) {
  TempDir dir;
  ClientStore store = open_store(dir.path());
  std::ofstream(store.path()) << "{not json";
  auto r = store.load();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::corrupt);
  EXPECT_FALSE(store.add(record("a")).ok());  // never overwrites what it cannot read
}

}  // namespace
}  // namespace sg::policy
