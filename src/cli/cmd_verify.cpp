#include <sysexits.h>

#include <iostream>

#include "cli/cli.hpp"
#include "cli/upstream_access.hpp"
#include "net/net.hpp"

namespace sg::cli {
namespace {

struct VerifyOptions {
  std::string upstream;
  std::optional<int> passphrase_fd;
};

int run_verify(const Globals& globals, const VerifyOptions& opts) {
  auto access = open_upstream(globals, opts.upstream, opts.passphrase_fd);
  if (!access) return fail(access.error());
  const auto& up = access->upstream;
  const Secret* password = access->credential ? &access->credential->password : nullptr;
  std::string username = access->credential ? access->credential->username : "";
  auto trace = [](const std::string& line) { std::cout << "  " << line << "\n"; };
  std::cout << "verifying upstream " << up.name << " (" << up.host << ":" << up.port << ")\n";
  auto result =
      net::run_blocking<Result<void>>([&](asio::io_context& io) -> asio::awaitable<Result<void>> {
        net::UpstreamClient client(io, up, username, password, trace);
        auto opened = co_await client.open();
        co_await client.quit();
        co_return opened;
      });
  if (!result) return fail(result.error());
  if (password == nullptr) {
    std::cout << "ok: connected; no credential configured, so no login was tried\n";
  } else {
    std::cout << "ok: logged in as " << username << "; no mail was sent\n";
  }
  return EX_OK;
}

}  // namespace

void add_verify_command(CLI::App& app, Globals& globals) {
  auto opts = std::make_shared<VerifyOptions>();
  auto* cmd = app.add_subcommand("verify", "Check an upstream's TLS and login; sends no mail");
  cmd->footer(
      "Connects, EHLO, STARTTLS (or implicit TLS), AUTH with the sealed credential, QUIT.\n"
      "Never sends mail. Exits 0 only when the login succeeded; 77 when the credential\n"
      "is refused, 69 when TLS verification fails, 75 when the server cannot be reached.");
  cmd->add_option("upstream", opts->upstream,
                  "Upstream name ([upstream.NAME]); optional when only one is configured");
  cmd->add_option("--passphrase-fd", opts->passphrase_fd,
                  "Read the vault passphrase from this file descriptor");
  cmd->callback([&globals, opts] { globals.exit_code = run_verify(globals, *opts); });
}

}  // namespace sg::cli
