#!/usr/bin/env python3
"""An independent peer reads a reuser's stream: confluent-kafka (its own
librdkafka build) over mTLS with the reuser's certificate, and fastavro (an
Avro implementation other than the gateway's Avro C).

Checks, for every message of the topic: the CloudEvents headers; the Avro
single-object encoding (C3 01 + the CRC-64-AVRO fingerprint of the output
schema's Parsing Canonical Form, as fastavro computes it); that the value
decodes with the grant's output schema to exactly the granted fields plus
the pseudonym; and that the key is <pseudonym>/<record id>. With the
gateway's public key file, also that every message carries a valid batch
signature (header sb_sig, docs/messages.md) by that key, recomputed here
with hashlib's BLAKE2b and the cryptography package's Ed25519.

usage: peer_check_stream.py BOOTSTRAP CA CERT KEY GROUP TOPIC SCHEMA.json MIN_COUNT [GATEWAY.pub]
"""
import hashlib
import io
import json
import struct
import sys

import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition


def fail(msg):
    print(f"peer: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def leaf_digest(topic, key, value, headers):
    h = hashlib.blake2b(digest_size=16)
    h.update(b"\x00sb-leaf-1")

    def put(b):
        if b is None:
            h.update(b"\xff\xff\xff\xff")
        else:
            h.update(struct.pack(">I", len(b)) + b)

    put(topic.encode())
    put(key)
    put(value)
    for name, v in headers:
        if name != "sb_sig":
            put(name.encode())
            put(v)
    return h.digest()


def check_signature(pub, key_id, topic, m):
    """Recomputes the message's path to its batch root and checks the
    root's Ed25519 signature; returns None, or what is wrong."""
    sigs = [v for k, v in (m.headers() or []) if k == "sb_sig"]
    if not sigs:
        return "no sb_sig header"
    h = sigs[-1]
    if len(h) < 81 or h[0] != 1 or (len(h) - 81) % 16:
        return f"malformed sb_sig ({len(h)} bytes)"
    if h[1:9] != key_id:
        return f"signed by key id {h[1:9].hex()}, not {key_id.hex()}"
    n, i = struct.unpack(">II", h[9:17])
    signature, path = h[17:81], h[81:]
    node = leaf_digest(topic, m.key(), m.value(), m.headers() or [])
    idx, width, used = i, n, 0
    while width > 1:
        if (idx ^ 1) < width:
            sib = path[16 * used:16 * used + 16]
            used += 1
            pair = sib + node if idx % 2 else node + sib
            node = hashlib.blake2b(b"\x01" + pair, digest_size=16).digest()
        idx //= 2
        width = (width + 1) // 2
    if 16 * used != len(path):
        return "sb_sig path length does not match the batch size"
    try:
        pub.verify(signature, b"sb-seal-1" + node + struct.pack(">I", n))
    except Exception:  # cryptography's InvalidSignature
        return "signature does not verify"
    return None


def main():
    if len(sys.argv) not in (9, 10):
        fail(__doc__)
    bootstrap, ca, cert, key, group, topic, schema_path, min_count = \
        sys.argv[1:9]
    pub = key_id = None
    if len(sys.argv) == 10:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import \
            Ed25519PublicKey
        with open(sys.argv[9]) as f:
            raw = bytes.fromhex(f.read().strip())
        pub = Ed25519PublicKey.from_public_bytes(raw)
        key_id = hashlib.blake2b(raw, digest_size=32).digest()[:8]
    with open(schema_path) as f:
        schema_json = json.load(f)
    schema = fastavro.parse_schema(schema_json)
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    # fastavro gives the fingerprint's 8 bytes little-endian, as the Avro
    # spec puts them on the wire; sb_schema holds the 64-bit value in hex.
    fp_le = bytes.fromhex(fastavro.schema.fingerprint(canonical,
                                                      "CRC-64-AVRO"))
    fp_hex = fp_le[::-1].hex()
    granted = [f["name"] for f in schema_json["fields"]]

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "security.protocol": "ssl",
        "ssl.ca.location": ca,
        "ssl.certificate.location": cert,
        "ssl.key.location": key,
        "group.id": group,  # the reuser's own: its ACLs allow no other
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    md = consumer.list_topics(topic, timeout=15)
    if md.topics[topic].error:
        fail(f"{topic}: {md.topics[topic].error}")
    parts = list(md.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])

    eof, count, records, notices, signed = set(), 0, 0, 0, 0
    idle = 0
    while len(eof) < len(parts) and idle < 300:
        m = consumer.poll(0.1)
        if m is None:
            idle += 1
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                continue
            fail(f"{topic}: {m.error()}")
        count += 1
        if pub is not None:
            wrong = check_signature(pub, key_id, topic, m)
            if wrong:
                fail(f"offset {m.offset()}: {wrong}")
            signed += 1
        headers = {k: v.decode() for k, v in (m.headers() or [])
                   if k != "sb_sig"}
        for h in ("ce_specversion", "ce_id", "ce_source", "ce_type",
                  "ce_time", "content-type", "sb_schema"):
            if h not in headers:
                fail(f"offset {m.offset()}: missing header {h}")
        if headers["ce_specversion"] != "1.0":
            fail(f"offset {m.offset()}: ce_specversion {headers['ce_specversion']}")
        if headers["ce_type"] != "sharebus.record.upsert":
            notices += 1  # rights notices use the rights schema
            continue
        v = m.value()
        if v[:2] != b"\xc3\x01":
            fail(f"offset {m.offset()}: no single-object marker")
        if v[2:10] != fp_le:
            fail(f"offset {m.offset()}: fingerprint {v[2:10][::-1].hex()} "
                 f"is not the output schema's {fp_hex}")
        if headers["sb_schema"] != fp_hex:
            fail(f"offset {m.offset()}: sb_schema {headers['sb_schema']} "
                 f"!= {fp_hex}")
        rec = fastavro.schemaless_reader(io.BytesIO(v[10:]), schema)
        if sorted(rec) != sorted(granted):
            fail(f"offset {m.offset()}: fields {sorted(rec)} != {sorted(granted)}")
        k = m.key().decode()
        if k.split("/", 1)[0] != rec["pseudonym"] or "/" not in k:
            fail(f"offset {m.offset()}: key {k} does not start with the "
                 f"record's pseudonym {rec['pseudonym']}")
        records += 1
    consumer.close()
    if len(eof) < len(parts):
        fail(f"{topic}: did not reach the end of every partition")
    if records < int(min_count):
        fail(f"{topic}: {records} records decoded, expected at least {min_count}")
    print(f"peer: {records} records and {notices} notices on {topic} decoded "
          f"by fastavro {fastavro.__version__} (fingerprint {fp_hex}), fields "
          f"{granted}; {signed} batch signatures verified")


if __name__ == "__main__":
    main()
