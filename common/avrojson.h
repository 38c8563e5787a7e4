/*
 * sharebus - JSON <-> Avro values, with precise validation errors.
 *
 * Avro C ignores logical types, so conversion walks the schema's JSON
 * (jansson) alongside the Avro C value. Logical types handled:
 *   date (int)               <-> "YYYY-MM-DD"
 *   timestamp-millis (long)  <-> RFC 3339 "2026-11-25T09:42:36.123Z" (offsets
 *                                accepted on input; output always UTC "Z")
 *   decimal (bytes / fixed)  <-> JSON string "123.45" (scale from the schema,
 *                                at most `precision` digits)
 *   uuid (string)            <-> canonical 8-4-4-4-12 hex string
 * Other types: null, boolean, int, long, float, double, string, bytes (JSON
 * string, each char U+0000..U+00FF is one byte, as in Avro's JSON encoding),
 * fixed (same, exact size), enum (symbol string), array, map (JSON object),
 * record (JSON object; missing fields take the schema default when one is
 * declared, unknown fields are errors), union (a bare JSON value is matched
 * against the branches in order: null for "null", otherwise the first branch
 * that accepts it; the Avro JSON form {"type": value} is accepted too).
 *
 * Error messages name the path of the field at fault and what was expected:
 *   field 'birth_date': expected a date (YYYY-MM-DD), got "12/31/1990"
 *   field 'address.postcode': expected a string, got 75001
 *   field 'phones[2]': ...      field 'tags["x"]': ...
 *   field 'email': missing required field
 *   field 'nickname': unknown field (not in schema 'fr.gouv.beneficiary')
 */
#ifndef SB_AVROJSON_H
#define SB_AVROJSON_H

#include <avro.h>
#include <jansson.h>

#include "err.h"

typedef struct sb_avrojson_s sb_avrojson_t;

/*
 * Prepares conversion for the schema whose JSON is `schema_json` (the same
 * JSON that `schema` was parsed from). Indexes named types so references
 * resolve. Takes a reference to `schema_json` and to `schema`.
 */
sb_avrojson_t *sb_avrojson_new(json_t *schema_json, avro_schema_t schema,
                               char *errstr, size_t errstr_size);
void sb_avrojson_destroy(sb_avrojson_t *aj);

/*
 * Fills `out` (a value created from the generic class of the schema; it is
 * reset first) from the JSON value `in`. On error errstr names the field.
 */
sb_err_t sb_avrojson_from_json(sb_avrojson_t *aj, const json_t *in,
                               avro_value_t *out, char *errstr,
                               size_t errstr_size);

/*
 * Renders `in` as JSON (new reference in *outp), using the logical-type
 * string forms above, so that from_json(to_json(v)) == v.
 */
sb_err_t sb_avrojson_to_json(sb_avrojson_t *aj, avro_value_t *in, json_t **outp,
                             char *errstr, size_t errstr_size);

/*
 * Same as sb_avrojson_to_json() for one field of a record value: `field_json`
 * is the field's "type" JSON within the schema (resolved against the named
 * types of `aj`). Used by stores that write one column per field.
 */
sb_err_t sb_avrojson_field_to_json(sb_avrojson_t *aj, const json_t *field_type,
                                   avro_value_t *in, json_t **outp,
                                   char *errstr, size_t errstr_size);

#endif
