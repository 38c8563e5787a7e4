#include "gateway.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_kafka.h"
#include "envelope.h"
#include "grant.h"
#include "grantfeed.h"
#include "log.h"
#include "quota.h"
#include "schema.h"
#include "seal.h"
#include "sign.h"
#include "state.h"

#define F(name, type, req, def, lo, hi, desc)                                  \
        {                                                                      \
#name, type, offsetof(sb_gateway_cfg_t, name), req, def, lo,   \
                    hi, NULL, desc                                             \
        }

const sb_config_field_t sb_gateway_cfg_table[] = {
    {"kafka", SB_CFG_OBJECT, offsetof(sb_gateway_cfg_t, kafka), 1, NULL, 0, 0,
     sb_kafka_cfg_table, "Connection to the Kafka cluster"},
    F(client_id, SB_CFG_STRING, 0, "sharebus-gateway", 0, 0, "Kafka client.id"),
    F(datasets, SB_CFG_STRINGS, 1, NULL, 0, 0,
      "Datasets whose input topics (sb.in.<dataset>) this gateway serves"),
    F(schemas_dir, SB_CFG_STRING, 0, "schemas", 0, 0,
      "Directory of the dataset schemas (.avsc)"),
    F(grants_dir, SB_CFG_STRING, 0, NULL, 0, 0,
      "Directory of the grant files (.json), read at start; or grants_topic"),
    F(grants_topic, SB_CFG_STRING, 0, NULL, 0, 0,
      "Compacted topic of the grants (normally _sb.grants, written by "
      "sharebus admin grants apply), read before serving and followed "
      "while running; exactly one of grants_dir and grants_topic is set"),
    F(pseudonym_key_file, SB_CFG_STRING, 1, NULL, 0, 0,
      "File holding the 32-byte pseudonymisation master key as 64 hex "
      "characters (mode 0600)"),
    F(group_id, SB_CFG_STRING, 0, "sb-gateway", 0, 0,
      "Consumer group shared by all gateway instances"),
    F(transactional_id, SB_CFG_STRING, 0, NULL, 0, 0,
      "Kafka transactional.id, unique per gateway instance (default: "
      "sb-gateway-<client_id>)"),
    F(commit_interval_ms, SB_CFG_INT, 0, "100", 1, 60000,
      "Commit the open transaction at least this often"),
    F(commit_records, SB_CFG_INT, 0, "5000", 1, 1000000,
      "Commit the open transaction after this many input messages"),
    F(transaction_timeout_ms, SB_CFG_INT, 0, "15000", 1000, 900000,
      "Kafka transaction.timeout.ms: how long the broker keeps a crashed "
      "instance's open transaction before aborting it, so how long another "
      "instance taking over its partitions may wait"),
    F(restore_timeout_ms, SB_CFG_INT, 0, "120000", 1000, 3600000,
      "Longest wait for the subject state of newly assigned partitions to "
      "be read back from _sb.state.<dataset>; past it the gateway stops "
      "rather than process without state"),
    F(holder_keys_dir, SB_CFG_STRING, 0, NULL, 0, 0,
      "Directory of the holders' Ed25519 public keys, one subdirectory per "
      "dataset (<dir>/<dataset>/*.pub): every input message must carry a "
      "batch signature by one of its dataset's keys, or it is quarantined "
      "with an alert (R3.4-*). Required unless kafka.insecure_dev (then "
      "unset means not verified, warned at start)"),
    F(signing_key_file, SB_CFG_STRING, 0, NULL, 0, 0,
      "Ed25519 secret key file (mode 0600) that signs every message of the "
      "reuser streams, by batches; reuser agents verify with its public "
      "key. Required unless kafka.insecure_dev"),
    F(audit_key_file, SB_CFG_STRING, 0, NULL, 0, 0,
      "Ed25519 secret key file (sharebus keys generate, mode 0600) that "
      "signs the checkpoints of the gateway's chain on _sb.audit; its "
      "public key goes in the platform's audit_keys. Required unless "
      "kafka.insecure_dev (then, without it, the chain is linked but "
      "unsigned, warned at start)"),
    F(audit_checkpoint_every, SB_CFG_INT, 0, "100", 1, 1000000,
      "Write a signed checkpoint of the audit chain every this many "
      "entries (and on close)"),
    {NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL},
};
#undef F

/*
 * One partition of a grant's hold topic, as this instance drains it. The
 * hold partition of a record is its input partition, so the instance that
 * owns a subject's input also owns its held records and its state.
 */
typedef struct sb_gw_holdpart_s {
        int assigned;
        int paused;         /* over the quota, or the grant inactive */
        int64_t resume_at;  /* when paused: when to try again */
        int64_t next;       /* offset to commit: the first message not moved
                               on yet; -1: unknown (nothing to commit) */
        int drained_known;  /* the end was reached since the last
                               (re)assignment, seek or rewind */
        int64_t drained_to; /* every message before it was consumed */
        int64_t last_held;  /* offset of the last message held here by
                               this instance (delivery reports), -1 */
        size_t txn_held;    /* held in the open transaction */
} sb_gw_holdpart_t;

/*
 * A grant's quota and hold topic, kept across its versions (by grant id):
 * a new version changes the limits, not what was used.
 */
typedef struct sb_gw_hold_s {
        char *grant_id;
        char *topic; /* _sb.hold.<grant id> */
        sb_quota_t quota;
        int exists; /* the topic was found at the last assignment */
        int32_t topic_parts;
        int warned;    /* over the rate without a hold topic: said once */
        int notice_ok; /* sb.notice.<reuser> was found with the hold */
        int notice_warned;
        int64_t noticed_day;    /* UTC day of the last quota.exceeded notice */
        int64_t noticed_before; /* noticed_day before the open transaction */
        size_t waiting;         /* held by this instance, not moved on yet */
        sb_gw_holdpart_t *parts;
        int32_t part_cnt;
} sb_gw_hold_t;

/* One grant as the gateway serves it. */
typedef struct sb_gw_grant_s {
        sb_grant_t *grant;
        sb_pseudonymiser_t *ps;
        avro_value_t out;
        /* The grant's metadata tags (CNIL annex I) as the end of the
         * sb_tags JSON object, after "collected_at": made once. */
        char *tags_rest;
        int64_t history_ms; /* history_days in ms, 0: no limit */
        json_t *fields;     /* output field names, sorted, for the audit */
        sb_gw_hold_t *hold; /* its quota and hold (gw->holds) */
        struct sb_gw_dataset_s *d;
} sb_gw_grant_t;

typedef struct sb_gw_dataset_s {
        char *name;
        char *topic;       /* sb.in.<dataset> */
        char *state_topic; /* _sb.state.<dataset> */
        const sb_schema_t *schema;
        avro_value_t in;
        sb_gw_grant_t **grants;
        size_t grant_cnt;
        sb_state_t *state;
        sb_keyring_t *holder_keys; /* NULL: inputs not verified */
        sb_seal_verifier_t *verifier;
        sb_pseudonymiser_t *audit_ps; /* subjects' audit pseudonyms */
} sb_gw_dataset_t;

/*
 * What one transaction delivered to a grant, or kept from it for one
 * reason, for its "delivery" or "exclusion" audit entries: written just
 * before the commit, dropped on abort.
 */
typedef struct sb_gw_tally_s {
        const sb_gw_dataset_t *d;
        const sb_gw_grant_t *gg;
        const char *reason; /* NULL: delivered */
        json_t *subjects;   /* audit pseudonym -> [records, bytes] */
        int64_t first_at, last_at;
} sb_gw_tally_t;

/* Subjects per delivery or exclusion entry, at most. */
#define SB_GW_AUDIT_SUBJECTS_MAX 1000

struct sb_gateway_s {
        const sb_gateway_cfg_t *cfg;
        sb_catalog_t *cat;
        const sb_schema_t *rights;
        avro_value_t rights_value;
        int rights_value_ok;
        sb_grant_t **grants;
        size_t grant_cnt;
        sb_gw_grant_t *gw_grants;
        sb_gw_dataset_t *datasets;
        size_t dataset_cnt;
        sb_key_t *key;
        sb_signkey_t *signkey; /* signs the reuser streams, or NULL */
        sb_sealer_t *sealer;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        rd_kafka_t *restorer; /* reads _sb.state.<dataset> back */
        sb_grantfeed_t *feed; /* grants_topic, or NULL */
        int64_t feed_polled_ms;
        char txid[256];
        int assigned;
        int64_t assigned_ms; /* when the last assignment came */
        int in_txn;
        size_t txn_msgs;
        size_t txn_audit; /* audit messages in the open transaction */
        int64_t txn_start_ms;
        int txn_failed; /* a produce or delivery failed: abort */
        char txn_err[512];
        int fatal; /* state could not be restored: stop */
        char fatal_err[512];
        sb_buf_t buf;
        sb_gateway_stats_t stats;
        char source[256];
        /* The audit chain (common/audit.h), named by txid. */
        sb_audit_chain_t *chain;
        sb_signkey_t *audit_key; /* NULL: linked, not signed */
        int checkpoint_due;      /* one goes in the next transaction */
        sb_gw_tally_t *tally;
        size_t tally_cnt, tally_cap;
        const sb_gw_dataset_t *aps_d; /* last audit pseudonym computed */
        char aps_subject[256];
        char aps[SB_PSEUDONYM_HEXLEN + 1];
        sb_gw_hold_t **holds; /* one per grant id ever served */
        size_t hold_cnt;
};

/* Quotas and hold topics (see "Quotas" below). */
static int sb_gw_is_hold_topic(const char *topic);
static sb_gw_hold_t *sb_gw_hold_of(sb_gateway_t *gw, const sb_grant_t *g);
static void sb_gw_holds_destroy(sb_gateway_t *gw);
static rd_kafka_topic_partition_list_t *
sb_gw_with_holds(sb_gateway_t *gw, const rd_kafka_topic_partition_list_t *in);
static void sb_gw_hold_assigned(sb_gateway_t *gw,
                                const rd_kafka_topic_partition_list_t *parts);
static void sb_gw_hold_seeked(sb_gateway_t *gw,
                              const rd_kafka_topic_partition_list_t *parts);
static void sb_gw_hold_offsets(sb_gateway_t *gw,
                               rd_kafka_topic_partition_list_t *offsets);
static void sb_gw_hold_begin(sb_gateway_t *gw);
static void sb_gw_hold_abort(sb_gateway_t *gw);
static void sb_gw_hold_dr(sb_gateway_t *gw, const rd_kafka_message_t *m);
static int sb_gw_hold_wanted(sb_gateway_t *gw, sb_gw_grant_t *gg, int32_t p,
                             int64_t now);
static void sb_gw_hold_put(sb_gateway_t *gw, sb_gw_grant_t *gg, int32_t p,
                           const char *key, size_t keylen, const void *value,
                           size_t len, rd_kafka_headers_t *hdrs,
                           const char *subject, const char *record_id);

static void sb_gw_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        sb_gateway_t *gw = opaque;

        (void)rk;
        if (m->err && !gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err),
                         "delivery to '%s' failed: %s",
                         rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        else if (!m->err && sb_gw_is_hold_topic(rd_kafka_topic_name(m->rkt)))
                sb_gw_hold_dr(gw, m);
}

static sb_err_t sb_gw_commit(sb_gateway_t *gw, char *errstr,
                             size_t errstr_size);
static void sb_gw_abort(sb_gateway_t *gw, int rewind);
static void sb_gw_audit_begin(sb_gateway_t *gw);
static void sb_gw_audit_abort(sb_gateway_t *gw);
static sb_err_t sb_gw_audit_resume(sb_gateway_t *gw, char *errstr,
                                   size_t errstr_size);

static sb_gw_dataset_t *sb_gw_dataset_of(sb_gateway_t *gw, const char *topic)
{
        size_t i;

        for (i = 0; i < gw->dataset_cnt; i++)
                if (!strcmp(gw->datasets[i].topic, topic))
                        return &gw->datasets[i];
        return NULL;
}

/* The first time a subject's state changes in a transaction. */
static json_t *sb_gw_touch(sb_gateway_t *gw, sb_gw_dataset_t *d,
                           const char *subject, int32_t partition)
{
        json_t *s = sb_state_touch(d->state, subject, partition);

        if (!s && !gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err),
                         "out of memory updating the state of dataset '%s'",
                         d->name);
        return s;
}

/*
 * Reads back the subject state of the input partitions in `parts` from
 * _sb.state.<dataset>, after reading their committed offsets into `parts`.
 * The order matters: the committed offsets are fetched as stable
 * (read_committed), so once they are known no transaction that could
 * still add state to these partitions is open, and reading the changelog
 * to its end gives exactly the state that goes with those offsets.
 */
static sb_err_t sb_gw_restore(sb_gateway_t *gw,
                              rd_kafka_topic_partition_list_t *parts,
                              char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *state;
        rd_kafka_resp_err_t kerr;
        int64_t start = sb_now_ms(), deadline, lo, hi;
        int i, remaining = 0, loaded = 0;
        sb_err_t err = SB_OK;
        char subject[256];

        if (parts->cnt == 0)
                return SB_OK;
        kerr = rd_kafka_committed(gw->consumer, parts,
                                  (int)gw->cfg->restore_timeout_ms);
        if (kerr)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "gateway: cannot read the committed input "
                                 "offsets: %s",
                                 rd_kafka_err2str(kerr));
        state = rd_kafka_topic_partition_list_new(parts->cnt);
        for (i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *p = &parts->elems[i];
                sb_gw_dataset_t *d = sb_gw_dataset_of(gw, p->topic);

                if (p->offset < 0)
                        p->offset = RD_KAFKA_OFFSET_BEGINNING;
                if (!d)
                        continue;
                sb_state_drop_partition(d->state, p->partition);
                kerr = rd_kafka_query_watermark_offsets(
                    gw->restorer, d->state_topic, p->partition, &lo, &hi,
                    (int)gw->cfg->restore_timeout_ms);
                if (kerr) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_STATE,
                                        "gateway: state topic '%s' partition "
                                        "%" PRId32 ": %s (run 'sharebus admin "
                                        "topics apply')",
                                        d->state_topic, p->partition,
                                        rd_kafka_err2str(kerr));
                        goto done;
                }
                if (hi > lo) {
                        rd_kafka_topic_partition_list_add(state, d->state_topic,
                                                          p->partition)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
                        remaining++;
                }
        }
        if (remaining == 0)
                goto done;
        if ((kerr = rd_kafka_assign(gw->restorer, state))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                "gateway: cannot read the state topics: %s",
                                rd_kafka_err2str(kerr));
                goto done;
        }
        deadline = start + gw->cfg->restore_timeout_ms;
        while (remaining > 0 && !err) {
                rd_kafka_message_t *m;
                sb_gw_dataset_t *d = NULL;
                size_t j;

                if (sb_now_ms() > deadline) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_STATE,
                                        "gateway: reading the subject state "
                                        "back took more than %lld ms",
                                        gw->cfg->restore_timeout_ms);
                        break;
                }
                m = rd_kafka_consumer_poll(gw->restorer, 100);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_topic_partition_t *tp =
                            rd_kafka_topic_partition_list_find(
                                state, rd_kafka_topic_name(m->rkt),
                                m->partition);

                        if (tp && tp->err == 0) {
                                tp->err = RD_KAFKA_RESP_ERR__PARTITION_EOF;
                                remaining--;
                        }
                } else if (m->err) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_STATE,
                                        "gateway: reading '%s': %s",
                                        rd_kafka_topic_name(m->rkt),
                                        rd_kafka_message_errstr(m));
                } else {
                        for (j = 0; j < gw->dataset_cnt; j++)
                                if (!strcmp(gw->datasets[j].state_topic,
                                            rd_kafka_topic_name(m->rkt)))
                                        d = &gw->datasets[j];
                        if (!d || !m->key || m->key_len == 0 ||
                            m->key_len >= sizeof(subject)) {
                                err = sb_seterr(
                                    errstr, errstr_size, SB_ERR_STATE,
                                    "gateway: '%s' partition %" PRId32
                                    " offset %" PRId64 ": no valid subject "
                                    "key",
                                    rd_kafka_topic_name(m->rkt), m->partition,
                                    m->offset);
                        } else {
                                memcpy(subject, m->key, m->key_len);
                                subject[m->key_len] = '\0';
                                err = sb_state_load(
                                    d->state, subject, m->partition, m->payload,
                                    m->len, errstr, errstr_size);
                                loaded++;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(gw->restorer, NULL);
done:
        rd_kafka_topic_partition_list_destroy(state);
        if (!err)
                sb_log(SB_LOG_INFO, "GATEWAY",
                       "state of %d partition(s) read back: %d change(s) in "
                       "%" PRId64 " ms",
                       parts->cnt, loaded, sb_now_ms() - start);
        return err;
}

static void sb_gw_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque)
{
        sb_gateway_t *gw = opaque;
        rd_kafka_topic_partition_list_t *all;
        char errstr[512];
        int i;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                sb_log(SB_LOG_NOTICE, "GATEWAY", "assigned %d partition(s)",
                       parts->cnt);
                /* With the same partitions of the grants' hold topics: the
                 * held records of a subject go with its input. */
                all = sb_gw_with_holds(gw, parts);
                /* Never process a partition without its state. */
                if (sb_gw_restore(gw, all, gw->fatal_err,
                                  sizeof(gw->fatal_err))) {
                        gw->fatal = 1;
                        rd_kafka_topic_partition_list_destroy(all);
                        rd_kafka_assign(rk, NULL);
                        return;
                }
                sb_gw_hold_assigned(gw, all);
                rd_kafka_assign(rk, all);
                rd_kafka_topic_partition_list_destroy(all);
                gw->assigned = parts->cnt > 0;
                gw->assigned_ms = sb_now_ms();
                return;
        }
        /* Revoked: finish the open transaction while the group generation
         * is still ours, so the work done so far is kept. */
        if (gw->in_txn && sb_gw_commit(gw, errstr, sizeof(errstr)))
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "commit before revocation failed: %s", errstr);
        for (i = 0; i < parts->cnt; i++) {
                sb_gw_dataset_t *d =
                    sb_gw_dataset_of(gw, parts->elems[i].topic);

                if (d)
                        sb_state_drop_partition(d->state,
                                                parts->elems[i].partition);
        }
        sb_log(SB_LOG_NOTICE, "GATEWAY", "revoked %d partition(s)", parts->cnt);
        sb_gw_hold_assigned(gw, NULL);
        rd_kafka_assign(rk, NULL);
        gw->assigned = 0;
}

/* The tags every record shared under `gg` carries (docs/messages.md). */
static int sb_gw_grant_tags(sb_gw_grant_t *gg)
{
        const sb_grant_t *g = gg->grant;
        json_t *tags = json_pack("{s:O}", "purposes", g->purposes);
        char until[32], *text;

        gg->history_ms = (int64_t)g->history_days * 86400000;
        if (!tags)
                return -1;
        if (g->has_valid_until) {
                sb_time_format(g->valid_until_ms, until);
                json_object_set_new(tags, "valid_until", json_string(until));
        }
        if (g->in->reliability)
                json_object_set_new(tags, "reliability",
                                    json_string(g->in->reliability));
        if (g->retention_days)
                json_object_set_new(tags, "retention_days",
                                    json_integer(g->retention_days));
        text = json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(tags);
        if (!text)
                return -1;
        /* "{...}" -> "...}": what follows "collected_at", which sorts
         * before every other key. */
        gg->tags_rest = strdup(text + 1);
        free(text);
        return gg->tags_rest ? 0 : -1;
}

/*
 * Adds the sb_tags header (docs/messages.md): the record's collection time
 * and the grant's tags, one compact JSON object with sorted keys. One
 * header rather than one per tag: each header more cost the erasure
 * latency benchmark hundreds of milliseconds on the real broker.
 */
static rd_kafka_headers_t *sb_gw_tag(rd_kafka_headers_t *h,
                                     const sb_gw_grant_t *gg,
                                     const char *collected_at)
{
        char v[1024];
        int n = snprintf(v, sizeof(v), "{\"collected_at\":\"%s\",%s",
                         collected_at, gg->tags_rest);

        if (n > 0 && (size_t)n < sizeof(v))
                rd_kafka_header_add(h, "sb_tags", -1, v, n);
        else
                rd_kafka_header_add(h, "sb_tags", -1, "{}", 2);
        return h;
}

/* Forgets the grants served. */
static void sb_gw_drop_grants(sb_gateway_t *gw)
{
        size_t i;

        for (i = 0; gw->gw_grants && i < gw->grant_cnt; i++) {
                sb_gw_grant_t *gg = &gw->gw_grants[i];

                if (gg->out.iface)
                        avro_value_decref(&gg->out);
                sb_pseudonymiser_destroy(gg->ps);
                free(gg->tags_rest);
                json_decref(gg->fields);
        }
        free(gw->gw_grants);
        gw->gw_grants = NULL;
        sb_grants_destroy(gw->grants, gw->grant_cnt);
        gw->grants = NULL;
        gw->grant_cnt = 0;
        for (i = 0; gw->datasets && i < gw->dataset_cnt; i++) {
                free(gw->datasets[i].grants);
                gw->datasets[i].grants = NULL;
                gw->datasets[i].grant_cnt = 0;
        }
}

static int sb_gw_strcmp_p(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of the fields a grant shares (its output schema's), sorted,
 * as a new JSON array: the "fields" of its delivery audit entries. */
static json_t *sb_gw_out_fields(const sb_grant_t *g)
{
        const json_t *fields = json_object_get(g->out->json, "fields"), *f;
        size_t i, n = json_array_size(fields);
        const char **names = calloc(n ? n : 1, sizeof(*names));
        json_t *out = json_array();

        if (!names || !out)
                goto fail;
        json_array_foreach(fields, i, f) names[i] =
            json_string_value(json_object_get(f, "name"));
        for (i = 0; i < n; i++)
                if (!names[i])
                        goto fail;
        qsort(names, n, sizeof(*names), sb_gw_strcmp_p);
        for (i = 0; i < n; i++)
                if (json_array_append_new(out, json_string(names[i])))
                        goto fail;
        free(names);
        return out;
fail:
        free(names);
        json_decref(out);
        return NULL;
}

/*
 * Serves `grants` (taken) from now on, in place of the grants before. Only
 * between transactions: nothing in flight was decided under other grants.
 */
static sb_err_t sb_gw_install_grants(sb_gateway_t *gw, sb_grant_t **grants,
                                     size_t cnt, char *errstr,
                                     size_t errstr_size)
{
        size_t i, j;

        sb_gw_drop_grants(gw);
        gw->grants = grants;
        gw->grant_cnt = cnt;
        gw->gw_grants = calloc(cnt ? cnt : 1, sizeof(*gw->gw_grants));
        if (!gw->gw_grants)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < cnt; i++) {
                sb_gw_grant_t *gg = &gw->gw_grants[i];

                gg->grant = grants[i];
                gg->ps = sb_pseudonymiser_new(gw->key, gg->grant->reuser,
                                              gg->grant->dataset);
                gg->hold = sb_gw_hold_of(gw, gg->grant);
                if (!gg->ps || !gg->hold || sb_gw_grant_tags(gg) ||
                    !(gg->fields = sb_gw_out_fields(gg->grant)))
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                if (sb_schema_value_new(gg->grant->out, &gg->out, errstr,
                                        errstr_size))
                        return SB_ERR_NOMEM;
        }
        for (i = 0; i < gw->dataset_cnt; i++) {
                sb_gw_dataset_t *d = &gw->datasets[i];

                d->grants = calloc(cnt ? cnt : 1, sizeof(*d->grants));
                if (!d->grants)
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                for (j = 0; j < cnt; j++)
                        if (!strcmp(grants[j]->dataset, d->name)) {
                                gw->gw_grants[j].d = d;
                                d->grants[d->grant_cnt++] = &gw->gw_grants[j];
                        }
                sb_log(SB_LOG_NOTICE, "GATEWAY",
                       "dataset '%s': %zu grant(s), schema %016" PRIx64,
                       d->name, d->grant_cnt, d->schema->fingerprint);
        }
        return SB_OK;
}

/* Rebuilds the grants from the feed's current versions. */
static sb_err_t sb_gw_reload_grants(sb_gateway_t *gw, char *errstr,
                                    size_t errstr_size)
{
        sb_grant_t **grants;
        size_t cnt, bad;

        if (sb_grantfeed_grants(gw->feed, gw->cat, &grants, &cnt, &bad, errstr,
                                errstr_size))
                return SB_ERR_GRANT;
        gw->stats.grants_invalid = bad;
        return sb_gw_install_grants(gw, grants, cnt, errstr, errstr_size);
}

static sb_err_t sb_gw_load(sb_gateway_t *gw, char *errstr, size_t errstr_size)
{
        const sb_gateway_cfg_t *cfg = gw->cfg;
        json_t *ds;
        size_t i;

        gw->cat = sb_catalog_load(cfg->schemas_dir, errstr, errstr_size);
        if (!gw->cat)
                return SB_ERR_SCHEMA;
        gw->rights = sb_catalog_by_name(gw->cat, SB_RIGHTS_SCHEMA);
        if (!gw->rights)
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schemas '%s': the rights event schema '%s' "
                                 "is missing",
                                 cfg->schemas_dir, SB_RIGHTS_SCHEMA);
        if (sb_schema_value_new(gw->rights, &gw->rights_value, errstr,
                                errstr_size))
                return SB_ERR_NOMEM;
        gw->rights_value_ok = 1;
        gw->dataset_cnt = json_array_size(cfg->datasets);
        gw->datasets = calloc(gw->dataset_cnt ? gw->dataset_cnt : 1,
                              sizeof(*gw->datasets));
        if (!gw->datasets)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        if (gw->dataset_cnt == 0)
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "gateway: key 'datasets' is empty");
        json_array_foreach(cfg->datasets, i, ds)
        {
                sb_gw_dataset_t *d = &gw->datasets[i];

                d->name = strdup(json_string_value(ds));
                d->state = sb_state_new();
                d->audit_ps = d->name
                                  ? sb_audit_pseudonymiser_new(gw->key, d->name)
                                  : NULL;
                if (!d->name || !d->state || !d->audit_ps ||
                    asprintf(&d->topic, "sb.in.%s", d->name) == -1 ||
                    asprintf(&d->state_topic, "_sb.state.%s", d->name) == -1) {
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                }
                d->schema = sb_catalog_dataset(gw->cat, d->name);
                if (!d->schema)
                        return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                         "gateway: dataset '%s': no schema in "
                                         "'%s' declares it",
                                         d->name, cfg->schemas_dir);
                if (sb_schema_value_new(d->schema, &d->in, errstr, errstr_size))
                        return SB_ERR_NOMEM;
        }
        if (!cfg->grants_dir == !cfg->grants_topic)
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "gateway: set exactly one of 'grants_dir' "
                                 "and 'grants_topic'");
        if (cfg->grants_dir) {
                sb_grant_t **grants;
                size_t cnt;

                if (sb_grants_load_dir(cfg->grants_dir, gw->cat, &grants, &cnt,
                                       errstr, errstr_size))
                        return SB_ERR_GRANT;
                return sb_gw_install_grants(gw, grants, cnt, errstr,
                                            errstr_size);
        }
        gw->feed = sb_grantfeed_new(&cfg->kafka, cfg->client_id, cfg->group_id,
                                    cfg->grants_topic, errstr, errstr_size);
        if (!gw->feed ||
            sb_grantfeed_catch_up(gw->feed, (int)cfg->restore_timeout_ms,
                                  errstr, errstr_size))
                return SB_ERR_KAFKA;
        /* Only the changes applied while running are audited. */
        json_decref(sb_grantfeed_changes(gw->feed));
        return sb_gw_reload_grants(gw, errstr, errstr_size);
}

/* The transactional producer; init_transactions fences any earlier
 * instance with the same transactional.id and ends its open transaction. */
static sb_err_t sb_gw_producer_new(sb_gateway_t *gw, char *errstr,
                                   size_t errstr_size)
{
        const sb_gateway_cfg_t *cfg = gw->cfg;
        rd_kafka_conf_t *conf;
        rd_kafka_error_t *kerr;
        char kerrstr[512], timeout[32];

        conf = sb_kafka_producer_conf_new(&cfg->kafka, cfg->client_id, errstr,
                                          errstr_size);
        if (!conf)
                return SB_ERR_CONFIG;
        snprintf(timeout, sizeof(timeout), "%lld", cfg->transaction_timeout_ms);
        if (sb_kafka_conf_set(conf, "transactional.id", gw->txid, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "transaction.timeout.ms", timeout, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "linger.ms", "5", errstr, errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return SB_ERR_CONFIG;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, sb_gw_dr_cb);
        rd_kafka_conf_set_opaque(conf, gw);
        gw->producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerrstr, sizeof(kerrstr));
        if (!gw->producer) {
                rd_kafka_conf_destroy(conf);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "gateway: cannot create producer: %s",
                                 kerrstr);
        }
        kerr = rd_kafka_init_transactions(gw->producer,
                                          (int)cfg->transaction_timeout_ms * 2);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot initialise transactions "
                          "(transactional.id '%s'): %s",
                          gw->txid, rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return SB_ERR_KAFKA;
        }
        /* Fenced: the chain's last entries are settled, read them back. */
        return sb_gw_audit_resume(gw, errstr, errstr_size);
}

/*
 * The consumer that reads the state changelog back: no group (it is
 * assigned partitions by hand), read_committed, and told when it reached
 * the end of a partition.
 */
static sb_err_t sb_gw_restorer_new(sb_gateway_t *gw, char *errstr,
                                   size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        char kerrstr[512], client_id[256];

        snprintf(client_id, sizeof(client_id), "%s-state", gw->cfg->client_id);
        conf =
            sb_kafka_conf_new(&gw->cfg->kafka, client_id, errstr, errstr_size);
        if (!conf)
                return SB_ERR_CONFIG;
        /* The group is never joined (no subscribe); librdkafka wants one. */
        if (sb_kafka_conf_set(conf, "group.id", gw->cfg->group_id, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return SB_ERR_CONFIG;
        }
        gw->restorer =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
        if (!gw->restorer) {
                rd_kafka_conf_destroy(conf);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "gateway: cannot create the state reader: %s",
                                 kerrstr);
        }
        rd_kafka_poll_set_consumer(gw->restorer);
        return SB_OK;
}

/* Partitions of `topic`, or -1 if it does not exist. */
static int sb_gw_partition_cnt(sb_gateway_t *gw, const char *topic,
                               char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        int cnt = -1;

        rkt = rd_kafka_topic_new(gw->restorer, topic, NULL);
        if (!rkt)
                return -1;
        err = rd_kafka_metadata(gw->restorer, 0, rkt, &md, 30000);
        rd_kafka_topic_destroy(rkt);
        if (err) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: metadata of topic '%s': %s", topic,
                          rd_kafka_err2str(err));
                return -1;
        }
        if (md->topic_cnt == 1 && !md->topics[0].err)
                cnt = md->topics[0].partition_cnt;
        else
                sb_seterr(errstr, errstr_size, SB_ERR_NOT_FOUND,
                          "gateway: topic '%s': %s (run 'sharebus admin "
                          "topics apply')",
                          topic,
                          md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                                        : "not found");
        rd_kafka_metadata_destroy(md);
        return cnt;
}

/*
 * The changelog partition of a subject is its input partition, so both
 * topics must have the same number of partitions.
 */
static sb_err_t sb_gw_check_topics(sb_gateway_t *gw, char *errstr,
                                   size_t errstr_size)
{
        size_t i;

        for (i = 0; i < gw->dataset_cnt; i++) {
                const sb_gw_dataset_t *d = &gw->datasets[i];
                int in, st;

                if ((in = sb_gw_partition_cnt(gw, d->topic, errstr,
                                              errstr_size)) < 0 ||
                    (st = sb_gw_partition_cnt(gw, d->state_topic, errstr,
                                              errstr_size)) < 0)
                        return SB_ERR_STATE;
                if (in != st)
                        return sb_seterr(errstr, errstr_size, SB_ERR_STATE,
                                         "gateway: '%s' has %d partition(s) "
                                         "but '%s' has %d: they must match",
                                         d->topic, in, d->state_topic, st);
        }
        return SB_OK;
}

/*
 * Signatures (DESIGN.md §9): the holders' public keys of each dataset, and
 * the key that signs the reuser streams. Either may be left out, for
 * development only: the gateway says so at start.
 */
static sb_err_t sb_gw_load_signing(sb_gateway_t *gw, char *errstr,
                                   size_t errstr_size)
{
        const sb_gateway_cfg_t *cfg = gw->cfg;
        char dir[4096];
        size_t i;

        if ((!cfg->holder_keys_dir || !cfg->signing_key_file) &&
            !cfg->kafka.insecure_dev)
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "gateway: %s is not set: outside "
                                 "kafka.insecure_dev the gateway verifies "
                                 "what it reads and signs what it shares",
                                 cfg->holder_keys_dir ? "signing_key_file"
                                                      : "holder_keys_dir");
        for (i = 0; cfg->holder_keys_dir && i < gw->dataset_cnt; i++) {
                sb_gw_dataset_t *d = &gw->datasets[i];

                snprintf(dir, sizeof(dir), "%s/%s", cfg->holder_keys_dir,
                         d->name);
                if (!(d->holder_keys = sb_keyring_new()))
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                if (sb_keyring_load_dir(d->holder_keys, dir, errstr,
                                        errstr_size))
                        return SB_ERR_CONFIG;
                if (!(d->verifier = sb_seal_verifier_new(d->holder_keys)))
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                sb_log(SB_LOG_INFO, "GATEWAY",
                       "dataset '%s': %zu holder key(s) from '%s'", d->name,
                       sb_keyring_cnt(d->holder_keys), dir);
        }
        if (!cfg->holder_keys_dir)
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "no holder_keys_dir: input signatures are not "
                       "verified (allowed with insecure_dev only)");
        if (!cfg->signing_key_file) {
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "no signing_key_file: reuser streams go unsigned "
                       "(allowed with insecure_dev only)");
                return SB_OK;
        }
        if (sb_signkey_load(cfg->signing_key_file, &gw->signkey, errstr,
                            errstr_size))
                return SB_ERR_CRYPTO;
        if (!(gw->sealer = sb_sealer_new(gw->signkey)))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        sb_log(SB_LOG_INFO, "GATEWAY", "signing reuser streams with key id %s",
               sb_signkey_id(gw->signkey));
        return SB_OK;
}

sb_gateway_t *sb_gateway_new(const sb_gateway_cfg_t *cfg, const sb_key_t *key,
                             char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_topic_partition_list_t *topics = NULL;
        rd_kafka_resp_err_t rerr;
        char kerrstr[512], client_id[256];
        sb_gateway_t *gw;
        size_t i;

        gw = calloc(1, sizeof(*gw));
        if (!gw) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        gw->cfg = cfg;
        snprintf(gw->source, sizeof(gw->source), "sharebus://gateway/%s",
                 cfg->client_id);
        snprintf(gw->txid, sizeof(gw->txid), "%s",
                 cfg->transactional_id ? cfg->transactional_id : "");
        if (!*gw->txid)
                snprintf(gw->txid, sizeof(gw->txid), "sb-gateway-%s",
                         cfg->client_id);
        if (sb_crypto_init(errstr, errstr_size))
                goto fail;
        if (key) {
                gw->key = sb_key_random();
                if (!gw->key) {
                        sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                  "out of memory");
                        goto fail;
                }
                memcpy(gw->key->bytes, key->bytes, SB_KEY_BYTES);
        } else if (sb_key_load(cfg->pseudonym_key_file, &gw->key, errstr,
                               errstr_size)) {
                goto fail;
        }
        if (cfg->audit_key_file) {
                if (sb_signkey_load(cfg->audit_key_file, &gw->audit_key, errstr,
                                    errstr_size))
                        goto fail;
        } else if (!cfg->kafka.insecure_dev) {
                sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                          "gateway: audit_key_file is not set: outside "
                          "kafka.insecure_dev the checkpoints of the audit "
                          "chain '%s' are signed (make a key with sharebus "
                          "keys generate and declare its public key in the "
                          "platform's audit_keys)",
                          gw->txid);
                goto fail;
        } else {
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "no audit_key_file: the audit chain '%s' is linked "
                       "but no checkpoint is signed (allowed with "
                       "insecure_dev only); set audit_key_file "
                       "(sharebus keys generate) and declare its public key "
                       "in the platform's audit_keys",
                       gw->txid);
        }
        gw->chain = sb_audit_chain_new(gw->txid, gw->audit_key,
                                       (int)cfg->audit_checkpoint_every, errstr,
                                       errstr_size);
        if (!gw->chain)
                goto fail;
        if (sb_gw_load(gw, errstr, errstr_size) ||
            sb_gw_load_signing(gw, errstr, errstr_size) ||
            sb_gw_restorer_new(gw, errstr, errstr_size) ||
            sb_gw_check_topics(gw, errstr, errstr_size) ||
            sb_gw_producer_new(gw, errstr, errstr_size))
                goto fail;

        /* Consumer: offsets go through the producer's transactions. */
        snprintf(client_id, sizeof(client_id), "%s-in", cfg->client_id);
        conf = sb_kafka_conf_new(&cfg->kafka, client_id, errstr, errstr_size);
        if (!conf)
                goto fail;
        if (sb_kafka_conf_set(conf, "group.id", cfg->group_id, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
                              errstr_size) ||
            /* The drain learns that a hold partition is empty. */
            sb_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size))
                goto fail;
        rd_kafka_conf_set_rebalance_cb(conf, sb_gw_rebalance_cb);
        rd_kafka_conf_set_opaque(conf, gw);
        gw->consumer =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
        if (!gw->consumer) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot create consumer: %s", kerrstr);
                goto fail;
        }
        conf = NULL;
        rd_kafka_poll_set_consumer(gw->consumer);
        topics = rd_kafka_topic_partition_list_new((int)gw->dataset_cnt);
        for (i = 0; i < gw->dataset_cnt; i++)
                rd_kafka_topic_partition_list_add(topics, gw->datasets[i].topic,
                                                  RD_KAFKA_PARTITION_UA);
        rerr = rd_kafka_subscribe(gw->consumer, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (rerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot subscribe: %s",
                          rd_kafka_err2str(rerr));
                goto fail;
        }
        return gw;

fail:
        if (conf)
                rd_kafka_conf_destroy(conf);
        sb_gateway_destroy(gw);
        return NULL;
}

static sb_err_t sb_gw_begin(sb_gateway_t *gw, char *errstr, size_t errstr_size)
{
        rd_kafka_error_t *kerr;

        if (gw->in_txn)
                return SB_OK;
        kerr = rd_kafka_begin_transaction(gw->producer);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "gateway: cannot begin transaction: %s",
                          rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return SB_ERR_KAFKA;
        }
        gw->in_txn = 1;
        gw->txn_msgs = 0;
        gw->txn_audit = 0;
        gw->txn_failed = 0;
        gw->txn_start_ms = sb_now_ms();
        sb_gw_audit_begin(gw);
        sb_gw_hold_begin(gw);
        return SB_OK;
}

/* Moves the consumer back to `parts`' offsets. */
static void sb_gw_seek(sb_gateway_t *gw, rd_kafka_topic_partition_list_t *parts)
{
        rd_kafka_error_t *kerr;
        int i;

        for (i = 0; i < parts->cnt; i++)
                if (parts->elems[i].offset < 0)
                        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        kerr = rd_kafka_seek_partitions(gw->consumer, parts, 10000);
        if (kerr) {
                sb_log(SB_LOG_ERR, "GATEWAY", "rewind failed: %s",
                       rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
        }
}

/* Rewinds the consumer to the last committed offsets of its assignment. */
static void sb_gw_rewind(sb_gateway_t *gw)
{
        rd_kafka_topic_partition_list_t *parts;

        if (rd_kafka_assignment(gw->consumer, &parts))
                return;
        if (parts->cnt > 0 && !rd_kafka_committed(gw->consumer, parts, 10000)) {
                sb_gw_seek(gw, parts);
                sb_gw_hold_seeked(gw, parts);
        }
        rd_kafka_topic_partition_list_destroy(parts);
}

static void sb_gw_abort(sb_gateway_t *gw, int rewind)
{
        rd_kafka_error_t *kerr;
        size_t i;

        if (!gw->in_txn)
                return;
        if (gw->sealer)
                sb_sealer_discard(gw->sealer);
        kerr = rd_kafka_abort_transaction(gw->producer, -1);
        if (kerr) {
                sb_log(SB_LOG_ERR, "GATEWAY", "abort failed: %s",
                       rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
        }
        for (i = 0; i < gw->dataset_cnt; i++)
                sb_state_rollback(gw->datasets[i].state);
        sb_gw_audit_abort(gw);
        sb_gw_hold_abort(gw);
        gw->in_txn = 0;
        gw->stats.aborts++;
        if (rewind)
                sb_gw_rewind(gw);
}

/*
 * The outcome of a commit is unknown (it timed out). Retrying the commit
 * is not safe (KAFKA-17754); instead a new producer with the same
 * transactional.id fences the old one and lets the broker finish or abort
 * its transaction, and the input offsets and the subject state are read
 * back from Kafka, whichever way it went.
 */
static sb_err_t sb_gw_resync(sb_gateway_t *gw, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts;
        sb_err_t err;
        size_t i;

        sb_log(SB_LOG_WARN, "GATEWAY",
               "commit outcome unknown: re-initialising the producer and "
               "reading offsets and state back");
        if (gw->sealer)
                sb_sealer_discard(gw->sealer);
        rd_kafka_destroy(gw->producer);
        gw->producer = NULL;
        gw->in_txn = 0;
        sb_gw_audit_abort(gw); /* the producer reads the chain back */
        sb_gw_hold_abort(gw);
        for (i = 0; i < gw->dataset_cnt; i++) {
                sb_state_rollback(gw->datasets[i].state);
                sb_state_drop_partition(gw->datasets[i].state, -1);
        }
        if ((err = sb_gw_producer_new(gw, errstr, errstr_size)))
                return err;
        if (rd_kafka_assignment(gw->consumer, &parts))
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "gateway: cannot read the assignment");
        err = sb_gw_restore(gw, parts, errstr, errstr_size);
        if (!err) {
                sb_gw_seek(gw, parts);
                sb_gw_hold_seeked(gw, parts);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        return err;
}

/* Sends one message in the open transaction; takes `hdrs`. */
static sb_err_t sb_gw_send(void *opaque, const char *topic, int32_t partition,
                           const void *key, size_t keylen, const void *value,
                           size_t len, rd_kafka_headers_t *hdrs,
                           void *msg_opaque)
{
        sb_gateway_t *gw = opaque;
        rd_kafka_resp_err_t err;

        (void)msg_opaque;
        for (;;) {
                err =
                    rd_kafka_producev(gw->producer, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_PARTITION(partition),
                                      RD_KAFKA_V_KEY((void *)key, keylen),
                                      RD_KAFKA_V_VALUE((void *)value, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(gw->producer, 50);
        }
        if (!err)
                return SB_OK;
        if (hdrs)
                rd_kafka_headers_destroy(hdrs);
        if (!gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err),
                         "produce to '%s' failed: %s", topic,
                         rd_kafka_err2str(err));
        return SB_ERR_KAFKA;
}

/* Signs and sends the stream messages waiting for their batch signature. */
static void sb_gw_seal(sb_gateway_t *gw)
{
        sb_err_t err;

        if (!gw->sealer || !sb_sealer_pending(gw->sealer))
                return;
        err = sb_sealer_flush(gw->sealer, sb_gw_send, gw);
        if (err == SB_OK)
                gw->stats.signed_batches++;
        else if (err != SB_ERR_KAFKA && !gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err),
                         "cannot sign a batch of the reuser streams");
}

/*
 * Produces in the open transaction. Messages of the reuser streams
 * (sb.*) wait for their batch signature when the gateway signs; the
 * platform's own topics (_sb.*) are not signed.
 */
static void sb_gw_produce(sb_gateway_t *gw, const char *topic,
                          int32_t partition, const void *key, size_t keylen,
                          const void *value, size_t len,
                          rd_kafka_headers_t *hdrs)
{
        if (!gw->sealer || strncmp(topic, "sb.", 3)) {
                sb_gw_send(gw, topic, partition, key, keylen, value, len, hdrs,
                           NULL);
                return;
        }
        if (sb_sealer_full(gw->sealer))
                sb_gw_seal(gw);
        if (sb_sealer_add(gw->sealer, topic, partition, key, keylen, value, len,
                          hdrs, NULL) &&
            !gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err), "out of memory");
}

/*
 * Audit (DESIGN.md §9; CNIL R4.3-12, R4.3-13, R4.3-15, R5.4-18): every
 * entry of the gateway goes into its hash chain (common/audit.h), named by
 * its transactional.id, in the transaction whose work it records, so an
 * aborted transaction leaves no entry either. Entries name subjects only by
 * their audit pseudonym, never by their id.
 */

static void sb_gw_txn_fail(sb_gateway_t *gw, const char *why)
{
        if (!gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err), "%s", why);
}

/* Produces an entry's text keyed `key`, then the checkpoint that follows
 * it, if any, keyed by the chain id; frees both. */
static void sb_gw_audit_produce(sb_gateway_t *gw, const char *key, char *text,
                                char *cp)
{
        if (text)
                sb_gw_produce(gw, SB_AUDIT_TOPIC, RD_KAFKA_PARTITION_UA, key,
                              strlen(key), text, strlen(text), NULL);
        if (cp)
                sb_gw_produce(gw, SB_AUDIT_TOPIC, RD_KAFKA_PARTITION_UA,
                              gw->txid, strlen(gw->txid), cp, strlen(cp), NULL);
        gw->txn_audit += (text != NULL) + (cp != NULL);
        free(text);
        free(cp);
}

/* Chains entry `e` (taken; NULL means out of memory) and produces it in the
 * open transaction, keyed `key` (NULL: the chain id). */
static void sb_gw_audit(sb_gateway_t *gw, json_t *e, const char *key)
{
        char *text = NULL, *cp = NULL, why[512];

        if (!e) {
                sb_gw_txn_fail(gw, "audit: out of memory");
                return;
        }
        if (sb_audit_chain_append(gw->chain, e, &text, &cp, why, sizeof(why)))
                sb_gw_txn_fail(gw, why);
        else
                sb_gw_audit_produce(gw, key ? key : gw->txid, text, cp);
        json_decref(e);
}

/* A signed checkpoint of everything chained so far, when there is a key and
 * something new to cover. */
static void sb_gw_audit_checkpoint(sb_gateway_t *gw)
{
        char *cp = NULL, why[512];

        if (!gw->audit_key)
                return;
        if (sb_audit_chain_checkpoint(gw->chain, &cp, why, sizeof(why)))
                sb_gw_txn_fail(gw, why);
        else
                sb_gw_audit_produce(gw, gw->txid, NULL, cp);
}

static void sb_gw_tally_clear(sb_gateway_t *gw)
{
        size_t i;

        for (i = 0; i < gw->tally_cnt; i++)
                json_decref(gw->tally[i].subjects);
        gw->tally_cnt = 0;
}

/* After rd_kafka_begin_transaction(). */
static void sb_gw_audit_begin(sb_gateway_t *gw)
{
        sb_audit_chain_mark(gw->chain);
        sb_gw_tally_clear(gw);
        if (gw->checkpoint_due)
                sb_gw_audit_checkpoint(gw);
}

/* After rd_kafka_abort_transaction(): nothing of it was written. */
static void sb_gw_audit_abort(sb_gateway_t *gw)
{
        sb_audit_chain_rollback(gw->chain);
        sb_gw_tally_clear(gw);
}

/*
 * Where the chain stands on _sb.audit, after init_transactions() fenced the
 * previous producer of this transactional.id (at start, and after a commit
 * of unknown outcome). When entries follow the last checkpoint, the first
 * transaction writes one.
 */
static sb_err_t sb_gw_audit_resume(sb_gateway_t *gw, char *errstr,
                                   size_t errstr_size)
{
        char client_id[300];
        int due = 0;
        sb_err_t err;

        snprintf(client_id, sizeof(client_id), "%s-audit", gw->cfg->client_id);
        sb_gw_tally_clear(gw);
        err = sb_audit_kafka_resume(
            gw->chain, gw->txid, &gw->cfg->kafka, client_id, gw->cfg->group_id,
            (int)gw->cfg->restore_timeout_ms, &due, errstr, errstr_size);
        if (err)
                return err;
        gw->checkpoint_due = due;
        sb_log(SB_LOG_INFO, "GATEWAY",
               "audit chain '%s' continues after seq %" PRId64 "%s", gw->txid,
               sb_audit_chain_seq(gw->chain),
               due ? "; a checkpoint first" : "");
        return SB_OK;
}

/* The audit pseudonym of `subject` (at most 255 bytes) in dataset `d`;
 * valid until the next call. */
static const char *sb_gw_audit_ps(sb_gateway_t *gw, const sb_gw_dataset_t *d,
                                  const char *subject)
{
        if (gw->aps_d != d || strcmp(gw->aps_subject, subject)) {
                sb_pseudonymise(d->audit_ps, subject, strlen(subject), gw->aps);
                snprintf(gw->aps_subject, sizeof(gw->aps_subject), "%s",
                         subject);
                gw->aps_d = d;
        }
        return gw->aps;
}

static sb_gw_tally_t *sb_gw_tally_of(sb_gateway_t *gw, const sb_gw_dataset_t *d,
                                     const sb_gw_grant_t *gg,
                                     const char *reason)
{
        sb_gw_tally_t *t;
        size_t i;

        for (i = 0; i < gw->tally_cnt; i++) {
                t = &gw->tally[i];
                if (t->gg == gg && t->d == d &&
                    (t->reason == reason ||
                     (t->reason && reason && !strcmp(t->reason, reason))))
                        return t;
        }
        if (gw->tally_cnt == gw->tally_cap) {
                size_t cap = gw->tally_cap ? 2 * gw->tally_cap : 16;

                t = realloc(gw->tally, cap * sizeof(*t));
                if (!t)
                        return NULL;
                gw->tally = t;
                gw->tally_cap = cap;
        }
        t = &gw->tally[gw->tally_cnt];
        memset(t, 0, sizeof(*t));
        if (!(t->subjects = json_object()))
                return NULL;
        t->d = d;
        t->gg = gg;
        t->reason = reason;
        gw->tally_cnt++;
        return t;
}

/*
 * Counts a record of `subject` delivered to grant `gg` (reason NULL;
 * `bytes`: its output value's size) or kept from it for `reason`
 * ("objection", "consent-withdrawn", "restriction", "history",
 * "validity"), for the entries sb_gw_audit_tallies() writes.
 */
static void sb_gw_tally(sb_gateway_t *gw, const sb_gw_dataset_t *d,
                        const sb_gw_grant_t *gg, const char *reason,
                        const char *subject, size_t bytes)
{
        sb_gw_tally_t *t = sb_gw_tally_of(gw, d, gg, reason);
        int64_t now = sb_now_ms();
        const char *ps;
        json_t *c;

        if (!t) {
                sb_gw_txn_fail(gw, "audit: out of memory");
                return;
        }
        ps = sb_gw_audit_ps(gw, d, subject);
        c = json_object_get(t->subjects, ps);
        if (!c && json_object_set_new(
                      t->subjects, ps,
                      c = json_pack("[I,I]", (json_int_t)0, (json_int_t)0))) {
                sb_gw_txn_fail(gw, "audit: out of memory");
                return;
        }
        json_integer_set(json_array_get(c, 0),
                         json_integer_value(json_array_get(c, 0)) + 1);
        json_integer_set(json_array_get(c, 1),
                         json_integer_value(json_array_get(c, 1)) +
                             (json_int_t)bytes);
        if (!t->first_at)
                t->first_at = now;
        t->last_at = now;
}

/* One delivery or exclusion entry for subjects keys[0..n) of `t`. */
static json_t *sb_gw_tally_entry(sb_gateway_t *gw, const sb_gw_tally_t *t,
                                 const char **keys, size_t n)
{
        const sb_grant_t *g = t->gg->grant;
        json_t *subjects = json_array(), *c;
        json_int_t records = 0, bytes = 0;
        size_t i;

        if (!subjects)
                return NULL;
        for (i = 0; i < n; i++) {
                c = json_object_get(t->subjects, keys[i]);
                records += json_integer_value(json_array_get(c, 0));
                bytes += json_integer_value(json_array_get(c, 1));
                if (json_array_append_new(subjects, json_string(keys[i]))) {
                        json_decref(subjects);
                        return NULL;
                }
        }
        if (t->reason)
                return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}",
                                 "op", "exclusion", "author", gw->source,
                                 "dataset", t->d->name, "grant", g->id,
                                 "reuser", g->reuser, "reason", t->reason,
                                 "records", records, "subjects", subjects);
        return json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:O, s:s*, s:O, s:I, s:I, "
            "s:o, s:I, s:I}",
            "op", "delivery", "author", gw->source, "dataset", t->d->name,
            "grant", g->id, "reuser", g->reuser, "purposes", g->purposes,
            "legal_basis", g->legal_basis, "fields", t->gg->fields, "records",
            records, "bytes", bytes, "subjects", subjects, "first_at",
            (json_int_t)t->first_at, "last_at", (json_int_t)t->last_at);
}

/*
 * The transaction's deliveries and exclusions, one entry per grant (and
 * reason), each naming at most SB_GW_AUDIT_SUBJECTS_MAX subjects (sorted
 * audit pseudonyms; more make several entries), just before the commit.
 */
static void sb_gw_audit_tallies(sb_gateway_t *gw)
{
        const char **keys;
        const char *k;
        json_t *v;
        size_t i, n, off;

        for (i = 0; i < gw->tally_cnt && !gw->txn_failed; i++) {
                sb_gw_tally_t *t = &gw->tally[i];

                n = json_object_size(t->subjects);
                if (!n)
                        continue;
                if (!(keys = calloc(n, sizeof(*keys)))) {
                        sb_gw_txn_fail(gw, "audit: out of memory");
                        break;
                }
                off = 0;
                json_object_foreach(t->subjects, k, v) keys[off++] = k;
                qsort(keys, n, sizeof(*keys), sb_gw_strcmp_p);
                for (off = 0; off < n; off += SB_GW_AUDIT_SUBJECTS_MAX)
                        sb_gw_audit(
                            gw,
                            sb_gw_tally_entry(gw, t, keys + off,
                                              n - off < SB_GW_AUDIT_SUBJECTS_MAX
                                                  ? n - off
                                                  : SB_GW_AUDIT_SUBJECTS_MAX),
                            NULL);
                free(keys);
        }
        sb_gw_tally_clear(gw);
}

/*
 * Why the subject's state keeps grant `gg` from a record, or NULL: an
 * objection, else a withdrawn consent (for one of its purposes), else a
 * restriction, which a correction of what the reuser holds passes.
 */
static const char *sb_gw_blocked_by(const json_t *state,
                                    const sb_gw_grant_t *gg, int correcting)
{
        if (sb_state_in_list(state, "o", gg->grant->purposes))
                return "objection";
        if (sb_state_in_list(state, "w", gg->grant->purposes))
                return "consent-withdrawn";
        if (sb_state_restricted(state) && !correcting)
                return "restriction";
        return NULL;
}

/*
 * The grant changes read from grants_topic and applied (installed) just
 * now, compared with the grant ids served before (`before`), in a new
 * transaction: "new", "changed", "revoked", or "invalid" (a version left
 * out: that grant shares nothing until a valid one comes).
 */
static sb_err_t sb_gw_audit_grants(sb_gateway_t *gw, const json_t *before,
                                   const json_t *changes, char *errstr,
                                   size_t errstr_size)
{
        const char *id, *change, *status;
        const sb_grant_t *g;
        sb_err_t err;
        json_t *j;
        size_t i;

        if (json_object_size(changes) == 0)
                return SB_OK;
        if ((err = sb_gw_begin(gw, errstr, errstr_size)))
                return err;
        json_object_foreach((json_t *)changes, id, j)
        {
                for (i = 0, g = NULL; i < gw->grant_cnt && !g; i++)
                        if (!strcmp(gw->grants[i]->id, id))
                                g = gw->grants[i];
                status = g ? g->status
                           : json_string_value(json_object_get(j, "status"));
                if (g && strcmp(g->status, "revoked"))
                        change =
                            json_object_get(before, id) ? "changed" : "new";
                else if (g || json_is_null(j) ||
                         (status && !strcmp(status, "revoked")))
                        change = "revoked";
                else
                        change = "invalid";
                sb_gw_audit(
                    gw,
                    json_pack(
                        "{s:s, s:s, s:s, s:s*, s:s*, s:s*, s:s}", "op",
                        "grant.apply", "author", gw->source, "grant", id,
                        "reuser",
                        g ? g->reuser
                          : json_string_value(json_object_get(j, "reuser")),
                        "dataset",
                        g ? g->dataset
                          : json_string_value(json_object_get(j, "dataset")),
                        "status", status, "change", change),
                    NULL);
        }
        return SB_OK;
}

typedef struct sb_gw_state_out_s {
        sb_gateway_t *gw;
        sb_gw_dataset_t *d;
} sb_gw_state_out_t;

static int sb_gw_state_out(const char *subject, int32_t partition,
                           const char *value, size_t len, void *opaque)
{
        sb_gw_state_out_t *o = opaque;

        sb_gw_produce(o->gw, o->d->state_topic, partition, subject,
                      strlen(subject), value, len, NULL);
        return 0;
}

/*
 * Commits the open transaction with the subject state it changed and the
 * consumer's positions. Branches on the error's kind: abortable -> abort
 * and rewind (the messages are processed again), timed out -> re-initialise
 * and read back (sb_gw_resync), fatal -> stop.
 */
static sb_err_t sb_gw_commit(sb_gateway_t *gw, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *offsets = NULL;
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *kerr = NULL;
        int tries;
        size_t i;

        if (!gw->in_txn)
                return SB_OK;
        sb_gw_seal(gw);
        sb_gw_audit_tallies(gw);
        for (i = 0; i < gw->dataset_cnt && !gw->txn_failed; i++) {
                sb_gw_state_out_t o = {gw, &gw->datasets[i]};

                if (sb_state_changes(gw->datasets[i].state, sb_gw_state_out,
                                     &o) &&
                    !gw->txn_failed++)
                        snprintf(gw->txn_err, sizeof(gw->txn_err),
                                 "cannot serialise the state of '%s'",
                                 gw->datasets[i].name);
        }
        if (gw->txn_failed) {
                sb_log(SB_LOG_WARN, "GATEWAY", "aborting transaction: %s",
                       gw->txn_err);
                sb_gw_abort(gw, 1);
                return SB_OK;
        }
        if (rd_kafka_assignment(gw->consumer, &offsets) == 0) {
                rd_kafka_position(gw->consumer, offsets);
                sb_gw_hold_offsets(gw, offsets);
                cgmd = rd_kafka_consumer_group_metadata(gw->consumer);
                for (tries = 0; tries < 5; tries++) {
                        kerr = rd_kafka_send_offsets_to_transaction(
                            gw->producer, offsets, cgmd,
                            (int)gw->cfg->transaction_timeout_ms);
                        if (!kerr || !rd_kafka_error_is_retriable(kerr))
                                break;
                        rd_kafka_error_destroy(kerr);
                        kerr = NULL;
                }
                rd_kafka_consumer_group_metadata_destroy(cgmd);
                rd_kafka_topic_partition_list_destroy(offsets);
        }
        if (!kerr)
                kerr = rd_kafka_commit_transaction(
                    gw->producer, (int)gw->cfg->transaction_timeout_ms);
        if (!kerr) {
                gw->in_txn = 0;
                gw->stats.transactions++;
                gw->stats.audit_entries += gw->txn_audit;
                gw->checkpoint_due = 0;
                for (i = 0; i < gw->dataset_cnt; i++)
                        sb_state_commit(gw->datasets[i].state);
                return SB_OK;
        }
        if (rd_kafka_error_txn_requires_abort(kerr)) {
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "transaction aborted, input rewound: %s",
                       rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                sb_gw_abort(gw, 1);
                return SB_OK;
        }
        if (rd_kafka_error_is_retriable(kerr) &&
            !rd_kafka_error_is_fatal(kerr)) {
                rd_kafka_error_destroy(kerr);
                gw->stats.resyncs++;
                return sb_gw_resync(gw, errstr, errstr_size);
        }
        sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                  "gateway: transaction commit failed: %s",
                  rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
        return SB_ERR_KAFKA;
}

/* Sends the message as it came to the quarantine topic, with the reason. */
static void sb_gw_quarantine(sb_gateway_t *gw, const rd_kafka_message_t *m,
                             const char *reason)
{
        rd_kafka_headers_t *in = NULL, *hdrs;
        char num[32];

        sb_log(SB_LOG_WARN, "GATEWAY",
               "quarantined '%s' partition %" PRId32 " offset %" PRId64 ": %s",
               rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason);
        if (rd_kafka_message_headers(m, &in) == RD_KAFKA_RESP_ERR_NO_ERROR)
                hdrs = rd_kafka_headers_copy(in);
        else
                hdrs = rd_kafka_headers_new(4);
        rd_kafka_header_add(hdrs, "sb_quarantine_reason", -1, reason, -1);
        rd_kafka_header_add(hdrs, "sb_origin_topic", -1,
                            rd_kafka_topic_name(m->rkt), -1);
        snprintf(num, sizeof(num), "%" PRId32, m->partition);
        rd_kafka_header_add(hdrs, "sb_origin_partition", -1, num, -1);
        snprintf(num, sizeof(num), "%" PRId64, m->offset);
        rd_kafka_header_add(hdrs, "sb_origin_offset", -1, num, -1);
        sb_gw_produce(gw, SB_QUARANTINE_TOPIC, RD_KAFKA_PARTITION_UA, m->key,
                      m->key_len, m->payload, m->len, hdrs);
        gw->stats.quarantined++;
}

/*
 * A message its dataset's holder keys do not verify: quarantined, and an
 * alert for the platform team, keyed by where it came from. Neither holds
 * the message's content.
 */
static void sb_gw_unverified(sb_gateway_t *gw, const rd_kafka_message_t *m,
                             const char *why)
{
        char reason[600], key[400];
        json_t *a;
        char *v;

        snprintf(reason, sizeof(reason), "signature: %s", why);
        sb_gw_quarantine(gw, m, reason);
        gw->stats.unverified++;
        snprintf(key, sizeof(key), "%s/%" PRId32 "/%" PRId64,
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset);
        a = json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:I}", "alert",
                      "signature.invalid", "author", gw->source, "topic",
                      rd_kafka_topic_name(m->rkt), "partition",
                      (int)m->partition, "offset", (json_int_t)m->offset,
                      "reason", why, "at", (json_int_t)sb_now_ms());
        v = a ? json_dumps(a, JSON_COMPACT) : NULL;
        if (v)
                sb_gw_send(gw, SB_ALERTS_TOPIC, RD_KAFKA_PARTITION_UA, key,
                           strlen(key), v, strlen(v), NULL, NULL);
        else if (!gw->txn_failed++)
                snprintf(gw->txn_err, sizeof(gw->txn_err), "out of memory");
        free(v);
        json_decref(a);
}

/* The string field `name` of record `v`, or NULL. */
static const char *sb_gw_string_field(avro_value_t *v, const char *name)
{
        avro_value_t f;
        const char *s;
        size_t len;

        if (avro_value_get_by_name(v, name, &f, NULL) ||
            avro_value_get_string(&f, &s, &len))
                return NULL;
        return s;
}

static int sb_gw_key_is(const rd_kafka_message_t *m, const char *s)
{
        return m->key && m->key_len == strlen(s) &&
               !memcmp(m->key, s, m->key_len);
}

static sb_gw_grant_t *sb_gw_grant_of(sb_gw_dataset_t *d, const char *reuser)
{
        size_t i;

        for (i = 0; i < d->grant_cnt; i++)
                if (!strcmp(d->grants[i]->grant->reuser, reuser))
                        return d->grants[i];
        return NULL;
}

/* "<pseudonym>/<record id>" into `key`; returns its length. */
static size_t sb_gw_record_key(char *key, size_t size, const char *ps,
                               const char *record_id)
{
        int n = snprintf(key, size, "%s/%s", ps, record_id);

        return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

/*
 * A record (upsert) or a corrected record (rectification, `event_id` set):
 * projected into each grant that may receive it. An upsert goes to the
 * active grants the subject does not block (objection, withdrawn consent,
 * restriction); a rectification also reaches a reuser that received the
 * subject while it is restricted, to correct what it holds (GDPR art. 19).
 */
static void sb_gw_audit_rights(sb_gateway_t *gw, sb_gw_dataset_t *d,
                               const sb_envelope_t *env, const char *subject,
                               const json_t *purposes, json_t *notified);

/* A projected record sent to its stream now (takes `hdrs`). */
static void sb_gw_record_out(sb_gateway_t *gw, sb_gw_grant_t *gg, int32_t p,
                             const char *key, size_t keylen, const void *value,
                             size_t len, rd_kafka_headers_t *hdrs,
                             const char *subject, const char *record_id)
{
        (void)p;
        (void)record_id;
        sb_gw_produce(gw, gg->grant->topic, RD_KAFKA_PARTITION_UA, key, keylen,
                      value, len, hdrs);
        sb_gw_tally(gw, gg->d, gg, NULL, subject, len);
}

static void sb_gw_record(sb_gateway_t *gw, sb_gw_dataset_t *d,
                         const rd_kafka_message_t *m, sb_envelope_t *env)
{
        char reason[512], key[SB_PSEUDONYM_HEXLEN + 1 + 256];
        char ps[SB_PSEUDONYM_HEXLEN + 1];
        const sb_schema_t *writer;
        const char *subject, *record_id;
        int64_t now = sb_now_ms();
        int rectify = env->type == SB_EV_RECTIFICATION;
        sb_envelope_t out_env;
        json_t *state, *notified = NULL;
        int64_t event_ms;
        int held;
        char collected_at[32];
        size_t i;

        /* Any version of the dataset's schema, read as the one grants
         * are defined on (schema.h). */
        writer = sb_catalog_version(gw->cat, d->schema, env->schema_fp);
        if (!writer) {
                snprintf(reason, sizeof(reason),
                         "schema %016" PRIx64 " is no version of the schema "
                         "of dataset '%s' (%016" PRIx64 ")",
                         env->schema_fp, d->name, d->schema->fingerprint);
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        if (sb_catalog_decode(gw->cat, writer, d->schema, m->payload, m->len,
                              &d->in, reason, sizeof(reason))) {
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        subject = sb_gw_string_field(&d->in, d->schema->subject_field);
        record_id = sb_gw_string_field(&d->in, d->schema->record_id_field);
        if (!subject || !record_id || !sb_gw_key_is(m, subject) ||
            strlen(record_id) > 255 || strlen(subject) > 255) {
                sb_gw_quarantine(gw, m,
                                 "the message key is not the record's "
                                 "subject id, or the record id is invalid");
                return;
        }
        if (rectify)
                gw->stats.rights_in++;
        else
                gw->stats.records_in++;
        /* When the fact happened: the dataset's event time field, else
         * when the holder published it. */
        if (!sb_schema_event_time(d->schema, &d->in, &event_ms) &&
            sb_time_parse(env->time, &event_ms))
                event_ms = now;
        sb_time_format(event_ms, collected_at);

        memset(&out_env, 0, sizeof(out_env));
        out_env.type = env->type;
        snprintf(out_env.source, sizeof(out_env.source), "%s", gw->source);
        snprintf(out_env.time, sizeof(out_env.time), "%s", env->time);

        /* A rectification is audited like every rights event: rights
         * status follows its receipts (R6.2-05). */
        if (rectify && !(notified = json_array())) {
                if (!gw->txn_failed++)
                        snprintf(gw->txn_err, sizeof(gw->txn_err),
                                 "out of memory");
                return;
        }
        state = sb_state_get(d->state, subject);
        for (i = 0; i < d->grant_cnt; i++) {
                sb_gw_grant_t *gg = d->grants[i];
                int received =
                    sb_state_received(state, gg->grant->reuser) != NULL;
                const char *why;
                json_t *s;

                if (!sb_grant_active(gg->grant, now)) {
                        gw->stats.not_shared++;
                        /* Approved, but outside its validity period. */
                        if (!strcmp(gg->grant->status, "approved"))
                                sb_gw_tally(gw, d, gg, "validity", subject, 0);
                        continue;
                }
                if ((why = sb_gw_blocked_by(state, gg, rectify && received))) {
                        gw->stats.excluded++;
                        sb_gw_tally(gw, d, gg, why, subject, 0);
                        continue;
                }
                /* Historicity (R5.2-03): nothing older than the grant
                 * allows, except to correct what the reuser holds. */
                if (gg->history_ms && event_ms < now - gg->history_ms &&
                    !(rectify && received)) {
                        gw->stats.too_old++;
                        sb_gw_tally(gw, d, gg, "history", subject, 0);
                        continue;
                }
                sb_pseudonymise(gg->ps, subject, strlen(subject), ps);
                if (sb_grant_project(gg->grant, gg->ps, &d->in, ps, &gg->out,
                                     reason, sizeof(reason)) ||
                    sb_schema_encode(gg->grant->out, &gg->out, &gw->buf, reason,
                                     sizeof(reason))) {
                        /* A projection failure is our bug, not the
                         * holder's: fail the transaction, do not skip. */
                        if (!gw->txn_failed++)
                                snprintf(gw->txn_err, sizeof(gw->txn_err), "%s",
                                         reason);
                        json_decref(notified);
                        return;
                }
                /* Receipts and status refer to the holder's event id. */
                if (rectify)
                        snprintf(out_env.id, sizeof(out_env.id), "%s", env->id);
                else
                        sb_uuid4(out_env.id);
                memcpy(out_env.subject, ps, sizeof(ps));
                out_env.schema_fp = gg->grant->out->fingerprint;
                held = sb_gw_hold_wanted(gw, gg, m->partition, now);
                (held ? sb_gw_hold_put : sb_gw_record_out)(
                    gw, gg, m->partition, key,
                    sb_gw_record_key(key, sizeof(key), ps, record_id),
                    gw->buf.data, gw->buf.len,
                    sb_gw_tag(sb_envelope_headers(&out_env), gg, collected_at),
                    subject, record_id);
                if (!(s = sb_gw_touch(gw, d, subject, m->partition)) ||
                    sb_state_add_delivery(s, gg->grant->reuser, record_id)) {
                        if (!gw->txn_failed++)
                                snprintf(gw->txn_err, sizeof(gw->txn_err),
                                         "out of memory");
                        json_decref(notified);
                        return;
                }
                state = s;
                if (rectify) {
                        gw->stats.notices++;
                        json_array_append_new(notified,
                                              json_string(gg->grant->reuser));
                } else if (!held) {
                        gw->stats.delivered++;
                }
        }
        if (rectify)
                sb_gw_audit_rights(gw, d, env, subject, NULL, notified);
        json_decref(notified);
}

/* The purposes of the decoded rights event, as a new JSON array. */
static json_t *sb_gw_purposes(avro_value_t *v)
{
        json_t *out = json_array();
        avro_value_t arr, item;
        const char *s;
        size_t n = 0, i, len;

        if (!out || avro_value_get_by_name(v, "purposes", &arr, NULL) ||
            avro_value_get_size(&arr, &n)) {
                json_decref(out);
                return NULL;
        }
        for (i = 0; i < n; i++) {
                if (avro_value_get_by_index(&arr, i, &item, NULL) ||
                    avro_value_get_string(&item, &s, &len) ||
                    json_array_append_new(out, json_string(s))) {
                        json_decref(out);
                        return NULL;
                }
        }
        return out;
}

/* 1 if `a` and `b` share a purpose; an empty `event` means all. */
static int sb_gw_purposes_meet(const json_t *grant, const json_t *event)
{
        const json_t *x, *y;
        size_t i, j;

        if (json_array_size(event) == 0)
                return 1;
        json_array_foreach(grant, i, x)
            json_array_foreach(event, j, y) if (json_equal(x, y)) return 1;
        return 0;
}

/* Where a reuser's stream is, even if its grant is gone since. */
typedef struct sb_gw_target_s {
        const char *reuser;
        const char *topic;
        const json_t *purposes; /* NULL: grant gone, always concerned */
        sb_pseudonymiser_t *ps;
        char *own_topic;
        sb_pseudonymiser_t *own_ps;
} sb_gw_target_t;

static int sb_gw_target(sb_gateway_t *gw, sb_gw_dataset_t *d,
                        const char *reuser, sb_gw_target_t *t)
{
        sb_gw_grant_t *gg = sb_gw_grant_of(d, reuser);

        memset(t, 0, sizeof(*t));
        t->reuser = reuser;
        if (gg) {
                t->topic = gg->grant->topic;
                t->purposes = gg->grant->purposes;
                t->ps = gg->ps;
                return 0;
        }
        /* GDPR art. 19 still applies to a reuser whose grant ended. */
        t->own_ps = sb_pseudonymiser_new(gw->key, reuser, d->name);
        if (!t->own_ps ||
            asprintf(&t->own_topic, "sb.out.%s.%s", reuser, d->name) == -1) {
                t->own_topic = NULL;
                return -1;
        }
        t->topic = t->own_topic;
        t->ps = t->own_ps;
        return 0;
}

static void sb_gw_target_release(sb_gw_target_t *t)
{
        free(t->own_topic);
        sb_pseudonymiser_destroy(t->own_ps);
}

/* Records one propagation on _sb.audit, in the same transaction, keyed
 * by the event id (sharebus rights status looks it up by key). */
static void sb_gw_audit_rights(sb_gateway_t *gw, sb_gw_dataset_t *d,
                               const sb_envelope_t *env, const char *subject,
                               const json_t *purposes, json_t *notified)
{
        sb_gw_audit(
            gw,
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:s}", "op",
                      "rights.propagate", "author", gw->source, "event_id",
                      env->id, "type", sb_event_type2str(env->type), "dataset",
                      d->name, "subject_ps", sb_gw_audit_ps(gw, d, subject),
                      "purposes", purposes ? purposes : json_null(), "notified",
                      notified, "requested_time", env->time),
            env->id);
}

/*
 * A rights event (DESIGN §6). The subject's state changes first; then each
 * reuser that received the subject and is concerned gets, in its stream,
 * tombstones for every record key it received (erasure, objection,
 * withdrawn consent) and the notice, keyed by its pseudonym. Reusers that
 * never received the subject learn nothing (GDPR art. 19 scope).
 */
static void sb_gw_rights(sb_gateway_t *gw, sb_gw_dataset_t *d,
                         const rd_kafka_message_t *m, sb_envelope_t *env)
{
        char reason[512], ps[SB_PSEUDONYM_HEXLEN + 1], subject[256];
        char key[SB_PSEUDONYM_HEXLEN + 1 + 256];
        const char *vs, *reuser;
        json_t *purposes = NULL, *notified = NULL, *deliveries = NULL;
        json_t *s, *rids;
        sb_envelope_t out_env;
        avro_value_t f;
        void *tmp;
        int tombstones, notify, forget;

        if (env->schema_fp != gw->rights->fingerprint) {
                snprintf(reason, sizeof(reason),
                         "schema %016" PRIx64 " is not the rights event schema "
                         "(%016" PRIx64 ")",
                         env->schema_fp, gw->rights->fingerprint);
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        if (sb_schema_decode(gw->rights, m->payload, m->len, &gw->rights_value,
                             reason, sizeof(reason))) {
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        /* Copied: the value's string is overwritten with pseudonyms. */
        if (!(vs = sb_gw_string_field(&gw->rights_value, "subject")) ||
            strlen(vs) >= sizeof(subject))
                vs = "";
        snprintf(subject, sizeof(subject), "%s", vs);
        if (!*subject || !sb_gw_key_is(m, subject)) {
                sb_gw_quarantine(gw, m,
                                 "the message key is not the rights event's "
                                 "subject");
                return;
        }
        if (env->type == SB_EV_RECORD_DELETE &&
            (!*env->subject || strlen(env->subject) > 255)) {
                sb_gw_quarantine(gw, m,
                                 "a record withdrawal must name the record "
                                 "id in ce_subject");
                return;
        }
        purposes = sb_gw_purposes(&gw->rights_value);
        notified = json_array();
        if (!purposes || !notified ||
            !(s = sb_gw_touch(gw, d, subject, m->partition))) {
                if (!gw->txn_failed++)
                        snprintf(gw->txn_err, sizeof(gw->txn_err),
                                 "out of memory");
                goto done;
        }
        if (env->type == SB_EV_RECORD_DELETE)
                gw->stats.records_in++;
        else
                gw->stats.rights_in++;

        /* The state first: it decides the next records too. */
        switch (env->type) {
        case SB_EV_OBJECTION:
                sb_state_add_purposes(s, "o", purposes);
                break;
        case SB_EV_CONSENT_WITHDRAWN:
                sb_state_add_purposes(s, "w", purposes);
                break;
        case SB_EV_CONSENT_GIVEN:
                sb_state_remove_purposes(s, "w", purposes);
                break;
        case SB_EV_RESTRICTION:
                sb_state_set_restricted(s, 1);
                break;
        case SB_EV_RESTRICTION_LIFTED:
                sb_state_set_restricted(s, 0);
                break;
        default:
                break;
        }

        memset(&out_env, 0, sizeof(out_env));
        out_env.type = env->type;
        /* Receipts and status refer to the holder's event id. */
        snprintf(out_env.id, sizeof(out_env.id), "%s", env->id);
        snprintf(out_env.source, sizeof(out_env.source), "%s", gw->source);
        snprintf(out_env.time, sizeof(out_env.time), "%s", env->time);
        out_env.schema_fp = gw->rights->fingerprint;

        /* Held: forgetting the last reuser removes "d" from the state. */
        deliveries = json_incref(json_object_get(s, "d"));
        json_object_foreach_safe(deliveries, tmp, reuser, rids)
        {
                sb_gw_target_t t;
                const char *rid;
                json_t *one;

                if (sb_gw_target(gw, d, reuser, &t)) {
                        sb_gw_target_release(&t);
                        if (!gw->txn_failed++)
                                snprintf(gw->txn_err, sizeof(gw->txn_err),
                                         "out of memory");
                        goto done;
                }
                switch (env->type) {
                case SB_EV_ERASURE:
                        tombstones = notify = forget = 1;
                        break;
                case SB_EV_OBJECTION:
                case SB_EV_CONSENT_WITHDRAWN:
                        tombstones = notify = forget =
                            !t.purposes ||
                            sb_gw_purposes_meet(t.purposes, purposes);
                        break;
                case SB_EV_RESTRICTION:
                case SB_EV_RESTRICTION_LIFTED:
                        tombstones = forget = 0;
                        notify = 1;
                        break;
                default: /* consent given, record withdrawal */
                        tombstones = notify = forget = 0;
                        break;
                }
                sb_pseudonymise(t.ps, subject, strlen(subject), ps);
                if (env->type == SB_EV_RECORD_DELETE &&
                    (one = json_object_get(rids, env->subject))) {
                        (void)one;
                        sb_gw_produce(gw, t.topic, RD_KAFKA_PARTITION_UA, key,
                                      sb_gw_record_key(key, sizeof(key), ps,
                                                       env->subject),
                                      NULL, 0, NULL);
                        json_object_del(rids, env->subject);
                        json_array_append_new(notified, json_string(reuser));
                        gw->stats.tombstones++;
                }
                if (notify) {
                        if (avro_value_get_by_name(&gw->rights_value, "subject",
                                                   &f, NULL) ||
                            avro_value_set_string(&f, ps) ||
                            sb_schema_encode(gw->rights, &gw->rights_value,
                                             &gw->buf, reason,
                                             sizeof(reason)) ||
                            avro_value_set_string(&f, subject)) {
                                if (!gw->txn_failed++)
                                        snprintf(
                                            gw->txn_err, sizeof(gw->txn_err),
                                            "rights notice: %.480s", reason);
                                sb_gw_target_release(&t);
                                goto done;
                        }
                        snprintf(out_env.subject, sizeof(out_env.subject), "%s",
                                 ps);
                        sb_gw_produce(gw, t.topic, RD_KAFKA_PARTITION_UA, ps,
                                      strlen(ps), gw->buf.data, gw->buf.len,
                                      sb_envelope_headers(&out_env));
                        json_array_append_new(notified, json_string(reuser));
                        gw->stats.notices++;
                }
                /* After the notice, so that the reuser applies the right to
                 * the rows it holds (and its receipt counts them); then the
                 * compacted stream forgets every key it received. */
                if (tombstones) {
                        json_object_foreach(rids, rid, one)
                        {
                                sb_gw_produce(
                                    gw, t.topic, RD_KAFKA_PARTITION_UA, key,
                                    sb_gw_record_key(key, sizeof(key), ps, rid),
                                    NULL, 0, NULL);
                                gw->stats.tombstones++;
                        }
                }
                if (forget || json_object_size(rids) == 0)
                        sb_state_forget_reuser(s, reuser);
                sb_gw_target_release(&t);
        }
        json_decref(deliveries);
        deliveries = NULL;
        if (env->type != SB_EV_RECORD_DELETE)
                sb_gw_audit_rights(gw, d, env, subject, purposes, notified);
done:
        json_decref(deliveries);
        json_decref(purposes);
        json_decref(notified);
}

/*
 * Quotas (DESIGN §5 "rate"; CNIL R5.2-02, R5.2-03): a grant over its rate
 * gets its records later, never fewer. The record, projected and ready to
 * send (key, value, headers), goes to _sb.hold.<grant id>, partition = its
 * input partition, in the same transaction as everything else; the state
 * records the delivery as usual, so a right exercised while it waits
 * reaches it. The gateway reads its hold partitions beside its inputs (the
 * same consumer, the same group offsets, sent with the same transactions)
 * and moves held records to the stream as the quota allows, oldest first,
 * after checking the subject's state again. While a grant has records
 * waiting in a partition, its next records of that partition wait behind
 * them, so that the order per key holds. A hold partition over the quota
 * is paused and rewound to its first waiting record: the input goes on,
 * and the other grants are not slowed.
 */

#define SB_GW_HDR_HOLD_SUBJECT "sb_hold_subject"
#define SB_GW_HDR_HOLD_RECORD  "sb_hold_record"

static int sb_gw_is_hold_topic(const char *topic)
{
        return !strncmp(topic, SB_HOLD_TOPIC_PREFIX,
                        sizeof(SB_HOLD_TOPIC_PREFIX) - 1);
}

static sb_gw_hold_t *sb_gw_hold_by_topic(sb_gateway_t *gw, const char *topic)
{
        size_t i;

        for (i = 0; i < gw->hold_cnt; i++)
                if (!strcmp(gw->holds[i]->topic, topic))
                        return gw->holds[i];
        return NULL;
}

/* The hold of grant `g`, made on first use, its limits set to g's. */
static sb_gw_hold_t *sb_gw_hold_of(sb_gateway_t *gw, const sb_grant_t *g)
{
        sb_gw_hold_t *h = NULL, **holds;
        size_t i;

        for (i = 0; i < gw->hold_cnt && !h; i++)
                if (!strcmp(gw->holds[i]->grant_id, g->id))
                        h = gw->holds[i];
        if (h) {
                sb_quota_set(&h->quota, g->rate_per_second, g->rate_per_day,
                             sb_now_ms());
                return h;
        }
        holds = realloc(gw->holds, (gw->hold_cnt + 1) * sizeof(*holds));
        if (!holds)
                return NULL;
        gw->holds = holds;
        if (!(h = calloc(1, sizeof(*h))))
                return NULL;
        if (!(h->grant_id = strdup(g->id)) ||
            asprintf(&h->topic, "%s%s", SB_HOLD_TOPIC_PREFIX, g->id) == -1) {
                free(h->grant_id);
                free(h);
                return NULL;
        }
        sb_quota_init(&h->quota, g->rate_per_second, g->rate_per_day,
                      sb_now_ms());
        h->noticed_day = h->noticed_before = -1;
        gw->holds[gw->hold_cnt++] = h;
        return h;
}

static void sb_gw_holds_destroy(sb_gateway_t *gw)
{
        size_t i;

        for (i = 0; i < gw->hold_cnt; i++) {
                free(gw->holds[i]->grant_id);
                free(gw->holds[i]->topic);
                free(gw->holds[i]->parts);
                free(gw->holds[i]);
        }
        free(gw->holds);
        gw->holds = NULL;
        gw->hold_cnt = 0;
}

/* Partition `p` of hold `h`, made on first use; NULL: out of memory. */
static sb_gw_holdpart_t *sb_gw_hold_part(sb_gw_hold_t *h, int32_t p)
{
        sb_gw_holdpart_t *parts;
        int32_t i;

        if (p < 0)
                return NULL;
        if (p >= h->part_cnt) {
                parts = realloc(h->parts, (size_t)(p + 1) * sizeof(*parts));
                if (!parts)
                        return NULL;
                for (i = h->part_cnt; i <= p; i++) {
                        memset(&parts[i], 0, sizeof(parts[i]));
                        parts[i].next = parts[i].drained_to = -1;
                        parts[i].last_held = -1;
                }
                h->parts = parts;
                h->part_cnt = p + 1;
        }
        return &h->parts[p];
}

/* Records wait in this partition (or may: not known yet). */
static int sb_gw_hold_backlog(const sb_gw_holdpart_t *hp)
{
        return !hp->assigned || hp->txn_held > 0 || !hp->drained_known ||
               hp->last_held >= hp->drained_to;
}

/* Which hold topics exist, with how many partitions, and whether the
 * notice topic of their reuser does. */
static void sb_gw_hold_topics(sb_gateway_t *gw)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err;
        char notice[300];
        size_t i;
        int t;

        if (gw->grant_cnt == 0)
                return;
        err = rd_kafka_metadata(gw->restorer, 1, NULL, &md, 30000);
        if (err) {
                sb_log(SB_LOG_WARN, "GATEWAY",
                       "hold topics: cannot read the topic list (%s): "
                       "keeping what was known",
                       rd_kafka_err2str(err));
                return;
        }
        for (i = 0; i < gw->grant_cnt; i++) {
                sb_gw_hold_t *h = gw->gw_grants[i].hold;

                snprintf(notice, sizeof(notice), "sb.notice.%s",
                         gw->gw_grants[i].grant->reuser);
                h->exists = h->notice_ok = 0;
                for (t = 0; t < md->topic_cnt; t++) {
                        if (md->topics[t].err)
                                continue;
                        if (!strcmp(md->topics[t].topic, h->topic)) {
                                h->exists = 1;
                                h->topic_parts = md->topics[t].partition_cnt;
                        } else if (!strcmp(md->topics[t].topic, notice)) {
                                h->notice_ok = 1;
                        }
                }
        }
        rd_kafka_metadata_destroy(md);
}

/*
 * The input partitions of `inputs` and, for each, the same partition of
 * the hold topic of every grant of its dataset that has one: what the
 * consumer is assigned. A grant without a rate still drains a hold it has
 * (a rate removed or raised), so nothing waits forever.
 */
static rd_kafka_topic_partition_list_t *
sb_gw_with_holds(sb_gateway_t *gw, const rd_kafka_topic_partition_list_t *in)
{
        rd_kafka_topic_partition_list_t *out;
        size_t j;
        int i;

        sb_gw_hold_topics(gw);
        out = rd_kafka_topic_partition_list_new(in->cnt * 2 + 1);
        for (i = 0; i < in->cnt; i++) {
                sb_gw_dataset_t *d = sb_gw_dataset_of(gw, in->elems[i].topic);

                if (!d)
                        continue;
                rd_kafka_topic_partition_list_add(out, in->elems[i].topic,
                                                  in->elems[i].partition)
                    ->offset = in->elems[i].offset;
                for (j = 0; j < d->grant_cnt; j++) {
                        sb_gw_hold_t *h = d->grants[j]->hold;

                        if (!h->exists)
                                continue;
                        if (in->elems[i].partition >= h->topic_parts) {
                                sb_log(SB_LOG_ERR, "GATEWAY",
                                       "hold topic '%s' has %d partition(s), "
                                       "fewer than '%s': records of partition "
                                       "%" PRId32 " over the rate are sent "
                                       "anyway (run 'sharebus admin topics "
                                       "apply')",
                                       h->topic, (int)h->topic_parts, d->topic,
                                       in->elems[i].partition);
                                continue;
                        }
                        rd_kafka_topic_partition_list_add(
                            out, h->topic, in->elems[i].partition);
                }
        }
        return out;
}

/* The hold partitions of `parts`, with their committed offsets, are this
 * instance's from now on; every other is not. */
static void sb_gw_hold_assigned(sb_gateway_t *gw,
                                const rd_kafka_topic_partition_list_t *parts)
{
        sb_gw_hold_t *h;
        sb_gw_holdpart_t *hp;
        int64_t lo, hi;
        size_t i;
        int j;

        for (i = 0; i < gw->hold_cnt; i++)
                for (j = 0; j < gw->holds[i]->part_cnt; j++)
                        gw->holds[i]->parts[j].assigned = 0;
        for (j = 0; parts && j < parts->cnt; j++) {
                if (!(h = sb_gw_hold_by_topic(gw, parts->elems[j].topic)) ||
                    !(hp = sb_gw_hold_part(h, parts->elems[j].partition)))
                        continue;
                hp->assigned = 1;
                hp->paused = 0;
                hp->txn_held = 0;
                hp->drained_known = 0;
                hp->next =
                    parts->elems[j].offset >= 0 ? parts->elems[j].offset : -1;
                /* Nothing waits if nothing is left past the committed
                 * offset; else the end of the partition will tell (an
                 * end offset counts transaction markers too). */
                if (!rd_kafka_query_watermark_offsets(
                        gw->restorer, h->topic, parts->elems[j].partition, &lo,
                        &hi, (int)gw->cfg->restore_timeout_ms) &&
                    (hi == lo || (hp->next >= 0 && hp->next >= hi))) {
                        hp->drained_known = 1;
                        hp->drained_to = hi;
                }
        }
}

/* The consumer was moved back to the offsets of `parts` (rewind). */
static void sb_gw_hold_seeked(sb_gateway_t *gw,
                              const rd_kafka_topic_partition_list_t *parts)
{
        sb_gw_holdpart_t *hp;
        sb_gw_hold_t *h;
        int j;

        for (j = 0; j < parts->cnt; j++) {
                if (!(h = sb_gw_hold_by_topic(gw, parts->elems[j].topic)) ||
                    !(hp = sb_gw_hold_part(h, parts->elems[j].partition)))
                        continue;
                hp->drained_known = 0;
                hp->next =
                    parts->elems[j].offset >= 0 ? parts->elems[j].offset : -1;
        }
}

/* The offsets to commit for the hold partitions: the first record not
 * moved on, which may be before the consumer's position (rewound). */
static void sb_gw_hold_offsets(sb_gateway_t *gw,
                               rd_kafka_topic_partition_list_t *offsets)
{
        sb_gw_holdpart_t *hp;
        sb_gw_hold_t *h;
        int j;

        for (j = 0; j < offsets->cnt; j++) {
                if (!(h = sb_gw_hold_by_topic(gw, offsets->elems[j].topic)))
                        continue;
                hp = offsets->elems[j].partition < h->part_cnt
                         ? &h->parts[offsets->elems[j].partition]
                         : NULL;
                offsets->elems[j].offset =
                    hp && hp->next >= 0 ? hp->next : RD_KAFKA_OFFSET_INVALID;
        }
}

static void sb_gw_hold_begin(sb_gateway_t *gw)
{
        size_t i;
        int j;

        for (i = 0; i < gw->hold_cnt; i++) {
                gw->holds[i]->noticed_before = gw->holds[i]->noticed_day;
                for (j = 0; j < gw->holds[i]->part_cnt; j++)
                        gw->holds[i]->parts[j].txn_held = 0;
        }
}

/* Nothing of the transaction was written: its notices are due again, and
 * the hold partitions are read again from their committed offsets. */
static void sb_gw_hold_abort(sb_gateway_t *gw)
{
        size_t i;
        int j;

        for (i = 0; i < gw->hold_cnt; i++) {
                gw->holds[i]->noticed_day = gw->holds[i]->noticed_before;
                for (j = 0; j < gw->holds[i]->part_cnt; j++) {
                        gw->holds[i]->parts[j].txn_held = 0;
                        gw->holds[i]->parts[j].drained_known = 0;
                }
        }
}

/* Delivery report of a held record: where it waits. */
static void sb_gw_hold_dr(sb_gateway_t *gw, const rd_kafka_message_t *m)
{
        sb_gw_hold_t *h = sb_gw_hold_by_topic(gw, rd_kafka_topic_name(m->rkt));
        sb_gw_holdpart_t *hp = h ? sb_gw_hold_part(h, m->partition) : NULL;

        if (hp && m->offset > hp->last_held)
                hp->last_held = m->offset;
}

/* The consumer reached the end of a hold partition: `offset`. */
static void sb_gw_hold_eof(sb_gateway_t *gw, const rd_kafka_message_t *m)
{
        sb_gw_hold_t *h = sb_gw_hold_by_topic(gw, rd_kafka_topic_name(m->rkt));
        sb_gw_holdpart_t *hp =
            h && m->partition < h->part_cnt ? &h->parts[m->partition] : NULL;

        if (!hp || !hp->assigned || hp->paused)
                return;
        hp->drained_known = 1;
        if (m->offset > hp->drained_to)
                hp->drained_to = m->offset;
}

/* A held record was moved on (sent or excluded). */
static void sb_gw_hold_moved(sb_gw_hold_t *h, sb_gw_holdpart_t *hp,
                             int64_t offset)
{
        hp->next = offset + 1;
        if (offset + 1 > hp->drained_to)
                hp->drained_to = offset + 1;
        if (h->waiting > 0)
                h->waiting--;
}

static void sb_gw_hold_pause(sb_gateway_t *gw, const char *topic,
                             int32_t partition, int resume)
{
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(l, topic, partition);
        if (resume)
                rd_kafka_resume_partitions(gw->consumer, l);
        else
                rd_kafka_pause_partitions(gw->consumer, l);
        rd_kafka_topic_partition_list_destroy(l);
}

/*
 * Held record `m` cannot go yet: its partition is paused until `at` and
 * rewound to it, so it is read again then, and the offset committed
 * meanwhile is its own.
 */
static void sb_gw_hold_wait(sb_gateway_t *gw, sb_gw_holdpart_t *hp,
                            const rd_kafka_message_t *m, int64_t at)
{
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_error_t *kerr;

        sb_gw_hold_pause(gw, rd_kafka_topic_name(m->rkt), m->partition, 0);
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt),
                                          m->partition)
            ->offset = m->offset;
        kerr = rd_kafka_seek_partitions(gw->consumer, l, 0);
        if (kerr) {
                sb_gw_txn_fail(gw, "hold: cannot rewind a hold partition");
                rd_kafka_error_destroy(kerr);
        }
        rd_kafka_topic_partition_list_destroy(l);
        hp->paused = 1;
        hp->resume_at = at;
        hp->next = m->offset;
        hp->drained_known = 0;
}

/* Resumes the hold partitions whose wait is over. */
static void sb_gw_hold_resume(sb_gateway_t *gw, int64_t now)
{
        size_t i;
        int j;

        for (i = 0; i < gw->hold_cnt; i++)
                for (j = 0; j < gw->holds[i]->part_cnt; j++) {
                        sb_gw_holdpart_t *hp = &gw->holds[i]->parts[j];

                        if (!hp->assigned || !hp->paused || now < hp->resume_at)
                                continue;
                        sb_gw_hold_pause(gw, gw->holds[i]->topic, j, 1);
                        hp->paused = 0;
                }
}

/* 1 if records wait in a hold partition of this instance. */
static int sb_gw_hold_waiting(const sb_gateway_t *gw)
{
        size_t i;
        int j;

        for (i = 0; i < gw->hold_cnt; i++)
                for (j = 0; j < gw->holds[i]->part_cnt; j++)
                        if (gw->holds[i]->parts[j].assigned &&
                            gw->holds[i]->exists &&
                            sb_gw_hold_backlog(&gw->holds[i]->parts[j]))
                                return 1;
        return 0;
}

/*
 * After a grant change (between transactions): the hold topics to read
 * follow the grants. The partitions kept go on from where they are (the
 * hold partitions from their first record not moved on); new ones start
 * from their committed offsets.
 */
static sb_err_t sb_gw_hold_reassign(sb_gateway_t *gw, char *errstr,
                                    size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *cur = NULL, *next = NULL;
        rd_kafka_topic_partition_t *c;
        rd_kafka_resp_err_t kerr;
        sb_err_t err = SB_OK;
        int i, same;

        if (!gw->assigned || rd_kafka_assignment(gw->consumer, &cur))
                return SB_OK;
        next = sb_gw_with_holds(gw, cur);
        same = next->cnt == cur->cnt;
        for (i = 0; same && i < next->cnt; i++)
                same = rd_kafka_topic_partition_list_find(
                           cur, next->elems[i].topic,
                           next->elems[i].partition) != NULL;
        if (same)
                goto done;
        rd_kafka_position(gw->consumer, cur);
        sb_gw_hold_offsets(gw, cur);
        for (i = 0; i < next->cnt; i++) {
                c = rd_kafka_topic_partition_list_find(
                    cur, next->elems[i].topic, next->elems[i].partition);
                /* Invalid: the consumer fetches the committed offset. */
                next->elems[i].offset = c ? c->offset : RD_KAFKA_OFFSET_INVALID;
        }
        sb_gw_hold_assigned(gw, next);
        /* A partition kept may still be paused: nothing is, from now. */
        rd_kafka_resume_partitions(gw->consumer, next);
        if ((kerr = rd_kafka_assign(gw->consumer, next)))
                err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                "gateway: cannot assign the hold topics: %s",
                                rd_kafka_err2str(kerr));
        else if ((kerr = rd_kafka_resume_partitions(gw->consumer, next)))
                err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                "gateway: cannot resume the hold topics: %s",
                                rd_kafka_err2str(kerr));
        else
                sb_log(SB_LOG_NOTICE, "GATEWAY",
                       "reading %d input and hold partition(s)", next->cnt);
done:
        rd_kafka_topic_partition_list_destroy(cur);
        rd_kafka_topic_partition_list_destroy(next);
        return err;
}

/*
 * The first time in a UTC day (per instance) that grant `gg` goes over its
 * rate: a quota.exceeded notice on sb.notice.<reuser> (docs/messages.md
 * "Notices"), in the transaction. No personal data.
 */
static void sb_gw_quota_notice(sb_gateway_t *gw, sb_gw_grant_t *gg,
                               const char *limit, int64_t now)
{
        const sb_grant_t *g = gg->grant;
        sb_gw_hold_t *h = gg->hold;
        char topic[300], key[400], sent_at[32], reason[1024], id[40];
        rd_kafka_headers_t *hdrs;
        json_t *j, *rate;
        char *v;

        if (h->noticed_day == now / SB_QUOTA_DAY_MS)
                return;
        h->noticed_day = now / SB_QUOTA_DAY_MS;
        if (!h->notice_ok) {
                /* A missing topic would abort every transaction. */
                if (!h->notice_warned++)
                        sb_log(SB_LOG_WARN, "GATEWAY",
                               "grant '%s' over its %s: no notice topic "
                               "'sb.notice.%s' to tell its reuser (declare "
                               "the reuser and run 'sharebus admin topics "
                               "apply')",
                               g->id, limit, g->reuser);
                return;
        }
        sb_time_format(now, sent_at);
        snprintf(topic, sizeof(topic), "sb.notice.%s", g->reuser);
        snprintf(key, sizeof(key), "%s/quota.exceeded/%.10s", g->id, sent_at);
        snprintf(reason, sizeof(reason),
                 "Grant %s (dataset %s) went over its %s: the records over it "
                 "wait and reach %s later, in order, as the quota allows; "
                 "none is dropped. Your stream continues as the quota "
                 "allows. To catch up faster, ask the platform team that "
                 "issued the grant to raise its rate.",
                 g->id, g->dataset, limit, g->topic);
        rate = json_object();
        if (rate && g->rate_per_second)
                json_object_set_new(rate, "records_per_second",
                                    json_integer(g->rate_per_second));
        if (rate && g->rate_per_day)
                json_object_set_new(rate, "records_per_day",
                                    json_integer(g->rate_per_day));
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*, s:I, s:s, s:s}",
                      "notice", "quota.exceeded", "grant", g->id, "reuser",
                      g->reuser, "dataset", g->dataset, "limit", limit, "rate",
                      rate, "held", (json_int_t)h->waiting, "sent_at", sent_at,
                      "reason", reason);
        v = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (!v) {
                sb_gw_txn_fail(gw, "quota notice: out of memory");
                return;
        }
        sb_uuid4(id);
        hdrs = rd_kafka_headers_new(6);
        rd_kafka_header_add(hdrs, "ce_specversion", -1, "1.0", -1);
        rd_kafka_header_add(hdrs, "ce_id", -1, id, -1);
        rd_kafka_header_add(hdrs, "ce_source", -1, gw->source, -1);
        rd_kafka_header_add(hdrs, "ce_type", -1, "sharebus.quota.exceeded", -1);
        rd_kafka_header_add(hdrs, "ce_time", -1, sent_at, -1);
        rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
        /* Not sealed: like the admin's notices, not part of the stream. */
        sb_gw_send(gw, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), v,
                   strlen(v), hdrs, NULL);
        gw->stats.quota_notices++;
        sb_log(SB_LOG_NOTICE, "GATEWAY",
               "grant '%s' over its %s: its records wait on '%s'", g->id, limit,
               h->topic);
        free(v);
}

/*
 * Whether a record of input partition `p` for grant `gg` waits on the hold
 * rather than go now: when records already wait there (their order), or
 * when the grant is over its rate (which then counts it).
 */
static int sb_gw_hold_wanted(sb_gateway_t *gw, sb_gw_grant_t *gg, int32_t p,
                             int64_t now)
{
        sb_gw_hold_t *h = gg->hold;
        sb_gw_holdpart_t *hp =
            h->exists && p < h->topic_parts ? sb_gw_hold_part(h, p) : NULL;
        const char *limit;

        if (hp && sb_gw_hold_backlog(hp))
                return 1;
        if (!(limit = sb_quota_limit_hit(&h->quota, now))) {
                sb_quota_take(&h->quota, now);
                return 0;
        }
        if (!hp) {
                /* Better over the rate than a stopped gateway. */
                if (!h->warned++)
                        sb_log(SB_LOG_ERR, "GATEWAY",
                               "grant '%s' is over its %s but its hold "
                               "topic '%s' is missing: its records are sent "
                               "anyway (run 'sharebus admin topics apply')",
                               gg->grant->id, limit, h->topic);
                return 0;
        }
        sb_gw_quota_notice(gw, gg, limit, now);
        return 1;
}

/* Puts a projected record on the hold (takes `hdrs`), with what the drain
 * needs to check the subject's state again. */
static void sb_gw_hold_put(sb_gateway_t *gw, sb_gw_grant_t *gg, int32_t p,
                           const char *key, size_t keylen, const void *value,
                           size_t len, rd_kafka_headers_t *hdrs,
                           const char *subject, const char *record_id)
{
        sb_gw_holdpart_t *hp = sb_gw_hold_part(gg->hold, p);

        if (!hp) {
                rd_kafka_headers_destroy(hdrs);
                sb_gw_txn_fail(gw, "hold: out of memory");
                return;
        }
        rd_kafka_header_add(hdrs, SB_GW_HDR_HOLD_SUBJECT, -1, subject, -1);
        rd_kafka_header_add(hdrs, SB_GW_HDR_HOLD_RECORD, -1, record_id, -1);
        sb_gw_send(gw, gg->hold->topic, p, key, keylen, value, len, hdrs, NULL);
        hp->txn_held++;
        gg->hold->waiting++;
        gw->stats.held++;
}

/* Header `name` of `m` as a string in `out`, or NULL. */
static const char *sb_gw_header(const rd_kafka_message_t *m, const char *name,
                                char *out, size_t size)
{
        rd_kafka_headers_t *h;
        const void *v;
        size_t len;

        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len) || !v || len >= size)
                return NULL;
        memcpy(out, v, len);
        out[len] = '\0';
        return out;
}

/*
 * A held record, read back from its hold partition: sent to its stream if
 * the quota allows and the subject's state still lists it as delivered to
 * the reuser and does not block it; excluded (and forgotten by the state)
 * if a right was exercised while it waited; else it waits again.
 */
static void sb_gw_drain(sb_gateway_t *gw, const rd_kafka_message_t *m)
{
        sb_gw_hold_t *h = sb_gw_hold_by_topic(gw, rd_kafka_topic_name(m->rkt));
        sb_gw_holdpart_t *hp = h ? sb_gw_hold_part(h, m->partition) : NULL;
        char subject[256], rid[256], type[128];
        sb_gw_grant_t *gg = NULL;
        rd_kafka_headers_t *in = NULL, *hdrs;
        const char *why = NULL, *limit;
        int64_t now = sb_now_ms();
        int listed;
        json_t *state, *rids, *s;
        size_t i, j;

        for (i = 0; h && i < gw->dataset_cnt && !gg; i++)
                for (j = 0; j < gw->datasets[i].grant_cnt && !gg; j++)
                        if (gw->datasets[i].grants[j]->hold == h)
                                gg = gw->datasets[i].grants[j];
        if (!hp || !hp->assigned || hp->paused)
                return; /* read before a pause or rewind took effect */
        if (!gg || !sb_grant_active(gg->grant, now)) {
                /* Suspended or out of its validity: the records wait. */
                sb_gw_hold_wait(gw, hp, m, now + 1000);
                return;
        }
        if (!sb_gw_header(m, SB_GW_HDR_HOLD_SUBJECT, subject,
                          sizeof(subject)) ||
            !sb_gw_header(m, SB_GW_HDR_HOLD_RECORD, rid, sizeof(rid))) {
                sb_gw_quarantine(gw, m,
                                 "a held record without its subject "
                                 "or record id");
                sb_gw_hold_moved(h, hp, m->offset);
                return;
        }
        state = sb_state_get(gg->d->state, subject);
        rids = sb_state_received(state, gg->grant->reuser);
        listed = rids && json_object_get(rids, rid);
        why = sb_gw_blocked_by(
            state, gg,
            sb_gw_header(m, "ce_type", type, sizeof(type)) &&
                !strcmp(type, "sharebus.rights.rectification"));
        if (!why && !listed)
                why = "withdrawn"; /* erased, or withdrawn by its holder */
        if (why) {
                if (listed) {
                        /* Never received: the state must not say so. */
                        if (!(s = sb_gw_touch(gw, gg->d, subject,
                                              m->partition)))
                                return;
                        rids = sb_state_received(s, gg->grant->reuser);
                        json_object_del(rids, rid);
                        if (json_object_size(rids) == 0)
                                sb_state_forget_reuser(s, gg->grant->reuser);
                }
                gw->stats.excluded++;
                gw->stats.held_excluded++;
                sb_gw_tally(gw, gg->d, gg, why, subject, 0);
                sb_gw_hold_moved(h, hp, m->offset);
                return;
        }
        if ((limit = sb_quota_limit_hit(&h->quota, now))) {
                sb_gw_quota_notice(gw, gg, limit, now);
                sb_gw_hold_wait(gw, hp, m, sb_quota_ready_at(&h->quota, now));
                return;
        }
        hdrs = rd_kafka_message_headers(m, &in) == RD_KAFKA_RESP_ERR_NO_ERROR
                   ? rd_kafka_headers_copy(in)
                   : rd_kafka_headers_new(1);
        rd_kafka_header_remove(hdrs, SB_GW_HDR_HOLD_SUBJECT);
        rd_kafka_header_remove(hdrs, SB_GW_HDR_HOLD_RECORD);
        sb_gw_produce(gw, gg->grant->topic, RD_KAFKA_PARTITION_UA, m->key,
                      m->key_len, m->payload, m->len, hdrs);
        sb_gw_tally(gw, gg->d, gg, NULL, subject, m->len);
        sb_quota_take(&h->quota, now);
        gw->stats.released++;
        gw->stats.delivered++;
        sb_gw_hold_moved(h, hp, m->offset);
}

static void sb_gw_process(sb_gateway_t *gw, const rd_kafka_message_t *m)
{
        char reason[512];
        sb_envelope_t env;
        sb_gw_dataset_t *d;

        if (sb_gw_is_hold_topic(rd_kafka_topic_name(m->rkt))) {
                sb_gw_drain(gw, m);
                return;
        }
        d = sb_gw_dataset_of(gw, rd_kafka_topic_name(m->rkt));
        if (!d) {
                sb_gw_quarantine(gw, m, "not a topic of this gateway");
                return;
        }
        /* Before anything else: what its holder did not sign is not read. */
        if (d->verifier &&
            sb_seal_verify_message(d->verifier, m, reason, sizeof(reason))) {
                sb_gw_unverified(gw, m, reason);
                return;
        }
        if (sb_envelope_parse(m, &env, reason, sizeof(reason))) {
                sb_gw_quarantine(gw, m, reason);
                return;
        }
        switch (env.type) {
        case SB_EV_RECORD_UPSERT:
        case SB_EV_RECTIFICATION:
                sb_gw_record(gw, d, m, &env);
                break;
        case SB_EV_RECORD_DELETE:
        case SB_EV_ERASURE:
        case SB_EV_OBJECTION:
        case SB_EV_CONSENT_WITHDRAWN:
        case SB_EV_CONSENT_GIVEN:
        case SB_EV_RESTRICTION:
        case SB_EV_RESTRICTION_LIFTED:
                sb_gw_rights(gw, d, m, &env);
                break;
        default:
                snprintf(reason, sizeof(reason),
                         "event type '%s' is not handled by this gateway "
                         "version",
                         sb_event_type2str(env.type));
                sb_gw_quarantine(gw, m, reason);
        }
}

/*
 * Grant changes on grants_topic: the open transaction is committed under
 * the grants it was processed with, then the new grants apply to what
 * comes next, so no record is decided under a mix, lost or repeated.
 */
static sb_err_t sb_gw_follow_grants(sb_gateway_t *gw, char *errstr,
                                    size_t errstr_size)
{
        json_t *before, *changes;
        sb_err_t err;
        size_t i;
        int n;

        gw->feed_polled_ms = sb_now_ms();
        n = sb_grantfeed_poll(gw->feed);
        if (n == 0)
                return SB_OK;
        if (gw->in_txn && (err = sb_gw_commit(gw, errstr, errstr_size)))
                return err;
        if (!(before = json_object()))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < gw->grant_cnt; i++)
                json_object_set_new(before, gw->grants[i]->id, json_true());
        if ((err = sb_gw_reload_grants(gw, errstr, errstr_size)) ||
            (err = sb_gw_hold_reassign(gw, errstr, errstr_size))) {
                json_decref(before);
                return err;
        }
        changes = sb_grantfeed_changes(gw->feed);
        err =
            changes
                ? sb_gw_audit_grants(gw, before, changes, errstr, errstr_size)
                : sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
        json_decref(before);
        json_decref(changes);
        if (err)
                return err;
        gw->stats.grant_reloads++;
        sb_log(SB_LOG_NOTICE, "GATEWAY",
               "grants: %d change(s) on '%s' applied; %zu grant(s) served, "
               "%zu invalid",
               n, gw->cfg->grants_topic, gw->grant_cnt,
               gw->stats.grants_invalid);
        return SB_OK;
}

sb_err_t sb_gateway_run(sb_gateway_t *gw, volatile sig_atomic_t *stop,
                        int idle_exit_ms, char *errstr, size_t errstr_size)
{
        int64_t last_msg = sb_now_ms();
        sb_err_t err;

        while (!stop || !*stop) {
                rd_kafka_message_t *m;
                int64_t now;

                m = rd_kafka_consumer_poll(gw->consumer, 50);
                rd_kafka_poll(gw->producer, 0);
                now = sb_now_ms();
                if (gw->fatal) {
                        if (m)
                                rd_kafka_message_destroy(m);
                        return sb_seterr(errstr, errstr_size, SB_ERR_STATE,
                                         "%s", gw->fatal_err);
                }
                if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                    sb_gw_is_hold_topic(rd_kafka_topic_name(m->rkt)))
                        sb_gw_hold_eof(gw, m);
                if (m && m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                sb_log(SB_LOG_WARN, "GATEWAY", "consumer: %s",
                                       rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        m = NULL;
                }
                if (m) {
                        if ((err = sb_gw_begin(gw, errstr, errstr_size))) {
                                rd_kafka_message_destroy(m);
                                return err;
                        }
                        sb_gw_process(gw, m);
                        rd_kafka_message_destroy(m);
                        gw->txn_msgs++;
                        last_msg = now;
                }
                if (gw->in_txn &&
                    (gw->txn_failed ||
                     gw->txn_msgs >= (size_t)gw->cfg->commit_records ||
                     now - gw->txn_start_ms >= gw->cfg->commit_interval_ms) &&
                    (err = sb_gw_commit(gw, errstr, errstr_size)))
                        return err;
                if (gw->feed && now - gw->feed_polled_ms >= 200 &&
                    (err = sb_gw_follow_grants(gw, errstr, errstr_size)))
                        return err;
                sb_gw_hold_resume(gw, now);
                if (idle_exit_ms > 0 && gw->assigned && !gw->in_txn &&
                    !sb_gw_hold_waiting(gw) && now - last_msg >= idle_exit_ms &&
                    now - gw->assigned_ms >= idle_exit_ms)
                        break;
        }
        /* On close, a checkpoint covers what this run chained. */
        if (gw->audit_key && (err = sb_gw_begin(gw, errstr, errstr_size)))
                return err;
        if (gw->in_txn) {
                sb_gw_audit_tallies(gw);
                sb_gw_audit_checkpoint(gw);
        }
        return sb_gw_commit(gw, errstr, errstr_size);
}

const sb_gateway_stats_t *sb_gateway_stats(const sb_gateway_t *gw)
{
        return &gw->stats;
}

size_t sb_gateway_subjects(const sb_gateway_t *gw)
{
        size_t i, n = 0;

        for (i = 0; i < gw->dataset_cnt; i++)
                n += sb_state_size(gw->datasets[i].state);
        return n;
}

void sb_gateway_destroy(sb_gateway_t *gw)
{
        size_t i;

        if (!gw)
                return;
        if (gw->consumer) {
                rd_kafka_consumer_close(gw->consumer);
                rd_kafka_destroy(gw->consumer);
        }
        if (gw->restorer) {
                rd_kafka_consumer_close(gw->restorer);
                rd_kafka_destroy(gw->restorer);
        }
        if (gw->producer) {
                if (gw->in_txn)
                        sb_gw_abort(gw, 0);
                rd_kafka_destroy(gw->producer);
        }
        for (i = 0; gw->datasets && i < gw->dataset_cnt; i++) {
                sb_gw_dataset_t *d = &gw->datasets[i];

                if (d->in.iface)
                        avro_value_decref(&d->in);
                sb_state_destroy(d->state);
                sb_seal_verifier_destroy(d->verifier);
                sb_keyring_destroy(d->holder_keys);
                sb_pseudonymiser_destroy(d->audit_ps);
                free(d->name);
                free(d->topic);
                free(d->state_topic);
        }
        sb_gw_drop_grants(gw);
        sb_gw_holds_destroy(gw);
        free(gw->datasets);
        sb_grantfeed_destroy(gw->feed);
        if (gw->rights_value_ok)
                avro_value_decref(&gw->rights_value);
        sb_catalog_destroy(gw->cat);
        sb_key_destroy(gw->key);
        sb_sealer_destroy(gw->sealer);
        sb_signkey_destroy(gw->signkey);
        sb_buf_release(&gw->buf);
        sb_gw_tally_clear(gw);
        free(gw->tally);
        sb_audit_chain_destroy(gw->chain);
        sb_signkey_destroy(gw->audit_key);
        free(gw);
}
