#!/usr/bin/env bash
# Installs Debian's Chromium (for the web console's browser tests) when it is missing. Silent
# when it is already there. The tests drive it with playwright-core, which never downloads a
# browser of its own: they launch /usr/bin/chromium headless.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-chromium: chromium is missing; run this script as root to install it" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install-chromium: installing chromium from the Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# The fonts give screenshots readable text; without them headless Chromium draws boxes.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)" >&2
