# Debian 12 packages smtpguard needs; sourced by setup.sh and test.sh.
BUILD_PACKAGES="build-essential cmake pkg-config libsodium-dev libssl-dev libasio-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev openssl
  ca-certificates libsystemd-dev libhyperscan-dev libgit2-dev libcpp-httplib-dev
  libcurl4-openssl-dev libxxhash-dev"
# Test peers and test tooling: GoogleTest, clang 14 + libFuzzer runtime, real SMTP peers.
TEST_PACKAGES="libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev
  python3 python3-aiosmtpd swaks msmtp php-cli libphp-phpmailer iproute2 util-linux
  python3-jsonschema ripgrep chromium exim4-daemon-heavy git dnsmasq-base"

# Installs whatever of the given packages is missing (needs root or sudo).
install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The unprivileged user the relay's receiver runs as.
ensure_service_user() {
  id smtpguard >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin smtpguard
}
