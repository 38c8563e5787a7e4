#include "watch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts.h"
#include "audit.h"
#include "envelope.h"
#include "log.h"
#include "reader.h"
#include "rights.h"
#include "transparency.h"

void sb_watch_params_init(sb_watch_params_t *p)
{
        p->baseline_days = 14;
        p->min_baseline_days = 7;
        p->factor = 3.0;
        p->min_records = 1000;
        p->min_quarantined = 100;
}

/*
 * The rules
 */

static int sb_watch_cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

double sb_watch_median(int64_t *v, size_t n)
{
        if (!n)
                return 0;
        qsort(v, n, sizeof(*v), sb_watch_cmp_i64);
        if (n % 2)
                return (double)v[n / 2];
        return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

int sb_watch_volume_spike(const sb_watch_params_t *p, int64_t records,
                          int64_t *history, size_t n, double *baselinep)
{
        double baseline = sb_watch_median(history, n);

        if (baselinep)
                *baselinep = baseline;
        if (n < (size_t)p->min_baseline_days || records <= p->min_records)
                return 0;
        return (double)records > p->factor * baseline;
}

int sb_watch_quarantine_growth(const sb_watch_params_t *p, int64_t count,
                               int64_t *history, size_t n, double *baselinep)
{
        double baseline = sb_watch_median(history, n);

        if (baselinep)
                *baselinep = baseline;
        if (count <= p->min_quarantined)
                return 0;
        return (double)count > p->factor * baseline;
}

int sb_watch_validity(const sb_grant_t *g, int64_t first_at, int64_t last_at)
{
        if (g->has_valid_from &&
            first_at < g->valid_from_ms - SB_WATCH_VALIDITY_SLACK_MS)
                return -1;
        if (g->has_valid_until &&
            last_at >= g->valid_until_ms + SB_WATCH_VALIDITY_SLACK_MS)
                return 1;
        return 0;
}

/*
 * Aggregating
 */

/* One reuser and dataset: records per day of the span, -1 for a day
 * without a delivery. */
typedef struct sb_watch_pair_s {
        char *reuser;
        char *dataset;
        int64_t *days;
} sb_watch_pair_t;

struct sb_watch_s {
        sb_watch_params_t p;
        sb_grant_t *const *grants;
        size_t grant_cnt;
        int64_t now;
        int64_t today;     /* UTC day number of now */
        int64_t first_day; /* the span: first_day .. today */
        size_t span;
        sb_watch_pair_t *pairs;
        size_t pair_cnt, pair_cap;
        json_t *index;       /* "reuser\ndataset" -> index in pairs */
        int64_t *quarantine; /* messages per day of the span */
        int quarantine_seen;
        json_t *deliveries; /* alerts on single deliveries, in log order */
        size_t skipped;
};

static int64_t sb_watch_day_of(int64_t ms)
{
        return ms >= 0 ? ms / SB_WATCH_DAY_MS
                       : -((-ms + SB_WATCH_DAY_MS - 1) / SB_WATCH_DAY_MS);
}

/* "YYYY-MM-DD" of day number `day`. */
static void sb_watch_day_format(int64_t day, char out[16])
{
        time_t t = (time_t)(day * (SB_WATCH_DAY_MS / 1000));
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(out, 16, "%Y-%m-%d", &tm);
}

sb_watch_t *sb_watch_new(const sb_watch_params_t *p, sb_grant_t *const *grants,
                         size_t grant_cnt, int64_t now)
{
        sb_watch_t *w = calloc(1, sizeof(*w));

        if (!w)
                return NULL;
        w->p = *p;
        if (w->p.baseline_days < 1)
                w->p.baseline_days = 1;
        w->grants = grants;
        w->grant_cnt = grant_cnt;
        w->now = now;
        w->today = sb_watch_day_of(now);
        /* Yesterday and its baseline_days before. */
        w->first_day = w->today - 1 - w->p.baseline_days;
        w->span = (size_t)w->p.baseline_days + 2;
        w->index = json_object();
        w->deliveries = json_array();
        w->quarantine = calloc(w->span, sizeof(*w->quarantine));
        if (!w->index || !w->deliveries || !w->quarantine) {
                sb_watch_destroy(w);
                return NULL;
        }
        return w;
}

void sb_watch_destroy(sb_watch_t *w)
{
        size_t i;

        if (!w)
                return;
        for (i = 0; i < w->pair_cnt; i++) {
                free(w->pairs[i].reuser);
                free(w->pairs[i].dataset);
                free(w->pairs[i].days);
        }
        free(w->pairs);
        json_decref(w->index);
        json_decref(w->deliveries);
        free(w->quarantine);
        free(w);
}

size_t sb_watch_skipped(const sb_watch_t *w)
{
        return w->skipped;
}

static const sb_grant_t *sb_watch_grant(const sb_watch_t *w, const char *id)
{
        size_t i;

        for (i = 0; i < w->grant_cnt; i++)
                if (!strcmp(w->grants[i]->id, id))
                        return w->grants[i];
        return NULL;
}

static sb_watch_pair_t *sb_watch_pair(sb_watch_t *w, const char *reuser,
                                      const char *dataset)
{
        sb_watch_pair_t *pair;
        char *key;
        json_t *i;
        size_t d;
        int bad;

        if (asprintf(&key, "%s\n%s", reuser, dataset) == -1)
                return NULL;
        if ((i = json_object_get(w->index, key))) {
                free(key);
                return &w->pairs[json_integer_value(i)];
        }
        if (w->pair_cnt == w->pair_cap) {
                size_t cap = w->pair_cap ? w->pair_cap * 2 : 16;
                sb_watch_pair_t *n = realloc(w->pairs, cap * sizeof(*n));

                if (!n) {
                        free(key);
                        return NULL;
                }
                w->pairs = n;
                w->pair_cap = cap;
        }
        pair = &w->pairs[w->pair_cnt];
        pair->reuser = strdup(reuser);
        pair->dataset = strdup(dataset);
        pair->days = calloc(w->span, sizeof(*pair->days));
        w->pair_cnt++; /* freed on destroy, even if incomplete */
        bad = !pair->reuser || !pair->dataset || !pair->days ||
              json_object_set_new(w->index, key,
                                  json_integer((json_int_t)w->pair_cnt - 1));
        free(key);
        if (bad)
                return NULL;
        for (d = 0; d < w->span; d++)
                pair->days[d] = -1;
        return pair;
}

static json_t *sb_watch_time(int64_t ms)
{
        char t[32];

        sb_time_format(ms, t);
        return json_string(t);
}

/*
 * The alert of one delivery outside its grant's validity (`g`, `side`
 * from sb_watch_validity()) or under an unknown grant (g NULL).
 */
static int sb_watch_delivery_alert(sb_watch_t *w, const json_t *e,
                                   const sb_grant_t *g, int side,
                                   const char *grant, int64_t first,
                                   int64_t last)
{
        const char *alert =
            g ? SB_WATCH_ALERT_OUTSIDE : SB_WATCH_ALERT_UNKNOWN_GRANT;
        const char *reuser = json_string_value(json_object_get(e, "reuser"));
        const char *dataset = json_string_value(json_object_get(e, "dataset"));
        const char *chain = json_string_value(json_object_get(e, "chain"));
        const json_t *seq = json_object_get(e, "seq");
        int64_t records = json_integer_value(json_object_get(e, "records"));
        char from[32], to[32], limit[32], reason[1024], *key;
        json_t *v;
        int rc;

        sb_time_format(first, from);
        sb_time_format(last, to);
        if (!g) {
                snprintf(reason, sizeof(reason),
                         "%" PRId64 " record(s) of %s delivered to %s from %s "
                         "to %s under grant '%s', which the platform "
                         "declaration does not know: the gateway must only "
                         "deliver under declared grants, so this is a bug "
                         "(or the grant's file was removed since); find the "
                         "gateway's grants and stop deliveries under it",
                         records, dataset, reuser, from, to, grant);
        } else {
                sb_time_format(side < 0 ? g->valid_from_ms : g->valid_until_ms,
                               limit);
                snprintf(reason, sizeof(reason),
                         "%" PRId64 " record(s) of %s delivered to %s from %s "
                         "to %s, %s grant '%s' %s %s: the gateway never "
                         "delivers outside a grant's validity, so this is a "
                         "bug; stop the gateway's deliveries under this grant "
                         "and report it",
                         records, dataset, reuser, from, to,
                         side < 0 ? "before" : "after", grant,
                         side < 0 ? "is valid from" : "was valid until", limit);
        }
        v = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:s, s:o}", "alert",
                      alert, "reuser", reuser, "dataset", dataset, "grant",
                      grant, "records", (json_int_t)records, "first_at",
                      sb_watch_time(first), "last_at", sb_watch_time(last),
                      "reason", reason, "detected_at", sb_watch_time(w->now));
        if (!v)
                return -1;
        if (g && g->has_valid_from)
                json_object_set_new(v, "valid_from",
                                    sb_watch_time(g->valid_from_ms));
        if (g && g->has_valid_until)
                json_object_set_new(v, "valid_until",
                                    sb_watch_time(g->valid_until_ms));
        if (chain && json_is_integer(seq)) {
                json_object_set_new(v, "chain", json_string(chain));
                json_object_set_new(v, "seq",
                                    json_integer(json_integer_value(seq)));
                rc = asprintf(&key, "%s/%s/%s/%" JSON_INTEGER_FORMAT, alert,
                              grant, chain, json_integer_value(seq));
        } else {
                /* An entry from before chained entries: its time. */
                rc = asprintf(&key, "%s/%s/-/%" JSON_INTEGER_FORMAT, alert,
                              grant,
                              json_integer_value(json_object_get(e, "at")));
        }
        if (rc == -1) {
                json_decref(v);
                return -1;
        }
        rc = sb_alerts_add(w->deliveries, key, v);
        free(key);
        return rc;
}

sb_err_t sb_watch_feed(const json_t *entry, void *opaque, char *errstr,
                       size_t errstr_size)
{
        sb_watch_t *w = opaque;
        const char *op = json_string_value(json_object_get(entry, "op"));
        const char *reuser, *dataset, *grant;
        const json_t *at = json_object_get(entry, "at");
        int64_t first, last, day, records;
        sb_watch_pair_t *pair;
        const sb_grant_t *g;
        int side = 0;

        if (!op || strcmp(op, SB_TP_OP_DELIVERY))
                return SB_OK;
        reuser = json_string_value(json_object_get(entry, "reuser"));
        dataset = json_string_value(json_object_get(entry, "dataset"));
        grant = json_string_value(json_object_get(entry, "grant"));
        if (!reuser || !dataset || !grant || !json_is_integer(at)) {
                w->skipped++;
                return SB_OK;
        }
        first = json_is_integer(json_object_get(entry, "first_at"))
                    ? json_integer_value(json_object_get(entry, "first_at"))
                    : json_integer_value(at);
        last = json_is_integer(json_object_get(entry, "last_at"))
                   ? json_integer_value(json_object_get(entry, "last_at"))
                   : json_integer_value(at);
        records = json_integer_value(json_object_get(entry, "records"));
        g = sb_watch_grant(w, grant);
        if ((!g || (side = sb_watch_validity(g, first, last))) &&
            sb_watch_delivery_alert(w, entry, g, side, grant, first, last))
                goto nomem;
        day = sb_watch_day_of(json_integer_value(at));
        if (day < w->first_day || day > w->today)
                return SB_OK;
        if (!(pair = sb_watch_pair(w, reuser, dataset)))
                goto nomem;
        if (pair->days[day - w->first_day] < 0)
                pair->days[day - w->first_day] = 0;
        if (records > 0)
                pair->days[day - w->first_day] += records;
        return SB_OK;
nomem:
        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
}

void sb_watch_quarantined(sb_watch_t *w, int64_t ts_ms)
{
        int64_t day = sb_watch_day_of(ts_ms);

        w->quarantine_seen = 1;
        if (day >= w->first_day && day <= w->today)
                w->quarantine[day - w->first_day]++;
}

void sb_watch_quarantine_seen(sb_watch_t *w)
{
        w->quarantine_seen = 1;
}

static int sb_watch_pair_cmp(const void *a, const void *b)
{
        const sb_watch_pair_t *x = *(const sb_watch_pair_t *const *)a;
        const sb_watch_pair_t *y = *(const sb_watch_pair_t *const *)b;
        int c = strcmp(x->reuser, y->reuser);

        return c ? c : strcmp(x->dataset, y->dataset);
}

/* volume.spike of one pair on the day at index k of the span. */
static int sb_watch_spike_alert(sb_watch_t *w, const sb_watch_pair_t *pair,
                                size_t k, int64_t *history, json_t *alerts)
{
        char day[16], reason[1024], *key;
        double baseline;
        size_t j, n = 0;
        int rc;

        if (pair->days[k] <= 0)
                return 0;
        for (j = k - (size_t)w->p.baseline_days; j < k; j++)
                if (pair->days[j] >= 0)
                        history[n++] = pair->days[j];
        if (!sb_watch_volume_spike(&w->p, pair->days[k], history, n, &baseline))
                return 0;
        sb_watch_day_format(w->first_day + (int64_t)k, day);
        if (baseline > 0)
                snprintf(reason, sizeof(reason),
                         "%s received %" PRId64 " record(s) of %s on %s (UTC), "
                         "%.1f times its baseline of %.0f a day (the median "
                         "of its %zu day(s) with deliveries in the %d days "
                         "before): check that this is expected (a new grant, "
                         "a re-delivery) or whether the data are being "
                         "diverted",
                         pair->reuser, pair->days[k], pair->dataset, day,
                         (double)pair->days[k] / baseline, baseline, n,
                         w->p.baseline_days);
        else
                snprintf(reason, sizeof(reason),
                         "%s received %" PRId64 " record(s) of %s on %s (UTC), "
                         "against a baseline of 0 a day: check that this is "
                         "expected or whether the data are being diverted",
                         pair->reuser, pair->days[k], pair->dataset, day);
        if (asprintf(&key, "%s/%s/%s/%s", SB_WATCH_ALERT_SPIKE, pair->reuser,
                     pair->dataset, day) == -1)
                return -1;
        rc = sb_alerts_add(
            alerts, key,
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}", "alert",
                      SB_WATCH_ALERT_SPIKE, "reuser", pair->reuser, "dataset",
                      pair->dataset, "day", day, "records",
                      (json_int_t)pair->days[k], "baseline",
                      (json_int_t)(baseline + 0.5), "baseline_days",
                      (json_int_t)n, "reason", reason, "detected_at",
                      sb_watch_time(w->now)));
        free(key);
        return rc;
}

/* quarantine.growth on the day at index k of the span. */
static int sb_watch_quarantine_alert(sb_watch_t *w, size_t k, int64_t *history,
                                     json_t *alerts)
{
        size_t n = (size_t)w->p.baseline_days;
        char day[16], reason[1024], *key;
        double baseline;
        int rc;

        memcpy(history, &w->quarantine[k - n], n * sizeof(*history));
        if (!sb_watch_quarantine_growth(&w->p, w->quarantine[k], history, n,
                                        &baseline))
                return 0;
        sb_watch_day_format(w->first_day + (int64_t)k, day);
        snprintf(reason, sizeof(reason),
                 "%" PRId64 " message(s) quarantined on %s (UTC), against a "
                 "median of %.0f a day over the %d days before: a holder may "
                 "be sending unsigned or invalid records, or its signing key "
                 "changed without the platform declaration; see the "
                 "sb_quarantine_reason header of the messages on %s",
                 w->quarantine[k], day, baseline, w->p.baseline_days,
                 SB_WATCH_QUARANTINE_TOPIC);
        if (asprintf(&key, "%s/%s", SB_WATCH_ALERT_QUARANTINE, day) == -1)
                return -1;
        rc = sb_alerts_add(alerts, key,
                           json_pack("{s:s, s:s, s:I, s:I, s:s, s:o}", "alert",
                                     SB_WATCH_ALERT_QUARANTINE, "day", day,
                                     "count", (json_int_t)w->quarantine[k],
                                     "baseline", (json_int_t)(baseline + 0.5),
                                     "reason", reason, "detected_at",
                                     sb_watch_time(w->now)));
        free(key);
        return rc;
}

sb_err_t sb_watch_alerts(sb_watch_t *w, json_t *alerts, char *errstr,
                         size_t errstr_size)
{
        const sb_watch_pair_t **sorted = NULL;
        int64_t *history = NULL;
        sb_err_t err = SB_OK;
        size_t i, k;

        if (json_array_extend(alerts, w->deliveries))
                goto nomem;
        history = calloc(w->span, sizeof(*history));
        sorted = calloc(w->pair_cnt ? w->pair_cnt : 1, sizeof(*sorted));
        if (!history || !sorted)
                goto nomem;
        for (i = 0; i < w->pair_cnt; i++)
                sorted[i] = &w->pairs[i];
        qsort(sorted, w->pair_cnt, sizeof(*sorted), sb_watch_pair_cmp);
        /* Yesterday, then today: a spike late in the day is still seen
         * after midnight. */
        for (k = w->span - 2; k < w->span; k++) {
                for (i = 0; i < w->pair_cnt; i++)
                        if (sb_watch_spike_alert(w, sorted[i], k, history,
                                                 alerts))
                                goto nomem;
                if (w->quarantine_seen &&
                    sb_watch_quarantine_alert(w, k, history, alerts))
                        goto nomem;
        }
        goto done;
nomem:
        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
done:
        free(history);
        free(sorted);
        return err;
}

/*
 * Watching on the cluster
 */

struct sb_watcher_s {
        const sb_admin_cfg_t *cfg;
        const sb_platform_t *pf;
        sb_reader_t *reader;
        sb_rights_t *rights;
        sb_alerter_t *alerter;
};

sb_watcher_t *sb_watcher_new(const sb_admin_cfg_t *cfg, const sb_platform_t *pf,
                             char *errstr, size_t errstr_size)
{
        sb_watcher_t *wr = calloc(1, sizeof(*wr));

        if (!wr) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        wr->cfg = cfg;
        wr->pf = pf;
        if (!(wr->rights = sb_rights_new(cfg, pf, errstr, errstr_size)) ||
            !(wr->reader = sb_reader_new(cfg, "watch", errstr, errstr_size)))
                goto fail;
        if (!(wr->alerter = sb_alerter_new(cfg, wr->reader))) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        return wr;
fail:
        sb_watcher_destroy(wr);
        return NULL;
}

void sb_watcher_destroy(sb_watcher_t *wr)
{
        if (!wr)
                return;
        sb_alerter_destroy(wr->alerter);
        sb_reader_destroy(wr->reader);
        sb_rights_destroy(wr->rights);
        free(wr);
}

typedef struct sb_watcher_pass_s {
        sb_watch_t *w;
        sb_rights_report_t *rep;
        size_t unreadable;
} sb_watcher_pass_t;

/* One audit entry: for the rules, and a rights event for the receipts. */
static sb_err_t sb_watcher_on_entry(const json_t *e, void *opaque, char *errstr,
                                    size_t errstr_size)
{
        sb_watcher_pass_t *ps = opaque;
        const char *op = json_string_value(json_object_get(e, "op"));
        sb_err_t err;

        if (op && !strcmp(op, SB_TP_OP_RIGHTS)) {
                err = sb_rights_report_add(ps->rep, e, errstr, errstr_size);
                if (err == SB_ERR_INVALID_ARG) {
                        if (!ps->unreadable++)
                                sb_log(SB_LOG_WARN, "WATCH", "%s: %s; skipped",
                                       SB_AUDIT_TOPIC, errstr);
                        return SB_OK;
                }
                return err;
        }
        return sb_watch_feed(e, ps->w, errstr, errstr_size);
}

static sb_err_t sb_watcher_on_quarantined(const rd_kafka_message_t *m,
                                          void *opaque, char *errstr,
                                          size_t errstr_size)
{
        int64_t ts = rd_kafka_message_timestamp(m, NULL);

        (void)errstr;
        (void)errstr_size;
        if (ts >= 0)
                sb_watch_quarantined(opaque, ts);
        return SB_OK;
}

sb_err_t sb_watcher_once(sb_watcher_t *wr, const sb_watch_params_t *p,
                         int64_t deadline_ms, json_t *raised, size_t *raisedp,
                         char *errstr, size_t errstr_size)
{
        sb_rights_report_t rep;
        sb_watcher_pass_t ps;
        json_t *alerts = NULL;
        sb_err_t err;

        *raisedp = 0;
        memset(&rep, 0, sizeof(rep));
        memset(&ps, 0, sizeof(ps));
        ps.rep = &rep;
        ps.w = sb_watch_new(p, wr->pf->grants, wr->pf->grant_cnt, sb_now_ms());
        if (!ps.w || !(alerts = json_array())) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        if ((err = sb_tp_read_topic(wr->reader, sb_watcher_on_entry, &ps,
                                    errstr, errstr_size)) ||
            (err = sb_rights_check_receipts(wr->rights, &rep, deadline_ms,
                                            errstr, errstr_size)))
                goto done;
        err = sb_reader_read(wr->reader, SB_WATCH_QUARANTINE_TOPIC,
                             sb_watcher_on_quarantined, ps.w, errstr,
                             errstr_size);
        if (err == SB_ERR_NOT_FOUND) {
                sb_log(SB_LOG_WARN, "WATCH", "%s; quarantine.growth not judged",
                       errstr);
        } else if (err) {
                goto done;
        } else {
                sb_watch_quarantine_seen(ps.w);
        }
        if (sb_watch_skipped(ps.w))
                sb_log(SB_LOG_WARN, "WATCH",
                       "%zu delivery entries without reuser, dataset, grant "
                       "or at were not judged",
                       sb_watch_skipped(ps.w));
        if ((err = sb_watch_alerts(ps.w, alerts, errstr, errstr_size)) ||
            (err = sb_rights_alerts(&rep, alerts, errstr, errstr_size)))
                goto done;
        err = sb_alerter_raise(wr->alerter, alerts, raised, raisedp, errstr,
                               errstr_size);
done:
        json_decref(alerts);
        sb_rights_report_release(&rep);
        sb_watch_destroy(ps.w);
        return err;
}
