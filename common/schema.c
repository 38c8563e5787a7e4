#include "schema.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"

struct sb_catalog_s {
        sb_schema_t **schemas;
        size_t cnt;
};

sb_err_t sb_buf_reserve(sb_buf_t *b, size_t cap)
{
        char *p;
        size_t ncap;

        if (cap <= b->cap)
                return SB_OK;
        ncap = b->cap ? b->cap : 256;
        while (ncap < cap)
                ncap *= 2;
        p = realloc(b->data, ncap);
        if (!p)
                return SB_ERR_NOMEM;
        b->data = p;
        b->cap = ncap;
        return SB_OK;
}

void sb_buf_release(sb_buf_t *b)
{
        free(b->data);
        memset(b, 0, sizeof(*b));
}

static char *sb_strdup_attr(const json_t *json, const char *attr)
{
        const char *v = json_string_value(json_object_get(json, attr));

        return v ? strdup(v) : NULL;
}

const json_t *sb_schema_field(const sb_schema_t *s, const char *name)
{
        const json_t *fields = json_object_get(s->json, "fields");
        const json_t *f;
        size_t i;

        json_array_foreach(fields, i, f)
        {
                const char *n = json_string_value(json_object_get(f, "name"));

                if (n && !strcmp(n, name))
                        return f;
        }
        return NULL;
}

/* A dataset attribute must name a top-level field of string type. */
static sb_err_t sb_schema_check_key_field(sb_schema_t *s, const char *attr,
                                          const char *field, char *errstr,
                                          size_t errstr_size)
{
        const json_t *f = sb_schema_field(s, field), *t;

        if (!f)
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schema '%s': \"%s\" names field '%s', which "
                                 "the schema does not have",
                                 s->origin, attr, field);
        t = json_object_get(f, "type");
        if (json_is_object(t))
                t = json_object_get(t, "type");
        if (!json_is_string(t) || strcmp(json_string_value(t), "string"))
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schema '%s': \"%s\" field '%s' must be a "
                                 "non-null string",
                                 s->origin, attr, field);
        return SB_OK;
}

/* "sb.event_time" must name a timestamp or date field, maybe nullable. */
static sb_err_t sb_schema_check_event_time(sb_schema_t *s, char *errstr,
                                           size_t errstr_size)
{
        const json_t *f = sb_schema_field(s, s->event_time_field), *t, *x;
        const char *type = NULL, *logical = NULL;
        size_t i;

        if (!f)
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schema '%s': \"sb.event_time\" names field "
                                 "'%s', which the schema does not have",
                                 s->origin, s->event_time_field);
        t = json_object_get(f, "type");
        if (json_is_array(t) && json_array_size(t) == 2) {
                json_array_foreach(t, i, x)
                {
                        if (!json_is_string(x) ||
                            strcmp(json_string_value(x), "null"))
                                t = x;
                }
        }
        if (json_is_object(t)) {
                type = json_string_value(json_object_get(t, "type"));
                logical = json_string_value(json_object_get(t, "logicalType"));
        }
        if (type && logical && !strcmp(type, "long") &&
            !strcmp(logical, "timestamp-millis"))
                s->event_time_unit = SB_EVENT_TIME_MILLIS;
        else if (type && logical && !strcmp(type, "long") &&
                 !strcmp(logical, "timestamp-micros"))
                s->event_time_unit = SB_EVENT_TIME_MICROS;
        else if (type && logical && !strcmp(type, "int") &&
                 !strcmp(logical, "date"))
                s->event_time_unit = SB_EVENT_TIME_DATE;
        else
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schema '%s': \"sb.event_time\" field '%s' "
                                 "must be a timestamp-millis or "
                                 "timestamp-micros long, or a date int "
                                 "(nullable or not)",
                                 s->origin, s->event_time_field);
        return SB_OK;
}

int sb_schema_event_time(const sb_schema_t *s, avro_value_t *rec, int64_t *msp)
{
        avro_value_t f, branch;
        int64_t l;
        int32_t i;

        if (!s->event_time_field ||
            avro_value_get_by_name(rec, s->event_time_field, &f, NULL))
                return 0;
        if (avro_value_get_type(&f) == AVRO_UNION) {
                if (avro_value_get_current_branch(&f, &branch))
                        return 0;
                f = branch;
        }
        switch (s->event_time_unit) {
        case SB_EVENT_TIME_MILLIS:
                if (avro_value_get_long(&f, &l))
                        return 0;
                *msp = l;
                return 1;
        case SB_EVENT_TIME_MICROS:
                if (avro_value_get_long(&f, &l))
                        return 0;
                *msp = l / 1000;
                return 1;
        case SB_EVENT_TIME_DATE:
                if (avro_value_get_int(&f, &i))
                        return 0;
                *msp = (int64_t)i * 86400000;
                return 1;
        }
        return 0;
}

sb_schema_t *sb_schema_new(json_t *json, const char *origin, char *errstr,
                           size_t errstr_size)
{
        sb_schema_t *s;
        const char *name, *ns;
        char *text;

        s = calloc(1, sizeof(*s));
        if (!s) {
                json_decref(json);
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        s->json = json;
        s->origin = strdup(origin);

        if (sb_schema_canonical(json, &s->canonical, errstr, errstr_size))
                goto fail;
        s->fingerprint = sb_crc64_avro(s->canonical, strlen(s->canonical));

        text = json_dumps(json, JSON_COMPACT);
        if (!text ||
            avro_schema_from_json_length(text, strlen(text), &s->avro)) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA, "schema '%s': %s",
                          origin, avro_strerror());
                free(text);
                goto fail;
        }
        free(text);

        name = json_string_value(json_object_get(json, "name"));
        ns = json_string_value(json_object_get(json, "namespace"));
        if (!name || !json_is_array(json_object_get(json, "fields"))) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schema '%s': the top-level type must be a named "
                          "record",
                          origin);
                goto fail;
        }
        if (strchr(name, '.') || !ns || !*ns)
                s->fullname = strdup(name);
        else if (asprintf(&s->fullname, "%s.%s", ns, name) == -1)
                s->fullname = NULL;

        s->dataset = sb_strdup_attr(json, "sb.dataset");
        s->subject_field = sb_strdup_attr(json, "sb.subject");
        s->record_id_field = sb_strdup_attr(json, "sb.record_id");
        s->event_time_field = sb_strdup_attr(json, "sb.event_time");
        s->reliability = sb_strdup_attr(json, "sb.reliability");
        if (s->dataset && (!s->subject_field || !s->record_id_field)) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schema '%s': a dataset schema (\"sb.dataset\") "
                          "must name its \"sb.subject\" and \"sb.record_id\" "
                          "fields",
                          origin);
                goto fail;
        }
        if (s->subject_field &&
            sb_schema_check_key_field(s, "sb.subject", s->subject_field, errstr,
                                      errstr_size))
                goto fail;
        if (s->record_id_field &&
            sb_schema_check_key_field(s, "sb.record_id", s->record_id_field,
                                      errstr, errstr_size))
                goto fail;
        if (s->event_time_field &&
            sb_schema_check_event_time(s, errstr, errstr_size))
                goto fail;

        s->iface = avro_generic_class_from_schema(s->avro);
        if (!s->iface) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA, "schema '%s': %s",
                          origin, avro_strerror());
                goto fail;
        }
        s->aj = sb_avrojson_new(json, s->avro, errstr, errstr_size);
        if (!s->aj)
                goto fail;
        if (!s->origin || !s->fullname) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        return s;

fail:
        sb_schema_destroy(s);
        return NULL;
}

sb_schema_t *sb_schema_load(const char *path, char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *json;

        json = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!json) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schema '%s' line %d: %s", path, jerr.line,
                          jerr.text);
                return NULL;
        }
        return sb_schema_new(json, path, errstr, errstr_size);
}

void sb_schema_destroy(sb_schema_t *s)
{
        if (!s)
                return;
        sb_avrojson_destroy(s->aj);
        if (s->iface)
                avro_value_iface_decref(s->iface);
        if (s->avro)
                avro_schema_decref(s->avro);
        json_decref(s->json);
        free(s->canonical);
        free(s->origin);
        free(s->fullname);
        free(s->dataset);
        free(s->subject_field);
        free(s->record_id_field);
        free(s->event_time_field);
        free(s->reliability);
        free(s);
}

sb_err_t sb_schema_value_new(const sb_schema_t *s, avro_value_t *v,
                             char *errstr, size_t errstr_size)
{
        if (avro_generic_value_new(s->iface, v))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "schema '%s': cannot create a value: %s",
                                 s->fullname, avro_strerror());
        return SB_OK;
}

sb_err_t sb_schema_encode(const sb_schema_t *s, avro_value_t *v, sb_buf_t *out,
                          char *errstr, size_t errstr_size)
{
        avro_writer_t w;
        size_t size;
        int i;

        if (avro_value_sizeof(v, &size))
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "schema '%s': cannot size value: %s",
                                 s->fullname, avro_strerror());
        if (sb_buf_reserve(out, SB_SOE_HEADER_LEN + size))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        out->data[0] = (char)0xC3;
        out->data[1] = 0x01;
        for (i = 0; i < 8; i++)
                out->data[2 + i] = (char)((s->fingerprint >> (8 * i)) & 0xff);
        w = avro_writer_memory(out->data + SB_SOE_HEADER_LEN, (int64_t)size);
        if (!w)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        if (avro_value_write(w, v)) {
                avro_writer_free(w);
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "schema '%s': cannot encode value: %s",
                                 s->fullname, avro_strerror());
        }
        avro_writer_free(w);
        out->len = SB_SOE_HEADER_LEN + size;
        return SB_OK;
}

sb_err_t sb_soe_fingerprint(const void *buf, size_t len, uint64_t *fpp,
                            char *errstr, size_t errstr_size)
{
        const unsigned char *p = buf;
        uint64_t fp = 0;
        int i;

        if (!buf || len < 2 || p[0] != 0xC3 || p[1] != 0x01)
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "value is not in Avro single-object encoding "
                                 "(no C3 01 marker)");
        if (len < SB_SOE_HEADER_LEN)
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "value has a truncated single-object header "
                                 "(%zu bytes)",
                                 len);
        for (i = 7; i >= 0; i--)
                fp = fp << 8 | p[2 + i];
        *fpp = fp;
        return SB_OK;
}

/* Reads one zig-zag varint; returns 0 on success. */
static int sb_avro_varint(const unsigned char **p, const unsigned char *end,
                          int64_t *v)
{
        uint64_t u = 0;
        int shift = 0;

        while (*p < end && shift < 64) {
                unsigned char b = *(*p)++;

                u |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return 0;
                }
                shift += 7;
        }
        return -1;
}

/*
 * Walks an Avro binary value of `schema` without allocating, checking that
 * every length, count and index fits what is left. Avro C allocates a
 * string's declared length before reading it and leaks it when the bytes
 * are missing, so a 17-byte message claiming a 500 MB string would cost
 * 500 MB: nothing reaches avro_value_read() before this walk accepts it.
 */
static int sb_avro_walk(avro_schema_t schema, const unsigned char **p,
                        const unsigned char *end, int depth)
{
        int64_t n, i;
        size_t k;

        if (depth > 64)
                return -1;
        switch (avro_typeof(schema)) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                if (*p >= end || **p > 1)
                        return -1;
                (*p)++;
                return 0;
        case AVRO_INT32:
        case AVRO_INT64:
                return sb_avro_varint(p, end, &n);
        case AVRO_FLOAT:
                if (end - *p < 4)
                        return -1;
                *p += 4;
                return 0;
        case AVRO_DOUBLE:
                if (end - *p < 8)
                        return -1;
                *p += 8;
                return 0;
        case AVRO_STRING:
        case AVRO_BYTES:
                if (sb_avro_varint(p, end, &n) || n < 0 || n > end - *p)
                        return -1;
                *p += n;
                return 0;
        case AVRO_FIXED:
                n = avro_schema_fixed_size(schema);
                if (n < 0 || n > end - *p)
                        return -1;
                *p += n;
                return 0;
        case AVRO_ENUM:
                return sb_avro_varint(p, end, &n) || n < 0 ||
                               n >= avro_schema_enum_number_of_symbols(schema)
                           ? -1
                           : 0;
        case AVRO_UNION:
                if (sb_avro_varint(p, end, &n) || n < 0 ||
                    (size_t)n >= avro_schema_union_size(schema))
                        return -1;
                return sb_avro_walk(avro_schema_union_branch(schema, (int)n), p,
                                    end, depth + 1);
        case AVRO_RECORD:
                for (k = 0; k < avro_schema_record_size(schema); k++)
                        if (sb_avro_walk(avro_schema_record_field_get_by_index(
                                             schema, (int)k),
                                         p, end, depth + 1))
                                return -1;
                return 0;
        case AVRO_ARRAY:
        case AVRO_MAP: {
                int is_map = avro_typeof(schema) == AVRO_MAP;
                avro_schema_t item = is_map ? avro_schema_map_values(schema)
                                            : avro_schema_array_items(schema);

                for (;;) {
                        if (sb_avro_varint(p, end, &n))
                                return -1;
                        if (n == 0)
                                return 0;
                        if (n < 0) { /* a block that also gives its size */
                                int64_t size;

                                n = -n;
                                if (sb_avro_varint(p, end, &size) || size < 0)
                                        return -1;
                        }
                        /* Each entry takes a byte at least (but nulls). */
                        if ((is_map || avro_typeof(item) != AVRO_NULL) &&
                            n > end - *p)
                                return -1;
                        for (i = 0; i < n; i++) {
                                int64_t klen;

                                if (is_map && (sb_avro_varint(p, end, &klen) ||
                                               klen < 0 || klen > end - *p))
                                        return -1;
                                if (is_map)
                                        *p += klen;
                                if (sb_avro_walk(item, p, end, depth + 1))
                                        return -1;
                        }
                }
        }
        case AVRO_LINK:
                return sb_avro_walk(avro_schema_link_target(schema), p, end,
                                    depth + 1);
        }
        return -1;
}

sb_err_t sb_schema_decode(const sb_schema_t *s, const void *buf, size_t len,
                          avro_value_t *v, char *errstr, size_t errstr_size)
{
        const unsigned char *payload, *p, *end;
        avro_reader_t r;
        uint64_t fp = 0;
        sb_err_t err;

        if ((err = sb_soe_fingerprint(buf, len, &fp, errstr, errstr_size)))
                return err;
        if (fp != s->fingerprint)
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "value was written with schema fingerprint "
                                 "%016llx, expected %016llx ('%s')",
                                 (unsigned long long)fp,
                                 (unsigned long long)s->fingerprint,
                                 s->fullname);
        payload = (const unsigned char *)buf + SB_SOE_HEADER_LEN;
        end = (const unsigned char *)buf + len;
        p = payload;
        if (sb_avro_walk(s->avro, &p, end, 0))
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "'%s' value is truncated or malformed "
                                 "(%zu payload bytes)",
                                 s->fullname, len - SB_SOE_HEADER_LEN);
        if (p != end)
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "'%s' value has %zu trailing byte(s)",
                                 s->fullname, (size_t)(end - p));
        r = avro_reader_memory((const char *)payload,
                               (int64_t)(len - SB_SOE_HEADER_LEN));
        if (!r)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        avro_value_reset(v);
        if (avro_value_read(r, v)) {
                avro_reader_free(r);
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "cannot decode '%s' value: %s", s->fullname,
                                 avro_strerror());
        }
        avro_reader_free(r);
        return SB_OK;
}

static int sb_catalog_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

sb_catalog_t *sb_catalog_load(const char *dir, char *errstr, size_t errstr_size)
{
        sb_catalog_t *cat = calloc(1, sizeof(*cat));
        char **names = NULL;
        size_t n = 0, i, j;
        struct dirent *de;
        DIR *d;

        if (!cat) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        d = opendir(dir);
        if (!d) {
                sb_seterr(errstr, errstr_size, SB_ERR_IO,
                          "schemas directory '%s': %s", dir, strerror(errno));
                free(cat);
                return NULL;
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                char **nn;

                if (l < 6 || strcmp(de->d_name + l - 5, ".avsc"))
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
        /* Sorted, so that duplicate detection and messages are stable. */
        if (n)
                qsort(names, n, sizeof(*names), sb_catalog_cmp);

        cat->schemas = calloc(n ? n : 1, sizeof(*cat->schemas));
        if (!cat->schemas) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        for (i = 0; i < n; i++) {
                sb_schema_t *s = sb_schema_load(names[i], errstr, errstr_size);

                if (!s)
                        goto fail;
                cat->schemas[cat->cnt++] = s;
                for (j = 0; j + 1 < cat->cnt; j++) {
                        const sb_schema_t *o = cat->schemas[j];

                        const char *what =
                            o->fingerprint == s->fingerprint    ? "fingerprint"
                            : !strcmp(o->fullname, s->fullname) ? "name"
                            : (s->dataset && o->dataset &&
                               !strcmp(s->dataset, o->dataset))
                                ? "dataset"
                                : NULL;

                        if (what) {
                                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                          "schema '%s': same %s as '%s' (%s)",
                                          s->origin, what, o->origin,
                                          !strcmp(what, "dataset")
                                              ? s->dataset
                                              : s->fullname);
                                goto fail;
                        }
                }
        }
        if (cat->cnt == 0) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schemas directory '%s': no .avsc file", dir);
                goto fail;
        }
        for (i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return cat;

fail:
        for (i = 0; i < n; i++)
                free(names[i]);
        free(names);
        sb_catalog_destroy(cat);
        return NULL;
}

void sb_catalog_destroy(sb_catalog_t *cat)
{
        size_t i;

        if (!cat)
                return;
        for (i = 0; i < cat->cnt; i++)
                sb_schema_destroy(cat->schemas[i]);
        free(cat->schemas);
        free(cat);
}

const sb_schema_t *sb_catalog_dataset(const sb_catalog_t *cat,
                                      const char *dataset)
{
        size_t i;

        for (i = 0; i < cat->cnt; i++)
                if (cat->schemas[i]->dataset &&
                    !strcmp(cat->schemas[i]->dataset, dataset))
                        return cat->schemas[i];
        return NULL;
}

const sb_schema_t *sb_catalog_by_name(const sb_catalog_t *cat,
                                      const char *fullname)
{
        size_t i;

        for (i = 0; i < cat->cnt; i++)
                if (!strcmp(cat->schemas[i]->fullname, fullname))
                        return cat->schemas[i];
        return NULL;
}

const sb_schema_t *sb_catalog_by_fingerprint(const sb_catalog_t *cat,
                                             uint64_t fp)
{
        size_t i;

        for (i = 0; i < cat->cnt; i++)
                if (cat->schemas[i]->fingerprint == fp)
                        return cat->schemas[i];
        return NULL;
}
