/*
 * sharebus - grants kept as files, published to _sb.grants (DESIGN.md §3,
 * §5; docs/messages.md "Grants: `_sb.grants`"): `sharebus admin grants
 * plan|apply|list|show|revoke`. The gateway follows the topic and applies
 * changes while running.
 *
 * The files of the platform's grants_dir are the desired state, the latest
 * value of each key of _sb.grants the actual one; the plan compares them
 * grant by grant:
 *   create     a file whose id is not on the topic
 *   update     a file whose JSON differs from the topic's
 *   unchanged  the same JSON (key order and spacing do not count)
 *   conflict   the topic has the grant revoked and its file does not (a
 *              revoked grant is never reinstated by apply), or another
 *              grant of the same reuser and dataset is on the topic, not
 *              revoked, without a file (revoke it first)
 *   no file    on the topic, not revoked, and no file has its id: reported
 *              as drift, never revoked implicitly (revoke is explicit)
 *   retired    on the topic, revoked, no file: history, nothing to do
 * apply publishes the creates and updates, revoke one grant, each in one
 * transaction (transactional.id sb-admin-grants) with an audit entry per
 * change on _sb.audit. Nothing here ever writes a tombstone.
 */
#ifndef SB_GRANTS_H
#define SB_GRANTS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "platform.h"

#define SB_GRANTS_TOPIC       "_sb.grants"
#define SB_GRANTS_AUDIT_TOPIC "_sb.audit"
#define SB_GRANTS_TXN_ID      "sb-admin-grants"
#define SB_GRANTS_HDR_ORIGIN  "sb_grant_origin"

/* A grant as its file says it: the desired state. */
typedef struct sb_grant_file_s {
        char *id;
        char *origin; /* the file's name in grants_dir, e.g. "g-1.json" */
        json_t *json; /* the file's JSON (owned) */
} sb_grant_file_t;

/*
 * The grant files of the platform (sb_platform_load() has validated them
 * against the schema catalog, naming the file and key at fault), read again
 * as JSON and validated once more, so that what is published is what was
 * checked. Sorted by id. Free with sb_grant_files_destroy().
 */
sb_err_t sb_grant_files_load(const sb_platform_t *pf, sb_grant_file_t **filesp,
                             size_t *cntp, char *errstr, size_t errstr_size);
void sb_grant_files_destroy(sb_grant_file_t *files, size_t cnt);

typedef enum {
        SB_GRANT_V_OBJECT,     /* a JSON object */
        SB_GRANT_V_TOMBSTONE,  /* null value: revoked (never written here) */
        SB_GRANT_V_UNREADABLE, /* not a JSON object */
} sb_grant_vkind_t;

/* The latest version of one grant on _sb.grants. */
typedef struct sb_grant_version_s {
        char *id;
        sb_grant_vkind_t kind;
        json_t *json;     /* SB_GRANT_V_OBJECT: the grant (owned) */
        char *origin;     /* header sb_grant_origin, NULL if absent */
        char *changed_at; /* header ce_time, else the message time */
        char *source;     /* header ce_source, NULL if absent */
        int32_t partition;
        int64_t offset;
} sb_grant_version_t;

/* _sb.grants read to its end: one version per grant id. */
typedef struct sb_grant_state_s {
        sb_grant_version_t *v;
        size_t cnt, cap;
        json_t *index; /* id -> position in v */
} sb_grant_state_t;

/*
 * Takes one message of _sb.grants in: the version of `id` is replaced
 * (the latest value of a key wins). `json` is stolen (NULL: a tombstone);
 * `unreadable` says the value was not a JSON object. The strings are
 * copied; `origin` and `source` may be NULL.
 */
sb_err_t sb_grant_state_put(sb_grant_state_t *st, const char *id, json_t *json,
                            int unreadable, const char *origin,
                            const char *changed_at, const char *source,
                            int32_t partition, int64_t offset);
const sb_grant_version_t *sb_grant_state_get(const sb_grant_state_t *st,
                                             const char *id);
void sb_grant_state_release(sb_grant_state_t *st);

/* A version's status: its "status", "revoked" for a tombstone,
 * "unreadable" for a value that is not a grant. */
const char *sb_grant_version_status(const sb_grant_version_t *v);
int sb_grant_version_revoked(const sb_grant_version_t *v);

typedef enum {
        SB_GRANT_UNCHANGED,
        SB_GRANT_CREATE,
        SB_GRANT_UPDATE,
        SB_GRANT_CONFLICT, /* revoked on the topic, not in its file */
        SB_GRANT_NO_FILE,  /* on the topic, not revoked, no file: drift */
        SB_GRANT_RETIRED,  /* on the topic, revoked, no file */
} sb_grant_action_t;

/* "unchanged", "create", "update", "conflict", "no-file", "retired". */
const char *sb_grant_action2str(sb_grant_action_t action);

typedef struct sb_grant_change_s {
        sb_grant_action_t action;
        const char *id;
        const sb_grant_file_t *file;   /* NULL: no file */
        const sb_grant_version_t *cur; /* NULL: not on the topic */
        json_t *keys;                  /* update: top-level keys that differ */
        const char *change;            /* create, update: the audit's
                                          "created", "updated", "revoked" */
        char *reason;                  /* conflict: why, and what to do */
} sb_grant_change_t;

/* Borrows the files and the state it was made from. */
typedef struct sb_grant_plan_s {
        sb_grant_change_t *changes; /* sorted by id */
        size_t cnt;
        size_t file_cnt;  /* grant files */
        size_t topic_cnt; /* grants on the topic */
} sb_grant_plan_t;

/*
 * The plan from the grant files (the desired state) to the topic state:
 * a pure function, nothing is read or written.
 */
sb_err_t sb_grants_plan(const sb_grant_file_t *files, size_t file_cnt,
                        const sb_grant_state_t *st, sb_grant_plan_t *plan,
                        char *errstr, size_t errstr_size);
void sb_grant_plan_release(sb_grant_plan_t *plan);
/* Changes apply would publish (creates + updates). */
size_t sb_grant_plan_pending(const sb_grant_plan_t *plan);
/* Differences apply leaves for a person (conflicts + no-file). */
size_t sb_grant_plan_drift(const sb_grant_plan_t *plan);
void sb_grant_plan_print(const sb_grant_plan_t *plan, FILE *fp);
json_t *sb_grant_plan_json(const sb_grant_plan_t *plan);

/*
 * What revoking `id` publishes: its version on the topic, else its file
 * (`files` may be NULL), with "status": "revoked". *outp gets a new
 * reference and *originp the file name to send (borrowed; NULL: none).
 * When the topic has it revoked already, *alreadyp is 1, *outp NULL and
 * nothing is to be published. An id that neither has is SB_ERR_NOT_FOUND.
 */
sb_err_t sb_grant_revocation(const char *id, const sb_grant_state_t *st,
                             const sb_grant_file_t *files, size_t file_cnt,
                             json_t **outp, const char **originp, int *alreadyp,
                             char *errstr, size_t errstr_size);

/* The value published for a grant: compact JSON, keys sorted. The caller
 * frees it. */
char *sb_grant_value(const json_t *grant);

/*
 * The _sb.audit entry of one change, before it is chained (a new
 * reference; NULL when out of memory):
 * {"op": "grant.change", "author", "grant_id", "reuser", "dataset",
 *  "change", "status", "at"}.
 */
json_t *sb_grant_audit_entry(const char *author, const char *id,
                             const json_t *grant, const char *change,
                             int64_t at_ms);

/* One grant version to publish. */
typedef struct sb_grant_pub_s {
        const char *id;
        const json_t *json; /* the grant, as published */
        const char *origin; /* its file's name; NULL: no such header */
        const char *change; /* created, updated, revoked */
} sb_grant_pub_t;

typedef struct sb_grantadm_s sb_grantadm_t;

/*
 * A reader (and, after sb_grantadm_writer(), a writer) of _sb.grants as the
 * platform administrator of `cfg` (a Kafka super user). Borrows `cfg`.
 */
sb_grantadm_t *sb_grantadm_new(const sb_admin_cfg_t *cfg, char *errstr,
                               size_t errstr_size);
void sb_grantadm_destroy(sb_grantadm_t *gs);

/*
 * Makes the transactional producer (transactional.id sb-admin-grants) and
 * initialises its transactions, which fences any earlier writer and ends
 * its open transaction; call it before sb_grantadm_read() so that the read
 * sees everything an earlier apply committed. Then reads back where the
 * audit chain of that transactional id stands on _sb.audit, to continue it
 * (common/audit_kafka.h), and loads the config's audit_key_file, which
 * signs a checkpoint at the end of each publication.
 */
sb_err_t sb_grantadm_writer(sb_grantadm_t *gs, char *errstr,
                            size_t errstr_size);

/*
 * Reads _sb.grants from its beginning to the end it had when called
 * (committed messages only; admin/reader.h) into `st` (release it in
 * every case).
 */
sb_err_t sb_grantadm_read(sb_grantadm_t *gs, sb_grant_state_t *st, char *errstr,
                          size_t errstr_size);

/*
 * Publishes `pubs` to _sb.grants and one audit entry each to _sb.audit
 * (chained, then a checkpoint when there is an audit key), all in one
 * transaction, at `at_ms` (ce_time, "at"). On an error nothing is
 * published, except when the commit's outcome is unknown (a timeout), which
 * the error says.
 */
sb_err_t sb_grantadm_publish(sb_grantadm_t *gs, const sb_grant_pub_t *pubs,
                             size_t cnt, int64_t at_ms, char *errstr,
                             size_t errstr_size);

/* The creates and updates of `plan`, published (sb_grantadm_publish()). */
sb_err_t sb_grantadm_apply(sb_grantadm_t *gs, const sb_grant_plan_t *plan,
                           int64_t at_ms, char *errstr, size_t errstr_size);

#endif
