#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sb_pseudonymiser_s {
        unsigned char *subkey; /* sodium_malloc'ed, SB_KEY_BYTES */
};

sb_err_t sb_crypto_init(char *errstr, size_t errstr_size)
{
        if (sodium_init() < 0)
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "libsodium failed to initialise");
        return SB_OK;
}

sb_err_t sb_key_file_check(const char *path, char *errstr, size_t errstr_size)
{
        struct stat st;

        if (stat(path, &st) == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "key file '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "key file '%s': not a regular file", path);
        if (st.st_uid != geteuid())
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "key file '%s': owned by uid %u, not by the "
                                 "running user (uid %u)",
                                 path, (unsigned)st.st_uid,
                                 (unsigned)geteuid());
        if (st.st_mode & 077)
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "key file '%s': mode %04o gives access to "
                                 "others; run: chmod 600 '%s'",
                                 path, (unsigned)(st.st_mode & 07777), path);
        return SB_OK;
}

/* Reads at most `max` bytes of a checked secret file into guarded memory. */
static sb_err_t sb_secret_read(const char *path, size_t max,
                               unsigned char **bufp, size_t *lenp, char *errstr,
                               size_t errstr_size)
{
        unsigned char *buf;
        sb_err_t err;
        ssize_t r;
        size_t len = 0;
        int fd;

        if ((err = sb_key_file_check(path, errstr, errstr_size)))
                return err;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "key file '%s': %s", path, strerror(errno));
        buf = sodium_malloc(max + 1);
        if (!buf) {
                close(fd);
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        while (len <= max && (r = read(fd, buf + len, max + 1 - len)) > 0)
                len += (size_t)r;
        close(fd);
        if (len > max) {
                sodium_free(buf);
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "key file '%s': too long (at most %zu bytes "
                                 "expected)",
                                 path, max);
        }
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                len--;
        buf[len] = '\0';
        *bufp = buf;
        *lenp = len;
        return SB_OK;
}

sb_err_t sb_key_load(const char *path, sb_key_t **keyp, char *errstr,
                     size_t errstr_size)
{
        unsigned char *hex;
        sb_key_t *key;
        size_t len, bin_len;
        sb_err_t err;

        if ((err = sb_secret_read(path, 2 * SB_KEY_BYTES + 2, &hex, &len,
                                  errstr, errstr_size)))
                return err;
        key = calloc(1, sizeof(*key));
        if (!key || !(key->bytes = sodium_malloc(SB_KEY_BYTES))) {
                free(key);
                sodium_free(hex);
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        if (len != 2 * SB_KEY_BYTES ||
            sodium_hex2bin(key->bytes, SB_KEY_BYTES, (const char *)hex, len,
                           NULL, &bin_len, NULL) != 0 ||
            bin_len != SB_KEY_BYTES) {
                sodium_free(hex);
                sb_key_destroy(key);
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "key file '%s': expected %d hex characters "
                                 "(a %d-byte key)",
                                 path, 2 * SB_KEY_BYTES, SB_KEY_BYTES);
        }
        sodium_free(hex);
        *keyp = key;
        return SB_OK;
}

sb_key_t *sb_key_random(void)
{
        sb_key_t *key = calloc(1, sizeof(*key));

        if (!key || !(key->bytes = sodium_malloc(SB_KEY_BYTES))) {
                free(key);
                return NULL;
        }
        randombytes_buf(key->bytes, SB_KEY_BYTES);
        return key;
}

sb_err_t sb_key_save(const sb_key_t *key, const char *path, char *errstr,
                     size_t errstr_size)
{
        char hex[2 * SB_KEY_BYTES + 2];
        size_t len;
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "key file '%s': %s", path, strerror(errno));
        sodium_bin2hex(hex, sizeof(hex) - 1, key->bytes, SB_KEY_BYTES);
        len = strlen(hex);
        hex[len++] = '\n';
        if (write(fd, hex, len) != (ssize_t)len) {
                sodium_memzero(hex, sizeof(hex));
                close(fd);
                unlink(path);
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "key file '%s': write failed", path);
        }
        sodium_memzero(hex, sizeof(hex));
        if (close(fd) == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "key file '%s': %s", path, strerror(errno));
        return SB_OK;
}

void sb_key_destroy(sb_key_t *key)
{
        if (!key)
                return;
        sodium_free(key->bytes); /* wipes before freeing */
        free(key);
}

sb_err_t sb_secret_file_read(const char *path, char **secretp, char *errstr,
                             size_t errstr_size)
{
        unsigned char *buf;
        size_t len;
        sb_err_t err;

        if ((err = sb_secret_read(path, 1024, &buf, &len, errstr, errstr_size)))
                return err;
        *secretp = (char *)buf;
        return SB_OK;
}

void sb_secret_free(char *secret)
{
        sodium_free(secret);
}

sb_pseudonymiser_t *sb_pseudonymiser_new(const sb_key_t *master,
                                         const char *reuser,
                                         const char *dataset)
{
        unsigned char idhash[8];
        crypto_generichash_state st;
        sb_pseudonymiser_t *ps;
        uint64_t subkey_id = 0;
        int i;

        ps = calloc(1, sizeof(*ps));
        if (!ps || !(ps->subkey = sodium_malloc(SB_KEY_BYTES))) {
                free(ps);
                return NULL;
        }
        /* The subkey id names the (reuser, dataset) pair; the NUL
         * separators keep ("ab","c") and ("a","bc") apart. */
        crypto_generichash_init(&st, NULL, 0, sizeof(idhash));
        crypto_generichash_update(&st, (const unsigned char *)reuser,
                                  strlen(reuser) + 1);
        crypto_generichash_update(&st, (const unsigned char *)dataset,
                                  strlen(dataset) + 1);
        crypto_generichash_final(&st, idhash, sizeof(idhash));
        for (i = 0; i < 8; i++)
                subkey_id = subkey_id << 8 | idhash[i];
        crypto_kdf_derive_from_key(ps->subkey, SB_KEY_BYTES, subkey_id,
                                   "sbpseudo", master->bytes);
        return ps;
}

void sb_pseudonymiser_destroy(sb_pseudonymiser_t *ps)
{
        if (!ps)
                return;
        sodium_free(ps->subkey);
        free(ps);
}

void sb_pseudonymise(const sb_pseudonymiser_t *ps, const void *id, size_t idlen,
                     char out[SB_PSEUDONYM_HEXLEN + 1])
{
        unsigned char h[SB_PSEUDONYM_BYTES];

        crypto_generichash(h, sizeof(h), id, idlen, ps->subkey, SB_KEY_BYTES);
        sodium_bin2hex(out, SB_PSEUDONYM_HEXLEN + 1, h, sizeof(h));
}
