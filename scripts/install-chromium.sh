#!/bin/sh
# Install Debian's chromium for the browser tests (tests/web), when it is missing. Playwright
# drives this system browser (it never downloads one of its own). Needs root (apt-get).
set -eu
if command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is missing: run this script as root (apt-get install -y chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q chromium; then
    apt-get update -q
    apt-get install -y -q chromium
fi
