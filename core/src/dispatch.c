/* Dispatch: one claimer per worker process serves all its
 * threads.
 *
 * - The runner threads (--concurrency of them) each own a client popped
 *   from the pool; a runner with nothing to do waits for a held task, and
 *   takes the first one any runner may take: a task held by the process
 *   never waits behind another thread's long process().
 * - The claimer thread claims as many tasks as there are idle runners, in
 *   one round trip when several are free (mt_store_claim_batch) and with
 *   the single findAndModify otherwise, plus the tasks that the run times
 *   of what runs and is held say would start within --prefetch-ms
 *   (prefetch by time: an estimate per task type, kept here). It waits for
 *   a reason to claim: a runner coming free, an event of the watch, the
 *   timer of the earliest delayed task it knows of, the poll (or, while
 *   the watch is healthy, the safety-net) timer, or a stop.
 * - The watch thread (watch.c) follows a change stream on `tasks` and
 *   wakes the claimer for each event that may make a task due; when the
 *   stream cannot open or breaks it says so once, the claimer polls, and
 *   it tries again later.
 *
 * Claims use a unique token each (mt_store_claim_token); a failed claim's
 * token is given back before any new claim. Held tasks' leases are renewed
 * by the heartbeat (heartbeat.c reads worker->held). */
#include "crash.h"
#include "worker-private.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MT_WATCH_AWAIT_MS 1000     /* a getMore of the change stream waits this long for an event */
#define MT_WATCH_MIN_GAP_MS 20     /* between getMores that a server answered at once, empty */
#define MT_WATCH_RETRY_MS 1000     /* the first wait before watching again; doubles */
#define MT_WATCH_RETRY_MAX_MS 60000
#define MT_EWMA_WEIGHT 0.2         /* of the newest run in a type's estimate */
#define MT_FOREVER 1e18
/* The claimer looks at the stop flag at least this often: a stop raised
 * where the dispatch's conditions are not known (the heartbeat finding the
 * worker id taken over, lease.c) wakes only the context's waiters. */
#define MT_CLAIMER_TICK_MS 250

/* ---- flags and waits ----------------------------------------------------- */

static bool
is_stopping (mt_worker_t *worker)
{
   return mt_context_get (&worker->ctx, &worker->ctx.stopping);
}

/* Waits on `cond` (under ctx.mutex, held) for at most `ms` (< 0: until
 * signalled). */
static void
cond_wait_ms (mt_worker_t *worker, pthread_cond_t *cond, int64_t ms)
{
   struct timespec deadline;

   if (ms < 0) {
      pthread_cond_wait (cond, &worker->ctx.mutex);
      return;
   }
   clock_gettime (CLOCK_MONOTONIC, &deadline);
   deadline.tv_sec += (time_t) (ms / 1000);
   deadline.tv_nsec += (long) (ms % 1000) * 1000000L;
   if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
   }
   pthread_cond_timedwait (cond, &worker->ctx.mutex, &deadline);
}

static void
cond_init_monotonic (pthread_cond_t *cond)
{
   pthread_condattr_t attr;

   pthread_condattr_init (&attr);
   pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
   pthread_cond_init (cond, &attr);
   pthread_condattr_destroy (&attr);
}

void
mt_dispatch_init (mt_worker_t *worker)
{
   cond_init_monotonic (&worker->runner_cond);
   cond_init_monotonic (&worker->claimer_cond);
   worker->mean_run_ms = -1;
   worker->held = bson_malloc0 (MT_HELD_MAX * sizeof *worker->held);
}

void
mt_dispatch_cleanup (mt_worker_t *worker)
{
   for (int i = 0; i < worker->n_held; i++) {
      bson_destroy (worker->held[i].doc);
      bson_value_destroy (&worker->held[i].id);
   }
   worker->n_held = 0;
   bson_free (worker->held);
   worker->held = NULL;
   pthread_cond_destroy (&worker->runner_cond);
   pthread_cond_destroy (&worker->claimer_cond);
}

void
mt_dispatch_kick (mt_worker_t *worker)
{
   pthread_mutex_lock (&worker->ctx.mutex);
   pthread_cond_broadcast (&worker->runner_cond);
   pthread_cond_broadcast (&worker->claimer_cond);
   pthread_mutex_unlock (&worker->ctx.mutex);
}

/* mt_server_now, for a caller that holds ctx.mutex. */
static int64_t
server_now_locked (mt_worker_t *worker)
{
   return mt_now_ms () + worker->ctx.clock_offset_ms;
}

/* The claimer's wait on its condition, at most MT_CLAIMER_TICK_MS. */
static void
claimer_wait (mt_worker_t *worker, int64_t ms)
{
   cond_wait_ms (worker, &worker->claimer_cond, ms < 0 ? MT_CLAIMER_TICK_MS : BSON_MIN (ms, MT_CLAIMER_TICK_MS));
}

/* A reason to claim now (a runner came free, an event); under ctx.mutex. */
static void
claim_soon_locked (mt_worker_t *worker)
{
   worker->claim_now = true;
   pthread_cond_signal (&worker->claimer_cond);
}

/* ---- run-time estimates, for prefetch ------------------------------------ */

/* The estimate of `type`'s run time in ms, or < 0 when it has none; under
 * ctx.mutex. */
static double
type_estimate_locked (mt_worker_t *worker, const char *type)
{
   for (int i = 0; i < worker->n_type_stats; i++) {
      if (!strcmp (worker->type_stats[i].type, type)) {
         return worker->type_stats[i].mean_ms;
      }
   }
   return -1;
}

/* A run of `type` took `ms`: the moving means move. */
static void
type_record (mt_worker_t *worker, const char *type, double ms)
{
   mt_type_stat_t *stat = NULL;

   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < worker->n_type_stats && !stat; i++) {
      if (!strcmp (worker->type_stats[i].type, type)) {
         stat = &worker->type_stats[i];
      }
   }
   if (stat) {
      stat->mean_ms += MT_EWMA_WEIGHT * (ms - stat->mean_ms);
   } else if (worker->n_type_stats < MT_TYPE_STATS_MAX) {
      stat = &worker->type_stats[worker->n_type_stats++];
      bson_strncpy (stat->type, type, sizeof stat->type);
      stat->mean_ms = ms;
   }
   worker->mean_run_ms = worker->mean_run_ms < 0 ? ms : worker->mean_run_ms + MT_EWMA_WEIGHT * (ms - worker->mean_run_ms);
   pthread_mutex_unlock (&worker->ctx.mutex);
}

/* How many tasks to claim now: one for each runner free of what is held,
 * and then as many more as would start within the prefetch horizon, by
 * the estimates: each runner becomes free when what it runs is expected to
 * end (a type without an estimate, or a run far past its estimate: never,
 * as far as prefetch is concerned), the held tasks go to the earliest free
 * runner in turn, and so would the next claimed ones, each expected to
 * take the mean run time of all types. *opens_ms gets how long until a
 * runner's expected end enters the horizon (-1: none will), for the
 * claimer's wait. `*free` gets the runners free of what is held. Under
 * ctx.mutex. */
static int
claim_room_locked (mt_worker_t *worker, int *free, int64_t *opens_ms)
{
   int64_t now = bson_get_monotonic_time ();
   double horizon = (double) worker->prefetch_ms;
   double *free_at;
   int room = 0;

   *free = BSON_MAX (0, worker->idle_runners - worker->n_held);
   *opens_ms = -1;
   if (worker->prefetch_ms <= 0 || worker->mean_run_ms < 0 || worker->n_held >= MT_HELD_MAX) {
      return BSON_MIN (*free, MT_HELD_MAX - worker->n_held);
   }
   free_at = bson_malloc ((size_t) worker->concurrency * sizeof *free_at);
   for (int i = 0; i < worker->concurrency; i++) {
      mt_slot_t *s = &worker->slots[i];
      double est, elapsed;

      free_at[i] = 0;
      if (!s->since_us) {
         continue; /* idle, or about to take a held task */
      }
      est = type_estimate_locked (worker, s->type);
      elapsed = (double) (now - s->since_us) / 1000.0;
      if (est < 0 || elapsed > 2 * est + 1) {
         free_at[i] = MT_FOREVER;
      } else {
         free_at[i] = BSON_MAX (0, est - elapsed);
         if (free_at[i] > horizon) {
            int64_t opens = (int64_t) (free_at[i] - horizon) + 1;

            *opens_ms = *opens_ms < 0 ? opens : BSON_MIN (*opens_ms, opens);
         }
      }
   }
   /* Idle runners are counted at 0 above only as many times as they are
    * idle; those that run nothing and take nothing (between tasks) too. */
   for (int j = 0; j <= worker->n_held + MT_CLAIM_BATCH_MAX; j++) {
      int k = 0;
      double est;

      for (int i = 1; i < worker->concurrency; i++) {
         if (free_at[i] < free_at[k]) {
            k = i;
         }
      }
      if (j < worker->n_held) {
         est = type_estimate_locked (worker, worker->held[j].type);
         free_at[k] = est < 0 ? MT_FOREVER : free_at[k] + est;
         continue;
      }
      if (free_at[k] > horizon || room >= MT_CLAIM_BATCH_MAX || worker->n_held + room >= MT_HELD_MAX) {
         break;
      }
      free_at[k] += BSON_MAX (worker->mean_run_ms, 0.001);
      room++;
   }
   bson_free (free_at);
   return BSON_MAX (room, BSON_MIN (*free, MT_HELD_MAX - worker->n_held));
}

/* ---- giving back --------------------------------------------------------- */

void
mt_dispatch_give_back (mt_worker_t *worker,
                       mongoc_client_t *client,
                       mongoc_collection_t *tasks,
                       const bson_value_t *id,
                       int32_t attempts,
                       const char *id_str)
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

void
mt_dispatch_give_back_held (mt_worker_t *worker, mongoc_client_t *client, mongoc_collection_t *tasks)
{
   mt_held_t *held;
   int n;

   /* Taken off the list first: no runner takes one once stopping is
    * raised, and the heartbeat stops renewing what goes back. */
   pthread_mutex_lock (&worker->ctx.mutex);
   n = worker->n_held;
   held = bson_malloc0 ((size_t) BSON_MAX (n, 1) * sizeof *held);
   memcpy (held, worker->held, (size_t) n * sizeof *held);
   worker->n_held = 0;
   pthread_mutex_unlock (&worker->ctx.mutex);
   for (int i = 0; i < n; i++) {
      mt_dispatch_give_back (worker, client, tasks, &held[i].id, held[i].attempts, held[i].id_str);
      bson_value_destroy (&held[i].id);
      bson_destroy (held[i].doc);
   }
   bson_free (held);
}

/* ---- the runners --------------------------------------------------------- */

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

/* One thread's end: the last one out (the claimer counts as one) tells the
 * main thread; --once ends there. */
static void
thread_done (mt_worker_t *worker)
{
   pthread_mutex_lock (&worker->ctx.mutex);
   if (--worker->running_threads == 0) {
      ssize_t r = write (worker->wake_pipe[1], "d", 1);
      (void) r;
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
}

static void *
runner_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->ctx.db, MT_TASKS_COLLECTION);
   mt_slot_t *s;
   int slot;

   pthread_mutex_lock (&worker->ctx.mutex);
   slot = worker->next_slot++;
   s = &worker->slots[slot];
   for (;;) {
      mt_held_t next;
      int64_t began;

      if (worker->n_held == 0 && !worker->ctx.stopping && !worker->failed && !worker->claims_over) {
         /* Free: the claimer claims for it. */
         worker->idle_runners++;
         claim_soon_locked (worker);
         while (worker->n_held == 0 && !worker->ctx.stopping && !worker->failed && !worker->claims_over) {
            pthread_cond_wait (&worker->runner_cond, &worker->ctx.mutex);
         }
         worker->idle_runners--;
      }
      if (worker->ctx.stopping || worker->failed || worker->n_held == 0) {
         break; /* stopping (what is held goes back), or --once is over */
      }
      next = worker->held[0];
      memmove (&worker->held[0], &worker->held[1], (size_t) (worker->n_held - 1) * sizeof worker->held[0]);
      worker->n_held--;
      bson_strncpy (s->type, next.type, sizeof s->type);
      s->since_us = began = bson_get_monotonic_time ();
      pthread_mutex_unlock (&worker->ctx.mutex);

      bson_value_destroy (&next.id);
      run_task (worker, slot, client, tasks, next.doc, next.ahead); /* steals the document */
      type_record (worker, next.type, (double) (bson_get_monotonic_time () - began) / 1000.0);

      pthread_mutex_lock (&worker->ctx.mutex);
      s->since_us = 0;
      s->type[0] = '\0';
   }
   pthread_mutex_unlock (&worker->ctx.mutex);

   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (worker->pool, client);
   thread_done (worker);
   return NULL;
}

/* ---- the claimer --------------------------------------------------------- */

/* At most one sweep per interval; `force` sweeps now. */
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

/* Puts a claimed document on the held list (taking it); under ctx.mutex. */
static void
hold_locked (mt_worker_t *worker, bson_t *doc, bool ahead)
{
   mt_held_t *held = &worker->held[worker->n_held];
   bson_iter_t iter;

   memset (held, 0, sizeof *held);
   /* On the heap: a bson_t that owns its buffer points into itself, and
    * held entries move (taken from the front, copied to be given back). */
   held->doc = bson_copy (doc);
   bson_destroy (doc);
   held->ahead = ahead;
   if (bson_iter_init_find (&iter, held->doc, "_id")) {
      bson_value_copy (bson_iter_value (&iter), &held->id);
      mt_task_id_string (&held->id, held->id_str, sizeof held->id_str);
   } else {
      /* Not a task the claim could take; mt_run_task fails it as malformed. */
      held->id.value_type = BSON_TYPE_NULL;
      bson_strncpy (held->id_str, "?", sizeof held->id_str);
   }
   held->attempts = bson_iter_init_find (&iter, held->doc, "attempts") ? (int32_t) bson_iter_as_int64 (&iter) : 0;
   if (bson_iter_init_find (&iter, held->doc, "type") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      bson_strncpy (held->type, bson_iter_utf8 (&iter, NULL), sizeof held->type);
   }
   worker->n_held++;
}

/* One claim round trip for up to `want` tasks, each a new hold: the single
 * findAndModify for one, the batch claim for more. `*got` gets how many.
 * A failure leaves the claim's token in `unclaimed`. */
static bool
claim (mt_worker_t *worker, mongoc_collection_t *tasks, size_t want, int free, bson_t *docs, size_t *got, char *unclaimed, size_t unclaimed_size, bson_error_t *error)
{
   char token[300];
   bool ok;

   *got = 0;
   /* Unique to this claim: a token never names two holds. */
   mt_store_claim_token (worker->ctx.worker_id, token, sizeof token);
   MT_COUNT (worker, claims);
   if (want > 1) {
      /* Several tasks for one scan of the collection. */
      ok = mt_store_claim_batch (tasks,
                                 worker->ctx.worker_id,
                                 token,
                                 &worker->queues_array,
                                 &worker->types_array,
                                 mt_server_now (&worker->ctx),
                                 want,
                                 docs,
                                 got,
                                 error);
   } else {
      bool claimed = false;

      ok = mt_store_claim_ex (tasks,
                              worker->ctx.worker_id,
                              token,
                              &worker->queues_array,
                              &worker->types_array,
                              mt_server_now (&worker->ctx),
                              &docs[0],
                              &claimed,
                              error);
      if (ok && claimed) {
         *got = 1;
      } else {
         bson_destroy (&docs[0]);
      }
   }
   if (!ok) {
      bson_strncpy (unclaimed, token, unclaimed_size);
      return false;
   }
   pthread_mutex_lock (&worker->ctx.mutex);
   for (size_t i = 0; i < *got; i++) {
      if (worker->n_held < MT_HELD_MAX) {
         hold_locked (worker, &docs[i], (int) i >= free);
      } else {
         bson_destroy (&docs[i]); /* cannot happen: want is within the room */
      }
   }
   if (*got > 1) {
      pthread_cond_broadcast (&worker->runner_cond);
   } else if (*got == 1) {
      pthread_cond_signal (&worker->runner_cond);
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
   return true;
}

/* The claimer's logging of a failed claim, and whether to go on. */
static bool
claim_failed (mt_worker_t *worker, mongoc_collection_t *tasks, const char *what, bson_error_t *error, int64_t backoff, int64_t *failing_since, char *unclaimed)
{
   if (mt_error_is_transient (error, NULL)) {
      int64_t now = bson_get_monotonic_time ();

      *failing_since = *failing_since ? *failing_since : now;
      if (worker->once && now - *failing_since > (int64_t) MT_OUTCOME_RETRY_LIMIT_MS * 1000) {
         /* A --once run (say, from cron) must end: give up. */
         pthread_mutex_lock (&worker->ctx.mutex);
         worker->failed = true;
         worker->failure = *error;
         pthread_mutex_unlock (&worker->ctx.mutex);
         return false;
      }
      if (mt_error_is_network (error)) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "cannot reach the database: %s; retrying in %" PRId64 " ms", error->message, backoff);
      } else {
         /* A failover, a shutdown, a write concern not met in time: the
          * same again shortly. */
         mt_log (&worker->ctx,
                 MT_LOG_WARNING,
                 "cannot %s now (%s); the database should serve it again shortly: retrying in %" PRId64 " ms",
                 what,
                 error->message,
                 backoff);
      }
   } else if (strcmp (what, "claim")) {
      /* Refused for good: no use trying again. */
      mt_log (&worker->ctx,
              MT_LOG_ERROR,
              "cannot give back what a failed claim took (%s); it comes back when its lease ends",
              error->message);
      unclaimed[0] = '\0';
   } else {
      /* A document the claim trips on (e.g. a mistyped field): the sweep
       * takes it out of the way. */
      mt_log (&worker->ctx, MT_LOG_ERROR, "claim failed: %s", error->message);
      maybe_sweep (worker, tasks, true);
   }
   return true;
}

static void *
claimer_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->ctx.db, MT_TASKS_COLLECTION);
   bson_t docs[MT_CLAIM_BATCH_MAX];
   char unclaimed[300] = ""; /* the token of a claim that failed */
   int64_t backoff = 0, failing_since = 0, idle_ms = 0;
   int64_t next_claim_us = 0; /* monotonic: the timer's next claim; 0 now */
   bool backlog = true;       /* the last claim came back full: more may be due */
   bool once_over = false;

   for (;;) {
      int64_t now, wait_ms, opens_ms;
      int free = 0, want = 0;
      bool watching = false;
      const char *what = "claim";
      size_t got = 0;
      bson_error_t error;
      bool ok = true;

      pthread_mutex_lock (&worker->ctx.mutex);
      for (;;) {
         bool due;

         if (worker->ctx.stopping || worker->failed) {
            break;
         }
         if (worker->quiet) {
            if (worker->once) {
               once_over = true;
               break;
            }
            /* Held tasks run; nothing new until stopped. */
            claimer_wait (worker, worker->poll_interval_ms);
            continue;
         }
         now = bson_get_monotonic_time ();
         want = claim_room_locked (worker, &free, &opens_ms);
         watching = worker->watching;
         if (worker->next_delayed_ms && server_now_locked (worker) >= worker->next_delayed_ms) {
            /* A delayed task's time has come. */
            worker->next_delayed_ms = 0;
            worker->claim_now = true;
         }
         due = worker->claim_now || (next_claim_us && now >= next_claim_us) || next_claim_us == 0;
         if (want > 0 && due) {
            break;
         }
         if (worker->once && want > 0 && !due) {
            /* --once: nothing was due at the last claim; it ends when no
             * runner has anything left that could make more due. */
            bool busy = worker->n_held > 0 || worker->idle_runners < worker->concurrency;

            if (!busy) {
               once_over = true;
               break;
            }
         }
         /* Wait for a reason: a runner coming free, an event, a timer. */
         wait_ms = -1;
         if (want > 0 && next_claim_us && !worker->once) {
            wait_ms = BSON_MAX (0, (next_claim_us - now + 999) / 1000);
         }
         if (want == 0 && opens_ms >= 0) {
            wait_ms = opens_ms;
         }
         if (want > 0 && worker->next_delayed_ms) {
            int64_t until = BSON_MAX (0, worker->next_delayed_ms - server_now_locked (worker)) + 1;

            wait_ms = wait_ms < 0 ? until : BSON_MIN (wait_ms, until);
         }
         claimer_wait (worker, wait_ms);
      }
      if (worker->ctx.stopping || worker->failed || once_over) {
         pthread_mutex_unlock (&worker->ctx.mutex);
         break;
      }
      worker->claim_now = false;
      worker->claiming = true;
      pthread_mutex_unlock (&worker->ctx.mutex);

      /* What a failed claim may have taken goes back first: its write may
       * have been applied though the call failed (a lost reply, a write
       * concern error, a read back that failed), and what carries its
       * token is not held by anyone. No new claim until that is done, or
       * the next failure would leave two tokens behind. */
      if (unclaimed[0]) {
         ok = mt_store_unclaim (tasks, worker->ctx.worker_id, unclaimed, &error) >= 0;
         if (ok) {
            unclaimed[0] = '\0';
         } else {
            what = "give back what a failed claim took";
         }
      }
      if (ok) {
         maybe_sweep (worker, tasks, false);
         /* A batch only where a backlog shows: a lone task costs one round
          * trip, not three. */
         want = BSON_MIN (want, MT_CLAIM_BATCH_MAX);
         ok = claim (worker, tasks, backlog ? (size_t) want : 1, free, docs, &got, unclaimed, sizeof unclaimed, &error);
      }
      pthread_mutex_lock (&worker->ctx.mutex);
      worker->claiming = false;
      pthread_cond_broadcast (&worker->runner_cond); /* a runner may wait to fork */
      pthread_mutex_unlock (&worker->ctx.mutex);
      now = bson_get_monotonic_time ();
      if (!ok) {
         backoff = backoff ? BSON_MIN (backoff * 2, MT_RETRY_MAX_MS) : BSON_MIN (100, worker->poll_interval_ms);
         if (!claim_failed (worker, tasks, what, &error, backoff, &failing_since, unclaimed)) {
            break;
         }
         backlog = false;
         next_claim_us = now + backoff * 1000;
         /* Not sooner for a runner coming free: the server needs a moment. */
         pthread_mutex_lock (&worker->ctx.mutex);
         while (!worker->ctx.stopping && bson_get_monotonic_time () < next_claim_us) {
            claimer_wait (worker, BSON_MAX (1, (next_claim_us - bson_get_monotonic_time ()) / 1000));
         }
         pthread_mutex_unlock (&worker->ctx.mutex);
         continue;
      }
      mt_log (&worker->ctx, MT_LOG_DEBUG, "claim: %zu task(s) for %d free thread(s)", got, free);
      backoff = 0;
      failing_since = 0;
      backlog = got == (size_t) (backlog ? want : 1) && got > 0;
      if (backlog) {
         idle_ms = 0;
         next_claim_us = 0; /* again as soon as there is room */
         continue;
      }
      if (worker->once) {
         next_claim_us = INT64_MAX; /* only for a runner coming free */
         continue;
      }
      if (watching) {
         /* The stream announces what becomes due; the timer is a safety
          * net, and the earliest delayed task ahead sets one of its own. */
         int64_t when = 0;

         idle_ms = 0;
         next_claim_us = now + worker->safety_poll_ms * 1000;
         if (mt_watch_next_delayed (tasks, &worker->queues_array, &worker->types_array, mt_server_now (&worker->ctx), &when, &error) &&
             when) {
            pthread_mutex_lock (&worker->ctx.mutex);
            if (!worker->next_delayed_ms || when < worker->next_delayed_ms) {
               worker->next_delayed_ms = when;
            }
            pthread_mutex_unlock (&worker->ctx.mutex);
         }
         continue;
      }
      if (got > 0) {
         idle_ms = 0;
      }
      /* Polling: right after work, look again soon (poll/64), then back
       * off to the poll interval: a task arriving while the worker is idle
       * waits a fraction of the interval, and an idle worker sends one
       * claim per interval, whatever its thread count. */
      idle_ms = idle_ms ? BSON_MIN (idle_ms * 2, worker->poll_interval_ms) : BSON_MAX (1, worker->poll_interval_ms / 64);
      next_claim_us = now + idle_ms * 1000;
   }

   /* The claims are over: the runners run what is held (--once, quiet) or,
    * when stopping, what is held goes back. */
   pthread_mutex_lock (&worker->ctx.mutex);
   worker->claims_over = true;
   pthread_cond_broadcast (&worker->runner_cond);
   pthread_mutex_unlock (&worker->ctx.mutex);
   if (is_stopping (worker) || mt_context_get (&worker->ctx, &worker->failed)) {
      mt_dispatch_give_back_held (worker, client, tasks);
   }
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
   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (worker->pool, client);
   thread_done (worker);
   return NULL;
}

/* ---- the watch ----------------------------------------------------------- */

/* The stream is down: said once per outage, at a level by how it was
 * asked for. */
static void
watch_down (mt_worker_t *worker, const bson_error_t *error, bool was_up)
{
   double poll_s = (double) worker->poll_interval_ms / 1000.0;

   if (mt_watch_unsupported (error)) {
      mt_log (&worker->ctx,
              worker->wake == MT_WAKE_CHANGE_STREAM ? MT_LOG_WARNING : MT_LOG_INFO,
              "no change streams on this server (%s): polling for new tasks every %g s; a replica set (one member "
              "is enough) lets idle workers start tasks at once",
              error->message,
              poll_s);
   } else {
      mt_log (&worker->ctx,
              MT_LOG_WARNING,
              "%s the change stream on '%s.tasks' (%s): polling for new tasks every %g s until it can watch again",
              was_up ? "lost" : "cannot open",
              worker->ctx.db,
              error->message,
              poll_s);
   }
}

static void
set_watching (mt_worker_t *worker, bool watching)
{
   pthread_mutex_lock (&worker->ctx.mutex);
   worker->watching = watching;
   /* Opened: what came before the stream is found by a claim now. Lost:
    * events may have been missed. Either way, claim at once. */
   claim_soon_locked (worker);
   pthread_mutex_unlock (&worker->ctx.mutex);
}

static void *
watch_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->ctx.db, MT_TASKS_COLLECTION);
   int64_t retry_ms = MT_WATCH_RETRY_MS;
   bool down = false; /* the fallback was said and not yet the return */
   bool ever = false;

   while (!is_stopping (worker)) {
      bson_error_t error;
      mongoc_change_stream_t *stream = mt_watch_open (tasks, &worker->queues_array, &worker->types_array, MT_WATCH_AWAIT_MS, &error);

      if (!stream) {
         if (!down) {
            watch_down (worker, &error, false);
            down = true;
         }
         mt_context_wait (&worker->ctx, retry_ms, &worker->ctx.stopping);
         retry_ms = BSON_MIN (retry_ms * 2, MT_WATCH_RETRY_MAX_MS);
         continue;
      }
      if (down || !ever) {
         mt_log (&worker->ctx,
                 MT_LOG_INFO,
                 "watching '%s.tasks' for new tasks%s (a change stream); a safety-net claim every %g s",
                 worker->ctx.db,
                 ever ? " again" : "",
                 (double) worker->safety_poll_ms / 1000.0);
      }
      down = false;
      ever = true;
      retry_ms = MT_WATCH_RETRY_MS;
      set_watching (worker, true);
      for (;;) {
         int64_t began = bson_get_monotonic_time (), delayed = 0;
         int r;

         if (is_stopping (worker)) {
            break;
         }
         r = mt_watch_next (stream, &delayed, &error);
         if (r < 0) {
            watch_down (worker, &error, true);
            down = true;
            break;
         }
         if (r > 0) {
            mt_log (&worker->ctx, MT_LOG_DEBUG, "change stream: a task may be due%s", delayed ? " (delayed)" : "");
            pthread_mutex_lock (&worker->ctx.mutex);
            if (delayed > server_now_locked (worker)) {
               if (!worker->next_delayed_ms || delayed < worker->next_delayed_ms) {
                  worker->next_delayed_ms = delayed;
                  pthread_cond_signal (&worker->claimer_cond); /* a nearer timer */
               }
            } else {
               claim_soon_locked (worker);
            }
            pthread_mutex_unlock (&worker->ctx.mutex);
            continue;
         }
         /* Nothing came. MongoDB waited maxAwaitTimeMS for it; a server
          * that answers at once (the development database) is not asked
          * again straight away. */
         if (bson_get_monotonic_time () - began < MT_WATCH_MIN_GAP_MS * 1000) {
            mt_context_wait (&worker->ctx, MT_WATCH_MIN_GAP_MS, &worker->ctx.stopping);
         }
      }
      mongoc_change_stream_destroy (stream);
      set_watching (worker, false);
      if (down) {
         mt_context_wait (&worker->ctx, retry_ms, &worker->ctx.stopping);
      }
   }
   mongoc_collection_destroy (tasks);
   mongoc_client_pool_push (worker->pool, client);
   return NULL;
}

/* ---- start and join ------------------------------------------------------ */

bool
mt_dispatch_start (mt_worker_t *worker, bson_error_t *error)
{
   bool watch = !worker->once && worker->wake != MT_WAKE_POLL;
   int err = 0;

   pthread_mutex_lock (&worker->ctx.mutex);
   worker->running_threads = worker->concurrency + 1;
   worker->claims_over = false;
   worker->claim_now = true;
   worker->idle_runners = 0;
   pthread_mutex_unlock (&worker->ctx.mutex);
   worker->runners = bson_malloc0 ((size_t) worker->concurrency * sizeof *worker->runners);
   worker->runners_started = 0;

   while (worker->runners_started < worker->concurrency && !err) {
      err = pthread_create (&worker->runners[worker->runners_started], NULL, runner_main, worker);
      worker->runners_started += !err;
   }
   if (!err) {
      err = pthread_create (&worker->claimer_thread, NULL, claimer_main, worker);
      worker->claimer_running = !err;
   }
   if (!err && watch) {
      err = pthread_create (&worker->watch_thread, NULL, watch_main, worker);
      worker->watch_running = !err;
   }
   if (err) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cannot start the worker's threads: %s", strerror (err));
      pthread_mutex_lock (&worker->ctx.mutex);
      /* Those never started will not say they ended. */
      worker->running_threads -= (worker->concurrency - worker->runners_started) + (worker->claimer_running ? 0 : 1);
      pthread_mutex_unlock (&worker->ctx.mutex);
      mt_context_raise (&worker->ctx, &worker->ctx.stopping);
      mt_dispatch_kick (worker);
      mt_dispatch_join (worker);
      return false;
   }
   return true;
}

void
mt_dispatch_join (mt_worker_t *worker)
{
   for (int i = 0; i < worker->runners_started; i++) {
      pthread_join (worker->runners[i], NULL);
   }
   worker->runners_started = 0;
   bson_free (worker->runners);
   worker->runners = NULL;
   if (worker->claimer_running) {
      pthread_join (worker->claimer_thread, NULL);
      worker->claimer_running = false;
   }
   if (worker->watch_running) {
      pthread_join (worker->watch_thread, NULL);
      worker->watch_running = false;
   }
}
