/*
 * sharebus - grants (access authorisations) and the projection they imply.
 *
 * A grant says what one reuser may receive from one dataset (DESIGN.md §5).
 * It is validated strictly against the dataset schema, and yields the
 * grant's own output schema: the projection of the dataset schema onto the
 * granted fields, with the subject id replaced by a per-reuser pseudonym.
 * A reuser never receives a schema naming a field it was not granted
 * (R1.0-02, R3.5-08).
 *
 * Each granted field is kept or transformed (transform.h: generalise,
 * truncate, round, pseudonymise), and its output type is the transformed
 * one. history_days and rate are enforced by the gateway, retention_days
 * and valid_until by the reuser agent too; a limit not enforced yet would
 * be refused rather than silently widened.
 * docs/grants.md describes the format.
 */
#ifndef SB_GRANT_H
#define SB_GRANT_H

#include <avro.h>
#include <jansson.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"
#include "schema.h"
#include "transform.h"

/* The output field carrying the subject's per-reuser pseudonym. */
#define SB_PSEUDONYM_FIELD "pseudonym"

typedef struct sb_grant_s {
        char *origin; /* file or description, for messages */
        char *id;
        char *reuser;
        char *dataset;
        char *legal_basis;
        char *contact;
        char *status; /* approved, suspended, revoked */
        json_t *purposes;
        json_t *allowed_ips;
        int has_valid_from, has_valid_until;
        int64_t valid_from_ms;  /* when has_valid_from */
        int64_t valid_until_ms; /* when has_valid_until */
        int history_days;       /* records older than this are not shared; 0: no
                                   limit (DESIGN §5, CNIL R5.2-03) */
        int retention_days;     /* the reuser purges rows older than this; 0: no
                                   limit */
        int64_t rate_per_second; /* rate.records_per_second; 0: no limit */
        int64_t rate_per_day;    /* rate.records_per_day (UTC day); 0: none */
        char *topic;             /* sb.out.<reuser>.<dataset> */
        const sb_schema_t *in;   /* dataset schema (borrowed) */
        sb_schema_t *out;        /* output schema (owned) */
        size_t *map;             /* out field i >= 1 <- in field map[i] */
        sb_transform_t *tr;      /* out field i >= 1 <- tr[i] of in field */
        size_t map_cnt;
        int pseudonymises; /* a field is pseudonymised: project needs ps */
} sb_grant_t;

/*
 * Validates a grant's JSON against the catalog and builds its output
 * schema. Takes a reference to `json`. Errors name `origin` and the key.
 */
sb_grant_t *sb_grant_new(json_t *json, const char *origin,
                         const sb_catalog_t *cat, char *errstr,
                         size_t errstr_size);
sb_grant_t *sb_grant_load(const char *path, const sb_catalog_t *cat,
                          char *errstr, size_t errstr_size);
void sb_grant_destroy(sb_grant_t *g);

/* All *.json grants of `dir`, sorted by file name; ids must be unique. */
sb_err_t sb_grants_load_dir(const char *dir, const sb_catalog_t *cat,
                            sb_grant_t ***grantsp, size_t *cntp, char *errstr,
                            size_t errstr_size);
void sb_grants_destroy(sb_grant_t **grants, size_t cnt);

/* Whether the grant allows sharing at `now_ms` (approved, within window). */
int sb_grant_active(const sb_grant_t *g, int64_t now_ms);

/*
 * Projects a dataset record `in` onto the grant's output value `out`
 * (reset first), with `pseudonym` as the subject and each granted field
 * transformed. `ps` is the pseudonymiser of the grant's reuser and dataset,
 * the one that made `pseudonym`; it may be NULL when g->pseudonymises is 0.
 * Called for every record and every grant: allocates nothing beyond what
 * Avro C does (transform.h).
 */
sb_err_t sb_grant_project(const sb_grant_t *g, const sb_pseudonymiser_t *ps,
                          avro_value_t *in, const char *pseudonym,
                          avro_value_t *out, char *errstr, size_t errstr_size);

/*
 * Builds the output schema JSON of a grant (used by sb_grant_new):
 * `fields[i]` of the dataset transformed by `transforms[i]` (NULL: all
 * kept), in the order given.
 */
json_t *sb_grant_output_schema_json(const sb_schema_t *in, const char *grant_id,
                                    const char *const *fields,
                                    const sb_transform_t *transforms,
                                    size_t field_cnt, char *errstr,
                                    size_t errstr_size);

#endif
