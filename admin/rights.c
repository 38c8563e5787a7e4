#include "rights.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "auditlog.h"
#include "crypto.h"
#include "envelope.h"
#include "log.h"
#include "reader.h"

struct sb_rights_s {
        const sb_admin_cfg_t *cfg;
        const sb_platform_t *pf;
        const sb_schema_t *receipt;
        sb_reader_t *reader;
        sb_alerter_t *alerter;
};

const char *sb_rights_state2str(sb_rights_state_t state)
{
        switch (state) {
        case SB_RIGHTS_PENDING:
                return "pending";
        case SB_RIGHTS_ACKNOWLEDGED:
                return "acknowledged";
        case SB_RIGHTS_OVERDUE:
                return "overdue";
        case SB_RIGHTS_INVALID:
                return "invalid";
        }
        return "?";
}

const char *sb_rights_sig2str(sb_rights_sig_t sig)
{
        switch (sig) {
        case SB_RIGHTS_SIG_NONE:
                return "none";
        case SB_RIGHTS_SIG_VERIFIED:
                return "verified";
        case SB_RIGHTS_SIG_KEY_UNKNOWN:
                return "key-unknown";
        case SB_RIGHTS_SIG_BAD:
                return "bad";
        }
        return "?";
}

int sb_rights_parse_duration(const char *s, int64_t *msp)
{
        static const struct {
                const char *unit;
                int64_t ms;
        } units[] = {
            {"", 1},          {"ms", 1},          {"s", 1000},
            {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000LL},
        };
        long long v;
        char *end;
        size_t i;

        if (!s || !isdigit((unsigned char)s[0]))
                return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno)
                return -1;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(end, units[i].unit))
                        continue;
                if (v > INT64_MAX / units[i].ms)
                        return -1;
                *msp = (int64_t)v * units[i].ms;
                return 0;
        }
        return -1;
}

void sb_rights_format_duration(int64_t ms, char *out, size_t size)
{
        static const struct {
                const char *unit;
                int64_t ms;
        } units[] = {
            {"d", 24 * 3600 * 1000LL},
            {"h", 3600 * 1000},
            {"m", 60 * 1000},
            {"s", 1000},
        };
        size_t i;

        for (i = 0; ms > 0 && i < sizeof(units) / sizeof(units[0]); i++)
                if (ms % units[i].ms == 0) {
                        snprintf(out, size, "%" PRId64 "%s", ms / units[i].ms,
                                 units[i].unit);
                        return;
                }
        snprintf(out, size, "%" PRId64 "ms", ms);
}

/*
 * Receipts
 */

static const char *sb_rights_string_field(avro_value_t *v, const char *name)
{
        avro_value_t f;
        const char *s = NULL;
        size_t len;

        if (avro_value_get_by_name(v, name, &f, NULL) ||
            avro_value_get_string(&f, &s, &len))
                return NULL;
        return s;
}

static int sb_rights_long_field(avro_value_t *v, const char *name, int64_t *out)
{
        avro_value_t f;

        return avro_value_get_by_name(v, name, &f, NULL) ||
               avro_value_get_long(&f, out);
}

/* Which declared key signed it: the one sb_key_id names, else any. */
static void
sb_rights_check_sig(const sb_rights_expect_t *exp,
                    const unsigned char (*keys)[SB_SIGN_PUBLIC_BYTES],
                    size_t key_cnt, const void *value, size_t len,
                    const char *sig_hex, sb_rights_receipt_t *out)
{
        char id[SB_KEY_ID_HEXLEN + 1];
        size_t i, tried = 0;

        if (key_cnt == 0) {
                out->sig = SB_RIGHTS_SIG_KEY_UNKNOWN;
                return;
        }
        out->sig = SB_RIGHTS_SIG_BAD;
        if (!sig_hex) {
                snprintf(out->reason, sizeof(out->reason),
                         "no signature (header sb_sig)");
                return;
        }
        for (i = 0; i < key_cnt; i++) {
                sb_key_id(keys[i], id);
                if (*out->key_id && strcmp(id, out->key_id))
                        continue;
                tried++;
                if (sb_verify(keys[i], value, len, sig_hex) == SB_OK) {
                        out->sig = SB_RIGHTS_SIG_VERIFIED;
                        snprintf(out->key_id, sizeof(out->key_id), "%s", id);
                        return;
                }
        }
        if (!tried)
                snprintf(out->reason, sizeof(out->reason),
                         "signed with key %s, which is not among the "
                         "receipt_keys declared for reuser '%s'",
                         out->key_id, exp->reuser);
        else
                snprintf(out->reason, sizeof(out->reason),
                         "signature does not verify with the receipt key%s "
                         "declared for reuser '%s'",
                         tried > 1 ? "s" : "", exp->reuser);
}

sb_err_t sb_rights_receipt_check(
    const sb_schema_t *schema, const sb_rights_expect_t *exp,
    const unsigned char (*keys)[SB_SIGN_PUBLIC_BYTES], size_t key_cnt,
    const void *value, size_t len, const char *sig_hex, const char *key_id,
    sb_rights_receipt_t *out, char *errstr, size_t errstr_size)
{
        const char *names[] = {"event_id", "reuser", "dataset", "type"};
        const char *want[] = {exp->event_id, exp->reuser, exp->dataset,
                              exp->type};
        char why[400];
        avro_value_t v;
        size_t i;

        memset(out, 0, sizeof(*out));
        out->offset = -1;
        if (key_id && strlen(key_id) == SB_KEY_ID_HEXLEN)
                snprintf(out->key_id, sizeof(out->key_id), "%s", key_id);
        /* The signature first: what an unsigned value says is not
         * evidence of anything. */
        sb_rights_check_sig(exp, keys, key_cnt, value, len, sig_hex, out);
        if (out->sig == SB_RIGHTS_SIG_BAD)
                return SB_OK;

        if (sb_schema_value_new(schema, &v, errstr, errstr_size))
                return SB_ERR_NOMEM;
        if (!value ||
            sb_schema_decode(schema, value, len, &v, why, sizeof(why))) {
                snprintf(out->reason, sizeof(out->reason),
                         "not a receipt (%s): %.200s", schema->fullname,
                         value ? why : "no value");
                goto done;
        }
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const char *got = sb_rights_string_field(&v, names[i]);

                if (!got || strcmp(got, want[i])) {
                        snprintf(out->reason, sizeof(out->reason),
                                 "field '%s' is \"%.64s\", expected \"%s\"",
                                 names[i], got ? got : "", want[i]);
                        goto done;
                }
        }
        if (sb_rights_long_field(&v, "rows", &out->rows) ||
            sb_rights_long_field(&v, "applied_at", &out->applied_at)) {
                snprintf(out->reason, sizeof(out->reason),
                         "fields 'rows' and 'applied_at' unreadable");
                goto done;
        }
        out->valid = 1;
done:
        avro_value_decref(&v);
        return SB_OK;
}

/* The last value of header `name` as a string, in `out`; NULL if absent. */
static const char *sb_rights_header(const rd_kafka_message_t *m,
                                    const char *name, char *out, size_t size)
{
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;

        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len) || !v || len >= size)
                return NULL;
        memcpy(out, v, len);
        out[len] = '\0';
        return out;
}

/* The message key as a string, in `out`; NULL if absent or too long. */
static const char *sb_rights_key(const rd_kafka_message_t *m, char *out,
                                 size_t size)
{
        if (!m->key || m->key_len == 0 || m->key_len >= size)
                return NULL;
        memcpy(out, m->key, m->key_len);
        out[m->key_len] = '\0';
        return out;
}

/*
 * The scan
 */

typedef struct sb_rights_scan_s {
        sb_rights_t *r;
        const char *only; /* event id, or NULL: every event */
        sb_rights_report_t *rep;
        size_t unreadable;
        /* while reading one reuser's receipt topic */
        const char *reuser;
        unsigned char (*keys)[SB_SIGN_PUBLIC_BYTES];
        size_t key_cnt;
} sb_rights_scan_t;

static sb_rights_event_t *sb_rights_event_of(sb_rights_report_t *rep,
                                             const char *event_id)
{
        json_t *i = json_object_get(rep->index, event_id);

        return i ? &rep->events[json_integer_value(i)] : NULL;
}

static sb_rights_ack_t *sb_rights_ack_of(sb_rights_event_t *ev,
                                         const char *reuser)
{
        size_t i;

        for (i = 0; i < ev->ack_cnt; i++)
                if (!strcmp(ev->acks[i].reuser, reuser))
                        return &ev->acks[i];
        return NULL;
}

static sb_err_t sb_rights_add_ack(sb_rights_event_t *ev, const char *reuser)
{
        sb_rights_ack_t *acks;

        if (sb_rights_ack_of(ev, reuser))
                return SB_OK;
        acks = realloc(ev->acks, (ev->ack_cnt + 1) * sizeof(*acks));
        if (!acks)
                return SB_ERR_NOMEM;
        ev->acks = acks;
        memset(&acks[ev->ack_cnt], 0, sizeof(*acks));
        acks[ev->ack_cnt].reuser = strdup(reuser);
        if (!acks[ev->ack_cnt].reuser)
                return SB_ERR_NOMEM;
        ev->ack_cnt++;
        return SB_OK;
}

static sb_rights_event_t *sb_rights_add_event(sb_rights_report_t *rep,
                                              const json_t *e,
                                              const char *event_id)
{
        const char *rt =
            json_string_value(json_object_get(e, "requested_time"));
        sb_rights_event_t *ev;

        if (!rep->index && !(rep->index = json_object()))
                return NULL;
        if (rep->event_cnt == rep->cap) {
                size_t cap = rep->cap ? rep->cap * 2 : 16;
                sb_rights_event_t *n =
                    realloc(rep->events, cap * sizeof(*rep->events));

                if (!n)
                        return NULL;
                rep->events = n;
                rep->cap = cap;
        }
        ev = &rep->events[rep->event_cnt];
        memset(ev, 0, sizeof(*ev));
        ev->event_id = strdup(event_id);
        ev->type = strdup(json_string_value(json_object_get(e, "type")));
        ev->dataset = strdup(json_string_value(json_object_get(e, "dataset")));
        ev->requested_time = strdup(rt ? rt : "");
        ev->notified_at = json_integer_value(json_object_get(e, "at"));
        rep->event_cnt++; /* released with the report, even if incomplete */
        if (!ev->event_id || !ev->type || !ev->dataset || !ev->requested_time ||
            json_object_set_new(rep->index, event_id,
                                json_integer((json_int_t)rep->event_cnt - 1)))
                return NULL;
        return ev;
}

sb_err_t sb_rights_report_add(sb_rights_report_t *rep, const json_t *e,
                              char *errstr, size_t errstr_size)
{
        const char *event_id, *reuser;
        sb_rights_event_t *ev;
        const json_t *v;
        size_t i;

        event_id = json_string_value(json_object_get(e, "event_id"));
        if (!event_id || !json_is_string(json_object_get(e, "type")) ||
            !json_is_string(json_object_get(e, "dataset")) ||
            !json_is_integer(json_object_get(e, "at")) ||
            !json_is_array(json_object_get(e, "notified")))
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "a rights.propagate entry without event_id, "
                                 "type, dataset, at or notified");
        ev = sb_rights_event_of(rep, event_id);
        if (ev) {
                /* Seen twice (never expected): the first notice counts. */
                int64_t at = json_integer_value(json_object_get(e, "at"));

                if (at < ev->notified_at)
                        ev->notified_at = at;
        } else if (!(ev = sb_rights_add_event(rep, e, event_id))) {
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        json_array_foreach(json_object_get(e, "notified"), i, v)
        {
                if (!(reuser = json_string_value(v)) || !*reuser)
                        continue;
                if (sb_rights_add_ack(ev, reuser))
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
        }
        return SB_OK;
}

/* What names a receipt in rep->audited: its reuser and offset. */
static void sb_rights_receipt_name(const char *reuser, int64_t offset,
                                   char *out, size_t size)
{
        snprintf(out, size, "%s/%" PRId64, reuser, offset);
}

/* A "receipt" entry: that receipt is audited already. */
static sb_err_t sb_rights_on_audited(sb_rights_scan_t *sc, const json_t *e,
                                     char *errstr, size_t errstr_size)
{
        const char *reuser = json_string_value(json_object_get(e, "reuser"));
        const json_t *off = json_object_get(e, "receipt_offset");
        char name[300];

        if (!reuser || !json_is_integer(off))
                return SB_OK; /* not one this module wrote */
        if (!sc->rep->audited && !(sc->rep->audited = json_object()))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        sb_rights_receipt_name(reuser, json_integer_value(off), name,
                               sizeof(name));
        if (json_object_set_new(sc->rep->audited, name, json_true()))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

/* One _sb.audit message: a "rights.propagate" entry is an event, a
 * "receipt" entry a receipt already audited. */
static sb_err_t sb_rights_on_audit(const rd_kafka_message_t *m, void *opaque,
                                   char *errstr, size_t errstr_size)
{
        sb_rights_scan_t *sc = opaque;
        const char *event_id, *op;
        json_error_t jerr;
        json_t *e;
        sb_err_t err;

        /* The key is the event id, or the chain id of the receipt
         * entries: skip other events without parsing. */
        if (sc->only && m->key &&
            (m->key_len != strlen(sc->only) ||
             memcmp(m->key, sc->only, m->key_len)) &&
            (m->key_len != strlen(SB_RIGHTS_AUDIT_CHAIN) ||
             memcmp(m->key, SB_RIGHTS_AUDIT_CHAIN, m->key_len)))
                return SB_OK;
        if (!m->payload)
                return SB_OK;
        e = json_loadb(m->payload, m->len, 0, &jerr);
        op = json_string_value(json_object_get(e, "op"));
        event_id = json_string_value(json_object_get(e, "event_id"));
        if (op && !strcmp(op, SB_RIGHTS_AUDIT_OP)) {
                err = sb_rights_on_audited(sc, e, errstr, errstr_size);
                json_decref(e);
                return err;
        }
        if (!op || strcmp(op, "rights.propagate") ||
            (sc->only && event_id && strcmp(event_id, sc->only))) {
                json_decref(e);
                return SB_OK; /* another kind of entry, or another event */
        }
        err = sb_rights_report_add(sc->rep, e, errstr, errstr_size);
        json_decref(e);
        if (err == SB_ERR_INVALID_ARG) {
                if (!sc->unreadable++)
                        sb_log(SB_LOG_WARN, "RIGHTS",
                               "%s partition %" PRId32 " offset %" PRId64
                               ": %s; skipped",
                               SB_RIGHTS_AUDIT_TOPIC, m->partition, m->offset,
                               errstr);
                return SB_OK;
        }
        return err;
}

/*
 * A verified receipt: counted as audited when _sb.audit holds its entry,
 * else its entry is queued in rep->unaudited for sb_rights_audit(). No
 * subject id nor pseudonym in it: the event id leads to the audit
 * pseudonym, in the rights.propagate entry.
 */
static sb_err_t sb_rights_note_receipt(sb_rights_scan_t *sc,
                                       const sb_rights_event_t *ev,
                                       sb_rights_ack_t *ack,
                                       const sb_rights_receipt_t *rc,
                                       char *errstr, size_t errstr_size)
{
        sb_rights_report_t *rep = sc->rep;
        char name[300], author[300];
        json_t *e;

        sb_rights_receipt_name(ack->reuser, rc->offset, name, sizeof(name));
        if (json_object_get(rep->audited, name)) {
                ack->audited_cnt++;
                return SB_OK;
        }
        snprintf(author, sizeof(author), "sharebus://admin/%s",
                 sc->r->cfg->client_id);
        e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I}",
                      "op", SB_RIGHTS_AUDIT_OP, "author", author, "event_id",
                      ev->event_id, "reuser", ack->reuser, "dataset",
                      ev->dataset, "type", ev->type, "rows",
                      (json_int_t)rc->rows, "applied_at",
                      (json_int_t)rc->applied_at, "key_id", rc->key_id,
                      "receipt_offset", (json_int_t)rc->offset);
        if (!e || (!rep->unaudited && !(rep->unaudited = json_array())) ||
            json_array_append_new(rep->unaudited, e))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

/* One message of sb.ack.<sc->reuser>. */
static sb_err_t sb_rights_on_receipt(const rd_kafka_message_t *m, void *opaque,
                                     char *errstr, size_t errstr_size)
{
        sb_rights_scan_t *sc = opaque;
        char key[128], sig[SB_SIG_HEXLEN + 1], key_id[SB_KEY_ID_HEXLEN + 1];
        sb_rights_receipt_t rc;
        sb_rights_expect_t exp;
        sb_rights_event_t *ev;
        sb_rights_ack_t *ack;
        sb_err_t err;

        if (!sb_rights_key(m, key, sizeof(key)) ||
            (sc->only && strcmp(key, sc->only)) ||
            !(ev = sb_rights_event_of(sc->rep, key)) ||
            !(ack = sb_rights_ack_of(ev, sc->reuser)))
                return SB_OK; /* not a receipt of an event we look at */
        exp.event_id = ev->event_id;
        exp.reuser = sc->reuser;
        exp.dataset = ev->dataset;
        exp.type = ev->type;
        err = sb_rights_receipt_check(
            sc->r->receipt, &exp,
            (const unsigned char(*)[SB_SIGN_PUBLIC_BYTES])sc->keys, sc->key_cnt,
            m->payload, m->len, sb_rights_header(m, "sb_sig", sig, sizeof(sig)),
            sb_rights_header(m, "sb_key_id", key_id, sizeof(key_id)), &rc,
            errstr, errstr_size);
        if (err)
                return err;
        rc.offset = m->offset;
        ack->receipt_cnt++;
        if (rc.valid) {
                if (ack->receipt.valid == 0)
                        ack->receipt = rc;
                if (rc.sig == SB_RIGHTS_SIG_VERIFIED)
                        return sb_rights_note_receipt(sc, ev, ack, &rc, errstr,
                                                      errstr_size);
        } else {
                if (ack->invalid_cnt++ == 0)
                        ack->bad = rc;
                sb_log(SB_LOG_INFO, "RIGHTS",
                       "sb.ack.%s offset %" PRId64
                       ": receipt for event %s refused: %s",
                       sc->reuser, m->offset, ev->event_id, rc.reason);
        }
        return SB_OK;
}

/* The reuser's declared receipt keys into sc->keys. */
static sb_err_t sb_rights_load_keys(sb_rights_t *r, sb_rights_scan_t *sc,
                                    const char *reuser)
{
        size_t i, cnt = sb_platform_receipt_key_cnt(r->pf, reuser);

        free(sc->keys);
        sc->keys = NULL;
        sc->key_cnt = 0;
        if (!cnt)
                return SB_OK;
        sc->keys = calloc(cnt, sizeof(*sc->keys));
        if (!sc->keys)
                return SB_ERR_NOMEM;
        for (i = 0; i < cnt; i++)
                sb_platform_receipt_key(r->pf, reuser, i, sc->keys[i]);
        sc->key_cnt = cnt;
        return SB_OK;
}

/* Decides the state of each (event, reuser) once everything is read. */
void sb_rights_report_decide(sb_rights_report_t *rep, int64_t now)
{
        char d[32], due[32];
        size_t i, j;

        rep->now = now;
        sb_rights_format_duration(rep->deadline_ms, d, sizeof(d));
        for (i = 0; i < rep->event_cnt; i++) {
                sb_rights_event_t *ev = &rep->events[i];

                sb_time_format(ev->notified_at + rep->deadline_ms, due);
                for (j = 0; j < ev->ack_cnt; j++) {
                        sb_rights_ack_t *a = &ev->acks[j];

                        a->reason[0] = '\0';
                        if (a->receipt.valid) {
                                a->state = SB_RIGHTS_ACKNOWLEDGED;
                        } else if (a->invalid_cnt) {
                                a->state = SB_RIGHTS_INVALID;
                                snprintf(a->reason, sizeof(a->reason), "%s%s",
                                         a->bad.reason,
                                         a->invalid_cnt > 1
                                             ? " (and more invalid receipts)"
                                             : "");
                        } else if (rep->now >
                                   ev->notified_at + rep->deadline_ms) {
                                a->state = SB_RIGHTS_OVERDUE;
                                snprintf(a->reason, sizeof(a->reason),
                                         "no receipt within %s of the "
                                         "notice (due %s)",
                                         d, due);
                        } else {
                                a->state = SB_RIGHTS_PENDING;
                        }
                }
        }
}

/* Reads the receipt topics of the reusers notified of rep's events. */
static sb_err_t sb_rights_read_receipts(sb_rights_scan_t *sc, char *errstr,
                                        size_t errstr_size)
{
        sb_rights_report_t *rep = sc->rep;
        json_t *reusers = json_object(), *v;
        const char *reuser;
        char topic[300];
        sb_err_t err = SB_OK;
        size_t i, j;

        if (!reusers)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < rep->event_cnt; i++)
                for (j = 0; j < rep->events[i].ack_cnt; j++)
                        if (json_object_set_new(reusers,
                                                rep->events[i].acks[j].reuser,
                                                json_true())) {
                                err = sb_seterr(errstr, errstr_size,
                                                SB_ERR_NOMEM, "out of memory");
                                goto done;
                        }
        json_object_foreach(reusers, reuser, v)
        {
                if (sb_rights_load_keys(sc->r, sc, reuser)) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
                sc->reuser = reuser;
                snprintf(topic, sizeof(topic), "sb.ack.%s", reuser);
                err = sb_reader_read(sc->r->reader, topic, sb_rights_on_receipt,
                                     sc, errstr, errstr_size);
                if (err == SB_ERR_NOT_FOUND) {
                        /* Its receipts cannot be there: it is overdue in
                         * time, not a reason to hide the others. */
                        sb_log(SB_LOG_WARN, "RIGHTS", "%s", errstr);
                        err = SB_OK;
                }
                if (err)
                        goto done;
        }
done:
        free(sc->keys);
        sc->keys = NULL;
        sc->key_cnt = 0;
        json_decref(reusers);
        return err;
}

sb_err_t sb_rights_check_receipts(sb_rights_t *r, sb_rights_report_t *rep,
                                  int64_t deadline_ms, char *errstr,
                                  size_t errstr_size)
{
        sb_rights_scan_t sc;
        sb_err_t err;

        memset(&sc, 0, sizeof(sc));
        sc.r = r;
        sc.rep = rep;
        rep->deadline_ms = deadline_ms;
        if ((err = sb_rights_read_receipts(&sc, errstr, errstr_size)))
                return err;
        sb_rights_report_decide(rep, sb_now_ms());
        return SB_OK;
}

sb_err_t sb_rights_scan(sb_rights_t *r, const char *event_id,
                        int64_t deadline_ms, sb_rights_report_t *rep,
                        char *errstr, size_t errstr_size)
{
        sb_rights_scan_t sc;
        sb_err_t err;

        memset(rep, 0, sizeof(*rep));
        memset(&sc, 0, sizeof(sc));
        sc.r = r;
        rep->deadline_ms = deadline_ms;
        sc.only = event_id;
        sc.rep = rep;
        if ((err =
                 sb_reader_read(r->reader, SB_RIGHTS_AUDIT_TOPIC,
                                sb_rights_on_audit, &sc, errstr, errstr_size)))
                return err;
        if (event_id && !rep->event_cnt)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOT_FOUND,
                                 "no audit entry for event %s: not propagated "
                                 "yet, or older than %s's retention",
                                 event_id, SB_RIGHTS_AUDIT_TOPIC);
        if ((err = sb_rights_read_receipts(&sc, errstr, errstr_size)))
                return err;
        sb_rights_report_decide(rep, sb_now_ms());
        return SB_OK;
}

void sb_rights_report_release(sb_rights_report_t *rep)
{
        size_t i, j;

        if (!rep)
                return;
        for (i = 0; i < rep->event_cnt; i++) {
                sb_rights_event_t *ev = &rep->events[i];

                for (j = 0; j < ev->ack_cnt; j++)
                        free(ev->acks[j].reuser);
                free(ev->acks);
                free(ev->event_id);
                free(ev->type);
                free(ev->dataset);
                free(ev->requested_time);
        }
        free(rep->events);
        json_decref(rep->index);
        json_decref(rep->audited);
        json_decref(rep->unaudited);
        memset(rep, 0, sizeof(*rep));
}

/*
 * Alerts
 */

/* The alert of one (event, reuser), as a new JSON object. */
static json_t *sb_rights_alert_json(const sb_rights_report_t *rep,
                                    const sb_rights_event_t *ev,
                                    const sb_rights_ack_t *a, const char *alert)
{
        char notified[32], detected[32];

        sb_time_format(ev->notified_at, notified);
        sb_time_format(rep->now, detected);
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
                         "alert", alert, "event_id", ev->event_id, "reuser",
                         a->reuser, "dataset", ev->dataset, "type", ev->type,
                         "notified_at", notified, "deadline_ms",
                         (json_int_t)rep->deadline_ms, "detected_at", detected,
                         "reason", a->reason);
}

sb_err_t sb_rights_alerts(const sb_rights_report_t *rep, json_t *alerts,
                          char *errstr, size_t errstr_size)
{
        const char *alert;
        char *key;
        size_t i, j;
        int bad;

        for (i = 0; i < rep->event_cnt; i++) {
                const sb_rights_event_t *ev = &rep->events[i];

                for (j = 0; j < ev->ack_cnt; j++) {
                        const sb_rights_ack_t *a = &ev->acks[j];

                        if (a->state == SB_RIGHTS_OVERDUE)
                                alert = SB_RIGHTS_ALERT_OVERDUE;
                        else if (a->state == SB_RIGHTS_INVALID)
                                alert = SB_RIGHTS_ALERT_INVALID;
                        else
                                continue;
                        if (asprintf(&key, "%s/%s", ev->event_id, a->reuser) ==
                            -1)
                                return sb_seterr(errstr, errstr_size,
                                                 SB_ERR_NOMEM, "out of memory");
                        bad = sb_alerts_add(
                            alerts, key,
                            sb_rights_alert_json(rep, ev, a, alert));
                        free(key);
                        if (bad)
                                return sb_seterr(errstr, errstr_size,
                                                 SB_ERR_NOMEM, "out of memory");
                }
        }
        return SB_OK;
}

sb_err_t sb_rights_alert(sb_rights_t *r, const sb_rights_report_t *rep,
                         size_t *raisedp, char *errstr, size_t errstr_size)
{
        json_t *alerts = json_array();
        sb_err_t err;

        *raisedp = 0;
        if (!alerts)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        err = sb_rights_alerts(rep, alerts, errstr, errstr_size);
        if (!err)
                err = sb_alerter_raise(r->alerter, alerts, NULL, raisedp,
                                       errstr, errstr_size);
        json_decref(alerts);
        return err;
}

/*
 * Receipt entries
 */

sb_err_t sb_rights_audit(sb_rights_t *r, const sb_rights_report_t *rep,
                         size_t *auditedp, char *errstr, size_t errstr_size)
{
        sb_auditlog_t *al;
        sb_err_t err;

        *auditedp = 0;
        if (json_array_size(rep->unaudited) == 0)
                return SB_OK;
        /* A writer per pass, not per watcher: its init_transactions()
         * fences any other, and the chain is read back after it. */
        al =
            sb_auditlog_new(r->cfg, SB_RIGHTS_AUDIT_CHAIN, errstr, errstr_size);
        if (!al)
                return SB_ERR_KAFKA;
        err = sb_auditlog_write(al, rep->unaudited, errstr, errstr_size);
        sb_auditlog_destroy(al);
        if (!err)
                *auditedp = json_array_size(rep->unaudited);
        return err;
}

sb_err_t sb_rights_watch_once(sb_rights_t *r, int64_t deadline_ms,
                              size_t *raisedp, size_t *auditedp, char *errstr,
                              size_t errstr_size)
{
        sb_rights_report_t rep;
        size_t audited = 0;
        sb_err_t err;

        *raisedp = 0;
        err = sb_rights_scan(r, NULL, deadline_ms, &rep, errstr, errstr_size);
        if (!err)
                err = sb_rights_alert(r, &rep, raisedp, errstr, errstr_size);
        if (!err)
                err = sb_rights_audit(r, &rep, &audited, errstr, errstr_size);
        if (auditedp)
                *auditedp = audited;
        sb_rights_report_release(&rep);
        return err;
}

/*
 * Life cycle
 */

sb_rights_t *sb_rights_new(const sb_admin_cfg_t *cfg, const sb_platform_t *pf,
                           char *errstr, size_t errstr_size)
{
        sb_rights_t *r;

        r = calloc(1, sizeof(*r));
        if (!r) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        r->cfg = cfg;
        r->pf = pf;
        r->receipt = sb_catalog_by_name(pf->cat, SB_RECEIPT_SCHEMA);
        if (!r->receipt) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "platform '%s': the receipt schema '%s' is not in "
                          "its schemas_dir",
                          pf->origin, SB_RECEIPT_SCHEMA);
                goto fail;
        }
        if (sb_crypto_init(errstr, errstr_size))
                goto fail;
        r->reader = sb_reader_new(cfg, "rights", errstr, errstr_size);
        if (!r->reader)
                goto fail;
        if (!(r->alerter = sb_alerter_new(cfg, r->reader))) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        return r;

fail:
        sb_rights_destroy(r);
        return NULL;
}

void sb_rights_destroy(sb_rights_t *r)
{
        if (!r)
                return;
        sb_alerter_destroy(r->alerter);
        sb_reader_destroy(r->reader);
        free(r);
}
