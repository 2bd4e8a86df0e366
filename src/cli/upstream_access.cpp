#include "cli/upstream_access.hpp"

#include <fmt/format.h>

namespace sg::cli {

Result<UpstreamAccess> open_upstream(const Globals& globals, const std::string& name,
                                     std::optional<int> passphrase_fd) {
  auto cfg = load_config(globals);
  if (!cfg) return cfg.error();
  const config::Upstream* up = nullptr;
  if (name.empty()) {
    if (cfg->upstreams.empty())
      return make_error(
          Errc::config,
          "no [upstream.NAME] is configured in " +
              (cfg->source.empty() ? std::string("the embedded defaults") : cfg->source.string()));
    if (cfg->upstreams.size() > 1) {
      std::string names;
      for (const auto& u : cfg->upstreams) names += (names.empty() ? "" : ", ") + u.name;
      return make_error(Errc::config, "several upstreams are configured (" + names +
                                          "): name one with --upstream");
    }
    up = &cfg->upstreams.front();
  } else {
    up = cfg->find_upstream(name);
    if (up == nullptr)
      return make_error(Errc::config, "no upstream called '" + name + "' is configured");
  }
  UpstreamAccess access{*cfg, *up, std::nullopt};
  if (!up->credential.empty()) {
    harden_process();
    auto cred = vault::load_credential(*cfg, up->credential, vault::KeyOptions{passphrase_fd});
    if (!cred) return cred.error();
    access.credential.emplace(std::move(*cred));
  }
  return access;
}

}  // namespace sg::cli
