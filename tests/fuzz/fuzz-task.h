/* The check behind the fuzz target, for the replay to count what each
 * input did (tests/fuzz/fuzz-task.c). */
#ifndef MT_FUZZ_TASK_H
#define MT_FUZZ_TASK_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
   MT_FUZZ_NOT_BSON = 0, /* not a valid BSON document: the parser is not asked */
   MT_FUZZ_PARSED,       /* parsed, and what the worker relies on holds */
   MT_FUZZ_REFUSED,      /* refused, with a message naming what is malformed */
} mt_fuzz_outcome_t;

/* Parses `data` as a task document and checks the outcome; aborts on any
 * other (a crash, a parse that breaks the worker's assumptions, a refusal
 * of the wrong kind). */
mt_fuzz_outcome_t mt_fuzz_task_one (const uint8_t *data, size_t size);

#endif
