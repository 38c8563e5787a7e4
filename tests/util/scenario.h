/*
 * sharebus tests - the rights scenario shared by the crash, fault and
 * rebalance proofs (DESIGN.md §6, §7; CNIL R6.2-05): a stream of record
 * batches with rights events planned between them (objections for one
 * purpose and for all, erasures, restrictions and lifts, withdrawals and
 * re-consents), a reference model of what each of two reusers must hold in
 * the end, and the checks against it: the stores, and the streams as a
 * read_committed consumer sees them.
 *
 * The scenario's dataset is a copy of schemas/ with the dataset renamed
 * (sb_scn_schemas()), so its topics, state and offsets are its own.
 */
#ifndef SB_SCENARIO_H
#define SB_SCENARIO_H

#include "testutil.h"

#define SB_SCN_SUBJECTS 40
#define SB_SCN_BATCHES  36
#define SB_SCN_REUSERS  2

typedef struct sb_scn_s {
        char dataset[64];
        char prefix[48]; /* of the reusers' and principals' names */
        char reusers[SB_SCN_REUSERS][64];
        const char *purposes[SB_SCN_REUSERS];
        /* the model: "subject/record id" -> subject, per reuser */
        json_t *rows[SB_SCN_REUSERS];
        int objected[SB_SCN_REUSERS][SB_SCN_SUBJECTS];
        int withdrawn[SB_SCN_SUBJECTS];
        int restricted[SB_SCN_SUBJECTS];
        int received[SB_SCN_REUSERS][SB_SCN_SUBJECTS];
        long records, rights; /* published so far */
        long holder_retries;  /* publishes that failed and were redone */
} sb_scn_t;

/*
 * Reusers are named <prefix>-lab (purpose research) and <prefix>-city
 * (purpose housing).
 */
void sb_scn_init(sb_scn_t *s, const char *dataset, const char *prefix);
void sb_scn_release(sb_scn_t *s);

/* Copies schemas/ into dir/schemas with the dataset renamed; returns
 * that directory (static buffer). */
const char *sb_scn_schemas(const sb_scn_t *s, const char *dir);

/* The grant (JSON text) of reuser r: keeps postcode and benefit. */
void sb_scn_grant_json(const sb_scn_t *s, int r, char *buf, size_t size);

/* Publishes batch b (its rights events first, then SUBJECTS records) and
 * updates the model. A publish that fails is redone (up to 3 times). */
void sb_scn_publish_batch(sb_scn_t *s, sb_holder_t *h, int b);

/*
 * Whether reuser r's store `db` holds exactly the model's rows and marks
 * exactly the model's restricted persons (pseudonyms made with `key`).
 * With `verbose`, prints the counts.
 */
int sb_scn_store_matches(const sb_scn_t *s, const sb_key_t *key, int r,
                         const char *db, int verbose);

/* Waits up to `seconds` for both stores to match; calls `tick` (may be
 * NULL) once a second. Returns 1 once they match. */
int sb_scn_wait_stores(const sb_scn_t *s, const sb_key_t *key,
                       char db[SB_SCN_REUSERS][600], int seconds,
                       void (*tick)(void *), void *opaque);

/*
 * Reads reuser r's stream (read_committed, `partitions` partitions) as
 * `kc` and fails the test if a record key appears twice or a record was
 * shared after the person's objection. Real broker only: librdkafka
 * 2.0.2's mock shows aborted transactions. Returns the records read.
 */
long sb_scn_check_stream(const sb_scn_t *s, const sb_kafka_cfg_t *kc, int r,
                         int partitions);

#include "proc.h"

/*
 * The scenario's agents as `sharebus` processes: gateways (one group) and
 * one agent per reuser, with their configs, the pseudonymisation key, the
 * reusers' signing keys and stores, and an in-process holder.
 */
#define SB_SCN_MAX_GATEWAYS 2

typedef struct sb_scn_rig_s {
        char dir[256];
        char schemas_dir[400];
        char grants_dir[400];
        char keyfile[600];
        sb_key_t *key;
        int gateways;
        sb_proc_t gw[SB_SCN_MAX_GATEWAYS];
        sb_proc_t ru[SB_SCN_REUSERS];
        char db[SB_SCN_REUSERS][600];
        sb_holder_cfg_t hcfg;
        sb_holder_t *h;
} sb_scn_rig_t;

/* Copies the schemas into dir/schemas and writes the grants into
 * `grants_dir`. */
void sb_scn_rig_prepare(sb_scn_rig_t *g, const sb_scn_t *s, const char *dir,
                        const char *grants_dir);

/*
 * Writes the configs (each kafka section is stolen; gw_kafka serves all
 * `gateways` instances, client ids <dataset>-gw-<i>) and creates the
 * holder. Starts nothing.
 */
void sb_scn_rig_configure(sb_scn_rig_t *g, const sb_scn_t *s,
                          json_t *holder_kafka, json_t *gw_kafka,
                          json_t *ru_kafka[SB_SCN_REUSERS], int gateways);

/*
 * The whole rig on the mock cluster `env` (living in this process): a
 * fresh directory, the scenario's topics (input, state, outputs, receipt
 * topics), and configs whose agents reach `env` in plaintext with the
 * group session timeout at 6 s. Starts nothing.
 */
void sb_scn_rig_mock(sb_scn_rig_t *g, const sb_scn_t *s, sb_mockenv_t *env,
                     int gateways);
/* Removes the directory the mock rig made. */
void sb_scn_rig_mock_release(sb_scn_rig_t *g);

/* Starts the first gateway and both reuser agents. */
void sb_scn_rig_start(sb_scn_rig_t *g);

/*
 * Publishes every batch, SIGKILLing the first gateway or an agent at
 * random points (rand(): seed it) and restarting it, until at least
 * `min_kills` kills; prints the counts.
 */
void sb_scn_run_with_kills(sb_scn_t *s, sb_scn_rig_t *g, int min_kills);

/*
 * Lets the agents catch up for up to `seconds`, fails the test (with the
 * agents' logs) unless both stores then match the model, and stops the
 * agents.
 */
void sb_scn_converge(const sb_scn_t *s, sb_scn_rig_t *g, int seconds);

/* Fails the test if an agent that should run has ended by itself. */
void sb_scn_rig_check_alive(sb_scn_rig_t *g);
/* Stops every process still running (SIGTERM). */
void sb_scn_rig_stop(sb_scn_rig_t *g);
/* Prints every process's last log lines. */
void sb_scn_rig_tail(const sb_scn_rig_t *g);
void sb_scn_rig_release(sb_scn_rig_t *g);

/*
 * After the gateways have stopped (sb_scn_rig_stop()): reads _sb.audit as
 * the administrator `kc` and fails the test unless the chains of this
 * scenario's gateways verify intact with the rig's audit key (no
 * unchained entry, no gap, every entry covered by a signed checkpoint),
 * and unless their delivery entries count, per reuser, exactly `records`
 * (what sb_scn_check_stream() read on each stream). Real broker only, as
 * sb_scn_check_stream().
 */
void sb_scn_check_audit(const sb_scn_t *s, const sb_scn_rig_t *g,
                        const sb_kafka_cfg_t *kc,
                        const long records[SB_SCN_REUSERS]);

#endif
