// Encoding of a message for the SMTP DATA phase (RFC 5321 sections 4.1.4,
// 4.5.2). Total function: any input bytes give a well-formed DATA payload.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sg::smtp {

// Normalises any line ending (LF, CR, CRLF) to CRLF, dot-stuffs lines starting
// with '.', drops NUL octets (RFC 5322 forbids them and some servers cut lines
// at them) and appends the final ".\r\n", adding a CRLF first if the data did
// not end with one. The result never holds a bare CR or LF, so no input can
// end the DATA phase early or smuggle a second transaction ("\n.\n", "\r.\r").
std::string encode_data(std::string_view message);

// Index of the first CR, LF or NUL in p[from, n), or n: the end of a run of
// ordinary octets, which both DATA directions copy whole. 16 bytes at a time
// where SSE2 is there (every x86-64), since message bodies are mostly runs.
std::size_t find_line_special(const char* p, std::size_t from, std::size_t n);

// True when `bytes` holds an octet >= 0x80 (needs BODY=8BITMIME or SMTPUTF8).
bool has_8bit(std::string_view bytes);

}  // namespace sg::smtp
