#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

const char *sb_proc_bin(void)
{
        const char *b = getenv("SB_BIN");

        SB_CHECK(b && *b, "SB_BIN is not set (the sharebus binary to test)");
        return b;
}

void sb_proc_init(sb_proc_t *p, const char *name, const char *dir,
                  const char *cmd1, const char *cmd2, const char *config)
{
        int a = 0;

        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", name);
        snprintf(p->config, sizeof(p->config), "%s", config);
        snprintf(p->log, sizeof(p->log), "%s/%s.log", dir, name);
        p->args[a++] = "sharebus";
        p->args[a++] = cmd1;
        if (cmd2)
                p->args[a++] = cmd2;
        p->args[a++] = "--config";
        p->args[a++] = p->config;
        p->args[a] = NULL;
}

void sb_proc_start(sb_proc_t *p)
{
        pid_t pid = fork();

        SB_CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

                /* A test that fails (exit) or times out (killed) must not
                 * leave its agents running. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);

                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                        close(fd);
                }
                execv(sb_proc_bin(), (char *const *)p->args);
                _exit(127);
        }
        p->pid = pid;
}

void sb_proc_tail(const sb_proc_t *p)
{
        char cmd[700];

        fprintf(stderr, "--- last lines of %s:\n", p->log);
        snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", p->log);
        if (system(cmd) != 0)
                fprintf(stderr, "(no log)\n");
}

void sb_proc_check_alive(sb_proc_t *p)
{
        int status;

        if (p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == p->pid) {
                p->pid = 0;
                sb_proc_tail(p);
                SB_TEST_FAIL("%s exited by itself (status %d)", p->name,
                             status);
        }
}

void sb_proc_kill9(sb_proc_t *p)
{
        sb_proc_check_alive(p);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
        p->kills++;
}

int sb_proc_stop(sb_proc_t *p)
{
        int i, status;

        if (p->pid <= 0)
                return -1;
        kill(p->pid, SIGTERM);
        for (i = 0; i < 150; i++) {
                if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
                        p->pid = 0;
                        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                }
                usleep(100 * 1000);
        }
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
        return -1;
}
