// `smtpguard sendmail` (also when the binary is called as "sendmail"): the
// sendmail(8) interface PHP's mail() and cron use. Submits over the relay's
// unix socket, where the caller's uid is its identity.
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>

#include "base/random.hpp"
#include "base/text.hpp"
#include "cli/cli.hpp"
#include "cli/message_input.hpp"
#include "relay/listeners.hpp"

namespace sg::cli {
namespace {

constexpr const char* kSendmailHelp =
    "Usage: smtpguard sendmail [-t] [-i] [-f FROM] [-F NAME] [-bs] [--] [RECIPIENT...]\n"
    "\n"
    "sendmail(8)-compatible submission: reads a message on stdin and hands it to the\n"
    "running relay over its unix socket, where your uid is your identity (see\n"
    "`smtpguard client add NAME --uid USER`). Also works when the binary is\n"
    "installed or linked as `sendmail`; for PHP:\n"
    "  sendmail_path = \"/usr/sbin/smtpguard sendmail -t -i\"\n"
    "\n"
    "  -t          also send to the To:, Cc: and Bcc: addresses (Bcc: is removed)\n"
    "  -i, -oi     a line with a single dot does not end the message\n"
    "  -f FROM     envelope sender (also -r); \"<>\" for the null sender\n"
    "  -F NAME     full name for an added From: header\n"
    "  -bm         deliver mail (the default)\n"
    "  -bs         speak SMTP on stdin/stdout (relayed to the relay as it is)\n"
    "  -odi -odb -odq -oem -oep -v -U and other -o options are accepted and ignored\n"
    "\n"
    "A From:, Date: or Message-ID: header missing from the message is added.\n"
    "Exit codes: 0 accepted, 64 usage, 65 bad message, 69 refused (5xx), 75 try again\n"
    "later (4xx, relay not running), 77 refused by policy (5.7.x).\n";

struct SendmailArgs {
  EnvelopeRequest req;
  bool smtp_on_stdio = false;
  bool help = false;
};

Result<SendmailArgs> parse_args(const std::vector<std::string>& args) {
  SendmailArgs out;
  out.req.dot_ends_input = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::size_t skip) -> Result<std::string> {
      if (a.size() > skip) return a.substr(skip);
      if (i + 1 < args.size()) return args[++i];
      return make_error(Errc::invalid_input, "option " + a + " needs a value");
    };
    if (a == "--") {
      for (++i; i < args.size(); ++i) out.req.recipients.push_back(args[i]);
      break;
    }
    if (a.empty() || a[0] != '-') {
      out.req.recipients.push_back(a);
    } else if (a == "-h" || a == "--help") {
      out.help = true;
    } else if (a == "-t") {
      out.req.read_recipients = true;
    } else if (a == "-i" || a == "-oi") {
      out.req.dot_ends_input = false;
    } else if (a.rfind("-f", 0) == 0 || a.rfind("-r", 0) == 0) {
      auto v = value(2);
      if (!v) return v.error();
      out.req.from = *v;
      out.req.from_given = true;
    } else if (a.rfind("-F", 0) == 0) {
      auto v = value(2);
      if (!v) return v.error();
      out.req.full_name = *v;
    } else if (a == "-bs") {
      out.smtp_on_stdio = true;
    } else if (a == "-bm") {
    } else if (a.rfind("-b", 0) == 0) {
      return make_error(Errc::invalid_input, "mode " + a + " is not supported (only -bm and -bs)");
    } else if (a.rfind("-o", 0) == 0 || a == "-v" || a == "-U" || a == "-m" || a == "-n") {
      // Delivery-mode and legacy options: accepted and ignored.
    } else if (a == "-N" || a == "-R" || a == "-V" || a == "-X" || a == "-C" || a == "-B") {
      if (i + 1 < args.size()) ++i;  // these take a value we ignore
    } else {
      return make_error(Errc::invalid_input, "unknown option " + a);
    }
  }
  return out;
}

Result<int> connect_socket(const std::filesystem::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::io, std::string("socket: ") + std::strerror(errno));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof sa.sun_path) {
    ::close(fd);
    return make_error(Errc::config, "socket path too long: " + path.string());
  }
  std::memcpy(sa.sun_path, path.c_str(), path.native().size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return make_error(Errc::temp_failure, "cannot reach the relay at " + path.string() + ": " +
                                              why + " (is `smtpguard relay` running?)");
  }
  return fd;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// -bs: the caller speaks SMTP; we only carry bytes both ways.
int proxy_stdio(int sock) {
  pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {sock, POLLIN, 0}};
  char buf[16384];
  bool stdin_open = true;
  for (;;) {
    fds[0].fd = stdin_open ? STDIN_FILENO : -1;
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return EX_OSERR;
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock, buf, sizeof buf);
      if (n <= 0) return EX_OK;
      if (!write_all(STDOUT_FILENO, std::string_view(buf, static_cast<std::size_t>(n))))
        return EX_IOERR;
    }
    if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        stdin_open = false;
        ::shutdown(sock, SHUT_WR);
      } else if (!write_all(sock, std::string_view(buf, static_cast<std::size_t>(n)))) {
        return EX_IOERR;
      }
    }
  }
}

std::string local_user() {
  const passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "uid" + std::to_string(::getuid());
}

// What an MSA adds when the message lacks it (RFC 6409 section 8).
std::string complete_headers(std::string data, const smtp::Envelope& env,
                             const std::string& full_name) {
  std::string added;
  std::string eol = data.find("\r\n") != std::string::npos ? "\r\n" : "\n";
  if (smtp::header_values(data, "From").empty() && !env.mail_from.empty())
    added += "From: " + (full_name.empty() ? "" : "\"" + full_name + "\" ") + "<" + env.mail_from +
             ">" + eol;
  if (smtp::header_values(data, "Date").empty()) {
    char date[64];
    std::time_t t = std::time(nullptr);
    tm local{};
    ::localtime_r(&t, &local);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &local);
    added += std::string("Date: ") + date + eol;
  }
  if (smtp::header_values(data, "Message-ID").empty())
    added += "Message-ID: <" + random_hex(12) + "@" + local_hostname() + ">" + eol;
  return added + data;
}

int exit_code_for_reply(const smtp::Reply& r) {
  if (r.transient()) return EX_TEMPFAIL;
  if (r.enhanced && r.enhanced->subject == 7) return EX_NOPERM;
  return EX_UNAVAILABLE;
}

// Runs one SMTP transaction over the blocking socket.
int submit(int sock, smtp::Message message) {
  smtp::ClientOptions options;
  options.ehlo_name = local_hostname();
  smtp::ClientSession session(options);
  std::size_t rcpts = message.envelope.rcpt_to.size();
  std::vector<std::string> addresses = message.envelope.rcpt_to;
  std::optional<smtp::Message> pending(std::move(message));
  int result = EX_TEMPFAIL;
  std::vector<smtp::Reply> rcpt_replies(rcpts);
  char buf[16384];
  for (;;) {
    while (auto ev = session.next_event()) {
      switch (ev->type) {
        case smtp::EventType::Ready:
          if (pending) {
            session.submit(std::move(*pending));
            pending.reset();
          } else {
            session.quit();
          }
          break;
        case smtp::EventType::RecipientResult:
          if (ev->index < rcpts) rcpt_replies[ev->index] = ev->reply;
          break;
        case smtp::EventType::MessageDone:
          for (std::size_t i = 0; i < rcpts; ++i)
            if (rcpt_replies[i].code != 0 && !rcpt_replies[i].positive())
              std::cerr << "smtpguard: <" << addresses[i] << ">: " << rcpt_replies[i].to_string()
                        << "\n";
          if (ev->accepted) {
            result = EX_OK;
          } else {
            std::cerr << "smtpguard: refused: " << ev->reply.to_string() << "\n";
            result = exit_code_for_reply(ev->reply);
          }
          break;
        case smtp::EventType::Closed:
          return result;
        case smtp::EventType::Failed:
          std::cerr << "smtpguard: relay: " << ev->error.message << "\n";
          return result == EX_OK ? EX_OK : exit_code_for(ev->error.code);
        default:
          break;
      }
    }
    if (!write_all(sock, session.take_output())) {
      std::cerr << "smtpguard: lost the connection to the relay\n";
      return result == EX_OK ? EX_OK : EX_TEMPFAIL;
    }
    if (session.finished()) return result;
    ssize_t n = ::read(sock, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      session.connection_lost();
      continue;
    }
    session.receive(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

}  // namespace

int run_sendmail(const Globals& globals, const std::vector<std::string>& args) {
  auto parsed = parse_args(args);
  if (!parsed) return fail(EX_USAGE, parsed.error().message + " (see smtpguard sendmail --help)");
  if (parsed->help) {
    std::cout << kSendmailHelp;
    return EX_OK;
  }
  auto cfg = load_config(globals);
  if (!cfg) return fail(cfg.error());
  auto sock = connect_socket(relay::submit_socket_path(*cfg));
  if (!sock) return fail(sock.error());
  if (parsed->smtp_on_stdio) {
    int rc = proxy_stdio(*sock);
    ::close(*sock);
    return rc;
  }
  auto data = read_message(STDIN_FILENO, cfg->relay.max_message_size, parsed->req.dot_ends_input);
  if (!data) return fail(data.error());
  auto msg = build_message(parsed->req, std::move(*data), local_user() + "@" + local_hostname());
  if (!msg) return fail(EX_USAGE, msg.error().message);
  msg->data = complete_headers(std::move(msg->data), msg->envelope, parsed->req.full_name);
  int rc = submit(*sock, std::move(*msg));
  ::close(*sock);
  return rc;
}

}  // namespace sg::cli
