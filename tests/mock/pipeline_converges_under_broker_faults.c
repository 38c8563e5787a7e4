/*
 * Fault injection on librdkafka's mock cluster (DESIGN.md §7; CNIL
 * R6.2-05): the rights scenario (tests/util/scenario.h) flows from an
 * in-process holder through a gateway and two reuser agents, `sharebus`
 * processes connected to the mock cluster living in this process, while
 * the test injects, between batches and in turn:
 *
 *   - Produce errors (not leader, timeouts, dropped connections),
 *   - Fetch errors (not leader, unknown partition, dropped connections),
 *   - EndTxn, AddPartitionsToTxn and TxnOffsetCommit errors (coordinator
 *     not available / moved / loading, concurrent transactions),
 *   - group errors (Heartbeat and JoinGroup: rebalance in progress, not
 *     coordinator),
 *   - the transaction and group coordinators moving to another broker,
 *   - a partition leader moving, and a broker going down, then up.
 *
 * Nobody is restarted: every agent must ride the faults out by itself
 * (an agent that exits fails the test). Afterwards the stores hold exactly
 * the reference model's rows and mark the restricted persons. (The streams
 * are checked on the real broker: librdkafka 2.0.2's mock shows aborted
 * transactions to read_committed consumers, see the mock SIGKILL test.)
 * The random seed is printed; SB_SEED=<n> replays a run.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "scenario.h"

/* Kafka protocol API keys (librdkafka's are not public). */
enum {
        API_PRODUCE = 0,
        API_FETCH = 1,
        API_JOIN_GROUP = 11,
        API_HEARTBEAT = 12,
        API_ADD_PARTITIONS_TO_TXN = 24,
        API_END_TXN = 26,
        API_TXN_OFFSET_COMMIT = 28,
};

#define BROKERS 3

/* A broker taken down comes back 2 s later, whatever the test is doing:
 * the holder's publish may be waiting for it. */
typedef struct outage_s {
        rd_kafka_mock_cluster_t *mc;
        int broker;
} outage_t;

static void *outage_end(void *arg)
{
        outage_t *o = arg;

        sleep(2);
        rd_kafka_mock_broker_set_up(o->mc, o->broker);
        return NULL;
}

/* Injects fault number f; returns its description. */
static const char *inject(sb_mockenv_t *env, const sb_scn_t *s, int f,
                          pthread_t *outage)
{
        rd_kafka_mock_cluster_t *mc = env->mcluster;
        char name[200];
        int b = 1 + rand() % BROKERS, r;

        switch (f) {
        case 0:
                rd_kafka_mock_push_request_errors(
                    mc, API_PRODUCE, 4,
                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                    RD_KAFKA_RESP_ERR__TRANSPORT,
                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
                return "Produce errors";
        case 1:
                rd_kafka_mock_push_request_errors(
                    mc, API_FETCH, 4,
                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                    RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                    RD_KAFKA_RESP_ERR__TRANSPORT,
                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
                return "Fetch errors";
        case 2:
                rd_kafka_mock_push_request_errors(
                    mc, API_END_TXN, 3,
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                    RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                    RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS);
                return "EndTxn errors";
        case 3:
                rd_kafka_mock_push_request_errors(
                    mc, API_ADD_PARTITIONS_TO_TXN, 2,
                    RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
                rd_kafka_mock_push_request_errors(
                    mc, API_TXN_OFFSET_COMMIT, 2,
                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                    RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
                return "AddPartitionsToTxn and TxnOffsetCommit errors";
        case 4:
                rd_kafka_mock_push_request_errors(
                    mc, API_HEARTBEAT, 2, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
                rd_kafka_mock_push_request_errors(
                    mc, API_JOIN_GROUP, 1,
                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
                return "Heartbeat and JoinGroup errors";
        case 5:
                snprintf(name, sizeof(name), "sb-gateway-%s-gw-0", s->dataset);
                rd_kafka_mock_coordinator_set(mc, "transaction", name, b);
                rd_kafka_mock_coordinator_set(mc, "group", "sb-gateway", b);
                for (r = 0; r < SB_SCN_REUSERS; r++) {
                        snprintf(name, sizeof(name), "sb-reuser-%.63s",
                                 s->reusers[r]);
                        rd_kafka_mock_coordinator_set(mc, "group", name, b);
                }
                return "transaction and group coordinators moved";
        case 6:
                snprintf(name, sizeof(name), "sb.in.%s", s->dataset);
                rd_kafka_mock_partition_set_leader(mc, name, rand() % 3, b);
                snprintf(name, sizeof(name), "sb.out.%.63s.%.63s",
                         s->reusers[0], s->dataset);
                rd_kafka_mock_partition_set_leader(mc, name, rand() % 3, b);
                return "partition leaders moved";
        default: {
                static outage_t o;

                o.mc = mc;
                o.broker = b;
                rd_kafka_mock_broker_set_down(mc, b);
                SB_CHECK(pthread_create(outage, NULL, outage_end, &o) == 0,
                         "pthread_create");
                return "a broker down for 2 s";
        }
        }
}

int main(void)
{
        const char *seed_env = getenv("SB_SEED");
        unsigned seed = seed_env ? (unsigned)atoi(seed_env)
                                 : (unsigned)time(NULL) ^ (unsigned)getpid();
        char errstr[512];
        sb_mockenv_t *env;
        sb_scn_rig_t g;
        sb_scn_t s;
        int b, faults = 0;
        pthread_t outage = 0;
        time_t t0 = time(NULL);

        printf("seed %u (SB_SEED=%u replays this run)\n", seed, seed);
        fflush(stdout);
        srand(seed);
        signal(SIGPIPE, SIG_IGN);
        env = sb_mockenv_new(BROKERS, errstr, sizeof(errstr));
        SB_CHECK(env, "mock cluster: %s", errstr);
        sb_scn_init(&s, "faulttest", "fault");
        sb_scn_rig_mock(&g, &s, env, 1);
        sb_scn_rig_start(&g);

        for (b = 0; b < SB_SCN_BATCHES; b++) {
                /* A fault before every batch but the first ones. */
                if (b >= 2) {
                        int f = (b - 2) % 8;

                        printf("%3lds batch %d: %s\n", (long)(time(NULL) - t0),
                               b, inject(env, &s, f, &outage));
                        fflush(stdout);
                        faults++;
                }
                sb_scn_publish_batch(&s, g.h, b);
                usleep((useconds_t)(300 + rand() % 500) * 1000);
                if (outage) {
                        pthread_join(outage, NULL);
                        outage = 0;
                }
                sb_scn_rig_check_alive(&g);
        }
        printf("published %d batches of %d subjects and %ld rights events "
               "under %d faults (%ld publishes redone)\n",
               SB_SCN_BATCHES, SB_SCN_SUBJECTS, s.rights, faults,
               s.holder_retries);

        sb_scn_converge(&s, &g, 200);
        sb_scn_rig_mock_release(&g);
        sb_scn_release(&s);
        sb_mockenv_destroy(env);
        return 0;
}
