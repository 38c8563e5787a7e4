/*
 * Pseudonyms and key files (common/crypto.c).
 *
 * Each reuser receives, instead of the subject id, a keyed BLAKE2b
 * pseudonym whose key is derived from the master key per (reuser,
 * dataset): one reuser always sees the same pseudonym for one person, two
 * reusers cannot join their streams (R1.0-02, R3.5-08, DESIGN.md §5).
 * The master key lives in a file only its owner can read (R3.8-06,
 * R6.3-02, DESIGN.md §8).
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

#define SUBJECTS 1000

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
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/sb-test-pseudo-XXXXXX");
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

/* Writes `len` bytes to a new file `name` with `mode`; returns its path. */
static const char *write_key_file(const char *name, const char *text,
                                  size_t len, mode_t mode)
{
        const char *path = tmp_path(name);
        int fd;

        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd == -1 || write(fd, text, len) != (ssize_t)len ||
            fchmod(fd, mode) || close(fd))
                fail_msg("cannot write %s", path);
        return path;
}

/* A key with bytes 0, 1, ..., 31 (so that results are reproducible). */
static sb_key_t *counting_key(void)
{
        sb_key_t *k = sb_key_random();
        int i;

        assert_non_null(k);
        for (i = 0; i < SB_KEY_BYTES; i++)
                k->bytes[i] = (unsigned char)i;
        return k;
}

static void pseudonym_of(const sb_key_t *key, const char *reuser,
                         const char *dataset, const char *id,
                         char out[SB_PSEUDONYM_HEXLEN + 1])
{
        sb_pseudonymiser_t *ps = sb_pseudonymiser_new(key, reuser, dataset);

        assert_non_null(ps);
        sb_pseudonymise(ps, id, strlen(id), out);
        sb_pseudonymiser_destroy(ps);
}

static void assert_is_pseudonym(const char *p)
{
        size_t i;

        if (strlen(p) != SB_PSEUDONYM_HEXLEN)
                fail_msg("pseudonym \"%s\": expected %d characters, got %zu", p,
                         SB_PSEUDONYM_HEXLEN, strlen(p));
        for (i = 0; p[i]; i++)
                if (!strchr("0123456789abcdef", p[i]))
                        fail_msg("pseudonym \"%s\": not lower-case hex", p);
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp((const char *)a, (const char *)b);
}

typedef char pseudonym_t[SB_PSEUDONYM_HEXLEN + 1];

/* Pseudonyms of subjects BEN-0000000 .. for one (key, reuser, dataset). */
static void pseudonyms_of_subjects(const sb_key_t *key, const char *reuser,
                                   const char *dataset, pseudonym_t *out)
{
        sb_pseudonymiser_t *ps = sb_pseudonymiser_new(key, reuser, dataset);
        char id[32];
        int i;

        assert_non_null(ps);
        for (i = 0; i < SUBJECTS; i++) {
                snprintf(id, sizeof(id), "BEN-%07d", i);
                sb_pseudonymise(ps, id, strlen(id), out[i]);
        }
        sb_pseudonymiser_destroy(ps);
}

/*
 * Fails when any pseudonym occurs twice among the two sets: no subject of
 * one set can be linked to a subject of the other by its pseudonym.
 */
static void assert_disjoint(const pseudonym_t *a, const pseudonym_t *b,
                            const char *what)
{
        pseudonym_t *all = malloc(2 * SUBJECTS * sizeof(*all));
        size_t i, same = 0;

        assert_non_null(all);
        memcpy(all, a, SUBJECTS * sizeof(*all));
        memcpy(all + SUBJECTS, b, SUBJECTS * sizeof(*all));
        qsort(all, 2 * SUBJECTS, sizeof(*all), str_cmp);
        for (i = 1; i < 2 * SUBJECTS; i++)
                if (!strcmp(all[i - 1], all[i]))
                        same++;
        free(all);
        if (same)
                fail_msg("%s: expected 0 shared pseudonyms among %d + %d "
                         "subjects, got %zu",
                         what, SUBJECTS, SUBJECTS, same);
}

static void compare_sets(const sb_key_t *ka, const char *ra, const char *da,
                         const sb_key_t *kb, const char *rb, const char *db,
                         const char *what)
{
        pseudonym_t *a = malloc(SUBJECTS * sizeof(*a));
        pseudonym_t *b = malloc(SUBJECTS * sizeof(*b));

        assert_non_null(a);
        assert_non_null(b);
        pseudonyms_of_subjects(ka, ra, da, a);
        pseudonyms_of_subjects(kb, rb, db, b);
        assert_disjoint(a, b, what);
        free(a);
        free(b);
}

/*
 * Pseudonyms
 */

static void pseudonyms_are_stable_for_one_reuser(void **state)
{
        sb_key_t *key = counting_key();
        sb_pseudonymiser_t *ps1, *ps2;
        char a[SB_PSEUDONYM_HEXLEN + 1], b[SB_PSEUDONYM_HEXLEN + 1];
        char c[SB_PSEUDONYM_HEXLEN + 1];

        (void)state;
        ps1 = sb_pseudonymiser_new(key, "energy-desk", "beneficiaries");
        ps2 = sb_pseudonymiser_new(key, "energy-desk", "beneficiaries");
        assert_non_null(ps1);
        assert_non_null(ps2);
        sb_pseudonymise(ps1, "BEN-0000421", 11, a);
        sb_pseudonymise(ps1, "BEN-0000421", 11, b);
        sb_pseudonymise(ps2, "BEN-0000421", 11, c);
        assert_is_pseudonym(a);
        assert_string_equal(a, b);
        assert_string_equal(a, c);
        /* Another subject, another pseudonym. */
        sb_pseudonymise(ps2, "BEN-0000422", 11, c);
        assert_string_not_equal(a, c);
        /*
         * Stable across versions too: reusers store rows by pseudonym, so a
         * change of derivation would orphan every stored row and break
         * erasure. Value of the documented construction, also computed
         * with Python's hashlib (crypto_kdf = BLAKE2b keyed with the master
         * key, salt = LE64 subkey id, personal = "sbpseudo").
         */
        assert_string_equal("9dcef6c2700bcf8a31b4a76d76cab568", a);
        sb_pseudonymiser_destroy(ps1);
        sb_pseudonymiser_destroy(ps2);
        sb_key_destroy(key);
}

static void pseudonyms_differ_across_reusers(void **state)
{
        sb_key_t *key = sb_key_random();

        (void)state;
        assert_non_null(key);
        compare_sets(key, "energy-desk", "beneficiaries", key,
                     "housing-observatory", "beneficiaries",
                     "energy-desk vs housing-observatory");
        sb_key_destroy(key);
}

static void pseudonyms_differ_across_datasets(void **state)
{
        sb_key_t *key = sb_key_random();

        (void)state;
        assert_non_null(key);
        compare_sets(key, "energy-desk", "beneficiaries", key, "energy-desk",
                     "pensions", "beneficiaries vs pensions");
        sb_key_destroy(key);
}

/* ("ab", "c") and ("a", "bc") name different pairs, so different keys. */
static void
pseudonyms_differ_when_reuser_and_dataset_split_differently(void **state)
{
        sb_key_t *key = sb_key_random();

        (void)state;
        assert_non_null(key);
        compare_sets(key, "acme-x", "data", key, "acme", "-xdata",
                     "(acme-x, data) vs (acme, -xdata)");
        sb_key_destroy(key);
}

static void pseudonyms_differ_across_master_keys(void **state)
{
        sb_key_t *k1 = sb_key_random(), *k2 = sb_key_random();

        (void)state;
        assert_non_null(k1);
        assert_non_null(k2);
        compare_sets(k1, "energy-desk", "beneficiaries", k2, "energy-desk",
                     "beneficiaries", "two master keys");
        sb_key_destroy(k1);
        sb_key_destroy(k2);
}

static void hex16(const unsigned char *h, char out[SB_PSEUDONYM_HEXLEN + 1])
{
        sodium_bin2hex(out, SB_PSEUDONYM_HEXLEN + 1, h, SB_PSEUDONYM_BYTES);
}

/*
 * A pseudonym must not be computable without the key: neither the id, nor
 * its unkeyed BLAKE2b, nor a hash keyed with the master key itself (every
 * reuser would then share it). It is the keyed BLAKE2b-128 of the id with
 * the subkey crypto_kdf derives for (reuser, dataset) (DESIGN.md §5).
 */
static void pseudonym_is_not_the_subject_id_nor_a_plain_hash(void **state)
{
        static const char id[] = "BEN-0000421";
        sb_key_t *key = counting_key();
        unsigned char h[SB_PSEUDONYM_BYTES], idhash[8];
        unsigned char subkey[SB_KEY_BYTES];
        char got[SB_PSEUDONYM_HEXLEN + 1], other[SB_PSEUDONYM_HEXLEN + 1];
        crypto_generichash_state st;
        uint64_t subkey_id = 0;
        int i;

        (void)state;
        pseudonym_of(key, "energy-desk", "beneficiaries", id, got);
        assert_null(strstr(got, "0000421"));

        crypto_generichash(h, sizeof(h), (const unsigned char *)id, strlen(id),
                           NULL, 0);
        hex16(h, other);
        assert_string_not_equal(other, got);

        crypto_generichash(h, sizeof(h), (const unsigned char *)id, strlen(id),
                           key->bytes, SB_KEY_BYTES);
        hex16(h, other);
        assert_string_not_equal(other, got);

        /* The documented construction, recomputed independently. */
        crypto_generichash_init(&st, NULL, 0, sizeof(idhash));
        crypto_generichash_update(&st, (const unsigned char *)"energy-desk",
                                  sizeof("energy-desk"));
        crypto_generichash_update(&st, (const unsigned char *)"beneficiaries",
                                  sizeof("beneficiaries"));
        crypto_generichash_final(&st, idhash, sizeof(idhash));
        for (i = 0; i < 8; i++)
                subkey_id = subkey_id << 8 | idhash[i];
        crypto_kdf_derive_from_key(subkey, sizeof(subkey), subkey_id,
                                   "sbpseudo", key->bytes);
        crypto_generichash(h, sizeof(h), (const unsigned char *)id, strlen(id),
                           subkey, sizeof(subkey));
        hex16(h, other);
        assert_string_equal(other, got);
        sodium_memzero(subkey, sizeof(subkey));
        sb_key_destroy(key);
}

/*
 * Key files
 */

static const char key_hex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void key_file_with_group_or_other_access_is_refused(void **state)
{
        static const mode_t bad[] = {0640, 0604, 0660, 0644, 0666, 0610};
        static const mode_t good[] = {0600, 0400};
        char errstr[512], expected[512];
        sb_key_t *key = NULL;
        const char *path;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                path = write_key_file("key.hex", key_hex, 64, bad[i]);
                errstr[0] = '\0';
                assert_int_equal(SB_ERR_CRYPTO, sb_key_load(path, &key, errstr,
                                                            sizeof(errstr)));
                assert_null(key);
                snprintf(expected, sizeof(expected),
                         "key file '%s': mode %04o gives access to others; "
                         "run: chmod 600 '%s'",
                         path, (unsigned)bad[i], path);
                assert_string_equal(expected, errstr);
                assert_non_null(strstr(errstr, "chmod 600"));
                /* The same check guards every secret file. */
                assert_int_equal(
                    SB_ERR_CRYPTO,
                    sb_key_file_check(path, errstr, sizeof(errstr)));
        }
        for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                path = write_key_file("key.hex", key_hex, 64, good[i]);
                if (sb_key_load(path, &key, errstr, sizeof(errstr)))
                        fail_msg("mode %04o refused: %s", (unsigned)good[i],
                                 errstr);
                sb_key_destroy(key);
                key = NULL;
        }
        /* Not a regular file, and no file at all. */
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_key_load(tmp_root, &key, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "key file '%s': not a regular file", tmp_root);
        assert_string_equal(expected, errstr);
        path = tmp_path("absent.hex");
        assert_int_equal(SB_ERR_IO,
                         sb_key_load(path, &key, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "key file '%s': No such file or directory", path);
        assert_string_equal(expected, errstr);
        assert_null(key);
}

typedef struct key_text_s {
        const char *why;
        const char *text;
        const char *expected; /* NULL: accepted; else %s is the path */
} key_text_t;

static void key_file_must_hold_64_hex_characters(void **state)
{
        static const key_text_t rows[] = {
            {"64 hex", key_hex, NULL},
            {"64 hex + LF",
             "000102030405060708090a0b0c0d0e0f"
             "101112131415161718191a1b1c1d1e1f\n",
             NULL},
            {"64 hex + CRLF",
             "000102030405060708090a0b0c0d0e0f"
             "101112131415161718191a1b1c1d1e1f\r\n",
             NULL},
            {"upper case",
             "000102030405060708090A0B0C0D0E0F"
             "101112131415161718191A1B1C1D1E1F",
             NULL},
            {"empty", "",
             "key file '%s': expected 64 hex characters (a "
             "32-byte key)"},
            {"63 hex",
             "000102030405060708090a0b0c0d0e0f"
             "101112131415161718191a1b1c1d1e1",
             "key file '%s': expected 64 hex characters (a 32-byte key)"},
            {"65 hex",
             "000102030405060708090a0b0c0d0e0f"
             "101112131415161718191a1b1c1d1e1f0",
             "key file '%s': expected 64 hex characters (a 32-byte key)"},
            {"non-hex character",
             "000102030405060708090a0b0c0d0e0f"
             "101112131415161718191a1b1c1d1e1g",
             "key file '%s': expected 64 hex characters (a 32-byte key)"},
            {"trailing space",
             "000102030405060708090a0b0c0d0e0f"
             "101112131415161718191a1b1c1d1e1f \n",
             "key file '%s': expected 64 hex characters (a 32-byte key)"},
            {"128 hex (two keys)",
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
             "key file '%s': too long (at most 66 bytes expected)"},
        };
        char errstr[512], expected[512];
        sb_key_t *ref = counting_key(), *key;
        char want[SB_PSEUDONYM_HEXLEN + 1], got[SB_PSEUDONYM_HEXLEN + 1];
        size_t i, failures = 0;

        (void)state;
        pseudonym_of(ref, "r", "d", "BEN-1", want);
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                const char *path = write_key_file("key.hex", rows[i].text,
                                                  strlen(rows[i].text), 0600);
                sb_err_t err;

                key = NULL;
                errstr[0] = '\0';
                err = sb_key_load(path, &key, errstr, sizeof(errstr));
                if (!rows[i].expected) {
                        if (err) {
                                print_error("%s: refused: %s\n", rows[i].why,
                                            errstr);
                                failures++;
                                continue;
                        }
                        /* The same key as the bytes written. */
                        pseudonym_of(key, "r", "d", "BEN-1", got);
                        if (strcmp(want, got)) {
                                print_error("%s: loaded another key\n",
                                            rows[i].why);
                                failures++;
                        }
                        sb_key_destroy(key);
                        continue;
                }
                snprintf(expected, sizeof(expected), rows[i].expected, path);
                if (err != SB_ERR_CRYPTO || key || strcmp(expected, errstr)) {
                        print_error("%s:\n  expected: error %d, %s\n"
                                    "  got:      error %d, %s\n",
                                    rows[i].why, SB_ERR_CRYPTO, expected, err,
                                    err ? errstr : "(accepted)");
                        if (!err)
                                sb_key_destroy(key);
                        failures++;
                }
        }
        sb_key_destroy(ref);
        if (failures)
                fail_msg("%zu key file(s) not handled as expected", failures);
}

static void key_saved_then_loaded_gives_same_pseudonyms(void **state)
{
        const char *path = tmp_path("saved.hex");
        char errstr[512] = "", expected[512];
        char a[SB_PSEUDONYM_HEXLEN + 1], b[SB_PSEUDONYM_HEXLEN + 1];
        sb_key_t *key = sb_key_random(), *loaded = NULL;
        struct stat st;
        mode_t old;

        (void)state;
        assert_non_null(key);
        /* With no umask to help, the file is still created 0600. */
        old = umask(0);
        if (sb_key_save(key, path, errstr, sizeof(errstr))) {
                umask(old);
                fail_msg("sb_key_save: %s", errstr);
        }
        umask(old);
        assert_int_equal(0, stat(path, &st));
        assert_int_equal(0600, st.st_mode & 0777);
        assert_int_equal(65, st.st_size); /* 64 hex + newline */

        if (sb_key_load(path, &loaded, errstr, sizeof(errstr)))
                fail_msg("sb_key_load: %s", errstr);
        assert_memory_equal(key->bytes, loaded->bytes, SB_KEY_BYTES);
        pseudonym_of(key, "energy-desk", "beneficiaries", "BEN-0000421", a);
        pseudonym_of(loaded, "energy-desk", "beneficiaries", "BEN-0000421", b);
        assert_string_equal(a, b);

        /* An existing key file is never overwritten. */
        assert_int_equal(SB_ERR_IO,
                         sb_key_save(loaded, path, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected), "key file '%s': File exists",
                 path);
        assert_string_equal(expected, errstr);
        sb_key_destroy(key);
        sb_key_destroy(loaded);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(pseudonyms_are_stable_for_one_reuser),
            cmocka_unit_test(pseudonyms_differ_across_reusers),
            cmocka_unit_test(pseudonyms_differ_across_datasets),
            cmocka_unit_test(
                pseudonyms_differ_when_reuser_and_dataset_split_differently),
            cmocka_unit_test(pseudonyms_differ_across_master_keys),
            cmocka_unit_test(pseudonym_is_not_the_subject_id_nor_a_plain_hash),
            cmocka_unit_test(key_file_with_group_or_other_access_is_refused),
            cmocka_unit_test(key_file_must_hold_64_hex_characters),
            cmocka_unit_test(key_saved_then_loaded_gives_same_pseudonyms),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
