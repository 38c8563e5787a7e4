/*
 * sharebus - certificates issued by the platform CA, recorded in _sb.audit
 * (DESIGN.md §8, §9; CNIL R4.3-12, R3.7-09): one "cert.issue" entry per
 * certificate, in the chain sb-admin-ca (admin/auditlog.h), closed by a
 * checkpoint signed by the admin config's audit_key_file.
 *
 * The CA may be kept offline, away from Kafka: `admin cert issue` then only
 * writes the register (DIR/issued.ndjson), and `admin cert publish`, run
 * later where the cluster is reachable, records every certificate of the
 * register that _sb.audit does not hold yet, known by its serial. No entry
 * holds key material: the certificate's principal, serial, validity,
 * kind and fingerprint only.
 */
#ifndef SB_CERTAUDIT_H
#define SB_CERTAUDIT_H

#include <jansson.h>
#include <stddef.h>

#include "ca.h"
#include "err.h"
#include "platform.h"

#define SB_CERTAUDIT_OP    "cert.issue"
#define SB_CERTAUDIT_CHAIN "sb-admin-ca" /* and transactional.id */

/*
 * The entry of `ci` (new reference; NULL when out of memory):
 * {"op": "cert.issue", "author", "principal", "serial", "not_before",
 *  "not_after", "issued_at" (RFC 3339, UTC), "server" (bool),
 *  "fingerprint_sha256"}.
 */
json_t *sb_certaudit_entry(const char *author, const sb_cert_info_t *ci);

/* Writes the entry of `ci`, just issued, as the administrator of `cfg`. */
sb_err_t sb_certaudit_issued(const sb_admin_cfg_t *cfg,
                             const sb_cert_info_t *ci, char *errstr,
                             size_t errstr_size);

/*
 * Writes an entry for each certificate of the register of the CA in
 * `ca_dir` whose serial no cert.issue entry of _sb.audit holds, in one
 * transaction, after the chain's writer fenced any other (so a publish
 * run twice at once cannot record a certificate twice). *addedp: entries
 * written; *heldp: certificates already recorded. Idempotent.
 */
sb_err_t sb_certaudit_publish(const sb_admin_cfg_t *cfg, const char *ca_dir,
                              size_t *addedp, size_t *heldp, char *errstr,
                              size_t errstr_size);

#endif
