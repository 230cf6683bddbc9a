/* The top layers of the core, from the bottom up: the run of one claimed
 * task (run.c, and host.c, the API it hands plugins); the upkeep tick
 * (upkeep.c); the worker (worker.c: start, shutdown; dispatch.c: the
 * claimer, the threads that run tasks, the change-stream watch;
 * heartbeat.c: its heartbeat and upkeep threads). The layers under them are in
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

#define MT_CLAIM_BATCH_MAX 8 /* tasks one claim round trip takes at most, beyond free threads */
#define MT_HELD_MAX 64        /* tasks the worker holds ahead of its threads at most */
#define MT_TYPE_STATS_MAX 64  /* task types whose run time the worker keeps an estimate of */

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

/* A task claimed and not running yet: held by the worker (its lease is
 * renewed, it is given back on stop), taken by the next free thread. */
typedef struct {
   bson_t *doc; /* the claimed document (on the heap: entries move), handed to the thread that runs it */
   bson_value_t id; /* a copy */
   char id_str[64];
   int32_t attempts;
   char type[64];
   bool ahead; /* claimed before a thread was free for it */
} mt_held_t;

/* What one thread is running, for heartbeats and for giving back. */
typedef struct {
   bool busy;
   bson_value_t id; /* a copy */
   char id_str[64];
   int32_t attempts;
   pid_t child; /* with MT_ISOLATE_FORK, while the child runs; else 0 */
   struct _mt_running_t *run; /* the running task, for slot callbacks */
   char type[64];      /* dispatch.c: the type of what it runs, for the estimates */
   int64_t since_us;   /* dispatch.c: when it took it (monotonic) */
} mt_slot_t;

/* The moving estimate of one task type's run time (dispatch.c). */
typedef struct {
   char type[64];
   double mean_ms;
} mt_type_stat_t;

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

   /* Dispatch (dispatch.c): one claimer for the threads. */
   mt_wake_t wake;
   int64_t safety_poll_ms;
   int64_t prefetch_ms;
   pthread_cond_t runner_cond;  /* a held task for the runners, or stop */
   pthread_cond_t claimer_cond; /* a reason to claim, or stop */
   mt_held_t *held;             /* under ctx.mutex: claimed, not running, in claim order */
   int n_held;                  /* under ctx.mutex */
   int idle_runners;            /* under ctx.mutex: threads waiting for a task */
   bool claim_now;              /* under ctx.mutex: a thread came free, an event, the stream opened */
   bool claiming;               /* under ctx.mutex: the claimer is in a claim's round trips (run.c forks after) */
   bool claims_over;            /* under ctx.mutex: --once found nothing more, or the claimer ended */
   bool watching;               /* under ctx.mutex: the change stream is open and healthy */
   int64_t next_delayed_ms;     /* under ctx.mutex: earliest `delayed` known ahead (server time), or 0 */
   mt_type_stat_t type_stats[MT_TYPE_STATS_MAX]; /* under ctx.mutex */
   int n_type_stats;                              /* under ctx.mutex */
   double mean_run_ms;          /* under ctx.mutex: over all types, < 0 before the first */
   pthread_t *runners;          /* the runner threads, for the join */
   int runners_started;
   pthread_t claimer_thread;
   bool claimer_running;
   pthread_t watch_thread;
   bool watch_running;

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

/* ---- dispatch: the claimer, the runner threads, the watch (dispatch.c) -- */

/* The dispatch's part of mt_worker_new and mt_worker_destroy. */
void mt_dispatch_init (mt_worker_t *worker);
void mt_dispatch_cleanup (mt_worker_t *worker);
/* Starts the runner threads (worker->concurrency), the claimer and, unless
 * --once or --wake poll, the change-stream watch. On failure what started
 * is stopped and joined. */
bool mt_dispatch_start (mt_worker_t *worker, bson_error_t *error);
/* Joins what mt_dispatch_start started, once ctx.stopping is raised or the
 * runners have ended. */
void mt_dispatch_join (mt_worker_t *worker);
/* Wakes every thread of the dispatch to look at the flags again (stopping,
 * quiet). */
void mt_dispatch_kick (mt_worker_t *worker);
/* Gives back one task this worker holds, as it was before the claim
 * (attempt not counted), with the locks and slot it took. */
void mt_dispatch_give_back (mt_worker_t *worker,
                            mongoc_client_t *client,
                            mongoc_collection_t *tasks,
                            const bson_value_t *id,
                            int32_t attempts,
                            const char *id_str);
/* Gives back every task held and not running (ctx.stopping is raised:
 * no thread takes one any more). */
void mt_dispatch_give_back_held (mt_worker_t *worker, mongoc_client_t *client, mongoc_collection_t *tasks);

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
