#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"

#define SB_SECRET_HEXLEN (2 * SB_SIGN_SECRET_BYTES) /* 128 */

struct sb_signkey_s {
        unsigned char *secret; /* sodium_malloc'ed, SB_SIGN_SECRET_BYTES */
        unsigned char pub[SB_SIGN_PUBLIC_BYTES];
        char id[SB_KEY_ID_HEXLEN + 1];
};

void sb_key_id(const unsigned char pub[SB_SIGN_PUBLIC_BYTES],
               char out[SB_KEY_ID_HEXLEN + 1])
{
        unsigned char h[crypto_generichash_BYTES]; /* BLAKE2b-256 */

        crypto_generichash(h, sizeof(h), pub, SB_SIGN_PUBLIC_BYTES, NULL, 0);
        sodium_bin2hex(out, SB_KEY_ID_HEXLEN + 1, h, SB_KEY_ID_HEXLEN / 2);
}

static sb_signkey_t *sb_signkey_alloc(void)
{
        sb_signkey_t *key = calloc(1, sizeof(*key));

        if (!key || !(key->secret = sodium_malloc(SB_SIGN_SECRET_BYTES))) {
                free(key);
                return NULL;
        }
        return key;
}

sb_signkey_t *sb_signkey_generate(void)
{
        sb_signkey_t *key = sb_signkey_alloc();

        if (!key)
                return NULL;
        if (crypto_sign_keypair(key->pub, key->secret) != 0) {
                sb_signkey_destroy(key);
                return NULL;
        }
        sb_key_id(key->pub, key->id);
        return key;
}

sb_err_t sb_signkey_load(const char *path, sb_signkey_t **keyp, char *errstr,
                         size_t errstr_size)
{
        unsigned char *check = NULL, pub[SB_SIGN_PUBLIC_BYTES];
        sb_signkey_t *key = NULL;
        const char *end;
        char *hex = NULL;
        size_t bin_len;
        sb_err_t err;

        *keyp = NULL;
        if ((err = sb_secret_file_read(path, &hex, errstr, errstr_size)))
                return err;
        if (!(key = sb_signkey_alloc()) ||
            !(check = sodium_malloc(SB_SIGN_SECRET_BYTES))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        if (strlen(hex) != SB_SECRET_HEXLEN ||
            sodium_hex2bin(key->secret, SB_SIGN_SECRET_BYTES, hex, strlen(hex),
                           NULL, &bin_len, &end) != 0 ||
            bin_len != SB_SIGN_SECRET_BYTES || *end) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "key file '%s': expected %d hex characters "
                                "(an Ed25519 secret key, as 'sharebus keys "
                                "generate' writes it)",
                                path, SB_SECRET_HEXLEN);
                goto done;
        }
        /* The second half must be the public key of the first (the seed):
         * a damaged file would otherwise sign with a key nobody can
         * verify. */
        if (crypto_sign_seed_keypair(pub, check, key->secret) != 0 ||
            memcmp(pub, key->secret + crypto_sign_SEEDBYTES, sizeof(pub))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "key file '%s': not an Ed25519 secret key "
                                "(its public half does not match its seed)",
                                path);
                goto done;
        }
        memcpy(key->pub, pub, sizeof(pub));
        sb_key_id(key->pub, key->id);
        *keyp = key;
        key = NULL;
        err = SB_OK;
done:
        sodium_free(check);
        sb_secret_free(hex);
        sb_signkey_destroy(key);
        return err;
}

/* Writes `text` to a new file `path` created with `mode`. */
static sb_err_t sb_sign_write_new(const char *path, mode_t mode,
                                  const char *what, const char *text,
                                  size_t len, char *errstr, size_t errstr_size)
{
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s",
                                 what, path, strerror(errno));
        if (write(fd, text, len) != (ssize_t)len) {
                int e = errno;

                close(fd);
                unlink(path);
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "%s '%s': write failed: %s", what, path,
                                 strerror(e));
        }
        if (close(fd) == -1) {
                int e = errno;

                unlink(path);
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s",
                                 what, path, strerror(e));
        }
        return SB_OK;
}

sb_err_t sb_signkey_save(const sb_signkey_t *key, const char *secret_path,
                         const char *public_path, char *errstr,
                         size_t errstr_size)
{
        char pub[2 * SB_SIGN_PUBLIC_BYTES + 2];
        char *hex;
        sb_err_t err;

        hex = sodium_malloc(SB_SECRET_HEXLEN + 1);
        if (!hex)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        sodium_bin2hex(hex, SB_SECRET_HEXLEN + 1, key->secret,
                       SB_SIGN_SECRET_BYTES);
        hex[SB_SECRET_HEXLEN] = '\n'; /* replaces the NUL */
        err = sb_sign_write_new(secret_path, 0600, "key file", hex,
                                SB_SECRET_HEXLEN + 1, errstr, errstr_size);
        sodium_free(hex); /* wipes */
        if (err)
                return err;
        sodium_bin2hex(pub, sizeof(pub) - 1, key->pub, SB_SIGN_PUBLIC_BYTES);
        pub[2 * SB_SIGN_PUBLIC_BYTES] = '\n';
        err = sb_sign_write_new(public_path, 0644, "public key file", pub,
                                2 * SB_SIGN_PUBLIC_BYTES + 1, errstr,
                                errstr_size);
        if (err)
                unlink(secret_path); /* nothing half-made is left */
        return err;
}

void sb_signkey_destroy(sb_signkey_t *key)
{
        if (!key)
                return;
        sodium_free(key->secret); /* wipes before freeing */
        free(key);
}

const unsigned char *sb_signkey_public(const sb_signkey_t *key)
{
        return key->pub;
}

const char *sb_signkey_id(const sb_signkey_t *key)
{
        return key->id;
}

sb_err_t sb_sign(const sb_signkey_t *key, const void *data, size_t len,
                 char sig_hex[SB_SIG_HEXLEN + 1])
{
        unsigned char sig[crypto_sign_BYTES];

        if (crypto_sign_detached(sig, NULL, data, len, key->secret) != 0)
                return SB_ERR_CRYPTO;
        sodium_bin2hex(sig_hex, SB_SIG_HEXLEN + 1, sig, sizeof(sig));
        return SB_OK;
}

sb_err_t sb_verify(const unsigned char pub[SB_SIGN_PUBLIC_BYTES],
                   const void *data, size_t len, const char *sig_hex)
{
        unsigned char sig[crypto_sign_BYTES];
        const char *end;
        size_t bin_len;

        if (!sig_hex || strlen(sig_hex) != SB_SIG_HEXLEN ||
            sodium_hex2bin(sig, sizeof(sig), sig_hex, SB_SIG_HEXLEN, NULL,
                           &bin_len, &end) != 0 ||
            bin_len != sizeof(sig) || *end)
                return SB_ERR_CRYPTO;
        if (crypto_sign_verify_detached(sig, data, len, pub) != 0)
                return SB_ERR_CRYPTO;
        return SB_OK;
}

sb_err_t sb_pubkey_load(const char *path,
                        unsigned char pub[SB_SIGN_PUBLIC_BYTES], char *errstr,
                        size_t errstr_size)
{
        char text[256];
        const char *end;
        size_t len, bin_len;
        FILE *fp;

        fp = fopen(path, "re");
        if (!fp)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "public key file '%s': %s", path,
                                 strerror(errno));
        len = fread(text, 1, sizeof(text) - 1, fp);
        fclose(fp);
        text[len] = '\0';
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                text[--len] = '\0';
        if (len != 2 * SB_SIGN_PUBLIC_BYTES ||
            sodium_hex2bin(pub, SB_SIGN_PUBLIC_BYTES, text, len, NULL, &bin_len,
                           &end) != 0 ||
            bin_len != SB_SIGN_PUBLIC_BYTES || *end)
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "public key file '%s': expected %d hex "
                                 "characters (an Ed25519 public key)",
                                 path, 2 * SB_SIGN_PUBLIC_BYTES);
        return SB_OK;
}
