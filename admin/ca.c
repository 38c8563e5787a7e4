#include "ca.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"

#define SB_DAY_SECONDS ((time_t)86400)
/* A PEM EC key is a few hundred bytes; anything larger is not ours. */
#define SB_CA_KEY_MAX 16384

#define SB_CLIENT_RULE                                                         \
        "a client principal is a lowercase letter followed by lowercase "      \
        "letters, digits or '-', then optionally a credential generation "     \
        "'.gN' (e.g. acme-research.g1)"
#define SB_HOST_RULE                                                           \
        "a server certificate may also be named after a host: dot-separated "  \
        "labels of lowercase letters, digits and '-' that neither start nor "  \
        "end with '-' (e.g. kafka-1.example.org)"

/* The CA loaded from its directory. */
typedef struct sb_ca_s {
        X509 *crt;
        EVP_PKEY *key;
        char crt_path[SB_CA_PATH_MAX];
        char key_path[SB_CA_PATH_MAX];
} sb_ca_t;

/*
 * Helpers
 */

/* The first queued OpenSSL error as text; empties the queue. */
static const char *sb_ossl_err(char *buf, size_t size)
{
        unsigned long e = ERR_get_error();
        const char *reason;

        if (!e) {
                snprintf(buf, size, "unknown OpenSSL error");
        } else {
                reason = ERR_reason_error_string(e);
                if (reason)
                        snprintf(buf, size, "%s", reason);
                else
                        ERR_error_string_n(e, buf, size);
        }
        ERR_clear_error();
        return buf;
}

static sb_err_t sb_path_join(char *buf, const char *dir, const char *name,
                             const char *suffix, char *errstr,
                             size_t errstr_size)
{
        int n = snprintf(buf, SB_CA_PATH_MAX, "%s/%s%s", dir, name, suffix);

        if (n < 0 || n >= SB_CA_PATH_MAX)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "path '%s/%s%s' is longer than %d bytes", dir,
                                 name, suffix, SB_CA_PATH_MAX - 1);
        return SB_OK;
}

static void sb_hex(char *out, const unsigned char *bin, size_t len)
{
        static const char digits[] = "0123456789abcdef";
        size_t i;

        for (i = 0; i < len; i++) {
                out[2 * i] = digits[bin[i] >> 4];
                out[2 * i + 1] = digits[bin[i] & 0xf];
        }
        out[2 * len] = '\0';
}

static int sb_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        ssize_t w;

        while (len > 0) {
                w = write(fd, p, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -1;
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

/* A file created here, removed again if the operation fails. */
typedef struct sb_newfile_s {
        const char *path;
        const char *what; /* "CA key", "certificate", ... */
        int fd;
} sb_newfile_t;

static sb_err_t sb_newfile_open(sb_newfile_t *nf, const char *what,
                                const char *path, mode_t mode,
                                const char *exists_hint, char *errstr,
                                size_t errstr_size)
{
        /* path is set only once the file is ours to remove again. */
        nf->what = what;
        nf->path = NULL;
        nf->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (nf->fd != -1) {
                /* Exactly `mode`, whatever the umask. */
                if (fchmod(nf->fd, mode) == 0) {
                        nf->path = path;
                        return SB_OK;
                }
                sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s", what,
                          path, strerror(errno));
                close(nf->fd);
                unlink(path);
                nf->fd = -1;
                return SB_ERR_IO;
        }
        if (errno == EEXIST)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "%s '%s' already exists: %s", what, path,
                                 exists_hint);
        return sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s", what,
                         path, strerror(errno));
}

static sb_err_t sb_newfile_write(sb_newfile_t *nf, const void *buf, size_t len,
                                 char *errstr, size_t errstr_size)
{
        if (sb_write_all(nf->fd, buf, len) == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "%s '%s': write failed: %s", nf->what,
                                 nf->path, strerror(errno));
        return SB_OK;
}

static sb_err_t sb_newfile_close(sb_newfile_t *nf, char *errstr,
                                 size_t errstr_size)
{
        int fd = nf->fd;

        nf->fd = -1;
        if (fd != -1 && close(fd) == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s",
                                 nf->what, nf->path, strerror(errno));
        return SB_OK;
}

/* Closes (if open) and removes each created file; for failure paths. */
static void sb_newfiles_discard(sb_newfile_t *nfs, size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++) {
                if (!nfs[i].path)
                        continue;
                if (nfs[i].fd != -1)
                        close(nfs[i].fd);
                unlink(nfs[i].path);
                nfs[i].fd = -1;
                nfs[i].path = NULL;
        }
}

/* The PEM text of a private key in a secure-memory BIO (wiped on free). */
static BIO *sb_key_pem(EVP_PKEY *key)
{
        BIO *bio = BIO_new(BIO_s_secmem());

        if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                            NULL) != 1) {
                BIO_free(bio);
                return NULL;
        }
        return bio;
}

static BIO *sb_crt_pem(X509 *crt)
{
        BIO *bio = BIO_new(BIO_s_mem());

        if (bio && PEM_write_bio_X509(bio, crt) != 1) {
                BIO_free(bio);
                return NULL;
        }
        return bio;
}

/* Wipes what a memory BIO holds, then frees it. */
static void sb_bio_wipe_free(BIO *bio)
{
        BUF_MEM *bm = NULL;

        if (!bio)
                return;
        if (BIO_get_mem_ptr(bio, &bm) == 1 && bm && bm->data)
                OPENSSL_cleanse(bm->data, bm->max);
        BIO_free(bio);
}

static sb_err_t sb_newfile_write_bio(sb_newfile_t *nf, BIO *bio, char *errstr,
                                     size_t errstr_size)
{
        char *data;
        long len = BIO_get_mem_data(bio, &data);

        if (len <= 0)
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "%s '%s': nothing to write", nf->what,
                                 nf->path);
        return sb_newfile_write(nf, data, (size_t)len, errstr, errstr_size);
}

static int sb_x509_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
        int ok;

        if (!ext)
                return 0;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok;
}

/* A random positive 128-bit serial whose first byte is never zero. */
static int sb_x509_set_random_serial(X509 *x)
{
        unsigned char buf[16];
        ASN1_INTEGER *ai = NULL;
        BIGNUM *bn = NULL;
        int ok = 0;

        if (RAND_bytes(buf, sizeof(buf)) != 1)
                return 0;
        buf[0] &= 0x7f;
        if (!buf[0])
                buf[0] = 0x01;
        if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) &&
            (ai = BN_to_ASN1_INTEGER(bn, NULL)))
                ok = X509_set_serialNumber(x, ai);
        ASN1_INTEGER_free(ai);
        BN_free(bn);
        return ok;
}

/* A version 3 certificate for `key` named CN=cn, valid [nb, na]. */
static X509 *sb_x509_new(const char *cn, EVP_PKEY *key, time_t nb, time_t na)
{
        X509 *x = X509_new();
        X509_NAME *name;

        if (!x || X509_set_version(x, X509_VERSION_3) != 1 ||
            !sb_x509_set_random_serial(x) ||
            !ASN1_TIME_set(X509_getm_notBefore(x), nb) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), na) ||
            X509_set_pubkey(x, key) != 1)
                goto fail;
        name = X509_get_subject_name(x);
        if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1,
                                       0) != 1)
                goto fail;
        return x;
fail:
        X509_free(x);
        return NULL;
}

static int sb_asn1_time_get(const ASN1_TIME *at, time_t *tp)
{
        struct tm tm;

        memset(&tm, 0, sizeof(tm));
        if (!at || ASN1_TIME_to_tm(at, &tm) != 1)
                return 0;
        *tp = timegm(&tm);
        return 1;
}

static sb_cert_status_t sb_status_at(time_t nb, time_t na, time_t now)
{
        if (now < nb)
                return SB_CERT_NOT_YET_VALID;
        if (now > na)
                return SB_CERT_EXPIRED;
        return SB_CERT_VALID;
}

/* Fills `info` from a certificate (register-only fields left as they are). */
static sb_err_t sb_x509_info(X509 *x, time_t now, sb_cert_info_t *info,
                             const char *path, char *errstr, size_t errstr_size)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        uint32_t xku;
        BIGNUM *bn;
        char *hex;
        size_t i;

        info->principal[0] = '\0';
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                      info->principal,
                                      sizeof(info->principal)) < 0)
                info->principal[0] = '\0';
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        BN_free(bn);
        if (!hex || strlen(hex) >= sizeof(info->serial)) {
                OPENSSL_free(hex);
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "certificate '%s': unusable serial number",
                                 path);
        }
        for (i = 0; hex[i]; i++)
                info->serial[i] = (char)tolower((unsigned char)hex[i]);
        info->serial[i] = '\0';
        OPENSSL_free(hex);
        if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "certificate '%s': cannot compute its "
                                 "SHA-256 fingerprint",
                                 path);
        sb_hex(info->sha256, md, mdlen);
        if (!sb_asn1_time_get(X509_get0_notBefore(x), &info->not_before) ||
            !sb_asn1_time_get(X509_get0_notAfter(x), &info->not_after))
                return sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                 "certificate '%s': unreadable validity "
                                 "dates",
                                 path);
        xku = X509_get_extended_key_usage(x);
        info->server = (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
                       (xku & XKU_SSL_SERVER);
        info->generation = sb_principal_generation(info->principal);
        info->status = sb_status_at(info->not_before, info->not_after, now);
        snprintf(info->crt_path, sizeof(info->crt_path), "%s", path);
        return SB_OK;
}

static X509 *sb_x509_read(const char *path, char *errstr, size_t errstr_size)
{
        char oerr[256];
        int saved_errno;
        X509 *x;
        BIO *bio;

        bio = BIO_new_file(path, "r");
        if (!bio) {
                saved_errno = errno;
                ERR_clear_error();
                sb_seterr(errstr, errstr_size, SB_ERR_IO,
                          "certificate '%s': %s", path, strerror(saved_errno));
                errno = saved_errno;
                return NULL;
        }
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!x)
                sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                          "certificate '%s': not a PEM certificate (%s)", path,
                          sb_ossl_err(oerr, sizeof(oerr)));
        return x;
}

/* Never prompt on a terminal for a passphrase: encrypted keys fail. */
static int sb_no_passphrase(char *buf, int size, int rwflag, void *opaque)
{
        (void)buf;
        (void)size;
        (void)rwflag;
        (void)opaque;
        return -1;
}

/* Reads a private key file (checked 0600 and ours) through wiped memory. */
static sb_err_t sb_private_key_read(const char *path, const char *what,
                                    EVP_PKEY **keyp, char *errstr,
                                    size_t errstr_size)
{
        char checkerr[1024], prefix[SB_CA_PATH_MAX + 16];
        const char *reason = checkerr;
        unsigned char *buf = NULL;
        size_t len = 0, plen;
        EVP_PKEY *key = NULL;
        sb_err_t err;
        BIO *bio;
        ssize_t r;
        int fd;

        /* sb_key_file_check() says "key file 'P': why"; name the key. */
        if ((err = sb_key_file_check(path, checkerr, sizeof(checkerr)))) {
                snprintf(prefix, sizeof(prefix), "key file '%s': ", path);
                plen = strlen(prefix);
                if (!strncmp(checkerr, prefix, plen))
                        reason = checkerr + plen;
                return sb_seterr(errstr, errstr_size, err, "%s '%s': %s", what,
                                 path, reason);
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s",
                                 what, path, strerror(errno));
        buf = OPENSSL_malloc(SB_CA_KEY_MAX + 1);
        if (!buf) {
                close(fd);
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        while (len <= SB_CA_KEY_MAX &&
               (r = read(fd, buf + len, SB_CA_KEY_MAX + 1 - len)) > 0)
                len += (size_t)r;
        close(fd);
        if (len > SB_CA_KEY_MAX) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "%s '%s': longer than %d bytes, not a PEM "
                                "EC key",
                                what, path, SB_CA_KEY_MAX);
                goto done;
        }
        bio = BIO_new_mem_buf(buf, (int)len);
        if (bio) {
                key =
                    PEM_read_bio_PrivateKey(bio, NULL, sb_no_passphrase, NULL);
                BIO_free(bio);
        }
        ERR_clear_error();
        if (!key) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "%s '%s': not an unencrypted PEM private key",
                                what, path);
                goto done;
        }
        *keyp = key;
        err = SB_OK;
done:
        OPENSSL_clear_free(buf, SB_CA_KEY_MAX + 1);
        return err;
}

static void sb_ca_release(sb_ca_t *ca)
{
        X509_free(ca->crt);
        EVP_PKEY_free(ca->key);
        ca->crt = NULL;
        ca->key = NULL;
}

static sb_err_t sb_ca_load(const char *dir, sb_ca_t *ca, char *errstr,
                           size_t errstr_size)
{
        sb_err_t err;

        memset(ca, 0, sizeof(*ca));
        if ((err = sb_path_join(ca->key_path, dir, SB_CA_KEY_FILE, "", errstr,
                                errstr_size)) ||
            (err = sb_path_join(ca->crt_path, dir, SB_CA_CRT_FILE, "", errstr,
                                errstr_size)))
                return err;
        if (access(ca->key_path, F_OK) == -1 && errno == ENOENT)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOT_FOUND,
                                 "CA key '%s': %s; is '%s' a directory made "
                                 "by 'sharebus admin ca init'?",
                                 ca->key_path, strerror(ENOENT), dir);
        if ((err = sb_private_key_read(ca->key_path, "CA key", &ca->key, errstr,
                                       errstr_size)))
                return err;
        ca->crt = sb_x509_read(ca->crt_path, errstr, errstr_size);
        if (!ca->crt) {
                sb_ca_release(ca);
                return SB_ERR_CRYPTO;
        }
        if (X509_check_ca(ca->crt) == 0) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "CA certificate '%s' is not a CA certificate",
                                ca->crt_path);
                goto fail;
        }
        if (X509_check_private_key(ca->crt, ca->key) != 1) {
                ERR_clear_error();
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "CA key '%s' does not match CA certificate "
                                "'%s'",
                                ca->key_path, ca->crt_path);
                goto fail;
        }
        return SB_OK;
fail:
        sb_ca_release(ca);
        return err;
}

/* mkdir(path, 0700), or accept an existing directory. */
static sb_err_t sb_dir_ensure(const char *what, const char *path, int *created,
                              char *errstr, size_t errstr_size)
{
        struct stat st;

        *created = 0;
        if (mkdir(path, 0700) == 0) {
                *created = 1;
                return SB_OK;
        }
        if (errno != EEXIST)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s",
                                 what, path, strerror(errno));
        if (stat(path, &st) == -1)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO, "%s '%s': %s",
                                 what, path, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "%s '%s': exists and is not a directory", what,
                                 path);
        return SB_OK;
}

/*
 * Time
 */

static int sb_digits(const char *s, int n, int *v)
{
        int i;

        *v = 0;
        for (i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return 0;
                *v = *v * 10 + (s[i] - '0');
        }
        return 1;
}

static int sb_days_in_month(int y, int m)
{
        static const int days[] = {31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31};

        if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                return 29;
        return days[m - 1];
}

sb_err_t sb_rfc3339_parse(const char *s, time_t *tp, char *errstr,
                          size_t errstr_size)
{
        int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
        const char *p;
        struct tm tm;

        if (strlen(s) < 20 || !sb_digits(s, 4, &y) || s[4] != '-' ||
            !sb_digits(s + 5, 2, &mo) || s[7] != '-' ||
            !sb_digits(s + 8, 2, &d) ||
            (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
            !sb_digits(s + 11, 2, &h) || s[13] != ':' ||
            !sb_digits(s + 14, 2, &mi) || s[16] != ':' ||
            !sb_digits(s + 17, 2, &sec))
                goto bad;
        p = s + 19;
        if (*p == '.') {
                if (!isdigit((unsigned char)p[1]))
                        goto bad;
                for (p++; isdigit((unsigned char)*p); p++)
                        ; /* fractions of a second are dropped */
        }
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                sign = *p == '+' ? 1 : -1;
                if (!sb_digits(p + 1, 2, &oh) || p[3] != ':' ||
                    !sb_digits(p + 4, 2, &om) || oh > 23 || om > 59)
                        goto bad;
                p += 6;
        } else {
                goto bad;
        }
        if (*p || mo < 1 || mo > 12 || d < 1 || d > sb_days_in_month(y, mo) ||
            h > 23 || mi > 59 || sec > 60)
                goto bad;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        *tp = timegm(&tm) - sign * ((time_t)oh * 3600 + (time_t)om * 60);
        return SB_OK;
bad:
        return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                         "'%s' is not an RFC 3339 date-time (e.g. "
                         "2025-06-01T00:00:00Z)",
                         s);
}

void sb_rfc3339_format(time_t t, char buf[SB_RFC3339_SIZE])
{
        struct tm tm;

        if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1000 ||
            tm.tm_year + 1900 > 9999) {
                snprintf(buf, SB_RFC3339_SIZE, "(out of range)");
                return;
        }
        if (strftime(buf, SB_RFC3339_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, SB_RFC3339_SIZE, "(out of range)");
}

/*
 * Names
 */

const char *sb_cert_status2str(sb_cert_status_t status)
{
        switch (status) {
        case SB_CERT_VALID:
                return "valid";
        case SB_CERT_EXPIRED:
                return "expired";
        case SB_CERT_NOT_YET_VALID:
                return "not yet valid";
        case SB_CERT_MISSING:
                return "missing";
        }
        return "unknown";
}

static int sb_is_lower_alnum(int c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * Why `name` (non-empty, not too long) is not a client principal, written
 * into `why`; returns 0 when it is one.
 */
static int sb_client_principal_flaw(const char *name, char *why, size_t size)
{
        const char *p = name, *g;
        unsigned char c = (unsigned char)name[0];

        if (!(c >= 'a' && c <= 'z')) {
                if (isprint(c))
                        snprintf(why, size,
                                 "must start with a lowercase letter, not "
                                 "'%c'",
                                 c);
                else
                        snprintf(why, size,
                                 "must start with a lowercase letter");
                return 1;
        }
        for (p++; sb_is_lower_alnum((unsigned char)*p) || *p == '-'; p++)
                ;
        if (!*p)
                return 0;
        if (*p != '.') {
                c = (unsigned char)*p;
                if (isprint(c))
                        snprintf(why, size, "character '%c' is not allowed", c);
                else
                        snprintf(why, size, "byte 0x%02x is not allowed", c);
                return 1;
        }
        g = p + 2;
        if (p[1] == 'g' && isdigit((unsigned char)*g)) {
                while (isdigit((unsigned char)*g))
                        g++;
                if (!*g && g - (p + 2) <= 9)
                        return 0;
                if (!*g) {
                        snprintf(why, size,
                                 "generation '%s' has more than 9 digits", p);
                        return 1;
                }
        }
        snprintf(why, size, "suffix '%s' is not a credential generation '.gN'",
                 p);
        return 1;
}

/* Dot-separated labels of [a-z0-9-] (or also A-Z), no '-' at either end. */
static int sb_is_hostname(const char *name, int upper_ok)
{
        size_t label = 0;
        const char *p;
        int c;

        if (!*name || strlen(name) > 253)
                return 0;
        for (p = name; *p; p++) {
                c = (unsigned char)*p;
                if (c == '.') {
                        if (label == 0 || p[-1] == '-')
                                return 0;
                        label = 0;
                        continue;
                }
                if (!sb_is_lower_alnum(c) && c != '-' &&
                    !(upper_ok && c >= 'A' && c <= 'Z'))
                        return 0;
                if (c == '-' && label == 0)
                        return 0;
                if (++label > 63)
                        return 0;
        }
        return label > 0 && p[-1] != '-';
}

sb_err_t sb_principal_check(const char *name, int server, char *errstr,
                            size_t errstr_size)
{
        char why[160];

        if (!name || !*name)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "principal is empty; %s", SB_CLIENT_RULE);
        if (strlen(name) > SB_PRINCIPAL_MAX)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "principal '%s': longer than %d characters, "
                                 "the limit of a certificate's CN",
                                 name, SB_PRINCIPAL_MAX);
        if (!sb_client_principal_flaw(name, why, sizeof(why)))
                return SB_OK;
        if (!server)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "principal '%s': %s; %s", name, why,
                                 SB_CLIENT_RULE);
        if (sb_is_hostname(name, 0))
                return SB_OK;
        return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                         "principal '%s': neither a client principal nor a "
                         "host name; %s; %s",
                         name, SB_CLIENT_RULE, SB_HOST_RULE);
}

long sb_principal_generation(const char *name)
{
        char why[160];
        const char *dot;

        if (!name || !*name || strlen(name) > SB_PRINCIPAL_MAX ||
            sb_client_principal_flaw(name, why, sizeof(why)))
                return -1;
        dot = strrchr(name, '.');
        if (!dot)
                return -1;
        return strtol(dot + 2, NULL, 10);
}

/*
 * The CA
 */

sb_err_t sb_ca_init(const char *dir, const char *name, int days, char *errstr,
                    size_t errstr_size)
{
        static const char *hint = "refusing to overwrite an existing CA; "
                                  "choose another directory or move the old "
                                  "CA away first";
        char key_path[SB_CA_PATH_MAX], crt_path[SB_CA_PATH_MAX];
        char reg_path[SB_CA_PATH_MAX], oerr[256];
        sb_newfile_t nfs[3];
        EVP_PKEY *key = NULL;
        BIO *key_pem = NULL, *crt_pem = NULL;
        X509V3_CTX ctx;
        X509 *crt = NULL;
        struct stat st;
        const char *p;
        int created_dir = 0;
        sb_err_t err;
        time_t now;

        memset(nfs, 0, sizeof(nfs));
        if (!name)
                name = SB_CA_DEFAULT_NAME;
        if (days == 0)
                days = SB_CA_DEFAULT_DAYS;
        if (days < 1 || days > SB_CA_MAX_DAYS)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "CA lifetime %d days: expected 1 to %d days",
                                 days, SB_CA_MAX_DAYS);
        if (!*name || strlen(name) > SB_PRINCIPAL_MAX)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "CA name '%s': expected 1 to %d characters",
                                 name, SB_PRINCIPAL_MAX);
        for (p = name; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return sb_seterr(errstr, errstr_size,
                                         SB_ERR_INVALID_ARG,
                                         "CA name '%s': control characters "
                                         "are not allowed",
                                         name);
        if ((err = sb_path_join(key_path, dir, SB_CA_KEY_FILE, "", errstr,
                                errstr_size)) ||
            (err = sb_path_join(crt_path, dir, SB_CA_CRT_FILE, "", errstr,
                                errstr_size)) ||
            (err = sb_path_join(reg_path, dir, SB_CA_REGISTER_FILE, "", errstr,
                                errstr_size)))
                return err;

        if ((err = sb_dir_ensure("CA directory", dir, &created_dir, errstr,
                                 errstr_size)))
                return err;
        /* Whoever may write here could swap ca.crt or the register. */
        if (!created_dir && stat(dir, &st) == 0 && (st.st_mode & 022))
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "CA directory '%s': mode %04o lets group or "
                                 "others write to it; run: chmod 700 '%s'",
                                 dir, (unsigned)(st.st_mode & 07777), dir);

        if ((err = sb_newfile_open(&nfs[0], "CA key", key_path, 0600, hint,
                                   errstr, errstr_size)) ||
            (err = sb_newfile_open(&nfs[1], "CA certificate", crt_path, 0644,
                                   hint, errstr, errstr_size)) ||
            (err = sb_newfile_open(&nfs[2], "register", reg_path, 0644, hint,
                                   errstr, errstr_size)))
                goto fail;

        now = time(NULL);
        key = EVP_EC_gen("P-256");
        if (!key ||
            !(crt = sb_x509_new(name, key, now, now + days * SB_DAY_SECONDS))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "CA certificate '%s': cannot create: %s",
                                crt_path, sb_ossl_err(oerr, sizeof(oerr)));
                goto fail;
        }
        X509V3_set_ctx(&ctx, crt, crt, NULL, NULL, 0);
        /* pathlen:0: this CA signs end-entity certificates only. */
        if (X509_set_issuer_name(crt, X509_get_subject_name(crt)) != 1 ||
            !sb_x509_add_ext(crt, &ctx, NID_basic_constraints,
                             "critical,CA:TRUE,pathlen:0") ||
            !sb_x509_add_ext(crt, &ctx, NID_key_usage,
                             "critical,keyCertSign,cRLSign") ||
            !sb_x509_add_ext(crt, &ctx, NID_subject_key_identifier, "hash") ||
            X509_sign(crt, key, EVP_sha256()) <= 0 ||
            !(key_pem = sb_key_pem(key)) || !(crt_pem = sb_crt_pem(crt))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "CA certificate '%s': cannot create: %s",
                                crt_path, sb_ossl_err(oerr, sizeof(oerr)));
                goto fail;
        }
        if ((err =
                 sb_newfile_write_bio(&nfs[0], key_pem, errstr, errstr_size)) ||
            (err =
                 sb_newfile_write_bio(&nfs[1], crt_pem, errstr, errstr_size)) ||
            (err = sb_newfile_close(&nfs[0], errstr, errstr_size)) ||
            (err = sb_newfile_close(&nfs[1], errstr, errstr_size)) ||
            (err = sb_newfile_close(&nfs[2], errstr, errstr_size)))
                goto fail;
        err = SB_OK;
        goto done;
fail:
        sb_newfiles_discard(nfs, 3);
        if (created_dir)
                rmdir(dir);
done:
        sb_bio_wipe_free(key_pem);
        BIO_free(crt_pem);
        X509_free(crt);
        EVP_PKEY_free(key);
        return err;
}

/*
 * Certificates
 */

/* The validity window of `req` (see sb_cert_req_t). */
static sb_err_t sb_cert_window(const sb_cert_req_t *req, time_t now,
                               time_t *nbp, time_t *nap, char *errstr,
                               size_t errstr_size)
{
        char a[SB_RFC3339_SIZE], b[SB_RFC3339_SIZE];
        time_t nb = req->not_before, na = req->not_after, span;
        int days = req->days;

        if (days < 0 || days > SB_CERT_MAX_DAYS)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "lifetime %d days: expected 1 to %d days",
                                 days, SB_CERT_MAX_DAYS);
        if (days && nb && na)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "a lifetime in days cannot be combined with "
                                 "both a not-before and a not-after time");
        span = (days ? days : SB_CERT_DEFAULT_DAYS) * SB_DAY_SECONDS;
        if (nb && !na)
                na = nb + span;
        else if (!nb && na)
                nb = na > now ? now : na - span;
        else if (!nb && !na) {
                nb = now;
                na = now + span;
        }
        sb_rfc3339_format(nb, a);
        sb_rfc3339_format(na, b);
        if (na <= nb)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "not-after %s is not later than not-before "
                                 "%s",
                                 b, a);
        if (na - nb > SB_CERT_MAX_DAYS * SB_DAY_SECONDS)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "validity from %s to %s is longer than %d "
                                 "days",
                                 a, b, SB_CERT_MAX_DAYS);
        *nbp = nb;
        *nap = na;
        return SB_OK;
}

/* subjectAltName from the request's host names and addresses. */
static sb_err_t sb_cert_add_sans(X509 *x, const sb_cert_req_t *req,
                                 char *errstr, size_t errstr_size)
{
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        GENERAL_NAME *gn;
        sb_err_t err = SB_OK;
        size_t i;

        if (!gens)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < req->dns_cnt && !err; i++) {
                gn = NULL;
                if (!sb_is_hostname(req->dns[i], 1) ||
                    !(gn = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_DNS,
                                            req->dns[i], 0)) ||
                    !sk_GENERAL_NAME_push(gens, gn)) {
                        GENERAL_NAME_free(gn);
                        err = sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                        "DNS name '%s': not a host name "
                                        "(dot-separated labels of letters, "
                                        "digits and '-')",
                                        req->dns[i]);
                }
        }
        for (i = 0; i < req->ip_cnt && !err; i++) {
                gn = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_IPADD, req->ips[i],
                                      0);
                if (!gn || !sk_GENERAL_NAME_push(gens, gn)) {
                        GENERAL_NAME_free(gn);
                        err = sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                        "IP address '%s': not an IPv4 or IPv6 "
                                        "address",
                                        req->ips[i]);
                }
        }
        ERR_clear_error();
        if (!err && sk_GENERAL_NAME_num(gens) > 0 &&
            X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                              X509V3_ADD_DEFAULT) != 1)
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "cannot add the subjectAltName extension");
        GENERAL_NAMES_free(gens);
        return err;
}

/* One register line: {"principal",...} and a newline; caller frees. */
static char *sb_register_line(const sb_cert_info_t *info)
{
        char nb[SB_RFC3339_SIZE], na[SB_RFC3339_SIZE], at[SB_RFC3339_SIZE];
        char *text, *line = NULL;
        json_t *obj;
        size_t len;

        sb_rfc3339_format(info->not_before, nb);
        sb_rfc3339_format(info->not_after, na);
        sb_rfc3339_format(info->issued_at, at);
        obj =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "principal",
                      info->principal, "serial", info->serial, "not_before", nb,
                      "not_after", na, "sha256", info->sha256, "issued_at", at,
                      "server", info->server, "crt", info->crt_path);
        if (!obj)
                return NULL;
        text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(obj);
        if (!text)
                return NULL;
        len = strlen(text);
        line = malloc(len + 2);
        if (line) {
                memcpy(line, text, len);
                line[len] = '\n';
                line[len + 1] = '\0';
        }
        free(text);
        return line;
}

sb_err_t sb_cert_issue(const sb_cert_req_t *req, sb_cert_info_t *out,
                       char *errstr, size_t errstr_size)
{
        static const char *hint = "refusing to overwrite it; issue the next "
                                  "generation, or move the old files away "
                                  "first";
        char key_path[SB_CA_PATH_MAX], crt_path[SB_CA_PATH_MAX];
        char pem_path[SB_CA_PATH_MAX], reg_path[SB_CA_PATH_MAX];
        char abs_crt[SB_CA_PATH_MAX], abs_out[PATH_MAX], oerr[256],
            a[SB_RFC3339_SIZE], b[SB_RFC3339_SIZE];
        const char *out_dir = req->out_dir ? req->out_dir : req->ca_dir;
        BIO *key_pem = NULL, *crt_pem = NULL, *ca_pem = NULL;
        sb_ca_t ca = {.crt = NULL, .key = NULL};
        sb_newfile_t nfs[3];
        sb_cert_info_t info;
        EVP_PKEY *key = NULL;
        time_t nb = 0, na = 0, ca_na, now = time(NULL);
        char *line = NULL;
        X509V3_CTX ctx;
        X509 *crt = NULL;
        int reg_fd = -1, created_dir = 0;
        sb_err_t err;

        memset(nfs, 0, sizeof(nfs));
        memset(&info, 0, sizeof(info));
        if ((err = sb_principal_check(req->principal, req->server, errstr,
                                      errstr_size)) ||
            (err = sb_cert_window(req, now, &nb, &na, errstr, errstr_size)))
                return err;
        if ((err = sb_ca_load(req->ca_dir, &ca, errstr, errstr_size)))
                return err;
        if (!sb_asn1_time_get(X509_get0_notAfter(ca.crt), &ca_na)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "CA certificate '%s': unreadable validity "
                                "dates",
                                ca.crt_path);
                goto fail;
        }
        if (na > ca_na) {
                sb_rfc3339_format(na, a);
                sb_rfc3339_format(ca_na, b);
                err = sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                "certificate would outlive the CA: not after "
                                "%s, but CA certificate '%s' expires %s; "
                                "shorten the validity or renew the CA",
                                a, ca.crt_path, b);
                goto fail;
        }
        if ((err = sb_path_join(reg_path, req->ca_dir, SB_CA_REGISTER_FILE, "",
                                errstr, errstr_size)))
                goto fail;
        /* The register must exist: a missing one would lose history. */
        reg_fd = open(reg_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (reg_fd == -1) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "register '%s': %s", reg_path, strerror(errno));
                goto fail;
        }
        if ((err = sb_dir_ensure("output directory", out_dir, &created_dir,
                                 errstr, errstr_size)))
                goto fail;
        if (!realpath(out_dir, abs_out)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "output directory '%s': %s", out_dir,
                                strerror(errno));
                goto fail;
        }
        if ((err = sb_path_join(key_path, out_dir, req->principal, ".key",
                                errstr, errstr_size)) ||
            (err = sb_path_join(crt_path, out_dir, req->principal, ".crt",
                                errstr, errstr_size)) ||
            (err = sb_path_join(pem_path, out_dir, req->principal, ".pem",
                                errstr, errstr_size)) ||
            (err = sb_path_join(abs_crt, abs_out, req->principal, ".crt",
                                errstr, errstr_size)))
                goto fail;

        key = EVP_EC_gen("P-256");
        if (!key || !(crt = sb_x509_new(req->principal, key, nb, na))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "certificate '%s': cannot create: %s", crt_path,
                                sb_ossl_err(oerr, sizeof(oerr)));
                goto fail;
        }
        if ((err = sb_cert_add_sans(crt, req, errstr, errstr_size)))
                goto fail;
        X509V3_set_ctx(&ctx, ca.crt, crt, NULL, NULL, 0);
        if (X509_set_issuer_name(crt, X509_get_subject_name(ca.crt)) != 1 ||
            !sb_x509_add_ext(crt, &ctx, NID_basic_constraints,
                             "critical,CA:FALSE") ||
            !sb_x509_add_ext(crt, &ctx, NID_key_usage,
                             "critical,digitalSignature") ||
            !sb_x509_add_ext(crt, &ctx, NID_ext_key_usage,
                             req->server ? "serverAuth,clientAuth"
                                         : "clientAuth") ||
            !sb_x509_add_ext(crt, &ctx, NID_subject_key_identifier, "hash") ||
            !sb_x509_add_ext(crt, &ctx, NID_authority_key_identifier,
                             "keyid:always") ||
            X509_sign(crt, ca.key, EVP_sha256()) <= 0 ||
            !(key_pem = sb_key_pem(key)) || !(crt_pem = sb_crt_pem(crt)) ||
            !(ca_pem = sb_crt_pem(ca.crt))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_CRYPTO,
                                "certificate '%s': cannot create: %s", crt_path,
                                sb_ossl_err(oerr, sizeof(oerr)));
                goto fail;
        }
        if ((err = sb_x509_info(crt, now, &info, abs_crt, errstr, errstr_size)))
                goto fail;
        info.issued_at = now;
        if (!(line = sb_register_line(&info))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto fail;
        }

        if ((err = sb_newfile_open(&nfs[0], "key", key_path, 0600, hint, errstr,
                                   errstr_size)) ||
            (err = sb_newfile_open(&nfs[1], "certificate", crt_path, 0644, hint,
                                   errstr, errstr_size)) ||
            (err = sb_newfile_open(&nfs[2], "PEM bundle", pem_path, 0600, hint,
                                   errstr, errstr_size)))
                goto fail;
        if ((err =
                 sb_newfile_write_bio(&nfs[0], key_pem, errstr, errstr_size)) ||
            (err =
                 sb_newfile_write_bio(&nfs[1], crt_pem, errstr, errstr_size)) ||
            (err =
                 sb_newfile_write_bio(&nfs[2], key_pem, errstr, errstr_size)) ||
            (err =
                 sb_newfile_write_bio(&nfs[2], crt_pem, errstr, errstr_size)) ||
            (err =
                 sb_newfile_write_bio(&nfs[2], ca_pem, errstr, errstr_size)) ||
            (err = sb_newfile_close(&nfs[0], errstr, errstr_size)) ||
            (err = sb_newfile_close(&nfs[1], errstr, errstr_size)) ||
            (err = sb_newfile_close(&nfs[2], errstr, errstr_size)))
                goto fail;
        /* Last, in one write: an entry always names files that exist. */
        if (sb_write_all(reg_fd, line, strlen(line)) == -1 ||
            fsync(reg_fd) == -1) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "register '%s': write failed: %s", reg_path,
                                strerror(errno));
                goto fail;
        }
        if (out)
                *out = info;
        err = SB_OK;
        goto done;
fail:
        sb_newfiles_discard(nfs, 3);
        if (created_dir)
                rmdir(out_dir);
done:
        if (reg_fd != -1)
                close(reg_fd);
        free(line);
        sb_bio_wipe_free(key_pem);
        BIO_free(crt_pem);
        BIO_free(ca_pem);
        X509_free(crt);
        EVP_PKEY_free(key);
        sb_ca_release(&ca);
        return err;
}

sb_err_t sb_cert_file_info(const char *path, time_t now, sb_cert_info_t *info,
                           char *errstr, size_t errstr_size)
{
        sb_err_t err;
        X509 *x;

        memset(info, 0, sizeof(*info));
        if (!now)
                now = time(NULL);
        if (access(path, F_OK) == -1 && errno == ENOENT)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOT_FOUND,
                                 "certificate '%s': %s", path,
                                 strerror(ENOENT));
        x = sb_x509_read(path, errstr, errstr_size);
        if (!x)
                return SB_ERR_CRYPTO;
        err = sb_x509_info(x, now, info, path, errstr, errstr_size);
        X509_free(x);
        return err;
}

static int sb_copy_field(char *dst, size_t size, const char *src)
{
        size_t len = strlen(src);

        if (len >= size)
                return 0;
        memcpy(dst, src, len + 1);
        return 1;
}

/* One register line into `info`, checked against its certificate file. */
static sb_err_t sb_register_entry(const char *dir, const char *reg_path,
                                  size_t lineno, const char *line, time_t now,
                                  sb_cert_info_t *info, char *errstr,
                                  size_t errstr_size)
{
        const char *principal, *serial, *nb, *na, *sha, *at, *crt = NULL;
        sb_cert_info_t file;
        json_error_t jerr;
        json_t *obj;
        int server;
        sb_err_t err = SB_OK;

        memset(info, 0, sizeof(*info));
        obj = json_loads(line, 0, &jerr);
        if (!obj)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "register '%s' line %zu: %s", reg_path, lineno,
                                 jerr.text);
        if (json_unpack_ex(
                obj, &jerr, 0, "{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s?:s}",
                "principal", &principal, "serial", &serial, "not_before", &nb,
                "not_after", &na, "sha256", &sha, "issued_at", &at, "server",
                &server, "crt", &crt) != 0) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "register '%s' line %zu: %s", reg_path, lineno,
                                jerr.text);
                goto done;
        }
        if (!sb_copy_field(info->principal, sizeof(info->principal),
                           principal) ||
            !sb_copy_field(info->serial, sizeof(info->serial), serial) ||
            strlen(sha) != 2 * 32 ||
            !sb_copy_field(info->sha256, sizeof(info->sha256), sha) ||
            sb_rfc3339_parse(nb, &info->not_before, NULL, 0) ||
            sb_rfc3339_parse(na, &info->not_after, NULL, 0) ||
            sb_rfc3339_parse(at, &info->issued_at, NULL, 0)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "register '%s' line %zu: a field is too long "
                                "or not a date",
                                reg_path, lineno);
                goto done;
        }
        info->server = server;
        info->generation = sb_principal_generation(info->principal);
        if (crt) {
                if (!sb_copy_field(info->crt_path, sizeof(info->crt_path),
                                   crt)) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                        "register '%s' line %zu: field "
                                        "'crt' is too long",
                                        reg_path, lineno);
                        goto done;
                }
        } else if ((err = sb_path_join(info->crt_path, dir, info->principal,
                                       ".crt", errstr, errstr_size))) {
                goto done;
        }
        /* The file decides, as long as it is the certificate issued. */
        if (sb_cert_file_info(info->crt_path, now, &file, NULL, 0) == SB_OK &&
            !strcmp(file.sha256, info->sha256)) {
                info->not_before = file.not_before;
                info->not_after = file.not_after;
                info->status = file.status;
        } else {
                info->status = SB_CERT_MISSING;
        }
done:
        json_decref(obj);
        return err;
}

sb_err_t sb_cert_list(const char *dir, time_t now, sb_cert_info_t **infosp,
                      size_t *cntp, char *errstr, size_t errstr_size)
{
        char reg_path[SB_CA_PATH_MAX];
        sb_cert_info_t *infos = NULL, *grown;
        size_t cnt = 0, cap = 0, lineno = 0, linecap = 0;
        char *line = NULL;
        sb_err_t err;
        ssize_t len;
        FILE *fp;

        *infosp = NULL;
        *cntp = 0;
        if (!now)
                now = time(NULL);
        if ((err = sb_path_join(reg_path, dir, SB_CA_REGISTER_FILE, "", errstr,
                                errstr_size)))
                return err;
        fp = fopen(reg_path, "re");
        if (!fp)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "register '%s': %s", reg_path,
                                 strerror(errno));
        while ((len = getline(&line, &linecap, fp)) != -1) {
                lineno++;
                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                        line[len - 1] == ' '))
                        line[--len] = '\0';
                if (len == 0)
                        continue;
                if (cnt == cap) {
                        cap = cap ? 2 * cap : 16;
                        grown = realloc(infos, cap * sizeof(*infos));
                        if (!grown) {
                                err = sb_seterr(errstr, errstr_size,
                                                SB_ERR_NOMEM, "out of memory");
                                goto fail;
                        }
                        infos = grown;
                }
                if ((err = sb_register_entry(dir, reg_path, lineno, line, now,
                                             &infos[cnt], errstr, errstr_size)))
                        goto fail;
                cnt++;
        }
        if (ferror(fp)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "register '%s': read failed", reg_path);
                goto fail;
        }
        fclose(fp);
        free(line);
        *infosp = infos;
        *cntp = cnt;
        return SB_OK;
fail:
        fclose(fp);
        free(line);
        free(infos);
        return err;
}
