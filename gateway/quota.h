/*
 * sharebus - a grant's quota (DESIGN.md §5 "rate"; CNIL R5.2-02, R5.2-03).
 *
 * records_per_second is a token bucket that holds at most one second's
 * worth of records, so a grant may burst up to its rate after a pause but
 * never exceeds it over any second; records_per_day counts the records of
 * the current UTC day. Either limit may be 0 (none). Pure arithmetic on
 * the times it is given, so that it can be tested without a clock; the
 * gateway keeps one per grant, per instance.
 */
#ifndef SB_QUOTA_H
#define SB_QUOTA_H

#include <stdint.h>

#define SB_QUOTA_DAY_MS 86400000LL

typedef struct sb_quota_s {
        int64_t per_second; /* 0: no limit */
        int64_t per_day;    /* 0: no limit */
        int64_t milli;      /* tokens left, in thousandths */
        int64_t refilled_ms;
        int64_t day;      /* UTC day number of day_used */
        int64_t day_used; /* records taken that day */
} sb_quota_t;

/* A full bucket at `now_ms`. */
void sb_quota_init(sb_quota_t *q, int64_t per_second, int64_t per_day,
                   int64_t now_ms);
/* New limits (a new grant version), keeping what was used. */
void sb_quota_set(sb_quota_t *q, int64_t per_second, int64_t per_day,
                  int64_t now_ms);
/* 1 if one record may go now (and counts it), 0 if over a limit. */
int sb_quota_take(sb_quota_t *q, int64_t now_ms);
/* When sb_quota_take() will succeed next (now_ms if it would now). */
int64_t sb_quota_ready_at(sb_quota_t *q, int64_t now_ms);
/* The limit that stops records now: "records_per_day",
 * "records_per_second", or NULL if none. */
const char *sb_quota_limit_hit(sb_quota_t *q, int64_t now_ms);

#endif
