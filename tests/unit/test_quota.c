/*
 * A grant's quota (gateway/quota.h): records_per_second as a token bucket
 * of one second's worth, records_per_day per UTC day. Times are given, so
 * every case is exact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "quota.h"

/* 2026-11-25T00:00:00Z */
#define DAY0 (20417 * SB_QUOTA_DAY_MS)

static int take_n(sb_quota_t *q, int n, int64_t now)
{
        int i, got = 0;

        for (i = 0; i < n; i++)
                got += sb_quota_take(q, now);
        return got;
}

static void per_second_allows_a_burst_of_one_second_then_the_rate(void **st)
{
        sb_quota_t q;
        int64_t t = DAY0 + 1000;

        (void)st;
        sb_quota_init(&q, 20, 0, t);
        assert_int_equal(20, take_n(&q, 50, t));
        assert_string_equal("records_per_second", sb_quota_limit_hit(&q, t));
        /* One token every 50 ms. */
        assert_int_equal(t + 50, sb_quota_ready_at(&q, t));
        assert_int_equal(0, take_n(&q, 1, t + 49));
        assert_int_equal(1, take_n(&q, 5, t + 50));
        assert_int_equal(10, take_n(&q, 50, t + 550));
        /* A long pause refills one second's worth, no more. */
        assert_int_equal(20, take_n(&q, 100, t + 60000));
        assert_null(sb_quota_limit_hit(&q, t + 61000));
}

static void rate_over_a_long_run_is_the_limit(void **st)
{
        sb_quota_t q;
        int64_t t = DAY0, ms;
        int got = 0;

        (void)st;
        sb_quota_init(&q, 7, 0, t);
        got += take_n(&q, 1000, t);
        for (ms = 1; ms <= 10000; ms++)
                got += take_n(&q, 3, t + ms);
        /* 7 at once, then 7 a second for 10 s. */
        assert_int_equal(7 + 70, got);
}

static void per_day_counts_the_utc_day_and_resets_at_midnight(void **st)
{
        sb_quota_t q;
        int64_t t = DAY0 + SB_QUOTA_DAY_MS - 2000; /* 23:59:58 */

        (void)st;
        sb_quota_init(&q, 0, 3, t);
        assert_int_equal(3, take_n(&q, 10, t));
        assert_string_equal("records_per_day", sb_quota_limit_hit(&q, t));
        assert_int_equal(DAY0 + SB_QUOTA_DAY_MS, sb_quota_ready_at(&q, t));
        assert_int_equal(0, take_n(&q, 1, t + 1999));
        assert_int_equal(3, take_n(&q, 10, t + 2000));
}

static void both_limits_apply_and_the_day_wins_when_spent(void **st)
{
        sb_quota_t q;
        int64_t t = DAY0 + 5000;

        (void)st;
        sb_quota_init(&q, 10, 15, t);
        assert_int_equal(10, take_n(&q, 20, t));
        assert_string_equal("records_per_second", sb_quota_limit_hit(&q, t));
        assert_int_equal(5, take_n(&q, 20, t + 1000));
        assert_string_equal("records_per_day",
                            sb_quota_limit_hit(&q, t + 1000));
        assert_int_equal(DAY0 + SB_QUOTA_DAY_MS,
                         sb_quota_ready_at(&q, t + 2000));
}

static void no_limit_never_stops(void **st)
{
        sb_quota_t q;

        (void)st;
        sb_quota_init(&q, 0, 0, DAY0);
        assert_int_equal(100000, take_n(&q, 100000, DAY0));
        assert_int_equal(DAY0, sb_quota_ready_at(&q, DAY0));
}

static void new_limits_keep_what_was_used(void **st)
{
        sb_quota_t q;
        int64_t t = DAY0 + 3000;

        (void)st;
        sb_quota_init(&q, 100, 50, t);
        assert_int_equal(40, take_n(&q, 40, t));
        /* A new grant version raises the day and lowers the second. */
        sb_quota_set(&q, 5, 60, t);
        assert_int_equal(5, take_n(&q, 100, t));
        assert_int_equal(5, take_n(&q, 100, t + 10000));
        assert_int_equal(5, take_n(&q, 100, t + 20000));
        assert_int_equal(5, take_n(&q, 100, t + 30000));
        assert_string_equal("records_per_day",
                            sb_quota_limit_hit(&q, t + 40000));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                per_second_allows_a_burst_of_one_second_then_the_rate),
            cmocka_unit_test(rate_over_a_long_run_is_the_limit),
            cmocka_unit_test(per_day_counts_the_utc_day_and_resets_at_midnight),
            cmocka_unit_test(both_limits_apply_and_the_day_wins_when_spent),
            cmocka_unit_test(no_limit_never_stops),
            cmocka_unit_test(new_limits_keep_what_was_used),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
