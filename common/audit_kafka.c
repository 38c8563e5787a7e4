#include "audit_kafka.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"

/* One partition of the log as read back. */
typedef struct sb_audit_part_s {
        int64_t lo, hi; /* watermarks queried before reading */
        int64_t target; /* read until an end of partition at or past it */
        int done;
} sb_audit_part_t;

static int sb_audit_tail_fatal(rd_kafka_resp_err_t err)
{
        return err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
               err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
               err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
               err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
               err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
               err == RD_KAFKA_RESP_ERR__FATAL;
}

/*
 * One pass over every partition, from `window` offsets before its high
 * watermark (window < 0: from its beginning). *fullp is set when every
 * partition was read from its beginning.
 *
 * When to stop: an end of partition (read_committed) is the last stable
 * offset, which a transaction of another writer still open holds back, and
 * entries of this chain may follow that transaction's first message. So a
 * partition is done only once its end reaches the high watermark seen at
 * its first end, which covers every entry the chain's fenced writer
 * committed.
 */
static sb_err_t sb_audit_tail_pass(rd_kafka_t *rk, sb_audit_part_t *parts,
                                   int cnt, int64_t window,
                                   const char *chain_id, int64_t deadline,
                                   sb_audit_tail_t *tail, int *fullp,
                                   char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t kerr;
        sb_err_t err = SB_OK;
        int i, remaining = 0;

        memset(tail, 0, sizeof(*tail));
        *fullp = 1;
        list = rd_kafka_topic_partition_list_new(cnt);
        for (i = 0; i < cnt; i++) {
                sb_audit_part_t *p = &parts[i];
                int64_t start = p->lo;

                p->done = p->hi <= p->lo;
                p->target = -1;
                if (p->done)
                        continue;
                if (window >= 0 && p->hi - window > p->lo) {
                        start = p->hi - window;
                        *fullp = 0;
                }
                rd_kafka_topic_partition_list_add(list, SB_AUDIT_TOPIC, i)
                    ->offset = start;
                remaining++;
        }
        if (remaining == 0) {
                rd_kafka_topic_partition_list_destroy(list);
                return SB_OK;
        }
        kerr = rd_kafka_assign(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (kerr)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "audit: cannot read '%s': %s", SB_AUDIT_TOPIC,
                                 rd_kafka_err2str(kerr));
        while (remaining > 0 && !err) {
                rd_kafka_message_t *m;
                sb_audit_part_t *p;
                int64_t lo, hi;

                if (sb_now_ms() > deadline) {
                        err = sb_seterr(
                            errstr, errstr_size, SB_ERR_KAFKA,
                            "audit: '%s' not read to its end in time: a "
                            "transaction of another writer may still be "
                            "open; try again once it ends (at most its "
                            "transaction.timeout.ms)",
                            SB_AUDIT_TOPIC);
                        break;
                }
                m = rd_kafka_consumer_poll(rk, 100);
                if (!m)
                        continue;
                if (m->partition < 0 || m->partition >= cnt) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                p = &parts[m->partition];
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p->target < 0 &&
                            !rd_kafka_get_watermark_offsets(
                                rk, SB_AUDIT_TOPIC, m->partition, &lo, &hi))
                                p->target = hi > p->hi ? hi : p->hi;
                        if (!p->done && m->offset >= p->target) {
                                p->done = 1;
                                remaining--;
                        }
                } else if (m->err) {
                        /* Transport errors pass (the deadline bounds
                         * them); a missing topic or right does not. */
                        if (sb_audit_tail_fatal(m->err))
                                err =
                                    sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                              "audit: reading '%s' partition "
                                              "%" PRId32 ": %s",
                                              SB_AUDIT_TOPIC, m->partition,
                                              rd_kafka_message_errstr(m));
                } else {
                        sb_audit_last_of_chain(chain_id, m->payload, m->len,
                                               tail);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(rk, NULL);
        return err;
}

sb_err_t sb_audit_kafka_tail(const sb_kafka_cfg_t *kc, const char *client_id,
                             const char *group_id, const char *chain_id,
                             int timeout_ms, sb_audit_tail_t *tail,
                             char *errstr, size_t errstr_size)
{
        static const int64_t windows[] = {SB_AUDIT_TAIL_WINDOW,
                                          16 * SB_AUDIT_TAIL_WINDOW, -1};
        const struct rd_kafka_metadata *md = NULL;
        int64_t deadline = sb_now_ms() + timeout_ms;
        sb_audit_part_t *parts = NULL;
        rd_kafka_conf_t *conf;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t kerr;
        rd_kafka_t *rk = NULL;
        char kerrstr[512];
        sb_err_t err = SB_OK;
        int i, cnt = 0, full = 0;
        size_t w;

        memset(tail, 0, sizeof(*tail));
        conf = sb_kafka_conf_new(kc, client_id, errstr, errstr_size);
        if (!conf)
                return SB_ERR_CONFIG;
        if (sb_kafka_conf_set(conf, "group.id", group_id, errstr,
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
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "audit: cannot create a reader of '%s': %s",
                                 SB_AUDIT_TOPIC, kerrstr);
        }
        rd_kafka_poll_set_consumer(rk);
        rkt = rd_kafka_topic_new(rk, SB_AUDIT_TOPIC, NULL);
        kerr = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms)
                   : rd_kafka_last_error();
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (kerr || md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt < 1) {
                err = sb_seterr(
                    errstr, errstr_size, SB_ERR_KAFKA,
                    "audit: topic '%s': %s (run 'sharebus admin topics "
                    "apply', and 'admin acls apply' for READ on it)",
                    SB_AUDIT_TOPIC,
                    rd_kafka_err2str(kerr ? kerr
                                     : md->topic_cnt && md->topics[0].err
                                         ? md->topics[0].err
                                         : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
                goto done;
        }
        cnt = md->topics[0].partition_cnt;
        parts = calloc((size_t)cnt, sizeof(*parts));
        if (!parts) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        for (i = 0; i < cnt; i++) {
                /* Retried while the deadline allows: a leader may be
                 * moving. */
                for (;;) {
                        kerr = rd_kafka_query_watermark_offsets(
                            rk, SB_AUDIT_TOPIC, i, &parts[i].lo, &parts[i].hi,
                            10000);
                        if (!kerr || sb_audit_tail_fatal(kerr) ||
                            sb_now_ms() >= deadline)
                                break;
                        usleep(200 * 1000);
                }
                if (kerr) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                        "audit: '%s' partition %d: %s",
                                        SB_AUDIT_TOPIC, i,
                                        rd_kafka_err2str(kerr));
                        goto done;
                }
        }
        for (w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
                err = sb_audit_tail_pass(rk, parts, cnt, windows[w], chain_id,
                                         deadline, tail, &full, errstr,
                                         errstr_size);
                if (err || tail->seq > 0 || full)
                        break;
        }
done:
        if (md)
                rd_kafka_metadata_destroy(md);
        free(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return err;
}

sb_err_t sb_audit_kafka_resume(sb_audit_chain_t *chain, const char *chain_id,
                               const sb_kafka_cfg_t *kc, const char *client_id,
                               const char *group_id, int timeout_ms,
                               int *checkpoint_duep, char *errstr,
                               size_t errstr_size)
{
        sb_audit_tail_t tail;
        sb_err_t err;

        *checkpoint_duep = 0;
        err = sb_audit_kafka_tail(kc, client_id, group_id, chain_id, timeout_ms,
                                  &tail, errstr, errstr_size);
        if (err)
                return err;
        if (tail.seq == 0)
                memset(tail.hash, '0', SB_AUDIT_HASH_HEXLEN);
        tail.hash[SB_AUDIT_HASH_HEXLEN] = '\0';
        err = sb_audit_chain_resume(chain, tail.seq, tail.hash,
                                    tail.since_checkpoint, errstr, errstr_size);
        if (!err)
                *checkpoint_duep = tail.since_checkpoint > 0;
        return err;
}
