/*
 * sharebus - synthetic records of the sample "beneficiaries" dataset
 * (schemas/beneficiaries.avsc), reproducible from a seed. Used by the demo,
 * the tests and the benchmarks; never real people.
 */
#ifndef SB_SAMPLE_H
#define SB_SAMPLE_H

#include <stdint.h>
#include <stdio.h>

/* The subject id of subject number `i` ("BEN-0000042"). */
void sb_sample_subject_id(size_t i, char out[16]);

/*
 * Writes NDJSON records for `subjects` subjects; every fifth subject has a
 * second benefit file. Returns the number of records written.
 */
size_t sb_sample_write(FILE *out, size_t subjects, uint64_t seed);

#endif
