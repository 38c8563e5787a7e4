/*
 * GDPR art. 16, 18, 21 and 7(3), DESIGN.md §6: the reuser agent applies
 * every rights notice its stream carries. A restriction keeps the
 * subject's rows but takes them out of records_usable until it is lifted;
 * an objection and a consent withdrawal delete the subject's rows; a
 * rectification rewrites the record. Each event is applied once, even when
 * the same notice arrives twice, and is recorded in sb_rights with its
 * receipt. A notice whose subject is not its key, an event id reused for
 * another event, and a type the agent does not apply are refused into
 * sb_rejected.
 *
 * The messages are produced here as the gateway produces them on
 * sb.out.<reuser>.<dataset> (docs/messages.md): records keyed
 * "<pseudonym>/<record id>", notices keyed "<pseudonym>" with a
 * RightsEvent value, partitioned by pseudonym.
 */
#include <sqlite3.h>

#include "fakegw.h"
#include "testutil.h"

static const char *grant =
    "{\"id\": \"g-r\", \"reuser\": \"rights-desk\", \"dataset\": "
    "\"beneficiaries\", \"purposes\": [\"p\"], \"legal_basis\": "
    "\"gdpr-6-1-e\", \"status\": \"approved\", \"fields\": {\"postcode\": "
    "\"keep\", \"household_size\": \"keep\"}}";

#define PS_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PS_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/*
 * The reuser's side
 */

static void run(sb_reuser_t *ru)
{
        char errstr[512];

        SB_OK_OR_FAIL(
            sb_reuser_run(ru, NULL, SB_TEST_IDLE_MS, errstr, sizeof(errstr)),
            errstr);
}

/* The text of a one-value query with one text parameter (or NULL). */
static void query(sqlite3 *db, const char *sql, const char *param, char *out,
                  size_t size)
{
        sqlite3_stmt *q;
        const unsigned char *t;

        SB_CHECK(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK,
                 "prepare %s: %s", sql, sqlite3_errmsg(db));
        if (param)
                sqlite3_bind_text(q, 1, param, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && (t = sqlite3_column_text(q, 0)))
                snprintf(out, size, "%s", (const char *)t);
        else
                snprintf(out, size, "(none)");
        sqlite3_finalize(q);
}

static void check_right(sqlite3 *db, const char *event_id, const char *type,
                        const char *ps, int rows)
{
        char got[256], want[256];

        query(db,
              "SELECT type || ' ' || pseudonym || ' ' || rows_affected FROM "
              "sb_rights WHERE event_id = ?1",
              event_id, got, sizeof(got));
        snprintf(want, sizeof(want), "%s %s %d", type, ps, rows);
        SB_CHECK_STR(want, got, "sb_rights row of the event");
}

int main(void)
{
        char errstr[1024], got[1024], path[600];
        char e_restrict[37], e_lift[37], e_rectify[37], e_object[37],
            e_withdraw[37], e_other[37];
        const sb_reuser_stats_t *st;
        sb_reuser_cfg_t cfg;
        sb_store_t *store;
        sb_reuser_t *ru;
        sb_grant_t *g;
        sb_testenv_t te;
        sqlite3 *db;
        sb_fakegw_t gw;

        sb_testenv_init(&te);
        sb_testenv_grant(&te, "r.json", grant);
        snprintf(path, sizeof(path), "%s/r.json", te.grants_dir);
        g = sb_grant_load(path, te.cat, errstr, sizeof(errstr));
        SB_CHECK(g, "grant: %s", errstr);
        sb_fakegw_init(&gw, &te, g);
        sb_uuid4(e_restrict);
        sb_uuid4(e_lift);
        sb_uuid4(e_rectify);
        sb_uuid4(e_object);
        sb_uuid4(e_withdraw);
        sb_uuid4(e_other);

        sb_testenv_reuser_cfg(&te, "r.json", &cfg);
        ru = sb_reuser_new(&cfg, errstr, sizeof(errstr));
        SB_CHECK(ru, "reuser: %s", errstr);
        store = sb_reuser_store(ru);
        st = sb_reuser_stats(ru);
        SB_CHECK(sqlite3_open(cfg.database, &db) == SQLITE_OK, "open db");

        /* 1. Two records of each subject; A's processing is restricted
         *    (the notice arrives twice). */
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a1", "75001",
                         1);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a2", "75002",
                         2);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b1", "69001",
                         3);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b2", "69002",
                         4);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION, e_restrict, PS_A, PS_A);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION, e_restrict, PS_A, PS_A);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(4, st->records, "records stored");
        SB_CHECK_INT(2, sb_store_count(store, PS_A),
                     "rows of the restricted subject (kept)");
        SB_CHECK(sb_store_is_restricted(store, PS_A), "A is not restricted");
        SB_CHECK(!sb_store_is_restricted(store, PS_B), "B is restricted");
        SB_CHECK_INT(0, sb_store_count_usable(store, PS_A),
                     "usable rows of the restricted subject");
        SB_CHECK_INT(2, sb_store_count_usable(store, NULL),
                     "usable rows (B's only)");
        query(db, "SELECT event_id FROM sb_restricted WHERE pseudonym = ?1",
              PS_A, got, sizeof(got));
        SB_CHECK_STR(e_restrict, got, "sb_restricted: A's restriction event");
        query(db,
              "SELECT group_concat(pseudonym) FROM (SELECT DISTINCT "
              "pseudonym FROM records_usable ORDER BY 1)",
              NULL, got, sizeof(got));
        SB_CHECK_STR(PS_B, got, "subjects of records_usable");
        query(db,
              "SELECT group_concat(restricted) FROM (SELECT restricted FROM "
              "records ORDER BY pseudonym, record_id)",
              NULL, got, sizeof(got));
        SB_CHECK_STR("1,1,0,0", got, "records.restricted (A, A, B, B)");
        SB_CHECK_INT(1, st->restrictions, "restrictions applied");
        SB_CHECK_INT(1, st->rights_duplicates, "notices seen again");
        check_right(db, e_restrict, "sharebus.rights.restriction", PS_A, 2);

        /* A record arriving for a restricted subject is restricted too. */
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_A, "a3", "75003",
                         5);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(3, sb_store_count(store, PS_A), "rows of A");
        SB_CHECK_INT(0, sb_store_count_usable(store, PS_A), "usable rows of A");
        query(db,
              "SELECT restricted FROM records WHERE pseudonym = ?1 AND "
              "record_id = 'a3'",
              PS_A, got, sizeof(got));
        SB_CHECK_STR("1", got, "records.restricted of A's new record");

        /* 2. The restriction is lifted; B's record b1 is rectified, then
         *    updated, then the rectification arrives again: it must not
         *    overwrite the newer value. */
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION_LIFTED, e_lift, PS_A, PS_A);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION_LIFTED, e_lift, PS_A, PS_A);
        sb_fakegw_record(&gw, SB_EV_RECTIFICATION, e_rectify, PS_B, "b1",
                         "69100", 7);
        sb_fakegw_record(&gw, SB_EV_RECORD_UPSERT, NULL, PS_B, "b1", "69200",
                         8);
        sb_fakegw_record(&gw, SB_EV_RECTIFICATION, e_rectify, PS_B, "b1",
                         "69100", 7);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK(!sb_store_is_restricted(store, PS_A), "A still restricted");
        SB_CHECK_INT(3, sb_store_count_usable(store, PS_A),
                     "usable rows of A after the lift");
        query(db, "SELECT COUNT(*) FROM sb_restricted", NULL, got, sizeof(got));
        SB_CHECK_STR("0", got, "rows of sb_restricted after the lift");
        query(db,
              "SELECT group_concat(restricted) FROM (SELECT restricted FROM "
              "records WHERE pseudonym = ?1)",
              PS_A, got, sizeof(got));
        SB_CHECK_STR("0,0,0", got, "records.restricted of A after the lift");
        query(db,
              "SELECT postcode || ' ' || household_size FROM records WHERE "
              "pseudonym = ?1 AND record_id = 'b1'",
              PS_B, got, sizeof(got));
        SB_CHECK_STR("69200 8", got,
                     "b1 after rectification, update and the rectification "
                     "again");
        SB_CHECK_INT(2, sb_store_count(store, PS_B), "rows of B");
        SB_CHECK_INT(1, st->restrictions_lifted, "lifts applied");
        SB_CHECK_INT(1, st->rectifications, "rectifications applied");
        SB_CHECK_INT(3, st->rights_duplicates, "notices seen again");
        check_right(db, e_lift, "sharebus.rights.restriction-lifted", PS_A, 3);
        check_right(db, e_rectify, "sharebus.rights.rectification", PS_B, 1);

        /* 3. A objects, B withdraws consent (each twice); refused: a
         *    notice whose subject is not its key, A's objection's event id
         *    reused after it (same partition) for a restriction, and
         *    consent-given (not applied by agents). */
        sb_fakegw_notice(&gw, SB_EV_OBJECTION, e_object, PS_A, PS_A);
        sb_fakegw_notice(&gw, SB_EV_OBJECTION, e_object, PS_A, PS_A);
        sb_fakegw_notice(&gw, SB_EV_CONSENT_WITHDRAWN, e_withdraw, PS_B, PS_B);
        sb_fakegw_notice(&gw, SB_EV_CONSENT_WITHDRAWN, e_withdraw, PS_B, PS_B);
        sb_fakegw_notice(&gw, SB_EV_ERASURE, e_other, PS_B, PS_A);
        sb_fakegw_notice(&gw, SB_EV_RESTRICTION, e_object, PS_A, PS_A);
        sb_fakegw_notice(&gw, SB_EV_CONSENT_GIVEN, e_other, PS_B, PS_B);
        sb_fakegw_flush(&gw);
        run(ru);
        SB_CHECK_INT(0, sb_store_count(store, PS_A),
                     "rows of the objecting subject");
        SB_CHECK_INT(0, sb_store_count(store, PS_B),
                     "rows of the subject who withdrew consent");
        SB_CHECK_INT(1, st->objections, "objections applied");
        SB_CHECK_INT(1, st->consent_withdrawn, "withdrawals applied");
        SB_CHECK_INT(5, st->rights_duplicates, "notices seen again");
        SB_CHECK_INT(0, st->erasures, "erasures applied (the bad one)");
        SB_CHECK(!sb_store_is_restricted(store, PS_A),
                 "A restricted by a reused event id");
        check_right(db, e_object, "sharebus.rights.objection", PS_A, 3);
        check_right(db, e_withdraw, "sharebus.rights.consent-withdrawn", PS_B,
                    2);
        query(db, "SELECT COUNT(*) FROM sb_rights", NULL, got, sizeof(got));
        SB_CHECK_STR("5", got, "rights events recorded");
        SB_CHECK_INT(3, st->rejected, "notices refused");
        query(db, "SELECT group_concat(reason, ' | ') FROM sb_rejected", NULL,
              got, sizeof(got));
        SB_CHECK(strstr(got, "subject does not match its key") &&
                     strstr(got, "was applied before as "
                                 "sharebus.rights.objection") &&
                     strstr(got, "sharebus.rights.consent-given"),
                 "sb_rejected reasons: %s", got);

        /* One receipt per event applied, all acknowledged. */
        SB_CHECK_INT(5, sb_store_receipt_count(store, 1), "receipts sent");
        SB_CHECK_INT(0, sb_store_receipt_count(store, 0), "receipts unsent");
        SB_CHECK_INT(5, st->receipts_sent, "receipts sent (stats)");
        SB_CHECK_INT(5, sb_testenv_count_messages(&te, "sb.ack.rights-desk"),
                     "messages on sb.ack.rights-desk");
        printf("restriction kept 2 rows out of use and was lifted, objection "
               "and consent withdrawal deleted their subjects, "
               "rectification applied once; 5 receipts\n");

        sqlite3_close(db);
        sb_reuser_destroy(ru);
        sb_config_release(sb_reuser_cfg_table, &cfg);
        sb_fakegw_release(&gw);
        sb_grant_destroy(g);
        sb_testenv_release(&te);
        return 0;
}
