/*
 * CNIL R6.2-03 (a reuser keeps a copy no longer than a defined maximum
 * retention period), R3.7-12 (access for a fixed period), DESIGN.md §1: the
 * reuser agent deletes the rows it received more than its grant's
 * retention_days ago and keeps the younger ones; once the grant's
 * valid_until has passed it deletes every row, and a record consumed after
 * that is not kept. It purges when it starts and every purge_interval_ms;
 * rows of restricted subjects go too (their mark stays); each purge is
 * counted in the stats and recorded in sb_purges, and makes no rights event
 * and no receipt. `sharebus reuser purge` does the same on demand; with
 * --dry-run it reports and changes nothing. A store made by the previous
 * version (no sb_purges, no store version) opens and is upgraded.
 *
 * Rows are made old with the agent's test clock (sb_reuser_set_clock), or,
 * for the command, which runs on the system clock, by writing received_at
 * in the store. Messages are produced here as the gateway produces them on
 * sb.out.<reuser>.<dataset> (docs/messages.md).
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include "proc.h"
#include "fakegw.h"
#include "testutil.h"

#define DAY_MS 86400000LL

static const char *keeper_grant =
    "{\"id\": \"g-keep\", \"reuser\": \"keeper\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"retention_days\": 30, "
    "\"fields\": {\"postcode\": \"keep\", \"household_size\": \"keep\"}}";

static const char *ender_grant =
    "{\"id\": \"g-end\", \"reuser\": \"ender\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"valid_until\": "
    "\"2099-01-01T00:00:00Z\", \"fields\": {\"postcode\": \"keep\", "
    "\"household_size\": \"keep\"}}";

static const char *veteran_grant =
    "{\"id\": \"g-vet\", \"reuser\": \"veteran\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"retention_days\": 30, "
    "\"fields\": {\"postcode\": \"keep\", \"household_size\": \"keep\"}}";

#define PS_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PS_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define PS_C "cccccccccccccccccccccccccccccccc"

/*
 * The test clock: the system clock shifted by `shift_ms`, or, from
 * `switch_at` (system clock; 0: never) on, by `later_ms`.
 */
typedef struct clk_s {
        int64_t shift_ms, switch_at, later_ms;
} clk_t;

static int64_t clk_now(void *opaque)
{
        const clk_t *c = opaque;
        int64_t now = sb_now_ms();

        return now + (c->switch_at && now >= c->switch_at ? c->later_ms
                                                          : c->shift_ms);
}

/*
 * The store, read as a DPO would
 */

static void run(sb_reuser_t *ru)
{
        char errstr[512];

        SB_OK_OR_FAIL(
            sb_reuser_run(ru, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
}

/* The text of a one-value query (NULL and no row: "(none)"). */
static void query(sqlite3 *db, const char *sql, char *out, size_t size)
{
        sqlite3_stmt *q;
        const unsigned char *t;

        SB_CHECK(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK,
                 "prepare %s: %s", sql, sqlite3_errmsg(db));
        if (sqlite3_step(q) == SQLITE_ROW && (t = sqlite3_column_text(q, 0)))
                snprintf(out, size, "%s", (const char *)t);
        else
                snprintf(out, size, "(none)");
        sqlite3_finalize(q);
}

static long long query_int(sqlite3 *db, const char *sql)
{
        char got[64];

        query(db, sql, got, sizeof(got));
        return atoll(got);
}

static sqlite3 *db_open(const char *path)
{
        sqlite3 *db;

        SB_CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open %s", path);
        sqlite3_busy_timeout(db, 5000);
        return db;
}

static void db_exec(sqlite3 *db, const char *sql)
{
        char *msg = NULL;

        SB_CHECK(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s",
                 sql, msg ? msg : sqlite3_errmsg(db));
}

/* A time of sb_purges or records, as ms (fails the test if it is not). */
static int64_t parse_time(const char *s, const char *what)
{
        int64_t ms;

        SB_CHECK(!sb_time_parse(s, &ms), "%s: '%s' is not a time", what, s);
        return ms;
}

/*
 * 1. retention_days 30: rows 40 days old go at the start purge, rows 20
 *    days old stay, and go at a periodic purge once they are past it.
 */
static void keeper(sb_testenv_t *te)
{
        char errstr[1024], got[256], path[600];
        const sb_reuser_stats_t *st;
        int64_t before, after, cutoff;
        sb_reuser_cfg_t cfg;
        sb_store_t *store;
        clk_t clk = {0};
        sb_reuser_t *ru;
        sb_grant_t *g;
        sqlite3 *db;
        sb_fakegw_t gw;

        sb_testenv_grant(te, "keep.json", keeper_grant);
        snprintf(path, sizeof(path), "%s/keep.json", te->grants_dir);
        g = sb_grant_load(path, te->cat, errstr, sizeof(errstr));
        SB_CHECK(g, "grant: %s", errstr);
        sb_fakegw_init(&gw, te, g);
        sb_testenv_reuser_cfg(te, "keep.json", &cfg);
        SB_CHECK_INT(3600000, cfg.purge_interval_ms,
                     "purge_interval_ms by default");
        cfg.purge_interval_ms = 1000;
        ru = sb_reuser_new(&cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);
        sb_reuser_set_clock(ru, clk_now, &clk);
        store = sb_reuser_store(ru);
        st = sb_reuser_stats(ru);
        db = db_open(cfg.database);

        /* Received 40 days ago: A (restricted) a1, a2, and B b1. */
        clk.shift_ms = -40 * DAY_MS;
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a1", "75001",
                         1);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a2", "75002",
                         2);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b1", "69001",
                         3);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION, NULL, PS_A, PS_A);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(3, sb_store_count(store, NULL), "rows 40 days ago");
        SB_CHECK(sb_store_is_restricted(store, PS_A), "A is not restricted");

        /* Received 20 days ago: B b2, C c1. The rows of 40 days ago were
         * then 20 days old: the start purge keeps them. */
        clk.shift_ms = -20 * DAY_MS;
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b2", "69002",
                         4);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_C, "c1", "13001",
                         5);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(5, sb_store_count(store, NULL), "rows 20 days ago");
        SB_CHECK_INT(0, st->purged_retention, "rows purged 20 days ago");
        SB_CHECK_INT(0, query_int(db, "SELECT COUNT(*) FROM sb_purges"),
                     "purges recorded 20 days ago");

        /* Today: the start purge deletes the 3 rows received 40 days ago,
         * restricted ones included, and keeps the 2 of 20 days ago. */
        clk.shift_ms = 0;
        before = sb_now_ms();
        run(ru);
        after = sb_now_ms();
        SB_CHECK_INT(3, st->purged_retention, "rows purged past retention");
        SB_CHECK_INT(0, st->purged_validity, "rows purged past validity");
        SB_CHECK_INT(2, sb_store_count(store, NULL), "rows kept");
        SB_CHECK_INT(0, sb_store_count(store, PS_A), "rows of A kept");
        SB_CHECK_INT(1, sb_store_count(store, PS_B), "rows of B kept (b2)");
        SB_CHECK_INT(1, sb_store_count(store, PS_C), "rows of C kept");
        SB_CHECK(sb_store_is_restricted(store, PS_A),
                 "A's restriction mark was purged with its rows");
        query(db, "SELECT reason || ' ' || rows FROM sb_purges", got,
              sizeof(got));
        SB_CHECK_STR("retention 3", got, "sb_purges");
        query(db, "SELECT cutoff FROM sb_purges", got, sizeof(got));
        cutoff = parse_time(got, "sb_purges.cutoff");
        SB_CHECK(cutoff >= before - 30 * DAY_MS &&
                     cutoff <= after - 30 * DAY_MS,
                 "sb_purges.cutoff %s is not 30 days before the purge", got);
        query(db,
              "SELECT oldest_kept = (SELECT MIN(received_at) FROM records) "
              "FROM sb_purges",
              got, sizeof(got));
        SB_CHECK_STR("1", got, "sb_purges.oldest_kept is the oldest row's");
        /* A purge is no rights event: the restriction is the only one. */
        SB_CHECK_INT(1, query_int(db, "SELECT COUNT(*) FROM sb_rights"),
                     "rights events recorded");
        SB_CHECK_INT(1, query_int(db, "SELECT COUNT(*) FROM sb_receipts"),
                     "receipts");
        SB_CHECK_INT(1, st->receipts_sent, "receipts sent");

        /* A periodic purge: 1.5 s into the run, the clock moves 15 days
         * on; the start purge found nothing, a later one deletes the rows
         * then 35 days old. */
        clk.switch_at = sb_now_ms() + 1500;
        clk.later_ms = 15 * DAY_MS;
        run(ru);
        SB_CHECK_INT(5, st->purged_retention,
                     "rows purged past retention, periodic purge included");
        SB_CHECK_INT(0, sb_store_count(store, NULL), "rows kept");
        query(db,
              "SELECT group_concat(reason || ' ' || rows || ' ' || "
              "IFNULL(oldest_kept, '-'), ', ') FROM sb_purges",
              got, sizeof(got));
        SB_CHECK(!strncmp(got, "retention 3 ", 12) &&
                     strstr(got, ", retention 2 -"),
                 "sb_purges after the periodic purge: %s", got);
        SB_CHECK_INT(1, st->receipts_sent, "receipts sent");
        printf("retention_days 30: 3 rows of 40 days purged at start (2 "
               "restricted), 2 of 20 days kept, then purged periodically\n");

        sqlite3_close(db);
        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &cfg);
        sb_fakegw_release(&gw);
        sb_grant_destroy(g);
}

/*
 * 2. valid_until passed: every row goes, restricted or not, whatever its
 *    age; a record consumed afterwards is not kept; rights still apply.
 */
static void ender(sb_testenv_t *te)
{
        char errstr[1024], got[256], path[600];
        const sb_reuser_stats_t *st;
        int64_t valid_until;
        sb_reuser_cfg_t cfg;
        sb_store_t *store;
        clk_t clk = {0};
        sb_reuser_t *ru;
        sb_grant_t *g;
        sqlite3 *db;
        sb_fakegw_t gw;

        sb_testenv_grant(te, "end.json", ender_grant);
        snprintf(path, sizeof(path), "%s/end.json", te->grants_dir);
        g = sb_grant_load(path, te->cat, errstr, sizeof(errstr));
        SB_CHECK(g, "grant: %s", errstr);
        SB_CHECK(g->has_valid_until, "the grant has no valid_until");
        valid_until = g->valid_until_ms;
        sb_fakegw_init(&gw, te, g);
        sb_testenv_reuser_cfg(te, "end.json", &cfg);
        ru = sb_reuser_new(&cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);
        sb_reuser_set_clock(ru, clk_now, &clk);
        store = sb_reuser_store(ru);
        st = sb_reuser_stats(ru);
        db = db_open(cfg.database);

        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a1", "75001",
                         1);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b1", "69001",
                         2);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b2", "69002",
                         3);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION, NULL, PS_B, PS_B);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(3, sb_store_count(store, NULL), "rows while valid");

        /* A day after valid_until. */
        clk.shift_ms = valid_until + DAY_MS - sb_now_ms();
        run(ru);
        SB_CHECK_INT(3, st->purged_validity, "rows purged past validity");
        SB_CHECK_INT(0, st->purged_retention, "rows purged past retention");
        SB_CHECK_INT(0, sb_store_count(store, NULL), "rows after valid_until");
        query(db,
              "SELECT reason || ' ' || rows || ' ' || cutoff || ' ' || "
              "IFNULL(oldest_kept, '-') FROM sb_purges",
              got, sizeof(got));
        SB_CHECK_STR("validity 3 2099-01-01T00:00:00.000Z -", got, "sb_purges");

        /* A record that arrives late is not kept; an erasure is still
         * applied and acknowledged. */
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_C, "c1", "13001",
                         4);
        sb_fakegw_notice(&gw, SB_EV_ERASURE, NULL, PS_A, PS_A);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(0, sb_store_count(store, NULL),
                     "rows after a record consumed past valid_until");
        SB_CHECK_INT(4, st->purged_validity, "rows purged past validity");
        SB_CHECK_INT(1, st->erasures, "erasures applied");
        SB_CHECK_INT(2, st->receipts_sent, "receipts sent");
        SB_CHECK_INT(2,
                     query_int(db, "SELECT COUNT(*) FROM sb_purges WHERE "
                                   "reason = 'validity'"),
                     "validity purges recorded");
        printf("valid_until passed: 3 rows purged (2 restricted), a late "
               "record purged in its batch\n");

        sqlite3_close(db);
        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &cfg);
        sb_fakegw_release(&gw);
        sb_grant_destroy(g);
}

/* The previous version's store schema, for the beneficiaries grant keeping
 * postcode and household_size (store_sqlite.c before sb_purges). */
static const char *previous_schema =
    "CREATE TABLE sb_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE sb_offsets (topic TEXT NOT NULL, partition INTEGER NOT "
    "NULL, next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));"
    "CREATE TABLE sb_rights (event_id TEXT PRIMARY KEY, type TEXT NOT NULL, "
    "pseudonym TEXT NOT NULL, rows_affected INTEGER NOT NULL, applied_at TEXT "
    "NOT NULL);"
    "CREATE TABLE sb_restricted (pseudonym TEXT PRIMARY KEY, event_id TEXT "
    "NOT NULL, since INTEGER NOT NULL);"
    "CREATE TABLE sb_receipts (event_id TEXT PRIMARY KEY, value BLOB NOT "
    "NULL, sent INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX sb_receipts_sent ON sb_receipts (sent);"
    "CREATE TABLE sb_rejected (topic TEXT NOT NULL, partition INTEGER NOT "
    "NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);"
    "CREATE TABLE records (\"pseudonym\" TEXT NOT NULL, record_id TEXT NOT "
    "NULL, \"postcode\" TEXT NOT NULL, \"household_size\" INTEGER NOT NULL, "
    "restricted INTEGER NOT NULL DEFAULT 0, received_at TEXT NOT NULL, "
    "PRIMARY KEY (\"pseudonym\", record_id));"
    "CREATE INDEX records_subject ON records (\"pseudonym\");"
    "CREATE VIEW records_usable AS SELECT * FROM records WHERE NOT EXISTS "
    "(SELECT 1 FROM sb_restricted WHERE sb_restricted.pseudonym = "
    "records.\"pseudonym\");";

static void old_store(const char *path, const sb_grant_t *g)
{
        int64_t now = sb_now_ms();
        char fp[17], t[32];
        sqlite3_stmt *q;
        sqlite3 *db;
        char *json;
        struct {
                const char *ps, *rid;
                int restricted;
                int64_t age_ms;
        } rows[] = {
            {PS_A, "a1", 1, 100 * DAY_MS},
            {PS_B, "b1", 0, 100 * DAY_MS},
            {PS_B, "b2", 0, DAY_MS},
        };
        size_t i;

        db = db_open(path);
        db_exec(db, previous_schema);
        SB_CHECK(sqlite3_prepare_v2(db, "INSERT INTO sb_meta VALUES (?1, ?2)",
                                    -1, &q, NULL) == SQLITE_OK,
                 "prepare: %s", sqlite3_errmsg(db));
        snprintf(fp, sizeof(fp), "%016" PRIx64, g->out->fingerprint);
        json = json_dumps(g->out->json, JSON_COMPACT);
        sqlite3_bind_text(q, 1, "schema_fingerprint", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, fp, -1, SQLITE_STATIC);
        SB_CHECK(sqlite3_step(q) == SQLITE_DONE, "sb_meta");
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, "schema", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, json, -1, SQLITE_STATIC);
        SB_CHECK(sqlite3_step(q) == SQLITE_DONE, "sb_meta");
        sqlite3_finalize(q);
        free(json);
        db_exec(db, "INSERT INTO sb_restricted VALUES ('" PS_A "', 'e-1', 0)");
        SB_CHECK(sqlite3_prepare_v2(db,
                                    "INSERT INTO records VALUES (?1, ?2, "
                                    "'75001', 2, ?3, ?4)",
                                    -1, &q, NULL) == SQLITE_OK,
                 "prepare: %s", sqlite3_errmsg(db));
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                sb_time_format(now - rows[i].age_ms, t);
                sqlite3_bind_text(q, 1, rows[i].ps, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 2, rows[i].rid, -1, SQLITE_STATIC);
                sqlite3_bind_int(q, 3, rows[i].restricted);
                sqlite3_bind_text(q, 4, t, -1, SQLITE_TRANSIENT);
                SB_CHECK(sqlite3_step(q) == SQLITE_DONE, "insert: %s",
                         sqlite3_errmsg(db));
                sqlite3_reset(q);
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
}

/* `sharebus reuser purge --config F [extra]`: its exit status, and its
 * stdout and stderr in `out`. */
static int purge_cmd(const char *config, const char *extra, char *out,
                     size_t size)
{
        char cmd[1500];
        size_t n = 0;
        FILE *fp;
        int status;

        snprintf(cmd, sizeof(cmd), "'%s' reuser purge --config '%s' %s 2>&1",
                 sb_proc_bin(), config, extra);
        fp = popen(cmd, "r");
        SB_CHECK(fp, "popen %s", cmd);
        n = fread(out, 1, size - 1, fp);
        out[n] = '\0';
        status = pclose(fp);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * 3. `sharebus reuser purge` on a store of the previous version: it is
 *    upgraded; --dry-run reports 2 rows past retention and changes nothing;
 *    the purge deletes them and records it; a store of a later version is
 *    refused.
 */
static void veteran(sb_testenv_t *te)
{
        char errstr[1024], out[4096], got[256], path[600], db_path[600],
            config[600];
        sb_grant_t *g;
        sqlite3 *db;
        json_t *j;

        sb_testenv_grant(te, "vet.json", veteran_grant);
        snprintf(path, sizeof(path), "%s/vet.json", te->grants_dir);
        g = sb_grant_load(path, te->cat, errstr, sizeof(errstr));
        SB_CHECK(g, "grant: %s", errstr);
        snprintf(db_path, sizeof(db_path), "%s/veteran.db", te->dir);
        old_store(db_path, g);

        /* No broker is contacted and no key is read. */
        j = json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s}", "kafka",
                      sb_mockenv_kafka_json(te->mock), "reuser", "veteran",
                      "dataset", "beneficiaries", "grant_file", path,
                      "schemas_dir", SB_SCHEMAS_DIR, "database", db_path,
                      "signing_key_file", "/nonexistent/veteran.key");
        snprintf(config, sizeof(config), "%s/veteran.json", te->dir);
        SB_CHECK(json_dump_file(j, config, JSON_INDENT(2)) == 0, "write %s",
                 config);
        json_decref(j);

        SB_CHECK_INT(0, purge_cmd(config, "--dry-run", out, sizeof(out)),
                     "exit status of purge --dry-run");
        SB_CHECK(strstr(out, "retention: 2 row(s) received before ") &&
                     strstr(out, " would be purged (retention_days 30; 1 of "
                                 "restricted subjects)") &&
                     strstr(out, "validity: the grant sets no valid_until") &&
                     strstr(out, "kept: 1 row(s), the oldest received ") &&
                     strstr(out, "dry run: nothing was deleted or recorded"),
                 "purge --dry-run said:\n%s", out);
        printf("$ sharebus reuser purge --config %s --dry-run\n%s", config,
               out);
        db = db_open(db_path);
        SB_CHECK_INT(3, query_int(db, "SELECT COUNT(*) FROM records"),
                     "rows after the dry run");
        SB_CHECK_INT(0, query_int(db, "SELECT COUNT(*) FROM sb_purges"),
                     "purges recorded after the dry run");
        query(db, "SELECT value FROM sb_meta WHERE key = 'store_version'", got,
              sizeof(got));
        SB_CHECK_STR("2", got, "store version after opening");
        query(db, "SELECT name FROM sqlite_master WHERE name = 'sb_purges'",
              got, sizeof(got));
        SB_CHECK_STR("sb_purges", got, "the purge log after the upgrade");
        sqlite3_close(db);

        SB_CHECK_INT(0, purge_cmd(config, "", out, sizeof(out)),
                     "exit status of purge");
        SB_CHECK(strstr(out, "retention: 2 row(s) received before ") &&
                     strstr(out, " purged (retention_days 30; 1 of "
                                 "restricted subjects)") &&
                     !strstr(out, "would be") && !strstr(out, "dry run"),
                 "purge said:\n%s", out);
        printf("$ sharebus reuser purge --config %s\n%s", config, out);
        db = db_open(db_path);
        query(db, "SELECT group_concat(record_id) FROM records", got,
              sizeof(got));
        SB_CHECK_STR("b2", got, "rows after the purge");
        query(db,
              "SELECT reason || ' ' || rows || ' ' || (oldest_kept = (SELECT "
              "received_at FROM records)) FROM sb_purges",
              got, sizeof(got));
        SB_CHECK_STR("retention 2 1", got, "sb_purges (oldest kept: b2's)");
        SB_CHECK_INT(0, query_int(db, "SELECT COUNT(*) FROM sb_rights"),
                     "rights events recorded by the purge");
        SB_CHECK_INT(0, query_int(db, "SELECT COUNT(*) FROM sb_receipts"),
                     "receipts made by the purge");
        SB_CHECK_INT(1, query_int(db, "SELECT COUNT(*) FROM sb_restricted"),
                     "restriction marks after the purge");

        /* Nothing left to purge: nothing recorded. */
        SB_CHECK_INT(0, purge_cmd(config, "", out, sizeof(out)),
                     "exit status of the second purge");
        SB_CHECK(strstr(out, "retention: 0 row(s)"), "second purge said:\n%s",
                 out);
        SB_CHECK_INT(1, query_int(db, "SELECT COUNT(*) FROM sb_purges"),
                     "purges recorded after a purge that found nothing");

        /* A store a later sharebus made is not touched. */
        db_exec(db, "UPDATE sb_meta SET value = '3' WHERE key = "
                    "'store_version'");
        sqlite3_close(db);
        SB_CHECK_INT(1, purge_cmd(config, "", out, sizeof(out)),
                     "exit status on a later store version");
        SB_CHECK(strstr(out, "made by a later sharebus (store version 3"),
                 "purge on a later store version said:\n%s", out);
        printf("reuser purge: a previous-version store upgraded, --dry-run "
               "changed nothing, 2 rows past retention purged\n");
        sb_grant_destroy(g);
}

int main(void)
{
        sb_testenv_t te;

        sb_testenv_init(&te);
        keeper(&te);
        ender(&te);
        veteran(&te);
        sb_testenv_release(&te);
        return 0;
}
