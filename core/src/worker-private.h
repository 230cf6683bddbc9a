/* Private to the worker's sources: worker.c (lifecycle, threads), host.c
 * (the host API), run.c (running one task). */
#ifndef MTASK_WORKER_PRIVATE_H
#define MTASK_WORKER_PRIVATE_H

#include "mtask-private.h"

#include <pthread.h>

#define MT_RETRY_MAX_MS 5000
#define MT_OUTCOME_RETRY_LIMIT_MS (60 * 1000)
#define MT_SERVER_SELECTION_MS 5000
#define MT_BUSY_DELAY_S 1.0 /* a task whose account is busy waits about this long */

#define MT_CLAIM_BATCH_MAX 8 /* tasks one thread claims ahead in a backlog */

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
   mongoc_uri_t *uri;
   char *db;
   char **queues;
   char *worker_id;
   int concurrency;
   int64_t poll_interval_ms;
   bool once;
   mt_log_func_t log_func;
   void *log_data;
   mt_log_level_t log_level;

   mt_plugin_set_t *plugins;
   char **types; /* NULL-terminated, for mt_worker_types */
   bson_t queues_array;
   bson_t types_array;
   mongoc_client_pool_t *pool;

   int wake_pipe[2];
   pthread_mutex_t mutex;
   pthread_cond_t cond;
   bool stopping;      /* under mutex */
   int running_threads; /* under mutex */
   int64_t last_sweep_us; /* under mutex */
   bool failed;           /* under mutex: a --once run gave up */
   bson_error_t failure;  /* under mutex: why */

   /* Reliability (issue 4). */
   int64_t lease_ms;
   int64_t grace_ms;
   int32_t max_attempts;
   int64_t retry_backoff_ms;
   mt_isolate_t isolate;
   bool archive;
   char hostname[256];
   int64_t clock_offset_ms; /* under mutex: server clock - ours, from heartbeats */
   mt_slot_t *slots;        /* under mutex: one per thread */
   int next_slot;           /* under mutex */
   bool abandoned;          /* under mutex: gave back tasks still running */
   bool heartbeat_stop;     /* under mutex */
   pthread_t heartbeat_thread;
   bool heartbeat_running;
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
   bool should_stop;               /* under worker->mutex: stopped or timed out */
   int64_t last_keepalive;         /* under worker->mutex: as last seen */
   int64_t started_ms;             /* when process() was called, if the claim's `started` is not that; else 0 */
} mt_running_t;

extern const mt_host_api_t mt_host_api;

void mt_worker_log (mt_worker_t *worker, mt_log_level_t level, const char *format, ...) BSON_GNUC_PRINTF (3, 4);

/* The lock owner of a running task: this run of it. */
mt_lock_owner_t mt_run_owner (const mt_running_t *run);
/* run->held := held + accounts (add) or held - accounts, kept sorted. */
void mt_run_held_update (mt_running_t *run, char *const *accounts, bool add);

/* Runs one claimed task document (stolen) to its outcome, on slot `slot`.
 * `ahead`: it was claimed ahead of its turn, so its `started` (the claim's)
 * is set again, to now, by its outcome write. */
void mt_run_task (mt_worker_t *worker, int slot, mongoc_client_t *client, mongoc_collection_t *tasks, bson_t *doc, bool ahead);

/* The server's clock as this worker estimates it (ms since the epoch). */
int64_t mt_worker_server_now (mt_worker_t *worker);

/* The retry budget of a task: its own, its plugin's, the worker's. */
int32_t mt_worker_max_attempts (mt_worker_t *worker, const char *type, int32_t task_max);

/* Delay before retry after attempt n, with jitter. */
int64_t mt_worker_backoff_ms (mt_worker_t *worker, int32_t attempt);

bool mt_worker_is_abandoned (mt_worker_t *worker);

/* Waits on worker->cond until `ms` pass or `*flag` (read under the mutex)
 * turns true; returns the flag. */
bool mt_worker_wait (mt_worker_t *worker, int64_t ms, const bool *flag);

/* lease.c: the worker's registry document, heartbeats, lease renewal and
 * taking back the tasks of lost workers. */
bool mt_lease_heartbeat (mt_worker_t *worker, mongoc_client_t *client, const char *status, bson_error_t *error);
int64_t mt_lease_reclaim (mt_worker_t *worker, mongoc_client_t *client, bool own_only, bson_error_t *error);
bool mt_lease_start (mt_worker_t *worker, bson_error_t *error);
void mt_lease_stop (mt_worker_t *worker);

/* The periodic work one worker of all does per tick (lease/3): counting what
 * crashes left uncounted in staged groups, kept groups whose time is up,
 * and the synchronizers (seed 000's start_synchros and upkeep). */
bool mt_upkeep (mt_worker_t *worker, mongoc_client_t *client, bson_error_t *error);
/* sync.c: start requested synchronizers, advance running ones. */
bool mt_sync_upkeep (mt_worker_t *worker, mongoc_client_t *client, bson_error_t *error);

/* slot.c: concurrency slots. */
/* Takes a slot of `pool` for `owner`; `slot_id` gets its _id. */
bool mt_slot_acquire (mt_worker_t *worker,
                      mongoc_client_t *client,
                      const char *pool,
                      const mt_lock_owner_t *owner,
                      bool *got,
                      char *slot_id,
                      size_t slot_id_size,
                      bson_error_t *error);
bool mt_slot_release (mongoc_client_t *client, const char *db, const bson_value_t *task_id, int32_t attempt, bson_error_t *error);
bool mt_slots_upkeep (mt_worker_t *worker, mongoc_client_t *client, bson_error_t *error);
/* Heartbeat thread: calls the slot callbacks of the tasks this worker runs. */
void mt_slots_watch (mt_worker_t *worker, mongoc_client_t *client);

/* schedule.c: repeating tasks. */
bool mt_task_repeats (const mt_task_doc_t *task);
/* The next run of a repeating task whose run ends at `now_ms`: the first
 * time on its schedule after now (and after the run's own time); -1 when
 * the series is over (past repeat_until, or a cron that never matches). */
int64_t mt_schedule_next (const mt_task_doc_t *task, int64_t now_ms);
/* Appends `next` ({_id, at, created: false}, or null) to an ending run's $set. */
void mt_schedule_append_next (bson_t *set, const mt_task_doc_t *task, bool cancelled, int64_t now_ms);
/* Creates the successor the ended run `ended` planned in `next`, once, and
 * marks it created. `repair`: the planner may have died long ago; the
 * successor may be in the archive already. */
bool mt_schedule_create_successor (mt_worker_t *worker, mongoc_client_t *client, const bson_t *ended, bool repair, bson_error_t *error);
/* Upkeep tick: plans and creates successors that ended runs lack. */
bool mt_schedule_upkeep (mt_worker_t *worker, mongoc_client_t *client, bson_error_t *error);
/* Kills the process (SIGKILL) when MTASK_FAILPOINT names `name`: for the
 * tests of what a crash between two writes leaves behind. */
void mt_failpoint (const char *name);

/* archive.c: moves an ended task into completed_tasks (`*moved` false when
 * it is not in tasks, or not movable). */
bool mt_archive_move (mongoc_client_t *client, const char *db, const bson_value_t *id, bool *moved, bson_error_t *error);
/* Moves the ended tasks of the worker's queues; how many, or -1. */
int64_t mt_archive_sweep (mt_worker_t *worker, mongoc_client_t *client, bson_error_t *error);

/* The update that puts a claimed task back as it was before its claim
 * (CREATED, attempt not counted, no started or lease); `delayed_ms` 0 means
 * due at once. Initializes `update`. */
void mt_give_back_update (bson_t *update, int64_t delayed_ms);

/* Appends {domain, code, message} under `key`. */
void mt_append_error (bson_t *doc, const char *key, const bson_error_t *error);
/* Appends the $push of `error` to the task's capped `errors` history. */
void mt_append_error_history (bson_t *update, const bson_error_t *error, int32_t attempt);

#endif
