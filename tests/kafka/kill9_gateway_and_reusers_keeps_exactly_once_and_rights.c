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
        int b, r, kills = 0;

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
        sb_proc_start(&g.gw[0]);
        for (r = 0; r < SB_SCN_REUSERS; r++)
                sb_proc_start(&g.ru[r]);

        /* The stream, with kills at random points in between. */
        for (b = 0; b < SB_SCN_BATCHES || kills < MIN_KILLS; b++) {
                if (b < SB_SCN_BATCHES)
                        sb_scn_publish_batch(&s, g.h, b);
                usleep((useconds_t)(100 + rand() % 700) * 1000);
                if (rand() % 3 != 0) {
                        int k = rand() % (1 + SB_SCN_REUSERS);
                        sb_proc_t *p = k ? &g.ru[k - 1] : &g.gw[0];

                        sb_proc_kill9(p);
                        kills++;
                        usleep((useconds_t)(rand() % 400) * 1000);
                        sb_proc_start(p);
                }
                sb_scn_rig_check_alive(&g);
        }
        printf("published %d batches of %d subjects and %ld rights events; "
               "%d SIGKILLs (gateway %d, %s %d, %s %d)\n",
               SB_SCN_BATCHES, SB_SCN_SUBJECTS, s.rights, kills, g.gw[0].kills,
               s.reusers[0], g.ru[0].kills, s.reusers[1], g.ru[1].kills);

        /* Let the survivors catch up, then compare with the model. */
        if (!sb_scn_wait_stores(&s, g.key, g.db, 240,
                                (void (*)(void *))sb_scn_rig_check_alive, &g)) {
                sb_scn_rig_stop(&g);
                sb_scn_rig_tail(&g);
                SB_TEST_FAIL("the reuser stores never matched the model");
        }
        sb_scn_rig_stop(&g);
        for (r = 0; r < SB_SCN_REUSERS; r++) {
                printf("%s store: %zu rows, exactly the model's; restricted "
                       "persons marked\n",
                       s.reusers[r], json_object_size(s.rows[r]));
                sb_scn_check_stream(&s, &ru_kc[r], r, 3);
        }
        sb_scn_rig_release(&g);
        sb_scn_release(&s);
        sb_world_release(&w);
        return 0;
}
