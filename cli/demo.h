/*
 * sharebus - `sharebus demo`: the whole flow on an in-process mock
 * cluster. Holder -> gateway -> reusers, then an erasure; checks that the
 * erasure reached every reuser that had the subject and that no reuser
 * stored a field its grant does not name.
 */
#ifndef SB_DEMO_H
#define SB_DEMO_H

#include <stdio.h>

typedef struct sb_demo_opts_s {
        size_t subjects;
        const char *schemas_dir;
        const char *grants_dir;
        const char *workdir; /* NULL: a fresh temporary directory */
        FILE *out;           /* the summary */
} sb_demo_opts_t;

/* Returns 0 when every check passed, 1 when one failed, 2 on error. */
int sb_demo_run(const sb_demo_opts_t *opts);

#endif
