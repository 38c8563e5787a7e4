/*
 * Ed25519 signing keys (common/sign.c).
 *
 * A reuser signs its receipts (DESIGN.md §6, §9): a signature verifies
 * with the public key and with nothing else, the slightest change of the
 * data or of the signature is detected, and the secret key lives in a file
 * only its owner can read (R3.8-06, R6.3-02, DESIGN.md §8); every refusal
 * names the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "crypto.h"
#include "sign.h"

/*
 * Helpers
 */

static char tmp_root[64];

static int setup(void **state)
{
        char errstr[256] = "";

        (void)state;
        if (sb_crypto_init(errstr, sizeof(errstr)))
                fail_msg("sb_crypto_init: %s", errstr);
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/sb-test-sign-XXXXXX");
        if (!mkdtemp(tmp_root))
                fail_msg("mkdtemp failed");
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        sb_test_rmtree(tmp_root);
        return 0;
}

static const char *tmp_path(const char *name)
{
        static char path[4][256];
        static int next;
        char *p = path[next++ % 4];

        snprintf(p, sizeof(path[0]), "%s/%s", tmp_root, name);
        return p;
}

/* Writes `text` to a new file `name` with `mode`; returns its path. */
static const char *write_file(const char *name, const char *text, mode_t mode)
{
        const char *path = tmp_path(name);
        size_t len = strlen(text);
        int fd;

        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd == -1 || write(fd, text, len) != (ssize_t)len ||
            fchmod(fd, mode) || close(fd))
                fail_msg("cannot write %s", path);
        return path;
}

static void read_file(const char *path, char *out, size_t size)
{
        FILE *fp = fopen(path, "r");
        size_t n;

        if (!fp)
                fail_msg("cannot read %s", path);
        n = fread(out, 1, size - 1, fp);
        out[n] = '\0';
        fclose(fp);
}

static mode_t file_mode(const char *path)
{
        struct stat st;

        if (stat(path, &st))
                fail_msg("stat %s failed", path);
        return st.st_mode & 07777;
}

/* Saves a fresh key as tmp_root/NAME.key + .pub; returns it. */
static sb_signkey_t *saved_key(const char *name, const char **secretp,
                               const char **publicp)
{
        static char sk[256], pk[256];
        char errstr[512] = "";
        sb_signkey_t *key = sb_signkey_generate();

        assert_non_null(key);
        snprintf(sk, sizeof(sk), "%s/%s.key", tmp_root, name);
        snprintf(pk, sizeof(pk), "%s/%s.pub", tmp_root, name);
        unlink(sk);
        unlink(pk);
        if (sb_signkey_save(key, sk, pk, errstr, sizeof(errstr)))
                fail_msg("sb_signkey_save: %s", errstr);
        *secretp = sk;
        *publicp = pk;
        return key;
}

static const char message[] = "sharebus receipt: erasure applied, 2 rows";

/*
 * Signatures
 */

static void signature_verifies_with_the_public_key(void **state)
{
        sb_signkey_t *key = sb_signkey_generate();
        char sig[SB_SIG_HEXLEN + 1], again[SB_SIG_HEXLEN + 1];
        size_t i;

        (void)state;
        assert_non_null(key);
        assert_int_equal(SB_OK, sb_sign(key, message, sizeof(message), sig));
        assert_int_equal(SB_SIG_HEXLEN, strlen(sig));
        for (i = 0; sig[i]; i++)
                if (!strchr("0123456789abcdef", sig[i]))
                        fail_msg("signature \"%s\": not lower-case hex", sig);
        assert_int_equal(SB_OK, sb_verify(sb_signkey_public(key), message,
                                          sizeof(message), sig));
        /* Ed25519 is deterministic: a receipt sent again carries the same
         * signature. */
        assert_int_equal(SB_OK, sb_sign(key, message, sizeof(message), again));
        assert_string_equal(sig, again);
        /* Upper-case hex is the same signature. */
        for (i = 0; again[i]; i++)
                if (again[i] >= 'a' && again[i] <= 'f')
                        again[i] = (char)(again[i] - 'a' + 'A');
        assert_int_equal(SB_OK, sb_verify(sb_signkey_public(key), message,
                                          sizeof(message), again));
        /* Empty data can be signed too. */
        assert_int_equal(SB_OK, sb_sign(key, "", 0, sig));
        assert_int_equal(SB_OK, sb_verify(sb_signkey_public(key), "", 0, sig));
        sb_signkey_destroy(key);
}

static void flipped_bit_in_data_or_signature_fails(void **state)
{
        sb_signkey_t *key = sb_signkey_generate(), *other;
        unsigned char data[sizeof(message)], sigbin[64];
        char sig[SB_SIG_HEXLEN + 1], bad[SB_SIG_HEXLEN + 1];
        size_t i, bit;

        (void)state;
        assert_non_null(key);
        assert_int_equal(SB_OK, sb_sign(key, message, sizeof(message), sig));
        /* Every bit of the data. */
        for (i = 0; i < sizeof(message); i++)
                for (bit = 0; bit < 8; bit++) {
                        memcpy(data, message, sizeof(data));
                        data[i] ^= (unsigned char)(1u << bit);
                        if (sb_verify(sb_signkey_public(key), data,
                                      sizeof(data), sig) != SB_ERR_CRYPTO)
                                fail_msg("data with bit %zu of byte %zu "
                                         "flipped: expected SB_ERR_CRYPTO, "
                                         "got SB_OK",
                                         bit, i);
                }
        /* One byte more or less. */
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_verify(sb_signkey_public(key), message,
                                   sizeof(message) - 1, sig));
        /* Every bit of the signature. */
        for (i = 0; i < sizeof(sigbin); i++)
                for (bit = 0; bit < 8; bit++) {
                        assert_int_equal(
                            0, sodium_hex2bin(sigbin, sizeof(sigbin), sig,
                                              SB_SIG_HEXLEN, NULL, NULL, NULL));
                        sigbin[i] ^= (unsigned char)(1u << bit);
                        sodium_bin2hex(bad, sizeof(bad), sigbin,
                                       sizeof(sigbin));
                        if (sb_verify(sb_signkey_public(key), message,
                                      sizeof(message), bad) != SB_ERR_CRYPTO)
                                fail_msg("signature with bit %zu of byte %zu "
                                         "flipped: expected SB_ERR_CRYPTO, "
                                         "got SB_OK",
                                         bit, i);
                }
        /* Another key's public key. */
        other = sb_signkey_generate();
        assert_non_null(other);
        assert_int_equal(
            SB_ERR_CRYPTO,
            sb_verify(sb_signkey_public(other), message, sizeof(message), sig));
        sb_signkey_destroy(other);
        sb_signkey_destroy(key);
}

static void malformed_signature_is_refused(void **state)
{
        sb_signkey_t *key = sb_signkey_generate();
        char sig[SB_SIG_HEXLEN + 1], bad[SB_SIG_HEXLEN + 2];
        const unsigned char *pub;

        (void)state;
        assert_non_null(key);
        pub = sb_signkey_public(key);
        assert_int_equal(SB_OK, sb_sign(key, message, sizeof(message), sig));
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_verify(pub, message, sizeof(message), NULL));
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_verify(pub, message, sizeof(message), ""));
        /* One character short, one too many. */
        snprintf(bad, sizeof(bad), "%.*s", SB_SIG_HEXLEN - 1, sig);
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_verify(pub, message, sizeof(message), bad));
        snprintf(bad, sizeof(bad), "%s0", sig);
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_verify(pub, message, sizeof(message), bad));
        /* Not hex. */
        snprintf(bad, sizeof(bad), "%s", sig);
        bad[10] = 'g';
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_verify(pub, message, sizeof(message), bad));
        sb_signkey_destroy(key);
}

/*
 * Key files
 */

static void key_files_round_trip_with_their_key_id(void **state)
{
        char errstr[512] = "", text[512], id[SB_KEY_ID_HEXLEN + 1];
        char sig[SB_SIG_HEXLEN + 1], hexid[SB_KEY_ID_HEXLEN + 1];
        unsigned char pub[SB_SIGN_PUBLIC_BYTES], h[32];
        const char *sk, *pk;
        sb_signkey_t *key, *loaded = NULL;

        (void)state;
        key = saved_key("reuser", &sk, &pk);
        assert_int_equal(0600, file_mode(sk));
        read_file(sk, text, sizeof(text));
        assert_int_equal(2 * SB_SIGN_SECRET_BYTES + 1, strlen(text));
        assert_int_equal('\n', text[2 * SB_SIGN_SECRET_BYTES]);
        read_file(pk, text, sizeof(text));
        assert_int_equal(2 * SB_SIGN_PUBLIC_BYTES + 1, strlen(text));

        if (sb_signkey_load(sk, &loaded, errstr, sizeof(errstr)))
                fail_msg("sb_signkey_load: %s", errstr);
        assert_memory_equal(sb_signkey_public(key), sb_signkey_public(loaded),
                            SB_SIGN_PUBLIC_BYTES);
        assert_string_equal(sb_signkey_id(key), sb_signkey_id(loaded));
        if (sb_pubkey_load(pk, pub, errstr, sizeof(errstr)))
                fail_msg("sb_pubkey_load: %s", errstr);
        assert_memory_equal(sb_signkey_public(key), pub, sizeof(pub));

        /* What the loaded key signs, the saved public key verifies. */
        assert_int_equal(SB_OK, sb_sign(loaded, message, sizeof(message), sig));
        assert_int_equal(SB_OK, sb_verify(pub, message, sizeof(message), sig));

        /* The key id: first 8 bytes of BLAKE2b-256 of the public key. */
        crypto_generichash(h, sizeof(h), pub, sizeof(pub), NULL, 0);
        sodium_bin2hex(hexid, sizeof(hexid), h, 8);
        sb_key_id(pub, id);
        assert_string_equal(hexid, id);
        assert_string_equal(hexid, sb_signkey_id(loaded));

        /* An existing key is never overwritten. */
        assert_int_equal(SB_ERR_IO,
                         sb_signkey_save(loaded, sk, tmp_path("other.pub"),
                                         errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, sk));
        assert_int_equal(-1, access(tmp_path("other.pub"), F_OK));
        assert_int_equal(SB_ERR_IO,
                         sb_signkey_save(loaded, tmp_path("other.key"), pk,
                                         errstr, sizeof(errstr)));
        assert_non_null(strstr(errstr, pk));
        /* ... and the secret half written first is taken back. */
        assert_int_equal(-1, access(tmp_path("other.key"), F_OK));

        sb_signkey_destroy(loaded);
        sb_signkey_destroy(key);
}

static void key_file_readable_by_others_is_refused(void **state)
{
        static const mode_t bad[] = {0644, 0640, 0604, 0660, 0666};
        char errstr[512], expected[1024], text[512];
        sb_signkey_t *key, *loaded = NULL;
        const char *sk, *pk, *path;
        size_t i;

        (void)state;
        key = saved_key("lax", &sk, &pk);
        read_file(sk, text, sizeof(text));
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                path = write_file("lax-copy.key", text, bad[i]);
                errstr[0] = '\0';
                assert_int_equal(
                    SB_ERR_CRYPTO,
                    sb_signkey_load(path, &loaded, errstr, sizeof(errstr)));
                assert_null(loaded);
                snprintf(expected, sizeof(expected),
                         "key file '%s': mode %04o gives access to others; "
                         "run: chmod 600 '%s'",
                         path, (unsigned)bad[i], path);
                assert_string_equal(expected, errstr);
        }
        /* The same bytes at 0600 (or 0400) are accepted. */
        path = write_file("lax-copy.key", text, 0400);
        if (sb_signkey_load(path, &loaded, errstr, sizeof(errstr)))
                fail_msg("mode 0400 refused: %s", errstr);
        sb_signkey_destroy(loaded);
        loaded = NULL;
        /* No file at all. */
        path = tmp_path("absent.key");
        assert_int_equal(
            SB_ERR_IO, sb_signkey_load(path, &loaded, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "key file '%s': No such file or directory", path);
        assert_string_equal(expected, errstr);
        assert_null(loaded);
        sb_signkey_destroy(key);
}

typedef struct key_text_s {
        const char *why;
        const char *text;
        const char *expected; /* NULL: accepted; else %s is the path */
} key_text_t;

#define SECRET_LENGTH                                                          \
        "key file '%s': expected 128 hex characters (an Ed25519 secret key, "  \
        "as 'sharebus keys generate' writes it)"
#define PUBLIC_LENGTH                                                          \
        "public key file '%s': expected 64 hex characters (an Ed25519 public " \
        "key)"

static void key_files_must_hold_the_right_hex(void **state)
{
        char errstr[512], expected[1024], good[130], pubhex[70];
        char secrets[8][300], publics[6][200];
        key_text_t srows[8], prows[6];
        unsigned char pub[SB_SIGN_PUBLIC_BYTES], noise[64];
        sb_signkey_t *key, *loaded;
        const char *sk, *pk, *path;
        size_t i;

        (void)state;
        key = saved_key("rows", &sk, &pk);
        read_file(sk, good, sizeof(good));
        good[128] = '\0'; /* without the newline */
        read_file(pk, pubhex, sizeof(pubhex));
        pubhex[64] = '\0';
        randombytes_buf(noise, sizeof(noise));

        snprintf(secrets[0], sizeof(secrets[0]), "%s", good);
        snprintf(secrets[1], sizeof(secrets[1]), "%s\r\n", good);
        snprintf(secrets[2], sizeof(secrets[2]), "%s", "");
        snprintf(secrets[3], sizeof(secrets[3]), "%.127s", good);
        snprintf(secrets[4], sizeof(secrets[4]), "%s0", good);
        snprintf(secrets[5], sizeof(secrets[5]), "%s", good);
        secrets[5][17] = 'x';
        /* A 32-byte key (the gateway's pseudonym key) is not one. */
        snprintf(secrets[6], sizeof(secrets[6]), "%.64s\n", good);
        /* 64 bytes whose second half is not the seed's public key. */
        sodium_bin2hex(secrets[7], sizeof(secrets[7]), noise, sizeof(noise));
        srows[0] = (key_text_t){"128 hex", secrets[0], NULL};
        srows[1] = (key_text_t){"128 hex + CRLF", secrets[1], NULL};
        srows[2] = (key_text_t){"empty", secrets[2], SECRET_LENGTH};
        srows[3] = (key_text_t){"127 hex", secrets[3], SECRET_LENGTH};
        srows[4] = (key_text_t){"129 hex", secrets[4], SECRET_LENGTH};
        srows[5] = (key_text_t){"not hex", secrets[5], SECRET_LENGTH};
        srows[6] = (key_text_t){"a 32-byte key", secrets[6], SECRET_LENGTH};
        srows[7] = (key_text_t){
            "halves that do not match", secrets[7],
            "key file '%s': not an Ed25519 secret key (its public half does "
            "not match its seed)"};
        for (i = 0; i < 8; i++) {
                path = write_file("row.key", srows[i].text, 0600);
                loaded = NULL;
                errstr[0] = '\0';
                if (!srows[i].expected) {
                        if (sb_signkey_load(path, &loaded, errstr,
                                            sizeof(errstr)))
                                fail_msg("%s: refused: %s", srows[i].why,
                                         errstr);
                        assert_memory_equal(sb_signkey_public(key),
                                            sb_signkey_public(loaded),
                                            SB_SIGN_PUBLIC_BYTES);
                        sb_signkey_destroy(loaded);
                        continue;
                }
                if (sb_signkey_load(path, &loaded, errstr, sizeof(errstr)) !=
                    SB_ERR_CRYPTO)
                        fail_msg("%s: expected SB_ERR_CRYPTO (%s)",
                                 srows[i].why, errstr);
                assert_null(loaded);
                snprintf(expected, sizeof(expected), srows[i].expected, path);
                if (strcmp(expected, errstr))
                        fail_msg("%s:\n  expected: %s\n  got:      %s",
                                 srows[i].why, expected, errstr);
        }

        snprintf(publics[0], sizeof(publics[0]), "%s\n", pubhex);
        snprintf(publics[1], sizeof(publics[1]), "%s", pubhex);
        snprintf(publics[2], sizeof(publics[2]), "%.63s", pubhex);
        snprintf(publics[3], sizeof(publics[3]), "%s00", pubhex);
        snprintf(publics[4], sizeof(publics[4]), "%s", pubhex);
        publics[4][0] = 'z';
        snprintf(publics[5], sizeof(publics[5]), "%s", good); /* secret */
        prows[0] = (key_text_t){"64 hex + LF", publics[0], NULL};
        prows[1] = (key_text_t){"64 hex", publics[1], NULL};
        prows[2] = (key_text_t){"63 hex", publics[2], PUBLIC_LENGTH};
        prows[3] = (key_text_t){"66 hex", publics[3], PUBLIC_LENGTH};
        prows[4] = (key_text_t){"not hex", publics[4], PUBLIC_LENGTH};
        prows[5] = (key_text_t){"the secret key", publics[5], PUBLIC_LENGTH};
        for (i = 0; i < 6; i++) {
                path = write_file("row.pub", prows[i].text, 0644);
                errstr[0] = '\0';
                if (!prows[i].expected) {
                        if (sb_pubkey_load(path, pub, errstr, sizeof(errstr)))
                                fail_msg("%s: refused: %s", prows[i].why,
                                         errstr);
                        assert_memory_equal(sb_signkey_public(key), pub,
                                            sizeof(pub));
                        continue;
                }
                if (sb_pubkey_load(path, pub, errstr, sizeof(errstr)) !=
                    SB_ERR_CRYPTO)
                        fail_msg("%s: expected SB_ERR_CRYPTO (%s)",
                                 prows[i].why, errstr);
                snprintf(expected, sizeof(expected), prows[i].expected, path);
                if (strcmp(expected, errstr))
                        fail_msg("%s:\n  expected: %s\n  got:      %s",
                                 prows[i].why, expected, errstr);
        }
        sodium_memzero(good, sizeof(good));
        sodium_memzero(secrets, sizeof(secrets));
        sb_signkey_destroy(key);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(signature_verifies_with_the_public_key),
            cmocka_unit_test(flipped_bit_in_data_or_signature_fails),
            cmocka_unit_test(malformed_signature_is_refused),
            cmocka_unit_test(key_files_round_trip_with_their_key_id),
            cmocka_unit_test(key_file_readable_by_others_is_refused),
            cmocka_unit_test(key_files_must_hold_the_right_hex),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
