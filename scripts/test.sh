#!/usr/bin/env bash
# Runs the whole test suite. The LDAP source tests start a real OpenLDAP server (slapd)
# on a loopback port; this installs slapd and ldap-utils when they are missing
# (Debian/Ubuntu, as root). Debian's slapd has TLS built in (GnuTLS); the ldaps:// and
# StartTLS tests make their CA and certificates in process (rcgen), so they need nothing
# more. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! [ -x /usr/sbin/slapd ] || ! command -v ldapmodify >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "== installing slapd and ldap-utils (for the LDAP source tests)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils
  else
    echo "test.sh: the LDAP tests need OpenLDAP: sudo apt-get install slapd ldap-utils" >&2
    exit 1
  fi
fi

cargo test --workspace "$@"
