/*
 * sharebus - key files and pseudonyms (libsodium).
 *
 * Key material lives in sodium_malloc() memory and is wiped on release.
 * Key files must be mode 0600 (or stricter) and owned by the running user,
 * otherwise loading refuses and says why (DESIGN.md §8).
 */
#ifndef SB_CRYPTO_H
#define SB_CRYPTO_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SB_KEY_BYTES       32
#define SB_PSEUDONYM_BYTES 16
/* hex form, without NUL */
#define SB_PSEUDONYM_HEXLEN (2 * SB_PSEUDONYM_BYTES)

/* sodium_init() once; safe to call many times. */
sb_err_t sb_crypto_init(char *errstr, size_t errstr_size);

/* Refuses a key or secret file that is not 0600 or not ours. */
sb_err_t sb_key_file_check(const char *path, char *errstr, size_t errstr_size);

/* A 32-byte master key held in guarded memory. */
typedef struct sb_key_s {
        unsigned char *bytes; /* sodium_malloc'ed, SB_KEY_BYTES */
} sb_key_t;

/*
 * Reads a key file: 64 hex characters (a trailing newline is allowed).
 * The caller must sb_key_destroy() the result.
 */
sb_err_t sb_key_load(const char *path, sb_key_t **keyp, char *errstr,
                     size_t errstr_size) __attribute__((warn_unused_result));
/* A fresh random key (demo, tests, key generation). */
sb_key_t *sb_key_random(void);
/* Writes `key` as hex to a new file created with mode 0600. */
sb_err_t sb_key_save(const sb_key_t *key, const char *path, char *errstr,
                     size_t errstr_size);
void sb_key_destroy(sb_key_t *key);

/* Reads a one-line secret (a password) into sodium_malloc'ed memory. */
sb_err_t sb_secret_file_read(const char *path, char **secretp, char *errstr,
                             size_t errstr_size);
void sb_secret_free(char *secret);

/*
 * Per-(reuser, dataset) pseudonymisation: a subkey is derived from the
 * master key with crypto_kdf, so two reusers' pseudonyms of the same person
 * differ and cannot be joined, while one reuser always sees the same one.
 */
typedef struct sb_pseudonymiser_s sb_pseudonymiser_t;

sb_pseudonymiser_t *sb_pseudonymiser_new(const sb_key_t *master,
                                         const char *reuser,
                                         const char *dataset);
void sb_pseudonymiser_destroy(sb_pseudonymiser_t *ps);
/* Writes SB_PSEUDONYM_HEXLEN hex chars + NUL into `out`. */
void sb_pseudonymise(const sb_pseudonymiser_t *ps, const void *id, size_t idlen,
                     char out[SB_PSEUDONYM_HEXLEN + 1]);

#endif
