/* The worker's two background threads, independent of the task threads
 * and of each other:
 * - the heartbeat thread, every lease/3, writes the worker's registry
 *   document and renews the leases of what the worker holds (lease.c), and
 *   does nothing else, so that nothing can delay a renewal: a slow upkeep
 *   or archive never lets a live task's lease run out;
 * - the upkeep thread, every lease/3, takes back the tasks of lost workers,
 *   runs the upkeep tick (upkeep.c), sweeps ended tasks into the archive,
 *   and calls the slot callbacks of the tasks it runs (run.c). The tick and
 *   the sweep each stop after lease/6 and go on at the next turn. */
#include "worker-private.h"

#include <string.h>
#include <unistd.h>

/* The _ids of the tasks this worker holds: running, and claimed and not
 * running yet (dispatch.c; held as much as running, leases included). */
static void
append_held (mt_worker_t *worker, bson_t *array)
{
   uint32_t n = 0;

   pthread_mutex_lock (&worker->ctx.mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      char k[16];
      const char *kp;

      if (worker->slots[i].busy) {
         bson_uint32_to_string (n++, &kp, k, sizeof k);
         BSON_APPEND_VALUE (array, kp, &worker->slots[i].id);
      }
   }
   for (int a = 0; a < worker->n_held; a++) {
      char k[16];
      const char *kp;

      bson_uint32_to_string (n++, &kp, k, sizeof k);
      BSON_APPEND_VALUE (array, kp, &worker->held[a].id);
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
}

/* The worker's counters (worker-private.h) as the registry's `counters`. */
static void
append_counters (mt_worker_t *worker, bson_t *fields)
{
   mt_counters_t *c = &worker->counters;
   bson_t doc;

   BSON_APPEND_DOCUMENT_BEGIN (fields, "counters", &doc);
   BSON_APPEND_INT64 (&doc, "run", (int64_t) atomic_load_explicit (&c->run, memory_order_relaxed));
   BSON_APPEND_INT64 (&doc, "failed", (int64_t) atomic_load_explicit (&c->failed, memory_order_relaxed));
   BSON_APPEND_INT64 (&doc, "retried", (int64_t) atomic_load_explicit (&c->retried, memory_order_relaxed));
   BSON_APPEND_INT64 (&doc, "given_back", (int64_t) atomic_load_explicit (&c->given_back, memory_order_relaxed));
   BSON_APPEND_INT64 (&doc, "claims", (int64_t) atomic_load_explicit (&c->claims, memory_order_relaxed));
   bson_append_document_end (fields, &doc);
}

/* What the worker says of itself: stopping (no new claims, running tasks
 * finish or go back), quiet (no new claims, staying up) or running. */
static const char *
own_status (mt_worker_t *worker)
{
   if (mt_context_get (&worker->ctx, &worker->ctx.stopping)) {
      return "stopping";
   }
   return mt_context_get (&worker->ctx, &worker->quiet) ? "quiet" : "running";
}

bool
mt_heartbeat_write (mt_worker_t *worker, mongoc_client_t *client, const char *status, bson_t *entry, bson_error_t *error)
{
   bson_t fields = BSON_INITIALIZER, held = BSON_INITIALIZER, none = BSON_INITIALIZER;
   bool stopped = status && !strcmp (status, "stopped");
   bool ok;

   if (!status) {
      status = own_status (worker);
   }
   if (!stopped) {
      append_held (worker, &held);
   }
   BSON_APPEND_UTF8 (&fields, "host", worker->hostname);
   BSON_APPEND_INT32 (&fields, "pid", (int32_t) getpid ());
   BSON_APPEND_ARRAY (&fields, "queues", &worker->queues_array);
   BSON_APPEND_ARRAY (&fields, "plugins", &worker->types_array);
   BSON_APPEND_UTF8 (&fields, "status", status);
   BSON_APPEND_INT32 (&fields, "concurrency", worker->concurrency);
   BSON_APPEND_DOUBLE (&fields, "lease_seconds", (double) worker->ctx.lease_ms / 1000.0);
   BSON_APPEND_UTF8 (&fields, "isolate", worker->isolate == MT_ISOLATE_FORK ? "fork" : "none");
   append_counters (worker, &fields);
   /* A stopped worker runs nothing: what it held was finished or given
    * back, and a task still inside process() after the grace is another
    * worker's to take back by its lease. */
   BSON_APPEND_ARRAY (&fields, "tasks", stopped ? &none : &held);
   if (stopped) {
      /* The registry keeps it a while for whoever looks, then the TTL
       * index (or, on a server without TTL, any live worker) deletes it. */
      BSON_APPEND_DATE_TIME (&fields, "expires", mt_server_now (&worker->ctx) + MT_WORKER_KEEP_MS);
   }
   ok = mt_lease_heartbeat (&worker->ctx, client, &fields, &held, entry, error);
   bson_destroy (&fields);
   bson_destroy (&held);
   bson_destroy (&none);
   return ok;
}

/* Tells the run's wait, as mt_worker_quiet ('q') and mt_worker_stop ('s')
 * do (worker.c, which calls this file: not called from here). */
static void
wake (mt_worker_t *worker, char c)
{
   if (worker->wake_pipe[1] >= 0) {
      ssize_t r = write (worker->wake_pipe[1], &c, 1);
      (void) r;
   }
}

/* Follows a command an operator left in the registry document (mtaskctl
 * worker quiet|stop, mt_admin_worker_command): each once. */
static void
follow_command (mt_worker_t *worker, const bson_t *entry, bool *quieted, bool *stopped)
{
   bson_iter_t iter;
   const char *command;

   if (!bson_iter_init_find (&iter, entry, "command") || !BSON_ITER_HOLDS_UTF8 (&iter)) {
      return;
   }
   command = bson_iter_utf8 (&iter, NULL);
   if (!strcmp (command, "quiet") && !*quieted) {
      *quieted = true;
      mt_log (&worker->ctx, MT_LOG_INFO, "the registry asks this worker to be quiet");
      wake (worker, 'q');
   } else if (!strcmp (command, "stop") && !*stopped) {
      *stopped = true;
      if (bson_iter_init_find (&iter, entry, "grace") && BSON_ITER_HOLDS_NUMBER (&iter) && bson_iter_as_double (&iter) >= 0 &&
          bson_iter_as_double (&iter) <= 24 * 3600) {
         /* Read by the run's shut_down only after the byte below. */
         worker->grace_ms = (int64_t) (bson_iter_as_double (&iter) * 1000.0);
      }
      mt_log (&worker->ctx,
              MT_LOG_INFO,
              "the registry asks this worker to stop (grace %.0f s)",
              (double) worker->grace_ms / 1000.0);
      wake (worker, 's');
   }
}

/* Logs a change between working and failing, once each way. */
static void
say_state (mt_worker_t *worker, const char *what, bool ok, bool *failing, const bson_error_t *error, int64_t interval_ms)
{
   if (!ok && !*failing) {
      mt_log (&worker->ctx, MT_LOG_WARNING, "%s failed: %s; trying again every %.1f s", what, error->message, (double) interval_ms / 1000.0);
   } else if (ok && *failing) {
      mt_log (&worker->ctx, MT_LOG_INFO, "%s works again", what);
   }
   *failing = !ok;
}

static int64_t
interval_of (const mt_worker_t *worker)
{
   return BSON_MAX (200, worker->ctx.lease_ms / 3);
}

static void *
heartbeat_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   int64_t interval_ms = interval_of (worker);
   bson_error_t error;
   bool stop = false, failing = false, quieted = false, stopped = false;

   while (!stop) {
      bson_t entry;
      bool ok = mt_heartbeat_write (worker, client, NULL, &entry, &error);

      if (ok) {
         follow_command (worker, &entry, &quieted, &stopped);
      }
      bson_destroy (&entry);
      say_state (worker, "heartbeat", ok, &failing, &error, interval_ms);
      stop = mt_context_wait (&worker->ctx, interval_ms, &worker->heartbeat_stop);
   }
   /* The last word: stopped, running nothing (what was running has been
    * finished or given back). */
   if (!mt_heartbeat_write (worker, client, "stopped", NULL, &error)) {
      mt_log (&worker->ctx, MT_LOG_WARNING, "cannot record that the worker stopped: %s", error.message);
   }
   mongoc_client_pool_push (worker->pool, client);
   return NULL;
}

static void *
upkeep_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   int64_t interval_ms = interval_of (worker);
   /* Each of the tick and the sweep does what fits in this, so that taking
    * back lost tasks and the slot watch come round every interval. */
   int64_t budget_us = BSON_MAX (100, worker->ctx.lease_ms / 6) * 1000;
   bool stop = false, failing = false;

   while (!stop) {
      bson_error_t error, why;
      bool ok = true;

      if (mt_lease_reclaim (&worker->ctx, client, false, &why) < 0) {
         error = why;
         ok = false;
      }
      if (!mt_upkeep_tick_until (&worker->ctx, client, bson_get_monotonic_time () + budget_us, &why) && ok) {
         error = why;
         ok = false;
      }
      if (worker->archive && mt_archive_sweep_until (&worker->ctx, client, &worker->queues_array, bson_get_monotonic_time () + budget_us, &why) < 0 && ok) {
         error = why;
         ok = false;
      }
      mt_run_watch_slots (worker, client);
      say_state (worker, "upkeep", ok, &failing, &error, interval_ms);
      stop = mt_context_wait (&worker->ctx, interval_ms, &worker->heartbeat_stop);
   }
   mongoc_client_pool_push (worker->pool, client);
   return NULL;
}

bool
mt_heartbeat_start (mt_worker_t *worker, bson_error_t *error)
{
   int e;

   worker->heartbeat_stop = false;
   if ((e = pthread_create (&worker->heartbeat_thread, NULL, heartbeat_main, worker)) != 0) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cannot start the heartbeat thread: %s", strerror (e));
      return false;
   }
   worker->heartbeat_running = true;
   if ((e = pthread_create (&worker->upkeep_thread, NULL, upkeep_main, worker)) != 0) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cannot start the upkeep thread: %s", strerror (e));
      return false;
   }
   worker->upkeep_running = true;
   return true;
}

void
mt_heartbeat_stop (mt_worker_t *worker)
{
   if (!worker->heartbeat_running && !worker->upkeep_running) {
      return;
   }
   mt_context_raise (&worker->ctx, &worker->heartbeat_stop);
   if (worker->upkeep_running) {
      pthread_join (worker->upkeep_thread, NULL);
      worker->upkeep_running = false;
   }
   if (worker->heartbeat_running) {
      pthread_join (worker->heartbeat_thread, NULL);
      worker->heartbeat_running = false;
   }
}
