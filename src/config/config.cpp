// Entry points of the config module: defaults, parse, load_file. The TOML
// tree is walked section by section (sections.cpp); any problem found there
// is thrown as detail::ConfigFailure and turned into a Result error here, so
// nothing escapes parse() or load_file().
#include "config/config.hpp"

#include <new>

#include "base/file.hpp"
#include "config/sections.hpp"
#include "config/toml_reader.hpp"

namespace sg::config {

const Upstream* Config::find_upstream(std::string_view name) const {
  for (const auto& upstream : upstreams)
    if (upstream.name == name) return &upstream;
  return nullptr;
}

void detail::resolve_state_paths(Config& config) {
  if (config.vault.key.empty())
    config.vault.key = "file:" + (config.relay.state_dir / "master.key").string();
  if (config.vault.path.empty()) config.vault.path = config.relay.state_dir / "vault.sealed";
  if (config.monitor.audit_log.empty())
    config.monitor.audit_log = config.relay.state_dir / "audit.jsonl";
}

Config defaults() {
  Config config;
  detail::resolve_state_paths(config);
  return config;
}

Result<Config> parse(std::string_view toml_text, std::string_view source_name) {
  const std::string file = source_name.empty() ? std::string("<config>") : std::string(source_name);
  try {
    detail::reject_unsafe_non_ascii(toml_text, file);
    toml::table root = toml::parse(toml_text, file);
    Config config = detail::build_config(root, file);
    config.source = file;
    return config;
  } catch (const toml::parse_error& e) {
    return make_error(Errc::config, detail::location(file, e.source()) +
                                        "TOML syntax error: " + std::string(e.description()));
  } catch (const detail::ConfigFailure& failure) {
    return make_error(Errc::config, failure.message);
  } catch (const std::bad_alloc&) {
    throw;  // memory exhaustion is not a configuration problem
  } catch (const std::exception& e) {
    return make_error(Errc::config, file + ": cannot read configuration: " + e.what());
  }
}

Result<Config> load_file(const std::filesystem::path& path) {
  constexpr std::size_t kMaxConfigSize = 1u << 20;
  auto text = read_file(path, kMaxConfigSize);
  if (!text) {
    Errc code = text.error().code == Errc::not_found ? Errc::not_found : Errc::config;
    return make_error(code, text.error().message);
  }
  auto config = parse(*text, path.string());
  if (config) config->source = path;
  return config;
}

}  // namespace sg::config
