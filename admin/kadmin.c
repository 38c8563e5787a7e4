#include "kadmin.h"

#include <stdlib.h>

sb_kadmin_t *sb_kadmin_new(const sb_kafka_cfg_t *kc, const char *client_id,
                           int timeout_ms, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        sb_kadmin_t *ka;
        char kerr[512];

        conf = sb_kafka_conf_new(kc, client_id, errstr, errstr_size);
        if (!conf)
                return NULL;
        ka = calloc(1, sizeof(*ka));
        if (!ka) {
                rd_kafka_conf_destroy(conf);
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        ka->timeout_ms = timeout_ms;
        ka->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
        if (!ka->rk) {
                rd_kafka_conf_destroy(conf);
                free(ka);
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "admin: cannot create client: %s", kerr);
                return NULL;
        }
        ka->q = rd_kafka_queue_new(ka->rk);
        return ka;
}

void sb_kadmin_destroy(sb_kadmin_t *ka)
{
        if (!ka)
                return;
        rd_kafka_queue_destroy(ka->q);
        rd_kafka_destroy(ka->rk);
        free(ka);
}

rd_kafka_AdminOptions_t *sb_kadmin_options(sb_kadmin_t *ka,
                                           rd_kafka_admin_op_t op)
{
        rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(ka->rk, op);

        rd_kafka_AdminOptions_set_request_timeout(o, ka->timeout_ms, NULL, 0);
        if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS ||
            op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS)
                rd_kafka_AdminOptions_set_operation_timeout(o, ka->timeout_ms,
                                                            NULL, 0);
        return o;
}

rd_kafka_event_t *sb_kadmin_wait(sb_kadmin_t *ka, rd_kafka_event_type_t type,
                                 const char *what, char *errstr,
                                 size_t errstr_size)
{
        rd_kafka_event_t *ev;

        /* The request timeout bounds the wait; add a margin for the reply. */
        ev = rd_kafka_queue_poll(ka->q, ka->timeout_ms + 5000);
        if (!ev) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "admin: %s: no answer from the cluster in %d ms",
                          what, ka->timeout_ms + 5000);
                return NULL;
        }
        if (rd_kafka_event_type(ev) != type) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "admin: %s: unexpected event %s", what,
                          rd_kafka_event_name(ev));
                rd_kafka_event_destroy(ev);
                return NULL;
        }
        if (rd_kafka_event_error(ev)) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA, "admin: %s: %s",
                          what, rd_kafka_event_error_string(ev));
                rd_kafka_event_destroy(ev);
                return NULL;
        }
        return ev;
}
