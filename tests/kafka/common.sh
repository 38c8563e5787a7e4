# shellcheck shell=sh
# sharebus real-broker harness - helpers sourced by kafka-fetch.sh and
# broker.sh (not executable on its own).

# Prints a message on stderr, prefixed with the calling script's name.
sb_log() {
        printf '%s: %s\n' "${0##*/}" "$*" >&2
}

sb_die() {
        sb_log "$*"
        exit 1
}

# sb_need CMD:PACKAGE... installs the Debian packages whose command is
# missing. The harness must work on a fresh Debian 12 machine (CI starts from
# one), and Java/Maven are only needed by this tier, so they are installed
# here rather than by scripts/install-deps.sh for every developer.
sb_need() {
        missing=""
        for pair in "$@"; do
                command -v "${pair%%:*}" >/dev/null 2>&1 ||
                        missing="$missing ${pair#*:}"
        done
        [ -z "$missing" ] && return 0
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then
                command -v sudo >/dev/null 2>&1 ||
                        sb_die "missing commands; run as root or install:$missing"
                sudo=sudo
        fi
        sb_log "installing:$missing"
        # Bounded: a stuck mirror must fail the run, not hang it.
        $sudo env DEBIAN_FRONTEND=noninteractive timeout 600 \
                apt-get update -qq ||
                sb_die "apt-get update failed"
        # shellcheck disable=SC2086 # one word per package, on purpose
        $sudo env DEBIAN_FRONTEND=noninteractive timeout 900 \
                apt-get install -y -qq --no-install-recommends $missing ||
                sb_die "apt-get install$missing failed"
}
