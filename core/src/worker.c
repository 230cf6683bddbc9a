/* The worker: its configuration, its start, its shutdown.
 *
 * Its threads (dispatch.c) are one claimer for the process and the runner
 * threads that run what it claims, each owning a client popped from one
 * pool; the outcome of a task is fenced on the claim that took it. The
 * thread that calls mt_worker_run() waits on a pipe: stop requests (from
 * signal handlers too) and the end of `once` arrive there. */
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
   config->wake = MT_WAKE_AUTO;
   config->safety_poll_ms = 30 * 1000;
   config->prefetch_ms = 50;
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
   if (CONFIG_HAS (config, prefetch_ms)) {
      if (config->wake != MT_WAKE_AUTO && config->wake != MT_WAKE_CHANGE_STREAM && config->wake != MT_WAKE_POLL) {
         return config_invalid (error, "worker config: wake must be MT_WAKE_AUTO, MT_WAKE_CHANGE_STREAM or MT_WAKE_POLL");
      }
      if (config->safety_poll_ms < 1000 || config->safety_poll_ms > 24 * 3600 * 1000) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "worker config: safety poll %" PRId64 " ms is out of range; give 1 s to 1 day",
                         config->safety_poll_ms);
         return false;
      }
      if (config->prefetch_ms < 0 || config->prefetch_ms > 60 * 1000) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "worker config: prefetch %" PRId64 " ms is out of range; give 0 (off) to 60000 ms",
                         config->prefetch_ms);
         return false;
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
   worker->wake = MT_WAKE_AUTO;
   worker->safety_poll_ms = 30 * 1000;
   worker->prefetch_ms = 50;
   if (CONFIG_HAS (config, prefetch_ms)) {
      worker->wake = config->wake;
      worker->safety_poll_ms = config->safety_poll_ms;
      worker->prefetch_ms = config->prefetch_ms;
   }
   mt_dispatch_init (worker);
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
   /* A client per runner thread, one each for the claimer, the watch, the
    * heartbeat and upkeep threads, one for run(). */
   mongoc_client_pool_max_size (worker->pool, (uint32_t) worker->concurrency + 5);

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
   mt_dispatch_cleanup (worker);
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

/* ---- flags ------------------------------------------------------------- */

/* Quiet (mt_worker_quiet): no new claims. */
static bool
is_quiet (mt_worker_t *worker)
{
   return mt_context_get (&worker->ctx, &worker->quiet);
}

/* Raises a flag the dispatch's threads wait on. */
static void
raise_flag (mt_worker_t *worker, bool *flag)
{
   mt_context_raise (&worker->ctx, flag);
   mt_dispatch_kick (worker);
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

   mt_dispatch_give_back_held (worker, client, tasks);
   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      mt_slot_t *slot = &worker->slots[i];

      if (!slot->busy) {
         continue;
      }
      if (slot->child > 0) {
         kill (slot->child, SIGKILL);
      } else {
         threads_busy = true;
      }
      mt_dispatch_give_back (worker, client, tasks, &slot->id, slot->attempts, slot->id_str);
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

   raise_flag (worker, &worker->ctx.stopping);
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

   pthread_mutex_lock (&worker->ctx.mutex);
   worker->ctx.stopping = false;
   pthread_mutex_unlock (&worker->ctx.mutex);
   if (!mt_dispatch_start (worker, error)) {
      return false;
   }

   if (!mt_heartbeat_start (worker, error)) {
      ok = false;
      mt_worker_stop (worker);
   }

   /* Wait for a stop request or for the last thread to end; a quiet
    * request (SIGTSTP, or the registry's command) only stops the claims. */
   for (char c; (c = wait_byte (worker, -1));) {
      if (c == 'q') {
         if (!is_quiet (worker)) {
            raise_flag (worker, &worker->quiet);
            mt_log (&worker->ctx, MT_LOG_INFO, "quiet: no new claims; running tasks finish; stop the worker to end it");
         }
         continue;
      }
      if (c == 's') {
         shut_down (worker);
      }
      break;
   }
   raise_flag (worker, &worker->ctx.stopping);

   if (!mt_context_get (&worker->ctx, &worker->ctx.abandoned)) {
      mt_dispatch_join (worker);
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
