#include "notices.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"
#include "producer.h"
#include "reader.h"

#define SB_NOTICE_DAY_MS      (24 * 3600 * 1000LL)
#define SB_NOTICE_CONTACT     "the platform team that issued the grant"
#define SB_NOTICE_REVOKED_KEY "/grant.revoked/"

struct sb_notifier_s {
        const sb_admin_cfg_t *cfg;
        sb_grantadm_t *grants; /* reads _sb.grants */
        sb_reader_t *reader;   /* reads the notice topics */
        rd_kafka_t *producer;  /* made on the first notice to send */
        char source[300];      /* sharebus://admin/<client id> */
};

const char *sb_notice_kind2str(sb_notice_kind_t kind)
{
        switch (kind) {
        case SB_NOTICE_NONE:
                return "none";
        case SB_NOTICE_EXPIRING:
                return "grant.expiring";
        case SB_NOTICE_EXPIRED:
                return "grant.expired";
        case SB_NOTICE_REVOKED:
                return "grant.revoked";
        }
        return "?";
}

const char *sb_notice_state2str(sb_notice_state_t state)
{
        switch (state) {
        case SB_NOTICE_DUE:
                return "due";
        case SB_NOTICE_ALREADY_SENT:
                return "already-sent";
        case SB_NOTICE_SENT:
                return "sent";
        case SB_NOTICE_FAILED:
                return "failed";
        }
        return "?";
}

/* Whether `now` is before `since` + `keep_ms` (keep_ms <= 0: forever). */
static int sb_notice_kept(int64_t since, int64_t now, int64_t keep_ms)
{
        return keep_ms <= 0 || now - since < keep_ms;
}

sb_notice_kind_t sb_notice_decide(const sb_notice_grant_t *g, int64_t now,
                                  int64_t before_ms, int64_t keep_ms)
{
        if (!g->status)
                return SB_NOTICE_NONE;
        if (!strcmp(g->status, "revoked"))
                return g->revoked_at_ms >= 0 && now >= g->revoked_at_ms &&
                               sb_notice_kept(g->revoked_at_ms, now, keep_ms)
                           ? SB_NOTICE_REVOKED
                           : SB_NOTICE_NONE;
        if (strcmp(g->status, "approved") || !g->has_valid_until)
                return SB_NOTICE_NONE;
        if (now >= g->valid_until_ms)
                return sb_notice_kept(g->valid_until_ms, now, keep_ms)
                           ? SB_NOTICE_EXPIRED
                           : SB_NOTICE_NONE;
        if (now >= g->valid_until_ms - before_ms)
                return SB_NOTICE_EXPIRING;
        return SB_NOTICE_NONE;
}

/*
 * The grants to decide on
 */

static sb_err_t sb_notice_grants_alloc(size_t cnt, sb_notice_grant_t **grantsp,
                                       char *errstr, size_t errstr_size)
{
        *grantsp = calloc(cnt ? cnt : 1, sizeof(**grantsp));
        if (!*grantsp)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

sb_err_t sb_notice_grants_from_state(const sb_grant_state_t *st,
                                     sb_notice_grant_t **grantsp, size_t *cntp,
                                     char *errstr, size_t errstr_size)
{
        size_t i, n = 0;
        sb_err_t err;

        *cntp = 0;
        if ((err =
                 sb_notice_grants_alloc(st->cnt, grantsp, errstr, errstr_size)))
                return err;
        for (i = 0; i < st->cnt; i++) {
                const sb_grant_version_t *v = &st->v[i];
                sb_notice_grant_t *g = &(*grantsp)[n];
                const char *until;

                if (v->kind != SB_GRANT_V_OBJECT)
                        continue; /* nothing to tell anyone from */
                g->id = v->id;
                g->reuser =
                    json_string_value(json_object_get(v->json, "reuser"));
                g->dataset =
                    json_string_value(json_object_get(v->json, "dataset"));
                g->status = sb_grant_version_status(v);
                g->purposes = json_object_get(v->json, "purposes");
                g->revoked_at_ms = -1;
                until =
                    json_string_value(json_object_get(v->json, "valid_until"));
                if (!g->reuser || !g->dataset)
                        continue;
                if (until) {
                        if (sb_time_parse(until, &g->valid_until_ms)) {
                                sb_log(SB_LOG_WARN, "NOTICE",
                                       "grant '%s' on %s: valid_until \"%s\" "
                                       "is not a time; no notice for it",
                                       v->id, SB_GRANTS_TOPIC, until);
                                continue;
                        }
                        g->has_valid_until = 1;
                }
                if (sb_grant_version_revoked(v) && v->changed_at &&
                    sb_time_parse(v->changed_at, &g->revoked_at_ms))
                        g->revoked_at_ms = -1;
                n++;
        }
        *cntp = n;
        return SB_OK;
}

sb_err_t sb_notice_grants_from_platform(const sb_platform_t *pf,
                                        sb_notice_grant_t **grantsp,
                                        size_t *cntp, char *errstr,
                                        size_t errstr_size)
{
        size_t i;
        sb_err_t err;

        *cntp = 0;
        if ((err = sb_notice_grants_alloc(pf->grant_cnt, grantsp, errstr,
                                          errstr_size)))
                return err;
        for (i = 0; i < pf->grant_cnt; i++) {
                const sb_grant_t *src = pf->grants[i];
                sb_notice_grant_t *g = &(*grantsp)[i];

                g->id = src->id;
                g->reuser = src->reuser;
                g->dataset = src->dataset;
                g->status = src->status;
                g->purposes = src->purposes;
                g->has_valid_until = src->has_valid_until;
                g->valid_until_ms = src->valid_until_ms;
                g->revoked_at_ms = -1; /* a file does not say when */
        }
        *cntp = pf->grant_cnt;
        return SB_OK;
}

/*
 * One notice
 */

/* "a, b" from the purposes; "no purpose" when none. */
static void sb_notice_purposes(const json_t *purposes, char *out, size_t size)
{
        size_t i, len = 0;
        json_t *s;

        snprintf(out, size, "no purpose");
        json_array_foreach((json_t *)purposes, i, s)
        {
                int w =
                    snprintf(out + len, size - len, "%s%s", i ? ", " : "",
                             json_string_value(s) ? json_string_value(s) : "?");

                if (w < 0 || (size_t)w >= size - len)
                        break;
                len += (size_t)w;
        }
}

/* The sentence for the reuser: what happens, what to do, whom to ask. */
static int sb_notice_reason(const sb_notice_grant_t *g, sb_notice_kind_t kind,
                            const char *until, const char *revoked,
                            int64_t days_left, const char *contact, char **out)
{
        char purposes[512];

        sb_notice_purposes(g->purposes, purposes, sizeof(purposes));
        switch (kind) {
        case SB_NOTICE_EXPIRING:
                return asprintf(
                    out,
                    "Grant %s (dataset %s, for %s) expires at %s, in %" PRId64
                    " day(s): from then on nothing more is shared on "
                    "sb.out.%s.%s, and your reuser agent purges the rows "
                    "received under this grant once valid_until has passed "
                    "(copies made elsewhere must go too). To keep "
                    "receiving the data, ask %s to renew the grant before "
                    "then.",
                    g->id, g->dataset, purposes, until, days_left, g->reuser,
                    g->dataset, contact);
        case SB_NOTICE_EXPIRED:
                return asprintf(
                    out,
                    "Grant %s (dataset %s, for %s) expired at %s: nothing "
                    "more is shared on sb.out.%s.%s, and your reuser agent "
                    "purges the rows received under this grant, which are "
                    "past valid_until (copies made elsewhere must go "
                    "too). To receive the data again, ask %s for a renewal.",
                    g->id, g->dataset, purposes, until, g->reuser, g->dataset,
                    contact);
        case SB_NOTICE_REVOKED:
                return asprintf(
                    out,
                    "Grant %s (dataset %s, for %s) was revoked at %s: "
                    "nothing more is shared on sb.out.%s.%s under it, and "
                    "you may no longer use the data for these purposes "
                    "(erasures for the people you received still reach "
                    "you). Ask %s why, or for a new grant.",
                    g->id, g->dataset, purposes, revoked, g->reuser, g->dataset,
                    contact);
        case SB_NOTICE_NONE:
                break;
        }
        *out = NULL;
        return -1;
}

sb_err_t sb_notice_make(const sb_notice_grant_t *g, sb_notice_kind_t kind,
                        int64_t now, const char *contact, sb_notice_t *n,
                        char *errstr, size_t errstr_size)
{
        char until[32] = "", revoked[32] = "", sent_at[32];
        char *reason = NULL;
        json_t *j = NULL;

        memset(n, 0, sizeof(*n));
        n->kind = kind;
        n->dr = SB_ADMIN_DR_WAITING;
        if (kind == SB_NOTICE_NONE || !g->id || !g->reuser || !g->dataset ||
            (kind != SB_NOTICE_REVOKED && !g->has_valid_until) ||
            (kind == SB_NOTICE_REVOKED && g->revoked_at_ms < 0))
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "grant '%s': no %s notice to make",
                                 g->id ? g->id : "?", sb_notice_kind2str(kind));
        if (!contact || !*contact)
                contact = SB_NOTICE_CONTACT;
        if (g->has_valid_until)
                sb_time_format(g->valid_until_ms, until);
        if (kind == SB_NOTICE_REVOKED)
                sb_time_format(g->revoked_at_ms, revoked);
        sb_time_format(now, sent_at);
        if (kind == SB_NOTICE_EXPIRING)
                n->days_left =
                    (g->valid_until_ms - now + SB_NOTICE_DAY_MS - 1) /
                    SB_NOTICE_DAY_MS;
        if (!(n->grant_id = strdup(g->id)) || !(n->reuser = strdup(g->reuser)))
                goto nomem;
        if (asprintf(&n->topic, "%s%s", SB_NOTICE_TOPIC_PREFIX, g->reuser) ==
            -1) {
                n->topic = NULL;
                goto nomem;
        }
        if (asprintf(&n->key, "%s/%s/%s", g->id, sb_notice_kind2str(kind),
                     kind == SB_NOTICE_REVOKED ? revoked : until) == -1) {
                n->key = NULL;
                goto nomem;
        }
        if (sb_notice_reason(g, kind, until, revoked, n->days_left, contact,
                             &reason) == -1) {
                reason = NULL;
                goto nomem;
        }
        j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s?, s:I, s:s, s:s}",
                      "notice", sb_notice_kind2str(kind), "grant", g->id,
                      "reuser", g->reuser, "dataset", g->dataset, "purposes",
                      g->purposes ? json_deep_copy(g->purposes) : json_array(),
                      "valid_until", g->has_valid_until ? until : NULL,
                      "days_left", (json_int_t)n->days_left, "sent_at", sent_at,
                      "reason", reason);
        if (j && kind == SB_NOTICE_REVOKED &&
            json_object_set_new(j, "revoked_at", json_string(revoked)))
                goto nomem;
        if (!j ||
            !(n->value = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
                goto nomem;
        json_decref(j);
        free(reason);
        return SB_OK;
nomem:
        json_decref(j);
        free(reason);
        sb_notice_release(n);
        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
}

void sb_notice_release(sb_notice_t *n)
{
        if (!n)
                return;
        free(n->grant_id);
        free(n->reuser);
        free(n->topic);
        free(n->key);
        free(n->value);
        memset(n, 0, sizeof(*n));
}

void sb_notice_pass_release(sb_notice_pass_t *pass)
{
        size_t i;

        for (i = 0; i < pass->cnt; i++)
                sb_notice_release(&pass->notices[i]);
        free(pass->notices);
        memset(pass, 0, sizeof(*pass));
}

static sb_err_t sb_notice_pass_add(sb_notice_pass_t *pass,
                                   const sb_notice_grant_t *g,
                                   sb_notice_kind_t kind, const char *contact,
                                   char *errstr, size_t errstr_size)
{
        sb_err_t err;

        if (pass->cnt == pass->cap) {
                size_t cap = pass->cap ? pass->cap * 2 : 8;
                sb_notice_t *v = realloc(pass->notices, cap * sizeof(*v));

                if (!v)
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                pass->notices = v;
                pass->cap = cap;
        }
        err = sb_notice_make(g, kind, pass->now, contact,
                             &pass->notices[pass->cnt], errstr, errstr_size);
        if (!err)
                pass->cnt++;
        return err;
}

static int sb_notice_cmp(const void *a, const void *b)
{
        const sb_notice_t *x = a, *y = b;
        int c = strcmp(x->topic, y->topic);

        return c ? c : strcmp(x->key, y->key);
}

/*
 * The notifier
 */

/*
 * One message of a notice topic: remembers its key, and for a revocation
 * "<grant id>/grant.revoked/" too (one per grant, whenever revoked).
 */
static sb_err_t sb_notice_on_msg(const rd_kafka_message_t *m, void *opaque,
                                 char *errstr, size_t errstr_size)
{
        json_t *seen = opaque;
        const char *rev;
        char *key;
        int rc;

        if (!m->key || !m->key_len)
                return SB_OK;
        key = strndup(m->key, m->key_len);
        if (!key)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        rc = json_object_set_new(seen, key, json_true());
        rev = strstr(key, SB_NOTICE_REVOKED_KEY);
        if (!rc && rev) {
                key[rev - key + strlen(SB_NOTICE_REVOKED_KEY)] = '\0';
                rc = json_object_set_new(seen, key, json_true());
        }
        free(key);
        if (rc)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

static int sb_notice_seen(const json_t *seen, const sb_notice_t *n)
{
        const char *rev;
        char prefix[600];

        if (json_object_get(seen, n->key))
                return 1;
        rev = strstr(n->key, SB_NOTICE_REVOKED_KEY);
        if (n->kind != SB_NOTICE_REVOKED || !rev)
                return 0;
        snprintf(prefix, sizeof(prefix), "%.*s",
                 (int)(rev - n->key + strlen(SB_NOTICE_REVOKED_KEY)), n->key);
        return json_object_get(seen, prefix) != NULL;
}

/* The grants of this pass, from _sb.grants or else the files of `pf`. */
static sb_err_t sb_notifier_grants(sb_notifier_t *nt, const sb_platform_t *pf,
                                   sb_grant_state_t *st,
                                   sb_notice_grant_t **grantsp, size_t *cntp,
                                   int *from_filesp, char *errstr,
                                   size_t errstr_size)
{
        sb_err_t err;

        err = sb_grantadm_read(nt->grants, st, errstr, errstr_size);
        if (err && err != SB_ERR_NOT_FOUND)
                return err;
        *from_filesp = err == SB_ERR_NOT_FOUND || st->cnt == 0;
        if (*from_filesp)
                return sb_notice_grants_from_platform(pf, grantsp, cntp, errstr,
                                                      errstr_size);
        return sb_notice_grants_from_state(st, grantsp, cntp, errstr,
                                           errstr_size);
}

/* Sends the due notices of notices[from, to) (one topic). */
static sb_err_t sb_notifier_send(sb_notifier_t *nt, sb_notice_t *notices,
                                 size_t cnt, char *errstr, size_t errstr_size)
{
        char ce_id[37], ce_time[32], ce_type[64];
        rd_kafka_resp_err_t kerr;
        size_t i;

        if (!nt->producer && !(nt->producer = sb_admin_producer_new(
                                   nt->cfg, "notice", errstr, errstr_size)))
                return SB_ERR_KAFKA;
        for (i = 0; i < cnt; i++) {
                sb_notice_t *n = &notices[i];

                if (n->state != SB_NOTICE_DUE)
                        continue;
                sb_uuid4(ce_id);
                sb_time_format(sb_now_ms(), ce_time);
                snprintf(ce_type, sizeof(ce_type), "sharebus.%s",
                         sb_notice_kind2str(n->kind));
                n->dr = SB_ADMIN_DR_WAITING;
                kerr = rd_kafka_producev(
                    nt->producer, RD_KAFKA_V_TOPIC(n->topic),
                    RD_KAFKA_V_KEY(n->key, strlen(n->key)),
                    RD_KAFKA_V_VALUE(n->value, strlen(n->value)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADER("ce_specversion", "1.0", -1),
                    RD_KAFKA_V_HEADER("ce_id", ce_id, -1),
                    RD_KAFKA_V_HEADER("ce_source", nt->source, -1),
                    RD_KAFKA_V_HEADER("ce_type", ce_type, -1),
                    RD_KAFKA_V_HEADER("ce_time", ce_time, -1),
                    RD_KAFKA_V_HEADER("content-type", "application/json", -1),
                    RD_KAFKA_V_OPAQUE(&n->dr), RD_KAFKA_V_END);
                if (kerr) {
                        n->dr = kerr;
                        return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                         "notice %s to '%s': %s", n->key,
                                         n->topic, rd_kafka_err2str(kerr));
                }
        }
        return SB_OK;
}

sb_err_t sb_notifier_run(sb_notifier_t *nt, const sb_platform_t *pf,
                         int64_t now, int64_t before_ms, int dry_run,
                         sb_notice_pass_t *pass, char *errstr,
                         size_t errstr_size)
{
        sb_notice_grant_t *grants = NULL;
        sb_grant_state_t st;
        char first[1024] = "", one[1024];
        size_t i, from, to, grant_cnt = 0;
        sb_err_t err, first_err = SB_OK;
        json_t *seen = NULL;

        memset(pass, 0, sizeof(*pass));
        memset(&st, 0, sizeof(st));
        pass->now = now;
        if (pf->ops_retention_ms > 0 && before_ms > pf->ops_retention_ms)
                return sb_seterr(
                    errstr, errstr_size, SB_ERR_INVALID_ARG,
                    "a notice %" PRId64 " ms before expiry is longer than the "
                    "notice topics keep it (ops_retention_days of '%s': "
                    "%" PRId64 " ms), so it could be sent twice; lower "
                    "--before or expiry_notice_ms",
                    before_ms, pf->origin, pf->ops_retention_ms);
        if ((err = sb_notifier_grants(nt, pf, &st, &grants, &grant_cnt,
                                      &pass->from_files, errstr, errstr_size)))
                goto done;
        pass->grant_cnt = grant_cnt;
        for (i = 0; i < grant_cnt && !err; i++) {
                sb_notice_kind_t kind = sb_notice_decide(
                    &grants[i], now, before_ms, pf->ops_retention_ms);

                if (kind == SB_NOTICE_NONE)
                        continue;
                if (!json_object_get(pf->reusers, grants[i].reuser)) {
                        sb_log(SB_LOG_WARN, "NOTICE",
                               "grant '%s': its reuser '%s' is not declared "
                               "in '%s', so it has no notice topic; %s not "
                               "sent",
                               grants[i].id, grants[i].reuser, pf->origin,
                               sb_notice_kind2str(kind));
                        pass->undeclared++;
                        continue;
                }
                err = sb_notice_pass_add(pass, &grants[i], kind,
                                         nt->cfg->notice_contact, errstr,
                                         errstr_size);
        }
        if (err)
                goto done;
        if (pass->cnt)
                qsort(pass->notices, pass->cnt, sizeof(*pass->notices),
                      sb_notice_cmp);

        /* One notice topic at a time: read it, then send what it lacks. A
         * topic that cannot be read gets nothing, the others go on. */
        for (from = 0; from < pass->cnt; from = to) {
                const char *topic = pass->notices[from].topic;

                for (to = from;
                     to < pass->cnt && !strcmp(pass->notices[to].topic, topic);
                     to++)
                        ;
                json_decref(seen);
                if (!(seen = json_object())) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
                err = sb_reader_read(nt->reader, topic, sb_notice_on_msg, seen,
                                     one, sizeof(one));
                for (i = from; i < to; i++) {
                        sb_notice_t *n = &pass->notices[i];

                        if (err)
                                n->state = SB_NOTICE_FAILED;
                        else if (sb_notice_seen(seen, n))
                                n->state = SB_NOTICE_ALREADY_SENT;
                }
                if (!err && !dry_run)
                        err = sb_notifier_send(nt, pass->notices + from,
                                               to - from, one, sizeof(one));
                if (err && !first_err) {
                        first_err = err;
                        snprintf(first, sizeof(first), "%s", one);
                }
                err = SB_OK;
        }
        if (!dry_run) {
                /* Whatever was handed over is waited for, even after an
                 * error; a notice still due was not handed over. */
                if (nt->producer)
                        sb_kafka_flush(nt->producer, (int)nt->cfg->timeout_ms);
                for (i = 0; i < pass->cnt; i++) {
                        sb_notice_t *n = &pass->notices[i];

                        if (n->state != SB_NOTICE_DUE)
                                continue;
                        if (n->dr == RD_KAFKA_RESP_ERR_NO_ERROR) {
                                n->state = SB_NOTICE_SENT;
                                continue;
                        }
                        n->state = SB_NOTICE_FAILED;
                        if (!first_err) {
                                first_err = SB_ERR_KAFKA;
                                snprintf(first, sizeof(first),
                                         "notice %s not delivered to '%s': "
                                         "%s",
                                         n->key, n->topic,
                                         n->dr == SB_ADMIN_DR_WAITING
                                             ? "no delivery report within "
                                               "timeout_ms"
                                             : rd_kafka_err2str(n->dr));
                        }
                }
        }
        for (i = 0; i < pass->cnt; i++) {
                const sb_notice_t *n = &pass->notices[i];

                switch (n->state) {
                case SB_NOTICE_DUE:
                        pass->due++;
                        break;
                case SB_NOTICE_ALREADY_SENT:
                        pass->already++;
                        break;
                case SB_NOTICE_SENT:
                        pass->sent++;
                        sb_log(SB_LOG_NOTICE, "NOTICE", "%s sent to %s: %s",
                               sb_notice_kind2str(n->kind), n->topic, n->key);
                        break;
                case SB_NOTICE_FAILED:
                        pass->failed++;
                        break;
                }
        }
        if (first_err)
                err = sb_seterr(errstr, errstr_size, first_err, "%s", first);
done:
        json_decref(seen);
        free(grants);
        sb_grant_state_release(&st);
        return err;
}

sb_notifier_t *sb_notifier_new(const sb_admin_cfg_t *cfg, char *errstr,
                               size_t errstr_size)
{
        sb_notifier_t *nt = calloc(1, sizeof(*nt));

        if (!nt) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        nt->cfg = cfg;
        snprintf(nt->source, sizeof(nt->source), "sharebus://admin/%s",
                 cfg->client_id);
        if (!(nt->grants = sb_grantadm_new(cfg, errstr, errstr_size)) ||
            !(nt->reader =
                  sb_reader_new(cfg, "notices", errstr, errstr_size))) {
                sb_notifier_destroy(nt);
                return NULL;
        }
        return nt;
}

void sb_notifier_destroy(sb_notifier_t *nt)
{
        if (!nt)
                return;
        if (nt->producer) {
                sb_kafka_flush(nt->producer, (int)nt->cfg->timeout_ms);
                rd_kafka_destroy(nt->producer);
        }
        sb_reader_destroy(nt->reader);
        sb_grantadm_destroy(nt->grants);
        free(nt);
}
