#include "relay/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/secret.hpp"

namespace sg::relay {

Result<std::optional<RunAs>> unprivileged_user(const std::string& configured) {
  if (::geteuid() != 0) return std::optional<RunAs>{};
  for (const std::string& name : configured.empty()
                                     ? std::vector<std::string>{"smtpguard", "nobody"}
                                     : std::vector<std::string>{configured}) {
    if (const passwd* pw = ::getpwnam(name.c_str()); pw != nullptr) {
      if (pw->pw_uid == 0) return make_error(Errc::config, "user " + name + " is root");
      return std::optional<RunAs>(RunAs{name, pw->pw_uid, pw->pw_gid});
    }
  }
  return make_error(Errc::config, configured.empty()
                                      ? "neither user smtpguard nor nobody exists "
                                        "(create one: useradd --system --no-create-home smtpguard)"
                                      : "user " + configured + " does not exist");
}

void lock_down_process() {
  harden_process();
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

Result<void> drop_privileges(const RunAs& who) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0)
    return make_error(Errc::permission,
                      "cannot switch to user " + who.name + ": " + std::strerror(errno));
  if (::setuid(0) == 0 || ::geteuid() == 0)
    return make_error(Errc::permission, "root privileges could be regained after the switch");
  lock_down_process();
  return {};
}

}  // namespace sg::relay
