/*
 * A rights event that does not validate is refused with a message that
 * says what is wrong and where: in a rights file, the file, the line and
 * the key (docs/cli.md); through the API, the event type (or the file the
 * record came from) and the field. Every message is checked exactly, and
 * nothing reaches the topic.
 */
#include "testutil.h"

#define FILE_ID "45f30782-64aa-46af-9835-e8e579f63f01"

/* A record of the dataset with subject `subj` and birth date `bd`. */
#define RECORD(subj, bd)                                                       \
        "{\"file_id\":\"" FILE_ID "\",\"beneficiary_id\":\"" subj "\","        \
        "\"last_name\":\"Bernard\",\"first_name\":\"Jules\","                  \
        "\"birth_date\":\"" bd "\",\"email\":null,\"phone\":null,"             \
        "\"postcode\":\"69003\",\"household_size\":5,"                         \
        "\"benefit\":\"HOUSING_AID\",\"monthly_amount\":\"623.52\","           \
        "\"income_bracket\":6,\"opened_on\":\"2025-07-01\","                   \
        "\"updated_at\":\"2026-11-25T09:00:00Z\"}"

#define TYPES                                                                  \
        "erasure, rectification, objection, consent-withdrawn, "               \
        "consent-given, restriction, restriction-lifted, delete"

#define LONG_ID                                                                \
        "BEN-000000000000000000000000000000000000000000000000000000000000"     \
        "0000000000000000000000000000000000000000000000000000000000000000"     \
        "0000000000000000000000000000000000000000000000000000000000000000"     \
        "0000000000000000000000000000000000000000000000000000000000000000"

/* Line 2 of a rights file whose line 1 is valid, and its reason. */
static const struct {
        const char *line, *reason;
} lines[] = {
    {"{\"type\":\"erasure\",", "invalid JSON at column 18: string or '}' "
                               "expected near end of file"},
    {"{\"type\":\"erasure\",\"subject\":\"a\",\"subject\":\"b\"}",
     "invalid JSON at column 41: duplicate object key near '\"subject\"'"},
    {"[\"erasure\",\"BEN-0000001\"]",
     "expected a JSON object, got [\"erasure\",\"BEN-0000001\"]"},
    {"{\"subject\":\"BEN-0000001\"}", "key 'type': missing (one of " TYPES ")"},
    {"{\"type\":3,\"subject\":\"BEN-0000001\"}",
     "key 'type': expected a string, got 3"},
    {"{\"type\":\"forget\",\"subject\":\"BEN-0000001\"}",
     "key 'type': unknown rights event type \"forget\" (one of " TYPES ")"},
    {"{\"type\":\"upsert\",\"subject\":\"BEN-0000001\"}",
     "key 'type': unknown rights event type \"upsert\" (one of " TYPES ")"},
    {"{\"type\":\"erasure\",\"subject\":\"BEN-0000001\",\"colour\":\"blue\"}",
     "key 'colour': unknown key"},
    {"{\"type\":\"erasure\",\"subject\":\"BEN-0000001\",\"purposes\":[]}",
     "key 'purposes': not allowed for type 'erasure'"},
    {"{\"type\":\"restriction\",\"subject\":\"BEN-0000001\","
     "\"purposes\":[\"research\"]}",
     "key 'purposes': not allowed for type 'restriction'"},
    {"{\"type\":\"objection\",\"subject\":\"BEN-0000001\","
     "\"record_id\":\"" FILE_ID "\"}",
     "key 'record_id': not allowed for type 'objection'"},
    {"{\"type\":\"erasure\",\"subject\":\"BEN-0000001\","
     "\"record\":" RECORD("BEN-0000001", "1977-05-23") "}",
     "key 'record': not allowed for type 'erasure'"},
    {"{\"type\":\"rectification\",\"record\":" RECORD(
         "BEN-0000001", "1977-05-23") ",\"requested_at\":\"2026-11-25T10:00:"
                                      "00Z\"}",
     "key 'requested_at': not allowed for type 'rectification'"},
    {"{\"type\":\"objection\"}",
     "key 'subject': missing (type 'objection' needs it)"},
    {"{\"type\":\"delete\",\"subject\":\"BEN-0000001\"}",
     "key 'record_id': missing (type 'delete' needs it)"},
    {"{\"type\":\"rectification\"}",
     "key 'record': missing (type 'rectification' needs it)"},
    {"{\"type\":\"erasure\",\"subject\":17}",
     "key 'subject': expected a string, got 17"},
    {"{\"type\":\"erasure\",\"subject\":\"\"}", "key 'subject': must not be "
                                                "empty"},
    {"{\"type\":\"erasure\",\"subject\":\"" LONG_ID "\"}",
     "key 'subject': longer than 255 bytes"},
    {"{\"type\":\"objection\",\"subject\":\"BEN-0000001\","
     "\"purposes\":\"research\"}",
     "key 'purposes': expected an array of strings, got \"research\""},
    {"{\"type\":\"objection\",\"subject\":\"BEN-0000001\","
     "\"purposes\":[\"research\",3]}",
     "key 'purposes[1]': expected a non-empty string, got 3"},
    {"{\"type\":\"consent-withdrawn\",\"subject\":\"BEN-0000001\","
     "\"purposes\":[\"\"]}",
     "key 'purposes[0]': expected a non-empty string, got \"\""},
    {"{\"type\":\"objection\",\"subject\":\"BEN-0000001\","
     "\"purposes\":[\"research\",\"research\"]}",
     "key 'purposes[1]': \"research\" is listed twice"},
    {"{\"type\":\"erasure\",\"subject\":\"BEN-0000001\","
     "\"requested_at\":\"yesterday\"}",
     "key 'requested_at': expected an RFC 3339 timestamp "
     "(2026-11-25T10:00:00Z), got \"yesterday\""},
    {"{\"type\":\"erasure\",\"subject\":\"BEN-0000001\","
     "\"requested_at\":1764064800000}",
     "key 'requested_at': expected a string, got 1764064800000"},
    {"{\"type\":\"delete\",\"subject\":\"BEN-0000001\",\"record_id\":\"r-9\"}",
     "key 'record_id': expected a uuid (the dataset's record id field "
     "'file_id'), got \"r-9\""},
    {"{\"type\":\"rectification\",\"record\":[1]}",
     "key 'record': expected a JSON object, got [1]"},
    {"{\"type\":\"rectification\",\"record\":" RECORD("BEN-0000001",
                                                      "12/31/1990") "}",
     "key 'record': field 'birth_date': expected a date (YYYY-MM-DD), got "
     "\"12/31/1990\""},
    {"{\"type\":\"rectification\",\"subject\":\"BEN-0000002\","
     "\"record\":" RECORD("BEN-0000001", "1977-05-23") "}",
     "key 'subject': differs from the record's field 'beneficiary_id'"},
};

static void check_lines(sb_holder_t *h)
{
        char text[4096], errstr[1024], expected[1200];
        sb_holder_stats_t hs;
        size_t i;
        FILE *in;

        for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
                snprintf(text, sizeof(text),
                         "{\"type\":\"erasure\",\"subject\":\"BEN-0000000\"}"
                         "\n%s\n",
                         lines[i].line);
                in = fmemopen(text, strlen(text), "r");
                SB_CHECK(in, "fmemopen");
                errstr[0] = '\0';
                SB_CHECK_INT(SB_ERR_VALIDATION,
                             sb_holder_rights_file(h, in, "rights.ndjson", NULL,
                                                   NULL, NULL, &hs, errstr,
                                                   sizeof(errstr)),
                             lines[i].line);
                fclose(in);
                snprintf(expected, sizeof(expected),
                         "holder: 'rights.ndjson' line 2: %s", lines[i].reason);
                SB_CHECK_STR(expected, errstr, lines[i].line);
                SB_CHECK_INT(0, hs.published, "events reported published");
        }
}

/* The same checks through sb_holder_rights_ex(). */
static void check_requests(sb_holder_t *h)
{
        json_t *purposes = json_pack("[s]", "research");
        json_t *bad = json_loads(RECORD("BEN-0000001", "12/31/1990"), 0, NULL);
        json_t *good = json_loads(RECORD("BEN-0000001", "1977-05-23"), 0, NULL);
        const struct {
                sb_holder_rights_req_t req;
                sb_err_t err;
                const char *msg;
        } reqs[] = {
            {{.type = SB_EV_ERASURE},
             SB_ERR_INVALID_ARG,
             "holder: erasure event: subject: missing (type 'erasure' needs "
             "it)"},
            {{.type = SB_EV_RESTRICTION,
              .subject = "BEN-0000001",
              .purposes = purposes},
             SB_ERR_INVALID_ARG,
             "holder: restriction event: purposes: not allowed for type "
             "'restriction'"},
            {{.type = SB_EV_RECORD_UPSERT, .subject = "BEN-0000001"},
             SB_ERR_INVALID_ARG,
             "holder: rights event: 'sharebus.record.upsert' is not a rights "
             "event type"},
            {{.type = SB_EV_OBJECTION, .subject = ""},
             SB_ERR_VALIDATION,
             "holder: objection event: subject: must not be empty"},
            {{.type = SB_EV_ERASURE, .subject = "BEN-\xff"},
             SB_ERR_VALIDATION,
             "holder: erasure event: subject: not valid UTF-8"},
            {{.type = SB_EV_RECORD_DELETE,
              .subject = "BEN-0000001",
              .record_id = "r-9"},
             SB_ERR_VALIDATION,
             "holder: delete event: record_id: expected a uuid (the dataset's "
             "record id field 'file_id'), got \"r-9\""},
            {{.type = SB_EV_RECTIFICATION, .record = bad, .origin = "fix.json"},
             SB_ERR_VALIDATION,
             "holder: 'fix.json': record: field 'birth_date': expected a date "
             "(YYYY-MM-DD), got \"12/31/1990\""},
            {{.type = SB_EV_RECTIFICATION,
              .subject = "BEN-0000002",
              .record = good},
             SB_ERR_VALIDATION,
             "holder: rectification event: subject: differs from the "
             "record's field 'beneficiary_id'"},
        };
        char errstr[1024], event_id[37];
        size_t i;

        SB_CHECK(purposes && bad && good, "test data");
        for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
                errstr[0] = '\0';
                SB_CHECK_INT(reqs[i].err,
                             sb_holder_rights_ex(h, &reqs[i].req, event_id,
                                                 errstr, sizeof(errstr)),
                             reqs[i].msg);
                SB_CHECK_STR(reqs[i].msg, errstr, "message");
        }
        json_decref(purposes);
        json_decref(bad);
        json_decref(good);
}

int main(void)
{
        char errstr[1024];
        sb_holder_t *h;
        sb_testenv_t te;

        sb_testenv_init(&te);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);
        check_lines(h);
        check_requests(h);
        SB_CHECK_INT(0, sb_testenv_count_messages(&te, "sb.in.beneficiaries"),
                     "events visible on the input topic");
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
