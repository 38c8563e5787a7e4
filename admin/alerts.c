#include "alerts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "producer.h"

/* A delivery report not in yet. */

struct sb_alerter_s {
        const sb_admin_cfg_t *cfg;
        sb_reader_t *reader;
        rd_kafka_t *producer; /* made on first use */
};

sb_alerter_t *sb_alerter_new(const sb_admin_cfg_t *cfg, sb_reader_t *rd)
{
        sb_alerter_t *al = calloc(1, sizeof(*al));

        if (!al)
                return NULL;
        al->cfg = cfg;
        al->reader = rd;
        return al;
}

void sb_alerter_destroy(sb_alerter_t *al)
{
        if (!al)
                return;
        if (al->producer) {
                sb_kafka_flush(al->producer, (int)al->cfg->timeout_ms);
                rd_kafka_destroy(al->producer);
        }
        free(al);
}

int sb_alerts_add(json_t *alerts, const char *key, json_t *value)
{
        if (!value)
                return -1;
        return json_array_append_new(
            alerts, json_pack("{s:s, s:o}", "key", key, "value", value));
}

/* "<key>\n<alert>": what makes two alerts the same; the caller frees it. */
static char *sb_alerts_identity(const char *key, size_t key_len,
                                const char *alert)
{
        char *s;

        if (asprintf(&s, "%.*s\n%s", (int)key_len, key, alert) == -1)
                return NULL;
        return s;
}

/* One _sb.alerts message: remembers its identity in `opaque`. */
static sb_err_t sb_alerts_on_message(const rd_kafka_message_t *m, void *opaque,
                                     char *errstr, size_t errstr_size)
{
        json_t *seen = opaque, *e;
        const char *alert;
        char *id = NULL;
        int bad = 0;

        if (!m->key || !m->key_len || !m->payload)
                return SB_OK;
        e = json_loadb(m->payload, m->len, 0, NULL);
        alert = json_string_value(json_object_get(e, "alert"));
        if (alert) {
                id = sb_alerts_identity(m->key, m->key_len, alert);
                bad = !id || json_object_set_new(seen, id, json_true());
        }
        free(id);
        json_decref(e);
        if (bad)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

static sb_err_t sb_alerts_producer(sb_alerter_t *al, char *errstr,
                                   size_t errstr_size)
{
        if (!al->producer)
                al->producer = sb_admin_producer_new(al->cfg, "alert", errstr,
                                                     errstr_size);
        return al->producer ? SB_OK : SB_ERR_KAFKA;
}

/* The alerts of `alerts` not in `seen`, each added to `seen`; NULL when
 * out of memory. */
static json_t *sb_alerts_due(const json_t *alerts, json_t *seen)
{
        json_t *due = json_array(), *a;
        const char *key, *alert;
        char *id;
        size_t i;
        int bad;

        if (!due)
                return NULL;
        json_array_foreach(alerts, i, a)
        {
                key = json_string_value(json_object_get(a, "key"));
                alert = json_string_value(
                    json_object_get(json_object_get(a, "value"), "alert"));
                if (!key || !alert)
                        continue; /* not built by sb_alerts_add() */
                if (!(id = sb_alerts_identity(key, strlen(key), alert)))
                        goto nomem;
                if (json_object_get(seen, id)) {
                        free(id);
                        continue;
                }
                bad = json_object_set_new(seen, id, json_true()) ||
                      json_array_append(due, a);
                free(id);
                if (bad)
                        goto nomem;
        }
        return due;
nomem:
        json_decref(due);
        return NULL;
}

/* Hands one alert to the producer; its delivery report goes to *slot. */
static sb_err_t sb_alerts_produce(sb_alerter_t *al, const json_t *a,
                                  rd_kafka_resp_err_t *slot, char *errstr,
                                  size_t errstr_size)
{
        const char *key = json_string_value(json_object_get(a, "key"));
        const json_t *v = json_object_get(a, "value");
        const char *alert = json_string_value(json_object_get(v, "alert"));
        const char *reason = json_string_value(json_object_get(v, "reason"));
        rd_kafka_resp_err_t kerr;
        char *value;

        if (!(value = json_dumps(v, JSON_COMPACT)))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        *slot = SB_ADMIN_DR_WAITING;
        kerr = rd_kafka_producev(
            al->producer, RD_KAFKA_V_TOPIC(SB_ALERTS_TOPIC),
            RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(value, strlen(value)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("content-type", "application/json", -1),
            RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
        free(value);
        if (kerr)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "alert %s '%s': %s", alert, key,
                                 rd_kafka_err2str(kerr));
        sb_log(SB_LOG_NOTICE, "ALERTS", "alert %s '%s': %s", alert, key,
               reason ? reason : "");
        return SB_OK;
}

sb_err_t sb_alerter_raise(sb_alerter_t *al, const json_t *alerts,
                          json_t *raised, size_t *raisedp, char *errstr,
                          size_t errstr_size)
{
        rd_kafka_resp_err_t *status = NULL;
        json_t *seen = NULL, *due = NULL;
        size_t i, sent = 0, failed = 0;
        const char *first_err = NULL;
        sb_err_t err = SB_OK;

        *raisedp = 0;
        if (!json_array_size(alerts))
                return SB_OK;
        if (!(seen = json_object())) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        if ((err = sb_reader_read(al->reader, SB_ALERTS_TOPIC,
                                  sb_alerts_on_message, seen, errstr,
                                  errstr_size)))
                goto done;
        if (!(due = sb_alerts_due(alerts, seen))) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        if (!json_array_size(due))
                goto done;
        if ((err = sb_alerts_producer(al, errstr, errstr_size)))
                goto done;
        status = calloc(json_array_size(due), sizeof(*status));
        if (!status) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        for (i = 0; i < json_array_size(due) && !err; i++)
                if (!(err = sb_alerts_produce(al, json_array_get(due, i),
                                              &status[sent], errstr,
                                              errstr_size)))
                        sent++;
        /* Whatever was handed over is waited for, even after an error. */
        failed = sb_admin_producer_wait(al->producer, (int)al->cfg->timeout_ms,
                                        status, sent, &first_err);
        for (i = 0; raised && i < sent; i++)
                if (status[i] == RD_KAFKA_RESP_ERR_NO_ERROR)
                        json_array_append(raised, json_array_get(due, i));
        *raisedp = sent - failed;
        if (!err && failed)
                err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                "%zu of %zu alert(s) not delivered to '%s': "
                                "%s",
                                failed, sent, SB_ALERTS_TOPIC, first_err);
done:
        free(status);
        json_decref(due);
        json_decref(seen);
        return err;
}
