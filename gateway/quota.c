#include "quota.h"

#include <stddef.h>
#include <string.h>

static void sb_quota_refill(sb_quota_t *q, int64_t now_ms)
{
        int64_t cap = q->per_second * 1000;

        if (q->per_second && now_ms > q->refilled_ms) {
                /* per_second tokens a second: per_second thousandths a
                 * millisecond. */
                if ((now_ms - q->refilled_ms) >= 1000)
                        q->milli = cap;
                else
                        q->milli += (now_ms - q->refilled_ms) * q->per_second;
                if (q->milli > cap)
                        q->milli = cap;
        }
        if (now_ms > q->refilled_ms)
                q->refilled_ms = now_ms;
        if (now_ms / SB_QUOTA_DAY_MS != q->day) {
                q->day = now_ms / SB_QUOTA_DAY_MS;
                q->day_used = 0;
        }
}

void sb_quota_init(sb_quota_t *q, int64_t per_second, int64_t per_day,
                   int64_t now_ms)
{
        q->per_second = per_second;
        q->per_day = per_day;
        q->milli = per_second * 1000;
        q->refilled_ms = now_ms;
        q->day = now_ms / SB_QUOTA_DAY_MS;
        q->day_used = 0;
}

void sb_quota_set(sb_quota_t *q, int64_t per_second, int64_t per_day,
                  int64_t now_ms)
{
        sb_quota_refill(q, now_ms);
        q->per_second = per_second;
        q->per_day = per_day;
        if (q->milli > per_second * 1000)
                q->milli = per_second * 1000;
}

const char *sb_quota_limit_hit(sb_quota_t *q, int64_t now_ms)
{
        sb_quota_refill(q, now_ms);
        if (q->per_day && q->day_used >= q->per_day)
                return "records_per_day";
        if (q->per_second && q->milli < 1000)
                return "records_per_second";
        return NULL;
}

int sb_quota_take(sb_quota_t *q, int64_t now_ms)
{
        if (sb_quota_limit_hit(q, now_ms))
                return 0;
        if (q->per_second)
                q->milli -= 1000;
        q->day_used++;
        return 1;
}

int64_t sb_quota_ready_at(sb_quota_t *q, int64_t now_ms)
{
        const char *hit = sb_quota_limit_hit(q, now_ms);

        if (!hit)
                return now_ms;
        if (!strcmp(hit, "records_per_day")) /* the next UTC day */
                return (q->day + 1) * SB_QUOTA_DAY_MS;
        return now_ms + (1000 - q->milli + q->per_second - 1) / q->per_second;
}
