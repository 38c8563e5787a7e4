#include "grants.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_kafka.h"
#include "envelope.h"
#include "grant.h"
#include "log.h"
#include "reader.h"

/* Attempts of one transaction whose error asks for an abort and a retry. */
#define SB_GRANTS_TXN_ATTEMPTS 3

struct sb_grantadm_s {
        const sb_admin_cfg_t *cfg;
        sb_reader_t *reader;
        rd_kafka_t *producer; /* transactional; made by sb_grantadm_writer() */
        char source[300];     /* sharebus://admin/<client_id> */
        /* The audit chain of SB_GRANTS_TXN_ID, made with the producer. */
        sb_audit_chain_t *chain;
        sb_signkey_t *audit_key; /* NULL: linked, not signed */
};

static const char *sb_gs_str(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

/*
 * Grant files
 */

static int sb_grant_file_cmp(const void *a, const void *b)
{
        return strcmp(((const sb_grant_file_t *)a)->id,
                      ((const sb_grant_file_t *)b)->id);
}

sb_err_t sb_grant_files_load(const sb_platform_t *pf, sb_grant_file_t **filesp,
                             size_t *cntp, char *errstr, size_t errstr_size)
{
        sb_grant_file_t *files;
        size_t cnt = 0, i;
        sb_err_t err = SB_OK;

        *filesp = NULL;
        *cntp = 0;
        files = calloc(pf->grant_cnt ? pf->grant_cnt : 1, sizeof(*files));
        if (!files)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < pf->grant_cnt; i++) {
                const char *path = pf->grants[i]->origin;
                const char *slash = strrchr(path, '/');
                sb_grant_file_t *f = &files[cnt];
                json_error_t jerr;
                sb_grant_t *g;

                f->json = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
                if (!f->json) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                                        "grant '%s' line %d: %s", path,
                                        jerr.line, jerr.text);
                        goto done;
                }
                cnt++;
                /* Checked again as read now: what is published is what
                 * was validated, even if the file changed meanwhile. */
                g = sb_grant_new(json_incref(f->json), path, pf->cat, errstr,
                                 errstr_size);
                if (!g) {
                        err = SB_ERR_GRANT;
                        goto done;
                }
                f->id = strdup(g->id);
                f->origin = strdup(slash ? slash + 1 : path);
                sb_grant_destroy(g);
                if (!f->id || !f->origin) {
                        err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                        "out of memory");
                        goto done;
                }
        }
        if (cnt)
                qsort(files, cnt, sizeof(*files), sb_grant_file_cmp);
done:
        if (err) {
                sb_grant_files_destroy(files, cnt);
                return err;
        }
        *filesp = files;
        *cntp = cnt;
        return SB_OK;
}

void sb_grant_files_destroy(sb_grant_file_t *files, size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++) {
                free(files[i].id);
                free(files[i].origin);
                json_decref(files[i].json);
        }
        free(files);
}

/*
 * The topic state
 */

static void sb_grant_version_release(sb_grant_version_t *v)
{
        free(v->id);
        json_decref(v->json);
        free(v->origin);
        free(v->changed_at);
        free(v->source);
        memset(v, 0, sizeof(*v));
}

static char *sb_gs_strdup(const char *s, int *failed)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *failed = 1;
        return d;
}

sb_err_t sb_grant_state_put(sb_grant_state_t *st, const char *id, json_t *json,
                            int unreadable, const char *origin,
                            const char *changed_at, const char *source,
                            int32_t partition, int64_t offset)
{
        sb_grant_version_t *v;
        json_t *at;
        int failed = 0;

        if (!st->index && !(st->index = json_object()))
                goto nomem;
        at = json_object_get(st->index, id);
        if (at) {
                v = &st->v[json_integer_value(at)];
                sb_grant_version_release(v);
        } else {
                if (st->cnt == st->cap) {
                        size_t cap = st->cap ? st->cap * 2 : 16;
                        sb_grant_version_t *n =
                            realloc(st->v, cap * sizeof(*n));

                        if (!n)
                                goto nomem;
                        st->v = n;
                        st->cap = cap;
                }
                if (json_object_set_new(st->index, id,
                                        json_integer((json_int_t)st->cnt)))
                        goto nomem;
                v = &st->v[st->cnt++];
                memset(v, 0, sizeof(*v));
        }
        if (unreadable || (json && !json_is_object(json))) {
                v->kind = SB_GRANT_V_UNREADABLE;
                json_decref(json);
        } else if (!json) {
                v->kind = SB_GRANT_V_TOMBSTONE;
        } else {
                v->kind = SB_GRANT_V_OBJECT;
                v->json = json;
        }
        v->id = sb_gs_strdup(id, &failed);
        v->origin = sb_gs_strdup(origin, &failed);
        v->changed_at = sb_gs_strdup(changed_at ? changed_at : "", &failed);
        v->source = sb_gs_strdup(source, &failed);
        v->partition = partition;
        v->offset = offset;
        if (failed)
                return SB_ERR_NOMEM;
        return SB_OK;
nomem:
        json_decref(json);
        return SB_ERR_NOMEM;
}

const sb_grant_version_t *sb_grant_state_get(const sb_grant_state_t *st,
                                             const char *id)
{
        json_t *at = st->index ? json_object_get(st->index, id) : NULL;

        return at ? &st->v[json_integer_value(at)] : NULL;
}

void sb_grant_state_release(sb_grant_state_t *st)
{
        size_t i;

        for (i = 0; i < st->cnt; i++)
                sb_grant_version_release(&st->v[i]);
        free(st->v);
        json_decref(st->index);
        memset(st, 0, sizeof(*st));
}

const char *sb_grant_version_status(const sb_grant_version_t *v)
{
        const char *s;

        switch (v->kind) {
        case SB_GRANT_V_TOMBSTONE:
                return "revoked";
        case SB_GRANT_V_UNREADABLE:
                return "unreadable";
        case SB_GRANT_V_OBJECT:
                break;
        }
        s = sb_gs_str(v->json, "status");
        return s ? s : "?";
}

int sb_grant_version_revoked(const sb_grant_version_t *v)
{
        return !strcmp(sb_grant_version_status(v), "revoked");
}

/*
 * The plan
 */

const char *sb_grant_action2str(sb_grant_action_t action)
{
        switch (action) {
        case SB_GRANT_UNCHANGED:
                return "unchanged";
        case SB_GRANT_CREATE:
                return "create";
        case SB_GRANT_UPDATE:
                return "update";
        case SB_GRANT_CONFLICT:
                return "conflict";
        case SB_GRANT_NO_FILE:
                return "no-file";
        case SB_GRANT_RETIRED:
                return "retired";
        }
        return "?";
}

static int sb_grant_change_cmp(const void *a, const void *b)
{
        return strcmp(((const sb_grant_change_t *)a)->id,
                      ((const sb_grant_change_t *)b)->id);
}

static int sb_gs_strcmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The top-level keys whose values differ, sorted (new reference). */
static json_t *sb_grant_diff_keys(const json_t *a, const json_t *b)
{
        const char **names;
        json_t *keys, *v;
        const char *k;
        size_t i, n = 0;

        names = calloc(json_object_size(a) + json_object_size(b) + 1,
                       sizeof(*names));
        keys = json_array();
        if (!names || !keys) {
                free(names);
                json_decref(keys);
                return NULL;
        }
        json_object_foreach((json_t *)a, k, v)
        {
                if (!json_equal(v, json_object_get(b, k)))
                        names[n++] = k;
        }
        json_object_foreach((json_t *)b, k, v)
        {
                if (!json_object_get(a, k))
                        names[n++] = k;
        }
        qsort(names, n, sizeof(*names), sb_gs_strcmp);
        for (i = 0; i < n; i++)
                if (json_array_append_new(keys, json_string(names[i]))) {
                        json_decref(keys);
                        keys = NULL;
                        break;
                }
        free(names);
        return keys;
}

/*
 * Another grant of the same reuser and dataset, on the topic, not revoked,
 * and without a file: the gateway keeps one grant per reuser and dataset,
 * so publishing `f` beside it would leave one of the two out.
 */
static const sb_grant_version_t *sb_grant_rival(const sb_grant_file_t *f,
                                                const sb_grant_file_t *files,
                                                size_t file_cnt,
                                                const sb_grant_state_t *st)
{
        const char *reuser = sb_gs_str(f->json, "reuser");
        const char *dataset = sb_gs_str(f->json, "dataset");
        size_t i, j;

        if (!reuser || !dataset)
                return NULL;
        for (i = 0; i < st->cnt; i++) {
                const sb_grant_version_t *v = &st->v[i];

                if (v->kind != SB_GRANT_V_OBJECT || !strcmp(v->id, f->id) ||
                    sb_grant_version_revoked(v) ||
                    !sb_gs_str(v->json, "reuser") ||
                    !sb_gs_str(v->json, "dataset") ||
                    strcmp(sb_gs_str(v->json, "reuser"), reuser) ||
                    strcmp(sb_gs_str(v->json, "dataset"), dataset))
                        continue;
                for (j = 0; j < file_cnt; j++)
                        if (!strcmp(files[j].id, v->id))
                                break;
                if (j == file_cnt)
                        return v;
        }
        return NULL;
}

sb_err_t sb_grants_plan(const sb_grant_file_t *files, size_t file_cnt,
                        const sb_grant_state_t *st, sb_grant_plan_t *plan,
                        char *errstr, size_t errstr_size)
{
        size_t i, j, n = 0;

        memset(plan, 0, sizeof(*plan));
        plan->file_cnt = file_cnt;
        plan->topic_cnt = st->cnt;
        plan->changes = calloc(file_cnt + st->cnt + 1, sizeof(*plan->changes));
        if (!plan->changes)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < file_cnt; i++) {
                const sb_grant_file_t *f = &files[i];
                const sb_grant_version_t *v = sb_grant_state_get(st, f->id);
                const sb_grant_version_t *rival;
                sb_grant_change_t *c = &plan->changes[n++];
                const char *status = sb_gs_str(f->json, "status");
                int file_revoked = status && !strcmp(status, "revoked");
                int rc = 0;

                c->id = f->id;
                c->file = f;
                c->cur = v;
                if (!v) {
                        c->action = SB_GRANT_CREATE;
                        c->change = "created";
                } else if (sb_grant_version_revoked(v) && !file_revoked) {
                        c->action = SB_GRANT_CONFLICT;
                        rc = asprintf(
                            &c->reason,
                            "revoked on %s (%s) but '%s' says \"%s\": a "
                            "revoked grant is not reinstated; set "
                            "\"status\": \"revoked\" in '%s', or give the "
                            "reuser a new grant with a new id",
                            SB_GRANTS_TOPIC,
                            *v->changed_at ? v->changed_at : "time unknown",
                            f->origin, status ? status : "?", f->origin);
                } else if (v->kind == SB_GRANT_V_OBJECT &&
                           json_equal(f->json, v->json)) {
                        c->action = SB_GRANT_UNCHANGED;
                } else {
                        c->action = SB_GRANT_UPDATE;
                        c->change = file_revoked && !sb_grant_version_revoked(v)
                                        ? "revoked"
                                        : "updated";
                        if (v->kind == SB_GRANT_V_OBJECT) {
                                c->keys = sb_grant_diff_keys(f->json, v->json);
                                if (!c->keys)
                                        goto nomem;
                        }
                }
                if (rc == -1) {
                        c->reason = NULL;
                        goto nomem;
                }
                if ((c->action == SB_GRANT_CREATE ||
                     c->action == SB_GRANT_UPDATE) &&
                    !file_revoked &&
                    (rival = sb_grant_rival(f, files, file_cnt, st))) {
                        c->action = SB_GRANT_CONFLICT;
                        c->change = NULL;
                        if (asprintf(&c->reason,
                                     "reuser '%s' already has grant '%s' on "
                                     "dataset '%s' on %s, not revoked and "
                                     "without a file: one grant per reuser "
                                     "and dataset; revoke it first "
                                     "('sharebus admin grants revoke %s')",
                                     sb_gs_str(f->json, "reuser"), rival->id,
                                     sb_gs_str(f->json, "dataset"),
                                     SB_GRANTS_TOPIC, rival->id) == -1) {
                                c->reason = NULL;
                                goto nomem;
                        }
                }
        }
        for (i = 0; i < st->cnt; i++) {
                const sb_grant_version_t *v = &st->v[i];
                sb_grant_change_t *c;

                for (j = 0; j < file_cnt; j++)
                        if (!strcmp(files[j].id, v->id))
                                break;
                if (j < file_cnt)
                        continue;
                c = &plan->changes[n++];
                c->id = v->id;
                c->cur = v;
                c->action = sb_grant_version_revoked(v) ? SB_GRANT_RETIRED
                                                        : SB_GRANT_NO_FILE;
        }
        plan->cnt = n;
        if (n)
                qsort(plan->changes, n, sizeof(*plan->changes),
                      sb_grant_change_cmp);
        return SB_OK;
nomem:
        plan->cnt = n;
        sb_grant_plan_release(plan);
        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
}

void sb_grant_plan_release(sb_grant_plan_t *plan)
{
        size_t i;

        for (i = 0; i < plan->cnt; i++) {
                json_decref(plan->changes[i].keys);
                free(plan->changes[i].reason);
        }
        free(plan->changes);
        memset(plan, 0, sizeof(*plan));
}

size_t sb_grant_plan_pending(const sb_grant_plan_t *plan)
{
        size_t i, n = 0;

        for (i = 0; i < plan->cnt; i++)
                n += plan->changes[i].action == SB_GRANT_CREATE ||
                     plan->changes[i].action == SB_GRANT_UPDATE;
        return n;
}

size_t sb_grant_plan_drift(const sb_grant_plan_t *plan)
{
        size_t i, n = 0;

        for (i = 0; i < plan->cnt; i++)
                n += plan->changes[i].action == SB_GRANT_CONFLICT ||
                     plan->changes[i].action == SB_GRANT_NO_FILE;
        return n;
}

/* The grant a change is about: its file's, else the topic's. */
static const json_t *sb_grant_change_json(const sb_grant_change_t *c)
{
        if (c->file)
                return c->file->json;
        return c->cur && c->cur->kind == SB_GRANT_V_OBJECT ? c->cur->json
                                                           : NULL;
}

static const char *sb_gs_or(const char *s, const char *dflt)
{
        return s ? s : dflt;
}

void sb_grant_plan_print(const sb_grant_plan_t *plan, FILE *fp)
{
        size_t i, n[SB_GRANT_RETIRED + 1] = {0};

        for (i = 0; i < plan->cnt; i++)
                n[plan->changes[i].action]++;
        fprintf(fp,
                "grants: %zu file(s), %zu on %s; %zu to create, %zu to "
                "update, %zu unchanged, %zu in conflict, %zu without a file, "
                "%zu retired\n",
                plan->file_cnt, plan->topic_cnt, SB_GRANTS_TOPIC,
                n[SB_GRANT_CREATE], n[SB_GRANT_UPDATE], n[SB_GRANT_UNCHANGED],
                n[SB_GRANT_CONFLICT], n[SB_GRANT_NO_FILE], n[SB_GRANT_RETIRED]);
        for (i = 0; i < plan->cnt; i++) {
                const sb_grant_change_t *c = &plan->changes[i];
                const json_t *g = sb_grant_change_json(c);
                size_t k;
                json_t *key;

                switch (c->action) {
                case SB_GRANT_UNCHANGED:
                case SB_GRANT_RETIRED:
                        break;
                case SB_GRANT_CREATE:
                        fprintf(fp,
                                "  + %s from %s: reuser %s, dataset %s, "
                                "status %s\n",
                                c->id, c->file->origin,
                                sb_gs_or(sb_gs_str(g, "reuser"), "?"),
                                sb_gs_or(sb_gs_str(g, "dataset"), "?"),
                                sb_gs_or(sb_gs_str(g, "status"), "?"));
                        break;
                case SB_GRANT_UPDATE:
                        fprintf(fp, "  ~ %s from %s:", c->id, c->file->origin);
                        if (!c->keys) {
                                fprintf(fp, " replaces %s\n",
                                        c->cur->kind == SB_GRANT_V_TOMBSTONE
                                            ? "a tombstone"
                                            : "a version that is not a grant "
                                              "(unreadable)");
                                break;
                        }
                        json_array_foreach(c->keys, k, key)
                        {
                                const char *name = json_string_value(key);

                                fprintf(fp, "%s %s", k ? "," : "", name);
                                if (!strcmp(name, "status"))
                                        fprintf(fp, " %s -> %s",
                                                sb_grant_version_status(c->cur),
                                                sb_gs_or(sb_gs_str(g, "status"),
                                                         "?"));
                        }
                        fprintf(fp, " changed\n");
                        break;
                case SB_GRANT_CONFLICT:
                        fprintf(fp, "  ! %s from %s: %s\n", c->id,
                                c->file->origin, c->reason);
                        break;
                case SB_GRANT_NO_FILE:
                        fprintf(fp,
                                "  ? %s: on %s (reuser %s, dataset %s, status "
                                "%s, from %s) but no grant file has this id; "
                                "not revoked implicitly: restore its file, or "
                                "run 'sharebus admin grants revoke %s'\n",
                                c->id, SB_GRANTS_TOPIC,
                                sb_gs_or(sb_gs_str(g, "reuser"), "?"),
                                sb_gs_or(sb_gs_str(g, "dataset"), "?"),
                                sb_grant_version_status(c->cur),
                                sb_gs_or(c->cur->origin, "unknown file"),
                                c->id);
                        break;
                }
        }
}

json_t *sb_grant_plan_json(const sb_grant_plan_t *plan)
{
        json_t *changes = json_array(), *j;
        size_t i;

        if (!changes)
                return NULL;
        for (i = 0; i < plan->cnt; i++) {
                const sb_grant_change_t *c = &plan->changes[i];
                const json_t *g = sb_grant_change_json(c);

                if (json_array_append_new(
                        changes,
                        json_pack(
                            "{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:O?, "
                            "s:s?, s:s?}",
                            "id", c->id, "action",
                            sb_grant_action2str(c->action), "file",
                            c->file ? c->file->origin : NULL, "reuser",
                            sb_gs_str(g, "reuser"), "dataset",
                            sb_gs_str(g, "dataset"), "status",
                            sb_gs_str(g, "status"), "topic_status",
                            c->cur ? sb_grant_version_status(c->cur) : NULL,
                            "keys", c->keys, "change", c->change, "reason",
                            c->reason))) {
                        json_decref(changes);
                        return NULL;
                }
        }
        j = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:o}", "topic", SB_GRANTS_TOPIC, "files",
            (json_int_t)plan->file_cnt, "on_topic", (json_int_t)plan->topic_cnt,
            "pending", (json_int_t)sb_grant_plan_pending(plan), "drift",
            (json_int_t)sb_grant_plan_drift(plan), "changes", changes);
        return j;
}

/*
 * Values
 */

char *sb_grant_value(const json_t *grant)
{
        return json_dumps(grant, JSON_COMPACT | JSON_SORT_KEYS);
}

json_t *sb_grant_audit_entry(const char *author, const char *id,
                             const json_t *grant, const char *change,
                             int64_t at_ms)
{
        return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:I}", "op",
                         "grant.change", "author", author, "grant_id", id,
                         "reuser", sb_gs_str(grant, "reuser"), "dataset",
                         sb_gs_str(grant, "dataset"), "change", change,
                         "status", sb_gs_str(grant, "status"), "at",
                         (json_int_t)at_ms);
}

sb_err_t sb_grant_revocation(const char *id, const sb_grant_state_t *st,
                             const sb_grant_file_t *files, size_t file_cnt,
                             json_t **outp, const char **originp, int *alreadyp,
                             char *errstr, size_t errstr_size)
{
        const sb_grant_version_t *v = sb_grant_state_get(st, id);
        const sb_grant_file_t *f = NULL;
        const json_t *base = NULL;
        size_t i;

        *outp = NULL;
        *originp = NULL;
        *alreadyp = 0;
        for (i = 0; files && i < file_cnt; i++)
                if (!strcmp(files[i].id, id))
                        f = &files[i];
        if (v && sb_grant_version_revoked(v)) {
                *alreadyp = 1;
                return SB_OK;
        }
        if (v && v->kind == SB_GRANT_V_OBJECT) {
                base = v->json;
                *originp = v->origin ? v->origin : f ? f->origin : NULL;
        } else if (f) {
                /* Not published yet, or its version is unreadable. */
                base = f->json;
                *originp = f->origin;
        } else if (v) {
                return sb_seterr(errstr, errstr_size, SB_ERR_NOT_FOUND,
                                 "grant '%s': its version on %s (partition "
                                 "%" PRId32 ", offset %" PRId64
                                 ") is not a grant, and no grant file has "
                                 "this id; nothing revoked",
                                 id, SB_GRANTS_TOPIC, v->partition, v->offset);
        } else {
                return sb_seterr(errstr, errstr_size, SB_ERR_NOT_FOUND,
                                 "grant '%s' is neither on %s nor in a grant "
                                 "file; nothing revoked ('sharebus admin "
                                 "grants list' shows the grants)",
                                 id, SB_GRANTS_TOPIC);
        }
        *outp = json_deep_copy(base);
        if (!*outp ||
            json_object_set_new(*outp, "status", json_string("revoked"))) {
                json_decref(*outp);
                *outp = NULL;
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        }
        return SB_OK;
}

/*
 * Kafka
 */

sb_grantadm_t *sb_grantadm_new(const sb_admin_cfg_t *cfg, char *errstr,
                               size_t errstr_size)
{
        sb_grantadm_t *gs;

        gs = calloc(1, sizeof(*gs));
        if (!gs) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        gs->cfg = cfg;
        snprintf(gs->source, sizeof(gs->source), "sharebus://admin/%s",
                 cfg->client_id);
        gs->reader = sb_reader_new(cfg, "grants", errstr, errstr_size);
        if (!gs->reader) {
                sb_grantadm_destroy(gs);
                return NULL;
        }
        return gs;
}

void sb_grantadm_destroy(sb_grantadm_t *gs)
{
        if (!gs)
                return;
        if (gs->producer)
                rd_kafka_destroy(gs->producer);
        sb_reader_destroy(gs->reader);
        sb_audit_chain_destroy(gs->chain);
        sb_signkey_destroy(gs->audit_key);
        free(gs);
}

/*
 * The audit chain of the grants writer (chain id SB_GRANTS_TXN_ID), where
 * it stands on _sb.audit now that init_transactions() fenced every earlier
 * writer.
 */
static sb_err_t sb_grants_chain(sb_grantadm_t *gs, char *errstr,
                                size_t errstr_size)
{
        char client_id[300];
        sb_err_t err;
        int due; /* each publication ends with a checkpoint anyway */

        if (!gs->chain) {
                if ((err = sb_crypto_init(errstr, errstr_size)))
                        return err;
                if (gs->cfg->audit_key_file &&
                    (err =
                         sb_signkey_load(gs->cfg->audit_key_file,
                                         &gs->audit_key, errstr, errstr_size)))
                        return err;
                if (!gs->audit_key)
                        sb_log(SB_LOG_WARN, "ADMIN",
                               "no audit_key_file in the admin config: the "
                               "audit chain '%s' is linked but no checkpoint "
                               "is signed",
                               SB_GRANTS_TXN_ID);
                gs->chain = sb_audit_chain_new(SB_GRANTS_TXN_ID, gs->audit_key,
                                               0, errstr, errstr_size);
                if (!gs->chain)
                        return SB_ERR_NOMEM;
        }
        snprintf(client_id, sizeof(client_id), "%s-audit", gs->cfg->client_id);
        return sb_audit_kafka_resume(
            gs->chain, SB_GRANTS_TXN_ID, &gs->cfg->kafka, client_id, client_id,
            (int)gs->cfg->timeout_ms, &due, errstr, errstr_size);
}

sb_err_t sb_grantadm_writer(sb_grantadm_t *gs, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        rd_kafka_error_t *kerr;
        char kerrstr[512], msg_timeout[32], txn_timeout[32];
        sb_err_t err;

        if (gs->producer)
                return SB_OK;
        conf = sb_kafka_producer_conf_new(&gs->cfg->kafka, gs->cfg->client_id,
                                          errstr, errstr_size);
        if (!conf)
                return SB_ERR_CONFIG;
        snprintf(msg_timeout, sizeof(msg_timeout), "%lld", gs->cfg->timeout_ms);
        /* Longer than a message's timeout, as librdkafka requires. */
        snprintf(txn_timeout, sizeof(txn_timeout), "%lld",
                 gs->cfg->timeout_ms + 30000);
        if (sb_kafka_conf_set(conf, "transactional.id", SB_GRANTS_TXN_ID,
                              errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
            sb_kafka_conf_set(conf, "message.timeout.ms", msg_timeout, errstr,
                              errstr_size) ||
            sb_kafka_conf_set(conf, "transaction.timeout.ms", txn_timeout,
                              errstr, errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return SB_ERR_CONFIG;
        }
        gs->producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerrstr, sizeof(kerrstr));
        if (!gs->producer) {
                rd_kafka_conf_destroy(conf);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "cannot create the %s writer: %s",
                                 SB_GRANTS_TOPIC, kerrstr);
        }
        kerr =
            rd_kafka_init_transactions(gs->producer, (int)gs->cfg->timeout_ms);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "cannot initialise transactions (transactional.id "
                          "'%s'): %s",
                          SB_GRANTS_TXN_ID, rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                rd_kafka_destroy(gs->producer);
                gs->producer = NULL;
                return SB_ERR_KAFKA;
        }
        if ((err = sb_grants_chain(gs, errstr, errstr_size))) {
                rd_kafka_destroy(gs->producer);
                gs->producer = NULL;
        }
        return err;
}

/* Partitions of `topic`; SB_ERR_NOT_FOUND when it does not exist. */
static sb_err_t sb_grants_partitions(sb_grantadm_t *gs, rd_kafka_t *rk,
                                     const char *topic, int *cntp, char *errstr,
                                     size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t kerr;
        sb_err_t err = SB_OK;

        if (!rkt)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "topic '%s': %s", topic,
                                 rd_kafka_err2str(rd_kafka_last_error()));
        kerr = rd_kafka_metadata(rk, 0, rkt, &md, (int)gs->cfg->timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (kerr)
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "metadata of topic '%s': %s", topic,
                                 rd_kafka_err2str(kerr));
        if (md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt < 1)
                err = sb_seterr(
                    errstr, errstr_size,
                    md->topic_cnt != 1 ||
                            md->topics[0].err ==
                                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                        ? SB_ERR_NOT_FOUND
                        : SB_ERR_KAFKA,
                    "topic '%s': %s (run 'sharebus admin topics apply')", topic,
                    md->topic_cnt && md->topics[0].err
                        ? rd_kafka_err2str(md->topics[0].err)
                        : "not found");
        else
                *cntp = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        return err;
}

/* The last value of header `name`, as a new string; NULL if absent. */
static char *sb_grants_header(const rd_kafka_message_t *m, const char *name)
{
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;

        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len) || !v)
                return NULL;
        return strndup(v, len);
}

/* One message of _sb.grants into the state. */
static sb_err_t sb_grants_take(sb_grant_state_t *st,
                               const rd_kafka_message_t *m, char *errstr,
                               size_t errstr_size)
{
        char *id = NULL, *origin, *time, *source, when[32];
        rd_kafka_timestamp_type_t tstype;
        json_t *json = NULL;
        json_error_t jerr;
        int unreadable = 0;
        int64_t ts;
        sb_err_t err;

        if (!m->key || m->key_len == 0) {
                sb_log(SB_LOG_WARN, "ADMIN",
                       "%s partition %" PRId32 " offset %" PRId64
                       ": no key (grant id); skipped",
                       SB_GRANTS_TOPIC, m->partition, m->offset);
                return SB_OK;
        }
        id = strndup(m->key, m->key_len);
        if (m->payload) {
                json = json_loadb(m->payload, m->len, JSON_REJECT_DUPLICATES,
                                  &jerr);
                unreadable = !json_is_object(json);
        }
        origin = sb_grants_header(m, SB_GRANTS_HDR_ORIGIN);
        time = sb_grants_header(m, "ce_time");
        source = sb_grants_header(m, "ce_source");
        ts = rd_kafka_message_timestamp(m, &tstype);
        when[0] = '\0';
        if (!time && ts >= 0)
                sb_time_format(ts, when);
        err = id ? sb_grant_state_put(st, id, json, unreadable, origin,
                                      time ? time : when, source, m->partition,
                                      m->offset)
                 : SB_ERR_NOMEM;
        if (!id)
                json_decref(json);
        free(id);
        free(origin);
        free(time);
        free(source);
        if (err)
                return sb_seterr(errstr, errstr_size, err, "out of memory");
        return SB_OK;
}

static sb_err_t sb_grants_on_msg(const rd_kafka_message_t *m, void *opaque,
                                 char *errstr, size_t errstr_size)
{
        return sb_grants_take(opaque, m, errstr, errstr_size);
}

sb_err_t sb_grantadm_read(sb_grantadm_t *gs, sb_grant_state_t *st, char *errstr,
                          size_t errstr_size)
{
        memset(st, 0, sizeof(*st));
        return sb_reader_read(gs->reader, SB_GRANTS_TOPIC, sb_grants_on_msg, st,
                              errstr, errstr_size);
}

/* Produces one message in the open transaction; takes `hdrs`. */
static sb_err_t sb_grants_produce(sb_grantadm_t *gs, const char *topic,
                                  const char *key, const char *value,
                                  rd_kafka_headers_t *hdrs, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_resp_err_t kerr;

        for (;;) {
                kerr = rd_kafka_producev(
                    gs->producer, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_KEY(key, strlen(key)),
                    RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(gs->producer, 100);
        }
        if (kerr) {
                rd_kafka_headers_destroy(hdrs);
                return sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                                 "grant '%s': produce to '%s': %s", key, topic,
                                 rd_kafka_err2str(kerr));
        }
        rd_kafka_poll(gs->producer, 0);
        return SB_OK;
}

/* A checkpoint of the audit chain (`text`, borrowed), keyed by the chain
 * id, in the open transaction. */
static sb_err_t sb_grants_produce_audit(sb_grantadm_t *gs, const char *text,
                                        char *errstr, size_t errstr_size)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);

        if (!h)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        rd_kafka_header_add(h, "content-type", -1, "application/json", -1);
        return sb_grants_produce(gs, SB_GRANTS_AUDIT_TOPIC, SB_GRANTS_TXN_ID,
                                 text, h, errstr, errstr_size);
}

/* A checkpoint covering the chain so far, when there is a key and
 * something new to cover. */
static sb_err_t sb_grants_checkpoint(sb_grantadm_t *gs, char *errstr,
                                     size_t errstr_size)
{
        char *cp = NULL;
        sb_err_t err;

        if (!gs->audit_key)
                return SB_OK;
        err = sb_audit_chain_checkpoint(gs->chain, &cp, errstr, errstr_size);
        if (!err && cp)
                err = sb_grants_produce_audit(gs, cp, errstr, errstr_size);
        free(cp);
        return err;
}

/* One grant version and its audit entry, in the open transaction. */
static sb_err_t sb_grants_produce_one(sb_grantadm_t *gs,
                                      const sb_grant_pub_t *p, const char *at,
                                      int64_t at_ms, char *errstr,
                                      size_t errstr_size)
{
        char *value = sb_grant_value(p->json);
        json_t *e =
            sb_grant_audit_entry(gs->source, p->id, p->json, p->change, at_ms);
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_headers_t *ah = rd_kafka_headers_new(1);
        char *entry = NULL, *cp = NULL;
        sb_err_t err;

        if (!value || !e || !h || !ah) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        if ((err = sb_audit_chain_append(gs->chain, e, &entry, &cp, errstr,
                                         errstr_size)))
                goto done;
        rd_kafka_header_add(h, "content-type", -1, "application/json", -1);
        if (p->origin)
                rd_kafka_header_add(h, SB_GRANTS_HDR_ORIGIN, -1, p->origin, -1);
        rd_kafka_header_add(h, "ce_time", -1, at, -1);
        rd_kafka_header_add(h, "ce_source", -1, gs->source, -1);
        rd_kafka_header_add(ah, "content-type", -1, "application/json", -1);
        err = sb_grants_produce(gs, SB_GRANTS_TOPIC, p->id, value, h, errstr,
                                errstr_size);
        h = NULL;
        if (!err)
                err = sb_grants_produce(gs, SB_GRANTS_AUDIT_TOPIC, p->id, entry,
                                        ah, errstr, errstr_size);
        ah = NULL;
        if (!err && cp)
                err = sb_grants_produce_audit(gs, cp, errstr, errstr_size);
done:
        if (h)
                rd_kafka_headers_destroy(h);
        if (ah)
                rd_kafka_headers_destroy(ah);
        json_decref(e);
        free(value);
        free(entry);
        free(cp);
        return err;
}

static void sb_grants_abort(sb_grantadm_t *gs)
{
        rd_kafka_error_t *kerr;

        sb_audit_chain_rollback(gs->chain);
        kerr =
            rd_kafka_abort_transaction(gs->producer, (int)gs->cfg->timeout_ms);
        if (kerr) {
                sb_log(SB_LOG_ERR, "ADMIN", "abort of the %s transaction: %s",
                       SB_GRANTS_TOPIC, rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
        }
}

/*
 * One transaction. *retryp is set when it was aborted on an error that
 * allows another attempt (librdkafka's "abortable" errors).
 */
static sb_err_t sb_grants_txn(sb_grantadm_t *gs, const sb_grant_pub_t *pubs,
                              size_t cnt, int64_t at_ms, int *retryp,
                              char *errstr, size_t errstr_size)
{
        rd_kafka_error_t *kerr;
        char at[32];
        sb_err_t err = SB_OK;
        size_t i;

        *retryp = 0;
        sb_time_format(at_ms, at);
        kerr = rd_kafka_begin_transaction(gs->producer);
        if (kerr) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "cannot begin a transaction on %s: %s; nothing "
                          "published",
                          SB_GRANTS_TOPIC, rd_kafka_error_string(kerr));
                rd_kafka_error_destroy(kerr);
                return SB_ERR_KAFKA;
        }
        sb_audit_chain_mark(gs->chain);
        for (i = 0; i < cnt && !err; i++)
                err = sb_grants_produce_one(gs, &pubs[i], at, at_ms, errstr,
                                            errstr_size);
        /* Each publication ends with a checkpoint, which also covers what
         * an earlier run left uncovered. */
        if (!err)
                err = sb_grants_checkpoint(gs, errstr, errstr_size);
        if (err) {
                sb_grants_abort(gs);
                return err;
        }
        kerr =
            rd_kafka_commit_transaction(gs->producer, (int)gs->cfg->timeout_ms);
        if (!kerr)
                return SB_OK;
        if (rd_kafka_error_txn_requires_abort(kerr)) {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "commit to %s failed: %s; nothing published",
                          SB_GRANTS_TOPIC, rd_kafka_error_string(kerr));
                sb_grants_abort(gs);
                *retryp = 1;
        } else if (rd_kafka_error_is_retriable(kerr)) {
                /* Committed or not, nobody can say (KAFKA-17754): retrying
                 * the commit is not safe. The next apply, after its
                 * init_transactions(), reads the outcome. */
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "commit to %s: %s; whether it was published is "
                          "unknown: run 'sharebus admin grants plan' to see, "
                          "then apply again (it publishes only what is "
                          "missing)",
                          SB_GRANTS_TOPIC, rd_kafka_error_string(kerr));
        } else {
                sb_seterr(errstr, errstr_size, SB_ERR_KAFKA,
                          "commit to %s failed: %s; nothing published%s",
                          SB_GRANTS_TOPIC, rd_kafka_error_string(kerr),
                          rd_kafka_error_code(kerr) == RD_KAFKA_RESP_ERR__FENCED
                              ? " (another 'sharebus admin grants' started "
                                "meanwhile: run plan again)"
                              : "");
        }
        rd_kafka_error_destroy(kerr);
        return SB_ERR_KAFKA;
}

sb_err_t sb_grantadm_publish(sb_grantadm_t *gs, const sb_grant_pub_t *pubs,
                             size_t cnt, int64_t at_ms, char *errstr,
                             size_t errstr_size)
{
        int attempt, retry, parts;
        sb_err_t err;

        if (!cnt)
                return SB_OK;
        if ((err = sb_grantadm_writer(gs, errstr, errstr_size)))
                return err;
        /* Both topics must exist: a message to a missing topic would wait
         * for it until its timeout, then abort everything. */
        if ((err = sb_grants_partitions(gs, gs->producer, SB_GRANTS_TOPIC,
                                        &parts, errstr, errstr_size)) ||
            (err = sb_grants_partitions(gs, gs->producer, SB_GRANTS_AUDIT_TOPIC,
                                        &parts, errstr, errstr_size)))
                return err;
        for (attempt = 1;; attempt++) {
                err = sb_grants_txn(gs, pubs, cnt, at_ms, &retry, errstr,
                                    errstr_size);
                if (!err || !retry || attempt == SB_GRANTS_TXN_ATTEMPTS)
                        return err;
                sb_log(SB_LOG_WARN, "ADMIN", "%s; trying again (%d of %d)",
                       errstr, attempt + 1, SB_GRANTS_TXN_ATTEMPTS);
        }
}

sb_err_t sb_grantadm_apply(sb_grantadm_t *gs, const sb_grant_plan_t *plan,
                           int64_t at_ms, char *errstr, size_t errstr_size)
{
        sb_grant_pub_t *pubs;
        size_t i, n = 0;
        sb_err_t err;

        pubs = calloc(plan->cnt + 1, sizeof(*pubs));
        if (!pubs)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        for (i = 0; i < plan->cnt; i++) {
                const sb_grant_change_t *c = &plan->changes[i];

                if (c->action != SB_GRANT_CREATE &&
                    c->action != SB_GRANT_UPDATE)
                        continue;
                pubs[n].id = c->id;
                pubs[n].json = c->file->json;
                pubs[n].origin = c->file->origin;
                pubs[n].change = c->change;
                n++;
        }
        err = sb_grantadm_publish(gs, pubs, n, at_ms, errstr, errstr_size);
        free(pubs);
        return err;
}
