// integrate: moving a host onto smtpguard (issue 5).
//  - exim.hpp: `integrate exim` (smarthost to the relay, or the legacy
//    passwd.client mode), render/check/install/undo of Exim's files.
//  - mta.hpp: `integrate postfix` and `integrate php`.
//  - import.hpp: finding plaintext upstream credentials in Exim, Postfix,
//    msmtp, .env, wp-config.php and PHPMailer files, and scrubbing them.
// Trust: the files read are the host's own configuration, but they are
// parsed as untrusted text (bounded, never executed, no exceptions past
// this module); errors are Result values with a one-line message naming
// the file and, where there is one, the line.
#pragma once

#include "integrate/exim.hpp"
#include "integrate/import.hpp"
#include "integrate/mta.hpp"
