#include "grantfeed.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"

struct sb_grantfeed_s {
        rd_kafka_t *rk;
        char *topic;
        json_t *grants;  /* id -> {"json": grant | null, "at": "topic@p:o"} */
        json_t *changed; /* id -> grant, since sb_grantfeed_changes() */
};

sb_grantfeed_t *sb_grantfeed_new(const sb_kafka_cfg_t *kc,
                                 const char *client_id, const char *group_id,
                                 const char *topic, char *errstr,
                                 size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        sb_grantfeed_t *f;
        char kerrstr[512], id[300];

        f = calloc(1, sizeof(*f));
        if (!f || !(f->topic = strdup(topic)) || !(f->grants = json_object()) ||
            !(f->changed = json_object())) {
                sb_grantfeed_destroy(f);
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        snprintf(id, sizeof(id), "%s-grants", client_id);
        conf = sb_kafka_conf_new(kc, id, errstr, errstr_size);
        if (!conf ||
            sb_kafka_conf_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            /* Assigned, never joins nor commits; the gateways' group id,
             * whose ACL exists, in case the client asks its coordinator. */
            sb_kafka_conf_set(conf, "group.id", group_id, errstr,
                              errstr_size)) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                sb_grantfeed_destroy(f);
                return NULL;
        }
        f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
        if (!f->rk) {
                rd_kafka_conf_destroy(conf);
                sb_grantfeed_destroy(f);
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "grants: cannot create a consumer: %s", kerrstr);
                return NULL;
        }
        return f;
}

/* Takes one message in; returns 1 if it was a grant version. */
static int sb_grantfeed_take(sb_grantfeed_t *f, const rd_kafka_message_t *m)
{
        json_t *e, *g = NULL;
        char id[256], at[300];
        json_error_t jerr;

        if (!m->key || m->key_len == 0 || m->key_len >= sizeof(id)) {
                sb_log(SB_LOG_ERR, "GATEWAY",
                       "grants: '%s' [%" PRId32 "] offset %" PRId64
                       ": no grant id key, ignored",
                       f->topic, m->partition, m->offset);
                return 0;
        }
        memcpy(id, m->key, m->key_len);
        id[m->key_len] = '\0';
        snprintf(at, sizeof(at), "%s [%" PRId32 "] offset %" PRId64, f->topic,
                 m->partition, m->offset);
        if (m->payload) {
                g = json_loadb(m->payload, m->len, JSON_REJECT_DUPLICATES,
                               &jerr);
                if (!g) {
                        /* Kept as an unreadable version: the grant shares
                         * nothing until a valid one comes. */
                        sb_log(SB_LOG_ERR, "GATEWAY",
                               "grants: grant '%s' at %s: not JSON: %s", id, at,
                               jerr.text);
                        g = json_string("(not JSON)");
                }
        } else {
                /* A tombstone: the last version, revoked. */
                json_t *prev =
                    json_object_get(json_object_get(f->grants, id), "json");

                if (json_is_object(prev)) {
                        g = json_deep_copy(prev);
                        json_object_set_new(g, "status",
                                            json_string("revoked"));
                }
        }
        json_object_set(f->changed, id, g ? g : json_null());
        e = json_pack("{s:o*, s:s}", "json", g, "at", at);
        if (e)
                json_object_set_new(f->grants, id, e);
        return 1;
}

sb_err_t sb_grantfeed_catch_up(sb_grantfeed_t *f, int timeout_ms, char *errstr,
                               size_t errstr_size)
{
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t kerr;
        int64_t deadline = sb_now_ms() + timeout_ms;
        int i, remaining;

        rkt = rd_kafka_topic_new(f->rk, f->topic, NULL);
        kerr = rd_kafka_metadata(f->rk, 0, rkt, &md, timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (kerr || md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt == 0) {
                rd_kafka_resp_err_t e =
                    kerr ? kerr : (md->topic_cnt ? md->topics[0].err : 0);

                if (md)
                        rd_kafka_metadata_destroy(md);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "grants: topic '%s': %s (run sharebus admin "
                                 "topics apply, and admin grants apply)",
                                 f->topic,
                                 e ? rd_kafka_err2str(e) : "no partitions");
        }
        parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (i = 0; i < md->topics[0].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(parts, f->topic, i)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        remaining = parts->cnt;
        rd_kafka_assign(f->rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        while (remaining > 0) {
                rd_kafka_message_t *m;

                if (sb_now_ms() > deadline)
                        return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                         "grants: topic '%s' not read to its "
                                         "end within %d ms",
                                         f->topic, timeout_ms);
                m = rd_kafka_consumer_poll(f->rk, 100);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        remaining--;
                else if (m->err)
                        sb_log(SB_LOG_WARN, "GATEWAY", "grants: %s",
                               rd_kafka_message_errstr(m));
                else
                        sb_grantfeed_take(f, m);
                rd_kafka_message_destroy(m);
        }
        return SB_OK;
}

int sb_grantfeed_poll(sb_grantfeed_t *f)
{
        rd_kafka_message_t *m;
        int n = 0;

        while ((m = rd_kafka_consumer_poll(f->rk, 0))) {
                if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        sb_log(SB_LOG_WARN, "GATEWAY", "grants: %s",
                               rd_kafka_message_errstr(m));
                else if (!m->err)
                        n += sb_grantfeed_take(f, m);
                rd_kafka_message_destroy(m);
        }
        return n;
}

static int sb_grant_id_cmp(const void *a, const void *b)
{
        return strcmp((*(sb_grant_t *const *)a)->id,
                      (*(sb_grant_t *const *)b)->id);
}

sb_err_t sb_grantfeed_grants(sb_grantfeed_t *f, const sb_catalog_t *cat,
                             sb_grant_t ***grantsp, size_t *cntp, size_t *bad,
                             char *errstr, size_t errstr_size)
{
        size_t n = json_object_size(f->grants), cnt = 0, i;
        sb_grant_t **grants = calloc(n ? n : 1, sizeof(*grants));
        char origin[600], gerr[1024];
        const char *id;
        json_t *e;

        *bad = 0;
        if (!grants)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        json_object_foreach(f->grants, id, e)
        {
                json_t *j = json_object_get(e, "json");
                sb_grant_t *g;

                if (!j)
                        continue; /* a tombstone with nothing before it */
                snprintf(origin, sizeof(origin), "%s at %s", id,
                         json_string_value(json_object_get(e, "at")));
                g = sb_grant_new(json_incref(j), origin, cat, gerr,
                                 sizeof(gerr));
                if (g && strcmp(g->id, id)) {
                        snprintf(gerr, sizeof(gerr),
                                 "grant '%s': its id '%s' is not its key",
                                 origin, g->id);
                        sb_grant_destroy(g);
                        g = NULL;
                }
                if (!g) {
                        sb_log(SB_LOG_ERR, "GATEWAY",
                               "%s; that grant shares nothing until a valid "
                               "version is published",
                               gerr);
                        (*bad)++;
                        continue;
                }
                for (i = 0; i < cnt && strcmp(grants[i]->topic, g->topic); i++)
                        ;
                if (i == cnt) {
                        grants[cnt++] = g;
                } else if (!strcmp(g->status, "revoked")) {
                        /* One grant per reuser and dataset: a revoked one
                         * gives way to its successor. */
                        sb_grant_destroy(g);
                } else if (!strcmp(grants[i]->status, "revoked")) {
                        sb_grant_destroy(grants[i]);
                        grants[i] = g;
                } else {
                        sb_log(SB_LOG_ERR, "GATEWAY",
                               "grant '%s': reuser '%s' already has grant "
                               "'%s' on dataset '%s'; it shares nothing until "
                               "one of them is revoked",
                               origin, g->reuser, grants[i]->id, g->dataset);
                        sb_grant_destroy(g);
                        (*bad)++;
                }
        }
        if (cnt)
                qsort(grants, cnt, sizeof(*grants), sb_grant_id_cmp);
        *grantsp = grants;
        *cntp = cnt;
        return SB_OK;
}

json_t *sb_grantfeed_changes(sb_grantfeed_t *f)
{
        json_t *changed = f->changed;

        f->changed = json_object();
        if (!f->changed) {
                f->changed = changed;
                return NULL;
        }
        return changed;
}

void sb_grantfeed_destroy(sb_grantfeed_t *f)
{
        if (!f)
                return;
        if (f->rk) {
                rd_kafka_consumer_close(f->rk);
                rd_kafka_destroy(f->rk);
        }
        free(f->topic);
        json_decref(f->grants);
        json_decref(f->changed);
        free(f);
}
