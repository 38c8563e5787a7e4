#include "world.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *sb_world_strdup(sb_world_t *w, const char *s)
{
        char *d = strdup(s);

        SB_CHECK(d && w->owned_cnt < 64, "out of memory");
        w->owned[w->owned_cnt++] = d;
        return d;
}

long sb_world_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

void sb_world_init(sb_world_t *w)
{
        char errstr[512];

        memset(w, 0, sizeof(*w));
        SB_OK_OR_FAIL(sb_brokerenv_load(&w->be, errstr, sizeof(errstr)),
                      errstr);
        snprintf(w->dir, sizeof(w->dir), "/tmp/sbworld-XXXXXX");
        SB_CHECK(mkdtemp(w->dir), "mkdtemp");
        snprintf(w->grants_dir, sizeof(w->grants_dir), "%s/grants", w->dir);
        snprintf(w->schemas_dir, sizeof(w->schemas_dir), "%s", SB_SCHEMAS_DIR);
        SB_CHECK(mkdir(w->grants_dir, 0700) == 0, "mkdir grants");
        sb_brokerenv_mtls_cfg(&w->be, &w->admin_kc);
}

void sb_world_cert(sb_world_t *w, const char *principal, const char *extra,
                   sb_kafka_cfg_t *kc)
{
        const char *bin = getenv("SB_BIN");
        char cmd[2048], path[600];

        SB_CHECK(bin && *bin, "SB_BIN is not set (run through ctest)");
        snprintf(cmd, sizeof(cmd),
                 "'%s' admin cert issue --dir '%s' --principal '%s' --days 1 "
                 "--out '%s' %s >/dev/null",
                 bin, sb_brokerenv_need(&w->be, "SB_BROKER_CA_DIR"), principal,
                 w->dir, extra ? extra : "");
        if (extra && strstr(extra, "--not-"))
                /* an explicit window replaces --days */
                snprintf(cmd, sizeof(cmd),
                         "'%s' admin cert issue --dir '%s' --principal '%s' "
                         "--out '%s' %s >/dev/null 2>&1",
                         bin, sb_brokerenv_need(&w->be, "SB_BROKER_CA_DIR"),
                         principal, w->dir, extra);
        SB_CHECK(system(cmd) == 0, "cert issue failed: %s", cmd);
        memset(kc, 0, sizeof(*kc));
        kc->bootstrap_servers =
            (char *)sb_brokerenv_need(&w->be, "SB_BROKER_SSL");
        kc->security_protocol = "ssl";
        kc->ssl_ca_location = (char *)sb_brokerenv_need(&w->be, "SB_BROKER_CA");
        snprintf(path, sizeof(path), "%s/%s.crt", w->dir, principal);
        kc->ssl_certificate_location = sb_world_strdup(w, path);
        snprintf(path, sizeof(path), "%s/%s.key", w->dir, principal);
        kc->ssl_key_location = sb_world_strdup(w, path);
}

void sb_world_grant(sb_world_t *w, const char *file, const char *json)
{
        char path[600];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/%s", w->grants_dir, file);
        fp = fopen(path, "w");
        SB_CHECK(fp, "write %s", path);
        fputs(json, fp);
        fclose(fp);
}

void sb_world_platform(sb_world_t *w, const char *body)
{
        char errstr[1024];
        FILE *fp;

        snprintf(w->platform_path, sizeof(w->platform_path), "%s/platform.json",
                 w->dir);
        fp = fopen(w->platform_path, "w");
        SB_CHECK(fp, "write platform");
        fprintf(fp,
                "{%s, \"grants_dir\": \"%s\", \"schemas_dir\": \"%s\", "
                "\"replication_factor\": 1, \"min_insync_replicas\": 1, "
                "\"partitions\": 3}",
                body, w->grants_dir, w->schemas_dir);
        fclose(fp);
        sb_platform_destroy(w->pf);
        w->pf = sb_platform_load(w->platform_path, errstr, sizeof(errstr));
        SB_CHECK(w->pf, "platform: %s", errstr);
        if (!w->ka) {
                w->ka = sb_kadmin_new(&w->admin_kc, "sb-test-admin", 30000,
                                      errstr, sizeof(errstr));
                SB_CHECK(w->ka, "admin client: %s", errstr);
        }
}

void sb_world_acl_plan(sb_world_t *w, sb_acl_plan_t *plan)
{
        sb_acl_set_t desired = {0}, actual = {0};
        char errstr[1024];

        SB_OK_OR_FAIL(sb_acls_desired(w->pf, &desired, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(sb_acls_describe(w->ka, &actual, errstr, sizeof(errstr)),
                      errstr);
        SB_OK_OR_FAIL(
            sb_acls_plan(&desired, &actual, plan, errstr, sizeof(errstr)),
            errstr);
        sb_acl_set_release(&desired);
        sb_acl_set_release(&actual);
}

/* Kafka's own AclCommand for what librdkafka 2.0.2 cannot create. */
static void sb_world_txn_acl(sb_world_t *w, const sb_acl_t *a)
{
        char cmd[8192];

        snprintf(cmd, sizeof(cmd),
                 "java -cp '%s' -Dlog4j.configuration=file:/dev/null "
                 "kafka.admin.AclCommand --bootstrap-server '%s' "
                 "--command-config '%s' --add --allow-principal '%s' "
                 "--operation %s --transactional-id '%s' %s >/dev/null 2>&1",
                 sb_brokerenv_need(&w->be, "SB_KAFKA_CLASSPATH"),
                 sb_brokerenv_need(&w->be, "SB_BROKER_SSL"),
                 sb_brokerenv_need(&w->be, "SB_BROKER_ADMIN_PROPERTIES"),
                 a->principal, "Write", a->name,
                 a->pattern == RD_KAFKA_RESOURCE_PATTERN_PREFIXED
                     ? "--resource-pattern-type prefixed"
                     : "");
        SB_CHECK(system(cmd) == 0, "kafka AclCommand failed for %s on %s",
                 a->principal, a->name);
}

long sb_world_apply(sb_world_t *w)
{
        sb_topic_plan_t tplan;
        sb_acl_plan_t plan;
        char errstr[1024];
        long t0, elapsed;
        size_t i;

        SB_OK_OR_FAIL(
            sb_topics_plan(w->ka, w->pf, &tplan, errstr, sizeof(errstr)),
            errstr);
        SB_OK_OR_FAIL(sb_topics_apply(w->ka, &tplan, errstr, sizeof(errstr)),
                      errstr);
        sb_topic_plan_release(&tplan);
        /* Applied: a new plan finds nothing to do (once the broker's
         * metadata shows the new topics, which may take a moment). */
        for (i = 0;; i++) {
                size_t pending;

                SB_OK_OR_FAIL(sb_topics_plan(w->ka, w->pf, &tplan, errstr,
                                             sizeof(errstr)),
                              errstr);
                pending = sb_topic_plan_pending(&tplan);
                sb_topic_plan_release(&tplan);
                if (!pending)
                        break;
                SB_CHECK(i < 20,
                         "%zu topic change(s) still pending after "
                         "apply",
                         pending);
                usleep(250000);
        }

        t0 = sb_world_now_ms();
        sb_world_acl_plan(w, &plan);
        SB_OK_OR_FAIL(sb_acls_apply(w->ka, &plan, errstr, sizeof(errstr)),
                      errstr);
        elapsed = sb_world_now_ms() - t0;
        for (i = 0; i < plan.external.cnt; i++)
                sb_world_txn_acl(w, &plan.external.v[i]);
        sb_acl_plan_release(&plan);

        /* A second apply changes nothing. */
        sb_world_acl_plan(w, &plan);
        SB_CHECK_INT(0, plan.create.cnt, "ACLs still to create after apply");
        SB_CHECK_INT(0, plan.remove.cnt, "ACLs still to delete after apply");
        SB_CHECK_INT(0, plan.external.cnt,
                     "transactional-id ACLs still missing after apply");
        sb_acl_plan_release(&plan);
        return elapsed;
}

void sb_world_release(sb_world_t *w)
{
        int i;

        for (i = 0; i < w->owned_cnt; i++)
                free(w->owned[i]);
        sb_kadmin_destroy(w->ka);
        sb_platform_destroy(w->pf);
        sb_brokerenv_release(&w->be);
        sb_test_rmtree(w->dir);
}

/* What one reader's callbacks share (the client's opaque). */
typedef struct sb_reader_s {
        rd_kafka_resp_err_t first; /* first error reported */
        const char *bind_ip;       /* source address, or NULL */
} sb_reader_t;

/* librdkafka connect callback: bind to the chosen source address first. */
static int sb_world_connect_cb(int sockfd, const struct sockaddr *addr,
                               int addrlen, const char *id, void *opaque)
{
        sb_reader_t *r = opaque;
        struct sockaddr_in src;

        (void)id;
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        if (inet_pton(AF_INET, r->bind_ip, &src.sin_addr) != 1 ||
            bind(sockfd, (struct sockaddr *)&src, sizeof(src)) == -1)
                return errno ? errno : EINVAL;
        if (connect(sockfd, addr, (socklen_t)addrlen) == -1 &&
            errno != EINPROGRESS)
                return errno;
        return 0;
}

static int sb_world_ignored(rd_kafka_resp_err_t err)
{
        return err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
}

static void sb_world_error_cb(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque)
{
        sb_reader_t *r = opaque;

        (void)rk;
        (void)reason;
        if (!r->first && !sb_world_ignored((rd_kafka_resp_err_t)err))
                r->first = (rd_kafka_resp_err_t)err;
}

rd_kafka_resp_err_t sb_world_try_read(const sb_kafka_cfg_t *kc,
                                      const char *topic, int timeout_ms,
                                      const char *bind_ip, long *msgs)
{
        sb_reader_t r = {RD_KAFKA_RESP_ERR_NO_ERROR, bind_ip};
        const rd_kafka_metadata_t *md;
        rd_kafka_conf_t *conf;
        rd_kafka_queue_t *q;
        rd_kafka_topic_t *rkt;
        rd_kafka_t *rk;
        char errstr[512];
        long deadline = sb_world_now_ms() + timeout_ms;
        int p, parts = 0;

        *msgs = 0;
        conf = sb_kafka_conf_new(kc, "sb-test-reader", errstr, sizeof(errstr));
        SB_CHECK(conf, "conf: %s", errstr);
        /* No group at all (the simple consumer API): what is tested is
         * access to the topic, and a group nobody may use would only add
         * its own errors. */
        rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set_error_cb(conf, sb_world_error_cb);
        rd_kafka_conf_set_opaque(conf, &r);
        if (bind_ip)
                rd_kafka_conf_set_connect_cb(conf, sb_world_connect_cb);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        SB_CHECK(rk, "consumer: %s", errstr);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        q = rd_kafka_queue_new(rk);

        /* The topic's metadata is where the broker says whether this
         * principal may see the topic at all. */
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (md->topic_cnt == 1) {
                        if (md->topics[0].err)
                                r.first = md->topics[0].err;
                        parts = md->topics[0].partition_cnt;
                }
                rd_kafka_metadata_destroy(md);
        }
        if (r.first) /* fetch all the same, a little: nothing may come */
                deadline = sb_world_now_ms() + 3000;
        if (parts == 0)
                parts = 3;
        for (p = 0; p < parts; p++)
                rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING,
                                             q);
        while (sb_world_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consume_queue(q, 100);

                if (!m)
                        continue;
                if (m->err && !sb_world_ignored(m->err) && !r.first)
                        r.first = m->err;
                else if (!m->err)
                        (*msgs)++;
                rd_kafka_message_destroy(m);
        }
        for (p = 0; p < parts; p++)
                rd_kafka_consume_stop(rkt, p);
        rd_kafka_queue_destroy(q);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return r.first;
}

void sb_world_produce(sb_world_t *w, const char *topic, int n)
{
        rd_kafka_t *rk = sb_brokerenv_client(&w->admin_kc, "sb-test-writer");
        rd_kafka_resp_err_t err;
        int i;

        for (i = 0; i < n; i++) {
                char key[32];

                snprintf(key, sizeof(key), "k%d/r%d", i, i);
                err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_KEY(key, strlen(key)),
                    RD_KAFKA_V_VALUE("test", 4),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                SB_CHECK(!err, "produce to %s: %s", topic,
                         rd_kafka_err2str(err));
        }
        SB_CHECK(rd_kafka_flush(rk, 30000) == 0, "flush to %s", topic);
        rd_kafka_destroy(rk);
}

json_t *sb_world_agent_kafka(const sb_kafka_cfg_t *kc)
{
        return json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "bootstrap_servers",
            kc->bootstrap_servers, "security_protocol", "ssl",
            "ssl_ca_location", kc->ssl_ca_location, "ssl_certificate_location",
            kc->ssl_certificate_location, "ssl_key_location",
            kc->ssl_key_location, "properties", "session.timeout.ms", "6000");
}

void sb_world_scenario(sb_world_t *w, const sb_scn_t *s, sb_scn_rig_t *g,
                       int gateways, sb_kafka_cfg_t ru_kc[SB_SCN_REUSERS])
{
        sb_kafka_cfg_t holder_kc, gw_kc;
        json_t *ru_kafka[SB_SCN_REUSERS];
        char body[1024], name[200];
        int r;

        sb_scn_rig_prepare(g, s, w->dir, w->grants_dir);
        snprintf(w->schemas_dir, sizeof(w->schemas_dir), "%.*s",
                 (int)sizeof(w->schemas_dir) - 1, g->schemas_dir);
        snprintf(body, sizeof(body),
                 "\"gateway\": [\"%s-gw.g1\"], \"datasets\": {\"%s\": "
                 "{\"holders\": [\"%s-holder.g1\"]}}, \"reusers\": "
                 "{\"%s\": {\"principals\": [\"%s.g1\"]}, \"%s\": "
                 "{\"principals\": [\"%s.g1\"]}}",
                 s->prefix, s->dataset, s->prefix, s->reusers[0], s->reusers[0],
                 s->reusers[1], s->reusers[1]);
        sb_world_platform(w, body);
        sb_world_apply(w);
        snprintf(name, sizeof(name), "%s-holder.g1", s->prefix);
        sb_world_cert(w, name, NULL, &holder_kc);
        snprintf(name, sizeof(name), "%s-gw.g1", s->prefix);
        sb_world_cert(w, name, NULL, &gw_kc);
        for (r = 0; r < SB_SCN_REUSERS; r++) {
                snprintf(name, sizeof(name), "%s.g1", s->reusers[r]);
                sb_world_cert(w, name, NULL, &ru_kc[r]);
                ru_kafka[r] = sb_world_agent_kafka(&ru_kc[r]);
        }
        sb_scn_rig_configure(g, s, sb_world_agent_kafka(&holder_kc),
                             sb_world_agent_kafka(&gw_kc), ru_kafka, gateways);
}
