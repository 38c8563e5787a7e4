#!/bin/bash
# Starts and stops the single-node Apache Kafka (KRaft) broker of the
# real-broker tests, configured from broker-config/server.properties.
#
#   broker.sh start          fresh certificates, storage and broker; waits
#                            until it answers (SB_BROKER_START_TIMEOUT, 90 s)
#   broker.sh stop [--clean] SIGTERM, up to 30 s, then SIGKILL (exit 2 then);
#                            --clean also removes what start made
#   broker.sh status         exit 0 when running, 3 when not
#   broker.sh env            prints the shell file tests read: addresses,
#                            CA, admin certificate, SCRAM user, classpath
#
# Environment:
#   SB_BROKER_DIR    work directory (default /tmp/sharebus-broker)
#   SB_BIN           the sharebus binary that makes the certificates
#                    (default build/sharebus in the source tree)
#   SB_CERTS         auto (default): `sharebus admin` when it answers
#                    `admin --help`, else the openssl CLI with a warning;
#                    sharebus or openssl to force one
#   SB_SCRAM_USER    SCRAM-SHA-512 user created at format time (alice.g1)
#   SB_KAFKA_HEAP    JVM heap options (default -Xms256m -Xmx512m)
#   SB_KAFKA_VERSION, SB_KAFKA_CACHE: see kafka-fetch.sh
#
# Bash, not sh: free ports are probed with /dev/tcp.
set -eEu
# set -e alone exits in silence; say which command failed, where.
trap 'sb_log "failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$here/common.sh"
root=$(cd "$here/../.." && pwd)

dir=${SB_BROKER_DIR:-/tmp/sharebus-broker}
sb_bin=${SB_BIN:-$root/build/sharebus}
template=$root/broker-config/server.properties
start_timeout=${SB_BROKER_START_TIMEOUT:-90}
scram_user=${SB_SCRAM_USER:-alice.g1}
admin=sb-admin.g1
heap=${SB_KAFKA_HEAP:--Xms256m -Xmx512m}

# The paths end up in a Java classpath (':'-separated), in properties files
# and in single-quoted shell assignments: keep them plain.
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
case $dir in
*[!A-Za-z0-9._/+-]*) sb_die "SB_BROKER_DIR '$dir': use letters, digits and ._/+- only" ;;
esac
# The user name goes into --add-scram's [name=...,password=...] syntax.
[[ $scram_user =~ ^[a-z][a-z0-9.-]*$ ]] ||
        sb_die "SB_SCRAM_USER '$scram_user': use lowercase letters, digits, '.' and '-'"

pidfile=$dir/broker.pid
props=$dir/server.properties
logs=$dir/logs

# ---------------------------------------------------------------- status

# The pid in broker.pid, if that process is still this directory's broker
# (a pid file can outlive its process, and the pid be reused).
broker_pid() {
        local pid
        [ -f "$pidfile" ] || return 1
        pid=$(cat "$pidfile")
        case $pid in '' | *[!0-9]*) return 1 ;; esac
        [ -r "/proc/$pid/cmdline" ] || return 1
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka $props" ||
                return 1
        echo "$pid"
}

cmd_status() {
        local pid
        if pid=$(broker_pid); then
                echo "running (pid $pid, $dir)"
                return 0
        fi
        echo "not running ($dir)"
        return 3
}

# ---------------------------------------------------------------- stop

# True while process $1 runs. A zombie has ended: its parent reaps it.
alive() {
        [ -e "/proc/$1" ] &&
                [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# Waits up to $2 seconds for process $1 to end.
wait_gone() {
        local i
        for ((i = 0; i < $2 * 10; i++)); do
                alive "$1" || return 0
                sleep 0.1
        done
        return 1
}

cmd_stop() {
        local pid rc=0 t0
        if pid=$(broker_pid); then
                t0=$SECONDS
                kill -TERM "$pid" 2>/dev/null || true
                if wait_gone "$pid" 30; then
                        sb_log "broker (pid $pid) stopped in $((SECONDS - t0)) s"
                else
                        # The broker hung in its shutdown: a defect worth a
                        # red test, but never a hung test run.
                        sb_log "broker (pid $pid) still running 30 s after SIGTERM: killing it"
                        kill -KILL "$pid" 2>/dev/null || true
                        wait_gone "$pid" 10 || sb_die "pid $pid survives SIGKILL"
                        rc=2
                fi
        else
                sb_log "no broker running from $dir"
        fi
        rm -f "$pidfile"
        if [ "${1:-}" = --clean ]; then
                # Only what start makes: SB_BROKER_DIR may be a directory
                # that holds other things.
                rm -rf "${dir:?}/ca" "$dir/secrets" "$dir/data" "$logs" \
                        "$props" "$dir/env" "$dir/admin-client.properties"
                rmdir "$dir" 2>/dev/null || true
        fi
        return $rc
}

# ---------------------------------------------------------------- certificates

# True when the sharebus binary has its `admin` command.
have_sharebus_admin() {
        [ -x "$sb_bin" ] && timeout 10 "$sb_bin" admin --help >/dev/null 2>&1
}

# The certificate functions run under `||` in make_certs, where bash ignores
# set -e: their commands are chained with && instead.

# openssl_issue CADIR NAME DAYS SERVER(0|1): the same files as
# `sharebus admin cert issue` (NAME.key 0600, NAME.crt, NAME.pem = key +
# certificate + CA certificate), for development before that command exists.
openssl_issue() {
        local ca=$1 name=$2 days=$3 server=$4 ext
        ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature"
        if [ "$server" = 1 ]; then
                # A broker is a client too: of the other brokers and of
                # the controllers.
                ext="$ext
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
        else
                ext="$ext
extendedKeyUsage=clientAuth"
        fi
        (umask 077 && openssl genpkey -algorithm EC \
                -pkeyopt ec_paramgen_curve:P-256 -out "$ca/$name.key") &&
                openssl req -new -key "$ca/$name.key" -subj "/CN=$name" \
                        -out "$ca/$name.csr" &&
                openssl x509 -req -in "$ca/$name.csr" -CA "$ca/ca.crt" \
                        -CAkey "$ca/ca.key" \
                        -set_serial "0x$(openssl rand -hex 16)" \
                        -days "$days" -sha256 \
                        -extfile <(printf '%s\n' "$ext") -out "$ca/$name.crt" &&
                rm -f "$ca/$name.csr" &&
                (umask 077 && cat "$ca/$name.key" "$ca/$name.crt" "$ca/ca.crt" \
                        >"$ca/$name.pem")
}

make_certs_openssl() {
        local ca=$1
        (umask 077 && mkdir -p "$ca" && openssl genpkey -algorithm EC \
                -pkeyopt ec_paramgen_curve:P-256 -out "$ca/ca.key") &&
                openssl req -new -x509 -key "$ca/ca.key" \
                        -subj "/CN=sharebus test CA" -days 30 -sha256 \
                        -addext basicConstraints=critical,CA:TRUE \
                        -addext keyUsage=critical,keyCertSign,cRLSign \
                        -out "$ca/ca.crt" &&
                openssl_issue "$ca" broker 30 1 &&
                openssl_issue "$ca" "$admin" 2 0
}

make_certs_sharebus() {
        local ca=$1
        "$sb_bin" admin ca init --dir "$ca" &&
                "$sb_bin" admin cert issue --dir "$ca" --principal broker \
                        --server --dns localhost --ip 127.0.0.1 --days 30 &&
                "$sb_bin" admin cert issue --dir "$ca" --principal "$admin" \
                        --days 2
}

make_certs() {
        local ca=$dir/ca mode=${SB_CERTS:-auto} f
        case $mode in
        auto)
                if have_sharebus_admin; then mode=sharebus; else mode=openssl; fi
                ;;
        sharebus | openssl) ;;
        *) sb_die "SB_CERTS '$mode': use auto, sharebus or openssl" ;;
        esac
        if [ "$mode" = openssl ]; then
                cat >&2 <<EOF
************************************************************************
* WARNING: '$sb_bin admin' is not available; the test certificates
* are made with the openssl CLI instead. The broker tests then do NOT
* exercise sharebus's own certificate issuance. Build sharebus with its
* admin command (or set SB_BIN) to test the real thing.
************************************************************************
EOF
                make_certs_openssl "$ca" >"$logs/certs.log" 2>&1 ||
                        { cat "$logs/certs.log" >&2; sb_die "openssl could not make the test certificates"; }
        else
                make_certs_sharebus "$ca" >"$logs/certs.log" 2>&1 ||
                        { cat "$logs/certs.log" >&2; sb_die "'$sb_bin admin' could not make the test certificates"; }
        fi
        for f in ca.crt broker.pem "$admin.crt" "$admin.key"; do
                [ -s "$ca/$f" ] || sb_die "certificates made by $mode: '$ca/$f' is missing"
        done
        # Kafka's PEM keystore reads PKCS#8 keys only ("BEGIN PRIVATE KEY"),
        # not the SEC1 "BEGIN EC PRIVATE KEY" form.
        grep -q -- '-----BEGIN PRIVATE KEY-----' "$ca/broker.pem" ||
                sb_die "'$ca/broker.pem': the key must be unencrypted PKCS#8 (BEGIN PRIVATE KEY) for Kafka's PEM keystore"
        certs_by=$mode
}

# ---------------------------------------------------------------- config

# A free TCP port on 127.0.0.1 not in $taken, below Linux's ephemeral range
# (32768+) so that no outgoing connection grabs it before the broker does.
free_port() {
        local p i
        for ((i = 0; i < 200; i++)); do
                p=$((20000 + RANDOM % 12700))
                case " $taken " in *" $p "*) continue ;; esac
                # A connection that succeeds means someone listens there.
                if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                        echo "$p"
                        return 0
                fi
        done
        sb_die "no free port found on 127.0.0.1"
}

# Writes the test node's properties: the production template with the keys
# a single local node must change, replaced where they stand. Each replaced
# key must exist in the template, so the two cannot drift apart silently.
write_properties() {
        local line key
        local -A override=()
        while IFS= read -r line; do
                override[${line%%=*}]=${line#*=}
        done <<EOF
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
log.dirs=$dir/data
listeners=SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_port
ssl.keystore.location=$dir/ca/broker.pem
ssl.truststore.location=$dir/ca/ca.crt
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
        for key in "${!override[@]}"; do
                awk -F= -v k="$key" '$1 == k { found = 1 } END { exit !found }' "$template" ||
                        sb_die "'$template' has no '$key=' line; the test overrides replace existing keys only"
        done
        {
                echo "# Generated by tests/kafka/broker.sh from $template:"
                echo "# do not edit. Lines after a '# test node:' comment differ from it."
                while IFS= read -r line; do
                        key=${line%%=*}
                        if [[ $line != \#* && $line == *=* && -v override[$key] ]]; then
                                echo "# test node: was $line"
                                echo "$key=${override[$key]}"
                        else
                                printf '%s\n' "$line"
                        fi
                done <"$template"
        } >"$props"
}

write_env() {
        {
                echo "# Written by tests/kafka/broker.sh start; sourced by tests."
                echo "SB_BROKER_DIR='$dir'"
                echo "SB_BROKER_SSL='127.0.0.1:$ssl_port'"
                echo "SB_BROKER_SASL='127.0.0.1:$sasl_port'"
                echo "SB_BROKER_CONTROLLER='127.0.0.1:$controller_port'"
                echo "SB_BROKER_CA='$dir/ca/ca.crt'"
                echo "SB_BROKER_CA_DIR='$dir/ca'"
                echo "SB_BROKER_CERTS_BY='$certs_by'"
                echo "SB_BROKER_ADMIN_PRINCIPAL='$admin'"
                echo "SB_BROKER_ADMIN_CERT='$dir/ca/$admin.crt'"
                echo "SB_BROKER_ADMIN_KEY='$dir/ca/$admin.key'"
                echo "SB_BROKER_ADMIN_PROPERTIES='$dir/admin-client.properties'"
                echo "SB_SCRAM_USER='$scram_user'"
                echo "SB_SCRAM_PASSWORD_FILE='$dir/secrets/$scram_user.password'"
                echo "SB_KAFKA_CLASSPATH='$classpath'"
        } >"$dir/env"
        # For Kafka's own Java tools (kafka.admin.ConfigCommand ...), as the
        # super-user administrator over mTLS.
        cat >"$dir/admin-client.properties" <<EOF
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$dir/ca/$admin.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/ca/ca.crt
EOF
}

# ---------------------------------------------------------------- start

# One TLS handshake with certificate checks; success means the listener at
# $1 is up and serves the expected certificate.
tls_answers() {
        timeout 10 openssl s_client -connect "$1" -brief \
                -CAfile "$dir/ca/ca.crt" -verify_return_error \
                -verify_ip 127.0.0.1 "${@:2}" </dev/null >/dev/null 2>&1
}

java_opts() {
        # shellcheck disable=SC2086 # heap is a list of options
        printf '%s\n' $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
                -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
                "-Dkafka.logs.dir=$logs" \
                "-Dlog4j.configuration=file:$here/log4j.properties"
}

cmd_start() {
        local t0 pid cluster_id password secrets classpath_file \
                ssl_port sasl_port controller_port taken="" jopts=()
        t0=$SECONDS
        if broker_pid >/dev/null; then
                sb_log "a broker from an earlier run is still up: stopping it"
                cmd_stop || true
        fi
        # Every start is a fresh cluster: no state from an earlier run can
        # make a test pass or fail.
        cmd_stop --clean >/dev/null 2>&1 || true
        mkdir -p "$dir" "$logs"

        classpath_file=$("$here/kafka-fetch.sh")
        classpath=$(cat "$classpath_file")
        sb_need openssl:openssl

        make_certs

        ssl_port=$(free_port)
        taken="$taken $ssl_port"
        sasl_port=$(free_port)
        taken="$taken $sasl_port"
        controller_port=$(free_port)
        write_properties

        # The SCRAM password: random, in a 0600 file, never in a config.
        secrets=$dir/secrets
        (umask 077 && mkdir -p "$secrets")
        password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
        (umask 077 && printf '%s\n' "$password" >"$secrets/$scram_user.password")

        mapfile -t jopts < <(java_opts)
        # A cluster id is 16 random bytes in URL-safe base64 without padding
        # (what `kafka-storage random-uuid` prints, without a JVM start).
        # Like Kafka's Uuid.randomUuid(), never one starting with '-': the
        # storage tool would read it as an option (1 start in 64 failed).
        cluster_id=-
        while [ "${cluster_id#-}" != "$cluster_id" ]; do
                cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' |
                        tr -d '=')
        done
        # --add-scram stores the SCRAM verifier in the first metadata
        # records, so the user exists before any client connects. The
        # password is on this one command line (visible in ps while it
        # runs); the broker never sees it.
        if ! timeout 120 java "${jopts[@]}" -cp "$classpath" \
                kafka.tools.StorageTool format -t "$cluster_id" -c "$props" \
                --add-scram "SCRAM-SHA-512=[name=$scram_user,password=$password]" \
                >"$logs/format.log" 2>&1; then
                cat "$logs/format.log" >&2
                sb_die "formatting the KRaft storage failed"
        fi
        unset password

        # setsid: the broker outlives this script (ctest's fixture test)
        # and its session; its output goes to files so that nobody waits
        # on a pipe the broker holds open.
        setsid java "${jopts[@]}" -cp "$classpath" kafka.Kafka "$props" \
                </dev/null >"$logs/stdout.log" 2>&1 &
        pid=$!
        echo "$pid" >"$pidfile"
        # From here a failed start stops the half-started broker.
        trap 'cmd_stop >/dev/null 2>&1 || true' EXIT

        local started=0 deadline=$((SECONDS + start_timeout))
        while ((SECONDS < deadline)); do
                if ! alive "$pid"; then
                        tail -n 40 "$logs/server.log" "$logs/stdout.log" >&2 || true
                        sb_die "the broker exited during start (logs in $logs)"
                fi
                if [ "$started" = 0 ] && grep -q 'Kafka Server started' "$logs/server.log" 2>/dev/null; then
                        started=1
                fi
                if [ "$started" = 1 ] &&
                        tls_answers "127.0.0.1:$ssl_port" \
                                -cert "$dir/ca/$admin.crt" -key "$dir/ca/$admin.key" &&
                        tls_answers "127.0.0.1:$sasl_port"; then
                        write_env
                        trap - EXIT
                        sb_log "broker up in $((SECONDS - t0)) s (pid $pid): SSL 127.0.0.1:$ssl_port, SASL_SSL 127.0.0.1:$sasl_port; certificates by $certs_by; env in $dir/env"
                        return 0
                fi
                sleep 0.5
        done
        tail -n 40 "$logs/server.log" "$logs/stdout.log" >&2 || true
        sb_die "the broker did not answer within $start_timeout s (logs in $logs)"
}

cmd_env() {
        [ -f "$dir/env" ] || sb_die "no '$dir/env': run '$0 start' first"
        broker_pid >/dev/null ||
                sb_log "warning: no broker is running from $dir; this is the last start's env"
        cat "$dir/env"
}

# Status codes are answers here, not failures for the ERR trap.
case ${1:-} in
start) cmd_start ;;
stop) cmd_stop "${2:-}" || exit $? ;;
status) cmd_status || exit $? ;;
env) cmd_env ;;
*)
        echo "usage: $0 start|stop [--clean]|status|env" >&2
        exit 2
        ;;
esac
