#include "brokerenv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "testutil.h"

/* Adds KEY='value' (the single quotes optional). */
static sb_err_t sb_brokerenv_parse(sb_brokerenv_t *be, char *line, int lineno,
                                   char *errstr, size_t errstr_size)
{
        char *eq = strchr(line, '='), *value;
        size_t len;
        sb_brokerenv_var_t *vars;

        if (!eq || eq == line)
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "'%s' line %d: expected KEY='value'", be->path,
                                 lineno);
        *eq = '\0';
        value = eq + 1;
        len = strlen(value);
        if (len >= 2 && value[0] == '\'' && value[len - 1] == '\'') {
                value[len - 1] = '\0';
                value++;
        }
        vars = realloc(be->vars, (be->cnt + 1) * sizeof(*vars));
        if (!vars)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        be->vars = vars;
        vars[be->cnt].key = strdup(line);
        vars[be->cnt].value = strdup(value);
        if (!vars[be->cnt].key || !vars[be->cnt].value) {
                free(vars[be->cnt].key);
                free(vars[be->cnt].value);
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        be->cnt++;
        return SB_OK;
}

sb_err_t sb_brokerenv_load(sb_brokerenv_t *be, char *errstr, size_t errstr_size)
{
        const char *dir = getenv("SB_BROKER_DIR");
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int lineno = 0;
        sb_err_t err = SB_OK;
        FILE *fp;

        memset(be, 0, sizeof(*be));
        /* Secret files (SCRAM passwords) are read into libsodium's guarded
         * memory by sb_kafka_conf_new(). */
        if ((err = sb_crypto_init(errstr, errstr_size)))
                return err;
        snprintf(be->path, sizeof(be->path), "%s/env",
                 dir && *dir ? dir : "/tmp/sharebus-broker");
        if (!(fp = fopen(be->path, "r")))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOT_FOUND,
                                 "'%s': %s; start the test broker first: "
                                 "tests/kafka/broker.sh start",
                                 be->path, strerror(errno));
        while (!err && (len = getline(&line, &cap, fp)) != -1) {
                lineno++;
                while (len > 0 &&
                       (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';
                if (len == 0 || line[0] == '#')
                        continue;
                err = sb_brokerenv_parse(be, line, lineno, errstr, errstr_size);
        }
        free(line);
        fclose(fp);
        if (err)
                sb_brokerenv_release(be);
        return err;
}

void sb_brokerenv_release(sb_brokerenv_t *be)
{
        size_t i;

        if (!be)
                return;
        for (i = 0; i < be->cnt; i++) {
                free(be->vars[i].key);
                free(be->vars[i].value);
        }
        free(be->vars);
        be->vars = NULL;
        be->cnt = 0;
}

const char *sb_brokerenv_get(const sb_brokerenv_t *be, const char *key)
{
        size_t i;

        for (i = 0; i < be->cnt; i++)
                if (!strcmp(be->vars[i].key, key))
                        return be->vars[i].value;
        return NULL;
}

const char *sb_brokerenv_need(const sb_brokerenv_t *be, const char *key)
{
        const char *v = sb_brokerenv_get(be, key);

        SB_CHECK(v && *v,
                 "'%s' has no %s; restart the broker with "
                 "tests/kafka/broker.sh start",
                 be->path, key);
        return v;
}

void sb_brokerenv_mtls_cfg(const sb_brokerenv_t *be, sb_kafka_cfg_t *kc)
{
        memset(kc, 0, sizeof(*kc));
        kc->bootstrap_servers = (char *)sb_brokerenv_need(be, "SB_BROKER_SSL");
        kc->security_protocol = "ssl";
        kc->ssl_ca_location = (char *)sb_brokerenv_need(be, "SB_BROKER_CA");
        kc->ssl_certificate_location =
            (char *)sb_brokerenv_need(be, "SB_BROKER_ADMIN_CERT");
        kc->ssl_key_location =
            (char *)sb_brokerenv_need(be, "SB_BROKER_ADMIN_KEY");
}

void sb_brokerenv_scram_cfg(const sb_brokerenv_t *be, sb_kafka_cfg_t *kc)
{
        memset(kc, 0, sizeof(*kc));
        kc->bootstrap_servers = (char *)sb_brokerenv_need(be, "SB_BROKER_SASL");
        kc->security_protocol = "sasl_ssl";
        kc->ssl_ca_location = (char *)sb_brokerenv_need(be, "SB_BROKER_CA");
        kc->sasl_username = (char *)sb_brokerenv_need(be, "SB_SCRAM_USER");
        kc->sasl_password_file =
            (char *)sb_brokerenv_need(be, "SB_SCRAM_PASSWORD_FILE");
}

/* Keeps the first error the client reports. */
static void sb_probe_error_cb(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque)
{
        sb_probe_t *p = opaque;

        (void)rk;
        if (p->cb_err)
                return;
        p->cb_err = (rd_kafka_resp_err_t)err;
        snprintf(p->cb_reason, sizeof(p->cb_reason), "%s", reason);
}

/* Silent: the expected failures would flood the test output otherwise. */
static void sb_probe_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                            const char *buf)
{
        (void)rk;
        (void)level;
        (void)fac;
        (void)buf;
}

static rd_kafka_t *sb_client_new(const sb_kafka_cfg_t *kc,
                                 const char *client_id, sb_probe_t *p)
{
        char errstr[512];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;

        conf = sb_kafka_conf_new(kc, client_id, errstr, sizeof(errstr));
        SB_CHECK(conf, "client configuration: %s", errstr);
        rd_kafka_conf_set_log_cb(conf, sb_probe_log_cb);
        rd_kafka_conf_set_dr_msg_cb(conf, sb_kafka_dr_to_slot);
        if (p) {
                rd_kafka_conf_set_error_cb(conf, sb_probe_error_cb);
                rd_kafka_conf_set_opaque(conf, p);
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "rd_kafka_new: %s", errstr);
        return rk;
}

rd_kafka_t *sb_brokerenv_client(const sb_kafka_cfg_t *kc, const char *client_id)
{
        return sb_client_new(kc, client_id, NULL);
}

static long sb_elapsed_ms(const struct timespec *t0)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (now.tv_sec - t0->tv_sec) * 1000 +
               (now.tv_nsec - t0->tv_nsec) / 1000000;
}

void sb_probe(const sb_kafka_cfg_t *kc, int timeout_ms, sb_probe_t *p)
{
        const struct rd_kafka_metadata *md = NULL;
        struct timespec t0;
        rd_kafka_t *rk;

        memset(p, 0, sizeof(*p));
        rk = sb_client_new(kc, "sharebus-kafka-test", p);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        /* In one-second slices: a refused client would otherwise retry
         * until the whole timeout is spent. It stops at the first reported
         * error, which says why. */
        do {
                p->md_err = rd_kafka_metadata(rk, 1, NULL, &md, 1000);
                if (!p->md_err) {
                        p->broker_cnt = md->broker_cnt;
                        rd_kafka_metadata_destroy(md);
                        break;
                }
                rd_kafka_poll(rk, 0);
        } while (!p->cb_err && sb_elapsed_ms(&t0) < timeout_ms);
        rd_kafka_destroy(rk);
}
