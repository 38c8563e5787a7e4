#include "schema.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fingerprint.h"

/*
 * Reads a version of a dataset as its reader schema. Avro C's resolver
 * refuses a reader field the writer lacks, defaults or not, so it only
 * resolves the writer into `common` (the reader's fields the writer has,
 * with their promotions, unions and skipped fields); the fields the writer
 * lacks come from `defaults`, filled once from the reader's defaults.
 */
typedef struct sb_resolver_s {
        const sb_schema_t *writer, *reader;
        avro_schema_t common, defaults; /* NULL when no field is */
        avro_value_iface_t *common_iface, *resolved_iface, *defaults_iface;
        avro_value_t common_value, resolved, defaults_value;
        int *from; /* reader field i: common field k >= 0, or defaults
                    * field -1 - from[i] */
        size_t field_cnt;
} sb_resolver_t;

struct sb_catalog_s {
        sb_schema_t **schemas;
        sb_resolver_t **resolvers; /* per schema: NULL unless it is a
                                    * version other than its dataset's
                                    * reader */
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
        s->version = 1;
        if (json_object_get(json, "sb.version")) {
                const json_t *ver = json_object_get(json, "sb.version");

                if (!json_is_integer(ver) || json_integer_value(ver) < 1 ||
                    json_integer_value(ver) > 1000000) {
                        sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                  "schema '%s': \"sb.version\" must be a "
                                  "whole number from 1 to 1000000",
                                  origin);
                        goto fail;
                }
                s->version = (int)json_integer_value(ver);
        }
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

/* Checks a buffer's fingerprint against s's and walks its payload. */
static sb_err_t sb_schema_check_payload(const sb_schema_t *s, const void *buf,
                                        size_t len, char *errstr,
                                        size_t errstr_size)
{
        const unsigned char *p, *end;
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
        p = (const unsigned char *)buf + SB_SOE_HEADER_LEN;
        end = (const unsigned char *)buf + len;
        if (sb_avro_walk(s->avro, &p, end, 0))
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "'%s' value is truncated or malformed "
                                 "(%zu payload bytes)",
                                 s->fullname, len - SB_SOE_HEADER_LEN);
        if (p != end)
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "'%s' value has %zu trailing byte(s)",
                                 s->fullname, (size_t)(end - p));
        return SB_OK;
}

sb_err_t sb_schema_decode(const sb_schema_t *s, const void *buf, size_t len,
                          avro_value_t *v, char *errstr, size_t errstr_size)
{
        const unsigned char *payload;
        avro_reader_t r;
        sb_err_t err;

        if ((err = sb_schema_check_payload(s, buf, len, errstr, errstr_size)))
                return err;
        payload = (const unsigned char *)buf + SB_SOE_HEADER_LEN;
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

/*
 * Dataset versions
 */

static void sb_resolver_destroy(sb_resolver_t *r)
{
        if (!r)
                return;
        if (r->resolved.iface)
                avro_value_decref(&r->resolved);
        if (r->common_value.iface)
                avro_value_decref(&r->common_value);
        if (r->defaults_value.iface)
                avro_value_decref(&r->defaults_value);
        if (r->resolved_iface)
                avro_value_iface_decref(r->resolved_iface);
        if (r->common_iface)
                avro_value_iface_decref(r->common_iface);
        if (r->defaults_iface)
                avro_value_iface_decref(r->defaults_iface);
        if (r->common)
                avro_schema_decref(r->common);
        if (r->defaults)
                avro_schema_decref(r->defaults);
        free(r->from);
        free(r);
}

/*
 * The reader's record with only the fields the writer has (`in_writer`)
 * or only those it lacks; NULL with *cnt 0 when there are none.
 */
static sb_err_t sb_resolver_part(const sb_resolver_t *r, int in_writer,
                                 avro_schema_t *out, json_t **jsonp,
                                 size_t *cnt, char *errstr, size_t errstr_size)
{
        const json_t *rj = r->reader->json, *f;
        json_t *json, *fields;
        char *text;
        size_t i;
        int rc;

        *out = NULL;
        *jsonp = NULL;
        *cnt = 0;
        json = json_pack("{s:s, s:O, s:[]}", "type", "record", "name",
                         json_object_get(rj, "name"), "fields");
        if (!json)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        if (json_object_get(rj, "namespace"))
                json_object_set(json, "namespace",
                                json_object_get(rj, "namespace"));
        fields = json_object_get(json, "fields");
        json_array_foreach(json_object_get(rj, "fields"), i, f)
        {
                const char *name =
                    json_string_value(json_object_get(f, "name"));

                if (!!sb_schema_field(r->writer, name) == in_writer)
                        json_array_append(fields, (json_t *)f);
        }
        *cnt = json_array_size(fields);
        if (!*cnt) {
                json_decref(json);
                return SB_OK;
        }
        text = json_dumps(json, JSON_COMPACT);
        rc = !text || avro_schema_from_json_length(text, strlen(text), out);
        free(text);
        if (rc) {
                json_decref(json);
                *out = NULL;
                /* A named type defined in a field of the other part. */
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schema '%s': cannot read version %d of "
                                 "dataset '%s' as version %d ('%s'): %s",
                                 r->writer->origin, r->writer->version,
                                 r->reader->dataset, r->reader->version,
                                 r->reader->origin, avro_strerror());
        }
        *jsonp = json;
        return SB_OK;
}

/* How `writer`, a version of a dataset, is read as `reader`, its reader. */
static sb_resolver_t *sb_resolver_new(const sb_schema_t *writer,
                                      const sb_schema_t *reader, char *errstr,
                                      size_t errstr_size)
{
        sb_resolver_t *r = calloc(1, sizeof(*r));
        json_t *common_json = NULL, *defaults_json = NULL, *empty = NULL;
        size_t common_cnt, defaults_cnt, i, k = 0, d = 0;
        sb_avrojson_t *aj = NULL;
        const json_t *f;

        if (!r) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        r->writer = writer;
        r->reader = reader;
        r->field_cnt = json_array_size(json_object_get(reader->json, "fields"));
        r->from = calloc(r->field_cnt ? r->field_cnt : 1, sizeof(*r->from));
        if (!r->from) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        /* Every field the writer lacks needs the reader's default. */
        json_array_foreach(json_object_get(reader->json, "fields"), i, f)
        {
                const char *name =
                    json_string_value(json_object_get(f, "name"));

                if (sb_schema_field(writer, name)) {
                        r->from[i] = (int)k++;
                        continue;
                }
                if (!json_object_get(f, "default")) {
                        sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                  "schema '%s': version %d of dataset '%s' "
                                  "has no field '%s', and version %d ('%s') "
                                  "gives it no default to read it with; "
                                  "give the field a default in '%s'",
                                  writer->origin, writer->version,
                                  reader->dataset, name, reader->version,
                                  reader->origin, reader->origin);
                        goto fail;
                }
                r->from[i] = -1 - (int)d++;
        }
        if (sb_resolver_part(r, 1, &r->common, &common_json, &common_cnt,
                             errstr, errstr_size) ||
            sb_resolver_part(r, 0, &r->defaults, &defaults_json, &defaults_cnt,
                             errstr, errstr_size))
                goto fail;
        if (!r->common) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schema '%s': version %d of dataset '%s' shares no "
                          "field with version %d ('%s')",
                          writer->origin, writer->version, reader->dataset,
                          reader->version, reader->origin);
                goto fail;
        }
        r->common_iface = avro_generic_class_from_schema(r->common);
        r->resolved_iface = avro_resolved_writer_new(writer->avro, r->common);
        if (!r->common_iface || !r->resolved_iface) {
                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                          "schema '%s': cannot read version %d of dataset "
                          "'%s' as version %d ('%s'): %s",
                          writer->origin, writer->version, reader->dataset,
                          reader->version, reader->origin, avro_strerror());
                goto fail;
        }
        if (avro_generic_value_new(r->common_iface, &r->common_value) ||
            avro_resolved_writer_new_value(r->resolved_iface, &r->resolved)) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        avro_resolved_writer_set_dest(&r->resolved, &r->common_value);
        if (r->defaults) {
                r->defaults_iface = avro_generic_class_from_schema(r->defaults);
                empty = json_object();
                if (!r->defaults_iface || !empty ||
                    avro_generic_value_new(r->defaults_iface,
                                           &r->defaults_value)) {
                        sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                  "out of memory");
                        goto fail;
                }
                aj = sb_avrojson_new(defaults_json, r->defaults, errstr,
                                     errstr_size);
                if (!aj || sb_avrojson_from_json(aj, empty, &r->defaults_value,
                                                 errstr, errstr_size)) {
                        char why[512];

                        snprintf(why, sizeof(why), "%s", errstr);
                        sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                  "schema '%s': a default of version %d of "
                                  "dataset '%s' is not a value of its "
                                  "field: %s",
                                  reader->origin, reader->version,
                                  reader->dataset, why);
                        goto fail;
                }
        }
        sb_avrojson_destroy(aj);
        json_decref(empty);
        json_decref(common_json);
        json_decref(defaults_json);
        return r;

fail:
        sb_avrojson_destroy(aj);
        json_decref(empty);
        json_decref(common_json);
        json_decref(defaults_json);
        sb_resolver_destroy(r);
        return NULL;
}

static sb_err_t sb_resolver_decode(sb_resolver_t *r, const void *buf,
                                   size_t len, avro_value_t *v, char *errstr,
                                   size_t errstr_size)
{
        const sb_schema_t *w = r->writer;
        avro_value_t dst, src;
        avro_reader_t rd;
        sb_err_t err;
        size_t i;
        int rc;

        if ((err = sb_schema_check_payload(w, buf, len, errstr, errstr_size)))
                return err;
        rd = avro_reader_memory((const char *)buf + SB_SOE_HEADER_LEN,
                                (int64_t)(len - SB_SOE_HEADER_LEN));
        if (!rd)
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        avro_value_reset(&r->common_value);
        rc = avro_value_read(rd, &r->resolved);
        avro_reader_free(rd);
        if (rc)
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "cannot decode '%s' version %d value: %s",
                                 w->fullname, w->version, avro_strerror());
        avro_value_reset(v);
        for (i = 0; i < r->field_cnt; i++) {
                if (avro_value_get_by_index(v, i, &dst, NULL))
                        goto fail;
                if (r->from[i] >= 0)
                        rc = avro_value_get_by_index(
                            &r->common_value, (size_t)r->from[i], &src, NULL);
                else
                        rc = avro_value_get_by_index(&r->defaults_value,
                                                     (size_t)(-1 - r->from[i]),
                                                     &src, NULL);
                if (rc || avro_value_copy_fast(&dst, &src))
                        goto fail;
        }
        return SB_OK;
fail:
        return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                         "cannot read a '%s' version %d value as version %d: "
                         "%s",
                         w->fullname, w->version, r->reader->version,
                         avro_strerror());
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

                        int same_dataset = s->dataset && o->dataset &&
                                           !strcmp(s->dataset, o->dataset);
                        int same_name = !strcmp(o->fullname, s->fullname);
                        const char *what =
                            o->fingerprint == s->fingerprint ? "fingerprint"
                            : same_dataset && o->version == s->version
                                ? "dataset"
                            : same_name && !same_dataset ? "name"
                                                         : NULL;

                        /* Avro resolves records of one name only. */
                        if (!what && same_dataset && !same_name) {
                                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                          "schema '%s': version %d of dataset "
                                          "'%s' is named '%s', version %d "
                                          "('%s') '%s'; versions of a "
                                          "dataset keep the record's name",
                                          s->origin, s->version, s->dataset,
                                          s->fullname, o->version, o->origin,
                                          o->fullname);
                                goto fail;
                        }
                        if (what) {
                                sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                          "schema '%s': same %s as '%s' (%s)",
                                          s->origin, what, o->origin,
                                          what[0] == 'd' ? s->dataset
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
        cat->resolvers = calloc(cat->cnt, sizeof(*cat->resolvers));
        if (!cat->resolvers) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto fail;
        }
        for (i = 0; i < cat->cnt; i++) {
                const sb_schema_t *s = cat->schemas[i], *reader;

                if (!s->dataset)
                        continue;
                reader = sb_catalog_dataset(cat, s->dataset);
                if (reader == s)
                        continue;
                cat->resolvers[i] =
                    sb_resolver_new(s, reader, errstr, errstr_size);
                if (!cat->resolvers[i])
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
        for (i = 0; i < cat->cnt; i++) {
                if (cat->resolvers)
                        sb_resolver_destroy(cat->resolvers[i]);
                sb_schema_destroy(cat->schemas[i]);
        }
        free(cat->resolvers);
        free(cat->schemas);
        free(cat);
}

const sb_schema_t *sb_catalog_dataset(const sb_catalog_t *cat,
                                      const char *dataset)
{
        const sb_schema_t *oldest = NULL;
        size_t i;

        for (i = 0; i < cat->cnt; i++)
                if (cat->schemas[i]->dataset &&
                    !strcmp(cat->schemas[i]->dataset, dataset) &&
                    (!oldest || cat->schemas[i]->version < oldest->version))
                        oldest = cat->schemas[i];
        return oldest;
}

const sb_schema_t *sb_catalog_version(const sb_catalog_t *cat,
                                      const sb_schema_t *reader, uint64_t fp)
{
        size_t i;

        if (fp == reader->fingerprint)
                return reader;
        for (i = 0; i < cat->cnt; i++)
                if (cat->schemas[i]->fingerprint == fp && cat->resolvers &&
                    cat->resolvers[i] && cat->resolvers[i]->reader == reader)
                        return cat->schemas[i];
        return NULL;
}

sb_err_t sb_catalog_decode(const sb_catalog_t *cat, const sb_schema_t *writer,
                           const sb_schema_t *reader, const void *buf,
                           size_t len, avro_value_t *v, char *errstr,
                           size_t errstr_size)
{
        size_t i;

        if (writer == reader)
                return sb_schema_decode(reader, buf, len, v, errstr,
                                        errstr_size);
        for (i = 0; i < cat->cnt; i++)
                if (cat->schemas[i] == writer && cat->resolvers &&
                    cat->resolvers[i] && cat->resolvers[i]->reader == reader)
                        return sb_resolver_decode(cat->resolvers[i], buf, len,
                                                  v, errstr, errstr_size);
        return sb_seterr(
            errstr, errstr_size, SB_ERR_SCHEMA,
            "schema '%s' is no version of dataset '%s' ('%s')", writer->origin,
            reader->dataset ? reader->dataset : "?", reader->origin);
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
