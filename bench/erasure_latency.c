/*
 * sharebus benchmark - erasure propagation latency: from the holder
 * publishing an erasure to the subject's rows being gone at every reuser,
 * under background record traffic, on the in-process mock cluster and on
 * the real test broker (tests/kafka/broker.sh).
 *
 * One process: the gateway and two reuser agents (copies of the two grants
 * of broker-config/grants/, one reuser each) run in threads through
 * sb_gateway_run() / sb_reuser_run() until a stop flag; the holder
 * publishes from this process too. Then:
 *
 *   1. every subject to be erased gets its records first (an erasure only
 *      reaches the reusers that received the subject): the N + W erasure
 *      subjects (ERA-...) are published and the bench waits until both
 *      stores hold all of their rows;
 *   2. W warm-up erasures (not counted): the first ones pay one-off costs
 *      (each agent's first receipt: connections, the receipt topic's
 *      metadata), which say nothing about the steady state;
 *   3. background traffic starts: a loader thread publishes sample records
 *      (BEN-..., a pool of BENCH_POOL_SUBJECTS subjects published round
 *      and round, so later rounds are updates) at --rate records/s, in one
 *      holder transaction per 10 ms tick; after BENCH_LOAD_WARMUP_S,
 *   4. N erasures at --erasure-rate per second, each one holder call
 *      (sb_holder_rights(), its own transaction). t0 is taken just before
 *      the call.
 *
 * "Rows gone at every reuser" is measured from the receipts: a reader in
 * this process consumes both sb.ack.<reuser> topics and notes when each
 * receipt reaches it; the erasure's end is the later of its two receipts.
 * The gateway sends a tombstone for each record of the subject, then the
 * erasure notice, on one partition; the agent deletes the rows with the
 * tombstones and, at the latest, commits them with the notice (a rights
 * event ends its SQL transaction), then publishes the receipt. So the
 * receipt's arrival is an UPPER bound of the moment the rows were gone at
 * that reuser. As a cross-check, the receipt's applied_at (wall clock, ms)
 * is when the agent applied the notice, just before that commit
 * (consumers/reuser.c stamps it there; the receipt schema says "when the
 * store's transaction committed"); its figures are printed too. The
 * receipt's "rows" is usually 0: the tombstones got there first.
 *
 * Where the time goes (real broker, 10k records/s, sharebus's defaults but
 * BENCH_NAGLE; measured once by also reading the reuser streams): ~7 ms in
 * the holder's transaction; ~95 ms at p50 (~180 at p99) until the
 * gateway's transaction carrying the notice is committed, that is up to
 * commit_interval_ms (100) of waiting plus the commit; ~60 ms (~165) for
 * each agent to apply the ~1000 records the same transaction delivers at
 * once ahead of the notice (read_committed hands over a transaction
 * whole); ~7 ms (~35) to commit and publish the receipt. What matters is
 * commit_interval_ms (in both terms) and the agent's cost per record;
 * batch_records hardly (a rights event ends a batch anyway). On two cores
 * shared with the broker, 10k records/s is near capacity: when a compiler
 * ran meanwhile, the agents fell 1-1.5 s behind (the gateway kept up) and
 * the latency reached seconds.
 *
 * At the end, with the background stopped and drained, the agents are
 * stopped and checked: each erased subject has no row left in either store
 * (the SQLite files opened read-only, pseudonyms recomputed), the stores
 * hold exactly the background records, and the gateway and both agents
 * counted every record and erasure published, nothing quarantined or
 * rejected. Exit status 1 when a check fails or a run failed; 0 otherwise,
 * whether or not the target is met (a benchmark reports, it does not gate).
 *
 * Clusters (--cluster mock|real|both, default both):
 *   mock  librdkafka's embedded cluster of 3 brokers. Caveats of 2.0.2's
 *         mock, beyond BENCH_MOCK_PARTITIONS, BENCH_MOCK_FETCH_WAIT and
 *         BENCH_MOCK_NAGLE below: it keeps no last stable offset, so
 *         read_committed consumers see transactional messages before
 *         their commit, and the mock figure leaves out the wait for the
 *         gateway's commit (commit_interval_ms).
 *   real  the broker tests/kafka/broker.sh started for $SB_BROKER_DIR
 *         (mTLS, ACLs), with a fresh dataset "latbench<random>" (schemas/
 *         copied with the dataset renamed) and fresh reuser names, so that
 *         topics, state and offsets are this run's own; topics and ACLs
 *         come from `sharebus admin` through tests/kafka/util/world.c.
 *         The holder publishes the erasures as its own principal with its
 *         planned transactional id (sb-holder-<dataset>). The background
 *         loader is a second holder: the ACLs give a dataset a single
 *         transactional id, and two producers sharing one fence each other,
 *         so it connects as the platform administrator (a super user) with
 *         sb-holder-<dataset>-load. Client settings are sharebus's
 *         defaults but for BENCH_NAGLE. Runs when SB_BROKER_DIR is set
 *         (and SB_BIN, which issues the certificates); `make bench` starts
 *         that broker.
 *
 * Options: --erasures N (1000), --warmup-erasures W (20), --erasure-rate E
 * (50/s), --rate R (background records/s: 10000 on the real broker, 5000
 * on the mock, see BENCH_MOCK_RATE), --cluster C, and the
 * product settings the latency depends on: --commit-interval-ms and
 * --commit-records (gateway), --batch-records (reuser), each defaulting to
 * the product's default; for the mock only, --partitions P (data topics;
 * default: see BENCH_MOCK_PARTITIONS), --fetch-wait-ms F (10) and
 * --max-in-flight M (1); --nagle on|off (off: see BENCH_NAGLE).
 * The output ends with one JSON line per cluster run (mock first), then a
 * combined one; the last line is always a JSON object.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
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
#include "log.h"
#include "mockenv.h"
#include "reuser.h"
#include "sample.h"
#include "schema.h"
#include "sign.h"
#ifdef SB_BENCH_BROKER
#include "world.h"
#endif

#define BENCH_SCHEMAS_DIR SB_SOURCE_DIR "/schemas"
#define BENCH_GRANTS_DIR  SB_SOURCE_DIR "/broker-config/grants"
#define BENCH_NREUSERS    2
#define BENCH_TARGET_MS   250.0
/* The load: 10k records/s on the real broker. */
#define BENCH_RATE 10000
/*
 * BENCH_MOCK_RATE: half of it on the mock. The mock's brokers run inside
 * this process, on the same two cores as everything else, and at 10k
 * records/s the data topics need 30 partitions to stay under its 5 MiB
 * limit (BENCH_MOCK_PARTITIONS); the process then kept 1.75 of 2 cores
 * busy, and the mock's figure (p99 280-350 ms, against 160 ms with 12
 * partitions) said more about the mock than about sharebus. At 5000/s:
 * 15 partitions, 1.5 cores. --rate sets both.
 */
#define BENCH_MOCK_RATE 5000
/* Background subjects, published round and round (sample: 1.2 records
 * per subject). Bounded so that the gateway's subject state and the
 * stores stay the same size whatever the duration. */
#define BENCH_POOL_SUBJECTS 20000
/* Background traffic before the first measured erasure: the pipeline is
 * in its steady state, with traffic, when measuring starts. */
#define BENCH_LOAD_WARMUP_S 2.0
/* The loader publishes what is due every tick, in one transaction. */
#define BENCH_LOAD_TICK_S 0.010
/* Generous: a stuck pipeline must fail the run, not hang it. */
#define BENCH_TIMEOUT_S 120.0
/*
 * BENCH_MOCK_PARTITIONS: librdkafka 2.0.2's mock keeps at most 5 MiB per
 * partition and silently drops the oldest data beyond (rdkafka_mock.c,
 * max_size). A sample record takes ~430 bytes on sb.in with its headers,
 * less on the reuser streams and the state changelog: 9000 per partition
 * stays well below. The data topics (sb.in, _sb.state, both sb.out) get
 * 3 x ceil(messages expected / 27000) partitions, so that nothing is
 * dropped even if a consumer lagged behind; the counts checked at the end
 * would show a loss anyway.
 */
#define BENCH_MOCK_RECORDS_PER_PARTITION 9000
/*
 * BENCH_MOCK_FETCH_WAIT: the 2.0.2 mock answers a fetch that finds no
 * data only after fetch.wait.max.ms (500 ms by default), even if data
 * arrives meanwhile (rdkafka_mock_handlers.c: "If there was no data,
 * delay up to MaxWait"); a real broker answers as soon as data arrives.
 * A consumer that has caught up would then see new data in 500 ms steps,
 * which measures the mock, not sharebus. On the mock every client gets
 * fetch.wait.max.ms 10 (--fetch-wait-ms); the producers among them warn
 * that they ignore it (CONFWARN on stderr).
 *
 * BENCH_MOCK_NAGLE: the 2.0.2 mock leaves Nagle on for its sockets
 * (gateway_throughput.c says more): a second request pipelined on a
 * connection gets its answer after the client's delayed ACK, 40 ms. That
 * put 40 ms steps into this latency (at 10k records/s: p99 ~145 ms with 5
 * requests in flight, ~80 ms with 1). Every mock client gets
 * max.in.flight.requests.per.connection 1 (--max-in-flight).
 *
 * BENCH_NAGLE: librdkafka 2.0.2 leaves Nagle's algorithm on
 * (socket.nagle.disable false). Over TLS a request goes out as several
 * writes, and the last one waits for the broker's delayed ACK: on the real
 * test broker every produce request took ~41 ms (librdkafka debug
 * "protocol": ProduceResponse rtt 41-42 ms, while AddPartitionsToTxn and
 * EndTxn took 0.3-0.5 ms), a holder call 50-60 ms instead of ~3-7, and at
 * 10k records/s the pipeline fell seconds behind (erasure latency p50
 * 3.8 s, p99 5.9 s). This bench found it; sharebus now disables Nagle in
 * every client (common/kafka.c), as Kafka's Java client does.
 * --nagle on sets socket.nagle.disable false in every kafka.properties to
 * measure librdkafka's default instead.
 *
 * Otherwise the real broker's clients keep sharebus's settings and Kafka's
 * defaults, except the bench's receipt reader (its measuring instrument),
 * which uses fetch.wait.max.ms 10 on both clusters.
 */
#define BENCH_MOCK_FETCH_WAIT_MS 10

static const char *bench_grant_files[BENCH_NREUSERS] = {
    "housing-observatory.json", "energy-desk.json"};

/* ---- options and results ------------------------------------------------- */

typedef struct bench_opts_s {
        size_t erasures;
        size_t warmup;
        double erasure_rate;
        double rate; /* -1: BENCH_RATE, or BENCH_MOCK_RATE on the mock */
        int mock, real;
        long long commit_interval_ms; /* 0: the product default */
        long long commit_records;
        long long batch_records;
        int partitions; /* 0: sized, see BENCH_MOCK_PARTITIONS */
        int fetch_wait_ms;
        int max_in_flight;
        int nagle; /* --nagle on: socket.nagle.disable false */
} bench_opts_t;

typedef struct bench_pcts_s {
        double p50, p95, p99, max;
} bench_pcts_t;

typedef struct bench_result_s {
        const char *cluster;
        int ran;
        int error;         /* asked for, but failed or could not run */
        char skipped[512]; /* why it did not run (or failed) */
        size_t erasures;   /* measured */
        double rate_asked, bg_rate, erasure_rate;
        double cores;         /* process CPU / wall time while erasures ran */
        bench_pcts_t end;     /* receipt arrival, later reuser */
        bench_pcts_t applied; /* receipt applied_at, later reuser */
        bench_pcts_t holder;  /* the holder call */
        long long commit_interval_ms, commit_records, batch_records;
        int partitions;
        int fetch_wait_ms; /* of the agents' clients; 0: default */
        int max_in_flight; /* likewise */
        int nagle;         /* Nagle left on (librdkafka's default) */
        size_t bg_records;
        int met;
} bench_result_t;

/* ---- one run ------------------------------------------------------------- */

typedef struct bench_erasure_s {
        char subject[16];
        char event_id[37];
        double t0, t_call;               /* monotonic seconds */
        int64_t t0_wall;                 /* ms since the epoch */
        double t_ack[BENCH_NREUSERS];    /* receipt arrival; 0: none yet */
        int64_t applied[BENCH_NREUSERS]; /* receipt applied_at */
} bench_erasure_t;

typedef struct bench_receipt_s {
        char event_id[37];
        int reuser;
        double t;
        int64_t applied_at;
} bench_receipt_t;

/* The receipt reader: a thread consuming both sb.ack.<reuser> topics. */
typedef struct bench_reader_s {
        rd_kafka_t *rk;
        const sb_schema_t *schema;
        char topics[BENCH_NREUSERS][256];
        pthread_t thr;
        int started;
        volatile sig_atomic_t stop;
        pthread_mutex_t mu;
        bench_receipt_t *v; /* under mu */
        size_t cnt, cap;    /* under mu */
        size_t bad;         /* undecodable receipts, under mu */
        char err[512];      /* first consumer error, under mu */
} bench_reader_t;

/* A gateway or reuser agent in its thread. */
typedef struct bench_agent_s {
        const char *name;
        sb_gateway_t *gw;
        sb_reuser_t *ru;
        pthread_t thr;
        int started;
        volatile sig_atomic_t stop;
        int done; /* atomic */
        sb_err_t err;
        char errstr[512];
} bench_agent_t;

/* The background loader thread. */
typedef struct bench_loader_s {
        struct bench_s *b;
        sb_holder_t *h;
        pthread_t thr;
        int started;
        volatile sig_atomic_t stop;
        size_t published; /* atomic */
        int done;         /* atomic */
        sb_err_t err;
        char errstr[1024];
} bench_loader_t;

typedef struct bench_s {
        const bench_opts_t *o;
        bench_result_t *res;
        double rate; /* background records/s asked */
        char dir[256];
        char dataset[64];
        char reusers[BENCH_NREUSERS][64];
        char grants_dir[300];
        char schemas_dir[300];
        char grant_paths[BENCH_NREUSERS][600];
        char dbs[BENCH_NREUSERS][600];
        char signkeys[BENCH_NREUSERS][600];
        /* batch signatures: holder key, gateway key, and where the
         * verifiers find their public halves */
        char holder_key[600], gw_key[600], holder_keys[600], gw_keys[600];
        char audit_key[600];
        /* the pool of background records: NDJSON lines and their offsets */
        char *pool;
        size_t pool_len, *pool_off, pool_cnt;
        /* the erasure subjects' records */
        char *era;
        size_t era_len, era_cnt;
        bench_erasure_t *er; /* warm-up ones first, then the measured */
        size_t er_cnt;
        json_t *er_index; /* event id -> index in er */
        sb_catalog_t *cat;
        sb_key_t *key;
        /* per cluster: the kafka sections of each client's config */
        json_t *kafka_holder, *kafka_loader, *kafka_gw,
            *kafka_ru[BENCH_NREUSERS], *kafka_reader;
        int partitions;
        sb_holder_cfg_t hcfg, lcfg;
        sb_gateway_cfg_t gcfg;
        sb_reuser_cfg_t rcfg[BENCH_NREUSERS];
        sb_kafka_cfg_t reader_kc;
        int hcfg_ok, lcfg_ok, gcfg_ok, rcfg_ok[BENCH_NREUSERS], reader_ok;
        sb_holder_t *holder;
        bench_loader_t loader;
        bench_agent_t gw, ru[BENCH_NREUSERS];
        bench_reader_t rd;
        size_t rd_seen; /* receipts of rd.v already matched */
        size_t foreign; /* receipts of no erasure of this run */
        sb_mockenv_t *env;
#ifdef SB_BENCH_BROKER
        sb_world_t w;
        int w_ok;
#endif
        char errstr[1024];
} bench_t;

/* Seconds on the monotonic clock. */
static double bench_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_sleep_until(double t)
{
        struct timespec ts;

        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
               EINTR)
                ;
}

static void bench_sleep(double s)
{
        bench_sleep_until(bench_now() + s);
}

/* CPU seconds of the whole process: the clients, the agents and the mock
 * brokers share two cores here. */
static double bench_cpu_s(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru))
                return 0;
        return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
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

static size_t bench_load(const size_t *p)
{
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Applies a config object (its reference is dropped). */
static int bench_cfg(bench_t *b, const sb_config_field_t *table, void *target,
                     json_t *obj, const char *what)
{
        sb_err_t err;

        if (!obj)
                return bench_fail(b, "%s: out of memory", what);
        err = sb_config_apply(obj, what, table, target, b->errstr,
                              sizeof(b->errstr));
        json_decref(obj);
        return err ? -1 : 0;
}

/* ---- the records --------------------------------------------------------- */

/* Sample records for `subjects` subjects as NDJSON in *textp. */
static int bench_sample_text(bench_t *b, size_t subjects, uint64_t seed,
                             char **textp, size_t *lenp, size_t *cntp)
{
        FILE *mem = open_memstream(textp, lenp);

        if (!mem)
                return bench_fail(b, "open_memstream: %s", strerror(errno));
        *cntp = sb_sample_write(mem, subjects, seed);
        if (fclose(mem))
                return bench_fail(b, "sample: out of memory");
        return 0;
}

/*
 * The background pool (BEN-0000000...) with its line offsets, and the
 * erasure subjects' records: the same sample with the subject ids renamed
 * ERA-..., so that no background record touches an erasure subject.
 */
static int bench_records(bench_t *b)
{
        char *text = NULL, *line, *save = NULL;
        size_t len = 0, cnt = 0, i, n = b->o->erasures + b->o->warmup;
        FILE *mem;

        if (bench_sample_text(b, BENCH_POOL_SUBJECTS, 42, &b->pool,
                              &b->pool_len, &b->pool_cnt))
                return -1;
        b->pool_off = calloc(b->pool_cnt + 1, sizeof(*b->pool_off));
        if (!b->pool_off)
                return bench_fail(b, "out of memory");
        for (i = 0, cnt = 0; i < b->pool_len && cnt < b->pool_cnt; i++)
                if (b->pool[i] == '\n')
                        b->pool_off[++cnt] = i + 1;
        if (cnt != b->pool_cnt)
                return bench_fail(b, "sample: %zu lines, %zu records", cnt,
                                  b->pool_cnt);

        if (bench_sample_text(b, n, 7, &text, &len, &cnt))
                return -1;
        mem = open_memstream(&b->era, &b->era_len);
        if (!mem) {
                free(text);
                return bench_fail(b, "open_memstream: %s", strerror(errno));
        }
        b->era_cnt = 0;
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_t *rec = json_loads(line, 0, NULL);
                const char *id =
                    json_string_value(json_object_get(rec, "beneficiary_id"));
                char era[16], *out;

                if (!id || strncmp(id, "BEN-", 4)) {
                        json_decref(rec);
                        fclose(mem);
                        free(text);
                        return bench_fail(b, "sample: unexpected line %s",
                                          line);
                }
                snprintf(era, sizeof(era), "ERA-%s", id + 4);
                json_object_set_new(rec, "beneficiary_id", json_string(era));
                out = json_dumps(rec, JSON_COMPACT);
                json_decref(rec);
                if (!out)
                        break;
                fprintf(mem, "%s\n", out);
                free(out);
                b->era_cnt++;
        }
        free(text);
        if (fclose(mem) || b->era_cnt != cnt)
                return bench_fail(b, "sample: out of memory");

        b->er_cnt = n;
        b->er = calloc(n, sizeof(*b->er));
        b->er_index = json_object();
        if (!b->er || !b->er_index)
                return bench_fail(b, "out of memory");
        for (i = 0; i < n; i++)
                snprintf(b->er[i].subject, sizeof(b->er[i].subject),
                         "ERA-%07zu", i % 10000000);
        return 0;
}

/* ---- files --------------------------------------------------------------- */

/*
 * Writes the grant of reuser `r` to b->grants_dir: a copy of the
 * repository's grant, with the reuser, dataset and id of this run.
 */
static int bench_grant(bench_t *b, int r)
{
        char from[600], to[600], id[128];
        json_error_t jerr;
        json_t *g;
        int rc;

        snprintf(from, sizeof(from), "%s/%s", BENCH_GRANTS_DIR,
                 bench_grant_files[r]);
        g = json_load_file(from, 0, &jerr);
        if (!g)
                return bench_fail(b, "'%s' line %d: %s", from, jerr.line,
                                  jerr.text);
        snprintf(id, sizeof(id), "g-bench-%s", b->reusers[r]);
        json_object_set_new(g, "id", json_string(id));
        json_object_set_new(g, "reuser", json_string(b->reusers[r]));
        json_object_set_new(g, "dataset", json_string(b->dataset));
        snprintf(to, sizeof(to), "%s/%s.json", b->grants_dir, b->reusers[r]);
        memcpy(b->grant_paths[r], to, sizeof(to));
        rc = json_dump_file(g, b->grant_paths[r], JSON_INDENT(2));
        json_decref(g);
        return rc ? bench_fail(b, "cannot write '%s'", b->grant_paths[r]) : 0;
}

/* A signing key pair: the secret in `secret`, the public in `public`. */
static int bench_keypair(bench_t *b, const char *secret, const char *public)
{
        sb_signkey_t *k = sb_signkey_generate();
        sb_err_t err;

        if (!k)
                return bench_fail(b, "out of memory");
        err = sb_signkey_save(k, secret, public, b->errstr, sizeof(b->errstr));
        sb_signkey_destroy(k);
        return err ? -1 : 0;
}

/*
 * Each reuser's receipt signing key (0600, as the agent demands), and the
 * batch signatures of the pipeline: the holder signs, the gateway verifies
 * and signs the streams, the agents verify (as in production).
 */
static int bench_signkeys(bench_t *b)
{
        char pub[1400];
        int r;

        snprintf(b->holder_key, sizeof(b->holder_key), "%s/holder.key", b->dir);
        snprintf(b->gw_key, sizeof(b->gw_key), "%s/gateway.key", b->dir);
        snprintf(b->holder_keys, sizeof(b->holder_keys), "%s/holder-keys",
                 b->dir);
        snprintf(b->gw_keys, sizeof(b->gw_keys), "%s/gateway-keys", b->dir);
        snprintf(pub, sizeof(pub), "%s/%s", b->holder_keys, b->dataset);
        if (mkdir(b->holder_keys, 0700) || mkdir(pub, 0700) ||
            mkdir(b->gw_keys, 0700))
                return bench_fail(b, "cannot make the key directories in '%s'",
                                  b->dir);
        snprintf(pub, sizeof(pub), "%s/%s/holder.pub", b->holder_keys,
                 b->dataset);
        if (bench_keypair(b, b->holder_key, pub))
                return -1;
        snprintf(pub, sizeof(pub), "%s/gateway.pub", b->gw_keys);
        if (bench_keypair(b, b->gw_key, pub))
                return -1;
        snprintf(b->audit_key, sizeof(b->audit_key), "%s/audit.key", b->dir);
        snprintf(pub, sizeof(pub), "%s/audit.pub", b->dir);
        if (bench_keypair(b, b->audit_key, pub))
                return -1;

        for (r = 0; r < BENCH_NREUSERS; r++) {
                sb_signkey_t *k = sb_signkey_generate();
                sb_err_t err;

                if (!k)
                        return bench_fail(b, "out of memory");
                snprintf(b->signkeys[r], sizeof(b->signkeys[r]), "%s/%s.key",
                         b->dir, b->reusers[r]);
                snprintf(pub, sizeof(pub), "%s/%s.pub", b->dir, b->reusers[r]);
                err = sb_signkey_save(k, b->signkeys[r], pub, b->errstr,
                                      sizeof(b->errstr));
                sb_signkey_destroy(k);
                if (err)
                        return -1;
        }
        return 0;
}

/* ---- the mock cluster ---------------------------------------------------- */

/* See BENCH_MOCK_PARTITIONS. */
static int bench_mock_partitions(const bench_opts_t *o, double rate)
{
        double secs =
            BENCH_LOAD_WARMUP_S + (double)o->erasures / o->erasure_rate + 3.0;
        double msgs = rate * secs + (double)(o->erasures + o->warmup) * 2;
        int per3 = 3 * BENCH_MOCK_RECORDS_PER_PARTITION;
        int p = 3 * (int)ceil(msgs / per3);

        return p < 3 ? 3 : p;
}

/*
 * Adds the bench's client settings to a kafka section: on both clusters
 * socket.nagle.disable (BENCH_NAGLE), on the mock BENCH_MOCK_FETCH_WAIT
 * and BENCH_MOCK_NAGLE.
 */
static json_t *bench_kafka_props(bench_t *b, json_t *k, int mock)
{
        json_t *props = json_object();
        char v[16];

        if (!k || !props) {
                json_decref(props);
                return k;
        }
        if (b->o->nagle)
                json_object_set_new(props, "socket.nagle.disable",
                                    json_string("false"));
        if (mock) {
                snprintf(v, sizeof(v), "%d", b->o->fetch_wait_ms);
                json_object_set_new(props, "fetch.wait.max.ms", json_string(v));
                snprintf(v, sizeof(v), "%d", b->o->max_in_flight);
                json_object_set_new(props,
                                    "max.in.flight.requests.per.connection",
                                    json_string(v));
        }
        if (json_object_size(props))
                json_object_set_new(k, "properties", props);
        else
                json_decref(props);
        return k;
}

static json_t *bench_mock_kafka(bench_t *b)
{
        return bench_kafka_props(b, sb_mockenv_kafka_json(b->env), 1);
}

static int bench_mock_setup(bench_t *b)
{
        int r;

        snprintf(b->dataset, sizeof(b->dataset), "beneficiaries");
        snprintf(b->schemas_dir, sizeof(b->schemas_dir), "%s",
                 BENCH_SCHEMAS_DIR);
        snprintf(b->grants_dir, sizeof(b->grants_dir), "%s/grants", b->dir);
        if (mkdir(b->grants_dir, 0700) == -1)
                return bench_fail(b, "'%s': %s", b->grants_dir,
                                  strerror(errno));
        b->partitions = b->o->partitions ? b->o->partitions
                                         : bench_mock_partitions(b->o, b->rate);
        b->env = sb_mockenv_new(3, b->errstr, sizeof(b->errstr));
        if (!b->env || sb_mockenv_dataset(b->env, b->dataset, b->partitions,
                                          b->errstr, sizeof(b->errstr)))
                return -1;
        for (r = 0; r < BENCH_NREUSERS; r++) {
                char topic[256];

                /* The repository's reuser names: a fresh cluster. */
                snprintf(b->reusers[r], sizeof(b->reusers[r]), "%.*s",
                         (int)(strlen(bench_grant_files[r]) - 5),
                         bench_grant_files[r]);
                if (bench_grant(b, r))
                        return -1;
                snprintf(topic, sizeof(topic), "sb.out.%s.%s", b->reusers[r],
                         b->dataset);
                if (sb_mockenv_topic(b->env, topic, b->partitions, b->errstr,
                                     sizeof(b->errstr)) ||
                    sb_mockenv_ack_topic(b->env, b->reusers[r], b->errstr,
                                         sizeof(b->errstr)))
                        return -1;
                b->kafka_ru[r] = bench_mock_kafka(b);
        }
        b->kafka_holder = bench_mock_kafka(b);
        b->kafka_loader = bench_mock_kafka(b);
        b->kafka_gw = bench_mock_kafka(b);
        b->kafka_reader = bench_mock_kafka(b);
        b->res->fetch_wait_ms = b->o->fetch_wait_ms;
        b->res->max_in_flight = b->o->max_in_flight;
        return 0;
}

/* ---- the real broker ----------------------------------------------------- */

#ifdef SB_BENCH_BROKER
static void bench_why(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bench_why(char *why, size_t size, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
}

/*
 * 1 when the broker of $SB_BROKER_DIR answers; 0 (and why) when the real
 * run is not asked for; -1 (and why) when it is asked for but cannot run.
 */
static int bench_real_available(char *why, size_t size)
{
        const char *dir = getenv("SB_BROKER_DIR"), *bin = getenv("SB_BIN");
        sb_brokerenv_t be;
        sb_kafka_cfg_t kc;
        sb_probe_t p;
        char errstr[1024];

        if (!dir || !*dir) {
                bench_why(why, size,
                          "SB_BROKER_DIR not set; `make bench` starts one");
                return 0;
        }
        if (!bin || access(bin, X_OK)) {
                bench_why(why, size,
                          "SB_BIN ('%s') is not the sharebus binary; it "
                          "issues the certificates",
                          bin ? bin : "");
                return -1;
        }
        if (sb_brokerenv_load(&be, errstr, sizeof(errstr))) {
                bench_why(why, size, "%s", errstr);
                return -1;
        }
        sb_brokerenv_mtls_cfg(&be, &kc);
        sb_probe(&kc, 10000, &p);
        sb_brokerenv_release(&be);
        if (p.md_err) {
                bench_why(why, size,
                          "the broker of SB_BROKER_DIR '%s' does not answer "
                          "(%s%s%s); start it with tests/kafka/broker.sh start",
                          dir, rd_kafka_err2str(p.md_err),
                          p.cb_reason[0] ? ": " : "", p.cb_reason);
                return -1;
        }
        return 1;
}

static json_t *bench_real_kafka(bench_t *b, const sb_kafka_cfg_t *kc)
{
        return bench_kafka_props(
            b,
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "bootstrap_servers",
                      kc->bootstrap_servers, "security_protocol", "ssl",
                      "ssl_ca_location", kc->ssl_ca_location,
                      "ssl_certificate_location", kc->ssl_certificate_location,
                      "ssl_key_location", kc->ssl_key_location),
            0);
}

static char *bench_read_file(bench_t *b, const char *path)
{
        FILE *fp = fopen(path, "rb");
        char *text = NULL;
        size_t len = 0;
        FILE *mem;
        char buf[8192];
        size_t n;

        if (!fp) {
                bench_fail(b, "'%s': %s", path, strerror(errno));
                return NULL;
        }
        mem = open_memstream(&text, &len);
        if (!mem) {
                fclose(fp);
                bench_fail(b, "open_memstream: %s", strerror(errno));
                return NULL;
        }
        while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
                fwrite(buf, 1, n, mem);
        fclose(fp);
        if (fclose(mem)) {
                free(text);
                bench_fail(b, "'%s': out of memory", path);
                return NULL;
        }
        return text;
}

static int bench_write_file(bench_t *b, const char *path, const char *text)
{
        FILE *fp = fopen(path, "w");
        int ok;

        if (!fp)
                return bench_fail(b, "'%s': %s", path, strerror(errno));
        ok = fputs(text, fp) >= 0;
        if (fclose(fp) || !ok)
                return bench_fail(b, "cannot write '%s'", path);
        return 0;
}

/* schemas/ with the dataset renamed: this run's topics and state. */
static int bench_real_schemas(bench_t *b)
{
        static const char *copies[] = {"rights.avsc", "receipt.avsc"};
        char from[600], to[700], *text, *p, *out;
        const char *pat = "\"sb.dataset\": \"beneficiaries\"";
        size_t i;
        int rc;

        snprintf(b->schemas_dir, sizeof(b->schemas_dir), "%s/schemas",
                 b->w.dir);
        if (mkdir(b->schemas_dir, 0700) == -1)
                return bench_fail(b, "'%s': %s", b->schemas_dir,
                                  strerror(errno));
        for (i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
                snprintf(from, sizeof(from), "%s/%s", BENCH_SCHEMAS_DIR,
                         copies[i]);
                snprintf(to, sizeof(to), "%s/%s", b->schemas_dir, copies[i]);
                if (!(text = bench_read_file(b, from)))
                        return -1;
                rc = bench_write_file(b, to, text);
                free(text);
                if (rc)
                        return -1;
        }
        snprintf(from, sizeof(from), "%s/beneficiaries.avsc",
                 BENCH_SCHEMAS_DIR);
        if (!(text = bench_read_file(b, from)))
                return -1;
        p = strstr(text, pat);
        if (!p) {
                free(text);
                return bench_fail(b,
                                  "'%s' has no %s: cannot rename the "
                                  "dataset",
                                  from, pat);
        }
        *p = '\0';
        rc = asprintf(&out, "%s\"sb.dataset\": \"%s\"%s", text, b->dataset,
                      p + strlen(pat));
        free(text);
        if (rc == -1)
                return bench_fail(b, "out of memory");
        snprintf(to, sizeof(to), "%s/%s.avsc", b->schemas_dir, b->dataset);
        rc = bench_write_file(b, to, out);
        free(out);
        return rc;
}

static int bench_real_setup(bench_t *b)
{
        sb_kafka_cfg_t holder_kc, gw_kc, ru_kc;
        char sfx[8], principal[128], *body;
        int r, rc;

        sb_world_init(&b->w);
        b->w_ok = 1;
        snprintf(sfx, sizeof(sfx), "%06" PRIx32,
                 randombytes_uniform(0x1000000));
        snprintf(b->dataset, sizeof(b->dataset), "latbench%s", sfx);
        snprintf(b->reusers[0], sizeof(b->reusers[0]), "lat-housing-%s", sfx);
        snprintf(b->reusers[1], sizeof(b->reusers[1]), "lat-energy-%s", sfx);
        if (bench_real_schemas(b))
                return -1;
        snprintf(b->grants_dir, sizeof(b->grants_dir), "%s", b->w.grants_dir);
        for (r = 0; r < BENCH_NREUSERS; r++)
                if (bench_grant(b, r))
                        return -1;
        snprintf(b->w.schemas_dir, sizeof(b->w.schemas_dir), "%s",
                 b->schemas_dir);
        rc = asprintf(&body,
                      "\"gateway\": [\"lat-gw.g1\"], \"datasets\": {\"%s\": "
                      "{\"holders\": [\"lat-holder.g1\"]}}, \"reusers\": "
                      "{\"%s\": {\"principals\": [\"%s.g1\"]}, \"%s\": "
                      "{\"principals\": [\"%s.g1\"]}}",
                      b->dataset, b->reusers[0], b->reusers[0], b->reusers[1],
                      b->reusers[1]);
        if (rc == -1)
                return bench_fail(b, "out of memory");
        sb_world_platform(&b->w, body);
        free(body);
        printf("real broker: applying topics and ACLs for dataset %s...\n",
               b->dataset);
        sb_world_apply(&b->w);
        sb_world_cert(&b->w, "lat-holder.g1", NULL, &holder_kc);
        sb_world_cert(&b->w, "lat-gw.g1", NULL, &gw_kc);
        b->kafka_holder = bench_real_kafka(b, &holder_kc);
        b->kafka_gw = bench_real_kafka(b, &gw_kc);
        for (r = 0; r < BENCH_NREUSERS; r++) {
                snprintf(principal, sizeof(principal), "%s.g1", b->reusers[r]);
                sb_world_cert(&b->w, principal, NULL, &ru_kc);
                b->kafka_ru[r] = bench_real_kafka(b, &ru_kc);
        }
        /* The loader and the reader: the platform administrator. */
        b->kafka_loader = bench_real_kafka(b, &b->w.admin_kc);
        b->kafka_reader = bench_real_kafka(b, &b->w.admin_kc);
        b->partitions = 3; /* world.c declares 3 per topic */
        b->res->fetch_wait_ms = 0;
        return 0;
}
#endif

/* ---- the receipt reader -------------------------------------------------- */

static int bench_reader_index(const bench_reader_t *rd, const char *topic)
{
        int r;

        for (r = 0; r < BENCH_NREUSERS; r++)
                if (!strcmp(rd->topics[r], topic))
                        return r;
        return -1;
}

static void bench_reader_error(bench_reader_t *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bench_reader_error(bench_reader_t *rd, const char *fmt, ...)
{
        va_list ap;

        pthread_mutex_lock(&rd->mu);
        if (!rd->err[0]) {
                va_start(ap, fmt);
                vsnprintf(rd->err, sizeof(rd->err), fmt, ap);
                va_end(ap);
        }
        pthread_mutex_unlock(&rd->mu);
}

/* Decodes the receipt (applied_at) and keeps it with its arrival. */
static void bench_reader_take(bench_reader_t *rd, avro_value_t *v,
                              const rd_kafka_message_t *m, double t)
{
        bench_receipt_t rc;
        avro_value_t f;
        char err[256];
        int ok;

        memset(&rc, 0, sizeof(rc));
        rc.t = t;
        rc.reuser = bench_reader_index(rd, rd_kafka_topic_name(m->rkt));
        ok = rc.reuser >= 0 && m->key && m->key_len == 36 && m->payload &&
             !sb_schema_decode(rd->schema, m->payload, m->len, v, err,
                               sizeof(err)) &&
             !avro_value_get_by_name(v, "applied_at", &f, NULL) &&
             !avro_value_get_long(&f, &rc.applied_at);
        if (ok)
                memcpy(rc.event_id, m->key, 36);
        pthread_mutex_lock(&rd->mu);
        if (!ok) {
                rd->bad++;
        } else if (rd->cnt < rd->cap ||
                   (rd->v = realloc(rd->v, (rd->cap = rd->cap * 2 + 1024) *
                                               sizeof(*rd->v)))) {
                rd->v[rd->cnt++] = rc;
        } else {
                rd->cap = rd->cnt = 0;
                snprintf(rd->err, sizeof(rd->err), "receipts: out of memory");
        }
        pthread_mutex_unlock(&rd->mu);
}

static void *bench_reader_body(void *arg)
{
        bench_reader_t *rd = arg;
        avro_value_t v;
        char err[256];

        if (sb_schema_value_new(rd->schema, &v, err, sizeof(err))) {
                bench_reader_error(rd, "receipt value: %s", err);
                return NULL;
        }
        while (!rd->stop) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rd->rk, 50);
                double t = bench_now();

                if (!m)
                        continue;
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                bench_reader_error(rd, "receipt reader: %s",
                                                   rd_kafka_message_errstr(m));
                } else {
                        bench_reader_take(rd, &v, m, t);
                }
                rd_kafka_message_destroy(m);
        }
        avro_value_decref(&v);
        return NULL;
}

/* Consumes both receipt topics from their beginning (no group offsets). */
static int bench_reader_start(bench_t *b)
{
        bench_reader_t *rd = &b->rd;
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_conf_t *conf;
        char kerr[512], wait[16];
        int r, p, rc;

        rd->schema = sb_catalog_by_name(b->cat, SB_RECEIPT_SCHEMA);
        if (!rd->schema)
                return bench_fail(b, "schemas '%s': no %s", b->schemas_dir,
                                  SB_RECEIPT_SCHEMA);
        if (bench_cfg(b, sb_kafka_cfg_table, &b->reader_kc,
                      json_incref(b->kafka_reader), "bench reader kafka"))
                return -1;
        b->reader_ok = 1;
        conf = sb_kafka_conf_new(&b->reader_kc, "bench-receipt-reader",
                                 b->errstr, sizeof(b->errstr));
        if (!conf)
                return -1;
        snprintf(wait, sizeof(wait), "%d", BENCH_MOCK_FETCH_WAIT_MS);
        if (sb_kafka_conf_set(conf, "group.id", "bench-receipt-reader",
                              b->errstr, sizeof(b->errstr)) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", b->errstr,
                              sizeof(b->errstr)) ||
            sb_kafka_conf_set(conf, "fetch.wait.max.ms", wait, b->errstr,
                              sizeof(b->errstr))) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        rd->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
        if (!rd->rk) {
                rd_kafka_conf_destroy(conf);
                return bench_fail(b, "receipt reader: %s", kerr);
        }
        rd_kafka_poll_set_consumer(rd->rk);
        parts = rd_kafka_topic_partition_list_new(BENCH_NREUSERS);
        for (r = 0; r < BENCH_NREUSERS; r++) {
                const rd_kafka_metadata_t *md;
                rd_kafka_topic_t *rkt;
                int cnt = 0;

                snprintf(rd->topics[r], sizeof(rd->topics[r]), "sb.ack.%s",
                         b->reusers[r]);
                rkt = rd_kafka_topic_new(rd->rk, rd->topics[r], NULL);
                if (!rd_kafka_metadata(rd->rk, 0, rkt, &md, 10000)) {
                        if (md->topic_cnt == 1 && !md->topics[0].err)
                                cnt = md->topics[0].partition_cnt;
                        rd_kafka_metadata_destroy(md);
                }
                rd_kafka_topic_destroy(rkt);
                if (cnt <= 0) {
                        rd_kafka_topic_partition_list_destroy(parts);
                        return bench_fail(b,
                                          "receipt reader: no metadata "
                                          "for '%s'",
                                          rd->topics[r]);
                }
                for (p = 0; p < cnt; p++)
                        rd_kafka_topic_partition_list_add(parts, rd->topics[r],
                                                          p)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        rc = rd_kafka_assign(rd->rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (rc)
                return bench_fail(b, "receipt reader: assign: %s",
                                  rd_kafka_err2str(rc));
        if ((rc = pthread_create(&rd->thr, NULL, bench_reader_body, rd)))
                return bench_fail(b, "pthread_create: %s", strerror(rc));
        rd->started = 1;
        return 0;
}

/*
 * Matches the receipts read since the last call with the erasures (the
 * main thread publishes and matches: every erasure whose receipt can be in
 * the reader's list was published, and indexed, before this call). The
 * first receipt of an (erasure, reuser) pair counts. Returns the number of
 * pairs with a receipt, or -1 on a reader error.
 */
static long bench_collect(bench_t *b)
{
        bench_reader_t *rd = &b->rd;
        bench_receipt_t *v = NULL;
        size_t n = 0, i;
        long pairs = 0;
        int r;

        pthread_mutex_lock(&rd->mu);
        if (rd->err[0]) {
                bench_fail(b, "%s", rd->err);
                pthread_mutex_unlock(&rd->mu);
                return -1;
        }
        if (rd->cnt > b->rd_seen) {
                n = rd->cnt - b->rd_seen;
                v = malloc(n * sizeof(*v));
                if (v)
                        memcpy(v, rd->v + b->rd_seen, n * sizeof(*v));
        }
        pthread_mutex_unlock(&rd->mu);
        if (n && !v)
                return bench_fail(b, "out of memory");
        b->rd_seen += n;
        for (i = 0; i < n; i++) {
                json_t *ix = json_object_get(b->er_index, v[i].event_id);
                bench_erasure_t *e;

                if (!ix) {
                        b->foreign++;
                        continue;
                }
                e = &b->er[json_integer_value(ix)];
                if (e->t_ack[v[i].reuser] == 0) {
                        e->t_ack[v[i].reuser] = v[i].t;
                        e->applied[v[i].reuser] = v[i].applied_at;
                }
        }
        free(v);
        for (i = 0; i < b->er_cnt; i++)
                for (r = 0; r < BENCH_NREUSERS; r++)
                        pairs += b->er[i].t_ack[r] > 0;
        return pairs;
}

/* ---- agents and loader --------------------------------------------------- */

static void *bench_agent_body(void *arg)
{
        bench_agent_t *a = arg;

        if (a->gw)
                a->err = sb_gateway_run(a->gw, &a->stop, 0, a->errstr,
                                        sizeof(a->errstr));
        else
                a->err = sb_reuser_run(a->ru, &a->stop, 0, a->errstr,
                                       sizeof(a->errstr));
        __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
        return NULL;
}

static int bench_agent_start(bench_t *b, bench_agent_t *a)
{
        int rc = pthread_create(&a->thr, NULL, bench_agent_body, a);

        if (rc)
                return bench_fail(b, "pthread_create: %s", strerror(rc));
        a->started = 1;
        return 0;
}

/* Stops and joins; returns -1 (errstr set) if the agent failed. */
static int bench_agent_stop(bench_t *b, bench_agent_t *a)
{
        if (!a->started)
                return 0;
        a->stop = 1;
        pthread_join(a->thr, NULL);
        a->started = 0;
        if (a->err)
                return bench_fail(b, "%s: %s", a->name, a->errstr);
        return 0;
}

/* -1 (errstr set) when an agent or the loader ended by itself. */
static int bench_alive(bench_t *b)
{
        bench_agent_t *as[1 + BENCH_NREUSERS];
        int i;

        as[0] = &b->gw;
        for (i = 0; i < BENCH_NREUSERS; i++)
                as[1 + i] = &b->ru[i];
        for (i = 0; i < 1 + BENCH_NREUSERS; i++)
                if (as[i]->started &&
                    __atomic_load_n(&as[i]->done, __ATOMIC_ACQUIRE))
                        return bench_fail(b, "%s stopped: %s", as[i]->name,
                                          as[i]->err ? as[i]->errstr
                                                     : "(no error)");
        if (b->loader.started &&
            __atomic_load_n(&b->loader.done, __ATOMIC_ACQUIRE))
                return bench_fail(b, "background loader stopped: %s",
                                  b->loader.errstr);
        return 0;
}

static void *bench_loader_body(void *arg)
{
        bench_loader_t *l = arg;
        bench_t *b = l->b;
        double start = bench_now(), next = start;
        size_t sent = 0, cursor = 0, max_chunk;

        /* Behind schedule, catch up by at most half a second at a time. */
        max_chunk = (size_t)(b->rate / 2) + 1;
        while (!l->stop) {
                size_t due = (size_t)((bench_now() - start) * b->rate), n;
                sb_holder_stats_t hs;
                FILE *in;

                next += BENCH_LOAD_TICK_S;
                if (due > sent) {
                        n = due - sent;
                        if (n > max_chunk)
                                n = max_chunk;
                        if (n > b->pool_cnt - cursor)
                                n = b->pool_cnt - cursor;
                        in = fmemopen(
                            b->pool + b->pool_off[cursor],
                            b->pool_off[cursor + n] - b->pool_off[cursor], "r");
                        if (!in) {
                                l->err = SB_ERR_NOMEM;
                                snprintf(l->errstr, sizeof(l->errstr),
                                         "fmemopen: %s", strerror(errno));
                                break;
                        }
                        memset(&hs, 0, sizeof(hs));
                        l->err =
                            sb_holder_publish(l->h, in, "background", NULL, &hs,
                                              l->errstr, sizeof(l->errstr));
                        fclose(in);
                        if (l->err)
                                break;
                        sent += hs.published;
                        cursor = (cursor + n) % b->pool_cnt;
                        __atomic_store_n(&l->published, sent, __ATOMIC_RELEASE);
                }
                if (next < bench_now())
                        next = bench_now();
                bench_sleep_until(next);
        }
        __atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
        return NULL;
}

/* ---- waiting ------------------------------------------------------------- */

/* Rows of the store at `db`: all, or one pseudonym's; -1 on error. */
static int64_t bench_db_count(bench_t *b, const char *db, const char *ps)
{
        sqlite3 *s = NULL;
        sqlite3_stmt *st = NULL;
        int64_t n = -1;

        if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                bench_fail(b, "'%s': %s", db, sqlite3_errmsg(s));
                goto out;
        }
        sqlite3_busy_timeout(s, 5000);
        if (sqlite3_prepare_v2(s,
                               ps ? "SELECT COUNT(*) FROM records WHERE "
                                    "\"" SB_PSEUDONYM_FIELD "\" = ?1"
                                  : "SELECT COUNT(*) FROM records",
                               -1, &st, NULL) != SQLITE_OK ||
            (ps && sqlite3_bind_text(st, 1, ps, -1, SQLITE_STATIC)) ||
            sqlite3_step(st) != SQLITE_ROW) {
                bench_fail(b, "'%s': %s", db, sqlite3_errmsg(s));
                goto out;
        }
        n = sqlite3_column_int64(st, 0);
out:
        sqlite3_finalize(st);
        sqlite3_close(s);
        return n;
}

/* Waits until every store holds `rows` rows. */
static int bench_wait_rows(bench_t *b, int64_t rows, const char *what)
{
        double deadline = bench_now() + BENCH_TIMEOUT_S;
        int64_t n[BENCH_NREUSERS];
        int r, all;

        for (;;) {
                if (bench_alive(b))
                        return -1;
                for (all = 1, r = 0; r < BENCH_NREUSERS; r++) {
                        n[r] = bench_db_count(b, b->dbs[r], NULL);
                        all &= n[r] == rows;
                }
                if (all)
                        return 0;
                if (bench_now() > deadline)
                        return bench_fail(b,
                                          "%s: after %.0f s the stores hold "
                                          "%" PRId64 " and %" PRId64
                                          " rows, expected %" PRId64,
                                          what, BENCH_TIMEOUT_S, n[0], n[1],
                                          rows);
                bench_sleep(0.1);
        }
}

/* Waits for both receipts of erasures [0, upto). */
static int bench_wait_receipts(bench_t *b, size_t upto)
{
        double deadline = bench_now() + BENCH_TIMEOUT_S;
        long want = (long)upto * BENCH_NREUSERS, got;

        for (;;) {
                if (bench_alive(b) || (got = bench_collect(b)) < 0)
                        return -1;
                if (got >= want)
                        return 0;
                if (bench_now() > deadline)
                        return bench_fail(b, "%ld of %ld receipts after %.0f s",
                                          got, want, BENCH_TIMEOUT_S);
                bench_sleep(0.01);
        }
}

/* Waits until the gateway and both agents took `records` records. */
static int bench_wait_records(bench_t *b, size_t records)
{
        double deadline = bench_now() + BENCH_TIMEOUT_S;
        const sb_gateway_stats_t *gs = sb_gateway_stats(b->gw.gw);
        int r, all;

        for (;;) {
                if (bench_alive(b))
                        return -1;
                all = bench_load(&gs->records_in) >= records;
                for (r = 0; r < BENCH_NREUSERS; r++)
                        all &= bench_load(
                                   &sb_reuser_stats(b->ru[r].ru)->records) >=
                               records;
                if (all)
                        return 0;
                if (bench_now() > deadline)
                        return bench_fail(
                            b,
                            "background: after %.0f s the gateway took "
                            "%zu records, the agents stored %zu and %zu, "
                            "of %zu published",
                            BENCH_TIMEOUT_S, bench_load(&gs->records_in),
                            bench_load(&sb_reuser_stats(b->ru[0].ru)->records),
                            bench_load(&sb_reuser_stats(b->ru[1].ru)->records),
                            records);
                bench_sleep(0.1);
        }
}

/* ---- the erasures -------------------------------------------------------- */

/* Publishes erasures [first, first + n) at the erasure rate. */
static int bench_erase(bench_t *b, size_t first, size_t n)
{
        double start = bench_now();
        size_t i;

        for (i = 0; i < n; i++) {
                bench_erasure_t *e = &b->er[first + i];

                bench_sleep_until(start + (double)i / b->o->erasure_rate);
                if (bench_alive(b))
                        return -1;
                e->t0 = bench_now();
                e->t0_wall = sb_now_ms();
                if (sb_holder_rights(b->holder, SB_EV_ERASURE, e->subject, NULL,
                                     e->event_id, b->errstr, sizeof(b->errstr)))
                        return -1;
                e->t_call = bench_now();
                if (json_object_set_new(b->er_index, e->event_id,
                                        json_integer((json_int_t)(first + i))))
                        return bench_fail(b, "out of memory");
                if (bench_collect(b) < 0)
                        return -1;
        }
        return 0;
}

/* ---- figures ------------------------------------------------------------- */

static int bench_cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of v[0..n) (sorted in place), n > 0. */
static void bench_pcts(double *v, size_t n, bench_pcts_t *p)
{
        qsort(v, n, sizeof(*v), bench_cmp_double);
#define BENCH_RANK(q) v[(size_t)ceil((q) / 100.0 * (double)n) - 1]
        p->p50 = BENCH_RANK(50);
        p->p95 = BENCH_RANK(95);
        p->p99 = BENCH_RANK(99);
#undef BENCH_RANK
        p->max = v[n - 1];
}

static int bench_figures(bench_t *b)
{
        size_t n = b->o->erasures, i, w = b->o->warmup;
        double *end = calloc(n, sizeof(double));
        double *applied = calloc(n, sizeof(double));
        double *holder = calloc(n, sizeof(double));
        int r;

        if (!end || !applied || !holder) {
                free(end);
                free(applied);
                free(holder);
                return bench_fail(b, "out of memory");
        }
        for (i = 0; i < n; i++) {
                const bench_erasure_t *e = &b->er[w + i];
                double last = 0;
                int64_t last_applied = 0;

                for (r = 0; r < BENCH_NREUSERS; r++) {
                        if (e->t_ack[r] > last)
                                last = e->t_ack[r];
                        if (e->applied[r] > last_applied)
                                last_applied = e->applied[r];
                }
                end[i] = (last - e->t0) * 1000;
                applied[i] = (double)(last_applied - e->t0_wall);
                holder[i] = (e->t_call - e->t0) * 1000;
        }
        bench_pcts(end, n, &b->res->end);
        bench_pcts(applied, n, &b->res->applied);
        bench_pcts(holder, n, &b->res->holder);
        free(end);
        free(applied);
        free(holder);
        b->res->erasures = n;
        b->res->met = b->res->end.p99 <= BENCH_TARGET_MS;
        return 0;
}

/* ---- verification -------------------------------------------------------- */

static int bench_verify(bench_t *b, size_t bg_published)
{
        const sb_gateway_stats_t *gs = sb_gateway_stats(b->gw.gw);
        size_t erasures = b->er_cnt, records = b->era_cnt + bg_published;
        int64_t bg_rows =
            (int64_t)(bg_published < b->pool_cnt ? bg_published : b->pool_cnt);
        size_t i, bad;
        int r;

        pthread_mutex_lock(&b->rd.mu);
        bad = b->rd.bad;
        pthread_mutex_unlock(&b->rd.mu);
        if (bad)
                return bench_fail(b, "%zu receipts could not be decoded", bad);
        if (gs->records_in != records || gs->rights_in != erasures ||
            gs->quarantined || gs->aborts)
                return bench_fail(b,
                                  "gateway: %zu records, %zu rights events, "
                                  "%zu quarantined, %zu aborts; expected "
                                  "%zu, %zu, 0, 0",
                                  gs->records_in, gs->rights_in,
                                  gs->quarantined, gs->aborts, records,
                                  erasures);
        for (r = 0; r < BENCH_NREUSERS; r++) {
                const sb_reuser_stats_t *st = sb_reuser_stats(b->ru[r].ru);
                sb_pseudonymiser_t *ps;
                int64_t rows;

                if (st->records != records || st->erasures != erasures ||
                    st->rejected || st->receipts_sent != erasures)
                        return bench_fail(
                            b,
                            "%s: %zu records stored, %zu erasures applied, "
                            "%zu receipts sent, %zu messages rejected; "
                            "expected %zu, %zu, %zu, 0",
                            b->reusers[r], st->records, st->erasures,
                            st->receipts_sent, st->rejected, records, erasures,
                            erasures);
                rows = bench_db_count(b, b->dbs[r], NULL);
                if (rows != bg_rows)
                        return bench_fail(b,
                                          "%s: the store holds %" PRId64
                                          " rows; expected the %" PRId64
                                          " background records only",
                                          b->reusers[r], rows, bg_rows);
                ps = sb_pseudonymiser_new(b->key, b->reusers[r], b->dataset);
                if (!ps)
                        return bench_fail(b, "out of memory");
                for (i = 0; i < b->er_cnt; i++) {
                        char p[SB_PSEUDONYM_HEXLEN + 1];

                        sb_pseudonymise(ps, b->er[i].subject,
                                        strlen(b->er[i].subject), p);
                        rows = bench_db_count(b, b->dbs[r], p);
                        if (rows != 0) {
                                sb_pseudonymiser_destroy(ps);
                                return bench_fail(
                                    b,
                                    "%s: %" PRId64 " row(s) of erased "
                                    "subject %s (%s) left",
                                    b->reusers[r], rows, b->er[i].subject, p);
                        }
                }
                sb_pseudonymiser_destroy(ps);
        }
        printf("  checks: the %zu erased subjects have no row left at "
               "either reuser; each store holds exactly the %" PRId64
               " background records; gateway and agents counted every one "
               "of the %zu records and %zu erasures, nothing quarantined "
               "or rejected%s\n",
               b->er_cnt, bg_rows, records, erasures,
               b->foreign ? " (receipts of earlier runs ignored)" : "");
        return 0;
}

/* ---- a run --------------------------------------------------------------- */

static int bench_configs(bench_t *b)
{
        const bench_opts_t *o = b->o;
        char txid[128], client[128];
        json_t *gw;
        int r;

        if (bench_cfg(b, sb_holder_cfg_table, &b->hcfg,
                      json_pack("{s:O, s:s, s:s, s:s}", "kafka",
                                b->kafka_holder, "schemas_dir", b->schemas_dir,
                                "client_id", "bench-holder", "signing_key_file",
                                b->holder_key),
                      "bench holder config"))
                return -1;
        b->hcfg_ok = 1;
        snprintf(txid, sizeof(txid), "sb-holder-%s-load", b->dataset);
        if (bench_cfg(b, sb_holder_cfg_table, &b->lcfg,
                      json_pack("{s:O, s:s, s:s, s:s, s:s}", "kafka",
                                b->kafka_loader, "schemas_dir", b->schemas_dir,
                                "client_id", "bench-loader", "transactional_id",
                                txid, "signing_key_file", b->holder_key),
                      "bench loader config"))
                return -1;
        b->lcfg_ok = 1;
        snprintf(client, sizeof(client), "bench-gw-%s", b->dataset);
        gw = json_pack(
            "{s:O, s:[s], s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kafka",
            b->kafka_gw, "datasets", b->dataset, "schemas_dir", b->schemas_dir,
            "grants_dir", b->grants_dir, "pseudonym_key_file", "(in memory)",
            "client_id", client, "holder_keys_dir", b->holder_keys,
            "signing_key_file", b->gw_key, "audit_key_file", b->audit_key);
        if (gw && o->commit_interval_ms)
                json_object_set_new(gw, "commit_interval_ms",
                                    json_integer(o->commit_interval_ms));
        if (gw && o->commit_records)
                json_object_set_new(gw, "commit_records",
                                    json_integer(o->commit_records));
        if (bench_cfg(b, sb_gateway_cfg_table, &b->gcfg, gw,
                      "bench gateway config"))
                return -1;
        b->gcfg_ok = 1;
        b->res->commit_interval_ms = b->gcfg.commit_interval_ms;
        b->res->commit_records = b->gcfg.commit_records;
        for (r = 0; r < BENCH_NREUSERS; r++) {
                json_t *ru;

                snprintf(b->dbs[r], sizeof(b->dbs[r]), "%s/%s.db", b->dir,
                         b->reusers[r]);
                ru = json_pack("{s:O, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                               "kafka", b->kafka_ru[r], "reuser", b->reusers[r],
                               "dataset", b->dataset, "grant_file",
                               b->grant_paths[r], "schemas_dir", b->schemas_dir,
                               "database", b->dbs[r], "signing_key_file",
                               b->signkeys[r], "client_id", b->reusers[r],
                               "gateway_keys_dir", b->gw_keys);
                if (ru && o->batch_records)
                        json_object_set_new(ru, "batch_records",
                                            json_integer(o->batch_records));
                if (bench_cfg(b, sb_reuser_cfg_table, &b->rcfg[r], ru,
                              "bench reuser config"))
                        return -1;
                b->rcfg_ok[r] = 1;
        }
        b->res->batch_records = b->rcfg[0].batch_records;
        return 0;
}

static int bench_clients(bench_t *b)
{
        int r;

        b->cat = sb_catalog_load(b->schemas_dir, b->errstr, sizeof(b->errstr));
        if (!b->cat)
                return -1;
        b->holder =
            sb_holder_new(&b->hcfg, b->dataset, b->errstr, sizeof(b->errstr));
        if (!b->holder)
                return -1;
        b->loader.b = b;
        b->loader.h =
            sb_holder_new(&b->lcfg, b->dataset, b->errstr, sizeof(b->errstr));
        if (!b->loader.h)
                return -1;
        b->gw.name = "gateway";
        b->gw.gw =
            sb_gateway_new(&b->gcfg, b->key, b->errstr, sizeof(b->errstr));
        if (!b->gw.gw)
                return -1;
        for (r = 0; r < BENCH_NREUSERS; r++) {
                b->ru[r].name = b->reusers[r];
                b->ru[r].ru =
                    sb_reuser_new(&b->rcfg[r], b->errstr, sizeof(b->errstr));
                if (!b->ru[r].ru)
                        return -1;
        }
        if (bench_agent_start(b, &b->gw))
                return -1;
        for (r = 0; r < BENCH_NREUSERS; r++)
                if (bench_agent_start(b, &b->ru[r]))
                        return -1;
        return bench_reader_start(b);
}

static void bench_print_pcts(const char *what, const bench_pcts_t *p)
{
        printf("  %-40s p50 %6.1f  p95 %6.1f  p99 %6.1f  max %6.1f ms\n", what,
               p->p50, p->p95, p->p99, p->max);
}

static int bench_measure(bench_t *b)
{
        const bench_opts_t *o = b->o;
        bench_result_t *res = b->res;
        size_t pub0, pub1, bg_total;
        double t0, t1, cpu0, cpu1;
        FILE *in;
        sb_holder_stats_t hs;
        int rc;

        /* 1. The erasure subjects' records, in both stores. */
        in = fmemopen(b->era, b->era_len, "r");
        if (!in)
                return bench_fail(b, "fmemopen: %s", strerror(errno));
        rc = sb_holder_publish(b->loader.h, in, "erasure subjects", NULL, &hs,
                               b->errstr, sizeof(b->errstr));
        fclose(in);
        if (rc || bench_wait_rows(b, (int64_t)b->era_cnt,
                                  "records of the erasure subjects"))
                return -1;
        printf("  %zu records of %zu subjects to erase are in both stores\n",
               b->era_cnt, b->er_cnt);

        /* 2. Warm-up erasures. */
        if (o->warmup &&
            (bench_erase(b, 0, o->warmup) || bench_wait_receipts(b, o->warmup)))
                return -1;

        /* 3. Background traffic. */
        if ((rc = pthread_create(&b->loader.thr, NULL, bench_loader_body,
                                 &b->loader)))
                return bench_fail(b, "pthread_create: %s", strerror(rc));
        b->loader.started = 1;
        bench_sleep(BENCH_LOAD_WARMUP_S);

        /* 4. The measured erasures. */
        t0 = bench_now();
        cpu0 = bench_cpu_s();
        pub0 = bench_load(&b->loader.published);
        if (bench_erase(b, o->warmup, o->erasures))
                return -1;
        t1 = bench_now();
        cpu1 = bench_cpu_s();
        pub1 = bench_load(&b->loader.published);
        if (bench_wait_receipts(b, b->er_cnt))
                return -1;

        /* Stop the background, let it drain, stop the agents. */
        b->loader.stop = 1;
        pthread_join(b->loader.thr, NULL);
        b->loader.started = 0;
        if (b->loader.err)
                return bench_fail(b, "background loader: %s", b->loader.errstr);
        bg_total = b->loader.published;
        if (bench_wait_records(b, b->era_cnt + bg_total) ||
            bench_wait_rows(
                b, (int64_t)(bg_total < b->pool_cnt ? bg_total : b->pool_cnt),
                "background records"))
                return -1;
        if (bench_agent_stop(b, &b->gw))
                return -1;
        for (rc = 0; rc < BENCH_NREUSERS; rc++)
                if (bench_agent_stop(b, &b->ru[rc]))
                        return -1;
        if (bench_collect(b) < 0)
                return -1;

        res->bg_rate = (double)(pub1 - pub0) / (t1 - t0);
        res->erasure_rate = (double)o->erasures / (t1 - t0);
        res->cores = (cpu1 - cpu0) / (t1 - t0);
        res->bg_records = bg_total;
        if (bench_figures(b))
                return -1;
        printf("  load: background %.0f records/s asked, %.0f achieved while "
               "the erasures ran (%zu records in all, on %zu subjects); %zu "
               "erasures at %.1f/s (%.0f asked) after %zu warm-up ones; "
               "process CPU %.2f cores of %ld\n",
               b->rate, res->bg_rate, bg_total, (size_t)BENCH_POOL_SUBJECTS,
               o->erasures, res->erasure_rate, o->erasure_rate, o->warmup,
               res->cores, sysconf(_SC_NPROCESSORS_ONLN));
        bench_print_pcts("holder to both receipts (upper bound):", &res->end);
        bench_print_pcts("holder to applied_at (cross-check):", &res->applied);
        bench_print_pcts("holder call (publish + commit):", &res->holder);
        printf("  target p99 <= %.0f ms (real broker, 10k records/s): %s on "
               "this cluster\n",
               BENCH_TARGET_MS, res->met ? "met" : "NOT met");
        return bench_verify(b, bg_total);
}

static int bench_rm_entry(const char *path, const struct stat *st, int flag,
                          struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void bench_release(bench_t *b)
{
        int r;

        if (b->loader.started) {
                b->loader.stop = 1;
                pthread_join(b->loader.thr, NULL);
        }
        bench_agent_stop(b, &b->gw);
        for (r = 0; r < BENCH_NREUSERS; r++)
                bench_agent_stop(b, &b->ru[r]);
        if (b->rd.started) {
                b->rd.stop = 1;
                pthread_join(b->rd.thr, NULL);
        }
        if (b->rd.rk) {
                rd_kafka_consumer_close(b->rd.rk);
                rd_kafka_destroy(b->rd.rk);
        }
        free(b->rd.v);
        pthread_mutex_destroy(&b->rd.mu);
        sb_gateway_destroy(b->gw.gw);
        for (r = 0; r < BENCH_NREUSERS; r++)
                sb_reuser_destroy(b->ru[r].ru);
        sb_holder_destroy(b->loader.h);
        sb_holder_destroy(b->holder);
        if (b->hcfg_ok)
                sb_config_release(sb_holder_cfg_table, &b->hcfg);
        if (b->lcfg_ok)
                sb_config_release(sb_holder_cfg_table, &b->lcfg);
        if (b->gcfg_ok)
                sb_config_release(sb_gateway_cfg_table, &b->gcfg);
        for (r = 0; r < BENCH_NREUSERS; r++) {
                if (b->rcfg_ok[r])
                        sb_config_release(sb_reuser_cfg_table, &b->rcfg[r]);
                json_decref(b->kafka_ru[r]);
        }
        if (b->reader_ok)
                sb_config_release(sb_kafka_cfg_table, &b->reader_kc);
        json_decref(b->kafka_holder);
        json_decref(b->kafka_loader);
        json_decref(b->kafka_gw);
        json_decref(b->kafka_reader);
        sb_catalog_destroy(b->cat);
        sb_mockenv_destroy(b->env);
#ifdef SB_BENCH_BROKER
        if (b->w_ok)
                sb_world_release(&b->w);
#endif
        sb_key_destroy(b->key);
        json_decref(b->er_index);
        free(b->er);
        free(b->pool);
        free(b->pool_off);
        free(b->era);
        if (b->dir[0] &&
            nftw(b->dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
                fprintf(stderr, "could not remove %s\n", b->dir);
}

static int bench_run(const bench_opts_t *o, bench_result_t *res, int real)
{
        bench_t b;
        int rc = -1;

        memset(&b, 0, sizeof(b));
        b.o = o;
        b.res = res;
        pthread_mutex_init(&b.rd.mu, NULL);
        res->cluster = real ? "real" : "mock";
        /* See BENCH_MOCK_RATE. */
        b.rate = o->rate >= 0 ? o->rate : real ? BENCH_RATE : BENCH_MOCK_RATE;
        res->rate_asked = b.rate;
        res->nagle = o->nagle;
        snprintf(b.dir, sizeof(b.dir), "%s/sb-erasure-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(b.dir)) {
                b.dir[0] = '\0';
                bench_fail(&b, "cannot create a temporary directory: %s",
                           strerror(errno));
                goto out;
        }
        b.key = sb_key_random();
        if (!b.key) {
                bench_fail(&b, "out of memory");
                goto out;
        }
        if (bench_records(&b))
                goto out;
#ifdef SB_BENCH_BROKER
        if (real ? bench_real_setup(&b) : bench_mock_setup(&b))
                goto out;
#else
        if (real || bench_mock_setup(&b))
                goto out;
#endif
        res->partitions = b.partitions;
        if (bench_signkeys(&b) || bench_configs(&b))
                goto out;
        if (real)
                printf("erasure_latency on the real broker (%s): dataset %s, "
                       "reusers %s and %s, 3 partitions per topic\n",
                       getenv("SB_BROKER_DIR"), b.dataset, b.reusers[0],
                       b.reusers[1]);
        else
                printf("erasure_latency on the mock cluster (3 brokers, in "
                       "this process): dataset %s, reusers %s and %s, %d "
                       "partitions per data topic (5 MiB mock limit)\n",
                       b.dataset, b.reusers[0], b.reusers[1], b.partitions);
        printf("  settings: gateway commit_interval_ms %lld, commit_records "
               "%lld; reuser batch_records %lld; every client: %s",
               res->commit_interval_ms, res->commit_records, res->batch_records,
               o->nagle ? "socket.nagle.disable false (Nagle on, --nagle on)"
                        : "socket.nagle.disable true (sharebus default)");
        if (real)
                printf(", Kafka's defaults otherwise\n");
        else
                printf(", fetch.wait.max.ms %d, "
                       "max.in.flight.requests.per.connection %d "
                       "(BENCH_MOCK_FETCH_WAIT, BENCH_MOCK_NAGLE)\n",
                       o->fetch_wait_ms, o->max_in_flight);
        if (!real)
                printf("  mock caveat: no last stable offset in the 2.0.2 "
                       "mock, so the reusers see the gateway's output before "
                       "its commit: the wait for commit_interval_ms is not "
                       "in this figure\n");
        if (bench_clients(&b) || bench_measure(&b))
                goto out;
        res->ran = 1;
        rc = 0;
out:
        if (rc) {
                fprintf(stderr, "erasure_latency (%s): %s\n", res->cluster,
                        b.errstr);
                res->error = 1;
                snprintf(res->skipped, sizeof(res->skipped), "%.500s",
                         b.errstr);
        }
        bench_release(&b);
        return rc;
}

/* ---- main ---------------------------------------------------------------- */

/* One decimal: the figures are not more precise than that. */
static json_t *bench_ms(double v)
{
        return json_real(round(v * 10) / 10);
}

/* The JSON object of one cluster's run. */
static json_t *bench_json(const bench_result_t *r)
{
        json_t *j = json_pack("{s:s, s:s}", "bench", "erasure_latency",
                              "cluster", r->cluster);

        if (!j)
                return NULL;
        if (!r->ran) {
                json_object_set_new(j, r->error ? "error" : "skipped",
                                    json_string(r->skipped));
                return j;
        }
        json_object_set_new(j, "erasures",
                            json_integer((json_int_t)r->erasures));
        json_object_set_new(j, "background_rate",
                            json_integer((json_int_t)round(r->bg_rate)));
        json_object_set_new(j, "background_rate_asked",
                            json_integer((json_int_t)round(r->rate_asked)));
        json_object_set_new(j, "background_records",
                            json_integer((json_int_t)r->bg_records));
        json_object_set_new(j, "erasure_rate", bench_ms(r->erasure_rate));
        json_object_set_new(j, "partitions", json_integer(r->partitions));
        json_object_set_new(j, "commit_interval_ms",
                            json_integer(r->commit_interval_ms));
        json_object_set_new(j, "commit_records",
                            json_integer(r->commit_records));
        json_object_set_new(j, "batch_records", json_integer(r->batch_records));
        if (r->fetch_wait_ms)
                json_object_set_new(j, "fetch_wait_max_ms",
                                    json_integer(r->fetch_wait_ms));
        if (r->max_in_flight)
                json_object_set_new(j, "max_in_flight",
                                    json_integer(r->max_in_flight));
        json_object_set_new(j, "socket_nagle_disable", json_boolean(!r->nagle));
        json_object_set_new(j, "p50_ms", bench_ms(r->end.p50));
        json_object_set_new(j, "p95_ms", bench_ms(r->end.p95));
        json_object_set_new(j, "p99_ms", bench_ms(r->end.p99));
        json_object_set_new(j, "max_ms", bench_ms(r->end.max));
        json_object_set_new(j, "applied_p50_ms", bench_ms(r->applied.p50));
        json_object_set_new(j, "applied_p99_ms", bench_ms(r->applied.p99));
        json_object_set_new(j, "holder_p50_ms", bench_ms(r->holder.p50));
        json_object_set_new(j, "holder_p99_ms", bench_ms(r->holder.p99));
        json_object_set_new(j, "cpu_cores", bench_ms(r->cores));
        json_object_set_new(j, "target_p99_ms", json_real(BENCH_TARGET_MS));
        json_object_set_new(j, "met", json_boolean(r->met));
        return j;
}

static void bench_print_json(json_t *j)
{
        char *s =
            j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(8)) : NULL;

        printf("%s\n", s ? s : "{\"bench\":\"erasure_latency\"}");
        free(s);
}

static void bench_usage(FILE *fp)
{
        fprintf(fp,
                "usage: erasure_latency [--erasures N] [--warmup-erasures W] "
                "[--erasure-rate E] [--rate R] [--cluster mock|real|both] "
                "[--commit-interval-ms MS] [--commit-records N] "
                "[--batch-records N] [--partitions P] [--fetch-wait-ms F] "
                "[--max-in-flight M] [--nagle on|off]\n");
}

static int bench_args(bench_opts_t *o, int argc, char **argv)
{
        int i;

        memset(o, 0, sizeof(*o));
        o->erasures = 1000;
        o->warmup = 20;
        o->erasure_rate = 50;
        o->rate = -1; /* BENCH_RATE, BENCH_MOCK_RATE */
        o->mock = o->real = 1;
        o->fetch_wait_ms = BENCH_MOCK_FETCH_WAIT_MS;
        o->max_in_flight = 1;
        for (i = 1; i < argc; i++) {
                char *end;
                double v;

                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        bench_usage(stdout);
                        exit(0);
                }
                if (i + 1 >= argc) {
                        bench_usage(stderr);
                        return -1;
                }
                if (!strcmp(argv[i], "--nagle")) {
                        const char *c = argv[++i];

                        if (strcmp(c, "on") && strcmp(c, "off")) {
                                fprintf(stderr,
                                        "erasure_latency: --nagle '%s': use "
                                        "on (librdkafka's default) or off\n",
                                        c);
                                return -1;
                        }
                        o->nagle = !strcmp(c, "on");
                        continue;
                }
                if (!strcmp(argv[i], "--cluster")) {
                        const char *c = argv[++i];

                        o->mock = !strcmp(c, "mock") || !strcmp(c, "both");
                        o->real = !strcmp(c, "real") || !strcmp(c, "both");
                        if (!o->mock && !o->real) {
                                fprintf(stderr,
                                        "erasure_latency: --cluster '%s': "
                                        "use mock, real or both\n",
                                        c);
                                return -1;
                        }
                        continue;
                }
                v = strtod(argv[i + 1], &end);
                if (*end || end == argv[i + 1] || v != v)
                        v = -1;
                if (!strcmp(argv[i], "--erasures") && v >= 1 && v <= 1e6) {
                        o->erasures = (size_t)v;
                } else if (!strcmp(argv[i], "--warmup-erasures") && v >= 0 &&
                           v <= 1e4) {
                        o->warmup = (size_t)v;
                } else if (!strcmp(argv[i], "--erasure-rate") && v > 0 &&
                           v <= 10000) {
                        o->erasure_rate = v;
                } else if (!strcmp(argv[i], "--rate") && v >= 0 && v <= 1e6) {
                        o->rate = v;
                } else if (!strcmp(argv[i], "--commit-interval-ms") && v >= 1 &&
                           v <= 60000) {
                        o->commit_interval_ms = (long long)v;
                } else if (!strcmp(argv[i], "--commit-records") && v >= 1 &&
                           v <= 1e6) {
                        o->commit_records = (long long)v;
                } else if (!strcmp(argv[i], "--batch-records") && v >= 1 &&
                           v <= 1e5) {
                        o->batch_records = (long long)v;
                } else if (!strcmp(argv[i], "--partitions") && v >= 1 &&
                           v <= 1000) {
                        o->partitions = (int)v;
                } else if (!strcmp(argv[i], "--fetch-wait-ms") && v >= 1 &&
                           v <= 10000) {
                        o->fetch_wait_ms = (int)v;
                } else if (!strcmp(argv[i], "--max-in-flight") && v >= 1 &&
                           v <= 5) {
                        o->max_in_flight = (int)v;
                } else {
                        fprintf(stderr,
                                "erasure_latency: bad option %s %s (erasures "
                                "1-1000000, warmup-erasures 0-10000, "
                                "erasure-rate 0-10000, rate 0-1000000, "
                                "commit-interval-ms 1-60000, commit-records "
                                "1-1000000, batch-records 1-100000, "
                                "partitions 1-1000, fetch-wait-ms 1-10000, "
                                "max-in-flight 1-5)\n",
                                argv[i], argv[i + 1]);
                        bench_usage(stderr);
                        return -1;
                }
                i++;
        }
        return 0;
}

int main(int argc, char **argv)
{
        bench_result_t mock, real;
        bench_opts_t o;
        char errstr[512];
        json_t *all, *jm, *jr;
        int rc = 0, avail = 0;

        memset(&mock, 0, sizeof(mock));
        memset(&real, 0, sizeof(real));
        mock.cluster = "mock";
        real.cluster = "real";
        if (bench_args(&o, argc, argv))
                return 2;
        /* stdout may be a pipe: keep its lines in order with the clients'
         * logs on stderr. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        /* Each erasure applied is a notice line per agent: keep warnings. */
        sb_log_set_level(SB_LOG_WARN);
        if (sb_crypto_init(errstr, sizeof(errstr))) {
                fprintf(stderr, "erasure_latency: %s\n", errstr);
                return 1;
        }

        if (o.mock) {
                if (bench_run(&o, &mock, 0))
                        rc = 1;
        } else {
                snprintf(mock.skipped, sizeof(mock.skipped), "--cluster real");
        }
        if (o.real) {
#ifdef SB_BENCH_BROKER
                avail =
                    bench_real_available(real.skipped, sizeof(real.skipped));
#else
                snprintf(real.skipped, sizeof(real.skipped),
                         "built without tests/kafka (-DSB_KAFKA_TESTS=OFF)");
#endif
                if (avail < 0) {
                        real.error = 1;
                        rc = 1;
                }
                if (avail > 0) {
                        real.skipped[0] = '\0';
                        if (bench_run(&o, &real, 1))
                                rc = 1;
                }
        } else {
                snprintf(real.skipped, sizeof(real.skipped), "--cluster mock");
        }
        if (avail <= 0)
                printf("real broker: %s (%s)\n",
                       avail < 0 ? "NOT run" : "skipped", real.skipped);

        jm = bench_json(&mock);
        jr = bench_json(&real);
        bench_print_json(jm);
        bench_print_json(jr);
        all = json_pack("{s:s, s:[O, O], s:f, s:O}", "bench", "erasure_latency",
                        "runs", jm, jr, "target_p99_ms", BENCH_TARGET_MS, "met",
                        real.ran ? json_boolean(real.met) : json_null());
        bench_print_json(all);
        json_decref(all);
        json_decref(jm);
        json_decref(jr);
        return rc;
}
