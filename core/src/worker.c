/* The worker: threads that claim due tasks and run them through plugins.
 *
 * Each thread owns a client popped from one pool, claims with one atomic
 * findAndModify, runs process() and writes the outcome, fenced on the claim
 * it made. The thread that calls mt_worker_run() waits on a pipe: stop
 * requests (from signal handlers too) and the end of `once` arrive there. */
#include "crash.h"
#include "worker-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#ifndef MT_DEFAULT_PLUGIN_DIR
#define MT_DEFAULT_PLUGIN_DIR "/usr/local/lib/mtask/plugins"
#endif

const char *
mt_default_plugin_dir (void)
{
   return MT_DEFAULT_PLUGIN_DIR;
}

/* ---- configuration ----------------------------------------------------- */

void
mt_worker_config_init (mt_worker_config_t *config)
{
   memset (config, 0, sizeof *config);
   config->struct_size = sizeof *config;
   config->host = "localhost";
   config->port = 27017;
   config->concurrency = 1;
   config->poll_interval_ms = 1000;
   config->log_level = MT_LOG_INFO;
   config->lease_ms = 30 * 1000;
   config->grace_ms = 30 * 1000;
   config->max_attempts = 3;
   config->retry_backoff_ms = 2000;
   config->isolate = MT_ISOLATE_NONE;
}

/* Whether a caller's config struct (maybe from an older header) has `field`. */
#define CONFIG_HAS(config, field) \
   ((config)->struct_size >= offsetof (mt_worker_config_t, field) + sizeof ((config)->field))

static bool
config_invalid (bson_error_t *error, const char *message)
{
   bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "%s", message);
   return false;
}

static bool
config_check (const mt_worker_config_t *config, bson_error_t *error)
{
   if (!config || config->struct_size < offsetof (mt_worker_config_t, builtin_plugins)) {
      return config_invalid (error, "worker config: call mt_worker_config_init() before setting fields");
   }
   if (!config->db || !config->db[0]) {
      return config_invalid (error, "worker config: a database name is required (--db)");
   }
   if (!config->queue_names || !config->queue_names[0]) {
      return config_invalid (error, "worker config: at least one queue name is required (--queues)");
   }
   for (size_t i = 0; config->queue_names[i]; i++) {
      if (!config->queue_names[i][0]) {
         return config_invalid (error, "worker config: a queue name is empty");
      }
      if (!mt_queue_name_check (config->queue_names[i], error)) {
         return false;
      }
   }
   if (config->worker_id && !config->worker_id[0]) {
      return config_invalid (error, "worker config: the worker id (--pid) must not be empty");
   }
   if (config->concurrency < 1 || config->concurrency > 1024) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "worker config: concurrency %d is out of range; give 1 to 1024 threads",
                      config->concurrency);
      return false;
   }
   if (CONFIG_HAS (config, isolate)) {
      if (config->lease_ms < 1000 || config->lease_ms > 24 * 3600 * 1000) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "worker config: lease %" PRId64 " ms is out of range; give 1 s to 1 day",
                         config->lease_ms);
         return false;
      }
      if (config->grace_ms < 0 || config->grace_ms > 24 * 3600 * 1000) {
         return config_invalid (error, "worker config: grace is out of range; give 0 s to 1 day");
      }
      if (config->max_attempts < 1) {
         return config_invalid (error, "worker config: max_attempts must be 1 or more");
      }
      if (config->retry_backoff_ms < 0 || config->retry_backoff_ms > 3600 * 1000) {
         return config_invalid (error, "worker config: retry backoff is out of range; give 0 s to 1 hour");
      }
      if (config->isolate != MT_ISOLATE_NONE && config->isolate != MT_ISOLATE_FORK) {
         return config_invalid (error, "worker config: isolate must be MT_ISOLATE_NONE or MT_ISOLATE_FORK");
      }
   }
   if (config->poll_interval_ms < 1 || config->poll_interval_ms > 3600 * 1000) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "worker config: poll interval %" PRId64 " ms is out of range; give 1 ms to 1 hour",
                      config->poll_interval_ms);
      return false;
   }
   return true;
}

static char *
generate_worker_id (void)
{
   uuid_t uuid;
   char text[37];

   uuid_generate_time (uuid);
   uuid_unparse_lower (uuid, text);
   return bson_strdup (text);
}

mt_worker_t *
mt_worker_new (const mt_worker_config_t *config, bson_error_t *error)
{
   mt_worker_t *worker;
   const char *default_dirs[] = {MT_DEFAULT_PLUGIN_DIR, NULL};
   const char *const *dirs;

   if (!config_check (config, error)) {
      return NULL;
   }
   mongoc_init ();

   worker = bson_malloc0 (sizeof *worker);
   worker->wake_pipe[0] = worker->wake_pipe[1] = -1;
   worker->crash_fd = -1;
   mt_context_init (&worker->ctx);
   bson_init (&worker->queues_array);
   bson_init (&worker->types_array);

   worker->ctx.db = bson_strdup (config->db);
   worker->queues = mt_strv_copy (config->queue_names);
   worker->ctx.worker_id = config->worker_id ? bson_strdup (config->worker_id) : generate_worker_id ();
   worker->concurrency = config->concurrency;
   worker->poll_interval_ms = config->poll_interval_ms;
   worker->once = config->once;
   worker->ctx.log_func = config->log_func;
   worker->ctx.log_data = config->log_data;
   worker->ctx.log_level = config->log_level;
   worker->grace_ms = 30 * 1000;
   worker->isolate = MT_ISOLATE_NONE;
   if (CONFIG_HAS (config, isolate)) {
      worker->ctx.lease_ms = config->lease_ms;
      worker->grace_ms = config->grace_ms;
      worker->ctx.max_attempts = config->max_attempts;
      worker->ctx.retry_backoff_ms = config->retry_backoff_ms;
      worker->isolate = config->isolate;
   }
   if (CONFIG_HAS (config, archive)) {
      worker->archive = config->archive;
   }
   if (CONFIG_HAS (config, replace)) {
      worker->replace = config->replace;
   }
   worker->slots = bson_malloc0 ((size_t) worker->concurrency * sizeof *worker->slots);
   if (gethostname (worker->hostname, sizeof worker->hostname - 1) != 0) {
      bson_strncpy (worker->hostname, "unknown", sizeof worker->hostname);
   }

   worker->uri = mt_uri_new (config->uri, config->host, config->port, error);
   if (!worker->uri) {
      goto fail;
   }
   {
      /* Every client of the worker (its pool, an isolated task's own) reads
       * from the primary and writes with w: majority unless the URI says
       * otherwise (docs/reliability.md). */
      const char *asked = mt_uri_apply_policy (worker->uri, MT_URI_PRIMARY_READS | MT_URI_MAJORITY_WRITES);

      if (asked) {
         mt_log (&worker->ctx,
                 MT_LOG_INFO,
                 "the URI's readPreference '%s' is not used: the worker reads from the primary, since its reads "
                 "decide what it runs",
                 asked);
      }
   }

   worker->host = mt_host_new (worker);
   worker->plugins = mt_plugin_set_new (&worker->host->api);
   if (CONFIG_HAS (config, types) && config->types) {
      mt_plugin_set_allow_types (worker->plugins, config->types);
   }
   for (size_t i = 0; config->builtin_plugins && config->builtin_plugins[i]; i++) {
      if (!mt_plugin_set_add_builtin (worker->plugins, config->builtin_plugins[i], error)) {
         goto fail;
      }
   }
   dirs = config->plugin_dirs ? config->plugin_dirs : default_dirs;
   /* Every directory and plugin, so that all that would not load are named. */
   for (size_t i = 0; dirs[i]; i++) {
      (void) mt_plugin_set_load_dir (worker->plugins, dirs[i], NULL);
   }
   if (!mt_plugin_set_report_refused (worker->plugins, &worker->ctx, error)) {
      goto fail;
   }
   if (mt_plugin_set_count (worker->plugins) == 0) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_DIR,
                      "no task plugins found (looked for *.so in %s%s); give --plugins DIR",
                      dirs[0] ? dirs[0] : "no directory",
                      dirs[0] && dirs[1] ? " and others" : "");
      goto fail;
   }
   for (size_t i = 0; CONFIG_HAS (config, types) && config->types && config->types[i]; i++) {
      if (!mt_plugin_set_find (worker->plugins, config->types[i])) {
         bson_set_error (error,
                         MT_ERROR_PLUGIN,
                         MT_PLUGIN_ERROR_DIR,
                         "task type '%s' of --types has no plugin (looked for *.so in %s%s); add its plugin or "
                         "drop it from --types",
                         config->types[i],
                         dirs[0] ? dirs[0] : "no directory",
                         dirs[0] && dirs[1] ? " and others" : "");
         goto fail;
      }
   }
   worker->types = bson_malloc0 ((mt_plugin_set_count (worker->plugins) + 1) * sizeof (char *));
   for (size_t i = 0; i < mt_plugin_set_count (worker->plugins); i++) {
      const mt_plugin_t *d = mt_plugin_set_at (worker->plugins, i)->descriptor;

      worker->types[i] = bson_strdup (d->type);
      if (d->struct_size >= offsetof (mt_plugin_t, max_attempts) + sizeof (int32_t) && d->max_attempts > 0) {
         mt_retry_set_budget (&worker->ctx, d->type, d->max_attempts);
      }
   }
   bson_destroy (&worker->queues_array);
   bson_destroy (&worker->types_array);
   mt_strv_to_array (worker->queues, &worker->queues_array);
   mt_strv_to_array (worker->types, &worker->types_array);

   /* The worker retries on its own, so the driver need not wait 30 s before
    * it reports an unreachable server; a URI may still say otherwise. */
   if (!mongoc_uri_has_option (worker->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
      mongoc_uri_set_option_as_int32 (worker->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, MT_SERVER_SELECTION_MS);
   }
   worker->pool = mongoc_client_pool_new_with_error (worker->uri, error);
   if (!worker->pool) {
      goto fail;
   }
   mongoc_client_pool_set_error_api (worker->pool, MONGOC_ERROR_API_VERSION_2);
   mongoc_client_pool_set_appname (worker->pool, "mtask-worker");
   /* A client per thread, one each for the heartbeat and upkeep threads, one for run(). */
   mongoc_client_pool_max_size (worker->pool, (uint32_t) worker->concurrency + 3);

   if (pipe (worker->wake_pipe) != 0) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cannot create a pipe: %s", strerror (errno));
      goto fail;
   }
   for (int i = 0; i < 2; i++) {
      fcntl (worker->wake_pipe[i], F_SETFD, FD_CLOEXEC);
      fcntl (worker->wake_pipe[i], F_SETFL, O_NONBLOCK);
   }
   return worker;

fail:
   mt_worker_destroy (worker);
   return NULL;
}

const char *
mt_worker_id (const mt_worker_t *worker)
{
   return worker->ctx.worker_id;
}

const char *const *
mt_worker_types (const mt_worker_t *worker)
{
   return (const char *const *) worker->types;
}

void
mt_worker_catch_crashes (mt_worker_t *worker, bool json)
{
   worker->catch_crashes = true;
   worker->crash_json = json;
}

void
mt_worker_stop (mt_worker_t *worker)
{
   /* Only write(2): async-signal-safe. */
   if (worker && worker->wake_pipe[1] >= 0) {
      ssize_t r = write (worker->wake_pipe[1], "s", 1);
      (void) r;
   }
}

void
mt_worker_quiet (mt_worker_t *worker)
{
   /* Only write(2): async-signal-safe. The run's wait turns it into the
    * flag the threads read. */
   if (worker && worker->wake_pipe[1] >= 0) {
      ssize_t r = write (worker->wake_pipe[1], "q", 1);
      (void) r;
   }
}

void
mt_worker_destroy (mt_worker_t *worker)
{
   if (!worker) {
      return;
   }
   if (mt_context_get (&worker->ctx, &worker->ctx.abandoned)) {
      /* Threads still run plugin code with this state: the process is
       * about to end; freeing it under them would be worse. */
      return;
   }
   for (int i = 0; worker->slots && i < worker->concurrency; i++) {
      if (worker->slots[i].busy) {
         bson_value_destroy (&worker->slots[i].id);
      }
   }
   bson_free (worker->slots);
   mt_plugin_set_destroy (worker->plugins);
   mt_host_destroy (worker->host); /* after fini, which may log through it */
   mt_crash_disarm (worker->crash_fd, worker->ctx.db, worker->ctx.worker_id);
   if (worker->pool) {
      mongoc_client_pool_destroy (worker->pool);
   }
   mongoc_uri_destroy (worker->uri);
   for (int i = 0; i < 2; i++) {
      if (worker->wake_pipe[i] >= 0) {
         close (worker->wake_pipe[i]);
      }
   }
   bson_destroy (&worker->queues_array);
   bson_destroy (&worker->types_array);
   mt_strv_free (worker->types);
   mt_strv_free (worker->queues);
   mt_context_cleanup (&worker->ctx);
   bson_free (worker);
}

/* ---- running tasks ------------------------------------------------------ */

static bool
is_stopping (mt_worker_t *worker)
{
   return mt_context_get (&worker->ctx, &worker->ctx.stopping);
}

/* Whether a --once run gave up on the database: its threads stop. */
static bool
gave_up (mt_worker_t *worker)
{
   return mt_context_get (&worker->ctx, &worker->failed);
}

/* Quiet (mt_worker_quiet): no new claims. */
static bool
is_quiet (mt_worker_t *worker)
{
   return mt_context_get (&worker->ctx, &worker->quiet);
}

/* Waits up to `ms`, or less when the worker is asked to stop. Returns false
 * when it is stopping. */
static bool
idle_wait (mt_worker_t *worker, int64_t ms)
{
   return !mt_context_wait (&worker->ctx, ms, &worker->ctx.stopping);
}

/* At most one thread sweeps per interval; `force` sweeps now. */
static void
maybe_sweep (mt_worker_t *worker, mongoc_collection_t *tasks, bool force)
{
   int64_t now = bson_get_monotonic_time ();
   bson_error_t error;
   int64_t marked;
   bool due;

   pthread_mutex_lock (&worker->ctx.mutex);
   /* Once at the start and when a claim trips on a document; otherwise
    * the upkeep tick's winner sweeps, for every worker (upkeep.c). */
   due = force || worker->last_sweep_us == 0;
   if (due) {
      worker->last_sweep_us = now;
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
   if (!due) {
      return;
   }
   marked = mt_store_sweep (tasks, &worker->queues_array, &error);
   if (marked < 0) {
      mt_log (&worker->ctx, MT_LOG_WARNING, "sweep of malformed tasks failed: %s", error.message);
   } else if (marked > 0) {
      mt_log (&worker->ctx, MT_LOG_WARNING, "marked %" PRId64 " malformed task(s) FAILED", marked);
   }
}

/* Gives back one task this worker holds, as it was before the claim
 * (attempt not counted), with what the run took. */
static void
give_back_held (mt_worker_t *worker, mongoc_client_t *client, mongoc_collection_t *tasks, const bson_value_t *id, int32_t attempts, const char *id_str)
{
   mt_lock_owner_t owner = {.task_id = id, .worker_id = worker->ctx.worker_id, .attempt = attempts};
   bson_t filter = BSON_INITIALIZER, update;
   bson_error_t error;
   bool ok = false;

   BSON_APPEND_VALUE (&filter, "_id", id);
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   BSON_APPEND_UTF8 (&filter, "worker_pid", worker->ctx.worker_id);
   BSON_APPEND_INT32 (&filter, "attempts", attempts);
   mt_give_back_update (&update, 0);
   /* A stepdown or a write concern not met is over in moments: a few
    * tries (0.7 s at most) before the attempt is left to the lease. */
   for (int i = 0;; i++) {
      bson_t reply;
      bool again;

      ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, &reply, &error);
      again = !ok && i < 2 && mt_error_is_transient (&error, &reply);
      bson_destroy (&reply);
      if (!again) {
         break;
      }
      usleep ((useconds_t) (200 << i) * 1000);
   }
   if (ok) {
      MT_COUNT (worker, given_back);
      mt_log (&worker->ctx, MT_LOG_WARNING, "task %s given back: the worker is stopping", id_str);
      mt_locks_release_all (client, worker->ctx.db, &owner, &error);
      mt_slot_release (client, worker->ctx.db, id, attempts, &error);
   } else {
      mt_log (&worker->ctx,
              MT_LOG_ERROR,
              "task %s: cannot give it back (%s); another worker takes it when this one's lease ends",
              id_str,
              error.message);
   }
   bson_destroy (&update);
   bson_destroy (&filter);
}

/* Gives back what thread `slot` claimed ahead; under worker->ctx.mutex. */
static void
give_back_ahead_locked (mt_worker_t *worker, int slot, mongoc_client_t *client, mongoc_collection_t *tasks)
{
   mt_slot_t *s = &worker->slots[slot];

   for (int a = 0; a < s->n_ahead; a++) {
      give_back_held (worker, client, tasks, &s->ahead[a].id, s->ahead[a].attempts, s->ahead[a].id_str);
      bson_value_destroy (&s->ahead[a].id);
   }
   s->n_ahead = 0;
}

/* Records claimed-ahead documents on the thread's slot, for the heartbeat
 * (their leases) and for giving back. */
static void
hold_ahead (mt_worker_t *worker, int slot, const bson_t *docs, size_t n)
{
   mt_slot_t *s = &worker->slots[slot];

   pthread_mutex_lock (&worker->ctx.mutex);
   for (size_t i = 0; i < n && s->n_ahead < MT_CLAIM_BATCH_MAX; i++) {
      mt_held_t *held = &s->ahead[s->n_ahead];
      bson_iter_t iter;

      /* Only what giving it back needs; the document is parsed when it runs. */
      if (!bson_iter_init_find (&iter, &docs[i], "_id")) {
         continue;
      }
      bson_value_copy (bson_iter_value (&iter), &held->id);
      mt_task_id_string (&held->id, held->id_str, sizeof held->id_str);
      held->attempts = bson_iter_init_find (&iter, &docs[i], "attempts") ? (int32_t) bson_iter_as_int64 (&iter) : 0;
      s->n_ahead++;
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
}

static bool
values_equal (const bson_value_t *a, const bson_value_t *b)
{
   bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
   bool equal;

   BSON_APPEND_VALUE (&x, "v", a);
   BSON_APPEND_VALUE (&y, "v", b);
   equal = bson_equal (&x, &y);
   bson_destroy (&x);
   bson_destroy (&y);
   return equal;
}

/* Takes the next claimed-ahead document off the slot's list to run it:
 * false when it was given back meanwhile (the worker is stopping). */
static bool
take_ahead (mt_worker_t *worker, int slot, const bson_t *doc)
{
   mt_slot_t *s = &worker->slots[slot];
   bson_iter_t iter;
   bool found = false;

   if (!bson_iter_init_find (&iter, doc, "_id")) {
      return true; /* never held: mt_run_task fails it as malformed */
   }
   pthread_mutex_lock (&worker->ctx.mutex);
   for (int a = 0; a < s->n_ahead && !found; a++) {
      if (values_equal (bson_iter_value (&iter), &s->ahead[a].id)) {
         found = true;
         bson_value_destroy (&s->ahead[a].id);
         memmove (&s->ahead[a], &s->ahead[a + 1], (size_t) (s->n_ahead - a - 1) * sizeof s->ahead[0]);
         s->n_ahead--;
      }
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
   return found;
}

/* mt_run_task, with what runs described for a crash (crash.c). */
static void
run_task (mt_worker_t *worker, int slot, mongoc_client_t *client, mongoc_collection_t *tasks, bson_t *doc, bool ahead)
{
   mt_crash_thread_t *crash = NULL;
   bson_iter_t iter;
   char id[25] = "?";
   const char *type = "?";
   int32_t attempt = 0;

   if (worker->catch_crashes && worker->isolate == MT_ISOLATE_NONE) {
      if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter)) {
         bson_oid_to_string (bson_iter_oid (&iter), id);
      }
      if (bson_iter_init_find (&iter, doc, "type") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         type = bson_iter_utf8 (&iter, NULL);
      }
      if (bson_iter_init_find (&iter, doc, "attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
         attempt = (int32_t) bson_iter_as_int64 (&iter);
      }
      crash = bson_malloc0 (sizeof *crash);
      mt_crash_task_begin (crash, worker->crash_fd, worker->ctx.worker_id, worker->crash_json, id, type, attempt);
   }
   mt_run_task (worker, slot, client, tasks, doc, ahead); /* steals doc */
   if (crash) {
      mt_crash_task_end ();
      bson_free (crash);
   }
}

static void *
thread_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   int slot;
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->ctx.db, MT_TASKS_COLLECTION);
   int64_t backoff = 0, failing_since = 0, idle_ms = 0;
   bson_t ahead[MT_CLAIM_BATCH_MAX];
   size_t n_ahead = 0, next_ahead = 0, batch = 1;
   char unclaimed[300] = ""; /* the token of a claim that failed */

   pthread_mutex_lock (&worker->ctx.mutex);
   slot = worker->next_slot++;
   pthread_mutex_unlock (&worker->ctx.mutex);

   while (!is_stopping (worker) && !gave_up (worker)) {
      bson_error_t error;
      bson_t doc;
      const char *what;
      bool claimed, ok;

      if (next_ahead < n_ahead) {
         /* A task claimed ahead: run it (it is ours until then). */
         bson_t *next = &ahead[next_ahead++];

         if (take_ahead (worker, slot, next)) {
            bson_copy_to (next, &doc);
            run_task (worker, slot, client, tasks, &doc, next_ahead > 1);
         }
         bson_destroy (next);
         continue;
      }
      n_ahead = next_ahead = 0;
      if (is_quiet (worker)) {
         /* Claimed ahead is run above; nothing new until stopped. */
         if (worker->once || !idle_wait (worker, worker->poll_interval_ms)) {
            break;
         }
         continue;
      }

      /* What a failed claim may have taken goes back first: its write may
       * have been applied though the call failed (a lost reply, a write
       * concern error, a read back that failed), and what carries its
       * token is not held by anyone. No new claim until that is done, or
       * the next failure would leave two tokens behind. */
      what = "claim";
      claimed = false;
      bson_init (&doc);
      ok = true;
      if (unclaimed[0]) {
         ok = mt_store_unclaim (tasks, worker->ctx.worker_id, unclaimed, &error) >= 0;
         if (ok) {
            unclaimed[0] = '\0';
         } else {
            what = "give back what a failed claim took";
         }
      }
      if (ok) {
         char token[300];

         maybe_sweep (worker, tasks, false);
         /* Unique to this claim: a token never names two holds. */
         mt_store_claim_token (worker->ctx.worker_id, token, sizeof token);
         if (batch > 1) {
            /* A backlog: several tasks for one scan of the collection. */
            MT_COUNT (worker, claims);
            ok = mt_store_claim_batch (tasks,
                                       worker->ctx.worker_id,
                                       token,
                                       &worker->queues_array,
                                       &worker->types_array,
                                       mt_server_now (&worker->ctx),
                                       batch,
                                       ahead,
                                       &n_ahead,
                                       &error);
            claimed = n_ahead > 0;
            if (ok) {
               hold_ahead (worker, slot, ahead, n_ahead);
               /* Grow while every claim comes back full; otherwise start over. */
               batch = n_ahead == batch ? BSON_MIN (batch * 2, MT_CLAIM_BATCH_MAX) : 1;
            }
         } else {
            MT_COUNT (worker, claims);
            ok = mt_store_claim_ex (tasks,
                                    worker->ctx.worker_id,
                                    token,
                                    &worker->queues_array,
                                    &worker->types_array,
                                    mt_server_now (&worker->ctx),
                                    &doc,
                                    &claimed,
                                    &error);
            batch = ok && claimed ? 2 : 1;
         }
         if (!ok) {
            bson_strncpy (unclaimed, token, sizeof unclaimed);
         }
      }
      if (!ok) {
         bson_destroy (&doc);
         batch = 1;
         backoff = backoff ? BSON_MIN (backoff * 2, MT_RETRY_MAX_MS) : BSON_MIN (100, worker->poll_interval_ms);
         if (mt_error_is_transient (&error, NULL)) {
            int64_t now = bson_get_monotonic_time ();

            failing_since = failing_since ? failing_since : now;
            if (worker->once && now - failing_since > (int64_t) MT_OUTCOME_RETRY_LIMIT_MS * 1000) {
               /* A --once run (say, from cron) must end: give up. */
               pthread_mutex_lock (&worker->ctx.mutex);
               worker->failed = true;
               worker->failure = error;
               pthread_mutex_unlock (&worker->ctx.mutex);
               break;
            }
            if (mt_error_is_network (&error)) {
               mt_log (&worker->ctx, MT_LOG_WARNING, "cannot reach the database: %s; retrying in %" PRId64 " ms", error.message, backoff);
            } else {
               /* A failover, a shutdown, a write concern not met in time:
                * the same again shortly. */
               mt_log (&worker->ctx,
                       MT_LOG_WARNING,
                       "cannot %s now (%s); the database should serve it again shortly: retrying in %" PRId64 " ms",
                       what,
                       error.message,
                       backoff);
            }
         } else if (strcmp (what, "claim")) {
            /* Refused for good: no use trying again. */
            mt_log (&worker->ctx,
                    MT_LOG_ERROR,
                    "cannot give back what a failed claim took (%s); it comes back when its lease ends",
                    error.message);
            unclaimed[0] = '\0';
         } else {
            /* A document the claim trips on (e.g. a mistyped field): the
             * sweep takes it out of the way. */
            mt_log (&worker->ctx, MT_LOG_ERROR, "claim failed: %s", error.message);
            maybe_sweep (worker, tasks, true);
         }
         if (!idle_wait (worker, backoff)) {
            break;
         }
         continue;
      }
      backoff = 0;
      failing_since = 0;
      if (claimed) {
         idle_ms = 0;
         if (n_ahead > 0) {
            bson_destroy (&doc); /* the batch is in `ahead` */
         } else {
            run_task (worker, slot, client, tasks, &doc, false);
         }
         continue;
      }
      bson_destroy (&doc);
      if (worker->once) {
         break;
      }
      /* Right after work, look again soon (poll/64), then back off to the
       * poll interval: a task arriving while this thread is idle waits a
       * fraction of the interval, and an idle worker costs what it did. */
      idle_ms = idle_ms ? BSON_MIN (idle_ms * 2, worker->poll_interval_ms) : BSON_MAX (1, worker->poll_interval_ms / 64);
      if (!idle_wait (worker, idle_ms)) {
         break;
      }
   }

   /* Stopping: what was claimed ahead and not run goes back. */
   pthread_mutex_lock (&worker->ctx.mutex);
   give_back_ahead_locked (worker, slot, client, tasks);
   pthread_mutex_unlock (&worker->ctx.mutex);
   for (int i = 0; unclaimed[0]; i++) {
      bson_error_t why;

      if (mt_store_unclaim (tasks, worker->ctx.worker_id, unclaimed, &why) >= 0) {
         unclaimed[0] = '\0';
      } else if (i < 3 && mt_error_is_transient (&why, NULL)) {
         usleep ((useconds_t) (100 << i) * 1000); /* a stepdown is over in moments */
      } else {
         mt_log (&worker->ctx, MT_LOG_WARNING, "cannot give back what a failed claim took (%s); its lease will", why.message);
         break;
      }
   }
   while (next_ahead < n_ahead) {
      bson_destroy (&ahead[next_ahead++]);
   }

   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (worker->pool, client);

   pthread_mutex_lock (&worker->ctx.mutex);
   if (--worker->running_threads == 0) {
      /* The last one out tells the main thread (once mode ends here). */
      ssize_t r = write (worker->wake_pipe[1], "d", 1);
      (void) r;
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
   return NULL;
}

/* The steps of a start, in order: refuse a sharded `tasks` or `slots`;
 * the indexes; this worker's id, for this process alone (a live worker
 * elsewhere under it refuses the start); its registry document, which also
 * sets our estimate of the server's clock; and the tasks an earlier run of
 * a worker with this id left WORK_IN_PROGRESS (none of them can be running
 * now). `*step` names the step that failed, for the message, or is NULL
 * when the error says all. */
static bool
start_steps (mt_worker_t *worker, mongoc_client_t *client, bool *registered, const char **step, bson_error_t *error)
{
   *step = "read config.collections";
   if (!mt_collections_check (&worker->ctx, client, error)) {
      if (error->domain == MT_ERROR_CONFIG) {
         *step = NULL; /* sharded: the message says which and what to do */
      }
      return false;
   }
   *step = "create its indexes";
   if (!mt_indexes_ensure_logged (&worker->ctx, client, error)) {
      return false;
   }
   *step = "register the worker";
   if (!mt_lease_register (&worker->ctx, client, worker->hostname, (int32_t) getpid (), worker->replace, error)) {
      if (error->domain == MT_ERROR_CONFIG) {
         *step = NULL; /* its id is in use: the message says by whom */
      }
      return false;
   }
   *registered = true;
   if (!mt_heartbeat_write (worker, client, NULL, NULL, error)) {
      return false;
   }
   *step = "take back what an earlier run of this worker id left";
   return mt_lease_reclaim (&worker->ctx, client, true, error) >= 0;
}

/* The start, waiting for the server while it cannot be reached. */
static bool
prepare (mt_worker_t *worker, const char **step, bson_error_t *error)
{
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   int64_t backoff = 250;
   bool ok, registered = false;

   while (!(ok = start_steps (worker, client, &registered, step, error))) {
      struct pollfd pfd = {.fd = worker->wake_pipe[0], .events = POLLIN};
      int n;

      if (!mt_error_is_transient (error, NULL) || worker->once) {
         break;
      }
      /* Unreachable, or a primary stepping down: the same as for claims. */
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "%s: %s; retrying in %" PRId64 " ms",
              mt_error_is_network (error) ? "cannot reach the database" : "the database cannot serve the start yet",
              error->message,
              backoff);
      /* The stop signal's handler may interrupt this very poll: look at
       * the pipe again rather than try the server once more. */
      do {
         n = poll (&pfd, 1, (int) backoff);
      } while (n < 0 && errno == EINTR);
      if (n > 0) {
         char c = 0;

         if (read (worker->wake_pipe[0], &c, 1) == 1 && c == 'q') {
            /* Quiet (SIGTSTP) while starting: remembered, not a stop. */
            mt_context_raise (&worker->ctx, &worker->quiet);
            mt_log (&worker->ctx, MT_LOG_INFO, "quiet: once started, no claims; stop the worker to end it");
            continue;
         }
         break; /* asked to stop */
      }
      backoff = BSON_MIN (backoff * 2, MT_RETRY_MAX_MS);
   }
   if (!ok && registered) {
      /* Registered, then failed: free the id for the next start. */
      bson_error_t ignored;

      mt_heartbeat_write (worker, client, "stopped", NULL, &ignored);
   }
   mongoc_client_pool_push (worker->pool, client);
   return ok;
}

/* Reads one byte from the wake pipe within `timeout_ms` (-1: no limit):
 * 's' a stop request, 'd' the last thread ended, 0 nothing came. */
static char
wait_byte (mt_worker_t *worker, int timeout_ms)
{
   struct pollfd pfd = {.fd = worker->wake_pipe[0], .events = POLLIN};
   char c;

   for (;;) {
      int n = poll (&pfd, 1, timeout_ms);

      if (n < 0 && errno == EINTR) {
         continue;
      }
      if (n <= 0) {
         return 0;
      }
      if (read (worker->wake_pipe[0], &c, 1) == 1) {
         return c;
      }
      if (timeout_ms >= 0) {
         return 0;
      }
   }
}

static int
threads_left (mt_worker_t *worker)
{
   int n;

   pthread_mutex_lock (&worker->ctx.mutex);
   n = worker->running_threads;
   pthread_mutex_unlock (&worker->ctx.mutex);
   return n;
}

/* Puts every task still running back to CREATED, its attempt not counted,
 * kills isolated children, and frees the tasks' locks. */
static void
give_back_all (mt_worker_t *worker)
{
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->ctx.db, MT_TASKS_COLLECTION);
   bool threads_busy = false;

   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      mt_slot_t *slot = &worker->slots[i];

      give_back_ahead_locked (worker, i, client, tasks);
      if (!slot->busy) {
         continue;
      }
      if (slot->child > 0) {
         kill (slot->child, SIGKILL);
      } else {
         threads_busy = true;
      }
      give_back_held (worker, client, tasks, &slot->id, slot->attempts, slot->id_str);
   }
   /* Isolated children are gone: their threads end at once. Threads still
    * inside process() cannot be stopped; the caller must end the process. */
   worker->ctx.abandoned = threads_busy;
   pthread_mutex_unlock (&worker->ctx.mutex);
   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (worker->pool, client);
}

/* After a stop request: no new claims; running tasks get the grace period,
 * then are given back. A second stop request gives them back at once. */
static void
shut_down (mt_worker_t *worker)
{
   int64_t deadline = bson_get_monotonic_time () + worker->grace_ms * 1000;

   mt_context_raise (&worker->ctx, &worker->ctx.stopping);
   if (threads_left (worker) > 0) {
      mt_log (&worker->ctx,
              MT_LOG_INFO,
              "stopping: no new claims; running tasks have %.0f s to finish, then they are given back "
              "(stop again to give them back now)",
              (double) worker->grace_ms / 1000.0);
   }
   while (threads_left (worker) > 0) {
      int64_t left_ms = (deadline - bson_get_monotonic_time ()) / 1000;
      char c;

      if (left_ms <= 0) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "grace period over: giving back the tasks still running");
         give_back_all (worker);
         return;
      }
      c = wait_byte (worker, (int) BSON_MIN (left_ms, 100));
      if (c == 's') {
         mt_log (&worker->ctx, MT_LOG_WARNING, "stopped again: giving back the tasks still running");
         give_back_all (worker);
         return;
      }
   }
}

bool
mt_worker_abandoned (const mt_worker_t *worker)
{
   return mt_context_get ((mt_context_t *) &worker->ctx, &worker->ctx.abandoned);
}

bool
mt_worker_run (mt_worker_t *worker, bson_error_t *error)
{
   pthread_t *threads;
   int started = 0;
   char names[1024] = "";
   const char *step = NULL;
   bool ok = true;

   if (!prepare (worker, &step, error)) {
      bson_error_t cause = *error;

      if (mt_error_is_transient (error, NULL) && !worker->once) {
         return true; /* stopped while waiting for the server */
      }
      if (step) {
         bson_set_error (error,
                         MT_ERROR_STORE,
                         MT_STORE_ERROR_WRITE,
                         "cannot prepare '%s.tasks' (%s): %s",
                         worker->ctx.db,
                         step,
                         cause.message);
      }
      return false;
   }
   if (worker->catch_crashes && worker->isolate == MT_ISOLATE_NONE && worker->crash_fd < 0) {
      /* After the take-back above, which read the notes of a crash. */
      bson_error_t note_error;

      worker->crash_fd = mt_crash_arm (worker->ctx.db, worker->ctx.worker_id, worker->crash_json, &note_error);
      if (worker->crash_fd < 0) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "%s", note_error.message);
      }
   }

   for (size_t i = 0; worker->types[i]; i++) {
      bson_strncpy (names + strlen (names), i ? ", " : "", sizeof names - strlen (names));
      bson_strncpy (names + strlen (names), worker->types[i], sizeof names - strlen (names));
   }
   {
      size_t len = strlen (names);

      bson_strncpy (names + len, "; queues: ", sizeof names - len);
      for (size_t i = 0; worker->queues[i]; i++) {
         bson_strncpy (names + strlen (names), i ? ", " : "", sizeof names - strlen (names));
         bson_strncpy (names + strlen (names), worker->queues[i], sizeof names - strlen (names));
      }
   }
   mt_log (&worker->ctx,
           MT_LOG_INFO,
           "worker '%s' started: db '%s', %d thread(s), task types: %s%s",
           worker->ctx.worker_id,
           worker->ctx.db,
           worker->concurrency,
           names,
           worker->once ? "; --once" : "");

   threads = bson_malloc0 ((size_t) worker->concurrency * sizeof *threads);
   pthread_mutex_lock (&worker->ctx.mutex);
   worker->ctx.stopping = false;
   worker->running_threads = worker->concurrency;
   pthread_mutex_unlock (&worker->ctx.mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      if (pthread_create (&threads[i], NULL, thread_main, worker) != 0) {
         bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cannot start thread %d: %s", i, strerror (errno));
         pthread_mutex_lock (&worker->ctx.mutex);
         worker->running_threads -= worker->concurrency - i;
         pthread_mutex_unlock (&worker->ctx.mutex);
         ok = false;
         mt_worker_stop (worker);
         break;
      }
      started++;
   }

   if (ok && !mt_heartbeat_start (worker, error)) {
      ok = false;
      mt_worker_stop (worker);
   }

   /* Wait for a stop request or for the last thread to end; a quiet
    * request (SIGTSTP, or the registry's command) only stops the claims. */
   for (char c; (c = wait_byte (worker, -1));) {
      if (c == 'q') {
         if (!is_quiet (worker)) {
            mt_context_raise (&worker->ctx, &worker->quiet);
            mt_log (&worker->ctx, MT_LOG_INFO, "quiet: no new claims; running tasks finish; stop the worker to end it");
         }
         continue;
      }
      if (c == 's') {
         shut_down (worker);
      }
      break;
   }
   mt_context_raise (&worker->ctx, &worker->ctx.stopping);

   if (!mt_context_get (&worker->ctx, &worker->ctx.abandoned)) {
      for (int i = 0; i < started; i++) {
         pthread_join (threads[i], NULL);
      }
      bson_free (threads);
   }
   mt_heartbeat_stop (worker);
   if (mt_context_get (&worker->ctx, &worker->ctx.abandoned)) {
      mt_log (&worker->ctx, MT_LOG_WARNING, "worker '%s' stopped, leaving tasks it gave back running", worker->ctx.worker_id);
      return ok;
   }

   /* Drain what is left so the next run starts clean. */
   for (char c; read (worker->wake_pipe[0], &c, 1) == 1;) {
   }
   pthread_mutex_lock (&worker->ctx.mutex);
   if (worker->failed) {
      bson_set_error (error,
                      MT_ERROR_STORE,
                      MT_STORE_ERROR_WRITE,
                      "gave up after a minute without the database: %s",
                      worker->failure.message);
      worker->failed = false;
      ok = false;
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
   mt_log (&worker->ctx, MT_LOG_INFO, "worker '%s' stopped", worker->ctx.worker_id);
   return ok;
}

bool
mt_worker_start (const mt_worker_config_t *config, bson_error_t *error)
{
   mt_worker_t *worker = mt_worker_new (config, error);
   bool ok;

   if (!worker) {
      return false;
   }
   ok = mt_worker_run (worker, error);
   mt_worker_destroy (worker);
   return ok;
}

bool
mt_worker_check (mt_worker_t *worker, bson_t *reply, bson_error_t *error)
{
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   mongoc_database_t *database = NULL;
   bson_t ping = BSON_INITIALIZER;
   bool ok = false, has_tasks;
   bson_error_t cause;

   bson_init (reply);
   BSON_APPEND_INT32 (&ping, "ping", 1);
   if (!mongoc_client_command_simple (client, "admin", &ping, NULL, NULL, &cause)) {
      bson_set_error (error,
                      cause.domain,
                      cause.code,
                      "cannot reach the database: %s; check the URI (or --host/--port) and that the server is up",
                      cause.message);
      goto cleanup;
   }
   if (!mt_collections_check (&worker->ctx, client, error)) {
      goto cleanup;
   }
   database = mongoc_client_get_database (client, worker->ctx.db);
   memset (&cause, 0, sizeof cause);
   has_tasks = mongoc_database_has_collection (database, MT_TASKS_COLLECTION, &cause);
   if (cause.code != 0) {
      bson_set_error (error, cause.domain, cause.code, "cannot list the collections of '%s': %s", worker->ctx.db, cause.message);
      goto cleanup;
   }
   BSON_APPEND_BOOL (reply, "tasks_collection", has_tasks);
   /* Without a tasks collection the check creates nothing (a mistyped --db
    * must not leave a new database behind); a start makes it and its
    * indexes. With one, its indexes are made as a start would make them. */
   if (has_tasks && !mt_indexes_ensure_logged (&worker->ctx, client, error)) {
      goto cleanup;
   }
   BSON_APPEND_BOOL (reply, "indexes", has_tasks);
   ok = true;

cleanup:
   mongoc_database_destroy (database);
   bson_destroy (&ping);
   mongoc_client_pool_push (worker->pool, client);
   return ok;
}
