/*
 * sharebus - batch signatures on Kafka messages (DESIGN.md §9; CNIL
 * R3.4-*, R4.2-*): holders sign what they publish, the gateway verifies it
 * before anything else and signs what it publishes, reuser agents verify.
 *
 * Ed25519 verifies some 30k signatures a second per core, far below the
 * pipeline's rate, so messages are signed by batch: the signer collects up
 * to SB_SEAL_BATCH_MAX messages, builds a Merkle tree of their digests and
 * signs its root once. Each message carries, in its header "sb_sig", the
 * root's signature and the message's path up the tree, so a verifier
 * checks every message alone: in any order, after a restart in the middle
 * of a batch, and whichever producers' batches interleave on a partition.
 * A verifier remembers the roots it has checked, so one signature check
 * serves a whole batch.
 *
 * Digests are BLAKE2b-128 (crypto_generichash, 16 bytes, no key):
 *   leaf  of one message: the byte 0x00, "sb-leaf-1", then, each as a
 *         4-byte big-endian length followed by its bytes (length
 *         0xffffffff for an absent key, value or header value): the
 *         topic, the key, the value, and every header but sb_sig, in
 *         order, name then value;
 *   node  the byte 0x01, then the left and the right child.
 * The n leaves of a batch are paired level by level; an odd last node goes
 * up unchanged. The signature is Ed25519 (crypto_sign_detached) of
 * "sb-seal-1" (9 bytes), the root (16) and n (4, big-endian).
 *
 * The header value is binary: the version 0x01, the signer's key id (the
 * 8 bytes of sb_key_id(), sign.h), n and the message's index i (4 bytes
 * each, big-endian), the signature (64 bytes), then the sibling nodes from
 * the leaf up (16 bytes each; a level where the node has no sibling has
 * none). docs/messages.md shows how to check it with other tools.
 *
 * What it shows: the message is, byte for byte, one its signer published
 * to that topic. Not shown: that nothing was withheld or replayed; the
 * transactional pipeline and the audit log answer for those.
 */
#ifndef SB_SEAL_H
#define SB_SEAL_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sign.h"

#define SB_SEAL_HEADER       "sb_sig"
#define SB_SEAL_NODE_BYTES   16
#define SB_SEAL_KEY_ID_BYTES 8
#define SB_SEAL_BATCH_MAX    1024
/* version, key id, n, i, signature */
#define SB_SEAL_FIXED_BYTES (1 + SB_SEAL_KEY_ID_BYTES + 4 + 4 + 64)

/*
 * Key rings: the public keys a verifier accepts, found by key id. Several
 * keys of one signer may be listed while its key is rotated.
 */
typedef struct sb_keyring_s sb_keyring_t;

sb_keyring_t *sb_keyring_new(void);
void sb_keyring_destroy(sb_keyring_t *kr);
/* Adds a key; adding one already there does nothing. */
sb_err_t sb_keyring_add(sb_keyring_t *kr,
                        const unsigned char pub[SB_SIGN_PUBLIC_BYTES]);
/*
 * Adds every "*.pub" file of `dir` (sb_pubkey_load()). A directory without
 * any, or a file that is not a public key, is an error naming it.
 */
sb_err_t sb_keyring_load_dir(sb_keyring_t *kr, const char *dir, char *errstr,
                             size_t errstr_size);
size_t sb_keyring_cnt(const sb_keyring_t *kr);

/*
 * Signer: queues the messages a producer would send, then seals them and
 * hands each, with its sb_sig header, to a produce function.
 */
typedef struct sb_sealer_s sb_sealer_t;

/*
 * The produce function: takes ownership of `hdrs` whatever it returns.
 * `msg_opaque` is what sb_sealer_add() was given.
 */
typedef sb_err_t(sb_sealer_produce_fn_t)(void *opaque, const char *topic,
                                         int32_t partition, const void *key,
                                         size_t keylen, const void *value,
                                         size_t len, rd_kafka_headers_t *hdrs,
                                         void *msg_opaque);

/* `key` is borrowed and must outlive the sealer. NULL when out of memory. */
sb_sealer_t *sb_sealer_new(const sb_signkey_t *key);
void sb_sealer_destroy(sb_sealer_t *s);

/*
 * Queues one message: copies topic, key and value, takes ownership of
 * `hdrs` (NULL: none) whatever it returns. Returns SB_ERR_NOMEM, or SB_OK;
 * once SB_SEAL_BATCH_MAX messages wait, the caller must flush first
 * (sb_sealer_full()).
 */
sb_err_t sb_sealer_add(sb_sealer_t *s, const char *topic, int32_t partition,
                       const void *key, size_t keylen, const void *value,
                       size_t len, rd_kafka_headers_t *hdrs, void *msg_opaque);
int sb_sealer_full(const sb_sealer_t *s);
size_t sb_sealer_pending(const sb_sealer_t *s);

/*
 * Signs the queued messages as one batch and gives each, in the order
 * queued, to `produce`. The queue is empty afterwards whatever happens;
 * returns the first error (from signing or from `produce`; the remaining
 * messages are still offered, so their headers are freed).
 */
sb_err_t sb_sealer_flush(sb_sealer_t *s, sb_sealer_produce_fn_t *produce,
                         void *opaque);
/* Drops the queued messages (an aborted transaction). */
void sb_sealer_discard(sb_sealer_t *s);

/*
 * Verifier: checks messages against a key ring (borrowed), remembering the
 * last roots it verified.
 */
typedef struct sb_seal_verifier_s sb_seal_verifier_t;

sb_seal_verifier_t *sb_seal_verifier_new(const sb_keyring_t *kr);
void sb_seal_verifier_destroy(sb_seal_verifier_t *v);

/*
 * SB_OK when the message carries a valid sb_sig by a key of the ring;
 * otherwise SB_ERR_CRYPTO and a reason ("no sb_sig header", "signed by
 * unknown key id 0123456789abcdef", "signature does not verify: the
 * message or its batch was altered", ...).
 */
sb_err_t sb_seal_verify(sb_seal_verifier_t *v, const char *topic,
                        const void *key, size_t keylen, const void *value,
                        size_t len, const rd_kafka_headers_t *hdrs,
                        char *reason, size_t reason_size);
/* The same for a consumed message. */
sb_err_t sb_seal_verify_message(sb_seal_verifier_t *v,
                                const rd_kafka_message_t *m, char *reason,
                                size_t reason_size);

/* Signature checks made (cache misses), for statistics and tests. */
uint64_t sb_seal_verifier_checks(const sb_seal_verifier_t *v);

#endif
