#!/bin/sh
# Installs what sharebus needs to build and test, if missing: Debian
# packages (root or sudo), and the Python peer the real-broker tests use.
# Idempotent: does nothing when everything is there.
set -eu

PKGS="build-essential cmake ninja-build pkg-config clang-format sqlite3
librdkafka-dev libavro-dev libjansson-dev libsodium-dev libsqlite3-dev
libssl-dev libcmocka-dev openssl openjdk-17-jre-headless maven python3-pip"

missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
                missing="$missing $p"
done
if [ -n "$missing" ]; then
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
fi

# The real-broker tests read a reuser stream with an independent peer:
# confluent-kafka (its own librdkafka) and fastavro, from PyPI, and checks
# its signatures with cryptography's Ed25519.
if ! python3 -c 'import confluent_kafka, fastavro, cryptography' 2>/dev/null
then
        echo "installing: confluent-kafka fastavro cryptography (PyPI)"
        python3 -m pip install --quiet confluent-kafka fastavro \
                cryptography 2>/dev/null ||
                python3 -m pip install --quiet --break-system-packages \
                        confluent-kafka fastavro cryptography
fi
