/* What the benchmark's C helpers share: the task documents mt_enqueue
 * writes, inserted in bulk, and the clocks. Not part of mtask. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <mongoc/mongoc.h>

#include <stdbool.h>
#include <stdint.h>

/* The queue and the task type every benchmark task has. */
#define BENCH_QUEUE "bench"
#define BENCH_TYPE "echo"

/* A client pool on `uri` of at most `max_size` clients. */
mongoc_client_pool_t *bench_pool_new (const char *uri, uint32_t max_size, bson_error_t *error);

/* Inserts `n` CREATED tasks of BENCH_TYPE on BENCH_QUEUE into db.tasks with
 * one bulk write, each shaped as mt_enqueue writes it with params
 * {"n": i} and no options. */
bool bench_tasks_insert (mongoc_client_t *client, const char *db, int64_t n, bson_error_t *error);

/* Seconds on the monotonic clock. */
double bench_now (void);

/* Parses a positive integer argument or exits with status 2. */
int64_t bench_arg_int (const char *what, const char *text);

/* Parses an integer argument of 0 or more or exits with status 2. */
int64_t bench_arg_count (const char *what, const char *text);

#endif
