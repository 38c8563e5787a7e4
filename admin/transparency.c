#include "transparency.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "envelope.h"
#include "log.h"

/*
 * Small helpers
 */

static int64_t sb_tp_int(const json_t *e, const char *key, int64_t dflt)
{
        const json_t *v = json_object_get(e, key);

        return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static const char *sb_tp_str(const json_t *e, const char *key)
{
        return json_string_value(json_object_get(e, key));
}

/* Whether the entry's "at" is in [from, to) (-1: open); no "at": no. */
static int sb_tp_in_window(const json_t *e, int64_t from, int64_t to)
{
        const json_t *at = json_object_get(e, "at");
        int64_t t;

        if (!json_is_integer(at))
                return 0;
        t = json_integer_value(at);
        return (from < 0 || t >= from) && (to < 0 || t < to);
}

/* Whether the entry's "subjects" lists `ps`. */
static int sb_tp_lists(const json_t *e, const char *ps)
{
        const json_t *v;
        const char *s;
        size_t i;

        json_array_foreach(json_object_get(e, "subjects"), i, v)
        {
                if ((s = json_string_value(v)) && !strcmp(s, ps))
                        return 1;
        }
        return 0;
}

/* Adds every string of array `from` (or the string itself) to set `to`. */
static int sb_tp_set_add(json_t *to, const json_t *from)
{
        const json_t *v;
        size_t i;

        if (json_is_string(from))
                return json_object_set_new(to, json_string_value(from),
                                           json_true());
        json_array_foreach(from, i, v)
        {
                if (json_is_string(v) &&
                    json_object_set_new(to, json_string_value(v), json_true()))
                        return -1;
        }
        return 0;
}

static int sb_tp_strcmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of object `o`, sorted; the caller frees the array only. */
static const char **sb_tp_sorted_keys(const json_t *o, size_t *cntp)
{
        size_t n = json_object_size(o), i = 0;
        const char **keys, *k;
        json_t *v;

        *cntp = 0;
        keys = calloc(n ? n : 1, sizeof(*keys));
        if (!keys)
                return NULL;
        json_object_foreach((json_t *)o, k, v)
        {
                (void)v;
                keys[i++] = k;
        }
        qsort(keys, n, sizeof(*keys), sb_tp_strcmp);
        *cntp = n;
        return keys;
}

/* The set `o` as a sorted array (new reference). */
static json_t *sb_tp_set_array(const json_t *o)
{
        json_t *a = json_array();
        const char **keys;
        size_t n, i;

        if (!a || !(keys = sb_tp_sorted_keys(o, &n))) {
                json_decref(a);
                return NULL;
        }
        for (i = 0; i < n; i++)
                json_array_append_new(a, json_string(keys[i]));
        free(keys);
        return a;
}

static json_t *sb_tp_time(int64_t ms)
{
        char t[32];

        if (ms < 0)
                return json_null();
        sb_time_format(ms, t);
        return json_string(t);
}

static void sb_tp_add_int(json_t *o, const char *key, int64_t n)
{
        json_object_set_new(
            o, key,
            json_integer(json_integer_value(json_object_get(o, key)) +
                         (json_int_t)n));
}

/* Takes the min (want_min) or the max of `key` and `t`. */
static void sb_tp_extreme(json_t *o, const char *key, int64_t t, int want_min)
{
        const json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) ||
            (want_min ? t < json_integer_value(v) : t > json_integer_value(v)))
                json_object_set_new(o, key, json_integer((json_int_t)t));
}

/* "a\nb\nc" as a key for grouping; the caller frees it. */
static char *sb_tp_key3(const char *a, const char *b, const char *c)
{
        char *k;

        if (asprintf(&k, "%s\n%s\n%s", a ? a : "", b ? b : "", c ? c : "") ==
            -1)
                return NULL;
        return k;
}

/* The object of `key` in `groups`, made from `init` (stolen) if new. */
static json_t *sb_tp_group(json_t *groups, const char *key, json_t *init)
{
        json_t *g = json_object_get(groups, key);

        if (g) {
                json_decref(init);
                return g;
        }
        if (!init || json_object_set_new(groups, key, init))
                return NULL;
        return init;
}

/*
 * Reading
 */

typedef struct sb_tp_read_s {
        sb_tp_entry_cb_t cb;
        void *opaque;
} sb_tp_read_t;

static sb_err_t sb_tp_on_message(const rd_kafka_message_t *m, void *opaque,
                                 char *errstr, size_t errstr_size)
{
        sb_tp_read_t *rd = opaque;
        sb_err_t err = SB_OK;
        json_t *e;

        if (!m->payload)
                return SB_OK;
        e = json_loadb(m->payload, m->len, 0, NULL);
        if (json_is_object(e))
                err = rd->cb(e, rd->opaque, errstr, errstr_size);
        json_decref(e);
        return err;
}

sb_err_t sb_tp_read_topic(sb_reader_t *rd, sb_tp_entry_cb_t cb, void *opaque,
                          char *errstr, size_t errstr_size)
{
        sb_tp_read_t r = {cb, opaque};

        return sb_reader_read(rd, SB_AUDIT_TOPIC, sb_tp_on_message, &r, errstr,
                              errstr_size);
}

sb_err_t sb_tp_read_file(const char *path, sb_tp_entry_cb_t cb, void *opaque,
                         char *errstr, size_t errstr_size)
{
        char *line = NULL;
        size_t cap = 0;
        sb_err_t err = SB_OK;
        ssize_t len;
        json_t *e;
        FILE *fp;

        fp = fopen(path, "re");
        if (!fp)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "export '%s': %s", path, strerror(errno));
        while (!err && (len = getline(&line, &cap, fp)) != -1) {
                e = json_loadb(line, (size_t)len, JSON_DISABLE_EOF_CHECK, NULL);
                if (json_is_object(e)) {
                        json_object_del(e, "_offset");
                        json_object_del(e, "_partition");
                        if (!json_object_get(e, "_malformed"))
                                err = cb(e, opaque, errstr, errstr_size);
                }
                json_decref(e);
        }
        if (!err && ferror(fp))
                err = sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                "export '%s': read error", path);
        free(line);
        fclose(fp);
        return err;
}

/*
 * One person
 */

struct sb_tp_subject_s {
        const sb_key_t *master;
        char *id;
        size_t id_len;
        json_t *datasets; /* set, or NULL: all */
        int64_t from_ms, to_ms;
        json_t *ps;         /* dataset -> the person's audit pseudonym */
        json_t *recipients; /* "reuser\ndataset\n" -> group */
        json_t *exclusions; /* "reuser\ndataset\nreason" -> group */
        json_t *unlisted;   /* "reuser\ndataset\n" -> group */
        json_t *purposes;   /* event id -> purposes */
        sb_rights_report_t rights;
        size_t skipped;
};

sb_tp_subject_t *sb_tp_subject_new(const sb_key_t *master,
                                   const char *subject_id,
                                   const json_t *datasets, int64_t from_ms,
                                   int64_t to_ms, char *errstr,
                                   size_t errstr_size)
{
        sb_tp_subject_t *s;

        if (!subject_id || !*subject_id) {
                sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                          "an empty subject id");
                return NULL;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
                goto nomem;
        s->master = master;
        s->from_ms = from_ms;
        s->to_ms = to_ms;
        s->id_len = strlen(subject_id);
        s->id = strdup(subject_id);
        s->ps = json_object();
        s->recipients = json_object();
        s->exclusions = json_object();
        s->unlisted = json_object();
        s->purposes = json_object();
        if (!s->id || !s->ps || !s->recipients || !s->exclusions ||
            !s->unlisted || !s->purposes)
                goto nomem;
        if (json_array_size(datasets)) {
                if (!(s->datasets = json_object()) ||
                    sb_tp_set_add(s->datasets, datasets))
                        goto nomem;
        }
        return s;
nomem:
        sb_tp_subject_destroy(s);
        sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
        return NULL;
}

void sb_tp_subject_destroy(sb_tp_subject_t *s)
{
        if (!s)
                return;
        if (s->id) {
                sodium_memzero(s->id, s->id_len);
                free(s->id);
        }
        json_decref(s->datasets);
        json_decref(s->ps);
        json_decref(s->recipients);
        json_decref(s->exclusions);
        json_decref(s->unlisted);
        json_decref(s->purposes);
        sb_rights_report_release(&s->rights);
        free(s);
}

sb_rights_report_t *sb_tp_subject_rights(sb_tp_subject_t *s)
{
        return &s->rights;
}

/* The person's audit pseudonym in `dataset`, computed once. */
static const char *sb_tp_ps_of(sb_tp_subject_t *s, const char *dataset)
{
        char out[SB_PSEUDONYM_HEXLEN + 1];
        sb_pseudonymiser_t *ps;
        const char *have = sb_tp_str(s->ps, dataset);

        if (have)
                return have;
        ps = sb_audit_pseudonymiser_new(s->master, dataset);
        if (!ps)
                return NULL;
        sb_pseudonymise(ps, s->id, s->id_len, out);
        sb_pseudonymiser_destroy(ps);
        if (json_object_set_new(s->ps, dataset, json_string(out)))
                return NULL;
        return sb_tp_str(s->ps, dataset);
}

static sb_err_t sb_tp_subject_delivery(sb_tp_subject_t *s, const json_t *e,
                                       const char *dataset, const char *ps)
{
        const char *reuser = sb_tp_str(e, "reuser");
        json_t *g;
        char *key;
        int64_t at = sb_tp_int(e, "at", 0);

        if (!reuser || !json_is_array(json_object_get(e, "subjects"))) {
                s->skipped++;
                return SB_OK;
        }
        if (!(key = sb_tp_key3(reuser, dataset, NULL)))
                return SB_ERR_NOMEM;
        if (!sb_tp_lists(e, ps)) {
                /* A full list may have left the person out. */
                if (json_array_size(json_object_get(e, "subjects")) >=
                    SB_TP_SUBJECTS_MAX) {
                        g = sb_tp_group(s->unlisted, key,
                                        json_pack("{s:s, s:s, s:i}", "reuser",
                                                  reuser, "dataset", dataset,
                                                  "deliveries", 0));
                        if (!g) {
                                free(key);
                                return SB_ERR_NOMEM;
                        }
                        sb_tp_add_int(g, "deliveries", 1);
                }
                free(key);
                return SB_OK;
        }
        g = sb_tp_group(s->recipients, key,
                        json_pack("{s:s, s:s, s:{}, s:{}, s:{}, s:{}, s:i}",
                                  "reuser", reuser, "dataset", dataset,
                                  "grants", "purposes", "legal_bases", "fields",
                                  "deliveries", 0));
        free(key);
        if (!g)
                return SB_ERR_NOMEM;
        if (sb_tp_set_add(json_object_get(g, "grants"),
                          json_object_get(e, "grant")) ||
            sb_tp_set_add(json_object_get(g, "purposes"),
                          json_object_get(e, "purposes")) ||
            sb_tp_set_add(json_object_get(g, "legal_bases"),
                          json_object_get(e, "legal_basis")) ||
            sb_tp_set_add(json_object_get(g, "fields"),
                          json_object_get(e, "fields")))
                return SB_ERR_NOMEM;
        sb_tp_extreme(g, "first_at", sb_tp_int(e, "first_at", at), 1);
        sb_tp_extreme(g, "last_at", sb_tp_int(e, "last_at", at), 0);
        sb_tp_add_int(g, "deliveries", 1);
        return SB_OK;
}

static sb_err_t sb_tp_subject_exclusion(sb_tp_subject_t *s, const json_t *e,
                                        const char *dataset, const char *ps)
{
        const char *reuser = sb_tp_str(e, "reuser");
        const char *reason = sb_tp_str(e, "reason");
        int64_t at = sb_tp_int(e, "at", 0);
        json_t *g;
        char *key;

        if (!reuser || !reason ||
            !json_is_array(json_object_get(e, "subjects"))) {
                s->skipped++;
                return SB_OK;
        }
        if (!sb_tp_lists(e, ps))
                return SB_OK;
        if (!(key = sb_tp_key3(reuser, dataset, reason)))
                return SB_ERR_NOMEM;
        g = sb_tp_group(s->exclusions, key,
                        json_pack("{s:s, s:s, s:s, s:{}, s:i}", "reuser",
                                  reuser, "dataset", dataset, "reason", reason,
                                  "grants", "times", 0));
        free(key);
        if (!g || sb_tp_set_add(json_object_get(g, "grants"),
                                json_object_get(e, "grant")))
                return SB_ERR_NOMEM;
        sb_tp_extreme(g, "first_at", at, 1);
        sb_tp_extreme(g, "last_at", at, 0);
        sb_tp_add_int(g, "times", 1);
        return SB_OK;
}

static sb_err_t sb_tp_subject_request(sb_tp_subject_t *s, const json_t *e,
                                      const char *ps, char *errstr,
                                      size_t errstr_size)
{
        const char *sps = sb_tp_str(e, "subject_ps");
        const char *event_id = sb_tp_str(e, "event_id");
        const json_t *purposes = json_object_get(e, "purposes");
        sb_err_t err;

        if (!sps || strcmp(sps, ps))
                return SB_OK;
        err = sb_rights_report_add(&s->rights, e, errstr, errstr_size);
        if (err == SB_ERR_INVALID_ARG) {
                s->skipped++;
                return SB_OK;
        }
        if (err)
                return err;
        if (!json_object_get(s->purposes, event_id) &&
            json_object_set_new(s->purposes, event_id,
                                json_is_array(purposes)
                                    ? json_deep_copy(purposes)
                                    : json_array()))
                return SB_ERR_NOMEM;
        return SB_OK;
}

sb_err_t sb_tp_subject_feed(const json_t *entry, void *opaque, char *errstr,
                            size_t errstr_size)
{
        sb_tp_subject_t *s = opaque;
        const char *op = sb_tp_str(entry, "op"), *dataset, *ps;
        sb_err_t err;

        if (!op ||
            (strcmp(op, SB_TP_OP_DELIVERY) && strcmp(op, SB_TP_OP_EXCLUSION) &&
             strcmp(op, SB_TP_OP_RIGHTS)))
                return SB_OK;
        if (!(dataset = sb_tp_str(entry, "dataset")) ||
            !json_is_integer(json_object_get(entry, "at"))) {
                s->skipped++;
                return SB_OK;
        }
        if ((s->datasets && !json_object_get(s->datasets, dataset)) ||
            !sb_tp_in_window(entry, s->from_ms, s->to_ms))
                return SB_OK;
        if (!(ps = sb_tp_ps_of(s, dataset)))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        if (!strcmp(op, SB_TP_OP_DELIVERY))
                err = sb_tp_subject_delivery(s, entry, dataset, ps);
        else if (!strcmp(op, SB_TP_OP_EXCLUSION))
                err = sb_tp_subject_exclusion(s, entry, dataset, ps);
        else
                return sb_tp_subject_request(s, entry, ps, errstr, errstr_size);
        if (err)
                return sb_seterr(errstr, errstr_size, err, "out of memory");
        return SB_OK;
}

/* A field's plain-language description: the grant's output schema (it
 * says how the field was transformed), else the dataset schema. */
static const char *sb_tp_doc(const sb_platform_t *pf, const char *reuser,
                             const char *dataset, const char *field)
{
        const sb_schema_t *schema;
        const char *doc;
        size_t i;

        if (!pf)
                return NULL;
        for (i = 0; i < pf->grant_cnt; i++) {
                const sb_grant_t *g = pf->grants[i];

                if (strcmp(g->reuser, reuser) || strcmp(g->dataset, dataset) ||
                    !g->out)
                        continue;
                doc = sb_tp_str(sb_schema_field(g->out, field), "doc");
                if (doc)
                        return doc;
        }
        schema = pf->cat ? sb_catalog_dataset(pf->cat, dataset) : NULL;
        return schema ? sb_tp_str(sb_schema_field(schema, field), "doc") : NULL;
}

static json_t *sb_tp_categories(const sb_platform_t *pf, const char *reuser,
                                const char *dataset, const json_t *fields)
{
        json_t *out = json_array();
        const char **keys;
        const char *doc;
        size_t n, i;

        if (!out || !(keys = sb_tp_sorted_keys(fields, &n))) {
                json_decref(out);
                return NULL;
        }
        for (i = 0; i < n; i++) {
                doc = sb_tp_doc(pf, reuser, dataset, keys[i]);
                json_array_append_new(
                    out, json_pack("{s:s, s:o}", "field", keys[i], "doc",
                                   doc ? json_string(doc) : json_null()));
        }
        free(keys);
        return out;
}

/* The groups of `groups` in key order, each through `fn`. */
static json_t *sb_tp_groups(const json_t *groups,
                            json_t *(*fn)(const json_t *g, void *arg),
                            void *arg)
{
        json_t *out = json_array(), *j;
        const char **keys;
        size_t n, i;

        if (!out || !(keys = sb_tp_sorted_keys(groups, &n))) {
                json_decref(out);
                return NULL;
        }
        for (i = 0; i < n; i++) {
                j = fn(json_object_get(groups, keys[i]), arg);
                if (!j || json_array_append_new(out, j)) {
                        json_decref(out);
                        out = NULL;
                        break;
                }
        }
        free(keys);
        return out;
}

static json_t *sb_tp_recipient_json(const json_t *g, void *arg)
{
        const char *reuser = sb_tp_str(g, "reuser");
        const char *dataset = sb_tp_str(g, "dataset");

        return json_pack(
            "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:O}", "reuser", reuser,
            "dataset", dataset, "grants",
            sb_tp_set_array(json_object_get(g, "grants")), "purposes",
            sb_tp_set_array(json_object_get(g, "purposes")), "legal_bases",
            sb_tp_set_array(json_object_get(g, "legal_bases")), "categories",
            sb_tp_categories(arg, reuser, dataset,
                             json_object_get(g, "fields")),
            "first_delivery", sb_tp_time(sb_tp_int(g, "first_at", -1)),
            "last_delivery", sb_tp_time(sb_tp_int(g, "last_at", -1)),
            "deliveries", json_object_get(g, "deliveries"));
}

static json_t *sb_tp_exclusion_json(const json_t *g, void *arg)
{
        (void)arg;
        return json_pack("{s:O, s:O, s:O, s:o, s:o, s:o, s:O}", "reuser",
                         json_object_get(g, "reuser"), "dataset",
                         json_object_get(g, "dataset"), "reason",
                         json_object_get(g, "reason"), "grants",
                         sb_tp_set_array(json_object_get(g, "grants")),
                         "first_at", sb_tp_time(sb_tp_int(g, "first_at", -1)),
                         "last_at", sb_tp_time(sb_tp_int(g, "last_at", -1)),
                         "times", json_object_get(g, "times"));
}

static json_t *sb_tp_copy_json(const json_t *g, void *arg)
{
        (void)arg;
        return json_deep_copy(g);
}

static json_t *sb_tp_request_json(sb_tp_subject_t *s,
                                  const sb_rights_event_t *ev, int checked)
{
        json_t *reusers = json_array(), *purposes;
        const sb_rights_report_t *rep = &s->rights;
        size_t i;

        if (!reusers)
                return NULL;
        for (i = 0; i < ev->ack_cnt; i++) {
                const sb_rights_ack_t *a = &ev->acks[i];
                int ack = checked && a->state == SB_RIGHTS_ACKNOWLEDGED;

                json_array_append_new(
                    reusers,
                    json_pack(
                        "{s:s, s:s, s:o}", "reuser", a->reuser, "state",
                        checked ? sb_rights_state2str(a->state) : "notified",
                        "acknowledged_at",
                        ack ? sb_tp_time(a->receipt.applied_at) : json_null()));
        }
        purposes = json_object_get(s->purposes, ev->event_id);
        return json_pack("{s:s, s:s, s:s, s:O, s:s, s:o, s:o, s:o}", "event_id",
                         ev->event_id, "type", ev->type, "dataset", ev->dataset,
                         "purposes", purposes ? purposes : json_null(),
                         "requested_time", ev->requested_time, "notified_at",
                         sb_tp_time(ev->notified_at), "due_at",
                         checked
                             ? sb_tp_time(ev->notified_at + rep->deadline_ms)
                             : json_null(),
                         "reusers", reusers);
}

static int sb_tp_event_cmp(const void *a, const void *b)
{
        const sb_rights_event_t *x = *(const sb_rights_event_t *const *)a;
        const sb_rights_event_t *y = *(const sb_rights_event_t *const *)b;

        if (x->notified_at != y->notified_at)
                return x->notified_at < y->notified_at ? -1 : 1;
        return strcmp(x->event_id, y->event_id);
}

json_t *sb_tp_subject_report(sb_tp_subject_t *s, const sb_platform_t *pf,
                             int receipts_checked, int64_t now)
{
        const sb_rights_event_t **evs = NULL;
        json_t *r, *requests = json_array();
        size_t i;

        if (!requests)
                return NULL;
        if (s->rights.event_cnt &&
            !(evs = calloc(s->rights.event_cnt, sizeof(*evs)))) {
                json_decref(requests);
                return NULL;
        }
        for (i = 0; i < s->rights.event_cnt; i++)
                evs[i] = &s->rights.events[i];
        if (evs) /* qsort() wants a pointer, even for no element */
                qsort(evs, s->rights.event_cnt, sizeof(*evs), sb_tp_event_cmp);
        for (i = 0; i < s->rights.event_cnt; i++)
                json_array_append_new(
                    requests, sb_tp_request_json(s, evs[i], receipts_checked));
        free(evs);
        r = json_pack(
            "{s:o, s:b, s:{s:o, s:o}, s:o, s:o, s:o, s:o, s:o, s:I}",
            "generated_at", sb_tp_time(now), "receipts_checked",
            receipts_checked, "period", "from", sb_tp_time(s->from_ms), "to",
            sb_tp_time(s->to_ms), "datasets",
            s->datasets ? sb_tp_set_array(s->datasets) : json_null(),
            "recipients",
            sb_tp_groups(s->recipients, sb_tp_recipient_json, (void *)pf),
            "exclusions",
            sb_tp_groups(s->exclusions, sb_tp_exclusion_json, NULL), "requests",
            requests, "unlisted",
            sb_tp_groups(s->unlisted, sb_tp_copy_json, NULL), "skipped",
            (json_int_t)s->skipped);
        return r;
}

/*
 * Volumes
 */

struct sb_tp_stats_s {
        sb_tp_period_t period;
        int by;
        int64_t from_ms, to_ms;
        json_t *buckets; /* "period\nreuser\ndataset" -> bucket */
        size_t skipped;
};

sb_tp_stats_t *sb_tp_stats_new(sb_tp_period_t period, int by, int64_t from_ms,
                               int64_t to_ms)
{
        sb_tp_stats_t *st = calloc(1, sizeof(*st));

        if (!st)
                return NULL;
        st->period = period;
        st->by = by & (SB_TP_BY_REUSER | SB_TP_BY_DATASET)
                     ? by
                     : SB_TP_BY_REUSER | SB_TP_BY_DATASET;
        st->from_ms = from_ms;
        st->to_ms = to_ms;
        if (!(st->buckets = json_object())) {
                free(st);
                return NULL;
        }
        return st;
}

void sb_tp_stats_destroy(sb_tp_stats_t *st)
{
        if (!st)
                return;
        json_decref(st->buckets);
        free(st);
}

static void sb_tp_period_of(int64_t ms, sb_tp_period_t period, char out[16])
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(out, 16, period == SB_TP_MONTH ? "%Y-%m" : "%Y-%m-%d", &tm);
}

sb_err_t sb_tp_stats_feed(const json_t *entry, void *opaque, char *errstr,
                          size_t errstr_size)
{
        sb_tp_stats_t *st = opaque;
        const char *op = sb_tp_str(entry, "op");
        const char *reuser, *dataset, *reason = NULL;
        const json_t *subjects, *v;
        char period[16], *key, *sk;
        int delivery;
        json_t *b;
        size_t i;

        if (!op ||
            (strcmp(op, SB_TP_OP_DELIVERY) && strcmp(op, SB_TP_OP_EXCLUSION)))
                return SB_OK;
        delivery = !strcmp(op, SB_TP_OP_DELIVERY);
        reuser = sb_tp_str(entry, "reuser");
        dataset = sb_tp_str(entry, "dataset");
        subjects = json_object_get(entry, "subjects");
        if (!delivery)
                reason = sb_tp_str(entry, "reason");
        if (!reuser || !dataset || (!delivery && !reason) ||
            !json_is_integer(json_object_get(entry, "at"))) {
                st->skipped++;
                return SB_OK;
        }
        if (!sb_tp_in_window(entry, st->from_ms, st->to_ms))
                return SB_OK;
        sb_tp_period_of(sb_tp_int(entry, "at", 0), st->period, period);
        key = sb_tp_key3(period, st->by & SB_TP_BY_REUSER ? reuser : "",
                         st->by & SB_TP_BY_DATASET ? dataset : "");
        if (!key)
                goto nomem;
        b = sb_tp_group(
            st->buckets, key,
            json_pack("{s:s, s:s?, s:s?, s:i, s:i, s:i, s:b, s:{}, s:{}}",
                      "period", period, "reuser",
                      st->by & SB_TP_BY_REUSER ? reuser : NULL, "dataset",
                      st->by & SB_TP_BY_DATASET ? dataset : NULL, "deliveries",
                      0, "records", 0, "bytes", 0, "subjects_at_least", 0,
                      "subjects", "excluded"));
        free(key);
        if (!b)
                goto nomem;
        if (!delivery) {
                sb_tp_add_int(json_object_get(b, "excluded"), reason,
                              sb_tp_int(entry, "records", 0));
                return SB_OK;
        }
        sb_tp_add_int(b, "deliveries", 1);
        sb_tp_add_int(b, "records", sb_tp_int(entry, "records", 0));
        sb_tp_add_int(b, "bytes", sb_tp_int(entry, "bytes", 0));
        if (json_array_size(subjects) >= SB_TP_SUBJECTS_MAX)
                json_object_set_new(b, "subjects_at_least", json_true());
        /* Pseudonyms are per dataset: a pair is one person in one
         * dataset. */
        json_array_foreach(subjects, i, v)
        {
                if (!json_is_string(v))
                        continue;
                if (asprintf(&sk, "%s/%s", dataset, json_string_value(v)) == -1)
                        goto nomem;
                if (json_object_set_new(json_object_get(b, "subjects"), sk,
                                        json_true())) {
                        free(sk);
                        goto nomem;
                }
                free(sk);
        }
        return SB_OK;
nomem:
        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
}

static json_t *sb_tp_bucket_json(const json_t *b, void *arg)
{
        json_t *r;

        (void)arg;
        r = json_pack(
            "{s:O, s:O?, s:O?, s:O, s:O, s:I, s:O, s:O, s:O}", "period",
            json_object_get(b, "period"), "reuser",
            json_object_get(b, "reuser"), "dataset",
            json_object_get(b, "dataset"), "deliveries",
            json_object_get(b, "deliveries"), "records",
            json_object_get(b, "records"), "subjects",
            (json_int_t)json_object_size(json_object_get(b, "subjects")),
            "subjects_at_least", json_object_get(b, "subjects_at_least"),
            "bytes", json_object_get(b, "bytes"), "excluded",
            json_object_get(b, "excluded"));
        /* A row grouped by one of them has no key for the other. */
        if (json_is_null(json_object_get(r, "reuser")))
                json_object_del(r, "reuser");
        if (json_is_null(json_object_get(r, "dataset")))
                json_object_del(r, "dataset");
        return r;
}

json_t *sb_tp_stats_json(const sb_tp_stats_t *st)
{
        json_t *by = json_array();

        if (!by)
                return NULL;
        if (st->by & SB_TP_BY_REUSER)
                json_array_append_new(by, json_string("reuser"));
        if (st->by & SB_TP_BY_DATASET)
                json_array_append_new(by, json_string("dataset"));
        return json_pack("{s:s, s:o, s:{s:o, s:o}, s:I, s:o}", "period",
                         st->period == SB_TP_MONTH ? "month" : "day", "by", by,
                         "window", "from", sb_tp_time(st->from_ms), "to",
                         sb_tp_time(st->to_ms), "skipped",
                         (json_int_t)st->skipped, "rows",
                         sb_tp_groups(st->buckets, sb_tp_bucket_json, NULL));
}

/*
 * The registry
 */

static json_t *sb_tp_grant_json(const sb_grant_t *g)
{
        json_t *cats = json_array(), *f;
        size_t i;

        if (!cats)
                return NULL;
        json_array_foreach(json_object_get(g->out->json, "fields"), i, f)
        {
                const char *doc = sb_tp_str(f, "doc");

                json_array_append_new(
                    cats, json_pack("{s:O, s:o, s:b}", "field",
                                    json_object_get(f, "name"), "doc",
                                    doc ? json_string(doc) : json_null(),
                                    "transformed",
                                    i < g->map_cnt && g->tr &&
                                        g->tr[i].op != SB_TR_KEEP));
        }
        return json_pack(
            "{s:s, s:s, s:O, s:s?, s:o, s:o, s:s?, s:o}", "grant", g->id,
            "dataset", g->dataset, "purposes", g->purposes, "legal_basis",
            g->legal_basis, "valid_from",
            g->has_valid_from ? sb_tp_time(g->valid_from_ms) : json_null(),
            "valid_until",
            g->has_valid_until ? sb_tp_time(g->valid_until_ms) : json_null(),
            "contact", g->contact, "categories", cats);
}

/* The reuser's entry of `reusers`, made if new. */
static json_t *sb_tp_registry_reuser(json_t *reusers, const char *reuser)
{
        return sb_tp_group(reusers, reuser,
                           json_pack("{s:s, s:[], s:[]}", "reuser", reuser,
                                     "grants", "volumes"));
}

json_t *sb_tp_registry(const sb_platform_t *pf, const sb_tp_stats_t *volumes,
                       int64_t now)
{
        json_t *reusers = json_object(), *r, *rows = NULL, *row, *out = NULL;
        size_t i;

        if (!reusers)
                return NULL;
        for (i = 0; i < pf->grant_cnt; i++) {
                const sb_grant_t *g = pf->grants[i];

                if (!sb_grant_active(g, now))
                        continue;
                if (!(r = sb_tp_registry_reuser(reusers, g->reuser)) ||
                    json_array_append_new(json_object_get(r, "grants"),
                                          sb_tp_grant_json(g)))
                        goto done;
        }
        if (volumes) {
                if (!(rows = sb_tp_groups(volumes->buckets, sb_tp_bucket_json,
                                          NULL)))
                        goto done;
                json_array_foreach(rows, i, row)
                {
                        const char *reuser = sb_tp_str(row, "reuser");

                        /* Exclusions only: nothing was delivered. */
                        if (!sb_tp_int(row, "deliveries", 0))
                                continue;
                        if (!reuser ||
                            !(r = sb_tp_registry_reuser(reusers, reuser)) ||
                            json_array_append_new(
                                json_object_get(r, "volumes"),
                                json_pack(
                                    "{s:O, s:O?, s:O, s:O, s:O}", "month",
                                    json_object_get(row, "period"), "dataset",
                                    json_object_get(row, "dataset"), "records",
                                    json_object_get(row, "records"), "subjects",
                                    json_object_get(row, "subjects"),
                                    "subjects_at_least",
                                    json_object_get(row, "subjects_at_least"))))
                                goto done;
                }
        }
        out =
            json_pack("{s:o, s:o}", "generated_at", sb_tp_time(now), "reusers",
                      sb_tp_groups(reusers, sb_tp_copy_json, NULL));
done:
        json_decref(rows);
        json_decref(reusers);
        return out;
}

int sb_tp_parse_month(const char *s, int64_t *from_ms, int64_t *to_ms)
{
        char a[40], b[40];
        int y, m, n = 0;

        if (!s || strlen(s) != 7 || sscanf(s, "%4d-%2d%n", &y, &m, &n) != 2 ||
            n != 7 || y < 1970 || m < 1 || m > 12)
                return -1;
        snprintf(a, sizeof(a), "%04d-%02d-01T00:00:00Z", y, m);
        snprintf(b, sizeof(b), "%04d-%02d-01T00:00:00Z", m == 12 ? y + 1 : y,
                 m == 12 ? 1 : m + 1);
        if (sb_time_parse(a, from_ms) || sb_time_parse(b, to_ms))
                return -1;
        return 0;
}
