#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "net/net.hpp"

namespace sg::net {
namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);

bool is_ip_literal(const std::string& host) {
  asio::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The peer's certificate verification error, in words, or "".
std::string verify_failure(SSL* ssl) {
  long rc = SSL_get_verify_result(ssl);
  if (rc == X509_V_OK) return "";
  if (rc == X509_V_ERR_HOSTNAME_MISMATCH || rc == X509_V_ERR_IP_ADDRESS_MISMATCH)
    return "the certificate does not match the host name";
  return X509_verify_cert_error_string(rc);
}

}  // namespace

struct UpstreamClient::Impl {
  asio::io_context& io;
  const config::Upstream upstream;
  std::string username;
  const Secret* password;
  Trace trace;
  ClientTls tls_context;
  // Created after the context is fully set up: an SSL object copies the
  // context's verify mode when it is made.
  std::optional<asio::ssl::stream<tcp::socket>> stream_holder;
  asio::steady_timer timer{io};
  bool tls_active = false;
  std::optional<smtp::ClientSession> session;
  std::optional<TlsInfo> tls;
  bool authenticated = false;
  std::string where;  // "host:port" for messages
  std::string config_error;

  Impl(asio::io_context& io_, const config::Upstream& up, std::string user, const Secret* pw,
       Trace tr, ClientTls tls)
      : io(io_),
        upstream(up),
        username(std::move(user)),
        password(pw),
        trace(std::move(tr)),
        tls_context(std::move(tls)) {
    where = fmt::format("{}:{}", upstream.host, upstream.port);
    stream_holder.emplace(io, *tls_context);
  }

  asio::ssl::stream<tcp::socket>& stream() { return *stream_holder; }

  void say(const std::string& line) {
    if (trace) trace(line);
  }

  std::chrono::seconds timeout() const {
    return std::chrono::seconds(upstream.timeout_seconds ? upstream.timeout_seconds : 60);
  }

  Error io_error(std::string_view step, const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted)
      return make_error(Errc::timeout, fmt::format("{}: timed out during {}", where, step));
    return make_error(Errc::temp_failure,
                      fmt::format("{}: {} failed: {}", where, step, ec.message()));
  }

  // Writes everything the session wants to send. When AUTH lines are in the
  // buffer it is wiped afterwards.
  asio::awaitable<Result<void>> flush() {
    bool holds_secret = false;
    std::string out = session->take_output(&holds_secret);
    if (out.empty()) co_return Result<void>{};
    timer.expires_after(timeout());
    asio::error_code ec;
    if (tls_active) {
      auto r =
          co_await (asio::async_write(stream(), asio::buffer(out), kUse) || timer.async_wait(kUse));
      if (r.index() == 1)
        ec = asio::error::operation_aborted;
      else
        ec = std::get<0>(std::get<0>(r));
    } else {
      auto r = co_await (asio::async_write(stream().next_layer(), asio::buffer(out), kUse) ||
                         timer.async_wait(kUse));
      if (r.index() == 1)
        ec = asio::error::operation_aborted;
      else
        ec = std::get<0>(std::get<0>(r));
    }
    if (holds_secret) wipe(out.data(), out.size());
    if (ec) co_return io_error("write", ec);
    co_return Result<void>{};
  }

  asio::awaitable<Result<void>> read_into_session() {
    char buf[16384];
    timer.expires_after(timeout());
    asio::error_code ec;
    std::size_t n = 0;
    if (tls_active) {
      auto r =
          co_await (stream().async_read_some(asio::buffer(buf), kUse) || timer.async_wait(kUse));
      if (r.index() == 1)
        ec = asio::error::operation_aborted;
      else
        std::tie(ec, n) = std::get<0>(r);
    } else {
      auto r = co_await (stream().next_layer().async_read_some(asio::buffer(buf), kUse) ||
                         timer.async_wait(kUse));
      if (r.index() == 1)
        ec = asio::error::operation_aborted;
      else
        std::tie(ec, n) = std::get<0>(r);
    }
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      session->connection_lost();
      co_return Result<void>{};
    }
    if (ec) co_return io_error("read", ec);
    session->receive(std::string_view(buf, n));
    co_return Result<void>{};
  }

  asio::awaitable<Result<void>> handshake() {
    stream().set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    SSL* ssl = stream().native_handle();
    // Host name verification and SNI: the certificate must name the host we
    // were configured with, whether that is a DNS name or an IP address.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (is_ip_literal(upstream.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, upstream.host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, upstream.host.c_str(), 0);
      SSL_set_tlsext_host_name(ssl, upstream.host.c_str());
    }
    timer.expires_after(timeout());
    auto r = co_await (stream().async_handshake(asio::ssl::stream_base::client, kUse) ||
                       timer.async_wait(kUse));
    asio::error_code ec =
        r.index() == 1 ? asio::error::operation_aborted : std::get<0>(std::get<0>(r));
    if (ec) {
      std::string why = verify_failure(ssl);
      if (!why.empty())
        co_return make_error(
            Errc::tls, fmt::format("{}: TLS certificate verification failed: {}{}", where, why,
                                   upstream.ca_file.empty()
                                       ? " (system trust store; set ca_file for a private CA)"
                                       : " (trusted CAs from " + upstream.ca_file + ")"));
      if (ec == asio::error::operation_aborted)
        co_return make_error(Errc::timeout,
                             fmt::format("{}: timed out during TLS handshake", where));
      co_return make_error(Errc::tls,
                           fmt::format("{}: TLS handshake failed: {}", where, ec.message()));
    }
    // Belt and braces: never proceed without a verified peer certificate.
    if (SSL_get_verify_result(ssl) != X509_V_OK || SSL_get0_peer_certificate(ssl) == nullptr)
      co_return make_error(Errc::tls, where + ": TLS peer certificate was not verified");
    tls_active = true;
    tls = TlsInfo{SSL_get_version(ssl), SSL_get_cipher_name(ssl), ""};
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
      char name[512];
      X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
      tls->peer = name;
      X509_free(cert);
    }
    say(fmt::format("TLS established: {} {}, certificate {} verified for {}", tls->version,
                    tls->cipher, tls->peer, upstream.host));
    co_return Result<void>{};
  }

  // Runs the dialogue until an event the caller cares about arrives.
  // (Two event types rather than an initializer_list: g++ 12 miscompiles
  // initializer_list parameters of coroutines.)
  asio::awaitable<Result<smtp::Event>> until(smtp::EventType wanted, smtp::EventType also) {
    for (;;) {
      while (auto ev = session->next_event()) {
        switch (ev->type) {
          case smtp::EventType::Greeting:
            say("greeting: " + ev->reply.to_string());
            break;
          case smtp::EventType::Capabilities:
            say("EHLO: " + ev->reply.to_string());
            break;
          case smtp::EventType::StartTls: {
            say("STARTTLS: " + ev->reply.to_string());
            if (auto r = co_await flush(); !r) co_return r.error();
            if (auto r = co_await handshake(); !r) co_return r.error();
            session->tls_established();
            break;
          }
          case smtp::EventType::Authenticated:
            authenticated = true;
            say("AUTH as " + username + ": " + ev->reply.to_string());
            break;
          case smtp::EventType::Failed:
            co_return make_error(ev->error.code, where + ": " + ev->error.message);
          default:
            break;
        }
        if (ev->type == wanted || ev->type == also) co_return std::move(*ev);
      }
      if (auto r = co_await flush(); !r) co_return r.error();
      if (session->finished())
        co_return make_error(Errc::temp_failure, where + ": connection closed by the server");
      if (auto r = co_await read_into_session(); !r) co_return r.error();
    }
  }

  asio::awaitable<Result<void>> open() {
    if (!config_error.empty()) co_return make_error(Errc::config, config_error);
    smtp::ClientOptions options;
    options.ehlo_name = upstream.ehlo_name.empty() ? "localhost" : upstream.ehlo_name;
    options.starttls = upstream.tls == config::TlsMode::starttls;
    options.implicit_tls = upstream.tls == config::TlsMode::implicit;
    options.username = username;
    options.password = password;
    options.require_auth = password != nullptr;
    session.emplace(options);

    tcp::resolver resolver(io);
    timer.expires_after(timeout());
    auto resolved =
        co_await (resolver.async_resolve(upstream.host, std::to_string(upstream.port), kUse) ||
                  timer.async_wait(kUse));
    if (resolved.index() == 1)
      co_return make_error(Errc::timeout, where + ": timed out resolving the host name");
    auto [rec, endpoints] = std::get<0>(resolved);
    if (rec)
      co_return make_error(Errc::temp_failure,
                           fmt::format("{}: cannot resolve host: {}", where, rec.message()));
    timer.expires_after(timeout());
    auto connected = co_await (asio::async_connect(stream().next_layer(), endpoints, kUse) ||
                               timer.async_wait(kUse));
    if (connected.index() == 1) co_return io_error("connect", asio::error::operation_aborted);
    if (auto cec = std::get<0>(std::get<0>(connected))) co_return io_error("connect", cec);
    say("connected to " + where);
    if (upstream.tls == config::TlsMode::implicit) {
      if (auto r = co_await handshake(); !r) co_return r.error();
    }
    auto ready = co_await until(smtp::EventType::Ready, smtp::EventType::Ready);
    if (!ready) co_return ready.error();
    if (password != nullptr && !authenticated)
      co_return make_error(Errc::auth, where + ": the server did not ask for a login");
    co_return Result<void>{};
  }

  asio::awaitable<Result<SendOutcome>> send(smtp::Message&& message) {
    std::size_t rcpts = message.envelope.rcpt_to.size();
    session->submit(std::move(message));
    SendOutcome outcome;
    outcome.recipient_replies.resize(rcpts);
    for (;;) {
      auto ev = co_await until(smtp::EventType::RecipientResult, smtp::EventType::MessageDone);
      if (!ev) co_return ev.error();
      if (ev->type == smtp::EventType::RecipientResult) {
        if (ev->index < rcpts) outcome.recipient_replies[ev->index] = ev->reply;
        continue;
      }
      outcome.accepted = ev->accepted;
      outcome.final_reply = ev->reply;
      break;
    }
    auto ready = co_await until(smtp::EventType::Ready, smtp::EventType::Ready);
    (void)ready;  // the outcome stands even if the session dies right after
    co_return outcome;
  }

  asio::awaitable<void> quit() {
    if (session && !session->finished()) {
      session->quit();
      auto closed = co_await until(smtp::EventType::Closed, smtp::EventType::Closed);
      if (closed) say("QUIT: " + closed->reply.to_string());
    }
    asio::error_code ec;
    stream().next_layer().shutdown(tcp::socket::shutdown_both, ec);
    stream().next_layer().close(ec);
  }
};

Result<ClientTls> make_client_tls(const config::Upstream& upstream, const std::string* ca_pem) {
  auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  tls->set_verify_mode(asio::ssl::verify_peer);
  if (upstream.tls == config::TlsMode::none) return tls;  // never used for a handshake
  asio::error_code ec;
  if (ca_pem != nullptr && !upstream.ca_file.empty()) {
    tls->add_certificate_authority(asio::buffer(*ca_pem), ec);
  } else if (upstream.ca_file.empty()) {
    tls->set_default_verify_paths(ec);
  } else {
    tls->load_verify_file(upstream.ca_file, ec);
  }
  if (ec)
    return make_error(
        Errc::config,
        fmt::format("cannot load CA certificates{}: {}",
                    upstream.ca_file.empty() ? "" : " from " + upstream.ca_file, ec.message()));
  return tls;
}

namespace {

// A context that failed to load still makes a client; open() reports why.
ClientTls context_or_error(const config::Upstream& upstream, const std::string* ca_pem,
                           std::string& error) {
  auto tls = make_client_tls(upstream, ca_pem);
  if (tls) return *tls;
  error = tls.error().message;
  return std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
}

}  // namespace

UpstreamClient::UpstreamClient(asio::io_context& io, const config::Upstream& upstream,
                               std::string username, const Secret* password, Trace trace,
                               const std::string* ca_pem) {
  std::string error;
  ClientTls tls = context_or_error(upstream, ca_pem, error);
  impl_ = std::make_unique<Impl>(io, upstream, std::move(username), password, std::move(trace),
                                 std::move(tls));
  impl_->config_error = error;
}

UpstreamClient::UpstreamClient(asio::io_context& io, const config::Upstream& upstream,
                               std::string username, const Secret* password, ClientTls tls,
                               Trace trace)
    : impl_(std::make_unique<Impl>(io, upstream, std::move(username), password, std::move(trace),
                                   std::move(tls))) {}

UpstreamClient::~UpstreamClient() = default;

asio::awaitable<Result<void>> UpstreamClient::open() {
  try {
    co_return co_await impl_->open();
  } catch (const std::exception& e) {
    co_return make_error(Errc::temp_failure, impl_->where + ": " + e.what());
  }
}

asio::awaitable<Result<SendOutcome>> UpstreamClient::send(smtp::Message&& message) {
  try {
    co_return co_await impl_->send(std::move(message));
  } catch (const std::exception& e) {
    co_return make_error(Errc::temp_failure, impl_->where + ": " + e.what());
  }
}

asio::awaitable<void> UpstreamClient::quit() {
  try {
    co_await impl_->quit();
  } catch (const std::exception&) {
  }
}

const std::optional<TlsInfo>& UpstreamClient::tls() const {
  return impl_->tls;
}
const smtp::Capabilities& UpstreamClient::capabilities() const {
  return impl_->session->capabilities();
}
bool UpstreamClient::body_sent() const {
  return impl_->session && impl_->session->body_sent();
}
bool UpstreamClient::authenticated() const {
  return impl_->authenticated;
}

}  // namespace sg::net
