/*
 * The configuration files we ship (examples/ for the walkthrough, docker/
 * for deployments) load against their tables, and the ones that leave
 * development mode name every key the programs require there: the
 * signing keys and key directories (DESIGN.md §9, R3.4-*) and the
 * gateway's audit key (R4.3-13). A shipped file that would not start
 * fails here, not on a user's machine.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "testutil.h"

typedef struct shipped_s {
        const char *path; /* in the source tree */
        const sb_config_field_t *table;
        size_t size; /* of the config struct */
        /* keys required outside insecure_dev, NULL-terminated */
        const char *required[4];
} shipped_t;

static const shipped_t shipped[] = {
    {"examples/holder.json",
     sb_holder_cfg_table,
     sizeof(sb_holder_cfg_t),
     {"signing_key_file", NULL}},
    {"examples/gateway.json",
     sb_gateway_cfg_table,
     sizeof(sb_gateway_cfg_t),
     {"holder_keys_dir", "signing_key_file", NULL}},
    {"examples/reuser-energy-desk.json",
     sb_reuser_cfg_table,
     sizeof(sb_reuser_cfg_t),
     {"gateway_keys_dir", NULL}},
    {"examples/reuser-housing-observatory.json",
     sb_reuser_cfg_table,
     sizeof(sb_reuser_cfg_t),
     {"gateway_keys_dir", NULL}},
    {"examples/admin.json", sb_admin_cfg_table, sizeof(sb_admin_cfg_t), {NULL}},
    {"docker/conf/holder.json",
     sb_holder_cfg_table,
     sizeof(sb_holder_cfg_t),
     {"signing_key_file", NULL}},
    {"docker/conf/gateway.json",
     sb_gateway_cfg_table,
     sizeof(sb_gateway_cfg_t),
     {"holder_keys_dir", "signing_key_file", "audit_key_file", NULL}},
    {"docker/conf/reuser.json",
     sb_reuser_cfg_table,
     sizeof(sb_reuser_cfg_t),
     {"gateway_keys_dir", NULL}},
};

static void shipped_configs_load_and_name_required_keys(void **state)
{
        char path[512], errstr[1024];
        size_t i, k;

        (void)state;
        for (i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
                const shipped_t *c = &shipped[i];
                void *cfg = calloc(1, c->size);
                json_t *j, *kafka;
                int dev;

                assert_non_null(cfg);
                snprintf(path, sizeof(path), "%s/%s", SB_SOURCE_DIR, c->path);
                if (sb_config_load(path, c->table, cfg, errstr, sizeof(errstr)))
                        fail_msg("%s: %s", c->path, errstr);
                sb_config_release(c->table, cfg);
                free(cfg);

                j = json_load_file(path, 0, NULL);
                assert_non_null(j);
                kafka = json_object_get(j, "kafka");
                dev = json_is_true(json_object_get(kafka, "insecure_dev"));
                for (k = 0; !dev && c->required[k]; k++)
                        if (!json_is_string(json_object_get(j, c->required[k])))
                                fail_msg("%s leaves insecure_dev but has no "
                                         "'%s': the program would refuse to "
                                         "start",
                                         c->path, c->required[k]);
                /* development files name the keys too, as a model */
                for (k = 0; dev && c->required[k]; k++)
                        if (strcmp(c->required[k], "audit_key_file") &&
                            !json_is_string(json_object_get(j, c->required[k])))
                                fail_msg("%s: no '%s'", c->path,
                                         c->required[k]);
                json_decref(j);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(shipped_configs_load_and_name_required_keys),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
