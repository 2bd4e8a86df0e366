// Dropping root for the processes that must not keep it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/result.hpp"

namespace sg::relay {

struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// When running as root: the configured user, else "smtpguard", else
// "nobody". When not root: nullopt (nothing to drop).
Result<std::optional<RunAs>> unprivileged_user(const std::string& configured);

// setgroups/setgid/setuid to `who` and checks root cannot be regained;
// then no_new_privs and no core dumps.
Result<void> drop_privileges(const RunAs& who);

// The process may never gain privileges or dump core (also when not root).
void lock_down_process();

}  // namespace sg::relay
