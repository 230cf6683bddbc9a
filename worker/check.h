/* mtask-worker --check: what a start would do up to the first claim. */
#ifndef MTASK_WORKER_CHECK_H
#define MTASK_WORKER_CHECK_H

#include "cli.h"

/* Connects, checks the collections and indexes (mt_worker_check), and
 * prints to stdout what `worker` would serve. Returns the exit status: 0
 * when the worker could start; else 1, with the reason in `why`. */
int mt_check_run (mt_worker_t *worker, const mt_cli_t *cli, const char *db, char *why, size_t why_size);

#endif
