#!/bin/sh
# `sharebus admin topics|acls plan|apply` from the command line, as a
# platform team runs them: plan changes nothing and exits 6 while the
# cluster differs; apply makes the declared topics and ACLs exist; a second
# apply changes nothing; the transactional-id ACLs librdkafka cannot make
# are printed as kafka-acls.sh commands.
set -eu
. "${SB_BROKER_DIR:-/tmp/sharebus-broker}/env"
: "${SB_BIN:?SB_BIN is not set (run through ctest)}"
src=$(cd "$(dirname "$0")/../.." && pwd)
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$d/grants"
cat > "$d/grants/g.json" <<JSON
{"id": "g-tc", "reuser": "tc-reuser", "dataset": "beneficiaries",
 "purposes": ["p"], "legal_basis": "x", "status": "approved",
 "fields": {"postcode": "keep"}}
JSON
cat > "$d/platform.json" <<JSON
{"gateway": ["sb-gateway.g1"],
 "datasets": {"beneficiaries": {"holders": ["tc-holder.g1"]}},
 "reusers": {"tc-reuser": {"principals": ["tc-reuser.g1"]}},
 "grants_dir": "$d/grants", "schemas_dir": "$src/schemas",
 "replication_factor": 1, "min_insync_replicas": 1, "partitions": 3}
JSON
cat > "$d/admin.json" <<JSON
{"kafka": {"bootstrap_servers": "$SB_BROKER_SSL", "security_protocol": "ssl",
  "ssl_ca_location": "$SB_BROKER_CA",
  "ssl_certificate_location": "$SB_BROKER_ADMIN_CERT",
  "ssl_key_location": "$SB_BROKER_ADMIN_KEY"},
 "platform": "$d/platform.json"}
JSON

# The output topic of this grant does not exist yet: plan says so.
rc=0; "$SB_BIN" admin topics plan --config "$d/admin.json" > "$d/out" || rc=$?
[ "$rc" = 6 ] || fail "topics plan before apply: exit $rc, expected 6"
grep -q '^  + sb.out.tc-reuser.beneficiaries (output)' "$d/out" ||
        fail "topics plan does not list the missing stream: $(cat "$d/out")"

"$SB_BIN" admin topics apply --config "$d/admin.json" > "$d/out" || true
# The broker's metadata may take a moment to show new topics.
i=0
while :; do
        "$SB_BIN" admin topics plan --config "$d/admin.json" > "$d/out" || true
        grep -q ' 0 to create, 0 to alter,' "$d/out" && break
        i=$((i + 1))
        [ "$i" -lt 20 ] || fail "topics still to change after apply: $(cat "$d/out")"
        sleep 0.25
done

rc=0; "$SB_BIN" admin acls apply --config "$d/admin.json" > "$d/out" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 6 ] || fail "acls apply: exit $rc: $(cat "$d/out")"
rc=0; "$SB_BIN" admin acls plan --config "$d/admin.json" > "$d/out" || rc=$?
grep -q '; 0 to create, 0 to delete,' "$d/out" ||
        fail "ACLs still to change after apply: $(cat "$d/out")"
grep -q -- '--add --allow-principal User:tc-holder.g1 --operation WRITE --transactional-id sb-holder-beneficiaries' "$d/out" ||
        fail "the holder's transactional-id ACL is not printed: $(cat "$d/out")"
[ "$rc" = 6 ] || fail "acls plan with transactional-id ACLs missing: exit $rc, expected 6"
echo "admin CLI: plan, apply, plan again: in sync; transactional-id ACLs printed"
