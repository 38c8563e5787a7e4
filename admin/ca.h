/*
 * sharebus - the platform CA and short-lived certificates (OpenSSL).
 *
 * A CA directory holds:
 *   ca.key         the CA's EC P-256 private key (PKCS#8 PEM, mode 0600)
 *   ca.crt         its self-signed certificate
 *   issued.ndjson  the register: one JSON line per issued certificate
 *
 * A client principal (the certificate's CN, which Kafka maps to the ACL
 * principal) carries a credential generation, e.g. "acme-research.g1": a
 * compromised credential is revoked at once by deleting the ACLs of its
 * generation, and renewal issues the next generation ahead of the expiry of
 * the current one (DESIGN.md §8, R3.7-09, R3.7-21).
 *
 * Functions never print; they return an sb_err_t and fill errstr with a
 * sentence naming the file or value at fault.
 */
#ifndef SB_CA_H
#define SB_CA_H

#include <stddef.h>
#include <time.h>

#include "err.h"

#define SB_CA_KEY_FILE      "ca.key"
#define SB_CA_CRT_FILE      "ca.crt"
#define SB_CA_REGISTER_FILE "issued.ndjson"

#define SB_CA_DEFAULT_NAME   "sharebus platform CA"
#define SB_CA_DEFAULT_DAYS   3650
#define SB_CA_MAX_DAYS       10950
#define SB_CERT_DEFAULT_DAYS 7 /* short-lived client credentials */
#define SB_CERT_MAX_DAYS     825

/* A certificate's CN is at most 64 characters (RFC 5280 ub-common-name). */
#define SB_PRINCIPAL_MAX 64
/* Paths built by this module (dir + "/" + file name). */
#define SB_CA_PATH_MAX 1024
/* "2025-06-01T00:00:00Z" + NUL; years 1000..9999 only. */
#define SB_RFC3339_SIZE 21

/*
 * Creates `dir` (mode 0700; an existing empty-of-CA directory is accepted
 * unless group or others may write to it) with ca.key, ca.crt and an empty
 * issued.ndjson. Every file is created with O_EXCL: an existing CA is never
 * overwritten. `name` is the CA's CN (NULL: SB_CA_DEFAULT_NAME), `days` its
 * lifetime (0: SB_CA_DEFAULT_DAYS, at most SB_CA_MAX_DAYS).
 */
sb_err_t sb_ca_init(const char *dir, const char *name, int days, char *errstr,
                    size_t errstr_size);

/*
 * A certificate request. Times are seconds since the epoch; 0 means unset.
 *   - neither time: valid from now for `days`;
 *   - not_before only: valid from not_before for `days`;
 *   - not_after only: valid from now, or from not_after - `days` when
 *     not_after is already past (an expired certificate, for tests);
 *   - both: that window (then `days` must be 0).
 * The window may not exceed SB_CERT_MAX_DAYS nor outlive the CA.
 */
typedef struct sb_cert_req_s {
        const char *ca_dir;    /* holds ca.key, ca.crt, issued.ndjson */
        const char *out_dir;   /* NAME.key/.crt/.pem go here; NULL: ca_dir */
        const char *principal; /* see sb_principal_check() */
        int server;            /* add serverAuth; allow host-name principals */
        int days;              /* 0: SB_CERT_DEFAULT_DAYS */
        time_t not_before;
        time_t not_after;
        const char *const *dns; /* subjectAltName dNSName entries */
        size_t dns_cnt;
        const char *const *ips; /* subjectAltName iPAddress entries */
        size_t ip_cnt;
} sb_cert_req_t;

typedef enum sb_cert_status_e {
        SB_CERT_VALID,
        SB_CERT_EXPIRED,
        SB_CERT_NOT_YET_VALID,
        SB_CERT_MISSING, /* no file, or the file holds another certificate */
} sb_cert_status_t;

/* "valid", "expired", "not yet valid", "missing". */
const char *sb_cert_status2str(sb_cert_status_t status);

/* One certificate, as issued or as read back from the register. */
typedef struct sb_cert_info_s {
        char principal[SB_PRINCIPAL_MAX + 1];
        char serial[2 * 20 + 1]; /* lowercase hex, no leading zero bytes */
        char sha256[2 * 32 + 1]; /* fingerprint of the DER, lowercase hex */
        time_t not_before;
        time_t not_after;
        time_t issued_at; /* 0 for sb_cert_file_info() */
        int server;
        long generation; /* from the ".gN" suffix; -1 when there is none */
        sb_cert_status_t status;
        char crt_path[SB_CA_PATH_MAX];
} sb_cert_info_t;

/*
 * Checks a principal. A client principal matches
 * ^[a-z][a-z0-9-]*(\.g[0-9]+)?$ (generation at most 9 digits); with
 * `server`, a host name (dot-separated labels of [a-z0-9-] neither starting
 * nor ending with '-') is accepted too. At most SB_PRINCIPAL_MAX characters.
 */
sb_err_t sb_principal_check(const char *name, int server, char *errstr,
                            size_t errstr_size);

/* The N of a ".gN" suffix of a valid client principal, or -1. */
long sb_principal_generation(const char *name);

/*
 * Issues a certificate signed by the CA in req->ca_dir: writes NAME.key
 * (0600), NAME.crt and NAME.pem (0600: key, certificate, CA certificate, the
 * layout of a Kafka PEM keystore) into the output directory, creating it
 * (0700) if needed, and appends a line to the register. Refuses to overwrite
 * any of the three files. The CA key must pass sb_key_file_check(). `out`
 * (may be NULL) receives what was issued.
 */
sb_err_t sb_cert_issue(const sb_cert_req_t *req, sb_cert_info_t *out,
                       char *errstr, size_t errstr_size);

/*
 * Reads the register of the CA in `dir` and checks each entry against its
 * certificate file at time `now` (0: the current time). On success *infosp
 * is an array of *cntp entries, in issue order, that the caller must free()
 * (NULL when the register is empty).
 */
sb_err_t sb_cert_list(const char *dir, time_t now, sb_cert_info_t **infosp,
                      size_t *cntp, char *errstr, size_t errstr_size);

/* Reads a PEM certificate file into `info` (status computed at `now`). */
sb_err_t sb_cert_file_info(const char *path, time_t now, sb_cert_info_t *info,
                           char *errstr, size_t errstr_size);

/* Parses an RFC 3339 date-time ("2025-06-01T00:00:00Z", "...+02:00"). */
sb_err_t sb_rfc3339_parse(const char *s, time_t *tp, char *errstr,
                          size_t errstr_size);
/* Formats `t` as UTC "YYYY-MM-DDTHH:MM:SSZ" into buf. */
void sb_rfc3339_format(time_t t, char buf[SB_RFC3339_SIZE]);

#endif
