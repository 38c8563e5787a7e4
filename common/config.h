/*
 * sharebus - strict JSON configuration files driven by declarative tables.
 *
 * Each config file kind (holder, gateway, reuser) declares one table of
 * sb_config_field_t: name, type, default, bounds, description. Loading is
 * strict: unknown keys, wrong types and out-of-range values are errors that
 * name the file and the key. The same table prints the reference docs.
 */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

typedef enum {
        SB_CFG_STRING,     /* char *, strdup'ed */
        SB_CFG_INT,        /* long long */
        SB_CFG_BOOL,       /* int */
        SB_CFG_STRINGS,    /* json_t * array of strings (new reference) */
        SB_CFG_OBJECT,     /* nested table: `sub` describes it */
        SB_CFG_PROPERTIES, /* json_t * object of string values (reference) */
} sb_config_type_t;

typedef struct sb_config_field_s {
        const char *name;
        sb_config_type_t type;
        size_t offset; /* offsetof() into the target struct */
        int required;
        const char *def; /* default as text (STRING, INT, BOOL); NULL: none */
        long long min, max; /* INT bounds (ignored when min == max) */
        const struct sb_config_field_s *sub; /* OBJECT: nested table */
        const char *desc;
} sb_config_field_t;

/*
 * Loads `path` into `target` following `table` (terminated by a NULL name).
 * Defaults are applied first. On error `target` may be partly filled: call
 * sb_config_release() in every case.
 */
sb_err_t sb_config_load(const char *path, const sb_config_field_t *table,
                        void *target, char *errstr, size_t errstr_size);

/* Same from an already parsed object; `origin` names it in errors. */
sb_err_t sb_config_apply(const json_t *obj, const char *origin,
                         const sb_config_field_t *table, void *target,
                         char *errstr, size_t errstr_size);

/* Frees what sb_config_load() allocated in `target`. */
void sb_config_release(const sb_config_field_t *table, void *target);

/* Prints the reference documentation of `table` as a Markdown table. */
void sb_config_print_reference(FILE *fp, const char *title,
                               const sb_config_field_t *table);

#endif
