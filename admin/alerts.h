/*
 * sharebus - raising alerts on _sb.alerts for the platform team (CNIL
 * R4.3-16, R4.3-17, R4.3-18): what `sharebus rights watch` and `sharebus
 * audit watch` share.
 *
 * An alert is a key and a JSON object whose "alert" names its kind
 * (docs/messages.md, "Alerts"). Watchers scan again and again and find the
 * same problems each time, so before publishing, _sb.alerts is read and an
 * alert whose key and kind are already there is not raised again: each
 * problem is raised once (until _sb.alerts' retention forgets it).
 * Published with an idempotent producer (acks=all); every delivery report
 * is checked.
 */
#ifndef SB_ALERTS_H
#define SB_ALERTS_H

#include <jansson.h>

#include "err.h"
#include "platform.h"
#include "reader.h"

#define SB_ALERTS_TOPIC "_sb.alerts"

typedef struct sb_alerter_s sb_alerter_t;

/*
 * An alerter connecting with `cfg`, reading _sb.alerts with `rd`; borrows
 * both (they must outlive it). The producer is made on first use. NULL
 * when out of memory.
 */
sb_alerter_t *sb_alerter_new(const sb_admin_cfg_t *cfg, sb_reader_t *rd);
/* Waits for what is in flight (timeout_ms), then frees; NULL is allowed. */
void sb_alerter_destroy(sb_alerter_t *al);

/*
 * A candidate alert for sb_alerter_raise(), appended to the array
 * `alerts`: {"key": key, "value": value}; steals `value` (an object with
 * a string "alert" and a string "reason"). -1 when out of memory (value
 * is released).
 */
int sb_alerts_add(json_t *alerts, const char *key, json_t *value);

/*
 * Publishes each alert of `alerts` (built with sb_alerts_add()) unless
 * _sb.alerts already holds one with the same key and "alert", nor did an
 * earlier one of `alerts`. When nothing is to be raised, _sb.alerts is not
 * read. Each alert delivered is appended to `raised` (may be NULL), and
 * counted in *raisedp, even when others failed.
 */
sb_err_t sb_alerter_raise(sb_alerter_t *al, const json_t *alerts,
                          json_t *raised, size_t *raisedp, char *errstr,
                          size_t errstr_size);

#endif
