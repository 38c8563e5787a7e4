/*
 * sharebus - the topics the platform implies (DESIGN.md §3), compared with
 * the cluster's and reconciled (`sharebus admin topics plan|apply`).
 *
 * Managed per topic: partitions (only ever increased), cleanup.policy,
 * retention.ms, min.insync.replicas. A replication factor that differs, or
 * more partitions than declared, cannot be changed safely by a tool: they
 * are reported. Topics named like sharebus's (sb.*, _sb.*) that nothing
 * declares are reported, never deleted.
 */
#ifndef SB_TOPICS_H
#define SB_TOPICS_H

#include <stdio.h>

#include "kadmin.h"
#include "platform.h"

typedef enum {
        SB_TOPIC_OK,
        SB_TOPIC_CREATE,
        SB_TOPIC_ALTER,      /* configs and/or more partitions */
        SB_TOPIC_CONFLICT,   /* cannot be reconciled automatically */
        SB_TOPIC_UNDECLARED, /* exists, named like ours, not declared */
} sb_topic_action_t;

typedef struct sb_topic_change_s {
        sb_topic_action_t action;
        const sb_topic_spec_t *spec; /* NULL for UNDECLARED */
        char *name;
        int actual_partitions;
        int actual_rf;
        int add_partitions;     /* new total, 0: none */
        json_t *config_changes; /* key -> [actual or null, desired] */
        char *conflict;         /* why it cannot be reconciled */
} sb_topic_change_t;

typedef struct sb_topic_plan_s {
        sb_topic_spec_t *specs;
        size_t spec_cnt;
        sb_topic_change_t *changes;
        size_t change_cnt;
} sb_topic_plan_t;

sb_err_t sb_topics_plan(sb_kadmin_t *ka, const sb_platform_t *pf,
                        sb_topic_plan_t *plan, char *errstr,
                        size_t errstr_size);
void sb_topic_plan_print(const sb_topic_plan_t *plan, FILE *fp);
/* Number of changes apply would make (creates + alters). */
size_t sb_topic_plan_pending(const sb_topic_plan_t *plan);
sb_err_t sb_topics_apply(sb_kadmin_t *ka, const sb_topic_plan_t *plan,
                         char *errstr, size_t errstr_size);
void sb_topic_plan_release(sb_topic_plan_t *plan);

#endif
