#include "audit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

#define SB_AUDIT_HASH_BYTES 32 /* BLAKE2b-256 */

static const char sb_audit_zero_hash[SB_AUDIT_HASH_HEXLEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* 64 lower-case hex digits, as hashes are written. */
static int sb_audit_is_hash(const char *s)
{
        size_t i;

        if (!s || strlen(s) != SB_AUDIT_HASH_HEXLEN)
                return 0;
        for (i = 0; i < SB_AUDIT_HASH_HEXLEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') ||
                      (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return 1;
}

/* Whether `j` holds a floating-point number anywhere. */
static int sb_audit_has_real(const json_t *j)
{
        const char *k;
        json_t *v;
        size_t i;

        if (json_is_real(j))
                return 1;
        if (json_is_object(j)) {
                json_object_foreach((json_t *)j, k, v)
                {
                        if (sb_audit_has_real(v))
                                return 1;
                }
        } else if (json_is_array(j)) {
                json_array_foreach(j, i, v)
                {
                        if (sb_audit_has_real(v))
                                return 1;
                }
        }
        return 0;
}

/*
 * `e` as compact JSON with sorted keys (malloc'ed; NULL when out of
 * memory). jansson writes a control character as \u00XX with upper-case
 * hex digits; they are made lower-case, as Python's json module and RFC
 * 8785 write them, so that an auditor's json.dumps() gives the same bytes.
 */
static char *sb_audit_dumps(const json_t *e)
{
        char *s = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS), *p;
        int i;

        for (p = s; p && *p; p++) {
                if (*p != '\\')
                        continue;
                if (!*++p)
                        break;
                if (*p != 'u')
                        continue; /* \\, \", \n...: skipped whole */
                for (i = 1; i <= 4 && p[i]; i++)
                        p[i] = (char)tolower((unsigned char)p[i]);
                p += i - 1;
        }
        return s;
}

/*
 * The canonical form of `entry` without "hash" (and without "sig" when
 * `without_sig`), as a malloc'ed string; NULL when out of memory.
 */
static char *sb_audit_canonical(const json_t *entry, int without_sig)
{
        json_t *c = json_copy((json_t *)entry); /* shallow: keys only */
        char *s;

        if (!c)
                return NULL;
        json_object_del(c, "hash");
        if (without_sig)
                json_object_del(c, "sig");
        s = sb_audit_dumps(c);
        json_decref(c);
        return s;
}

sb_err_t sb_audit_entry_hash(const json_t *entry,
                             char out[SB_AUDIT_HASH_HEXLEN + 1])
{
        unsigned char h[SB_AUDIT_HASH_BYTES];
        char *s;

        if (!json_is_object(entry) || sb_audit_has_real(entry))
                return SB_ERR_INVALID_ARG;
        if (!(s = sb_audit_canonical(entry, 0)))
                return SB_ERR_NOMEM;
        crypto_generichash(h, sizeof(h), (const unsigned char *)s, strlen(s),
                           NULL, 0);
        free(s);
        sodium_bin2hex(out, SB_AUDIT_HASH_HEXLEN + 1, h, sizeof(h));
        return SB_OK;
}

/*
 * Writer
 */

/* Where a chain stands: its last entry, and how many follow its last
 * checkpoint. */
typedef struct sb_audit_state_s {
        int64_t seq;
        int64_t since;
        char hash[SB_AUDIT_HASH_HEXLEN + 1];
} sb_audit_state_t;

struct sb_audit_chain_s {
        char *id;
        const sb_signkey_t *key; /* borrowed; NULL: no checkpoints */
        int every_n;
        sb_audit_state_t cur;
        sb_audit_state_t mark;
};

sb_audit_chain_t *sb_audit_chain_new(const char *chain_id,
                                     const sb_signkey_t *key, int every_n,
                                     char *errstr, size_t errstr_size)
{
        sb_audit_chain_t *c;

        if (!chain_id || !*chain_id) {
                sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                          "audit: a chain needs a non-empty chain id (the "
                          "writer's transactional.id)");
                return NULL;
        }
        c = calloc(1, sizeof(*c));
        if (!c || !(c->id = strdup(chain_id))) {
                free(c);
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        c->key = key;
        c->every_n = every_n > 0 ? every_n : SB_AUDIT_EVERY_DEFAULT;
        memcpy(c->cur.hash, sb_audit_zero_hash, sizeof(c->cur.hash));
        c->mark = c->cur;
        return c;
}

void sb_audit_chain_destroy(sb_audit_chain_t *chain)
{
        if (!chain)
                return;
        free(chain->id);
        free(chain);
}

sb_err_t sb_audit_chain_resume(sb_audit_chain_t *chain, int64_t last_seq,
                               const char *last_hash, int64_t since_checkpoint,
                               char *errstr, size_t errstr_size)
{
        if (last_seq < 0 || since_checkpoint < 0 ||
            !sb_audit_is_hash(last_hash) ||
            (last_seq == 0 && strcmp(last_hash, sb_audit_zero_hash)))
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "audit: chain '%s': cannot resume after seq "
                                 "%lld with hash \"%.70s\": expected a seq "
                                 ">= 0 and 64 lower-case hex digits",
                                 chain->id, (long long)last_seq,
                                 last_hash ? last_hash : "");
        chain->cur.seq = last_seq;
        chain->cur.since = since_checkpoint;
        memcpy(chain->cur.hash, last_hash, sizeof(chain->cur.hash));
        chain->mark = chain->cur;
        return SB_OK;
}

void sb_audit_chain_mark(sb_audit_chain_t *chain)
{
        chain->mark = chain->cur;
}

void sb_audit_chain_rollback(sb_audit_chain_t *chain)
{
        chain->cur = chain->mark;
}

int64_t sb_audit_chain_seq(const sb_audit_chain_t *chain)
{
        return chain->cur.seq;
}

const char *sb_audit_chain_hash(const sb_audit_chain_t *chain)
{
        return chain->cur.hash;
}

/* Adds hash to `e` and returns its text; advances `st` to it. */
static sb_err_t sb_audit_seal(json_t *e, sb_audit_state_t *st, char **textp)
{
        char h[SB_AUDIT_HASH_HEXLEN + 1];
        sb_err_t err;

        if ((err = sb_audit_entry_hash(e, h)))
                return err;
        if (json_object_set_new(e, "hash", json_string(h)) ||
            !(*textp = sb_audit_dumps(e)))
                return SB_ERR_NOMEM;
        st->seq++;
        memcpy(st->hash, h, sizeof(st->hash));
        return SB_OK;
}

/* The checkpoint after `st`, which it advances. */
static sb_err_t sb_audit_make_checkpoint(const sb_audit_chain_t *chain,
                                         sb_audit_state_t *st, char **textp,
                                         char *errstr, size_t errstr_size)
{
        char sig[SB_SIG_HEXLEN + 1], *signed_text = NULL;
        sb_err_t err = SB_ERR_NOMEM;
        json_t *e;

        *textp = NULL;
        e = json_pack("{s:s, s:s, s:I, s:s, s:I, s:I, s:s, s:s}", "op",
                      SB_AUDIT_OP_CHECKPOINT, "chain", chain->id, "seq",
                      (json_int_t)(st->seq + 1), "prev", st->hash, "at",
                      (json_int_t)sb_now_ms(), "upto_seq", (json_int_t)st->seq,
                      "upto_hash", st->hash, "key_id",
                      sb_signkey_id(chain->key));
        if (!e || !(signed_text = sb_audit_canonical(e, 1)))
                goto done;
        if (sb_sign(chain->key, signed_text, strlen(signed_text), sig)) {
                err = SB_ERR_CRYPTO;
                goto done;
        }
        if (json_object_set_new(e, "sig", json_string(sig)))
                goto done;
        err = sb_audit_seal(e, st, textp);
        if (!err)
                st->since = 0;
done:
        if (err)
                sb_seterr(errstr, errstr_size, err,
                          "audit: chain '%s': cannot make a checkpoint: %s",
                          chain->id, sb_err2str(err));
        free(signed_text);
        json_decref(e);
        return err;
}

/* Why `entry` cannot be chained, into errstr; SB_OK when it can. */
static sb_err_t sb_audit_check_entry(const sb_audit_chain_t *chain,
                                     const json_t *entry, char *errstr,
                                     size_t errstr_size)
{
        static const char *const reserved[] = {"chain", "seq", "prev", "hash"};
        const char *op = json_string_value(json_object_get(entry, "op"));
        const json_t *at = json_object_get(entry, "at");
        const char *k;
        json_t *v;
        size_t i;

        if (!json_is_object(entry))
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "audit: chain '%s': an entry must be a "
                                 "JSON object",
                                 chain->id);
        if (!op || !*op || !strcmp(op, SB_AUDIT_OP_CHECKPOINT))
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "audit: chain '%s': key 'op': expected the "
                                 "entry's operation, a non-empty string other "
                                 "than \"%s\"",
                                 chain->id, SB_AUDIT_OP_CHECKPOINT);
        for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
                if (json_object_get(entry, reserved[i]))
                        return sb_seterr(errstr, errstr_size,
                                         SB_ERR_INVALID_ARG,
                                         "audit: chain '%s': entry '%s': key "
                                         "'%s' is set by the chain, not by "
                                         "the caller",
                                         chain->id, op, reserved[i]);
        if (at && !json_is_integer(at))
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "audit: chain '%s': entry '%s': key 'at': "
                                 "expected ms since the epoch, an integer",
                                 chain->id, op);
        json_object_foreach((json_t *)entry, k, v)
        {
                if (k[0] == '_')
                        return sb_seterr(errstr, errstr_size,
                                         SB_ERR_INVALID_ARG,
                                         "audit: chain '%s': entry '%s': key "
                                         "'%s': keys starting with '_' are "
                                         "left to exports (_offset)",
                                         chain->id, op, k);
                if (sb_audit_has_real(v))
                        return sb_seterr(
                            errstr, errstr_size, SB_ERR_INVALID_ARG,
                            "audit: chain '%s': entry '%s': key '%s' holds a "
                            "floating-point number; audit entries take "
                            "integers and strings only, so that their hash "
                            "does not depend on how a number is printed",
                            chain->id, op, k);
        }
        return SB_OK;
}

sb_err_t sb_audit_chain_append(sb_audit_chain_t *chain, const json_t *entry,
                               char **textp, char **checkpointp, char *errstr,
                               size_t errstr_size)
{
        sb_audit_state_t next = chain->cur;
        char *text = NULL, *cp = NULL;
        json_t *e = NULL;
        sb_err_t err;

        *textp = NULL;
        *checkpointp = NULL;
        if ((err = sb_audit_check_entry(chain, entry, errstr, errstr_size)))
                return err;
        err = SB_ERR_NOMEM;
        if (!(e = json_copy((json_t *)entry)) ||
            json_object_set_new(e, "chain", json_string(chain->id)) ||
            json_object_set_new(e, "seq", json_integer(next.seq + 1)) ||
            json_object_set_new(e, "prev", json_string(next.hash)) ||
            (!json_object_get(e, "at") &&
             json_object_set_new(e, "at", json_integer(sb_now_ms()))))
                goto fail;
        if ((err = sb_audit_seal(e, &next, &text)))
                goto fail;
        next.since++;
        if (chain->key && next.since >= chain->every_n &&
            (err = sb_audit_make_checkpoint(chain, &next, &cp, errstr,
                                            errstr_size)))
                goto done;
        chain->cur = next;
        *textp = text;
        *checkpointp = cp;
        json_decref(e);
        return SB_OK;
fail:
        sb_seterr(errstr, errstr_size, err, "audit: chain '%s': %s", chain->id,
                  sb_err2str(err));
done:
        free(text);
        json_decref(e);
        return err;
}

sb_err_t sb_audit_chain_checkpoint(sb_audit_chain_t *chain, char **textp,
                                   char *errstr, size_t errstr_size)
{
        sb_audit_state_t next = chain->cur;
        sb_err_t err;

        *textp = NULL;
        if (!chain->key || next.since == 0)
                return SB_OK;
        err =
            sb_audit_make_checkpoint(chain, &next, textp, errstr, errstr_size);
        if (!err)
                chain->cur = next;
        return err;
}

int sb_audit_last_of_chain(const char *chain_id, const void *text, size_t len,
                           sb_audit_tail_t *tail)
{
        const char *id, *hash, *op;
        json_t *e;
        int64_t seq;
        int found = 0;

        if (!text)
                return 0;
        e = json_loadb(text, len, 0, NULL);
        id = json_string_value(json_object_get(e, "chain"));
        if (!id || strcmp(id, chain_id))
                goto done;
        seq = json_integer_value(json_object_get(e, "seq"));
        hash = json_string_value(json_object_get(e, "hash"));
        op = json_string_value(json_object_get(e, "op"));
        if (seq <= tail->seq || !sb_audit_is_hash(hash))
                goto done;
        tail->seq = seq;
        memcpy(tail->hash, hash, sizeof(tail->hash));
        if (op && !strcmp(op, SB_AUDIT_OP_CHECKPOINT))
                tail->since_checkpoint = 0;
        else
                tail->since_checkpoint++;
        found = 1;
done:
        json_decref(e);
        return found;
}

/*
 * Verifier
 */

const char *sb_audit_break2str(sb_audit_break_t kind)
{
        switch (kind) {
        case SB_AUDIT_INTACT:
                return "intact";
        case SB_AUDIT_MALFORMED:
                return "malformed";
        case SB_AUDIT_UNCHAINED:
                return "unchained";
        case SB_AUDIT_MODIFIED:
                return "modified";
        case SB_AUDIT_MISSING:
                return "missing";
        case SB_AUDIT_INSERTED:
                return "inserted";
        case SB_AUDIT_REORDERED:
                return "reordered";
        case SB_AUDIT_BAD_CHECKPOINT:
                return "bad-checkpoint";
        case SB_AUDIT_BAD_SIGNATURE:
                return "bad-signature";
        case SB_AUDIT_UNKNOWN_KEY:
                return "unknown-key";
        }
        return "?";
}

/* What the verifier knows of one chain. */
typedef struct sb_av_chain_s {
        char *id;
        int64_t first_seq;
        int64_t seq; /* the tail: the entry the next one must follow */
        char hash[SB_AUDIT_HASH_HEXLEN + 1];
        size_t index; /* its place in the feed */
        char *pos;    /* its position */
        size_t entries, checkpoints;
        int64_t covered_seq;
        size_t uncovered;
        char *first_uncovered;
        /* seqs found missing and not seen since (0: none) */
        int64_t gap_lo, gap_hi;
        /* a second entry with the tail's seq, seen after the tail */
        int fork;
        char fork_hash[SB_AUDIT_HASH_HEXLEN + 1];
        char *fork_pos;
} sb_av_chain_t;

/* How the first broken link may still be explained by later entries. */
typedef enum {
        SB_AV_SETTLED = 0,
        SB_AV_GAP,  /* missing, unless the seqs come later: reordered */
        SB_AV_FORK, /* a seq twice: the next entry tells which is inserted */
} sb_av_pending_t;

struct sb_audit_verify_s {
        unsigned char (*keys)[SB_SIGN_PUBLIC_BYTES];
        char (*key_ids)[SB_KEY_ID_HEXLEN + 1];
        size_t key_cnt;
        int flags;
        size_t index; /* values fed */
        json_t *byid; /* chain id -> index in chains */
        sb_av_chain_t **chains;
        size_t chain_cnt, chain_cap;
        size_t unchained;
        char *first_unchained;
        size_t problems;
        sb_audit_link_t first;
        size_t first_index;
        sb_av_pending_t pending;
        const sb_av_chain_t *pending_chain;
        int nomem;
};

sb_audit_verify_t *
sb_audit_verify_new(const unsigned char (*keys)[SB_SIGN_PUBLIC_BYTES],
                    size_t key_cnt, int flags)
{
        sb_audit_verify_t *v = calloc(1, sizeof(*v));
        size_t i;

        if (!v)
                return NULL;
        v->flags = flags;
        v->byid = json_object();
        if (key_cnt) {
                v->keys = calloc(key_cnt, sizeof(*v->keys));
                v->key_ids = calloc(key_cnt, sizeof(*v->key_ids));
        }
        if (!v->byid || (key_cnt && (!v->keys || !v->key_ids))) {
                sb_audit_verify_destroy(v);
                return NULL;
        }
        for (i = 0; i < key_cnt; i++) {
                memcpy(v->keys[i], keys[i], SB_SIGN_PUBLIC_BYTES);
                sb_key_id(keys[i], v->key_ids[i]);
        }
        v->key_cnt = key_cnt;
        return v;
}

static void sb_av_link_release(sb_audit_link_t *l)
{
        free(l->position);
        free(l->chain);
        free(l->reason);
        memset(l, 0, sizeof(*l));
}

static void sb_av_chain_destroy(sb_av_chain_t *c)
{
        if (!c)
                return;
        free(c->id);
        free(c->pos);
        free(c->first_uncovered);
        free(c->fork_pos);
        free(c);
}

void sb_audit_verify_destroy(sb_audit_verify_t *v)
{
        size_t i;

        if (!v)
                return;
        for (i = 0; i < v->chain_cnt; i++)
                sb_av_chain_destroy(v->chains[i]);
        free(v->chains);
        json_decref(v->byid);
        free(v->keys);
        free(v->key_ids);
        free(v->first_unchained);
        sb_av_link_release(&v->first);
        free(v);
}

/* strdup() that remembers running out of memory. */
static char *sb_av_strdup(sb_audit_verify_t *v, const char *s)
{
        char *d = s ? strdup(s) : NULL;

        if (s && !d)
                v->nomem = 1;
        return d;
}

/* Replaces *dst with a copy of `s`. */
static void sb_av_set(sb_audit_verify_t *v, char **dst, const char *s)
{
        free(*dst);
        *dst = sb_av_strdup(v, s);
}

static void sb_av_reason(sb_audit_verify_t *v, const char *fmt, va_list ap)
{
        free(v->first.reason);
        if (vasprintf(&v->first.reason, fmt, ap) == -1) {
                v->first.reason = NULL;
                v->nomem = 1;
        }
}

/* Rewrites the reason of the first broken link. */
__attribute__((format(printf, 2, 3))) static void
sb_av_explain(sb_audit_verify_t *v, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        sb_av_reason(v, fmt, ap);
        va_end(ap);
}

/*
 * Counts a failed check of the entry at feed index `index`; it becomes the
 * first broken link when nothing failed earlier in the log. Returns 1 when
 * it did.
 */
__attribute__((format(printf, 7, 8))) static int
sb_av_fail(sb_audit_verify_t *v, size_t index, sb_audit_break_t kind,
           const char *pos, const char *chain, int64_t seq, const char *fmt,
           ...)
{
        va_list ap;

        v->problems++;
        if (v->first.kind != SB_AUDIT_INTACT && v->first_index <= index)
                return 0;
        v->first.kind = kind;
        v->first_index = index;
        v->first.seq = seq;
        sb_av_set(v, &v->first.position, pos);
        sb_av_set(v, &v->first.chain, chain);
        va_start(ap, fmt);
        sb_av_reason(v, fmt, ap);
        va_end(ap);
        v->pending = SB_AV_SETTLED;
        v->pending_chain = NULL;
        return 1;
}

static int sb_av_pending_on(const sb_audit_verify_t *v, sb_av_pending_t p,
                            const sb_av_chain_t *c)
{
        return v->pending == p && v->pending_chain == c;
}

static sb_av_chain_t *sb_av_chain_of(sb_audit_verify_t *v, const char *id)
{
        json_t *i = json_object_get(v->byid, id);
        sb_av_chain_t *c;

        if (i)
                return v->chains[json_integer_value(i)];
        if (v->chain_cnt == v->chain_cap) {
                size_t cap = v->chain_cap ? v->chain_cap * 2 : 8;
                sb_av_chain_t **n = realloc(v->chains, cap * sizeof(*n));

                if (!n)
                        return NULL;
                v->chains = n;
                v->chain_cap = cap;
        }
        c = calloc(1, sizeof(*c));
        if (!c || !(c->id = strdup(id)) ||
            json_object_set_new(v->byid, id,
                                json_integer((json_int_t)v->chain_cnt))) {
                sb_av_chain_destroy(c);
                return NULL;
        }
        v->chains[v->chain_cnt++] = c;
        return c;
}

/* The entry becomes the chain's tail. */
static void sb_av_adopt(sb_audit_verify_t *v, sb_av_chain_t *c, int64_t seq,
                        const char *hash, size_t index, const char *pos)
{
        if (!c->seq)
                c->first_seq = seq;
        c->seq = seq;
        memcpy(c->hash, hash, sizeof(c->hash));
        c->index = index;
        sb_av_set(v, &c->pos, pos);
        c->fork = 0;
}

/*
 * A checkpoint whose links were checked: returns 1 when it names the entry
 * before it and its signature verifies with a declared key.
 */
static int sb_av_checkpoint(sb_audit_verify_t *v, const sb_av_chain_t *c,
                            const json_t *e, int64_t seq, const char *prev,
                            size_t index, const char *pos)
{
        const json_t *upto = json_object_get(e, "upto_seq");
        const char *upto_hash =
            json_string_value(json_object_get(e, "upto_hash"));
        const char *key_id = json_string_value(json_object_get(e, "key_id"));
        const char *sig = json_string_value(json_object_get(e, "sig"));
        char *text;
        size_t i;
        int ok;

        if (!json_is_integer(upto) || json_integer_value(upto) != seq - 1 ||
            seq < 2 || !upto_hash || strcmp(upto_hash, prev) || !key_id ||
            !sig) {
                sb_av_fail(v, index, SB_AUDIT_BAD_CHECKPOINT, pos, c->id, seq,
                           "a checkpoint must name the entry just before it "
                           "(upto_seq %lld, upto_hash equal to its prev) and "
                           "carry key_id and sig",
                           (long long)(seq - 1));
                return 0;
        }
        for (i = 0; i < v->key_cnt; i++)
                if (!strcmp(v->key_ids[i], key_id))
                        break;
        if (i == v->key_cnt) {
                sb_av_fail(v, index, SB_AUDIT_UNKNOWN_KEY, pos, c->id, seq,
                           "checkpoint signed with key %.32s, which is not "
                           "among the audit keys trusted (the platform's "
                           "audit_keys)%s",
                           key_id, v->key_cnt ? "" : ": none is declared");
                return 0;
        }
        if (!(text = sb_audit_canonical(e, 1))) {
                v->nomem = 1;
                return 0;
        }
        ok = sb_verify(v->keys[i], text, strlen(text), sig) == SB_OK;
        free(text);
        if (!ok)
                sb_av_fail(v, index, SB_AUDIT_BAD_SIGNATURE, pos, c->id, seq,
                           "the checkpoint's signature does not verify with "
                           "key %s",
                           key_id);
        return ok;
}

/*
 * An entry with seq <= the tail's: a seq that went missing (reordered), a
 * copy, or a second entry with that seq. Never becomes the tail.
 */
static void sb_av_behind(sb_audit_verify_t *v, sb_av_chain_t *c, int64_t seq,
                         const char *hash, size_t index, const char *pos)
{
        if (c->gap_lo && seq >= c->gap_lo && seq <= c->gap_hi) {
                if (sb_av_pending_on(v, SB_AV_GAP, c)) {
                        v->first.kind = SB_AUDIT_REORDERED;
                        v->pending = SB_AV_SETTLED;
                        sb_av_explain(v,
                                      "seq %lld comes before seq %lld (at "
                                      "%s): entries out of order",
                                      (long long)v->first.seq, (long long)seq,
                                      pos);
                }
                /* Part of the break already counted. */
                if (seq == c->gap_lo)
                        c->gap_lo++;
                else if (seq == c->gap_hi)
                        c->gap_hi--;
                if (c->gap_lo > c->gap_hi)
                        c->gap_lo = c->gap_hi = 0;
                return;
        }
        if (seq == c->seq && !strcmp(hash, c->hash)) {
                sb_av_fail(v, index, SB_AUDIT_INSERTED, pos, c->id, seq,
                           "a copy of seq %lld at %s", (long long)c->seq,
                           c->pos);
                return;
        }
        if (seq == c->seq) {
                if (sb_av_fail(v, index, SB_AUDIT_INSERTED, pos, c->id, seq,
                               "seq %lld appears a second time (first at "
                               "%s): one of the two was inserted",
                               (long long)seq, c->pos)) {
                        v->pending = SB_AV_FORK;
                        v->pending_chain = c;
                }
                c->fork = 1;
                memcpy(c->fork_hash, hash, sizeof(c->fork_hash));
                sb_av_set(v, &c->fork_pos, pos);
                return;
        }
        sb_av_fail(v, index, SB_AUDIT_INSERTED, pos, c->id, seq,
                   "seq %lld comes after seq %lld (at %s): an inserted entry "
                   "or a copy",
                   (long long)seq, (long long)c->seq, c->pos);
}

/* Checks the link from the entry back to the chain's tail. Returns 1 when
 * the entry becomes the tail. */
static int sb_av_link(sb_audit_verify_t *v, sb_av_chain_t *c, int64_t seq,
                      const char *prev, const char *hash, size_t index,
                      const char *pos)
{
        if (!c->seq) {
                if (seq == 1 && strcmp(prev, sb_audit_zero_hash))
                        sb_av_fail(v, index, SB_AUDIT_MODIFIED, pos, c->id, seq,
                                   "seq 1 must have prev 000...0 (no "
                                   "predecessor), it has %.16s...",
                                   prev);
        } else if (seq <= c->seq) {
                sb_av_behind(v, c, seq, hash, index, pos);
                return 0;
        } else if (seq > c->seq + 1) {
                char range[64];

                if (seq - 1 > c->seq + 1)
                        snprintf(range, sizeof(range), "seq %lld to %lld are",
                                 (long long)(c->seq + 1), (long long)(seq - 1));
                else
                        snprintf(range, sizeof(range), "seq %lld is",
                                 (long long)(c->seq + 1));
                if (sb_av_fail(v, index, SB_AUDIT_MISSING, pos, c->id, seq,
                               "%s missing: this entry follows seq %lld at %s",
                               range, (long long)c->seq, c->pos)) {
                        v->pending = SB_AV_GAP;
                        v->pending_chain = c;
                }
                c->gap_lo = c->seq + 1;
                c->gap_hi = seq - 1;
        } else if (!strcmp(prev, c->hash)) {
                /* Linked to the tail: a second entry with the tail's seq
                 * was the inserted one. */
                if (c->fork && sb_av_pending_on(v, SB_AV_FORK, c))
                        sb_av_explain(v,
                                      "seq %lld was inserted: seq %lld at "
                                      "%s follows the seq %lld at %s",
                                      (long long)c->seq, (long long)seq, pos,
                                      (long long)c->seq, c->pos);
        } else if (c->fork && !strcmp(prev, c->fork_hash)) {
                /* Linked to the second entry: the tail was inserted. */
                if (sb_av_pending_on(v, SB_AV_FORK, c)) {
                        sb_av_set(v, &v->first.position, c->pos);
                        v->first_index = c->index;
                        sb_av_explain(v,
                                      "seq %lld was inserted: seq %lld at "
                                      "%s follows the seq %lld at %s",
                                      (long long)c->seq, (long long)seq, pos,
                                      (long long)c->seq, c->fork_pos);
                }
        } else {
                sb_av_fail(v, index, SB_AUDIT_MODIFIED, pos, c->id, seq,
                           "its prev is not the hash of seq %lld at %s: one "
                           "of the two was changed and its hash recomputed, "
                           "or replaced",
                           (long long)c->seq, c->pos);
        }
        if (v->pending == SB_AV_FORK && v->pending_chain == c)
                v->pending = SB_AV_SETTLED;
        sb_av_adopt(v, c, seq, hash, index, pos);
        return 1;
}

sb_err_t sb_audit_verify_feed_json(sb_audit_verify_t *v, const json_t *e,
                                   const char *position, char *errstr,
                                   size_t errstr_size)
{
        const char *id, *prev, *hash, *op;
        char h[SB_AUDIT_HASH_HEXLEN + 1];
        size_t index = v->index++;
        const json_t *seqv;
        sb_av_chain_t *c;
        int64_t seq;
        sb_err_t err;

        if (!json_is_object(e)) {
                sb_av_fail(v, index, SB_AUDIT_MALFORMED, position, NULL, 0,
                           "not a JSON object");
                goto done;
        }
        if (!json_object_get(e, "chain")) {
                if (!v->unchained++)
                        v->first_unchained = sb_av_strdup(v, position);
                if (!(v->flags & SB_AUDIT_ALLOW_UNCHAINED))
                        sb_av_fail(v, index, SB_AUDIT_UNCHAINED, position, NULL,
                                   0,
                                   "an entry without a chain (written before "
                                   "the log was chained, or forged)");
                goto done;
        }
        id = json_string_value(json_object_get(e, "chain"));
        seqv = json_object_get(e, "seq");
        seq = json_integer_value(seqv);
        prev = json_string_value(json_object_get(e, "prev"));
        hash = json_string_value(json_object_get(e, "hash"));
        if (!id || !*id || !json_is_integer(seqv) || seq < 1 ||
            !sb_audit_is_hash(prev) || !sb_audit_is_hash(hash)) {
                sb_av_fail(v, index, SB_AUDIT_MALFORMED, position, id,
                           json_is_integer(seqv) ? seq : 0,
                           "expected chain (a non-empty string), seq (from "
                           "1), prev and hash (64 lower-case hex digits)");
                goto done;
        }
        err = sb_audit_entry_hash(e, h);
        if (err == SB_ERR_NOMEM) {
                v->nomem = 1;
                goto done;
        }
        if (err) {
                sb_av_fail(v, index, SB_AUDIT_MALFORMED, position, id, seq,
                           "holds a floating-point number, which no audit "
                           "entry does");
                goto done;
        }
        if (!(c = sb_av_chain_of(v, id))) {
                v->nomem = 1;
                goto done;
        }
        c->entries++;
        op = json_string_value(json_object_get(e, "op"));
        if (strcmp(h, hash)) {
                sb_av_fail(v, index, SB_AUDIT_MODIFIED, position, id, seq,
                           "its content does not match its hash: changed "
                           "after it was written");
                if (seq > c->seq)
                        sb_av_adopt(v, c, seq, hash, index, position);
        } else if (!sb_av_link(v, c, seq, prev, hash, index, position)) {
                goto done; /* behind the tail: not part of the chain */
        } else if (op && !strcmp(op, SB_AUDIT_OP_CHECKPOINT) &&
                   sb_av_checkpoint(v, c, e, seq, prev, index, position)) {
                c->checkpoints++;
                c->covered_seq = seq - 1;
                c->uncovered = 0;
                free(c->first_uncovered);
                c->first_uncovered = NULL;
                goto done;
        }
        if (!c->uncovered++)
                c->first_uncovered = sb_av_strdup(v, position);
done:
        if (v->nomem)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

sb_err_t sb_audit_verify_feed(sb_audit_verify_t *v, const void *text,
                              size_t len, const char *position, char *errstr,
                              size_t errstr_size)
{
        json_error_t jerr;
        json_t *e;
        sb_err_t err;

        if (!text) {
                sb_av_fail(v, v->index++, SB_AUDIT_MALFORMED, position, NULL, 0,
                           "a message without a value");
        } else if (!(e = json_loadb(text, len, JSON_REJECT_DUPLICATES,
                                    &jerr))) {
                sb_av_fail(v, v->index++, SB_AUDIT_MALFORMED, position, NULL, 0,
                           "not a JSON object: %s", jerr.text);
        } else {
                err = sb_audit_verify_feed_json(v, e, position, errstr,
                                                errstr_size);
                json_decref(e);
                return err;
        }
        if (v->nomem)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

void sb_audit_report_release(sb_audit_report_t *rep)
{
        size_t i;

        if (!rep)
                return;
        for (i = 0; i < rep->chain_cnt; i++) {
                free(rep->chains[i].chain);
                free(rep->chains[i].first_uncovered);
        }
        free(rep->chains);
        free(rep->first_unchained);
        sb_av_link_release(&rep->first);
        memset(rep, 0, sizeof(*rep));
}

sb_err_t sb_audit_verify_finish(sb_audit_verify_t *v, sb_audit_report_t *rep,
                                char *errstr, size_t errstr_size)
{
        size_t i;

        memset(rep, 0, sizeof(*rep));
        rep->entries = v->index;
        rep->unchained = v->unchained;
        rep->problems = v->problems;
        /* The report takes the strings over. */
        rep->first = v->first;
        memset(&v->first, 0, sizeof(v->first));
        rep->first_unchained = v->first_unchained;
        v->first_unchained = NULL;
        if (v->chain_cnt &&
            !(rep->chains = calloc(v->chain_cnt, sizeof(*rep->chains))))
                goto nomem;
        for (i = 0; i < v->chain_cnt; i++) {
                sb_av_chain_t *c = v->chains[i];
                sb_audit_chain_info_t *ci = &rep->chains[i];

                rep->chain_cnt++;
                ci->chain = c->id;
                c->id = NULL;
                ci->first_uncovered = c->first_uncovered;
                c->first_uncovered = NULL;
                ci->first_seq = c->first_seq;
                ci->last_seq = c->seq;
                ci->entries = c->entries;
                ci->checkpoints = c->checkpoints;
                ci->covered_seq = c->covered_seq;
                ci->uncovered = c->uncovered;
        }
        if (v->nomem)
                goto nomem;
        return SB_OK;
nomem:
        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
}

sb_pseudonymiser_t *sb_audit_pseudonymiser_new(const sb_key_t *master,
                                               const char *dataset)
{
        return sb_pseudonymiser_new(master, SB_AUDIT_PSEUDONYM_CONTEXT,
                                    dataset);
}
