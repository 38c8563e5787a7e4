#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "log.h"

struct sb_reader_s {
        const sb_admin_cfg_t *cfg;
        rd_kafka_t *consumer;
};

sb_reader_t *sb_reader_new(const sb_admin_cfg_t *cfg, const char *what,
                           char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        sb_reader_t *rd;
        char kerr[512], group[300];

        rd = calloc(1, sizeof(*rd));
        if (!rd) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        rd->cfg = cfg;
        conf =
            sb_kafka_conf_new(&cfg->kafka, cfg->client_id, errstr, errstr_size);
        if (!conf)
                goto fail;
        /* librdkafka wants a group to assign partitions; it is never
         * joined and nothing is committed. */
        snprintf(group, sizeof(group), "%s-%s", cfg->client_id, what);
        if (sb_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "isolation.level", "read_committed", errstr,
                              errstr_size)) {
                rd_kafka_conf_destroy(conf);
                goto fail;
        }
        rd->consumer =
            rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
        if (!rd->consumer) {
                rd_kafka_conf_destroy(conf);
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "cannot create the %s reader: %s", what, kerr);
                goto fail;
        }
        rd_kafka_poll_set_consumer(rd->consumer);
        return rd;

fail:
        sb_reader_destroy(rd);
        return NULL;
}

void sb_reader_destroy(sb_reader_t *rd)
{
        if (!rd)
                return;
        if (rd->consumer) {
                rd_kafka_consumer_close(rd->consumer);
                rd_kafka_destroy(rd->consumer);
        }
        free(rd);
}

/* Partitions of `topic`; SB_ERR_NOT_FOUND when it does not exist. */
static sb_err_t sb_reader_partitions(sb_reader_t *rd, const char *topic,
                                     int *cntp, char *errstr,
                                     size_t errstr_size)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t kerr;
        rd_kafka_topic_t *rkt;
        sb_err_t err = SB_OK;

        rkt = rd_kafka_topic_new(rd->consumer, topic, NULL);
        if (!rkt)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "topic '%s': %s", topic,
                                 rd_kafka_err2str(rd_kafka_last_error()));
        kerr = rd_kafka_metadata(rd->consumer, 0, rkt, &md,
                                 (int)rd->cfg->timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (kerr)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "metadata of topic '%s': %s", topic,
                                 rd_kafka_err2str(kerr));
        if (md->topic_cnt != 1 || md->topics[0].err)
                err = sb_seterr(
                    errstr, errstr_size,
                    md->topic_cnt != 1 ||
                            md->topics[0].err ==
                                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                        ? SB_ERR_NOT_FOUND
                        : SB_ERR_KAFKA,
                    "topic '%s': %s (run 'sharebus admin topics apply')", topic,
                    md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                                  : "not found");
        else
                *cntp = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        return err;
}

/*
 * Calls `cb` for every committed message of `topic` below the high
 * watermarks read before starting. A partition is done at its end of
 * partition (which read_committed puts at the last stable offset) or once
 * a message at or past its watermark shows up.
 */
sb_err_t sb_reader_read(sb_reader_t *rd, const char *topic, sb_reader_cb_t cb,
                        void *opaque, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        int64_t *ends = NULL, lo, hi, deadline;
        rd_kafka_resp_err_t kerr;
        int cnt = 0, i, remaining = 0;
        sb_err_t err;

        if ((err = sb_reader_partitions(rd, topic, &cnt, errstr, errstr_size)))
                return err;
        ends = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof(*ends));
        parts = rd_kafka_topic_partition_list_new(cnt > 0 ? cnt : 1);
        if (!ends) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        for (i = 0; i < cnt; i++) {
                kerr = rd_kafka_query_watermark_offsets(
                    rd->consumer, topic, i, &lo, &hi, (int)rd->cfg->timeout_ms);
                if (kerr) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                        "topic '%s' partition %d: cannot read "
                                        "its offsets: %s",
                                        topic, i, rd_kafka_err2str(kerr));
                        goto done;
                }
                ends[i] = -1; /* nothing to read */
                if (hi > lo) {
                        ends[i] = hi;
                        rd_kafka_topic_partition_list_add(parts, topic, i)
                            ->offset = RD_KAFKA_OFFSET_BEGINNING;
                        remaining++;
                }
        }
        if (!remaining)
                goto done;
        if ((kerr = rd_kafka_assign(rd->consumer, parts))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                "cannot read topic '%s': %s", topic,
                                rd_kafka_err2str(kerr));
                goto done;
        }
        deadline = sb_now_ms() + rd->cfg->timeout_ms;
        while (remaining > 0 && !err) {
                rd_kafka_message_t *m;
                int32_t p;

                if (sb_now_ms() > deadline) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                        "topic '%s': not read to its end "
                                        "within %lld ms (timeout_ms)",
                                        topic, rd->cfg->timeout_ms);
                        break;
                }
                m = rd_kafka_consumer_poll(rd->consumer, 100);
                if (!m)
                        continue;
                p = m->partition;
                if (m->rkt && strcmp(rd_kafka_topic_name(m->rkt), topic)) {
                        rd_kafka_message_destroy(m); /* an earlier read's */
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p >= 0 && p < cnt && ends[p] >= 0) {
                                ends[p] = -1;
                                remaining--;
                        }
                } else if (m->err && !m->rkt) {
                        /* A client-wide error (a broker away): librdkafka
                         * retries; the deadline bounds the wait. */
                        sb_log(SB_LOG_WARN, "READER", "reading topic '%s': %s",
                               topic, rd_kafka_message_errstr(m));
                } else if (m->err) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                        "reading topic '%s': %s", topic,
                                        rd_kafka_message_errstr(m));
                } else if (p >= 0 && p < cnt && ends[p] >= 0) {
                        if (m->offset < ends[p])
                                err = cb(m, opaque, errstr, errstr_size);
                        if (m->offset + 1 >= ends[p]) {
                                ends[p] = -1;
                                remaining--;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(rd->consumer, NULL);
done:
        rd_kafka_topic_partition_list_destroy(parts);
        free(ends);
        return err;
}
