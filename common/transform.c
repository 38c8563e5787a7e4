#include "transform.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MS_PER_DAY INT64_C(86400000)

/*
 * Validation
 */

static sb_err_t sb_tr_err(char *errstr, size_t errstr_size, const char *what,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static sb_err_t sb_tr_err(char *errstr, size_t errstr_size, const char *what,
                          const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return sb_seterr(errstr, errstr_size, SB_ERR_GRANT, "%s: %s", what,
                         msg);
}

/* A JSON value as a message quotes it; numbers without float noise. */
static void sb_tr_got(const json_t *v, char *buf, size_t size)
{
        char *s;

        if (json_is_integer(v)) {
                snprintf(buf, size, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
                return;
        }
        if (json_is_real(v)) {
                snprintf(buf, size, "%.15g", json_real_value(v));
                return;
        }
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, size, "%s", s ? s : "?");
        free(s);
}

/*
 * A whole JSON number (an integer, or a real without fraction: JSON
 * Schema's "integer") within [lo, hi].
 */
static int sb_tr_whole(const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
        double d;

        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);

                if (i < lo || i > hi)
                        return 0;
                *out = (int64_t)i;
                return 1;
        }
        if (!json_is_real(v))
                return 0;
        d = json_real_value(v);
        /* 2^63 itself does not fit: compare before converting. */
        if (!isfinite(d) || d != floor(d) || d < (double)lo ||
            d >= 9223372036854775808.0 || d > (double)hi)
                return 0;
        *out = (int64_t)d;
        return *out >= lo && *out <= hi;
}

/*
 * What a transform can read from a (non-union) type; `desc` gets how
 * messages name the type ("int", "date", "enum 'BenefitKind'").
 */
static sb_transform_src_t sb_tr_classify(const json_t *t, char *desc,
                                         size_t size, sb_transform_t *tr)
{
        static const struct {
                const char *name;
                sb_transform_src_t src;
        } prims[] = {{"int", SB_SRC_INT},
                     {"long", SB_SRC_LONG},
                     {"float", SB_SRC_FLOAT},
                     {"double", SB_SRC_DOUBLE},
                     {"string", SB_SRC_STRING}};
        const char *name, *lt;
        size_t i;

        if (json_is_string(t)) {
                name = json_string_value(t);
                snprintf(desc, size, "%s", name);
                for (i = 0; i < sizeof(prims) / sizeof(prims[0]); i++)
                        if (!strcmp(prims[i].name, name))
                                return prims[i].src;
                return SB_SRC_OTHER; /* null, boolean, bytes, a named type */
        }
        name = json_string_value(json_object_get(t, "type"));
        if (!name) {
                snprintf(desc, size, "a nested type");
                return SB_SRC_OTHER;
        }
        lt = json_string_value(json_object_get(t, "logicalType"));
        if (!strcmp(name, "record") || !strcmp(name, "error") ||
            !strcmp(name, "enum") || !strcmp(name, "fixed")) {
                const char *tn = json_string_value(json_object_get(t, "name"));

                snprintf(desc, size, "%s%s '%s'",
                         lt && !strcmp(name, "fixed") ? lt : name,
                         lt && !strcmp(name, "fixed") ? " fixed" : "",
                         tn ? tn : "?");
                return SB_SRC_OTHER;
        }
        if (!lt)
                return sb_tr_classify(json_object_get(t, "type"), desc, size,
                                      tr);
        snprintf(desc, size, "%s", lt);
        if (!strcmp(lt, "date") && !strcmp(name, "int"))
                return SB_SRC_DATE;
        if (!strcmp(lt, "timestamp-millis") && !strcmp(name, "long"))
                return SB_SRC_TS_MILLIS;
        if (!strcmp(lt, "uuid") && !strcmp(name, "string"))
                return SB_SRC_STRING;
        if (!strcmp(lt, "decimal") && !strcmp(name, "bytes")) {
                json_t *p = json_object_get(t, "precision");
                json_t *s = json_object_get(t, "scale");

                if (!json_is_integer(p) || json_integer_value(p) < 1 ||
                    json_integer_value(p) > 1000 || (s && !json_is_integer(s)))
                        return SB_SRC_OTHER;
                tr->precision = (int)json_integer_value(p);
                tr->scale = s ? (int)json_integer_value(s) : 0;
                if (tr->scale < 0 || tr->scale > tr->precision)
                        return SB_SRC_OTHER;
                return SB_SRC_DECIMAL;
        }
        return SB_SRC_OTHER;
}

/* Classifies a field type, seeing through a union of null and one type. */
static sb_transform_src_t sb_tr_field_src(const json_t *t, char *desc,
                                          size_t size, sb_transform_t *tr)
{
        const json_t *b0 = json_array_get(t, 0), *b1 = json_array_get(t, 1);
        int null0, null1;
        char inner[128];
        sb_transform_src_t src;

        if (!json_is_array(t))
                return sb_tr_classify(t, desc, size, tr);
        null0 = json_is_string(b0) && !strcmp(json_string_value(b0), "null");
        null1 = json_is_string(b1) && !strcmp(json_string_value(b1), "null");
        if (json_array_size(t) != 2 || null0 == null1) {
                snprintf(desc, size, "a union");
                return SB_SRC_OTHER;
        }
        tr->nullable = 1;
        tr->null_branch = null0 ? 0 : 1;
        src = sb_tr_classify(null0 ? b1 : b0, inner, sizeof(inner), tr);
        snprintf(desc, size, "nullable %s", inner);
        return src;
}

static int sb_tr_fits(sb_transform_op_t op, sb_transform_src_t src)
{
        switch (op) {
        case SB_TR_YEAR:
        case SB_TR_MONTH:
                return src == SB_SRC_DATE || src == SB_SRC_TS_MILLIS;
        case SB_TR_BUCKET:
                return src == SB_SRC_INT || src == SB_SRC_LONG ||
                       src == SB_SRC_FLOAT || src == SB_SRC_DOUBLE ||
                       src == SB_SRC_DECIMAL;
        case SB_TR_TRUNCATE:
        case SB_TR_PSEUDONYMISE:
                return src == SB_SRC_STRING;
        case SB_TR_ROUND:
                return src == SB_SRC_FLOAT || src == SB_SRC_DOUBLE;
        default:
                return 1;
        }
}

/* Checks a bucket width against the field's type; sets the integer form. */
static sb_err_t sb_tr_bucket_width(sb_transform_t *tr, const json_t *w,
                                   const char *fname, const char *what,
                                   char *errstr, size_t errstr_size)
{
        char got[64];
        double scaled, p10;
        int64_t k;

        sb_tr_got(w, got, sizeof(got));
        switch (tr->src) {
        case SB_SRC_INT:
                if (!sb_tr_whole(w, 1, INT32_MAX, &tr->iwidth))
                        return sb_tr_err(errstr, errstr_size, what,
                                         "bucket width for int field '%s' "
                                         "must be a whole number from 1 to "
                                         "2147483647, got %s",
                                         fname, got);
                return SB_OK;
        case SB_SRC_LONG:
                if (!sb_tr_whole(w, 1, INT64_MAX, &tr->iwidth))
                        return sb_tr_err(errstr, errstr_size, what,
                                         "bucket width for long field '%s' "
                                         "must be a whole number from 1 to "
                                         "9223372036854775807, got %s",
                                         fname, got);
                return SB_OK;
        case SB_SRC_DECIMAL:
                if (tr->precision > SB_BUCKET_MAX_DECIMAL_PRECISION)
                        return sb_tr_err(errstr, errstr_size, what,
                                         "bucket takes decimals of precision "
                                         "up to %d, '%s' has precision %d",
                                         SB_BUCKET_MAX_DECIMAL_PRECISION, fname,
                                         tr->precision);
                tr->dec_max = 1;
                for (k = 0; k < tr->precision; k++)
                        tr->dec_max *= 10;
                p10 = pow(10, tr->scale);
                scaled = tr->width * p10;
                /* A width "finer" only through binary noise (0.1 * 100)
                 * is the decimal the grant wrote. */
                if (scaled < 0.5 ||
                    fabs(scaled - nearbyint(scaled)) > 1e-9 * scaled)
                        return sb_tr_err(errstr, errstr_size, what,
                                         "bucket width %s is finer than the "
                                         "scale of decimal field '%s' (%d "
                                         "decimals)",
                                         got, fname, tr->scale);
                if (nearbyint(scaled) > (double)tr->dec_max)
                        return sb_tr_err(errstr, errstr_size, what,
                                         "bucket width %s is wider than the "
                                         "range of decimal field '%s' "
                                         "(precision %d, scale %d)",
                                         got, fname, tr->precision, tr->scale);
                tr->iwidth = (int64_t)nearbyint(scaled);
                tr->dec_max -= 1;
                return SB_OK;
        default:
                /* float, double: any width > 0. A decimal width (0.1) is
                 * kept as an integer over a power of ten, so bounds come
                 * out as the doubles nearest to decimals (60175.1, not
                 * 601751 * 0.1 = 60175.100000000006). */
                for (k = 0, p10 = 1; k <= 15; k++, p10 *= 10) {
                        scaled = tr->width * p10;
                        if (scaled >= 9007199254740992.0)
                                break;
                        if (fabs(scaled - nearbyint(scaled)) <= 1e-9 * scaled) {
                                tr->iwidth = (int64_t)nearbyint(scaled);
                                tr->pow10 = p10;
                                break;
                        }
                }
                return SB_OK;
        }
}

static const char *sb_tr_needs(sb_transform_op_t op)
{
        switch (op) {
        case SB_TR_YEAR:
                return "generalise \"year\" needs a date or timestamp-millis "
                       "field";
        case SB_TR_MONTH:
                return "generalise \"month\" needs a date or "
                       "timestamp-millis field";
        case SB_TR_BUCKET:
                return "generalise bucket needs an int, long, float, double "
                       "or decimal field";
        case SB_TR_TRUNCATE:
                return "truncate needs a string field";
        case SB_TR_ROUND:
                return "round needs a float or double field";
        case SB_TR_PSEUDONYMISE:
                return "pseudonymise needs a string field";
        default:
                return "?";
        }
}

sb_err_t sb_transform_parse(sb_transform_t *tr, const json_t *spec,
                            const json_t *field, const char *what, char *errstr,
                            size_t errstr_size)
{
        const char *fname = json_string_value(json_object_get(field, "name"));
        const char *key, *s;
        char desc[160], got[160];
        json_t *arg, *w = NULL;
        sb_err_t err;

        memset(tr, 0, sizeof(*tr));
        fname = fname ? fname : "?";
        if (json_is_string(spec)) {
                s = json_string_value(spec);
                if (!strcmp(s, "keep")) {
                        tr->op = SB_TR_KEEP;
                        return SB_OK;
                }
                if (!strcmp(s, "drop")) {
                        tr->op = SB_TR_DROP;
                        return SB_OK;
                }
                sb_tr_got(spec, got, sizeof(got));
                return sb_tr_err(errstr, errstr_size, what,
                                 "unknown transform %s; expected \"keep\", "
                                 "\"drop\" or an object: generalise, "
                                 "truncate, round or pseudonymise",
                                 got);
        }
        if (!json_is_object(spec)) {
                sb_tr_got(spec, got, sizeof(got));
                return sb_tr_err(errstr, errstr_size, what,
                                 "expected \"keep\", \"drop\" or a transform "
                                 "object, got %s",
                                 got);
        }
        if (json_object_size(spec) != 1) {
                size_t len = 0;

                got[0] = '\0';
                json_object_foreach((json_t *)spec, key, arg)
                {
                        len += (size_t)snprintf(
                            got + len,
                            len < sizeof(got) ? sizeof(got) - len : 0, "%s%s",
                            len ? ", " : "", key);
                        if (len >= sizeof(got))
                                break;
                }
                return sb_tr_err(errstr, errstr_size, what,
                                 "a transform object has exactly one key, "
                                 "got %zu%s%s%s",
                                 json_object_size(spec), len ? " (" : "", got,
                                 len ? ")" : "");
        }
        key = json_object_iter_key(json_object_iter((json_t *)spec));
        arg = json_object_get(spec, key);
        sb_tr_got(arg, got, sizeof(got));

        if (!strcmp(key, "generalise")) {
                s = json_string_value(arg);
                if (s && !strcmp(s, "year"))
                        tr->op = SB_TR_YEAR;
                else if (s && !strcmp(s, "month"))
                        tr->op = SB_TR_MONTH;
                else if (json_is_object(arg) && json_object_size(arg) == 1 &&
                         (w = json_object_get(arg, "bucket")))
                        tr->op = SB_TR_BUCKET;
                else
                        return sb_tr_err(errstr, errstr_size, what,
                                         "generalise needs \"year\", "
                                         "\"month\" or {\"bucket\": W}, "
                                         "got %s",
                                         got);
        } else if (!strcmp(key, "truncate")) {
                tr->op = SB_TR_TRUNCATE;
                if (!sb_tr_whole(arg, 1, INT64_MAX, &tr->n))
                        return sb_tr_err(errstr, errstr_size, what,
                                         "truncate needs a whole number of "
                                         "characters >= 1, got %s",
                                         got);
        } else if (!strcmp(key, "round")) {
                tr->op = SB_TR_ROUND;
                if (!sb_tr_whole(arg, 0, SB_ROUND_MAX_DECIMALS, &tr->n))
                        return sb_tr_err(errstr, errstr_size, what,
                                         "round needs a whole number of "
                                         "decimals from 0 to %d, got %s",
                                         SB_ROUND_MAX_DECIMALS, got);
                tr->pow10 = pow(10, (double)tr->n);
        } else if (!strcmp(key, "pseudonymise")) {
                tr->op = SB_TR_PSEUDONYMISE;
                if (!json_is_true(arg))
                        return sb_tr_err(errstr, errstr_size, what,
                                         "pseudonymise needs true, got %s",
                                         got);
        } else {
                return sb_tr_err(errstr, errstr_size, what,
                                 "unknown transform '%s'; expected "
                                 "generalise, truncate, round or "
                                 "pseudonymise",
                                 key);
        }
        if (tr->op == SB_TR_BUCKET) {
                sb_tr_got(w, got, sizeof(got));
                if (!json_is_number(w) || !isfinite(json_number_value(w)) ||
                    !(json_number_value(w) > 0))
                        return sb_tr_err(errstr, errstr_size, what,
                                         "bucket width must be a number > 0, "
                                         "got %s",
                                         got);
                tr->width = json_number_value(w);
                tr->width_whole = tr->width == floor(tr->width);
        }

        tr->src = sb_tr_field_src(json_object_get(field, "type"), desc,
                                  sizeof(desc), tr);
        if (!sb_tr_fits(tr->op, tr->src))
                return sb_tr_err(errstr, errstr_size, what, "%s, '%s' is %s",
                                 sb_tr_needs(tr->op), fname, desc);
        if (tr->op == SB_TR_BUCKET &&
            (err = sb_tr_bucket_width(tr, w, fname, what, errstr, errstr_size)))
                return err;
        return SB_OK;
}

/*
 * Output schema
 */

json_t *sb_transform_json(const sb_transform_t *tr)
{
        json_t *w;

        switch (tr->op) {
        case SB_TR_DROP:
                return json_string("drop");
        case SB_TR_KEEP:
                return json_string("keep");
        case SB_TR_YEAR:
                return json_pack("{s:s}", "generalise", "year");
        case SB_TR_MONTH:
                return json_pack("{s:s}", "generalise", "month");
        case SB_TR_BUCKET:
                if (tr->src == SB_SRC_INT || tr->src == SB_SRC_LONG)
                        w = json_integer(tr->iwidth);
                else if (tr->width_whole && fabs(tr->width) < 9e15)
                        w = json_integer((json_int_t)tr->width);
                else
                        w = json_real(tr->width);
                return json_pack("{s:{s:o}}", "generalise", "bucket", w);
        case SB_TR_TRUNCATE:
                return json_pack("{s:I}", "truncate", (json_int_t)tr->n);
        case SB_TR_ROUND:
                return json_pack("{s:I}", "round", (json_int_t)tr->n);
        case SB_TR_PSEUDONYMISE:
                return json_pack("{s:b}", "pseudonymise", 1);
        }
        return NULL;
}

static json_t *sb_tr_out_type(const sb_transform_t *tr)
{
        json_t *t, *u;

        switch (tr->op) {
        case SB_TR_YEAR:
                t = json_string("int");
                break;
        case SB_TR_BUCKET:
                if (tr->src == SB_SRC_INT)
                        t = json_string("int");
                else if (tr->src == SB_SRC_LONG)
                        t = json_string("long");
                else if (tr->src == SB_SRC_DECIMAL)
                        /* One more digit: the lower bound of a negative
                         * value's bucket can be longer than the value. */
                        t = json_pack("{s:s, s:s, s:i, s:i}", "type", "bytes",
                                      "logicalType", "decimal", "precision",
                                      tr->precision + 1, "scale", tr->scale);
                else
                        t = json_string("double");
                break;
        case SB_TR_ROUND:
                t = json_string("double");
                break;
        default: /* month, truncate, pseudonymise */
                t = json_string("string");
                break;
        }
        if (!t || !tr->nullable)
                return t;
        u = json_array();
        if (!u || json_array_append_new(u, json_string("null")) ||
            json_array_insert_new(u, tr->null_branch ? 0 : 1, t)) {
                json_decref(u);
                return NULL;
        }
        return u;
}

static const char *sb_tr_src_article(sb_transform_src_t src)
{
        switch (src) {
        case SB_SRC_INT:
                return "an int";
        case SB_SRC_LONG:
                return "a long";
        case SB_SRC_FLOAT:
                return "a float";
        case SB_SRC_DOUBLE:
                return "a double";
        case SB_SRC_DECIMAL:
                return "a decimal";
        case SB_SRC_DATE:
                return "a date";
        case SB_SRC_TS_MILLIS:
                return "a timestamp";
        default:
                return "a string";
        }
}

/* The doc of a transformed field: what was done, then the field's doc. */
static char *sb_tr_doc(const sb_transform_t *tr, const char *fname,
                       const char *orig)
{
        char what[384], width[64];
        int ts = tr->src == SB_SRC_TS_MILLIS;
        char *doc;

        switch (tr->op) {
        case SB_TR_YEAR:
                snprintf(what, sizeof(what),
                         "Year of %s%s (generalised from %s)", fname,
                         ts ? ", in UTC" : "", sb_tr_src_article(tr->src));
                break;
        case SB_TR_MONTH:
                snprintf(what, sizeof(what),
                         "Month of %s as YYYY-MM%s (generalised from %s)",
                         fname, ts ? ", in UTC" : "",
                         sb_tr_src_article(tr->src));
                break;
        case SB_TR_BUCKET:
                if (tr->src == SB_SRC_INT || tr->src == SB_SRC_LONG)
                        snprintf(width, sizeof(width), "%" PRId64, tr->iwidth);
                else
                        snprintf(width, sizeof(width), "%.15g", tr->width);
                snprintf(what, sizeof(what),
                         "Lower bound of the bucket of width %s that holds %s "
                         "(generalised from %s)",
                         width, fname, sb_tr_src_article(tr->src));
                break;
        case SB_TR_TRUNCATE:
                if (tr->n == 1)
                        snprintf(what, sizeof(what),
                                 "First character of %s (truncated)", fname);
                else
                        snprintf(what, sizeof(what),
                                 "First %" PRId64 " characters of %s "
                                 "(truncated)",
                                 tr->n, fname);
                break;
        case SB_TR_ROUND:
                if (tr->n == 0)
                        snprintf(what, sizeof(what),
                                 "%s rounded to a whole number", fname);
                else
                        snprintf(what, sizeof(what),
                                 "%s rounded to %" PRId64 " decimal%s", fname,
                                 tr->n, tr->n == 1 ? "" : "s");
                break;
        case SB_TR_PSEUDONYMISE:
                snprintf(what, sizeof(what),
                         "Pseudonym of %s: keyed BLAKE2b, 32 hex characters, "
                         "under the key of this reuser and dataset that "
                         "also makes the subject pseudonym (pseudonymised)",
                         fname);
                break;
        default:
                what[0] = '\0';
                break;
        }
        if (orig && *orig) {
                if (asprintf(&doc, "%s. %s", what, orig) == -1)
                        return NULL;
                return doc;
        }
        return strdup(what);
}

json_t *sb_transform_field(const sb_transform_t *tr, const json_t *field)
{
        const char *fname = json_string_value(json_object_get(field, "name"));
        const json_t *def = json_object_get(field, "default");
        json_t *out, *t, *tj;
        char *doc;

        out = json_deep_copy(field);
        t = sb_tr_out_type(tr);
        tj = sb_transform_json(tr);
        doc = sb_tr_doc(tr, fname ? fname : "?",
                        json_string_value(json_object_get(field, "doc")));
        if (!out || !t || !tj || !doc || json_object_set_new(out, "type", t) ||
            json_object_set_new(out, "doc", json_string(doc)) ||
            json_object_set_new(out, "sb.transform", tj)) {
                free(doc);
                json_decref(out);
                return NULL;
        }
        free(doc);
        /* The dataset's example shows the precision the grant removes;
         * only a null default (first branch null) fits the new type. */
        json_object_del(out, "example");
        if (def && !(json_is_null(def) && tr->nullable && tr->null_branch == 0))
                json_object_del(out, "default");
        return out;
}

/*
 * Projection (hot path)
 */

static void sb_tr_civil(int64_t z, int64_t *y, int *m)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = yoe + era * 400 + (*m <= 2);
}

/* The lower bound of v's bucket: v - (v mod w), or INT64_MIN. */
static int64_t sb_tr_floor_bucket(int64_t v, int64_t w)
{
        int64_t r = v % w, lo;

        if (r < 0)
                r += w;
        if (__builtin_sub_overflow(v, r, &lo))
                return INT64_MIN;
        return lo;
}

/* A decimal's unscaled value, saturated to +-dec_max. */
static int64_t sb_tr_dec_read(const unsigned char *b, size_t len,
                              int64_t dec_max)
{
        int neg = len > 0 && (b[0] & 0x80);
        unsigned char fill = neg ? 0xff : 0x00;
        uint64_t u = neg ? UINT64_MAX : 0;
        size_t k = 0;
        int64_t v;

        /* Redundant sign bytes may precede the 8 that matter. */
        for (; len - k > 8; k++)
                if (b[k] != fill)
                        return neg ? -dec_max : dec_max;
        if (k > 0 && ((b[k] & 0x80) != 0) != neg)
                return neg ? -dec_max : dec_max;
        for (; k < len; k++)
                u = u << 8 | b[k];
        memcpy(&v, &u, sizeof(v));
        if (v > dec_max)
                return dec_max;
        if (v < -dec_max)
                return -dec_max;
        return v;
}

static int sb_tr_dec_write(avro_value_t *dst, int64_t v)
{
        unsigned char b[8];
        uint64_t u;
        int k;

        memcpy(&u, &v, sizeof(u));
        for (k = 7; k >= 0; k--, u >>= 8)
                b[k] = (unsigned char)(u & 0xff);
        /* Shortest two's complement form. */
        for (k = 0; k < 7 && (b[k] == 0x00 || b[k] == 0xff) &&
                    (b[k] & 0x80) == (b[k + 1] & 0x80);
             k++)
                ;
        return avro_value_set_bytes(dst, b + k, (size_t)(8 - k));
}

/* q * width, as the double nearest to that decimal when the width is one. */
static double sb_tr_bound(const sb_transform_t *tr, double q)
{
        if (tr->iwidth && fabs(q) * (double)tr->iwidth < 9007199254740992.0)
                return q * (double)tr->iwidth / tr->pow10; /* one rounding */
        return q * tr->width;
}

static int sb_tr_bucket(const sb_transform_t *tr, avro_value_t *src,
                        avro_value_t *dst)
{
        const void *bytes;
        size_t size;
        int32_t i32;
        int64_t i64;
        float f;
        double d, q, lo;
        int rc;

        switch (tr->src) {
        case SB_SRC_INT:
                if ((rc = avro_value_get_int(src, &i32)))
                        return rc;
                /* The bucket of INT32_MIN may start below it: clamp. */
                i64 = sb_tr_floor_bucket(i32, tr->iwidth);
                return avro_value_set_int(dst, i64 < INT32_MIN ? INT32_MIN
                                                               : (int32_t)i64);
        case SB_SRC_LONG:
                if ((rc = avro_value_get_long(src, &i64)))
                        return rc;
                return avro_value_set_long(dst,
                                           sb_tr_floor_bucket(i64, tr->iwidth));
        case SB_SRC_DECIMAL:
                if ((rc = avro_value_get_bytes(src, &bytes, &size)))
                        return rc;
                i64 = sb_tr_dec_read(bytes, size, tr->dec_max);
                return sb_tr_dec_write(dst,
                                       sb_tr_floor_bucket(i64, tr->iwidth));
        case SB_SRC_FLOAT:
                if ((rc = avro_value_get_float(src, &f)))
                        return rc;
                d = f;
                break;
        default:
                if ((rc = avro_value_get_double(src, &d)))
                        return rc;
                break;
        }
        q = d / tr->width;
        /* Past 2^50 widths, a bucket is narrower than the precision of d
         * itself (and q - 1 == q): d is its own lower bound. NaN and
         * infinities pass through too. */
        if (!(fabs(q) < 1125899906842624.0))
                return avro_value_set_double(dst, d);
        q = floor(q);
        lo = sb_tr_bound(tr, q);
        /* d / w rounded up to a whole number: fl(q * w) > d means q * w > d
         * (rounding is monotonic), so d is in the bucket below. */
        if (lo > d)
                lo = sb_tr_bound(tr, q - 1);
        return avro_value_set_double(dst, lo);
}

static int sb_tr_generalise_date(const sb_transform_t *tr, avro_value_t *src,
                                 avro_value_t *dst)
{
        char buf[32];
        int64_t days, y;
        int32_t i32;
        int rc, m;

        if (tr->src == SB_SRC_DATE) {
                if ((rc = avro_value_get_int(src, &i32)))
                        return rc;
                days = i32;
        } else {
                if ((rc = avro_value_get_long(src, &days)))
                        return rc;
                days =
                    days / SB_MS_PER_DAY - (days % SB_MS_PER_DAY < 0 ? 1 : 0);
        }
        sb_tr_civil(days, &y, &m);
        if (tr->op == SB_TR_YEAR)
                return avro_value_set_int(dst, (int32_t)y);
        /* The date's own rendering (avrojson.h), cut before the day. */
        snprintf(buf, sizeof(buf), "%04" PRId64 "-%02d", y, m);
        return avro_value_set_string(dst, buf);
}

static int sb_tr_truncate(const sb_transform_t *tr, avro_value_t *src,
                          avro_value_t *dst)
{
        char sbuf[SB_TRANSFORM_STACKBUF], *buf = sbuf;
        const char *s;
        size_t size, len, i;
        int64_t cps = 0;
        int rc;

        if ((rc = avro_value_get_string(src, &s, &size)))
                return rc;
        len = size > 0 ? size - 1 : 0;
        /* Cut before the lead byte of code point n + 1: never inside a
         * UTF-8 sequence. */
        for (i = 0; i < len; i++) {
                if (((unsigned char)s[i] & 0xC0) != 0x80 && cps++ == tr->n)
                        break;
        }
        if (i == len)
                return avro_value_set_string_len(dst, s, len + 1);
        /* Avro C copies `size` bytes and wants the last to be the NUL. */
        if (i + 1 > sizeof(sbuf) && !(buf = malloc(i + 1)))
                return ENOMEM;
        memcpy(buf, s, i);
        buf[i] = '\0';
        rc = avro_value_set_string_len(dst, buf, i + 1);
        if (buf != sbuf)
                free(buf);
        return rc;
}

static int sb_tr_round(const sb_transform_t *tr, avro_value_t *src,
                       avro_value_t *dst)
{
        double d, scaled;
        float f;
        int rc;

        if (tr->src == SB_SRC_FLOAT) {
                if ((rc = avro_value_get_float(src, &f)))
                        return rc;
                d = f;
        } else if ((rc = avro_value_get_double(src, &d))) {
                return rc;
        }
        scaled = d * tr->pow10;
        /* Beyond 2^52 a double has no fraction left to round (and
         * d * 10^n could overflow): d already has at most n decimals. */
        if (fabs(scaled) < 4503599627370496.0)
                d = round(scaled) / tr->pow10;
        return avro_value_set_double(dst, d);
}

static int sb_tr_pseudonymise(const sb_pseudonymiser_t *ps, avro_value_t *src,
                              avro_value_t *dst)
{
        char hex[SB_PSEUDONYM_HEXLEN + 1];
        const char *s;
        size_t size;
        int rc;

        if ((rc = avro_value_get_string(src, &s, &size)))
                return rc;
        sb_pseudonymise(ps, s, size > 0 ? size - 1 : 0, hex);
        return avro_value_set_string_len(dst, hex, sizeof(hex));
}

static int sb_tr_scalar(const sb_transform_t *tr, const sb_pseudonymiser_t *ps,
                        avro_value_t *src, avro_value_t *dst)
{
        switch (tr->op) {
        case SB_TR_YEAR:
        case SB_TR_MONTH:
                return sb_tr_generalise_date(tr, src, dst);
        case SB_TR_BUCKET:
                return sb_tr_bucket(tr, src, dst);
        case SB_TR_TRUNCATE:
                return sb_tr_truncate(tr, src, dst);
        case SB_TR_ROUND:
                return sb_tr_round(tr, src, dst);
        case SB_TR_PSEUDONYMISE:
                return sb_tr_pseudonymise(ps, src, dst);
        default:
                return EINVAL;
        }
}

sb_err_t sb_transform_apply(const sb_transform_t *tr,
                            const sb_pseudonymiser_t *ps, avro_value_t *src,
                            avro_value_t *dst, char *errstr, size_t errstr_size)
{
        avro_value_t sb, db;
        int rc, disc;

        if (tr->op == SB_TR_KEEP) {
                rc = avro_value_copy_fast(dst, src);
                goto done;
        }
        if (tr->op == SB_TR_PSEUDONYMISE && !ps)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "pseudonymise needs the pseudonymiser of "
                                 "the grant's reuser and dataset");
        if (!tr->nullable) {
                rc = sb_tr_scalar(tr, ps, src, dst);
                goto done;
        }
        if ((rc = avro_value_get_discriminant(src, &disc)) ||
            (rc = avro_value_set_branch(dst, disc, &db)))
                goto done;
        if (disc == tr->null_branch) {
                rc = avro_value_set_null(&db);
                goto done;
        }
        if (!(rc = avro_value_get_current_branch(src, &sb)))
                rc = sb_tr_scalar(tr, ps, &sb, &db);
done:
        if (rc)
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION, "%s",
                                 rc == ENOMEM ? "out of memory"
                                              : avro_strerror());
        return SB_OK;
}
