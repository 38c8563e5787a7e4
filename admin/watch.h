/*
 * sharebus - simple, documented rules on the audit stream that raise
 * alerts for the person on duty (`sharebus audit watch`; DESIGN.md §9;
 * CNIL R4.3-16, R4.3-17, R4.3-18, R4.3-20, R5.2-02, R5.4-14):
 *
 *   volume.spike               a reuser received far more records of a
 *                              dataset on a UTC day than its own baseline,
 *                              the median of its previous days with
 *                              deliveries;
 *   delivery.outside_validity  a delivery before its grant's valid_from or
 *                              after its valid_until: the gateway never
 *                              does that, so it is a bug;
 *   delivery.unknown_grant     a delivery under a grant id the platform
 *                              declaration does not know: a bug too (or a
 *                              grant file removed since);
 *   quarantine.growth          far more messages quarantined on a UTC day
 *                              than the median of the previous days.
 * (`receipt.overdue` and `receipt.invalid` come from admin/rights.h, run
 * in the same pass by the watcher below.)
 *
 * The rules are pure functions over counts, and sb_watch_t aggregates
 * audit entries (read from _sb.audit, an export or a unit test) and
 * quarantine times into those counts, so each rule is testable without
 * Kafka. Alerts carry reusers, datasets, grants, days and counts, never a
 * subject id or a pseudonym; each has a key that names one problem, so a
 * watcher scanning again raises it once (admin/alerts.h).
 * docs/messages.md ("Alerts") documents every rule and field.
 */
#ifndef SB_WATCH_H
#define SB_WATCH_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "grant.h"
#include "platform.h"

#define SB_WATCH_ALERT_SPIKE         "volume.spike"
#define SB_WATCH_ALERT_OUTSIDE       "delivery.outside_validity"
#define SB_WATCH_ALERT_UNKNOWN_GRANT "delivery.unknown_grant"
#define SB_WATCH_ALERT_QUARANTINE    "quarantine.growth"
#define SB_WATCH_QUARANTINE_TOPIC    "_sb.quarantine"
#define SB_WATCH_DAY_MS              (24 * 3600 * 1000LL)
/* The gateway stamps a delivery a moment after it checked the grant. */
#define SB_WATCH_VALIDITY_SLACK_MS 100
#define SB_WATCH_BASELINE_DAYS_MAX 366

typedef struct sb_watch_params_s {
        int baseline_days;       /* days before the one judged (14) */
        int min_baseline_days;   /* volume: days with data needed (7) */
        double factor;           /* how far above the baseline (3) */
        int64_t min_records;     /* volume: below this, never (1000) */
        int64_t min_quarantined; /* quarantine: below this, never (100) */
} sb_watch_params_t;

/* The defaults above. */
void sb_watch_params_init(sb_watch_params_t *p);

/* The median of v[0..n) (sorted in place; the mean of the middle two when
 * n is even); 0 when n is 0. */
double sb_watch_median(int64_t *v, size_t n);

/*
 * volume.spike: `records` delivered on a day, against `history`, the
 * records of each of the previous baseline_days days that had a delivery
 * (n of them; sorted in place). A spike when n >= min_baseline_days,
 * records > min_records and records > factor x the median. The median goes
 * to *baselinep (may be NULL).
 */
int sb_watch_volume_spike(const sb_watch_params_t *p, int64_t records,
                          int64_t *history, size_t n, double *baselinep);

/*
 * quarantine.growth: `count` messages quarantined on a day, against
 * `history`, the count of each of the previous baseline_days days, days
 * without any counting 0 (sorted in place). Growth when count >
 * min_quarantined and count > factor x the median (so any count above
 * min_quarantined when the median is 0).
 */
int sb_watch_quarantine_growth(const sb_watch_params_t *p, int64_t count,
                               int64_t *history, size_t n, double *baselinep);

/*
 * delivery.outside_validity: where a delivery made from `first_at` to
 * `last_at` (ms) stands against grant `g`'s validity, with
 * SB_WATCH_VALIDITY_SLACK_MS allowed on both sides: -1 before valid_from,
 * 1 at or after valid_until (excluded, as sb_grant_active() does), 0
 * inside.
 */
int sb_watch_validity(const sb_grant_t *g, int64_t first_at, int64_t last_at);

/*
 * Aggregating
 */

typedef struct sb_watch_s sb_watch_t;

/*
 * Rules evaluated at `now` against `grants` (the platform's; borrowed,
 * must outlive the result), with `p` (copied). Volumes and quarantine
 * counts are kept for the days that can matter only: today and yesterday
 * (UTC) and the baseline_days before each. NULL when out of memory.
 */
sb_watch_t *sb_watch_new(const sb_watch_params_t *p, sb_grant_t *const *grants,
                         size_t grant_cnt, int64_t now);
void sb_watch_destroy(sb_watch_t *w);

/* An sb_tp_entry_cb_t (admin/transparency.h): `opaque` is the sb_watch_t;
 * "delivery" entries count, others are ignored. */
sb_err_t sb_watch_feed(const json_t *entry, void *opaque, char *errstr,
                       size_t errstr_size);

/* One message quarantined at `ts_ms` (its Kafka timestamp). Until this or
 * sb_watch_quarantine_seen() is called, quarantine.growth is not judged. */
void sb_watch_quarantined(sb_watch_t *w, int64_t ts_ms);
/* _sb.quarantine was read (perhaps empty): judge quarantine.growth. */
void sb_watch_quarantine_seen(sb_watch_t *w);

/* Delivery entries skipped: no reuser, dataset, grant or time. */
size_t sb_watch_skipped(const sb_watch_t *w);

/*
 * Appends to `alerts` (admin/alerts.h: {"key", "value"}) every alert the
 * rules raise on what was fed: each delivery outside its grant's validity
 * or under an unknown grant, in log order; then the volume spikes and the
 * quarantine growth of yesterday and today (UTC). SB_ERR_NOMEM.
 */
sb_err_t sb_watch_alerts(sb_watch_t *w, json_t *alerts, char *errstr,
                         size_t errstr_size);

/*
 * Watching on the cluster
 */

typedef struct sb_watcher_s sb_watcher_t;

/*
 * A watcher reading _sb.audit, _sb.quarantine, the receipt topics and
 * _sb.alerts, and publishing to _sb.alerts, as the platform administrator
 * (`cfg`), with the grants and receipt keys of `pf`. Borrows cfg and pf.
 * NULL and errstr on error.
 */
sb_watcher_t *sb_watcher_new(const sb_admin_cfg_t *cfg, const sb_platform_t *pf,
                             char *errstr, size_t errstr_size);
void sb_watcher_destroy(sb_watcher_t *wr);

/*
 * One pass: reads _sb.audit once for the rules above and the rights
 * events, the receipts (receipt.overdue/receipt.invalid after
 * `deadline_ms`, as `sharebus rights watch`), and _sb.quarantine (a
 * missing topic is a warning, the rule skipped); then publishes every
 * alert not already on _sb.alerts. The alerts published are appended to
 * `raised` (may be NULL) and counted in *raisedp.
 */
sb_err_t sb_watcher_once(sb_watcher_t *wr, const sb_watch_params_t *p,
                         int64_t deadline_ms, json_t *raised, size_t *raisedp,
                         char *errstr, size_t errstr_size);

#endif
