/*
 * The real broker started from broker-config/server.properties lets in a
 * sharebus client with a platform certificate (mTLS) and one with a SCRAM
 * user over TLS, each configured by sb_kafka_conf_new() as the programs
 * are; it refuses a wrong SCRAM password, a TLS client without a
 * certificate, and plaintext on either listener (DESIGN.md section 8).
 */
#include <sys/stat.h>
#include <unistd.h>

#include "brokerenv.h"
#include "testutil.h"

#define TIMEOUT_MS 8000

static void expect_accepted(const char *what, const sb_kafka_cfg_t *kc)
{
        sb_probe_t p;

        sb_probe(kc, TIMEOUT_MS, &p);
        SB_CHECK(!p.md_err,
                 "%s: expected the broker's metadata, got %s (first client "
                 "error: %s)",
                 what, rd_kafka_err2str(p.md_err),
                 p.cb_err ? p.cb_reason : "none");
        SB_CHECK_INT(1, p.broker_cnt, "brokers in the metadata");
        printf("accepted: %s\n", what);
}

/*
 * The client must report `expected`, with `because` in its reason: a
 * refusal for another cause (say, nobody listening) proves nothing.
 */
static void expect_refused(const char *what, const sb_kafka_cfg_t *kc,
                           rd_kafka_resp_err_t expected, const char *because)
{
        sb_probe_t p;

        sb_probe(kc, TIMEOUT_MS, &p);
        SB_CHECK(p.md_err, "%s: expected a refusal, got the metadata", what);
        SB_CHECK(p.cb_err, "%s: refused, but the client reported no error",
                 what);
        SB_CHECK(p.cb_err == expected && strstr(p.cb_reason, because),
                 "%s: expected %s mentioning '%s', got %s: %s", what,
                 rd_kafka_err2name(expected), because,
                 rd_kafka_err2name(p.cb_err), p.cb_reason);
        printf("refused:  %s (%s: %s)\n", what, rd_kafka_err2name(p.cb_err),
               p.cb_reason);
}

int main(void)
{
        char errstr[512], tmp[] = "/tmp/sb-kafka-test.XXXXXX", wrong[64];
        sb_kafka_cfg_t kc;
        sb_brokerenv_t be;
        FILE *fp;

        setvbuf(stdout, NULL, _IOLBF, 0);
        SB_OK_OR_FAIL(sb_brokerenv_load(&be, errstr, sizeof(errstr)), errstr);

        sb_brokerenv_mtls_cfg(&be, &kc);
        expect_accepted("mTLS with the administrator's certificate", &kc);

        sb_brokerenv_scram_cfg(&be, &kc);
        expect_accepted("SCRAM-SHA-512 over TLS", &kc);

        /* Same user, another password: in a 0600 file as the policy
         * requires, so that only the password differs. */
        SB_CHECK(mkdtemp(tmp), "mkdtemp");
        snprintf(wrong, sizeof(wrong), "%s/wrong", tmp);
        SB_CHECK((fp = fopen(wrong, "w")), "%s", wrong);
        fputs("not-the-password\n", fp);
        fclose(fp);
        chmod(wrong, 0600);
        kc.sasl_password_file = wrong;
        expect_refused("SCRAM-SHA-512 with a wrong password", &kc,
                       RD_KAFKA_RESP_ERR__AUTHENTICATION,
                       "invalid credentials");
        unlink(wrong);
        rmdir(tmp);

        sb_brokerenv_mtls_cfg(&be, &kc);
        kc.ssl_certificate_location = NULL;
        kc.ssl_key_location = NULL;
        /* With TLS 1.3 the broker's refusal is an alert after the
         * handshake, which librdkafka reports as a receive failure. */
        expect_refused("TLS without a client certificate", &kc,
                       RD_KAFKA_RESP_ERR__TRANSPORT, "certificate");

        sb_brokerenv_mtls_cfg(&be, &kc);
        kc.security_protocol = "plaintext";
        kc.insecure_dev = 1;
        expect_refused("plaintext on the SSL listener", &kc,
                       RD_KAFKA_RESP_ERR__TRANSPORT, "Disconnected");

        sb_brokerenv_scram_cfg(&be, &kc);
        kc.security_protocol = "plaintext";
        kc.insecure_dev = 1;
        expect_refused("plaintext on the SASL_SSL listener", &kc,
                       RD_KAFKA_RESP_ERR__TRANSPORT, "Disconnected");

        sb_brokerenv_release(&be);
        return 0;
}
