/*
 * sharebus - a Kafka-based sharing bus for personal data, following the
 * CNIL recommendation on sharing personal data through APIs.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "envelope.h"
#include "log.h"

#ifndef SB_VERSION
#define SB_VERSION "0.1.0"
#endif

volatile sig_atomic_t sb_cli_stop;

static void sb_cli_on_signal(int sig)
{
        (void)sig;
        sb_cli_stop = 1;
}

void sb_cli_install_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = sb_cli_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

void sb_cli_wait(int64_t ms)
{
        struct timespec step = {0, 100 * 1000 * 1000};
        int64_t until = sb_now_ms() + ms;

        while (!sb_cli_stop && sb_now_ms() < until)
                nanosleep(&step, NULL);
}

int sb_cli_log_option(int opt, const char *arg)
{
        switch (opt) {
        case 'v':
                sb_log_set_level(SB_LOG_INFO);
                return 1;
        case 'd':
                sb_log_set_debug(arg);
                return 1;
        case 'J':
                sb_log_set_json(1);
                return 1;
        }
        return 0;
}

static const sb_cmd_t sb_commands[] = {
    {"holder", sb_cmd_holder,
     "data holder: publish validated records and rights events"},
    {"gateway", sb_cmd_gateway,
     "access-control gateway: one minimised stream per reuser"},
    {"reuser", sb_cmd_reuser,
     "reuser agent: store the stream, apply rights, send signed receipts"},
    {"keys", sb_cmd_keys,
     "signing keys: make an Ed25519 key pair (receipts, audit checkpoints)"},
    {"demo", sb_cmd_demo, "run the whole flow on an in-process mock cluster"},
    {"sample", sb_cmd_sample,
     "write synthetic records of the sample dataset (NDJSON)"},
    {"config", sb_cmd_config,
     "print the reference of every configuration file"},
    {"admin", sb_cmd_admin, "platform administration: CA and certificates"},
    {"rights", sb_cmd_rights,
     "rights events: who acknowledged, who is overdue; alerts"},
    {"audit", sb_cmd_audit,
     "audit log: verify its hash chains, export it, usage statistics, "
     "watch it"},
    {"transparency", sb_cmd_transparency,
     "what the audit says: one person's report, the public registry"},
    {NULL, NULL, NULL},
};

static void sb_usage(FILE *fp)
{
        const sb_cmd_t *c;

        fprintf(fp, "usage: sharebus <command> [options]\n\ncommands:\n");
        for (c = sb_commands; c->name; c++)
                fprintf(fp, "  %-12s %s\n", c->name, c->help);
        fprintf(fp, "\nRun 'sharebus <command> --help' for a command's "
                    "options.\n");
}

int main(int argc, char **argv)
{
        const sb_cmd_t *c;

        if (argc < 2) {
                sb_usage(stderr);
                return SB_EXIT_USAGE;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            !strcmp(argv[1], "help")) {
                sb_usage(stdout);
                return SB_EXIT_OK;
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
                printf("sharebus %s\n", SB_VERSION);
                return SB_EXIT_OK;
        }
        for (c = sb_commands; c->name; c++)
                if (!strcmp(c->name, argv[1]))
                        return c->fn(argc - 1, argv + 1);
        fprintf(stderr, "sharebus: '%s' is not a command\n\n", argv[1]);
        sb_usage(stderr);
        return SB_EXIT_USAGE;
}
