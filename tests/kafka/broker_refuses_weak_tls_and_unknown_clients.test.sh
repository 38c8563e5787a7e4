#!/bin/bash
# The broker's TLS policy (DESIGN.md section 8; CNIL R5.4-03, ANSSI): on both
# client listeners, TLS 1.2 and 1.3 with ECDHE + AES-GCM / ChaCha20-Poly1305
# only; older protocols, suites without forward secrecy or with CBC are
# refused BY THE BROKER (an alert from it, not a client that would not even
# try); a self-signed certificate naming the administrator is refused on
# the mTLS listener, and the controller listener wants a certificate too.
#
# Needs the broker of tests/kafka/broker.sh (ctest fixture kafka_broker).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# The addresses and files of the running broker (shell assignments).
envtext=$("$here/broker.sh" env)
eval "$envtext"

passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

indent() {
        sed 's/^/    /'
}

# hello ADDR OPENSSL-OPTIONS...: one handshake; prints s_client's report.
# SECLEVEL=0 lets this client offer what OpenSSL 3 would refuse by itself:
# the point is what the broker accepts.
hello() {
        timeout 10 openssl s_client -connect "$1" -brief -CAfile "$SB_BROKER_CA" \
                -verify_return_error "${@:2}" </dev/null 2>&1
}

check() {
        if "$@"; then
                passed=$((passed + 1))
        else
                failed=$((failed + 1))
        fi
}

# accepted LISTENER ADDR PROTOCOL SUITE OPTIONS...
accepted() {
        local out
        out=$(hello "$2" "${@:5}") || true
        if grep -q "^Protocol version: $3\$" <<<"$out" &&
                grep -q "^Ciphersuite: $4\$" <<<"$out"; then
                echo "ok: $1 accepts $3 $4"
                return 0
        fi
        echo "FAIL: $1: expected a $3 $4 session, got:"
        indent <<<"$out"
        return 1
}

# refused LISTENER ADDR WHAT OPTIONS...
refused() {
        local out
        if out=$(hello "$2" "${@:4}") && grep -q '^Ciphersuite' <<<"$out"; then
                echo "FAIL: $1 accepted $3:"
                indent <<<"$out"
                return 1
        fi
        # The refusal must come from the broker.
        if grep -qi 'alert' <<<"$out"; then
                echo "ok: $1 refuses $3 ($(grep -oi 'alert [a-z ]*' <<<"$out" | head -n 1))"
                return 0
        fi
        echo "FAIL: $1: expected the broker to refuse $3 with an alert, got:"
        indent <<<"$out"
        return 1
}

admin=(-cert "$SB_BROKER_ADMIN_CERT" -key "$SB_BROKER_ADMIN_KEY")
for listener in SSL SASL_SSL; do
        if [ $listener = SSL ]; then
                addr=$SB_BROKER_SSL
                auth=("${admin[@]}")
        else
                addr=$SB_BROKER_SASL
                auth=()
        fi
        check accepted $listener "$addr" TLSv1.3 TLS_AES_256_GCM_SHA384 \
                "${auth[@]}" -tls1_3
        check accepted $listener "$addr" TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 \
                "${auth[@]}" -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256
        check accepted $listener "$addr" TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256 \
                "${auth[@]}" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
        check accepted $listener "$addr" TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305 \
                "${auth[@]}" -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305
        check refused $listener "$addr" "TLS 1.1" "${auth[@]}" -tls1_1 \
                -cipher 'DEFAULT@SECLEVEL=0'
        check refused $listener "$addr" "TLS 1.0" "${auth[@]}" -tls1 \
                -cipher 'DEFAULT@SECLEVEL=0'
        check refused $listener "$addr" "CBC suites" "${auth[@]}" -tls1_2 \
                -cipher 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA@SECLEVEL=0'
        check refused $listener "$addr" "suites without forward secrecy" \
                "${auth[@]}" -tls1_2 \
                -cipher 'AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256@SECLEVEL=0'
        check refused $listener "$addr" "TLS 1.3 AES-CCM" "${auth[@]}" -tls1_3 \
                -ciphersuites 'TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256'
done

# A certificate with the administrator's name, not issued by the platform
# CA. TLS 1.2: the broker's verdict on a client certificate then falls
# inside the handshake, where s_client sees it.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$tmp/forged.key" -out "$tmp/forged.crt" -days 1 \
        -subj "/CN=$SB_BROKER_ADMIN_PRINCIPAL" >/dev/null 2>&1
check accepted SSL "$SB_BROKER_SSL" TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384 \
        "${admin[@]}" -tls1_2
check refused SSL "$SB_BROKER_SSL" \
        "a self-signed certificate for CN=$SB_BROKER_ADMIN_PRINCIPAL" \
        -cert "$tmp/forged.crt" -key "$tmp/forged.key" -tls1_2

# The KRaft controller listener carries the ACLs and SCRAM credentials:
# no connection without a certificate from the platform CA.
check accepted CONTROLLER "$SB_BROKER_CONTROLLER" TLSv1.2 \
        ECDHE-ECDSA-AES256-GCM-SHA384 "${admin[@]}" -tls1_2
check refused CONTROLLER "$SB_BROKER_CONTROLLER" "a client without a certificate" \
        -tls1_2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
