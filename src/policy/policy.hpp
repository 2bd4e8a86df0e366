// policy: who a local client is and what it may send.
//  - identity.hpp: Identity (password login, unix uid, or CIDR address
//    rule), IdentityTable built from [[client]] tables plus the client
//    store, by_peer / authenticate (Argon2id).
//  - address.hpp: strict local@domain parsing and allowed_senders patterns
//    ("<>", exact, "*@domain", "*@*.domain"); no substring matching, so
//    percent hacks, quoted '@', source routes, bang paths, address literals
//    and double '@' never match a pattern they should not.
//  - decision.hpp: Verdicts (SMTP code, enhanced code, text, rule) for MAIL,
//    RCPT and end of DATA, including header From/Sender and on_limit.
//  - rate.hpp: RateCounters, sliding minute/hour/day windows (serialisable).
//  - store.hpp: ClientStore, STATE_DIR/clients.json (the one place with
//    file I/O; user names are resolved there too).
// Trust: addresses, messages, peers and the store/counter files are
// untrusted; nothing throws for bad input (only std::bad_alloc) or aborts.
// Errors are Result<T> with one-line messages; decisions are Verdicts whose
// texts never hold secrets and quote untrusted text only via printable().
// Time is always a parameter (unix seconds); there are no clock reads.
#pragma once

#include "policy/address.hpp"
#include "policy/cidr.hpp"
#include "policy/decision.hpp"
#include "policy/identity.hpp"
#include "policy/rate.hpp"
#include "policy/store.hpp"
