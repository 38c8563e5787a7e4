#include "store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "grant.h"
#include "log.h"

/* What this version writes; see store.h for what each version holds. */
#define SB_STORE_VERSION 2

enum {
        SB_STMT_UPSERT,
        SB_STMT_DELETE_RECORD,
        SB_STMT_DELETE_SUBJECT,
        SB_STMT_RIGHTS,
        SB_STMT_RIGHT_FIND,
        SB_STMT_RESTRICT,
        SB_STMT_UNRESTRICT,
        SB_STMT_IS_RESTRICTED,
        SB_STMT_MARK_ROWS,
        SB_STMT_REJECT,
        SB_STMT_GET_OFFSET,
        SB_STMT_SET_OFFSET,
        SB_STMT_COUNT_ALL,
        SB_STMT_COUNT_SUBJECT,
        SB_STMT_COUNT_USABLE_ALL,
        SB_STMT_COUNT_USABLE_SUBJECT,
        SB_STMT_RECEIPT_ADD,
        SB_STMT_RECEIPT_PENDING,
        SB_STMT_RECEIPT_SENT,
        SB_STMT_RECEIPT_COUNT,
        SB_STMT_PURGE_BEFORE,
        SB_STMT_PURGE_ALL,
        SB_STMT_RESTRICTED_BEFORE,
        SB_STMT_RESTRICTED_ALL,
        SB_STMT_OLDEST,
        SB_STMT_PURGE_LOG,
        SB_STMT__CNT
};

struct sb_store_s {
        sqlite3 *db;
        char *path;
        const sb_schema_t *schema;
        sqlite3_stmt *stmt[SB_STMT__CNT];
        json_t *field_types; /* type JSON of each output field, by index */
        size_t field_cnt;
        int fresh; /* created by this open */
        int64_t (*now_ms)(void *opaque);
        void *now_opaque;
};

static int64_t sb_store_now(const sb_store_t *st)
{
        return st->now_ms ? st->now_ms(st->now_opaque) : sb_now_ms();
}

static sb_err_t sb_store_sqlerr(sb_store_t *st, const char *what, char *errstr,
                                size_t errstr_size)
{
        return sb_seterr(errstr, errstr_size, SB_ERR_STORE,
                         "store '%s': %s: %s", st->path, what,
                         sqlite3_errmsg(st->db));
}

static sb_err_t sb_store_exec(sb_store_t *st, const char *sql, char *errstr,
                              size_t errstr_size)
{
        char *msg = NULL;

        if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                sb_seterr(errstr, errstr_size, SB_ERR_STORE, "store '%s': %s",
                          st->path, msg ? msg : sqlite3_errmsg(st->db));
                sqlite3_free(msg);
                return SB_ERR_STORE;
        }
        return SB_OK;
}

/* The SQL column type of an Avro field type (unions of null + T: T). */
static const char *sb_store_coltype(const json_t *t)
{
        const char *name;

        if (json_is_array(t)) {
                const json_t *b;
                size_t i;

                json_array_foreach(t, i, b)
                {
                        if (!json_is_string(b) ||
                            strcmp(json_string_value(b), "null"))
                                return json_array_size(t) == 2
                                           ? sb_store_coltype(b)
                                           : "TEXT";
                }
                return "TEXT";
        }
        if (json_is_object(t)) {
                if (json_object_get(t, "logicalType"))
                        return "TEXT"; /* dates, decimals, uuids as text */
                return sb_store_coltype(json_object_get(t, "type"));
        }
        name = json_string_value(t);
        if (!name)
                return "TEXT";
        if (!strcmp(name, "int") || !strcmp(name, "long") ||
            !strcmp(name, "boolean"))
                return "INTEGER";
        if (!strcmp(name, "float") || !strcmp(name, "double"))
                return "REAL";
        return "TEXT";
}

static void sb_sql_ident(char *out, size_t size, const char *name)
{
        /* Avro names are [A-Za-z_][A-Za-z0-9_]*: quoting is enough. */
        snprintf(out, size, "\"%s\"", name);
}

/*
 * The version of the store (1 when sb_meta names none: made before
 * versions were recorded), refusing one this sharebus does not know.
 */
static sb_err_t sb_store_version(sb_store_t *st, long long *versionp,
                                 char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q;

        *versionp = 1;
        if (sqlite3_prepare_v2(st->db,
                               "SELECT value FROM sb_meta WHERE key = "
                               "'store_version'",
                               -1, &q, NULL) != SQLITE_OK)
                return sb_store_sqlerr(st, "reading the store version", errstr,
                                       errstr_size);
        if (sqlite3_step(q) == SQLITE_ROW)
                *versionp = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        if (*versionp > SB_STORE_VERSION)
                return sb_seterr(errstr, errstr_size, SB_ERR_STORE,
                                 "store '%s': made by a later sharebus (store "
                                 "version %lld, this one knows up to %d); run "
                                 "that version",
                                 st->path, *versionp, SB_STORE_VERSION);
        return SB_OK;
}

/*
 * Brings a store made by an earlier version up to SB_STORE_VERSION, in one
 * transaction, the version read inside it: two programs opening the same
 * old store (the agent and `reuser purge`) upgrade it once. Each step is
 * idempotent. The base tables and `records` exist already (version 1).
 */
static sb_err_t sb_store_migrate(sb_store_t *st, char *errstr,
                                 size_t errstr_size)
{
        sqlite3_stmt *q = NULL;
        long long version;
        char v[24];
        sb_err_t err;

        if ((err = sb_store_begin(st, errstr, errstr_size)))
                return err;
        if ((err = sb_store_version(st, &version, errstr, errstr_size)) ||
            version == SB_STORE_VERSION)
                goto done;
        /* 1 -> 2: the purge log. No index on received_at: a purge runs
         * hourly and may scan, while every upsert would pay for one (the
         * erasure latency benchmark doubled with it). */
        if ((err = sb_store_exec(
                 st,
                 "CREATE TABLE IF NOT EXISTS sb_purges (at TEXT NOT NULL, "
                 "reason TEXT NOT NULL, rows INTEGER NOT NULL, cutoff TEXT "
                 "NOT NULL, oldest_kept TEXT);",
                 errstr, errstr_size)))
                goto done;
        if (sqlite3_prepare_v2(st->db,
                               "INSERT OR REPLACE INTO sb_meta VALUES "
                               "('store_version', ?1)",
                               -1, &q, NULL) != SQLITE_OK) {
                err = sb_store_sqlerr(st, "writing the store version", errstr,
                                      errstr_size);
                goto done;
        }
        snprintf(v, sizeof(v), "%d", SB_STORE_VERSION);
        sqlite3_bind_text(q, 1, v, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_DONE)
                err = sb_store_sqlerr(st, "writing the store version", errstr,
                                      errstr_size);
        sqlite3_finalize(q);
        if (!err && !st->fresh)
                sb_log(SB_LOG_NOTICE, "STORE",
                       "store '%s': upgraded from version %lld to %d "
                       "(sb_purges, index on received_at)",
                       st->path, version, SB_STORE_VERSION);
done:
        if (!err)
                err = sb_store_commit(st, errstr, errstr_size);
        if (err)
                sb_store_rollback(st);
        return err;
}

static sb_err_t sb_store_schema(sb_store_t *st, char *errstr,
                                size_t errstr_size)
{
        const json_t *fields = json_object_get(st->schema->json, "fields");
        char *create = NULL, *upsert = NULL, *cols = NULL, *qs = NULL;
        char ident[160], fp[17];
        sqlite3_stmt *q = NULL;
        const json_t *f;
        long long version;
        sb_err_t err = SB_OK;
        size_t i;

        snprintf(fp, sizeof(fp), "%016" PRIx64, st->schema->fingerprint);
        /* A later version's store is refused before anything is made in
         * it. */
        if ((err = sb_store_exec(st,
                                 "CREATE TABLE IF NOT EXISTS sb_meta (key TEXT "
                                 "PRIMARY KEY, value TEXT NOT NULL);",
                                 errstr, errstr_size)) ||
            (err = sb_store_version(st, &version, errstr, errstr_size)))
                return err;
        if ((err = sb_store_exec(
                 st,
                 "CREATE TABLE IF NOT EXISTS sb_offsets (topic TEXT NOT NULL, "
                 "partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, "
                 "PRIMARY KEY (topic, partition));"
                 "CREATE TABLE IF NOT EXISTS sb_rights (event_id TEXT PRIMARY "
                 "KEY, type TEXT NOT NULL, pseudonym TEXT NOT NULL, "
                 "rows_affected INTEGER NOT NULL, applied_at TEXT NOT NULL);"
                 "CREATE TABLE IF NOT EXISTS sb_restricted (pseudonym TEXT "
                 "PRIMARY KEY, event_id TEXT NOT NULL, since INTEGER NOT "
                 "NULL);"
                 "CREATE TABLE IF NOT EXISTS sb_receipts (event_id TEXT "
                 "PRIMARY KEY, value BLOB NOT NULL, sent INTEGER NOT NULL "
                 "DEFAULT 0);"
                 "CREATE INDEX IF NOT EXISTS sb_receipts_sent ON sb_receipts "
                 "(sent);"
                 "CREATE TABLE IF NOT EXISTS sb_rejected (topic TEXT NOT "
                 "NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, "
                 "reason TEXT NOT NULL, at TEXT NOT NULL);",
                 errstr, errstr_size)))
                return err;

        if (sqlite3_prepare_v2(st->db,
                               "SELECT value FROM sb_meta WHERE key = "
                               "'schema_fingerprint'",
                               -1, &q, NULL) != SQLITE_OK)
                return sb_store_sqlerr(st, "reading sb_meta", errstr,
                                       errstr_size);
        st->fresh = sqlite3_step(q) != SQLITE_ROW;
        if (!st->fresh && strcmp((const char *)sqlite3_column_text(q, 0), fp)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_STORE,
                                "store '%s': created for output schema %s, "
                                "but the grant now yields %s; use a new "
                                "database file",
                                st->path, sqlite3_column_text(q, 0), fp);
                sqlite3_finalize(q);
                return err;
        }
        sqlite3_finalize(q);

        st->field_types = json_array();
        /* records: pseudonym, record_id, then the granted fields */
        if (asprintf(&create,
                     "CREATE TABLE IF NOT EXISTS records (\"%s\" TEXT NOT "
                     "NULL, record_id TEXT NOT NULL",
                     SB_PSEUDONYM_FIELD) == -1 ||
            asprintf(&cols, "\"%s\", record_id", SB_PSEUDONYM_FIELD) == -1 ||
            asprintf(&qs, "?1, ?2") == -1)
                goto nomem;
        json_array_foreach(fields, i, f)
        {
                const char *name =
                    json_string_value(json_object_get(f, "name"));
                const json_t *t = json_object_get(f, "type");
                int nullable = json_is_array(t);
                char *p;

                json_array_append(st->field_types, (json_t *)t);
                if (i == 0)
                        continue; /* the pseudonym */
                sb_sql_ident(ident, sizeof(ident), name);
                if (asprintf(&p, "%s, %s %s%s", create, ident,
                             sb_store_coltype(t),
                             nullable ? "" : " NOT NULL") == -1)
                        goto nomem;
                free(create);
                create = p;
                if (asprintf(&p, "%s, %s", cols, ident) == -1)
                        goto nomem;
                free(cols);
                cols = p;
                if (asprintf(&p, "%s, ?%zu", qs, i + 2) == -1)
                        goto nomem;
                free(qs);
                qs = p;
        }
        st->field_cnt = json_array_size(fields);
        {
                char *p;

                /* `restricted` mirrors sb_restricted for readers of
                 * `records`; records_usable is what the reuser may use. */
                if (asprintf(&p,
                             "%s, restricted INTEGER NOT NULL DEFAULT 0, "
                             "received_at TEXT NOT NULL, PRIMARY KEY (\"%s\", "
                             "record_id));"
                             "CREATE INDEX IF NOT EXISTS records_subject ON "
                             "records (\"%s\");"
                             "CREATE VIEW IF NOT EXISTS records_usable AS "
                             "SELECT * FROM records WHERE NOT EXISTS (SELECT "
                             "1 FROM sb_restricted WHERE "
                             "sb_restricted.pseudonym = records.\"%s\");",
                             create, SB_PSEUDONYM_FIELD, SB_PSEUDONYM_FIELD,
                             SB_PSEUDONYM_FIELD) == -1)
                        goto nomem;
                free(create);
                create = p;
                if (asprintf(&upsert,
                             "INSERT OR REPLACE INTO records (%s, "
                             "restricted, received_at) VALUES (%s, EXISTS "
                             "(SELECT 1 FROM sb_restricted WHERE pseudonym = "
                             "?1), ?%zu)",
                             cols, qs, st->field_cnt + 2) == -1)
                        goto nomem;
        }
        if ((err = sb_store_exec(st, create, errstr, errstr_size)))
                goto done;
        if (sqlite3_prepare_v2(st->db,
                               "INSERT OR IGNORE INTO sb_meta VALUES (?1, ?2)",
                               -1, &q, NULL) != SQLITE_OK) {
                err = sb_store_sqlerr(st, "sb_meta", errstr, errstr_size);
                goto done;
        }
        {
                char *json = json_dumps(st->schema->json, JSON_COMPACT);

                sqlite3_bind_text(q, 1, "schema_fingerprint", -1,
                                  SQLITE_STATIC);
                sqlite3_bind_text(q, 2, fp, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(q) != SQLITE_DONE)
                        err =
                            sb_store_sqlerr(st, "sb_meta", errstr, errstr_size);
                sqlite3_reset(q);
                sqlite3_bind_text(q, 1, "schema", -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 2, json ? json : "", -1, SQLITE_TRANSIENT);
                if (!err && sqlite3_step(q) != SQLITE_DONE)
                        err =
                            sb_store_sqlerr(st, "sb_meta", errstr, errstr_size);
                free(json);
                sqlite3_finalize(q);
                if (err)
                        goto done;
        }
        if ((err = sb_store_migrate(st, errstr, errstr_size)))
                goto done;

        {
                static const char *sql[SB_STMT__CNT] = {
                    [SB_STMT_DELETE_RECORD] =
                        "DELETE FROM records WHERE \"" SB_PSEUDONYM_FIELD
                        "\" = ?1 AND record_id = ?2",
                    [SB_STMT_DELETE_SUBJECT] =
                        "DELETE FROM records WHERE \"" SB_PSEUDONYM_FIELD
                        "\" = ?1",
                    [SB_STMT_RIGHTS] =
                        "INSERT INTO sb_rights (event_id, type, pseudonym, "
                        "rows_affected, applied_at) VALUES (?1, ?2, ?3, ?4, "
                        "?5)",
                    [SB_STMT_RIGHT_FIND] =
                        "SELECT type, pseudonym, rows_affected, applied_at "
                        "FROM sb_rights WHERE event_id = ?1",
                    [SB_STMT_RESTRICT] =
                        "INSERT OR REPLACE INTO sb_restricted (pseudonym, "
                        "event_id, since) VALUES (?1, ?2, ?3)",
                    [SB_STMT_UNRESTRICT] =
                        "DELETE FROM sb_restricted WHERE pseudonym = ?1",
                    [SB_STMT_IS_RESTRICTED] =
                        "SELECT COUNT(*) FROM sb_restricted WHERE pseudonym "
                        "= ?1",
                    [SB_STMT_MARK_ROWS] =
                        "UPDATE records SET restricted = ?2 WHERE "
                        "\"" SB_PSEUDONYM_FIELD "\" = ?1",
                    [SB_STMT_REJECT] =
                        "INSERT INTO sb_rejected VALUES (?1, ?2, ?3, ?4, ?5)",
                    [SB_STMT_GET_OFFSET] =
                        "SELECT next_offset FROM sb_offsets WHERE topic = ?1 "
                        "AND partition = ?2",
                    [SB_STMT_SET_OFFSET] =
                        "INSERT OR REPLACE INTO sb_offsets VALUES (?1, ?2, "
                        "?3)",
                    [SB_STMT_COUNT_ALL] = "SELECT COUNT(*) FROM records",
                    [SB_STMT_COUNT_SUBJECT] =
                        "SELECT COUNT(*) FROM records WHERE "
                        "\"" SB_PSEUDONYM_FIELD "\" = ?1",
                    [SB_STMT_COUNT_USABLE_ALL] =
                        "SELECT COUNT(*) FROM records_usable",
                    [SB_STMT_COUNT_USABLE_SUBJECT] =
                        "SELECT COUNT(*) FROM records_usable WHERE "
                        "\"" SB_PSEUDONYM_FIELD "\" = ?1",
                    [SB_STMT_RECEIPT_ADD] =
                        "INSERT INTO sb_receipts (event_id, value, sent) "
                        "VALUES (?1, ?2, 0)",
                    [SB_STMT_RECEIPT_PENDING] =
                        "SELECT event_id, value FROM sb_receipts WHERE sent "
                        "= 0 ORDER BY rowid LIMIT ?1",
                    [SB_STMT_RECEIPT_SENT] =
                        "UPDATE sb_receipts SET sent = 1 WHERE event_id = ?1",
                    [SB_STMT_RECEIPT_COUNT] =
                        "SELECT COUNT(*) FROM sb_receipts WHERE sent = ?1",
                    /* received_at and the cutoff are both sb_time_format()
                     * text: comparing them compares the times. */
                    [SB_STMT_PURGE_BEFORE] =
                        "DELETE FROM records WHERE received_at < ?1",
                    [SB_STMT_PURGE_ALL] = "DELETE FROM records",
                    [SB_STMT_RESTRICTED_BEFORE] =
                        "SELECT COUNT(*) FROM records WHERE received_at < ?1 "
                        "AND restricted <> 0",
                    [SB_STMT_RESTRICTED_ALL] =
                        "SELECT COUNT(*) FROM records WHERE restricted <> 0",
                    [SB_STMT_OLDEST] =
                        "SELECT COUNT(*), MIN(received_at) FROM records",
                    [SB_STMT_PURGE_LOG] =
                        "INSERT INTO sb_purges (at, reason, rows, cutoff, "
                        "oldest_kept) VALUES (?1, ?2, ?3, ?4, ?5)",
                };

                for (i = 0; i < SB_STMT__CNT; i++) {
                        const char *s = i == SB_STMT_UPSERT ? upsert : sql[i];

                        if (sqlite3_prepare_v3(
                                st->db, s, -1, SQLITE_PREPARE_PERSISTENT,
                                &st->stmt[i], NULL) != SQLITE_OK) {
                                err = sb_store_sqlerr(st,
                                                      "preparing "
                                                      "statements",
                                                      errstr, errstr_size);
                                goto done;
                        }
                }
        }
        goto done;

nomem:
        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
done:
        free(create);
        free(upsert);
        free(cols);
        free(qs);
        return err;
}

sb_store_t *sb_store_open(const char *path, const sb_schema_t *schema,
                          char *errstr, size_t errstr_size)
{
        sb_store_t *st = calloc(1, sizeof(*st));

        if (!st) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        st->path = strdup(path);
        st->schema = schema;
        if (sqlite3_open_v2(path, &st->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
                sb_seterr(errstr, errstr_size, SB_ERR_STORE,
                          "store '%s': cannot open: %s", path,
                          st->db ? sqlite3_errmsg(st->db) : "out of memory");
                goto fail;
        }
        sqlite3_busy_timeout(st->db, 5000);
        /* WAL + full sync: a committed batch survives a crash. */
        if (sb_store_exec(st,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                          errstr, errstr_size) ||
            sb_store_schema(st, errstr, errstr_size))
                goto fail;
        return st;
fail:
        sb_store_close(st);
        return NULL;
}

void sb_store_set_clock(sb_store_t *st, int64_t (*now_ms)(void *opaque),
                        void *opaque)
{
        st->now_ms = now_ms;
        st->now_opaque = opaque;
}

void sb_store_close(sb_store_t *st)
{
        int i;

        if (!st)
                return;
        for (i = 0; i < SB_STMT__CNT; i++)
                sqlite3_finalize(st->stmt[i]);
        if (st->db)
                sqlite3_close(st->db);
        json_decref(st->field_types);
        free(st->path);
        free(st);
}

sb_err_t sb_store_begin(sb_store_t *st, char *errstr, size_t errstr_size)
{
        return sb_store_exec(st, "BEGIN IMMEDIATE", errstr, errstr_size);
}

sb_err_t sb_store_commit(sb_store_t *st, char *errstr, size_t errstr_size)
{
        return sb_store_exec(st, "COMMIT", errstr, errstr_size);
}

void sb_store_rollback(sb_store_t *st)
{
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

static sb_err_t sb_store_step(sb_store_t *st, sqlite3_stmt *q, const char *what,
                              char *errstr, size_t errstr_size)
{
        int rc = sqlite3_step(q);
        sb_err_t err = SB_OK;

        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                err = sb_store_sqlerr(st, what, errstr, errstr_size);
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        return err;
}

static int sb_store_bind_json(sqlite3_stmt *q, int idx, const json_t *v)
{
        char *text;
        int rc;

        switch (json_typeof(v)) {
        case JSON_NULL:
                return sqlite3_bind_null(q, idx);
        case JSON_TRUE:
                return sqlite3_bind_int(q, idx, 1);
        case JSON_FALSE:
                return sqlite3_bind_int(q, idx, 0);
        case JSON_INTEGER:
                return sqlite3_bind_int64(q, idx, json_integer_value(v));
        case JSON_REAL:
                return sqlite3_bind_double(q, idx, json_real_value(v));
        case JSON_STRING:
                return sqlite3_bind_text(q, idx, json_string_value(v),
                                         (int)json_string_length(v),
                                         SQLITE_TRANSIENT);
        default:
                text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!text)
                        return SQLITE_NOMEM;
                rc = sqlite3_bind_text(q, idx, text, -1, SQLITE_TRANSIENT);
                free(text);
                return rc;
        }
}

sb_err_t sb_store_upsert(sb_store_t *st, const char *record_id, avro_value_t *v,
                         char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_UPSERT];
        char now[32];
        size_t i;

        for (i = 0; i < st->field_cnt; i++) {
                avro_value_t f;
                json_t *j = NULL;
                int rc;

                if (avro_value_get_by_index(v, i, &f, NULL) ||
                    sb_avrojson_field_to_json(
                        st->schema->aj, json_array_get(st->field_types, i), &f,
                        &j, errstr, errstr_size)) {
                        sqlite3_reset(q);
                        sqlite3_clear_bindings(q);
                        return SB_ERR_VALIDATION;
                }
                /* ?1 pseudonym, ?2 record id, ?3.. fields 1.. */
                rc = sb_store_bind_json(q, i == 0 ? 1 : (int)i + 2, j);
                json_decref(j);
                if (rc != SQLITE_OK) {
                        sqlite3_reset(q);
                        sqlite3_clear_bindings(q);
                        return sb_store_sqlerr(st, "binding", errstr,
                                               errstr_size);
                }
        }
        sqlite3_bind_text(q, 2, record_id, -1, SQLITE_TRANSIENT);
        sb_time_format(sb_store_now(st), now);
        sqlite3_bind_text(q, (int)st->field_cnt + 2, now, -1, SQLITE_TRANSIENT);
        return sb_store_step(st, q, "inserting a record", errstr, errstr_size);
}

sb_err_t sb_store_delete_record(sb_store_t *st, const char *pseudonym,
                                const char *record_id, char *errstr,
                                size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_DELETE_RECORD];

        sqlite3_bind_text(q, 1, pseudonym, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 2, record_id, -1, SQLITE_TRANSIENT);
        return sb_store_step(st, q, "deleting a record", errstr, errstr_size);
}

/* A one-row, one-integer query bound to `text` (may be NULL: no bind). */
static int64_t sb_store_count_of(sb_store_t *st, int stmt, const char *text)
{
        sqlite3_stmt *q = st->stmt[stmt];
        int64_t n = -1;

        if (text)
                sqlite3_bind_text(q, 1, text, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) == SQLITE_ROW)
                n = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        return n;
}

sb_err_t sb_store_right_find(sb_store_t *st, const char *event_id, int *foundp,
                             sb_store_right_t *right, char *errstr,
                             size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_RIGHT_FIND];
        sb_err_t err = SB_OK;
        int rc;

        *foundp = 0;
        sqlite3_bind_text(q, 1, event_id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
                *foundp = 1;
                if (right) {
                        const unsigned char *t = sqlite3_column_text(q, 0);
                        const unsigned char *p = sqlite3_column_text(q, 1);
                        const unsigned char *a = sqlite3_column_text(q, 3);

                        snprintf(right->type, sizeof(right->type), "%s",
                                 t ? (const char *)t : "");
                        snprintf(right->pseudonym, sizeof(right->pseudonym),
                                 "%s", p ? (const char *)p : "");
                        right->rows = sqlite3_column_int64(q, 2);
                        snprintf(right->applied_at, sizeof(right->applied_at),
                                 "%s", a ? (const char *)a : "");
                }
        } else if (rc != SQLITE_DONE) {
                err = sb_store_sqlerr(st, "looking up a rights event", errstr,
                                      errstr_size);
        }
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        return err;
}

/* Sets the rows' `restricted` column of `pseudonym` to `on`. */
static sb_err_t sb_store_mark_rows(sb_store_t *st, const char *pseudonym,
                                   int on, char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_MARK_ROWS];

        sqlite3_bind_text(q, 1, pseudonym, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 2, on);
        return sb_store_step(st, q, "marking rows", errstr, errstr_size);
}

static sb_err_t sb_store_unrestrict(sb_store_t *st, const char *pseudonym,
                                    char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_UNRESTRICT];

        sqlite3_bind_text(q, 1, pseudonym, -1, SQLITE_TRANSIENT);
        return sb_store_step(st, q, "lifting a restriction", errstr,
                             errstr_size);
}

sb_err_t sb_store_apply_right(sb_store_t *st, const char *event_id,
                              sb_event_type_t type, const char *pseudonym,
                              int64_t applied_at, int64_t *rowsp, int *appliedp,
                              char *errstr, size_t errstr_size)
{
        sb_store_right_t prev;
        sqlite3_stmt *q;
        char when[32];
        int64_t rows = 0;
        sb_err_t err;
        int found;

        *appliedp = 0;
        if ((err = sb_store_right_find(st, event_id, &found, &prev, errstr,
                                       errstr_size)))
                return err;
        if (found) {
                *rowsp = prev.rows;
                return SB_OK;
        }
        switch (type) {
        case SB_EV_ERASURE:
        case SB_EV_OBJECTION:
        case SB_EV_CONSENT_WITHDRAWN:
                q = st->stmt[SB_STMT_DELETE_SUBJECT];
                sqlite3_bind_text(q, 1, pseudonym, -1, SQLITE_TRANSIENT);
                if ((err = sb_store_step(st, q, "deleting a subject's rows",
                                         errstr, errstr_size)))
                        return err;
                rows = sqlite3_changes64(st->db);
                /* An erased subject leaves nothing behind but the record
                 * of its erasure (sb_rights, sb_receipts). */
                if (type == SB_EV_ERASURE &&
                    (err = sb_store_unrestrict(st, pseudonym, errstr,
                                               errstr_size)))
                        return err;
                break;
        case SB_EV_RESTRICTION:
                q = st->stmt[SB_STMT_RESTRICT];
                sqlite3_bind_text(q, 1, pseudonym, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(q, 2, event_id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(q, 3, applied_at);
                if ((err = sb_store_step(st, q, "restricting a subject", errstr,
                                         errstr_size)) ||
                    (err = sb_store_mark_rows(st, pseudonym, 1, errstr,
                                              errstr_size)))
                        return err;
                if ((rows = sb_store_count(st, pseudonym)) < 0)
                        return sb_store_sqlerr(st, "counting a subject's rows",
                                               errstr, errstr_size);
                break;
        case SB_EV_RESTRICTION_LIFTED:
                if ((err = sb_store_unrestrict(st, pseudonym, errstr,
                                               errstr_size)) ||
                    (err = sb_store_mark_rows(st, pseudonym, 0, errstr,
                                              errstr_size)))
                        return err;
                if ((rows = sb_store_count(st, pseudonym)) < 0)
                        return sb_store_sqlerr(st, "counting a subject's rows",
                                               errstr, errstr_size);
                break;
        case SB_EV_RECTIFICATION:
                rows = 1;
                break;
        default:
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "store '%s': event type '%s' is not a "
                                 "rights event a store applies",
                                 st->path,
                                 sb_event_type2str(type)
                                     ? sb_event_type2str(type)
                                     : "unknown");
        }
        q = st->stmt[SB_STMT_RIGHTS];
        sb_time_format(applied_at, when);
        sqlite3_bind_text(q, 1, event_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 2, sb_event_type2str(type), -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, pseudonym, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 4, rows);
        sqlite3_bind_text(q, 5, when, -1, SQLITE_TRANSIENT);
        if ((err = sb_store_step(st, q, "recording a rights event", errstr,
                                 errstr_size)))
                return err;
        *rowsp = rows;
        *appliedp = 1;
        return SB_OK;
}

int sb_store_is_restricted(sb_store_t *st, const char *pseudonym)
{
        return sb_store_count_of(st, SB_STMT_IS_RESTRICTED, pseudonym) > 0;
}

sb_err_t sb_store_receipt_add(sb_store_t *st, const char *event_id,
                              const void *value, size_t len, char *errstr,
                              size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_RECEIPT_ADD];

        sqlite3_bind_text(q, 1, event_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob64(q, 2, value, len, SQLITE_TRANSIENT);
        return sb_store_step(st, q, "recording a receipt", errstr, errstr_size);
}

void sb_store_receipts_free(sb_store_receipt_t *list, size_t cnt)
{
        size_t i;

        for (i = 0; list && i < cnt; i++)
                free(list[i].value);
        free(list);
}

sb_err_t sb_store_receipt_pending(sb_store_t *st, size_t max,
                                  sb_store_receipt_t **listp, size_t *cntp,
                                  char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_RECEIPT_PENDING];
        sb_store_receipt_t *list = NULL;
        size_t cnt = 0;
        sb_err_t err = SB_OK;
        int rc;

        *listp = NULL;
        *cntp = 0;
        if (max == 0)
                return SB_OK;
        sqlite3_bind_int64(q, 1, (sqlite3_int64)max);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
                const unsigned char *id = sqlite3_column_text(q, 0);
                const void *v = sqlite3_column_blob(q, 1);
                size_t len = (size_t)sqlite3_column_bytes(q, 1);
                sb_store_receipt_t *r, *grown;

                grown = realloc(list, (cnt + 1) * sizeof(*list));
                if (!grown) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
                list = grown;
                r = &list[cnt];
                snprintf(r->event_id, sizeof(r->event_id), "%s",
                         id ? (const char *)id : "");
                r->len = len;
                r->value = malloc(len ? len : 1);
                if (!r->value) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
                if (len)
                        memcpy(r->value, v, len);
                cnt++;
        }
        if (rc != SQLITE_DONE)
                err = sb_store_sqlerr(st, "listing receipts", errstr,
                                      errstr_size);
done:
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        if (err) {
                sb_store_receipts_free(list, cnt);
                return err;
        }
        *listp = list;
        *cntp = cnt;
        return SB_OK;
}

sb_err_t sb_store_receipt_mark_sent(sb_store_t *st, const char *event_id,
                                    char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_RECEIPT_SENT];

        sqlite3_bind_text(q, 1, event_id, -1, SQLITE_TRANSIENT);
        return sb_store_step(st, q, "marking a receipt sent", errstr,
                             errstr_size);
}

int64_t sb_store_receipt_count(sb_store_t *st, int sent)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_RECEIPT_COUNT];
        int64_t n = -1;

        sqlite3_bind_int(q, 1, sent ? 1 : 0);
        if (sqlite3_step(q) == SQLITE_ROW)
                n = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        return n;
}

sb_err_t sb_store_reject(sb_store_t *st, const char *topic, int32_t partition,
                         int64_t offset, const char *reason, char *errstr,
                         size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_REJECT];
        char now[32];

        sb_time_format(sb_store_now(st), now);
        sqlite3_bind_text(q, 1, topic, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 2, partition);
        sqlite3_bind_int64(q, 3, offset);
        sqlite3_bind_text(q, 4, reason, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 5, now, -1, SQLITE_TRANSIENT);
        return sb_store_step(st, q, "recording a rejected message", errstr,
                             errstr_size);
}

int64_t sb_store_offset(sb_store_t *st, const char *topic, int32_t partition)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_GET_OFFSET];
        int64_t off = -1;

        sqlite3_bind_text(q, 1, topic, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 2, partition);
        if (sqlite3_step(q) == SQLITE_ROW)
                off = sqlite3_column_int64(q, 0);
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        return off;
}

sb_err_t sb_store_set_offset(sb_store_t *st, const char *topic,
                             int32_t partition, int64_t next_offset,
                             char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_SET_OFFSET];

        sqlite3_bind_text(q, 1, topic, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 2, partition);
        sqlite3_bind_int64(q, 3, next_offset);
        return sb_store_step(st, q, "storing an offset", errstr, errstr_size);
}

int64_t sb_store_count(sb_store_t *st, const char *pseudonym)
{
        return sb_store_count_of(
            st, pseudonym ? SB_STMT_COUNT_SUBJECT : SB_STMT_COUNT_ALL,
            pseudonym);
}

int64_t sb_store_count_usable(sb_store_t *st, const char *pseudonym)
{
        return sb_store_count_of(st,
                                 pseudonym ? SB_STMT_COUNT_USABLE_SUBJECT
                                           : SB_STMT_COUNT_USABLE_ALL,
                                 pseudonym);
}

const char *sb_purge_reason2str(sb_purge_reason_t reason)
{
        return reason == SB_PURGE_VALIDITY ? "validity" : "retention";
}

sb_err_t sb_store_oldest(sb_store_t *st, int64_t *rowsp, int64_t *oldest_msp,
                         char *errstr, size_t errstr_size)
{
        sqlite3_stmt *q = st->stmt[SB_STMT_OLDEST];
        const unsigned char *t;
        sb_err_t err = SB_OK;

        *rowsp = 0;
        *oldest_msp = -1;
        if (sqlite3_step(q) != SQLITE_ROW) {
                err = sb_store_sqlerr(st, "finding the oldest row", errstr,
                                      errstr_size);
        } else {
                *rowsp = sqlite3_column_int64(q, 0);
                t = sqlite3_column_text(q, 1);
                if (t && sb_time_parse((const char *)t, oldest_msp)) {
                        *oldest_msp = -1;
                        err = sb_seterr(errstr, errstr_size, SB_ERR_STORE,
                                        "store '%s': records.received_at "
                                        "holds '%s', not a time",
                                        st->path, (const char *)t);
                }
        }
        sqlite3_reset(q);
        return err;
}

sb_err_t sb_store_purge(sb_store_t *st, sb_purge_reason_t reason,
                        int64_t cutoff_ms, int64_t at_ms, sb_store_purge_t *res,
                        char *errstr, size_t errstr_size)
{
        int all = reason == SB_PURGE_VALIDITY;
        char cutoff[32], at[32], oldest[32];
        sqlite3_stmt *q;
        sb_err_t err;

        memset(res, 0, sizeof(*res));
        res->oldest_kept_ms = -1;
        sb_time_format(cutoff_ms, cutoff);
        res->restricted = sb_store_count_of(
            st, all ? SB_STMT_RESTRICTED_ALL : SB_STMT_RESTRICTED_BEFORE,
            all ? NULL : cutoff);
        if (res->restricted < 0)
                return sb_store_sqlerr(st, "counting restricted rows", errstr,
                                       errstr_size);
        q = st->stmt[all ? SB_STMT_PURGE_ALL : SB_STMT_PURGE_BEFORE];
        if (!all)
                sqlite3_bind_text(q, 1, cutoff, -1, SQLITE_TRANSIENT);
        if ((err = sb_store_step(st, q, "purging rows", errstr, errstr_size)))
                return err;
        res->rows = sqlite3_changes64(st->db);
        if ((err = sb_store_oldest(st, &res->kept, &res->oldest_kept_ms, errstr,
                                   errstr_size)))
                return err;
        if (res->rows == 0)
                return SB_OK;
        q = st->stmt[SB_STMT_PURGE_LOG];
        sb_time_format(at_ms, at);
        sqlite3_bind_text(q, 1, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 2, sb_purge_reason2str(reason), -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, res->rows);
        sqlite3_bind_text(q, 4, cutoff, -1, SQLITE_TRANSIENT);
        if (res->oldest_kept_ms >= 0) {
                sb_time_format(res->oldest_kept_ms, oldest);
                sqlite3_bind_text(q, 5, oldest, -1, SQLITE_TRANSIENT);
        } else {
                sqlite3_bind_null(q, 5);
        }
        return sb_store_step(st, q, "recording a purge", errstr, errstr_size);
}

json_t *sb_store_columns(sb_store_t *st)
{
        json_t *cols = json_array();
        sqlite3_stmt *q;

        if (sqlite3_prepare_v2(st->db,
                               "SELECT name FROM pragma_table_info("
                               "'records') ORDER BY cid",
                               -1, &q, NULL) != SQLITE_OK)
                return cols;
        while (sqlite3_step(q) == SQLITE_ROW)
                json_array_append_new(
                    cols, json_string((const char *)sqlite3_column_text(q, 0)));
        sqlite3_finalize(q);
        return cols;
}
