/*
 * sharebus - logging: levels, a short facility tag, optional JSON lines.
 *
 *   sb_log(SB_LOG_INFO, "GATEWAY", "assigned %d partitions", n);
 *
 * Output goes to stderr. SB_LOG_DEBUG lines appear only when the facility is
 * enabled with sb_log_set_debug("gateway,kafka") or "all".
 */
#ifndef SB_LOG_H
#define SB_LOG_H

typedef enum {
        SB_LOG_ERR = 3,
        SB_LOG_WARN = 4,
        SB_LOG_NOTICE = 5,
        SB_LOG_INFO = 6,
        SB_LOG_DEBUG = 7,
} sb_log_level_t;

/* Messages above `level` are not printed (default SB_LOG_NOTICE). */
void sb_log_set_level(sb_log_level_t level);
/* Comma-separated facility names to debug, or "all". */
void sb_log_set_debug(const char *facilities);
/* Emit JSON lines instead of text. */
void sb_log_set_json(int on);

void sb_log(sb_log_level_t level, const char *fac, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
