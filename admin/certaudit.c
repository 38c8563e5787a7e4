#include "certaudit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auditlog.h"
#include "reader.h"

static void sb_certaudit_author(const sb_admin_cfg_t *cfg, char *out,
                                size_t size)
{
        snprintf(out, size, "sharebus://admin/%s", cfg->client_id);
}

json_t *sb_certaudit_entry(const char *author, const sb_cert_info_t *ci)
{
        char nb[SB_RFC3339_SIZE], na[SB_RFC3339_SIZE], at[SB_RFC3339_SIZE];

        sb_rfc3339_format(ci->not_before, nb);
        sb_rfc3339_format(ci->not_after, na);
        sb_rfc3339_format(ci->issued_at, at);
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "op",
                         SB_CERTAUDIT_OP, "author", author, "principal",
                         ci->principal, "serial", ci->serial, "not_before", nb,
                         "not_after", na, "issued_at", at, "server", ci->server,
                         "fingerprint_sha256", ci->sha256);
}

sb_err_t sb_certaudit_issued(const sb_admin_cfg_t *cfg,
                             const sb_cert_info_t *ci, char *errstr,
                             size_t errstr_size)
{
        json_t *entries = json_array();
        sb_auditlog_t *al = NULL;
        char author[300];
        sb_err_t err;

        sb_certaudit_author(cfg, author, sizeof(author));
        if (!entries ||
            json_array_append_new(entries, sb_certaudit_entry(author, ci))) {
                json_decref(entries);
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        al = sb_auditlog_new(cfg, SB_CERTAUDIT_CHAIN, errstr, errstr_size);
        err = al ? sb_auditlog_write(al, entries, errstr, errstr_size)
                 : SB_ERR_KAFKA;
        sb_auditlog_destroy(al);
        json_decref(entries);
        return err;
}

/* One _sb.audit message: the serial of a cert.issue entry into `opaque`. */
static sb_err_t sb_certaudit_on_audit(const rd_kafka_message_t *m, void *opaque,
                                      char *errstr, size_t errstr_size)
{
        json_t *serials = opaque, *e;
        const char *op, *serial;
        sb_err_t err = SB_OK;

        if (!m->payload)
                return SB_OK;
        e = json_loadb(m->payload, m->len, 0, NULL);
        op = json_string_value(json_object_get(e, "op"));
        serial = json_string_value(json_object_get(e, "serial"));
        if (op && serial && !strcmp(op, SB_CERTAUDIT_OP) &&
            json_object_set_new(serials, serial, json_true()))
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
        json_decref(e);
        return err;
}

sb_err_t sb_certaudit_publish(const sb_admin_cfg_t *cfg, const char *ca_dir,
                              size_t *addedp, size_t *heldp, char *errstr,
                              size_t errstr_size)
{
        json_t *serials = NULL, *entries = NULL;
        sb_cert_info_t *infos = NULL;
        sb_auditlog_t *al = NULL;
        sb_reader_t *rd = NULL;
        char author[300];
        size_t i, cnt = 0;
        sb_err_t err;

        *addedp = *heldp = 0;
        if ((err = sb_cert_list(ca_dir, 0, &infos, &cnt, errstr, errstr_size)))
                return err;
        if (!cnt)
                return SB_OK;
        serials = json_object();
        entries = json_array();
        if (!serials || !entries) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        /* The writer first: its init_transactions() fences another run,
         * so the log read next holds everything that run committed. */
        al = sb_auditlog_new(cfg, SB_CERTAUDIT_CHAIN, errstr, errstr_size);
        if (!al) {
                err = SB_ERR_KAFKA;
                goto done;
        }
        rd = sb_reader_new(cfg, "ca", errstr, errstr_size);
        if (!rd) {
                err = SB_ERR_KAFKA;
                goto done;
        }
        if ((err = sb_reader_read(rd, SB_AUDIT_TOPIC, sb_certaudit_on_audit,
                                  serials, errstr, errstr_size)))
                goto done;
        sb_certaudit_author(cfg, author, sizeof(author));
        for (i = 0; i < cnt; i++) {
                if (json_object_get(serials, infos[i].serial)) {
                        (*heldp)++;
                        continue;
                }
                /* Twice in the register (never expected): one entry. */
                if (json_object_set_new(serials, infos[i].serial,
                                        json_true()) ||
                    json_array_append_new(
                        entries, sb_certaudit_entry(author, &infos[i]))) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
        }
        if ((err = sb_auditlog_write(al, entries, errstr, errstr_size)))
                goto done;
        *addedp = json_array_size(entries);
done:
        sb_reader_destroy(rd);
        sb_auditlog_destroy(al);
        json_decref(entries);
        json_decref(serials);
        free(infos);
        return err;
}
