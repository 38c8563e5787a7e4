/*
 * Batch signatures on messages (common/seal.c).
 *
 * Holders sign what they publish and the gateway what it shares, one
 * Ed25519 signature per batch over a Merkle tree (DESIGN.md §9; CNIL
 * R3.4-*, R4.2-*): every message must verify alone, in any order; any
 * change of a message's topic, key, value or headers, or a signature moved
 * to another message, must be detected; only declared keys are trusted,
 * several while a key rotates; and one signature check serves a batch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "crypto.h"
#include "seal.h"
#include "sign.h"

/*
 * Helpers
 */

typedef struct sent_s {
        char topic[64];
        char *key, *value;
        size_t keylen, len;
        rd_kafka_headers_t *hdrs;
} sent_t;

typedef struct outbox_s {
        sent_t msgs[SB_SEAL_BATCH_MAX];
        size_t cnt;
} outbox_t;

static sb_err_t capture(void *opaque, const char *topic, int32_t partition,
                        const void *key, size_t keylen, const void *value,
                        size_t len, rd_kafka_headers_t *hdrs, void *msg_opaque)
{
        outbox_t *ob = opaque;
        sent_t *s = &ob->msgs[ob->cnt++];

        (void)partition;
        (void)msg_opaque;
        snprintf(s->topic, sizeof(s->topic), "%s", topic);
        s->key = key ? strndup(key, keylen) : NULL;
        s->keylen = keylen;
        s->value = value ? strndup(value, len) : NULL;
        s->len = len;
        s->hdrs = hdrs;
        return SB_OK;
}

static void outbox_clear(outbox_t *ob)
{
        size_t i;

        for (i = 0; i < ob->cnt; i++) {
                free(ob->msgs[i].key);
                free(ob->msgs[i].value);
                rd_kafka_headers_destroy(ob->msgs[i].hdrs);
        }
        ob->cnt = 0;
}

/* Seals `n` distinct messages with `key` into `ob`. */
static void seal_batch(const sb_signkey_t *key, size_t n, outbox_t *ob)
{
        sb_sealer_t *s = sb_sealer_new(key);
        char k[32], v[64];
        size_t i;

        assert_non_null(s);
        for (i = 0; i < n; i++) {
                rd_kafka_headers_t *h = rd_kafka_headers_new(2);

                snprintf(k, sizeof(k), "subject-%zu", i);
                snprintf(v, sizeof(v), "value of record %zu", i);
                rd_kafka_header_add(h, "ce_id", -1, k, -1);
                rd_kafka_header_add(h, "ce_type", -1, "sharebus.record.upsert",
                                    -1);
                assert_int_equal(sb_sealer_add(s, "sb.in.beneficiaries", -1, k,
                                               strlen(k), i == 3 ? NULL : v,
                                               i == 3 ? 0 : strlen(v), h, NULL),
                                 SB_OK);
        }
        assert_int_equal(sb_sealer_pending(s), n);
        assert_int_equal(sb_sealer_flush(s, capture, ob), SB_OK);
        assert_int_equal(sb_sealer_pending(s), 0);
        assert_int_equal(ob->cnt, n);
        sb_sealer_destroy(s);
}

static sb_err_t verify(sb_seal_verifier_t *v, const sent_t *m, char *reason,
                       size_t size)
{
        return sb_seal_verify(v, m->topic, m->key, m->keylen, m->value, m->len,
                              m->hdrs, reason, size);
}

static sb_keyring_t *ring_of(const sb_signkey_t *a, const sb_signkey_t *b)
{
        sb_keyring_t *kr = sb_keyring_new();

        assert_non_null(kr);
        if (a)
                assert_int_equal(sb_keyring_add(kr, sb_signkey_public(a)),
                                 SB_OK);
        if (b)
                assert_int_equal(sb_keyring_add(kr, sb_signkey_public(b)),
                                 SB_OK);
        return kr;
}

static outbox_t ob;
static sb_signkey_t *key_a, *key_b;

static int setup(void **state)
{
        char errstr[256] = "";

        (void)state;
        if (sb_crypto_init(errstr, sizeof(errstr)))
                fail_msg("sb_crypto_init: %s", errstr);
        key_a = sb_signkey_generate();
        key_b = sb_signkey_generate();
        assert_non_null(key_a);
        assert_non_null(key_b);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        outbox_clear(&ob);
        sb_signkey_destroy(key_a);
        sb_signkey_destroy(key_b);
        return 0;
}

/*
 * Tests
 */

/* Every tree shape: 1..70 leaves, and a full batch, each message checked
 * alone by a fresh verifier, then all of them backwards by one. */
static void every_message_of_a_batch_verifies_alone(void **state)
{
        static const size_t sizes[] = {
            1,  2,  3,  4,  5,  7,   8,   9,   15,   16,
            17, 31, 33, 64, 70, 255, 256, 257, 1000, SB_SEAL_BATCH_MAX};
        sb_keyring_t *kr = ring_of(key_a, NULL);
        char reason[256];
        size_t s, i;

        (void)state;
        for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                sb_seal_verifier_t *all = sb_seal_verifier_new(kr);

                seal_batch(key_a, sizes[s], &ob);
                for (i = 0; i < ob.cnt; i++) {
                        sb_seal_verifier_t *v = sb_seal_verifier_new(kr);

                        if (verify(v, &ob.msgs[i], reason, sizeof(reason)))
                                fail_msg("batch of %zu, message %zu: %s",
                                         sizes[s], i, reason);
                        sb_seal_verifier_destroy(v);
                }
                for (i = ob.cnt; i-- > 0;)
                        if (verify(all, &ob.msgs[i], reason, sizeof(reason)))
                                fail_msg("batch of %zu, message %zu "
                                         "(backwards): %s",
                                         sizes[s], i, reason);
                /* one signature check for the whole batch */
                assert_int_equal(sb_seal_verifier_checks(all), 1);
                sb_seal_verifier_destroy(all);
                outbox_clear(&ob);
        }
        sb_keyring_destroy(kr);
}

static void assert_refused(sb_seal_verifier_t *v, const sent_t *m,
                           const char *what, const char *expect)
{
        char reason[256] = "";

        if (verify(v, m, reason, sizeof(reason)) == SB_OK)
                fail_msg("%s: accepted", what);
        if (expect && !strstr(reason, expect))
                fail_msg("%s: reason '%s' does not say '%s'", what, reason,
                         expect);
}

/* Each change to one message of a verified batch is caught, even though
 * the verifier has the batch's root in its cache. */
static void any_change_to_a_message_is_detected(void **state)
{
        sb_keyring_t *kr = ring_of(key_a, NULL);
        sb_seal_verifier_t *v = sb_seal_verifier_new(kr);
        char reason[256];
        const void *sig;
        size_t siglen, i;
        sent_t m;

        (void)state;
        seal_batch(key_a, 10, &ob);
        for (i = 0; i < ob.cnt; i++)
                assert_int_equal(verify(v, &ob.msgs[i], reason, sizeof(reason)),
                                 SB_OK);

        m = ob.msgs[5];
        m.value[0] ^= 1;
        assert_refused(v, &m, "value changed", "does not verify");
        m.value[0] ^= 1;

        m = ob.msgs[5];
        m.key[0] = 'S';
        assert_refused(v, &m, "key changed", "does not verify");
        m.key[0] = 's';

        m = ob.msgs[5];
        snprintf(m.topic, sizeof(m.topic), "sb.in.pensions");
        assert_refused(v, &m, "topic changed", "does not verify");

        /* a tombstone is not an empty value, and a value is not a tombstone */
        m = ob.msgs[3];
        m.value = "";
        assert_refused(v, &m, "tombstone given a value", "does not verify");
        m = ob.msgs[4];
        m.value = NULL;
        m.len = 0;
        assert_refused(v, &m, "value removed", "does not verify");

        /* headers: one changed, one added, one removed */
        m = ob.msgs[5];
        m.hdrs = rd_kafka_headers_copy(ob.msgs[5].hdrs);
        rd_kafka_header_remove(m.hdrs, "ce_type");
        rd_kafka_header_add(m.hdrs, "ce_type", -1, "sharebus.rights.erasure",
                            -1);
        assert_refused(v, &m, "header changed", "does not verify");
        rd_kafka_headers_destroy(m.hdrs);

        m = ob.msgs[5];
        m.hdrs = rd_kafka_headers_copy(ob.msgs[5].hdrs);
        rd_kafka_header_add(m.hdrs, "sb_tags", -1, "{}", -1);
        assert_refused(v, &m, "header added", "does not verify");
        rd_kafka_headers_destroy(m.hdrs);

        m = ob.msgs[5];
        m.hdrs = rd_kafka_headers_copy(ob.msgs[5].hdrs);
        rd_kafka_header_remove(m.hdrs, "ce_id");
        assert_refused(v, &m, "header removed", "does not verify");
        rd_kafka_headers_destroy(m.hdrs);

        /* message 5 with message 6's signature header */
        m = ob.msgs[5];
        m.hdrs = rd_kafka_headers_copy(ob.msgs[5].hdrs);
        assert_int_equal(rd_kafka_header_get_last(
                             ob.msgs[6].hdrs, SB_SEAL_HEADER, &sig, &siglen),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_header_remove(m.hdrs, SB_SEAL_HEADER);
        rd_kafka_header_add(m.hdrs, SB_SEAL_HEADER, -1, sig, (ssize_t)siglen);
        assert_refused(v, &m, "signature of another message",
                       "does not verify");
        rd_kafka_headers_destroy(m.hdrs);

        /* the untouched messages still verify */
        for (i = 0; i < ob.cnt; i++)
                assert_int_equal(verify(v, &ob.msgs[i], reason, sizeof(reason)),
                                 SB_OK);
        sb_seal_verifier_destroy(v);
        sb_keyring_destroy(kr);
        outbox_clear(&ob);
}

/* A forged signature byte fails the signature check itself. */
static void altered_signature_is_detected(void **state)
{
        sb_keyring_t *kr = ring_of(key_a, NULL);
        sb_seal_verifier_t *v = sb_seal_verifier_new(kr);
        unsigned char buf[SB_SEAL_FIXED_BYTES + 32 * SB_SEAL_NODE_BYTES];
        const void *sig;
        size_t siglen;
        sent_t m;

        (void)state;
        seal_batch(key_a, 5, &ob);
        m = ob.msgs[2];
        m.hdrs = rd_kafka_headers_copy(ob.msgs[2].hdrs);
        assert_int_equal(
            rd_kafka_header_get_last(m.hdrs, SB_SEAL_HEADER, &sig, &siglen),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        memcpy(buf, sig, siglen);
        buf[SB_SEAL_FIXED_BYTES - 1] ^= 0x40; /* last signature byte */
        rd_kafka_header_remove(m.hdrs, SB_SEAL_HEADER);
        rd_kafka_header_add(m.hdrs, SB_SEAL_HEADER, -1, buf, (ssize_t)siglen);
        assert_refused(v, &m, "signature byte flipped", "does not verify");
        rd_kafka_headers_destroy(m.hdrs);
        sb_seal_verifier_destroy(v);
        sb_keyring_destroy(kr);
        outbox_clear(&ob);
}

/* Only declared keys are trusted; while a key rotates, both are. */
static void only_keys_of_the_ring_are_trusted(void **state)
{
        sb_keyring_t *only_b = ring_of(key_b, NULL);
        sb_keyring_t *both = ring_of(key_b, key_a);
        sb_seal_verifier_t *vb = sb_seal_verifier_new(only_b);
        sb_seal_verifier_t *v2 = sb_seal_verifier_new(both);
        char reason[256];

        (void)state;
        seal_batch(key_a, 3, &ob);
        assert_refused(vb, &ob.msgs[0], "key not in ring", "unknown key id");
        assert_refused(vb, &ob.msgs[0], "key not in ring (again)",
                       sb_signkey_id(key_a));
        assert_int_equal(verify(v2, &ob.msgs[0], reason, sizeof(reason)),
                         SB_OK);
        assert_int_equal(sb_keyring_cnt(both), 2);
        assert_int_equal(sb_keyring_add(both, sb_signkey_public(key_a)), SB_OK);
        assert_int_equal(sb_keyring_cnt(both), 2);
        sb_seal_verifier_destroy(vb);
        sb_seal_verifier_destroy(v2);
        sb_keyring_destroy(only_b);
        sb_keyring_destroy(both);
        outbox_clear(&ob);
}

static void with_header(sb_seal_verifier_t *v, const sent_t *base,
                        const unsigned char *h, size_t len, const char *what,
                        const char *expect)
{
        sent_t m = *base;

        m.hdrs = rd_kafka_headers_copy(base->hdrs);
        rd_kafka_header_remove(m.hdrs, SB_SEAL_HEADER);
        if (h)
                rd_kafka_header_add(m.hdrs, SB_SEAL_HEADER, -1, h,
                                    (ssize_t)len);
        assert_refused(v, &m, what, expect);
        rd_kafka_headers_destroy(m.hdrs);
}

static void unsigned_or_malformed_messages_are_refused(void **state)
{
        sb_keyring_t *kr = ring_of(key_a, NULL);
        sb_seal_verifier_t *v = sb_seal_verifier_new(kr);
        unsigned char buf[SB_SEAL_FIXED_BYTES + 32 * SB_SEAL_NODE_BYTES];
        const void *sig;
        size_t siglen;
        sent_t m;

        (void)state;
        seal_batch(key_a, 4, &ob);
        m = ob.msgs[1];
        assert_int_equal(
            rd_kafka_header_get_last(m.hdrs, SB_SEAL_HEADER, &sig, &siglen),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(siglen, SB_SEAL_FIXED_BYTES + 2 * SB_SEAL_NODE_BYTES);
        memcpy(buf, sig, siglen);

        with_header(v, &m, NULL, 0, "no header", "unsigned");
        with_header(v, &m, buf, 10, "truncated", "malformed");
        with_header(v, &m, buf, siglen - SB_SEAL_NODE_BYTES, "path too short",
                    "malformed");
        memcpy(buf + siglen, buf + siglen - SB_SEAL_NODE_BYTES,
               SB_SEAL_NODE_BYTES);
        with_header(v, &m, buf, siglen + SB_SEAL_NODE_BYTES, "path too long",
                    "malformed");
        buf[0] = 2;
        with_header(v, &m, buf, siglen, "version 2", "malformed");
        buf[0] = 1;
        buf[1 + SB_SEAL_KEY_ID_BYTES + 7] = 9; /* i = 9 of n = 4 */
        with_header(v, &m, buf, siglen, "index past the batch", "malformed");
        sb_seal_verifier_destroy(v);
        sb_keyring_destroy(kr);
        outbox_clear(&ob);
}

/* A discarded batch (aborted transaction) produces nothing; the sealer
 * refuses more than a batch. */
static void discarded_batch_produces_nothing(void **state)
{
        sb_sealer_t *s = sb_sealer_new(key_a);
        size_t i;

        (void)state;
        for (i = 0; i < SB_SEAL_BATCH_MAX; i++)
                assert_int_equal(sb_sealer_add(s, "t", 0, "k", 1, "v", 1,
                                               rd_kafka_headers_new(1), NULL),
                                 SB_OK);
        assert_true(sb_sealer_full(s));
        assert_int_not_equal(
            sb_sealer_add(s, "t", 0, "k", 1, "v", 1, NULL, NULL), SB_OK);
        sb_sealer_discard(s);
        assert_int_equal(sb_sealer_pending(s), 0);
        assert_int_equal(sb_sealer_flush(s, capture, &ob), SB_OK);
        assert_int_equal(ob.cnt, 0);
        sb_sealer_destroy(s);
}

static void
key_directory_loads_every_public_key_and_names_bad_files(void **state)
{
        char dir[64], path[128], errstr[512] = "";
        sb_keyring_t *kr = sb_keyring_new();
        sb_signkey_t *k;
        FILE *fp;
        int i;

        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/sb-test-seal-XXXXXX");
        assert_non_null(mkdtemp(dir));
        assert_int_not_equal(
            sb_keyring_load_dir(kr, dir, errstr, sizeof(errstr)), SB_OK);
        assert_non_null(strstr(errstr, dir));
        for (i = 0; i < 2; i++) {
                char sec[128];

                k = sb_signkey_generate();
                snprintf(sec, sizeof(sec), "%s/k%d.key", dir, i);
                snprintf(path, sizeof(path), "%s/k%d.pub", dir, i);
                assert_int_equal(
                    sb_signkey_save(k, sec, path, errstr, sizeof(errstr)),
                    SB_OK);
                sb_signkey_destroy(k);
        }
        assert_int_equal(sb_keyring_load_dir(kr, dir, errstr, sizeof(errstr)),
                         SB_OK);
        assert_int_equal(sb_keyring_cnt(kr), 2);

        snprintf(path, sizeof(path), "%s/bad.pub", dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("not a key\n", fp);
        fclose(fp);
        assert_int_not_equal(
            sb_keyring_load_dir(kr, dir, errstr, sizeof(errstr)), SB_OK);
        assert_non_null(strstr(errstr, "bad.pub"));
        sb_keyring_destroy(kr);
        sb_test_rmtree(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(every_message_of_a_batch_verifies_alone),
            cmocka_unit_test(any_change_to_a_message_is_detected),
            cmocka_unit_test(altered_signature_is_detected),
            cmocka_unit_test(only_keys_of_the_ring_are_trusted),
            cmocka_unit_test(unsigned_or_malformed_messages_are_refused),
            cmocka_unit_test(discarded_batch_produces_nothing),
            cmocka_unit_test(
                key_directory_loads_every_public_key_and_names_bad_files),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
