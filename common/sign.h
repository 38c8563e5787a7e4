/*
 * sharebus - Ed25519 signing keys (libsodium), for the signatures a program
 * puts on what it publishes: a reuser agent signs its receipts
 * (DESIGN.md §6, §9).
 *
 * Key files, as `sharebus keys generate` writes them:
 *   NAME.key  the 64-byte libsodium secret key (seed followed by the public
 *             key) as 128 hex characters and a newline; mode 0600, owned by
 *             the user who runs the program (sb_key_file_check()).
 *   NAME.pub  the 32-byte public key as 64 hex characters and a newline.
 * A key is named by its key id: the first 8 bytes of BLAKE2b-256
 * (crypto_generichash, no key) of the 32-byte public key, as 16 hex
 * characters.
 *
 * Secret key material lives in sodium_malloc() memory and is wiped when the
 * key is destroyed.
 */
#ifndef SB_SIGN_H
#define SB_SIGN_H

#include <sodium.h>
#include <stddef.h>

#include "err.h"

#define SB_SIGN_PUBLIC_BYTES crypto_sign_PUBLICKEYBYTES /* 32 */
#define SB_SIGN_SECRET_BYTES crypto_sign_SECRETKEYBYTES /* 64 */
/* hex forms, without NUL */
#define SB_SIG_HEXLEN    (2 * crypto_sign_BYTES) /* 128 */
#define SB_KEY_ID_HEXLEN 16

typedef struct sb_signkey_s sb_signkey_t;

/*
 * Reads a secret key file (128 hex characters, a trailing newline allowed).
 * The file must pass sb_key_file_check(); every refusal names the file. The
 * caller must sb_signkey_destroy() the result. sodium_init() must have run
 * (sb_crypto_init()).
 */
sb_err_t sb_signkey_load(const char *path, sb_signkey_t **keyp, char *errstr,
                         size_t errstr_size)
    __attribute__((warn_unused_result));

/* A fresh random key pair, or NULL when out of memory. */
sb_signkey_t *sb_signkey_generate(void);

/*
 * Writes the secret key to `secret_path` (a new file, mode 0600) and the
 * public key to `public_path` (a new file, mode 0644). Existing files are
 * never overwritten: the call fails and leaves nothing behind.
 */
sb_err_t sb_signkey_save(const sb_signkey_t *key, const char *secret_path,
                         const char *public_path, char *errstr,
                         size_t errstr_size);

/* Wipes and frees `key`; NULL is allowed. */
void sb_signkey_destroy(sb_signkey_t *key);

/* The key's public half (SB_SIGN_PUBLIC_BYTES, owned by the key). */
const unsigned char *sb_signkey_public(const sb_signkey_t *key);
/* The key id (SB_KEY_ID_HEXLEN hex characters, owned by the key). */
const char *sb_signkey_id(const sb_signkey_t *key);

/*
 * Ed25519 detached signature (crypto_sign_detached) of `len` bytes at
 * `data`, as SB_SIG_HEXLEN lower-case hex characters + NUL. Ed25519 is
 * deterministic: the same key and data always give the same signature.
 */
sb_err_t sb_sign(const sb_signkey_t *key, const void *data, size_t len,
                 char sig_hex[SB_SIG_HEXLEN + 1]);

/*
 * SB_OK when `sig_hex` (SB_SIG_HEXLEN hex characters) is a valid signature
 * of the data under `pub`; SB_ERR_CRYPTO when it is not, or is malformed.
 */
sb_err_t sb_verify(const unsigned char pub[SB_SIGN_PUBLIC_BYTES],
                   const void *data, size_t len, const char *sig_hex)
    __attribute__((warn_unused_result));

/* Reads a public key file (64 hex characters, a trailing newline allowed). */
sb_err_t sb_pubkey_load(const char *path,
                        unsigned char pub[SB_SIGN_PUBLIC_BYTES], char *errstr,
                        size_t errstr_size) __attribute__((warn_unused_result));

/* The key id of a public key (see above). */
void sb_key_id(const unsigned char pub[SB_SIGN_PUBLIC_BYTES],
               char out[SB_KEY_ID_HEXLEN + 1]);

#endif
