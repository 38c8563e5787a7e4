/*
 * The audit watch rules (admin/watch.c; CNIL R4.3-16, R4.3-17, R4.3-18),
 * on counts and on synthetic audit entries in the format the gateway
 * writes:
 *   - volume.spike: a reuser's day at 4x its median of 14 days raises, 2x
 *     does not, nor does a day with fewer than 7 days of history, nor one
 *     at or below min_records; the alert names the reuser, dataset, day,
 *     records and baseline, and is keyed by them;
 *   - delivery.outside_validity: a delivery one second after its grant's
 *     valid_until, or before its valid_from, raises; one inside does not;
 *     delivery.unknown_grant for a grant the declaration does not know;
 *     both keyed by the entry's chain and seq and saying it is a bug;
 *   - quarantine.growth: a day far above the median of the days before
 *     and above min_quarantined raises, from a zero baseline too; below
 *     min_quarantined or within factor x the median does not;
 *   - no alert holds a subject pseudonym.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "watch.h"

#define DS  "beneficiaries"
#define DAY SB_WATCH_DAY_MS
#define PS  "5f0c3d2a9b7e6f415f0c3d2a9b7e6f41"
/* 2026-11-25T12:00:00Z: the watch runs at noon. */
#define NOW_MS 1795608000000LL
#define TODAY  "2026-11-25"
#define UNTIL  "2026-11-20T00:00:00Z"
#define FROM   "2026-11-01T00:00:00Z"

static void check_alert_count(const json_t *alerts, size_t want)
{
        if (json_array_size(alerts) != want) {
                char *s = json_dumps(alerts, JSON_INDENT(2));

                fail_msg("expected %zu alert(s), got %zu:\n%s", want,
                         json_array_size(alerts), s ? s : "?");
        }
}

static const char *key_of(const json_t *alerts, size_t i)
{
        return json_string_value(
            json_object_get(json_array_get(alerts, i), "key"));
}

static const json_t *value_of(const json_t *alerts, size_t i)
{
        return json_object_get(json_array_get(alerts, i), "value");
}

static const char *field(const json_t *v, const char *name)
{
        const char *s = json_string_value(json_object_get(v, name));

        return s ? s : "(none)";
}

static int64_t ifield(const json_t *v, const char *name)
{
        const json_t *j = json_object_get(v, name);

        if (!json_is_integer(j))
                fail_msg("alert field '%s': expected an integer", name);
        return json_integer_value(j);
}

/* Every alert: a reason, a detected_at time, no pseudonym. */
static void check_common(const json_t *alerts)
{
        char *text = json_dumps(alerts, JSON_COMPACT);
        const json_t *a;
        int64_t ms;
        size_t i;

        assert_non_null(text);
        if (strstr(text, PS))
                fail_msg("an alert holds a subject pseudonym:\n%s", text);
        free(text);
        json_array_foreach(alerts, i, a)
        {
                const json_t *v = json_object_get(a, "value");

                if (json_string_length(json_object_get(v, "reason")) < 20)
                        fail_msg("alert %zu: no sentence in 'reason'", i);
                if (sb_time_parse(field(v, "detected_at"), &ms) || ms != NOW_MS)
                        fail_msg("alert %zu: detected_at: expected %" PRId64
                                 ", got %s",
                                 i, (int64_t)NOW_MS, field(v, "detected_at"));
        }
}

static int64_t ms_of(const char *rfc3339)
{
        int64_t ms;

        assert_int_equal(0, sb_time_parse(rfc3339, &ms));
        return ms;
}

/*
 * The pure rules
 */

/* Fourteen days of `base` records, then `records` today. */
static int spike(int64_t base, int64_t records, size_t days)
{
        sb_watch_params_t p;
        int64_t history[14];
        size_t i;

        sb_watch_params_init(&p);
        for (i = 0; i < days; i++)
                history[i] = base + (int64_t)(i % 3) - 1; /* 999..1001 */
        return sb_watch_volume_spike(&p, records, history, days, NULL);
}

static void volume_spike_needs_factor_history_and_volume(void **state)
{
        sb_watch_params_t p;
        int64_t h[4] = {10, 30, 20, 40};
        double baseline;

        (void)state;
        assert_true(spike(1000, 4000, 14));  /* 4x */
        assert_false(spike(1000, 2000, 14)); /* 2x */
        assert_false(spike(1000, 3000, 14)); /* 3x: not above */
        assert_false(spike(1000, 4000, 6));  /* too little history */
        assert_true(spike(1000, 4000, 7));   /* just enough */
        assert_false(spike(200, 1000, 14));  /* 5x, but not > 1000 */
        assert_true(spike(200, 1001, 14));

        sb_watch_params_init(&p);
        assert_int_equal(14, p.baseline_days);
        assert_int_equal(7, p.min_baseline_days);
        assert_int_equal(1000, p.min_records);
        assert_int_equal(100, p.min_quarantined);
        assert_true(p.factor == 3.0);
        /* The median of an even count is the mean of the middle two. */
        p.min_baseline_days = 4;
        p.min_records = 0;
        assert_false(sb_watch_volume_spike(&p, 75, h, 4, &baseline));
        assert_true(baseline == 25.0);
        assert_true(sb_watch_volume_spike(&p, 76, h, 4, &baseline));
}

static sb_grant_t *grant(const char *id, const char *from, const char *until)
{
        sb_grant_t *g = calloc(1, sizeof(*g));

        assert_non_null(g);
        g->id = strdup(id);
        g->reuser = strdup("reuser-a");
        g->dataset = strdup(DS);
        assert_non_null(g->id);
        if (from) {
                g->has_valid_from = 1;
                g->valid_from_ms = ms_of(from);
        }
        if (until) {
                g->has_valid_until = 1;
                g->valid_until_ms = ms_of(until);
        }
        return g;
}

static void grant_free(sb_grant_t *g)
{
        free(g->id);
        free(g->reuser);
        free(g->dataset);
        free(g);
}

static void validity_is_exact_to_the_second(void **state)
{
        sb_grant_t *g = grant("g-a", FROM, UNTIL);
        int64_t until = g->valid_until_ms, from = g->valid_from_ms;

        (void)state;
        assert_int_equal(0, sb_watch_validity(g, from, until - 1));
        assert_int_equal(0, sb_watch_validity(g, from + DAY, until - 1000));
        assert_int_equal(1, sb_watch_validity(g, until - 5000, until + 1000));
        assert_int_equal(1, sb_watch_validity(g, until + DAY, until + DAY));
        assert_int_equal(-1, sb_watch_validity(g, from - 1000, from + 1000));
        /* A grant without a window is valid whenever. */
        g->has_valid_from = g->has_valid_until = 0;
        assert_int_equal(0, sb_watch_validity(g, 0, until + DAY));
        grant_free(g);
}

static int growth(int64_t count, const int64_t *days, size_t n)
{
        sb_watch_params_t p;
        int64_t h[14];

        sb_watch_params_init(&p);
        memcpy(h, days, n * sizeof(*h));
        return sb_watch_quarantine_growth(&p, count, h, n, NULL);
}

static void quarantine_growth_above_median_and_minimum(void **state)
{
        static const int64_t quiet[14] = {0, 2, 1, 3, 0, 0, 2,
                                          5, 1, 0, 2, 4, 3, 2};
        static const int64_t zero[14] = {0};
        static const int64_t busy[14] = {60, 60, 60, 60, 60, 60, 60,
                                         60, 60, 60, 60, 60, 60, 60};

        (void)state;
        assert_true(growth(150, quiet, 14));
        assert_false(growth(90, quiet, 14));  /* below min_quarantined */
        assert_false(growth(100, quiet, 14)); /* not above it */
        assert_true(growth(101, zero, 14));   /* zero baseline */
        assert_false(growth(150, busy, 14));  /* 2.5x */
        assert_true(growth(181, busy, 14));
}

/*
 * Aggregated from audit entries
 */

static int64_t seq_next = 1;

static json_t *delivery(const char *reuser, const char *grant_id,
                        int64_t records, int64_t first, int64_t last)
{
        json_t *e = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:[s, s], s:I, s:I, s:[s], "
            "s:I, s:I, s:I, s:s, s:I}",
            "op", "delivery", "author", "sharebus://gateway/gw-1", "dataset",
            DS, "grant", grant_id, "reuser", reuser, "purposes", "research",
            "legal_basis", "gdpr-6-1-e", "fields", "pseudonym", "postcode",
            "records", (json_int_t)records, "bytes", (json_int_t)records * 100,
            "subjects", PS, "first_at", (json_int_t)first, "last_at",
            (json_int_t)last, "at", (json_int_t)last + 5, "chain", "gw-1",
            "seq", (json_int_t)seq_next++);

        assert_non_null(e);
        return e;
}

static void feed(sb_watch_t *w, json_t *e)
{
        char errstr[256] = "";

        if (sb_watch_feed(e, w, errstr, sizeof(errstr)))
                fail_msg("sb_watch_feed: %s", errstr);
        json_decref(e);
}

static json_t *alerts_of(sb_watch_t *w)
{
        char errstr[256] = "";
        json_t *alerts = json_array();

        assert_non_null(alerts);
        if (sb_watch_alerts(w, alerts, errstr, sizeof(errstr)))
                fail_msg("sb_watch_alerts: %s", errstr);
        check_common(alerts);
        return alerts;
}

static void deliveries_outside_validity_or_grant_unknown_raise(void **state)
{
        sb_grant_t *grants[2];
        sb_watch_params_t p;
        const json_t *v;
        json_t *alerts;
        sb_watch_t *w;
        int64_t until, from, inside;
        char key[128];

        (void)state;
        grants[0] = grant("g-a", FROM, UNTIL);
        grants[1] = grant("g-b", "2026-11-24T00:00:00Z", NULL);
        until = grants[0]->valid_until_ms;
        from = grants[1]->valid_from_ms;
        inside = until - 3600 * 1000;
        sb_watch_params_init(&p);
        w = sb_watch_new(&p, grants, 2, NOW_MS);
        assert_non_null(w);
        seq_next = 1;
        feed(w, delivery("reuser-a", "g-a", 5, inside - 1000, inside));
        feed(w, delivery("reuser-a", "g-a", 3, until - 2000, until + 1000));
        feed(w, delivery("reuser-b", "g-b", 7, from + 1000, from + 2000));
        feed(w, delivery("reuser-b", "g-b", 2, from - 1000, from + 2000));
        feed(w, delivery("reuser-c", "g-zombie", 4, inside, inside + 1));
        /* Not a delivery: not judged. */
        feed(w,
             json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "op", "exclusion",
                       "dataset", DS, "grant", "g-zombie", "reuser", "reuser-c",
                       "reason", "validity", "at", (json_int_t)inside));
        /* Without a grant id: counted as skipped. */
        feed(w, json_pack("{s:s, s:s, s:s, s:I, s:I}", "op", "delivery",
                          "dataset", DS, "reuser", "reuser-c", "records",
                          (json_int_t)1, "at", (json_int_t)inside));
        assert_int_equal(1, sb_watch_skipped(w));
        alerts = alerts_of(w);
        check_alert_count(alerts, 3);

        assert_string_equal("delivery.outside_validity/g-a/gw-1/2",
                            key_of(alerts, 0));
        v = value_of(alerts, 0);
        assert_string_equal(SB_WATCH_ALERT_OUTSIDE, field(v, "alert"));
        assert_string_equal("reuser-a", field(v, "reuser"));
        assert_string_equal(DS, field(v, "dataset"));
        assert_string_equal("g-a", field(v, "grant"));
        assert_string_equal("gw-1", field(v, "chain"));
        assert_int_equal(2, ifield(v, "seq"));
        assert_int_equal(3, ifield(v, "records"));
        assert_int_equal(until, ms_of(field(v, "valid_until")));
        assert_int_equal(until + 1000, ms_of(field(v, "last_at")));
        if (!strstr(field(v, "reason"), "bug") ||
            !strstr(field(v, "reason"), "after"))
                fail_msg("reason must say it is a bug, after valid_until: %s",
                         field(v, "reason"));

        assert_string_equal("delivery.outside_validity/g-b/gw-1/4",
                            key_of(alerts, 1));
        v = value_of(alerts, 1);
        assert_int_equal(from, ms_of(field(v, "valid_from")));
        if (!strstr(field(v, "reason"), "before"))
                fail_msg("reason must say before valid_from: %s",
                         field(v, "reason"));

        snprintf(key, sizeof(key), "%s/g-zombie/gw-1/5",
                 SB_WATCH_ALERT_UNKNOWN_GRANT);
        assert_string_equal(key, key_of(alerts, 2));
        v = value_of(alerts, 2);
        assert_string_equal("reuser-c", field(v, "reuser"));
        assert_string_equal("g-zombie", field(v, "grant"));
        if (!strstr(field(v, "reason"), "bug") ||
            !strstr(field(v, "reason"), "does not know"))
                fail_msg("reason must say the grant is unknown, a bug: %s",
                         field(v, "reason"));
        json_decref(alerts);
        sb_watch_destroy(w);
        grant_free(grants[0]);
        grant_free(grants[1]);
}

/* `records` for reuser on `days_ago` days before NOW_MS, in two entries. */
static void day_of_records(sb_watch_t *w, const char *reuser, int days_ago,
                           int64_t records)
{
        int64_t t = NOW_MS - days_ago * DAY - 3600 * 1000;

        feed(w, delivery(reuser, "g-a", records / 2, t - 1000, t));
        feed(w, delivery(reuser, "g-a", records - records / 2, t + 1000,
                         t + 2000));
}

static void volume_spike_from_entries_per_reuser_and_day(void **state)
{
        sb_grant_t *grants[1];
        sb_watch_params_t p;
        const json_t *v;
        json_t *alerts;
        sb_watch_t *w;
        char key[128];
        int d;

        (void)state;
        grants[0] = grant("g-a", NULL, NULL);
        sb_watch_params_init(&p);
        w = sb_watch_new(&p, grants, 1, NOW_MS);
        assert_non_null(w);
        for (d = 1; d <= 14; d++) {
                day_of_records(w, "reuser-a", d, 1000 + d); /* median 1007.5 */
                day_of_records(w, "reuser-b", d, 1000);
                if (d <= 6)
                        day_of_records(w, "reuser-c", d, 1000);
        }
        /* Long ago: outside the baseline, never counted. */
        day_of_records(w, "reuser-a", 40, 1);
        day_of_records(w, "reuser-a", 0, 4100); /* 4x */
        day_of_records(w, "reuser-b", 0, 2000); /* 2x */
        day_of_records(w, "reuser-c", 0, 9000); /* 6 days of history */
        alerts = alerts_of(w);
        check_alert_count(alerts, 1);
        snprintf(key, sizeof(key), "volume.spike/reuser-a/%s/%s", DS, TODAY);
        assert_string_equal(key, key_of(alerts, 0));
        v = value_of(alerts, 0);
        assert_string_equal(SB_WATCH_ALERT_SPIKE, field(v, "alert"));
        assert_string_equal("reuser-a", field(v, "reuser"));
        assert_string_equal(DS, field(v, "dataset"));
        assert_string_equal(TODAY, field(v, "day"));
        assert_int_equal(4100, ifield(v, "records"));
        assert_int_equal(1008, ifield(v, "baseline"));
        assert_int_equal(14, ifield(v, "baseline_days"));
        json_decref(alerts);
        sb_watch_destroy(w);

        /* Yesterday's spike is still judged today; the day before's is
         * not. */
        w = sb_watch_new(&p, grants, 1, NOW_MS);
        assert_non_null(w);
        for (d = 3; d <= 16; d++)
                day_of_records(w, "reuser-a", d, 1000);
        day_of_records(w, "reuser-a", 1, 5000);
        day_of_records(w, "reuser-b", 2, 5000);
        for (d = 3; d <= 16; d++)
                day_of_records(w, "reuser-b", d, 1000);
        alerts = alerts_of(w);
        check_alert_count(alerts, 1);
        assert_string_equal("volume.spike/reuser-a/" DS "/2026-11-24",
                            key_of(alerts, 0));
        json_decref(alerts);
        sb_watch_destroy(w);
        grant_free(grants[0]);
}

static void quarantine_growth_from_message_times(void **state)
{
        sb_watch_params_t p;
        const json_t *v;
        json_t *alerts;
        sb_watch_t *w;
        int d, i;

        (void)state;
        sb_watch_params_init(&p);
        /* Not read: not judged, whatever was fed. */
        w = sb_watch_new(&p, NULL, 0, NOW_MS);
        assert_non_null(w);
        alerts = alerts_of(w);
        check_alert_count(alerts, 0);
        json_decref(alerts);
        for (d = 1; d <= 14; d++)
                for (i = 0; i < d % 3; i++)
                        sb_watch_quarantined(w, NOW_MS - d * DAY);
        for (i = 0; i < 150; i++)
                sb_watch_quarantined(w, NOW_MS - i * 1000);
        alerts = alerts_of(w);
        check_alert_count(alerts, 1);
        assert_string_equal("quarantine.growth/" TODAY, key_of(alerts, 0));
        v = value_of(alerts, 0);
        assert_string_equal(SB_WATCH_ALERT_QUARANTINE, field(v, "alert"));
        assert_string_equal(TODAY, field(v, "day"));
        assert_int_equal(150, ifield(v, "count"));
        assert_int_equal(1, ifield(v, "baseline"));
        json_decref(alerts);
        sb_watch_destroy(w);

        /* 99 today over an empty past: below min_quarantined. */
        w = sb_watch_new(&p, NULL, 0, NOW_MS);
        assert_non_null(w);
        sb_watch_quarantine_seen(w);
        for (i = 0; i < 99; i++)
                sb_watch_quarantined(w, NOW_MS - i * 1000);
        alerts = alerts_of(w);
        check_alert_count(alerts, 0);
        json_decref(alerts);
        sb_watch_destroy(w);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(volume_spike_needs_factor_history_and_volume),
            cmocka_unit_test(validity_is_exact_to_the_second),
            cmocka_unit_test(quarantine_growth_above_median_and_minimum),
            cmocka_unit_test(
                deliveries_outside_validity_or_grant_unknown_raise),
            cmocka_unit_test(volume_spike_from_entries_per_reuser_and_day),
            cmocka_unit_test(quarantine_growth_from_message_times),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
