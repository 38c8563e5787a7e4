/*
 * sharebus - notices to a reuser about its grants, on sb.notice.<reuser>
 * (DESIGN.md §5, "Validity"; docs/messages.md "Notices"): `sharebus admin
 * grants notify`, run periodically by the platform team like `sharebus
 * rights watch`.
 *
 * Validity is one of the limits a grant puts on a reuser (CNIL R5.2-02).
 * The gateway shares nothing outside it; these notices tell the reuser
 * before it happens, so that it can ask for a renewal
 * rather than find its stream silent (CNIL R5.2-03: limits must not cut a
 * reuser off up-to-date data by surprise), and tell it what it must then
 * delete (R6.2-03, R6.2-04: its agent purges the rows past valid_until).
 *
 * For every current grant (its version on _sb.grants, or its file when the
 * topic holds none), at `now`, with a lead `before`:
 *   grant.expiring  approved, valid_until - before <= now < valid_until
 *   grant.expired   approved, valid_until <= now
 *   grant.revoked   revoked on _sb.grants (the version says when)
 * and nothing for a grant without valid_until, suspended, or not approved.
 *
 * Never twice: the key of a notice is "<grant id>/<kind>/<valid_until>"
 * ("<grant id>/grant.revoked/<when revoked>"), and the notice topic is read
 * before sending; a key already there is not sent again (a revocation is
 * final: one grant.revoked per grant). The notice topics keep messages
 * `keep` ms (ops_retention_days), so a notice is only due while the one
 * sent at its first chance is certainly still there: an expired or revoked
 * grant is not notified once `keep` has passed since, and the lead must
 * not exceed `keep`. A renewal (a later valid_until) is a new key: its
 * expiry is notified again in time.
 *
 * No personal data: a notice names the grant, its reuser, dataset and
 * purposes.
 *
 * One notifier at a time: two running at once could both send a notice
 * that neither has seen on the topic yet.
 */
#ifndef SB_NOTICES_H
#define SB_NOTICES_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "err.h"
#include "grants.h"
#include "platform.h"

#define SB_NOTICE_TOPIC_PREFIX "sb.notice."
#define SB_NOTICE_BEFORE_MS    (7 * 24 * 3600 * 1000LL)

typedef enum {
        SB_NOTICE_NONE = 0,
        SB_NOTICE_EXPIRING,
        SB_NOTICE_EXPIRED,
        SB_NOTICE_REVOKED,
} sb_notice_kind_t;

/* "grant.expiring", "grant.expired", "grant.revoked"; "none". */
const char *sb_notice_kind2str(sb_notice_kind_t kind);

/* What deciding and writing a notice need of one grant (all borrowed). */
typedef struct sb_notice_grant_s {
        const char *id;
        const char *reuser;
        const char *dataset;
        const char *status;     /* approved, suspended, revoked */
        const json_t *purposes; /* array of strings; may be NULL */
        int has_valid_until;
        int64_t valid_until_ms;
        int64_t revoked_at_ms; /* revoked on _sb.grants: when; -1: unknown */
} sb_notice_grant_t;

/*
 * The notice `g` is due at `now` (SB_NOTICE_NONE: none), with the lead
 * `before_ms` and notice topics keeping messages `keep_ms` (<= 0: forever).
 * A pure function: whether it was sent already is not its business.
 */
sb_notice_kind_t sb_notice_decide(const sb_notice_grant_t *g, int64_t now,
                                  int64_t before_ms, int64_t keep_ms);

/*
 * The grants to decide on, borrowed from `st` (the current versions on
 * _sb.grants; a tombstone or a value that is not a grant is left out, as
 * is a valid_until that is not a time, which the log says) or from the
 * grant files of `pf`. The caller frees *grantsp.
 */
sb_err_t sb_notice_grants_from_state(const sb_grant_state_t *st,
                                     sb_notice_grant_t **grantsp, size_t *cntp,
                                     char *errstr, size_t errstr_size);
sb_err_t sb_notice_grants_from_platform(const sb_platform_t *pf,
                                        sb_notice_grant_t **grantsp,
                                        size_t *cntp, char *errstr,
                                        size_t errstr_size);

typedef enum {
        SB_NOTICE_DUE = 0,      /* to send (--dry-run: would be sent) */
        SB_NOTICE_ALREADY_SENT, /* its key is on the notice topic */
        SB_NOTICE_SENT,         /* delivered */
        SB_NOTICE_FAILED,       /* not sent or not delivered */
} sb_notice_state_t;

/* "due", "already-sent", "sent", "failed". */
const char *sb_notice_state2str(sb_notice_state_t state);

typedef struct sb_notice_s {
        sb_notice_kind_t kind;
        sb_notice_state_t state;
        char *grant_id;
        char *reuser;
        char *topic;            /* sb.notice.<reuser> */
        char *key;              /* <grant id>/<kind>/<valid_until or when> */
        char *value;            /* compact JSON */
        int64_t days_left;      /* expiring: whole days left, rounded up */
        rd_kafka_resp_err_t dr; /* delivery report */
} sb_notice_t;

/*
 * The notice of `kind` for `g` at `now`: key and value (docs/messages.md
 * "Notices"); `contact` is whom the reuser asks for a renewal (NULL: the
 * platform team). Release it with sb_notice_release().
 */
sb_err_t sb_notice_make(const sb_notice_grant_t *g, sb_notice_kind_t kind,
                        int64_t now, const char *contact, sb_notice_t *n,
                        char *errstr, size_t errstr_size);
void sb_notice_release(sb_notice_t *n);

/* One pass of the notifier: what was due, and what became of it. */
typedef struct sb_notice_pass_s {
        int64_t now;
        int from_files;    /* the grant files: _sb.grants empty or absent */
        size_t grant_cnt;  /* grants decided on */
        size_t undeclared; /* due for a reuser the platform does not declare */
        sb_notice_t *notices; /* sorted by topic, then key */
        size_t cnt, cap;
        size_t due, already, sent, failed;
} sb_notice_pass_t;

void sb_notice_pass_release(sb_notice_pass_t *pass);

typedef struct sb_notifier_s sb_notifier_t;

/*
 * A notifier connecting as the platform administrator of `cfg` (borrowed);
 * notices name `sharebus://admin/<client id>` as their source and
 * cfg->notice_contact as whom to ask for a renewal. NULL and errstr on
 * error; free with sb_notifier_destroy().
 */
sb_notifier_t *sb_notifier_new(const sb_admin_cfg_t *cfg, char *errstr,
                               size_t errstr_size);
void sb_notifier_destroy(sb_notifier_t *nt);

/*
 * One pass at `now`: reads _sb.grants (or takes the grant files of `pf`
 * when it holds nothing), decides, reads the notice topic of each reuser
 * with a notice due, and sends what is not there yet with the idempotent
 * producer (admin/producer.h), checking every delivery; with `dry_run`
 * nothing is sent. `pass` is filled in every case (release it). A reuser
 * whose notice topic cannot be read gets nothing this pass, the others
 * theirs; the first error is returned. SB_ERR_INVALID_ARG when `before_ms`
 * exceeds the notice topics' retention (pf->ops_retention_ms).
 */
sb_err_t sb_notifier_run(sb_notifier_t *nt, const sb_platform_t *pf,
                         int64_t now, int64_t before_ms, int dry_run,
                         sb_notice_pass_t *pass, char *errstr,
                         size_t errstr_size);

#endif
