/*
 * DESIGN.md §7's required proof, on the real broker (CNIL R6.2-05; GDPR
 * art. 17-21): a stream of records and rights events flows while the
 * gateway and both reuser agents, each its own `sharebus` process, are
 * killed with SIGKILL at random points and restarted, at least 21 times.
 * Afterwards:
 *   - each reuser's store holds exactly the rows a reference model of the
 *     rights semantics says it must (no record lost, none of an erased,
 *     objecting or withdrawn person), and marks the restricted persons;
 *   - each reuser stream, read as read_committed, carries every record key
 *     at most once (the gateway's transactions: no duplicate after any
 *     crash) and no record of a person after that person's objection.
 * The random seed is printed; SB_SEED=<n> replays a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "sample.h"
#include "world.h"

#define DATASET   "crashtest"
#define SUBJECTS  40
#define BATCHES   36
#define MIN_KILLS 21
#define NREUSERS  2

static const char *reusers[NREUSERS] = {"crash-lab", "crash-city"};
static const char *purposes[NREUSERS] = {"research", "housing"};

/* A child `sharebus` process. */
typedef struct proc_s {
        const char *name;
        char config[600];
        char log[600];
        const char *args[8];
        pid_t pid;
        int kills;
} proc_t;

static const char *sb_bin(void)
{
        const char *b = getenv("SB_BIN");

        SB_CHECK(b && *b, "SB_BIN is not set");
        return b;
}

static void proc_start(proc_t *p)
{
        pid_t pid = fork();

        SB_CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                        close(fd);
                }
                execv(sb_bin(), (char *const *)p->args);
                _exit(127);
        }
        p->pid = pid;
}

static void proc_tail(const proc_t *p)
{
        char cmd[700];

        snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", p->log);
        if (system(cmd) != 0)
                fprintf(stderr, "(no log)\n");
}

/* Fails if the process ended by itself: only this test may stop it. */
static void proc_check_alive(proc_t *p)
{
        int status;

        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
                proc_tail(p);
                SB_TEST_FAIL("%s exited by itself (status %d)", p->name,
                             status);
        }
}

static void proc_kill9(proc_t *p)
{
        proc_check_alive(p);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->kills++;
}

static void proc_stop(proc_t *p)
{
        int i, status;

        kill(p->pid, SIGTERM);
        for (i = 0; i < 150; i++) {
                if (waitpid(p->pid, &status, WNOHANG) == p->pid)
                        return;
                usleep(100 * 1000);
        }
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
}

static json_t *kafka_json(const sb_kafka_cfg_t *kc)
{
        /* A killed member is noticed after the session timeout: keep it
         * at the broker's minimum so restarts rebalance quickly. */
        return json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "bootstrap_servers",
            kc->bootstrap_servers, "security_protocol", "ssl",
            "ssl_ca_location", kc->ssl_ca_location, "ssl_certificate_location",
            kc->ssl_certificate_location, "ssl_key_location",
            kc->ssl_key_location, "properties", "session.timeout.ms", "6000");
}

static void write_json(const char *path, json_t *j)
{
        SB_CHECK(json_dump_file(j, path, JSON_INDENT(2)) == 0, "write %s",
                 path);
        json_decref(j);
}

/* schemas/ copied with the dataset renamed: this test's topics, state and
 * offsets are its own, whatever other tests did on the shared broker. */
static void make_schemas(sb_world_t *w)
{
        char cmd[1400];

        snprintf(w->schemas_dir, sizeof(w->schemas_dir), "%s/schemas", w->dir);
        snprintf(cmd, sizeof(cmd),
                 "mkdir -p '%s' && cp '%s'/rights.avsc '%s'/receipt.avsc '%s' "
                 "&& sed -e 's/\"sb.dataset\": \"beneficiaries\"/\"sb.dataset\""
                 ": \"" DATASET "\"/' -e 's/\"name\": \"Beneficiary\"/\"name\""
                 ": \"CrashBeneficiary\"/' '%s'/beneficiaries.avsc > "
                 "'%s'/crash.avsc",
                 w->schemas_dir, SB_SCHEMAS_DIR, SB_SCHEMAS_DIR, w->schemas_dir,
                 SB_SCHEMAS_DIR, w->schemas_dir);
        SB_CHECK(system(cmd) == 0, "%s", cmd);
}

/* The reference model: what each reuser must hold in the end. */
typedef struct model_s {
        json_t *rows[NREUSERS]; /* "subject/record id" -> subject */
        int objected[NREUSERS][SUBJECTS];
        int withdrawn[SUBJECTS];
        int restricted[SUBJECTS];
        int received[NREUSERS][SUBJECTS]; /* notices reach only them */
} model_t;

static int subject_index(const char *subject)
{
        return atoi(subject + 4); /* "BEN-0000012" */
}

static void model_drop(model_t *m, int r, const char *subject)
{
        const char *k;
        json_t *v;
        void *tmp;

        json_object_foreach_safe(m->rows[r], tmp, k,
                                 v) if (!strcmp(json_string_value(v), subject))
            json_object_del(m->rows[r], k);
        m->received[r][subject_index(subject)] = 0;
}

static void model_record(model_t *m, const char *subject, const char *rid)
{
        int s = subject_index(subject), r;
        char key[300];

        snprintf(key, sizeof(key), "%s/%s", subject, rid);
        for (r = 0; r < NREUSERS; r++) {
                if (m->objected[r][s] || m->withdrawn[s] || m->restricted[s])
                        continue;
                json_object_set_new(m->rows[r], key, json_string(subject));
                m->received[r][s] = 1;
        }
}

static void model_rights(model_t *m, sb_event_type_t t, const char *subject,
                         const char *purpose)
{
        int s = subject_index(subject), r;

        for (r = 0; r < NREUSERS; r++) {
                switch (t) {
                case SB_EV_ERASURE:
                        model_drop(m, r, subject);
                        break;
                case SB_EV_OBJECTION:
                        if (!purpose || !strcmp(purpose, purposes[r])) {
                                m->objected[r][s] = 1;
                                model_drop(m, r, subject);
                        }
                        break;
                case SB_EV_CONSENT_WITHDRAWN:
                        m->withdrawn[s] = 1;
                        model_drop(m, r, subject);
                        break;
                default:
                        break;
                }
        }
        if (t == SB_EV_CONSENT_GIVEN)
                m->withdrawn[s] = 0;
        if (t == SB_EV_RESTRICTION)
                m->restricted[s] = 1;
        if (t == SB_EV_RESTRICTION_LIFTED)
                m->restricted[s] = 0;
}

/* Rights events planned for batch b: (type, first subject, count). */
static const struct {
        int batch;
        sb_event_type_t type;
        int first, cnt;
        const char *purpose;
} plan[] = {
    {4, SB_EV_OBJECTION, 0, 4, "research"},
    {7, SB_EV_ERASURE, 8, 4, NULL},
    {10, SB_EV_RESTRICTION, 16, 5, NULL},
    {13, SB_EV_CONSENT_WITHDRAWN, 24, 5, NULL},
    {17, SB_EV_OBJECTION, 4, 2, "housing"},
    {20, SB_EV_RESTRICTION_LIFTED, 16, 3, NULL},
    {23, SB_EV_CONSENT_GIVEN, 24, 2, NULL},
    {26, SB_EV_ERASURE, 30, 3, NULL},
    {29, SB_EV_OBJECTION, 33, 2, NULL},
};

static void publish_batch(sb_holder_t *h, model_t *m, int b)
{
        char *text = NULL, errstr[1024], id[37], subject[16];
        size_t len = 0, i;
        sb_holder_stats_t hs;
        FILE *mem, *in;
        char *line, *save = NULL;
        int k;

        /* Rights first, then the batch's records. */
        for (i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
                json_t *p;

                if (plan[i].batch != b)
                        continue;
                p = plan[i].purpose ? json_pack("[s]", plan[i].purpose) : NULL;
                for (k = plan[i].first; k < plan[i].first + plan[i].cnt; k++) {
                        sb_sample_subject_id((size_t)k, subject);
                        SB_OK_OR_FAIL(sb_holder_rights(h, plan[i].type, subject,
                                                       p, id, errstr,
                                                       sizeof(errstr)),
                                      errstr);
                        model_rights(m, plan[i].type, subject, plan[i].purpose);
                }
                json_decref(p);
        }
        mem = open_memstream(&text, &len);
        sb_sample_write(mem, SUBJECTS, 1000 + (uint64_t)b);
        fclose(mem);
        in = fmemopen(text, len, "r");
        SB_OK_OR_FAIL(sb_holder_publish(h, in, "batch", NULL, &hs, errstr,
                                        sizeof(errstr)),
                      errstr);
        fclose(in);
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_t *rec = json_loads(line, 0, NULL);

                SB_CHECK(rec, "sample line");
                model_record(
                    m,
                    json_string_value(json_object_get(rec, "beneficiary_id")),
                    json_string_value(json_object_get(rec, "file_id")));
                json_decref(rec);
        }
        free(text);
}

/* "pseudonym/record id" rows the store holds, or NULL if not readable. */
static json_t *store_rows(const char *db, const char *sql)
{
        sqlite3 *s;
        sqlite3_stmt *st;
        json_t *out;

        if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                sqlite3_close(s);
                return NULL;
        }
        sqlite3_busy_timeout(s, 5000);
        if (sqlite3_prepare_v2(s, sql, -1, &st, NULL) != SQLITE_OK) {
                sqlite3_close(s);
                return NULL;
        }
        out = json_object();
        while (sqlite3_step(st) == SQLITE_ROW)
                json_object_set_new(
                    out, (const char *)sqlite3_column_text(st, 0), json_true());
        sqlite3_finalize(st);
        sqlite3_close(s);
        return out;
}

/* The model's rows of reuser r with pseudonyms, as the store keys them. */
static json_t *expected_rows(const model_t *m, const sb_key_t *key, int r)
{
        sb_pseudonymiser_t *ps = sb_pseudonymiser_new(key, reusers[r], DATASET);
        char p[SB_PSEUDONYM_HEXLEN + 1], k[400];
        json_t *out = json_object(), *v;
        const char *sk;

        json_object_foreach(m->rows[r], sk, v)
        {
                const char *subject = json_string_value(v);

                sb_pseudonymise(ps, subject, strlen(subject), p);
                snprintf(k, sizeof(k), "%s/%s", p, strchr(sk, '/') + 1);
                json_object_set_new(out, k, json_true());
        }
        sb_pseudonymiser_destroy(ps);
        return out;
}

static json_t *expected_restricted(const model_t *m, const sb_key_t *key, int r)
{
        sb_pseudonymiser_t *ps = sb_pseudonymiser_new(key, reusers[r], DATASET);
        char p[SB_PSEUDONYM_HEXLEN + 1], subject[16];
        json_t *out = json_object();
        int s;

        for (s = 0; s < SUBJECTS; s++) {
                if (!m->restricted[s] || !m->received[r][s])
                        continue;
                sb_sample_subject_id((size_t)s, subject);
                sb_pseudonymise(ps, subject, strlen(subject), p);
                json_object_set_new(out, p, json_true());
        }
        sb_pseudonymiser_destroy(ps);
        return out;
}

/* Reads reuser r's stream: no key twice, nothing after an objection. */
static void check_stream(sb_world_t *w, const sb_kafka_cfg_t *kc, int r,
                         long *upserts)
{
        rd_kafka_conf_t *conf;
        rd_kafka_topic_partition_list_t *parts;
        json_t *seen = json_object(), *objected = json_object();
        char errstr[512], topic[200], key[400];
        rd_kafka_t *rk;
        int p, eof, idle;
        long dup = 0, after = 0;

        (void)w;
        snprintf(topic, sizeof(topic), "sb.out.%s." DATASET, reusers[r]);
        conf = sb_kafka_conf_new(kc, "crash-check", errstr, sizeof(errstr));
        SB_CHECK(conf, "%s", errstr);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        snprintf(key, sizeof(key), "sb-reuser-%s", reusers[r]);
        rd_kafka_conf_set(conf, "group.id", key, NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "%s", errstr);
        *upserts = 0;
        for (p = 0; p < 3; p++) {
                parts = rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
                rd_kafka_assign(rk, parts);
                rd_kafka_topic_partition_list_destroy(parts);
                for (eof = 0, idle = 0; !eof && idle < 200;) {
                        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                        rd_kafka_headers_t *h;
                        const void *val;
                        size_t len;
                        char type[64] = "", ps[64];

                        if (!m) {
                                idle++;
                                continue;
                        }
                        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                eof = 1;
                        else if (m->err)
                                SB_TEST_FAIL("%s: %s", topic,
                                             rd_kafka_message_errstr(m));
                        if (m->err || !m->payload) {
                                rd_kafka_message_destroy(m);
                                continue;
                        }
                        snprintf(key, sizeof(key), "%.*s", (int)m->key_len,
                                 (const char *)m->key);
                        snprintf(ps, sizeof(ps), "%.*s", (int)strcspn(key, "/"),
                                 key);
                        if (!rd_kafka_message_headers(m, &h) &&
                            !rd_kafka_header_get_last(h, "ce_type", &val, &len))
                                snprintf(type, sizeof(type), "%.*s", (int)len,
                                         (const char *)val);
                        if (!strcmp(type, "sharebus.record.upsert")) {
                                (*upserts)++;
                                dup += json_object_get(seen, key) != NULL;
                                after += json_object_get(objected, ps) != NULL;
                                json_object_set_new(seen, key, json_true());
                        } else if (!strcmp(type, "sharebus.rights.objection")) {
                                json_object_set_new(objected, ps, json_true());
                        }
                        rd_kafka_message_destroy(m);
                }
                SB_CHECK(eof, "%s [%d]: end not reached", topic, p);
        }
        rd_kafka_destroy(rk);
        SB_CHECK_INT(0, dup, "record keys delivered twice on the stream");
        SB_CHECK_INT(0, after, "records shared after the person's objection");
        printf("%s stream: %ld records, each key once, %zu objecting "
               "persons, none shared after objecting\n",
               reusers[r], *upserts, json_object_size(objected));
        json_decref(seen);
        json_decref(objected);
}

static int same_keys(json_t *a, json_t *b)
{
        const char *k;
        json_t *v;

        if (!a || !b || json_object_size(a) != json_object_size(b))
                return 0;
        json_object_foreach(a, k, v) if (!json_object_get(b, k)) return 0;
        return 1;
}

int main(void)
{
        sb_kafka_cfg_t holder_kc, gw_kc, ru_kc[NREUSERS];
        proc_t procs[1 + NREUSERS];
        char errstr[1024], path[700], keyfile[600], db[NREUSERS][600];
        const char *seed_env = getenv("SB_SEED");
        unsigned seed = seed_env ? (unsigned)atoi(seed_env)
                                 : (unsigned)time(NULL) ^ (unsigned)getpid();
        sb_holder_cfg_t hcfg;
        sb_holder_t *h;
        sb_key_t *key;
        sb_world_t w;
        model_t m;
        int b, r, kills = 0, converged = 0, i;
        long upserts;

        printf("seed %u (SB_SEED=%u replays this run)\n", seed, seed);
        srand(seed);
        memset(&m, 0, sizeof(m));
        for (r = 0; r < NREUSERS; r++)
                m.rows[r] = json_object();

        sb_world_init(&w);
        make_schemas(&w);
        for (r = 0; r < NREUSERS; r++) {
                snprintf(path, sizeof(path), "%s.json", reusers[r]);
                snprintf(errstr, sizeof(errstr),
                         "{\"id\": \"g-%s\", \"reuser\": \"%s\", \"dataset\": "
                         "\"" DATASET "\", \"purposes\": [\"%s\"], "
                         "\"legal_basis\": \"gdpr-6-1-e\", \"status\": "
                         "\"approved\", \"fields\": {\"postcode\": \"keep\", "
                         "\"benefit\": \"keep\"}}",
                         reusers[r], reusers[r], purposes[r]);
                sb_world_grant(&w, path, errstr);
        }
        sb_world_platform(&w, "\"gateway\": [\"crash-gw.g1\"], "
                              "\"datasets\": {\"" DATASET "\": "
                              "{\"holders\": [\"crash-holder.g1\"]}}, "
                              "\"reusers\": {\"crash-lab\": {\"principals\": "
                              "[\"crash-lab.g1\"]}, \"crash-city\": "
                              "{\"principals\": [\"crash-city.g1\"]}}");
        sb_world_apply(&w);
        sb_world_cert(&w, "crash-holder.g1", NULL, &holder_kc);
        sb_world_cert(&w, "crash-gw.g1", NULL, &gw_kc);
        for (r = 0; r < NREUSERS; r++) {
                snprintf(path, sizeof(path), "%s.g1", reusers[r]);
                sb_world_cert(&w, path, NULL, &ru_kc[r]);
        }

        /* The gateway's pseudonymisation key, kept to check pseudonyms. */
        key = sb_key_random();
        snprintf(keyfile, sizeof(keyfile), "%s/pseudonym.key", w.dir);
        SB_OK_OR_FAIL(sb_key_save(key, keyfile, errstr, sizeof(errstr)),
                      errstr);

        memset(procs, 0, sizeof(procs));
        procs[0].name = "gateway";
        snprintf(procs[0].config, sizeof(procs[0].config), "%s/gateway.json",
                 w.dir);
        write_json(procs[0].config,
                   json_pack("{s:o, s:[s], s:s, s:s, s:s, s:s, s:i, s:i}",
                             "kafka", kafka_json(&gw_kc), "datasets", DATASET,
                             "schemas_dir", w.schemas_dir, "grants_dir",
                             w.grants_dir, "pseudonym_key_file", keyfile,
                             "client_id", "crash-gw", "commit_interval_ms", 50,
                             "transaction_timeout_ms", 10000));
        procs[0].args[0] = "sharebus";
        procs[0].args[1] = "gateway";
        procs[0].args[2] = "--config";
        procs[0].args[3] = procs[0].config;
        for (r = 0; r < NREUSERS; r++) {
                proc_t *p = &procs[1 + r];
                char signkey[600], cmd[1400];

                p->name = reusers[r];
                snprintf(signkey, sizeof(signkey), "%s/%s", w.dir, reusers[r]);
                snprintf(cmd, sizeof(cmd),
                         "'%s' keys generate --out '%s' >/dev/null", sb_bin(),
                         signkey);
                SB_CHECK(system(cmd) == 0, "%s", cmd);
                strcat(signkey, ".key");
                snprintf(db[r], sizeof(db[r]), "%s/%s.db", w.dir, reusers[r]);
                snprintf(path, sizeof(path), "%s/%s.json", w.grants_dir,
                         reusers[r]);
                snprintf(p->config, sizeof(p->config), "%s/%s-agent.json",
                         w.dir, reusers[r]);
                write_json(p->config,
                           json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                                     "s:i}",
                                     "kafka", kafka_json(&ru_kc[r]), "reuser",
                                     reusers[r], "dataset", DATASET,
                                     "grant_file", path, "schemas_dir",
                                     w.schemas_dir, "database", db[r],
                                     "signing_key_file", signkey, "client_id",
                                     reusers[r], "batch_records", 20));
                p->args[0] = "sharebus";
                p->args[1] = "reuser";
                p->args[2] = "run";
                p->args[3] = "--config";
                p->args[4] = p->config;
        }
        for (i = 0; i < 1 + NREUSERS; i++) {
                snprintf(procs[i].log, sizeof(procs[i].log), "%s/%s.log", w.dir,
                         procs[i].name);
                proc_start(&procs[i]);
        }

        memset(&hcfg, 0, sizeof(hcfg));
        {
                json_t *j = json_pack(
                    "{s:o, s:s, s:s}", "kafka", kafka_json(&holder_kc),
                    "schemas_dir", w.schemas_dir, "client_id", "crash-holder");

                SB_OK_OR_FAIL(sb_config_apply(j, "holder", sb_holder_cfg_table,
                                              &hcfg, errstr, sizeof(errstr)),
                              errstr);
                json_decref(j);
        }
        h = sb_holder_new(&hcfg, DATASET, errstr, sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);

        /* The stream, with kills at random points in between. */
        for (b = 0; b < BATCHES || kills < MIN_KILLS; b++) {
                if (b < BATCHES)
                        publish_batch(h, &m, b);
                usleep((useconds_t)(100 + rand() % 700) * 1000);
                if (rand() % 3 != 0) {
                        proc_t *p = &procs[rand() % (1 + NREUSERS)];

                        proc_kill9(p);
                        kills++;
                        usleep((useconds_t)(rand() % 400) * 1000);
                        proc_start(p);
                }
                for (i = 0; i < 1 + NREUSERS; i++)
                        proc_check_alive(&procs[i]);
        }
        printf("published %d batches of %d subjects; %d SIGKILLs (gateway "
               "%d, %s %d, %s %d)\n",
               BATCHES, SUBJECTS, kills, procs[0].kills, reusers[0],
               procs[1].kills, reusers[1], procs[2].kills);

        /* Let the survivors catch up, then compare with the model. */
        for (i = 0; i < 240 && !converged; i++) {
                converged = 1;
                for (r = 0; r < NREUSERS; r++) {
                        json_t *got = store_rows(
                            db[r], "SELECT pseudonym || '/' || record_id FROM "
                                   "records");
                        json_t *want = expected_rows(&m, key, r);
                        json_t *gotr = store_rows(
                            db[r], "SELECT pseudonym FROM sb_restricted");
                        json_t *wantr = expected_restricted(&m, key, r);

                        converged &=
                            same_keys(got, want) && same_keys(gotr, wantr);
                        if (i % 20 == 19 || (i == 239 && !converged))
                                printf("  %s: %zu rows (want %zu), %zu "
                                       "restricted (want %zu)\n",
                                       reusers[r],
                                       got ? json_object_size(got) : 0,
                                       json_object_size(want),
                                       gotr ? json_object_size(gotr) : 0,
                                       json_object_size(wantr));
                        json_decref(got);
                        json_decref(want);
                        json_decref(gotr);
                        json_decref(wantr);
                }
                if (!converged)
                        sleep(1);
                for (r = 0; r < 1 + NREUSERS; r++)
                        proc_check_alive(&procs[r]);
        }
        for (i = 0; i < 1 + NREUSERS; i++)
                proc_stop(&procs[i]);
        if (!converged) {
                for (i = 0; i < 1 + NREUSERS; i++)
                        proc_tail(&procs[i]);
                SB_TEST_FAIL("the reuser stores never matched the model");
        }
        for (r = 0; r < NREUSERS; r++) {
                printf("%s store: %zu rows, exactly the model's; restricted "
                       "persons marked\n",
                       reusers[r], json_object_size(m.rows[r]));
                check_stream(&w, &ru_kc[r], r, &upserts);
                json_decref(m.rows[r]);
        }
        sb_holder_destroy(h);
        sb_config_release(sb_holder_cfg_table, &hcfg);
        sb_key_destroy(key);
        sb_world_release(&w);
        return 0;
}
