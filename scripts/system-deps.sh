#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: Debian's chromium (browser tests) and
# Debian's postgresql (the store tests start a throwaway cluster from its binaries; SQLite needs nothing).
# Idempotent; needs root (CI and the development machines run as root). Prints loudly when it cannot.
set -u
need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "!!! system-deps: cannot install ${need[*]} (need root and apt-get); tests that use them will be skipped" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || echo "!!! system-deps: apt-get update failed" >&2
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
  echo "!!! system-deps: apt-get install ${need[*]} FAILED; tests that need them will be skipped" >&2
fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1; then
  echo "!!! system-deps: PostgreSQL could not be installed; the PostgreSQL store tests will be SKIPPED (SQLite only)" >&2
fi
exit 0
