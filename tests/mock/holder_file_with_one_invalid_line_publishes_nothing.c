/*
 * R3.5-07: the holder validates before publishing, and a file is published
 * all or nothing. One invalid line in the middle of a file publishes
 * nothing (the transaction is aborted, so even a read_committed consumer
 * that already fetched the first lines sees none), and the error names the
 * file, the line and the field. With a rejects file, the valid lines are
 * published and the invalid one is kept with its reason.
 */
#include "sample.h"
#include "testutil.h"

int main(void)
{
        char errstr[1024], *text = NULL, bad_line[1024];
        const char *path;
        sb_holder_stats_t hs;
        sb_holder_t *h;
        sb_testenv_t te;
        size_t len = 0, n;
        json_t *rej;
        FILE *mem, *fp, *rejects;
        char rejects_path[400], expected[1200], line[4096];

        sb_testenv_init(&te);

        /* 10 valid lines, the 6th made invalid by a US-style date. */
        mem = open_memstream(&text, &len);
        n = sb_sample_write(mem, 10, 3);
        fclose(mem);
        SB_CHECK(n >= 10, "sample");
        {
                char *p = text, *out = malloc(len + 64), *o = out;
                size_t lineno = 0;

                while (*p) {
                        char *eol = strchr(p, '\n');
                        size_t l = (size_t)(eol - p) + 1;

                        lineno++;
                        if (lineno == 6) {
                                json_t *r = json_loadb(p, l, 0, NULL);
                                char *s;

                                json_object_set_new(r, "birth_date",
                                                    json_string("12/31/1990"));
                                s = json_dumps(r, JSON_COMPACT);
                                o += sprintf(o, "%s\n", s);
                                snprintf(bad_line, sizeof(bad_line), "%s", s);
                                free(s);
                                json_decref(r);
                        } else {
                                memcpy(o, p, l);
                                o += l;
                        }
                        p += l;
                }
                *o = '\0';
                path = sb_testenv_file(&te, "patients.ndjson", out);
                free(out);
        }

        h = sb_holder_new(&te.holder_cfg, "beneficiaries", errstr,
                          sizeof(errstr));
        SB_CHECK(h, "holder: %s", errstr);

        fp = fopen(path, "r");
        SB_CHECK(fp, "open");
        SB_CHECK_INT(SB_ERR_VALIDATION,
                     sb_holder_publish(h, fp, "patients.ndjson", NULL, &hs,
                                       errstr, sizeof(errstr)),
                     "publish of a file with one invalid line");
        fclose(fp);
        SB_CHECK_STR("holder: 'patients.ndjson' line 6: field 'birth_date': "
                     "expected a date (YYYY-MM-DD), got \"12/31/1990\"",
                     errstr, "error message");
        SB_CHECK_INT(0, hs.published, "records reported published");
        SB_CHECK_INT(0, sb_testenv_count_messages(&te, "sb.in.beneficiaries"),
                     "records visible on the input topic");

        /* --skip-invalid: the rest goes out, the bad line is kept. */
        snprintf(rejects_path, sizeof(rejects_path), "%s/rejects.ndjson",
                 te.dir);
        rejects = fopen(rejects_path, "w");
        fp = fopen(path, "r");
        SB_CHECK(fp && rejects, "open");
        SB_OK_OR_FAIL(sb_holder_publish(h, fp, "patients.ndjson", rejects, &hs,
                                        errstr, sizeof(errstr)),
                      errstr);
        fclose(fp);
        fclose(rejects);
        SB_CHECK_INT(n - 1, hs.published, "records published");
        SB_CHECK_INT(1, hs.rejected, "lines rejected");
        SB_CHECK_INT(n - 1,
                     sb_testenv_count_messages(&te, "sb.in.beneficiaries"),
                     "records visible on the input topic");

        rejects = fopen(rejects_path, "r");
        SB_CHECK(rejects && fgets(line, sizeof(line), rejects),
                 "rejects file empty");
        SB_CHECK(!fgets(expected, sizeof(expected), rejects),
                 "more than one rejected line");
        fclose(rejects);
        rej = json_loads(line, 0, NULL);
        SB_CHECK(rej, "rejects line is not JSON: %s", line);
        SB_CHECK_INT(6, json_integer_value(json_object_get(rej, "line")),
                     "rejected line number");
        SB_CHECK_STR("field 'birth_date': expected a date (YYYY-MM-DD), got "
                     "\"12/31/1990\"",
                     json_string_value(json_object_get(rej, "reason")),
                     "rejected reason");
        SB_CHECK_STR(bad_line, json_string_value(json_object_get(rej, "input")),
                     "rejected input kept as it was");
        json_decref(rej);

        free(text);
        sb_holder_destroy(h);
        sb_testenv_release(&te);
        return 0;
}
