/*
 * The platform CA and short-lived certificates (admin/ca.c).
 *
 * Clients authenticate to Kafka with certificates signed by the platform
 * CA (R3.7-09, R5.4-03..05); the CA key is readable by its owner only
 * (DESIGN.md §8); a certificate's CN is the Kafka principal and carries a
 * credential generation, so a compromised credential is revoked by deleting
 * the ACLs of that generation and renewal issues the next one (R3.7-10,
 * R3.7-21).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testutil.h"
#include "ca.h"

#define DAY 86400
/* One character more than a certificate's CN may hold. */
#define NAME_65                                                                \
        "a1234567890123456789012345678901234567890"                            \
        "123456789012345678901234"

#define CLIENT_RULE                                                            \
        "a client principal is a lowercase letter followed by lowercase "      \
        "letters, digits or '-', then optionally a credential generation "     \
        "'.gN' (e.g. acme-research.g1)"
#define HOST_RULE                                                              \
        "a server certificate may also be named after a host: dot-separated "  \
        "labels of lowercase letters, digits and '-' that neither start nor "  \
        "end with '-' (e.g. kafka-1.example.org)"

/*
 * Helpers
 */

static char tmp_root[64];

static int setup(void **state)
{
        (void)state;
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/sb-test-ca-XXXXXX");
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

/* tmp_root/a[/b]; a few static buffers in rotation. */
static const char *tmp_path(const char *a, const char *b)
{
        static char path[8][512];
        static int next;
        char *p = path[next++ % 8];

        if (b)
                snprintf(p, sizeof(path[0]), "%s/%s/%s", tmp_root, a, b);
        else
                snprintf(p, sizeof(path[0]), "%s/%s", tmp_root, a);
        return p;
}

/* A fresh CA in tmp_root/name; returns its directory. */
static const char *new_ca(const char *name)
{
        const char *dir = tmp_path(name, NULL);
        char errstr[1024] = "";

        if (sb_ca_init(dir, NULL, 0, errstr, sizeof(errstr)))
                fail_msg("sb_ca_init(%s): %s", dir, errstr);
        return dir;
}

static void init_req(sb_cert_req_t *req, const char *ca_dir,
                     const char *principal)
{
        memset(req, 0, sizeof(*req));
        req->ca_dir = ca_dir;
        req->principal = principal;
}

static void issue_ok(const sb_cert_req_t *req, sb_cert_info_t *info)
{
        char errstr[1024] = "";

        if (sb_cert_issue(req, info, errstr, sizeof(errstr)))
                fail_msg("sb_cert_issue(%s): %s", req->principal, errstr);
}

static unsigned file_mode(const char *path)
{
        struct stat st;

        if (stat(path, &st) == -1)
                fail_msg("'%s' does not exist", path);
        return (unsigned)(st.st_mode & 07777);
}

static int file_exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

/* The whole file as a NUL-terminated string; the caller frees. */
static char *read_text(const char *path)
{
        FILE *fp = fopen(path, "r");
        char *buf;
        long len;

        if (!fp)
                fail_msg("cannot open '%s'", path);
        fseek(fp, 0, SEEK_END);
        len = ftell(fp);
        rewind(fp);
        buf = malloc((size_t)len + 1);
        assert_non_null(buf);
        if (fread(buf, 1, (size_t)len, fp) != (size_t)len)
                fail_msg("cannot read '%s'", path);
        buf[len] = '\0';
        fclose(fp);
        return buf;
}

/* Like assert_string_equal, without printing key material on failure. */
static void assert_same_secret_text(const char *expected, const char *got,
                                    const char *what)
{
        size_t i;

        for (i = 0; expected[i] && expected[i] == got[i]; i++)
                ;
        if (expected[i] != got[i])
                fail_msg("%s: differs from the expected text at byte %zu "
                         "(expected %zu bytes, got %zu)",
                         what, i, strlen(expected), strlen(got));
}

static X509 *load_crt(const char *path)
{
        BIO *bio = BIO_new_file(path, "r");
        X509 *x;

        if (!bio)
                fail_msg("cannot open certificate '%s'", path);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!x)
                fail_msg("'%s' is not a PEM certificate", path);
        return x;
}

static EVP_PKEY *load_key(const char *path)
{
        BIO *bio = BIO_new_file(path, "r");
        EVP_PKEY *k;

        if (!bio)
                fail_msg("cannot open key '%s'", path);
        k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!k)
                fail_msg("'%s' is not a PEM private key", path);
        return k;
}

static time_t asn1_time(const ASN1_TIME *at)
{
        struct tm tm;

        memset(&tm, 0, sizeof(tm));
        assert_int_equal(1, ASN1_TIME_to_tm(at, &tm));
        return timegm(&tm);
}

static void assert_cn(X509 *x, const char *expected)
{
        char cn[256] = "";

        assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
                                              NID_commonName, cn,
                                              sizeof(cn)) > 0);
        assert_string_equal(expected, cn);
}

static int ext_critical(X509 *x, int nid)
{
        int i = X509_get_ext_by_NID(x, nid, -1);

        if (i < 0)
                fail_msg("extension %s missing", OBJ_nid2sn(nid));
        return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* X509_verify_cert() of `leaf` against `ca` alone, for `purpose`. */
static int verify_chain(X509 *ca, X509 *leaf, int purpose, const char *host,
                        int *errp)
{
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        int ok;

        assert_non_null(store);
        assert_non_null(ctx);
        assert_int_equal(1, X509_STORE_add_cert(store, ca));
        assert_int_equal(1, X509_STORE_CTX_init(ctx, store, leaf, NULL));
        assert_int_equal(1, X509_STORE_CTX_set_purpose(ctx, purpose));
        if (host)
                assert_int_equal(1,
                                 X509_VERIFY_PARAM_set1_host(
                                     X509_STORE_CTX_get0_param(ctx), host, 0));
        ok = X509_verify_cert(ctx);
        *errp = X509_STORE_CTX_get_error(ctx);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        return ok;
}

static void assert_sha256_of(X509 *x, const char *expected)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0, i;
        char hex[2 * EVP_MAX_MD_SIZE + 1];

        assert_int_equal(1, X509_digest(x, EVP_sha256(), md, &len));
        for (i = 0; i < len; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        assert_string_equal(expected, hex);
}

/* Names of the entries of `dir`, sorted, joined by spaces. */
static void dir_listing(const char *dir, char *out, size_t size)
{
        struct dirent **ents;
        int n, i;

        out[0] = '\0';
        n = scandir(dir, &ents, NULL, alphasort);
        if (n < 0)
                fail_msg("cannot list '%s'", dir);
        for (i = 0; i < n; i++) {
                if (ents[i]->d_name[0] != '.') {
                        if (out[0])
                                strncat(out, " ", size - strlen(out) - 1);
                        strncat(out, ents[i]->d_name, size - strlen(out) - 1);
                }
                free(ents[i]);
        }
        free(ents);
}

/*
 * The CA
 */

static void ca_init_writes_key_0600_and_refuses_to_overwrite(void **state)
{
        const char *dir = tmp_path("ca-init", NULL);
        const char *key_path = tmp_path("ca-init", "ca.key");
        const char *crt_path = tmp_path("ca-init", "ca.crt");
        const char *reg_path = tmp_path("ca-init", "issued.ndjson");
        char errstr[1024] = "", expected[1024], group[64];
        char *key_before, *crt_before, *key_after, *crt_after, *reg;
        size_t group_len = 0;
        BIGNUM *serial;
        EVP_PKEY *key;
        mode_t old;
        X509 *crt;

        (void)state;
        /* The modes must come from the code, not from a kind umask. */
        old = umask(0);
        if (sb_ca_init(dir, "sharebus test CA", 30, errstr, sizeof(errstr)))
                fail_msg("sb_ca_init: %s", errstr);
        umask(old);
        assert_int_equal(0700, file_mode(dir));
        assert_int_equal(0600, file_mode(key_path));
        assert_int_equal(0644, file_mode(crt_path));
        key_before = read_text(key_path);
        crt_before = read_text(crt_path);
        assert_non_null(strstr(key_before, "-----BEGIN PRIVATE KEY-----"));
        reg = read_text(reg_path);
        assert_string_equal("", reg); /* the register starts empty */
        free(reg);

        /* EC P-256 key, self-signed CA certificate. */
        key = load_key(key_path);
        assert_true(EVP_PKEY_is_a(key, "EC"));
        assert_int_equal(
            1, EVP_PKEY_get_group_name(key, group, sizeof(group), &group_len));
        assert_string_equal("prime256v1", group);
        crt = load_crt(crt_path);
        assert_int_equal(1, X509_check_private_key(crt, key));
        assert_int_equal(1, X509_verify(crt, key));
        assert_cn(crt, "sharebus test CA");
        assert_int_equal(0, X509_NAME_cmp(X509_get_subject_name(crt),
                                          X509_get_issuer_name(crt)));
        assert_true(X509_check_ca(crt) >= 1);
        assert_int_equal(1, ext_critical(crt, NID_basic_constraints));
        assert_int_equal(KU_KEY_CERT_SIGN | KU_CRL_SIGN,
                         X509_get_key_usage(crt));
        assert_int_equal(1, ext_critical(crt, NID_key_usage));
        assert_non_null(X509_get0_subject_key_id(crt));
        assert_int_equal(30 * DAY, asn1_time(X509_get0_notAfter(crt)) -
                                       asn1_time(X509_get0_notBefore(crt)));
        serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(crt), NULL);
        assert_non_null(serial);
        if (BN_num_bits(serial) <= 64 || BN_num_bits(serial) > 128)
                fail_msg("serial: expected a random 128-bit number, got %d "
                         "bits",
                         BN_num_bits(serial));
        BN_free(serial);

        /* A second init refuses and leaves the first CA as it was. */
        assert_int_equal(SB_ERR_IO,
                         sb_ca_init(dir, NULL, 0, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "CA key '%s' already exists: refusing to overwrite an "
                 "existing CA; choose another directory or move the old CA "
                 "away first",
                 key_path);
        assert_string_equal(expected, errstr);
        key_after = read_text(key_path);
        crt_after = read_text(crt_path);
        assert_same_secret_text(key_before, key_after,
                                "CA key after a "
                                "refused second init");
        assert_string_equal(crt_before, crt_after);
        assert_int_equal(0600, file_mode(key_path));

        OPENSSL_cleanse(key_before, strlen(key_before));
        OPENSSL_cleanse(key_after, strlen(key_after));
        free(key_before);
        free(key_after);
        free(crt_before);
        free(crt_after);
        X509_free(crt);
        EVP_PKEY_free(key);
}

static void ca_key_with_loose_mode_is_refused(void **state)
{
        const char *dir = new_ca("ca-loose");
        const char *key_path = tmp_path("ca-loose", "ca.key");
        char errstr[1024] = "", expected[2048], listing[512];
        sb_cert_info_t info;
        sb_cert_req_t req;

        (void)state;
        assert_int_equal(0, chmod(key_path, 0644));
        init_req(&req, dir, "acme-research.g1");
        assert_int_equal(SB_ERR_CRYPTO,
                         sb_cert_issue(&req, &info, errstr, sizeof(errstr)));
        snprintf(expected, sizeof(expected),
                 "CA key '%s': mode 0644 gives access to others; run: "
                 "chmod 600 '%s'",
                 key_path, key_path);
        assert_string_equal(expected, errstr);
        dir_listing(dir, listing, sizeof(listing));
        assert_string_equal("ca.crt ca.key issued.ndjson", listing);

        /* The mode alone was at fault. */
        assert_int_equal(0, chmod(key_path, 0600));
        issue_ok(&req, &info);
}

/*
 * Certificates
 */

static void
issued_client_cert_chains_to_ca_and_carries_principal_as_cn(void **state)
{
        const char *dir = new_ca("client");
        const char *crt_path = tmp_path("client", "acme-research.g1.crt");
        const char *key_path = tmp_path("client", "acme-research.g1.key");
        char *reg, *nl;
        const char *jp, *js, *jsha;
        int jserver, verr;
        json_error_t jerr;
        sb_cert_info_t info;
        sb_cert_req_t req;
        X509 *ca, *leaf;
        EVP_PKEY *key;
        json_t *line;

        (void)state;
        init_req(&req, dir, "acme-research.g1");
        issue_ok(&req, &info);
        assert_string_equal("acme-research.g1", info.principal);
        assert_int_equal(1, info.generation);
        assert_int_equal(0, info.server);

        ca = load_crt(tmp_path("client", "ca.crt"));
        leaf = load_crt(crt_path);
        if (verify_chain(ca, leaf, X509_PURPOSE_SSL_CLIENT, NULL, &verr) != 1)
                fail_msg("client certificate does not verify against the CA: "
                         "%s",
                         X509_verify_cert_error_string(verr));
        /* A client certificate cannot serve as a broker's. */
        assert_int_not_equal(
            1, verify_chain(ca, leaf, X509_PURPOSE_SSL_SERVER, NULL, &verr));
        assert_int_equal(X509_V_ERR_INVALID_PURPOSE, verr);

        assert_cn(leaf, "acme-research.g1");
        assert_int_equal(0, X509_check_ca(leaf));
        assert_true(X509_get_extension_flags(leaf) & EXFLAG_BCONS);
        assert_true(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE);
        assert_int_equal(XKU_SSL_CLIENT, X509_get_extended_key_usage(leaf));
        assert_int_equal(KU_DIGITAL_SIGNATURE, X509_get_key_usage(leaf));
        assert_int_equal(1, ext_critical(leaf, NID_key_usage));
        assert_int_equal(0,
                         ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
                                               X509_get0_subject_key_id(ca)));
        assert_int_equal(SB_CERT_DEFAULT_DAYS * DAY,
                         asn1_time(X509_get0_notAfter(leaf)) -
                             asn1_time(X509_get0_notBefore(leaf)));
        assert_int_not_equal(0, ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf),
                                                 X509_get0_serialNumber(ca)));

        /* The key is the certificate's and only its owner reads it. */
        assert_int_equal(0600, file_mode(key_path));
        key = load_key(key_path);
        assert_int_equal(1, X509_check_private_key(leaf, key));

        /* One register line describing this very certificate. */
        reg = read_text(tmp_path("client", "issued.ndjson"));
        nl = strchr(reg, '\n');
        assert_non_null(nl);
        assert_int_equal(0, nl[1]);
        line = json_loads(reg, JSON_DISABLE_EOF_CHECK, &jerr);
        if (!line)
                fail_msg("register line is not JSON: %s: %s", jerr.text, reg);
        assert_int_equal(0, json_unpack(line, "{s:s, s:s, s:s, s:b}",
                                        "principal", &jp, "serial", &js,
                                        "sha256", &jsha, "server", &jserver));
        assert_string_equal("acme-research.g1", jp);
        assert_string_equal(info.serial, js);
        assert_string_equal(info.sha256, jsha);
        assert_int_equal(0, jserver);
        assert_non_null(json_object_get(line, "not_before"));
        assert_non_null(json_object_get(line, "not_after"));
        assert_non_null(json_object_get(line, "issued_at"));
        assert_sha256_of(leaf, jsha);

        json_decref(line);
        free(reg);
        EVP_PKEY_free(key);
        X509_free(leaf);
        X509_free(ca);
}

static void cert_principal_must_carry_a_valid_name(void **state)
{
        static const struct {
                const char *name;
                int server;
                const char *expected; /* NULL: accepted */
        } cases[] = {
            {"acme-research.g1", 0, NULL},
            {"acme-research", 0, NULL},
            {"a.g0", 0, NULL},
            {"energy-desk.g123456789", 0, NULL},
            {"kafka-1.example.org", 1, NULL},
            {"localhost", 1, NULL},
            {"broker-2.g3", 1, NULL},
            {"", 0, "principal is empty; " CLIENT_RULE},
            {"Acme-research.g1", 0,
             "principal 'Acme-research.g1': must start with a lowercase "
             "letter, not 'A'; " CLIENT_RULE},
            {"1acme.g1", 0,
             "principal '1acme.g1': must start with a lowercase letter, not "
             "'1'; " CLIENT_RULE},
            {"acme_research.g1", 0,
             "principal 'acme_research.g1': character '_' is not "
             "allowed; " CLIENT_RULE},
            {"acme/../ca", 0,
             "principal 'acme/../ca': character '/' is not "
             "allowed; " CLIENT_RULE},
            {"acme research", 0,
             "principal 'acme research': character ' ' is not "
             "allowed; " CLIENT_RULE},
            {"acme-research.g", 0,
             "principal 'acme-research.g': suffix '.g' is not a credential "
             "generation '.gN'; " CLIENT_RULE},
            {"acme-research.v2", 0,
             "principal 'acme-research.v2': suffix '.v2' is not a credential "
             "generation '.gN'; " CLIENT_RULE},
            {"acme-research.g1.g2", 0,
             "principal 'acme-research.g1.g2': suffix '.g1.g2' is not a "
             "credential generation '.gN'; " CLIENT_RULE},
            {"acme-research.g2x", 0,
             "principal 'acme-research.g2x': suffix '.g2x' is not a "
             "credential generation '.gN'; " CLIENT_RULE},
            {"acme-research.g1234567890", 0,
             "principal 'acme-research.g1234567890': generation "
             "'.g1234567890' has more than 9 digits; " CLIENT_RULE},
            {"kafka-1.example.org", 0,
             "principal 'kafka-1.example.org': suffix '.example.org' is not "
             "a credential generation '.gN'; " CLIENT_RULE},
            {NAME_65, 0,
             "principal '" NAME_65 "': longer than 64 characters, the limit "
             "of a certificate's CN"},
            {"kafka-.example.org", 1,
             "principal 'kafka-.example.org': neither a client principal nor "
             "a host name; " CLIENT_RULE "; " HOST_RULE},
            {"kafka..example.org", 1,
             "principal 'kafka..example.org': neither a client principal nor "
             "a host name; " CLIENT_RULE "; " HOST_RULE},
            {"Kafka-1.example.org", 1,
             "principal 'Kafka-1.example.org': neither a client principal "
             "nor a host name; " CLIENT_RULE "; " HOST_RULE},
        };
        const char *dir = new_ca("names");
        char errstr[1024], listing[512];
        sb_cert_info_t info;
        sb_cert_req_t req;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                errstr[0] = '\0';
                if (!cases[i].expected) {
                        if (sb_principal_check(cases[i].name, cases[i].server,
                                               errstr, sizeof(errstr)))
                                fail_msg("principal '%s': expected accepted, "
                                         "got: %s",
                                         cases[i].name, errstr);
                        continue;
                }
                init_req(&req, dir, cases[i].name);
                req.server = cases[i].server;
                if (sb_cert_issue(&req, &info, errstr, sizeof(errstr)) !=
                    SB_ERR_INVALID_ARG)
                        fail_msg("principal '%s': expected refused, got: %s",
                                 cases[i].name, errstr);
                if (strcmp(cases[i].expected, errstr))
                        fail_msg("principal '%s':\n  expected: %s\n  got:     "
                                 " %s",
                                 cases[i].name, cases[i].expected, errstr);
        }
        /* Nothing was written for any refused name. */
        dir_listing(dir, listing, sizeof(listing));
        assert_string_equal("ca.crt ca.key issued.ndjson", listing);
        assert_int_equal(-1, sb_principal_generation("kafka-1.example.org"));
        assert_int_equal(-1, sb_principal_generation("acme-research"));
        assert_int_equal(12, sb_principal_generation("acme-research.g12"));
}

static void server_cert_carries_requested_sans(void **state)
{
        static const char *dns[] = {"localhost"};
        static const char *ips[] = {"127.0.0.1"};
        static const char *bad_dns[] = {"bad host"};
        static const char *bad_ips[] = {"300.1.2.3"};
        const char *dir = new_ca("server");
        char errstr[1024] = "";
        GENERAL_NAMES *sans;
        sb_cert_info_t info;
        sb_cert_req_t req;
        X509 *ca, *leaf;
        int verr;

        (void)state;
        init_req(&req, dir, "kafka-1");
        req.server = 1;
        req.dns = dns;
        req.dns_cnt = 1;
        req.ips = ips;
        req.ip_cnt = 1;
        issue_ok(&req, &info);
        assert_int_equal(1, info.server);

        ca = load_crt(tmp_path("server", "ca.crt"));
        leaf = load_crt(tmp_path("server", "kafka-1.crt"));
        assert_cn(leaf, "kafka-1");
        sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        assert_non_null(sans);
        assert_int_equal(2, sk_GENERAL_NAME_num(sans));
        GENERAL_NAMES_free(sans);
        assert_int_equal(1, X509_check_host(leaf, "localhost", 0, 0, NULL));
        assert_int_equal(1, X509_check_ip_asc(leaf, "127.0.0.1", 0));
        assert_int_not_equal(1,
                             X509_check_host(leaf, "example.org", 0, 0, NULL));
        assert_int_not_equal(1, X509_check_ip_asc(leaf, "127.0.0.2", 0));
        assert_int_equal(XKU_SSL_SERVER | XKU_SSL_CLIENT,
                         X509_get_extended_key_usage(leaf));
        if (verify_chain(ca, leaf, X509_PURPOSE_SSL_SERVER, "localhost",
                         &verr) != 1)
                fail_msg("server certificate does not verify for localhost: "
                         "%s",
                         X509_verify_cert_error_string(verr));
        assert_int_not_equal(1, verify_chain(ca, leaf, X509_PURPOSE_SSL_SERVER,
                                             "kafka-2.example.org", &verr));
        assert_int_equal(X509_V_ERR_HOSTNAME_MISMATCH, verr);

        /* Malformed names are refused before anything is written. */
        init_req(&req, dir, "kafka-2");
        req.server = 1;
        req.dns = bad_dns;
        req.dns_cnt = 1;
        assert_int_equal(SB_ERR_INVALID_ARG,
                         sb_cert_issue(&req, &info, errstr, sizeof(errstr)));
        assert_string_equal("DNS name 'bad host': not a host name "
                            "(dot-separated labels of letters, digits and '-')",
                            errstr);
        req.dns_cnt = 0;
        req.ips = bad_ips;
        req.ip_cnt = 1;
        assert_int_equal(SB_ERR_INVALID_ARG,
                         sb_cert_issue(&req, &info, errstr, sizeof(errstr)));
        assert_string_equal(
            "IP address '300.1.2.3': not an IPv4 or IPv6 address", errstr);
        assert_false(file_exists(tmp_path("server", "kafka-2.key")));

        X509_free(leaf);
        X509_free(ca);
}

static void expired_window_is_reported_expired_by_list(void **state)
{
        const char *dir = new_ca("list");
        sb_cert_info_t info, *infos;
        char errstr[1024] = "";
        time_t now = time(NULL), t;
        sb_cert_req_t req;
        size_t cnt;

        (void)state;
        /* g1: a week in 2020; g2: now; g3: pre-issued; g4: file deleted. */
        init_req(&req, dir, "acme-research.g1");
        assert_int_equal(SB_OK, sb_rfc3339_parse("2020-01-01T00:00:00Z",
                                                 &req.not_before, NULL, 0));
        assert_int_equal(SB_OK, sb_rfc3339_parse("2020-01-08T00:00:00Z",
                                                 &req.not_after, NULL, 0));
        issue_ok(&req, &info);
        assert_int_equal(SB_CERT_EXPIRED, info.status);
        init_req(&req, dir, "acme-research.g2");
        issue_ok(&req, &info);
        init_req(&req, dir, "acme-research.g3");
        req.not_before = now + 5 * DAY;
        issue_ok(&req, &info);
        init_req(&req, dir, "acme-research.g4");
        issue_ok(&req, &info);
        assert_int_equal(0, unlink(tmp_path("list", "acme-research.g4.crt")));

        if (sb_cert_list(dir, 0, &infos, &cnt, errstr, sizeof(errstr)))
                fail_msg("sb_cert_list: %s", errstr);
        assert_int_equal(4, cnt);
        assert_string_equal("acme-research.g1", infos[0].principal);
        assert_string_equal("expired", sb_cert_status2str(infos[0].status));
        assert_int_equal(1, infos[0].generation);
        assert_int_equal(SB_OK,
                         sb_rfc3339_parse("2020-01-08T00:00:00Z", &t, NULL, 0));
        assert_int_equal(t, infos[0].not_after);
        assert_string_equal("valid", sb_cert_status2str(infos[1].status));
        assert_int_equal(2, infos[1].generation);
        assert_string_equal("not yet valid",
                            sb_cert_status2str(infos[2].status));
        assert_int_equal(now + 5 * DAY + SB_CERT_DEFAULT_DAYS * DAY,
                         infos[2].not_after);
        assert_string_equal("missing", sb_cert_status2str(infos[3].status));
        assert_int_equal(4, infos[3].generation);
        free(infos);

        /* Status is judged at the time asked: g1 was valid in 2020. */
        assert_int_equal(
            SB_OK, sb_rfc3339_parse("2020-01-05T12:00:00+02:00", &t, NULL, 0));
        if (sb_cert_list(dir, t, &infos, &cnt, errstr, sizeof(errstr)))
                fail_msg("sb_cert_list: %s", errstr);
        assert_int_equal(4, cnt);
        assert_string_equal("valid", sb_cert_status2str(infos[0].status));
        assert_string_equal("not yet valid",
                            sb_cert_status2str(infos[1].status));
        free(infos);
}

static void pem_bundle_holds_key_then_cert_then_ca(void **state)
{
        const char *dir = new_ca("bundle");
        const char *pem_path = tmp_path("bundle", "energy-desk.g2.pem");
        static const char *order[] = {"PRIVATE KEY", "CERTIFICATE",
                                      "CERTIFICATE"};
        char *bundle, *key_text, *crt_text, *ca_text, *expected;
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        sb_cert_info_t info;
        sb_cert_req_t req;
        EVP_PKEY *key;
        long len = 0;
        size_t i;
        X509 *leaf;
        BIO *bio;

        (void)state;
        init_req(&req, dir, "energy-desk.g2");
        issue_ok(&req, &info);
        assert_int_equal(0600, file_mode(pem_path));

        bundle = read_text(pem_path);
        key_text = read_text(tmp_path("bundle", "energy-desk.g2.key"));
        crt_text = read_text(tmp_path("bundle", "energy-desk.g2.crt"));
        ca_text = read_text(tmp_path("bundle", "ca.crt"));
        expected =
            malloc(strlen(key_text) + strlen(crt_text) + strlen(ca_text) + 1);
        assert_non_null(expected);
        strcpy(expected, key_text);
        strcat(expected, crt_text);
        strcat(expected, ca_text);
        assert_same_secret_text(expected, bundle,
                                "bundle vs key + cert + CA cert");

        /* Three PEM blocks, in that order, and nothing else. */
        bio = BIO_new_mem_buf(bundle, -1);
        assert_non_null(bio);
        for (i = 0; i < 3; i++) {
                if (PEM_read_bio(bio, &name, &header, &data, &len) != 1)
                        fail_msg("bundle block %zu: expected %s, got nothing",
                                 i + 1, order[i]);
                assert_string_equal(order[i], name);
                OPENSSL_free(name);
                OPENSSL_free(header);
                OPENSSL_clear_free(data, (size_t)len);
        }
        assert_int_not_equal(1, PEM_read_bio(bio, &name, &header, &data, &len));
        ERR_clear_error();
        BIO_free(bio);

        /* The key at the head of the bundle is the certificate's. */
        key = load_key(pem_path);
        leaf = load_crt(tmp_path("bundle", "energy-desk.g2.crt"));
        assert_int_equal(1, X509_check_private_key(leaf, key));

        X509_free(leaf);
        EVP_PKEY_free(key);
        OPENSSL_cleanse(bundle, strlen(bundle));
        OPENSSL_cleanse(key_text, strlen(key_text));
        OPENSSL_cleanse(expected, strlen(expected));
        free(bundle);
        free(key_text);
        free(crt_text);
        free(ca_text);
        free(expected);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(ca_init_writes_key_0600_and_refuses_to_overwrite),
            cmocka_unit_test(
                issued_client_cert_chains_to_ca_and_carries_principal_as_cn),
            cmocka_unit_test(cert_principal_must_carry_a_valid_name),
            cmocka_unit_test(server_cert_carries_requested_sans),
            cmocka_unit_test(expired_window_is_reported_expired_by_list),
            cmocka_unit_test(pem_bundle_holds_key_then_cert_then_ca),
            cmocka_unit_test(ca_key_with_loose_mode_is_refused),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
