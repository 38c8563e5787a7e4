/*
 * DESIGN.md §7's required proof, on the real broker (CNIL R6.2-05; GDPR
 * art. 17-21): the rights scenario (tests/util/scenario.h) flows while the
 * gateway and both reuser agents, each its own `sharebus` process, are
 * killed with SIGKILL at random points and restarted, at least 21 times.
 * Afterwards:
 *   - each reuser's store holds exactly the rows the reference model says
 *     it must (no record lost, none of an erased, objecting or withdrawn
 *     person), and marks the restricted persons;
 *   - each reuser stream, read as read_committed, carries every record key
 *     at most once (the gateway's transactions: no duplicate after any
 *     crash) and no record of a person after that person's objection.
 * The random seed is printed; SB_SEED=<n> replays a run.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "scenario.h"
#include "world.h"

#define MIN_KILLS 21

int main(void)
{
        sb_kafka_cfg_t ru_kc[SB_SCN_REUSERS];
        char dataset[32], prefix[32];
        unsigned run;
        const char *seed_env = getenv("SB_SEED");
        unsigned seed = seed_env ? (unsigned)atoi(seed_env)
                                 : (unsigned)time(NULL) ^ (unsigned)getpid();
        sb_scn_rig_t g;
        sb_world_t w;
        sb_scn_t s;
        long records[SB_SCN_REUSERS];
        int r;

        printf("seed %u (SB_SEED=%u replays this run)\n", seed, seed);
        srand(seed);
        sb_world_init(&w);
        /* Names of this run's own: topics, state, offsets and stores of
         * an earlier run on the same broker are not this run's. */
        run = (unsigned)time(NULL) ^ ((unsigned)getpid() << 8);
        snprintf(dataset, sizeof(dataset), "crashtest%06x", run & 0xffffff);
        snprintf(prefix, sizeof(prefix), "crash%06x", run & 0xffffff);
        sb_scn_init(&s, dataset, prefix);
        sb_world_scenario(&w, &s, &g, 1, ru_kc);
        sb_scn_rig_start(&g);
        sb_scn_run_with_kills(&s, &g, MIN_KILLS);
        sb_scn_converge(&s, &g, 240);
        for (r = 0; r < SB_SCN_REUSERS; r++)
                records[r] = sb_scn_check_stream(&s, &ru_kc[r], r, 3);
        /* The gateways' audit chains, once they have closed them. */
        sb_scn_rig_stop(&g);
        sb_scn_check_audit(&s, &g, &w.admin_kc, records);
        sb_scn_rig_release(&g);
        sb_scn_release(&s);
        sb_world_release(&w);
        return 0;
}
