/*
 * sharebus benchmark - gateway throughput against a plain transactional
 * pipe, on the in-process mock cluster and the same input: what the
 * minimisation engine (every transform, 1 and 4 reusers) and integrity
 * (batch signatures verified and produced, the audit log) cost.
 *
 * The holder publishes N synthetic records (fixed seed), signed with a
 * holder key made once in the bench directory (its public half in
 * <dir>/holder-keys/beneficiaries/), to sb.in.beneficiaries. Each round
 * then runs, each configuration on a fresh mock cluster holding that same
 * input (a gateway restores the subject state it finds on
 * _sb.state.beneficiaries, so two runs on one cluster would not do the
 * same work), each in its own consumer group reading from the beginning:
 *
 *   pipe      a plain librdkafka consume -> produce pipe: read_committed
 *             consumer, transactional producer, every message copied as
 *             it is (key, value, headers) to bench.pipe.out, the offsets
 *             sent in the transaction. It is the floor of what any
 *             exactly-once relay costs on this cluster, so the ratio
 *             isolates what the gateway adds: envelope parsing, decoding,
 *             projection, pseudonymisation, encoding, state, signatures.
 *             Run once per round, on the first configuration's cluster.
 *   plain-K   sb_gateway_run() serving K copies of the grant (ids
 *             <id>-r1.., reusers bench-r1..bench-rK, one output topic
 *             each), without holder_keys_dir or signing_key_file: it
 *             neither verifies its input nor signs its output.
 *   signed-K  the same with holder_keys_dir and signing_key_file: every
 *             input message verified, every output message signed.
 *
 * K is 1 and 4 unless --reusers says otherwise. All use the same client
 * configuration (sb_kafka_conf_new() and the gateway's producer settings),
 * the same commit policy (read from the gateway config's defaults), the
 * same loop shape, and are timed by the same harness over their steady
 * state (bench_measure()). The output topics are then read back
 * (read_committed) and each must hold every record exactly once; after a
 * signed run every message must verify with the gateway's public key
 * (sb_seal_verifier, common/seal.h), the gateway must count no unverified
 * input and at least one signed batch. The messages each gateway run
 * commits to _sb.audit (delivery entries, checkpoints: its normal work;
 * none are forced here) are reported from the gateway's own count. Peak
 * RSS is
 * that of each gateway phase (bench_main()).
 *
 * The default grant, bench/grants/all-transforms.json, uses every
 * transform the beneficiaries schema admits: keep, drop (by omission),
 * generalise a date to a year and another to a month, a timestamp to a
 * month, bucket an int and a decimal, truncate strings, pseudonymise a
 * nullable string. Not round: the schema has no float or double field.
 *
 * Options: --records N (50000), --grant FILE (bench/grants/
 * all-transforms.json), --reusers K (1 and 4: two configurations each),
 * --rounds R (1; medians are reported), --partitions P (per data topic;
 * default 3, more when N would not fit: see bench_partitions()),
 * --max-in-flight M (1; see BENCH_MOCK_NAGLE). The defaults take about a
 * minute on a 2-core machine: N stays 50000, four clusters a round, most
 * of the time in their set-up and the consumer groups' joins.
 * Figures per configuration: records/s, the ratio to the pipe's, the
 * gateway thread's CPU per input record (all K outputs of it), audit
 * messages, signed batches, peak RSS. The gateway's records/s is
 * bimodal here: in some runs, most often those whose first commit did not
 * wait for the 1 s metadata timer, its consumer delivers nothing for
 * 0.2-0.4 s once or twice in the window (right after a commit; not
 * fetch.wait.max.ms nor fetch.error.backoff.ms; cause not found yet),
 * which can halve the rate while its CPU per record does not move. Use
 * --rounds 3 or more, and read the CPU per record beside the rate.
 * Exit status: 0 when every record went through exactly once and every
 * signed output verified, whether or not the target ratio (plain gateway,
 * 1 reuser, >= 0.5 of the pipe) is met: a benchmark reports, it does not
 * gate; 1 when a pipeline lost, duplicated or quarantined records, left
 * an output unsigned or failed.
 * The last line of the output is one JSON object with the figures.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "envelope.h"
#include "gateway.h"
#include "grant.h"
#include "holder.h"
#include "mockenv.h"
#include "sample.h"
#include "schema.h"
#include "seal.h"
#include "sign.h"

#define BENCH_SCHEMAS_DIR   SB_SOURCE_DIR "/schemas"
#define BENCH_DEFAULT_GRANT SB_SOURCE_DIR "/bench/grants/all-transforms.json"
#define BENCH_IN_TOPIC      "sb.in.beneficiaries"
#define BENCH_PIPE_TOPIC    "bench.pipe.out"
#define BENCH_TARGET_RATIO  0.5
#define BENCH_DATASET       "beneficiaries"
#define BENCH_MAX_REUSERS   8
/* plain and signed, for each of two reuser counts */
#define BENCH_MAX_CONFS 4
/* Generous: a stuck pipeline must fail the run, not hang it. */
#define BENCH_TIMEOUT_S 300.0
/*
 * librdkafka 2.0.2's mock keeps at most 5 MiB per partition and silently
 * drops the oldest message sets beyond (rdkafka_mock.c, max_size). A
 * signed sample record takes ~690 bytes with its headers (~430, and ~250
 * of sb_sig for a batch of 1024), so a partition holds ~7500: stay well
 * below, so that no topic loses its head.
 */
#define BENCH_RECORDS_PER_PARTITION 6000
/*
 * BENCH_MOCK_NAGLE: the 2.0.2 mock broker leaves Nagle on for its
 * sockets (no TCP_NODELAY in rdkafka_mock.c; real brokers set it). When a
 * client pipelines two requests on one connection, the second response
 * waits for the client's delayed ACK, 40 ms on Linux. A commit flushes
 * one produce request per partition and two partitions share a broker, so
 * with librdkafka's default of 5 requests in flight most commits took
 * ~45 ms instead of ~4: both pipelines idled ~75% of the time (0.5 CPU
 * cores busy), and the ratio, squeezed towards 1, said little about the
 * gateway. One request in flight per connection avoids it for both; the
 * mock answers in well under a millisecond, so little is lost. The same
 * setting goes to both pipelines; --max-in-flight 5 shows the default.
 *
 * BENCH_PREFETCH: a 2.0.2 consumer whose queue reaches queued.min.messages
 * (100000) stops fetching and resumes only about a second later, however
 * fast the queue drains. Below 100000 records the whole input is
 * prefetched during the warm-up; above, queued.min.messages is raised to
 * N for both pipelines so that neither measures that pause (the input
 * must then fit in queued.max.messages.kbytes, 64 MiB: ~500000 records).
 */

/* One gateway configuration and its figures over the rounds. */
typedef struct bench_conf_s {
        char name[32]; /* "plain-1", "signed-4" */
        int reusers;
        int signs;                /* verifies its input, signs its output */
        double *rps, *us, *audit; /* per round */
        double rps_med, us_med, audit_med;
        size_t signed_batches; /* of the last round */
        long peak_rss, rss_before;
} bench_conf_t;

typedef struct bench_s {
        size_t records;
        const char *grant_path;
        int rounds;
        int partitions;
        int max_in_flight;
        int reuser_counts[2], reuser_count_cnt;
        bench_conf_t confs[BENCH_MAX_CONFS];
        int conf_cnt;
        char dir[256];
        /* grants-<K>/: K copies of the grant, one per reuser */
        char grants_dirs[BENCH_MAX_REUSERS + 1][300];
        char topics[BENCH_MAX_REUSERS][300]; /* of reuser bench-r<i+1> */
        char holder_key[300], holder_keys[300], gw_key[300];
        sb_catalog_t *cat;
        sb_grant_t *grant;
        sb_key_t *key;
        sb_keyring_t *gw_ring; /* the gateway's public key */
        long long commit_records, commit_interval_ms;
        /* per configuration */
        sb_mockenv_t *env;
        sb_holder_cfg_t holder_cfg;
        sb_gateway_cfg_t gw_cfg;
        int holder_cfg_ok, gw_cfg_ok;
        char errstr[1024];
} bench_t;

/* Seconds on the monotonic clock: wall-clock steps must not skew rates. */
static double bench_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_fail(bench_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bench_fail(bench_t *b, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(b->errstr, sizeof(b->errstr), fmt, ap);
        va_end(ap);
        return -1;
}

/* A "VmRSS:"-style line of /proc/self/status in KiB, or -1. */
static long bench_proc_kib(const char *field)
{
        FILE *fp = fopen("/proc/self/status", "r");
        size_t flen = strlen(field);
        char line[256];
        long v = -1;

        if (!fp)
                return -1;
        while (fgets(line, sizeof(line), fp))
                if (!strncmp(line, field, flen)) {
                        v = strtol(line + flen, NULL, 10);
                        break;
                }
        fclose(fp);
        return v;
}

/*
 * Resets the process's peak RSS (Linux >= 4.0; ru_maxrss follows), so
 * that the peak read after the gateway run is that of the gateway phase,
 * not of the holder or the pipe. Returns 0 when it worked.
 */
static int bench_reset_peak_rss(void)
{
        FILE *fp = fopen("/proc/self/clear_refs", "w");
        int ok;

        if (!fp)
                return -1;
        ok = fputs("5", fp) >= 0;
        return fclose(fp) == 0 && ok ? 0 : -1;
}

/* CPU seconds of the whole process: the mock brokers and every client
 * share two cores here, so a rate means little without it. */
static double bench_cpu_s(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru))
                return 0;
        return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long bench_maxrss_kib(void)
{
        struct rusage ru;

        return getrusage(RUSAGE_SELF, &ru) ? -1 : ru.ru_maxrss;
}

static int bench_cfg(bench_t *b, const sb_config_field_t *table, void *target,
                     json_t *obj, const char *what)
{
        sb_err_t err = sb_config_apply(obj, what, table, target, b->errstr,
                                       sizeof(b->errstr));

        json_decref(obj);
        return err ? -1 : 0;
}

/* A signing key pair: the secret in `secret`, the public in `public`. */
static int bench_keypair(bench_t *b, const char *secret, const char *public,
                         sb_keyring_t *ring)
{
        sb_signkey_t *k = sb_signkey_generate();
        int rc = 0;

        if (!k)
                return bench_fail(b, "out of memory");
        if (sb_signkey_save(k, secret, public, b->errstr, sizeof(b->errstr)))
                rc = -1;
        else if (ring && sb_keyring_add(ring, sb_signkey_public(k)))
                rc = bench_fail(b, "out of memory");
        sb_signkey_destroy(k);
        return rc;
}

/*
 * The batch signatures' keys, as in production: the holder's, its public
 * half where the gateway's holder_keys_dir expects it, and the gateway's,
 * whose public half checks the signed runs' outputs.
 */
static int bench_keys(bench_t *b)
{
        char dir[400], pub[500];

        snprintf(b->holder_key, sizeof(b->holder_key), "%s/holder.key", b->dir);
        snprintf(b->gw_key, sizeof(b->gw_key), "%s/gateway.key", b->dir);
        snprintf(b->holder_keys, sizeof(b->holder_keys), "%s/holder-keys",
                 b->dir);
        snprintf(dir, sizeof(dir), "%s/%s", b->holder_keys, BENCH_DATASET);
        if (mkdir(b->holder_keys, 0700) || mkdir(dir, 0700))
                return bench_fail(b, "'%s': %s", dir, strerror(errno));
        snprintf(pub, sizeof(pub), "%s/holder.pub", dir);
        if (bench_keypair(b, b->holder_key, pub, NULL))
                return -1;
        b->gw_ring = sb_keyring_new();
        if (!b->gw_ring)
                return bench_fail(b, "out of memory");
        snprintf(pub, sizeof(pub), "%s/gateway.pub", b->dir);
        return bench_keypair(b, b->gw_key, pub, b->gw_ring);
}

/*
 * grants-<K>/: K copies of the grant under test, for reusers bench-r1 ..
 * bench-rK (ids <id>-r1 ..), each loaded back, so that each is validated
 * as the gateway will and names its output topic. The gateway serves
 * every grant of its directory: it serves exactly these K reusers.
 */
static int bench_grant_copies(bench_t *b, int k)
{
        json_error_t jerr;
        json_t *g;
        int i, rc = -1;

        snprintf(b->grants_dirs[k], sizeof(b->grants_dirs[k]), "%s/grants-%d",
                 b->dir, k);
        if (mkdir(b->grants_dirs[k], 0700) == -1)
                return bench_fail(b, "'%s': %s", b->grants_dirs[k],
                                  strerror(errno));
        g = json_load_file(b->grant_path, JSON_REJECT_DUPLICATES, &jerr);
        if (!g)
                return bench_fail(b, "grant '%s' line %d: %s", b->grant_path,
                                  jerr.line, jerr.text);
        for (i = 1; i <= k; i++) {
                char id[300], reuser[32], path[400];
                sb_grant_t *copy;

                snprintf(id, sizeof(id), "%s-r%d", b->grant->id, i);
                snprintf(reuser, sizeof(reuser), "bench-r%d", i);
                snprintf(path, sizeof(path), "%s/%s.json", b->grants_dirs[k],
                         reuser);
                json_object_set_new(g, "id", json_string(id));
                json_object_set_new(g, "reuser", json_string(reuser));
                if (json_dump_file(g, path, JSON_INDENT(2))) {
                        bench_fail(b, "cannot write '%s'", path);
                        goto out;
                }
                copy =
                    sb_grant_load(path, b->cat, b->errstr, sizeof(b->errstr));
                if (!copy)
                        goto out;
                snprintf(b->topics[i - 1], sizeof(b->topics[i - 1]), "%s",
                         copy->topic);
                sb_grant_destroy(copy);
        }
        rc = 0;
out:
        json_decref(g);
        return rc;
}

/* What every round shares: the grants, the keys, the sample file. */
static int bench_setup(bench_t *b)
{
        sb_gateway_cfg_t defaults;
        int i, rc;

        snprintf(b->dir, sizeof(b->dir), "%s/sb-bench-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(b->dir)) {
                b->dir[0] = '\0';
                return bench_fail(b, "cannot create a temporary directory: %s",
                                  strerror(errno));
        }
        if (sb_crypto_init(b->errstr, sizeof(b->errstr)))
                return -1;
        b->cat =
            sb_catalog_load(BENCH_SCHEMAS_DIR, b->errstr, sizeof(b->errstr));
        if (!b->cat)
                return -1;
        b->grant =
            sb_grant_load(b->grant_path, b->cat, b->errstr, sizeof(b->errstr));
        if (!b->grant)
                return -1;
        if (strcmp(b->grant->dataset, BENCH_DATASET))
                return bench_fail(b,
                                  "grant '%s' is for dataset '%s'; the "
                                  "synthetic records are of '%s'",
                                  b->grant_path, b->grant->dataset,
                                  BENCH_DATASET);
        if (!sb_grant_active(b->grant, sb_now_ms()))
                return bench_fail(b,
                                  "grant '%s' is not active now: the gateway "
                                  "would share nothing",
                                  b->grant_path);
        for (i = 0; i < b->reuser_count_cnt; i++)
                if (bench_grant_copies(b, b->reuser_counts[i]))
                        return -1;
        if (bench_keys(b))
                return -1;
        b->key = sb_key_random();
        if (!b->key)
                return bench_fail(b, "out of memory");

        /* The pipe commits like the gateway does by default: take the
         * policy from the gateway's config table, not from constants. */
        memset(&defaults, 0, sizeof(defaults));
        rc = bench_cfg(b, sb_gateway_cfg_table, &defaults,
                       json_pack("{s:{s:s}, s:[s], s:s, s:s}", "kafka",
                                 "bootstrap_servers", "unused", "datasets",
                                 BENCH_DATASET, "grants_dir",
                                 b->grants_dirs[b->reuser_counts[0]],
                                 "pseudonym_key_file", "(in memory)"),
                       "bench gateway defaults");
        b->commit_records = defaults.commit_records;
        b->commit_interval_ms = defaults.commit_interval_ms;
        sb_config_release(sb_gateway_cfg_table, &defaults);
        return rc;
}

/* Writes exactly b->records sample records to `path`. */
static int bench_sample(bench_t *b, const char *path)
{
        char *line = NULL;
        size_t subjects, cap = 0, n = 0;
        FILE *all, *out;

        /* Every fifth subject has two records: pick enough subjects, then
         * keep the first N lines so that N is exactly what was asked. */
        subjects = b->records * 5 / 6;
        while (subjects + subjects / 5 < b->records)
                subjects++;
        all = tmpfile();
        if (!all)
                return bench_fail(b, "tmpfile: %s", strerror(errno));
        sb_sample_write(all, subjects, 42);
        rewind(all);
        out = fopen(path, "w");
        if (!out) {
                fclose(all);
                return bench_fail(b, "'%s': %s", path, strerror(errno));
        }
        while (n < b->records && getline(&line, &cap, all) != -1) {
                fputs(line, out);
                n++;
        }
        free(line);
        fclose(all);
        if (fclose(out) || n != b->records)
                return bench_fail(b, "sample: %zu records written, %zu asked",
                                  n, b->records);
        return 0;
}

/* ---- per configuration: cluster, configs, input ------------------------ */

static void bench_cluster_release(bench_t *b)
{
        if (b->gw_cfg_ok)
                sb_config_release(sb_gateway_cfg_table, &b->gw_cfg);
        if (b->holder_cfg_ok)
                sb_config_release(sb_holder_cfg_table, &b->holder_cfg);
        b->gw_cfg_ok = b->holder_cfg_ok = 0;
        memset(&b->gw_cfg, 0, sizeof(b->gw_cfg));
        memset(&b->holder_cfg, 0, sizeof(b->holder_cfg));
        sb_mockenv_destroy(b->env);
        b->env = NULL;
}

/* What bench_count() saw on a topic. */
typedef struct bench_tally_s {
        long count, distinct;
        long unverified;  /* with a verifier: messages that failed */
        char reason[256]; /* the first failure's */
} bench_tally_t;

static int bench_count(bench_t *b, const char *topic, const char *id_header,
                       sb_seal_verifier_t *ver, bench_tally_t *t);

/*
 * A fresh cluster per configuration: every run sees the same conditions
 * (a gateway would restore the state a previous one left on
 * _sb.state.<dataset>), and the output topics hold exactly that run's N
 * records, so that they can be checked exactly (runs on one cluster
 * would also overflow the mock's per-partition limit). The holder always
 * signs; `c` says whether the gateway verifies and signs.
 */
static int bench_cluster_setup(bench_t *b, const char *ndjson,
                               const bench_conf_t *c)
{
        sb_holder_stats_t hs;
        sb_holder_t *h;
        bench_tally_t in_tally;
        json_t *kafka, *props, *gw;
        char in_flight[16], prefetch[32];
        FILE *in;
        sb_err_t err;
        int i;

        b->env = sb_mockenv_new(3, b->errstr, sizeof(b->errstr));
        if (!b->env)
                return -1;
        /* _sb.audit too: the gateway writes its audit entries there. */
        if (sb_mockenv_dataset(b->env, BENCH_DATASET, b->partitions, b->errstr,
                               sizeof(b->errstr)) ||
            sb_mockenv_topic(b->env, BENCH_PIPE_TOPIC, b->partitions, b->errstr,
                             sizeof(b->errstr)))
                return -1;
        for (i = 0; i < c->reusers; i++)
                if (sb_mockenv_topic(b->env, b->topics[i], b->partitions,
                                     b->errstr, sizeof(b->errstr)))
                        return -1;
        if (bench_cfg(b, sb_holder_cfg_table, &b->holder_cfg,
                      json_pack("{s:o, s:s, s:s, s:s}", "kafka",
                                sb_mockenv_kafka_json(b->env), "schemas_dir",
                                BENCH_SCHEMAS_DIR, "client_id", "bench-holder",
                                "signing_key_file", b->holder_key),
                      "bench holder config"))
                return -1;
        b->holder_cfg_ok = 1;
        /* See BENCH_MOCK_NAGLE and BENCH_PREFETCH: through the gateway's
         * own config, which the pipe's clients are built from too. */
        snprintf(in_flight, sizeof(in_flight), "%d", b->max_in_flight);
        props = json_pack("{s:s}", "max.in.flight.requests.per.connection",
                          in_flight);
        if (b->records > 100000) {
                /* Only then: the gateway's producer warns that it ignores
                 * this consumer property. */
                snprintf(prefetch, sizeof(prefetch), "%zu", b->records);
                json_object_set_new(props, "queued.min.messages",
                                    json_string(prefetch));
        }
        kafka = sb_mockenv_kafka_json(b->env);
        json_object_set_new(kafka, "properties", props);
        gw = json_pack(
            "{s:o, s:[s], s:s, s:s, s:s, s:s, s:s}", "kafka", kafka, "datasets",
            BENCH_DATASET, "schemas_dir", BENCH_SCHEMAS_DIR, "grants_dir",
            b->grants_dirs[c->reusers], "pseudonym_key_file", "(in memory)",
            "client_id", "bench-gateway", "group_id", "bench-gateway");
        if (gw && c->signs) {
                json_object_set_new(gw, "holder_keys_dir",
                                    json_string(b->holder_keys));
                json_object_set_new(gw, "signing_key_file",
                                    json_string(b->gw_key));
        }
        if (bench_cfg(b, sb_gateway_cfg_table, &b->gw_cfg, gw,
                      "bench gateway config"))
                return -1;
        b->gw_cfg_ok = 1;

        in = fopen(ndjson, "r");
        if (!in)
                return bench_fail(b, "'%s': %s", ndjson, strerror(errno));
        h = sb_holder_new(&b->holder_cfg, BENCH_DATASET, b->errstr,
                          sizeof(b->errstr));
        if (!h) {
                fclose(in);
                return -1;
        }
        err = sb_holder_publish(h, in, ndjson, NULL, &hs, b->errstr,
                                sizeof(b->errstr));
        sb_holder_destroy(h);
        fclose(in);
        if (err)
                return -1;
        /* The holder's count is what it sent: check what the cluster kept,
         * since the mock drops data past its limit without an error. */
        if (bench_count(b, BENCH_IN_TOPIC, "ce_id", NULL, &in_tally))
                return -1;
        if (hs.published != b->records ||
            (size_t)in_tally.count != b->records ||
            (size_t)in_tally.distinct != b->records)
                return bench_fail(b,
                                  "input: holder published %zu, topic holds "
                                  "%ld (%ld distinct), expected %zu",
                                  hs.published, in_tally.count,
                                  in_tally.distinct, b->records);
        return 0;
}

/* ---- the measuring harness --------------------------------------------- */

/*
 * A pipeline run in a thread, with counters the harness samples. Both the
 * gateway and the pipe run until a flag is raised (the gateway's other way
 * out, idle_exit_ms, would add that idle time to the measure); the body
 * commits and returns, and `drain` then consumes the rest, untimed, so
 * that the outputs can be checked whole.
 */
typedef struct bench_runner_s {
        void *(*body)(void *);
        int (*drain)(bench_t *b, void *ctx);
        void *ctx;
        const size_t *records;      /* consumed so far */
        const size_t *quarantined;  /* also consumed; may be NULL */
        const size_t *transactions; /* committed so far */
        volatile sig_atomic_t stop;
        double end;     /* when the body returned, after its last commit */
        double end_cpu; /* the body thread's CPU time then */
        int done;
} bench_runner_t;

typedef struct bench_timing_s {
        double secs;     /* the measured window */
        size_t measured; /* records consumed in it */
        double warmup_s; /* first record .. first commit */
        double rps;
        double cores;      /* process CPU time / wall time in the window */
        double us_per_rec; /* the pipeline thread's CPU per record */
        int no_steady;     /* the first transaction held everything */
        int late_stop;     /* everything consumed before the flag was seen */
} bench_timing_t;

/* Sampled while the body writes them: relaxed atomic loads of aligned
 * words, so no torn reads; exact figures are read after the join. */
static size_t bench_load(const size_t *p)
{
        return p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0;
}

static double bench_clock_s(clockid_t cid)
{
        struct timespec ts;

        if (clock_gettime(cid, &ts))
                return 0;
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every body ends with this: the window closes here. */
static void bench_body_done(bench_runner_t *r)
{
        r->end = bench_now();
        r->end_cpu = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

/*
 * Runs `r` and times it. The window opens when the first transaction has
 * been committed and closes when the body returns after committing.
 *
 * Why not from the first record: the first transaction pays one-off costs
 * (connections to the output partitions' leaders, the group coordinator
 * lookup) and, above all, librdkafka 2.0.2 resolves a topic first produced
 * to on its 1 s metadata timer, so the first commit waits 0 to 1 s at
 * random; from the first record, runs of a fraction of a second varied 5x
 * from that alone. Both pipelines pay it; excluding it from both measures
 * the steady state, which is what the ratio is about. The warm-up is
 * printed. The pair (records, time) opening the window is read in one
 * sample, so records done between the commit and the sample do not skew
 * the rate.
 *
 * Why the flag is raised with a tenth of the records still to go: a
 * pipeline that has consumed everything sits in a 50 ms consumer poll
 * before it sees the flag, which would be a third of a pipe run here. With
 * records still queued it sees the flag at once, commits and returns; the
 * window counts the records it had consumed then, read after the join.
 * late_stop says when the flag came too late anyway.
 */
static int bench_measure(bench_t *b, bench_runner_t *r, bench_timing_t *t)
{
        const struct timespec ms = {0, 1000000};
        double t_first = 0, t0 = 0, deadline = bench_now() + BENCH_TIMEOUT_S;
        double cpu0 = 0, cpu_first = 0, cpu_end, tcpu0 = 0, tcpu_first = 0;
        size_t n0 = 0, n_end, stop_at = b->records - b->records / 10;
        clockid_t cid;
        pthread_t thr;
        int rc, timed_out = 0, have_cid;

        memset(t, 0, sizeof(*t));
        if ((rc = pthread_create(&thr, NULL, r->body, r)))
                return bench_fail(b, "pthread_create: %s", strerror(rc));
        have_cid = !pthread_getcpuclockid(thr, &cid);
        while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
                size_t seen =
                    bench_load(r->records) + bench_load(r->quarantined);
                size_t tx = bench_load(r->transactions);
                double now = bench_now();

                if (!t_first && seen > 0) {
                        t_first = now;
                        cpu_first = bench_cpu_s();
                        tcpu_first = have_cid ? bench_clock_s(cid) : 0;
                }
                if (!t0 && tx > 0) {
                        t0 = now;
                        n0 = seen;
                        cpu0 = bench_cpu_s();
                        tcpu0 = have_cid ? bench_clock_s(cid) : 0;
                }
                if (!r->stop && seen >= stop_at)
                        r->stop = 1;
                if (!r->stop && now > deadline) {
                        timed_out = 1;
                        r->stop = 1;
                }
                nanosleep(&ms, NULL);
        }
        pthread_join(thr, NULL);
        /* Read after the join: the tail includes the thread's exit. */
        cpu_end = bench_cpu_s();
        n_end = *r->records + (r->quarantined ? *r->quarantined : 0);
        if (timed_out)
                return bench_fail(b, "timed out after %zu of %zu records",
                                  n_end, b->records);
        if (!t0 || n0 >= n_end) {
                /* Nothing after the first commit: time it all. */
                t->no_steady = 1;
                t0 = t_first;
                n0 = 0;
                cpu0 = cpu_first;
                tcpu0 = tcpu_first;
        }
        t->late_stop = n_end >= b->records;
        t->secs = r->end - t0;
        t->measured = n_end - n0;
        t->warmup_s = t0 - t_first;
        t->rps = t->secs > 0 ? (double)t->measured / t->secs : 0;
        t->cores = t->secs > 0 ? (cpu_end - cpu0) / t->secs : 0;
        t->us_per_rec = t->measured && tcpu0 > 0
                            ? (r->end_cpu - tcpu0) * 1e6 / (double)t->measured
                            : 0;
        return r->drain(b, r->ctx);
}

/* ---- the plain pipe ---------------------------------------------------- */

typedef struct bench_pipe_s {
        bench_t *b;
        rd_kafka_t *consumer, *producer;
        int in_txn;
        size_t txn_msgs;
        int64_t txn_start_ms;
        size_t dr_failed;
        char dr_err[512];
        size_t records, transactions; /* as in sb_gateway_stats_t */
        int failed;
} bench_pipe_t;

static void bench_pipe_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                             void *opaque)
{
        bench_pipe_t *p = opaque;

        (void)rk;
        if (m->err && !p->dr_failed++)
                snprintf(p->dr_err, sizeof(p->dr_err), "delivery failed: %s",
                         rd_kafka_err2str(m->err));
}

/* Sends the consumer's positions in the transaction and commits it. */
static int bench_pipe_commit(bench_pipe_t *p)
{
        rd_kafka_topic_partition_list_t *offsets;
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *kerr = NULL;

        if (!p->in_txn)
                return 0;
        if (rd_kafka_assignment(p->consumer, &offsets))
                return bench_fail(p->b, "pipe: no assignment to commit");
        rd_kafka_position(p->consumer, offsets);
        cgmd = rd_kafka_consumer_group_metadata(p->consumer);
        kerr = rd_kafka_send_offsets_to_transaction(p->producer, offsets, cgmd,
                                                    -1);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offsets);
        if (!kerr)
                kerr = rd_kafka_commit_transaction(p->producer, -1);
        if (kerr) {
                bench_fail(p->b, "pipe: commit failed: %s",
                           rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return -1;
        }
        p->in_txn = 0;
        /* commit_transaction() flushed: every report has arrived. */
        if (p->dr_failed)
                return bench_fail(p->b, "pipe: %s", p->dr_err);
        p->transactions++;
        return 0;
}

/* Copies one message into the open transaction. */
static int bench_pipe_copy(bench_pipe_t *p, rd_kafka_message_t *m, int64_t now)
{
        rd_kafka_headers_t *hdrs = NULL, *in = NULL;
        rd_kafka_resp_err_t err;
        rd_kafka_error_t *kerr;

        if (!p->in_txn) {
                kerr = rd_kafka_begin_transaction(p->producer);
                if (kerr) {
                        bench_fail(p->b, "pipe: begin: %s",
                                   rd_kafka_error_string(kerr));
                        rd_kafka_error_destroy(kerr);
                        return -1;
                }
                p->in_txn = 1;
                p->txn_msgs = 0;
                p->txn_start_ms = now;
        }
        if (!rd_kafka_message_headers(m, &in))
                hdrs = rd_kafka_headers_copy(in);
        for (;;) {
                err = rd_kafka_producev(
                    p->producer, RD_KAFKA_V_TOPIC(BENCH_PIPE_TOPIC),
                    RD_KAFKA_V_KEY(m->key, m->key_len),
                    RD_KAFKA_V_VALUE(m->payload, m->len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(p->producer, 50);
        }
        if (err) {
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                return bench_fail(p->b, "pipe: produce: %s",
                                  rd_kafka_err2str(err));
        }
        p->txn_msgs++;
        return 0;
}

/* One turn of sb_gateway_run()'s loop, with a copy as the work. */
static int bench_pipe_step(bench_pipe_t *p)
{
        rd_kafka_message_t *m;
        int64_t now;

        m = rd_kafka_consumer_poll(p->consumer, 50);
        rd_kafka_poll(p->producer, 0);
        now = sb_now_ms();
        if (m && m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        fprintf(stderr, "pipe: consumer: %s\n",
                                rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                m = NULL;
        }
        if (m) {
                int rc = bench_pipe_copy(p, m, now);

                rd_kafka_message_destroy(m);
                if (rc)
                        return -1;
                p->records++;
        }
        if (p->in_txn && (p->txn_msgs >= (size_t)p->b->commit_records ||
                          now - p->txn_start_ms >= p->b->commit_interval_ms))
                return bench_pipe_commit(p);
        return 0;
}

static void *bench_pipe_body(void *arg)
{
        bench_runner_t *r = arg;
        bench_pipe_t *p = r->ctx;

        while (!r->stop && !p->failed)
                if (bench_pipe_step(p))
                        p->failed = 1;
        if (!p->failed && bench_pipe_commit(p))
                p->failed = 1;
        bench_body_done(r);
        return NULL;
}

static int bench_pipe_drain(bench_t *b, void *ctx)
{
        bench_pipe_t *p = ctx;
        double deadline = bench_now() + BENCH_TIMEOUT_S;

        if (p->failed)
                return -1; /* errstr set by the body */
        while (p->records < b->records) {
                if (bench_now() > deadline)
                        return bench_fail(b,
                                          "pipe: timed out after %zu of "
                                          "%zu records",
                                          p->records, b->records);
                if (bench_pipe_step(p))
                        return -1;
        }
        return bench_pipe_commit(p);
}

static int bench_pipe_clients(bench_t *b, bench_pipe_t *p)
{
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_conf_t *conf;
        rd_kafka_error_t *kerr;
        rd_kafka_resp_err_t rerr;
        char kerrstr[512];

        /* The gateway's Kafka section and producer settings, so that only
         * the work per record differs. */
        conf = sb_kafka_conf_new(&b->gw_cfg.kafka, "bench-pipe", b->errstr,
                                 sizeof(b->errstr));
        if (!conf)
                return -1;
        if (sb_kafka_conf_set(conf, "transactional.id", "bench-pipe-tx",
                              b->errstr, sizeof(b->errstr)) ||
            sb_kafka_conf_set(conf, "enable.idempotence", "true", b->errstr,
                              sizeof(b->errstr)) ||
            sb_kafka_conf_set(conf, "linger.ms", "5", b->errstr,
                              sizeof(b->errstr))) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, bench_pipe_dr_cb);
        rd_kafka_conf_set_opaque(conf, p);
        p->producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerrstr, sizeof(kerrstr));
        if (!p->producer) {
                rd_kafka_conf_destroy(conf);
                return bench_fail(b, "pipe: producer: %s", kerrstr);
        }
        kerr = rd_kafka_init_transactions(p->producer, 30000);
        if (kerr) {
                bench_fail(b, "pipe: init_transactions: %s",
                           rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return -1;
        }

        conf = sb_kafka_conf_new(&b->gw_cfg.kafka, "bench-pipe-in", b->errstr,
                                 sizeof(b->errstr));
        if (!conf)
                return -1;
        if (sb_kafka_conf_set(conf, "group.id", "bench-pipe", b->errstr,
                              sizeof(b->errstr)) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", b->errstr,
                              sizeof(b->errstr)) ||
            sb_kafka_conf_set(conf, "isolation.level", "read_committed",
                              b->errstr, sizeof(b->errstr)) ||
            sb_kafka_conf_set(conf, "auto.offset.reset", "earliest", b->errstr,
                              sizeof(b->errstr))) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        p->consumer =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
        if (!p->consumer) {
                rd_kafka_conf_destroy(conf);
                return bench_fail(b, "pipe: consumer: %s", kerrstr);
        }
        rd_kafka_poll_set_consumer(p->consumer);
        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, BENCH_IN_TOPIC,
                                          RD_KAFKA_PARTITION_UA);
        rerr = rd_kafka_subscribe(p->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (rerr)
                return bench_fail(b, "pipe: subscribe: %s",
                                  rd_kafka_err2str(rerr));
        return 0;
}

static int bench_pipe_run(bench_t *b, bench_timing_t *t)
{
        bench_runner_t r;
        bench_pipe_t p;
        int rc = -1;

        memset(&p, 0, sizeof(p));
        memset(&r, 0, sizeof(r));
        p.b = b;
        r.body = bench_pipe_body;
        r.drain = bench_pipe_drain;
        r.ctx = &p;
        r.records = &p.records;
        r.transactions = &p.transactions;
        if (bench_pipe_clients(b, &p) || bench_measure(b, &r, t))
                goto out;
        rc = 0;
out:
        if (p.consumer) {
                rd_kafka_consumer_close(p.consumer);
                rd_kafka_destroy(p.consumer);
        }
        if (p.producer) {
                if (p.in_txn) {
                        rd_kafka_error_t *kerr =
                            rd_kafka_abort_transaction(p.producer, -1);

                        if (kerr)
                                rd_kafka_error_destroy(kerr);
                }
                rd_kafka_destroy(p.producer);
        }
        return rc;
}

/* ---- the gateway ------------------------------------------------------- */

typedef struct bench_gw_s {
        sb_gateway_t *gw;
        sb_err_t err;
        char errstr[512];
} bench_gw_t;

static void *bench_gw_body(void *arg)
{
        bench_runner_t *r = arg;
        bench_gw_t *g = r->ctx;

        g->err =
            sb_gateway_run(g->gw, &r->stop, 0, g->errstr, sizeof(g->errstr));
        bench_body_done(r);
        return NULL;
}

/* The rest of the input, through runs that end after 200 ms idle. */
static int bench_gw_drain(bench_t *b, void *ctx)
{
        bench_gw_t *g = ctx;
        const sb_gateway_stats_t *st = sb_gateway_stats(g->gw);
        double deadline = bench_now() + BENCH_TIMEOUT_S;

        if (g->err)
                return bench_fail(b, "gateway: %s", g->errstr);
        while (st->records_in + st->quarantined < b->records) {
                if (bench_now() > deadline)
                        return bench_fail(b,
                                          "gateway: timed out after %zu "
                                          "of %zu records",
                                          st->records_in, b->records);
                if (sb_gateway_run(g->gw, NULL, 200, g->errstr,
                                   sizeof(g->errstr)))
                        return bench_fail(b, "gateway: %s", g->errstr);
        }
        return 0;
}

static int bench_gateway_run(bench_t *b, bench_timing_t *t,
                             sb_gateway_stats_t *stats)
{
        const sb_gateway_stats_t *st;
        bench_runner_t r;
        bench_gw_t g;
        int rc;

        memset(&g, 0, sizeof(g));
        memset(&r, 0, sizeof(r));
        memset(stats, 0, sizeof(*stats));
        g.gw = sb_gateway_new(&b->gw_cfg, b->key, b->errstr, sizeof(b->errstr));
        if (!g.gw)
                return -1;
        st = sb_gateway_stats(g.gw);
        r.body = bench_gw_body;
        r.drain = bench_gw_drain;
        r.ctx = &g;
        r.records = &st->records_in;
        r.quarantined = &st->quarantined;
        r.transactions = &st->transactions;
        rc = bench_measure(b, &r, t);
        *stats = *st;
        sb_gateway_destroy(g.gw);
        return rc;
}

/* ---- verification ------------------------------------------------------ */

/*
 * Counts the committed messages of `topic` and how many distinct
 * identities they carry: the header `id_header` (the holder's ce_id, which
 * the pipe copies), or the key when NULL (the gateway's is
 * "<pseudonym>/<record id>"). A count catches losses and duplicates in
 * sum; the distinct count catches one hidden by the other. With `ver`, also
 * checks each message's batch signature: the verifier remembers the roots
 * it has checked, so this costs one Ed25519 check per batch and a few
 * hashes per message.
 */
static int bench_count(bench_t *b, const char *topic, const char *id_header,
                       sb_seal_verifier_t *ver, bench_tally_t *t)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *parts = NULL;
        const rd_kafka_metadata_t *md;
        rd_kafka_topic_t *rkt;
        rd_kafka_t *rk;
        json_t *seen = json_object();
        char kerr[512];
        long n = 0;
        int i, eofs = 0, idle = 0, rc = -1;

        memset(t, 0, sizeof(*t));

        rd_kafka_conf_set(conf, "bootstrap.servers", b->env->bootstraps, NULL,
                          0);
        rd_kafka_conf_set(conf, "group.id", "bench-counter", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                json_decref(seen);
                return bench_fail(b, "counter: %s", kerr);
        }
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1) {
                rd_kafka_topic_destroy(rkt);
                bench_fail(b, "counter: no metadata for '%s'", topic);
                goto out;
        }
        parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (i = 0; i < md->topics[0].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        for (i = 0; i < parts->cnt; i++) {
                int64_t lo = 0, hi = 0;

                if (!rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi,
                                                      10000) &&
                    lo > 0) {
                        bench_fail(b,
                                   "'%s' [%d] starts at offset %" PRId64
                                   ": the mock cluster dropped its oldest "
                                   "messages (at most 5 MiB per partition); "
                                   "use more --partitions or fewer --records",
                                   topic, i, lo);
                        goto out;
                }
        }
        rd_kafka_assign(rk, parts);
        while (eofs < parts->cnt && idle < 100) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                rd_kafka_headers_t *hdrs;
                char id[512], why[256];
                const void *v = NULL;
                size_t len = 0;

                if (!m) {
                        idle++;
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eofs++;
                } else if (!m->err) {
                        n++;
                        if (ver &&
                            sb_seal_verify_message(ver, m, why, sizeof(why)) &&
                            !t->unverified++)
                                snprintf(t->reason, sizeof(t->reason), "%s",
                                         why);
                        if (!id_header) {
                                v = m->key;
                                len = m->key_len;
                        } else if (!rd_kafka_message_headers(m, &hdrs)) {
                                rd_kafka_header_get_last(hdrs, id_header, &v,
                                                         &len);
                        }
                        if (v && len < sizeof(id)) {
                                memcpy(id, v, len);
                                id[len] = '\0';
                                json_object_set_new(seen, id, json_true());
                        }
                }
                rd_kafka_message_destroy(m);
        }
        if (eofs < parts->cnt) {
                bench_fail(b, "counter: did not reach the end of '%s'", topic);
                goto out;
        }
        t->count = n;
        t->distinct = (long)json_object_size(seen);
        rc = 0;
out:
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        json_decref(seen);
        return rc;
}

/* `v`: every message must verify with it (see bench_count()). */
static int bench_check_topic(bench_t *b, const char *topic,
                             const char *id_header, long expected,
                             sb_seal_verifier_t *v)
{
        bench_tally_t t;

        if (bench_count(b, topic, id_header, v, &t))
                return -1;
        printf("  %-42s %7ld messages, %7ld distinct%s\n", topic, t.count,
               t.distinct,
               v && !t.unverified ? ", every one signed by the gateway" : "");
        if (t.count != expected || t.distinct != expected)
                return bench_fail(b,
                                  "'%s' holds %ld messages (%ld distinct), "
                                  "expected %ld: records were lost or "
                                  "duplicated",
                                  topic, t.count, t.distinct, expected);
        if (t.unverified)
                return bench_fail(b,
                                  "'%s': %ld of %ld messages do not verify "
                                  "with the gateway's key; the first: %s",
                                  topic, t.unverified, t.count, t.reason);
        return 0;
}

/* ---- main -------------------------------------------------------------- */

static int bench_cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double bench_median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bench_usage(FILE *fp)
{
        fprintf(fp, "usage: gateway_throughput [--records N] [--grant FILE] "
                    "[--reusers K] [--rounds R] [--partitions P] "
                    "[--max-in-flight M]\n");
}

static int bench_args(bench_t *b, int argc, char **argv)
{
        int i;

        b->records = 50000;
        b->grant_path = BENCH_DEFAULT_GRANT;
        b->rounds = 1;
        b->max_in_flight = 1;
        b->reuser_counts[0] = 1;
        b->reuser_counts[1] = 4;
        b->reuser_count_cnt = 2;
        for (i = 1; i < argc; i++) {
                char *end;
                long long v;

                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        bench_usage(stdout);
                        exit(0);
                }
                if (i + 1 >= argc) {
                        bench_usage(stderr);
                        return -1;
                }
                if (!strcmp(argv[i], "--grant")) {
                        b->grant_path = argv[++i];
                        continue;
                }
                v = strtoll(argv[i + 1], &end, 10);
                if (*end || end == argv[i + 1])
                        v = -1;
                if (!strcmp(argv[i], "--records") && v >= 1 && v <= 10000000) {
                        b->records = (size_t)v;
                } else if (!strcmp(argv[i], "--rounds") && v >= 1 && v <= 100) {
                        b->rounds = (int)v;
                } else if (!strcmp(argv[i], "--partitions") && v >= 1 &&
                           v <= 1000) {
                        b->partitions = (int)v;
                } else if (!strcmp(argv[i], "--max-in-flight") && v >= 1 &&
                           v <= 5) {
                        b->max_in_flight = (int)v;
                } else if (!strcmp(argv[i], "--reusers") && v >= 1 &&
                           v <= BENCH_MAX_REUSERS) {
                        b->reuser_counts[0] = (int)v;
                        b->reuser_count_cnt = 1;
                } else {
                        fprintf(stderr,
                                "gateway_throughput: bad option %s %s "
                                "(records 1-10000000, reusers 1-%d, rounds "
                                "1-100, partitions 1-1000, max-in-flight "
                                "1-5)\n",
                                argv[i], argv[i + 1], BENCH_MAX_REUSERS);
                        bench_usage(stderr);
                        return -1;
                }
                i++;
        }
        return 0;
}

/* 3 partitions (one per broker) unless N would overflow the mock. */
static int bench_partitions(size_t records)
{
        size_t per3 = 3 * BENCH_RECORDS_PER_PARTITION;

        return 3 * (int)((records + per3 - 1) / per3);
}

static void bench_release(bench_t *b)
{
        char cmd[400];
        int i;

        bench_cluster_release(b);
        sb_grant_destroy(b->grant);
        sb_catalog_destroy(b->cat);
        sb_key_destroy(b->key);
        sb_keyring_destroy(b->gw_ring);
        for (i = 0; i < b->conf_cnt; i++) {
                free(b->confs[i].rps);
                free(b->confs[i].us);
                free(b->confs[i].audit);
        }
        if (b->dir[0]) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", b->dir);
        }
}

static void bench_print_timing(const char *what, const bench_timing_t *t)
{
        printf("  %-8s %8.0f records/s: %zu records in %.3f s, %.2f us of "
               "its thread's CPU per record, %.2f cores busy; first "
               "transaction %.3f s%s%s\n",
               what, t->rps, t->measured, t->secs, t->us_per_rec, t->cores,
               t->warmup_s,
               t->no_steady ? " (everything was in the first transaction: "
                              "warm-up included, use more --records)"
                            : "",
               t->late_stop ? " (stop seen late: up to one 50 ms poll "
                              "included)"
                            : "");
}

/* The configurations: for each reuser count, plain then signed. */
static int bench_confs(bench_t *b)
{
        int i, signs;

        for (i = 0; i < b->reuser_count_cnt; i++)
                for (signs = 0; signs <= 1; signs++) {
                        bench_conf_t *c = &b->confs[b->conf_cnt++];

                        c->reusers = b->reuser_counts[i];
                        c->signs = signs;
                        snprintf(c->name, sizeof(c->name), "%s-%d",
                                 signs ? "signed" : "plain", c->reusers);
                        c->rps = calloc((size_t)b->rounds, sizeof(*c->rps));
                        c->us = calloc((size_t)b->rounds, sizeof(*c->us));
                        c->audit = calloc((size_t)b->rounds, sizeof(*c->audit));
                        c->peak_rss = c->rss_before = -1;
                        if (!c->rps || !c->us || !c->audit)
                                return bench_fail(b, "out of memory");
                }
        return 0;
}

/*
 * Round `r` of configuration `c`, on its own cluster; with `pt`, the pipe
 * first, timed into it. Fails when a record was lost, duplicated or
 * quarantined, or a signed run left an output that does not verify.
 */
static int bench_conf_run(bench_t *b, bench_conf_t *c, int r,
                          const char *ndjson, bench_timing_t *pt,
                          int *peak_reset)
{
        sb_seal_verifier_t *v = NULL;
        sb_gateway_stats_t gs;
        bench_timing_t gt;
        size_t n = b->records, want = b->records * (size_t)c->reusers;
        long rss_before, peak;
        int i, rc = -1;

        if (bench_cluster_setup(b, ndjson, c))
                return -1;
        if (pt) {
                if (bench_pipe_run(b, pt))
                        return -1;
                printf("round %d/%d\n", r + 1, b->rounds);
                bench_print_timing("pipe", pt);
                if (bench_check_topic(b, BENCH_PIPE_TOPIC, "ce_id", (long)n,
                                      NULL))
                        return -1;
        }
        /* Peak RSS of the gateway phase: the reset drops the holder's and
         * the pipe's peaks. What remains includes the mock cluster, which
         * holds every topic in memory (input, pipe output, and the
         * gateway's outputs as they grow), and the rest of this process:
         * an upper bound of the gateway's own. The RSS just before is the
         * baseline. */
        rss_before = bench_proc_kib("VmRSS:");
        if (bench_reset_peak_rss())
                *peak_reset = 0;
        if (bench_gateway_run(b, &gt, &gs))
                return -1;
        peak = bench_maxrss_kib();
        c->rps[r] = gt.rps;
        c->us[r] = gt.us_per_rec;
        /* Counted by the gateway: the single-partition _sb.audit outgrows
         * the mock's 5 MiB per partition with 4 reusers, which then drops
         * its oldest messages. */
        c->audit[r] = (double)gs.audit_entries;
        c->signed_batches = gs.signed_batches;
        if (peak > c->peak_rss) {
                c->peak_rss = peak;
                c->rss_before = rss_before;
        }

        printf("%s: %d reuser%s, %s\n", c->name, c->reusers,
               c->reusers > 1 ? "s" : "",
               c->signs ? "inputs verified, outputs signed"
                        : "no signatures verified or made");
        bench_print_timing("gateway", &gt);
        printf("  gateway: %zu in, %zu delivered, %zu quarantined (%zu "
               "unverified), %zu signed batches, %zu transactions, %zu "
               "aborts, %ld audit messages; RSS %ld KiB before, peak %ld "
               "KiB\n",
               gs.records_in, gs.delivered, gs.quarantined, gs.unverified,
               gs.signed_batches, gs.transactions, gs.aborts,
               (long)gs.audit_entries, rss_before, peak);
        if (gs.records_in != n || gs.delivered != want || gs.quarantined != 0 ||
            gs.aborts != 0)
                return bench_fail(b,
                                  "%s: gateway stats: records_in %zu, "
                                  "delivered %zu, quarantined %zu, aborts "
                                  "%zu; expected %zu, %zu, 0, 0",
                                  c->name, gs.records_in, gs.delivered,
                                  gs.quarantined, gs.aborts, n, want);
        if (c->signs && (gs.unverified != 0 || gs.signed_batches < 1))
                return bench_fail(b,
                                  "%s: %zu unverified inputs, %zu signed "
                                  "batches; expected 0 and at least 1",
                                  c->name, gs.unverified, gs.signed_batches);
        if (c->signs && !(v = sb_seal_verifier_new(b->gw_ring)))
                return bench_fail(b, "out of memory");
        for (i = 0; i < c->reusers; i++)
                if (bench_check_topic(b, b->topics[i], NULL, (long)n, v))
                        goto out;
        if (bench_check_topic(b, SB_QUARANTINE_TOPIC, NULL, 0, NULL))
                goto out;
        if (v)
                printf("  %llu batch signature checks on read-back\n",
                       (unsigned long long)sb_seal_verifier_checks(v));
        rc = 0;
out:
        sb_seal_verifier_destroy(v);
        return rc;
}

/* The configuration named `name`, or NULL when it did not run. */
static const bench_conf_t *bench_conf_find(const bench_t *b, const char *name)
{
        int i;

        for (i = 0; i < b->conf_cnt; i++)
                if (!strcmp(b->confs[i].name, name))
                        return &b->confs[i];
        return NULL;
}

/* "true", "false", or "null" when `c` did not run. */
static const char *bench_meets(const bench_conf_t *c, double pipe_med)
{
        if (!c)
                return "null";
        return c->rps_med / pipe_med >= BENCH_TARGET_RATIO ? "true" : "false";
}

static int bench_main(bench_t *b)
{
        double *pipe_rps, *pipe_us, pipe_med, pipe_us_med;
        const bench_conf_t *p1, *s1;
        json_t *id;
        size_t n = b->records;
        char ndjson[600], *grant_json = NULL;
        int r, i, rc = -1, peak_reset = 1;

        pipe_rps = calloc((size_t)b->rounds, sizeof(*pipe_rps));
        pipe_us = calloc((size_t)b->rounds, sizeof(*pipe_us));
        if (!pipe_rps || !pipe_us) {
                bench_fail(b, "out of memory");
                goto out;
        }
        if (!b->partitions)
                b->partitions = bench_partitions(n);
        if (bench_confs(b) || bench_setup(b))
                goto out;
        snprintf(ndjson, sizeof(ndjson), "%s/%s.ndjson", b->dir, BENCH_DATASET);
        if (bench_sample(b, ndjson))
                goto out;
        printf("gateway_throughput: %zu records, grant %s (%s) copied for "
               "reusers bench-r1 to bench-r%d, holder input signed, mock "
               "cluster of 3 brokers, %d partitions per data topic, commit "
               "every %lld records or %lld ms, max.in.flight %d\n",
               n, b->grant->id, b->grant_path,
               b->confs[b->conf_cnt - 1].reusers, b->partitions,
               b->commit_records, b->commit_interval_ms, b->max_in_flight);

        for (r = 0; r < b->rounds; r++) {
                bench_timing_t pt;

                for (i = 0; i < b->conf_cnt; i++) {
                        if (bench_conf_run(b, &b->confs[i], r, ndjson,
                                           i == 0 ? &pt : NULL, &peak_reset))
                                goto out;
                        bench_cluster_release(b);
                }
                pipe_rps[r] = pt.rps;
                pipe_us[r] = pt.us_per_rec;
        }

        pipe_med = bench_median(pipe_rps, b->rounds);
        pipe_us_med = bench_median(pipe_us, b->rounds);
        printf("%-9s %9.0f records/s, %.2f us CPU per record%s\n", "pipe",
               pipe_med, pipe_us_med, b->rounds > 1 ? " (medians)" : "");
        for (i = 0; i < b->conf_cnt; i++) {
                bench_conf_t *c = &b->confs[i];
                const bench_conf_t *plain;
                char vs[64] = "";

                c->rps_med = bench_median(c->rps, b->rounds);
                c->us_med = bench_median(c->us, b->rounds);
                c->audit_med = bench_median(c->audit, b->rounds);
                snprintf(vs, sizeof(vs), "plain-%d", c->reusers);
                plain = c->signs ? bench_conf_find(b, vs) : NULL;
                vs[0] = '\0';
                if (plain)
                        snprintf(vs, sizeof(vs), ", %.3f of plain-%d",
                                 c->rps_med / plain->rps_med, c->reusers);
                printf("%-9s %9.0f records/s, ratio %.3f%s, %.2f us CPU per "
                       "input record, %.0f audit messages%s\n",
                       c->name, c->rps_med, c->rps_med / pipe_med, vs,
                       c->us_med, c->audit_med,
                       b->rounds > 1 ? " (medians)" : "");
        }
        p1 = bench_conf_find(b, "plain-1");
        s1 = bench_conf_find(b, "signed-1");
        if (p1 && s1)
                printf("target, 1 reuser >= %.2f of the pipe: plain-1 %.3f, "
                       "%s; signed-1 %.3f, %s\n",
                       BENCH_TARGET_RATIO, p1->rps_med / pipe_med,
                       !strcmp(bench_meets(p1, pipe_med), "true") ? "met"
                                                                  : "NOT met",
                       s1->rps_med / pipe_med,
                       !strcmp(bench_meets(s1, pipe_med), "true") ? "met"
                                                                  : "NOT met");
        else
                printf("target: not measured (no run with 1 reuser)\n");
        printf("peak RSS during each gateway run%s%s: both include the mock "
               "cluster and its topics\n",
               b->rounds > 1 ? " (highest)" : "",
               peak_reset ? "" : " (could not reset: whole process)");
        for (i = 0; i < b->conf_cnt; i++)
                printf("  %-9s %ld KiB, %ld KiB before it\n", b->confs[i].name,
                       b->confs[i].peak_rss, b->confs[i].rss_before);

        id = json_string(b->grant->id);
        grant_json = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
        json_decref(id);
        printf("{\"bench\":\"gateway_throughput\",\"records\":%zu,"
               "\"rounds\":%d,\"partitions\":%d,\"max_in_flight\":%d,"
               "\"grant\":%s,\"pipe_rps\":%.0f,\"pipe_us_per_record\":%.2f,"
               "\"configs\":{",
               n, b->rounds, b->partitions, b->max_in_flight,
               grant_json ? grant_json : "null", pipe_med, pipe_us_med);
        for (i = 0; i < b->conf_cnt; i++) {
                const bench_conf_t *c = &b->confs[i];

                printf("%s\"%s\":{\"reusers\":%d,\"signed\":%s,"
                       "\"gateway_rps\":%.0f,\"ratio\":%.3f,"
                       "\"us_per_record\":%.2f,\"audit_messages\":%.0f,"
                       "\"signed_batches\":%zu,\"peak_rss_kib\":%ld,"
                       "\"rss_before_gateway_kib\":%ld}",
                       i ? "," : "", c->name, c->reusers,
                       c->signs ? "true" : "false", c->rps_med,
                       c->rps_med / pipe_med, c->us_med, c->audit_med,
                       c->signed_batches, c->peak_rss, c->rss_before);
        }
        printf("},\"target_ratio\":%.2f,\"meets_target\":%s,"
               "\"signed_meets_target\":%s}\n",
               BENCH_TARGET_RATIO, bench_meets(p1, pipe_med),
               bench_meets(s1, pipe_med));
        rc = 0;
out:
        free(grant_json);
        free(pipe_rps);
        free(pipe_us);
        return rc;
}

int main(int argc, char **argv)
{
        bench_t b;
        int rc;

        memset(&b, 0, sizeof(b));
        if (bench_args(&b, argc, argv))
                return 2;
        /* stdout may be a pipe: keep its lines in order with the clients'
         * logs on stderr. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        rc = bench_main(&b);
        if (rc)
                fprintf(stderr, "gateway_throughput: %s\n", b.errstr);
        bench_release(&b);
        return rc ? 1 : 0;
}
