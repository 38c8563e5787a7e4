/*
 * Scale-out proof on the real broker (DESIGN.md §7; CNIL R6.2-05): the
 * rights scenario (tests/util/scenario.h) flows through two gateway
 * processes of one consumer group while they join and leave it:
 *
 *   batch  0  gateway A runs alone
 *   batch  8  gateway B joins: the partitions are shared, and B reads
 *             back the state of those it is given from _sb.state
 *   batch 16  B leaves cleanly (SIGTERM): A takes everything back
 *   batch 21  B joins again
 *   batch 26  A is killed (SIGKILL): B takes over A's partitions once the
 *             group notices, A's open transaction is aborted
 *   batch 31  A comes back
 *
 * Afterwards, as for the SIGKILL test: each reuser's store holds exactly
 * the model's rows and marks the restricted persons, each stream carries
 * every record key once and nothing of a person after their objection.
 * B must have processed records in its first membership (it printed its
 * counts when it left), or the test proves nothing about sharing.
 */
#include <time.h>
#include <unistd.h>

#include "scenario.h"
#include "world.h"

/* The "N record(s) in" of the last stats line in a gateway's log. */
static long records_in(const sb_proc_t *p)
{
        char line[1024];
        long n = -1, v;
        FILE *fp = fopen(p->log, "r");

        SB_CHECK(fp, "cannot read %s", p->log);
        while (fgets(line, sizeof(line), fp))
                if (sscanf(line, "gateway: %ld record(s) in", &v) == 1)
                        n = v;
        fclose(fp);
        return n;
}

/* Waits (60 s at most) until the gateway's log says it was given
 * partitions, so that it takes part before the test goes on. */
static void wait_assigned(sb_proc_t *p)
{
        char line[1024];
        int i, n;

        for (i = 0; i < 600; i++) {
                FILE *fp = fopen(p->log, "r");
                const char *at;

                while (fp && fgets(line, sizeof(line), fp))
                        if ((at = strstr(line, "GATEWAY: assigned ")) &&
                            sscanf(at, "GATEWAY: assigned %d", &n) == 1 &&
                            n > 0) {
                                fclose(fp);
                                return;
                        }
                if (fp)
                        fclose(fp);
                sb_proc_check_alive(p);
                usleep(100 * 1000);
        }
        sb_proc_tail(p);
        SB_TEST_FAIL("%s was given no partition within 60 s", p->name);
}

int main(void)
{
        sb_kafka_cfg_t ru_kc[SB_SCN_REUSERS];
        char dataset[32], prefix[32];
        unsigned run;
        sb_scn_rig_t g;
        sb_world_t w;
        sb_scn_t s;
        long b_first = -1;
        long records[SB_SCN_REUSERS];
        int b, r;

        sb_world_init(&w);
        /* Names of this run's own: topics, state, offsets and stores of
         * an earlier run on the same broker are not this run's. */
        run = (unsigned)time(NULL) ^ ((unsigned)getpid() << 8);
        snprintf(dataset, sizeof(dataset), "rebaltest%06x", run & 0xffffff);
        snprintf(prefix, sizeof(prefix), "rebal%06x", run & 0xffffff);
        sb_scn_init(&s, dataset, prefix);
        sb_world_scenario(&w, &s, &g, 2, ru_kc);
        sb_scn_rig_start(&g);

        for (b = 0; b < SB_SCN_BATCHES; b++) {
                switch (b) {
                case 8:
                case 21:
                        printf("batch %d: gateway B joins\n", b);
                        /* A fresh log, to see this membership's start. */
                        unlink(g.gw[1].log);
                        sb_proc_start(&g.gw[1]);
                        wait_assigned(&g.gw[1]);
                        break;
                case 16:
                        printf("batch %d: gateway B leaves\n", b);
                        SB_CHECK_INT(0, sb_proc_stop(&g.gw[1]),
                                     "gateway B's exit status");
                        b_first = records_in(&g.gw[1]);
                        break;
                case 26:
                        printf("batch %d: gateway A killed\n", b);
                        sb_proc_kill9(&g.gw[0]);
                        break;
                case 31:
                        printf("batch %d: gateway A back\n", b);
                        sb_proc_start(&g.gw[0]);
                        break;
                }
                sb_scn_publish_batch(&s, g.h, b);
                usleep(700 * 1000);
                for (r = 0; r < SB_SCN_REUSERS; r++)
                        sb_proc_check_alive(&g.ru[r]);
                if (g.gw[0].pid)
                        sb_proc_check_alive(&g.gw[0]);
                if (g.gw[1].pid)
                        sb_proc_check_alive(&g.gw[1]);
        }
        printf("published %d batches of %d subjects and %ld rights events\n",
               SB_SCN_BATCHES, SB_SCN_SUBJECTS, s.rights);
        if (b_first <= 0) {
                sb_proc_tail(&g.gw[1]);
                SB_TEST_FAIL("gateway B processed no record while it was in "
                             "the group (%ld): nothing was shared",
                             b_first);
        }
        printf("gateway B processed %ld record(s) in its first membership\n",
               b_first);

        sb_scn_converge(&s, &g, 180);
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
