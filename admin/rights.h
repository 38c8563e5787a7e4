/*
 * sharebus - where each rights event stands: which reusers the gateway
 * notified (its "rights.propagate" entry on _sb.audit) and which of them
 * acknowledged it with a signed receipt on sb.ack.<reuser> (DESIGN.md §6;
 * GDPR art. 19; CNIL R3.6-03, R4.3-20, R6.2-05). `sharebus rights status`
 * prints one event; `sharebus rights watch` raises an alert on _sb.alerts
 * for every receipt overdue or invalid (R4.3-17), once.
 *
 * A reuser that never received the subject is not notified and owes no
 * receipt. For a reuser that was notified, the state is:
 *   acknowledged  a receipt whose fields match the event and whose
 *                 signature verifies with a key declared for the reuser in
 *                 the platform ("receipt_keys"), or, when it declares none,
 *                 whose signature could not be checked ("key unknown");
 *   invalid       only receipts that do not check out (bad signature,
 *                 fields of another event or reuser, undecodable): never
 *                 counted as acknowledged;
 *   overdue       no receipt, and the deadline after the notice passed;
 *   pending       no receipt yet, within the deadline.
 *
 * Topics are read from the beginning to the high watermarks taken before
 * reading (read_committed), each read bounded by the admin timeout_ms.
 * Nothing here names a subject: the audit has no subject id, and receipts'
 * pseudonyms are never reported.
 *
 * `rights watch` also records in _sb.audit, once, each receipt whose
 * signature verifies with a declared receipt key and whose fields match
 * its event: a "receipt" entry in the chain sb-admin-rights (CNIL
 * R4.3-12). A receipt is known by its reuser and its offset in
 * sb.ack.<reuser> (one partition). Receipts that do not check out are not
 * recorded (they raise receipt.invalid), nor are those of a reuser that
 * declares no receipt key, until it declares one.
 */
#ifndef SB_RIGHTS_H
#define SB_RIGHTS_H

#include <jansson.h>
#include <stdint.h>

#include "alerts.h"
#include "err.h"
#include "platform.h"
#include "sign.h"

#define SB_RIGHTS_AUDIT_TOPIC   "_sb.audit"
#define SB_RIGHTS_ALERTS_TOPIC  SB_ALERTS_TOPIC
#define SB_RIGHTS_ALERT_OVERDUE "receipt.overdue"
#define SB_RIGHTS_ALERT_INVALID "receipt.invalid"
#define SB_RIGHTS_AUDIT_OP      "receipt"
/* The chain, and transactional.id, of the receipt entries. */
#define SB_RIGHTS_AUDIT_CHAIN "sb-admin-rights"

typedef enum {
        SB_RIGHTS_PENDING = 0,
        SB_RIGHTS_ACKNOWLEDGED,
        SB_RIGHTS_OVERDUE,
        SB_RIGHTS_INVALID,
} sb_rights_state_t;

/* "pending", "acknowledged", "overdue", "invalid". */
const char *sb_rights_state2str(sb_rights_state_t state);

typedef enum {
        SB_RIGHTS_SIG_NONE = 0,    /* no receipt */
        SB_RIGHTS_SIG_VERIFIED,    /* verifies with a declared key */
        SB_RIGHTS_SIG_KEY_UNKNOWN, /* no key declared: not checked */
        SB_RIGHTS_SIG_BAD,         /* does not verify with a declared key */
} sb_rights_sig_t;

/* "none", "verified", "key-unknown", "bad". */
const char *sb_rights_sig2str(sb_rights_sig_t sig);

/* One receipt, checked against the event it claims to acknowledge. */
typedef struct sb_rights_receipt_s {
        int valid;
        sb_rights_sig_t sig;
        char key_id[SB_KEY_ID_HEXLEN + 1]; /* header sb_key_id, "" if none */
        int64_t applied_at;                /* valid: when it was applied */
        int64_t rows;                      /* valid: rows changed */
        int64_t offset;   /* in sb.ack.<reuser>; -1 when not read there */
        char reason[256]; /* !valid: why */
} sb_rights_receipt_t;

/* What a receipt must say: the event's id, dataset, type, and the reuser
 * whose topic it came on. */
typedef struct sb_rights_expect_s {
        const char *event_id;
        const char *reuser;
        const char *dataset;
        const char *type;
} sb_rights_expect_t;

/*
 * Checks one receipt value (single-object encoded with `schema`, the
 * receipt schema) and its sb_sig / sb_key_id headers (NULL when absent)
 * against `exp` and the reuser's declared public keys (`key_cnt` may be
 * 0: the signature is then not checked). The verdict goes to *out;
 * returns an error only when the check could not run (out of memory).
 */
sb_err_t sb_rights_receipt_check(
    const sb_schema_t *schema, const sb_rights_expect_t *exp,
    const unsigned char (*keys)[SB_SIGN_PUBLIC_BYTES], size_t key_cnt,
    const void *value, size_t len, const char *sig_hex, const char *key_id,
    sb_rights_receipt_t *out, char *errstr, size_t errstr_size);

/* One notified reuser of one event. */
typedef struct sb_rights_ack_s {
        char *reuser;
        sb_rights_state_t state;
        sb_rights_receipt_t receipt; /* the first valid receipt, if any */
        sb_rights_receipt_t bad;     /* the first invalid receipt, if any */
        size_t receipt_cnt;          /* receipts read (duplicates included) */
        size_t invalid_cnt;          /* of which did not check out */
        size_t audited_cnt; /* valid ones with a "receipt" audit entry */
        char reason[300];   /* overdue, invalid: why */
} sb_rights_ack_t;

typedef struct sb_rights_event_s {
        char *event_id;
        char *type; /* ce_type, e.g. sharebus.rights.erasure */
        char *dataset;
        char *requested_time;  /* when the person asked, RFC 3339 */
        int64_t notified_at;   /* the audit entry's "at" (ms) */
        sb_rights_ack_t *acks; /* one per reuser notified */
        size_t ack_cnt;
} sb_rights_event_t;

typedef struct sb_rights_report_s {
        int64_t now;         /* when the states were decided */
        int64_t deadline_ms; /* notice to receipt */
        sb_rights_event_t *events;
        size_t event_cnt;
        size_t cap;        /* private: events allocated */
        json_t *index;     /* private: event id -> index in events */
        json_t *audited;   /* private: "<reuser>/<offset>" of receipt
                              entries read on _sb.audit */
        json_t *unaudited; /* private: receipt entries to write */
} sb_rights_report_t;

void sb_rights_report_release(sb_rights_report_t *rep);

/*
 * Building a report from audit entries read elsewhere (`sharebus
 * transparency subject` reads _sb.audit or an export once for several
 * purposes): start from a zeroed report and add each "rights.propagate"
 * entry (borrowed); entries of one event id are merged. SB_ERR_INVALID_ARG
 * when it lacks event_id, type, dataset, at or notified; SB_ERR_NOMEM.
 * Then sb_rights_check_receipts() reads the receipts and decides, or
 * sb_rights_report_decide() decides on the entries alone.
 */
sb_err_t sb_rights_report_add(sb_rights_report_t *rep, const json_t *entry,
                              char *errstr, size_t errstr_size);

/*
 * Decides each (event, reuser) state at `now` from the receipts recorded
 * in `rep` and rep->deadline_ms: with none recorded, every reuser is
 * pending or overdue.
 */
void sb_rights_report_decide(sb_rights_report_t *rep, int64_t now);

typedef struct sb_rights_s sb_rights_t;

/*
 * A reader of the audit and receipt topics, as the platform administrator
 * (`cfg`; a Kafka super user). Receipt keys and the receipt schema come
 * from `pf`. Borrows both: they must outlive the result, which the caller
 * frees with sb_rights_destroy().
 */
sb_rights_t *sb_rights_new(const sb_admin_cfg_t *cfg, const sb_platform_t *pf,
                           char *errstr, size_t errstr_size);
void sb_rights_destroy(sb_rights_t *r);

/*
 * Reads _sb.audit for `event_id` (every event when NULL), then the receipt
 * topic of each reuser notified, and fills `rep` (release it in every
 * case). An event id without an audit entry is SB_ERR_NOT_FOUND.
 */
sb_err_t sb_rights_scan(sb_rights_t *r, const char *event_id,
                        int64_t deadline_ms, sb_rights_report_t *rep,
                        char *errstr, size_t errstr_size);

/*
 * Reads the receipt topic of every reuser notified of an event of `rep`
 * (built with sb_rights_report_add()), checks the receipts and decides the
 * states now, with `deadline_ms`.
 */
sb_err_t sb_rights_check_receipts(sb_rights_t *r, sb_rights_report_t *rep,
                                  int64_t deadline_ms, char *errstr,
                                  size_t errstr_size);

/*
 * Appends to `alerts` (admin/alerts.h) the alert of every (event, reuser)
 * of `rep` that is overdue or invalid: key "<event id>/<reuser>", "alert"
 * receipt.overdue or receipt.invalid. SB_ERR_NOMEM.
 */
sb_err_t sb_rights_alerts(const sb_rights_report_t *rep, json_t *alerts,
                          char *errstr, size_t errstr_size);

/*
 * Publishes those alerts with sb_alerter_raise(): none that _sb.alerts
 * already holds for that pair. *raisedp: how many were published.
 */
sb_err_t sb_rights_alert(sb_rights_t *r, const sb_rights_report_t *rep,
                         size_t *raisedp, char *errstr, size_t errstr_size);

/*
 * Writes a "receipt" entry on _sb.audit for each verified receipt that
 * sb_rights_scan() found without one (chain SB_RIGHTS_AUDIT_CHAIN, resumed
 * from the log, closed by a checkpoint signed by the admin config's
 * audit_key_file), in one transaction. *auditedp: how many. The
 * transactional.id is the chain id: a second watcher fences the first,
 * whose next write fails, so the chain never forks; two watchers running
 * at once may still both record a receipt read before either wrote it,
 * so run one watcher.
 */
sb_err_t sb_rights_audit(sb_rights_t *r, const sb_rights_report_t *rep,
                         size_t *auditedp, char *errstr, size_t errstr_size);

/* sb_rights_scan() of every event, then sb_rights_alert() and
 * sb_rights_audit(). `auditedp` may be NULL. */
sb_err_t sb_rights_watch_once(sb_rights_t *r, int64_t deadline_ms,
                              size_t *raisedp, size_t *auditedp, char *errstr,
                              size_t errstr_size);

/*
 * A duration: a whole number followed by ms, s, m, h or d, or a plain
 * number of milliseconds ("30s", "15m", "24h", "7d", "1500"). Returns 0
 * and sets *msp, or -1 when `s` is not one or does not fit.
 */
int sb_rights_parse_duration(const char *s, int64_t *msp);

/* `ms` as the largest whole unit that divides it ("24h", "90s", "1500ms"). */
void sb_rights_format_duration(int64_t ms, char *out, size_t size);

#endif
