/*
 * sharebus - the tamper-evident audit log, _sb.audit (DESIGN.md §9; CNIL
 * R4.3-12, R4.3-13, R4.3-15, R4.3-16, R5.4-18, R5.4-21).
 *
 * Several writers (gateway instances, admin commands) append to one log at
 * once, so each writer keeps its own hash chain, named by its chain id (its
 * Kafka transactional.id): an entry carries
 *   chain  the writer's chain id;
 *   seq    1, 2, ... within the chain;
 *   prev   the hash of the chain's previous entry (64 zeros for seq 1);
 *   hash   its own hash;
 *   at     when it was written, ms since the epoch.
 * An entry's hash is BLAKE2b-256 (crypto_generichash, 32 bytes, no key), in
 * lower-case hex, of its canonical form without the "hash" key: compact
 * JSON with sorted keys (jansson's JSON_COMPACT | JSON_SORT_KEYS: keys in
 * code point order, no whitespace, strings in UTF-8 with only '"', '\' and
 * control characters escaped, the latter as \b \f \n \r \t or \u00xx in
 * lower case), which is what Python's json.dumps(entry, sort_keys=True,
 * separators=(",", ":"), ensure_ascii=False) writes. Entries hold no
 * floating-point number: the writer refuses them, so the canonical form
 * never depends on how a JSON library prints one. The text the writer
 * returns is the canonical form of the whole entry, hash included.
 *
 * Every N entries, and when the writer says so (on close), the chain gets a
 * checkpoint, itself an entry of the chain:
 *   {"op": "audit.checkpoint", "chain", "seq", "prev", "at",
 *    "upto_seq", "upto_hash", "key_id", "sig", "hash"}
 * upto_seq and upto_hash name the entry just before it (so upto_hash equals
 * prev); sig is the Ed25519 signature (hex) by the writer's audit key of the
 * canonical form without "sig" and "hash"; hash, computed last, covers sig.
 * Since every entry holds its predecessor's hash, a valid checkpoint vouches
 * for the whole chain up to it. docs/messages.md says how to check all this
 * with other tools.
 *
 * What a hash chain cannot show: entries removed from the end of a chain
 * after its last checkpoint. The verifier reports the entries after each
 * chain's last checkpoint as not yet covered (a warning); a chain cut right
 * after a checkpoint looks complete.
 */
#ifndef SB_AUDIT_H
#define SB_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"
#include "sign.h"

#define SB_AUDIT_TOPIC         "_sb.audit"
#define SB_AUDIT_OP_CHECKPOINT "audit.checkpoint"
#define SB_AUDIT_HASH_HEXLEN   64 /* BLAKE2b-256, hex, without NUL */
#define SB_AUDIT_EVERY_DEFAULT 100

/*
 * The hash of `entry` (a JSON object) as defined above: of its canonical
 * form without "hash". SB_ERR_INVALID_ARG when it is not an object or holds
 * a floating-point number; SB_ERR_NOMEM.
 */
sb_err_t sb_audit_entry_hash(const json_t *entry,
                             char out[SB_AUDIT_HASH_HEXLEN + 1]);

/*
 * The audit pseudonym of a subject (DESIGN.md §9): entries never hold a
 * raw subject id, only its pseudonym under the gateway's master key for
 * the reserved reuser name "_audit" (reuser names start with a lower-case
 * letter, so no reuser shares it) and the dataset. Whoever holds the
 * master key (`sharebus transparency subject`) can find a person's entries;
 * no reuser can join them with its own pseudonyms. Free with
 * sb_pseudonymiser_destroy(); NULL when out of memory.
 */
#define SB_AUDIT_PSEUDONYM_CONTEXT "_audit"
sb_pseudonymiser_t *sb_audit_pseudonymiser_new(const sb_key_t *master,
                                               const char *dataset);

/*
 * Writer
 *
 * One chain per writer, and one writer per chain at a time: give each
 * writer a chain id that a transactional producer fences (its
 * transactional.id), so two processes never extend one chain.
 *
 * Inside Kafka transactions: sb_audit_chain_mark() after
 * rd_kafka_begin_transaction(); sb_audit_chain_append() for each entry,
 * producing the text it returns (then the checkpoint text, when there is
 * one) in the transaction; after rd_kafka_abort_transaction(),
 * sb_audit_chain_rollback() rewinds the chain to the mark, so the next
 * entries link to what was committed. Not thread-safe.
 */
typedef struct sb_audit_chain_s sb_audit_chain_t;

/*
 * A chain that starts at seq 1 (see sb_audit_chain_resume()). `key` signs
 * the checkpoints; it is borrowed and must outlive the chain. With a NULL
 * key the chain writes no checkpoint: its entries are linked but nobody
 * vouches for them. `every_n` <= 0 means SB_AUDIT_EVERY_DEFAULT. Returns
 * NULL and fills errstr on error (an empty chain id, out of memory).
 */
sb_audit_chain_t *sb_audit_chain_new(const char *chain_id,
                                     const sb_signkey_t *key, int every_n,
                                     char *errstr, size_t errstr_size);
/* Frees `chain`; NULL is allowed. Writes nothing: see
 * sb_audit_chain_checkpoint() for the checkpoint to write on close. */
void sb_audit_chain_destroy(sb_audit_chain_t *chain);

/*
 * Continues a chain already in the log: its last committed entry has seq
 * `last_seq` and hash `last_hash`, and `since_checkpoint` entries follow
 * its last checkpoint (sb_audit_last_of_chain() finds all three). Also
 * sets the mark. SB_ERR_INVALID_ARG when last_seq < 0 or last_hash is not
 * 64 lower-case hex digits.
 */
sb_err_t sb_audit_chain_resume(sb_audit_chain_t *chain, int64_t last_seq,
                               const char *last_hash, int64_t since_checkpoint,
                               char *errstr, size_t errstr_size);

/*
 * Chains `entry` (a JSON object with a non-empty string "op"; borrowed,
 * not modified): a copy of it gets chain, seq, prev, "at" (now, unless the
 * entry has an integer "at") and hash, and is returned in *textp as
 * compact JSON with sorted keys, to produce as the message value. When
 * this entry completes a run of every_n entries, *checkpointp gets the
 * checkpoint to produce right after it, else NULL. The caller must free()
 * both. On error the chain is unchanged and both are NULL:
 * SB_ERR_INVALID_ARG for an entry that is not an object, has no "op",
 * uses "audit.checkpoint" as its op, sets one of chain, seq, prev, hash
 * (or a non-integer "at"), has a key starting with '_' (left to exports:
 * `sharebus audit export` adds "_offset") or holds a floating-point
 * number.
 */
sb_err_t sb_audit_chain_append(sb_audit_chain_t *chain, const json_t *entry,
                               char **textp, char **checkpointp, char *errstr,
                               size_t errstr_size);

/*
 * A checkpoint now, covering every entry written so far, in *textp (free()
 * it), or NULL when there is nothing new to cover or the chain has no key.
 * Call it in the writer's last transaction before it closes, and in its
 * first after sb_audit_chain_resume() when since_checkpoint > 0.
 */
sb_err_t sb_audit_chain_checkpoint(sb_audit_chain_t *chain, char **textp,
                                   char *errstr, size_t errstr_size);

/* Remembers the chain's state; rollback() returns to it. */
void sb_audit_chain_mark(sb_audit_chain_t *chain);
void sb_audit_chain_rollback(sb_audit_chain_t *chain);

/* The seq and hash of the chain's last entry (0 and 64 zeros when empty). */
int64_t sb_audit_chain_seq(const sb_audit_chain_t *chain);
const char *sb_audit_chain_hash(const sb_audit_chain_t *chain);

/*
 * Finding where a chain stands, for sb_audit_chain_resume(): read the log
 * (read_committed, after the writer's rd_kafka_init_transactions() has
 * fenced its previous incarnation, so no transaction of the chain is still
 * open) and feed each value, in log order, to sb_audit_last_of_chain().
 * `tail` starts zeroed; it keeps the entry of chain `chain_id` with the
 * highest seq, and counts the entries after the chain's last checkpoint.
 * Entries are not verified here. Reading only the end of the log (from a
 * few thousand offsets before the high watermark, further back while the
 * chain is not found) is enough; the count then covers that window only,
 * which is why a resumed writer checkpoints first.
 */
typedef struct sb_audit_tail_s {
        int64_t seq; /* 0: no entry of the chain seen */
        char hash[SB_AUDIT_HASH_HEXLEN + 1];
        int64_t since_checkpoint;
} sb_audit_tail_t;

/* Returns 1 when the value became the chain's tail, else 0. */
int sb_audit_last_of_chain(const char *chain_id, const void *text, size_t len,
                           sb_audit_tail_t *tail);

/*
 * Verifier
 *
 * Feed every value of the log in log order. Per chain: seq goes up by one,
 * prev is the previous entry's hash, hash recomputes, and each checkpoint
 * names the entry before it and is signed by one of the declared keys. The
 * first entry seen of a chain starts it, whatever its seq: retention
 * removes the oldest entries, and an export of a time window starts
 * anywhere. The report names the first broken link in log order.
 */
typedef enum {
        SB_AUDIT_INTACT = 0,
        SB_AUDIT_MALFORMED,      /* not a JSON object, or chain fields wrong */
        SB_AUDIT_UNCHAINED,      /* no "chain" (the legacy format) */
        SB_AUDIT_MODIFIED,       /* content or link changed */
        SB_AUDIT_MISSING,        /* a gap in seq */
        SB_AUDIT_INSERTED,       /* a seq seen twice */
        SB_AUDIT_REORDERED,      /* the missing seq came later */
        SB_AUDIT_BAD_CHECKPOINT, /* names another entry than the one before */
        SB_AUDIT_BAD_SIGNATURE,  /* does not verify with its declared key */
        SB_AUDIT_UNKNOWN_KEY,    /* signed by a key not declared */
} sb_audit_break_t;

/* "intact", "malformed", "unchained", "modified", "missing", "inserted",
 * "reordered", "bad-checkpoint", "bad-signature", "unknown-key". */
const char *sb_audit_break2str(sb_audit_break_t kind);

/* One broken link. */
typedef struct sb_audit_link_s {
        sb_audit_break_t kind;
        char *position; /* as fed: "offset 1234", "line 57" */
        char *chain;    /* NULL when the entry names none */
        int64_t seq;    /* 0 when it has none */
        char *reason;   /* a sentence naming the other entries involved */
} sb_audit_link_t;

typedef struct sb_audit_chain_info_s {
        char *chain;
        int64_t first_seq, last_seq;
        size_t entries;        /* checkpoints included */
        size_t checkpoints;    /* valid ones */
        int64_t covered_seq;   /* upto_seq of the last valid one, 0: none */
        size_t uncovered;      /* entries after it (not yet covered) */
        char *first_uncovered; /* position of the first of them, or NULL */
} sb_audit_chain_info_t;

typedef struct sb_audit_report_s {
        size_t entries; /* values fed */
        size_t unchained;
        char *first_unchained;         /* position, NULL when none */
        size_t problems;               /* failed checks; 0 when intact */
        sb_audit_link_t first;         /* kind SB_AUDIT_INTACT when intact */
        sb_audit_chain_info_t *chains; /* in order of first appearance */
        size_t chain_cnt;
} sb_audit_report_t;

void sb_audit_report_release(sb_audit_report_t *rep);

/* Entries without a chain are counted, not failed. */
#define SB_AUDIT_ALLOW_UNCHAINED 0x1

typedef struct sb_audit_verify_s sb_audit_verify_t;

/*
 * A verifier trusting checkpoints signed by `keys` (copied; key_cnt may be
 * 0: every checkpoint is then signed by an unknown key). NULL when out of
 * memory. sodium_init() must have run (sb_crypto_init()).
 */
sb_audit_verify_t *
sb_audit_verify_new(const unsigned char (*keys)[SB_SIGN_PUBLIC_BYTES],
                    size_t key_cnt, int flags);
void sb_audit_verify_destroy(sb_audit_verify_t *v);

/*
 * One value of the log (NULL for a message without one), at `position`
 * (copied, for the report). Fails only when out of memory.
 */
sb_err_t sb_audit_verify_feed(sb_audit_verify_t *v, const void *text,
                              size_t len, const char *position, char *errstr,
                              size_t errstr_size);
/* The same for a value already parsed (borrowed). */
sb_err_t sb_audit_verify_feed_json(sb_audit_verify_t *v, const json_t *entry,
                                   const char *position, char *errstr,
                                   size_t errstr_size);

/* The verdict on everything fed, once (then only destroy `v`); release
 * `rep` in every case. */
sb_err_t sb_audit_verify_finish(sb_audit_verify_t *v, sb_audit_report_t *rep,
                                char *errstr, size_t errstr_size);

#endif
