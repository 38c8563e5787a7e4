/*
 * DESIGN.md §7's SIGKILL proof on librdkafka's mock cluster (CNIL
 * R6.2-05; GDPR art. 17-21), the twin of the real-broker test
 * kill9_gateway_and_reusers_keeps_exactly_once_and_rights: the mock
 * cluster lives in this process, the gateway and both reuser agents are
 * `sharebus` processes connected to it, killed with SIGKILL at random
 * points and restarted at least 21 times while the rights scenario
 * (tests/util/scenario.h) flows. Afterwards each store holds exactly the
 * model's rows and marks the restricted persons.
 *
 * What this twin cannot check: the streams. librdkafka 2.0.2's mock keeps
 * no transactional offset commits and shows the messages of aborted
 * transactions to read_committed consumers, so a restarted gateway re-reads
 * its input, and a killed transaction's messages (say, an objection notice
 * whose state change never committed) stay visible before the replayed
 * records. The stores still converge (upserts, tombstones and idempotent
 * rights); the real-broker test checks that each key is on a stream once
 * and nothing of a person follows their objection.
 * The random seed is printed; SB_SEED=<n> replays a run.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "scenario.h"

#define MIN_KILLS 21

int main(void)
{
        const char *seed_env = getenv("SB_SEED");
        unsigned seed = seed_env ? (unsigned)atoi(seed_env)
                                 : (unsigned)time(NULL) ^ (unsigned)getpid();
        char errstr[512];
        sb_mockenv_t *env;
        sb_scn_rig_t g;
        sb_scn_t s;

        printf("seed %u (SB_SEED=%u replays this run)\n", seed, seed);
        fflush(stdout);
        srand(seed);
        signal(SIGPIPE, SIG_IGN);
        env = sb_mockenv_new(3, errstr, sizeof(errstr));
        SB_CHECK(env, "mock cluster: %s", errstr);
        sb_scn_init(&s, "mockcrash", "mcrash");
        sb_scn_rig_mock(&g, &s, env, 1);
        sb_scn_rig_start(&g);
        sb_scn_run_with_kills(&s, &g, MIN_KILLS);
        sb_scn_converge(&s, &g, 200);
        sb_scn_rig_mock_release(&g);
        sb_scn_release(&s);
        sb_mockenv_destroy(env);
        return 0;
}
