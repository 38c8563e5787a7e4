/*
 * Seeded property tests of the minimisation engine (common/transform.c,
 * common/grant.c) over random dataset schemas, random grants and random
 * records: what the example tests of test_transforms.c show on chosen
 * values must hold for all of them.
 *
 *   1. no output names a field the grant does not keep (R1.0-02, R3.5-08);
 *   2. no value is more precise than granted (R3.5-02 precision, R5.2-02
 *      per-reuser limits on precision);
 *   3. pseudonyms are stable for one reuser and differ across reusers
 *      (R3.5-02 pseudonymisation; two reusers cannot join their streams);
 *   4. the same input always gives byte-identical output;
 *   5. invalid grants are refused with an error naming the key at fault
 *      (R3.5-07 validation).
 *
 * Reproducible: the seed defaults to SEED_DEFAULT, SB_PROPERTY_SEED
 * overrides it, and every failure prints the seed and the iteration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "grant.h"
#include "schema.h"
#include "testutil.h"
#include "transform.h"

#define SEED_DEFAULT   UINT64_C(0x5eed2026c0ffee01)
#define ITERATIONS     300
#define RECORDS        12
#define MAX_FIELDS     12
#define SUBJECTS       400
#define DATASET        "randset"
#define MS_PER_DAY     INT64_C(86400000)
#define DAY_MIN        (-719162) /* 0001-01-01 */
#define DAY_MAX        2932896   /* 9999-12-31 */
#define MAX_STRING_CPS 24

static uint64_t seed;
static int iteration;
/* Values checked per transform (sb_transform_op_t), so that a generator
 * gone wrong cannot make the properties hold vacuously. */
static long checked[SB_TR_PSEUDONYMISE + 1];
static char tmp_dir[64];

#define PROP_FAIL(...)                                                         \
        do {                                                                   \
                print_error("property failed (seed 0x%016" PRIx64              \
                            ", iteration %d; rerun with SB_PROPERTY_SEED=0x"   \
                            "%016" PRIx64 "): ",                               \
                            seed, iteration, seed);                            \
                print_error(__VA_ARGS__);                                      \
                print_error("\n");                                             \
                fail();                                                        \
        } while (0)

#define PROP_CHECK(cond, ...)                                                  \
        do {                                                                   \
                if (!(cond))                                                   \
                        PROP_FAIL(__VA_ARGS__);                                \
        } while (0)

/*
 * Random numbers: splitmix64, one stream per (seed, property, iteration)
 * so that iterations can be replayed on their own.
 */

static uint64_t rng;

static uint64_t rnd(void)
{
        uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static void rnd_start(int property, int iter)
{
        uint64_t base;

        rng = seed;
        base = rnd();
        rng = base ^ (((uint64_t)property << 32 | (uint32_t)iter) *
                      UINT64_C(0x9e3779b97f4a7c15));
        iteration = iter;
        rnd();
}

/* Uniform in [0, n). */
static uint64_t rnd_below(uint64_t n)
{
        return n ? rnd() % n : 0;
}

/* Uniform in [lo, hi], computed unsigned: the span may not fit int64. */
static int64_t rnd_range(int64_t lo, int64_t hi)
{
        uint64_t span = (uint64_t)hi - (uint64_t)lo;

        if (span == UINT64_MAX)
                return (int64_t)rnd();
        return (int64_t)((uint64_t)lo + rnd_below(span + 1));
}

static double rnd_unit(void)
{
        return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int chance(int percent)
{
        return (int)rnd_below(100) < percent;
}

/*
 * Random dataset schemas
 */

typedef enum kind_e {
        K_STRING,
        K_INT,
        K_LONG,
        K_DOUBLE,
        K_FLOAT,
        K_BOOLEAN,
        K_DATE,
        K_TS_MILLIS,
        K_LAT,
        K_LON,
        K_COUNT
} kind_t;

static const char *const kind_names[] = {"string", "int",     "long", "double",
                                         "float",  "boolean", "date", "ts",
                                         "lat",    "lon"};

typedef struct field_s {
        char name[32];
        kind_t kind;
        int nullable;    /* a union of null and the type */
        int null_branch; /* 0 or 1 */
} field_t;

typedef struct dataset_s {
        field_t f[MAX_FIELDS + 2]; /* f[0]: subject, f[1]: record id */
        size_t cnt;
        sb_catalog_t *cat;
        const sb_schema_t *schema;
} dataset_t;

static json_t *kind_type(kind_t k)
{
        switch (k) {
        case K_STRING:
                return json_string("string");
        case K_INT:
                return json_string("int");
        case K_LONG:
                return json_string("long");
        case K_FLOAT:
                return json_string("float");
        case K_BOOLEAN:
                return json_string("boolean");
        case K_DATE:
                return json_pack("{s:s, s:s}", "type", "int", "logicalType",
                                 "date");
        case K_TS_MILLIS:
                return json_pack("{s:s, s:s}", "type", "long", "logicalType",
                                 "timestamp-millis");
        default: /* double, lat, lon */
                return json_string("double");
        }
}

static json_t *field_json(const field_t *f)
{
        json_t *t = kind_type(f->kind), *j;

        if (f->nullable) {
                t = f->null_branch ? json_pack("[o, s]", t, "null")
                                   : json_pack("[s, o]", "null", t);
        }
        j = json_pack("{s:s, s:o}", "name", f->name, "type", t);
        if (f->nullable && f->null_branch == 0)
                json_object_set_new(j, "default", json_null());
        if (f->kind == K_LAT || f->kind == K_LON)
                json_object_set_new(j, "pii", json_string("location"));
        return j;
}

static void dataset_release(dataset_t *ds)
{
        char path[128];

        sb_catalog_destroy(ds->cat);
        snprintf(path, sizeof(path), "%s/" DATASET ".avsc", tmp_dir);
        unlink(path);
        memset(ds, 0, sizeof(*ds));
}

/* A random dataset schema, written to tmp_dir and loaded as a catalog. */
static void dataset_random(dataset_t *ds)
{
        json_t *fields = json_array(), *schema;
        char path[128], errstr[512] = "";
        size_t i, n = 1 + rnd_below(MAX_FIELDS);

        memset(ds, 0, sizeof(*ds));
        snprintf(ds->f[0].name, sizeof(ds->f[0].name), "subject");
        ds->f[0].kind = K_STRING;
        snprintf(ds->f[1].name, sizeof(ds->f[1].name), "record_id");
        ds->f[1].kind = K_STRING;
        for (i = 2; i < n + 2; i++) {
                field_t *f = &ds->f[i];

                f->kind = (kind_t)rnd_below(K_COUNT);
                snprintf(f->name, sizeof(f->name), "f%zu_%s", i,
                         kind_names[f->kind]);
                f->nullable = chance(30);
                f->null_branch = (int)rnd_below(2);
        }
        ds->cnt = n + 2;
        for (i = 0; i < ds->cnt; i++)
                json_array_append_new(fields, field_json(&ds->f[i]));
        schema = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "type",
                           "record", "name", "Rand", "namespace", "test.prop",
                           "sb.dataset", DATASET, "sb.subject", "subject",
                           "sb.record_id", "record_id", "fields", fields);
        snprintf(path, sizeof(path), "%s/" DATASET ".avsc", tmp_dir);
        if (!schema || json_dump_file(schema, path, JSON_INDENT(1)))
                PROP_FAIL("cannot write %s", path);
        json_decref(schema);
        ds->cat = sb_catalog_load(tmp_dir, errstr, sizeof(errstr));
        PROP_CHECK(ds->cat, "random schema refused: %s", errstr);
        ds->schema = sb_catalog_dataset(ds->cat, DATASET);
        PROP_CHECK(ds->schema, "dataset '%s' not in catalog", DATASET);
}

/*
 * Random grants
 */

static const double double_widths[] = {0.001, 0.1, 0.25, 0.3, 0.5, 1,
                                       2.5,   5,   7,    10,  100, 1000};

/* A random transform valid for kind `k` (new reference). */
static json_t *transform_random(kind_t k)
{
        if (chance(25))
                return json_string("keep");
        switch (k) {
        case K_STRING:
                if (chance(50))
                        return json_pack("{s:I}", "truncate",
                                         (json_int_t)rnd_range(1, 12));
                return json_pack("{s:b}", "pseudonymise", 1);
        case K_DATE:
        case K_TS_MILLIS:
                return json_pack("{s:s}", "generalise",
                                 chance(50) ? "year" : "month");
        case K_INT:
                return json_pack("{s:{s:I}}", "generalise", "bucket",
                                 (json_int_t)(chance(80)
                                                  ? rnd_range(1, 1000)
                                                  : rnd_range(1, INT32_MAX)));
        case K_LONG:
                return json_pack(
                    "{s:{s:I}}", "generalise", "bucket",
                    (json_int_t)(chance(80) ? rnd_range(1, 1000000)
                                            : rnd_range(1, INT64_MAX - 1)));
        case K_DOUBLE:
        case K_FLOAT:
        case K_LAT:
        case K_LON:
                if (chance(50))
                        return json_pack(
                            "{s:I}", "round",
                            (json_int_t)rnd_range(0, SB_ROUND_MAX_DECIMALS));
                return json_pack(
                    "{s:{s:f}}", "generalise", "bucket",
                    double_widths[rnd_below(sizeof(double_widths) /
                                            sizeof(double_widths[0]))]);
        default: /* boolean */
                return json_string("keep");
        }
}

static json_t *grant_base(const char *id, const char *reuser, json_t *fields)
{
        return json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s, s:o}", "id", id,
                         "reuser", reuser, "dataset", DATASET, "purposes",
                         "statistics", "legal_basis", "gdpr-6-1-e", "status",
                         "approved", "fields", fields);
}

/*
 * Random "fields" of a grant: each field but the subject granted with
 * some probability (dropped ones sometimes listed as "drop"), at least one
 * kept. `granted[i]` says whether field i reaches the output.
 */
static json_t *fields_random(const dataset_t *ds, int *granted)
{
        json_t *fields = json_object();
        size_t i, kept = 0;

        granted[0] = 0;
        for (i = 1; i < ds->cnt; i++) {
                granted[i] = chance(60);
                if (granted[i]) {
                        json_object_set_new(fields, ds->f[i].name,
                                            transform_random(ds->f[i].kind));
                        kept++;
                } else if (chance(20)) {
                        json_object_set_new(fields, ds->f[i].name,
                                            json_string("drop"));
                }
        }
        if (!kept) {
                i = 1 + rnd_below(ds->cnt - 1);
                granted[i] = 1;
                json_object_set_new(fields, ds->f[i].name,
                                    transform_random(ds->f[i].kind));
        }
        return fields;
}

static sb_grant_t *grant_new_ok(const dataset_t *ds, json_t *grant)
{
        char errstr[512] = "", *text = json_dumps(grant, JSON_COMPACT);
        sb_grant_t *g;

        g = sb_grant_new(json_incref(grant), "g.json", ds->cat, errstr,
                         sizeof(errstr));
        if (!g) {
                print_error("grant: %s\n", text);
                free(text);
                json_decref(grant);
                PROP_FAIL("valid random grant refused: %s", errstr);
        }
        free(text);
        json_decref(grant);
        return g;
}

/*
 * Random records
 */

/* Valid UTF-8 of 0..MAX_STRING_CPS code points of 1 to 4 bytes. */
static size_t string_random(char *buf)
{
        static const char *const cps[] = {"a",
                                          "Z",
                                          "0",
                                          " ",
                                          "-",
                                          "\xc3\xa9",
                                          "\xe2\x82\xac",
                                          "\xf0\x9f\x98\x80"};
        size_t n = rnd_below(MAX_STRING_CPS + 1), len = 0, i;

        for (i = 0; i < n; i++) {
                const char *c = cps[rnd_below(sizeof(cps) / sizeof(cps[0]))];

                memcpy(buf + len, c, strlen(c));
                len += strlen(c);
        }
        buf[len] = '\0';
        return len;
}

static int64_t int_random(int64_t lo, int64_t hi)
{
        switch (rnd_below(8)) {
        case 0:
                return lo;
        case 1:
                return hi;
        case 2:
                return rnd_range(-1, 1);
        case 3:
                return rnd_range(-1000, 1000);
        default:
                return rnd_range(lo, hi);
        }
}

static double double_random(kind_t k)
{
        double scale;

        if (k == K_LAT)
                return rnd_unit() * 180 - 90;
        if (k == K_LON)
                return rnd_unit() * 360 - 180;
        switch (rnd_below(4)) {
        case 0:
                return 0;
        case 1: /* few decimals */
                return (double)rnd_range(-1000000, 1000000) / 100;
        default:
                scale = pow(10, (double)rnd_range(-12, 17));
                return (rnd_unit() * 2 - 1) * scale;
        }
}

static void value_random(const field_t *f, avro_value_t *v, const char *id)
{
        char buf[MAX_STRING_CPS * 4 + 1];
        avro_value_t b;
        size_t len;
        int rc = 0;

        if (f->nullable) {
                int null = chance(20);

                rc = avro_value_set_branch(
                    v, null ? f->null_branch : !f->null_branch, &b);
                PROP_CHECK(!rc, "set_branch: %s", avro_strerror());
                if (null) {
                        PROP_CHECK(!avro_value_set_null(&b), "set_null");
                        return;
                }
                v = &b;
        }
        switch (f->kind) {
        case K_STRING:
                if (id) {
                        rc = avro_value_set_string(v, id);
                        break;
                }
                len = string_random(buf);
                rc = avro_value_set_string_len(v, buf, len + 1);
                break;
        case K_INT:
                rc = avro_value_set_int(
                    v, (int32_t)int_random(INT32_MIN, INT32_MAX));
                break;
        case K_LONG:
                rc = avro_value_set_long(v, int_random(INT64_MIN, INT64_MAX));
                break;
        case K_FLOAT:
                rc = avro_value_set_float(v, (float)double_random(f->kind));
                break;
        case K_BOOLEAN:
                rc = avro_value_set_boolean(v, (int)rnd_below(2));
                break;
        case K_DATE:
                rc =
                    avro_value_set_int(v, (int32_t)rnd_range(DAY_MIN, DAY_MAX));
                break;
        case K_TS_MILLIS:
                rc = avro_value_set_long(
                    v, rnd_range(DAY_MIN * MS_PER_DAY,
                                 (DAY_MAX + 1) * MS_PER_DAY - 1));
                break;
        default:
                rc = avro_value_set_double(v, double_random(f->kind));
                break;
        }
        PROP_CHECK(!rc, "cannot set random %s: %s", kind_names[f->kind],
                   avro_strerror());
}

/* A random record; the subject is `subject` when not NULL. */
static void record_random(const dataset_t *ds, avro_value_t *rec,
                          const char *subject)
{
        avro_value_t v;
        size_t i;

        avro_value_reset(rec);
        for (i = 0; i < ds->cnt; i++) {
                PROP_CHECK(!avro_value_get_by_index(rec, i, &v, NULL),
                           "field %zu", i);
                value_random(&ds->f[i], &v, i == 0 ? subject : NULL);
        }
}

/*
 * Checking one projected value against its input (property 2)
 */

/* The civil year and month of a day count, by the C library. */
static void civil(int64_t days, int *y, int *m)
{
        time_t t = (time_t)(days * 86400);
        struct tm tm;

        if (!gmtime_r(&t, &tm))
                PROP_FAIL("gmtime_r(%" PRId64 " days) failed", days);
        *y = tm.tm_year + 1900;
        *m = tm.tm_mon + 1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static size_t utf8_cps(const char *s, size_t len)
{
        size_t i, n = 0;

        for (i = 0; i < len; i++)
                n += ((unsigned char)s[i] & 0xC0) != 0x80;
        return n;
}

static void check_bucket_int(const sb_transform_t *tr, const char *name,
                             int64_t in, int64_t out, int64_t type_min)
{
        __int128 w = tr->iwidth, r = (__int128)in % w, lo;

        if (r < 0)
                r += w;
        lo = (__int128)in - r;
        /* The lower bound when the type can hold it; the type's minimum
         * (a wider bucket, not a finer one) otherwise. */
        if (lo < type_min)
                lo = type_min;
        PROP_CHECK((__int128)out == lo,
                   "'%s' bucket %" PRId64 " of %" PRId64 ": expected %" PRId64
                   ", got %" PRId64,
                   name, tr->iwidth, in, (int64_t)lo, out);
        PROP_CHECK(out == type_min || out % tr->iwidth == 0,
                   "'%s': %" PRId64 " is no multiple of %" PRId64, name, out,
                   tr->iwidth);
}

static void check_bucket_double(const sb_transform_t *tr, const char *name,
                                double in, double out)
{
        double q = out / tr->width;

        /* Past 2^50 widths a bucket is finer than the value itself: the
         * value is its own lower bound (transform.c). */
        if (!(fabs(in / tr->width) < 1125899906842624.0)) {
                PROP_CHECK(out == in, "'%s': %.17g passed as %.17g", name, in,
                           out);
                return;
        }
        PROP_CHECK(out <= in,
                   "'%s' bucket %.17g of %.17g: lower bound %.17g "
                   "is above the value",
                   name, tr->width, in, out);
        PROP_CHECK(in - out < tr->width * (1 + 1e-9),
                   "'%s' bucket %.17g of %.17g: lower bound %.17g is a "
                   "bucket too low",
                   name, tr->width, in, out);
        PROP_CHECK(fabs(q - nearbyint(q)) <= 1e-9 * fmax(1, fabs(q)),
                   "'%s': %.17g is no multiple of the width %.17g", name, out,
                   tr->width);
}

static void check_round(const sb_transform_t *tr, const char *name, double in,
                        double out)
{
        double r = out * tr->pow10;

        PROP_CHECK(fabs(r - nearbyint(r)) <= 1e-9 * fmax(1, fabs(r)),
                   "'%s' rounded to %" PRId64 " decimals: %.17g has more", name,
                   tr->n, out);
        PROP_CHECK(fabs(out - in) <=
                       0.5 / tr->pow10 * (1 + 1e-9) + 1e-15 * fabs(in),
                   "'%s' rounded to %" PRId64 " decimals: %.17g is too far "
                   "from %.17g",
                   name, tr->n, out, in);
}

static void check_scalar(const sb_transform_t *tr, const field_t *f,
                         avro_value_t *in, avro_value_t *out)
{
        const char *s, *o;
        size_t slen, olen, i;
        int32_t i32, o32;
        int64_t i64, o64, days;
        double d, od;
        float fl;
        int y, m;
        char ym[32];

        switch (tr->op) {
        case SB_TR_YEAR:
        case SB_TR_MONTH:
                if (f->kind == K_DATE) {
                        avro_value_get_int(in, &i32);
                        days = i32;
                } else {
                        avro_value_get_long(in, &i64);
                        days = floor_div(i64, MS_PER_DAY);
                }
                civil(days, &y, &m);
                if (tr->op == SB_TR_YEAR) {
                        /* An int: nothing finer than the year is left. */
                        PROP_CHECK(avro_value_get_type(out) == AVRO_INT32,
                                   "'%s': year is no int", f->name);
                        avro_value_get_int(out, &o32);
                        PROP_CHECK(o32 == y,
                                   "'%s' day %" PRId64 ": year %d, got %d",
                                   f->name, days, y, (int)o32);
                        return;
                }
                /* YYYY-MM: the day is gone. */
                avro_value_get_string(out, &o, &olen);
                snprintf(ym, sizeof(ym), "%04d-%02d", y, m);
                PROP_CHECK(olen == 8 && !strcmp(o, ym),
                           "'%s' day %" PRId64 ": month %s, got \"%s\"",
                           f->name, days, ym, o);
                return;
        case SB_TR_BUCKET:
                if (f->kind == K_INT) {
                        avro_value_get_int(in, &i32);
                        avro_value_get_int(out, &o32);
                        check_bucket_int(tr, f->name, i32, o32, INT32_MIN);
                } else if (f->kind == K_LONG) {
                        avro_value_get_long(in, &i64);
                        avro_value_get_long(out, &o64);
                        check_bucket_int(tr, f->name, i64, o64, INT64_MIN);
                } else {
                        if (f->kind == K_FLOAT) {
                                avro_value_get_float(in, &fl);
                                d = fl;
                        } else {
                                avro_value_get_double(in, &d);
                        }
                        avro_value_get_double(out, &od);
                        check_bucket_double(tr, f->name, d, od);
                }
                return;
        case SB_TR_ROUND:
                if (f->kind == K_FLOAT) {
                        avro_value_get_float(in, &fl);
                        d = fl;
                } else {
                        avro_value_get_double(in, &d);
                }
                avro_value_get_double(out, &od);
                check_round(tr, f->name, d, od);
                return;
        case SB_TR_TRUNCATE:
                avro_value_get_string(in, &s, &slen);
                avro_value_get_string(out, &o, &olen);
                slen--;
                olen--;
                PROP_CHECK(utf8_cps(o, olen) <= (size_t)tr->n,
                           "'%s' truncated to %" PRId64 ": \"%s\" is longer",
                           f->name, tr->n, o);
                PROP_CHECK(olen <= slen && !memcmp(o, s, olen),
                           "'%s': \"%s\" is no prefix of \"%s\"", f->name, o,
                           s);
                PROP_CHECK(utf8_cps(s, slen) > (size_t)tr->n || olen == slen,
                           "'%s': \"%s\" was cut to \"%s\"", f->name, s, o);
                PROP_CHECK(olen == slen ||
                               ((unsigned char)s[olen] & 0xC0) != 0x80,
                           "'%s': \"%s\" cut inside a character", f->name, s);
                return;
        case SB_TR_PSEUDONYMISE:
                avro_value_get_string(in, &s, &slen);
                avro_value_get_string(out, &o, &olen);
                PROP_CHECK(olen == SB_PSEUDONYM_HEXLEN + 1,
                           "'%s': pseudonym \"%s\" is not %d characters",
                           f->name, o, SB_PSEUDONYM_HEXLEN);
                for (i = 0; i < SB_PSEUDONYM_HEXLEN; i++)
                        PROP_CHECK(strchr("0123456789abcdef", o[i]) && o[i],
                                   "'%s': pseudonym \"%s\" is not hex", f->name,
                                   o);
                PROP_CHECK(strcmp(o, s), "'%s': pseudonym equals the input",
                           f->name);
                return;
        default:
                PROP_FAIL("'%s': unexpected transform %d", f->name, tr->op);
        }
}

static void check_value(const sb_transform_t *tr, const field_t *f,
                        avro_value_t *in, avro_value_t *out)
{
        avro_value_t ib, ob;
        int idisc, odisc;

        checked[tr->op]++;
        if (tr->op == SB_TR_KEEP) {
                PROP_CHECK(avro_value_equal(in, out),
                           "'%s': kept value changed", f->name);
                return;
        }
        if (f->nullable) {
                avro_value_get_discriminant(in, &idisc);
                avro_value_get_discriminant(out, &odisc);
                PROP_CHECK(idisc == odisc, "'%s': branch %d became %d", f->name,
                           idisc, odisc);
                if (idisc == f->null_branch)
                        return;
                avro_value_get_current_branch(in, &ib);
                avro_value_get_current_branch(out, &ob);
                check_scalar(tr, f, &ib, &ob);
                return;
        }
        check_scalar(tr, f, in, out);
}

/* Dataset record -> projection -> encoding (left in *enc) -> decoding. */
static void project_encode(const sb_grant_t *g, const sb_pseudonymiser_t *ps,
                           avro_value_t *rec, sb_buf_t *enc, avro_value_t *back)
{
        char errstr[512] = "";
        avro_value_t out;

        if (sb_schema_value_new(g->out, &out, errstr, sizeof(errstr)))
                PROP_FAIL("%s", errstr);
        if (sb_grant_project(g, ps, rec, SB_TEST_PSEUDONYM, &out, errstr,
                             sizeof(errstr)))
                PROP_FAIL("sb_grant_project: %s", errstr);
        if (sb_schema_encode(g->out, &out, enc, errstr, sizeof(errstr)))
                PROP_FAIL("sb_schema_encode: %s", errstr);
        avro_value_decref(&out);
        if (back && sb_schema_decode(g->out, enc->data, enc->len, back, errstr,
                                     sizeof(errstr)))
                PROP_FAIL("sb_schema_decode: %s", errstr);
}

static void setup_tmp(void)
{
        char errstr[256] = "";

        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/sb-test-props-XXXXXX");
        if (!mkdtemp(tmp_dir))
                fail_msg("mkdtemp failed");
        if (sb_crypto_init(errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
}

/*
 * Properties 1, 2 and 4: a random grant on a random schema; each random
 * record projected shares exactly the granted fields (R3.5-08), never more
 * precisely than granted (R3.5-02, R5.2-02), and encodes to the same
 * bytes every time.
 */
static void
granted_fields_only_never_more_precise_and_deterministic(void **state)
{
        sb_key_t *key;
        int it;

        (void)state;
        setup_tmp();
        key = sb_key_random();
        assert_non_null(key);
        for (it = 0; it < ITERATIONS; it++) {
                int granted[MAX_FIELDS + 2];
                char errstr[512] = "";
                sb_pseudonymiser_t *ps;
                dataset_t ds;
                sb_grant_t *g, *g2;
                json_t *grant;
                avro_value_t rec, back;
                size_t i, j, out_cnt;
                int r;

                rnd_start(1, it);
                dataset_random(&ds);
                grant = grant_base("g-prop", "reuser-a",
                                   fields_random(&ds, granted));
                g2 = grant_new_ok(&ds, json_deep_copy(grant));
                g = grant_new_ok(&ds, grant);
                ps = sb_pseudonymiser_new(key, "reuser-a", DATASET);
                assert_non_null(ps);

                /* 1: the output schema names the pseudonym and exactly
                 * the granted fields, in the dataset's order. */
                out_cnt = 1;
                for (i = 0; i < ds.cnt; i++)
                        out_cnt += (size_t)granted[i];
                PROP_CHECK(
                    json_array_size(json_object_get(g->out->json, "fields")) ==
                        out_cnt,
                    "output schema has %zu fields, %zu granted",
                    json_array_size(json_object_get(g->out->json, "fields")),
                    out_cnt);
                PROP_CHECK(g->map_cnt == out_cnt, "map of %zu, expected %zu",
                           g->map_cnt, out_cnt);
                PROP_CHECK(sb_schema_field(g->out, SB_PSEUDONYM_FIELD),
                           "no pseudonym field");
                for (i = 0, j = 1; i < ds.cnt; i++) {
                        const json_t *of =
                            sb_schema_field(g->out, ds.f[i].name);

                        PROP_CHECK(!!of == granted[i],
                                   "field '%s' %s the output schema but is "
                                   "%sgranted",
                                   ds.f[i].name, of ? "is in" : "is not in",
                                   granted[i] ? "" : "not ");
                        if (granted[i])
                                PROP_CHECK(g->map[j++] == i,
                                           "output field %zu maps to %zu, "
                                           "expected '%s'",
                                           j - 1, g->map[j - 1], ds.f[i].name);
                }

                if (sb_schema_value_new(ds.schema, &rec, errstr,
                                        sizeof(errstr)) ||
                    sb_schema_value_new(g->out, &back, errstr, sizeof(errstr)))
                        PROP_FAIL("%s", errstr);
                for (r = 0; r < RECORDS; r++) {
                        sb_buf_t e1 = {0}, e2 = {0};
                        json_t *dec = NULL;
                        const char *k;
                        json_t *v;

                        record_random(&ds, &rec, NULL);
                        project_encode(g, ps, &rec, &e1, &back);

                        /* 1: the decoded output names no other field. */
                        if (sb_avrojson_to_json(g->out->aj, &back, &dec, errstr,
                                                sizeof(errstr)))
                                PROP_FAIL("to_json: %s", errstr);
                        PROP_CHECK(json_object_size(dec) == out_cnt,
                                   "decoded output has %zu fields, %zu "
                                   "granted",
                                   json_object_size(dec), out_cnt);
                        json_object_foreach(dec, k, v)
                        {
                                for (i = 0; i < ds.cnt; i++)
                                        if (!strcmp(k, ds.f[i].name))
                                                break;
                                PROP_CHECK(!strcmp(k, SB_PSEUDONYM_FIELD) ||
                                               (i < ds.cnt && granted[i]),
                                           "decoded output names field '%s', "
                                           "not granted",
                                           k);
                        }
                        json_decref(dec);

                        /* 2: each value no more precise than granted. */
                        for (j = 1; j < g->map_cnt; j++) {
                                avro_value_t iv, ov;

                                avro_value_get_by_index(&rec, g->map[j], &iv,
                                                        NULL);
                                avro_value_get_by_index(&back, j, &ov, NULL);
                                check_value(&g->tr[j], &ds.f[g->map[j]], &iv,
                                            &ov);
                        }

                        /* 4: byte-identical, again and with another
                         * instance of the same grant. */
                        project_encode(g2, ps, &rec, &e2, NULL);
                        PROP_CHECK(e1.len == e2.len &&
                                       !memcmp(e1.data, e2.data, e1.len),
                                   "record %d: two projections differ "
                                   "(%zu and %zu bytes)",
                                   r, e1.len, e2.len);
                        project_encode(g, ps, &rec, &e2, NULL);
                        PROP_CHECK(e1.len == e2.len &&
                                       !memcmp(e1.data, e2.data, e1.len),
                                   "record %d: projecting twice differs", r);
                        sb_buf_release(&e1);
                        sb_buf_release(&e2);
                }
                avro_value_decref(&rec);
                avro_value_decref(&back);
                sb_pseudonymiser_destroy(ps);
                sb_grant_destroy(g);
                sb_grant_destroy(g2);
                dataset_release(&ds);
        }
        sb_key_destroy(key);
        rmdir(tmp_dir);
        fprintf(stderr,
                "checked: %ld kept, %ld year, %ld month, %ld bucket, %ld "
                "truncate, %ld round, %ld pseudonymise\n",
                checked[SB_TR_KEEP], checked[SB_TR_YEAR], checked[SB_TR_MONTH],
                checked[SB_TR_BUCKET], checked[SB_TR_TRUNCATE],
                checked[SB_TR_ROUND], checked[SB_TR_PSEUDONYMISE]);
        for (it = SB_TR_KEEP; it <= SB_TR_PSEUDONYMISE; it++)
                assert_true(checked[it] >= 100);
}

/*
 * Property 3: a pseudonymised field gives one reuser the same pseudonym
 * for the same value across pseudonymiser and grant instances, and two
 * reusers never the same one (R3.5-02; DESIGN §5: two reusers cannot join
 * their streams).
 */
static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The pseudonymised output of field `out_idx` for each subject. */
static void pseudonyms_of(const dataset_t *ds, const sb_grant_t *g,
                          const sb_pseudonymiser_t *ps, size_t out_idx,
                          char **outs)
{
        char errstr[512] = "", id[32];
        avro_value_t rec, back, v;
        const char *s;
        size_t len;
        int k;

        if (sb_schema_value_new(ds->schema, &rec, errstr, sizeof(errstr)) ||
            sb_schema_value_new(g->out, &back, errstr, sizeof(errstr)))
                PROP_FAIL("%s", errstr);
        for (k = 0; k < SUBJECTS; k++) {
                sb_buf_t enc = {0};

                snprintf(id, sizeof(id), "S-%06d", k);
                record_random(ds, &rec, NULL);
                avro_value_get_by_index(&rec, 1, &v, NULL);
                avro_value_set_string(&v, id);
                project_encode(g, ps, &rec, &enc, &back);
                avro_value_get_by_index(&back, out_idx, &v, NULL);
                avro_value_get_string(&v, &s, &len);
                outs[k] = strdup(s);
                sb_buf_release(&enc);
        }
        avro_value_decref(&rec);
        avro_value_decref(&back);
}

static void pseudonyms_stable_per_reuser_distinct_across_reusers(void **state)
{
        sb_key_t *key;
        int it, k;

        (void)state;
        setup_tmp();
        key = sb_key_random();
        assert_non_null(key);
        for (it = 0; it < 20; it++) {
                static char *a1[SUBJECTS], *a2[SUBJECTS], *b[SUBJECTS],
                    *all[2 * SUBJECTS];
                sb_pseudonymiser_t *psa1, *psa2, *psb;
                sb_grant_t *ga1, *ga2, *gb;
                dataset_t ds;
                json_t *fields;

                rnd_start(3, it);
                dataset_random(&ds);
                /* The record id, a string every schema has, is the field
                 * pseudonymised: each subject gets a distinct value. */
                fields = json_pack("{s:{s:b}}", "record_id", "pseudonymise", 1);
                ga1 = grant_new_ok(
                    &ds, grant_base("g-a", "reuser-a", json_deep_copy(fields)));
                ga2 = grant_new_ok(
                    &ds, grant_base("g-a", "reuser-a", json_deep_copy(fields)));
                gb = grant_new_ok(&ds, grant_base("g-b", "reuser-b", fields));
                psa1 = sb_pseudonymiser_new(key, "reuser-a", DATASET);
                psa2 = sb_pseudonymiser_new(key, "reuser-a", DATASET);
                psb = sb_pseudonymiser_new(key, "reuser-b", DATASET);
                assert_true(psa1 && psa2 && psb);

                pseudonyms_of(&ds, ga1, psa1, 1, a1);
                pseudonyms_of(&ds, ga2, psa2, 1, a2);
                pseudonyms_of(&ds, gb, psb, 1, b);
                for (k = 0; k < SUBJECTS; k++) {
                        PROP_CHECK(!strcmp(a1[k], a2[k]),
                                   "subject %d: reuser-a got %s, then %s", k,
                                   a1[k], a2[k]);
                        all[k] = a1[k];
                        all[SUBJECTS + k] = b[k];
                }
                /* No pseudonym in common, none repeated: sort and look
                 * at neighbours. */
                qsort(all, 2 * SUBJECTS, sizeof(all[0]), cmp_str);
                for (k = 1; k < 2 * SUBJECTS; k++)
                        PROP_CHECK(strcmp(all[k - 1], all[k]),
                                   "pseudonym %s given twice (across reusers "
                                   "or subjects)",
                                   all[k]);
                for (k = 0; k < SUBJECTS; k++) {
                        free(a1[k]);
                        free(a2[k]);
                        free(b[k]);
                }
                sb_pseudonymiser_destroy(psa1);
                sb_pseudonymiser_destroy(psa2);
                sb_pseudonymiser_destroy(psb);
                sb_grant_destroy(ga1);
                sb_grant_destroy(ga2);
                sb_grant_destroy(gb);
                dataset_release(&ds);
        }
        sb_key_destroy(key);
        rmdir(tmp_dir);
}

/*
 * Property 5: a valid random grant with one fault added is refused, and
 * the error names the key at fault (R3.5-07; STYLE: errors name the key).
 */

/* A transform that does not fit kind `k`, or NULL if every one fits. */
static json_t *transform_misfit(kind_t k)
{
        json_t *c[8];
        size_t n = 0, i, pick;

        if (k != K_DATE && k != K_TS_MILLIS)
                c[n++] = json_pack("{s:s}", "generalise",
                                   chance(50) ? "year" : "month");
        if (k != K_INT && k != K_LONG && k != K_DOUBLE && k != K_FLOAT &&
            k != K_LAT && k != K_LON)
                c[n++] = json_pack("{s:{s:i}}", "generalise", "bucket", 10);
        if (k != K_STRING) {
                c[n++] = json_pack("{s:i}", "truncate", 3);
                c[n++] = json_pack("{s:b}", "pseudonymise", 1);
        }
        if (k != K_DOUBLE && k != K_FLOAT && k != K_LAT && k != K_LON)
                c[n++] = json_pack("{s:i}", "round", 2);
        pick = rnd_below(n);
        for (i = 0; i < n; i++)
                if (i != pick)
                        json_decref(c[i]);
        return c[pick];
}

/* A transform with parameters out of bounds whatever the field. */
static json_t *transform_bad_params(void)
{
        switch (rnd_below(9)) {
        case 0:
                return json_pack("{s:i}", "truncate", 0);
        case 1:
                return json_pack("{s:i}", "round", SB_ROUND_MAX_DECIMALS + 1);
        case 2:
                return json_pack("{s:i}", "round", -1);
        case 3:
                return json_pack("{s:{s:i}}", "generalise", "bucket", 0);
        case 4:
                return json_pack("{s:{s:f}}", "generalise", "bucket", -2.5);
        case 5:
                return json_pack("{s:s}", "generalise", "week");
        case 6:
                return json_pack("{s:b}", "pseudonymise", 0);
        case 7:
                return json_string("maybe");
        default:
                return json_pack("{s:i, s:i}", "truncate", 2, "round", 1);
        }
}

static const char *const bad_times[] = {"2026-13-01T00:00:00Z",
                                        "2026-02-30T00:00:00Z",
                                        "2025-02-29T00:00:00Z",
                                        "2026-12-01T24:00:00Z",
                                        "2026-12-01",
                                        "yesterday",
                                        "2026-12-01T00:00:00",
                                        "2026-12-01T00:00:00.Z",
                                        ""};

static void invalid_grants_are_refused_naming_the_key(void **state)
{
        int it, counts[5] = {0};

        (void)state;
        setup_tmp();
        for (it = 0; it < ITERATIONS; it++) {
                int granted[MAX_FIELDS + 2], fault;
                char errstr[512] = "", key[96], *text;
                json_t *fields, *grant;
                sb_grant_t *g;
                dataset_t ds;
                size_t i;

                rnd_start(5, it);
                dataset_random(&ds);
                fields = fields_random(&ds, granted);
                grant = grant_base("g-bad", "reuser-a", fields);
                fault = (int)rnd_below(5);
                i = 1 + rnd_below(ds.cnt - 1);
                switch (fault) {
                case 0: /* a transform that does not fit the type */
                        snprintf(key, sizeof(key), "fields.%s", ds.f[i].name);
                        json_object_set_new(fields, ds.f[i].name,
                                            transform_misfit(ds.f[i].kind));
                        break;
                case 1: /* a field the dataset does not have */
                        snprintf(key, sizeof(key), "fields.nosuch_%d",
                                 (int)rnd_below(1000));
                        json_object_set_new(fields, key + 7,
                                            transform_random(K_STRING));
                        break;
                case 2: /* a bad date */
                        snprintf(key, sizeof(key), "%s",
                                 chance(50) ? "valid_from" : "valid_until");
                        json_object_set_new(
                            grant, key,
                            chance(10) ? json_integer(20261201)
                                       : json_string(bad_times[rnd_below(
                                             sizeof(bad_times) /
                                             sizeof(bad_times[0]))]));
                        break;
                case 3: /* parameters out of bounds */
                        snprintf(key, sizeof(key), "fields.%s", ds.f[i].name);
                        json_object_set_new(fields, ds.f[i].name,
                                            transform_bad_params());
                        break;
                default: /* the subject id, never shared */
                        snprintf(key, sizeof(key), "fields.subject");
                        json_object_set_new(fields, "subject",
                                            transform_random(K_STRING));
                        break;
                }
                counts[fault]++;
                text = json_dumps(grant, JSON_COMPACT);
                g = sb_grant_new(grant, "g.json", ds.cat, errstr,
                                 sizeof(errstr));
                PROP_CHECK(!g, "fault %d: invalid grant accepted: %s", fault,
                           text);
                PROP_CHECK(strstr(errstr, "'g.json'") && strstr(errstr, key),
                           "fault %d: error does not name '%s': %s\n  grant: "
                           "%s",
                           fault, key, errstr, text);
                free(text);
                dataset_release(&ds);
        }
        for (it = 0; it < 5; it++)
                assert_true(counts[it] >= ITERATIONS / 10);
        rmdir(tmp_dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                granted_fields_only_never_more_precise_and_deterministic),
            cmocka_unit_test(
                pseudonyms_stable_per_reuser_distinct_across_reusers),
            cmocka_unit_test(invalid_grants_are_refused_naming_the_key),
        };
        const char *env = getenv("SB_PROPERTY_SEED");

        seed = env && *env ? strtoull(env, NULL, 0) : SEED_DEFAULT;
        fprintf(stderr,
                "property seed: 0x%016" PRIx64 " (SB_PROPERTY_SEED overrides "
                "it)\n",
                seed);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
