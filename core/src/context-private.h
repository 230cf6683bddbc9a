/* The bottom layer of the core: the services every other part shares.
 *
 *   context.c    the log, the server-clock estimate, the stop flag and the
 *                waits on it, the wall clock (mt_now_ms)
 *   retry.c      the retry policy: a task's budget of attempts, the backoff
 *                between them, which errors are worth retrying
 *   failpoint.c  named points where a test build kills the process
 *   strv.c       NULL-terminated string vectors
 *
 * Nothing here calls anything else of the core. docs/architecture.md draws
 * the layers above. */
#ifndef MTASK_CONTEXT_PRIVATE_H
#define MTASK_CONTEXT_PRIVATE_H

#include <mtask/mtask.h>

#include <pthread.h>

/* ---- the context (context.c) ------------------------------------------- */

/* One per worker: who it is, where it writes, how it logs and retries, and
 * its one mutex. The worker embeds it and every feature takes it. The
 * fields above `mutex` are set before any thread starts and then only
 * read; those below are read and written under `mutex`. */
typedef struct _mt_context_t {
   char *db;
   char *worker_id;
   int64_t lease_ms;
   mt_log_func_t log_func;
   void *log_data;
   mt_log_level_t log_level;

   /* The retry policy (retry.c). */
   int32_t max_attempts;     /* a task's budget when neither it nor its plugin says */
   int64_t retry_backoff_ms; /* the wait after a first failure; doubles each time */
   char **budget_types;      /* task types whose plugin sets its own budget */
   int32_t *budget_max;      /* ... and that budget */
   size_t n_budgets;

   pthread_mutex_t mutex;
   pthread_cond_t cond; /* on CLOCK_MONOTONIC; broadcast when a flag turns */
   int64_t clock_offset_ms; /* the server's clock minus ours */
   bool stopping;           /* no new work */
   bool abandoned;          /* tasks given back while their threads still run */
} mt_context_t;

/* Initializes `ctx` with the defaults of mt_worker_config_init. */
void mt_context_init (mt_context_t *ctx);
void mt_context_cleanup (mt_context_t *ctx);

/* A line in the worker's log, when its level passes the context's. */
void mt_log (mt_context_t *ctx, mt_log_level_t level, const char *format, ...) BSON_GNUC_PRINTF (3, 4);

/* The task the calling thread runs from now on (mt_log_task reads it for
 * a log function), and its end. mt_run_task calls them. */
void mt_log_task_begin (const char *task_id, const char *type, const char *queue, int32_t attempt);
void mt_log_task_end (void);

/* Wall-clock milliseconds since the epoch, as BSON dates count them. */
int64_t mt_now_ms (void);

/* The server's clock as this worker estimates it (ms since the epoch), and
 * the estimate's update from a time the server stamped. */
int64_t mt_server_now (mt_context_t *ctx);
void mt_server_clock_set (mt_context_t *ctx, int64_t offset_ms);

/* Waits on ctx->cond until `ms` pass or `*flag` (read under the mutex)
 * turns true; returns the flag. */
bool mt_context_wait (mt_context_t *ctx, int64_t ms, const bool *flag);
/* Sets `*flag` under the mutex and wakes every waiter. */
void mt_context_raise (mt_context_t *ctx, bool *flag);
/* Reads `*flag` under the mutex. */
bool mt_context_get (mt_context_t *ctx, const bool *flag);

/* ---- the retry policy (retry.c) ---------------------------------------- */

/* Records the budget a plugin sets for its task type. */
void mt_retry_set_budget (mt_context_t *ctx, const char *type, int32_t max_attempts);

/* The retry budget of a task: its own, its plugin's, the worker's. */
int32_t mt_retry_max_attempts (const mt_context_t *ctx, const char *type, int32_t task_max);

/* The wait before the retry after attempt `attempt`, with jitter. */
int64_t mt_retry_backoff_ms (const mt_context_t *ctx, int32_t attempt);

/* Whether an error means the server could not be reached (retry later)
 * rather than that it refused the operation. */
bool mt_error_is_network (const bson_error_t *error);

/* Whether the same operation tried again later may well succeed: the
 * server could not be reached (mt_error_is_network); or it answered with
 * a code of a failover or a shutdown (NotWritablePrimary, 10107;
 * PrimarySteppedDown, 189; InterruptedDueToReplStateChange, 11602...), a
 * write concern it could not satisfy in time (64, 100; the write itself
 * was applied), or a reply labelled RetryableWriteError. `reply` (may be
 * NULL) is the operation's reply, for its labels and writeConcernError.
 * Anything else is the server refusing the operation: trying again brings
 * the same answer. */
bool mt_error_is_transient (const bson_error_t *error, const bson_t *reply);

/* ---- failpoints (failpoint.c) ------------------------------------------ */

/* Kills the process (SIGKILL) when MTASK_FAILPOINT names `name`: for the
 * tests of what a crash between two writes leaves behind. Compiled only
 * into test builds (meson option 'failpoints'); elsewhere it is nothing. */
/* Holds the calling thread when MTASK_FAILPOINT_PAUSE names `name`
 * (`name:DIR`, entries separated by commas): it creates DIR/name.reached,
 * waits until DIR/name.go exists (at most 60 s, then goes on anyway), then
 * creates DIR/name.passed; once DIR/name.go exists the point no longer
 * holds anyone. For the tests of races: a test makes another write land
 * between a read and the write that acts on it. Test builds only. */
#ifdef MT_FAILPOINTS
void mt_failpoint (const char *name);
void mt_failpoint_pause (const char *name);
#else
#define mt_failpoint(name) ((void) 0)
#define mt_failpoint_pause(name) ((void) 0)
#endif

/* Writes the coverage counters now, in a coverage build (tools/test
 * --coverage), before a process ends without exit(): _exit() in a forked
 * child, a failpoint's SIGKILL. Elsewhere it is nothing. */
#ifdef MT_COVERAGE
void __gcov_dump (void);
#define mt_coverage_flush() __gcov_dump ()
#else
#define mt_coverage_flush() ((void) 0)
#endif

/* ---- string vectors (strv.c) ------------------------------------------- */

/* A copy of a NULL-terminated vector (NULL copies as empty). */
char **mt_strv_copy (const char *const *strv);
void mt_strv_free (char **strv);
size_t mt_strv_len (char *const *strv);
bool mt_strv_contains (char *const *strv, const char *s);
/* strcmp for qsort over an array of char *. */
int mt_strcmp_ptr (const void *a, const void *b);
/* A BSON array of the strings. Initializes `array`. */
void mt_strv_to_array (char *const *strv, bson_t *array);

#endif /* MTASK_CONTEXT_PRIVATE_H */
