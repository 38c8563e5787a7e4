/*
 * R3.7-09/10, DESIGN §8: the broker admits only certificates of the
 * platform CA that are valid now. A certificate of the platform CA whose
 * validity ended, and a certificate for the very same principal from
 * another CA, are both refused at the TLS handshake, while a current one
 * from the platform CA gets in (so the refusals are not an accident).
 */
#include "world.h"

int main(void)
{
        const char *bin = getenv("SB_BIN");
        sb_kafka_cfg_t ok_kc, expired_kc, foreign_kc;
        sb_probe_t p;
        sb_world_t w;
        char cmd[2048], path[600];

        sb_world_init(&w);
        sb_world_cert(&w, "t5-reuser.g1", NULL, &ok_kc);
        sb_world_cert(&w, "t5-reuser.g0",
                      "--not-before 2025-01-01T00:00:00Z --not-after "
                      "2025-01-08T00:00:00Z",
                      &expired_kc);

        /* Another CA, same principal name as the valid certificate. */
        snprintf(cmd, sizeof(cmd),
                 "'%s' admin ca init --dir '%s/foreign-ca' >/dev/null && "
                 "'%s' admin cert issue --dir '%s/foreign-ca' --principal "
                 "t5-reuser.g1 --days 1 --out '%s/foreign' >/dev/null",
                 bin, w.dir, bin, w.dir, w.dir);
        SB_CHECK(system(cmd) == 0, "foreign CA: %s", cmd);
        foreign_kc = ok_kc;
        snprintf(path, sizeof(path), "%s/foreign/t5-reuser.g1.crt", w.dir);
        foreign_kc.ssl_certificate_location = path;
        {
                static char key[600];

                snprintf(key, sizeof(key), "%s/foreign/t5-reuser.g1.key",
                         w.dir);
                foreign_kc.ssl_key_location = key;
        }

        sb_probe(&ok_kc, 15000, &p);
        SB_CHECK(p.md_err == RD_KAFKA_RESP_ERR_NO_ERROR && p.broker_cnt == 1,
                 "the current certificate was refused: %s (%s)",
                 rd_kafka_err2name(p.md_err), p.cb_reason);

        sb_probe(&expired_kc, 15000, &p);
        SB_CHECK(p.md_err != RD_KAFKA_RESP_ERR_NO_ERROR,
                 "an expired certificate got metadata from the broker");
        printf("expired certificate refused: %s\n", p.cb_reason);

        sb_probe(&foreign_kc, 15000, &p);
        SB_CHECK(p.md_err != RD_KAFKA_RESP_ERR_NO_ERROR,
                 "a certificate of a foreign CA got metadata from the broker");
        printf("foreign-CA certificate refused: %s\n", p.cb_reason);

        sb_world_release(&w);
        return 0;
}
