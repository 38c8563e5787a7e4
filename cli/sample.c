#include "sample.h"

#include <jansson.h>
#include <stdlib.h>

static const char *sb_first[] = {"Camille", "Louis",  "Léa",  "Hugo",
                                 "Chloé",   "Nathan", "Inès", "Jules",
                                 "Manon",   "Adam",   "Zoé",  "Yanis"};
static const char *sb_last[] = {"Martin", "Bernard", "Dubois", "Thomas",
                                "Robert", "Richard", "Petit",  "Durand",
                                "Leroy",  "Moreau",  "Nguyen", "Haddad"};
static const char *sb_benefits[] = {"HOUSING_AID", "ENERGY_VOUCHER",
                                    "RENT_GUARANTEE"};
static const char *sb_postcodes[] = {"69003", "13001", "75011", "59000",
                                     "33000", "31000", "44000", "67000"};

static uint64_t sb_rand(uint64_t *s)
{
        /* xorshift64*: reproducible across platforms */
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 2685821657736338717ULL;
}

#define PICK(arr, s) arr[sb_rand(s) % (sizeof(arr) / sizeof(arr[0]))]

void sb_sample_subject_id(size_t i, char out[16])
{
        snprintf(out, 16, "BEN-%07zu", i % 10000000);
}

static void sb_sample_uuid(uint64_t *s, char out[37])
{
        uint64_t a = sb_rand(s), b = sb_rand(s);

        snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
                 (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
                 (unsigned long long)(b & 0xffffffffffffULL));
}

size_t sb_sample_write(FILE *out, size_t subjects, uint64_t seed)
{
        uint64_t s = seed ? seed : 0x9e3779b97f4a7c15ULL;
        size_t i, n = 0;
        int k;

        for (i = 0; i < subjects; i++) {
                const char *first = PICK(sb_first, &s);
                const char *last = PICK(sb_last, &s);
                char id[16], fid[37], birth[11], email[96], phone[16];
                char amount[16], opened[11], updated[32];
                int files = i % 5 == 4 ? 2 : 1;

                sb_sample_subject_id(i, id);
                snprintf(birth, sizeof(birth), "%04d-%02d-%02d",
                         1940 + (int)(sb_rand(&s) % 65),
                         1 + (int)(sb_rand(&s) % 12),
                         1 + (int)(sb_rand(&s) % 28));
                snprintf(email, sizeof(email), "user%zu@example.org", i);
                snprintf(phone, sizeof(phone), "+3361%07u",
                         (unsigned)(sb_rand(&s) % 10000000));
                for (k = 0; k < files; k++) {
                        json_t *r;
                        char *line;

                        sb_sample_uuid(&s, fid);
                        snprintf(amount, sizeof(amount), "%u.%02u",
                                 (unsigned)(50 + sb_rand(&s) % 700),
                                 (unsigned)(sb_rand(&s) % 100));
                        snprintf(opened, sizeof(opened), "20%02d-%02d-01",
                                 18 + (int)(sb_rand(&s) % 8),
                                 1 + (int)(sb_rand(&s) % 12));
                        snprintf(updated, sizeof(updated),
                                 "2026-11-%02dT%02d:%02d:00Z",
                                 1 + (int)(sb_rand(&s) % 24),
                                 (int)(sb_rand(&s) % 24),
                                 (int)(sb_rand(&s) % 60));
                        r = json_pack(
                            "{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:i, "
                            "s:s, s:s, s:i, s:s, s:s}",
                            "file_id", fid, "beneficiary_id", id, "last_name",
                            last, "first_name", first, "birth_date", birth,
                            "email", i % 3 ? json_string(email) : json_null(),
                            "phone", i % 4 ? json_string(phone) : json_null(),
                            "postcode", PICK(sb_postcodes, &s),
                            "household_size", 1 + (int)(sb_rand(&s) % 6),
                            "benefit", PICK(sb_benefits, &s), "monthly_amount",
                            amount, "income_bracket",
                            1 + (int)(sb_rand(&s) % 10), "opened_on", opened,
                            "updated_at", updated);
                        line = r ? json_dumps(r, JSON_COMPACT) : NULL;
                        if (line) {
                                fprintf(out, "%s\n", line);
                                n++;
                        }
                        free(line);
                        json_decref(r);
                }
        }
        return n;
}
