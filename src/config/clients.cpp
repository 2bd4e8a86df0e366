// [[client]]: the local application identities and their limits.
#include <limits>
#include <map>

#include "config/quote.hpp"
#include "config/sections.hpp"
#include "config/toml_reader.hpp"

namespace sg::config::detail {
namespace {

constexpr std::int64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

// Client names are SMTP AUTH user names: keep them to what every client
// library can send without quoting.
bool valid_client_name(std::string_view name) {
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@' || c == '+';
    if (!ok) return false;
  }
  return !name.empty();
}

bool valid_auth(std::string_view auth) {
  if (auth == "password" || auth == "exim" || auth == "address") return true;
  return auth.substr(0, 4) == "uid:" && auth.size() > 4;
}

RateLimit read_rate(const TableReader& r) {
  r.allow_only({"per_minute", "per_hour", "per_day"});
  RateLimit rate;
  if (auto v = r.integer("per_minute", 0, kMaxU32))
    rate.per_minute = static_cast<std::uint32_t>(*v);
  if (auto v = r.integer("per_hour", 0, kMaxU32)) rate.per_hour = static_cast<std::uint32_t>(*v);
  if (auto v = r.integer("per_day", 0, kMaxU32)) rate.per_day = static_cast<std::uint32_t>(*v);
  return rate;
}

OnLimit read_on_limit(const TableReader& r) {
  auto v = r.string("on_limit");
  if (!v || *v == "defer") return OnLimit::defer;
  if (*v == "hold") return OnLimit::hold;
  if (*v == "reject") return OnLimit::reject;
  r.fail("on_limit", "expected \"defer\", \"hold\" or \"reject\", got " + in_quotes(*v));
}

// Bytes; 0 (the default) means the relay's max_message_size.
std::uint64_t read_client_size(const TableReader& r, std::string_view key) {
  const toml::node& node = *r.find(key);
  if (node.is_integer() && node.as_integer()->get() >= 0)
    return static_cast<std::uint64_t>(node.as_integer()->get());
  if (node.is_string()) {
    auto parsed = parse_size(node.as_string()->get());
    if (!parsed) r.fail_at(node, key, parsed.error().message);
    return *parsed;
  }
  r.fail_at(
      node, key,
      "expected a size such as \"10MB\" or bytes (0: the relay's limit), got " + describe(node));
}

// ip and password_hash belong to one kind of identity each.
void read_credentials(const TableReader& r, Client& c) {
  if (auto v = r.string_list("ip")) {
    if (!r.has("auth")) c.auth = "address";
    if (c.auth != "address")
      r.fail("ip", "only for auth = \"address\" (the client is identified by its IP)");
    c.ip = std::move(*v);
  }
  if (c.auth == "address" && c.ip.empty())
    r.fail("ip", "required for auth = \"address\": CIDRs such as [\"127.0.0.1/32\", \"::1\"]");
  if (auto v = r.string("password_hash")) {
    if (c.auth != "password" && c.auth != "exim")
      r.fail("password_hash", "only for auth = \"password\" or \"exim\"");
    if (v->rfind("$argon2id$", 0) != 0)
      r.fail("password_hash",
             "expected an Argon2id hash (\"$argon2id$...\", from: smtpguard client passwd "
             "--print-hash)");
    c.password_hash = std::move(*v);
  }
}

Client read_client(const TableReader& r) {
  r.allow_only({"name", "auth", "ip", "password_hash", "allowed_senders", "max_recipients",
                "max_message_size", "rate", "recipient_rate", "submitter_rate", "on_limit"});
  Client c;
  auto name = r.string("name");
  if (!name) r.fail("name", "required: the identity the application logs in as");
  if (!valid_client_name(*name))
    r.fail("name", "expected letters, digits, '.', '_', '-', '@' or '+', got " + in_quotes(*name));
  c.name = std::move(*name);
  if (auto v = r.string("auth")) {
    if (!valid_auth(*v))
      r.fail("auth",
             "expected \"password\", \"uid:NAME\", \"exim\" or \"address\", got " + in_quotes(*v));
    c.auth = std::move(*v);
  }
  read_credentials(r, c);
  if (auto v = r.string_list("allowed_senders")) {
    for (std::size_t i = 0; i < v->size(); ++i) {
      if ((*v)[i].empty())
        r.fail("allowed_senders", "entry " + std::to_string(i) +
                                      " is empty (expected an "
                                      "address or pattern such as \"*@shop.example.com\")");
    }
    c.allowed_senders = std::move(*v);
  }
  if (auto v = r.integer("max_recipients", 1, 100000))
    c.max_recipients = static_cast<std::uint32_t>(*v);
  if (r.has("max_message_size")) c.max_message_size = read_client_size(r, "max_message_size");
  if (const toml::table* t = r.table("rate"))
    c.rate = read_rate(TableReader(*t, r.key_path("rate"), r.key_path("rate"), r.file()));
  if (const toml::table* t = r.table("submitter_rate")) {
    c.submitter_rate = read_rate(
        TableReader(*t, r.key_path("submitter_rate"), r.key_path("submitter_rate"), r.file()));
    if (c.auth != "exim") r.fail("submitter_rate", "only for auth = \"exim\"");
  }
  if (const toml::table* t = r.table("recipient_rate"))
    c.recipient_rate = read_rate(
        TableReader(*t, r.key_path("recipient_rate"), r.key_path("recipient_rate"), r.file()));
  c.on_limit = read_on_limit(r);
  return c;
}

}  // namespace

std::vector<Client> read_clients(const toml::node& node, std::string_view file) {
  std::vector<Client> out;
  const toml::array* array = node.as_array();
  if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
    throw ConfigFailure{location(file, node.source()) +
                        "client: expected an array of tables ([[client]]), got " + describe(node)};
  }
  std::map<std::string, std::size_t, std::less<>> first_line;  // name -> line where first defined
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::table& table = *array->get(i)->as_table();
    const std::string path = "client[" + std::to_string(i) + "]";
    TableReader r(table, path, path, file);
    Client client = read_client(r);
    auto [it, inserted] = first_line.emplace(client.name, r.find("name")->source().begin.line);
    if (!inserted) {
      r.fail("name", "duplicate client name " + in_quotes(client.name) +
                         " (first defined at line " + std::to_string(it->second) + ")");
    }
    out.push_back(std::move(client));
  }
  return out;
}

}  // namespace sg::config::detail
