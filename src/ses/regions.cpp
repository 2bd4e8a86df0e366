// SES SMTP regions and endpoint host names.
#include <array>

#include "base/text.hpp"
#include "ses/ses.hpp"

namespace sg::ses {
namespace {

// Regions listed with an email-smtp endpoint in the AWS General Reference.
// Not exhaustive for the future: callers warn about, never refuse, others.
constexpr std::array<std::string_view, 29> kRegions = {
    "us-east-1",      "us-east-2",      "us-west-1",      "us-west-2",      "ca-central-1",
    "ca-west-1",      "sa-east-1",      "eu-west-1",      "eu-west-2",      "eu-west-3",
    "eu-central-1",   "eu-central-2",   "eu-north-1",     "eu-south-1",     "il-central-1",
    "me-south-1",     "me-central-1",   "af-south-1",     "ap-south-1",     "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-5", "ap-northeast-1",
    "ap-northeast-2", "ap-northeast-3", "us-gov-west-1",  "us-gov-east-1",
};

// AWS region syntax: lower-case words joined by '-', ending in a number
// ("us-gov-west-1"). Keeps region_of_host from accepting arbitrary labels.
bool looks_like_region(std::string_view r) {
  if (r.empty() || r.size() > 32 || r.front() == '-' || r.back() == '-') return false;
  bool has_dash = false;
  for (char c : r) {
    if (c == '-') {
      has_dash = true;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return has_dash && r.back() >= '0' && r.back() <= '9' && r.find("--") == std::string_view::npos;
}

}  // namespace

std::span<const std::string_view> known_regions() {
  return kRegions;
}

bool is_known_region(std::string_view region) {
  for (std::string_view r : kRegions)
    if (r == region) return true;
  return false;
}

std::string smtp_host_for(std::string_view region) {
  return "email-smtp." + std::string(region) + ".amazonaws.com";
}

std::optional<std::string> region_of_host(std::string_view host) {
  std::string h = to_lower(host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  std::string_view v = h;
  constexpr std::string_view kSuffix = ".amazonaws.com";
  if (v.size() <= kSuffix.size() || v.substr(v.size() - kSuffix.size()) != kSuffix)
    return std::nullopt;
  v.remove_suffix(kSuffix.size());
  for (std::string_view prefix : {"email-smtp.", "email-smtp-fips."}) {
    if (v.substr(0, prefix.size()) == prefix) {
      std::string_view region = v.substr(prefix.size());
      if (looks_like_region(region)) return std::string(region);
    }
  }
  return std::nullopt;
}

bool is_ses_host(std::string_view host) {
  return region_of_host(host).has_value();
}

}  // namespace sg::ses
