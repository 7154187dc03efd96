#!/usr/bin/env bash
# Install headless Chromium for the report's browser test (tests/report/test_report_html.py) and for
# regenerating docs/report.png. Debian and Ubuntu images: the apt package `chromium`.
#
#   scripts/install-chromium.sh        # as root, or with sudo available
#
# Does nothing when a chromium, chromium-browser or google-chrome binary is already on PATH.
set -euo pipefail

for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "install-chromium: found $(command -v "$name")"
    exit 0
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-chromium: run as root or install sudo" >&2
    exit 1
  fi
  SUDO="sudo"
fi

$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
chromium --version
