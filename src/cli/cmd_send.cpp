#include <sysexits.h>
#include <unistd.h>

#include <iostream>

#include "base/text.hpp"
#include "cli/cli.hpp"
#include "cli/message_input.hpp"
#include "cli/upstream_access.hpp"
#include "net/net.hpp"
#include "ses/ses.hpp"
#include "smtp/message_headers.hpp"

namespace sg::cli {
namespace {

struct SendOptions {
  bool direct = false;
  std::string upstream;
  std::string from;
  bool from_given = false;
  bool read_recipients = false;  // -t
  bool ignore_dots = false;      // -i: accepted; the message always ends at EOF
  std::vector<std::string> recipients;
  std::optional<int> passphrase_fd;
};

std::string with_ses_hint(const config::Upstream& up, const Error& e) {
  if (e.code != Errc::auth || !ses::is_ses_host(up.host)) return e.message;
  return e.message + " (" + ses::classify_reply(535, "").hint + ")";
}

int run_send(const Globals& globals, const SendOptions& opts) {
  if (!opts.direct)
    return fail(EX_USAGE,
                "send needs --direct (submit straight upstream); applications submit through "
                "`smtpguard sendmail` or SMTP to the relay");
  auto access = open_upstream(globals, opts.upstream, opts.passphrase_fd);
  if (!access) return fail(access.error());
  auto data = read_message(STDIN_FILENO, access->config.relay.max_message_size, false);
  if (!data) return fail(data.error());
  EnvelopeRequest req{opts.from, opts.from_given, "", opts.read_recipients, false, opts.recipients};
  auto msg = build_message(req, std::move(*data));
  if (!msg) return fail(EX_USAGE, msg.error().message);
  const auto& up = access->upstream;
  const Secret* password = access->credential ? &access->credential->password : nullptr;
  std::string username = access->credential ? access->credential->username : "";
  std::vector<std::string> rcpts = msg->envelope.rcpt_to;

  auto result = net::run_blocking<Result<net::SendOutcome>>(
      [&](asio::io_context& io) -> asio::awaitable<Result<net::SendOutcome>> {
        net::UpstreamClient client(io, up, username, password);
        auto opened = co_await client.open();
        if (!opened) {
          co_await client.quit();
          co_return opened.error();
        }
        auto sent = co_await client.send(std::move(*msg));
        co_await client.quit();
        co_return sent;
      });
  if (!result) {
    Error e = result.error();
    e.message = with_ses_hint(up, e);
    return fail(e);
  }
  int worst = EX_OK;
  for (std::size_t i = 0; i < rcpts.size(); ++i) {
    const auto& r = result->recipient_replies[i];
    if (r.code == 0 || r.positive()) continue;
    std::cerr << "smtpguard: <" << rcpts[i] << ">: " << r.to_string() << "\n";
    worst = std::max(worst, r.permanent() ? EX_UNAVAILABLE : EX_TEMPFAIL);
  }
  const auto& final_reply = result->final_reply;
  if (!result->accepted) {
    std::cerr << "smtpguard: " << up.host << " refused the message: " << final_reply.to_string()
              << "\n";
    return final_reply.transient() ? EX_TEMPFAIL : EX_UNAVAILABLE;
  }
  std::cout << final_reply.to_string() << "\n";
  // Accepted for some recipients but not all: report the worst of the rest.
  return worst == EX_UNAVAILABLE ? EX_UNAVAILABLE : worst;
}

}  // namespace

void add_send_command(CLI::App& app, Globals& globals) {
  auto opts = std::make_shared<SendOptions>();
  auto* cmd =
      app.add_subcommand("send", "Send one message from stdin straight upstream (admin use)");
  cmd->footer(
      "Submits one RFC 5322 message from stdin straight to an upstream with the sealed\n"
      "credential (applications go through the relay instead). Prints the upstream's\n"
      "reply, for SES the message id. Exit 0 when accepted for every recipient, 75 on 4xx,\n"
      "69 on 5xx, 77 when the credential is refused, 78 on configuration errors.");
  cmd->add_flag("--direct", opts->direct, "Deliver straight upstream (required)");
  cmd->add_option("--upstream", opts->upstream,
                  "Upstream name; optional when only one is configured");
  cmd->add_option("-f,--from", opts->from,
                  "Envelope sender (default: the From: header); \"<>\" for the null sender")
      ->each([opts](const std::string&) { opts->from_given = true; });
  cmd->add_flag("-t", opts->read_recipients,
                "Also send to the To:, Cc: and Bcc: addresses; Bcc: is removed");
  cmd->add_flag("-i", opts->ignore_dots, "Accepted for sendmail compatibility (always on)");
  cmd->add_option("--passphrase-fd", opts->passphrase_fd,
                  "Read the vault passphrase from this file descriptor");
  cmd->add_option("recipients", opts->recipients, "Envelope recipients");
  cmd->callback([&globals, opts] { globals.exit_code = run_send(globals, *opts); });
}

}  // namespace sg::cli
