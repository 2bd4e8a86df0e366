// smtpguard client add|list|rm|passwd: the local identities kept in
// STATE_DIR/clients.json (the [[client]] tables of the config file are
// listed too, but edited in the file). Passwords come from the tty, stdin or
// are generated; only their Argon2id hash is stored.
#include <fmt/core.h>
#include <sysexits.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/random.hpp"
#include "base/secret_input.hpp"
#include "cli/cli.hpp"
#include "policy/policy.hpp"

namespace sg::cli {
namespace {

struct ClientArgs {
  std::string name;
  std::string uid_user;
  std::vector<std::string> ips;
  bool password_stdin = false;
  bool exim = false;
  std::vector<std::string> senders;
  std::uint32_t max_recipients = 50;
  std::string max_size;
  config::RateLimit rate, recipient_rate, submitter_rate;
  std::string on_limit = "defer";
  bool json = false;
  bool print_hash = false;
};

constexpr std::size_t kGeneratedLength = 24;

// Letters and digits only: safe in any config syntax (no '/', '&', quotes).
Secret generate_password() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  Secret out(kGeneratedLength);
  for (std::size_t i = 0; i < kGeneratedLength;) {
    unsigned char byte = 0;
    random_bytes(&byte, 1);
    if (byte >= 248) continue;  // 248 = 4 * 62: keep the choice uniform
    out.data()[i++] = static_cast<unsigned char>(kAlphabet[byte % 62]);
  }
  return out;
}

// The new password: stdin when forced or not a tty, else the tty (asked
// twice). Nothing given -> a generated one (`generated` is set).
Result<Secret> new_password(const std::string& name, bool force_stdin, bool& generated) {
  generated = false;
  SecretPrompt how;
  const std::string prompt = "New password for " + name + " (empty: generate one): ";
  how.prompt = prompt;
  how.confirm = true;
  how.allow_empty = true;  // empty: generate (or, when forced to stdin, refuse below)
  if (force_stdin) how.fd = 0;
  auto got = read_secret(how);
  if (!got) return got.error();
  if (got->empty()) {
    if (force_stdin) return make_error(Errc::invalid_input, "empty password on stdin");
    generated = true;
    return generate_password();
  }
  return got;
}

void print_generated(const std::string& name, const Secret& password) {
  std::cout << "generated password for '" << name << "' (shown only this once; store it in the "
            << "application's SMTP settings with username '" << name << "'):\n"
            << password.view() << "\n"
            << std::flush;
}

std::string config_source(const config::Config& cfg) {
  return cfg.source.empty() ? "the embedded defaults" : cfg.source.string();
}

const config::Client* in_config(const config::Config& cfg, const std::string& name) {
  for (const auto& c : cfg.clients)
    if (c.name == name) return &c;
  return nullptr;
}

Result<policy::ClientStore> store_for(const config::Config& cfg) {
  return policy::ClientStore::open(cfg.relay.state_dir);
}

Result<config::Client> record_from(const ClientArgs& a) {
  config::Client c;
  c.name = a.name;
  if (!a.uid_user.empty()) {
    if (!policy::system_uid(a.uid_user))
      return make_error(Errc::not_found, "no such user '" + a.uid_user + "'");
    c.auth = "uid:" + a.uid_user;
  } else if (!a.ips.empty()) {
    c.auth = "address";
    c.ip = a.ips;
  } else {
    c.auth = a.exim ? "exim" : "password";
  }
  c.allowed_senders = a.senders;
  c.max_recipients = a.max_recipients;
  if (!a.max_size.empty() && a.max_size != "0") {
    auto size = config::parse_size(a.max_size);
    if (!size) return make_error(Errc::invalid_input, "--max-size: " + size.error().message);
    c.max_message_size = *size;
  }
  c.rate = a.rate;
  c.recipient_rate = a.recipient_rate;
  c.submitter_rate = a.submitter_rate;
  if (c.auth != "exim" && (a.submitter_rate.per_minute || a.submitter_rate.per_hour ||
                         a.submitter_rate.per_day))
    return make_error(Errc::invalid_input, "--submitter-per-*: only with --exim");
  c.on_limit = a.on_limit == "hold"     ? config::OnLimit::hold
               : a.on_limit == "reject" ? config::OnLimit::reject
                                        : config::OnLimit::defer;
  if (auto v = policy::validate_client(c); !v) return v.error();
  return c;
}

int run_add(const config::Config& cfg, const ClientArgs& a) {
  if (!policy::valid_identity_name(a.name))
    return fail(EX_USAGE, "invalid client name '" + policy::printable(a.name, 64) +
                              "' (use 1-64 letters, digits, '.', '_', '-', '@', '+')");
  if (in_config(cfg, a.name))
    return fail(EX_CANTCREAT,
                "client '" + a.name + "' is already defined in " + config_source(cfg));
  auto record = record_from(a);
  if (!record) return fail(record.error());
  auto store = store_for(cfg);
  if (!store) return fail(store.error());
  Secret password;
  bool generated = false;
  if (record->auth == "password" || record->auth == "exim") {
    auto pw = new_password(a.name, a.password_stdin, generated);
    if (!pw) return fail(pw.error());
    password = std::move(pw).value();
    auto hash = policy::hash_password(password);
    if (!hash) return fail(hash.error());
    record->password_hash = std::move(hash).value();
  }
  auto fits = [&cfg](const policy::StoredClients& s) -> Result<void> {
    auto table = policy::IdentityTable::build(cfg, s);
    if (!table) return table.error();
    return {};
  };
  if (auto r = store->add(*record, fits); !r) return fail(r.error());
  std::cout << "added client '" << a.name << "' (" << record->auth << ") to "
            << store->path().string() << "\n";
  if (record->allowed_senders.empty())
    std::cout << "note: no --allowed-sender given, so it may not send anything yet\n";
  if (generated) print_generated(a.name, password);
  return EX_OK;
}

std::string limit_text(const config::RateLimit& r) {
  auto one = [](std::uint32_t v) { return v == 0 ? std::string("-") : std::to_string(v); };
  return one(r.per_minute) + "/" + one(r.per_hour) + "/" + one(r.per_day);
}

const char* on_limit_text(config::OnLimit o) {
  return o == config::OnLimit::hold ? "hold" : o == config::OnLimit::reject ? "reject" : "defer";
}

std::string auth_text(const config::Client& c) {
  if (c.auth == "address") {
    std::string s = "address ";
    for (std::size_t i = 0; i < c.ip.size(); ++i) s += (i ? "," : "") + c.ip[i];
    return s;
  }
  if ((c.auth == "password" || c.auth == "exim") && c.password_hash.empty())
    return c.auth + " (no password set)";
  return c.auth;
}

std::string senders_text(const config::Client& c) {
  if (c.allowed_senders.empty()) return "(none: may send nothing)";
  std::string s;
  for (std::size_t i = 0; i < c.allowed_senders.size(); ++i)
    s += (i ? "," : "") + c.allowed_senders[i];
  return s;
}

nlohmann::json client_json(const config::Client& c, const std::string& source) {
  auto rate = [](const config::RateLimit& r) {
    return nlohmann::json{
        {"per_minute", r.per_minute}, {"per_hour", r.per_hour}, {"per_day", r.per_day}};
  };
  return {{"name", c.name},
          {"source", source},
          {"auth", c.auth},
          {"ip", c.ip},
          {"password_set", !c.password_hash.empty()},
          {"allowed_senders", c.allowed_senders},
          {"max_recipients", c.max_recipients},
          {"max_message_size", c.max_message_size},
          {"rate", rate(c.rate)},
          {"recipient_rate", rate(c.recipient_rate)},
          {"on_limit", on_limit_text(c.on_limit)}};
}

int run_list(const config::Config& cfg, const ClientArgs& a) {
  auto store = store_for(cfg);
  if (!store) return fail(store.error());
  auto stored = store->load();
  if (!stored) return fail(stored.error());
  std::vector<std::pair<const config::Client*, std::string>> all;
  for (const auto& c : cfg.clients) all.emplace_back(&c, "config");
  for (const auto& c : stored->clients) all.emplace_back(&c, "store");
  if (a.json) {
    auto out = nlohmann::json::array();
    for (const auto& [c, source] : all) out.push_back(client_json(*c, source));
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    fmt::print("{:<20} {:<7} {:<26} {:<8} {:<9} {:<17} {:<17} {:<8} {}\n", "NAME", "SOURCE", "AUTH",
               "RCPT/MSG", "MAX SIZE", "MSGS MIN/H/DAY", "RCPTS MIN/H/DAY", "ON LIMIT",
               "ALLOWED SENDERS");
    for (const auto& [c, source] : all)
      fmt::print("{:<20} {:<7} {:<26} {:<8} {:<9} {:<17} {:<17} {:<8} {}\n", c->name, source,
                 auth_text(*c), c->max_recipients,
                 c->max_message_size ? std::to_string(c->max_message_size) : "default",
                 limit_text(c->rate), limit_text(c->recipient_rate), on_limit_text(c->on_limit),
                 senders_text(*c));
  }
  // Problems the relay would refuse to load with (e.g. a name in both places).
  if (auto table = policy::IdentityTable::build(cfg, *stored); !table)
    std::cerr << "smtpguard: warning: " << table.error().message << "\n";
  return EX_OK;
}

int run_rm(const config::Config& cfg, const ClientArgs& a) {
  auto store = store_for(cfg);
  if (!store) return fail(store.error());
  auto r = store->remove(a.name);
  if (!r && r.error().code == Errc::not_found && in_config(cfg, a.name))
    return fail(EX_DATAERR, "client '" + a.name + "' is defined in " + config_source(cfg) +
                                "; remove its [[client]] table there");
  if (!r) return fail(r.error());
  std::cout << "removed client '" << a.name << "'\n";
  return EX_OK;
}

int run_passwd(const config::Config& cfg, const ClientArgs& a) {
  if (a.print_hash) {
    bool generated = false;
    auto pw = new_password(a.name.empty() ? "the client" : a.name, a.password_stdin, generated);
    if (!pw) return fail(pw.error());
    auto hash = policy::hash_password(*pw);
    if (!hash) return fail(hash.error());
    if (generated) print_generated(a.name.empty() ? "the client" : a.name, *pw);
    std::cout << "password_hash = \"" << *hash << "\"\n";
    return EX_OK;
  }
  if (a.name.empty()) return fail(EX_USAGE, "client passwd: NAME is required (or --print-hash)");
  auto store = store_for(cfg);
  if (!store) return fail(store.error());
  auto stored = store->load();
  if (!stored) return fail(stored.error());
  bool found = false;
  for (const auto& c : stored->clients) found = found || c.name == a.name;
  if (!found && in_config(cfg, a.name))
    return fail(EX_DATAERR, "client '" + a.name + "' is defined in " + config_source(cfg) +
                                "; set its password_hash there (see: smtpguard client passwd "
                                "--print-hash)");
  if (!found) return fail(EX_NOINPUT, "no client '" + policy::printable(a.name, 64) + "'");
  bool generated = false;
  auto pw = new_password(a.name, a.password_stdin, generated);
  if (!pw) return fail(pw.error());
  if (auto r = store->set_password(a.name, *pw); !r) return fail(r.error());
  std::cout << "changed the password of '" << a.name << "'\n";
  if (generated) print_generated(a.name, *pw);
  return EX_OK;
}

}  // namespace

void add_client_commands(CLI::App& app, Globals& globals) {
  auto* client = app.add_subcommand("client", "Local application identities and their limits");
  client->require_subcommand(1);
  client->footer(
      "Each application (a PHP site, WordPress, Exim) gets its own identity: a password login\n"
      "(SMTP AUTH, username = NAME), a unix uid (connections on the relay's socket), or an IP\n"
      "network (TCP). Identities added here live in STATE_DIR/clients.json (mode 0640, group\n"
      "'smtpguard' when it exists); a running relay picks up changes without a restart.\n"
      "[[client]] tables in the config file are listed too but edited in the file.");
  auto args = std::make_shared<ClientArgs>();
  using Runner = int (*)(const config::Config&, const ClientArgs&);
  auto bind = [&globals, args](CLI::App* cmd, Runner run) {
    cmd->callback([&globals, args, run] {
      auto cfg = load_config(globals);
      if (!cfg) {
        globals.exit_code = fail(cfg.error());
        return;
      }
      harden_process();
      globals.exit_code = run(*cfg, *args);
    });
  };

  auto* add = client->add_subcommand("add", "Add an identity");
  add->add_option("NAME", args->name,
                  "Identity name, also the SMTP AUTH username "
                  "([A-Za-z0-9._@+-], at most 64)")
      ->required();
  auto* uid = add->add_option("--uid", args->uid_user,
                              "Identify by the unix user connecting to the relay's socket");
  auto* ip = add->add_option("--ip", args->ips,
                             "Identify by TCP peer address: CIDR (IPv4 or IPv6); repeatable");
  auto* pw = add->add_flag("--password-stdin", args->password_stdin,
                           "Password login; read the password from stdin (default for a password "
                           "identity: the tty, asked twice, or stdin when it is not a tty; "
                           "nothing given: generate one and print it once)");
  auto* exim = add->add_flag("--exim", args->exim, "A password identity for the local Exim");
  uid->excludes(ip)->excludes(pw)->excludes(exim);
  ip->excludes(pw)->excludes(exim);
  add->add_option("--allowed-sender", args->senders,
                  "Envelope sender and header From it may use: ADDRESS, *@DOMAIN, *@*.DOMAIN "
                  "(subdomains) or <> (bounces); repeatable. None: it may send nothing");
  add->add_option("--max-recipients", args->max_recipients, "Recipients per message")
      ->check(CLI::Range(1, 100000))
      ->default_val(50);
  add->add_option("--max-size", args->max_size,
                  "Largest message, e.g. 10MB (default: the relay's max_message_size)");
  add->add_option("--per-minute", args->rate.per_minute, "Messages per minute (0: no limit)");
  add->add_option("--per-hour", args->rate.per_hour, "Messages per hour (0: no limit)");
  add->add_option("--per-day", args->rate.per_day, "Messages per day (0: no limit)");
  add->add_option("--recipients-per-minute", args->recipient_rate.per_minute,
                  "Recipients per minute, over all messages (0: no limit)");
  add->add_option("--recipients-per-hour", args->recipient_rate.per_hour, "Recipients per hour");
  add->add_option("--recipients-per-day", args->recipient_rate.per_day, "Recipients per day");
  add->add_option("--submitter-per-minute", args->submitter_rate.per_minute,
                  "With --exim: messages per minute for each submitter Exim names (a mailbox "
                  "or local user), on top of the identity's own limits");
  add->add_option("--submitter-per-hour", args->submitter_rate.per_hour,
                  "With --exim: messages per hour for each submitter");
  add->add_option("--submitter-per-day", args->submitter_rate.per_day,
                  "With --exim: messages per day for each submitter");
  add->add_option("--on-limit", args->on_limit,
                  "At a rate limit: defer (451 4.7.1, the client retries), hold (accept into "
                  "the hold queue) or reject (550 5.7.1)")
      ->check(CLI::IsMember({"defer", "hold", "reject"}))
      ->default_val("defer");
  add->footer(
      "Examples:\n"
      "  smtpguard client add shop --allowed-sender '*@shop.example.com' --per-hour 500\n"
      "  smtpguard client add php --uid www-data --allowed-sender 'www@example.com'\n"
      "  printf '%s' \"$PW\" | smtpguard client add blog --password-stdin --allowed-sender "
      "blog@example.com");
  bind(add, run_add);

  auto* list = client->add_subcommand("list",
                                      "Show identities, their senders and limits "
                                      "(never passwords or hashes)");
  list->add_flag("--json", args->json, "JSON output");
  bind(list, run_list);

  auto* rm = client->add_subcommand("rm",
                                    "Remove an identity (its connections are refused "
                                    "from the relay's next reload)");
  rm->add_option("NAME", args->name, "Identity name")->required();
  bind(rm, run_rm);

  auto* passwd = client->add_subcommand(
      "passwd", "Set a new password for a password identity (tty, stdin, or generated)");
  passwd->add_option("NAME", args->name, "Identity name");
  passwd->add_flag("--password-stdin", args->password_stdin, "Read the password from stdin");
  passwd->add_flag("--print-hash", args->print_hash,
                   "Only print a password_hash line for a [[client]] table in the config file");
  bind(passwd, run_passwd);
}

}  // namespace sg::cli
