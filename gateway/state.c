#include "state.h"

#include <stdlib.h>
#include <string.h>

struct sb_state_s {
        json_t *subjects; /* subject id -> state object */
        json_t *journal;  /* subject id -> state before the txn, or null */
};

sb_state_t *sb_state_new(void)
{
        sb_state_t *st = calloc(1, sizeof(*st));

        if (!st)
                return NULL;
        st->subjects = json_object();
        st->journal = json_object();
        if (!st->subjects || !st->journal) {
                sb_state_destroy(st);
                return NULL;
        }
        return st;
}

void sb_state_destroy(sb_state_t *st)
{
        if (!st)
                return;
        json_decref(st->subjects);
        json_decref(st->journal);
        free(st);
}

json_t *sb_state_get(sb_state_t *st, const char *subject)
{
        return json_object_get(st->subjects, subject);
}

json_t *sb_state_touch(sb_state_t *st, const char *subject, int32_t partition)
{
        json_t *s = json_object_get(st->subjects, subject);

        if (!json_object_get(st->journal, subject)) {
                json_t *prev = s ? json_deep_copy(s) : json_null();

                if (!prev || json_object_set_new(st->journal, subject, prev))
                        return NULL;
        }
        if (!s) {
                s = json_pack("{s:I}", "p", (json_int_t)partition);
                if (!s || json_object_set_new(st->subjects, subject, s))
                        return NULL;
        }
        return s;
}

/* 1 if `list` names "*" or one of `purposes`. */
static int sb_state_hits(const json_t *list, const json_t *purposes)
{
        const json_t *x, *p;
        size_t i, j;

        json_array_foreach(list, i, x)
        {
                if (!strcmp(json_string_value(x), "*"))
                        return 1;
                json_array_foreach(purposes, j,
                                   p) if (json_equal(x, p)) return 1;
        }
        return 0;
}

int sb_state_objected(const json_t *s, const json_t *grant_purposes)
{
        return s && (sb_state_hits(json_object_get(s, "o"), grant_purposes) ||
                     sb_state_hits(json_object_get(s, "w"), grant_purposes));
}

int sb_state_in_list(const json_t *s, const char *list,
                     const json_t *grant_purposes)
{
        return s && sb_state_hits(json_object_get(s, list), grant_purposes);
}

int sb_state_blocks(const json_t *s, const json_t *grant_purposes)
{
        return sb_state_restricted(s) || sb_state_objected(s, grant_purposes);
}

int sb_state_restricted(const json_t *s)
{
        return s && json_is_true(json_object_get(s, "r"));
}

json_t *sb_state_received(const json_t *s, const char *reuser)
{
        return s ? json_object_get(json_object_get(s, "d"), reuser) : NULL;
}

int sb_state_add_delivery(json_t *s, const char *reuser, const char *record_id)
{
        json_t *d = json_object_get(s, "d"), *r;

        if (!d && json_object_set_new(s, "d", d = json_object()))
                return -1;
        r = json_object_get(d, reuser);
        if (!r && json_object_set_new(d, reuser, r = json_object()))
                return -1;
        return json_object_set_new(r, record_id, json_integer(1));
}

void sb_state_forget_reuser(json_t *s, const char *reuser)
{
        json_t *d = json_object_get(s, "d");

        json_object_del(d, reuser);
        if (d && json_object_size(d) == 0)
                json_object_del(s, "d");
}

int sb_state_add_purposes(json_t *s, const char *list, const json_t *purposes)
{
        json_t *l = json_object_get(s, list), *p;
        size_t i, j;

        if (!l && json_object_set_new(s, list, l = json_array()))
                return -1;
        if (json_array_size(purposes) == 0) {
                json_array_clear(l);
                return json_array_append_new(l, json_string("*"));
        }
        json_array_foreach(purposes, i, p)
        {
                const json_t *x;
                int seen = 0;

                json_array_foreach(l, j, x) seen |= json_equal(x, p);
                if (!seen && json_array_append(l, p))
                        return -1;
        }
        return 0;
}

void sb_state_remove_purposes(json_t *s, const char *list,
                              const json_t *purposes)
{
        json_t *l = json_object_get(s, list), *p;
        size_t i, j;

        if (!l)
                return;
        if (json_array_size(purposes) == 0)
                json_array_clear(l);
        json_array_foreach(purposes, i, p)
        {
                for (j = 0; j < json_array_size(l);) {
                        if (json_equal(json_array_get(l, j), p))
                                json_array_remove(l, j);
                        else
                                j++;
                }
        }
        if (json_array_size(l) == 0)
                json_object_del(s, list);
}

void sb_state_set_restricted(json_t *s, int on)
{
        if (on)
                json_object_set_new(s, "r", json_true());
        else
                json_object_del(s, "r");
}

/* Nothing left to remember: no delivery, objection, withdrawal, mark. */
static int sb_state_empty(const json_t *s)
{
        return !s || (json_object_size(json_object_get(s, "d")) == 0 &&
                      json_array_size(json_object_get(s, "o")) == 0 &&
                      json_array_size(json_object_get(s, "w")) == 0 &&
                      !sb_state_restricted(s));
}

static int32_t sb_state_partition(const json_t *s)
{
        return (int32_t)json_integer_value(json_object_get(s, "p"));
}

int sb_state_changes(sb_state_t *st, sb_state_change_cb *fn, void *opaque)
{
        const char *subject;
        json_t *prev;
        int r;

        json_object_foreach(st->journal, subject, prev)
        {
                json_t *s = json_object_get(st->subjects, subject);
                int32_t p = sb_state_partition(s ? s : prev);
                char *v;

                if (sb_state_empty(s)) {
                        if (json_is_null(prev) || !prev) {
                                /* Created and emptied in one transaction:
                                 * nothing was ever written. */
                                continue;
                        }
                        r = fn(subject, p, NULL, 0, opaque);
                } else {
                        v = json_dumps(s, JSON_COMPACT);
                        if (!v)
                                return -1;
                        r = fn(subject, p, v, strlen(v), opaque);
                        free(v);
                }
                if (r)
                        return r;
        }
        return 0;
}

void sb_state_commit(sb_state_t *st)
{
        const char *subject;
        json_t *prev;

        json_object_foreach(st->journal, subject, prev)
        {
                if (sb_state_empty(json_object_get(st->subjects, subject)))
                        json_object_del(st->subjects, subject);
        }
        json_object_clear(st->journal);
}

void sb_state_rollback(sb_state_t *st)
{
        const char *subject;
        json_t *prev;

        json_object_foreach(st->journal, subject, prev)
        {
                if (json_is_null(prev))
                        json_object_del(st->subjects, subject);
                else
                        json_object_set(st->subjects, subject, prev);
        }
        json_object_clear(st->journal);
}

/* Checks the shape of a restored state: nothing else is ever written. */
static int sb_state_valid(const json_t *s)
{
        const char *k;
        json_t *v, *x;
        size_t i;

        if (!json_is_object(s))
                return 0;
        json_object_foreach((json_t *)s, k, v)
        {
                if (!strcmp(k, "p") && json_is_integer(v))
                        continue;
                if (!strcmp(k, "r") && json_is_boolean(v))
                        continue;
                if (!strcmp(k, "d") && json_is_object(v)) {
                        const char *reuser;
                        json_t *rids;

                        json_object_foreach(
                            v, reuser,
                            rids) if (!json_is_object(rids)) return 0;
                        continue;
                }
                if ((!strcmp(k, "o") || !strcmp(k, "w")) && json_is_array(v)) {
                        json_array_foreach(v, i,
                                           x) if (!json_is_string(x)) return 0;
                        continue;
                }
                return 0;
        }
        return 1;
}

sb_err_t sb_state_load(sb_state_t *st, const char *subject, int32_t partition,
                       const void *value, size_t len, char *errstr,
                       size_t errstr_size)
{
        json_error_t jerr;
        json_t *s;

        if (!value) {
                json_object_del(st->subjects, subject);
                return SB_OK;
        }
        s = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!s)
                return sb_seterr(errstr, errstr_size, SB_ERR_STATE,
                                 "state of subject '%s' in partition %d: "
                                 "not JSON: %s",
                                 subject, (int)partition, jerr.text);
        if (!sb_state_valid(s)) {
                json_decref(s);
                return sb_seterr(errstr, errstr_size, SB_ERR_STATE,
                                 "state of subject '%s' in partition %d: "
                                 "unexpected shape",
                                 subject, (int)partition);
        }
        json_object_set_new(s, "p", json_integer(partition));
        if (json_object_set_new(st->subjects, subject, s))
                return sb_seterr(errstr, errstr_size, SB_ERR_NOMEM,
                                 "out of memory");
        return SB_OK;
}

void sb_state_drop_partition(sb_state_t *st, int32_t partition)
{
        const char *subject;
        json_t *s;
        void *tmp;

        json_object_foreach_safe(st->subjects, tmp, subject, s)
        {
                if (partition < 0 || sb_state_partition(s) == partition)
                        json_object_del(st->subjects, subject);
        }
}

size_t sb_state_size(const sb_state_t *st)
{
        return json_object_size(st->subjects);
}
