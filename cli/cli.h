/*
 * sharebus - command-line front end: one binary, git-style subcommands.
 * Each command lives in its own cli/cmd_<name>.c.
 */
#ifndef SB_CLI_H
#define SB_CLI_H

#include <signal.h>
#include <stdint.h>

/* Exit codes, documented in docs/cli.md. */
#define SB_EXIT_OK      0
#define SB_EXIT_ERROR   1 /* configuration, Kafka or store error */
#define SB_EXIT_USAGE   2 /* bad command line */
#define SB_EXIT_INVALID 3 /* input invalid: nothing published */
#define SB_EXIT_PARTIAL 4 /* published, some lines rejected */
#define SB_EXIT_CHECK   5 /* a check failed (demo) */
#define SB_EXIT_DRIFT   6 /* plan: the cluster differs from the declaration */
#define SB_EXIT_PENDING 7 /* rights: some receipts are pending or overdue */
#define SB_EXIT_BROKEN  8 /* audit: the log is broken */
#define SB_EXIT_ALERTS  9 /* audit watch --once|--dry-run: alerts raised */

typedef struct sb_cmd_s {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} sb_cmd_t;

int sb_cmd_holder(int argc, char **argv);
int sb_cmd_gateway(int argc, char **argv);
int sb_cmd_reuser(int argc, char **argv);
int sb_cmd_keys(int argc, char **argv);
int sb_cmd_demo(int argc, char **argv);
int sb_cmd_config(int argc, char **argv);
int sb_cmd_admin(int argc, char **argv);
int sb_cmd_sample(int argc, char **argv);
int sb_cmd_rights(int argc, char **argv);
int sb_cmd_audit(int argc, char **argv);
int sb_cmd_transparency(int argc, char **argv);

/* admin subcommands implemented outside cmd_admin.c */
int sb_admin_cmd_topics(int argc, char **argv);
int sb_admin_cmd_acls(int argc, char **argv);
int sb_admin_cmd_grants(int argc, char **argv);
/* admin grants notify, in cmd_admin_notify.c */
int sb_admin_grants_notify(int argc, char **argv);

/* Set by SIGINT/SIGTERM; long-running commands poll it. */
extern volatile sig_atomic_t sb_cli_stop;
void sb_cli_install_signals(void);
/* Sleeps `ms`, waking up early on SIGINT/SIGTERM. */
void sb_cli_wait(int64_t ms);

/* Common options: -v (info), -d FACILITIES (debug), --log-json. */
int sb_cli_log_option(int opt, const char *arg);

#endif
