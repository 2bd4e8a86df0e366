// net: the I/O side of talking SMTP to an upstream (SES or a smarthost).
// Drives the sans-I/O smtp::ClientSession over TCP with asio (C++20
// coroutines) and OpenSSL: TLS 1.2 minimum, certificate chain and host name
// always verified (system store or the upstream's ca_file; there is no switch
// to turn verification off), per-operation timeouts.
// Trusts nothing the server sends (the session parses it); reports every
// failure as a Result error whose message names the server and the step.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "config/config.hpp"
#include "smtp/smtp.hpp"

namespace sg::net {

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;
  std::string peer;  // certificate subject
};

struct SendOutcome {
  bool accepted = false;                       // accepted for at least one recipient
  smtp::Reply final_reply;                     // DATA reply, or the reply that ended it
  std::vector<smtp::Reply> recipient_replies;  // one per envelope recipient
};

// The client TLS context of one upstream: TLS >= 1.2, peer verification on,
// trust from `ca_pem` (the upstream's ca_file, read beforehand), from
// upstream.ca_file, or the system store. Loading a trust store is costly, so
// a pool makes one and shares it between its sessions.
using ClientTls = std::shared_ptr<asio::ssl::context>;
Result<ClientTls> make_client_tls(const config::Upstream& upstream,
                                  const std::string* ca_pem = nullptr);

// Callback for a human-readable trace of the dialogue (never secrets).
using Trace = std::function<void(const std::string&)>;

class UpstreamClient {
 public:
  // `password` may be null when the upstream needs no login; it is not
  // owned and must outlive the client.
  // `ca_pem`, when given, replaces reading upstream.ca_file (a process that
  // dropped privileges reads the file beforehand).
  UpstreamClient(asio::io_context& io, const config::Upstream& upstream, std::string username,
                 const Secret* password, Trace trace = {}, const std::string* ca_pem = nullptr);
  // With a context from make_client_tls (shared; not null).
  UpstreamClient(asio::io_context& io, const config::Upstream& upstream, std::string username,
                 const Secret* password, ClientTls tls, Trace trace = {});
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // Connect, greeting, EHLO, STARTTLS (or implicit TLS), AUTH: ready to send.
  asio::awaitable<Result<void>> open();
  // One transaction on an open session.
  asio::awaitable<Result<SendOutcome>> send(smtp::Message&& message);
  // QUIT and close; errors are ignored (the work is done by then).
  asio::awaitable<void> quit();

  const std::optional<TlsInfo>& tls() const;
  const smtp::Capabilities& capabilities() const;
  bool authenticated() const;
  // After a failed send(): false when the message content never left, so
  // retrying on a new session cannot duplicate it.
  bool body_sent() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs `body` on a fresh io_context until it completes (CLI helper).
// Coroutines here take class-type arguments by reference: g++ 12 may copy
// by-value coroutine parameters bitwise.
template <class T>
T run_blocking(const std::function<asio::awaitable<T>(asio::io_context&)>& body);

}  // namespace sg::net

#include "net/run_blocking.hpp"
