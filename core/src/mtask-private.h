/* Private to libmtask: shared between its sources and its unit tests.
 *
 * The middle layers of the core, from the bottom up: the task document
 * model and the plugin loader (task.c, cron.c, plugin.c), the store
 * (store.c), and the features (lock.c, slot.c, schedule.c, archive.c,
 * group.c, sync.c, lease.c), each of which calls only what is below it.
 * The services under them are in context-private.h; the run of a task, the
 * upkeep tick and the worker over them in worker-private.h. The layering is
 * checked by tools/check-layers; docs/architecture.md draws it. */
#ifndef MTASK_PRIVATE_H
#define MTASK_PRIVATE_H

#include "context-private.h"

#define MT_DELAY_MAX_S (3650.0 * 24 * 3600) /* ten years */

/* Whether the monotonic clock (bson_get_monotonic_time) has passed
 * `deadline_us`; never when it is 0. The upkeep's work per tick is bounded
 * so: what is left waits for the next tick. */
static inline bool
mt_deadline_passed (int64_t deadline_us)
{
   return deadline_us > 0 && bson_get_monotonic_time () >= deadline_us;
}

/* ---- task documents (task.c) ------------------------------------------ */

/* The fields of a claimed task document the worker relies on, validated.
 * Strings point into `doc`, which must outlive this struct. */
typedef struct {
   bson_value_t id; /* _id, any BSON type (ObjectId when mtask made it) */
   char id_str[64]; /* printable _id: 24 hex digits for an ObjectId */
   const char *queue;
   const char *type;
   bson_t params; /* static view into doc; empty when absent or null */
   int32_t attempts;
   const char *worker_pid; /* NULL when null or absent */
   bson_t accounts;        /* static view: the array of accounts to lock; empty when absent */
   int32_t max_attempts;   /* 0 when the task does not say */
   double timeout;         /* seconds; 0 when the task does not say */
   const char *pool;       /* its slot pool, or NULL */

   /* Scheduling (schedule.c). */
   double repeat;          /* seconds between runs; 0 when it does not repeat by interval */
   const char *cron;       /* its cron expression, or NULL */
   const char *timezone;   /* the cron expression's time zone, or NULL (UTC) */
   int64_t repeat_until;   /* ms since the epoch; 0 when unbounded */
   int64_t scheduled;      /* ms: the time this run stands for; 0 when unknown */
   bson_oid_t series;      /* valid when has_series */
   bool has_series;
   const char *unique_key; /* or NULL */
} mt_task_doc_t;

/* Validates and extracts. On a malformed document, fails with
 * MT_ERROR_TASK / MT_TASK_ERROR_MALFORMED and a message naming the field;
 * `out->id` and `out->id_str` are still filled when `_id` exists, so the
 * caller can mark that very document FAILED. */
bool mt_task_doc_parse (const bson_t *doc, mt_task_doc_t *out, bson_error_t *error);

/* The claim filter's one source of truth, for the claim and for the sweep
 * that finds what the claim can never take. */
void mt_task_doc_malformed_filter (bson_t *filter_or);

/* A task's _id as printed in logs and errors: 24 hex digits for an
 * ObjectId. */
void mt_task_id_string (const bson_value_t *id, char *out, size_t size);

/* Human name of a BSON type, for error messages: "string", "document"... */
const char *mt_bson_type_name (bson_type_t type);

/* Appends {domain, code, message} under `key`. */
void mt_append_error (bson_t *doc, const char *key, const bson_error_t *error);
/* Appends the $push of `error` to the task's capped `errors` history. */
void mt_append_error_history (bson_t *update, const bson_error_t *error, int32_t attempt);

/* How many of a claimed task's attempts failed before this one: its
 * `failures` (the count the retry budget checks; a delay or a give-back
 * is not one), or, on a document written before that field existed, its
 * claims before this one (`attempts` - 1), as the budget counted then. */
int32_t mt_task_failures (const bson_t *doc, int32_t attempts);

/* The update that puts a claimed task back as it was before its claim
 * (CREATED, attempt not counted, no started or lease); `delayed_ms` 0 means
 * due at once. Initializes `update`. */
void mt_give_back_update (bson_t *update, int64_t delayed_ms);

/* Whether two BSON values are the same value of the same type (the same
 * bytes: 1 and 1.0 differ). */
bool mt_value_equal (const bson_value_t *a, const bson_value_t *b);

/* MongoDB's limit on a document (16 MiB), and what a result must leave of
 * it for the rest of the outcome (error, history, dates): 64 KiB. */
#define MT_DOCUMENT_MAX (16 * 1024 * 1024)
#define MT_RESULT_MARGIN (64 * 1024)

/* Whether `result` can be stored as the `result` of a task whose document
 * is `task_size` bytes: no key MongoDB refuses ('$'-prefixed or dotted, at
 * any depth), and room in the 16 MiB limit. Fails with
 * MT_PLUGIN_ERROR_API naming the key (its dotted path) or the sizes. */
bool mt_result_check (const bson_t *result, size_t task_size, bson_error_t *error);

/* ---- plugins (plugin.c) ------------------------------------------------- */

typedef struct _mt_plugin_set_t mt_plugin_set_t;

typedef struct {
   const mt_plugin_t *descriptor;
   void *state;
   char *path; /* "(built-in)" for built-ins */
   void *handle;
   bool initialized;
} mt_plugin_entry_t;

mt_plugin_set_t *mt_plugin_set_new (const mt_host_api_t *host);
/* Only these task types (NULL-terminated, copied) are loaded from now on: a
 * plugin of another type is closed again without its init (its file and
 * directory are still checked, and its constructors run). NULL: all. */
void mt_plugin_set_allow_types (mt_plugin_set_t *set, const char *const *types);
bool mt_plugin_set_load_file (mt_plugin_set_t *set, const char *path, bson_error_t *error);
/* Loads every *.so of `dir`, past failures: each plugin that would not load
 * (or the directory itself) is recorded in the set; false with the first. */
bool mt_plugin_set_load_dir (mt_plugin_set_t *set, const char *dir, bson_error_t *error);
size_t mt_plugin_set_refused_count (const mt_plugin_set_t *set);
const bson_error_t *mt_plugin_set_refused_at (const mt_plugin_set_t *set, size_t i);
/* True when nothing was refused. Else false with the one refusal, or, for
 * several, logs each on `ctx` (may be NULL) and sets a summary naming all. */
bool mt_plugin_set_report_refused (const mt_plugin_set_t *set, mt_context_t *ctx, bson_error_t *error);
bool mt_plugin_set_add_builtin (mt_plugin_set_t *set, const mt_plugin_t *plugin, bson_error_t *error);
const mt_plugin_entry_t *mt_plugin_set_find (const mt_plugin_set_t *set, const char *type);
size_t mt_plugin_set_count (const mt_plugin_set_t *set);
const mt_plugin_entry_t *mt_plugin_set_at (const mt_plugin_set_t *set, size_t i);
void mt_plugin_set_destroy (mt_plugin_set_t *set);

/* Checks a descriptor the way the loader does; `origin` names the file. */
bool mt_plugin_check (const mt_plugin_t *plugin, const char *origin, bson_error_t *error);

/* ---- the store (store.c) ----------------------------------------------- */

/* Reads the first document matching `filter` into `out` (always
 * initialized); `*found` says whether there was one. It asks for one
 * (limit 1, in a single batch) unless `opts` gives a limit. It reads from
 * the primary, whatever the client's read preference: the core reads to
 * decide (a lock's holder, a slot, a stage), and a secondary may not have
 * the write it must see yet. */
bool mt_find_one (mongoc_collection_t *collection, const bson_t *filter, const bson_t *opts, bson_t *out, bool *found, bson_error_t *error);
/* The same, with `prefs` (NULL: the collection's own, which a display
 * may keep; docs/production.md). */
bool mt_find_one_with_prefs (mongoc_collection_t *collection,
                             const bson_t *filter,
                             const bson_t *opts,
                             const mongoc_read_prefs_t *prefs,
                             bson_t *out,
                             bool *found,
                             bson_error_t *error);

/* Atomically claims the next due task of `queues` and `types` (BSON arrays
 * of strings): status CREATED, delayed unset or past, highest priority,
 * then oldest. On success `*claimed` is false when nothing was due, else
 * `task` holds the claimed document (already WORK_IN_PROGRESS). `now_ms`
 * is the server's time as the caller estimates it, for `delayed`. The
 * claim clears any `claim` token an earlier hold left. */
bool mt_store_claim (mongoc_collection_t *tasks,
                     const char *worker_id,
                     const bson_t *queues,
                     const bson_t *types,
                     int64_t now_ms,
                     bson_t *task,
                     bool *claimed,
                     bson_error_t *error);

/* The same, marking the task with `token` in `claim` (mt_store_claim_token;
 * NULL: none), so that when the call fails (a reply lost, a write concern
 * error: the claim may have been applied) the caller can give back by the
 * token (mt_store_unclaim) what it never got. */
bool mt_store_claim_ex (mongoc_collection_t *tasks,
                        const char *worker_id,
                        const char *token,
                        const bson_t *queues,
                        const bson_t *types,
                        int64_t now_ms,
                        bson_t *task,
                        bool *claimed,
                        bson_error_t *error);

/* A claim token unique to one claim, whatever process makes it: the
 * worker's id and a new ObjectId ("WORKER#<24 hex digits>"). */
void mt_store_claim_token (const char *worker_id, char *token, size_t size);

/* Claims up to `max` due tasks in three round trips (find the candidates,
 * claim each that is still due with one update, read back what carries
 * `token`, which must be unique to this call: mt_store_claim_token), every
 * read on the primary. `docs` (room for `max`) gets `*n` claimed
 * documents, each initialized, in claim order. For a backlog: it costs one
 * scan of the collection for several tasks. When the update or the read
 * back fails, whatever carries the token is given back before this
 * returns (attempt not counted; a transient failure of that is tried
 * again a few times); if even that fails, the error says so and the
 * caller must give back by the token (mt_store_unclaim) before it claims
 * again. */
bool mt_store_claim_batch (mongoc_collection_t *tasks,
                           const char *worker_id,
                           const char *token,
                           const bson_t *queues,
                           const bson_t *types,
                           int64_t now_ms,
                           size_t max,
                           bson_t *docs,
                           size_t *n,
                           bson_error_t *error);

/* Gives back, as they were before the claim (attempt not counted), the
 * tasks a claim with `token` claimed when its caller never got them: the
 * call failed after its update (the read back, or the reply of the update
 * itself, was lost). How many, or -1. `_reply`: with the driver's reply
 * (always initialized), for mt_error_is_transient. */
int64_t mt_store_unclaim (mongoc_collection_t *tasks, const char *worker_id, const char *token, bson_error_t *error);
int64_t mt_store_unclaim_reply (mongoc_collection_t *tasks, const char *worker_id, const char *token, bson_t *reply, bson_error_t *error);

/* Applies `update` to the task only while this worker still holds the claim
 * it made (`worker_pid` and `attempts`). Fails with MT_STORE_ERROR_LOST when
 * the claim is gone. */
bool mt_store_update_claimed (mongoc_collection_t *tasks,
                              const mt_task_doc_t *task,
                              const char *worker_id,
                              const bson_t *update,
                              bson_error_t *error);
/* The same, with the driver's reply (always initialized; bson_destroy it)
 * for mt_error_is_transient. */
bool mt_store_write_claimed (mongoc_collection_t *tasks,
                             const mt_task_doc_t *task,
                             const char *worker_id,
                             const bson_t *update,
                             bson_t *reply,
                             bson_error_t *error);

/* For a fenced write that ends the hold (an outcome: its $set names
 * `status`, and maybe `result`, `error`, `delayed`), retried after a
 * failure that may have hidden its success (a lost reply, a write concern
 * error) and found the claim gone: reads the task on the primary; `*landed`
 * says whether it shows that very outcome at the claim's attempt, with no
 * holder, i.e. an earlier try was applied. */
bool mt_store_outcome_landed (mongoc_collection_t *tasks,
                              const mt_task_doc_t *task,
                              const bson_t *update,
                              bool *landed,
                              bson_error_t *error);

/* Marks CREATED documents of `queues` (of every queue when NULL) that no
 * worker could ever claim (no type, mistyped fields) FAILED with an error
 * naming the field, and fills the defaults of documents inserted without
 * them. Returns how many were marked, or -1 on error. Its `$or` is served
 * by no index: the upkeep tick's winner runs it, for every queue. */
int64_t mt_store_sweep (mongoc_collection_t *tasks, const bson_t *queues, bson_error_t *error);

/* ---- account locks (lock.c) --------------------------------------------- */

/* A sorted copy of `accounts` without duplicates, NULL-terminated; fails with
 * MT_LOCK_ERROR_INVALID on an empty or oversized name. */
char **mt_accounts_normalize (const char *const *accounts, size_t n_accounts, bson_error_t *error);

/* Locks the sorted accounts, all or nothing; `newly` (may be NULL) gets the
 * ones this call took, NULL-terminated. */
bool mt_locks_acquire_sorted (mongoc_client_t *client,
                              const char *db,
                              const mt_lock_owner_t *owner,
                              char *const *accounts,
                              char ***newly,
                              bson_error_t *error);

/* The field that holds a task's unique_key while the task is live (WAITING,
 * CREATED, WORK_IN_PROGRESS), under a partial unique index; removed when it
 * ends, so that the key can be used again. */
#define MT_UNIQUE_HELD_FIELD "unique_held"

/* The unique index on MT_UNIQUE_HELD_FIELD (partial on strings; an older
 * sparse one is accepted): created, or found in place, once per process
 * and database (URI and db), then remembered. */
bool mt_unique_index_ensure (mongoc_client_t *client, const char *db, bson_error_t *error);

/* The worker's mt_indexes_ensure: each index on its own; an index the
 * server refuses (85, 86) is accepted when an equivalent one exists, with a
 * warning in ctx's log; one mtask can do without is left out with a
 * warning; only a missing unique one (correctness) fails the call, naming
 * the index in the way and how to fix it. */
bool mt_indexes_ensure_logged (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error);

/* Refuses (MT_ERROR_CONFIG / MT_CONFIG_ERROR_STATE) a database whose
 * `tasks` or `slots` is sharded (config.collections); warns in ctx's log of
 * `locks` sharded on other than _id and `group_stages` on other than group.
 * When `config` cannot be read (a user without the right to), says so at
 * debug or info level and succeeds; a network error fails, untouched. */
bool mt_collections_check (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error);

/* Inserts a task document. With MT_UNIQUE_HELD_FIELD set and the key held
 * by a live task, inserts nothing: `*created` false and `holder` that
 * task's _id (zeroed when not an ObjectId). */
bool mt_task_insert (mongoc_collection_t *tasks, const bson_t *doc, bool *created, bson_oid_t *holder, bson_error_t *error);

/* A new task document with mt_enqueue's options, in `status`; `doc` is
 * always initialized. */
bool mt_task_build (const char *queue,
                    const char *type,
                    const bson_t *params,
                    const bson_t *opts,
                    const char *status,
                    bson_t *doc,
                    bson_oid_t *id,
                    bson_error_t *error);

/* Whether the run a holder document names ({task, worker_pid, attempt}: a
 * lock or a slot) is still going on: its task is WORK_IN_PROGRESS with that
 * worker and attempt. */
bool mt_run_is_live (mongoc_client_t *client, const char *db, const bson_t *holder, bool *live, bson_error_t *error);

/* Releases the sorted accounts if `owner` holds them. */
bool mt_locks_release_sorted (mongoc_client_t *client,
                              const char *db,
                              const mt_lock_owner_t *owner,
                              char *const *accounts,
                              bson_error_t *error);

/* ---- staged groups (group.c) ------------------------------------------- */

/* Counts an ended task of a stage, once; completes the stage and starts the
 * next when it was the last. `_doc`: from a task document (no-op for tasks
 * outside groups). */
bool mt_group_task_ended (mongoc_client_t *client,
                          const char *db,
                          const bson_oid_t *group,
                          int32_t stage,
                          const bson_value_t *task_id,
                          bson_error_t *error);
bool mt_group_task_ended_doc (mongoc_client_t *client, const char *db, const bson_t *task, bson_error_t *error);
/* Upkeep tick: counts what crashes left uncounted, completes stages and
 * groups that stalled, deletes kept groups whose time is up. `_until`:
 * stops once the monotonic clock passes `deadline_us` (0: no limit). */
bool mt_groups_upkeep (mongoc_client_t *client, const char *db, int64_t now_ms, bson_error_t *error);
bool mt_groups_upkeep_until (mongoc_client_t *client, const char *db, int64_t now_ms, int64_t deadline_us, bson_error_t *error);

/* ---- synchronizers (sync.c) -------------------------------------------- */

/* Upkeep tick: start requested synchronizers, advance running ones. */
bool mt_sync_upkeep (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error);

/* ---- concurrency slots (slot.c) ----------------------------------------- */

/* Takes a slot of `pool` for `owner`; `slot_id` gets its _id. */
bool mt_slot_acquire (mt_context_t *ctx,
                      mongoc_client_t *client,
                      const char *pool,
                      const mt_lock_owner_t *owner,
                      bool *got,
                      char *slot_id,
                      size_t slot_id_size,
                      bson_error_t *error);
bool mt_slot_release (mongoc_client_t *client, const char *db, const bson_value_t *task_id, int32_t attempt, bson_error_t *error);
/* The keepalive of the slot a run holds; `*held` false when the run no
 * longer holds one. */
bool mt_slot_touch (mongoc_client_t *client, const char *db, const bson_value_t *task_id, int32_t attempt, bool *held, bson_error_t *error);
/* Upkeep tick: takes back slots whose keepalive is older than their pool's
 * timeout (their runs failed after), and slots of runs that are over; fails
 * the timed-out runs a crash left not failed. `_until`: stops once the
 * monotonic clock passes `deadline_us` (0: no limit); the next tick goes on. */
bool mt_slots_upkeep (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error);
bool mt_slots_upkeep_until (mt_context_t *ctx, mongoc_client_t *client, int64_t deadline_us, bson_error_t *error);

/* What the database says of the slot a run holds, for the watcher that
 * calls the plugin's slot callbacks. */
typedef struct {
   bool holds;        /* the run still holds its slot (true when unknown) */
   int64_t keepalive; /* the slot's last keepalive, ms; 0 when unknown */
   bool cancelled;    /* the slot is gone because its task was stopped */
} mt_slot_state_t;

void mt_slot_state (mongoc_client_t *client, const char *db, const bson_value_t *task_id, int32_t attempt, mt_slot_state_t *state);

/* ---- repeating tasks (schedule.c) --------------------------------------- */

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
bool mt_schedule_create_successor (mt_context_t *ctx, mongoc_client_t *client, const bson_t *ended, bool repair, bson_error_t *error);
/* Upkeep tick: plans and creates successors that ended runs lack.
 * `_until`: stops once the monotonic clock passes `deadline_us` (0: no
 * limit). */
bool mt_schedule_upkeep (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error);
bool mt_schedule_upkeep_until (mt_context_t *ctx, mongoc_client_t *client, int64_t deadline_us, bson_error_t *error);

/* ---- the archive (archive.c) -------------------------------------------- */

/* Moves an ended task into completed_tasks (`*moved` false when it is not
 * in tasks, or not movable). */
bool mt_archive_move (mongoc_client_t *client, const char *db, const bson_value_t *id, bool *moved, bson_error_t *error);
/* Moves the ended tasks of `queues` (a BSON array); how many, or -1 when
 * the database is away. A task that cannot be moved for another reason is
 * marked (`archive_error`) and passed over. `_until`: stops once the
 * monotonic clock passes `deadline_us` (0: no limit); the next sweep goes
 * on. */
int64_t mt_archive_sweep (mt_context_t *ctx, mongoc_client_t *client, const bson_t *queues, bson_error_t *error);
int64_t mt_archive_sweep_until (mt_context_t *ctx, mongoc_client_t *client, const bson_t *queues, int64_t deadline_us, bson_error_t *error);

/* ---- the watch on tasks (watch.c) ---------------------------------------- */

/* The change stream's pipeline: the events that may make a task of
 * `queues` and `types` due (watch.c says which, and why). Initializes
 * `pipeline`. */
void mt_watch_pipeline (const bson_t *queues, const bson_t *types, bson_t *pipeline);
/* Opens the change stream on `tasks`, each getMore waiting up to
 * `await_ms` for an event; NULL and `error` when the server refuses it. */
mongoc_change_stream_t *
mt_watch_open (mongoc_collection_t *tasks, const bson_t *queues, const bson_t *types, int64_t await_ms, bson_error_t *error);
/* The next event: 1 (and the `delayed` it names, server time, or 0 when
 * the task is due now), 0 when none came within the await time, -1 on an
 * error the driver could not resume from: the stream is over. */
int mt_watch_next (mongoc_change_stream_t *stream, int64_t *delayed_ms, bson_error_t *error);
/* Whether the server has no change streams (a standalone: 40573). */
bool mt_watch_unsupported (const bson_error_t *error);
/* The earliest `delayed` after `now_ms` of a CREATED task of `queues` and
 * `types`, in *when_ms (0: none), read on the primary. */
bool mt_watch_next_delayed (mongoc_collection_t *tasks,
                            const bson_t *queues,
                            const bson_t *types,
                            int64_t now_ms,
                            int64_t *when_ms,
                            bson_error_t *error);

/* ---- leases (lease.c) ---------------------------------------------------- */

/* Registers this worker's id in `workers` for this process (`host`, `pid`),
 * with one conditional write: only while the entry is free (none,
 * `stopped`, a heartbeat older than its lease on the server's clock, this
 * very process, or a process of this machine that is gone). Else fails
 * with MT_ERROR_CONFIG / MT_CONFIG_ERROR_STATE naming the live holder and
 * what to do. `replace` registers whatever the entry says (and logs whom it
 * replaces); the replaced worker stops claiming at its next heartbeat. */
bool mt_lease_register (mt_context_t *ctx, mongoc_client_t *client, const char *host, int32_t pid, bool replace, bson_error_t *error);
/* How long the registry keeps a stopped or lost worker's document for
 * whoever looks: its `expires` is set that far ahead, and a TTL index
 * (mtask_workers_ttl) or, where the server has none, any live worker's
 * upkeep (mt_lease_reclaim) deletes it then. */
#define MT_WORKER_KEEP_MS ((int64_t) 24 * 3600 * 1000)

/* The worker's registry document in `workers`: `fields` ($set: host, pid,
 * queues, status, the tasks it holds...) with a server-stamped heartbeat,
 * from which the context's estimate of the server's clock is updated; then
 * the leases of the tasks in `held` (an array of _ids) are renewed. The
 * write is conditional on the `host` and `pid` of `fields`: when another
 * process has taken the id over, it fails with MT_ERROR_STORE /
 * MT_STORE_ERROR_LOST, raises ctx->stopping (no new claims) and still
 * renews the leases of `held`. With `entry`, the document as written is
 * copied there (always initialized): its `command` and `grace`, set by
 * mt_admin_worker_command(), are the worker's to follow. */
bool mt_lease_heartbeat (
   mt_context_t *ctx, mongoc_client_t *client, const bson_t *fields, const bson_t *held, bson_t *entry, bson_error_t *error);
/* Takes back the tasks of workers whose lease ran out (or, `own_only`, what
 * an earlier worker with this id left running). How many, or -1. */
int64_t mt_lease_reclaim (mt_context_t *ctx, mongoc_client_t *client, bool own_only, bson_error_t *error);

#endif /* MTASK_PRIVATE_H */
