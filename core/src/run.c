/* Running one claimed task: declared accounts, process(), the outcome, and
 * what is left to release. Every write is fenced on the claim. */
#include "worker-private.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
         mt_worker_log (worker, MT_LOG_WARNING, "task %s: outcome dropped: %s", run->parsed.id_str, error.message);
         return;
      }
      if (!mt_error_is_network (&error) ||
          bson_get_monotonic_time () - start > (int64_t) MT_OUTCOME_RETRY_LIMIT_MS * 1000) {
         mt_worker_log (worker,
                     MT_LOG_ERROR,
                     "task %s: cannot write its outcome (%s); it stays WORK_IN_PROGRESS held by '%s'",
                     run->parsed.id_str,
                     error.message,
                     worker->worker_id);
         return;
      }
      mt_worker_log (worker,
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

   mt_worker_log (worker, MT_LOG_WARNING, "task %s: %s; marked FAILED", run->parsed.id_str, why->message);
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
   mt_worker_log (worker, MT_LOG_DEBUG, "task %s (%s): given back for %.1f s: %s", run->parsed.id_str, run->parsed.type, seconds, why);
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
   mt_lock_owner_t owner = mt_run_owner (run);
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
      mt_run_held_update (run, sorted, true);
      return true;
   }
   mt_strv_free (sorted);
   if (error.domain != MT_ERROR_LOCK) {
      mt_worker_log (worker, MT_LOG_WARNING, "task %s: cannot take its accounts: %s", run->parsed.id_str, error.message);
   }
   give_back (worker, run, busy_delay (), error.message);
   return false;
}

/* Releases whatever the run still holds; warns about what the plugin took
 * and forgot. */
static void
release_leftovers (mt_worker_t *worker, mt_running_t *run)
{
   mt_lock_owner_t owner = mt_run_owner (run);
   bson_error_t error;
   char forgotten[512] = "";

   for (size_t i = 0; run->held && run->held[i]; i++) {
      if (!mt_strv_contains (run->declared, run->held[i])) {
         size_t len = strlen (forgotten);
         bson_snprintf (forgotten + len, sizeof forgotten - len, "%s'%s'", len ? ", " : "", run->held[i]);
      }
   }
   if (forgotten[0]) {
      mt_worker_log (worker,
                  MT_LOG_WARNING,
                  "task %s (%s) still held account lock(s) %s when process() returned; released them",
                  run->parsed.id_str,
                  run->parsed.type,
                  forgotten);
   }
   if (run->held && run->held[0] && mt_locks_release_all (run->client, worker->db, &owner, &error) < 0) {
      /* Not a lock any more once the run is over: the next taker takes it
       * over. Say so and go on. */
      mt_worker_log (worker,
                  MT_LOG_WARNING,
                  "task %s: cannot release its account locks (%s); they lapse now that the task has ended",
                  run->parsed.id_str,
                  error.message);
   }
}

void
mt_run_task (mt_worker_t *worker, mongoc_client_t *client, mongoc_collection_t *tasks, bson_t *doc)
{
   mt_running_t run;
   const mt_plugin_entry_t *plugin;
   bson_error_t failure = {0};
   bson_t update;
   bool ok;

   memset (&run, 0, sizeof run);
   run.base.host = &mt_host_api;
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

   mt_worker_log (worker,
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
      mt_worker_log (worker,
                  MT_LOG_DEBUG,
                  "task %s (%s): %s",
                  run.parsed.id_str,
                  run.parsed.type,
                  run.delayed ? "delayed" : (run.status ? run.status : MT_STATUS_FINISHED));
   } else {
      mt_worker_log (worker,
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

