#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static sb_log_level_t sb_log_level = SB_LOG_NOTICE;
static char sb_log_debug[256];
static int sb_log_json;
static pthread_mutex_t sb_log_lock = PTHREAD_MUTEX_INITIALIZER;

void sb_log_set_level(sb_log_level_t level)
{
        sb_log_level = level;
}

void sb_log_set_debug(const char *facilities)
{
        snprintf(sb_log_debug, sizeof(sb_log_debug), "%s",
                 facilities ? facilities : "");
        if (*sb_log_debug)
                sb_log_level = SB_LOG_DEBUG;
}

void sb_log_set_json(int on)
{
        sb_log_json = on;
}

static int sb_log_debug_enabled(const char *fac)
{
        size_t n = strlen(fac);
        const char *p = sb_log_debug;

        if (!strcmp(sb_log_debug, "all"))
                return 1;
        while (*p) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);

                if (len == n && !strncasecmp(p, fac, n))
                        return 1;
                p += len + (end ? 1 : 0);
        }
        return 0;
}

void sb_log(sb_log_level_t level, const char *fac, const char *fmt, ...)
{
        static const char *names[] = {"",     "",       "",     "ERROR",
                                      "WARN", "NOTICE", "INFO", "DEBUG"};
        char msg[2048], ts[64];
        struct timespec now;
        struct tm tm;
        va_list ap;

        if (level > sb_log_level)
                return;
        if (level == SB_LOG_DEBUG && !sb_log_debug_enabled(fac))
                return;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

        pthread_mutex_lock(&sb_log_lock);
        if (sb_log_json) {
                json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
                                      names[level], "fac", fac, "msg", msg);
                char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;

                if (line)
                        fprintf(stderr, "%s\n", line);
                free(line);
                json_decref(o);
        } else {
                fprintf(stderr, "%s %s %s: %s\n", ts, names[level], fac, msg);
        }
        pthread_mutex_unlock(&sb_log_lock);
}
