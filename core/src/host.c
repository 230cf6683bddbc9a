/* The host API: what a plugin reaches through its mt_task_t (mtask/plugin.h).
 * Every call acts on the running task behind the handle and is made from
 * the thread (or child process) running that task. */
#include "worker-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
   /* Refused now, while the plugin can still do something about it, rather
    * than by the server when the outcome is written. */
   if (!mt_result_check (result, run->doc.len, error)) {
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
   ok = mt_store_update_claimed (run->tasks, &run->parsed, run->worker->ctx.worker_id, &update, error);
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

/* A permanent failure: set_status (FAILED) by a name that says what it
 * is for. The failure process() returns is recorded and not retried. */
static void
host_fail_permanently (mt_task_t *task)
{
   mt_running_t *run = running (task);

   run->status = MT_STATUS_FAILED;
   run->delayed = false;
}

static void
host_log (mt_task_t *task, mt_log_level_t level, const char *message)
{
   mt_running_t *run = running (task);

   mt_log (&run->worker->ctx, level, "task %s (%s): %s", run->parsed.id_str, run->parsed.type, message);
}

mt_lock_owner_t
mt_run_owner (const mt_running_t *run)
{
   mt_lock_owner_t owner = {.task_id = &run->parsed.id, .worker_id = run->worker->ctx.worker_id, .attempt = run->parsed.attempts};
   return owner;
}

/* held := held + add (add_sorted) or held - remove, kept sorted. */
void
mt_run_held_update (mt_running_t *run, char *const *accounts, bool add)
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
      if (add || !mt_strv_contains (accounts, run->held[i])) {
         next[n++] = bson_strdup (run->held[i]);
      }
   }
   for (size_t i = 0; add && accounts && accounts[i]; i++) {
      if (!mt_strv_contains (run->held, accounts[i])) {
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
   mt_lock_owner_t owner = mt_run_owner (run);
   char **sorted = mt_accounts_normalize (accounts, n_accounts, error);
   bool ok;

   if (!sorted) {
      return false;
   }
   ok = mt_locks_acquire_sorted (run->client, run->worker->ctx.db, &owner, sorted, NULL, error);
   if (ok) {
      mt_run_held_update (run, sorted, true);
   }
   mt_strv_free (sorted);
   return ok;
}

static bool
host_unlock_accounts (mt_task_t *task, const char *const *accounts, size_t n_accounts, bson_error_t *error)
{
   mt_running_t *run = running (task);
   mt_lock_owner_t owner = mt_run_owner (run);
   char **sorted = mt_accounts_normalize (accounts, n_accounts, error);
   bool ok;

   if (!sorted) {
      return false;
   }
   ok = mt_locks_release_sorted (run->client, run->worker->ctx.db, &owner, sorted, error);
   if (ok) {
      mt_run_held_update (run, sorted, false);
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
   mt_lock_owner_t owner = mt_run_owner (run);
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
   ok = mt_locks_acquire_sorted (run->client, run->worker->ctx.db, &owner, sorted, &newly, error);
   mt_strv_free (sorted);
   if (!ok) {
      return false;
   }
   mt_run_held_update (run, newly, true);
   run->in_scope = true;
   ok = fn (task, data, error);
   run->in_scope = false;
   /* Release what this scope took, whatever fn returned. */
   if (newly[0]) {
      if (mt_locks_release_sorted (run->client, run->worker->ctx.db, &owner, newly, &release_error)) {
         mt_run_held_update (run, newly, false);
      } else {
         mt_log (&run->worker->ctx,
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
   return running (task)->worker->ctx.db;
}

static bool
host_enqueue (mt_task_t *task,
              const char *queue,
              const char *type,
              const bson_t *params,
              const bson_t *opts,
              char *id_out,
              bson_error_t *error)
{
   mt_running_t *run = running (task);
   bson_oid_t id;

   if (!mt_enqueue (run->client, run->worker->ctx.db, queue, type, params, opts, &id, error)) {
      return false;
   }
   if (id_out) {
      bson_oid_to_string (&id, id_out);
   }
   return true;
}

static bool
host_keepalive (mt_task_t *task, bson_error_t *error)
{
   mt_running_t *run = running (task);
   bool held;

   if (!run->pool) {
      bson_set_error (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_API, "keepalive: task %s runs in no slot pool", run->parsed.id_str);
      return false;
   }
   if (!mt_slot_touch (run->client, run->worker->ctx.db, &run->parsed.id, run->parsed.attempts, &held, error)) {
      return false;
   }
   if (!held) {
      bson_set_error (error, MT_ERROR_STORE, MT_STORE_ERROR_LOST, "keepalive: task %s no longer holds its slot", run->parsed.id_str);
      return false;
   }
   return true;
}

static bool
host_should_stop (mt_task_t *task)
{
   mt_running_t *run = running (task);
   bool stop;

   pthread_mutex_lock (&run->worker->ctx.mutex);
   stop = run->should_stop;
   pthread_mutex_unlock (&run->worker->ctx.mutex);
   return stop;
}

const mt_host_api_t mt_host_api = {
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
   .enqueue = host_enqueue,
   .keepalive = host_keepalive,
   .should_stop = host_should_stop,
   /* failing for good */
   .fail_permanently = host_fail_permanently,
};


/* ---- the worker's own host table, for init and fini ------------------
 *
 * init, fini and a plugin's own threads have no task: they reach the
 * worker through the host table init received. Each worker hands out a
 * copy of mt_host_api that carries the worker after it, so those calls
 * know whose log and connection they mean. */

static mt_worker_t *
host_worker (const mt_host_api_t *host)
{
   /* The shared table carries no worker; a worker's own copy does. */
   return host && host != &mt_host_api ? ((const mt_host_t *) host)->worker : NULL;
}

static void
host_log_global (const mt_host_api_t *host, mt_log_level_t level, const char *message)
{
   mt_worker_t *worker = host_worker (host);

   if (worker) {
      mt_log (&worker->ctx, level, "%s", message ? message : "(null)");
   } else {
      fprintf (stderr, "%s\n", message ? message : "(null)");
   }
}

static const char *
host_global_uri (const mt_host_api_t *host)
{
   mt_worker_t *worker = host_worker (host);

   return worker && worker->uri ? mongoc_uri_get_string (worker->uri) : NULL;
}

static const char *
host_global_db_name (const mt_host_api_t *host)
{
   mt_worker_t *worker = host_worker (host);

   return worker ? worker->ctx.db : NULL;
}

mt_host_t *
mt_host_new (mt_worker_t *worker)
{
   mt_host_t *host = bson_malloc0 (sizeof *host);

   host->api = mt_host_api;
   host->api.log_global = host_log_global;
   host->api.global_uri = host_global_uri;
   host->api.global_db_name = host_global_db_name;
   host->worker = worker;
   return host;
}

void
mt_host_destroy (mt_host_t *host)
{
   bson_free (host);
}
