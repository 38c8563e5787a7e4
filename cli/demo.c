#include "demo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "gateway.h"
#include "grant.h"
#include "holder.h"
#include "log.h"
#include "mockenv.h"
#include "reuser.h"
#include "sample.h"
#include "sign.h"
#include "store.h"

#define SB_DEMO_IDLE_MS 2000

typedef struct sb_demo_s {
        const sb_demo_opts_t *o;
        char workdir[512];
        sb_mockenv_t *env;
        sb_catalog_t *cat;
        sb_grant_t **grants;
        size_t grant_cnt;
        sb_key_t *key;
        sb_holder_cfg_t holder_cfg;
        sb_gateway_cfg_t gw_cfg;
        sb_reuser_cfg_t *ru_cfg;
        sb_holder_t *holder;
        sb_gateway_t *gw;
        sb_reuser_t **reusers;
        char errstr[1024];
} sb_demo_t;

static int sb_demo_cfg(sb_demo_t *d, const sb_config_field_t *table,
                       void *target, json_t *obj, const char *what)
{
        sb_err_t err = sb_config_apply(obj, what, table, target, d->errstr,
                                       sizeof(d->errstr));

        json_decref(obj);
        return err ? -1 : 0;
}

/*
 * A fresh signing key pair: the secret in <workdir>/<name>.key, the public
 * key in <workdir>/<pubdir>/<name>.pub (the directory a verifier reads).
 */
static int sb_demo_keypair(sb_demo_t *d, const char *name, const char *pubdir)
{
        char sk[700], pk[1400], dir[700], *slash;
        sb_signkey_t *key;
        int err;

        snprintf(sk, sizeof(sk), "%s/%s.key", d->workdir, name);
        snprintf(dir, sizeof(dir), "%s/%s", d->workdir, pubdir);
        snprintf(pk, sizeof(pk), "%s/%s.pub", dir, name);
        for (slash = dir + strlen(d->workdir) + 1; (slash = strchr(slash, '/'));
             *slash++ = '/') {
                *slash = '\0';
                mkdir(dir, 0700);
        }
        mkdir(dir, 0700);
        unlink(sk);
        unlink(pk);
        if (!(key = sb_signkey_generate())) {
                snprintf(d->errstr, sizeof(d->errstr), "demo: out of memory");
                return -1;
        }
        err = sb_signkey_save(key, sk, pk, d->errstr, sizeof(d->errstr));
        sb_signkey_destroy(key);
        return err ? -1 : 0;
}

static int sb_demo_setup(sb_demo_t *d)
{
        const sb_demo_opts_t *o = d->o;
        char hk[700], gk[700], hkd[700], gkd[700];
        size_t i;

        if (o->workdir) {
                snprintf(d->workdir, sizeof(d->workdir), "%s", o->workdir);
                if (mkdir(d->workdir, 0700) == -1 && errno != EEXIST) {
                        snprintf(d->errstr, sizeof(d->errstr),
                                 "demo: cannot create '%s': %s", d->workdir,
                                 strerror(errno));
                        return -1;
                }
        } else {
                snprintf(d->workdir, sizeof(d->workdir),
                         "%s/sharebus-demo-XXXXXX",
                         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
                if (!mkdtemp(d->workdir)) {
                        snprintf(d->errstr, sizeof(d->errstr),
                                 "demo: cannot create a temporary directory: "
                                 "%s",
                                 strerror(errno));
                        return -1;
                }
        }
        if (sb_crypto_init(d->errstr, sizeof(d->errstr)))
                return -1;
        d->cat = sb_catalog_load(o->schemas_dir, d->errstr, sizeof(d->errstr));
        if (!d->cat ||
            sb_grants_load_dir(o->grants_dir, d->cat, &d->grants, &d->grant_cnt,
                               d->errstr, sizeof(d->errstr)))
                return -1;
        d->key = sb_key_random();
        d->env = sb_mockenv_new(3, d->errstr, sizeof(d->errstr));
        if (!d->key || !d->env)
                return -1;
        if (sb_mockenv_dataset(d->env, "beneficiaries", 3, d->errstr,
                               sizeof(d->errstr)))
                return -1;
        for (i = 0; i < d->grant_cnt; i++)
                if (sb_mockenv_topic(d->env, d->grants[i]->topic, 3, d->errstr,
                                     sizeof(d->errstr)))
                        return -1;

        /* Signatures (DESIGN §9): the holder signs its records, the gateway
         * verifies them and signs the reuser streams, reusers verify. */
        snprintf(hk, sizeof(hk), "%s/holder.key", d->workdir);
        snprintf(gk, sizeof(gk), "%s/gateway.key", d->workdir);
        snprintf(hkd, sizeof(hkd), "%s/holder-keys", d->workdir);
        snprintf(gkd, sizeof(gkd), "%s/gateway-keys", d->workdir);
        if (sb_demo_keypair(d, "holder", "holder-keys/beneficiaries") ||
            sb_demo_keypair(d, "gateway", "gateway-keys"))
                return -1;
        if (sb_demo_cfg(d, sb_holder_cfg_table, &d->holder_cfg,
                        json_pack("{s:o, s:s, s:s, s:s}", "kafka",
                                  sb_mockenv_kafka_json(d->env), "schemas_dir",
                                  o->schemas_dir, "client_id", "demo-holder",
                                  "signing_key_file", hk),
                        "demo holder config") ||
            sb_demo_cfg(d, sb_gateway_cfg_table, &d->gw_cfg,
                        json_pack("{s:o, s:[s], s:s, s:s, s:s, s:s, s:s}",
                                  "kafka", sb_mockenv_kafka_json(d->env),
                                  "datasets", "beneficiaries", "schemas_dir",
                                  o->schemas_dir, "grants_dir", o->grants_dir,
                                  "pseudonym_key_file", "(in memory)",
                                  "holder_keys_dir", hkd, "signing_key_file",
                                  gk),
                        "demo gateway config"))
                return -1;
        d->ru_cfg = calloc(d->grant_cnt ? d->grant_cnt : 1, sizeof(*d->ru_cfg));
        d->reusers =
            calloc(d->grant_cnt ? d->grant_cnt : 1, sizeof(*d->reusers));
        if (!d->ru_cfg || !d->reusers)
                return -1;
        for (i = 0; i < d->grant_cnt; i++) {
                char db[700], sk[700], pk[700];
                sb_signkey_t *key;
                int err;

                snprintf(db, sizeof(db), "%s/%s.db", d->workdir,
                         d->grants[i]->reuser);
                unlink(db);
                /* Each reuser signs its receipts with its own key. */
                snprintf(sk, sizeof(sk), "%s/%s.key", d->workdir,
                         d->grants[i]->reuser);
                snprintf(pk, sizeof(pk), "%s/%s.pub", d->workdir,
                         d->grants[i]->reuser);
                unlink(sk);
                unlink(pk);
                key = sb_signkey_generate();
                if (!key) {
                        snprintf(d->errstr, sizeof(d->errstr),
                                 "demo: out of memory");
                        return -1;
                }
                err =
                    sb_signkey_save(key, sk, pk, d->errstr, sizeof(d->errstr));
                sb_signkey_destroy(key);
                if (err || sb_mockenv_ack_topic(d->env, d->grants[i]->reuser,
                                                d->errstr, sizeof(d->errstr)))
                        return -1;
                if (sb_demo_cfg(
                        d, sb_reuser_cfg_table, &d->ru_cfg[i],
                        json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                  "kafka", sb_mockenv_kafka_json(d->env),
                                  "reuser", d->grants[i]->reuser, "dataset",
                                  d->grants[i]->dataset, "grant_file",
                                  d->grants[i]->origin, "schemas_dir",
                                  o->schemas_dir, "database", db,
                                  "signing_key_file", sk, "gateway_keys_dir",
                                  gkd),
                        "demo reuser config"))
                        return -1;
        }
        return 0;
}

static int sb_demo_flow(sb_demo_t *d)
{
        size_t i;

        if (sb_gateway_run(d->gw, NULL, SB_DEMO_IDLE_MS, d->errstr,
                           sizeof(d->errstr)))
                return -1;
        for (i = 0; i < d->grant_cnt; i++)
                if (sb_reuser_run(d->reusers[i], NULL, SB_DEMO_IDLE_MS,
                                  d->errstr, sizeof(d->errstr)))
                        return -1;
        return 0;
}

/* Columns a reuser's table may have: bookkeeping + granted fields. */
static int sb_demo_columns_ok(sb_demo_t *d, size_t i, FILE *out)
{
        const sb_grant_t *g = d->grants[i];
        json_t *cols = sb_store_columns(sb_reuser_store(d->reusers[i]));
        json_t *c;
        size_t k;
        int ok = 1;

        json_array_foreach(cols, k, c)
        {
                const char *name = json_string_value(c);

                if (!strcmp(name, SB_PSEUDONYM_FIELD) ||
                    !strcmp(name, "record_id") || !strcmp(name, "restricted") ||
                    !strcmp(name, "received_at") ||
                    sb_schema_field(g->out, name))
                        continue;
                fprintf(out, "  FAIL: %s stored field '%s', not granted\n",
                        g->reuser, name);
                ok = 0;
        }
        json_decref(cols);
        return ok;
}

static int sb_demo_main(sb_demo_t *d)
{
        const sb_demo_opts_t *o = d->o;
        FILE *out = o->out, *in;
        sb_holder_stats_t hs;
        char path[700], subject[16], event_id[37];
        char(*ps)[SB_PSEUDONYM_HEXLEN + 1] = NULL;
        int64_t *before = NULL;
        size_t i, records;
        int failed = 0;

        if (sb_demo_setup(d))
                return 2;
        fprintf(out, "sharebus demo — mock cluster at %s, work directory %s\n",
                d->env->bootstraps, d->workdir);

        /* 1. The holder publishes synthetic records, all or nothing. */
        snprintf(path, sizeof(path), "%s/beneficiaries.ndjson", d->workdir);
        in = fopen(path, "w+");
        if (!in) {
                snprintf(d->errstr, sizeof(d->errstr), "demo: '%s': %s", path,
                         strerror(errno));
                return 2;
        }
        records = sb_sample_write(in, o->subjects, 42);
        rewind(in);
        d->holder = sb_holder_new(&d->holder_cfg, "beneficiaries", d->errstr,
                                  sizeof(d->errstr));
        if (!d->holder || sb_holder_publish(d->holder, in, path, NULL, &hs,
                                            d->errstr, sizeof(d->errstr))) {
                fclose(in);
                return 2;
        }
        fclose(in);
        fprintf(out,
                "\n1. holder published %zu records of %zu subjects to "
                "sb.in.beneficiaries (one transaction)\n",
                hs.published, o->subjects);
        (void)records;

        /* 2. The gateway re-publishes one minimised stream per reuser. */
        d->gw =
            sb_gateway_new(&d->gw_cfg, d->key, d->errstr, sizeof(d->errstr));
        if (!d->gw)
                return 2;
        for (i = 0; i < d->grant_cnt; i++) {
                d->reusers[i] =
                    sb_reuser_new(&d->ru_cfg[i], d->errstr, sizeof(d->errstr));
                if (!d->reusers[i])
                        return 2;
        }
        if (sb_demo_flow(d))
                return 2;
        fprintf(out,
                "2. gateway verified the holder's signatures (%zu failed) and "
                "delivered %zu projected records in %zu transaction(s), "
                "signed in %zu batch(es)\n",
                sb_gateway_stats(d->gw)->unverified,
                sb_gateway_stats(d->gw)->delivered,
                sb_gateway_stats(d->gw)->transactions,
                sb_gateway_stats(d->gw)->signed_batches);
        fprintf(out, "3. reusers stored their streams:\n");
        for (i = 0; i < d->grant_cnt; i++) {
                const sb_grant_t *g = d->grants[i];
                json_t *cols = sb_store_columns(sb_reuser_store(d->reusers[i]));
                char *ctext = json_dumps(cols, JSON_COMPACT);

                fprintf(out, "   %-22s %5lld rows, columns %s\n", g->reuser,
                        (long long)sb_store_count(
                            sb_reuser_store(d->reusers[i]), NULL),
                        ctext ? ctext : "?");
                free(ctext);
                json_decref(cols);
                if (!sb_demo_columns_ok(d, i, out))
                        failed = 1;
        }

        /* 3. One person asks the holder to erase their data. */
        sb_sample_subject_id(4, subject); /* a subject with two files */
        ps = calloc(d->grant_cnt ? d->grant_cnt : 1, sizeof(*ps));
        before = calloc(d->grant_cnt ? d->grant_cnt : 1, sizeof(*before));
        if (!ps || !before) {
                free(ps);
                free(before);
                return 2;
        }
        for (i = 0; i < d->grant_cnt; i++) {
                sb_pseudonymiser_t *p = sb_pseudonymiser_new(
                    d->key, d->grants[i]->reuser, d->grants[i]->dataset);

                if (!p) {
                        free(ps);
                        free(before);
                        return 2;
                }
                sb_pseudonymise(p, subject, strlen(subject), ps[i]);
                sb_pseudonymiser_destroy(p);
                before[i] =
                    sb_store_count(sb_reuser_store(d->reusers[i]), ps[i]);
        }
        if (sb_holder_rights(d->holder, SB_EV_ERASURE, subject, NULL, event_id,
                             d->errstr, sizeof(d->errstr)) ||
            sb_demo_flow(d)) {
                free(ps);
                free(before);
                return 2;
        }
        fprintf(out, "\n4. holder published erasure %s for subject %s\n",
                event_id, subject);
        fprintf(out, "   %-22s %-34s %6s %6s %8s\n", "reuser", "pseudonym",
                "before", "after", "receipt");
        for (i = 0; i < d->grant_cnt; i++) {
                int64_t after =
                    sb_store_count(sb_reuser_store(d->reusers[i]), ps[i]);
                size_t receipts = sb_reuser_stats(d->reusers[i])->receipts_sent;

                fprintf(out, "   %-22s %-34s %6lld %6lld %8s\n",
                        d->grants[i]->reuser, ps[i], (long long)before[i],
                        (long long)after,
                        receipts    ? "signed"
                        : before[i] ? "MISSING"
                                    : "-");
                if (before[i] > 0 && receipts != 1) {
                        fprintf(out,
                                "  FAIL: %s sent %zu receipt(s) for the "
                                "erasure, expected 1\n",
                                d->grants[i]->reuser, receipts);
                        failed = 1;
                }
                if (after != 0) {
                        fprintf(out,
                                "  FAIL: %s still holds %lld row(s) of "
                                "the erased subject\n",
                                d->grants[i]->reuser, (long long)after);
                        failed = 1;
                }
                if (before[i] == 0 &&
                    sb_grant_active(d->grants[i], sb_now_ms())) {
                        fprintf(out,
                                "  FAIL: %s never received the subject "
                                "although its grant is active\n",
                                d->grants[i]->reuser);
                        failed = 1;
                }
        }
        free(ps);
        free(before);
        fprintf(out, "\n%s\n",
                failed ? "demo FAILED"
                       : "demo passed: the erasure reached "
                         "every reuser that had the subject, "
                         "each sent a signed receipt, and no "
                         "reuser holds a field its grant does "
                         "not name");
        return failed;
}

int sb_demo_run(const sb_demo_opts_t *opts)
{
        sb_demo_t d;
        size_t i;
        int rc;

        memset(&d, 0, sizeof(d));
        d.o = opts;
        rc = sb_demo_main(&d);
        if (rc == 2)
                fprintf(stderr, "sharebus demo: %s\n", d.errstr);

        for (i = 0; d.reusers && i < d.grant_cnt; i++)
                sb_reuser_destroy(d.reusers[i]);
        sb_gateway_destroy(d.gw);
        sb_holder_destroy(d.holder);
        for (i = 0; d.ru_cfg && i < d.grant_cnt; i++)
                sb_config_release(sb_reuser_cfg_table, &d.ru_cfg[i]);
        free(d.ru_cfg);
        free(d.reusers);
        sb_config_release(sb_gateway_cfg_table, &d.gw_cfg);
        sb_config_release(sb_holder_cfg_table, &d.holder_cfg);
        sb_grants_destroy(d.grants, d.grant_cnt);
        sb_catalog_destroy(d.cat);
        sb_key_destroy(d.key);
        sb_mockenv_destroy(d.env);
        return rc;
}
