#!/usr/bin/env bash
# Checks every deployment file:
#   deploy/systemd/verify.sh       systemd units and sysusers.d file (systemd-analyze)
#   deploy/kubernetes/validate.sh  Kubernetes manifests (schemas, kustomize, cross-checks)
#   deploy/docker/Dockerfile       a non-root USER and a .dockerignore (no image is built here)
#   deploy/prometheus/             the alert rules (promtool check rules) and their unit
#                                  test (promtool test rules: each alert fires from
#                                  synthetic series, a healthy daemon fires none)
# Installs what is missing: systemd's tools and promtool (Debian package prometheus) with
# apt-get (as root, Debian), the Python tools into venvs under ${TMPDIR:-/tmp} that later
# runs reuse. Safe to run repeatedly.
#
# Usage: deploy/check.sh [ROSTER_BINARY]   (e.g. target/debug/roster; optional, see the
# two scripts for what they do without one)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-}
failed=()

missing=()
if ! command -v systemd-analyze >/dev/null || ! command -v systemd-sysusers >/dev/null; then
  missing+=(systemd)
fi
command -v promtool >/dev/null || missing+=(prometheus)
if [ "${#missing[@]}" -ne 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "== apt-get install ${missing[*]} (for systemd-analyze and promtool)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "check.sh: missing tools; install them (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

echo "==== deploy/systemd/verify.sh"
bash deploy/systemd/verify.sh ${bin:+"$bin"} || failed+=(deploy/systemd/verify.sh)

echo "==== deploy/kubernetes/validate.sh"
bash deploy/kubernetes/validate.sh ${bin:+"$bin"} || failed+=(deploy/kubernetes/validate.sh)

echo "==== deploy/prometheus: promtool check rules, promtool test rules"
if promtool check rules deploy/prometheus/roster-rules.yaml \
  && (cd deploy/prometheus && promtool test rules roster-rules.test.yaml); then
  echo "ok: alert rules valid, their unit test passes"
else
  failed+=(deploy/prometheus)
fi

# The Dockerfile is not linted here: the hadolint packages on the registries this CI
# reaches are third-party repackagings of a binary, and no image can be built without a
# Docker engine. It was checked once by hand (see docs/deployment.md).
echo "==== deploy/docker/Dockerfile and .dockerignore"
grep -q '^USER ' deploy/docker/Dockerfile || { echo "FAIL: the image must not run as root"; failed+=(Dockerfile); }
for pattern in .git target; do
  grep -qx "$pattern" .dockerignore || { echo "FAIL: .dockerignore lacks $pattern"; failed+=(.dockerignore); }
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "check.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "check.sh: deployment files OK"
