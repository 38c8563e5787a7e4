/*
 * DESIGN.md §7 for rights events: a file of rights events is published all
 * or nothing, like a file of records. One bad line publishes nothing (the
 * transaction is aborted), the error names the file, the line and the key,
 * and no event id is reported. With a rejects file, the other lines are
 * published, each reported with its line and event id once committed, and
 * the bad line is kept with its line number and reason.
 */
#include "testutil.h"

/* Line 4 is blank; line 5 gives purposes to an erasure. */
static const char *input =
    "{\"type\":\"objection\",\"subject\":\"BEN-0000002\","
    "\"purposes\":[\"energy-voucher-delivery\"],"
    "\"requested_at\":\"2026-11-25T10:00:00Z\"}\n"
    "{\"type\":\"rectification\",\"record\":{"
    "\"file_id\":\"45f30782-64aa-46af-9835-e8e579f63f01\","
    "\"beneficiary_id\":\"BEN-0000001\",\"last_name\":\"Bernard\","
    "\"first_name\":\"Jules\",\"birth_date\":\"1977-05-23\","
    "\"email\":\"user1@example.org\",\"phone\":\"+33610515716\","
    "\"postcode\":\"69003\",\"household_size\":5,\"benefit\":\"HOUSING_AID\","
    "\"monthly_amount\":\"623.52\",\"income_bracket\":6,"
    "\"opened_on\":\"2025-07-01\",\"updated_at\":\"2026-11-25T09:00:00Z\"}}\n"
    "{\"type\":\"delete\",\"subject\":\"BEN-0000004\","
    "\"record_id\":\"85158b84-49be-4514-abd8-fb89932ea443\"}\n"
    "\n"
    "{\"type\":\"erasure\",\"subject\":\"BEN-0000009\","
    "\"purposes\":[\"research\"]}\n"
    "{\"type\":\"restriction\",\"subject\":\"BEN-0000003\"}\n";

static const char *bad_line =
    "{\"type\":\"erasure\",\"subject\":\"BEN-0000009\","
    "\"purposes\":[\"research\"]}";

#define BAD_REASON "key 'purposes': not allowed for type 'erasure'"

typedef struct seen_s {
        size_t cnt;
        sb_holder_event_t ev[8];
} seen_t;

static void on_event(const sb_holder_event_t *ev, void *opaque)
{
        seen_t *seen = opaque;

        SB_CHECK(seen->cnt < 8, "more events reported than lines");
        seen->ev[seen->cnt++] = *ev;
}

int main(void)
{
        static const size_t lines[] = {1, 2, 3, 6};
        static const sb_event_type_t types[] = {
            SB_EV_OBJECTION, SB_EV_RECTIFICATION, SB_EV_RECORD_DELETE,
            SB_EV_RESTRICTION};
        char errstr[1024], rejects_path[400], line[4096], extra[16];
        const char *path;
        sb_holder_stats_t hs;
        sb_holder_t *h;
        sb_testenv_t te;
        seen_t seen;
        FILE *fp, *rejects;
        json_t *rej;
        size_t i;

        sb_testenv_init(&te);
        path = sb_testenv_file(&te, "rights.ndjson", input);
        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);

        memset(&seen, 0, sizeof(seen));
        fp = fopen(path, "r");
        SB_CHECK(fp, "open");
        SB_CHECK_INT(SB_ERR_VALIDATION,
                     sb_holder_rights_file(h, fp, "rights.ndjson", NULL,
                                           on_event, &seen, &hs, errstr,
                                           sizeof(errstr)),
                     "rights file with one bad line");
        fclose(fp);
        SB_CHECK_STR("holder: 'rights.ndjson' line 5: " BAD_REASON, errstr,
                     "error message");
        SB_CHECK_INT(0, hs.published, "events reported published");
        SB_CHECK_INT(0, seen.cnt, "event ids reported");
        SB_CHECK_INT(0, sb_testenv_count_messages(&te, "sb.in.beneficiaries"),
                     "events visible on the input topic");

        /* --skip-invalid: the rest goes out, the bad line is kept. */
        snprintf(rejects_path, sizeof(rejects_path), "%s/rejects.ndjson",
                 te.dir);
        rejects = fopen(rejects_path, "w");
        fp = fopen(path, "r");
        SB_CHECK(fp && rejects, "open");
        SB_OK_OR_FAIL(sb_holder_rights_file(h, fp, "rights.ndjson", rejects,
                                            on_event, &seen, &hs, errstr,
                                            sizeof(errstr)),
                      errstr);
        fclose(fp);
        fclose(rejects);
        SB_CHECK_INT(5, hs.lines, "non-blank lines read");
        SB_CHECK_INT(4, hs.published, "events published");
        SB_CHECK_INT(1, hs.rejected, "lines rejected");
        SB_CHECK_INT(4, sb_testenv_count_messages(&te, "sb.in.beneficiaries"),
                     "events visible on the input topic");

        /* Each published line maps to its event id, in input order. */
        SB_CHECK_INT(4, seen.cnt, "event ids reported");
        for (i = 0; i < 4; i++) {
                SB_CHECK_INT(lines[i], seen.ev[i].line, "reported line");
                SB_CHECK_INT(types[i], seen.ev[i].type, "reported type");
                SB_CHECK_INT(36, strlen(seen.ev[i].event_id),
                             "event id length");
                if (i > 0)
                        SB_CHECK(strcmp(seen.ev[i].event_id,
                                        seen.ev[i - 1].event_id),
                                 "two lines share event id %s",
                                 seen.ev[i].event_id);
        }

        rejects = fopen(rejects_path, "r");
        SB_CHECK(rejects && fgets(line, sizeof(line), rejects),
                 "rejects file empty");
        SB_CHECK(!fgets(extra, sizeof(extra), rejects),
                 "more than one rejected line");
        fclose(rejects);
        rej = json_loads(line, 0, NULL);
        SB_CHECK(rej, "rejects line is not JSON: %s", line);
        SB_CHECK_INT(5, json_integer_value(json_object_get(rej, "line")),
                     "rejected line number");
        SB_CHECK_STR(BAD_REASON,
                     json_string_value(json_object_get(rej, "reason")),
                     "rejected reason");
        SB_CHECK_STR(bad_line, json_string_value(json_object_get(rej, "input")),
                     "rejected input kept as it was");
        json_decref(rej);

        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
