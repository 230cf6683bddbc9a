/* mtask/mtask.h: embedding mtask in a C program.
 *
 * Start a worker (seed 001's Worker.start(queue_names)):
 *
 *   const char *queues[] = {"general", "glavstroy", NULL};
 *   mt_worker_config_t config;
 *   bson_error_t error;
 *
 *   mt_worker_config_init (&config);
 *   config.db = "tasks";
 *   config.queue_names = queues;
 *   if (!mt_worker_start (&config, &error))
 *      fprintf (stderr, "worker: %s\n", error.message);
 *
 * Enqueue a task:
 *
 *   bson_oid_t id;
 *   if (!mt_enqueue (client, "tasks", "general", "echo", params, NULL, &id, &error))
 *      ...
 *
 * Link with $(pkg-config --cflags --libs mtask-embed).
 */
#ifndef MTASK_MTASK_H
#define MTASK_MTASK_H

#include <mongoc/mongoc.h>
#include <mtask/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MT_EXPORT __attribute__ ((visibility ("default")))
#else
#define MT_EXPORT
#endif

#define MT_VERSION_STRING "0.1.0"

/* The collections mtask keeps in its database. */
#define MT_TASKS_COLLECTION "tasks"
#define MT_LOCKS_COLLECTION "locks"
#define MT_WORKERS_COLLECTION "workers"
#define MT_GROUPS_COLLECTION "groups"
#define MT_GROUP_STAGES_COLLECTION "group_stages"
#define MT_SYNCHRONIZERS_COLLECTION "synchronizers"
#define MT_SYNC_STAGES_COLLECTION "stages"
#define MT_POOLS_COLLECTION "pools"
#define MT_SLOTS_COLLECTION "slots"
#define MT_COMPLETED_COLLECTION "completed_tasks"

/* Codes in MT_ERROR_CONFIG. */
typedef enum {
   MT_CONFIG_ERROR_INVALID = 1, /* a value is missing or out of range */
   MT_CONFIG_ERROR_OPTION,      /* an option key that does not exist */
   MT_CONFIG_ERROR_URI,         /* a MongoDB URI that does not parse */
   MT_CONFIG_ERROR_NOT_FOUND,   /* no group, stage or synchronizer of that id or name */
   MT_CONFIG_ERROR_STATE,       /* it exists, but not in a state that allows this */
} mt_config_error_code_t;

/* Codes in MT_ERROR_STORE. */
typedef enum {
   MT_STORE_ERROR_WRITE = 1, /* a write was refused or not acknowledged */
   MT_STORE_ERROR_LOST,      /* the task is no longer ours */
   MT_STORE_ERROR_NOT_FOUND, /* no task with that id */
} mt_store_error_code_t;

typedef void (*mt_log_func_t) (mt_log_level_t level, const char *message, void *data);

/* For a log function, on the thread that called it: the task that thread
 * runs (its id, type, queue and attempt, owned by the library), or false
 * when it runs none. mtask-worker's JSON lines carry them as fields. */
MT_EXPORT bool mt_log_task (const char **task_id, const char **type, const char **queue, int32_t *attempt);

/* Copies `in` into `out` (at most `size` bytes, NUL included) with every
 * control character escaped: newline, return and tab as \n, \r, \t, the
 * others as \xHH. A worker's messages reach its log function so escaped,
 * one line each; a text log of other lines (the driver's) can do the same.
 * Returns the length written. */
MT_EXPORT size_t mt_log_escape (const char *in, char *out, size_t size);

/* How a worker runs process(). */
typedef enum {
   MT_ISOLATE_NONE = 0, /* on the worker's own thread: fastest; a crash takes the worker down */
   MT_ISOLATE_FORK = 1, /* in a child process per task: a crash or a timeout costs one attempt */
} mt_isolate_t;

/* How an idle worker learns of new work: mt_worker_config_t.wake. */
typedef enum {
   MT_WAKE_AUTO = 0,          /* a change stream where the server has them, else polling */
   MT_WAKE_CHANGE_STREAM = 1, /* the same; polling only as a fallback, with a warning */
   MT_WAKE_POLL = 2,          /* polling alone, at the poll interval */
} mt_wake_t;

/* Worker configuration. Always call mt_worker_config_init() first: it sets
 * struct_size and the defaults, so that fields added in later versions keep
 * their defaults in programs built against this one. */
typedef struct {
   uint32_t struct_size;

   /* Connection: `uri` wins when set; otherwise host and port. */
   const char *uri;  /* default NULL */
   const char *host; /* default "localhost" */
   int port;         /* default 27017 */
   const char *db;   /* required */

   /* NULL-terminated list of queue names; required, at least one. */
   const char *const *queue_names;

   /* The worker's id, stored in `worker_pid`; default a UUID version 1. */
   const char *worker_id;

   /* NULL-terminated list of directories; every *.so in each is loaded.
    * Default: the installed plugin directory (mt_default_plugin_dir()). */
   const char *const *plugin_dirs;

   int concurrency;          /* threads running tasks; default 1 */
   int64_t poll_interval_ms; /* longest idle wait between claims (sooner right after work); default 1000 */
   bool once;                /* process what is due, then return */

   /* Where the worker's log lines go; default: nowhere. Called from any
    * thread; must be thread-safe. */
   mt_log_func_t log_func;
   void *log_data;
   mt_log_level_t log_level; /* default MT_LOG_INFO */

   /* Built-in task types registered without a shared object (e.g. plugins
    * compiled into the embedding program). NULL-terminated; may be NULL. */
   const mt_plugin_t *const *builtin_plugins;

   /* ---- added in 0.2: reliability ---- */

   /* How long a silent worker keeps its tasks: a task whose heartbeat is
    * older is taken back by any live worker. Default 30 s. */
   int64_t lease_ms;
   /* On stop: how long running tasks may finish before they are given
    * back. Default 30 s. */
   int64_t grace_ms;
   /* The retry budget when neither the task nor its plugin says; default 3. */
   int32_t max_attempts;
   /* Backoff before retry n: this times 2^(n-1), with jitter; default 2 s. */
   int64_t retry_backoff_ms;
   mt_isolate_t isolate; /* default MT_ISOLATE_NONE */

   /* ---- added in 0.3: scheduling ---- */

   /* Move each ended task (FINISHED, FAILED, CANCELLED) of this worker's
    * queues into `completed_tasks`, same _id and fields: its own at once,
    * others (ended elsewhere, or left half way by a worker that died) at
    * each heartbeat. Tasks of staged groups stay with their group. Default
    * false. */
   bool archive;

   /* ---- added in 0.4: production ---- */

   /* A worker id (`worker_id`) is unique among live workers: a worker
    * refuses to start while the registry shows its id with a fresh
    * heartbeat from another host or pid. `replace` starts it anyway, in
    * place of that worker: its running tasks are taken back, and if it is
    * alive it stops claiming at its next heartbeat. Default false. */
   bool replace;

   /* ---- added in 0.5: operations ---- */

   /* NULL-terminated allow-list of task types: plugins of other types are
    * not used (not initialized, their tasks not claimed), and each type
    * named must have a plugin. NULL (default): every plugin found. */
   const char *const *types;

   /* ---- added in 0.6: dispatch ---- */

   /* How an idle worker learns of new work (docs/worker.md): MT_WAKE_AUTO
    * (default) watches `tasks` with a change stream where the server has
    * them and polls where it has not; MT_WAKE_CHANGE_STREAM the same, with
    * a warning when it must poll; MT_WAKE_POLL only polls. */
   mt_wake_t wake;
   /* While the change stream is healthy, a claim runs anyway this often
    * (a safety net for what no event announces). Default 30 s. */
   int64_t safety_poll_ms;
   /* A task is claimed ahead of a free thread only when the run times of
    * the tasks before it say it starts within this horizon. Default 50 ms;
    * 0 claims only for free threads. */
   int64_t prefetch_ms;
} mt_worker_config_t;

typedef struct _mt_worker_t mt_worker_t;

MT_EXPORT void mt_worker_config_init (mt_worker_config_t *config);

/* Checks the configuration, connects (lazily), loads the plugins. */
MT_EXPORT mt_worker_t *mt_worker_new (const mt_worker_config_t *config, bson_error_t *error);

/* Ensures indexes, registers the worker's id, then claims and runs tasks
 * until mt_worker_stop() or, with `once`, until nothing is due. Returns
 * false only when the worker could not run at all (e.g. its id is in use by
 * a live worker, `tasks` is sharded, or the database refused an index that
 * correctness needs). */
MT_EXPORT bool mt_worker_run (mt_worker_t *worker, bson_error_t *error);

/* Stop claiming; running tasks finish, then mt_worker_run() returns.
 * Async-signal-safe: may be called from a signal handler. */
MT_EXPORT void mt_worker_stop (mt_worker_t *worker);

/* Quiet: claim nothing new, finish what runs, stay up (and keep the
 * heartbeat, which says "quiet") until stopped. Cannot be undone but by a
 * restart. Async-signal-safe: may be called from a signal handler (the
 * worker program calls it on SIGTSTP). */
MT_EXPORT void mt_worker_quiet (mt_worker_t *worker);

/* True after mt_worker_run() returned having given back tasks whose
 * process() was still running on its threads (the grace period ran out, or
 * a second stop came). Those threads cannot be stopped from outside: end
 * the process (e.g. _exit) without mt_worker_destroy(). */
MT_EXPORT bool mt_worker_abandoned (const mt_worker_t *worker);

/* For a worker without isolation (a plugin's crash takes the process):
 * from mt_worker_run on, a SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT
 * writes a line to stderr naming the task and type the crashing thread
 * ran and the signal (a JSON object like mtask-worker's --log-format json
 * lines when `json`), and a note that a worker starting again under the
 * same id reads to record the crash in the task's error
 * (docs/reliability.md). The handlers replaced are called after. Call
 * before mt_worker_run; mtask-worker does. */
MT_EXPORT void mt_worker_catch_crashes (mt_worker_t *worker, bool json);

MT_EXPORT const char *mt_worker_id (const mt_worker_t *worker);

/* Task types this worker serves, NULL-terminated; owned by the worker. */
MT_EXPORT const char *const *mt_worker_types (const mt_worker_t *worker);

/* What `mtask-worker --check` does after mt_worker_new (which parsed the
 * configuration and loaded the plugins): reaches the server, refuses a
 * sharded `tasks`, and makes the indexes a start would make. A database
 * with no `tasks` collection yet is reported, not created. `reply` is
 * initialized: {tasks_collection: bool, indexes: bool (made or found)};
 * bson_destroy it. False with `error` saying what failed and what to do. */
MT_EXPORT bool mt_worker_check (mt_worker_t *worker, bson_t *reply, bson_error_t *error);

MT_EXPORT void mt_worker_destroy (mt_worker_t *worker);

/* new + run + destroy. */
MT_EXPORT bool mt_worker_start (const mt_worker_config_t *config, bson_error_t *error);

/* The directory the worker loads plugins from when none is given. */
MT_EXPORT const char *mt_default_plugin_dir (void);

/* Builds a MongoDB URI from either a full `uri` or `host` and `port`
 * (NULL host = "localhost", port 0 = 27017). Free with mongoc_uri_destroy.
 * Its error shows the URI with user and password hidden (mt_uri_redact). */
MT_EXPORT mongoc_uri_t *mt_uri_new (const char *uri, const char *host, int port, bson_error_t *error);

/* A copy of `uri` fit to show: the user and password ("user:pass@") are
 * replaced by "***@", whether or not the URI parses. Free with bson_free. */
MT_EXPORT char *mt_uri_redact (const char *uri);

/* Reads a MongoDB URI from `path` (--uri-file): one line, surrounding
 * white space ignored. Refuses a file that its group or others may read or
 * write (it holds a password: chmod 600), and one that is not a regular
 * file or holds more than one line. Free with bson_free. */
MT_EXPORT char *mt_uri_read_file (const char *path, bson_error_t *error);

/* The longest queue name, in bytes. */
#define MT_QUEUE_NAME_MAX 128

/* Whether `name` may name a queue: 1 to MT_QUEUE_NAME_MAX bytes of valid
 * UTF-8, with no comma, white space or control character (a worker's
 * --queues splits on commas and spaces, so no worker could serve such a
 * queue). mt_enqueue refuses other names with MT_CONFIG_ERROR_INVALID. */
MT_EXPORT bool mt_queue_name_check (const char *name, bson_error_t *error);

/* What mtask's own clients need of a replica set (docs/reliability.md),
 * applied to a URI before a client or pool is made from it. A mask of: */
typedef enum {
   /* Every read goes to the primary, whatever the URI's readPreference: a
    * read that decides (a claim read back, a lock's holder, a drained
    * queue) must see the last acknowledged write, which a secondary may
    * not have yet. */
   MT_URI_PRIMARY_READS = 1 << 0,
   /* Unless the URI names its own write concern (w, journal or
    * wtimeoutMS): writes wait for a majority of the replica set, so that a
    * failover cannot roll back a claim, a lock or an outcome already
    * acknowledged; up to MT_WRITE_TIMEOUT_MS, then the write is reported
    * (a write concern error) and retried. */
   MT_URI_MAJORITY_WRITES = 1 << 1,
} mt_uri_policy_t;

#define MT_WRITE_TIMEOUT_MS 10000

/* Applies `policy` (mt_uri_policy_t flags) to `uri`. Returns the mode the
 * URI's read preference named when MT_URI_PRIMARY_READS overrode it (a
 * static string: "secondaryPreferred"...), else NULL. mtask-worker applies
 * both to every client it makes. */
MT_EXPORT const char *mt_uri_apply_policy (mongoc_uri_t *uri, int policy);

/* Inserts a task: status CREATED, created now, priority 0, attempts 0.
 * `params` may be NULL (empty). `opts` may be NULL or hold (seed 004's
 * @background options):
 *   delay         number  seconds from now before it may start (0 to ten years)
 *   run_at        date    not before this time (instead of delay)
 *   priority      int32   higher first (default 0)
 *   max_attempts  int32   the retry budget
 *   repeat        number  seconds between runs (1 or more): when a run ends a
 *                         successor is created for the next time on the grid
 *                         first run + k * repeat that lies in the future
 *   cron          string  five-field cron expression (instead of repeat); the
 *                         first run is the first match from now unless delay
 *                         or run_at says otherwise
 *   timezone      string  IANA time zone of `cron` (default UTC)
 *   repeat_until  date    no run of a repeating task after this time
 *   unique_key    string  enqueue nothing while a task with this key is
 *                         WAITING, CREATED or WORK_IN_PROGRESS
 *   verbose_name, creator  strings, stored as they are
 * Any other key fails with "Invalid option 'key'". `id` may be NULL. With a
 * unique_key already taken this returns true, inserts nothing and sets `id`
 * to the task holding the key: mt_enqueue_ex() tells the two apart. */
MT_EXPORT bool mt_enqueue (mongoc_client_t *client,
                           const char *db,
                           const char *queue,
                           const char *type,
                           const bson_t *params,
                           const bson_t *opts,
                           bson_oid_t *id,
                           bson_error_t *error);

/* mt_enqueue, and `*created` (may be NULL) says whether a task was
 * inserted: false when its unique_key was taken (then `id` names the task
 * holding it, or is zeroed when that task's _id is not an ObjectId). */
MT_EXPORT bool mt_enqueue_ex (mongoc_client_t *client,
                              const char *db,
                              const char *queue,
                              const char *type,
                              const bson_t *params,
                              const bson_t *opts,
                              bson_oid_t *id,
                              bool *created,
                              bson_error_t *error);

/* Creates the indexes of the tasks, locks and group_stages collections;
 * idempotent. Each is made on its own; one the server refuses because an
 * index of that name or those keys exists counts as made when an
 * equivalent index (same keys, uniqueness and partial filter) is there.
 * Fails naming the first index neither made nor matched. */
MT_EXPORT bool mt_indexes_ensure (mongoc_client_t *client, const char *db, bson_error_t *error);

/* ---- account locks (seed 001), for code outside a plugin ------------------
 *
 * A lock document in `locks` per account: {_id: account, task, worker_pid,
 * attempt, acquired}. The owner is one run of one task: its _id, the worker
 * holding it and the attempt number of that claim. A lock whose run is over
 * (the task is no longer WORK_IN_PROGRESS with that worker and attempt) is
 * not a lock: the next acquirer takes it over atomically. */
typedef struct {
   const bson_value_t *task_id;
   const char *worker_id;
   int32_t attempt;
} mt_lock_owner_t;

/* Locks `accounts` for `owner`, all or nothing (see lock_accounts in
 * mtask/plugin.h). On success `held`, when not NULL, is initialized to an
 * array of every account the owner holds. */
MT_EXPORT bool mt_locks_acquire (mongoc_client_t *client,
                                 const char *db,
                                 const mt_lock_owner_t *owner,
                                 const char *const *accounts,
                                 size_t n_accounts,
                                 bson_t *held,
                                 bson_error_t *error);

/* Releases these accounts if `owner` holds them. */
MT_EXPORT bool mt_locks_release (mongoc_client_t *client,
                                 const char *db,
                                 const mt_lock_owner_t *owner,
                                 const char *const *accounts,
                                 size_t n_accounts,
                                 bson_error_t *error);

/* Releases every lock of `owner`; returns how many, or -1 on error. */
MT_EXPORT int64_t mt_locks_release_all (mongoc_client_t *client,
                                        const char *db,
                                        const mt_lock_owner_t *owner,
                                        bson_error_t *error);

/* ---- staged groups (seed 003) ------------------------------------------
 *
 * A group of numbered stages of tasks. Tasks of a stage that has not
 * started are WAITING; stage N+1 starts when every task of stage N has
 * ended (FINISHED, FAILED with no retry left, CANCELLED). When the last
 * stage completes, the group, its stages and its tasks are deleted, or kept
 * for `keep_seconds`. */

/* `opts` may hold keep_seconds (number). */
MT_EXPORT bool mt_group_create (mongoc_client_t *client,
                                const char *db,
                                const char *description,
                                const bson_t *opts,
                                bson_oid_t *id,
                                bson_error_t *error);

/* Adds a task to stage `stage` (1, 2, ...) of the group, creating the
 * stage when needed; `opts` as mt_enqueue's. The task is WAITING until its
 * stage starts, or CREATED when the stage is running already. */
MT_EXPORT bool mt_group_enqueue (mongoc_client_t *client,
                                 const char *db,
                                 const bson_oid_t *group,
                                 int32_t stage,
                                 const char *queue,
                                 const char *type,
                                 const bson_t *params,
                                 const bson_t *opts,
                                 bson_oid_t *id,
                                 bson_error_t *error);

/* Starts the group's first stage that is not complete. */
MT_EXPORT bool mt_group_initiate (mongoc_client_t *client, const char *db, const bson_oid_t *group, bson_error_t *error);

/* Deletes the group, its stages and its tasks. */
MT_EXPORT bool mt_group_delete (mongoc_client_t *client, const char *db, const bson_oid_t *group, bson_error_t *error);

/* The cleaner: with `purge`, deletes every group, stage and staged task;
 * without, repairs orphans (recreates the group or stage documents that
 * staged tasks point to) and lets their groups go on. Returns how many
 * tasks were purged or groups/stages repaired, or -1 on error. */
MT_EXPORT int64_t mt_groups_clean (mongoc_client_t *client, const char *db, bool purge, bson_error_t *error);

/* ---- synchronizers (seed 000) ------------------------------------------
 *
 * A chain of stages: each enqueues a task of type `callable` on its queue
 * and is complete when that queue has no CREATED, WAITING or running task;
 * then it closes the newest WORK_IN_PROGRESS task of type `task` (if set)
 * and the next stage begins, or the synchronizer goes back to stand-by.
 * Workers do the seed's periodic start_synchros and upkeep, one worker per
 * tick. */

/* A stage; `task` and `next_stage` may be NULL, `params` too (given to the
 * callable, with `_stage` added: {synchronizer, stage, task}). */
MT_EXPORT bool mt_sync_stage_create (mongoc_client_t *client,
                                     const char *db,
                                     const char *name,
                                     const char *callable,
                                     const char *queue,
                                     const char *task,
                                     const bson_oid_t *next_stage,
                                     const bson_t *params,
                                     bson_oid_t *id,
                                     bson_error_t *error);

/* A synchronizer on stand-by, starting at `start_stage`. */
MT_EXPORT bool mt_sync_create (mongoc_client_t *client,
                               const char *db,
                               const char *name,
                               const bson_oid_t *start_stage,
                               bson_error_t *error);

/* begin_stage: `stage` NULL means the start stage. Only from stand-by. */
MT_EXPORT bool mt_sync_begin_stage (mongoc_client_t *client,
                                    const char *db,
                                    const char *name,
                                    const bson_oid_t *stage,
                                    bson_error_t *error);

/* check_completion: advances the synchronizer if its stage is complete;
 * `*advanced` says whether this call did. */
MT_EXPORT bool mt_sync_check_completion (mongoc_client_t *client,
                                         const char *db,
                                         const char *name,
                                         bool *advanced,
                                         bson_error_t *error);

/* Asks the workers to begin it at their next upkeep tick (start_synchros). */
MT_EXPORT bool mt_sync_request_start (mongoc_client_t *client, const char *db, const char *name, bson_error_t *error);

/* ---- concurrency slots (seed 002) --------------------------------------
 *
 * A pool of `size` slots limits how many of its tasks run at once across
 * all workers. A task is in a pool by its own `pool` field or its plugin's
 * descriptor. A slot not kept alive for `timeout_seconds` (0 = no timeout)
 * is taken back: its task fails with a timeout (or is retried). */

/* Declares or resizes a pool (name: 1 to 200 bytes, no '#'; size 1 to
 * 100000); takes effect at the workers' next claims. A negative
 * `timeout_seconds` keeps the pool's timeout (0, none, for a new pool);
 * otherwise at most 366 days. */
MT_EXPORT bool mt_pool_set (mongoc_client_t *client,
                            const char *db,
                            const char *name,
                            int32_t size,
                            double timeout_seconds,
                            bson_error_t *error);

/* keepalive(task_id) and stop(task_id) from outside the task (seed 002's
 * scheduler.keepalive and scheduler.stop). Stop ends the task (CANCELLED)
 * and frees its slot; its worker calls the plugin's on_stop. */
MT_EXPORT bool mt_slot_keepalive (mongoc_client_t *client, const char *db, const bson_oid_t *task_id, bson_error_t *error);
MT_EXPORT bool mt_slot_stop (mongoc_client_t *client, const char *db, const bson_oid_t *task_id, bson_error_t *error);

/* ---- retention (seed 004's completed tasks) -----------------------------
 *
 * Ended tasks stay in `tasks` (or move to `completed_tasks` with the
 * worker's `archive`) until deleted: by mt_purge(), or on real MongoDB by a
 * TTL index from mt_retention_set(). */

/* Deletes ended tasks whose `finished` is more than `older_than_seconds`
 * ago from `collection` ("tasks", "completed_tasks", or NULL for both).
 * `statuses`: NULL-terminated, a subset of FINISHED, FAILED, CANCELLED;
 * NULL means all three. Spared in `tasks`: tasks of staged groups (their
 * group deletes them) and ended runs whose successor is not created yet.
 * With `dry_run` only counts. Returns how many, or -1 on error. */
MT_EXPORT int64_t mt_purge (mongoc_client_t *client,
                            const char *db,
                            const char *collection,
                            double older_than_seconds,
                            const char *const *statuses,
                            bool dry_run,
                            bson_error_t *error);

/* A TTL index `mtask_ttl` on `finished` of `collection` ("tasks" or
 * "completed_tasks"): the server deletes each ended task `seconds` after it
 * ended. Replaces an earlier one; `seconds` < 0 drops it. mongo-java-server
 * keeps the index but never expires anything; use mt_purge() there. */
MT_EXPORT bool mt_retention_set (mongoc_client_t *client, const char *db, const char *collection, int64_t seconds, bson_error_t *error);

/* The name of a log level: "error", "warning", "info", "debug". */
MT_EXPORT const char *mt_log_level_name (mt_log_level_t level);

/* ---- admin API: the queries and views of front ends -----------------------
 *
 * Everything a front end (mtaskctl, a web dashboard, a script) shows is read
 * here, once, so that none of them holds a query of its own. These calls
 * only read, but for the task actions (mt_admin_retry, mt_admin_cancel,
 * mt_admin_delete) and mt_admin_worker_command. Each one is
 *
 *   bool mt_admin_NOUN (client, db, [the one thing it is about,] opts, reply, error);
 *
 * - `reply` is always initialized, on failure too: bson_destroy() it. On
 *   success it holds the result in the named fields below. When the
 *   database fails, `error` is the driver's, untouched, and `reply` is
 *   {"collection": C}: the collection whose read failed, with "item": the
 *   _id of the listed document it was for when it was a read for one row of
 *   a listing (a synchronizer's stage). Otherwise it is {}.
 * - `opts` may be NULL. A key the call does not take fails with domain
 *   MT_ERROR_CONFIG, code MT_CONFIG_ERROR_OPTION and the message exactly
 *   "Invalid option 'KEY'"; a value of the wrong type fails with
 *   MT_CONFIG_ERROR_INVALID and a message naming the option.
 * - A task named by id that does not exist fails with MT_ERROR_STORE /
 *   MT_STORE_ERROR_NOT_FOUND; a group, stage, synchronizer or pool with
 *   MT_ERROR_CONFIG / MT_CONFIG_ERROR_NOT_FOUND ("no group ID in DB.groups");
 *   `reply` then names the collection.
 * - Lists are bounded, so that a reply's memory does not grow with the
 *   collection: a list call takes `limit` (an integer; 0 or absent: its
 *   default, 1000 unless said; at most 10000 unless said, more fails
 *   MT_CONFIG_ERROR_INVALID) and its reply says "more": true when it was
 *   cut there, false otherwise.
 * - Documents are returned as stored, with the fields said added.
 *   "Lifecycle order" of statuses is WAITING, CREATED, WORK_IN_PROGRESS,
 *   FINISHED, FAILED, CANCELLED, then any other status by name. */

/* Counts of the tasks:
 *   {"by_queue": [{"queue": Q, "status": S, "n": N}, ...],
 *    "by_type": [{"type": T, "n": N}, ...],
 *    "statuses": [S, ...]}
 * by_queue: every queue and status that occurs, by queue name, then status
 * in lifecycle order. by_type: the CREATED tasks by type (a type that keeps
 * waiting may be one no running worker has a plugin for). statuses: every S
 * of by_queue once, in lifecycle order. Q, S and T are text: "(none)" when
 * the tasks have no such field, a number or ObjectId as text, "(not a
 * string)" for other types. Also, on the server's clock:
 *   "backlog": [{"queue": Q, "due": N, "delayed": N, "retrying": N,
 *                "running": N, "failed_last_hour": N,
 *                "oldest_due_age_ms": MS}, ...]
 * by queue: CREATED tasks due now (no `delayed` or a past one), delayed (a
 * first run not due yet), retrying (attempts > 0, its retry not due yet);
 * WORK_IN_PROGRESS running; failed_last_hour: tasks that ended FAILED with
 * `finished` in the last hour, in `tasks` or the archive (a queue with
 * such failures has a row even with nothing waiting); oldest_due_age_ms,
 * when any is due: how long the oldest due task has been due (since
 * `created` or its `delayed`), the queue's latency.
 *   "throughput": [{"minute": DATE, "finished": N, "failed": N}, ...]: 60
 *     rows, one per minute, oldest first, the current (partial) minute
 *     last, zero when none: the tasks that ended FINISHED and FAILED in
 *     that minute (their `finished`), in `tasks` and the archive, each
 *     task once (one briefly in both, while it is moved, counts once).
 *   "unserved_queues": [Q, ...]: queues with CREATED tasks that no running
 *     worker (live, not quiet nor stopping) takes;
 *   "unserved_types": [{"queue": Q, "type": T}, ...]: CREATED tasks of
 *     type T in a queue running workers take, none with a plugin for T.
 * opts: archive (bool: count the archive, `completed_tasks`, instead; no
 * backlog nor unserved lists then). */
MT_EXPORT bool mt_admin_stats (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* Tasks, newest first by _id (an ObjectId starts with the time it was
 * made): {"tasks": [TASK, ...], "more": B}.
 * opts: queue, status, type (strings: only tasks with that value); worker
 * (string: only tasks whose `worker_pid` is that: the tasks a worker holds
 * now, since a task's `worker_pid` is emptied when its run ends); q
 * (string, at most 200 bytes: 24 hex digits match the _id, any other text
 * is looked for in `status_message`, as typed, ignoring case); skip (an
 * integer, 0 to 100000: leave out that many first); limit (an integer, 0
 * or more: at most that many; 0, the default, is all); archive (bool:
 * list the archive, `completed_tasks`, instead). more: whether there are
 * tasks beyond `limit`. */
MT_EXPORT bool mt_admin_tasks (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* One task, its whole document: {"task": TASK, "collection": C}, from
 * `tasks` or, when it is not there, from the archive (`completed_tasks`).
 * A run of a series also gets "previous": the run before it ({_id,
 * scheduled, status, finished}, from either collection), or null for the
 * series' first run. No options. */
MT_EXPORT bool mt_admin_task (mongoc_client_t *client,
                              const char *db,
                              const bson_oid_t *id,
                              const bson_t *opts,
                              bson_t *reply,
                              bson_error_t *error);

/* Task actions, each on one task (`id`) or on every task a filter in
 * `opts` matches (`id` NULL): queue, status, type (strings), since (whole
 * seconds: ended within that long, or created within it when not ended);
 * dry_run (bool: say what would be done, do nothing); force (bool, delete
 * only). Both `tasks` and the archive (`completed_tasks`) are searched.
 * Each write is conditional on the status the task was read in. Reply:
 *   {"dry_run": B, "tasks": [{"_id", "collection", "status", "outcome",
 *    "reason"}, ...], "done": N, "refused": N}
 * outcome: what was done ("retried", "cancelled", "stop requested",
 * "deleted"; with dry_run what would be), or "refused" with the reason.
 * An id that is in neither collection fails MT_STORE_ERROR_NOT_FOUND.
 * - retry: a FAILED or CANCELLED task goes back to CREATED, due now, with
 *   a fresh budget (failures 0); its last error stays in `errors`; an
 *   archived one moves back into `tasks`. Refused when another live task
 *   holds its unique_key.
 * - cancel: a CREATED or WAITING task becomes CANCELLED, `finished` set,
 *   its unique_key let go (a repeating series ends); a WORK_IN_PROGRESS
 *   one gets `cancel_requested`: its worker makes mt_task_should_stop()
 *   true, kills an isolated child after its grace, and ends it CANCELLED.
 * - delete: an ended task (FINISHED, FAILED, CANCELLED), or any with
 *   force. */
MT_EXPORT bool mt_admin_retry (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error);
MT_EXPORT bool mt_admin_cancel (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error);
MT_EXPORT bool mt_admin_delete (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* The live task (WAITING, CREATED or WORK_IN_PROGRESS) holding
 * unique_key `key`: {"task": TASK}, or {"task": null} when none does (the
 * holder mt_enqueue_ex() saw has ended since). No options. */
MT_EXPORT bool mt_admin_unique_holder (mongoc_client_t *client,
                                       const char *db,
                                       const char *key,
                                       const bson_t *opts,
                                       bson_t *reply,
                                       bson_error_t *error);

/* The account locks by account: {"locks": [LOCK, ...], "more": B}, each
 * the lock's document with "state": "held" while the run it names goes on,
 * or "stale" once that run is over (the next task to lock the account
 * takes it over). opts: limit. */
MT_EXPORT bool mt_admin_locks (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* The staged groups, newest first: {"groups": [GROUP, ...], "more": B},
 * each the group's document with "stage_count" (its stage documents) and
 * "current_stage" (the number of its first stage not complete, or null).
 * opts: limit. */
MT_EXPORT bool mt_admin_groups (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* One group and its stages:
 *   {"group": GROUP, "stages": [STAGE, ...], "statuses": [S, ...]}
 * The stages by number, each the stage's document without its done_ids
 * (total and done are the stage's own counts) or, where tasks name a stage
 * that has no document, {"number": N, "missing": true}; each with "tasks":
 * {STATUS: n}, its tasks counted by status ("(none)" for tasks without
 * one). statuses: every STATUS counted, once, in lifecycle order.
 * opts: stages (bool, default true): false reads the group alone,
 * {"group": GROUP}. */
MT_EXPORT bool mt_admin_group (mongoc_client_t *client,
                               const char *db,
                               const bson_oid_t *id,
                               const bson_t *opts,
                               bson_t *reply,
                               bson_error_t *error);

/* One stage of a staged group, by its _id (a `group_stages` document), and
 * its tasks (the jobs):
 *   {"stage": STAGE, "group": {"_id", "description", "status"},
 *    "tasks": [TASK, ...], "more": B}
 * STAGE as in mt_admin_group's stages: its document without done_ids,
 * with "tasks": {STATUS: n}, all its tasks counted by status. "group": its
 * group's _id, description and status ({"_id", "missing": true} when the
 * group is gone). "tasks": its tasks by _id, each with _id, queue, type,
 * status, attempts, max_attempts, status_message, error, created,
 * started, finished, worker_pid, group and stage (those it has). opts:
 * limit (default 200, at most 1000). A stage that is not there fails
 * MT_CONFIG_ERROR_NOT_FOUND. */
MT_EXPORT bool mt_admin_stage (mongoc_client_t *client,
                               const char *db,
                               const bson_oid_t *id,
                               const bson_t *opts,
                               bson_t *reply,
                               bson_error_t *error);

/* The synchronizers by name: {"synchronizers": [SYNC, ...], "more": B},
 * each the synchronizer's document with "actual_stage_name" and
 * "start_stage_name": the name of the stage its actual_stage and
 * start_stage point at, or null when it points at none or at a stage that
 * does not exist. opts: limit. */
MT_EXPORT bool mt_admin_syncs (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* One synchronizer by name: {"synchronizer": SYNC}. No options. */
MT_EXPORT bool mt_admin_sync (mongoc_client_t *client,
                              const char *db,
                              const char *name,
                              const bson_t *opts,
                              bson_t *reply,
                              bson_error_t *error);

/* One synchronizer stage (mt_sync_stage_create): {"stage": STAGE}. No
 * options. */
MT_EXPORT bool mt_admin_sync_stage (mongoc_client_t *client,
                                    const char *db,
                                    const bson_oid_t *id,
                                    const bson_t *opts,
                                    bson_t *reply,
                                    bson_error_t *error);

/* The pools by name, each with its held slots:
 *   {"pools": [{"_id": NAME, "size": N, "timeout_seconds": S,
 *               "in_use": n, "slots": [SLOT, ...]}, ...],
 *    "undeclared": [SLOT, ...], "more": B}
 * A SLOT of a pool is a held slot's document (by index) with "beyond_size":
 * true when its index is at or above the pool's size (the pool shrank
 * while its task ran): such a slot is not counted in in_use. undeclared:
 * the held slots of pools that `pools` does not have, as stored. opts:
 * limit: at most that many pools and that many held slots (in_use counts
 * those read); more when either was cut. */
MT_EXPORT bool mt_admin_slots (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* One pool: {"pool": POOL, "in_use": n, "slots": [SLOT, ...]}, its document
 * as stored and its held slots as in mt_admin_slots. No options. */
MT_EXPORT bool mt_admin_pool (mongoc_client_t *client,
                              const char *db,
                              const char *name,
                              const bson_t *opts,
                              bson_t *reply,
                              bson_error_t *error);

/* The slots task `task_id` holds, by _id: {"slots": [SLOT, ...]} (empty
 * when it holds none). No options. */
MT_EXPORT bool mt_admin_task_slots (mongoc_client_t *client,
                                    const char *db,
                                    const bson_oid_t *task_id,
                                    const bson_t *opts,
                                    bson_t *reply,
                                    bson_error_t *error);

/* The live repeating tasks (WAITING, CREATED or WORK_IN_PROGRESS with
 * `repeat` or `cron`), soonest next run first: {"schedules": [TASK, ...]},
 * each the task's document with "rule", how it repeats as text ("every
 * 900 s (15m)", "cron '0 6 * * 1-5' (Europe/Berlin)"), and "next_run": its
 * `delayed`, else its `scheduled` date, or null when it is due now (those
 * first), and "more": B. opts: queue (string: only tasks of that queue);
 * limit (the soonest that many). */
MT_EXPORT bool mt_admin_schedules (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* How long ended tasks are kept (mt_retention_set()):
 *   {"retention": [{"collection": C, "ttl_seconds": N or null}, ...]}
 * for tasks and completed_tasks; null when there is no TTL index.
 * opts: collection ("tasks" or "completed_tasks": that one only). */
MT_EXPORT bool mt_admin_retention (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* The workers in the registry (`workers`), by id:
 * {"workers": [WORKER, ...], "more": B}, each its registry document as
 * stored (host, pid, queues, plugins, concurrency, lease_seconds,
 * heartbeat, status as it last wrote it, "counters": {"run", "failed",
 * "retried", "given_back", "claims"}, what it did since its process
 * started, written with each heartbeat: docs/operations.md) with
 *   "state": "running", "quiet", "stopping", "stopped" or "lost": judged
 *     from the heartbeat's age against its lease on the server's clock, not
 *     from what it last wrote: a worker killed mid-run is "lost" once its
 *     heartbeat is older than its lease;
 *   "heartbeat_age_ms": N, absent when it has no heartbeat;
 *   "running": [{_id, type, queue, started, attempts}, ...]: the tasks in
 *     WORK_IN_PROGRESS under its id, read from `tasks`.
 * Stopped and lost workers' documents expire a day later (`expires`, a TTL
 * index). opts: limit. */
MT_EXPORT bool mt_admin_workers (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error);

/* Asks worker `id` to be "quiet" (claim nothing new, finish what runs,
 * stay up) or to "stop" (as on SIGTERM: no new claims, running tasks get
 * the grace, then go back), through its registry document: the worker
 * follows at its next heartbeat (lease/3), wherever it runs. This call
 * writes. opts: grace (an integer, seconds, 0 to 86400; stop only: the
 * worker's grace for this stop). {"worker": ID, "command": C, "state": S}
 * with the state it was in. A worker not in the registry fails with
 * MT_ERROR_CONFIG / MT_CONFIG_ERROR_NOT_FOUND; one stopped or lost, with
 * MT_CONFIG_ERROR_INVALID. */
MT_EXPORT bool mt_admin_worker_command (mongoc_client_t *client,
                                        const char *db,
                                        const char *id,
                                        const char *command,
                                        const bson_t *opts,
                                        bson_t *reply,
                                        bson_error_t *error);

/* Whether a live worker serves `queue` and has a plugin for `type` (NULL:
 * any): {"served": B, "workers": N, "queue_workers": M}: N running workers
 * (not quiet, stopping, stopped nor lost) take both, M the queue with any
 * types. No options. */
MT_EXPORT bool mt_admin_served (mongoc_client_t *client,
                                const char *db,
                                const char *queue,
                                const char *type,
                                const bson_t *opts,
                                bson_t *reply,
                                bson_error_t *error);

/* A number of seconds the way the admin replies write durations: in the
 * largest of d, h, m that holds it whole, from a minute up ("30d", "12h",
 * "90m"), else in seconds ("45s", "1.5s"). Writes into `buf` and returns
 * it. */
MT_EXPORT const char *mt_duration_format (double seconds, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MTASK_MTASK_H */
