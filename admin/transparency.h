/*
 * sharebus - transparency from the audit log (DESIGN.md §9; CNIL R3.4-02,
 * R3.4-04, R3.4-05, R3.4-06, R3.4-09, R4.3-21, R4.3-22, R5.4-14,
 * R5.4-18…24, R6.1-02): what _sb.audit says, aggregated
 *   - for one person (`sharebus transparency subject`): which reusers
 *     received which categories of their data, when, for which purposes
 *     and on which legal basis; when they were left out and why; and where
 *     each of their rights requests stands;
 *   - for the public (`sharebus transparency registry`): the reusers, their
 *     purposes, legal bases and data categories from the platform's active
 *     grants, and the volumes delivered per month;
 *   - for the platform team (`sharebus audit stats`): records, distinct
 *     subjects and bytes per reuser and dataset per day or month, and
 *     exclusions per reason.
 *
 * Everything here aggregates a stream of audit entries (JSON objects, in
 * log order), so the same code runs on the topic, on an export and in unit
 * tests. The entries it reads (written by the gateway; docs/messages.md):
 *   delivery          reuser, dataset, grant, purposes, legal_basis, fields,
 *                     records, bytes, subjects (audit pseudonyms, sorted,
 *                     at most 1000), first_at, last_at, at;
 *   exclusion         reuser, dataset, grant, reason, records, subjects, at;
 *   rights.propagate  event_id, type, dataset, purposes, notified,
 *                     requested_time, subject_ps, at.
 * Other entries are ignored, and so are entries of these kinds that lack a
 * field needed (counted as skipped).
 *
 * No output of this module holds a subject id or an audit pseudonym: a
 * person is found by computing their pseudonym, never by printing one.
 */
#ifndef SB_TRANSPARENCY_H
#define SB_TRANSPARENCY_H

#include <jansson.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"
#include "platform.h"
#include "reader.h"
#include "rights.h"

#define SB_TP_OP_DELIVERY  "delivery"
#define SB_TP_OP_EXCLUSION "exclusion"
#define SB_TP_OP_RIGHTS    "rights.propagate"
/* The gateway lists at most this many subjects per entry. */
#define SB_TP_SUBJECTS_MAX 1000

/*
 * Reading entries
 */

/* Called with each entry (borrowed); an error stops the read. */
typedef sb_err_t (*sb_tp_entry_cb_t)(const json_t *entry, void *opaque,
                                     char *errstr, size_t errstr_size);

/* Every committed entry of _sb.audit, in log order within a partition;
 * values that are not JSON objects are skipped. */
sb_err_t sb_tp_read_topic(sb_reader_t *rd, sb_tp_entry_cb_t cb, void *opaque,
                          char *errstr, size_t errstr_size);

/* Every line of an export (`sharebus audit export`), without the keys the
 * export added ("_offset", ...); blank and malformed lines are skipped. */
sb_err_t sb_tp_read_file(const char *path, sb_tp_entry_cb_t cb, void *opaque,
                         char *errstr, size_t errstr_size);

/*
 * One person
 */

typedef struct sb_tp_subject_s sb_tp_subject_t;

/*
 * A report on the person `subject_id` of the datasets `datasets` (NULL or
 * empty: every dataset met), found by their audit pseudonym under `master`
 * (the gateway's master key; borrowed, must outlive the result). Only
 * entries whose "at" is in [from_ms, to_ms) count (-1: open). The id is
 * copied and wiped on destroy. NULL and errstr on error.
 */
sb_tp_subject_t *sb_tp_subject_new(const sb_key_t *master,
                                   const char *subject_id,
                                   const json_t *datasets, int64_t from_ms,
                                   int64_t to_ms, char *errstr,
                                   size_t errstr_size);
void sb_tp_subject_destroy(sb_tp_subject_t *s);

/* An sb_tp_entry_cb_t: `opaque` is the sb_tp_subject_t. */
sb_err_t sb_tp_subject_feed(const json_t *entry, void *opaque, char *errstr,
                            size_t errstr_size);

/*
 * The person's rights requests so far, to give to
 * sb_rights_check_receipts() before the report (on the topic); borrowed.
 */
sb_rights_report_t *sb_tp_subject_rights(sb_tp_subject_t *s);

/*
 * The report (docs/cli.md has its schema), as a new JSON object. `pf`
 * (may be NULL) gives the plain-language doc of each data category.
 * `receipts_checked`: sb_rights_check_receipts() ran on the rights
 * report; when 0, each notified reuser is "notified" and nothing is said
 * of receipts. NULL when out of memory.
 */
json_t *sb_tp_subject_report(sb_tp_subject_t *s, const sb_platform_t *pf,
                             int receipts_checked, int64_t now);

/*
 * The report as a self-contained HTML page (inline CSS, no script, no
 * external link) in `lang` ("fr" or "en"), every value escaped. The
 * person's id appears in the heading only. The caller frees the result;
 * NULL for another language or when out of memory.
 */
char *sb_tp_subject_html(const json_t *report, const char *subject_id,
                         const char *lang);

/*
 * Volumes: deliveries and exclusions per period and per reuser and/or
 * dataset
 */

typedef enum {
        SB_TP_DAY = 0,
        SB_TP_MONTH,
} sb_tp_period_t;

#define SB_TP_BY_REUSER  0x1
#define SB_TP_BY_DATASET 0x2

typedef struct sb_tp_stats_s sb_tp_stats_t;

/* Buckets of `period` keyed by reuser and/or dataset (`by`, at least
 * one); entries whose "at" is in [from_ms, to_ms) (-1: open). */
sb_tp_stats_t *sb_tp_stats_new(sb_tp_period_t period, int by, int64_t from_ms,
                               int64_t to_ms);
void sb_tp_stats_destroy(sb_tp_stats_t *st);

/* An sb_tp_entry_cb_t: `opaque` is the sb_tp_stats_t. */
sb_err_t sb_tp_stats_feed(const json_t *entry, void *opaque, char *errstr,
                          size_t errstr_size);

/*
 * The buckets, sorted by period, reuser, dataset: a new JSON object
 * {"period": "day"|"month", "by": [...], "skipped": n, "rows": [{"period",
 * "reuser", "dataset", "deliveries", "records", "subjects",
 * "subjects_at_least", "bytes", "excluded": {reason: records}}]}. Distinct
 * subjects are distinct (dataset, pseudonym) pairs; "subjects_at_least"
 * says an entry of the bucket listed SB_TP_SUBJECTS_MAX subjects, so the
 * count is a lower bound. NULL when out of memory.
 */
json_t *sb_tp_stats_json(const sb_tp_stats_t *st);

/*
 * The public registry
 */

/*
 * The reusers of `pf`'s active grants at `now` (and any other reuser that
 * received data in `volumes`), each with its grants (dataset, purposes,
 * legal basis, validity, data categories with their docs) and its volumes
 * per month from `volumes` (a SB_TP_MONTH stats by reuser and dataset;
 * may be NULL). A new JSON object; NULL when out of memory.
 */
json_t *sb_tp_registry(const sb_platform_t *pf, const sb_tp_stats_t *volumes,
                       int64_t now);

/* The registry as a self-contained HTML page, as sb_tp_subject_html(). */
char *sb_tp_registry_html(const json_t *registry, const char *lang);

/* "YYYY-MM" into [*from_ms, *to_ms); -1 when it is not a month. */
int sb_tp_parse_month(const char *s, int64_t *from_ms, int64_t *to_ms);

#endif
