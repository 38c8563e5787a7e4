/*
 * sharebus tests - shared helpers: fail-fast checks that print expected vs
 * got, and a mock-cluster environment with configured holder, gateway and
 * reuser agents.
 */
#ifndef SB_TESTUTIL_H
#define SB_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "grant.h"
#include "holder.h"
#include "mockenv.h"
#include "reuser.h"
#include "store.h"

#define SB_TEST_FAIL(...)                                                      \
        do {                                                                   \
                fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);          \
                fprintf(stderr, __VA_ARGS__);                                  \
                fprintf(stderr, "\n");                                         \
                exit(1);                                                       \
        } while (0)

#define SB_CHECK(cond, ...)                                                    \
        do {                                                                   \
                if (!(cond))                                                   \
                        SB_TEST_FAIL(__VA_ARGS__);                             \
        } while (0)

#define SB_CHECK_INT(expected, got, what)                                      \
        do {                                                                   \
                long long e_ = (long long)(expected), g_ = (long long)(got);   \
                if (e_ != g_)                                                  \
                        SB_TEST_FAIL("%s: expected %lld, got %lld", what, e_,  \
                                     g_);                                      \
        } while (0)

#define SB_CHECK_STR(expected, got, what)                                      \
        do {                                                                   \
                const char *e_ = (expected), *g_ = (got);                      \
                if (!g_ || strcmp(e_, g_))                                     \
                        SB_TEST_FAIL("%s:\n  expected: %s\n  got:      %s",    \
                                     what, e_, g_ ? g_ : "(null)");            \
        } while (0)

#define SB_OK_OR_FAIL(expr, errstr)                                            \
        do {                                                                   \
                if ((expr))                                                    \
                        SB_TEST_FAIL("%s: %s", #expr, errstr);                 \
        } while (0)

/*
 * How long the agents run without a message before a test takes them for
 * done. Generous: on a loaded 2-core machine a group join and the first
 * fetch can take seconds, and a shorter wait made tests miss records.
 */
#define SB_TEST_IDLE_MS 4000

/* Paths inside the source tree. */
#define SB_SCHEMAS_DIR SB_SOURCE_DIR "/schemas"

/* A mock cluster with sharebus's topics and agents configured on it. */
typedef struct sb_testenv_s {
        sb_mockenv_t *mock;
        char dir[256];        /* a fresh temporary directory */
        char grants_dir[300]; /* dir/grants */
        sb_catalog_t *cat;
        sb_key_t *key;
        sb_holder_cfg_t holder_cfg;
        sb_gateway_cfg_t gw_cfg;
} sb_testenv_t;

/*
 * Starts the mock cluster and creates sb.in.beneficiaries and the
 * quarantine topic. Grants are added with sb_testenv_grant().
 */
void sb_testenv_init(sb_testenv_t *te);
/* Writes a grant file (JSON text) and creates its output topic. */
void sb_testenv_grant(sb_testenv_t *te, const char *file, const char *json);
/*
 * A reuser config for the grant file written by sb_testenv_grant(): its
 * database is dir/<reuser>.db, its receipt signing key dir/<reuser>.key
 * (public key dir/<reuser>.pub; made on the first call, kept after), and
 * its receipt topic sb.ack.<reuser> exists on the mock.
 */
void sb_testenv_reuser_cfg(sb_testenv_t *te, const char *grant_file,
                           sb_reuser_cfg_t *cfg);
void sb_testenv_release(sb_testenv_t *te);

/* Writes `text` to dir/name and returns the path (static buffer). */
const char *sb_testenv_file(sb_testenv_t *te, const char *name,
                            const char *text);

/* The subject pseudonym the unit tests project with. */
#define SB_TEST_PSEUDONYM "0123456789abcdef0123456789abcdef"

/*
 * A dataset record (JSON) through a grant: dataset value -> projection
 * (with SB_TEST_PSEUDONYM; `ps` may be NULL when the grant pseudonymises no
 * field) -> single-object encoding -> decode with the output schema ->
 * JSON (new reference). The encoded bytes are left in *enc when enc is not
 * NULL. Any failure fails the test.
 */
json_t *sb_test_project_round_trip(const sb_grant_t *g,
                                   const sb_pseudonymiser_t *ps,
                                   const json_t *rec, sb_buf_t *enc);

/*
 * A new Ed25519 signing key pair (common/sign.h): the secret key in
 * `secret` (mode 0600), the public key in `public`; both must not exist.
 */
void sb_test_keypair(const char *secret, const char *public);

/* Removes a directory tree the test made (best effort). */
void sb_test_rmtree(const char *dir);

/* Number of messages a read_committed consumer sees on `topic`. */
long sb_testenv_count_messages(sb_testenv_t *te, const char *topic);

/* Reads `topic` from the beginning to its end (read_committed), calling
 * `cb` (may be NULL) for each message; returns how many there were. */
typedef void(sb_test_msg_cb_t)(const rd_kafka_message_t *m, void *opaque);
long sb_testenv_read_topic(sb_testenv_t *te, const char *topic,
                           sb_test_msg_cb_t *cb, void *opaque);

/* Every value of _sb.audit (read_committed, in log order: one partition)
 * as a JSON array of strings (new reference). */
json_t *sb_testenv_audit_values(sb_testenv_t *te);

/*
 * Runs the audit verifier on `values` (as sb_testenv_audit_values() makes
 * them) WITHOUT SB_AUDIT_ALLOW_UNCHAINED, trusting `pub`, and fails the
 * test unless the log is intact; fills `rep` (release it).
 */
struct sb_audit_report_s;
void sb_test_audit_intact(const json_t *values, const unsigned char pub[32],
                          struct sb_audit_report_s *rep);

/*
 * Runs `sharebus ARGS` (the binary of SB_BIN) in the test's directory;
 * returns its exit code, with its stdout then its stderr in `out`.
 */
int sb_testenv_cli(sb_testenv_t *te, const char *args, char *out, size_t size);
/* Fails the test unless the exit code is `want_rc` and `out` holds
 * `want`; `what` names the step. */
void sb_test_expect(int rc, const char *out, int want_rc, const char *want,
                    const char *what);

/* Header `name` of `m` as a string in `out`, or NULL if absent. */
const char *sb_test_header(const rd_kafka_message_t *m, const char *name,
                           char *out, size_t size);

#endif
