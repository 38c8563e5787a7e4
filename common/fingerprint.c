/*
 * sharebus - Avro Parsing Canonical Form and CRC-64-AVRO fingerprints.
 *
 * Follows the Avro specification, "Parsing Canonical Form for Schemas" and
 * "Schema Fingerprints". Name resolution follows the Java reference
 * implementation, which the published vectors were generated with: a short
 * reference is looked up in the enclosing namespace, then in the null
 * namespace; a reference to a name not (yet) defined is kept as the full name
 * it would have in the enclosing namespace.
 *
 * Names, field names and enum symbols are checked against the spec's
 * [A-Za-z_][A-Za-z0-9_]* rule, so every string in the canonical form is plain
 * ASCII and is written without any escape ([STRINGS]).
 */
#include "fingerprint.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fingerprint of the empty input, and the polynomial the table is built of. */
#define SB_CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

/*
 * Schemas nest only as deep as their author wrote them, but a json_t built in
 * memory has no parser depth limit: bound the recursion so that a hostile
 * schema fails instead of exhausting the stack.
 */
#define SB_SCHEMA_MAX_DEPTH 512

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_table_init(void)
{
        for (unsigned i = 0; i < 256; i++) {
                uint64_t fp = i;

                for (int j = 0; j < 8; j++)
                        fp = (fp >> 1) ^ (SB_CRC64_AVRO_EMPTY & (0 - (fp & 1)));
                crc64_table[i] = fp;
        }
}

uint64_t sb_crc64_avro(const void *buf, size_t len)
{
        const unsigned char *p = buf;
        uint64_t fp = SB_CRC64_AVRO_EMPTY;

        pthread_once(&crc64_once, crc64_table_init);
        for (size_t i = 0; i < len; i++)
                fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
        return fp;
}

/*
 * Growable output string. An allocation failure is sticky: later appends do
 * nothing and the caller checks `failed` once, which keeps the emitters
 * readable without losing the check.
 */
typedef struct strbuf_s {
        char *s;
        size_t len;
        size_t cap;
        int failed;
} strbuf_t;

static void sbuf_add(strbuf_t *b, const char *s, size_t n)
{
        if (b->failed)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 128;
                char *p;

                while (b->len + n + 1 > cap)
                        cap *= 2;
                p = realloc(b->s, cap);
                if (!p) {
                        b->failed = 1;
                        return;
                }
                b->s = p;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

static void sbuf_puts(strbuf_t *b, const char *s)
{
        sbuf_add(b, s, strlen(s));
}

/* Appends "s" quoted; s is a checked name, so it needs no escaping. */
static void sbuf_quoted(strbuf_t *b, const char *s)
{
        sbuf_add(b, "\"", 1);
        sbuf_puts(b, s);
        sbuf_add(b, "\"", 1);
}

/* Where in the schema we are, for error messages; lives on the C stack. */
typedef enum frame_kind_e {
        FRAME_RECORD,
        FRAME_FIELD,
        FRAME_ITEMS,
        FRAME_VALUES,
        FRAME_BRANCH,
} frame_kind_t;

typedef struct frame_s {
        const struct frame_s *up;
        frame_kind_t kind;
        const char *name; /* record full name or field name, may be NULL */
        size_t index;     /* field or union branch, from 0 */
} frame_t;

typedef struct canon_s {
        strbuf_t out;
        json_t *names; /* set of the full names defined so far */
        char *errstr;
        size_t errstr_size;
} canon_t;

/* snprintf at *off in e, never past its end, for building one message. */
static void errcat(char *e, size_t size, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void errcat(char *e, size_t size, size_t *off, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (*off >= size - 1)
                return;
        va_start(ap, fmt);
        n = vsnprintf(e + *off, size - *off, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        *off += (size_t)n;
        if (*off > size - 1)
                *off = size - 1;
}

/* Root first, so the path reads from the outside in. */
static void errcat_path(char *e, size_t size, size_t *off, const frame_t *fr)
{
        if (!fr)
                return;
        errcat_path(e, size, off, fr->up);
        if (fr->up)
                errcat(e, size, off, " ");
        switch (fr->kind) {
        case FRAME_RECORD:
                errcat(e, size, off, "record '%s'", fr->name);
                break;
        case FRAME_FIELD:
                errcat(e, size, off, "field %zu", fr->index);
                if (fr->name)
                        errcat(e, size, off, " ('%s')", fr->name);
                break;
        case FRAME_ITEMS:
                errcat(e, size, off, "items");
                break;
        case FRAME_VALUES:
                errcat(e, size, off, "values");
                break;
        case FRAME_BRANCH:
                errcat(e, size, off, "union branch %zu", fr->index);
                break;
        }
}

static sb_err_t fail(canon_t *c, const frame_t *fr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static sb_err_t fail(canon_t *c, const frame_t *fr, const char *fmt, ...)
{
        size_t off = 0;
        va_list ap;

        if (!c->errstr || c->errstr_size == 0)
                return SB_ERR_SCHEMA;
        c->errstr[0] = '\0';
        errcat(c->errstr, c->errstr_size, &off, "schema: ");
        errcat_path(c->errstr, c->errstr_size, &off, fr);
        if (fr)
                errcat(c->errstr, c->errstr_size, &off, ": ");
        if (off < c->errstr_size - 1) {
                va_start(ap, fmt);
                vsnprintf(c->errstr + off, c->errstr_size - off, fmt, ap);
                va_end(ap);
        }
        return SB_ERR_SCHEMA;
}

/* Names a JSON value for "got ..." in messages, without dumping it whole. */
static const char *json_kind(const json_t *j)
{
        switch (json_typeof(j)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a real number";
        case JSON_TRUE:
                return "true";
        case JSON_FALSE:
                return "false";
        case JSON_NULL:
                return "null";
        }
        return "an unknown JSON value";
}

/*
 * The C string of a JSON string, or NULL when `j` is not a string or holds a
 * NUL (which would make the C view of the name differ from the JSON one).
 */
static const char *json_cstr(const json_t *j)
{
        const char *s;

        if (!json_is_string(j))
                return NULL;
        s = json_string_value(j);
        if (strlen(s) != json_string_length(j))
                return NULL;
        return s;
}

static int is_primitive(const char *s)
{
        static const char *const primitives[] = {
            "null",  "boolean", "int",   "long",
            "float", "double",  "bytes", "string",
        };

        for (size_t i = 0; i < sizeof(primitives) / sizeof(*primitives); i++)
                if (!strcmp(s, primitives[i]))
                        return 1;
        return 0;
}

/* Complex types, which only the object form can define. */
static int is_complex_keyword(const char *s)
{
        return !strcmp(s, "record") || !strcmp(s, "enum") ||
               !strcmp(s, "fixed") || !strcmp(s, "array") ||
               !strcmp(s, "map") || !strcmp(s, "error");
}

/* [A-Za-z_][A-Za-z0-9_]* over s[0..n). */
static int name_part_ok(const char *s, size_t n)
{
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];
                int alpha = (ch >= 'A' && ch <= 'Z') ||
                            (ch >= 'a' && ch <= 'z') || ch == '_';

                if (!alpha && (i == 0 || ch < '0' || ch > '9'))
                        return 0;
        }
        return 1;
}

static int name_ok(const char *s)
{
        return name_part_ok(s, strlen(s));
}

/* Dot-separated name parts, each a valid name. */
static int fullname_ok(const char *s)
{
        const char *dot;

        while ((dot = strchr(s, '.'))) {
                if (!name_part_ok(s, (size_t)(dot - s)))
                        return 0;
                s = dot + 1;
        }
        return name_ok(s);
}

static int is_defined(const canon_t *c, const char *fullname)
{
        return json_object_get(c->names, fullname) != NULL;
}

/*
 * Full name a reference `name` stands for in namespace `ns`. Java falls back
 * to the null namespace when the enclosing one has no such name; keeping that
 * rule gives the same canonical form (and fingerprint) as Java. The result is
 * malloc()ed, or NULL when out of memory.
 */
static char *resolve_ref(const canon_t *c, const char *name, const char *ns)
{
        char *full;

        if (strchr(name, '.') || !ns || !*ns)
                return strdup(name);
        if (asprintf(&full, "%s.%s", ns, name) < 0)
                return NULL;
        if (!is_defined(c, full) && is_defined(c, name)) {
                free(full);
                return strdup(name);
        }
        return full;
}

static sb_err_t nomem(canon_t *c)
{
        return sb_seterr(c->errstr, c->errstr_size, SB_ERR_NOMEM,
                         "schema: out of memory building the canonical form");
}

static sb_err_t canon_schema(canon_t *c, const json_t *s, const char *ns,
                             const frame_t *fr, int depth);

static sb_err_t canon_ref(canon_t *c, const char *name, const char *ns,
                          const frame_t *fr)
{
        char *full;

        if (is_primitive(name)) {
                sbuf_quoted(&c->out, name);
                return SB_OK;
        }
        if (is_complex_keyword(name))
                return fail(c, fr,
                            "type '%s' needs the object form "
                            "{\"type\":\"%s\", ...}",
                            name, name);
        if (!fullname_ok(name))
                return fail(c, fr,
                            "invalid type name '%s' (each dot-separated "
                            "part must match [A-Za-z_][A-Za-z0-9_]*)",
                            name);
        full = resolve_ref(c, name, ns);
        if (!full)
                return nomem(c);
        sbuf_quoted(&c->out, full);
        free(full);
        return SB_OK;
}

/*
 * Defines the named type `s` (record, enum or fixed) in namespace `ns`: sets
 * *fullp to its full name and *nsp to the namespace its nested definitions
 * inherit ("" for the null namespace). Both are malloc()ed.
 */
static sb_err_t define_named(canon_t *c, const json_t *s, const char *kind,
                             const char *ns, const frame_t *fr, char **fullp,
                             char **nsp)
{
        const json_t *jname = json_object_get(s, "name");
        const json_t *jns = json_object_get(s, "namespace");
        const char *name, *space = ns, *lastdot, *last;
        char *full = NULL;
        sb_err_t err;
        int n;

        if (!jname)
                return fail(c, fr, "%s: missing \"name\"", kind);
        if (!(name = json_cstr(jname)))
                return fail(c, fr, "%s: \"name\" must be a string, got %s",
                            kind, json_kind(jname));
        /* Java treats "namespace": null as absent, so the enclosing one
         * applies. */
        if (jns && !json_is_null(jns)) {
                if (!(space = json_cstr(jns)))
                        return fail(c, fr,
                                    "%s '%s': \"namespace\" must be a string, "
                                    "got %s",
                                    kind, name, json_kind(jns));
        }

        if (strchr(name, '.') || !space || !*space)
                n = asprintf(&full, "%s", name);
        else
                n = asprintf(&full, "%s.%s", space, name);
        if (n < 0)
                return nomem(c);

        if (!fullname_ok(full)) {
                err = fail(c, fr,
                           "%s: invalid name '%s' (each dot-separated part "
                           "must match [A-Za-z_][A-Za-z0-9_]*)",
                           kind, full);
                goto out_full;
        }
        lastdot = strrchr(full, '.');
        last = lastdot ? lastdot + 1 : full;
        if (is_primitive(last)) {
                err = fail(c, fr,
                           "%s '%s': a primitive type name cannot be "
                           "defined",
                           kind, full);
                goto out_full;
        }
        if (is_defined(c, full)) {
                err = fail(c, fr, "%s '%s': name already defined", kind, full);
                goto out_full;
        }
        if (json_object_set_new(c->names, full, json_true()) == -1) {
                err = nomem(c);
                goto out_full;
        }
        *nsp = strndup(full, lastdot ? (size_t)(lastdot - full) : 0);
        if (!*nsp) {
                err = nomem(c);
                goto out_full;
        }
        *fullp = full;
        return SB_OK;

out_full:
        free(full);
        return err;
}

static sb_err_t canon_record(canon_t *c, const json_t *s, const char *ns,
                             const frame_t *fr, int depth)
{
        char *full = NULL, *rns = NULL;
        frame_t rec = {fr, FRAME_RECORD, NULL, 0};
        const json_t *fields;
        sb_err_t err;

        err = define_named(c, s, "record", ns, fr, &full, &rns);
        if (err)
                return err;
        rec.name = full;

        fields = json_object_get(s, "fields");
        if (!fields) {
                err = fail(c, &rec, "missing \"fields\"");
                goto out_names;
        }
        if (!json_is_array(fields)) {
                err = fail(c, &rec, "\"fields\" must be an array, got %s",
                           json_kind(fields));
                goto out_names;
        }

        sbuf_puts(&c->out, "{\"name\":");
        sbuf_quoted(&c->out, full);
        sbuf_puts(&c->out, ",\"type\":\"record\",\"fields\":[");
        for (size_t i = 0; i < json_array_size(fields); i++) {
                const json_t *f = json_array_get(fields, i);
                const json_t *jfname, *ftype;
                frame_t ffr = {&rec, FRAME_FIELD, NULL, i};
                const char *fname;

                if (!json_is_object(f)) {
                        err = fail(c, &ffr, "expected an object, got %s",
                                   json_kind(f));
                        goto out_names;
                }
                jfname = json_object_get(f, "name");
                if (!jfname) {
                        err = fail(c, &ffr, "missing \"name\"");
                        goto out_names;
                }
                if (!(fname = json_cstr(jfname))) {
                        err = fail(c, &ffr, "\"name\" must be a string, got %s",
                                   json_kind(jfname));
                        goto out_names;
                }
                ffr.name = fname;
                if (!name_ok(fname)) {
                        err = fail(c, &ffr,
                                   "invalid field name (must match "
                                   "[A-Za-z_][A-Za-z0-9_]*)");
                        goto out_names;
                }
                for (size_t j = 0; j < i; j++) {
                        const char *prev = json_cstr(
                            json_object_get(json_array_get(fields, j), "name"));

                        if (prev && !strcmp(prev, fname)) {
                                err = fail(c, &ffr,
                                           "field name already used by "
                                           "field %zu",
                                           j);
                                goto out_names;
                        }
                }
                ftype = json_object_get(f, "type");
                if (!ftype) {
                        err = fail(c, &ffr, "missing \"type\"");
                        goto out_names;
                }

                if (i > 0)
                        sbuf_add(&c->out, ",", 1);
                sbuf_puts(&c->out, "{\"name\":");
                sbuf_quoted(&c->out, fname);
                sbuf_puts(&c->out, ",\"type\":");
                err = canon_schema(c, ftype, rns, &ffr, depth + 1);
                if (err)
                        goto out_names;
                sbuf_add(&c->out, "}", 1);
        }
        sbuf_puts(&c->out, "]}");

out_names:
        free(rns);
        free(full);
        return err;
}

static sb_err_t canon_enum(canon_t *c, const json_t *s, const char *ns,
                           const frame_t *fr)
{
        char *full = NULL, *ens = NULL;
        const json_t *symbols;
        sb_err_t err;

        err = define_named(c, s, "enum", ns, fr, &full, &ens);
        if (err)
                return err;

        symbols = json_object_get(s, "symbols");
        if (!symbols) {
                err = fail(c, fr, "enum '%s': missing \"symbols\"", full);
                goto out_names;
        }
        if (!json_is_array(symbols)) {
                err = fail(c, fr,
                           "enum '%s': \"symbols\" must be an array, got %s",
                           full, json_kind(symbols));
                goto out_names;
        }

        sbuf_puts(&c->out, "{\"name\":");
        sbuf_quoted(&c->out, full);
        sbuf_puts(&c->out, ",\"type\":\"enum\",\"symbols\":[");
        for (size_t i = 0; i < json_array_size(symbols); i++) {
                const json_t *jsym = json_array_get(symbols, i);
                const char *sym = json_cstr(jsym);

                if (!sym) {
                        err = fail(c, fr,
                                   "enum '%s': symbol %zu must be a string, "
                                   "got %s",
                                   full, i, json_kind(jsym));
                        goto out_names;
                }
                if (!name_ok(sym)) {
                        err = fail(c, fr,
                                   "enum '%s': invalid symbol '%s' (must "
                                   "match [A-Za-z_][A-Za-z0-9_]*)",
                                   full, sym);
                        goto out_names;
                }
                for (size_t j = 0; j < i; j++) {
                        if (!strcmp(
                                json_string_value(json_array_get(symbols, j)),
                                sym)) {
                                err = fail(c, fr,
                                           "enum '%s': symbol '%s' appears "
                                           "twice",
                                           full, sym);
                                goto out_names;
                        }
                }
                if (i > 0)
                        sbuf_add(&c->out, ",", 1);
                sbuf_quoted(&c->out, sym);
        }
        sbuf_puts(&c->out, "]}");

out_names:
        free(ens);
        free(full);
        return err;
}

static sb_err_t canon_fixed(canon_t *c, const json_t *s, const char *ns,
                            const frame_t *fr)
{
        char *full = NULL, *fns = NULL;
        const json_t *size;
        char num[32];
        sb_err_t err;

        err = define_named(c, s, "fixed", ns, fr, &full, &fns);
        if (err)
                return err;

        size = json_object_get(s, "size");
        if (!size) {
                err = fail(c, fr, "fixed '%s': missing \"size\"", full);
                goto out_names;
        }
        if (!json_is_integer(size) || json_integer_value(size) < 0) {
                err = fail(c, fr,
                           "fixed '%s': \"size\" must be a non-negative "
                           "integer, got %s",
                           full,
                           json_is_integer(size) ? "a negative integer"
                                                 : json_kind(size));
                goto out_names;
        }

        /* [INTEGERS]: plain decimal, whatever the input spelled. */
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(size));
        sbuf_puts(&c->out, "{\"name\":");
        sbuf_quoted(&c->out, full);
        sbuf_puts(&c->out, ",\"type\":\"fixed\",\"size\":");
        sbuf_puts(&c->out, num);
        sbuf_add(&c->out, "}", 1);

out_names:
        free(fns);
        free(full);
        return err;
}

/*
 * Array or map: the element schema under `key` ("items" or "values"). Named
 * types defined in it inherit the enclosing namespace.
 */
static sb_err_t canon_container(canon_t *c, const json_t *s, const char *type,
                                const char *key, frame_kind_t kind,
                                const char *ns, const frame_t *fr, int depth)
{
        const json_t *elem = json_object_get(s, key);
        frame_t efr = {fr, kind, NULL, 0};
        sb_err_t err;

        if (!elem)
                return fail(c, fr, "%s: missing \"%s\"", type, key);
        sbuf_puts(&c->out, "{\"type\":\"");
        sbuf_puts(&c->out, type);
        sbuf_puts(&c->out, "\",\"");
        sbuf_puts(&c->out, key);
        sbuf_puts(&c->out, "\":");
        err = canon_schema(c, elem, ns, &efr, depth + 1);
        if (err)
                return err;
        sbuf_add(&c->out, "}", 1);
        return SB_OK;
}

/*
 * What makes a union branch distinct, read back from its canonical form: the
 * type name for primitives and references, the full name for named
 * definitions, "array" or "map". Sets *keyp and *lenp to a span of c->out.
 */
static void branch_key(const canon_t *c, size_t start, const char **keyp,
                       size_t *lenp)
{
        static const char named[] = "{\"name\":\"";
        static const char typed[] = "{\"type\":\"";
        const char *p = c->out.s + start;
        const char *end;

        if (*p == '"')
                p += 1;
        else if (!strncmp(p, named, sizeof(named) - 1))
                p += sizeof(named) - 1;
        else if (!strncmp(p, typed, sizeof(typed) - 1))
                p += sizeof(typed) - 1;
        end = strchr(p, '"');
        *keyp = p;
        *lenp = end ? (size_t)(end - p) : strlen(p);
}

static sb_err_t canon_union(canon_t *c, const json_t *s, const char *ns,
                            const frame_t *fr, int depth)
{
        size_t n = json_array_size(s);
        size_t *starts;
        sb_err_t err = SB_OK;

        starts = calloc(n ? n : 1, sizeof(*starts));
        if (!starts)
                return nomem(c);

        sbuf_add(&c->out, "[", 1);
        for (size_t i = 0; i < n; i++) {
                frame_t bfr = {fr, FRAME_BRANCH, NULL, i};
                const char *key;
                size_t klen;

                if (i > 0)
                        sbuf_add(&c->out, ",", 1);
                starts[i] = c->out.len;
                err =
                    canon_schema(c, json_array_get(s, i), ns, &bfr, depth + 1);
                if (err)
                        goto out_starts;
                /* The checks below read the output back. */
                if (c->out.failed) {
                        err = nomem(c);
                        goto out_starts;
                }
                if (c->out.s[starts[i]] == '[') {
                        err = fail(c, &bfr,
                                   "a union cannot directly contain a union");
                        goto out_starts;
                }
                branch_key(c, starts[i], &key, &klen);
                for (size_t j = 0; j < i; j++) {
                        const char *pkey;
                        size_t plen;

                        branch_key(c, starts[j], &pkey, &plen);
                        if (plen == klen && !memcmp(pkey, key, klen)) {
                                err = fail(c, &bfr,
                                           "type '%.*s' already in the union "
                                           "as branch %zu",
                                           (int)klen, key, j);
                                goto out_starts;
                        }
                }
        }
        sbuf_add(&c->out, "]", 1);

out_starts:
        free(starts);
        return err;
}

static sb_err_t canon_object(canon_t *c, const json_t *s, const char *ns,
                             const frame_t *fr, int depth)
{
        const json_t *jtype = json_object_get(s, "type");
        const char *type;
        char *full;

        if (!jtype)
                return fail(c, fr, "missing \"type\"");
        /* {"type": {...}} wraps a schema; the wrapper adds nothing. */
        if (json_is_object(jtype) || json_is_array(jtype))
                return canon_schema(c, jtype, ns, fr, depth + 1);
        if (!(type = json_cstr(jtype)))
                return fail(c, fr,
                            "\"type\" must be a string, object or array, "
                            "got %s",
                            json_kind(jtype));

        /* [PRIMITIVES]: everything but the type name is stripped. */
        if (is_primitive(type)) {
                sbuf_quoted(&c->out, type);
                return SB_OK;
        }
        if (!strcmp(type, "record"))
                return canon_record(c, s, ns, fr, depth);
        if (!strcmp(type, "enum"))
                return canon_enum(c, s, ns, fr);
        if (!strcmp(type, "fixed"))
                return canon_fixed(c, s, ns, fr);
        if (!strcmp(type, "array"))
                return canon_container(c, s, "array", "items", FRAME_ITEMS, ns,
                                       fr, depth);
        if (!strcmp(type, "map"))
                return canon_container(c, s, "map", "values", FRAME_VALUES, ns,
                                       fr, depth);

        /*
         * {"type":"Name"} referring to a defined type is a reference.
         * Unlike a bare string, an undefined name here is an error: it is
         * more likely a misspelt keyword (or "error", valid in protocols
         * only) than a forward reference.
         */
        if (fullname_ok(type)) {
                full = resolve_ref(c, type, ns);
                if (!full)
                        return nomem(c);
                if (is_defined(c, full)) {
                        sbuf_quoted(&c->out, full);
                        free(full);
                        return SB_OK;
                }
                free(full);
        }
        return fail(c, fr, "unknown type '%s'", type);
}

static sb_err_t canon_schema(canon_t *c, const json_t *s, const char *ns,
                             const frame_t *fr, int depth)
{
        const char *name;

        if (depth > SB_SCHEMA_MAX_DEPTH)
                return fail(c, fr, "nested more than %d levels deep",
                            SB_SCHEMA_MAX_DEPTH);
        switch (json_typeof(s)) {
        case JSON_STRING:
                if (!(name = json_cstr(s)))
                        return fail(c, fr, "type name contains a NUL");
                return canon_ref(c, name, ns, fr);
        case JSON_OBJECT:
                return canon_object(c, s, ns, fr, depth);
        case JSON_ARRAY:
                return canon_union(c, s, ns, fr, depth);
        default:
                return fail(c, fr,
                            "expected a type name, an object or an array, "
                            "got %s",
                            json_kind(s));
        }
}

sb_err_t sb_schema_canonical(const json_t *schema, char **canonp, char *errstr,
                             size_t errstr_size)
{
        canon_t c = {.errstr = errstr, .errstr_size = errstr_size};
        sb_err_t err;

        if (!canonp || !schema)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "schema: no schema or no result pointer "
                                 "given");
        *canonp = NULL;

        c.names = json_object();
        if (!c.names)
                return nomem(&c);

        err = canon_schema(&c, schema, NULL, NULL, 0);
        if (err)
                goto out_buf;
        if (c.out.failed) {
                err = nomem(&c);
                goto out_buf;
        }
        *canonp = c.out.s;
        c.out.s = NULL;

out_buf:
        free(c.out.s);
        json_decref(c.names);
        return err;
}

sb_err_t sb_schema_canonical_str(const char *json_text, char **canonp,
                                 char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *schema;
        sb_err_t err;

        if (!canonp || !json_text)
                return sb_seterr(errstr, errstr_size, SB_ERR_INVALID_ARG,
                                 "schema: no schema text or no result "
                                 "pointer given");
        *canonp = NULL;

        /* A whole schema may be a bare string such as "int": JSON_DECODE_ANY.
         * Duplicate keys would make the schema ambiguous. */
        schema = json_loads(json_text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                            &jerr);
        if (!schema)
                return sb_seterr(errstr, errstr_size, SB_ERR_SCHEMA,
                                 "schema: invalid JSON at line %d column %d: "
                                 "%s",
                                 jerr.line, jerr.column, jerr.text);
        err = sb_schema_canonical(schema, canonp, errstr, errstr_size);
        json_decref(schema);
        return err;
}
