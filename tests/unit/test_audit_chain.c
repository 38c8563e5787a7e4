/*
 * The tamper-evident audit log (common/audit.c; DESIGN.md §9; CNIL
 * R4.3-12, R4.3-13, R4.3-15, R5.4-18).
 *
 * A log of about 300 entries from two interleaved writers, each with its
 * own chain and a signed checkpoint every 25 entries, verifies; every way
 * of tampering with a copy of it is detected, and the report names the
 * first broken link: its line, chain and seq. The hash and the checkpoint
 * signature are the ones docs/messages.md defines (checked against a value
 * computed with Python's hashlib), and an aborted transaction rolled back
 * leaves a chain that still verifies.
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

#include "audit.h"
#include "crypto.h"
#include "platform.h"
#include "sign.h"
#include "testutil.h"

#define EVERY     25
#define PER_CHAIN 145 /* 2 x (145 + 6 checkpoints) = 302 lines */

/*
 * A log in memory: one value a line, as `audit export` would write it
 * without "_offset".
 */
typedef struct log_s {
        char **lines;
        size_t cnt, cap;
} log_t;

static sb_signkey_t *key_a, *key_b; /* key_b is never declared */
static unsigned char declared[1][SB_SIGN_PUBLIC_BYTES];

static void log_insert(log_t *l, size_t at, char *text)
{
        if (l->cnt == l->cap) {
                l->cap = l->cap ? 2 * l->cap : 64;
                l->lines = realloc(l->lines, l->cap * sizeof(*l->lines));
                assert_non_null(l->lines);
        }
        memmove(&l->lines[at + 1], &l->lines[at],
                (l->cnt - at) * sizeof(*l->lines));
        l->lines[at] = text;
        l->cnt++;
}

static void log_add(log_t *l, char *text)
{
        assert_non_null(text);
        log_insert(l, l->cnt, text);
}

static void log_del(log_t *l, size_t at)
{
        free(l->lines[at]);
        memmove(&l->lines[at], &l->lines[at + 1],
                (l->cnt - at - 1) * sizeof(*l->lines));
        l->cnt--;
}

static void log_release(log_t *l)
{
        while (l->cnt)
                log_del(l, l->cnt - 1);
        free(l->lines);
        memset(l, 0, sizeof(*l));
}

static void log_copy(const log_t *from, log_t *to)
{
        size_t i;

        memset(to, 0, sizeof(*to));
        for (i = 0; i < from->cnt; i++)
                log_add(to, strdup(from->lines[i]));
}

static json_t *entry_at(const log_t *l, size_t i)
{
        json_t *e = json_loads(l->lines[i], 0, NULL);

        assert_non_null(e);
        return e;
}

/* The index of the entry of `chain` with `seq`; fails the test if none. */
static size_t find(const log_t *l, const char *chain, int64_t seq)
{
        size_t i;

        for (i = 0; i < l->cnt; i++) {
                json_t *e = json_loads(l->lines[i], 0, NULL);
                const char *c = json_string_value(json_object_get(e, "chain"));
                int hit = c && !strcmp(c, chain) &&
                          json_integer_value(json_object_get(e, "seq")) == seq;

                json_decref(e);
                if (hit)
                        return i;
        }
        fail_msg("no entry %s seq %lld in the log", chain, (long long)seq);
        return 0;
}

/* The first checkpoint of `chain` after seq `after`. */
static size_t find_checkpoint(const log_t *l, const char *chain, int64_t after)
{
        int64_t seq;

        for (seq = after + 1; seq < after + EVERY + 2; seq++) {
                json_t *e = entry_at(l, find(l, chain, seq));
                const char *op = json_string_value(json_object_get(e, "op"));
                int hit = !strcmp(op, SB_AUDIT_OP_CHECKPOINT);

                json_decref(e);
                if (hit)
                        return find(l, chain, seq);
        }
        fail_msg("no checkpoint of %s after seq %lld", chain, (long long)after);
        return 0;
}

/* Replaces line i by `e` (stolen), with its hash recomputed if asked. */
static void log_set(log_t *l, size_t i, json_t *e, int rehash)
{
        char h[SB_AUDIT_HASH_HEXLEN + 1];

        if (rehash) {
                assert_int_equal(SB_OK, sb_audit_entry_hash(e, h));
                json_object_set_new(e, "hash", json_string(h));
        }
        free(l->lines[i]);
        l->lines[i] = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(e);
}

static json_t *event(const char *chain, int n, int64_t at)
{
        char id[64], author[96];

        snprintf(id, sizeof(id), "ev-%s-%d", chain, n);
        snprintf(author, sizeof(author), "sharebus://gateway/%s", chain);
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:[s], s:s, s:I}",
                         "op", "rights.propagate", "author", author, "event_id",
                         id, "type", "sharebus.rights.erasure", "dataset",
                         "beneficiaries", "purposes", "notified", "reuser-a",
                         "requested_time", "2026-11-25T10:00:00.000Z", "at",
                         (json_int_t)at);
}

/* Appends one event of `c` to the log, and its checkpoint if any. */
static void write_event(log_t *l, sb_audit_chain_t *c, const char *id, int n,
                        int64_t at)
{
        char errstr[512], *text, *cp;
        json_t *e = event(id, n, at);

        if (sb_audit_chain_append(c, e, &text, &cp, errstr, sizeof(errstr)))
                fail_msg("append: %s", errstr);
        json_decref(e);
        log_add(l, text);
        if (cp)
                log_add(l, cp);
}

static void close_chain(log_t *l, sb_audit_chain_t *c)
{
        char errstr[512], *cp;

        if (sb_audit_chain_checkpoint(c, &cp, errstr, sizeof(errstr)))
                fail_msg("checkpoint: %s", errstr);
        if (cp)
                log_add(l, cp);
        sb_audit_chain_destroy(c);
}

/*
 * Two gateways, gw-1 and gw-2, writing at once: which one writes next is
 * drawn from a fixed sequence. gw-2 signs with `key2`.
 */
static void build(log_t *l, const sb_signkey_t *key2)
{
        char errstr[512];
        sb_audit_chain_t *c1, *c2;
        unsigned r = 12345;
        int n1 = 0, n2 = 0;
        int64_t at = 1795600000000;

        memset(l, 0, sizeof(*l));
        c1 = sb_audit_chain_new("gw-1", key_a, EVERY, errstr, sizeof(errstr));
        c2 = sb_audit_chain_new("gw-2", key2, EVERY, errstr, sizeof(errstr));
        assert_non_null(c1);
        assert_non_null(c2);
        while (n1 < PER_CHAIN || n2 < PER_CHAIN) {
                r = r * 1103515245u + 12345u;
                at += 1000;
                if ((n2 >= PER_CHAIN || (r >> 16) % 2) && n1 < PER_CHAIN)
                        write_event(l, c1, "gw-1", ++n1, at);
                else
                        write_event(l, c2, "gw-2", ++n2, at);
        }
        close_chain(l, c1);
        close_chain(l, c2);
}

static void verify(const log_t *l, int flags, sb_audit_report_t *rep)
{
        sb_audit_verify_t *v = sb_audit_verify_new(
            (const unsigned char(*)[SB_SIGN_PUBLIC_BYTES])declared, 1, flags);
        char errstr[512], pos[32];
        size_t i;

        assert_non_null(v);
        for (i = 0; i < l->cnt; i++) {
                snprintf(pos, sizeof(pos), "line %zu", i + 1);
                if (sb_audit_verify_feed(v, l->lines[i], strlen(l->lines[i]),
                                         pos, errstr, sizeof(errstr)))
                        fail_msg("feed: %s", errstr);
        }
        if (sb_audit_verify_finish(v, rep, errstr, sizeof(errstr)))
                fail_msg("finish: %s", errstr);
        sb_audit_verify_destroy(v);
}

/* The report's first broken link is `kind` at line index `i` (0-based). */
static void expect_break(const sb_audit_report_t *rep, sb_audit_break_t kind,
                         size_t i, const char *chain, int64_t seq)
{
        char pos[32];

        snprintf(pos, sizeof(pos), "line %zu", i + 1);
        if (rep->first.kind != kind || !rep->first.position ||
            strcmp(rep->first.position, pos) ||
            (chain && (!rep->first.chain || strcmp(rep->first.chain, chain))) ||
            (chain && rep->first.seq != seq))
                fail_msg("expected %s at %s (chain %s seq %lld)\n  got:     "
                         " %s at %s (chain %s seq %lld): %s",
                         sb_audit_break2str(kind), pos, chain ? chain : "-",
                         (long long)seq, sb_audit_break2str(rep->first.kind),
                         rep->first.position ? rep->first.position : "-",
                         rep->first.chain ? rep->first.chain : "-",
                         (long long)rep->first.seq,
                         rep->first.reason ? rep->first.reason : "");
}

static const sb_audit_chain_info_t *chain_of(const sb_audit_report_t *rep,
                                             const char *chain)
{
        size_t i;

        for (i = 0; i < rep->chain_cnt; i++)
                if (!strcmp(rep->chains[i].chain, chain))
                        return &rep->chains[i];
        fail_msg("chain %s is not in the report", chain);
        return NULL;
}

static void expect_intact(const sb_audit_report_t *rep)
{
        if (rep->first.kind != SB_AUDIT_INTACT)
                fail_msg("expected intact, got %s at %s: %s",
                         sb_audit_break2str(rep->first.kind),
                         rep->first.position, rep->first.reason);
        assert_int_equal(0, rep->problems);
}

static int setup(void **state)
{
        char errstr[256];

        (void)state;
        if (sb_crypto_init(errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
        key_a = sb_signkey_generate();
        key_b = sb_signkey_generate();
        assert_non_null(key_a);
        assert_non_null(key_b);
        memcpy(declared[0], sb_signkey_public(key_a), SB_SIGN_PUBLIC_BYTES);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sb_signkey_destroy(key_a);
        sb_signkey_destroy(key_b);
        return 0;
}

/*
 * The log as written
 */

static void intact_log_of_two_writers_verifies(void **state)
{
        sb_audit_report_t rep;
        log_t l;
        size_t i;

        (void)state;
        build(&l, key_a);
        assert_true(l.cnt >= 300);
        verify(&l, 0, &rep);
        expect_intact(&rep);
        assert_int_equal(l.cnt, rep.entries);
        assert_int_equal(2, rep.chain_cnt);
        for (i = 0; i < 2; i++) {
                const sb_audit_chain_info_t *c =
                    chain_of(&rep, i ? "gw-2" : "gw-1");

                assert_int_equal(1, c->first_seq);
                /* 145 events, a checkpoint after every 25 and one on
                 * close: 6 */
                assert_int_equal(PER_CHAIN + 6, c->last_seq);
                assert_int_equal(6, c->checkpoints);
                assert_int_equal(PER_CHAIN + 5, c->covered_seq);
                assert_int_equal(0, c->uncovered);
                assert_null(c->first_uncovered);
        }
        sb_audit_report_release(&rep);
        log_release(&l);
}

/* The hash and the signature are exactly what docs/messages.md says. */
static void hash_and_signature_are_the_documented_ones(void **state)
{
        /* Python: hashlib.blake2b(json.dumps(e, sort_keys=True,
         * separators=(",", ":"), ensure_ascii=False).encode(),
         * digest_size=32).hexdigest() of e = {"at": 1700000000000,
         * "author": "a", "chain": "c", "note": "\u00e9\t\u001f/",
         * "op": "x", "prev": "0" * 64, "seq": 1} */
        static const char *const want =
            "7619120607b5e14b4a7ac38c244a097eef2bb6128bc96cc825167e1f503f0234";
        char errstr[512], *text, *cp, *canonical;
        unsigned char sig[crypto_sign_BYTES];
        sb_audit_chain_t *c;
        json_t *e, *k;
        size_t len;

        (void)state;
        c = sb_audit_chain_new("c", key_a, 1, errstr, sizeof(errstr));
        assert_non_null(c);
        e = json_pack("{s:s, s:s, s:s, s:I}", "op", "x", "author", "a", "note",
                      "\xc3\xa9\t\x1f/", "at", (json_int_t)1700000000000);
        assert_int_equal(SB_OK, sb_audit_chain_append(c, e, &text, &cp, errstr,
                                                      sizeof(errstr)));
        json_decref(e);
        /* the text to produce is the canonical form, hash included */
        assert_non_null(strstr(text, ",\"note\":\"\xc3\xa9\\t\\u001f/\","));
        e = json_loads(text, 0, NULL);
        assert_string_equal(want,
                            json_string_value(json_object_get(e, "hash")));
        json_decref(e);

        /* every_n 1: the checkpoint follows; its signature covers its
         * canonical form without sig and hash. */
        assert_non_null(cp);
        e = json_loads(cp, 0, NULL);
        assert_non_null(e);
        assert_string_equal(SB_AUDIT_OP_CHECKPOINT,
                            json_string_value(json_object_get(e, "op")));
        assert_int_equal(2, json_integer_value(json_object_get(e, "seq")));
        assert_int_equal(1, json_integer_value(json_object_get(e, "upto_seq")));
        assert_string_equal(want,
                            json_string_value(json_object_get(e, "upto_hash")));
        assert_string_equal(want,
                            json_string_value(json_object_get(e, "prev")));
        assert_string_equal(sb_signkey_id(key_a),
                            json_string_value(json_object_get(e, "key_id")));
        assert_int_equal(2, sb_audit_chain_seq(c));
        assert_string_equal(json_string_value(json_object_get(e, "hash")),
                            sb_audit_chain_hash(c));
        k = json_copy(e);
        json_object_del(k, "sig");
        json_object_del(k, "hash");
        canonical = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
        assert_int_equal(
            0, sodium_hex2bin(sig, sizeof(sig),
                              json_string_value(json_object_get(e, "sig")),
                              SB_SIG_HEXLEN, NULL, &len, NULL));
        assert_int_equal(0, crypto_sign_verify_detached(
                                sig, (const unsigned char *)canonical,
                                strlen(canonical), sb_signkey_public(key_a)));
        free(canonical);
        json_decref(k);
        json_decref(e);
        free(text);
        free(cp);
        sb_audit_chain_destroy(c);
}

/*
 * Tampering, each on a copy of the log
 */

static void modified_field_is_detected_at_its_entry(void **state)
{
        sb_audit_report_t rep;
        log_t l;
        size_t i;
        json_t *e;

        (void)state;
        build(&l, key_a);
        i = find(&l, "gw-2", 40);
        e = entry_at(&l, i);
        json_object_set_new(e, "dataset", json_string("other"));
        log_set(&l, i, e, 0);
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_MODIFIED, i, "gw-2", 40);
        sb_audit_report_release(&rep);
        log_release(&l);
}

/* Whoever recomputes the hash of the entry they changed breaks the link
 * from the next one. */
static void
modified_entry_with_its_hash_recomputed_breaks_the_next_link(void **state)
{
        sb_audit_report_t rep;
        log_t l;
        size_t i;
        json_t *e;

        (void)state;
        build(&l, key_a);
        i = find(&l, "gw-2", 40);
        e = entry_at(&l, i);
        json_object_set_new(e, "notified",
                            json_pack("[s, s]", "reuser-a", "reuser-b"));
        log_set(&l, i, e, 1);
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_MODIFIED, find(&l, "gw-2", 41), "gw-2", 41);
        assert_non_null(strstr(rep.first.reason, "seq 40"));
        sb_audit_report_release(&rep);
        log_release(&l);
}

static void deleted_entry_is_a_gap(void **state)
{
        sb_audit_report_t rep;
        log_t l;

        (void)state;
        build(&l, key_a);
        log_del(&l, find(&l, "gw-1", 60));
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_MISSING, find(&l, "gw-1", 61), "gw-1", 61);
        assert_non_null(strstr(rep.first.reason, "seq 60 is missing"));
        sb_audit_report_release(&rep);
        log_release(&l);
}

/*
 * A forged entry made to fit: the next seq, prev = the hash of the entry
 * before, its own hash recomputed. `before`: inserted before the genuine
 * entry with that seq, else right after it.
 */
static void forge_and_insert(log_t *l, int before, size_t *forged)
{
        size_t prev_i = find(l, "gw-1", 69), at;
        json_t *prev = entry_at(l, prev_i),
               *e = entry_at(l, find(l, "gw-1", 70));
        char h[SB_AUDIT_HASH_HEXLEN + 1];

        json_object_set_new(e, "event_id", json_string("forged"));
        json_object_set(e, "prev", json_object_get(prev, "hash"));
        assert_int_equal(SB_OK, sb_audit_entry_hash(e, h));
        json_object_set_new(e, "hash", json_string(h));
        at = before ? find(l, "gw-1", 70) : find(l, "gw-1", 70) + 1;
        log_insert(l, at, json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS));
        *forged = at;
        json_decref(e);
        json_decref(prev);
}

static void inserted_forged_entry_is_named(void **state)
{
        sb_audit_report_t rep;
        size_t forged;
        log_t l, copy;

        (void)state;
        build(&l, key_a);
        log_copy(&l, &copy);

        forge_and_insert(&l, 1, &forged);
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_INSERTED, forged, "gw-1", 70);
        sb_audit_report_release(&rep);

        forge_and_insert(&copy, 0, &forged);
        verify(&copy, 0, &rep);
        expect_break(&rep, SB_AUDIT_INSERTED, forged, "gw-1", 70);
        sb_audit_report_release(&rep);
        log_release(&copy);
        log_release(&l);

        /* A copy of an entry, replayed right after it. */
        build(&l, key_a);
        forged = find(&l, "gw-2", 12) + 1;
        log_insert(&l, forged, strdup(l.lines[forged - 1]));
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_INSERTED, forged, "gw-2", 12);
        sb_audit_report_release(&rep);
        log_release(&l);
}

static void swapped_entries_of_one_chain_are_reordered(void **state)
{
        sb_audit_report_t rep;
        size_t i, j;
        char *tmp;
        log_t l;

        (void)state;
        build(&l, key_a);
        i = find(&l, "gw-2", 30);
        j = find(&l, "gw-2", 31);
        tmp = l.lines[i];
        l.lines[i] = l.lines[j];
        l.lines[j] = tmp;
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_REORDERED, i, "gw-2", 31);
        assert_int_equal(1, rep.problems);
        sb_audit_report_release(&rep);
        log_release(&l);
}

static void altered_checkpoint_signature_is_detected(void **state)
{
        sb_audit_report_t rep;
        const char *sig;
        char *bad;
        size_t i;
        json_t *e;
        log_t l;

        (void)state;
        build(&l, key_a);
        i = find_checkpoint(&l, "gw-1", 50);
        e = entry_at(&l, i);
        sig = json_string_value(json_object_get(e, "sig"));
        bad = strdup(sig);
        bad[10] = bad[10] == '0' ? '1' : '0';
        json_object_set_new(e, "sig", json_string(bad));
        free(bad);
        log_set(&l, i, e, 1); /* its hash recomputed: only sig is wrong */
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_BAD_SIGNATURE, i, "gw-1", 52);
        sb_audit_report_release(&rep);
        log_release(&l);
}

/*
 * Entries cut out of a checkpointed range: the checkpoint no longer
 * follows the entry it names.
 */
static void truncation_inside_a_checkpointed_range_is_a_gap(void **state)
{
        sb_audit_report_t rep;
        size_t from, to;
        json_t *e;
        log_t l;

        (void)state;
        build(&l, key_a);
        from = find(&l, "gw-1", 80);
        to = find_checkpoint(&l, "gw-1", 80); /* kept */
        while (to-- > from)
                log_del(&l, from);
        e = entry_at(&l, from);
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_MISSING, from,
                     json_string_value(json_object_get(e, "chain")),
                     json_integer_value(json_object_get(e, "seq")));
        json_decref(e);
        sb_audit_report_release(&rep);
        log_release(&l);
}

/* What a hash chain cannot show: the end cut off. The entries left after
 * the last checkpoint are reported as not covered. */
static void truncated_tail_is_reported_not_yet_covered(void **state)
{
        sb_audit_report_t rep;
        char pos[32];
        size_t cut;
        log_t l;

        (void)state;
        build(&l, key_a);
        cut = find(&l, "gw-1", 60);
        while (l.cnt > cut)
                log_del(&l, l.cnt - 1);
        verify(&l, 0, &rep);
        expect_intact(&rep);
        /* the checkpoint at seq 52 covers up to 51 */
        assert_int_equal(51, chain_of(&rep, "gw-1")->covered_seq);
        assert_int_equal(7, chain_of(&rep, "gw-1")->uncovered); /* seq 53..59 */
        snprintf(pos, sizeof(pos), "line %zu", find(&l, "gw-1", 53) + 1);
        assert_string_equal(pos, chain_of(&rep, "gw-1")->first_uncovered);
        sb_audit_report_release(&rep);
        log_release(&l);
}

static void checkpoint_signed_with_an_undeclared_key_is_refused(void **state)
{
        sb_audit_report_t rep;
        log_t l;

        (void)state;
        build(&l, key_b); /* gw-2 signs with key_b */
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_UNKNOWN_KEY, find_checkpoint(&l, "gw-2", 0),
                     "gw-2", EVERY + 1);
        assert_non_null(strstr(rep.first.reason, sb_signkey_id(key_b)));
        sb_audit_report_release(&rep);
        log_release(&l);
}

static void first_broken_link_is_the_earliest_in_the_log(void **state)
{
        sb_audit_report_t rep;
        size_t i;
        json_t *e;
        log_t l;

        (void)state;
        build(&l, key_a);
        log_del(&l, find(&l, "gw-1", 100));
        i = find(&l, "gw-2", 20);
        e = entry_at(&l, i);
        json_object_set_new(e, "at", json_integer(1));
        log_set(&l, i, e, 0);
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_MODIFIED, i, "gw-2", 20);
        assert_int_equal(2, rep.problems);
        sb_audit_report_release(&rep);
        log_release(&l);
}

static void unchained_entries_fail_unless_allowed(void **state)
{
        sb_audit_report_t rep;
        log_t l;

        (void)state;
        build(&l, key_a);
        log_insert(&l, 0,
                   strdup("{\"op\": \"rights.propagate\", \"author\": "
                          "\"sharebus://gateway/gw-1\", \"event_id\": \"e0\", "
                          "\"at\": 1795500000000}"));
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_UNCHAINED, 0, NULL, 0);
        sb_audit_report_release(&rep);

        verify(&l, SB_AUDIT_ALLOW_UNCHAINED, &rep);
        expect_intact(&rep);
        assert_int_equal(1, rep.unchained);
        assert_string_equal("line 1", rep.first_unchained);
        sb_audit_report_release(&rep);

        /* Not JSON at all is never allowed. */
        log_insert(&l, 5, strdup("{\"op\": \"x\", \"op\": \"y\"}"));
        verify(&l, SB_AUDIT_ALLOW_UNCHAINED, &rep);
        expect_break(&rep, SB_AUDIT_MALFORMED, 5, NULL, 0);
        sb_audit_report_release(&rep);
        log_release(&l);
}

/*
 * The writer inside Kafka transactions
 */

/* Appends `n` events; keeps their texts in `l` when `commit`. */
static void txn(sb_audit_chain_t *c, log_t *l, int n, int commit)
{
        log_t aborted = {0};
        int i;

        sb_audit_chain_mark(c);
        for (i = 0; i < n; i++)
                write_event(commit ? l : &aborted, c, "gw-1", i,
                            1795600000000 + i);
        if (!commit)
                sb_audit_chain_rollback(c);
        log_release(&aborted);
}

static void
rollback_after_an_aborted_transaction_keeps_the_chain_valid(void **state)
{
        char errstr[512];
        sb_audit_report_t rep;
        sb_audit_chain_t *c;
        log_t l = {0}, aborted = {0};

        (void)state;
        c = sb_audit_chain_new("gw-1", key_a, 6, errstr, sizeof(errstr));
        assert_non_null(c);
        txn(c, &l, 4, 1);
        /* crosses a checkpoint: rolled back with the rest */
        txn(c, &l, 5, 0);
        assert_int_equal(4, sb_audit_chain_seq(c));
        txn(c, &l, 5, 1);
        close_chain(&l, c);
        verify(&l, 0, &rep);
        expect_intact(&rep);
        assert_int_equal(4 + 5 + 1 + 1, chain_of(&rep, "gw-1")->last_seq);
        assert_int_equal(2, chain_of(&rep, "gw-1")->checkpoints);
        sb_audit_report_release(&rep);
        log_release(&l);

        /* Without the rollback, what was committed next has a gap. */
        c = sb_audit_chain_new("gw-1", key_a, 6, errstr, sizeof(errstr));
        assert_non_null(c);
        memset(&l, 0, sizeof(l));
        txn(c, &l, 4, 1);
        write_event(&aborted, c, "gw-1", 0, 1795600000000);
        log_release(&aborted);
        txn(c, &l, 2, 1);
        sb_audit_chain_destroy(c);
        verify(&l, 0, &rep);
        expect_break(&rep, SB_AUDIT_MISSING, 4, "gw-1", 6);
        sb_audit_report_release(&rep);
        log_release(&l);
}

/* A restarted writer finds its chain's end in the log and continues it. */
static void resumed_chain_continues_the_log(void **state)
{
        sb_audit_tail_t tail;
        sb_audit_report_t rep;
        sb_audit_chain_t *c;
        char errstr[512], *cp;
        log_t l;
        size_t i;

        (void)state;
        build(&l, key_a);
        /* gw-1 crashed after its seq 59: no close checkpoint */
        i = find(&l, "gw-1", 60);
        while (l.cnt > i)
                log_del(&l, l.cnt - 1);
        memset(&tail, 0, sizeof(tail));
        for (i = 0; i < l.cnt; i++)
                sb_audit_last_of_chain("gw-1", l.lines[i], strlen(l.lines[i]),
                                       &tail);
        assert_int_equal(59, tail.seq);
        assert_int_equal(7, tail.since_checkpoint);
        c = sb_audit_chain_new("gw-1", key_a, EVERY, errstr, sizeof(errstr));
        assert_non_null(c);
        assert_int_equal(SB_OK, sb_audit_chain_resume(c, tail.seq, tail.hash,
                                                      tail.since_checkpoint,
                                                      errstr, sizeof(errstr)));
        assert_int_equal(
            SB_OK, sb_audit_chain_checkpoint(c, &cp, errstr, sizeof(errstr)));
        log_add(&l, cp);
        write_event(&l, c, "gw-1", 1000, 1795700000000);
        close_chain(&l, c);
        verify(&l, 0, &rep);
        expect_intact(&rep);
        assert_int_equal(62, chain_of(&rep, "gw-1")->last_seq);
        assert_int_equal(0, chain_of(&rep, "gw-1")->uncovered);
        sb_audit_report_release(&rep);
        log_release(&l);

        c = sb_audit_chain_new("gw-1", key_a, EVERY, errstr, sizeof(errstr));
        assert_int_equal(
            SB_ERR_INVALID_ARG,
            sb_audit_chain_resume(c, 3, "abc", 0, errstr, sizeof(errstr)));
        sb_audit_chain_destroy(c);
}

static void append_refuses_what_the_canonical_form_cannot_hold(void **state)
{
        static const char *const bad[] = {
            "{\"op\": \"x\", \"ratio\": 0.5}",
            "{\"op\": \"x\", \"n\": {\"deep\": [1, 2.5]}}",
            "{\"op\": \"x\", \"seq\": 3}",
            "{\"op\": \"x\", \"hash\": \"00\"}",
            "{\"op\": \"x\", \"_offset\": 3}",
            "{\"op\": \"x\", \"at\": \"2026-11-25T10:00:00Z\"}",
            "{\"op\": \"audit.checkpoint\"}",
            "{\"author\": \"a\"}",
            "[1]",
        };
        char errstr[512], *text, *cp;
        sb_audit_chain_t *c;
        size_t i;
        json_t *e;

        (void)state;
        c = sb_audit_chain_new("gw-1", key_a, EVERY, errstr, sizeof(errstr));
        assert_non_null(c);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                e = json_loads(bad[i], 0, NULL);
                assert_non_null(e);
                if (sb_audit_chain_append(c, e, &text, &cp, errstr,
                                          sizeof(errstr)) != SB_ERR_INVALID_ARG)
                        fail_msg("%s: expected SB_ERR_INVALID_ARG", bad[i]);
                assert_null(text);
                assert_null(cp);
                assert_non_null(strstr(errstr, "chain 'gw-1'"));
                json_decref(e);
        }
        assert_int_equal(0, sb_audit_chain_seq(c));
        sb_audit_chain_destroy(c);
        assert_null(sb_audit_chain_new("", key_a, 1, errstr, sizeof(errstr)));
}

/*
 * The verification keys: "audit_keys" in the platform declaration
 */

static sb_platform_t *load_platform(const char *dir, const char *keys,
                                    char *errstr, size_t errstr_size,
                                    char *path, size_t path_size)
{
        char text[2048];
        FILE *fp;

        snprintf(path, path_size, "%s/platform.json", dir);
        snprintf(text, sizeof(text),
                 "{\"gateway\": [\"sb-gateway.g1\"], \"datasets\": "
                 "{\"beneficiaries\": {\"holders\": [\"holder.g1\"]}}, "
                 "\"grants_dir\": \"%s/grants\", \"schemas_dir\": \"%s\", "
                 "\"replication_factor\": 1%s%s}",
                 dir, SB_SCHEMAS_DIR, keys ? ", \"audit_keys\": " : "",
                 keys ? keys : "");
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
        return sb_platform_load(path, errstr, errstr_size);
}

#define KEY1 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define KEY2 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"

static void audit_keys_are_declared_in_the_platform(void **state)
{
        static const struct {
                const char *keys;
                const char *expected; /* %s: the file */
        } bad[] = {
            {"[]", "platform '%s': key 'audit_keys': expected a non-empty "
                   "array of Ed25519 public keys (the content of the "
                   "NAME.pub files the platform team made with 'sharebus "
                   "keys generate'); leave the key out when none is known"},
            {"[\"" KEY1 "\", \"abc\"]",
             "platform '%s': key 'audit_keys' item 1: expected an Ed25519 "
             "public key as 64 hex characters (the content of NAME.pub, as "
             "written by 'sharebus keys generate')"},
            {"[\"" KEY2 "\", \"" KEY2 "\"]",
             "platform '%s': key 'audit_keys' item 1: the same key as item "
             "0"},
        };
        unsigned char pub[SB_SIGN_PUBLIC_BYTES], want[SB_SIGN_PUBLIC_BYTES];
        char dir[] = "/tmp/sb-test-audit-XXXXXX", errstr[1024], path[256];
        char expected[1024];
        sb_platform_t *pf;
        size_t i, len;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/grants", dir);
        assert_int_equal(0, mkdir(path, 0700));
        pf = load_platform(dir, NULL, errstr, sizeof(errstr), path,
                           sizeof(path));
        if (!pf)
                fail_msg("%s", errstr);
        assert_int_equal(0, sb_platform_audit_key_cnt(pf));
        sb_platform_destroy(pf);

        pf = load_platform(dir, "[\"" KEY1 "\", \"" KEY2 "\"]", errstr,
                           sizeof(errstr), path, sizeof(path));
        if (!pf)
                fail_msg("%s", errstr);
        assert_int_equal(2, sb_platform_audit_key_cnt(pf));
        sb_platform_audit_key(pf, 1, pub);
        assert_int_equal(0, sodium_hex2bin(want, sizeof(want), KEY2,
                                           strlen(KEY2), NULL, &len, NULL));
        assert_memory_equal(want, pub, sizeof(pub));
        sb_platform_destroy(pf);

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                pf = load_platform(dir, bad[i].keys, errstr, sizeof(errstr),
                                   path, sizeof(path));
                if (pf) {
                        sb_platform_destroy(pf);
                        fail_msg("%s: loaded, expected an error", bad[i].keys);
                }
                snprintf(expected, sizeof(expected), bad[i].expected, path);
                assert_string_equal(expected, errstr);
        }
        sb_test_rmtree(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(intact_log_of_two_writers_verifies),
            cmocka_unit_test(hash_and_signature_are_the_documented_ones),
            cmocka_unit_test(modified_field_is_detected_at_its_entry),
            cmocka_unit_test(
                modified_entry_with_its_hash_recomputed_breaks_the_next_link),
            cmocka_unit_test(deleted_entry_is_a_gap),
            cmocka_unit_test(inserted_forged_entry_is_named),
            cmocka_unit_test(swapped_entries_of_one_chain_are_reordered),
            cmocka_unit_test(altered_checkpoint_signature_is_detected),
            cmocka_unit_test(truncation_inside_a_checkpointed_range_is_a_gap),
            cmocka_unit_test(truncated_tail_is_reported_not_yet_covered),
            cmocka_unit_test(
                checkpoint_signed_with_an_undeclared_key_is_refused),
            cmocka_unit_test(first_broken_link_is_the_earliest_in_the_log),
            cmocka_unit_test(unchained_entries_fail_unless_allowed),
            cmocka_unit_test(
                rollback_after_an_aborted_transaction_keeps_the_chain_valid),
            cmocka_unit_test(resumed_chain_continues_the_log),
            cmocka_unit_test(
                append_refuses_what_the_canonical_form_cannot_hold),
            cmocka_unit_test(audit_keys_are_declared_in_the_platform),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
