#!/usr/bin/env bash
# Run by `npm test` (pretest): the web console's browser tests drive Debian's chromium
# (playwright-core downloads no browser). Installs it when missing and we are root on
# Debian; otherwise says what to do — test/console.test.ts then fails with that message.
set -uo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the console browser tests" >&2
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null; then
    exit 0
  fi
fi
echo "chromium is not installed and could not be installed here (apt-get install chromium): test/console.test.ts will fail" >&2
exit 0
