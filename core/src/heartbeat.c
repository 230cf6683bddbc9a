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

/* The _ids of the tasks this worker holds: running, and claimed ahead
 * (held as much as running, leases included). */
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
      for (int a = 0; a < worker->slots[i].n_ahead; a++) {
         bson_uint32_to_string (n++, &kp, k, sizeof k);
         BSON_APPEND_VALUE (array, kp, &worker->slots[i].ahead[a].id);
      }
   }
   pthread_mutex_unlock (&worker->ctx.mutex);
}

bool
mt_heartbeat_write (mt_worker_t *worker, mongoc_client_t *client, const char *status, bson_error_t *error)
{
   bson_t fields = BSON_INITIALIZER, held = BSON_INITIALIZER;
   bool ok;

   append_held (worker, &held);
   BSON_APPEND_UTF8 (&fields, "host", worker->hostname);
   BSON_APPEND_INT32 (&fields, "pid", (int32_t) getpid ());
   BSON_APPEND_ARRAY (&fields, "queues", &worker->queues_array);
   BSON_APPEND_ARRAY (&fields, "plugins", &worker->types_array);
   BSON_APPEND_UTF8 (&fields, "status", status);
   BSON_APPEND_INT32 (&fields, "concurrency", worker->concurrency);
   BSON_APPEND_DOUBLE (&fields, "lease_seconds", (double) worker->ctx.lease_ms / 1000.0);
   BSON_APPEND_UTF8 (&fields, "isolate", worker->isolate == MT_ISOLATE_FORK ? "fork" : "none");
   BSON_APPEND_ARRAY (&fields, "tasks", &held);
   ok = mt_lease_heartbeat (&worker->ctx, client, &fields, &held, error);
   bson_destroy (&fields);
   bson_destroy (&held);
   return ok;
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
   bool stop = false, failing = false;

   while (!stop) {
      bool ok = mt_heartbeat_write (worker, client, "running", &error);

      say_state (worker, "heartbeat", ok, &failing, &error, interval_ms);
      stop = mt_context_wait (&worker->ctx, interval_ms, &worker->heartbeat_stop);
   }
   /* The last word: stopped, running nothing (what was running has been
    * finished or given back). */
   if (!mt_heartbeat_write (worker, client, "stopped", &error)) {
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
