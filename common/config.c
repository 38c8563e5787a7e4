#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SB_CFG_PTR(target, f) ((char *)(target) + (f)->offset)

static sb_err_t sb_config_set(const sb_config_field_t *f, const json_t *v,
                              const char *origin, const char *prefix,
                              void *target, char *errstr, size_t errstr_size);

static sb_err_t sb_config_defaults(const sb_config_field_t *table, void *target,
                                   char *errstr, size_t errstr_size)
{
        const sb_config_field_t *f;

        for (f = table; f->name; f++) {
                void *p = SB_CFG_PTR(target, f);

                switch (f->type) {
                case SB_CFG_STRING:
                        *(char **)p = f->def ? strdup(f->def) : NULL;
                        if (f->def && !*(char **)p)
                                return sb_seterr(errstr, errstr_size,
                                                 SB_ERR_NOMEM, "out of memory");
                        break;
                case SB_CFG_INT:
                        *(long long *)p =
                            f->def ? strtoll(f->def, NULL, 10) : 0;
                        break;
                case SB_CFG_BOOL:
                        *(int *)p = f->def && !strcmp(f->def, "true");
                        break;
                case SB_CFG_STRINGS:
                case SB_CFG_PROPERTIES:
                        *(json_t **)p = NULL;
                        break;
                case SB_CFG_OBJECT:
                        if (sb_config_defaults(f->sub, p, errstr, errstr_size))
                                return SB_ERR_NOMEM;
                        break;
                }
        }
        return SB_OK;
}

static const char *sb_json_kind(const json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        default:
                return "null";
        }
}

static sb_err_t sb_config_apply_prefixed(const json_t *obj, const char *origin,
                                         const char *prefix,
                                         const sb_config_field_t *table,
                                         void *target, char *errstr,
                                         size_t errstr_size)
{
        const sb_config_field_t *f;
        const char *key;
        json_t *v;
        sb_err_t err;

        if (!json_is_object(obj))
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "config '%s': %s%sexpected an object, got %s",
                                 origin, prefix, *prefix ? ": " : "",
                                 sb_json_kind(obj));

        json_object_foreach((json_t *)obj, key, v)
        {
                for (f = table; f->name; f++)
                        if (!strcmp(f->name, key))
                                break;
                if (!f->name)
                        return sb_seterr(
                            errstr, errstr_size, SB_ERR_CONFIG,
                            "config '%s': unknown key '%s%s' (see "
                            "docs/configuration.md for the keys of this file)",
                            origin, prefix, key);
                err = sb_config_set(f, v, origin, prefix, target, errstr,
                                    errstr_size);
                if (err)
                        return err;
        }

        for (f = table; f->name; f++) {
                if (f->required && !json_object_get(obj, f->name))
                        return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                         "config '%s': missing required key "
                                         "'%s%s'",
                                         origin, prefix, f->name);
        }
        return SB_OK;
}

static sb_err_t sb_config_set(const sb_config_field_t *f, const json_t *v,
                              const char *origin, const char *prefix,
                              void *target, char *errstr, size_t errstr_size)
{
        void *p = SB_CFG_PTR(target, f);
        char sub_prefix[256];
        const char *k;
        json_t *item;
        size_t i;

        switch (f->type) {
        case SB_CFG_STRING:
                if (!json_is_string(v))
                        goto wrong_type;
                free(*(char **)p);
                *(char **)p = strdup(json_string_value(v));
                if (!*(char **)p)
                        return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                         "out of memory");
                return SB_OK;
        case SB_CFG_INT:
                if (!json_is_integer(v))
                        goto wrong_type;
                if (f->min != f->max && (json_integer_value(v) < f->min ||
                                         json_integer_value(v) > f->max))
                        return sb_seterr(
                            errstr, errstr_size, SB_ERR_CONFIG,
                            "config '%s': key '%s%s': %lld is out of range "
                            "[%lld, %lld]",
                            origin, prefix, f->name,
                            (long long)json_integer_value(v), f->min, f->max);
                *(long long *)p = json_integer_value(v);
                return SB_OK;
        case SB_CFG_BOOL:
                if (!json_is_boolean(v))
                        goto wrong_type;
                *(int *)p = json_is_true(v);
                return SB_OK;
        case SB_CFG_STRINGS:
                if (!json_is_array(v))
                        goto wrong_type;
                json_array_foreach(v, i, item)
                {
                        if (!json_is_string(item))
                                return sb_seterr(
                                    errstr, errstr_size, SB_ERR_CONFIG,
                                    "config '%s': key '%s%s' item %zu: "
                                    "expected a string, got %s",
                                    origin, prefix, f->name, i,
                                    sb_json_kind(item));
                }
                json_decref(*(json_t **)p);
                *(json_t **)p = json_incref((json_t *)v);
                return SB_OK;
        case SB_CFG_PROPERTIES:
                if (!json_is_object(v))
                        goto wrong_type;
                json_object_foreach((json_t *)v, k, item)
                {
                        if (!json_is_string(item))
                                return sb_seterr(
                                    errstr, errstr_size, SB_ERR_CONFIG,
                                    "config '%s': key '%s%s.%s': expected a "
                                    "string, got %s",
                                    origin, prefix, f->name, k,
                                    sb_json_kind(item));
                }
                json_decref(*(json_t **)p);
                *(json_t **)p = json_incref((json_t *)v);
                return SB_OK;
        case SB_CFG_OBJECT:
                snprintf(sub_prefix, sizeof(sub_prefix), "%s%s.", prefix,
                         f->name);
                if (!json_is_object(v))
                        goto wrong_type;
                return sb_config_apply_prefixed(v, origin, sub_prefix, f->sub,
                                                p, errstr, errstr_size);
        }

wrong_type:
        return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                         "config '%s': key '%s%s': expected %s, got %s", origin,
                         prefix, f->name,
                         f->type == SB_CFG_STRING    ? "a string"
                         : f->type == SB_CFG_INT     ? "an integer"
                         : f->type == SB_CFG_BOOL    ? "a boolean"
                         : f->type == SB_CFG_STRINGS ? "an array of strings"
                                                     : "an object",
                         sb_json_kind(v));
}

sb_err_t sb_config_apply(const json_t *obj, const char *origin,
                         const sb_config_field_t *table, void *target,
                         char *errstr, size_t errstr_size)
{
        sb_err_t err = sb_config_defaults(table, target, errstr, errstr_size);

        if (err)
                return err;
        return sb_config_apply_prefixed(obj, origin, "", table, target, errstr,
                                        errstr_size);
}

sb_err_t sb_config_load(const char *path, const sb_config_field_t *table,
                        void *target, char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *root;
        sb_err_t err;

        root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                sb_config_defaults(table, target, NULL, 0);
                if (jerr.line < 1)
                        return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                         "config '%s': %s", path, jerr.text);
                return sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                 "config '%s' line %d column %d: %s", path,
                                 jerr.line, jerr.column, jerr.text);
        }
        err = sb_config_apply(root, path, table, target, errstr, errstr_size);
        json_decref(root);
        return err;
}

void sb_config_release(const sb_config_field_t *table, void *target)
{
        const sb_config_field_t *f;

        for (f = table; f->name; f++) {
                void *p = SB_CFG_PTR(target, f);

                switch (f->type) {
                case SB_CFG_STRING:
                        free(*(char **)p);
                        *(char **)p = NULL;
                        break;
                case SB_CFG_STRINGS:
                case SB_CFG_PROPERTIES:
                        json_decref(*(json_t **)p);
                        *(json_t **)p = NULL;
                        break;
                case SB_CFG_OBJECT:
                        sb_config_release(f->sub, p);
                        break;
                default:
                        break;
                }
        }
}

static void sb_config_print_rows(FILE *fp, const char *prefix,
                                 const sb_config_field_t *table)
{
        static const char *tnames[] = {"string",       "integer", "boolean",
                                       "string array", "object",  "string map"};
        const sb_config_field_t *f;
        char sub[256];

        for (f = table; f->name; f++) {
                if (f->type == SB_CFG_OBJECT) {
                        snprintf(sub, sizeof(sub), "%s%s.", prefix, f->name);
                        fprintf(fp, "| `%s%s` | object | | | %s |\n", prefix,
                                f->name, f->desc);
                        sb_config_print_rows(fp, sub, f->sub);
                        continue;
                }
                fprintf(fp, "| `%s%s` | %s | %s | ", prefix, f->name,
                        tnames[f->type],
                        f->required ? "**required**"
                        : f->def    ? f->def
                                    : "");
                if (f->type == SB_CFG_INT && f->min != f->max)
                        fprintf(fp, "%lld – %lld", f->min, f->max);
                fprintf(fp, " | %s |\n", f->desc);
        }
}

void sb_config_print_reference(FILE *fp, const char *title,
                               const sb_config_field_t *table)
{
        fprintf(fp, "### %s\n\n", title);
        fprintf(fp, "| key | type | default | range | description |\n");
        fprintf(fp, "|---|---|---|---|---|\n");
        sb_config_print_rows(fp, "", table);
        fprintf(fp, "\n");
}
