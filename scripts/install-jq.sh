#!/bin/sh
# Install Debian's jq, which the docs' curl walk-throughs use (and tests/docs runs them), when it
# is missing. Needs root (apt-get).
set -eu
if command -v jq >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "jq is missing: run this script as root (apt-get install -y jq)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q jq; then
    apt-get update -q
    apt-get install -y -q jq
fi
