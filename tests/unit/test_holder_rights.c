/*
 * The rights event types the holder publishes: the names `holder rights`
 * and a rights file accept, and what each type carries (docs/cli.md,
 * DESIGN.md §6). The gateway relies on this table: purposes only where a
 * purpose can be meant, a record id only on a record delete, the corrected
 * record only on a rectification.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holder.h"

#define SUBJ SB_RIGHTS_SUBJECT
#define PURP SB_RIGHTS_PURPOSES
#define AT   SB_RIGHTS_REQUESTED_AT
#define RID  SB_RIGHTS_RECORD_ID
#define REC  SB_RIGHTS_RECORD

static const struct {
        const char *name, *ce_type;
        sb_event_type_t type;
        unsigned carries, needs;
} types[] = {
    {"erasure", "sharebus.rights.erasure", SB_EV_ERASURE, SUBJ | AT, SUBJ},
    {"rectification", "sharebus.rights.rectification", SB_EV_RECTIFICATION,
     REC | SUBJ, REC},
    {"objection", "sharebus.rights.objection", SB_EV_OBJECTION,
     SUBJ | PURP | AT, SUBJ},
    {"consent-withdrawn", "sharebus.rights.consent-withdrawn",
     SB_EV_CONSENT_WITHDRAWN, SUBJ | PURP | AT, SUBJ},
    {"consent-given", "sharebus.rights.consent-given", SB_EV_CONSENT_GIVEN,
     SUBJ | PURP | AT, SUBJ},
    {"restriction", "sharebus.rights.restriction", SB_EV_RESTRICTION, SUBJ | AT,
     SUBJ},
    {"restriction-lifted", "sharebus.rights.restriction-lifted",
     SB_EV_RESTRICTION_LIFTED, SUBJ | AT, SUBJ},
    {"delete", "sharebus.record.delete", SB_EV_RECORD_DELETE, SUBJ | RID | AT,
     SUBJ | RID},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

static void short_names_and_ce_types_name_each_rights_event(void **state)
{
        size_t i;

        (void)state;
        for (i = 0; i < NTYPES; i++) {
                assert_int_equal(types[i].type,
                                 sb_holder_rights_type_parse(types[i].name));
                assert_int_equal(types[i].type,
                                 sb_holder_rights_type_parse(types[i].ce_type));
                assert_string_equal(types[i].name,
                                    sb_holder_rights_type_name(types[i].type));
        }
}

static void record_upserts_and_unknown_names_are_not_rights_events(void **state)
{
        static const char *names[] = {
            "upsert",  "sharebus.record.upsert", "forget",        "",
            "Erasure", "record.delete",          "rights.erasure"};
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                assert_int_equal(SB_EV_UNKNOWN,
                                 sb_holder_rights_type_parse(names[i]));
        assert_null(sb_holder_rights_type_name(SB_EV_RECORD_UPSERT));
        assert_null(sb_holder_rights_type_name(SB_EV_UNKNOWN));
        assert_int_equal(0, sb_holder_rights_carries(SB_EV_RECORD_UPSERT));
        assert_int_equal(0, sb_holder_rights_carries(SB_EV_UNKNOWN));
}

static void each_type_carries_and_needs_what_the_gateway_reads(void **state)
{
        size_t i;

        (void)state;
        for (i = 0; i < NTYPES; i++) {
                assert_int_equal(types[i].carries,
                                 sb_holder_rights_carries(types[i].type));
                assert_int_equal(types[i].needs,
                                 sb_holder_rights_requires(types[i].type));
        }
}

/* --help and the messages list every type, in the table's order. */
static void type_list_for_messages_names_every_type(void **state)
{
        char expected[512] = "";
        size_t i;

        (void)state;
        for (i = 0; i < NTYPES; i++) {
                if (i)
                        strcat(expected, ", ");
                strcat(expected, types[i].name);
        }
        assert_string_equal(expected, sb_holder_rights_type_names());
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(short_names_and_ce_types_name_each_rights_event),
            cmocka_unit_test(
                record_upserts_and_unknown_names_are_not_rights_events),
            cmocka_unit_test(
                each_type_carries_and_needs_what_the_gateway_reads),
            cmocka_unit_test(type_list_for_messages_names_every_type),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
