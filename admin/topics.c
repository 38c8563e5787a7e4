#include "topics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *sb_managed_configs[] = {"cleanup.policy", "retention.ms",
                                           "min.insync.replicas", NULL};

static void sb_spec_config(const sb_topic_spec_t *t, const char *key, char *out,
                           size_t size)
{
        if (!strcmp(key, "cleanup.policy"))
                snprintf(out, size, "%s", t->cleanup_policy);
        else if (!strcmp(key, "retention.ms"))
                snprintf(out, size, "%" PRId64, t->retention_ms);
        else
                snprintf(out, size, "%d", t->min_insync_replicas);
}

static sb_topic_change_t *sb_plan_add(sb_topic_plan_t *plan, size_t *cap)
{
        sb_topic_change_t *c;

        if (plan->change_cnt == *cap) {
                size_t n = *cap ? *cap * 2 : 16;
                sb_topic_change_t *v = realloc(plan->changes, n * sizeof(*v));

                if (!v)
                        return NULL;
                plan->changes = v;
                *cap = n;
        }
        c = &plan->changes[plan->change_cnt++];
        memset(c, 0, sizeof(*c));
        return c;
}

/* Current values of the managed configs of `names` (DescribeConfigs). */
static sb_err_t sb_topics_configs(sb_kadmin_t *ka, const char **names,
                                  size_t cnt, json_t *out, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_ConfigResource_t **res;
        const rd_kafka_ConfigResource_t **rres;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_event_t *ev;
        size_t i, j, n, ecnt;

        if (cnt == 0)
                return SB_OK;
        res = calloc(cnt, sizeof(*res));
        if (!res)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < cnt; i++)
                res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                                     names[i]);
        opts = sb_kadmin_options(ka, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
        rd_kafka_DescribeConfigs(ka->rk, res, cnt, opts, ka->q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_ConfigResource_destroy_array(res, cnt);
        free(res);
        ev = sb_kadmin_wait(ka, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT,
                            "describe topic configs", errstr, errstr_size);
        if (!ev)
                return SB_ERR_KAFKA;
        rres = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &n);
        for (i = 0; i < n; i++) {
                const rd_kafka_ConfigEntry_t **entries;
                json_t *cfg = json_object();

                if (rd_kafka_ConfigResource_error(rres[i])) {
                        sb_seterr(
                            errstr, errstr_size, SB_ERR_KAFKA,
                            "admin: describe configs of topic '%s': %s",
                            rd_kafka_ConfigResource_name(rres[i]),
                            rd_kafka_ConfigResource_error_string(rres[i]));
                        json_decref(cfg);
                        rd_kafka_event_destroy(ev);
                        return SB_ERR_KAFKA;
                }
                entries = rd_kafka_ConfigResource_configs(rres[i], &ecnt);
                for (j = 0; j < ecnt; j++) {
                        const char *v = rd_kafka_ConfigEntry_value(entries[j]);

                        /* Keep every dynamic config: AlterConfigs replaces
                         * the whole set, so others' settings are resent. */
                        if (rd_kafka_ConfigEntry_source(entries[j]) ==
                            RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
                                json_object_set_new(
                                    cfg, rd_kafka_ConfigEntry_name(entries[j]),
                                    json_pack("{s:s?, s:b}", "value", v,
                                              "dynamic", 1));
                        else
                                json_object_set_new(
                                    cfg, rd_kafka_ConfigEntry_name(entries[j]),
                                    json_pack("{s:s?, s:b}", "value", v,
                                              "dynamic", 0));
                }
                json_object_set_new(out, rd_kafka_ConfigResource_name(rres[i]),
                                    cfg);
        }
        rd_kafka_event_destroy(ev);
        return SB_OK;
}

/* Topics keyed by subject: their partition count is part of their meaning. */
static int sb_topic_is_keyed(const sb_topic_spec_t *spec)
{
        return !strcmp(spec->role, "input") || !strcmp(spec->role, "output") ||
               !strcmp(spec->role, "state") || !strcmp(spec->role, "hold");
}

static int sb_topic_is_ours(const char *name)
{
        return !strncmp(name, "sb.", 3) || !strncmp(name, "_sb.", 4);
}

sb_err_t sb_topics_plan(sb_kadmin_t *ka, const sb_platform_t *pf,
                        sb_topic_plan_t *plan, char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        const char **existing = NULL;
        json_t *configs = json_object();
        rd_kafka_resp_err_t kerr;
        size_t cap = 0, i, n_existing = 0;
        sb_err_t err;
        int t;

        memset(plan, 0, sizeof(*plan));
        if ((err = sb_platform_topics(pf, &plan->specs, &plan->spec_cnt, errstr,
                                      errstr_size)))
                goto done;
        kerr = rd_kafka_metadata(ka->rk, 1, NULL, &md, ka->timeout_ms);
        if (kerr) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                "admin: cannot read the cluster's topics: %s",
                                rd_kafka_err2str(kerr));
                goto done;
        }
        existing = calloc((size_t)md->topic_cnt + 1, sizeof(*existing));
        if (!existing) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        for (t = 0; t < md->topic_cnt; t++)
                if (!md->topics[t].err)
                        existing[n_existing++] = md->topics[t].topic;
        if ((err = sb_topics_configs(ka, existing, n_existing, configs, errstr,
                                     errstr_size)))
                goto done;

        for (i = 0; i < plan->spec_cnt; i++) {
                const sb_topic_spec_t *spec = &plan->specs[i];
                const rd_kafka_metadata_topic_t *mt = NULL;
                sb_topic_change_t *c = sb_plan_add(plan, &cap);
                json_t *cfg;
                int k;

                if (!c) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
                c->spec = spec;
                c->name = strdup(spec->name);
                c->config_changes = json_object();
                for (t = 0; t < md->topic_cnt; t++)
                        if (!md->topics[t].err &&
                            !strcmp(md->topics[t].topic, spec->name))
                                mt = &md->topics[t];
                if (!mt) {
                        c->action = SB_TOPIC_CREATE;
                        continue;
                }
                c->actual_partitions = mt->partition_cnt;
                c->actual_rf =
                    mt->partition_cnt > 0 ? mt->partitions[0].replica_cnt : 0;
                cfg = json_object_get(configs, spec->name);
                for (k = 0; sb_managed_configs[k]; k++) {
                        const char *key = sb_managed_configs[k];
                        const char *cur = json_string_value(json_object_get(
                            json_object_get(cfg, key), "value"));
                        char want[64];

                        sb_spec_config(spec, key, want, sizeof(want));
                        if (!cur || strcmp(cur, want))
                                json_object_set_new(
                                    c->config_changes, key,
                                    json_pack("[s?, s]", cur, want));
                }
                if (c->actual_rf != spec->replication_factor) {
                        c->action = SB_TOPIC_CONFLICT;
                        if (asprintf(&c->conflict,
                                     "replication factor is %d, declared %d: "
                                     "reassign partitions with "
                                     "kafka-reassign-partitions.sh",
                                     c->actual_rf,
                                     spec->replication_factor) == -1)
                                c->conflict = NULL;
                } else if (c->actual_partitions > spec->partitions) {
                        c->action = SB_TOPIC_CONFLICT;
                        if (asprintf(&c->conflict,
                                     "has %d partitions, declared %d: Kafka "
                                     "cannot remove partitions; declare %d",
                                     c->actual_partitions, spec->partitions,
                                     c->actual_partitions) == -1)
                                c->conflict = NULL;
                } else if (c->actual_partitions < spec->partitions &&
                           sb_topic_is_keyed(spec)) {
                        /* Adding partitions moves subjects to other
                         * partitions: a record and a later erasure of one
                         * person could then be read out of order. */
                        c->action = SB_TOPIC_CONFLICT;
                        if (asprintf(&c->conflict,
                                     "has %d partitions, declared %d: adding "
                                     "partitions to a %s topic would move "
                                     "subjects between partitions and break "
                                     "their ordering; keep %d or migrate to "
                                     "a new topic",
                                     c->actual_partitions, spec->partitions,
                                     spec->role, c->actual_partitions) == -1)
                                c->conflict = NULL;
                }
                if (c->action == SB_TOPIC_CONFLICT)
                        continue;
                if (c->actual_partitions < spec->partitions)
                        c->add_partitions = spec->partitions;
                c->action =
                    (c->add_partitions || json_object_size(c->config_changes))
                        ? SB_TOPIC_ALTER
                        : SB_TOPIC_OK;
                /* Remember the other dynamic configs for AlterConfigs. */
                if (c->action == SB_TOPIC_ALTER) {
                        const char *key;
                        json_t *v;

                        json_object_foreach(cfg, key, v)
                        {
                                const char *val = json_string_value(
                                    json_object_get(v, "value"));

                                if (json_is_true(
                                        json_object_get(v, "dynamic")) &&
                                    !json_object_get(c->config_changes, key))
                                        json_object_set_new(
                                            c->config_changes, key,
                                            json_pack("[s?, s?, b]", val, val,
                                                      1));
                        }
                }
        }
        for (t = 0; t < md->topic_cnt; t++) {
                const char *name = md->topics[t].topic;
                sb_topic_change_t *c;
                int declared = 0;

                if (md->topics[t].err || !sb_topic_is_ours(name))
                        continue;
                for (i = 0; i < plan->spec_cnt; i++)
                        if (!strcmp(plan->specs[i].name, name))
                                declared = 1;
                if (declared)
                        continue;
                c = sb_plan_add(plan, &cap);
                if (!c) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
                c->action = SB_TOPIC_UNDECLARED;
                c->name = strdup(name);
                c->actual_partitions = md->topics[t].partition_cnt;
        }
done:
        free(existing);
        if (md)
                rd_kafka_metadata_destroy(md);
        json_decref(configs);
        return err;
}

size_t sb_topic_plan_pending(const sb_topic_plan_t *plan)
{
        size_t i, n = 0;

        for (i = 0; i < plan->change_cnt; i++)
                if (plan->changes[i].action == SB_TOPIC_CREATE ||
                    plan->changes[i].action == SB_TOPIC_ALTER)
                        n++;
        return n;
}

void sb_topic_plan_print(const sb_topic_plan_t *plan, FILE *fp)
{
        size_t i, n[5] = {0};

        for (i = 0; i < plan->change_cnt; i++)
                n[plan->changes[i].action]++;
        fprintf(fp,
                "topics: %zu declared; %zu in sync, %zu to create, %zu to "
                "alter, %zu in conflict, %zu undeclared\n",
                plan->spec_cnt, n[SB_TOPIC_OK], n[SB_TOPIC_CREATE],
                n[SB_TOPIC_ALTER], n[SB_TOPIC_CONFLICT],
                n[SB_TOPIC_UNDECLARED]);
        for (i = 0; i < plan->change_cnt; i++) {
                const sb_topic_change_t *c = &plan->changes[i];
                const char *key;
                json_t *v;

                switch (c->action) {
                case SB_TOPIC_OK:
                        break;
                case SB_TOPIC_CREATE:
                        fprintf(fp,
                                "  + %s (%s): %d partitions, replication %d, "
                                "cleanup.policy=%s, retention.ms=%" PRId64
                                ", min.insync.replicas=%d\n",
                                c->name, c->spec->role, c->spec->partitions,
                                c->spec->replication_factor,
                                c->spec->cleanup_policy, c->spec->retention_ms,
                                c->spec->min_insync_replicas);
                        break;
                case SB_TOPIC_ALTER:
                        fprintf(fp, "  ~ %s (%s):", c->name, c->spec->role);
                        if (c->add_partitions)
                                fprintf(fp, " partitions %d -> %d",
                                        c->actual_partitions,
                                        c->add_partitions);
                        json_object_foreach(c->config_changes, key, v)
                        {
                                if (json_array_size(v) == 3)
                                        continue; /* kept as it is */
                                fprintf(
                                    fp, " %s %s -> %s", key,
                                    json_string_value(json_array_get(v, 0))
                                        ? json_string_value(
                                              json_array_get(v, 0))
                                        : "(unset)",
                                    json_string_value(json_array_get(v, 1)));
                        }
                        fprintf(fp, "\n");
                        break;
                case SB_TOPIC_CONFLICT:
                        fprintf(fp, "  ! %s: %s\n", c->name,
                                c->conflict ? c->conflict : "conflict");
                        break;
                case SB_TOPIC_UNDECLARED:
                        fprintf(fp,
                                "  ? %s: named like a sharebus topic but "
                                "declared nowhere (left in place)\n",
                                c->name);
                        break;
                }
        }
}

static sb_err_t sb_topics_create(sb_kadmin_t *ka, const sb_topic_plan_t *plan,
                                 char *errstr, size_t errstr_size)
{
        rd_kafka_NewTopic_t **nt;
        const rd_kafka_topic_result_t **res;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_event_t *ev;
        char kerr[256], val[64];
        size_t i, n = 0, rn;
        int k;

        nt = calloc(plan->change_cnt + 1, sizeof(*nt));
        if (!nt)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < plan->change_cnt; i++) {
                const sb_topic_change_t *c = &plan->changes[i];

                if (c->action != SB_TOPIC_CREATE)
                        continue;
                nt[n] = rd_kafka_NewTopic_new(c->name, c->spec->partitions,
                                              c->spec->replication_factor, kerr,
                                              sizeof(kerr));
                if (!nt[n]) {
                        rd_kafka_NewTopic_destroy_array(nt, n);
                        free(nt);
                        return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                         "admin: topic '%s': %s", c->name,
                                         kerr);
                }
                for (k = 0; sb_managed_configs[k]; k++) {
                        sb_spec_config(c->spec, sb_managed_configs[k], val,
                                       sizeof(val));
                        rd_kafka_NewTopic_set_config(
                            nt[n], sb_managed_configs[k], val);
                }
                n++;
        }
        if (n == 0) {
                free(nt);
                return SB_OK;
        }
        opts = sb_kadmin_options(ka, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_CreateTopics(ka->rk, nt, n, opts, ka->q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_NewTopic_destroy_array(nt, n);
        free(nt);
        ev = sb_kadmin_wait(ka, RD_KAFKA_EVENT_CREATETOPICS_RESULT,
                            "create topics", errstr, errstr_size);
        if (!ev)
                return SB_ERR_KAFKA;
        res = rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(ev), &rn);
        for (i = 0; i < rn; i++) {
                if (rd_kafka_topic_result_error(res[i])) {
                        sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                  "admin: create topic '%s': %s",
                                  rd_kafka_topic_result_name(res[i]),
                                  rd_kafka_topic_result_error_string(res[i]));
                        rd_kafka_event_destroy(ev);
                        return SB_ERR_KAFKA;
                }
        }
        rd_kafka_event_destroy(ev);
        return SB_OK;
}

static sb_err_t sb_topics_alter(sb_kadmin_t *ka, const sb_topic_plan_t *plan,
                                char *errstr, size_t errstr_size)
{
        rd_kafka_ConfigResource_t **cr;
        rd_kafka_NewPartitions_t **np;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_event_t *ev;
        size_t i, ncr = 0, nnp = 0, rn;
        char kerr[256];
        sb_err_t err = SB_OK;

        cr = calloc(plan->change_cnt + 1, sizeof(*cr));
        np = calloc(plan->change_cnt + 1, sizeof(*np));
        if (!cr || !np) {
                free(cr);
                free(np);
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        for (i = 0; i < plan->change_cnt; i++) {
                const sb_topic_change_t *c = &plan->changes[i];
                const char *key;
                json_t *v;
                int changed = 0;

                if (c->action != SB_TOPIC_ALTER)
                        continue;
                json_object_foreach(c->config_changes, key, v) changed |=
                    json_array_size(v) == 2;
                if (changed) {
                        cr[ncr] = rd_kafka_ConfigResource_new(
                            RD_KAFKA_RESOURCE_TOPIC, c->name);
                        json_object_foreach(c->config_changes, key, v)
                        {
                                const char *val =
                                    json_string_value(json_array_get(v, 1));

                                if (val)
                                        rd_kafka_ConfigResource_set_config(
                                            cr[ncr], key, val);
                        }
                        ncr++;
                }
                if (c->add_partitions) {
                        np[nnp] = rd_kafka_NewPartitions_new(
                            c->name, (size_t)c->add_partitions, kerr,
                            sizeof(kerr));
                        if (!np[nnp]) {
                                err = sb_seterr(
                                    errstr, errstr_size, SB_ERR_KAFKA,
                                    "admin: topic '%s': %s", c->name, kerr);
                                goto done;
                        }
                        nnp++;
                }
        }
        if (ncr) {
                const rd_kafka_ConfigResource_t **rres;

                opts = sb_kadmin_options(ka, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
                rd_kafka_AlterConfigs(ka->rk, cr, ncr, opts, ka->q);
                rd_kafka_AdminOptions_destroy(opts);
                ev = sb_kadmin_wait(ka, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT,
                                    "alter topic configs", errstr, errstr_size);
                if (!ev) {
                        err = SB_ERR_KAFKA;
                        goto done;
                }
                rres = rd_kafka_AlterConfigs_result_resources(
                    rd_kafka_event_AlterConfigs_result(ev), &rn);
                for (i = 0; i < rn && !err; i++)
                        if (rd_kafka_ConfigResource_error(rres[i]))
                                err = sb_seterr(
                                    errstr, errstr_size, SB_ERR_KAFKA,
                                    "admin: alter configs of topic '%s': %s",
                                    rd_kafka_ConfigResource_name(rres[i]),
                                    rd_kafka_ConfigResource_error_string(
                                        rres[i]));
                rd_kafka_event_destroy(ev);
                if (err)
                        goto done;
        }
        if (nnp) {
                const rd_kafka_topic_result_t **res;

                opts =
                    sb_kadmin_options(ka, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
                rd_kafka_CreatePartitions(ka->rk, np, nnp, opts, ka->q);
                rd_kafka_AdminOptions_destroy(opts);
                ev = sb_kadmin_wait(ka, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT,
                                    "add partitions", errstr, errstr_size);
                if (!ev) {
                        err = SB_ERR_KAFKA;
                        goto done;
                }
                res = rd_kafka_CreatePartitions_result_topics(
                    rd_kafka_event_CreatePartitions_result(ev), &rn);
                for (i = 0; i < rn && !err; i++)
                        if (rd_kafka_topic_result_error(res[i]))
                                err = sb_seterr(
                                    errstr, errstr_size, SB_ERR_KAFKA,
                                    "admin: add partitions to '%s': %s",
                                    rd_kafka_topic_result_name(res[i]),
                                    rd_kafka_topic_result_error_string(res[i]));
                rd_kafka_event_destroy(ev);
        }
done:
        rd_kafka_ConfigResource_destroy_array(cr, ncr);
        rd_kafka_NewPartitions_destroy_array(np, nnp);
        free(cr);
        free(np);
        return err;
}

sb_err_t sb_topics_apply(sb_kadmin_t *ka, const sb_topic_plan_t *plan,
                         char *errstr, size_t errstr_size)
{
        sb_err_t err = sb_topics_create(ka, plan, errstr, errstr_size);

        if (err)
                return err;
        return sb_topics_alter(ka, plan, errstr, errstr_size);
}

void sb_topic_plan_release(sb_topic_plan_t *plan)
{
        size_t i;

        for (i = 0; i < plan->change_cnt; i++) {
                free(plan->changes[i].name);
                free(plan->changes[i].conflict);
                json_decref(plan->changes[i].config_changes);
        }
        free(plan->changes);
        sb_topic_specs_destroy(plan->specs, plan->spec_cnt);
        memset(plan, 0, sizeof(*plan));
}
