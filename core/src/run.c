/* Running one claimed task: declared accounts, process(), the outcome, and
 * what is left to release. Every write is fenced on the claim. */
#include "worker-private.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


/* Builds the outcome update: status, finished, result, error, worker_pid,
 * failures. What the outcome means (docs/plugins.md, "Outcomes"):
 * - success: FINISHED, or the status the plugin set; with delay(), back
 *   to CREATED at `delayed`, not counted against the budget;
 * - failure: counted in `failures`; while the budget (`max_attempts`)
 *   lasts, back to CREATED after a backoff, or after the delay the plugin
 *   asked for; else FAILED;
 * - a failure with a status set (FAILED: a permanent failure; CANCELLED)
 *   ends the task with that status and its error, no retry.
 * settle () has already resolved the contradictions.
 * Returns whether the outcome ends the task (no retry, no delay). */
static bool
outcome_update (mt_worker_t *worker, mt_running_t *run, bool ok, const bson_error_t *failure, bson_t *update)
{
   bson_t set, date;
   const char *status;
   int32_t max = mt_retry_max_attempts (&worker->ctx, run->parsed.type, run->parsed.max_attempts);
   int32_t failures = mt_task_failures (&run->doc, run->parsed.attempts);
   bool counted = !ok && !run->status; /* a failure the budget counts */
   bool retry, back;

   if (counted) {
      failures++;
   }
   retry = counted && failures < max;
   back = retry || (ok && run->delayed);

   bson_init (update);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$set", &set);
   BSON_APPEND_NULL (&set, "worker_pid");
   BSON_APPEND_INT32 (&set, "failures", failures);
   if (run->started_ms) {
      BSON_APPEND_DATE_TIME (&set, "started", run->started_ms);
   }
   if (run->has_result) {
      BSON_APPEND_DOCUMENT (&set, "result", &run->result);
   }
   if (!ok) {
      mt_append_error (&set, "error", failure);
      BSON_APPEND_INT32 (&set, "max_attempts", max);
   }
   if (back) {
      int64_t wait_ms = run->delayed ? (int64_t) (run->delay_seconds * 1000.0) : mt_retry_backoff_ms (&worker->ctx, failures);

      BSON_APPEND_UTF8 (&set, "status", MT_STATUS_CREATED);
      BSON_APPEND_DATE_TIME (&set, "delayed", mt_server_now (&worker->ctx) + wait_ms);
      bson_append_document_end (update, &set);
      if (retry) {
         mt_log (&worker->ctx,
                 MT_LOG_INFO,
                 "task %s (%s): attempt %" PRId32 " failed (failure %" PRId32 " of %" PRId32 " allowed); retrying in %.1f s%s",
                 run->parsed.id_str,
                 run->parsed.type,
                 run->parsed.attempts,
                 failures,
                 max,
                 (double) wait_ms / 1000.0,
                 run->delayed ? ", the delay it asked for" : "");
      }
   } else {
      status = run->status ? run->status : (ok ? MT_STATUS_FINISHED : MT_STATUS_FAILED);
      BSON_APPEND_UTF8 (&set, "status", status);
      if (mt_task_repeats (&run->parsed)) {
         /* The run ends and names its successor in the same write. */
         mt_schedule_append_next (&set, &run->parsed, !strcmp (status, MT_STATUS_CANCELLED), mt_server_now (&worker->ctx));
      }
      bson_append_document_end (update, &set);
      BSON_APPEND_DOCUMENT_BEGIN (update, "$currentDate", &date);
      BSON_APPEND_BOOL (&date, "finished", true);
      bson_append_document_end (update, &date);
      if (counted) {
         mt_log (&worker->ctx,
                 MT_LOG_WARNING,
                 "task %s (%s): FAILED at attempt %" PRId32 ", its budget spent (%" PRId32 " of %" PRId32 " failures allowed)",
                 run->parsed.id_str,
                 run->parsed.type,
                 run->parsed.attempts,
                 failures,
                 max);
      }
   }
   /* The hold ends: its claim token goes with it, and when the task ends
    * its unique_key is free for the next enqueue. */
   BSON_APPEND_DOCUMENT_BEGIN (update, "$unset", &date);
   BSON_APPEND_UTF8 (&date, "claim", "");
   if (!back && run->parsed.unique_key) {
      BSON_APPEND_UTF8 (&date, MT_UNIQUE_HELD_FIELD, "");
   }
   if (ok && !back) {
      /* An ended success carries no error (one of an earlier attempt
       * stays in `errors`). */
      BSON_APPEND_UTF8 (&date, "error", "");
   }
   bson_append_document_end (update, &date);
   if (!ok) {
      mt_append_error_history (update, failure, run->parsed.attempts);
   }
   return !back;
}

/* Resolves what process() said against itself, before the outcome, and
 * warns where that is likely a mistake (docs/plugins.md, "Outcomes"):
 * - set_status (FAILED) (or fail_permanently) and success: FAILED for
 *   good, with an error saying the plugin gave none;
 * - set_status (FINISHED) and failure: the failure wins (a failure is
 *   never dropped), counted and retried as any other;
 * - success with `error` filled in: success; the error is not recorded;
 * - delay () and failure: a failure, counted; the delay is its retry's
 *   wait (said at info level: it is a way to choose that wait). */
static void
settle (mt_worker_t *worker, mt_running_t *run, bool *ok, bson_error_t *failure)
{
   const char *id = run->parsed.id_str, *type = run->parsed.type;

   if (*ok && run->status && !strcmp (run->status, MT_STATUS_FAILED)) {
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s (%s): process() set status FAILED but returned success; the task ends FAILED for good, "
              "with no error of its own: return false with the error set to say why",
              id,
              type);
      bson_set_error (failure,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_FAILED,
                      "the plugin set status FAILED and returned success, without saying why");
      *ok = false;
   } else if (!*ok && run->status && !strcmp (run->status, MT_STATUS_FINISHED)) {
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s (%s): process() set status FINISHED but returned failure (%s); the failure wins: it is "
              "counted and retried as any other. Return true to finish",
              id,
              type,
              failure->message);
      run->status = NULL;
   } else if (*ok && (failure->domain != 0 || failure->code != 0 || failure->message[0])) {
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s (%s): process() returned success with its error filled in (%s); the task succeeds and the "
              "error is not recorded: return false to fail, or clear the error after a failure you recovered from",
              id,
              type,
              failure->message);
   } else if (!*ok && run->delayed) {
      mt_log (&worker->ctx,
              MT_LOG_INFO,
              "task %s (%s): process() asked for a delay of %g s and returned failure: a failure, counted against "
              "its budget, retried after that delay while the budget lasts",
              id,
              type,
              run->delay_seconds);
   }
}

/* How an outcome write ended. */
typedef enum {
   OUTCOME_WRITTEN, /* it stands: this try's, or an earlier one whose reply was lost */
   OUTCOME_LOST,    /* the claim is gone: another worker or an operator has the task */
   OUTCOME_REFUSED, /* the server refuses it for good; `refused` says why */
   OUTCOME_UNKNOWN, /* not written in time (--once gave up, the run was abandoned): the lease decides */
} outcome_t;

/* Writes an outcome, retrying with backoff while the error is transient
 * (the server cannot be reached, a primary steps down, a write concern is
 * not met in time): a result is never dropped because the database
 * blinked or failed over. It lands once the server serves again, or is
 * dropped by the fence when another worker took the task over meanwhile
 * (the worker says so). After a failed try the write may have been
 * applied all the same (its reply lost, or a write concern error): when
 * the retry finds the claim gone, the task is read back on the primary
 * and, if it holds this very outcome, the outcome stands. A --once run
 * gives up after a minute, as its claims do. */
static outcome_t
write_outcome (mt_worker_t *worker, mt_running_t *run, const bson_t *update, bson_error_t *refused)
{
   int64_t backoff = 100, since = bson_get_monotonic_time ();
   bool maybe_applied = false;

   for (;;) {
      bson_error_t error;
      bson_t reply;
      bool ok = mt_store_write_claimed (run->tasks, &run->parsed, worker->ctx.worker_id, update, &reply, &error);
      bool transient = !ok && mt_error_is_transient (&error, &reply);
      bool too_long;

      bson_destroy (&reply);
      if (ok) {
         return OUTCOME_WRITTEN;
      }
      if (error.domain == MT_ERROR_STORE && error.code == MT_STORE_ERROR_LOST) {
         bson_error_t lost = error;
         bool landed = false;

         if (!maybe_applied) {
            mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: lost it, outcome dropped: %s", run->parsed.id_str, error.message);
            return OUTCOME_LOST;
         }
         if (mt_store_outcome_landed (run->tasks, &run->parsed, update, &landed, &error)) {
            if (landed) {
               mt_log (&worker->ctx,
                       MT_LOG_INFO,
                       "task %s: its outcome was written by an earlier try, whose answer was lost",
                       run->parsed.id_str);
               return OUTCOME_WRITTEN;
            }
            mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: lost it, outcome dropped: %s", run->parsed.id_str, lost.message);
            return OUTCOME_LOST;
         }
         /* The read back failed: the same decision again after a wait. */
         transient = mt_error_is_transient (&error, NULL);
      }
      too_long = worker->once && bson_get_monotonic_time () - since > (int64_t) MT_OUTCOME_RETRY_LIMIT_MS * 1000;
      if (!transient) {
         *refused = error;
         return OUTCOME_REFUSED;
      }
      if (mt_context_get (&worker->ctx, &worker->ctx.abandoned) || too_long) {
         mt_log (&worker->ctx,
                 MT_LOG_ERROR,
                 "task %s: cannot write its outcome (%s); it stays WORK_IN_PROGRESS until its lease ends",
                 run->parsed.id_str,
                 error.message);
         if (too_long) {
            /* A --once run (say, from cron) must end: its thread stops. */
            pthread_mutex_lock (&worker->ctx.mutex);
            worker->failed = true;
            worker->failure = error;
            pthread_mutex_unlock (&worker->ctx.mutex);
         }
         return OUTCOME_UNKNOWN;
      }
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s: cannot write its outcome yet (%s); retrying in %" PRId64 " ms",
              run->parsed.id_str,
              error.message,
              backoff);
      maybe_applied = true;
      usleep ((useconds_t) backoff * 1000);
      backoff = BSON_MIN (backoff * 2, MT_RETRY_MAX_MS);
   }
}

/* A write the server refused for good, about a task: said, not retried. */
static void
log_refused (mt_worker_t *worker, mt_running_t *run, const char *what, const bson_error_t *refused)
{
   mt_log (&worker->ctx,
           MT_LOG_ERROR,
           "task %s: cannot write its %s (%s): the server refuses it",
           run->parsed.id_str,
           what,
           refused->message);
}

/* Fails a claimed document that cannot be run (malformed). */
static void
fail_claimed (mt_worker_t *worker, mt_running_t *run, const bson_error_t *why)
{
   bson_t update = BSON_INITIALIZER, set, date;
   bson_error_t refused;

   mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: %s; marked FAILED", run->parsed.id_str, why->message);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_UTF8 (&set, "status", MT_STATUS_FAILED);
   BSON_APPEND_NULL (&set, "worker_pid");
   mt_append_error (&set, "error", why);
   bson_append_document_end (&update, &set);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
   BSON_APPEND_BOOL (&date, "finished", true);
   bson_append_document_end (&update, &date);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$unset", &date);
   BSON_APPEND_UTF8 (&date, "claim", "");
   bson_append_document_end (&update, &date);
   switch (write_outcome (worker, run, &update, &refused)) {
   case OUTCOME_WRITTEN:
      MT_COUNT (worker, failed);
      break;
   case OUTCOME_REFUSED:
      log_refused (worker, run, "FAILED outcome; it stays WORK_IN_PROGRESS until its lease ends", &refused);
      break;
   case OUTCOME_LOST:
   case OUTCOME_UNKNOWN:
   default:
      break;
   }
   bson_destroy (&update);
}

/* Puts a claimed task back as it was before the claim, not counting the
 * attempt, to be tried again after `seconds`. */
static void
give_back (mt_worker_t *worker, mt_running_t *run, double seconds, const char *why)
{
   bson_t update;
   bson_error_t refused;

   mt_give_back_update (&update, mt_server_now (&worker->ctx) + (int64_t) (seconds * 1000.0));
   mt_log (&worker->ctx, MT_LOG_DEBUG, "task %s (%s): given back for %.1f s: %s", run->parsed.id_str, run->parsed.type, seconds, why);
   switch (write_outcome (worker, run, &update, &refused)) {
   case OUTCOME_WRITTEN:
      MT_COUNT (worker, given_back);
      break;
   case OUTCOME_REFUSED:
      log_refused (worker, run, "give-back; it stays WORK_IN_PROGRESS until its lease ends", &refused);
      break;
   case OUTCOME_LOST:
   case OUTCOME_UNKNOWN:
   default:
      break;
   }
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
   ok = mt_locks_acquire_sorted (run->client, worker->ctx.db, &owner, sorted, NULL, &error);
   if (ok) {
      run->declared = sorted;
      mt_run_held_update (run, sorted, true);
      return true;
   }
   mt_strv_free (sorted);
   if (error.domain != MT_ERROR_LOCK) {
      mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: cannot take its accounts: %s", run->parsed.id_str, error.message);
   }
   give_back (worker, run, busy_delay (), error.message);
   return false;
}

/* A slot of the task's pool, when it has one. False means the task must
 * not run now: it has been given back, with its declared accounts. */
static bool
take_slot (mt_worker_t *worker, mt_running_t *run)
{
   const mt_plugin_t *d = run->plugin->descriptor;
   const char *pool = run->parsed.pool;
   mt_lock_owner_t owner = mt_run_owner (run);
   bson_error_t error;
   char slot_id[300] = "";
   bool got = false;

   if (!pool && d->struct_size >= offsetof (mt_plugin_t, pool) + sizeof (d->pool)) {
      pool = d->pool;
   }
   if (!pool || !pool[0]) {
      return true;
   }
   error.domain = 0;
   if (mt_slot_acquire (&worker->ctx, run->client, pool, &owner, &got, slot_id, sizeof slot_id, &error) && got) {
      /* Running, in the pool's sense, from now: the task says which slot,
       * and `started` is when it got it. */
      bson_t *update = BCON_NEW ("$set", "{", "slot", slot_id, "}", "$currentDate", "{", "started", BCON_BOOL (true), "}");

      run->pool = pool;
      if (!mt_store_update_claimed (run->tasks, &run->parsed, worker->ctx.worker_id, update, &error)) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: cannot record its slot: %s", run->parsed.id_str, error.message);
      }
      bson_destroy (update);
      return true;
   }
   if (!got && error.domain == 0) {
      give_back (worker, run, busy_delay () / 2, "no free slot in its pool");
   } else {
      mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: cannot take a slot of pool '%s': %s", run->parsed.id_str, pool, error.message);
      give_back (worker, run, 5.0, error.message);
   }
   if (run->held && run->held[0]) {
      mt_locks_release_all (run->client, worker->ctx.db, &owner, &error);
   }
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
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s (%s) still held account lock(s) %s when process() returned; released them",
              run->parsed.id_str,
              run->parsed.type,
              forgotten);
   }
   if (run->held && run->held[0] && mt_locks_release_all (run->client, worker->ctx.db, &owner, &error) < 0) {
      /* Not a lock any more once the run is over: the next taker takes it
       * over. Say so and go on. */
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s: cannot release its account locks (%s); they lapse now that the task has ended",
              run->parsed.id_str,
              error.message);
   }
}

static void
slot_set (mt_worker_t *worker, int slot, const mt_running_t *run, pid_t child)
{
   mt_slot_t *s = &worker->slots[slot];

   pthread_mutex_lock (&worker->ctx.mutex);
   if (run && !s->busy) {
      bson_value_copy (&run->parsed.id, &s->id);
      bson_strncpy (s->id_str, run->parsed.id_str, sizeof s->id_str);
      s->attempts = run->parsed.attempts;
      s->busy = true;
      s->run = (mt_running_t *) run;
   } else if (!run && s->busy) {
      bson_value_destroy (&s->id);
      s->busy = false;
      s->run = NULL;
   }
   s->child = child;
   pthread_mutex_unlock (&worker->ctx.mutex);
}

/* process() and the log line about it. */
static bool
call_process (mt_worker_t *worker, mt_running_t *run, const mt_plugin_entry_t *plugin, bson_error_t *failure)
{
   bool ok = plugin->descriptor->process (&run->base, plugin->state, failure);

   if (!ok && failure->domain == 0) {
      bson_set_error (failure,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_PROCESS,
                      "plugin '%s' returned failure without an error message",
                      run->parsed.type);
   }
   if (ok) {
      mt_log (&worker->ctx,
              MT_LOG_DEBUG,
              "task %s (%s): %s",
              run->parsed.id_str,
              run->parsed.type,
              run->delayed ? "delayed" : (run->status ? run->status : MT_STATUS_FINISHED));
   } else {
      mt_log (&worker->ctx, MT_LOG_WARNING, "task %s (%s) failed: %s", run->parsed.id_str, run->parsed.type, failure->message);
   }
   return ok;
}

/* The successor an ending run named in its outcome (`update`'s $set.next):
 * created now, or by the upkeep tick if this fails. */
static void
create_successor (mt_worker_t *worker, mt_running_t *run, const bson_t *update)
{
   bson_t ended = BSON_INITIALIZER;
   bson_iter_t iter, next;
   bson_error_t error;

   if (!bson_iter_init (&iter, &run->doc)) {
      bson_destroy (&ended);
      return;
   }
   while (bson_iter_next (&iter)) {
      /* Its document as the claim read it, with what the outcome changed
       * that the successor looks at: `next`; and no claim token (the hold
       * is over; a successor must never carry one). */
      if (strcmp (bson_iter_key (&iter), "next") && strcmp (bson_iter_key (&iter), "claim")) {
         BSON_APPEND_VALUE (&ended, bson_iter_key (&iter), bson_iter_value (&iter));
      }
   }
   if (bson_iter_init (&iter, update) && bson_iter_find_descendant (&iter, "$set.next", &next)) {
      BSON_APPEND_VALUE (&ended, "next", bson_iter_value (&next));
   }
   if (!mt_schedule_create_successor (&worker->ctx, run->client, &ended, false, &error)) {
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s: cannot create its next run yet (%s); the upkeep tick will",
              run->parsed.id_str,
              error.message);
   }
   bson_destroy (&ended);
}

/* The outcome, then whatever the run still holds. After an isolated child
 * died, what it held is unknown here: all of the run's locks go. */
static void
finish (mt_worker_t *worker, mt_running_t *run, bool ok, const bson_error_t *failure, bool child_died)
{
   bson_t update;
   bson_error_t settled = *failure, refused;
   outcome_t written;
   bool ended;

   MT_COUNT (worker, run);
   settle (worker, run, &ok, &settled);
   failure = &settled;
   ended = outcome_update (worker, run, ok, failure, &update);
   written = write_outcome (worker, run, &update, &refused);

   if (written == OUTCOME_REFUSED) {
      /* The server refuses this outcome for good (a result it cannot
       * store, say): the task ends FAILED without its result, saying why,
       * rather than staying WORK_IN_PROGRESS to run again when its lease
       * ends, and fail the same way. */
      bson_error_t why;

      bson_set_error (&why,
                      MT_ERROR_STORE,
                      MT_STORE_ERROR_WRITE,
                      "its outcome (%s%s) could not be stored: %s; the task ends FAILED without its result",
                      ok ? "success" : "failure",
                      run->has_result ? ", with a result" : "",
                      refused.message);
      log_refused (worker, run, "outcome; it ends FAILED without its result", &refused);
      bson_destroy (&update);
      run->has_result = false;
      run->status = MT_STATUS_FAILED;
      run->delayed = false;
      ended = outcome_update (worker, run, false, &why, &update);
      written = write_outcome (worker, run, &update, &refused);
      if (written == OUTCOME_REFUSED) {
         log_refused (worker, run, "FAILED outcome either; it stays WORK_IN_PROGRESS until its lease ends", &refused);
      }
   }
   if (written == OUTCOME_WRITTEN && !ended && !ok) {
      MT_COUNT (worker, retried);
   }
   if (written == OUTCOME_WRITTEN && ended && (run->status ? !strcmp (run->status, MT_STATUS_FAILED) : !ok)) {
      MT_COUNT (worker, failed);
   }
   if (written == OUTCOME_WRITTEN && ended) {
      bson_error_t error;

      mt_failpoint ("outcome-written");
      /* A task of a staged group counts toward its stage. Upkeep counts it
       * if this fails. */
      if (!mt_group_task_ended_doc (run->client, worker->ctx.db, &run->doc, &error)) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: cannot count it in its stage yet: %s", run->parsed.id_str, error.message);
      }
      if (mt_task_repeats (&run->parsed)) {
         create_successor (worker, run, &update);
      }
      if (worker->archive) {
         bool moved;

         if (!mt_archive_move (run->client, worker->ctx.db, &run->parsed.id, &moved, &error)) {
            mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: cannot archive it yet (%s); the next sweep will", run->parsed.id_str, error.message);
         }
      }
   }
   bson_destroy (&update);
   if (run->pool) {
      bson_error_t error;

      if (!mt_slot_release (run->client, worker->ctx.db, &run->parsed.id, run->parsed.attempts, &error)) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: cannot free its slot yet (%s); it is taken back later", run->parsed.id_str, error.message);
      }
   }
   if (child_died) {
      mt_lock_owner_t owner = mt_run_owner (run);
      bson_error_t error;

      if (mt_locks_release_all (run->client, worker->ctx.db, &owner, &error) < 0) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "task %s: cannot release its account locks (%s); they lapse now", run->parsed.id_str, error.message);
      }
   } else {
      release_leftovers (worker, run);
   }
}

/* --isolate fork: process() in a child process with a connection of its
 * own; the child writes the outcome itself. The parent waits, enforces the
 * task's timeout, and writes the outcome when the child dies without one.
 * Returns true when the child finished the task. */
static bool
run_in_child (mt_worker_t *worker, int slot, mt_running_t *run, const mt_plugin_entry_t *plugin, bson_error_t *failure)
{
   int64_t start = bson_get_monotonic_time ();
   int64_t timeout_us = run->parsed.timeout > 0 ? (int64_t) (run->parsed.timeout * 1e6) : 0;
   bool timed_out = false, cancel_killed = false;
   int status = 0;
   pid_t pid;

   /* The child has this thread alone: a lock another thread held at the
    * fork stays held there for good. The worker's mutex, which the child's
    * outcome and log take, is taken across the fork so that it is free on
    * both sides (the claimer holds it often); and the fork waits for the
    * claimer to be between claims, not inside the driver and the
    * allocator, whose locks a child would find held too (AddressSanitizer's
    * allocator, in the tests, does not reset them at a fork). */
   pthread_mutex_lock (&worker->ctx.mutex);
   while (worker->claiming) {
      pthread_cond_wait (&worker->runner_cond, &worker->ctx.mutex);
   }
   pid = fork ();
   pthread_mutex_unlock (&worker->ctx.mutex);
   if (pid < 0) {
      bson_set_error (failure, MT_ERROR_TASK, MT_TASK_ERROR_CRASHED, "cannot fork a process for the task: %s", strerror (errno));
      return false;
   }
   if (pid == 0) {
      /* The child: nothing of the parent's connections is safe to use. */
      mongoc_client_t *client = mongoc_client_new_from_uri (worker->uri);
      bson_error_t child_failure = {0};
      bool ok;

      if (!client) {
         mt_coverage_flush ();
         _exit (70);
      }
      mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
      run->client = client;
      run->tasks = mongoc_client_get_collection (client, worker->ctx.db, MT_TASKS_COLLECTION);
      ok = call_process (worker, run, plugin, &child_failure);
      finish (worker, run, ok, &child_failure, false);
      mongoc_collection_destroy (run->tasks);
      mongoc_client_destroy (client);
      mt_coverage_flush ();
      _exit (0);
   }

   slot_set (worker, slot, run, pid);
   for (;;) {
      pid_t r = waitpid (pid, &status, WNOHANG);

      if (r == pid || (r < 0 && errno != EINTR)) {
         break;
      }
      if (timeout_us && !timed_out && bson_get_monotonic_time () - start > timeout_us) {
         kill (pid, SIGKILL);
         timed_out = true;
      }
      if (!cancel_killed) {
         int64_t cancel_us;

         pthread_mutex_lock (&worker->ctx.mutex);
         cancel_us = run->cancel_us;
         pthread_mutex_unlock (&worker->ctx.mutex);
         if (cancel_us && bson_get_monotonic_time () - cancel_us >= worker->grace_ms * 1000) {
            kill (pid, SIGKILL); /* cancelled: the grace is over */
            cancel_killed = true;
         }
      }
      usleep (5000);
   }
   slot_set (worker, slot, run, 0);

   if (cancel_killed) {
      bson_set_error (failure, MT_ERROR_TASK, MT_TASK_ERROR_CRASHED, "cancelled: killed after a grace of %g s", (double) worker->grace_ms / 1000.0);
   } else if (timed_out) {
      bson_set_error (failure,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_TIMEOUT,
                      "timed out: process() ran past the task's timeout of %g s and was killed",
                      run->parsed.timeout);
   } else if (WIFSIGNALED (status)) {
      bson_set_error (failure,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_CRASHED,
                      "process() crashed: killed by signal %d (%s)",
                      WTERMSIG (status),
                      strsignal (WTERMSIG (status)));
   } else if (WIFEXITED (status) && WEXITSTATUS (status) == 0) {
      return true;
   } else {
      bson_set_error (failure,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_CRASHED,
                      "process() ended its process with exit status %d",
                      WIFEXITED (status) ? WEXITSTATUS (status) : -1);
   }
   mt_log (&worker->ctx, MT_LOG_WARNING, "task %s (%s): %s", run->parsed.id_str, run->parsed.type, failure->message);
   return false;
}

/* After process(): a run an operator cancelled ends CANCELLED, whatever
 * process() returned, with the reason as its error. */
static bool
cancelled_outcome (mt_worker_t *worker, mt_running_t *run, bson_error_t *failure)
{
   bool cancelled;

   pthread_mutex_lock (&worker->ctx.mutex);
   cancelled = run->cancel_us != 0;
   pthread_mutex_unlock (&worker->ctx.mutex);
   if (cancelled) {
      run->status = MT_STATUS_CANCELLED;
      if (!failure->message[0] || failure->domain != MT_ERROR_TASK || failure->code != MT_TASK_ERROR_CRASHED) {
         bson_set_error (failure, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "cancelled by request while it ran");
      }
   }
   return cancelled;
}

void
mt_run_task (mt_worker_t *worker, int slot, mongoc_client_t *client, mongoc_collection_t *tasks, bson_t *doc, bool ahead)
{
   mt_running_t run;
   const mt_plugin_entry_t *plugin;
   bson_error_t failure = {0};

   memset (&run, 0, sizeof run);
   run.base.host = &worker->host->api;
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
                      worker->ctx.worker_id,
                      run.parsed.type);
      fail_claimed (worker, &run, &failure);
      goto cleanup;
   }

   run.plugin = plugin;
   mt_log_task_begin (run.parsed.id_str, run.parsed.type, run.parsed.queue, run.parsed.attempts);
   slot_set (worker, slot, &run, 0);
   if (!take_declared_accounts (worker, &run)) {
      goto cleanup;
   }
   if (!take_slot (worker, &run)) {
      goto cleanup;
   }
   if (ahead && !run.pool) {
      /* Not worth a write of its own: the outcome's carries it. A task in
       * a pool got `started` with its slot. */
      run.started_ms = mt_server_now (&worker->ctx);
   }
   mt_log (&worker->ctx,
           MT_LOG_DEBUG,
           "task %s (%s) on queue '%s': attempt %" PRId32 " started",
           run.parsed.id_str,
           run.parsed.type,
           run.parsed.queue,
           run.parsed.attempts);

   if (worker->isolate == MT_ISOLATE_FORK) {
      /* When the child finished the task it wrote the outcome and released
       * every lock of the run, declared ones too. */
      if (!run_in_child (worker, slot, &run, plugin, &failure)) {
         cancelled_outcome (worker, &run, &failure);
         finish (worker, &run, false, &failure, true);
      }
   } else {
      bool ok = call_process (worker, &run, plugin, &failure);

      if (cancelled_outcome (worker, &run, &failure)) {
         ok = false;
      }
      finish (worker, &run, ok, &failure, false);
   }

cleanup:
   mt_log_task_end ();
   slot_set (worker, slot, NULL, 0);
   mt_strv_free (run.held);
   mt_strv_free (run.declared);
   bson_destroy (&run.result);
   bson_destroy (&run.doc);
}

/* What the heartbeat thread found about one running task's slot. */
typedef struct {
   mt_running_t *run;
   int32_t attempts;
   bool holds;         /* its slot is still its own */
   int64_t keepalive;  /* the slot's last keepalive */
   bool cancelled;     /* its task was stopped (CANCELLED) */
} watch_t;

/* The running tasks an operator asked to stop (mt_admin_cancel wrote
 * `cancel_requested`): each is told to stop (mt_task_should_stop, on_stop);
 * an isolated child is killed after the grace (run_in_child). */
static void
watch_cancels (mt_worker_t *worker, mongoc_client_t *client)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->ctx.db, MT_TASKS_COLLECTION);
   bson_value_t *ids = bson_malloc0 ((size_t) worker->concurrency * sizeof *ids);
   mt_running_t **runs = bson_malloc0 ((size_t) worker->concurrency * sizeof *runs);
   int n = 0;

   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      mt_slot_t *s = &worker->slots[i];

      if (s->busy && s->run && !s->run->cancel_us) {
         runs[n] = s->run;
         bson_value_copy (&s->id, &ids[n]);
         n++;
      }
   }
   pthread_mutex_unlock (&worker->ctx.mutex);

   /* One query for them all: which of these still run and were asked to
    * stop. An error leaves every run as it is; the next turn looks again. */
   {
      bson_t filter = BSON_INITIALIZER, child, list;
      bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}");
      bool *asked = bson_malloc0 ((size_t) (n ? n : 1) * sizeof *asked);
      mongoc_read_prefs_t *primary = mongoc_read_prefs_new (MONGOC_READ_PRIMARY);
      mongoc_cursor_t *cursor;
      const bson_t *doc;
      char key[16];
      const char *k;

      BSON_APPEND_DOCUMENT_BEGIN (&filter, "_id", &child);
      BSON_APPEND_ARRAY_BEGIN (&child, "$in", &list);
      for (int i = 0; i < n; i++) {
         bson_uint32_to_string ((uint32_t) i, &k, key, sizeof key);
         BSON_APPEND_VALUE (&list, k, &ids[i]);
      }
      bson_append_array_end (&child, &list);
      bson_append_document_end (&filter, &child);
      BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
      BCON_APPEND (&filter, "cancel_requested", "{", "$exists", BCON_BOOL (true), "}");
      cursor = n ? mongoc_collection_find_with_opts (tasks, &filter, opts, primary) : NULL;
      while (cursor && mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t iter;

         for (int i = 0; i < n && bson_iter_init_find (&iter, doc, "_id"); i++) {
            asked[i] = asked[i] || mt_value_equal (bson_iter_value (&iter), &ids[i]);
         }
      }
      if (cursor && mongoc_cursor_error (cursor, NULL)) {
         memset (asked, 0, (size_t) (n ? n : 1) * sizeof *asked);
      }
      for (int i = 0; i < n; i++) {
         if (!asked[i]) {
            runs[i] = NULL; /* not asked, or unknown: look again next turn */
         }
      }
      if (cursor) {
         mongoc_cursor_destroy (cursor);
      }
      mongoc_read_prefs_destroy (primary);
      bson_free (asked);
      bson_destroy (opts);
      bson_destroy (&filter);
   }

   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < n; i++) {
      mt_running_t *run = runs[i];
      const mt_plugin_t *d;
      bool still = false;

      for (int k = 0; run && k < worker->concurrency && !still; k++) {
         still = worker->slots[k].busy && worker->slots[k].run == run;
      }
      if (still && !run->cancel_us) {
         bool stopped = run->should_stop;

         run->cancel_us = bson_get_monotonic_time ();
         run->should_stop = true;
         mt_log (&worker->ctx,
                 MT_LOG_WARNING,
                 "task %s (%s): cancelled by request; asking it to stop%s",
                 run->parsed.id_str,
                 run->parsed.type,
                 worker->isolate == MT_ISOLATE_FORK ? " (its process is killed after the grace)" : "");
         d = run->plugin->descriptor;
         if (!stopped && d->struct_size >= offsetof (mt_plugin_t, on_stop) + sizeof (d->on_stop) && d->on_stop) {
            d->on_stop (&run->base, run->plugin->state);
         }
      }
      bson_value_destroy (&ids[i]);
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
   bson_free (ids);
   bson_free (runs);
   mongoc_collection_destroy (tasks);
}

void
mt_run_watch_slots (mt_worker_t *worker, mongoc_client_t *client)
{
   watch_cancels (worker, client);

   watch_t *seen = bson_malloc0 ((size_t) worker->concurrency * sizeof *seen);
   bson_value_t *ids = bson_malloc0 ((size_t) worker->concurrency * sizeof *ids);
   int n = 0;

   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      mt_slot_t *s = &worker->slots[i];

      if (s->busy && s->run && s->run->pool && !s->run->should_stop) {
         seen[n].run = s->run;
         seen[n].attempts = s->attempts;
         bson_value_copy (&s->id, &ids[n]);
         n++;
      }
   }
   pthread_mutex_unlock (&worker->ctx.mutex);

   /* Ask the database without holding the lock. */
   for (int i = 0; i < n; i++) {
      mt_slot_state_t state;

      mt_slot_state (client, worker->ctx.db, &ids[i], seen[i].attempts, &state);
      seen[i].holds = state.holds;
      seen[i].keepalive = state.keepalive;
      seen[i].cancelled = state.cancelled;
      bson_value_destroy (&ids[i]);
   }

   /* Callbacks, for the runs that are still the same. */
   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < n; i++) {
      mt_running_t *run = seen[i].run;
      const mt_plugin_t *d = NULL;
      bool still = false;

      for (int k = 0; k < worker->concurrency && !still; k++) {
         still = worker->slots[k].busy && worker->slots[k].run == run && worker->slots[k].attempts == seen[i].attempts;
         if (still && !seen[i].holds && worker->slots[k].child > 0) {
            kill (worker->slots[k].child, SIGKILL); /* isolated: end the child */
         }
      }
      if (!still || run->should_stop) {
         continue;
      }
      d = run->plugin->descriptor;
      if (d->struct_size < offsetof (mt_plugin_t, on_stop) + sizeof (d->on_stop)) {
         d = NULL; /* built before slots: no callbacks */
      }
      if (seen[i].holds) {
         if (seen[i].keepalive > run->last_keepalive) {
            if (run->last_keepalive && d && d->on_keepalive) {
               d->on_keepalive (&run->base, run->plugin->state);
            }
            run->last_keepalive = seen[i].keepalive;
         }
         continue;
      }
      run->should_stop = true;
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "task %s (%s): %s",
              run->parsed.id_str,
              run->parsed.type,
              seen[i].cancelled ? "stopped by request" : "its slot timed out and was taken back");
      if (!seen[i].cancelled && d && d->on_timeout) {
         d->on_timeout (&run->base, run->plugin->state);
      }
      if (d && d->on_stop) {
         d->on_stop (&run->base, run->plugin->state);
      }
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
   bson_free (seen);
   bson_free (ids);
}
