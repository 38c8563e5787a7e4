/*
 * sharebus tests - `sharebus` child processes a test starts, kills with
 * SIGKILL and restarts. Their output goes to a log file, shown when a
 * process ends by itself or a check fails.
 */
#ifndef SB_PROC_H
#define SB_PROC_H

#include <sys/types.h>

typedef struct sb_proc_s {
        char name[64];
        char config[600];
        char log[600];
        const char *args[8];
        pid_t pid;
        int kills;
} sb_proc_t;

/* The sharebus binary under test ($SB_BIN, or the one built here). */
const char *sb_proc_bin(void);

/* `sharebus <cmd...> --config <config>`, logging to <dir>/<name>.log. */
void sb_proc_init(sb_proc_t *p, const char *name, const char *dir,
                  const char *cmd1, const char *cmd2, const char *config);
void sb_proc_start(sb_proc_t *p);
/* Fails the test if the process ended by itself. */
void sb_proc_check_alive(sb_proc_t *p);
void sb_proc_kill9(sb_proc_t *p);
/* SIGTERM, then SIGKILL after 15 s. Returns the exit status, or -1 if it
 * had to be killed. */
int sb_proc_stop(sb_proc_t *p);
/* Prints the last lines of the log to stderr. */
void sb_proc_tail(const sb_proc_t *p);

#endif
