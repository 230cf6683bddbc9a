/* The top layers of the core, from the bottom up: the run of one claimed
 * task (run.c, and host.c, the API it hands plugins); the upkeep tick
 * (upkeep.c); the worker (worker.c: threads, start, shutdown; heartbeat.c:
 * its heartbeat and upkeep threads). The layers under them are in
 * mtask-private.h. */
#ifndef MTASK_WORKER_PRIVATE_H
#define MTASK_WORKER_PRIVATE_H

#include "mtask-private.h"

#include <pthread.h>
#include <stdatomic.h>

#define MT_RETRY_MAX_MS 5000
#define MT_OUTCOME_RETRY_LIMIT_MS (60 * 1000)
#define MT_SERVER_SELECTION_MS 5000
#define MT_BUSY_DELAY_S 1.0 /* a task whose account is busy waits about this long */

#define MT_CLAIM_BATCH_MAX 8 /* tasks one thread claims ahead in a backlog */

/* What a worker did since its process started, written into its registry
 * document with each heartbeat (heartbeat.c) and read back by
 * mt_admin_workers and /metrics: counters that only grow, so a restart is
 * an ordinary counter reset. Any thread adds (MT_COUNT); the heartbeat
 * reads. Zeroed with the worker (bson_malloc0). */
typedef struct {
   atomic_int_fast64_t run;        /* tasks whose process() ran to an outcome (run.c finish) */
   atomic_int_fast64_t failed;     /* tasks it ended FAILED: for good, or malformed */
   atomic_int_fast64_t retried;    /* failed attempts put back for a retry */
   atomic_int_fast64_t given_back; /* claimed tasks given back unstarted (busy account, no slot, stopping) */
   atomic_int_fast64_t claims;     /* claim round trips to the server */
} mt_counters_t;

#define MT_COUNT(worker, name) ((void) atomic_fetch_add_explicit (&(worker)->counters.name, 1, memory_order_relaxed))

/* A task claimed ahead: held by the worker, not running yet. */
typedef struct {
   bson_value_t id; /* a copy */
   char id_str[64];
   int32_t attempts;
} mt_held_t;

/* What one thread is running, for heartbeats and for giving back. */
typedef struct {
   bool busy;
   bson_value_t id; /* a copy */
   char id_str[64];
   int32_t attempts;
   pid_t child; /* with MT_ISOLATE_FORK, while the child runs; else 0 */
   struct _mt_running_t *run; /* the running task, for slot callbacks */
   mt_held_t ahead[MT_CLAIM_BATCH_MAX]; /* claimed ahead, in order */
   int n_ahead;
} mt_slot_t;

struct _mt_worker_t {
   mt_context_t ctx; /* db, worker id, log, clock, retry policy, the mutex, stopping */
   mongoc_uri_t *uri;
   char **queues;
   int concurrency;
   int64_t poll_interval_ms;
   bool once;

   mt_plugin_set_t *plugins;
   char **types; /* NULL-terminated, for mt_worker_types */
   bson_t queues_array;
   bson_t types_array;
   mongoc_client_pool_t *pool;

   int wake_pipe[2];
   int running_threads; /* under ctx.mutex */
   int64_t last_sweep_us; /* under ctx.mutex */
   bool failed;           /* under ctx.mutex: a --once run gave up */
   bson_error_t failure;  /* under ctx.mutex: why */

   /* Reliability (issue 4). */
   int64_t grace_ms;
   mt_isolate_t isolate;
   bool archive;
   char hostname[256];
   mt_slot_t *slots;        /* under ctx.mutex: one per thread */
   int next_slot;           /* under ctx.mutex */
   bool heartbeat_stop;     /* under ctx.mutex: both background threads stop */
   pthread_t heartbeat_thread; /* the registry and the leases, nothing else */
   bool heartbeat_running;
   pthread_t upkeep_thread; /* taking back, the upkeep tick, the archive, the slot watch */
   bool upkeep_running;

   bool replace; /* start in place of a live worker with this id */
   bool quiet;   /* under ctx.mutex: claims nothing new, finishes what runs */

   struct _mt_host_t *host; /* the host table its plugins get (host.c) */

   mt_counters_t counters; /* since the process started, for the registry */

   /* Crash notes (crash.c), without isolation. */
   bool catch_crashes;
   bool crash_json;
   int crash_fd; /* the note file from mt_worker_run on, or -1 */
};

/* The running task behind the plugin's mt_task_t. */
typedef struct _mt_running_t {
   mt_task_t base; /* first: the plugin's handle points here */
   mt_worker_t *worker;
   mongoc_client_t *client;
   mongoc_collection_t *tasks;
   bson_t doc;
   mt_task_doc_t parsed;
   bson_t result;
   bool has_result;
   const char *status; /* a static string, or NULL */
   bool delayed;
   double delay_seconds;
   char **held;     /* accounts locked now, sorted, NULL-terminated */
   char **declared; /* the task's own `accounts`, taken at claim */
   bool in_scope;   /* inside with_accounts() */
   const char *pool;               /* the slot pool it runs in, or NULL */
   const mt_plugin_entry_t *plugin;
   bool should_stop;               /* under worker->ctx.mutex: stopped or timed out */
   int64_t last_keepalive;         /* under worker->ctx.mutex: as last seen */
   int64_t started_ms;             /* when process() was called, if the claim's `started` is not that; else 0 */
   int64_t cancel_us;              /* under worker->ctx.mutex: when a cancel request was seen (monotonic), or 0 */
} mt_running_t;

extern const mt_host_api_t mt_host_api;

/* A worker's own host table: mt_host_api with the calls that need no task
 * (log_global, global_uri, global_db_name), and the worker they act for.
 * Handed to init and set on every task's handle. */
typedef struct _mt_host_t {
   mt_host_api_t api; /* first: plugins get &host->api */
   mt_worker_t *worker;
} mt_host_t;

mt_host_t *mt_host_new (mt_worker_t *worker);
void mt_host_destroy (mt_host_t *host);

/* ---- the run of one task (run.c, host.c) -------------------------------- */

/* The lock owner of a running task: this run of it. */
mt_lock_owner_t mt_run_owner (const mt_running_t *run);
/* run->held := held + accounts (add) or held - accounts, kept sorted. */
void mt_run_held_update (mt_running_t *run, char *const *accounts, bool add);

/* Runs one claimed task document (stolen) to its outcome, on slot `slot`.
 * `ahead`: it was claimed ahead of its turn, so its `started` (the claim's)
 * is set again, to now, by its outcome write. */
void mt_run_task (mt_worker_t *worker, int slot, mongoc_client_t *client, mongoc_collection_t *tasks, bson_t *doc, bool ahead);

/* Calls the slot callbacks (keepalive, timeout, stop) of the tasks this
 * worker runs in a pool, from what mt_slot_state reads. Upkeep thread. */
void mt_run_watch_slots (mt_worker_t *worker, mongoc_client_t *client);

/* ---- the upkeep tick (upkeep.c) ----------------------------------------- */

/* The periodic work one worker of all does per tick (lease/3): counting what
 * crashes left uncounted in staged groups, kept groups whose time is up,
 * the synchronizers (seed 000's start_synchros and upkeep), slots that
 * timed out, successors of repeating tasks, the sweep of malformed task
 * documents; then `ended` on the ticks document. `_until`: begins no new
 * part once the monotonic clock passes `deadline_us` (0: no limit); each
 * tick begins with the next part in turn, so no part waits for good
 * behind another. */
bool mt_upkeep_tick (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error);
bool mt_upkeep_tick_until (mt_context_t *ctx, mongoc_client_t *client, int64_t deadline_us, bson_error_t *error);

/* ---- the worker's heartbeat and upkeep threads (heartbeat.c) ------------ */

/* This worker's registry document and the leases of what it holds.
 * `status` NULL: the worker's own ("running", "quiet" or "stopping"); a
 * "stopped" one holds no task. With `entry`, the document as written is
 * copied there (always initialized): a command an operator left in it. */
bool mt_heartbeat_write (
   mt_worker_t *worker, mongoc_client_t *client, const char *status, bson_t *entry, bson_error_t *error);
/* The threads: every lease/3, the heartbeat (registry and leases, nothing
 * else); and, on a thread of its own, taking back lost tasks, the upkeep
 * tick, the archive sweep, the slot watcher. Stop joins both. */
bool mt_heartbeat_start (mt_worker_t *worker, bson_error_t *error);
void mt_heartbeat_stop (mt_worker_t *worker);

#endif
