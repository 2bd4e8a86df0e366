// Internals of the scan module shared by its .cpp files: the trigger table,
// candidate findings, text helpers and the extractors that run around a
// trigger hit. Everything here works on untrusted bytes with explicit bounds
// and never throws past scan().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "scan/scan.hpp"

namespace sg::scan::detail {

// What a trigger hit asks for; one extractor per kind (extract_*.cpp).
enum class Kind : std::uint8_t {
  aws_key_id,      // (AKIA|ASIA)[A-Z2-7]{16}
  ses_v4,          // [^b64]B[A-P][b64]{42}
  ses_v2,          // [^b64]A[g-v][b64]{42}
  aws_secret_key,  // aws_secret_access_key = ...
  phpmailer,       // ->Password = '...'
  smtp_url,        // smtp://user:pass@host
  swift,           // ->setPassword('...')
  laravel,         // MAIL_PASSWORD=...
  wpms,            // define('WPMS_SMTP_PASS', '...')
  sql_option,      // s:4:"pass";s:N:"..." or "password":"..." near smtp settings
  msmtp,           // ^ password VALUE
  postfix,         // ^[host]:port user:pass
  mail_host,       // email-smtp.<region>... : postfix or exim line
  exim_send,       // client_send = : user : pass
  generic,         // smtp_pass = ...
};

struct Trigger {
  const char* pattern;  // a literal unless `regex`
  unsigned flags;       // Hyperscan flags
  std::size_t length;   // length of a literal/fixed match, 0 when variable
  Kind kind;
  bool regex = false;
};
const std::vector<Trigger>& triggers();

// What kind of file the path names; decides file-type context.
struct FileInfo {
  bool dotenv = false;          // .env, .env.production, ...
  bool literal_config = false;  // ini/yaml/conf/toml/properties: unquoted values are literal
  bool msmtprc = false;
  bool sasl_passwd = false;
  bool passwd_client = false;
};
FileInfo classify_path(std::string_view path);

// A finding before line/column, redaction and fingerprint.
struct Candidate {
  std::string_view rule;  // a rule id from rules()
  Severity severity = Severity::medium;
  std::size_t offset = 0;
  std::size_t length = 0;
  std::string username, host;
  std::uint16_t port = 0;
  std::string message;
};

struct Ctx {
  std::string_view text;
  std::string_view path;
  FileInfo file;
  std::vector<Candidate>* out;
  void add(Candidate c) const { out->push_back(std::move(c)); }
};

// Extractors: `end` is the offset just past the trigger match.
void extract_keys(const Ctx& ctx, Kind kind, std::size_t end);                    // aws/ses
void extract_app(const Ctx& ctx, Kind kind, std::size_t start, std::size_t end);  // php, url, env
void extract_mta(const Ctx& ctx, Kind kind, std::size_t end);  // msmtp, postfix, exim
void extract_sql(const Ctx& ctx, std::size_t start, std::size_t end);
void extract_named_files(const Ctx& ctx);  // whole-file formats chosen by name
void check_ses_at_start(const Ctx& ctx);   // a SES token at offset 0 (no delimiter before it)

// --- placeholders (placeholder.cpp; the one list of them) ---
// True when `value` is a template, an example or empty rather than a secret.
bool is_placeholder(std::string_view value);
// The part of is_placeholder that applies to user names and hosts too: empty,
// templates and lookups (not "example" words: example.com is a fine host).
bool is_template(std::string_view value);
// True when an unquoted value in code is a reference ($var, CONSTANT, obj.attr, call()).
bool is_code_reference(std::string_view value);

// --- text helpers (text.cpp) ---
inline bool is_b64(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}
inline bool is_alnum(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
inline bool is_ident(unsigned char c) {
  return is_alnum(c) || c == '_';
}
inline bool is_blank(unsigned char c) {
  return c == ' ' || c == '\t';
}

struct Span {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};
// Start of the line holding `pos` and end of it (before CR/LF); bounded scans.
std::size_t line_begin(std::string_view t, std::size_t pos);
std::size_t line_end(std::string_view t, std::size_t pos);
// `before` lines above through `after` lines below the line of `pos`, at most
// about 400 bytes per line.
Span lines_around(std::string_view t, std::size_t pos, int before, int after);

struct Value {
  Span span;  // the value without quotes
  bool quoted = false;
  char quote = 0;
};
// The value assigned after a key that ends at `pos`: skips a closing quote or
// bracket of the key, blanks, one of `=`, `:`, `=>`, `:=`, `,` (define) or `>`
// (XML), blanks, then a quoted string or an unquoted token on the same line.
bool assigned_value(std::string_view t, std::size_t pos, Value& v);
// The value starting at `pos` (after blanks): quoted, or a token; `xml` reads
// up to the next '<'.
bool read_value(std::string_view t, std::size_t pos, bool xml, Value& v);
// True if the unquoted value must be literal in this file (dotenv, ini, yaml).
bool value_is_secret(const Ctx& ctx, std::string_view t, const Value& v);

// Case-insensitive search for `needle` in t[from, to).
std::size_t ifind(std::string_view t, std::string_view needle, std::size_t from, std::size_t to);
bool icontains(std::string_view t, std::string_view needle);
// First assigned value of any key in `keys` (case-insensitive, whole word
// where the key starts or ends with a word character) in span `s`; empty when
// none or a placeholder.
std::string_view find_setting(std::string_view t, Span s,
                              const std::vector<std::string_view>& keys);
// Printable ASCII up to 255 bytes, else empty (never copies control bytes out).
std::string clean_field(std::string_view s);
std::uint16_t parse_port(std::string_view s);
// Host from "tls://host:port", "host;host2", "[host]": the first host name.
std::string clean_host(std::string_view s);

}  // namespace sg::scan::detail
