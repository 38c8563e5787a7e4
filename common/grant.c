#include "grant.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

static const char *sb_grant_keys[] = {
    "id",          "reuser",       "dataset",
    "purposes",    "legal_basis",  "fields",
    "subject_key", "history_days", "retention_days",
    "rate",        "valid_from",   "valid_until",
    "allowed_ips", "contact",      "status",
    NULL};

/* Keys of DESIGN §5 whose limits this version does not enforce yet. */
static const char *sb_grant_unenforced[] = {NULL};

/* Highest rate a grant may name, per second and per day. */
#define SB_GRANT_MAX_RATE 1000000000LL

/* Longest history or retention a grant may name: 100 years. */
#define SB_GRANT_MAX_DAYS 36500

static const char *sb_avro_primitives[] = {"null",  "boolean", "int",
                                           "long",  "float",   "double",
                                           "bytes", "string",  NULL};

static int sb_is_primitive(const char *t)
{
        int i;

        for (i = 0; sb_avro_primitives[i]; i++)
                if (!strcmp(sb_avro_primitives[i], t))
                        return 1;
        return 0;
}

/* Named types of the dataset schema, by full name. */
typedef struct sb_named_s {
        json_t *defs;    /* fullname -> definition (borrowed refs) */
        json_t *emitted; /* fullname -> true once copied into the output */
} sb_named_t;

static char *sb_fullname(const json_t *def, const char *enclosing_ns)
{
        const char *name = json_string_value(json_object_get(def, "name"));
        const char *ns = json_string_value(json_object_get(def, "namespace"));
        char *full;

        if (!name)
                return NULL;
        if (strchr(name, '.'))
                return strdup(name);
        if (!ns)
                ns = enclosing_ns;
        if (!ns || !*ns)
                return strdup(name);
        if (asprintf(&full, "%s.%s", ns, name) == -1)
                return NULL;
        return full;
}

/* The namespace a full name defines for what it encloses. */
static char *sb_namespace_of(const char *fullname)
{
        const char *dot = strrchr(fullname, '.');

        return dot ? strndup(fullname, (size_t)(dot - fullname)) : strdup("");
}

static void sb_named_index(sb_named_t *nt, json_t *t, const char *ns)
{
        const char *kind;
        json_t *item;
        size_t i;

        if (json_is_array(t)) {
                json_array_foreach(t, i, item) sb_named_index(nt, item, ns);
                return;
        }
        if (!json_is_object(t))
                return;
        kind = json_string_value(json_object_get(t, "type"));
        if (!kind) {
                sb_named_index(nt, json_object_get(t, "type"), ns);
                return;
        }
        if (!strcmp(kind, "record") || !strcmp(kind, "error") ||
            !strcmp(kind, "enum") || !strcmp(kind, "fixed")) {
                char *full = sb_fullname(t, ns);
                char *inner;

                if (!full)
                        return;
                json_object_set(nt->defs, full, t);
                inner = sb_namespace_of(full);
                json_array_foreach(json_object_get(t, "fields"), i, item)
                    sb_named_index(nt, json_object_get(item, "type"), inner);
                free(inner);
                free(full);
        } else if (!strcmp(kind, "array")) {
                sb_named_index(nt, json_object_get(t, "items"), ns);
        } else if (!strcmp(kind, "map")) {
                sb_named_index(nt, json_object_get(t, "values"), ns);
        }
}

/*
 * Copies a field type into the output schema. Named types are written
 * with their full names, defined at first use and referenced after, so the
 * projection stays valid whichever fields were dropped.
 */
static json_t *sb_type_copy(sb_named_t *nt, json_t *t, const char *ns)
{
        json_t *out = NULL, *item, *c;
        const char *kind;
        size_t i;

        if (json_is_string(t)) {
                const char *ref = json_string_value(t);
                char *full;
                json_t *def;

                if (sb_is_primitive(ref))
                        return json_incref(t);
                if (strchr(ref, '.') || !ns || !*ns)
                        full = strdup(ref);
                else if (asprintf(&full, "%s.%s", ns, ref) == -1)
                        full = NULL;
                if (!full)
                        return NULL;
                def = json_object_get(nt->defs, full);
                if (!def || json_object_get(nt->emitted, full)) {
                        out = json_string(full);
                } else {
                        char *inner = sb_namespace_of(full);

                        out = sb_type_copy(nt, def, inner);
                        free(inner);
                }
                free(full);
                return out;
        }
        if (json_is_array(t)) {
                out = json_array();
                json_array_foreach(t, i, item)
                {
                        c = sb_type_copy(nt, item, ns);
                        if (!c || json_array_append_new(out, c)) {
                                json_decref(out);
                                return NULL;
                        }
                }
                return out;
        }
        if (!json_is_object(t))
                return NULL;
        kind = json_string_value(json_object_get(t, "type"));
        if (!kind)
                return sb_type_copy(nt, json_object_get(t, "type"), ns);
        if (!strcmp(kind, "record") || !strcmp(kind, "error") ||
            !strcmp(kind, "enum") || !strcmp(kind, "fixed")) {
                char *full = sb_fullname(t, ns), *inner;

                if (!full)
                        return NULL;
                if (json_object_get(nt->emitted, full)) {
                        out = json_string(full);
                        free(full);
                        return out;
                }
                json_object_set_new(nt->emitted, full, json_true());
                out = json_deep_copy(t);
                json_object_set_new(out, "name", json_string(full));
                json_object_del(out, "namespace");
                if (json_object_get(t, "fields")) {
                        json_t *fields = json_array();

                        inner = sb_namespace_of(full);
                        json_array_foreach(json_object_get(t, "fields"), i,
                                           item)
                        {
                                json_t *f = json_deep_copy(item);

                                c = sb_type_copy(
                                    nt, json_object_get(item, "type"), inner);
                                if (!c) {
                                        json_decref(f);
                                        json_decref(fields);
                                        json_decref(out);
                                        free(inner);
                                        free(full);
                                        return NULL;
                                }
                                json_object_set_new(f, "type", c);
                                json_array_append_new(fields, f);
                        }
                        json_object_set_new(out, "fields", fields);
                        free(inner);
                }
                free(full);
                return out;
        }
        out = json_deep_copy(t);
        if (!strcmp(kind, "array")) {
                c = sb_type_copy(nt, json_object_get(t, "items"), ns);
                if (!c)
                        goto fail;
                json_object_set_new(out, "items", c);
        } else if (!strcmp(kind, "map")) {
                c = sb_type_copy(nt, json_object_get(t, "values"), ns);
                if (!c)
                        goto fail;
                json_object_set_new(out, "values", c);
        }
        return out;
fail:
        json_decref(out);
        return NULL;
}

static void sb_avro_name_sanitise(char *s)
{
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '_')
                        *s = '_';
}

json_t *sb_grant_output_schema_json(const sb_schema_t *in, const char *grant_id,
                                    const char *const *fields,
                                    const sb_transform_t *transforms,
                                    size_t field_cnt, char *errstr,
                                    size_t errstr_size)
{
        sb_named_t nt = {json_object(), json_object()};
        json_t *out = NULL, *ofields, *f;
        char *top_ns = sb_namespace_of(in->fullname), *ns = NULL, *gid;
        const char *shortname = strrchr(in->fullname, '.');
        size_t i;

        shortname = shortname ? shortname + 1 : in->fullname;
        gid = strdup(grant_id);
        if (!gid || !top_ns)
                goto done;
        sb_avro_name_sanitise(gid);
        if (asprintf(&ns, "eu.sharebus.grant.%s%s",
                     isdigit((unsigned char)*gid) ? "g" : "", gid) == -1) {
                ns = NULL;
                goto done;
        }
        json_array_foreach(json_object_get(in->json, "fields"), i, f)
            sb_named_index(&nt, json_object_get(f, "type"), top_ns);

        out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[]}", "type", "record",
                        "name", shortname, "namespace", ns, "doc",
                        "Projection of the dataset schema onto the fields "
                        "granted to one reuser.",
                        "sb.grant", grant_id, "fields");
        if (!out)
                goto done;
        ofields = json_object_get(out, "fields");
        json_array_append_new(
            ofields,
            json_pack("{s:s, s:s, s:s, s:s}", "name", SB_PSEUDONYM_FIELD,
                      "type", "string", "doc",
                      "Pseudonym of the data subject, specific to this reuser "
                      "and dataset (keyed BLAKE2b): it cannot be joined with "
                      "another reuser's stream.",
                      "pii", "pseudonym"));
        for (i = 0; i < field_cnt; i++) {
                const json_t *src = sb_schema_field(in, fields[i]);
                json_t *copy, *t = NULL;

                /* Transforms apply to primitive and logical types only
                 * (transform.h), which define no named type. */
                if (src && transforms && transforms[i].op != SB_TR_KEEP) {
                        copy = sb_transform_field(&transforms[i], src);
                        t = copy;
                } else {
                        copy = json_deep_copy(src);
                        t = copy ? sb_type_copy(&nt,
                                                json_object_get(src, "type"),
                                                top_ns)
                                 : NULL;
                        if (t)
                                json_object_set_new(copy, "type", t);
                }
                if (!t) {
                        json_decref(copy);
                        json_decref(out);
                        out = NULL;
                        sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                  "schema '%s': cannot project field '%s'",
                                  in->origin, fields[i]);
                        goto done;
                }
                json_array_append_new(ofields, copy);
        }
done:
        if (!out && errstr && !*errstr)
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
        json_decref(nt.defs);
        json_decref(nt.emitted);
        free(top_ns);
        free(ns);
        free(gid);
        return out;
}

static int sb_reuser_name_valid(const char *s)
{
        size_t i, n = strlen(s);

        if (n == 0 || n > 64 || !islower((unsigned char)s[0]))
                return 0;
        for (i = 0; i < n; i++)
                if (!islower((unsigned char)s[i]) &&
                    !isdigit((unsigned char)s[i]) && s[i] != '-')
                        return 0;
        return 1;
}

#define GRANT_ERR(...)                                                         \
        do {                                                                   \
                sb_seterr(errstr, errstr_size, SB_ERR_GRANT, __VA_ARGS__);     \
                goto fail;                                                     \
        } while (0)

/* An optional whole number of days, 1 to SB_GRANT_MAX_DAYS; 0 if absent. */
static sb_err_t sb_grant_days(const json_t *json, const char *key, int *out,
                              const char *origin, char *errstr,
                              size_t errstr_size)
{
        const json_t *v = json_object_get(json, key);

        *out = 0;
        if (!v)
                return SB_OK;
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > SB_GRANT_MAX_DAYS)
                return sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                                 "grant '%s': key '%s': expected a whole "
                                 "number of days from 1 to %d",
                                 origin, key, SB_GRANT_MAX_DAYS);
        *out = (int)json_integer_value(v);
        return SB_OK;
}

/*
 * The optional "rate" object (DESIGN §5, CNIL R5.2-02): records_per_second
 * and records_per_day, positive whole numbers, at least one of the two;
 * 0 where absent (no limit). Records over it wait, they are never dropped.
 */
static sb_err_t sb_grant_rate(const json_t *json, sb_grant_t *g,
                              const char *origin, char *errstr,
                              size_t errstr_size)
{
        const json_t *rate = json_object_get(json, "rate"), *v;
        const char *key;

        g->rate_per_second = g->rate_per_day = 0;
        if (!rate)
                return SB_OK;
        if (!json_is_object(rate) || json_object_size(rate) == 0)
                return sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                                 "grant '%s': key 'rate': expected an object "
                                 "with records_per_second and/or "
                                 "records_per_day",
                                 origin);
        json_object_foreach((json_t *)rate, key, v)
        {
                int64_t *out;

                if (!strcmp(key, "records_per_second"))
                        out = &g->rate_per_second;
                else if (!strcmp(key, "records_per_day"))
                        out = &g->rate_per_day;
                else
                        return sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                                         "grant '%s': key 'rate': unknown key "
                                         "'%s' (expected records_per_second "
                                         "or records_per_day)",
                                         origin, key);
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > SB_GRANT_MAX_RATE)
                        return sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                                         "grant '%s': key 'rate.%s': expected "
                                         "a whole number from 1 to %lld",
                                         origin, key, SB_GRANT_MAX_RATE);
                *out = (int64_t)json_integer_value(v);
        }
        return SB_OK;
}

static char *sb_grant_string(json_t *json, const char *key, int required,
                             const char *origin, char *errstr,
                             size_t errstr_size, int *failed)
{
        json_t *v = json_object_get(json, key);
        char *s;

        if (!v) {
                if (required) {
                        sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                                  "grant '%s': missing required key '%s'",
                                  origin, key);
                        *failed = 1;
                }
                return NULL;
        }
        if (!json_is_string(v) || !*json_string_value(v)) {
                sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                          "grant '%s': key '%s': expected a non-empty string",
                          origin, key);
                *failed = 1;
                return NULL;
        }
        s = strdup(json_string_value(v));
        if (!s)
                *failed = 1;
        return s;
}

static int sb_string_array_valid(const json_t *a, int nonempty)
{
        const json_t *v;
        size_t i;

        if (!json_is_array(a) || (nonempty && json_array_size(a) == 0))
                return 0;
        json_array_foreach(a, i, v) if (!json_is_string(v) ||
                                        !*json_string_value(v)) return 0;
        return 1;
}

sb_grant_t *sb_grant_new(json_t *json, const char *origin,
                         const sb_catalog_t *cat, char *errstr,
                         size_t errstr_size)
{
        const char **kept = NULL;
        sb_transform_t *trs = NULL;
        size_t kept_cnt = 0, i;
        sb_grant_t *g;
        const char *key, *subject_key = "pseudonym";
        json_t *v, *fields, *out_json;
        int failed = 0;

        g = calloc(1, sizeof(*g));
        if (!g) {
                json_decref(json);
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        g->origin = strdup(origin);
        if (!json_is_object(json))
                GRANT_ERR("grant '%s': expected a JSON object", origin);

        json_object_foreach(json, key, v)
        {
                for (i = 0; sb_grant_keys[i]; i++)
                        if (!strcmp(sb_grant_keys[i], key))
                                break;
                if (!sb_grant_keys[i])
                        GRANT_ERR("grant '%s': unknown key '%s'", origin, key);
                for (i = 0; sb_grant_unenforced[i]; i++)
                        if (!strcmp(sb_grant_unenforced[i], key))
                                GRANT_ERR("grant '%s': key '%s' is not "
                                          "enforced by this version of "
                                          "sharebus; remove it rather than "
                                          "rely on it",
                                          origin, key);
        }

        g->id = sb_grant_string(json, "id", 1, origin, errstr, errstr_size,
                                &failed);
        g->reuser = sb_grant_string(json, "reuser", 1, origin, errstr,
                                    errstr_size, &failed);
        g->dataset = sb_grant_string(json, "dataset", 1, origin, errstr,
                                     errstr_size, &failed);
        g->legal_basis = sb_grant_string(json, "legal_basis", 1, origin, errstr,
                                         errstr_size, &failed);
        g->status = sb_grant_string(json, "status", 1, origin, errstr,
                                    errstr_size, &failed);
        g->contact = sb_grant_string(json, "contact", 0, origin, errstr,
                                     errstr_size, &failed);
        if (failed)
                goto fail;
        if (!sb_reuser_name_valid(g->reuser))
                GRANT_ERR("grant '%s': key 'reuser': '%s' must be lower-case "
                          "letters, digits and '-', starting with a letter "
                          "(it names Kafka topics)",
                          origin, g->reuser);
        if (strcmp(g->status, "approved") && strcmp(g->status, "suspended") &&
            strcmp(g->status, "revoked"))
                GRANT_ERR("grant '%s': key 'status': expected approved, "
                          "suspended or revoked, got '%s'",
                          origin, g->status);

        v = json_object_get(json, "purposes");
        if (!sb_string_array_valid(v, 1))
                GRANT_ERR("grant '%s': key 'purposes': expected a non-empty "
                          "array of strings",
                          origin);
        g->purposes = json_incref(v);

        v = json_object_get(json, "allowed_ips");
        if (v) {
                json_t *ip;

                if (!sb_string_array_valid(v, 0))
                        GRANT_ERR("grant '%s': key 'allowed_ips': expected an "
                                  "array of IP addresses",
                                  origin);
                json_array_foreach(v, i, ip)
                {
                        unsigned char buf[16];
                        const char *s = json_string_value(ip);

                        if (inet_pton(AF_INET, s, buf) != 1 &&
                            inet_pton(AF_INET6, s, buf) != 1)
                                GRANT_ERR("grant '%s': key 'allowed_ips' item "
                                          "%zu: '%s' is not an IP address",
                                          origin, i, s);
                }
                g->allowed_ips = json_incref(v);
        }

        v = json_object_get(json, "subject_key");
        if (v) {
                subject_key = json_string_value(v);
                if (!subject_key || strcmp(subject_key, "pseudonym"))
                        GRANT_ERR("grant '%s': key 'subject_key': only "
                                  "\"pseudonym\" is supported",
                                  origin);
        }

        if ((v = json_object_get(json, "valid_from"))) {
                if (!json_is_string(v) ||
                    sb_time_parse(json_string_value(v), &g->valid_from_ms))
                        GRANT_ERR("grant '%s': key 'valid_from': expected an "
                                  "RFC 3339 time such as "
                                  "2026-12-01T00:00:00Z, got \"%s\"",
                                  origin,
                                  json_is_string(v) ? json_string_value(v)
                                                    : "a non-string");
                g->has_valid_from = 1;
        }
        if ((v = json_object_get(json, "valid_until"))) {
                if (!json_is_string(v) ||
                    sb_time_parse(json_string_value(v), &g->valid_until_ms))
                        GRANT_ERR("grant '%s': key 'valid_until': expected an "
                                  "RFC 3339 time such as "
                                  "2027-06-01T00:00:00Z, got \"%s\"",
                                  origin,
                                  json_is_string(v) ? json_string_value(v)
                                                    : "a non-string");
                g->has_valid_until = 1;
        }
        if (g->has_valid_from && g->has_valid_until &&
            g->valid_until_ms <= g->valid_from_ms)
                GRANT_ERR("grant '%s': key 'valid_until': must be after "
                          "valid_from",
                          origin);

        if (sb_grant_days(json, "history_days", &g->history_days, origin,
                          errstr, errstr_size) ||
            sb_grant_days(json, "retention_days", &g->retention_days, origin,
                          errstr, errstr_size) ||
            sb_grant_rate(json, g, origin, errstr, errstr_size))
                goto fail;

        g->in = sb_catalog_dataset(cat, g->dataset);
        if (!g->in)
                GRANT_ERR("grant '%s': key 'dataset': no schema declares "
                          "dataset '%s'",
                          origin, g->dataset);

        fields = json_object_get(json, "fields");
        if (!json_is_object(fields))
                GRANT_ERR("grant '%s': key 'fields': expected an object of "
                          "field name to transform",
                          origin);
        kept = calloc(json_object_size(fields) + 1, sizeof(*kept));
        trs = calloc(json_object_size(fields) + 1, sizeof(*trs));
        if (!kept || !trs)
                GRANT_ERR("out of memory");
        /* Output order follows the dataset schema, not the grant file. */
        json_array_foreach(json_object_get(g->in->json, "fields"), i, v)
        {
                const char *name =
                    json_string_value(json_object_get(v, "name"));
                json_t *spec = json_object_get(fields, name);
                char what[1024];

                if (!spec)
                        continue;
                snprintf(what, sizeof(what), "grant '%s': key 'fields.%s'",
                         origin, name);
                if (sb_transform_parse(&trs[kept_cnt], spec, v, what, errstr,
                                       errstr_size))
                        goto fail;
                if (trs[kept_cnt].op == SB_TR_DROP)
                        continue;
                if (!strcmp(name, g->in->subject_field))
                        GRANT_ERR("grant '%s': key 'fields.%s': the subject "
                                  "identifier is never shared; reusers get "
                                  "a pseudonym (subject_key)",
                                  origin, name);
                if (!strcmp(name, SB_PSEUDONYM_FIELD))
                        GRANT_ERR("grant '%s': key 'fields.%s': the name is "
                                  "reserved for the subject pseudonym",
                                  origin, name);
                if (trs[kept_cnt].op == SB_TR_PSEUDONYMISE)
                        g->pseudonymises = 1;
                kept[kept_cnt++] = name;
        }
        json_object_foreach(fields, key, v)
        {
                if (!sb_schema_field(g->in, key))
                        GRANT_ERR("grant '%s': key 'fields.%s': dataset '%s' "
                                  "has no field '%s'",
                                  origin, key, g->dataset, key);
        }
        if (kept_cnt == 0)
                GRANT_ERR("grant '%s': key 'fields': keeps no field", origin);

        if (asprintf(&g->topic, "sb.out.%s.%s", g->reuser, g->dataset) == -1) {
                g->topic = NULL;
                GRANT_ERR("out of memory");
        }

        out_json = sb_grant_output_schema_json(g->in, g->id, kept, trs,
                                               kept_cnt, errstr, errstr_size);
        if (!out_json)
                goto fail;
        g->out = sb_schema_new(out_json, origin, errstr, errstr_size);
        if (!g->out)
                goto fail;
        g->map_cnt = kept_cnt + 1;
        g->map = calloc(g->map_cnt, sizeof(*g->map));
        g->tr = calloc(g->map_cnt, sizeof(*g->tr));
        if (!g->map || !g->tr)
                GRANT_ERR("out of memory");
        g->tr[0].op = SB_TR_KEEP; /* the pseudonym, set apart */
        for (i = 0; i < kept_cnt; i++) {
                size_t j;
                json_t *f;

                g->tr[i + 1] = trs[i];

                json_array_foreach(json_object_get(g->in->json, "fields"), j, f)
                {
                        if (!strcmp(
                                json_string_value(json_object_get(f, "name")),
                                kept[i]))
                                g->map[i + 1] = j;
                }
        }
        free(kept);
        free(trs);
        json_decref(json);
        return g;

fail:
        free(kept);
        free(trs);
        json_decref(json);
        sb_grant_destroy(g);
        return NULL;
}

sb_grant_t *sb_grant_load(const char *path, const sb_catalog_t *cat,
                          char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *json;

        json = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!json) {
                sb_seterr(errstr, errstr_size, SB_ERR_GRANT,
                          "grant '%s' line %d: %s", path, jerr.line, jerr.text);
                return NULL;
        }
        return sb_grant_new(json, path, cat, errstr, errstr_size);
}

void sb_grant_destroy(sb_grant_t *g)
{
        if (!g)
                return;
        free(g->origin);
        free(g->id);
        free(g->reuser);
        free(g->dataset);
        free(g->legal_basis);
        free(g->contact);
        free(g->status);
        free(g->topic);
        json_decref(g->purposes);
        json_decref(g->allowed_ips);
        sb_schema_destroy(g->out);
        free(g->map);
        free(g->tr);
        free(g);
}

static int sb_name_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

sb_err_t sb_grants_load_dir(const char *dir, const sb_catalog_t *cat,
                            sb_grant_t ***grantsp, size_t *cntp, char *errstr,
                            size_t errstr_size)
{
        sb_grant_t **grants = NULL;
        char **names = NULL;
        size_t n = 0, cnt = 0, i, j;
        struct dirent *de;
        sb_err_t err = SB_OK;
        DIR *d;

        d = opendir(dir);
        if (!d)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "grants directory '%s': %s", dir,
                                 strerror(errno));
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                char **nn;

                if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
                        continue;
                nn = realloc(names, (n + 1) * sizeof(*names));
                if (!nn)
                        break;
                names = nn;
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) == -1)
                        break;
                n++;
        }
        closedir(d);
        if (n)
                qsort(names, n, sizeof(*names), sb_name_cmp);
        grants = calloc(n ? n : 1, sizeof(*grants));
        if (!grants) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto done;
        }
        for (i = 0; i < n; i++) {
                sb_grant_t *g =
                    sb_grant_load(names[i], cat, errstr, errstr_size);

                if (!g) {
                        err = SB_ERR_GRANT;
                        goto done;
                }
                grants[cnt++] = g;
                for (j = 0; j + 1 < cnt; j++) {
                        if (!strcmp(grants[j]->id, g->id)) {
                                err = sb_seterr(
                                    errstr, errstr_size, SB_ERR_GRANT,
                                    "grant '%s': id '%s' already used by '%s'",
                                    g->origin, g->id, grants[j]->origin);
                                goto done;
                        }
                        if (!strcmp(grants[j]->topic, g->topic)) {
                                err = sb_seterr(
                                    errstr, errstr_size, SB_ERR_GRANT,
                                    "grant '%s': reuser '%s' already has a "
                                    "grant on dataset '%s' ('%s'); one grant "
                                    "per reuser and dataset",
                                    g->origin, g->reuser, g->dataset,
                                    grants[j]->origin);
                                goto done;
                        }
                }
        }
done:
        for (i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (err) {
                sb_grants_destroy(grants, cnt);
                return err;
        }
        *grantsp = grants;
        *cntp = cnt;
        return SB_OK;
}

void sb_grants_destroy(sb_grant_t **grants, size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++)
                sb_grant_destroy(grants[i]);
        free(grants);
}

int sb_grant_active(const sb_grant_t *g, int64_t now_ms)
{
        if (strcmp(g->status, "approved"))
                return 0;
        if (g->has_valid_from && now_ms < g->valid_from_ms)
                return 0;
        if (g->has_valid_until && now_ms >= g->valid_until_ms)
                return 0;
        return 1;
}

sb_err_t sb_grant_project(const sb_grant_t *g, const sb_pseudonymiser_t *ps,
                          avro_value_t *in, const char *pseudonym,
                          avro_value_t *out, char *errstr, size_t errstr_size)
{
        char reason[256];
        avro_value_t src, dst;
        const char *name;
        sb_err_t err;
        size_t i;

        avro_value_reset(out);
        if (avro_value_get_by_index(out, 0, &dst, NULL) ||
            avro_value_set_string(&dst, pseudonym))
                goto fail;
        for (i = 1; i < g->map_cnt; i++) {
                if (avro_value_get_by_index(in, g->map[i], &src, NULL) ||
                    avro_value_get_by_index(out, i, &dst, &name))
                        goto fail;
                if ((err = sb_transform_apply(&g->tr[i], ps, &src, &dst, reason,
                                              sizeof(reason))))
                        return sb_seterr(errstr, errstr_size, err,
                                         "grant '%s': field '%s': %s", g->id,
                                         name, reason);
        }
        return SB_OK;
fail:
        return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                         "grant '%s': projection failed: %s", g->id,
                         avro_strerror());
}
