#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *sb_err_descs[SB_ERR__CNT] = {
    [SB_OK] = "success",
    [SB_ERR_INVALID_ARG] = "invalid argument",
    [SB_ERR_IO] = "input/output error",
    [SB_ERR_CONFIG] = "invalid configuration",
    [SB_ERR_SCHEMA] = "schema error",
    [SB_ERR_VALIDATION] = "validation failed",
    [SB_ERR_KAFKA] = "Kafka error",
    [SB_ERR_CRYPTO] = "cryptographic error",
    [SB_ERR_STORE] = "store error",
    [SB_ERR_GRANT] = "invalid grant",
    [SB_ERR_NOMEM] = "out of memory",
    [SB_ERR_NOT_FOUND] = "not found",
    [SB_ERR_TLS_POLICY] = "transport security policy violation",
    [SB_ERR_INTERRUPTED] = "interrupted",
    [SB_ERR_STATE] = "gateway state error",
};

const char *sb_err2str(sb_err_t err)
{
        if ((int)err < 0 || err >= SB_ERR__CNT)
                return "unknown error";
        return sb_err_descs[err];
}

sb_err_t sb_seterr(char *errstr, size_t errstr_size, sb_err_t err,
                   const char *fmt, ...)
{
        va_list ap;

        if (!errstr || errstr_size == 0)
                return err;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return err;
}
