#include "envelope.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *sb_event_names[SB_EV__CNT] = {
    [SB_EV_RECORD_UPSERT] = "sharebus.record.upsert",
    [SB_EV_RECORD_DELETE] = "sharebus.record.delete",
    [SB_EV_ERASURE] = "sharebus.rights.erasure",
    [SB_EV_RECTIFICATION] = "sharebus.rights.rectification",
    [SB_EV_OBJECTION] = "sharebus.rights.objection",
    [SB_EV_CONSENT_WITHDRAWN] = "sharebus.rights.consent-withdrawn",
    [SB_EV_CONSENT_GIVEN] = "sharebus.rights.consent-given",
    [SB_EV_RESTRICTION] = "sharebus.rights.restriction",
    [SB_EV_RESTRICTION_LIFTED] = "sharebus.rights.restriction-lifted",
    [SB_EV_RECEIPT] = "sharebus.receipt",
};

const char *sb_event_type2str(sb_event_type_t t)
{
        if ((int)t <= 0 || t >= SB_EV__CNT)
                return NULL;
        return sb_event_names[t];
}

sb_event_type_t sb_event_type_parse(const char *s)
{
        int i;

        for (i = 1; i < SB_EV__CNT; i++) {
                const char *n = sb_event_names[i];
                const char *dot = strrchr(n, '.');

                if (!strcmp(s, n) || !strcmp(s, dot + 1))
                        return (sb_event_type_t)i;
        }
        return SB_EV_UNKNOWN;
}

int sb_event_type_is_rights(sb_event_type_t t)
{
        return t >= SB_EV_ERASURE && t <= SB_EV_RESTRICTION_LIFTED;
}

int64_t sb_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sb_time_format(int64_t ms, char out[32])
{
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        size_t n;

        gmtime_r(&secs, &tm);
        n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static const char sb_hex[] = "0123456789abcdef";

static void sb_hex_bytes(char *out, const unsigned char *b, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++) {
                out[2 * i] = sb_hex[b[i] >> 4];
                out[2 * i + 1] = sb_hex[b[i] & 0xf];
        }
}

/*
 * Event ids are made for every record the gateway publishes, so they do
 * not cost a getrandom() each: each thread draws 16 random bytes once and
 * then counts in the low 64 bits. Ids stay unique (122 random bits
 * per thread, a counter within them) and do not repeat across restarts.
 */
void sb_uuid4(char out[37])
{
        static _Thread_local unsigned char base[16];
        static _Thread_local uint64_t counter;
        static _Thread_local int seeded;
        unsigned char b[16];
        uint64_t c;
        int i;

        if (!seeded) {
                randombytes_buf(base, sizeof(base));
                seeded = 1;
        }
        memcpy(b, base, sizeof(b));
        c = counter++;
        for (i = 15; i >= 8 && c; i--) {
                unsigned sum = b[i] + (unsigned)(c & 0xff);

                b[i] = (unsigned char)sum;
                c = (c >> 8) + (sum >> 8);
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        sb_hex_bytes(out, b, 4);
        out[8] = '-';
        sb_hex_bytes(out + 9, b + 4, 2);
        out[13] = '-';
        sb_hex_bytes(out + 14, b + 6, 2);
        out[18] = '-';
        sb_hex_bytes(out + 19, b + 8, 2);
        out[23] = '-';
        sb_hex_bytes(out + 24, b + 10, 6);
        out[36] = '\0';
}

void sb_envelope_stamp(sb_envelope_t *env)
{
        char t[32];

        sb_uuid4(env->id);
        sb_time_format(sb_now_ms(), t);
        snprintf(env->time, sizeof(env->time), "%s", t);
}

rd_kafka_headers_t *sb_envelope_headers(const sb_envelope_t *env)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        unsigned char be[8];
        char fp[17];
        int i;

        for (i = 0; i < 8; i++)
                be[i] = (unsigned char)(env->schema_fp >> (56 - 8 * i));
        sb_hex_bytes(fp, be, 8);
        fp[16] = '\0';
        rd_kafka_header_add(h, "ce_specversion", -1, "1.0", -1);
        rd_kafka_header_add(h, "ce_id", -1, env->id, -1);
        rd_kafka_header_add(h, "ce_source", -1, env->source, -1);
        rd_kafka_header_add(h, "ce_type", -1, sb_event_type2str(env->type), -1);
        rd_kafka_header_add(h, "ce_time", -1, env->time, -1);
        if (*env->subject)
                rd_kafka_header_add(h, "ce_subject", -1, env->subject, -1);
        rd_kafka_header_add(h, "content-type", -1, "application/avro", -1);
        rd_kafka_header_add(h, "sb_schema", -1, fp, -1);
        return h;
}

/* Copies header `name` into `out`; missing and oversize are errors. */
static sb_err_t sb_header_copy(rd_kafka_headers_t *h,
                               const rd_kafka_message_t *msg, const char *name,
                               char *out, size_t outsize, int required,
                               char *errstr, size_t errstr_size)
{
        const void *v;
        size_t len;

        if (rd_kafka_header_get_last(h, name, &v, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
                *out = '\0';
                if (!required)
                        return SB_OK;
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "topic '%s' partition %" PRId32
                                 " offset %" PRId64 ": missing header '%s'",
                                 rd_kafka_topic_name(msg->rkt), msg->partition,
                                 msg->offset, name);
        }
        if (len >= outsize || (len && memchr(v, '\0', len)))
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "topic '%s' partition %" PRId32
                                 " offset %" PRId64 ": header '%s' is invalid",
                                 rd_kafka_topic_name(msg->rkt), msg->partition,
                                 msg->offset, name);
        memcpy(out, v, len);
        out[len] = '\0';
        return SB_OK;
}

sb_err_t sb_envelope_parse(const rd_kafka_message_t *msg, sb_envelope_t *env,
                           char *errstr, size_t errstr_size)
{
        rd_kafka_headers_t *h = NULL;
        char buf[64], *end;
        sb_err_t err;

        memset(env, 0, sizeof(*env));
        if (rd_kafka_message_headers(msg, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return sb_seterr(
                    errstr, errstr_size, SB_ERR_VALIDATION,
                    "topic '%s' partition %" PRId32 " offset %" PRId64
                    ": message has no headers (not a sharebus "
                    "event)",
                    rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset);
        if ((err = sb_header_copy(h, msg, "ce_specversion", buf, sizeof(buf), 1,
                                  errstr, errstr_size)))
                return err;
        if (strcmp(buf, "1.0"))
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "topic '%s' offset %" PRId64
                                 ": unsupported ce_specversion '%s'",
                                 rd_kafka_topic_name(msg->rkt), msg->offset,
                                 buf);
        if ((err = sb_header_copy(h, msg, "ce_id", env->id, sizeof(env->id), 1,
                                  errstr, errstr_size)) ||
            (err =
                 sb_header_copy(h, msg, "ce_source", env->source,
                                sizeof(env->source), 1, errstr, errstr_size)) ||
            (err = sb_header_copy(h, msg, "ce_time", env->time,
                                  sizeof(env->time), 1, errstr, errstr_size)) ||
            (err = sb_header_copy(h, msg, "ce_subject", env->subject,
                                  sizeof(env->subject), 0, errstr,
                                  errstr_size)) ||
            (err = sb_header_copy(h, msg, "ce_type", buf, sizeof(buf), 1,
                                  errstr, errstr_size)))
                return err;
        env->type = sb_event_type_parse(buf);
        if (env->type == SB_EV_UNKNOWN || strncmp(buf, "sharebus.", 9))
                return sb_seterr(
                    errstr, errstr_size, SB_ERR_VALIDATION,
                    "topic '%s' offset %" PRId64 ": unknown ce_type '%s'",
                    rd_kafka_topic_name(msg->rkt), msg->offset, buf);
        if ((err = sb_header_copy(h, msg, "sb_schema", buf, sizeof(buf), 1,
                                  errstr, errstr_size)))
                return err;
        env->schema_fp = strtoull(buf, &end, 16);
        if (strlen(buf) != 16 || *end)
                return sb_seterr(errstr, errstr_size, SB_ERR_VALIDATION,
                                 "topic '%s' offset %" PRId64
                                 ": header sb_schema '%s' is not 16 hex "
                                 "digits",
                                 rd_kafka_topic_name(msg->rkt), msg->offset,
                                 buf);
        return SB_OK;
}

static int sb_digits(const char *s, int n, int *out)
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

int sb_time_parse(const char *s, int64_t *msp)
{
        static const int mdays[] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
        int y, mo, d, h, mi, sec, ms = 0, oh, om, leap;
        int64_t days;
        const char *p;

        if (strlen(s) < 20 || sb_digits(s, 4, &y) || s[4] != '-' ||
            sb_digits(s + 5, 2, &mo) || s[7] != '-' ||
            sb_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
            sb_digits(s + 11, 2, &h) || s[13] != ':' ||
            sb_digits(s + 14, 2, &mi) || s[16] != ':' ||
            sb_digits(s + 17, 2, &sec))
                return -1;
        leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (mo < 1 || mo > 12 || d < 1 ||
            d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 ||
            sec > 60)
                return -1;
        p = s + 19;
        if (*p == '.') {
                int scale = 100;

                for (p++; *p >= '0' && *p <= '9'; p++) {
                        ms += (*p - '0') * scale;
                        scale /= 10;
                }
                if (p == s + 20)
                        return -1;
        }
        /* days from civil (Howard Hinnant's algorithm) */
        {
                int yy = y - (mo <= 2);
                int era = (yy >= 0 ? yy : yy - 399) / 400;
                int yoe = yy - era * 400;
                int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
                int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

                days = (int64_t)era * 146097 + doe - 719468;
        }
        *msp = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + ms;
        if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
                return 0;
        if ((*p == '+' || *p == '-') && !sb_digits(p + 1, 2, &oh) &&
            p[3] == ':' && !sb_digits(p + 4, 2, &om) && p[6] == '\0' &&
            oh < 24 && om < 60) {
                int64_t off = ((int64_t)oh * 60 + om) * 60000;

                *msp += *p == '+' ? -off : off;
                return 0;
        }
        return -1;
}
