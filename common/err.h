/*
 * sharebus - error codes shared by every program.
 *
 * Functions that can fail return an sb_err_t and fill a caller-supplied
 * `char *errstr, size_t errstr_size` with a sentence naming the file, line,
 * field or topic at fault (see STYLE.md).
 */
#ifndef SB_ERR_H
#define SB_ERR_H

#include <stddef.h>

typedef enum sb_err_e {
        SB_OK = 0,
        SB_ERR_INVALID_ARG, /* bad argument or option */
        SB_ERR_IO,          /* file or system call failed */
        SB_ERR_CONFIG,      /* configuration file invalid */
        SB_ERR_SCHEMA,      /* schema invalid or not found */
        SB_ERR_VALIDATION,  /* data does not match its schema */
        SB_ERR_KAFKA,       /* Kafka client error */
        SB_ERR_CRYPTO,      /* key or signature problem */
        SB_ERR_STORE,       /* local store (SQLite, PostgreSQL) error */
        SB_ERR_GRANT,       /* grant invalid */
        SB_ERR_NOMEM,       /* out of memory */
        SB_ERR_NOT_FOUND,   /* named thing does not exist */
        SB_ERR_TLS_POLICY,  /* transport security policy refused */
        SB_ERR_INTERRUPTED, /* stopped by a signal */
        SB_ERR_STATE,       /* gateway state changelog unreadable */
        SB_ERR__CNT
} sb_err_t;

/* Returns a short static description of `err`. */
const char *sb_err2str(sb_err_t err);

/* snprintf into errstr, tolerant of errstr == NULL. Returns `err`. */
sb_err_t sb_seterr(char *errstr, size_t errstr_size, sb_err_t err,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
