/* The worker: threads that claim due tasks and run them through plugins.
 *
 * Each thread owns a client popped from one pool, claims with one atomic
 * findAndModify, runs process() and writes the outcome, fenced on the claim
 * it made. The thread that calls mt_worker_run() waits on a pipe: stop
 * requests (from signal handlers too) and the end of `once` arrive there. */
#include "mtask-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#define MT_SWEEP_INTERVAL_US (5 * 1000 * 1000)
#define MT_RETRY_MAX_MS 5000
#define MT_OUTCOME_RETRY_LIMIT_MS (60 * 1000)
#define MT_SERVER_SELECTION_MS 5000
#define MT_BUSY_DELAY_S 1.0 /* a task whose account is busy waits about this long */

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
};

/* The running task behind the plugin's mt_task_t. */
typedef struct {
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
} mt_running_t;

static void
worker_log (mt_worker_t *worker, mt_log_level_t level, const char *format, ...) BSON_GNUC_PRINTF (3, 4);

static void
worker_log (mt_worker_t *worker, mt_log_level_t level, const char *format, ...)
{
   char message[2048];
   va_list args;

   if (!worker->log_func || level > worker->log_level) {
      return;
   }
   va_start (args, format);
   vsnprintf (message, sizeof message, format, args);
   va_end (args);
   worker->log_func (level, message, worker->log_data);
}

const char *
mt_log_level_name (mt_log_level_t level)
{
   switch (level) {
   case MT_LOG_ERROR:
      return "error";
   case MT_LOG_WARNING:
      return "warning";
   case MT_LOG_INFO:
      return "info";
   case MT_LOG_DEBUG:
   default:
      return "debug";
   }
}

const char *
mt_default_plugin_dir (void)
{
   return MT_DEFAULT_PLUGIN_DIR;
}

/* ---- the host API ------------------------------------------------------ */

static mt_running_t *
running (const mt_task_t *task)
{
   return (mt_running_t *) task;
}

static const char *
host_task_id (const mt_task_t *task)
{
   return running (task)->parsed.id_str;
}

static const char *
host_task_type (const mt_task_t *task)
{
   return running (task)->parsed.type;
}

static const char *
host_task_queue (const mt_task_t *task)
{
   return running (task)->parsed.queue;
}

static const bson_t *
host_task_params (const mt_task_t *task)
{
   return &running (task)->parsed.params;
}

static int32_t
host_task_attempt (const mt_task_t *task)
{
   return running (task)->parsed.attempts;
}

static bool
host_set_result (mt_task_t *task, const bson_t *result, bson_error_t *error)
{
   mt_running_t *run = running (task);

   if (!result) {
      bson_set_error (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_API, "set_result: result must not be NULL");
      return false;
   }
   bson_destroy (&run->result);
   bson_copy_to (result, &run->result);
   run->has_result = true;
   return true;
}

static bool
host_set_status (mt_task_t *task, const char *status, bson_error_t *error)
{
   static const char *const allowed[] = {MT_STATUS_FINISHED, MT_STATUS_FAILED, MT_STATUS_CANCELLED};
   mt_running_t *run = running (task);

   for (size_t i = 0; status && i < sizeof allowed / sizeof allowed[0]; i++) {
      if (!strcmp (status, allowed[i])) {
         run->status = allowed[i];
         run->delayed = false;
         return true;
      }
   }
   bson_set_error (error,
                   MT_ERROR_TASK,
                   MT_TASK_ERROR_BAD_STATUS,
                   "set_status: '%s' is not a status a plugin can set; use FINISHED, FAILED or CANCELLED, or "
                   "delay() to run again later",
                   status ? status : "(null)");
   return false;
}

static bool
host_set_status_message (mt_task_t *task, const char *message, bson_error_t *error)
{
   mt_running_t *run = running (task);
   bson_t update = BSON_INITIALIZER, set;
   bool ok;

   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   if (message) {
      BSON_APPEND_UTF8 (&set, "status_message", message);
   } else {
      BSON_APPEND_NULL (&set, "status_message");
   }
   bson_append_document_end (&update, &set);
   ok = mt_store_update_claimed (run->tasks, &run->parsed, run->worker->worker_id, &update, error);
   bson_destroy (&update);
   return ok;
}

static bool
host_delay (mt_task_t *task, double seconds, bson_error_t *error)
{
   mt_running_t *run = running (task);

   if (!(seconds >= 0 && seconds <= 366.0 * 24 * 3600)) {
      bson_set_error (
         error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_API, "delay: %g seconds is out of range (0 to one year)", seconds);
      return false;
   }
   run->delayed = true;
   run->delay_seconds = seconds;
   run->status = NULL;
   return true;
}

static void
host_log (mt_task_t *task, mt_log_level_t level, const char *message)
{
   mt_running_t *run = running (task);

   worker_log (run->worker, level, "task %s (%s): %s", run->parsed.id_str, run->parsed.type, message);
}

static mt_lock_owner_t
owner_of (const mt_running_t *run)
{
   mt_lock_owner_t owner = {.task_id = &run->parsed.id, .worker_id = run->worker->worker_id, .attempt = run->parsed.attempts};
   return owner;
}

static bool
contains (char *const *strv, const char *s)
{
   for (size_t i = 0; strv && strv[i]; i++) {
      if (!strcmp (strv[i], s)) {
         return true;
      }
   }
   return false;
}

/* held := held + add (add_sorted) or held - remove, kept sorted. */
static void
held_update (mt_running_t *run, char *const *accounts, bool add)
{
   size_t n = 0, m = 0;
   char **next;

   while (run->held && run->held[n]) {
      n++;
   }
   while (accounts && accounts[m]) {
      m++;
   }
   next = bson_malloc0 ((n + m + 1) * sizeof *next);
   n = 0;
   for (size_t i = 0; run->held && run->held[i]; i++) {
      if (add || !contains (accounts, run->held[i])) {
         next[n++] = bson_strdup (run->held[i]);
      }
   }
   for (size_t i = 0; add && accounts && accounts[i]; i++) {
      if (!contains (run->held, accounts[i])) {
         next[n++] = bson_strdup (accounts[i]);
      }
   }
   next[n] = NULL;
   qsort (next, n, sizeof *next, mt_strcmp_ptr);
   mt_strv_free (run->held);
   run->held = next;
}

static bool
host_lock_accounts (mt_task_t *task, const char *const *accounts, size_t n_accounts, bson_error_t *error)
{
   mt_running_t *run = running (task);
   mt_lock_owner_t owner = owner_of (run);
   char **sorted = mt_accounts_normalize (accounts, n_accounts, error);
   bool ok;

   if (!sorted) {
      return false;
   }
   ok = mt_locks_acquire_sorted (run->client, run->worker->db, &owner, sorted, NULL, error);
   if (ok) {
      held_update (run, sorted, true);
   }
   mt_strv_free (sorted);
   return ok;
}

static bool
host_unlock_accounts (mt_task_t *task, const char *const *accounts, size_t n_accounts, bson_error_t *error)
{
   mt_running_t *run = running (task);
   mt_lock_owner_t owner = owner_of (run);
   char **sorted = mt_accounts_normalize (accounts, n_accounts, error);
   bool ok;

   if (!sorted) {
      return false;
   }
   ok = mt_locks_release (run->client, run->worker->db, &owner, (const char *const *) sorted, mt_strv_len (sorted), error);
   if (ok) {
      held_update (run, sorted, false);
   }
   mt_strv_free (sorted);
   return ok;
}

static const char *const *
host_held_accounts (mt_task_t *task)
{
   mt_running_t *run = running (task);

   if (!run->held) {
      run->held = bson_malloc0 (sizeof *run->held);
   }
   return (const char *const *) run->held;
}

static bool
host_with_accounts (mt_task_t *task,
                    const char *const *accounts,
                    size_t n_accounts,
                    bool (*fn) (mt_task_t *task, void *data, bson_error_t *error),
                    void *data,
                    bson_error_t *error)
{
   mt_running_t *run = running (task);
   mt_lock_owner_t owner = owner_of (run);
   char **sorted, **newly = NULL;
   bson_error_t release_error;
   bool ok;

   if (run->in_scope) {
      bson_set_error (error,
                      MT_ERROR_LOCK,
                      MT_LOCK_ERROR_NESTED,
                      "with_accounts: task %s is already inside a scoped lock; a nested one would release the "
                      "outer one's accounts early, so lock everything in the outer one",
                      run->parsed.id_str);
      return false;
   }
   if (!fn) {
      bson_set_error (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_API, "with_accounts: fn must not be NULL");
      return false;
   }
   sorted = mt_accounts_normalize (accounts, n_accounts, error);
   if (!sorted) {
      return false;
   }
   ok = mt_locks_acquire_sorted (run->client, run->worker->db, &owner, sorted, &newly, error);
   mt_strv_free (sorted);
   if (!ok) {
      return false;
   }
   held_update (run, newly, true);
   run->in_scope = true;
   ok = fn (task, data, error);
   run->in_scope = false;
   /* Release what this scope took, whatever fn returned. */
   if (newly[0]) {
      if (mt_locks_release (run->client, run->worker->db, &owner, (const char *const *) newly, mt_strv_len (newly), &release_error)) {
         held_update (run, newly, false);
      } else {
         worker_log (run->worker,
                     MT_LOG_WARNING,
                     "task %s: cannot release its scoped locks yet (%s); they go when the task ends",
                     run->parsed.id_str,
                     release_error.message);
      }
   }
   mt_strv_free (newly);
   return ok;
}

static void *
host_mongoc_client (mt_task_t *task)
{
   return running (task)->client;
}

static const char *
host_db_name (mt_task_t *task)
{
   return running (task)->worker->db;
}

static const mt_host_api_t host_api = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_host_api_t),
   .task_id = host_task_id,
   .task_type = host_task_type,
   .task_queue = host_task_queue,
   .task_params = host_task_params,
   .task_attempt = host_task_attempt,
   .set_result = host_set_result,
   .set_status = host_set_status,
   .set_status_message = host_set_status_message,
   .delay = host_delay,
   .log = host_log,
   .lock_accounts = host_lock_accounts,
   .unlock_accounts = host_unlock_accounts,
   .held_accounts = host_held_accounts,
   .with_accounts = host_with_accounts,
   .mongoc_client = host_mongoc_client,
   .db_name = host_db_name,
};

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
}

static char **
strv_copy (const char *const *strv)
{
   size_t n = 0;
   char **copy;

   while (strv && strv[n]) {
      n++;
   }
   copy = bson_malloc0 ((n + 1) * sizeof *copy);
   for (size_t i = 0; i < n; i++) {
      copy[i] = bson_strdup (strv[i]);
   }
   return copy;
}

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

static void
strings_to_array (char *const *strv, bson_t *array)
{
   char key[16];
   const char *k;

   bson_init (array);
   for (uint32_t i = 0; strv[i]; i++) {
      bson_uint32_to_string (i, &k, key, sizeof key);
      bson_append_utf8 (array, k, -1, strv[i], -1);
   }
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
   pthread_mutex_init (&worker->mutex, NULL);
   pthread_cond_init (&worker->cond, NULL);
   bson_init (&worker->queues_array);
   bson_init (&worker->types_array);

   worker->db = bson_strdup (config->db);
   worker->queues = strv_copy (config->queue_names);
   worker->worker_id = config->worker_id ? bson_strdup (config->worker_id) : generate_worker_id ();
   worker->concurrency = config->concurrency;
   worker->poll_interval_ms = config->poll_interval_ms;
   worker->once = config->once;
   worker->log_func = config->log_func;
   worker->log_data = config->log_data;
   worker->log_level = config->log_level;

   worker->uri = mt_uri_new (config->uri, config->host, config->port, error);
   if (!worker->uri) {
      goto fail;
   }

   worker->plugins = mt_plugin_set_new (&host_api);
   for (size_t i = 0; config->builtin_plugins && config->builtin_plugins[i]; i++) {
      if (!mt_plugin_set_add_builtin (worker->plugins, config->builtin_plugins[i], error)) {
         goto fail;
      }
   }
   dirs = config->plugin_dirs ? config->plugin_dirs : default_dirs;
   for (size_t i = 0; dirs[i]; i++) {
      if (!mt_plugin_set_load_dir (worker->plugins, dirs[i], error)) {
         goto fail;
      }
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
   worker->types = bson_malloc0 ((mt_plugin_set_count (worker->plugins) + 1) * sizeof (char *));
   for (size_t i = 0; i < mt_plugin_set_count (worker->plugins); i++) {
      worker->types[i] = bson_strdup (mt_plugin_set_at (worker->plugins, i)->descriptor->type);
   }
   bson_destroy (&worker->queues_array);
   bson_destroy (&worker->types_array);
   strings_to_array (worker->queues, &worker->queues_array);
   strings_to_array (worker->types, &worker->types_array);

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
   mongoc_client_pool_max_size (worker->pool, (uint32_t) worker->concurrency + 1);

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
   return worker->worker_id;
}

const char *const *
mt_worker_types (const mt_worker_t *worker)
{
   return (const char *const *) worker->types;
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
mt_worker_destroy (mt_worker_t *worker)
{
   if (!worker) {
      return;
   }
   mt_plugin_set_destroy (worker->plugins);
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
   bson_free (worker->worker_id);
   bson_free (worker->db);
   pthread_cond_destroy (&worker->cond);
   pthread_mutex_destroy (&worker->mutex);
   bson_free (worker);
}

/* ---- running tasks ------------------------------------------------------ */

static bool
is_stopping (mt_worker_t *worker)
{
   bool stopping;

   pthread_mutex_lock (&worker->mutex);
   stopping = worker->stopping;
   pthread_mutex_unlock (&worker->mutex);
   return stopping;
}

/* Waits up to `ms`, or less when the worker is asked to stop. Returns false
 * when it is stopping. */
static bool
idle_wait (mt_worker_t *worker, int64_t ms)
{
   struct timespec deadline;
   bool stopping;

   clock_gettime (CLOCK_MONOTONIC, &deadline);
   deadline.tv_sec += ms / 1000;
   deadline.tv_nsec += (ms % 1000) * 1000000L;
   if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
   }
   pthread_mutex_lock (&worker->mutex);
   while (!worker->stopping) {
      if (pthread_cond_timedwait (&worker->cond, &worker->mutex, &deadline) == ETIMEDOUT) {
         break;
      }
   }
   stopping = worker->stopping;
   pthread_mutex_unlock (&worker->mutex);
   return !stopping;
}

static void
append_error (bson_t *doc, const char *key, const bson_error_t *error)
{
   bson_t child;

   BSON_APPEND_DOCUMENT_BEGIN (doc, key, &child);
   BSON_APPEND_INT32 (&child, "domain", (int32_t) error->domain);
   BSON_APPEND_INT32 (&child, "code", (int32_t) error->code);
   BSON_APPEND_UTF8 (&child, "message", error->message);
   bson_append_document_end (doc, &child);
}

/* Builds the outcome update: status, finished, result, error, worker_pid. */
static void
outcome_update (mt_running_t *run, bool ok, const bson_error_t *failure, bson_t *update)
{
   bson_t set, date;
   const char *status;

   bson_init (update);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$set", &set);
   BSON_APPEND_NULL (&set, "worker_pid");
   if (run->has_result) {
      BSON_APPEND_DOCUMENT (&set, "result", &run->result);
   }
   if (!ok) {
      append_error (&set, "error", failure);
   }
   if (run->delayed) {
      BSON_APPEND_UTF8 (&set, "status", MT_STATUS_CREATED);
      BSON_APPEND_DATE_TIME (&set, "delayed", mt_now_ms () + (int64_t) (run->delay_seconds * 1000.0));
      bson_append_document_end (update, &set);
      return;
   }
   status = run->status ? run->status : (ok ? MT_STATUS_FINISHED : MT_STATUS_FAILED);
   BSON_APPEND_UTF8 (&set, "status", status);
   bson_append_document_end (update, &set);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$currentDate", &date);
   BSON_APPEND_BOOL (&date, "finished", true);
   bson_append_document_end (update, &date);
}

/* Writes an outcome, retrying while the server cannot be reached: a result
 * is never dropped because the database blinked. Gives up after a minute
 * and says so; the task then stays WORK_IN_PROGRESS with this worker's id,
 * visible to operators and to recovery. */
static void
write_outcome (mt_worker_t *worker, mt_running_t *run, const bson_t *update)
{
   int64_t backoff = 100, start = bson_get_monotonic_time ();
   bson_error_t error;

   while (!mt_store_update_claimed (run->tasks, &run->parsed, worker->worker_id, update, &error)) {
      if (error.domain == MT_ERROR_STORE && error.code == MT_STORE_ERROR_LOST) {
         worker_log (worker, MT_LOG_WARNING, "task %s: outcome dropped: %s", run->parsed.id_str, error.message);
         return;
      }
      if (!mt_error_is_network (&error) ||
          bson_get_monotonic_time () - start > (int64_t) MT_OUTCOME_RETRY_LIMIT_MS * 1000) {
         worker_log (worker,
                     MT_LOG_ERROR,
                     "task %s: cannot write its outcome (%s); it stays WORK_IN_PROGRESS held by '%s'",
                     run->parsed.id_str,
                     error.message,
                     worker->worker_id);
         return;
      }
      worker_log (worker,
                  MT_LOG_WARNING,
                  "task %s: cannot write its outcome yet (%s); retrying in %" PRId64 " ms",
                  run->parsed.id_str,
                  error.message,
                  backoff);
      usleep ((useconds_t) backoff * 1000);
      backoff = BSON_MIN (backoff * 2, MT_RETRY_MAX_MS);
   }
}

/* Fails a claimed document that cannot be run (malformed). */
static void
fail_claimed (mt_worker_t *worker, mt_running_t *run, const bson_error_t *why)
{
   bson_t update = BSON_INITIALIZER, set, date;

   worker_log (worker, MT_LOG_WARNING, "task %s: %s; marked FAILED", run->parsed.id_str, why->message);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_UTF8 (&set, "status", MT_STATUS_FAILED);
   BSON_APPEND_NULL (&set, "worker_pid");
   append_error (&set, "error", why);
   bson_append_document_end (&update, &set);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
   BSON_APPEND_BOOL (&date, "finished", true);
   bson_append_document_end (&update, &date);
   write_outcome (worker, run, &update);
   bson_destroy (&update);
}

/* Puts a claimed task back as it was before the claim, not counting the
 * attempt, to be tried again after `seconds`. */
static void
give_back (mt_worker_t *worker, mt_running_t *run, double seconds, const char *why)
{
   bson_t update = BSON_INITIALIZER, child;

   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &child);
   BSON_APPEND_UTF8 (&child, "status", MT_STATUS_CREATED);
   BSON_APPEND_NULL (&child, "worker_pid");
   BSON_APPEND_DATE_TIME (&child, "delayed", mt_now_ms () + (int64_t) (seconds * 1000.0));
   bson_append_document_end (&update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$inc", &child);
   BSON_APPEND_INT32 (&child, "attempts", -1);
   bson_append_document_end (&update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$unset", &child);
   BSON_APPEND_UTF8 (&child, "started", "");
   bson_append_document_end (&update, &child);
   worker_log (worker, MT_LOG_DEBUG, "task %s (%s): given back for %.1f s: %s", run->parsed.id_str, run->parsed.type, seconds, why);
   write_outcome (worker, run, &update);
   bson_destroy (&update);
}

/* A short wait with jitter, so tasks waiting on one account do not all come
 * back at the same moment. */
static double
busy_delay (void)
{
   return MT_BUSY_DELAY_S * (0.5 + (double) (rand () % 1000) / 1000.0);
}

/* Takes the task's declared `accounts` for this run. False means the task
 * must not run now (it has been given back or failed). */
static bool
take_declared_accounts (mt_worker_t *worker, mt_running_t *run)
{
   mt_lock_owner_t owner = owner_of (run);
   size_t n = (size_t) bson_count_keys (&run->parsed.accounts), i = 0;
   const char **names;
   bson_iter_t iter;
   bson_error_t error;
   char **sorted;
   bool ok;

   if (n == 0) {
      return true;
   }
   names = bson_malloc0 ((n + 1) * sizeof *names);
   if (bson_iter_init (&iter, &run->parsed.accounts)) {
      while (bson_iter_next (&iter) && i < n) {
         names[i++] = bson_iter_utf8 (&iter, NULL); /* checked by the parser */
      }
   }
   sorted = mt_accounts_normalize (names, i, &error);
   bson_free (names);
   if (!sorted) {
      bson_error_t why;

      bson_set_error (&why, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, "malformed task: field 'accounts': %s", error.message);
      fail_claimed (worker, run, &why);
      return false;
   }
   ok = mt_locks_acquire_sorted (run->client, worker->db, &owner, sorted, NULL, &error);
   if (ok) {
      run->declared = sorted;
      held_update (run, sorted, true);
      return true;
   }
   mt_strv_free (sorted);
   if (error.domain != MT_ERROR_LOCK) {
      worker_log (worker, MT_LOG_WARNING, "task %s: cannot take its accounts: %s", run->parsed.id_str, error.message);
   }
   give_back (worker, run, busy_delay (), error.message);
   return false;
}

/* Releases whatever the run still holds; warns about what the plugin took
 * and forgot. */
static void
release_leftovers (mt_worker_t *worker, mt_running_t *run)
{
   mt_lock_owner_t owner = owner_of (run);
   bson_error_t error;
   char forgotten[512] = "";

   for (size_t i = 0; run->held && run->held[i]; i++) {
      if (!contains (run->declared, run->held[i])) {
         size_t len = strlen (forgotten);
         bson_snprintf (forgotten + len, sizeof forgotten - len, "%s'%s'", len ? ", " : "", run->held[i]);
      }
   }
   if (forgotten[0]) {
      worker_log (worker,
                  MT_LOG_WARNING,
                  "task %s (%s) still held account lock(s) %s when process() returned; released them",
                  run->parsed.id_str,
                  run->parsed.type,
                  forgotten);
   }
   if (run->held && run->held[0] && mt_locks_release_all (run->client, worker->db, &owner, &error) < 0) {
      /* Not a lock any more once the run is over: the next taker takes it
       * over. Say so and go on. */
      worker_log (worker,
                  MT_LOG_WARNING,
                  "task %s: cannot release its account locks (%s); they lapse now that the task has ended",
                  run->parsed.id_str,
                  error.message);
   }
}

static void
run_task (mt_worker_t *worker, mongoc_client_t *client, mongoc_collection_t *tasks, bson_t *doc)
{
   mt_running_t run;
   const mt_plugin_entry_t *plugin;
   bson_error_t failure = {0};
   bson_t update;
   bool ok;

   memset (&run, 0, sizeof run);
   run.base.host = &host_api;
   run.worker = worker;
   run.client = client;
   run.tasks = tasks;
   bson_init (&run.result);
   bson_steal (&run.doc, doc);

   if (!mt_task_doc_parse (&run.doc, &run.parsed, &failure)) {
      if (run.parsed.id.value_type != BSON_TYPE_EOD) {
         /* The claim wrote attempts; fence on what it wrote. */
         bson_iter_t iter;
         if (bson_iter_init_find (&iter, &run.doc, "attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
            run.parsed.attempts = (int32_t) bson_iter_as_int64 (&iter);
         }
         fail_claimed (worker, &run, &failure);
      }
      goto cleanup;
   }
   plugin = mt_plugin_set_find (worker->plugins, run.parsed.type);
   if (!plugin) {
      /* The claim asks only for our types; this is a bug if it happens. */
      bson_set_error (&failure,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_INVALID,
                      "worker '%s' claimed task type '%s' it has no plugin for",
                      worker->worker_id,
                      run.parsed.type);
      fail_claimed (worker, &run, &failure);
      goto cleanup;
   }

   if (!take_declared_accounts (worker, &run)) {
      goto cleanup;
   }

   worker_log (worker,
               MT_LOG_DEBUG,
               "task %s (%s) on queue '%s': attempt %" PRId32 " started",
               run.parsed.id_str,
               run.parsed.type,
               run.parsed.queue,
               run.parsed.attempts);
   ok = plugin->descriptor->process (&run.base, plugin->state, &failure);
   if (!ok && failure.domain == 0) {
      bson_set_error (&failure,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_PROCESS,
                      "plugin '%s' returned failure without an error message",
                      run.parsed.type);
   }
   if (ok) {
      worker_log (worker,
                  MT_LOG_DEBUG,
                  "task %s (%s): %s",
                  run.parsed.id_str,
                  run.parsed.type,
                  run.delayed ? "delayed" : (run.status ? run.status : MT_STATUS_FINISHED));
   } else {
      worker_log (worker,
                  MT_LOG_WARNING,
                  "task %s (%s) failed: %s",
                  run.parsed.id_str,
                  run.parsed.type,
                  failure.message);
   }
   outcome_update (&run, ok, &failure, &update);
   write_outcome (worker, &run, &update);
   bson_destroy (&update);
   release_leftovers (worker, &run);

cleanup:
   mt_strv_free (run.held);
   mt_strv_free (run.declared);
   bson_destroy (&run.result);
   bson_destroy (&run.doc);
}

/* At most one thread sweeps per interval; `force` sweeps now. */
static void
maybe_sweep (mt_worker_t *worker, mongoc_collection_t *tasks, bool force)
{
   int64_t now = bson_get_monotonic_time ();
   bson_error_t error;
   int64_t marked;
   bool due;

   pthread_mutex_lock (&worker->mutex);
   due = force || worker->last_sweep_us == 0 || now - worker->last_sweep_us >= MT_SWEEP_INTERVAL_US;
   if (due) {
      worker->last_sweep_us = now;
   }
   pthread_mutex_unlock (&worker->mutex);
   if (!due) {
      return;
   }
   marked = mt_store_sweep (tasks, &worker->queues_array, &error);
   if (marked < 0) {
      worker_log (worker, MT_LOG_WARNING, "sweep of malformed tasks failed: %s", error.message);
   } else if (marked > 0) {
      worker_log (worker, MT_LOG_WARNING, "marked %" PRId64 " malformed task(s) FAILED", marked);
   }
}

static void *
thread_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->db, MT_TASKS_COLLECTION);
   int64_t backoff = 0, failing_since = 0;

   while (!is_stopping (worker)) {
      bson_error_t error;
      bson_t doc;
      bool claimed;

      maybe_sweep (worker, tasks, false);
      if (!mt_store_claim (tasks, worker->worker_id, &worker->queues_array, &worker->types_array, &doc, &claimed, &error)) {
         bson_destroy (&doc);
         backoff = backoff ? BSON_MIN (backoff * 2, MT_RETRY_MAX_MS) : BSON_MIN (100, worker->poll_interval_ms);
         if (mt_error_is_network (&error)) {
            int64_t now = bson_get_monotonic_time ();

            failing_since = failing_since ? failing_since : now;
            if (worker->once && now - failing_since > (int64_t) MT_OUTCOME_RETRY_LIMIT_MS * 1000) {
               /* A --once run (say, from cron) must end: give up. */
               pthread_mutex_lock (&worker->mutex);
               worker->failed = true;
               worker->failure = error;
               pthread_mutex_unlock (&worker->mutex);
               break;
            }
            worker_log (worker, MT_LOG_WARNING, "cannot reach the database: %s; retrying in %" PRId64 " ms", error.message, backoff);
         } else {
            /* A document the claim trips on (e.g. a mistyped field): the
             * sweep takes it out of the way. */
            worker_log (worker, MT_LOG_ERROR, "claim failed: %s", error.message);
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
         run_task (worker, client, tasks, &doc);
         continue;
      }
      bson_destroy (&doc);
      if (worker->once) {
         break;
      }
      if (!idle_wait (worker, worker->poll_interval_ms)) {
         break;
      }
   }

   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (worker->pool, client);

   pthread_mutex_lock (&worker->mutex);
   if (--worker->running_threads == 0) {
      /* The last one out tells the main thread (once mode ends here). */
      ssize_t r = write (worker->wake_pipe[1], "d", 1);
      (void) r;
   }
   pthread_mutex_unlock (&worker->mutex);
   return NULL;
}

/* Ensures the indexes, waiting for the server while it cannot be reached. */
static bool
prepare (mt_worker_t *worker, bson_error_t *error)
{
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   int64_t backoff = 250;
   bool ok;

   while (!(ok = mt_indexes_ensure (client, worker->db, error))) {
      struct pollfd pfd = {.fd = worker->wake_pipe[0], .events = POLLIN};

      if (!mt_error_is_network (error) || worker->once) {
         break;
      }
      worker_log (worker, MT_LOG_WARNING, "cannot reach the database: %s; retrying in %" PRId64 " ms", error->message, backoff);
      if (poll (&pfd, 1, (int) backoff) > 0) {
         break; /* asked to stop */
      }
      backoff = BSON_MIN (backoff * 2, MT_RETRY_MAX_MS);
   }
   mongoc_client_pool_push (worker->pool, client);
   return ok;
}

bool
mt_worker_run (mt_worker_t *worker, bson_error_t *error)
{
   pthread_t *threads;
   int started = 0;
   char names[1024] = "";
   bool ok = true;

   if (!prepare (worker, error)) {
      bson_error_t cause = *error;

      if (mt_error_is_network (error) && !worker->once) {
         return true; /* stopped while waiting for the server */
      }
      bson_set_error (error,
                      MT_ERROR_STORE,
                      MT_STORE_ERROR_WRITE,
                      "cannot prepare '%s.tasks' (create its indexes): %s",
                      worker->db,
                      cause.message);
      return false;
   }

   for (size_t i = 0; worker->types[i]; i++) {
      bson_strncpy (names + strlen (names), i ? ", " : "", sizeof names - strlen (names));
      bson_strncpy (names + strlen (names), worker->types[i], sizeof names - strlen (names));
   }
   worker_log (worker,
               MT_LOG_INFO,
               "worker '%s' started: db '%s', %d thread(s), task types: %s%s",
               worker->worker_id,
               worker->db,
               worker->concurrency,
               names,
               worker->once ? "; --once" : "");

   threads = bson_malloc0 ((size_t) worker->concurrency * sizeof *threads);
   pthread_mutex_lock (&worker->mutex);
   worker->stopping = false;
   worker->running_threads = worker->concurrency;
   pthread_mutex_unlock (&worker->mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      if (pthread_create (&threads[i], NULL, thread_main, worker) != 0) {
         bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cannot start thread %d: %s", i, strerror (errno));
         pthread_mutex_lock (&worker->mutex);
         worker->running_threads -= worker->concurrency - i;
         pthread_mutex_unlock (&worker->mutex);
         ok = false;
         mt_worker_stop (worker);
         break;
      }
      started++;
   }

   /* Wait for a stop request or for the last thread to end. */
   for (;;) {
      struct pollfd pfd = {.fd = worker->wake_pipe[0], .events = POLLIN};
      char c;

      if (poll (&pfd, 1, -1) < 0 && errno != EINTR) {
         break;
      }
      if (read (worker->wake_pipe[0], &c, 1) == 1) {
         break;
      }
   }
   pthread_mutex_lock (&worker->mutex);
   if (!worker->stopping && worker->running_threads > 0) {
      worker_log (worker, MT_LOG_INFO, "stopping: no new claims; waiting for running tasks to finish");
   }
   worker->stopping = true;
   pthread_cond_broadcast (&worker->cond);
   pthread_mutex_unlock (&worker->mutex);

   for (int i = 0; i < started; i++) {
      pthread_join (threads[i], NULL);
   }
   bson_free (threads);

   /* Drain what is left so the next run starts clean. */
   for (char c; read (worker->wake_pipe[0], &c, 1) == 1;) {
   }
   pthread_mutex_lock (&worker->mutex);
   if (worker->failed) {
      bson_set_error (error,
                      MT_ERROR_STORE,
                      MT_STORE_ERROR_WRITE,
                      "gave up after a minute without the database: %s",
                      worker->failure.message);
      worker->failed = false;
      ok = false;
   }
   pthread_mutex_unlock (&worker->mutex);
   worker_log (worker, MT_LOG_INFO, "worker '%s' stopped", worker->worker_id);
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
