// IdentityTable: building from config + store, peers, password logins.
#include "policy/identity.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sg::policy {
namespace {

using ::testing::HasSubstr;

config::Client client(std::string name, std::string auth) {
  config::Client c;
  c.name = std::move(name);
  c.auth = std::move(auth);
  c.allowed_senders = {"*@example.com"};
  return c;
}

config::Client address_client(std::string name, std::vector<std::string> ip) {
  config::Client c = client(std::move(name), "address");
  c.ip = std::move(ip);
  return c;
}

std::optional<uid_t> fake_users(std::string_view user) {
  if (user == "www-data") return 33;
  if (user == "wordpress") return 1001;
  return std::nullopt;
}

IdentityTable table(const config::Config& cfg, const StoredClients& stored = {}) {
  auto t = IdentityTable::build(cfg, stored, fake_users);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return t.ok() ? std::move(t).value() : IdentityTable{};
}

TEST(IdentityTable, ByPeerUid) {
  config::Config cfg;
  cfg.clients = {client("php", "uid:www-data"), client("wp", "uid:wordpress"),
                 client("numeric", "uid:4242")};
  IdentityTable t = table(cfg);
  const Identity* php = t.by_peer(Peer{true, 33, ""});
  ASSERT_NE(php, nullptr);
  EXPECT_EQ(php->name, "php");
  EXPECT_EQ(php->kind, AuthKind::uid);
  EXPECT_EQ(php->uid_name, "www-data");
  EXPECT_EQ(t.by_peer(Peer{true, 1001, ""})->name, "wp");
  EXPECT_EQ(t.by_peer(Peer{true, 4242, ""})->name, "numeric");
  EXPECT_EQ(t.by_peer(Peer{true, 0, ""}), nullptr);
  EXPECT_EQ(t.by_peer(Peer{true, std::nullopt, ""}), nullptr);
  // A uid rule says nothing about TCP peers.
  EXPECT_EQ(t.by_peer(Peer{false, 33, "127.0.0.1"}), nullptr);
}

TEST(IdentityTable, ByPeerCidrV4AndV6LongestPrefixWins) {
  config::Config cfg;
  cfg.clients = {address_client("lan", {"10.0.0.0/8", "fd00::/8"}),
                 address_client("app", {"10.1.2.0/24"}),
                 address_client("local", {"127.0.0.1", "::1"})};
  IdentityTable t = table(cfg);
  auto name_of = [&](std::string ip) {
    const Identity* id = t.by_peer(Peer{false, std::nullopt, ip});
    return id ? id->name : std::string("-");
  };
  EXPECT_EQ(name_of("10.9.9.9"), "lan");
  EXPECT_EQ(name_of("10.1.2.77"), "app");
  EXPECT_EQ(name_of("127.0.0.1"), "local");
  EXPECT_EQ(name_of("127.0.0.2"), "-");
  EXPECT_EQ(name_of("::1"), "local");
  EXPECT_EQ(name_of("::ffff:127.0.0.1"), "local");  // dual-stack listener
  EXPECT_EQ(name_of("::ffff:10.1.2.3"), "app");
  EXPECT_EQ(name_of("fd12:3456::1"), "lan");
  EXPECT_EQ(name_of("fe80::1"), "-");
  EXPECT_EQ(name_of("11.0.0.1"), "-");
  EXPECT_EQ(name_of("not-an-ip"), "-");
  EXPECT_EQ(name_of(""), "-");
  // The unix socket is identified by uid only.
  EXPECT_EQ(t.by_peer(Peer{true, 0, "127.0.0.1"}), nullptr);
}

TEST(Cidr, ParsesAndRefuses) {
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains("203.0.113.5"));
  EXPECT_FALSE(Cidr::parse("0.0.0.0/0")->contains("::1"));
  EXPECT_TRUE(Cidr::parse("2001:db8::/32")->contains("2001:db8:ffff::1"));
  EXPECT_FALSE(Cidr::parse("2001:db8::/32")->contains("2001:db9::1"));
  EXPECT_EQ(Cidr::parse("10.0.0.0/8")->str(), "10.0.0.0/8");
  EXPECT_EQ(Cidr::parse("::1")->str(), "::1/128");
  for (std::string_view bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "300.1.1.1", "::1/129",
                               "fe80::1%eth0", "10.0.0.0/8/8", "localhost"})
    EXPECT_FALSE(Cidr::parse(bad).ok()) << bad;
  auto host_bits = Cidr::parse("10.1.2.3/8");
  ASSERT_FALSE(host_bits.ok());
  EXPECT_THAT(host_bits.error().message, HasSubstr("did you mean 10.0.0.0/8?"));
}

TEST(IdentityTable, AuthenticateVerifiesArgon2id) {
  auto hash = hash_password(Secret::copy_of("correct horse"));
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u);
  config::Config cfg;
  cfg.clients = {client("shop", "password"), client("exim", "exim"), client("nohash", "password"),
                 client("php", "uid:www-data")};
  cfg.clients[0].password_hash = *hash;
  cfg.clients[1].password_hash = *hash;
  IdentityTable t = table(cfg);
  const Identity* shop = t.authenticate("shop", Secret::copy_of("correct horse"));
  ASSERT_NE(shop, nullptr);
  EXPECT_EQ(shop->name, "shop");
  EXPECT_FALSE(shop->exim);
  EXPECT_EQ(t.authenticate("shop", Secret::copy_of("correct horsE")), nullptr);
  EXPECT_EQ(t.authenticate("shop", Secret::copy_of("")), nullptr);
  EXPECT_EQ(t.authenticate("SHOP", Secret::copy_of("correct horse")), nullptr);
  const Identity* exim = t.authenticate("exim", Secret::copy_of("correct horse"));
  ASSERT_NE(exim, nullptr);
  EXPECT_TRUE(exim->exim);
  EXPECT_EQ(exim->kind, AuthKind::password);
  EXPECT_EQ(t.authenticate("nohash", Secret::copy_of("")), nullptr);
  EXPECT_EQ(t.authenticate("php", Secret::copy_of("correct horse")), nullptr);
  EXPECT_EQ(t.authenticate("nobody", Secret::copy_of("correct horse")), nullptr);
}

TEST(IdentityTable, NameInConfigAndStoreIsAnErrorNamingBoth) {
  config::Config cfg;
  cfg.source = "/etc/smtpguard/smtpguard.toml";
  cfg.clients = {client("shop", "password")};
  StoredClients stored;
  stored.path = "/var/lib/smtpguard/clients.json";
  stored.clients = {client("blog", "password"), client("shop", "uid:www-data")};
  auto t = IdentityTable::build(cfg, stored, fake_users);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::config);
  EXPECT_THAT(t.error().message, HasSubstr("\"shop\" is defined both in "
                                           "/etc/smtpguard/smtpguard.toml and in "
                                           "/var/lib/smtpguard/clients.json"));
  stored.clients.pop_back();
  auto ok = IdentityTable::build(cfg, stored, fake_users);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->find("blog")->source, "/var/lib/smtpguard/clients.json");
  EXPECT_EQ(ok->find("shop")->source, "/etc/smtpguard/smtpguard.toml");
  EXPECT_EQ(ok->find("nope"), nullptr);
}

TEST(IdentityTable, RefusesAmbiguousOrInvalidRules) {
  auto error_of = [](std::vector<config::Client> clients) {
    config::Config cfg;
    cfg.clients = std::move(clients);
    auto t = IdentityTable::build(cfg, {}, fake_users);
    return t.ok() ? std::string("ok") : t.error().message;
  };
  EXPECT_THAT(error_of({client("a", "uid:www-data"), client("b", "uid:33")}),
              HasSubstr("claim the same uid or network"));
  EXPECT_THAT(error_of({address_client("a", {"10.0.0.0/8"}), address_client("b", {"10.0.0.0/8"})}),
              HasSubstr("claim the same uid or network"));
  EXPECT_THAT(error_of({client("a", "uid:nosuchuser")}), HasSubstr("no such user \"nosuchuser\""));
  EXPECT_THAT(error_of({address_client("a", {"10.0.0.1/8"})}), HasSubstr("host bits"));
  auto bad_sender = client("a", "password");
  bad_sender.allowed_senders = {"*@*"};
  EXPECT_THAT(error_of({bad_sender}), HasSubstr("allowed sender \"*@*\""));
  auto bad_hash = client("a", "password");
  bad_hash.password_hash = "$argon2id$nonsense";
  EXPECT_THAT(error_of({bad_hash}), HasSubstr("not an Argon2id hash"));
  EXPECT_THAT(error_of({client(std::string(65, 'a'), "password")}), HasSubstr("1-64 letters"));
  EXPECT_THAT(error_of({client("a b", "password")}), HasSubstr("1-64 letters"));
  // Overlapping but different networks are fine: the longest prefix wins.
  EXPECT_EQ(error_of({address_client("a", {"10.0.0.0/8"}), address_client("b", {"10.0.0.0/16"})}),
            "ok");
}

}  // namespace
}  // namespace sg::policy
