#!/bin/sh
# What `make bench` needs besides Python packages: wrk (the HTTP load generator). A no-op
# when wrk is already installed; otherwise Debian's package, after `apt-get update`.
set -eu
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench/setup.sh: wrk is missing and there is no apt-get; install wrk by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq wrk
