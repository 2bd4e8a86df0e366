// Alert sinks: webhook, syslog, exec and email; dedup and rate limits.
#include "monitor/alerts.hpp"

#include <arpa/nameser.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>

#include "base/random.hpp"
#include "base/text.hpp"
#include "net/net.hpp"
#include "net/run_blocking.hpp"

namespace sg::monitor {
namespace {

std::string suppressed_note(std::uint64_t suppressed) {
  if (suppressed == 0) return {};
  return " (" + std::to_string(suppressed) + " more alert" + (suppressed == 1 ? "" : "s") +
         " suppressed since the last one)";
}

std::string rfc5322_date(std::int64_t when) {
  std::time_t t = static_cast<std::time_t>(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() < 4096) body->append(data, std::min<std::size_t>(size * n, 4096));
  return size * n;
}

std::string post_webhook(const std::string& url, const std::string& body) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return "cannot initialise libcurl";
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string response;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "smtpguard");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) return std::string(curl_easy_strerror(rc));
  if (status < 200 || status > 299) return "HTTP status " + std::to_string(status);
  return {};
}

// Runs `program` with `input` on stdin, no shell, a minimal environment and
// nothing else inherited; kills it after `timeout`.
std::string run_program(const std::string& program, const std::string& input,
                        std::chrono::seconds timeout) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(in[0]);
    ::close(in[1]);
    return std::string("fork: ") + std::strerror(errno);
  }
  if (pid == 0) {
    ::dup2(in[0], 0);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 1);
    ::close_range(3, ~0U, 0);
    ::signal(SIGPIPE, SIG_DFL);
    const char* argv[] = {program.c_str(), nullptr};
    const char* envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", nullptr};
    ::execve(program.c_str(), const_cast<char**>(argv), const_cast<char**>(envp));
    ::_exit(127);
  }
  ::close(in[0]);
  // The program may not read its input; a closed pipe is not our failure.
  auto old = ::signal(SIGPIPE, SIG_IGN);
  std::size_t off = 0;
  while (off < input.size()) {
    ssize_t n = ::write(in[1], input.data() + off, input.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  ::close(in[1]);
  ::signal(SIGPIPE, old);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return std::string("waitpid: ") + std::strerror(errno);
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return "timed out after " + std::to_string(timeout.count()) + " s (killed)";
    }
    ::poll(nullptr, 0, 20);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 127) return "cannot run " + program;
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  return "killed by signal " + std::to_string(WTERMSIG(status));
}

std::string domain_of(const std::string& address) {
  auto at = address.rfind('@');
  return at == std::string::npos ? std::string() : address.substr(at + 1);
}

// One message over one session; an error when the server did not take it.
Result<void> send_mail(const config::Upstream& upstream, const AlertLogin* login,
                       const std::string& from, const std::string& to, const std::string& data) {
  return net::run_blocking<Result<void>>(
      [&](asio::io_context& io) -> asio::awaitable<Result<void>> {
        net::UpstreamClient client(io, upstream, login ? login->username : std::string(),
                                   login ? &login->password : nullptr);
        if (auto opened = co_await client.open(); !opened) co_return opened.error();
        smtp::Message m;
        m.envelope.mail_from = from;
        m.envelope.rcpt_to.push_back(to);
        m.data = data;
        auto sent = co_await client.send(std::move(m));
        co_await client.quit();
        if (!sent) co_return sent.error();
        if (!sent->accepted || sent->final_reply.code / 100 != 2)
          co_return make_error(
              sent->final_reply.code / 100 == 4 ? Errc::temp_failure : Errc::perm_failure,
              "refused: " + sent->final_reply.to_string());
        co_return Result<void>{};
      });
}

// Straight to the recipient domain's MX hosts, most preferred first, on
// port 25. TLS is opportunistic, as between MTAs (RFC 3207, RFC 7435): the
// net module only does verified TLS, so STARTTLS is tried verified first, and
// when the host does not offer it, refuses it or presents a certificate we
// cannot verify, the message goes again in plain text on a new connection
// (Postfix's "may" level falls back the same way after a failed handshake).
// Refusing would lose the alert; it carries no secret, and an MX name from
// unauthenticated DNS gives verification little to stand on anyway.
std::string send_direct(const std::string& helo, const std::string& from, const std::string& to,
                        const std::string& data) {
  auto mx = lookup_mx(domain_of(to));
  if (!mx) return mx.error().message;
  constexpr std::size_t kMaxHosts = 5;  // each may take a timeout or two
  std::string errors;
  for (std::size_t i = 0; i < mx->size() && i < kMaxHosts; ++i) {
    config::Upstream direct;
    direct.name = "mx";
    direct.host = (*mx)[i];
    direct.port = 25;
    direct.ehlo_name = helo;  // MX hosts distrust "EHLO localhost"
    direct.tls = config::TlsMode::starttls;
    direct.timeout_seconds = 30;
    auto sent = send_mail(direct, nullptr, from, to, data);
    if (!sent && sent.error().code == Errc::tls) {
      direct.tls = config::TlsMode::none;
      spdlog::warn("alert email to {}: {}; sending in plain text", to, sent.error().message);
      sent = send_mail(direct, nullptr, from, to, data);
    }
    if (sent) return {};
    errors += (errors.empty() ? "" : "; ") + sent.error().message;
  }
  return errors.empty() ? "no MX host to try" : errors;
}

}  // namespace

nlohmann::json alert_json(const AlertEvent& alert, std::uint64_t suppressed) {
  nlohmann::json j = {
      {"text", "[smtpguard " + alert.host + "] " + alert.title + suppressed_note(suppressed)},
      {"key", alert.key},
      {"severity", alert.severity},
      {"title", alert.title},
      {"detail", alert.detail},
      {"host", alert.host},
      {"time", alert.time},
      {"suppressed", suppressed}};
  if (!alert.fields.is_null()) j["fields"] = alert.fields;
  return j;
}

std::string alert_email(const AlertEvent& alert, std::uint64_t suppressed, const std::string& from,
                        const std::string& to, const std::string& message_id) {
  // Control characters (and in a header, non-ASCII) would let a
  // client-chosen subject forge header lines.
  std::string subject =
      one_line("[smtpguard " + alert.host + "] " + alert.title, {.ascii_only = true});
  std::string body = alert.title + suppressed_note(suppressed) + "\n\n" + alert.detail + "\n\n" +
                     alert_json(alert, suppressed).dump(2) + "\n";
  std::string out = "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
                    "\r\nDate: " + rfc5322_date(alert.time) + "\r\nMessage-ID: <" + message_id +
                    ">\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n";
  // Bare CR or LF in the detail become CRLF; the session dot-stuffs.
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\r') continue;
    if (c == '\n')
      out += "\r\n";
    else
      out += c;
  }
  return out;
}

struct AlertSinks::Sink {
  enum class Kind { webhook, syslog, exec, email } kind;
  config::Alert config;
  std::string name;
  std::map<std::string, std::int64_t> last_sent;  // key -> time
  double tokens = kBurst;
  std::int64_t refilled_at = 0;
  std::uint64_t suppressed = 0;

  // Dedup per key, then the burst budget (one token back per minute).
  bool admit(const AlertEvent& alert) {
    auto it = last_sent.find(alert.key);
    if (it != last_sent.end() && alert.time - it->second < config.min_interval_seconds)
      return false;
    if (refilled_at == 0) refilled_at = alert.time;
    tokens = std::min<double>(kBurst, tokens + (alert.time - refilled_at) / 60.0);
    refilled_at = alert.time;
    if (tokens < 1) return false;
    tokens -= 1;
    last_sent[alert.key] = alert.time;
    if (last_sent.size() > 10000) last_sent.clear();  // bounded; worst case a repeat
    return true;
  }
};

AlertSinks::AlertSinks(std::vector<config::Alert> alerts, std::vector<config::Upstream> upstreams,
                       std::map<std::string, AlertLogin> logins)
    : upstreams_(std::move(upstreams)), logins_(std::move(logins)) {
  for (const auto& a : alerts) {
    auto add = [&](Sink::Kind kind, std::string name) {
      auto s = std::make_unique<Sink>();
      s->kind = kind;
      s->config = a;
      s->name = std::move(name);
      sinks_.push_back(std::move(s));
    };
    if (!a.webhook.empty()) add(Sink::Kind::webhook, "webhook " + a.webhook);
    if (a.syslog) add(Sink::Kind::syslog, "syslog");
    if (!a.exec.empty()) add(Sink::Kind::exec, "exec " + a.exec);
    if (!a.email.empty()) add(Sink::Kind::email, "email " + a.email);
  }
}

AlertSinks::~AlertSinks() = default;

std::vector<SinkOutcome> AlertSinks::send(const AlertEvent& alert) {
  std::vector<SinkOutcome> out;
  for (auto& sink : sinks_) {
    SinkOutcome o{sink->name};
    if (!sink->admit(alert)) {
      ++sink->suppressed;
      o.suppressed = true;
      out.push_back(std::move(o));
      continue;
    }
    const std::uint64_t suppressed = sink->suppressed;
    switch (sink->kind) {
      case Sink::Kind::webhook:
        o.error = post_webhook(sink->config.webhook, alert_json(alert, suppressed).dump());
        break;
      case Sink::Kind::syslog:
        ::openlog("smtpguard", LOG_PID, LOG_MAIL);
        ::syslog(alert.severity == "critical" ? LOG_ALERT : LOG_WARNING, "%s",
                 one_line("ALERT " + alert.title + suppressed_note(suppressed)).c_str());
        break;
      case Sink::Kind::exec:
        o.error = run_program(sink->config.exec, alert_json(alert, suppressed).dump() + "\n",
                              std::chrono::seconds(30));
        break;
      case Sink::Kind::email: {
        std::string from =
            sink->config.email_from.empty() ? "smtpguard@" + alert.host : sink->config.email_from;
        std::string id = std::to_string(alert.time) + "." + random_hex(8) + "@" + alert.host;
        std::string data = alert_email(alert, suppressed, from, sink->config.email, id);
        if (!sink->config.email_upstream.empty()) {
          auto it = std::find_if(upstreams_.begin(), upstreams_.end(), [&](const auto& u) {
            return u.name == sink->config.email_upstream;
          });
          auto login = logins_.find(sink->config.email_upstream);
          if (it == upstreams_.end())
            o.error = "no [upstream." + sink->config.email_upstream + "]";
          else if (auto sent = send_mail(*it, login == logins_.end() ? nullptr : &login->second,
                                         from, sink->config.email, data);
                   !sent)
            o.error = sent.error().message;
          break;
        }
        o.error = send_direct(alert.host, from, sink->config.email, data);
        break;
      }
    }
    o.sent = o.error.empty();
    if (o.sent) sink->suppressed = 0;
    out.push_back(std::move(o));
  }
  return out;
}

Result<std::vector<std::string>> lookup_mx(const std::string& domain) {
  if (domain.empty()) return make_error(Errc::invalid_input, "no domain to look up");
  unsigned char answer[4096];
  struct __res_state state {};
  if (res_ninit(&state) != 0) return make_error(Errc::io, "cannot initialise the resolver");
  int len = res_nquery(&state, domain.c_str(), ns_c_in, ns_t_mx, answer, sizeof answer);
  const int herr = state.res_h_errno;  // why len < 0 (h_errno is per thread, this per query)
  std::vector<std::pair<int, std::string>> hosts;
  bool null_mx = false;
  if (len > 0) {
    ns_msg msg;
    if (ns_initparse(answer, len, &msg) == 0) {
      for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_mx) continue;
        if (ns_rr_rdlen(rr) < 3) continue;
        int preference = ns_get16(ns_rr_rdata(rr));
        char name[NS_MAXDNAME];
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2, name, sizeof name) <
            0)
          continue;
        if (name[0] == '\0')
          null_mx = true;  // RFC 7505: the domain accepts no mail
        else
          hosts.emplace_back(preference, name);
      }
    }
  }
  res_nclose(&state);
  if (hosts.empty() && null_mx)
    return make_error(Errc::not_found, "mail domain " + domain + " accepts no mail (null MX)");
  if (len < 0 && herr == HOST_NOT_FOUND)
    return make_error(Errc::not_found, "mail domain " + domain + " does not exist (NXDOMAIN)");
  // The implicit MX (RFC 5321 5.1) is for a domain that has no MX records,
  // not for one whose lookup failed: a DNS outage is reported as such.
  if (len < 0 && herr != NO_DATA)
    return make_error(
        Errc::temp_failure,
        "cannot look up the MX of " + domain + ": " +
            (herr == TRY_AGAIN ? "DNS server failure or timeout, try again later"
                               : "DNS lookup failed (" + std::string(hstrerror(herr)) + ")"));
  if (hosts.empty()) return std::vector<std::string>{domain};
  std::stable_sort(hosts.begin(), hosts.end());
  std::vector<std::string> out;
  for (auto& h : hosts) out.push_back(std::move(h.second));
  return out;
}

}  // namespace sg::monitor
