/*
 * sharebus - Avro Parsing Canonical Form and CRC-64-AVRO fingerprints.
 *
 * Avro C has neither; both follow the Avro specification ("Parsing Canonical
 * Form for Schemas" and "Schema Fingerprints") and are tested against the
 * Avro project's published vectors (tests/data/avro-schema-fingerprints.txt).
 */
#ifndef SB_FINGERPRINT_H
#define SB_FINGERPRINT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* CRC-64-AVRO (Rabin) fingerprint of `len` bytes at `buf`. */
uint64_t sb_crc64_avro(const void *buf, size_t len);

/*
 * Parsing Canonical Form of `schema` (parsed JSON). On success *canonp is a
 * NUL-terminated string the caller must free(). Names are made full names
 * with the enclosing namespace, attributes not in the canonical set (doc,
 * aliases, default, custom attributes such as "pii") are stripped.
 */
sb_err_t sb_schema_canonical(const json_t *schema, char **canonp, char *errstr,
                             size_t errstr_size);

/* Same as sb_schema_canonical() from JSON text. */
sb_err_t sb_schema_canonical_str(const char *json_text, char **canonp,
                                 char *errstr, size_t errstr_size);

#endif
