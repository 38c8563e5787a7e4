/*
 * sharebus - schema catalog and Avro single-object encoding.
 *
 * Schemas live in schemas/ as .avsc files. A dataset schema names, as
 * top-level attributes, its dataset ("sb.dataset"), the field holding the
 * subject id ("sb.subject") and the field identifying a record
 * ("sb.record_id"). Values travel in Avro's single-object encoding:
 * C3 01, the CRC-64-AVRO fingerprint of the Parsing Canonical Form
 * (little-endian), then the Avro binary payload.
 *
 * A dataset may have several versions, one schema file each, told apart by
 * a top-level "sb.version" (a whole number, 1 when absent) and keeping the
 * record's full name. The oldest version in the catalog is the dataset's
 * reader schema: grants are validated against it and every record, written
 * with any version, is read as a value of it (Avro schema resolution:
 * fields the writer lacks take the reader's default, fields the reader
 * lacks are skipped). A version that cannot be read that way is refused
 * when the catalog loads.
 */
#ifndef SB_SCHEMA_H
#define SB_SCHEMA_H

#include <avro.h>
#include <jansson.h>
#include <stdint.h>

#include "avrojson.h"
#include "err.h"

#define SB_SOE_HEADER_LEN 10

/* A growable byte buffer. */
typedef struct sb_buf_s {
        char *data;
        size_t len, cap;
} sb_buf_t;

sb_err_t sb_buf_reserve(sb_buf_t *b, size_t cap);
void sb_buf_release(sb_buf_t *b);

/*
 * Types a dataset's event time field ("sb.event_time": when the fact the
 * record states happened, used for the grants' history_days) may have.
 */
#define SB_EVENT_TIME_MILLIS 1 /* long, timestamp-millis */
#define SB_EVENT_TIME_MICROS 2 /* long, timestamp-micros */
#define SB_EVENT_TIME_DATE   3 /* int, date (days since the epoch) */

typedef struct sb_schema_s {
        char *origin;           /* file it came from, for messages */
        char *fullname;         /* e.g. fr.example.social.Beneficiary */
        char *dataset;          /* "sb.dataset", or NULL */
        char *subject_field;    /* "sb.subject", or NULL */
        char *record_id_field;  /* "sb.record_id", or NULL */
        char *event_time_field; /* "sb.event_time", or NULL */
        char *reliability;      /* "sb.reliability", or NULL */
        int event_time_unit;    /* SB_EVENT_TIME_* of that field */
        int version;            /* "sb.version", 1 when absent */
        json_t *json;           /* the schema as written */
        char *canonical;        /* Parsing Canonical Form */
        uint64_t fingerprint;   /* CRC-64-AVRO of canonical */
        avro_schema_t avro;
        avro_value_iface_t *iface; /* generic class */
        sb_avrojson_t *aj;
} sb_schema_t;

/*
 * Builds a schema from its JSON (takes a reference to `json`). `origin`
 * names it in error messages. Dataset attributes, if present, must name
 * existing string fields.
 */
sb_schema_t *sb_schema_new(json_t *json, const char *origin, char *errstr,
                           size_t errstr_size);
sb_schema_t *sb_schema_load(const char *path, char *errstr, size_t errstr_size);
void sb_schema_destroy(sb_schema_t *s);

/* A fresh, empty value of the schema (caller avro_value_decref()s it). */
sb_err_t sb_schema_value_new(const sb_schema_t *s, avro_value_t *v,
                             char *errstr, size_t errstr_size);

/*
 * The event time of a decoded record of dataset schema `s`, in ms since
 * the epoch. Returns 0 when the schema names no event time field (or, for
 * a nullable one, the record has none).
 */
int sb_schema_event_time(const sb_schema_t *s, avro_value_t *rec, int64_t *msp);

/* The JSON object of the top-level field `name`, or NULL. */
const json_t *sb_schema_field(const sb_schema_t *s, const char *name);

/*
 * Single-object encoding of `v` into `out` (replacing its contents).
 */
sb_err_t sb_schema_encode(const sb_schema_t *s, avro_value_t *v, sb_buf_t *out,
                          char *errstr, size_t errstr_size);

/* Reads the fingerprint of a single-object encoded buffer. */
sb_err_t sb_soe_fingerprint(const void *buf, size_t len, uint64_t *fpp,
                            char *errstr, size_t errstr_size);

/*
 * Decodes a single-object encoded buffer written with schema `s` into `v`
 * (a value of `s`). Refuses a buffer whose fingerprint is not s's, and a
 * payload with trailing bytes.
 */
sb_err_t sb_schema_decode(const sb_schema_t *s, const void *buf, size_t len,
                          avro_value_t *v, char *errstr, size_t errstr_size);

/* The catalog: every .avsc file of a directory. */
typedef struct sb_catalog_s sb_catalog_t;

sb_catalog_t *sb_catalog_load(const char *dir, char *errstr,
                              size_t errstr_size);
void sb_catalog_destroy(sb_catalog_t *cat);
/* The reader schema of `dataset`: its oldest version in the catalog. */
const sb_schema_t *sb_catalog_dataset(const sb_catalog_t *cat,
                                      const char *dataset);
/*
 * The version of `reader`'s dataset whose fingerprint is `fp` (`reader`
 * itself included), or NULL when the catalog knows no such version.
 */
const sb_schema_t *sb_catalog_version(const sb_catalog_t *cat,
                                      const sb_schema_t *reader, uint64_t fp);
/*
 * Decodes a single-object encoded buffer written with `writer`, a version
 * of `reader`'s dataset (sb_catalog_version()), into `v`, a value of
 * `reader`. Refuses what sb_schema_decode() refuses. Not thread-safe: the
 * catalog keeps one scratch value per version.
 */
sb_err_t sb_catalog_decode(const sb_catalog_t *cat, const sb_schema_t *writer,
                           const sb_schema_t *reader, const void *buf,
                           size_t len, avro_value_t *v, char *errstr,
                           size_t errstr_size);
const sb_schema_t *sb_catalog_by_name(const sb_catalog_t *cat,
                                      const char *fullname);
const sb_schema_t *sb_catalog_by_fingerprint(const sb_catalog_t *cat,
                                             uint64_t fp);

/* Full name of the rights event schema (schemas/rights.avsc). */
#define SB_RIGHTS_SCHEMA "eu.sharebus.RightsEvent"
/* Full name of the receipt schema (schemas/receipt.avsc). */
#define SB_RECEIPT_SCHEMA "eu.sharebus.Receipt"

#endif
