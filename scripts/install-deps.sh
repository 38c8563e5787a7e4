#!/bin/sh
# Installs the Debian packages sharebus needs to build and test, if missing.
# Needs root (or sudo). Idempotent: does nothing when everything is there.
set -eu

PKGS="build-essential cmake ninja-build pkg-config clang-format sqlite3
librdkafka-dev libavro-dev libjansson-dev libsodium-dev libsqlite3-dev
libssl-dev libcmocka-dev openssl openjdk-17-jre-headless maven"

missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
                missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
                echo "install-deps: run as root or install:$missing" >&2
                exit 1
        }
        SUDO=sudo
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
