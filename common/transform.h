/*
 * sharebus - per-field transforms of a grant: the minimisation engine
 * (DESIGN.md §5; CNIL R1.0-02, R3.5-02, R3.5-08).
 *
 * A grant maps each dataset field it names to a transform:
 *   "keep", "drop"
 *   {"generalise": "year"|"month"}     date, timestamp-millis -> int, string
 *   {"generalise": {"bucket": W}}      int, long, float, double, decimal
 *                                      -> lower bound of the width-W bucket
 *   {"truncate": N}                    string -> first N code points
 *   {"round": N}                       float, double -> double, N decimals
 *   {"pseudonymise": true}             string -> keyed BLAKE2b, 32 hex chars
 * A nullable field (a union of null and one of these types) stays nullable:
 * null passes through, other values are transformed.
 *
 * sb_transform_parse() validates a transform against the field's type when
 * a grant is loaded, so sb_transform_apply() - run for every record and
 * every grant - only reads, computes and writes: no name lookups, and no
 * allocation beyond Avro C's own, except for a truncated prefix longer than
 * SB_TRANSFORM_STACKBUF bytes.
 */
#ifndef SB_TRANSFORM_H
#define SB_TRANSFORM_H

#include <avro.h>
#include <jansson.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

/* Bytes of a truncated string copied on the stack before malloc(). */
#define SB_TRANSFORM_STACKBUF 512
/* Bounds of {"round": N}. */
#define SB_ROUND_MAX_DECIMALS 10
/* Widest decimal a bucket can take: its unscaled values fit an int64. */
#define SB_BUCKET_MAX_DECIMAL_PRECISION 18

typedef enum sb_transform_op_e {
        SB_TR_DROP,
        SB_TR_KEEP,
        SB_TR_YEAR,
        SB_TR_MONTH,
        SB_TR_BUCKET,
        SB_TR_TRUNCATE,
        SB_TR_ROUND,
        SB_TR_PSEUDONYMISE
} sb_transform_op_t;

/* What a transform reads: the field's type, or its non-null branch. */
typedef enum sb_transform_src_e {
        SB_SRC_OTHER,
        SB_SRC_INT,
        SB_SRC_LONG,
        SB_SRC_FLOAT,
        SB_SRC_DOUBLE,
        SB_SRC_STRING, /* including logicalType uuid */
        SB_SRC_DATE,   /* int, days since 1970-01-01 */
        SB_SRC_TS_MILLIS,
        SB_SRC_DECIMAL /* bytes */
} sb_transform_src_t;

/* A validated transform: plain data, nothing to release. */
typedef struct sb_transform_s {
        sb_transform_op_t op;
        sb_transform_src_t src;
        int nullable;    /* the field is a union of null and `src` */
        int null_branch; /* index of null in that union (0 or 1) */
        int64_t n;       /* truncate: code points; round: decimals */
        int64_t iwidth;  /* bucket on int, long; decimal: unscaled width;
                          * float, double: width * pow10, or 0 when the
                          * width is no decimal of at most 15 places */
        double width;    /* bucket width as granted */
        int width_whole; /* the granted width is a whole number */
        double pow10;    /* round: 10^n; bucket on float, double: the
                          * power of ten that makes the width whole */
        int precision;   /* decimal source */
        int scale;       /* decimal source */
        int64_t dec_max; /* decimal source: 10^precision - 1 */
} sb_transform_t;

/*
 * Validates `spec`, the value of "fields.<name>" in a grant, against
 * `field`, the dataset schema's JSON object for that field, and fills *tr.
 * Messages start with `what`, e.g. "grant 'g.json': key 'fields.postcode'".
 * It does not decide whether the field may be shared at all (the subject
 * id, reserved names): the caller does.
 */
sb_err_t sb_transform_parse(sb_transform_t *tr, const json_t *spec,
                            const json_t *field, const char *what, char *errstr,
                            size_t errstr_size);

/*
 * The transform as a grant writes it, normalised (new reference): what the
 * output field records in its "sb.transform" attribute.
 */
json_t *sb_transform_json(const sb_transform_t *tr);

/*
 * The output schema's definition of a field transformed by `tr` (not keep
 * or drop), from the dataset's definition `field` (new reference, NULL if
 * out of memory): the transformed type, a doc saying what was done,
 * "sb.transform", and the other attributes of `field` (pii, ...) except
 * "example" and a default the new type could not hold.
 */
json_t *sb_transform_field(const sb_transform_t *tr, const json_t *field);

/*
 * Writes the transform of `src`, a value of the dataset field, into `dst`,
 * a value of the output field. `ps` is needed by pseudonymise only. Values
 * a schema declares but whose transform does not fit the output type are
 * clamped (the lowest int bucket, a decimal beyond its precision), never
 * refused, so one record cannot stop the stream.
 */
sb_err_t sb_transform_apply(const sb_transform_t *tr,
                            const sb_pseudonymiser_t *ps, avro_value_t *src,
                            avro_value_t *dst, char *errstr,
                            size_t errstr_size);

#endif
