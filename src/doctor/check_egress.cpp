// Direct outbound SMTP: can users other than root and smtpguard reach remote
// ports 25/465/587? Looks for an owner-match rule in the live ruleset
// (nft list ruleset, iptables-save, ip6tables-save) and in the saved rule
// files under root. Advice only: a host may rely on a security group.
#include <chrono>

#include "base/file.hpp"
#include "doctor/doctor.hpp"
#include "integrate/mta.hpp"

namespace sg::doctor {
namespace {

namespace fs = std::filesystem;

const std::string kFix =
    "allow remote ports 25/465/587 only to root and smtpguard (the deliverer), e.g.\n"
    "  nft add table inet smtpguard_egress\n"
    "  nft add chain inet smtpguard_egress out '{ type filter hook output priority 0; }'\n"
    "  nft add rule inet smtpguard_egress out oifname \"lo\" accept\n"
    "  nft add rule inet smtpguard_egress out tcp dport '{ 25, 465, 587 }' meta skuid '{ 0, "
    "smtpguard }' accept\n"
    "  nft add rule inet smtpguard_egress out tcp dport '{ 25, 465, 587 }' reject with tcp reset\n"
    "(save with: nft list ruleset > /etc/nftables.conf), or with iptables (and ip6tables):\n"
    "  iptables -A OUTPUT -o lo -j ACCEPT\n"
    "  iptables -A OUTPUT -p tcp -m multiport --dports 25,465,587 -m owner --uid-owner root -j "
    "ACCEPT\n"
    "  iptables -A OUTPUT -p tcp -m multiport --dports 25,465,587 -m owner --uid-owner smtpguard "
    "-j ACCEPT\n"
    "  iptables -A OUTPUT -p tcp -m multiport --dports 25,465,587 -j REJECT --reject-with "
    "tcp-reset\n"
    "On AWS, security groups cannot tell users apart but can narrow the rest: replace the "
    "allow-all egress rule (aws ec2 revoke-security-group-egress --group-id SG_ID "
    "--ip-permissions 'IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]') with the ports the host "
    "needs (aws ec2 authorize-security-group-egress --group-id SG_ID --ip-permissions "
    "'IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=0.0.0.0/0}]' "
    "'IpProtocol=tcp,FromPort=587,ToPort=587,IpRanges=[{CidrIp=0.0.0.0/0}]'), leaving port 25 "
    "closed";

}  // namespace

std::vector<Finding> check_egress(const Options& options) {
  std::string ruleset;
  std::vector<std::string> sources;
  if (options.run_firewall_tools) {
    const std::vector<std::vector<std::string>> tools = {
        {"nft", "list", "ruleset"}, {"iptables-save"}, {"ip6tables-save"}};
    for (auto argv : tools) {
      auto program = integrate::find_program(argv[0]);
      if (!program) continue;
      argv[0] = program->string();
      auto r = integrate::run_program(argv, std::chrono::seconds(10));
      if (!r || !r->ok()) continue;
      ruleset += r->output + "\n";
      sources.push_back(program->filename().string());
    }
  }
  for (const char* saved :
       {"/etc/nftables.conf", "/etc/iptables/rules.v4", "/etc/iptables/rules.v6",
        "/etc/sysconfig/iptables", "/etc/sysconfig/ip6tables"}) {
    const fs::path p = options.root / fs::path(saved).relative_path();
    auto text = read_file(p, 4u << 20);
    if (!text) continue;
    ruleset += *text + "\n";
    sources.push_back(p.string());
  }
  auto rules = analyse_firewall(ruleset);
  std::string looked;
  for (const auto& s : sources) looked += (looked.empty() ? "" : ", ") + s;
  if (rules.found())
    return {{"egress-rule", Severity::info, "a firewall rule limits outbound SMTP by user",
             "found an owner match and a drop/reject for ports 25/465/587 in: " + looked,
             "check that it lets only root and smtpguard through"}};
  return {{"egress-no-rule", Severity::low,
           "no egress rule found: any local user can connect to remote SMTP ports",
           "a PHP script or a compromised account can send mail directly, bypassing the relay's "
           "identities and limits (looked in: " +
               (looked.empty() ? std::string("no ruleset available") : looked) + ")",
           kFix}};
}

}  // namespace sg::doctor
