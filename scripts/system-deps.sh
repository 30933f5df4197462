#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: Debian's chromium (browser tests),
# Debian's postgresql (the store tests start a throwaway cluster from its binaries; SQLite needs nothing) and
# Debian's orthanc with orthanc-dicomweb (the DICOMweb tests start a throwaway server from its binary).
# Idempotent; needs root (CI and the development machines run as root).
# When it cannot install them: with CI=true it exits 1 (CI must run every test, docs/testing.md); otherwise it
# says so loudly and exits 0, and the tests that need them are skipped with a reason.
set -u
ci=false
case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in 1|true|yes) ci=true ;; esac

missing() {  # the packages still missing
  local m=()
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || m+=(chromium)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1 || m+=(postgresql)
  [ -x /usr/sbin/Orthanc ] || m+=(orthanc)
  [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || compgen -G "/usr/lib/orthanc/libOrthancDicomWeb.so*" \
    >/dev/null 2>&1 || m+=(orthanc-dicomweb)
  echo "${m[*]:-}"
}

give_up() {  # $1: what went wrong
  if [ "$ci" = true ]; then
    echo "!!! system-deps: $1; CI=true, where every test must run: FAILING (exit 1)" >&2
    exit 1
  fi
  echo "!!! system-deps: $1; the tests that need them will be SKIPPED (they would FAIL with CI=true)" >&2
  exit 0
}

need=$(missing)
[ -z "$need" ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  give_up "cannot install $need (need root and apt-get)"
fi
echo "system-deps: installing $need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || echo "!!! system-deps: apt-get update failed" >&2
# shellcheck disable=SC2086  # one word per package
apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 || echo "!!! system-deps: apt-get install $need failed" >&2
still=$(missing)
[ -z "$still" ] || give_up "$still could not be installed"
exit 0
