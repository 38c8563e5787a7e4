/*
 * sharebus - JSON <-> Avro values, with precise validation errors.
 *
 * sb_avrojson_new() compiles the schema JSON once into a graph of aj_node
 * (kind, logical type, field tables, resolved named-type references, the
 * phrases used in error messages), so converting a record - done for every
 * published record - does no name lookups and allocates nothing beyond what
 * Avro C itself needs. The path of the value being converted is a chain of
 * frames on the C stack, rendered only when an error is reported.
 */
#include "avrojson.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest offending value quoted in a message, in bytes of compact JSON. */
#define AJ_GOT_MAX 40
/* Decimals are converted in a fixed buffer: 10^300 needs 125 bytes. */
#define AJ_DEC_MAX_PRECISION 300
#define AJ_DEC_BYTES         128
/* Scratch space on the stack before falling back to malloc(). */
#define AJ_STACKBUF 256

enum aj_kind {
        AJ_NULL,
        AJ_BOOLEAN,
        AJ_INT,
        AJ_LONG,
        AJ_FLOAT,
        AJ_DOUBLE,
        AJ_BYTES,
        AJ_STRING,
        AJ_RECORD,
        AJ_ENUM,
        AJ_FIXED,
        AJ_ARRAY,
        AJ_MAP,
        AJ_UNION
};

enum aj_logical {
        AJ_LT_NONE,
        AJ_LT_DATE,
        AJ_LT_TIME_MILLIS,
        AJ_LT_TIME_MICROS,
        AJ_LT_TS_MILLIS,
        AJ_LT_TS_MICROS,
        AJ_LT_DECIMAL,
        AJ_LT_UUID
};

/*
 * Conversion flags. Schema defaults and Avro's JSON encoding carry logical
 * values in their underlying form (a date default is an int), so they are
 * converted with these relaxations.
 */
enum {
        AJ_F_RAWNUM = 1,   /* date/time/timestamp also accept JSON integers */
        AJ_F_RAWBYTES = 2, /* decimal takes a bytes string, not "12.50" */
};
#define AJ_F_DEFAULT (AJ_F_RAWNUM | AJ_F_RAWBYTES)

struct aj_node;

struct aj_field {
        const char *name; /* borrowed from the schema JSON */
        struct aj_node *type;
        const json_t *def; /* "default", NULL when none */
};

struct aj_node {
        enum aj_kind kind;
        enum aj_logical logical;
        const char *tname; /* branch name in Avro's JSON union encoding */
        const char *desc;  /* what the JSON must be: "a date (YYYY-MM-DD)" */
        char *fullname;    /* named types */
        char *ns;          /* namespace given to nested definitions */
        char *desc_buf;
        int precision, scale;
        size_t size;           /* fixed */
        struct aj_node *items; /* array items, map values */
        struct aj_field *fields;
        size_t nfields;
        struct aj_node **branches;
        size_t nbranches;
        const json_t *symbols; /* enum: the schema's array */
        json_t *symbol_index;  /* enum: symbol -> index */
        int checked;           /* compared with the Avro C schema */
        struct aj_node *next;  /* allocation chain */
};

/* Type JSON -> node, so field_to_json() finds a field's compiled type. */
struct aj_ptrmap {
        const json_t **keys;
        struct aj_node **vals;
        size_t cap, cnt;
};

struct sb_avrojson_s {
        json_t *schema_json;
        avro_schema_t schema;
        struct aj_node *nodes; /* every node, for destroy */
        json_t *names;         /* full name -> node pointer as integer */
        struct aj_ptrmap pm;
        struct aj_node *root;
        const char *root_ns;
};

enum aj_seg { AJ_SEG_FIELD, AJ_SEG_INDEX, AJ_SEG_KEY };

struct aj_path {
        const struct aj_path *up;
        enum aj_seg seg;
        const char *name;
        size_t index;
};

struct aj_ctx {
        char *errstr;
        size_t errstr_size;
        /* Trying union branches: validation messages would be discarded,
         * so skip formatting them. */
        int quiet;
};

/*
 * Messages
 */

struct aj_buf {
        char *p;
        size_t size, len;
};

static void aj_buf_put(struct aj_buf *b, const char *s, size_t n)
{
        size_t room;

        if (b->size == 0)
                return;
        room = b->size - 1 - b->len;
        if (n > room)
                n = room;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void aj_buf_puts(struct aj_buf *b, const char *s)
{
        aj_buf_put(b, s, strlen(s));
}

static void aj_path_render(const struct aj_path *p, struct aj_buf *b)
{
        char num[32];
        const char *k;

        if (!p)
                return;
        aj_path_render(p->up, b);
        switch (p->seg) {
        case AJ_SEG_FIELD:
                if (b->len > 0)
                        aj_buf_put(b, ".", 1);
                aj_buf_puts(b, p->name);
                break;
        case AJ_SEG_INDEX:
                snprintf(num, sizeof(num), "[%zu]", p->index);
                aj_buf_puts(b, num);
                break;
        case AJ_SEG_KEY:
                aj_buf_put(b, "[\"", 2);
                for (k = p->name; *k; k++) {
                        if (*k == '"' || *k == '\\')
                                aj_buf_put(b, "\\", 1);
                        aj_buf_put(b, k, 1);
                }
                aj_buf_put(b, "\"]", 2);
                break;
        }
}

static sb_err_t aj_fail(struct aj_ctx *c, const struct aj_path *p, sb_err_t err,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static sb_err_t aj_fail(struct aj_ctx *c, const struct aj_path *p, sb_err_t err,
                        const char *fmt, ...)
{
        char msg[1024], path[256];
        struct aj_buf b = {path, sizeof(path), 0};
        va_list ap;

        if (c->quiet && err == SB_ERR_VALIDATION)
                return err;
        path[0] = '\0';
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        aj_path_render(p, &b);
        if (b.len == 0)
                return sb_seterr(c->errstr, c->errstr_size, err, "%s", msg);
        return sb_seterr(c->errstr, c->errstr_size, err, "field '%s': %s", path,
                         msg);
}

struct aj_gotbuf {
        char buf[AJ_GOT_MAX + 1];
        size_t used;
        int cut;
};

/* Stops the dump once the buffer is full: a huge value costs nothing. */
static int aj_got_cb(const char *chunk, size_t len, void *data)
{
        struct aj_gotbuf *g = data;
        size_t room = sizeof(g->buf) - g->used;

        if (len > room) {
                memcpy(g->buf + g->used, chunk, room);
                g->used += room;
                g->cut = 1;
                return -1;
        }
        memcpy(g->buf + g->used, chunk, len);
        g->used += len;
        return 0;
}

/* The offending value as compact JSON, cut to AJ_GOT_MAX bytes. */
static void aj_got(const json_t *in, char *out, size_t size)
{
        struct aj_gotbuf g = {.used = 0, .cut = 0};
        size_t n;
        int rc;

        rc = json_dump_callback(in, aj_got_cb, &g,
                                JSON_COMPACT | JSON_ENCODE_ANY |
                                    JSON_REAL_PRECISION(15));
        if (rc != 0 && !g.cut) {
                snprintf(out, size, "(unprintable value)");
                return;
        }
        if (!g.cut) {
                snprintf(out, size, "%.*s", (int)g.used, g.buf);
                return;
        }
        /* Do not split a UTF-8 sequence. */
        n = AJ_GOT_MAX;
        while (n > 0 && ((unsigned char)g.buf[n] & 0xC0) == 0x80)
                n--;
        snprintf(out, size, "%.*s...", (int)n, g.buf);
}

/* "<what>, got <value>" for the value `in`. */
static sb_err_t aj_bad(struct aj_ctx *c, const struct aj_path *p,
                       const json_t *in, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static sb_err_t aj_bad(struct aj_ctx *c, const struct aj_path *p,
                       const json_t *in, const char *fmt, ...)
{
        char what[768], got[AJ_GOT_MAX + 8];
        va_list ap;

        if (c->quiet)
                return SB_ERR_VALIDATION;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        aj_got(in, got, sizeof(got));
        return aj_fail(c, p, SB_ERR_VALIDATION, "%s, got %s", what, got);
}

static sb_err_t aj_expected(struct aj_ctx *c, const struct aj_path *p,
                            const struct aj_node *n, const json_t *in)
{
        return aj_bad(c, p, in, "expected %s", n->desc);
}

static sb_err_t aj_avro_fail(struct aj_ctx *c, const struct aj_path *p, int rc)
{
        return aj_fail(c, p, rc == ENOMEM ? SB_ERR_NOMEM : SB_ERR_SCHEMA,
                       "Avro C error: %s (%s)", strerror(rc), avro_strerror());
}

static sb_err_t aj_nomem(struct aj_ctx *c, const struct aj_path *p)
{
        return aj_fail(c, p, SB_ERR_NOMEM, "out of memory");
}

/*
 * Calendar (proleptic Gregorian, days since 1970-01-01; H. Hinnant's
 * algorithms, exact for every int64 day count we can meet)
 */

static int64_t aj_floordiv(int64_t a, int64_t b, int64_t *rem)
{
        int64_t q = a / b, r = a % b;

        if (r < 0) {
                r += b;
                q--;
        }
        *rem = r;
        return q;
}

static int64_t aj_days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void aj_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = yoe + era * 400 + (*m <= 2);
}

static int aj_digits(const char *s, int n, int *out)
{
        int i, v = 0;

        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

static int aj_month_days(int y, int m)
{
        static const int days[12] = {31, 28, 31, 30, 31, 30,
                                     31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return m == 2 && leap ? 29 : days[m - 1];
}

/* "YYYY-MM-DD" in the first 10 of `len` bytes; rejects 2023-02-30. */
static int aj_parse_date(const char *s, size_t len, int64_t *days)
{
        int y, m, d;

        if (len < 10 || s[4] != '-' || s[7] != '-' || aj_digits(s, 4, &y) ||
            aj_digits(s + 5, 2, &m) || aj_digits(s + 8, 2, &d))
                return -1;
        if (m < 1 || m > 12 || d < 1 || d > aj_month_days(y, m))
                return -1;
        *days = aj_days_from_civil(y, m, d);
        return 0;
}

/*
 * "HH:MM:SS[.fff]" at the start of s; fraction digits beyond `unit`
 * (1000 or 1000000 per second) are truncated. Returns bytes consumed or -1.
 */
static long aj_parse_hms(const char *s, size_t len, int64_t unit, int64_t *sec,
                         int64_t *frac)
{
        int h, mi, se;
        size_t i = 8, start;
        int64_t f = 0, u = unit;

        if (len < 8 || s[2] != ':' || s[5] != ':' || aj_digits(s, 2, &h) ||
            aj_digits(s + 3, 2, &mi) || aj_digits(s + 6, 2, &se))
                return -1;
        if (h > 23 || mi > 59 || se > 59)
                return -1;
        if (i < len && s[i] == '.') {
                start = ++i;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                        if (u > 1) {
                                u /= 10;
                                f += (s[i] - '0') * u;
                        }
                        i++;
                }
                if (i == start)
                        return -1;
        }
        *sec = (int64_t)h * 3600 + mi * 60 + se;
        *frac = f;
        return (long)i;
}

/* RFC 3339 date-time with a mandatory offset, in units of 1/unit second. */
static int aj_parse_ts(const char *s, size_t len, int64_t unit, int64_t *out)
{
        int64_t days, sec, frac, off = 0;
        int oh, om;
        long n;
        size_t i;

        if (len < 20 || aj_parse_date(s, 10, &days) ||
            (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
                return -1;
        n = aj_parse_hms(s + 11, len - 11, unit, &sec, &frac);
        if (n < 0)
                return -1;
        i = 11 + (size_t)n;
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
                i++;
        } else if (i + 6 <= len && (s[i] == '+' || s[i] == '-') &&
                   s[i + 3] == ':' && !aj_digits(s + i + 1, 2, &oh) &&
                   !aj_digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59) {
                off = ((int64_t)oh * 60 + om) * 60;
                if (s[i] == '-')
                        off = -off;
                i += 6;
        } else {
                return -1;
        }
        if (i != len)
                return -1;
        *out = (days * 86400 + sec - off) * unit + frac;
        return 0;
}

static void aj_fmt_date(char *buf, size_t size, int64_t days)
{
        int64_t y;
        int m, d;

        aj_civil_from_days(days, &y, &m, &d);
        snprintf(buf, size, "%04" PRId64 "-%02d-%02d", y, m, d);
}

static void aj_fmt_ts(char *buf, size_t size, int64_t v, int64_t unit,
                      int digits)
{
        int64_t frac, sod, secs, days, y;
        int m, d;

        secs = aj_floordiv(v, unit, &frac);
        days = aj_floordiv(secs, 86400, &sod);
        aj_civil_from_days(days, &y, &m, &d);
        snprintf(buf, size,
                 "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%0*" PRId64 "Z", y, m,
                 d, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
                 digits, frac);
}

static void aj_fmt_time(char *buf, size_t size, int64_t v, int64_t unit,
                        int digits)
{
        int64_t sec = v / unit, frac = v % unit;

        snprintf(buf, size, "%02d:%02d:%02d.%0*" PRId64, (int)(sec / 3600),
                 (int)(sec / 60 % 60), (int)(sec % 60), digits, frac);
}

static int aj_is_uuid(const char *s, size_t len)
{
        size_t i;

        if (len != 36)
                return 0;
        for (i = 0; i < len; i++) {
                char ch = s[i];

                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (ch != '-')
                                return 0;
                } else if (!((ch >= '0' && ch <= '9') ||
                             (ch >= 'a' && ch <= 'f') ||
                             (ch >= 'A' && ch <= 'F'))) {
                        return 0;
                }
        }
        return 1;
}

/*
 * Decimals: the unscaled value as two's-complement big-endian bytes.
 */

enum aj_dec_rc { AJ_DEC_OK, AJ_DEC_SYNTAX, AJ_DEC_FRACTION, AJ_DEC_PRECISION };

/* b = b * 10 + d over the `*used` low-order bytes of b[AJ_DEC_BYTES]. */
static void aj_mul10_add(unsigned char *b, size_t *used, unsigned d)
{
        unsigned carry = d, v;
        size_t k;

        for (k = 0; k < AJ_DEC_BYTES && (k < *used || carry); k++) {
                v = b[AJ_DEC_BYTES - 1 - k] * 10u + carry;
                b[AJ_DEC_BYTES - 1 - k] = (unsigned char)(v & 0xff);
                carry = v >> 8;
        }
        if (k > *used)
                *used = k;
}

static void aj_negate(unsigned char *b, size_t len)
{
        unsigned carry = 1, v;
        size_t k;

        for (k = len; k-- > 0;) {
                v = (unsigned char)~b[k] + carry;
                b[k] = (unsigned char)(v & 0xff);
                carry = v >> 8;
        }
}

/*
 * Parses "-123.45" into out[AJ_DEC_BYTES] (sign-extended, right-aligned);
 * *start is where the shortest encoding begins.
 */
static enum aj_dec_rc aj_dec_encode(const struct aj_node *n, const char *s,
                                    size_t len, unsigned char *out,
                                    size_t *start)
{
        size_t i = 0, ib, il, fb, fl = 0, used = 0, k;
        unsigned char fill;
        int neg = 0;

        if (i < len && (s[i] == '-' || s[i] == '+')) {
                neg = s[i] == '-';
                i++;
        }
        ib = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        il = i - ib;
        if (il == 0)
                return AJ_DEC_SYNTAX;
        fb = i;
        if (i < len && s[i] == '.') {
                fb = ++i;
                while (i < len && s[i] >= '0' && s[i] <= '9')
                        i++;
                fl = i - fb;
                if (fl == 0)
                        return AJ_DEC_SYNTAX;
        }
        if (i != len)
                return AJ_DEC_SYNTAX;
        if (fl > (size_t)n->scale)
                return AJ_DEC_FRACTION;
        while (il > 0 && s[ib] == '0') {
                ib++;
                il--;
        }
        if (il > (size_t)(n->precision - n->scale))
                return AJ_DEC_PRECISION;

        memset(out, 0, AJ_DEC_BYTES);
        for (k = 0; k < il; k++)
                aj_mul10_add(out, &used, (unsigned)(s[ib + k] - '0'));
        for (k = 0; k < fl; k++)
                aj_mul10_add(out, &used, (unsigned)(s[fb + k] - '0'));
        for (k = fl; k < (size_t)n->scale; k++)
                aj_mul10_add(out, &used, 0);
        if (neg)
                aj_negate(out, AJ_DEC_BYTES);

        fill = (out[0] & 0x80) ? 0xff : 0x00;
        for (k = 0; k + 1 < AJ_DEC_BYTES && out[k] == fill &&
                    (out[k + 1] & 0x80) == (fill & 0x80);
             k++)
                ;
        *start = k;
        return AJ_DEC_OK;
}

static sb_err_t aj_dec_to_json(struct aj_ctx *c, const struct aj_path *p,
                               const struct aj_node *n, const unsigned char *b,
                               size_t len, json_t **outp)
{
        unsigned char smag[AJ_STACKBUF], *mag = smag;
        char stext[AJ_STACKBUF * 8], *text = stext, *dig, *out, *o;
        size_t dcap = len * 3 + 16, ocap = dcap + (size_t)n->scale + 4;
        size_t start = 0, pos, nd, total, k, intlen;
        uint64_t r, cur;
        int neg = len > 0 && (b[0] & 0x80), d;
        sb_err_t err = SB_OK;

        if (len > sizeof(smag) && !(mag = malloc(len)))
                return aj_nomem(c, p);
        if (dcap + ocap > sizeof(stext) && !(text = malloc(dcap + ocap))) {
                err = aj_nomem(c, p);
                goto free_mag;
        }
        dig = text;
        out = text + dcap;
        if (len > 0)
                memcpy(mag, b, len);
        /* The most negative value negates to itself, which read unsigned
         * is its magnitude. */
        if (neg)
                aj_negate(mag, len);

        /* Nine decimal digits per pass of long division. */
        pos = dcap;
        while (start < len && mag[start] == 0)
                start++;
        while (start < len) {
                r = 0;
                for (k = start; k < len; k++) {
                        cur = (r << 8) | mag[k];
                        mag[k] = (unsigned char)(cur / 1000000000u);
                        r = cur % 1000000000u;
                }
                while (start < len && mag[start] == 0)
                        start++;
                for (d = 0; d < 9; d++) {
                        dig[--pos] = (char)('0' + r % 10);
                        r /= 10;
                }
        }
        while (pos < dcap && dig[pos] == '0')
                pos++;
        nd = dcap - pos;

        o = out;
        if (neg && nd > 0)
                *o++ = '-';
        total = nd > (size_t)n->scale ? nd : (size_t)n->scale + 1;
        intlen = total - (size_t)n->scale;
        for (k = 0; k < total; k++) {
                if (k == intlen)
                        *o++ = '.';
                *o++ = k < total - nd ? '0' : dig[pos + k - (total - nd)];
        }
        if (!(*outp = json_stringn_nocheck(out, (size_t)(o - out))))
                err = aj_nomem(c, p);

        if (text != stext)
                free(text);
free_mag:
        if (mag != smag)
                free(mag);
        return err;
}

/*
 * JSON -> Avro
 */

static sb_err_t aj_from(struct aj_ctx *c, const struct aj_node *n,
                        const json_t *in, avro_value_t *out,
                        const struct aj_path *p, int flags);

static sb_err_t aj_from_int(struct aj_ctx *c, const struct aj_node *n,
                            const json_t *in, avro_value_t *out,
                            const struct aj_path *p, int flags)
{
        int64_t v, sec, frac;
        const char *s;
        size_t len;
        long used;
        int rc;

        if (n->logical != AJ_LT_NONE && json_is_string(in)) {
                s = json_string_value(in);
                len = json_string_length(in);
                if (n->logical == AJ_LT_DATE) {
                        if (len != 10 || aj_parse_date(s, len, &v) ||
                            v < INT32_MIN || v > INT32_MAX)
                                return aj_expected(c, p, n, in);
                } else {
                        used = aj_parse_hms(s, len, 1000, &sec, &frac);
                        if (used < 0 || (size_t)used != len)
                                return aj_expected(c, p, n, in);
                        v = sec * 1000 + frac;
                }
        } else if (json_is_integer(in) &&
                   (n->logical == AJ_LT_NONE || (flags & AJ_F_RAWNUM))) {
                v = json_integer_value(in);
                if (v < INT32_MIN || v > INT32_MAX)
                        return aj_bad(c, p, in, "int out of range");
        } else {
                return aj_expected(c, p, n, in);
        }
        if ((rc = avro_value_set_int(out, (int32_t)v)) != 0)
                return aj_avro_fail(c, p, rc);
        return SB_OK;
}

static sb_err_t aj_from_long(struct aj_ctx *c, const struct aj_node *n,
                             const json_t *in, avro_value_t *out,
                             const struct aj_path *p, int flags)
{
        int64_t v, sec, frac;
        const char *s;
        size_t len;
        long used;
        int rc;

        if (n->logical != AJ_LT_NONE && json_is_string(in)) {
                s = json_string_value(in);
                len = json_string_length(in);
                if (n->logical == AJ_LT_TS_MILLIS) {
                        if (aj_parse_ts(s, len, 1000, &v))
                                return aj_expected(c, p, n, in);
                } else if (n->logical == AJ_LT_TS_MICROS) {
                        if (aj_parse_ts(s, len, 1000000, &v))
                                return aj_expected(c, p, n, in);
                } else {
                        used = aj_parse_hms(s, len, 1000000, &sec, &frac);
                        if (used < 0 || (size_t)used != len)
                                return aj_expected(c, p, n, in);
                        v = sec * 1000000 + frac;
                }
        } else if (json_is_integer(in) &&
                   (n->logical == AJ_LT_NONE || (flags & AJ_F_RAWNUM))) {
                v = json_integer_value(in);
        } else {
                return aj_expected(c, p, n, in);
        }
        if ((rc = avro_value_set_long(out, v)) != 0)
                return aj_avro_fail(c, p, rc);
        return SB_OK;
}

static int aj_is_ascii(const char *s, size_t len)
{
        size_t i;

        for (i = 0; i < len; i++)
                if ((unsigned char)s[i] & 0x80)
                        return 0;
        return 1;
}

/* Avro's JSON encoding of bytes: code point U+00XX is byte XX. */
static int aj_latin1_decode(const char *s, size_t len, unsigned char *dst,
                            size_t *outlen)
{
        size_t i = 0, o = 0;
        unsigned char ch;

        while (i < len) {
                ch = (unsigned char)s[i];
                if (ch < 0x80) {
                        dst[o++] = ch;
                        i++;
                } else if ((ch == 0xC2 || ch == 0xC3) && i + 1 < len &&
                           ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
                        dst[o++] = (unsigned char)(((ch & 0x03) << 6) |
                                                   (s[i + 1] & 0x3F));
                        i += 2;
                } else {
                        return -1;
                }
        }
        *outlen = o;
        return 0;
}

static sb_err_t aj_set_bytes(struct aj_ctx *c, const struct aj_node *n,
                             avro_value_t *out, const struct aj_path *p,
                             const void *buf, size_t len)
{
        int rc;

        if (n->kind == AJ_FIXED)
                rc = avro_value_set_fixed(out, (void *)buf, len);
        else
                rc = avro_value_set_bytes(out, (void *)buf, len);
        if (rc != 0)
                return aj_avro_fail(c, p, rc);
        return SB_OK;
}

static sb_err_t aj_from_bytes(struct aj_ctx *c, const struct aj_node *n,
                              const json_t *in, avro_value_t *out,
                              const struct aj_path *p)
{
        unsigned char sbuf[AJ_STACKBUF], *buf = sbuf;
        const void *bytes;
        const char *s;
        size_t len, blen;
        sb_err_t err;

        if (!json_is_string(in))
                return aj_expected(c, p, n, in);
        s = json_string_value(in);
        len = json_string_length(in);
        if (aj_is_ascii(s, len)) {
                bytes = s;
                blen = len;
        } else {
                if (len > sizeof(sbuf) && !(buf = malloc(len)))
                        return aj_nomem(c, p);
                if (aj_latin1_decode(s, len, buf, &blen)) {
                        err = aj_bad(c, p, in,
                                     "expected characters U+0000 to U+00FF "
                                     "(one per byte)");
                        goto free_buf;
                }
                bytes = buf;
        }
        if (n->kind == AJ_FIXED && blen != n->size)
                err = aj_fail(c, p, SB_ERR_VALIDATION,
                              "expected %zu bytes, got %zu", n->size, blen);
        else
                err = aj_set_bytes(c, n, out, p, bytes, blen);
free_buf:
        if (buf != sbuf)
                free(buf);
        return err;
}

static sb_err_t aj_from_decimal(struct aj_ctx *c, const struct aj_node *n,
                                const json_t *in, avro_value_t *out,
                                const struct aj_path *p)
{
        unsigned char buf[AJ_DEC_BYTES];
        char ibuf[32];
        const char *s;
        size_t len, start, blen;

        if (json_is_string(in)) {
                s = json_string_value(in);
                len = json_string_length(in);
        } else if (json_is_integer(in)) {
                /* Exact, unlike a JSON real, so accepted too. */
                snprintf(ibuf, sizeof(ibuf), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(in));
                s = ibuf;
                len = strlen(ibuf);
        } else {
                return aj_expected(c, p, n, in);
        }
        switch (aj_dec_encode(n, s, len, buf, &start)) {
        case AJ_DEC_OK:
                break;
        case AJ_DEC_SYNTAX:
                return aj_expected(c, p, n, in);
        case AJ_DEC_FRACTION:
                return aj_bad(c, p, in,
                              "expected a decimal with at most %d fraction "
                              "digits",
                              n->scale);
        case AJ_DEC_PRECISION:
                return aj_bad(c, p, in,
                              "expected a decimal with at most %d digits (%d "
                              "after the point)",
                              n->precision, n->scale);
        }
        blen = AJ_DEC_BYTES - start;
        if (n->kind == AJ_FIXED) {
                /* Unreachable: the schema's precision fits the size. */
                if (blen > n->size)
                        return aj_bad(c, p, in, "decimal out of range");
                blen = n->size;
        }
        return aj_set_bytes(c, n, out, p, buf + AJ_DEC_BYTES - blen, blen);
}

static sb_err_t aj_from_string(struct aj_ctx *c, const struct aj_node *n,
                               const json_t *in, avro_value_t *out,
                               const struct aj_path *p)
{
        const char *s;
        size_t len;
        int rc;

        if (!json_is_string(in))
                return aj_expected(c, p, n, in);
        s = json_string_value(in);
        len = json_string_length(in);
        if (n->logical == AJ_LT_UUID && !aj_is_uuid(s, len))
                return aj_expected(c, p, n, in);
        if ((rc = avro_value_set_string_len(out, s, len + 1)) != 0)
                return aj_avro_fail(c, p, rc);
        return SB_OK;
}

static sb_err_t aj_from_enum(struct aj_ctx *c, const struct aj_node *n,
                             const json_t *in, avro_value_t *out,
                             const struct aj_path *p)
{
        const json_t *idx;
        const char *s;
        int rc;

        if (!json_is_string(in))
                return aj_expected(c, p, n, in);
        s = json_string_value(in);
        if (strlen(s) != json_string_length(in) ||
            !(idx = json_object_get(n->symbol_index, s)))
                return aj_expected(c, p, n, in);
        if ((rc = avro_value_set_enum(out, (int)json_integer_value(idx))) != 0)
                return aj_avro_fail(c, p, rc);
        return SB_OK;
}

/* First key of `in` that names no field of record `n`, or NULL. */
static const char *aj_unknown_key(const struct aj_node *n, const json_t *in)
{
        const char *key;
        void *iter;
        size_t i;

        for (iter = json_object_iter((json_t *)in); iter;
             iter = json_object_iter_next((json_t *)in, iter)) {
                key = json_object_iter_key(iter);
                /* "name\u0000x" is not "name" */
                if (strlen(key) != json_object_iter_key_len(iter))
                        return key;
                for (i = 0; i < n->nfields; i++)
                        if (!strcmp(n->fields[i].name, key))
                                break;
                if (i == n->nfields)
                        return key;
        }
        return NULL;
}

static sb_err_t aj_from_default(struct aj_ctx *c, const struct aj_field *f,
                                avro_value_t *out, const struct aj_path *p)
{
        avro_value_t branch;
        int rc;

        /* A union's default is a value of its first branch. */
        if (f->type->kind != AJ_UNION)
                return aj_from(c, f->type, f->def, out, p, AJ_F_DEFAULT);
        if ((rc = avro_value_set_branch(out, 0, &branch)) != 0 ||
            (rc = avro_value_reset(&branch)) != 0)
                return aj_avro_fail(c, p, rc);
        return aj_from(c, f->type->branches[0], f->def, &branch, p,
                       AJ_F_DEFAULT);
}

static sb_err_t aj_from_record(struct aj_ctx *c, const struct aj_node *n,
                               const json_t *in, avro_value_t *out,
                               const struct aj_path *p, int flags)
{
        struct aj_path fp = {p, AJ_SEG_FIELD, NULL, 0};
        const struct aj_field *f;
        const char *unknown;
        const json_t *v;
        avro_value_t child;
        size_t i, present = 0;
        sb_err_t err;
        int rc;

        if (!json_is_object(in))
                return aj_expected(c, p, n, in);
        for (i = 0; i < n->nfields; i++) {
                f = &n->fields[i];
                fp.name = f->name;
                if ((rc = avro_value_get_by_index(out, i, &child, NULL)) != 0)
                        return aj_avro_fail(c, &fp, rc);
                if ((v = json_object_get(in, f->name))) {
                        present++;
                        err = aj_from(c, f->type, v, &child, &fp, flags);
                } else if (f->def) {
                        err = aj_from_default(c, f, &child, &fp);
                } else {
                        /* A misspelt key explains a missing field best. */
                        if ((unknown = aj_unknown_key(n, in)))
                                break;
                        return aj_fail(c, &fp, SB_ERR_VALIDATION,
                                       "missing required field");
                }
                if (err)
                        return err;
        }
        if (i == n->nfields && present == json_object_size(in))
                return SB_OK;
        if (!(unknown = aj_unknown_key(n, in)))
                return SB_OK; /* unreachable: every key named a field */
        fp.name = unknown;
        return aj_fail(c, &fp, SB_ERR_VALIDATION,
                       "unknown field (not in schema '%s')", n->fullname);
}

static sb_err_t aj_from_array(struct aj_ctx *c, const struct aj_node *n,
                              const json_t *in, avro_value_t *out,
                              const struct aj_path *p, int flags)
{
        struct aj_path ip = {p, AJ_SEG_INDEX, NULL, 0};
        avro_value_t child;
        const json_t *v;
        size_t i;
        sb_err_t err;
        int rc;

        if (!json_is_array(in))
                return aj_expected(c, p, n, in);
        for (i = 0; i < json_array_size(in); i++) {
                v = json_array_get(in, i);
                ip.index = i;
                if ((rc = avro_value_append(out, &child, NULL)) != 0)
                        return aj_avro_fail(c, &ip, rc);
                if ((err = aj_from(c, n->items, v, &child, &ip, flags)))
                        return err;
        }
        return SB_OK;
}

static sb_err_t aj_from_map(struct aj_ctx *c, const struct aj_node *n,
                            const json_t *in, avro_value_t *out,
                            const struct aj_path *p, int flags)
{
        struct aj_path kp = {p, AJ_SEG_KEY, NULL, 0};
        avro_value_t child;
        void *iter;
        sb_err_t err;
        int rc;

        if (!json_is_object(in))
                return aj_expected(c, p, n, in);
        for (iter = json_object_iter((json_t *)in); iter;
             iter = json_object_iter_next((json_t *)in, iter)) {
                kp.name = json_object_iter_key(iter);
                /* Avro C map keys are C strings. */
                if (strlen(kp.name) != json_object_iter_key_len(iter))
                        return aj_fail(c, &kp, SB_ERR_VALIDATION,
                                       "map key contains a NUL character");
                rc = avro_value_add(out, kp.name, &child, NULL, NULL);
                if (rc != 0)
                        return aj_avro_fail(c, &kp, rc);
                err = aj_from(c, n->items, json_object_iter_value(iter), &child,
                              &kp, flags);
                if (err)
                        return err;
        }
        return SB_OK;
}

/* Whether the JSON type of `in` can be a value of `n` at all. */
static int aj_accepts(const struct aj_node *n, const json_t *in, int flags)
{
        switch (n->kind) {
        case AJ_NULL:
                return json_is_null(in);
        case AJ_BOOLEAN:
                return json_is_boolean(in);
        case AJ_INT:
        case AJ_LONG:
                if (n->logical == AJ_LT_NONE)
                        return json_is_integer(in);
                return json_is_string(in) ||
                       ((flags & AJ_F_RAWNUM) && json_is_integer(in));
        case AJ_FLOAT:
        case AJ_DOUBLE:
                return json_is_number(in);
        case AJ_BYTES:
        case AJ_FIXED:
                if (n->logical == AJ_LT_DECIMAL && !(flags & AJ_F_RAWBYTES))
                        return json_is_string(in) || json_is_integer(in);
                return json_is_string(in);
        case AJ_STRING:
        case AJ_ENUM:
                return json_is_string(in);
        case AJ_RECORD:
        case AJ_MAP:
                return json_is_object(in);
        case AJ_ARRAY:
                return json_is_array(in);
        case AJ_UNION:
                return 1;
        }
        return 0;
}

static int aj_is_compound(const struct aj_node *n)
{
        return n->kind == AJ_RECORD || n->kind == AJ_MAP || n->kind == AJ_ARRAY;
}

/* Selects branch `i` afresh: a failed earlier try must leave no trace. */
static sb_err_t aj_try_branch(struct aj_ctx *c, const struct aj_node *n,
                              size_t i, const json_t *in, avro_value_t *out,
                              const struct aj_path *p, int flags)
{
        avro_value_t branch;
        int rc;

        if ((rc = avro_value_set_branch(out, (int)i, &branch)) != 0 ||
            (rc = avro_value_reset(&branch)) != 0)
                return aj_avro_fail(c, p, rc);
        return aj_from(c, n->branches[i], in, &branch, p, flags);
}

/* A bare JSON value: the first branch, in order, that accepts it. */
static sb_err_t aj_from_union_bare(struct aj_ctx *c, const struct aj_node *n,
                                   const json_t *in, avro_value_t *out,
                                   const struct aj_path *p, int flags)
{
        struct aj_ctx quiet = *c;
        char list[768];
        struct aj_buf b = {list, sizeof(list), 0};
        size_t i, ncompat = 0, compat = 0;
        sb_err_t err;

        for (i = 0; i < n->nbranches; i++) {
                if (aj_accepts(n->branches[i], in, flags)) {
                        ncompat++;
                        compat = i;
                }
        }

        /* Only one branch can take this JSON object or array: its own
         * message names the nested field at fault. */
        if (ncompat == 1 && aj_is_compound(n->branches[compat]))
                return aj_try_branch(c, n, compat, in, out, p, flags);

        quiet.quiet = 1;
        for (i = 0; i < n->nbranches && ncompat > 0; i++) {
                if (!aj_accepts(n->branches[i], in, flags))
                        continue;
                err = aj_try_branch(&quiet, n, i, in, out, p, flags);
                if (err != SB_ERR_VALIDATION)
                        return err;
        }

        if (c->quiet)
                return SB_ERR_VALIDATION;
        list[0] = '\0';
        for (i = 0; i < n->nbranches; i++) {
                if (i > 0)
                        aj_buf_puts(&b, i + 1 == n->nbranches ? " or " : ", ");
                aj_buf_puts(&b, n->branches[i]->desc);
        }
        return aj_bad(c, p, in, "expected %s", list);
}

/* Index of the branch named by Avro's JSON encoding {"<type>": value}. */
static long aj_wrapped_branch(const struct aj_node *n, const json_t *in,
                              const json_t **valp)
{
        const char *key;
        void *iter;
        size_t i;

        if (!json_is_object(in) || json_object_size(in) != 1)
                return -1;
        iter = json_object_iter((json_t *)in);
        key = json_object_iter_key(iter);
        for (i = 0; i < n->nbranches; i++) {
                if (!strcmp(n->branches[i]->tname, key)) {
                        *valp = json_object_iter_value(iter);
                        return (long)i;
                }
        }
        return -1;
}

static sb_err_t aj_from_union(struct aj_ctx *c, const struct aj_node *n,
                              const json_t *in, avro_value_t *out,
                              const struct aj_path *p, int flags)
{
        struct aj_ctx quiet = *c;
        const json_t *val = NULL;
        long w;
        sb_err_t err;

        if ((w = aj_wrapped_branch(n, in, &val)) < 0)
                return aj_from_union_bare(c, n, in, out, p, flags);

        quiet.quiet = 1;
        err = aj_try_branch(&quiet, n, (size_t)w, val, out, p,
                            flags | AJ_F_RAWNUM);
        if (err != SB_ERR_VALIDATION)
                return err;
        /* {"string": "x"} may also be a bare map or record value... */
        err = aj_from_union_bare(&quiet, n, in, out, p, flags);
        if (err != SB_ERR_VALIDATION || c->quiet)
                return err;
        /* ...but when neither fits, the wrapped value's fault is the one
         * the author can act on. */
        return aj_try_branch(c, n, (size_t)w, val, out, p, flags | AJ_F_RAWNUM);
}

static sb_err_t aj_from(struct aj_ctx *c, const struct aj_node *n,
                        const json_t *in, avro_value_t *out,
                        const struct aj_path *p, int flags)
{
        int rc;

        switch (n->kind) {
        case AJ_NULL:
                if (!json_is_null(in))
                        return aj_expected(c, p, n, in);
                if ((rc = avro_value_set_null(out)) != 0)
                        return aj_avro_fail(c, p, rc);
                return SB_OK;
        case AJ_BOOLEAN:
                if (!json_is_boolean(in))
                        return aj_expected(c, p, n, in);
                if ((rc = avro_value_set_boolean(out, json_is_true(in))) != 0)
                        return aj_avro_fail(c, p, rc);
                return SB_OK;
        case AJ_INT:
                return aj_from_int(c, n, in, out, p, flags);
        case AJ_LONG:
                return aj_from_long(c, n, in, out, p, flags);
        case AJ_FLOAT:
                if (!json_is_number(in))
                        return aj_expected(c, p, n, in);
                if (json_number_value(in) > FLT_MAX ||
                    json_number_value(in) < -FLT_MAX)
                        return aj_bad(c, p, in, "float out of range");
                rc = avro_value_set_float(out, (float)json_number_value(in));
                if (rc != 0)
                        return aj_avro_fail(c, p, rc);
                return SB_OK;
        case AJ_DOUBLE:
                if (!json_is_number(in))
                        return aj_expected(c, p, n, in);
                if ((rc = avro_value_set_double(out, json_number_value(in))))
                        return aj_avro_fail(c, p, rc);
                return SB_OK;
        case AJ_BYTES:
        case AJ_FIXED:
                if (n->logical == AJ_LT_DECIMAL && !(flags & AJ_F_RAWBYTES))
                        return aj_from_decimal(c, n, in, out, p);
                return aj_from_bytes(c, n, in, out, p);
        case AJ_STRING:
                return aj_from_string(c, n, in, out, p);
        case AJ_ENUM:
                return aj_from_enum(c, n, in, out, p);
        case AJ_RECORD:
                return aj_from_record(c, n, in, out, p, flags);
        case AJ_ARRAY:
                return aj_from_array(c, n, in, out, p, flags);
        case AJ_MAP:
                return aj_from_map(c, n, in, out, p, flags);
        case AJ_UNION:
                return aj_from_union(c, n, in, out, p, flags);
        }
        return aj_fail(c, p, SB_ERR_SCHEMA, "unknown node kind %d", n->kind);
}

/*
 * Avro -> JSON
 */

/* The shortest decimal that reads back as the same float, so 1.1f renders
 * as 1.1 rather than 1.100000023841858. */
static double aj_float_shortest(float f)
{
        char buf[32];
        double d;
        int prec;

        for (prec = 1; prec <= 9; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
                d = strtod(buf, NULL);
                if ((float)d == f)
                        return d;
        }
        return (double)f;
}

static sb_err_t aj_bytes_to_json(struct aj_ctx *c, const struct aj_path *p,
                                 const unsigned char *b, size_t len,
                                 json_t **outp)
{
        char sbuf[AJ_STACKBUF * 2], *buf = sbuf;
        size_t i, o = 0;
        sb_err_t err = SB_OK;

        if (len > sizeof(sbuf) / 2 && !(buf = malloc(len * 2)))
                return aj_nomem(c, p);
        for (i = 0; i < len; i++) {
                if (b[i] < 0x80) {
                        buf[o++] = (char)b[i];
                } else {
                        buf[o++] = (char)(0xC0 | (b[i] >> 6));
                        buf[o++] = (char)(0x80 | (b[i] & 0x3F));
                }
        }
        if (!(*outp = json_stringn_nocheck(buf, o)))
                err = aj_nomem(c, p);
        if (buf != sbuf)
                free(buf);
        return err;
}

static sb_err_t aj_to(struct aj_ctx *c, const struct aj_node *n,
                      avro_value_t *in, const struct aj_path *p, json_t **outp);

static sb_err_t aj_to_scalar(struct aj_ctx *c, const struct aj_node *n,
                             avro_value_t *in, const struct aj_path *p,
                             json_t **outp)
{
        char buf[96];
        const void *bytes;
        const char *s;
        size_t size;
        int32_t i32;
        int64_t i64;
        float f;
        double d;
        int rc = 0, ival;
        json_t *j = NULL;

        switch (n->kind) {
        case AJ_NULL:
                if (!(rc = avro_value_get_null(in)))
                        j = json_null();
                break;
        case AJ_BOOLEAN:
                if (!(rc = avro_value_get_boolean(in, &ival)))
                        j = json_boolean(ival);
                break;
        case AJ_INT:
                if ((rc = avro_value_get_int(in, &i32)))
                        break;
                if (n->logical == AJ_LT_DATE) {
                        aj_fmt_date(buf, sizeof(buf), i32);
                        j = json_string_nocheck(buf);
                } else if (n->logical == AJ_LT_TIME_MILLIS) {
                        if (i32 < 0 || i32 >= 86400000)
                                return aj_fail(c, p, SB_ERR_VALIDATION,
                                               "time-millis out of range: %d",
                                               (int)i32);
                        aj_fmt_time(buf, sizeof(buf), i32, 1000, 3);
                        j = json_string_nocheck(buf);
                } else {
                        j = json_integer(i32);
                }
                break;
        case AJ_LONG:
                if ((rc = avro_value_get_long(in, &i64)))
                        break;
                if (n->logical == AJ_LT_TS_MILLIS) {
                        aj_fmt_ts(buf, sizeof(buf), i64, 1000, 3);
                        j = json_string_nocheck(buf);
                } else if (n->logical == AJ_LT_TS_MICROS) {
                        aj_fmt_ts(buf, sizeof(buf), i64, 1000000, 6);
                        j = json_string_nocheck(buf);
                } else if (n->logical == AJ_LT_TIME_MICROS) {
                        if (i64 < 0 || i64 >= INT64_C(86400000000))
                                return aj_fail(c, p, SB_ERR_VALIDATION,
                                               "time-micros out of range: "
                                               "%" PRId64,
                                               i64);
                        aj_fmt_time(buf, sizeof(buf), i64, 1000000, 6);
                        j = json_string_nocheck(buf);
                } else {
                        j = json_integer(i64);
                }
                break;
        case AJ_FLOAT:
                if ((rc = avro_value_get_float(in, &f)))
                        break;
                if (!isfinite(f))
                        return aj_fail(c, p, SB_ERR_VALIDATION,
                                       "%s cannot be represented in JSON",
                                       isnan(f) ? "NaN" : "infinity");
                j = json_real(aj_float_shortest(f));
                break;
        case AJ_DOUBLE:
                if ((rc = avro_value_get_double(in, &d)))
                        break;
                if (!isfinite(d))
                        return aj_fail(c, p, SB_ERR_VALIDATION,
                                       "%s cannot be represented in JSON",
                                       isnan(d) ? "NaN" : "infinity");
                j = json_real(d);
                break;
        case AJ_STRING:
                if ((rc = avro_value_get_string(in, &s, &size)))
                        break;
                /* Avro data from elsewhere may hold invalid UTF-8. */
                if (!(j = json_stringn(s, size > 0 ? size - 1 : 0)))
                        return aj_fail(c, p, SB_ERR_VALIDATION,
                                       "string is not valid UTF-8");
                break;
        case AJ_BYTES:
        case AJ_FIXED:
                if (n->kind == AJ_FIXED)
                        rc = avro_value_get_fixed(in, &bytes, &size);
                else
                        rc = avro_value_get_bytes(in, &bytes, &size);
                if (rc)
                        break;
                if (n->logical == AJ_LT_DECIMAL)
                        return aj_dec_to_json(c, p, n, bytes, size, outp);
                return aj_bytes_to_json(c, p, bytes, size, outp);
        case AJ_ENUM:
                if ((rc = avro_value_get_enum(in, &ival)))
                        break;
                if (ival < 0 || (size_t)ival >= json_array_size(n->symbols))
                        return aj_fail(c, p, SB_ERR_VALIDATION,
                                       "enum index %d out of range for enum "
                                       "'%s'",
                                       ival, n->fullname);
                j = json_string_nocheck(
                    json_string_value(json_array_get(n->symbols, ival)));
                break;
        default:
                return aj_fail(c, p, SB_ERR_SCHEMA, "not a scalar type");
        }
        if (rc)
                return aj_avro_fail(c, p, rc);
        if (!j)
                return aj_nomem(c, p);
        *outp = j;
        return SB_OK;
}

static sb_err_t aj_to_compound(struct aj_ctx *c, const struct aj_node *n,
                               avro_value_t *in, const struct aj_path *p,
                               json_t **outp)
{
        struct aj_path cp = {p, AJ_SEG_FIELD, NULL, 0};
        avro_value_t child;
        const char *key;
        json_t *j, *v;
        size_t i, size;
        sb_err_t err;
        int rc;

        if (n->kind == AJ_RECORD) {
                size = n->nfields;
                j = json_object();
        } else {
                if ((rc = avro_value_get_size(in, &size)))
                        return aj_avro_fail(c, p, rc);
                j = n->kind == AJ_ARRAY ? json_array() : json_object();
                cp.seg = n->kind == AJ_ARRAY ? AJ_SEG_INDEX : AJ_SEG_KEY;
        }
        if (!j)
                return aj_nomem(c, p);
        for (i = 0; i < size; i++) {
                key = NULL;
                if ((rc = avro_value_get_by_index(in, i, &child, &key))) {
                        err = aj_avro_fail(c, p, rc);
                        goto free_json;
                }
                cp.index = i;
                cp.name = n->kind == AJ_RECORD ? n->fields[i].name : key;
                if (n->kind == AJ_ARRAY) {
                        err = aj_to(c, n->items, &child, &cp, &v);
                        if (!err && json_array_append_new(j, v))
                                err = aj_nomem(c, &cp);
                } else if (n->kind == AJ_MAP) {
                        if (!key) {
                                err = aj_fail(c, p, SB_ERR_SCHEMA,
                                              "map entry %zu has no key", i);
                                goto free_json;
                        }
                        err = aj_to(c, n->items, &child, &cp, &v);
                        if (!err && json_object_set_new(j, key, v))
                                err = aj_fail(c, &cp, SB_ERR_VALIDATION,
                                              "map key is not valid UTF-8");
                } else {
                        err = aj_to(c, n->fields[i].type, &child, &cp, &v);
                        if (!err && json_object_set_new_nocheck(j, cp.name, v))
                                err = aj_nomem(c, &cp);
                }
                if (err)
                        goto free_json;
        }
        *outp = j;
        return SB_OK;

free_json:
        json_decref(j);
        return err;
}

static sb_err_t aj_to(struct aj_ctx *c, const struct aj_node *n,
                      avro_value_t *in, const struct aj_path *p, json_t **outp)
{
        avro_value_t branch;
        int rc, disc;

        *outp = NULL;
        switch (n->kind) {
        case AJ_RECORD:
        case AJ_ARRAY:
        case AJ_MAP:
                return aj_to_compound(c, n, in, p, outp);
        case AJ_UNION:
                if ((rc = avro_value_get_discriminant(in, &disc)))
                        return aj_avro_fail(c, p, rc);
                if (disc < 0 || (size_t)disc >= n->nbranches)
                        return aj_fail(c, p, SB_ERR_VALIDATION,
                                       "union has no branch selected");
                if ((rc = avro_value_get_current_branch(in, &branch)))
                        return aj_avro_fail(c, p, rc);
                return aj_to(c, n->branches[disc], &branch, p, outp);
        default:
                return aj_to_scalar(c, n, in, p, outp);
        }
}

/*
 * Schema compilation
 */

static const struct {
        const char *name;
        enum aj_kind kind;
        const char *desc;
} aj_prims[] = {
    {"null", AJ_NULL, "null"},
    {"boolean", AJ_BOOLEAN, "a boolean"},
    {"int", AJ_INT, "an int"},
    {"long", AJ_LONG, "a long"},
    {"float", AJ_FLOAT, "a float"},
    {"double", AJ_DOUBLE, "a double"},
    {"bytes", AJ_BYTES, "a bytes string"},
    {"string", AJ_STRING, "a string"},
};

#define AJ_DESC_DATE    "a date (YYYY-MM-DD)"
#define AJ_DESC_TS      "a timestamp (RFC 3339, e.g. 2026-11-25T09:42:36Z)"
#define AJ_DESC_TIME    "a time (HH:MM:SS.sss)"
#define AJ_DESC_DECIMAL "a decimal string (e.g. \"-123.45\")"
#define AJ_DESC_UUID    "a uuid"

struct aj_compiler {
        struct aj_node **chain; /* new nodes are linked here */
        json_t *names;          /* named types defined so far */
        const json_t *parent_names;
        struct aj_ptrmap *pm; /* NULL: do not index type JSON */
        char *errstr;
        size_t errstr_size;
};

static void aj_nodes_free(struct aj_node *n)
{
        struct aj_node *next;

        for (; n; n = next) {
                next = n->next;
                free(n->fullname);
                free(n->ns);
                free(n->desc_buf);
                free(n->fields);
                free(n->branches);
                json_decref(n->symbol_index);
                free(n);
        }
}

static size_t aj_ptr_slot(const void *k, size_t cap)
{
        uint64_t x = (uint64_t)(uintptr_t)k;

        x ^= x >> 33;
        x *= UINT64_C(0xff51afd7ed558ccd);
        x ^= x >> 33;
        return (size_t)x & (cap - 1);
}

static int aj_ptrmap_put(struct aj_ptrmap *m, const json_t *k,
                         struct aj_node *v)
{
        struct aj_ptrmap g;
        size_t i;

        if ((m->cnt + 1) * 2 > m->cap) {
                g.cap = m->cap ? m->cap * 2 : 64;
                g.cnt = 0;
                g.keys = calloc(g.cap, sizeof(*g.keys));
                g.vals = calloc(g.cap, sizeof(*g.vals));
                if (!g.keys || !g.vals) {
                        free(g.keys);
                        free(g.vals);
                        return -1;
                }
                for (i = 0; i < m->cap; i++)
                        if (m->keys[i])
                                aj_ptrmap_put(&g, m->keys[i], m->vals[i]);
                free(m->keys);
                free(m->vals);
                *m = g;
        }
        i = aj_ptr_slot(k, m->cap);
        while (m->keys[i] && m->keys[i] != k)
                i = (i + 1) & (m->cap - 1);
        if (!m->keys[i])
                m->cnt++;
        m->keys[i] = k;
        m->vals[i] = v;
        return 0;
}

static struct aj_node *aj_ptrmap_get(const struct aj_ptrmap *m, const json_t *k)
{
        size_t i;

        if (m->cap == 0)
                return NULL;
        i = aj_ptr_slot(k, m->cap);
        while (m->keys[i]) {
                if (m->keys[i] == k)
                        return m->vals[i];
                i = (i + 1) & (m->cap - 1);
        }
        return NULL;
}

static char *aj_strdupf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *aj_strdupf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !(s = malloc((size_t)n + 1)))
                return NULL;
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return s;
}

static sb_err_t aj_schema_err(struct aj_compiler *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static sb_err_t aj_schema_err(struct aj_compiler *cc, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return sb_seterr(cc->errstr, cc->errstr_size, SB_ERR_SCHEMA,
                         "invalid schema: %s", msg);
}

static sb_err_t aj_cc_nomem(struct aj_compiler *cc)
{
        return sb_seterr(cc->errstr, cc->errstr_size, SB_ERR_NOMEM,
                         "out of memory compiling schema");
}

static struct aj_node *aj_node_new(struct aj_compiler *cc, enum aj_kind kind)
{
        struct aj_node *n = calloc(1, sizeof(*n));

        if (!n)
                return NULL;
        n->kind = kind;
        n->next = *cc->chain;
        *cc->chain = n;
        return n;
}

static int aj_prim_index(const char *name)
{
        size_t i;

        for (i = 0; i < sizeof(aj_prims) / sizeof(aj_prims[0]); i++)
                if (!strcmp(aj_prims[i].name, name))
                        return (int)i;
        return -1;
}

static struct aj_node *aj_lookup(const json_t *names, const char *fullname)
{
        const json_t *v;

        if (!names || !(v = json_object_get(names, fullname)))
                return NULL;
        return (struct aj_node *)(intptr_t)json_integer_value(v);
}

/* A reference without a dot is tried in the enclosing namespace first. */
static struct aj_node *aj_resolve(struct aj_compiler *cc, const char *name,
                                  const char *ns)
{
        struct aj_node *n = NULL;
        char *full;

        if (!strchr(name, '.') && ns && *ns) {
                if (!(full = aj_strdupf("%s.%s", ns, name)))
                        return NULL;
                if (!(n = aj_lookup(cc->names, full)))
                        n = aj_lookup(cc->parent_names, full);
                free(full);
        }
        if (!n && !(n = aj_lookup(cc->names, name)))
                n = aj_lookup(cc->parent_names, name);
        return n;
}

static sb_err_t aj_compile(struct aj_compiler *cc, const json_t *js,
                           const char *ns, struct aj_node **outp);

/* Sets the full name and namespace of `n`, and registers it. */
static sb_err_t aj_define(struct aj_compiler *cc, const json_t *js,
                          const char *ns, struct aj_node *n, const char *what)
{
        const char *name = json_string_value(json_object_get(js, "name"));
        const json_t *jns;
        const char *dot;
        json_t *ref;

        if (!name || !*name)
                return aj_schema_err(cc, "%s without a \"name\"", what);
        if ((dot = strrchr(name, '.'))) {
                n->fullname = strdup(name);
                n->ns = strndup(name, (size_t)(dot - name));
        } else {
                jns = json_object_get(js, "namespace");
                if (json_is_string(jns))
                        ns = json_string_value(jns);
                if (ns && *ns) {
                        n->fullname = aj_strdupf("%s.%s", ns, name);
                        n->ns = strdup(ns);
                } else {
                        n->fullname = strdup(name);
                        n->ns = strdup("");
                }
        }
        if (!n->fullname || !n->ns)
                return aj_cc_nomem(cc);
        n->tname = n->fullname;
        if (aj_lookup(cc->names, n->fullname) ||
            aj_lookup(cc->parent_names, n->fullname))
                return aj_schema_err(cc, "type '%s' is defined twice",
                                     n->fullname);
        if (!(ref = json_integer((json_int_t)(intptr_t)n)) ||
            json_object_set_new(cc->names, n->fullname, ref))
                return aj_cc_nomem(cc);
        return SB_OK;
}

static sb_err_t aj_compile_record(struct aj_compiler *cc, const json_t *js,
                                  const char *ns, struct aj_node *n)
{
        const json_t *fields = json_object_get(js, "fields"), *f, *t;
        sb_err_t err;
        size_t i;

        /* Defined before its fields, which may refer to it. */
        if ((err = aj_define(cc, js, ns, n, "record")))
                return err;
        if (!(n->desc_buf =
                  aj_strdupf("a JSON object for record '%s'", n->fullname)))
                return aj_cc_nomem(cc);
        n->desc = n->desc_buf;
        if (!json_is_array(fields))
                return aj_schema_err(cc, "record '%s' has no \"fields\" array",
                                     n->fullname);
        n->nfields = json_array_size(fields);
        if (n->nfields > 0 &&
            !(n->fields = calloc(n->nfields, sizeof(*n->fields))))
                return aj_cc_nomem(cc);
        for (i = 0; i < n->nfields; i++) {
                f = json_array_get(fields, i);
                n->fields[i].name =
                    json_string_value(json_object_get(f, "name"));
                t = json_object_get(f, "type");
                if (!n->fields[i].name || !t)
                        return aj_schema_err(cc,
                                             "record '%s' field %zu needs a "
                                             "\"name\" and a \"type\"",
                                             n->fullname, i);
                n->fields[i].def = json_object_get(f, "default");
                if ((err = aj_compile(cc, t, n->ns, &n->fields[i].type)))
                        return err;
        }
        return SB_OK;
}

static sb_err_t aj_compile_enum(struct aj_compiler *cc, const json_t *js,
                                const char *ns, struct aj_node *n)
{
        const json_t *symbols = json_object_get(js, "symbols");
        const char *sym;
        json_t *idx;
        sb_err_t err;
        size_t i;

        if ((err = aj_define(cc, js, ns, n, "enum")))
                return err;
        if (!(n->desc_buf =
                  aj_strdupf("one of the symbols of enum '%s'", n->fullname)))
                return aj_cc_nomem(cc);
        n->desc = n->desc_buf;
        if (!json_is_array(symbols) || json_array_size(symbols) == 0)
                return aj_schema_err(cc, "enum '%s' has no \"symbols\"",
                                     n->fullname);
        if (!(n->symbol_index = json_object()))
                return aj_cc_nomem(cc);
        n->symbols = symbols;
        for (i = 0; i < json_array_size(symbols); i++) {
                if (!(sym = json_string_value(json_array_get(symbols, i))))
                        return aj_schema_err(cc,
                                             "enum '%s' symbol %zu is not a "
                                             "string",
                                             n->fullname, i);
                if (json_object_get(n->symbol_index, sym))
                        return aj_schema_err(cc,
                                             "enum '%s' lists symbol '%s' "
                                             "twice",
                                             n->fullname, sym);
                if (!(idx = json_integer((json_int_t)i)) ||
                    json_object_set_new(n->symbol_index, sym, idx))
                        return aj_cc_nomem(cc);
        }
        return SB_OK;
}

/* Largest precision whose unscaled values fit `size` two's-complement
 * bytes: floor(log10(2^(8 size - 1) - 1)). */
static int aj_fixed_max_precision(size_t size)
{
        return size == 0
                   ? 0
                   : (int)((8.0 * (double)size - 1.0) * 0.30102999566398120);
}

static sb_err_t aj_logical(struct aj_compiler *cc, const json_t *js,
                           struct aj_node *n)
{
        const char *lt = json_string_value(json_object_get(js, "logicalType"));
        const json_t *jp, *jsc;
        const char *where = n->fullname ? n->fullname : "bytes";

        /* The spec says unknown or misapplied logical types are ignored. */
        if (!lt)
                return SB_OK;
        if (n->kind == AJ_INT && !strcmp(lt, "date")) {
                n->logical = AJ_LT_DATE;
                n->desc = AJ_DESC_DATE;
        } else if (n->kind == AJ_INT && !strcmp(lt, "time-millis")) {
                n->logical = AJ_LT_TIME_MILLIS;
                n->desc = AJ_DESC_TIME;
        } else if (n->kind == AJ_LONG && !strcmp(lt, "time-micros")) {
                n->logical = AJ_LT_TIME_MICROS;
                n->desc = AJ_DESC_TIME;
        } else if (n->kind == AJ_LONG && !strcmp(lt, "timestamp-millis")) {
                n->logical = AJ_LT_TS_MILLIS;
                n->desc = AJ_DESC_TS;
        } else if (n->kind == AJ_LONG && !strcmp(lt, "timestamp-micros")) {
                n->logical = AJ_LT_TS_MICROS;
                n->desc = AJ_DESC_TS;
        } else if (n->kind == AJ_STRING && !strcmp(lt, "uuid")) {
                n->logical = AJ_LT_UUID;
                n->desc = AJ_DESC_UUID;
        } else if ((n->kind == AJ_BYTES || n->kind == AJ_FIXED) &&
                   !strcmp(lt, "decimal")) {
                /* An ill-formed decimal is an error rather than silently
                 * plain bytes: "12.50" would be stored as 5 bytes. */
                jp = json_object_get(js, "precision");
                jsc = json_object_get(js, "scale");
                if (!json_is_integer(jp) || json_integer_value(jp) < 1 ||
                    json_integer_value(jp) > AJ_DEC_MAX_PRECISION)
                        return aj_schema_err(cc,
                                             "decimal in '%s' needs a "
                                             "\"precision\" from 1 to %d",
                                             where, AJ_DEC_MAX_PRECISION);
                n->precision = (int)json_integer_value(jp);
                if (jsc &&
                    (!json_is_integer(jsc) || json_integer_value(jsc) < 0 ||
                     json_integer_value(jsc) > n->precision))
                        return aj_schema_err(cc,
                                             "decimal in '%s' needs a "
                                             "\"scale\" from 0 to its "
                                             "precision",
                                             where);
                n->scale = jsc ? (int)json_integer_value(jsc) : 0;
                if (n->kind == AJ_FIXED &&
                    (n->size > AJ_DEC_BYTES ||
                     n->precision > aj_fixed_max_precision(n->size)))
                        return aj_schema_err(cc,
                                             "decimal precision %d does not "
                                             "fit fixed '%s' of %zu bytes",
                                             n->precision, where, n->size);
                n->logical = AJ_LT_DECIMAL;
                n->desc = AJ_DESC_DECIMAL;
        }
        return SB_OK;
}

static sb_err_t aj_compile_object(struct aj_compiler *cc, const json_t *js,
                                  const char *ns, struct aj_node **outp)
{
        const json_t *t = json_object_get(js, "type"), *sub;
        const json_t *jsize;
        const char *tn;
        struct aj_node *n;
        sb_err_t err;
        int prim;

        if (json_is_object(t) || json_is_array(t))
                return aj_compile(cc, t, ns, outp);
        if (!(tn = json_string_value(t)))
                return aj_schema_err(cc, "a type object without \"type\"");

        if ((prim = aj_prim_index(tn)) >= 0) {
                if (!(n = aj_node_new(cc, aj_prims[prim].kind)))
                        return aj_cc_nomem(cc);
                n->tname = aj_prims[prim].name;
                n->desc = aj_prims[prim].desc;
                *outp = n;
                return aj_logical(cc, js, n);
        }
        if (!strcmp(tn, "record") || !strcmp(tn, "error")) {
                if (!(n = aj_node_new(cc, AJ_RECORD)))
                        return aj_cc_nomem(cc);
                *outp = n;
                return aj_compile_record(cc, js, ns, n);
        }
        if (!strcmp(tn, "enum")) {
                if (!(n = aj_node_new(cc, AJ_ENUM)))
                        return aj_cc_nomem(cc);
                *outp = n;
                return aj_compile_enum(cc, js, ns, n);
        }
        if (!strcmp(tn, "fixed")) {
                if (!(n = aj_node_new(cc, AJ_FIXED)))
                        return aj_cc_nomem(cc);
                *outp = n;
                if ((err = aj_define(cc, js, ns, n, "fixed")))
                        return err;
                jsize = json_object_get(js, "size");
                if (!json_is_integer(jsize) || json_integer_value(jsize) < 0)
                        return aj_schema_err(cc, "fixed '%s' needs a \"size\"",
                                             n->fullname);
                n->size = (size_t)json_integer_value(jsize);
                if (!(n->desc_buf =
                          aj_strdupf("a string of %zu bytes", n->size)))
                        return aj_cc_nomem(cc);
                n->desc = n->desc_buf;
                return aj_logical(cc, js, n);
        }
        if (!strcmp(tn, "array") || !strcmp(tn, "map")) {
                int is_array = tn[0] == 'a';

                sub = json_object_get(js, is_array ? "items" : "values");
                if (!sub)
                        return aj_schema_err(cc, "%s without \"%s\"", tn,
                                             is_array ? "items" : "values");
                if (!(n = aj_node_new(cc, is_array ? AJ_ARRAY : AJ_MAP)))
                        return aj_cc_nomem(cc);
                n->tname = is_array ? "array" : "map";
                n->desc = is_array ? "a JSON array" : "a JSON object";
                *outp = n;
                return aj_compile(cc, sub, ns, &n->items);
        }
        /* {"type": "SomeNamedType"} */
        if (!(*outp = aj_resolve(cc, tn, ns)))
                return aj_schema_err(cc, "unknown type '%s'", tn);
        return SB_OK;
}

static sb_err_t aj_compile(struct aj_compiler *cc, const json_t *js,
                           const char *ns, struct aj_node **outp)
{
        struct aj_node *n = NULL;
        const char *name;
        sb_err_t err = SB_OK;
        size_t i;
        int prim;

        if ((name = json_string_value(js))) {
                if ((prim = aj_prim_index(name)) >= 0) {
                        if (!(n = aj_node_new(cc, aj_prims[prim].kind)))
                                return aj_cc_nomem(cc);
                        n->tname = aj_prims[prim].name;
                        n->desc = aj_prims[prim].desc;
                } else if (!(n = aj_resolve(cc, name, ns))) {
                        return aj_schema_err(cc, "unknown type '%s'", name);
                }
        } else if (json_is_array(js)) {
                if (json_array_size(js) == 0)
                        return aj_schema_err(cc, "empty union");
                if (!(n = aj_node_new(cc, AJ_UNION)))
                        return aj_cc_nomem(cc);
                n->tname = "union";
                n->desc = "a value of the union";
                n->nbranches = json_array_size(js);
                if (!(n->branches = calloc(n->nbranches, sizeof(*n->branches))))
                        return aj_cc_nomem(cc);
                for (i = 0; i < n->nbranches; i++) {
                        err = aj_compile(cc, json_array_get(js, i), ns,
                                         &n->branches[i]);
                        if (err)
                                return err;
                        if (n->branches[i]->kind == AJ_UNION)
                                return aj_schema_err(cc, "nested union");
                }
        } else if (json_is_object(js)) {
                if ((err = aj_compile_object(cc, js, ns, &n)))
                        return err;
        } else {
                return aj_schema_err(cc, "a type must be a string, an object "
                                         "or an array");
        }
        if (cc->pm && aj_ptrmap_put(cc->pm, js, n))
                return aj_cc_nomem(cc);
        *outp = n;
        return SB_OK;
}

/*
 * Agreement with the Avro C schema: field indexes, branch numbers and enum
 * indexes computed from the JSON are used directly on Avro C values.
 */

struct aj_checker {
        char *errstr;
        size_t errstr_size;
};

static const avro_type_t aj_avro_types[] = {
    [AJ_NULL] = AVRO_NULL,     [AJ_BOOLEAN] = AVRO_BOOLEAN,
    [AJ_INT] = AVRO_INT32,     [AJ_LONG] = AVRO_INT64,
    [AJ_FLOAT] = AVRO_FLOAT,   [AJ_DOUBLE] = AVRO_DOUBLE,
    [AJ_BYTES] = AVRO_BYTES,   [AJ_STRING] = AVRO_STRING,
    [AJ_RECORD] = AVRO_RECORD, [AJ_ENUM] = AVRO_ENUM,
    [AJ_FIXED] = AVRO_FIXED,   [AJ_ARRAY] = AVRO_ARRAY,
    [AJ_MAP] = AVRO_MAP,       [AJ_UNION] = AVRO_UNION,
};

static sb_err_t aj_check_fail(struct aj_checker *ck, const struct aj_path *p,
                              const char *what)
{
        struct aj_ctx c = {ck->errstr, ck->errstr_size, 0};

        return aj_fail(&c, p, SB_ERR_SCHEMA,
                       "schema JSON and Avro C schema disagree: %s", what);
}

static sb_err_t aj_check_avro(struct aj_checker *ck, const struct aj_path *p,
                              int rc)
{
        struct aj_ctx c = {ck->errstr, ck->errstr_size, 0};

        return aj_avro_fail(&c, p, rc);
}

/* Converting each default once here means a missing field can never fail
 * later for a reason the record's author cannot fix. */
static sb_err_t aj_check_default(struct aj_checker *ck,
                                 const struct aj_field *f, avro_value_t *v,
                                 const struct aj_path *p)
{
        char msg[512];
        struct aj_ctx c = {msg, sizeof(msg), 0};
        sb_err_t err;
        int rc;

        if ((rc = avro_value_reset(v)) != 0)
                return aj_check_avro(ck, p, rc);
        if ((err = aj_from_default(&c, f, v, p)))
                return sb_seterr(ck->errstr, ck->errstr_size,
                                 err == SB_ERR_VALIDATION ? SB_ERR_SCHEMA : err,
                                 "invalid default in schema: %s", msg);
        if ((rc = avro_value_reset(v)) != 0)
                return aj_check_avro(ck, p, rc);
        return SB_OK;
}

/*
 * Walks the compiled schema, the Avro C schema and a value of it together.
 * Avro C builds value classes only for a whole schema (a sub-schema may
 * link to types defined outside it), so defaults are tried on children of
 * one value: an element appended to each array, a "" key added to each map,
 * each union branch selected in turn.
 */
static sb_err_t aj_check(struct aj_checker *ck, struct aj_node *n,
                         avro_schema_t s, avro_value_t *v,
                         const struct aj_path *p)
{
        struct aj_path fp = {p, AJ_SEG_FIELD, NULL, 0};
        avro_value_t child;
        sb_err_t err;
        size_t i;
        int rc;

        while (s && is_avro_link(s))
                s = avro_schema_link_target(s);
        if (!s || avro_typeof(s) != aj_avro_types[n->kind] ||
            avro_value_get_type(v) != aj_avro_types[n->kind])
                return aj_check_fail(ck, p, "types differ");
        switch (n->kind) {
        case AJ_RECORD:
                /* Once per named type: recursive types terminate. */
                if (n->checked)
                        return SB_OK;
                n->checked = 1;
                if (avro_schema_record_size(s) != n->nfields)
                        return aj_check_fail(ck, p, "field counts differ");
                for (i = 0; i < n->nfields; i++) {
                        fp.name = n->fields[i].name;
                        if (strcmp(avro_schema_record_field_name(s, (int)i),
                                   n->fields[i].name))
                                return aj_check_fail(ck, &fp,
                                                     "field names differ");
                        if ((rc = avro_value_get_by_index(v, i, &child, NULL)))
                                return aj_check_avro(ck, &fp, rc);
                        err = aj_check(
                            ck, n->fields[i].type,
                            avro_schema_record_field_get_by_index(s, (int)i),
                            &child, &fp);
                        if (err)
                                return err;
                        if (n->fields[i].def &&
                            (err = aj_check_default(ck, &n->fields[i], &child,
                                                    &fp)))
                                return err;
                }
                return SB_OK;
        case AJ_ENUM:
                if ((size_t)avro_schema_enum_number_of_symbols(s) !=
                    json_array_size(n->symbols))
                        return aj_check_fail(ck, p, "enum symbols differ");
                return SB_OK;
        case AJ_FIXED:
                if (avro_schema_fixed_size(s) != (int64_t)n->size)
                        return aj_check_fail(ck, p, "fixed sizes differ");
                return SB_OK;
        case AJ_ARRAY:
                if ((rc = avro_value_append(v, &child, NULL)))
                        return aj_check_avro(ck, p, rc);
                return aj_check(ck, n->items, avro_schema_array_items(s),
                                &child, p);
        case AJ_MAP:
                if ((rc = avro_value_add(v, "", &child, NULL, NULL)))
                        return aj_check_avro(ck, p, rc);
                return aj_check(ck, n->items, avro_schema_map_values(s), &child,
                                p);
        case AJ_UNION:
                if (avro_schema_union_size(s) != n->nbranches)
                        return aj_check_fail(ck, p, "union sizes differ");
                for (i = 0; i < n->nbranches; i++) {
                        if ((rc = avro_value_set_branch(v, (int)i, &child)))
                                return aj_check_avro(ck, p, rc);
                        err = aj_check(ck, n->branches[i],
                                       avro_schema_union_branch(s, (int)i),
                                       &child, p);
                        if (err)
                                return err;
                }
                return SB_OK;
        default:
                return SB_OK;
        }
}

static sb_err_t aj_check_root(sb_avrojson_t *aj, char *errstr,
                              size_t errstr_size)
{
        struct aj_checker ck = {errstr, errstr_size};
        avro_value_iface_t *iface;
        avro_value_t v;
        sb_err_t err;

        if (!(iface = avro_generic_class_from_schema(aj->schema)))
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "Avro C error: %s", avro_strerror());
        if (avro_generic_value_new(iface, &v)) {
                err = sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                "out of memory");
                goto decref_iface;
        }
        err = aj_check(&ck, aj->root, aj->schema, &v, NULL);
        avro_value_decref(&v);
decref_iface:
        avro_value_iface_decref(iface);
        return err;
}

/*
 * Public API
 */

sb_avrojson_t *sb_avrojson_new(json_t *schema_json, avro_schema_t schema,
                               char *errstr, size_t errstr_size)
{
        struct aj_compiler cc = {0};
        sb_avrojson_t *aj;

        if (!schema_json || !schema) {
                sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                          "sb_avrojson_new: schema JSON and schema required");
                return NULL;
        }
        if (!(aj = calloc(1, sizeof(*aj)))) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                return NULL;
        }
        aj->schema_json = json_incref(schema_json);
        aj->schema = avro_schema_incref(schema);
        if (!(aj->names = json_object())) {
                sb_seterr(errstr, errstr_size, SB_ERR_NOMEM, "out of memory");
                goto destroy_aj;
        }
        cc.chain = &aj->nodes;
        cc.names = aj->names;
        cc.pm = &aj->pm;
        cc.errstr = errstr;
        cc.errstr_size = errstr_size;
        if (aj_compile(&cc, schema_json, NULL, &aj->root))
                goto destroy_aj;
        if (aj->root->ns)
                aj->root_ns = aj->root->ns;
        if (aj_check_root(aj, errstr, errstr_size))
                goto destroy_aj;
        return aj;

destroy_aj:
        sb_avrojson_destroy(aj);
        return NULL;
}

void sb_avrojson_destroy(sb_avrojson_t *aj)
{
        if (!aj)
                return;
        aj_nodes_free(aj->nodes);
        free(aj->pm.keys);
        free(aj->pm.vals);
        json_decref(aj->names);
        avro_schema_decref(aj->schema);
        json_decref(aj->schema_json);
        free(aj);
}

sb_err_t sb_avrojson_from_json(sb_avrojson_t *aj, const json_t *in,
                               avro_value_t *out, char *errstr,
                               size_t errstr_size)
{
        struct aj_ctx c = {errstr, errstr_size, 0};
        int rc;

        if (!aj || !in || !out)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "sb_avrojson_from_json: missing argument");
        if ((rc = avro_value_reset(out)) != 0)
                return aj_avro_fail(&c, NULL, rc);
        return aj_from(&c, aj->root, in, out, NULL, 0);
}

sb_err_t sb_avrojson_to_json(sb_avrojson_t *aj, avro_value_t *in, json_t **outp,
                             char *errstr, size_t errstr_size)
{
        struct aj_ctx c = {errstr, errstr_size, 0};

        if (!aj || !in || !outp)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "sb_avrojson_to_json: missing argument");
        return aj_to(&c, aj->root, in, NULL, outp);
}

sb_err_t sb_avrojson_field_to_json(sb_avrojson_t *aj, const json_t *field_type,
                                   avro_value_t *in, json_t **outp,
                                   char *errstr, size_t errstr_size)
{
        struct aj_ctx c = {errstr, errstr_size, 0};
        struct aj_compiler cc = {0};
        struct aj_node *n, *scratch = NULL;
        sb_err_t err;

        if (!aj || !field_type || !in || !outp)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "sb_avrojson_field_to_json: missing "
                                 "argument");
        *outp = NULL;
        if ((n = aj_ptrmap_get(&aj->pm, field_type)))
                return aj_to(&c, n, in, NULL, outp);

        /* A type JSON from outside the schema (e.g. "string" written by the
         * caller): compile it on the side, resolving names against ours. */
        cc.chain = &scratch;
        cc.parent_names = aj->names;
        cc.errstr = errstr;
        cc.errstr_size = errstr_size;
        if (!(cc.names = json_object()))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        err = aj_compile(&cc, field_type, aj->root_ns, &n);
        if (!err)
                err = aj_to(&c, n, in, NULL, outp);
        json_decref(cc.names);
        aj_nodes_free(scratch);
        return err;
}
