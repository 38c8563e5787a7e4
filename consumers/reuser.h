/*
 * sharebus - the reuser's consumer agent (DESIGN.md §2, §6, §7).
 *
 * Consumes its own stream sb.out.<reuser>.<dataset> (read_committed),
 * stores each record in the local database, and applies erasures at once.
 * Consumed offsets are written in the same SQL transaction as the changes
 * and the agent seeks to them on start: a crash never loses or repeats a
 * message. Messages it cannot verify or decode are recorded in the store's
 * sb_rejected table with the reason, never silently skipped.
 */
#ifndef SB_REUSER_H
#define SB_REUSER_H

#include <signal.h>

#include "config.h"
#include "kafka.h"

typedef struct sb_reuser_cfg_s {
        sb_kafka_cfg_t kafka;
        char *client_id;
        char *reuser;
        char *dataset;
        char *grant_file;
        char *schemas_dir;
        char *database;
        char *group_id;
        long long batch_records;
} sb_reuser_cfg_t;

extern const sb_config_field_t sb_reuser_cfg_table[];

typedef struct sb_reuser_stats_s {
        size_t records;     /* records stored (inserted or replaced) */
        size_t deleted;     /* records deleted by tombstones */
        size_t erasures;    /* erasure notices applied */
        size_t erased_rows; /* rows deleted by erasures */
        size_t rejected;    /* messages refused */
        size_t batches;     /* SQL transactions committed */
} sb_reuser_stats_t;

typedef struct sb_reuser_s sb_reuser_t;

/* Loads the grant, opens the store, joins the group. Borrows `cfg`. */
sb_reuser_t *sb_reuser_new(const sb_reuser_cfg_t *cfg, char *errstr,
                           size_t errstr_size);

/*
 * Runs until *stop is set or, when idle_exit_ms > 0, until partitions are
 * assigned and nothing arrived for idle_exit_ms.
 */
sb_err_t sb_reuser_run(sb_reuser_t *ru, volatile sig_atomic_t *stop,
                       int idle_exit_ms, char *errstr, size_t errstr_size);

const sb_reuser_stats_t *sb_reuser_stats(const sb_reuser_t *ru);
/* The agent's store (for reporting; owned by the agent). */
struct sb_store_s *sb_reuser_store(sb_reuser_t *ru);
/* The agent's grant (owned by the agent). */
const struct sb_grant_s *sb_reuser_grant(const sb_reuser_t *ru);

void sb_reuser_destroy(sb_reuser_t *ru);

#endif
