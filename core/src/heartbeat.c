/* The worker's heartbeat thread, independent of the task threads: every
 * lease/3 it writes the worker's registry document and renews the leases of
 * what the worker holds (lease.c), takes back the tasks of lost workers,
 * runs the upkeep tick (upkeep.c), sweeps ended tasks into the archive, and
 * calls the slot callbacks of the tasks it runs (run.c). */
#include "worker-private.h"

#include <errno.h>
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

static void *
heartbeat_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   int64_t interval_ms = BSON_MAX (200, worker->ctx.lease_ms / 3);
   bson_error_t error;
   bool stop = false, failing = false;

   while (!stop) {
      bool ok;

      ok = mt_heartbeat_write (worker, client, "running", &error) && mt_lease_reclaim (&worker->ctx, client, false, &error) >= 0 &&
           mt_upkeep_tick (&worker->ctx, client, &error) && (!worker->archive || mt_archive_sweep (&worker->ctx, client, &worker->queues_array, &error) >= 0);
      mt_run_watch_slots (worker, client);
      if (!ok && !failing) {
         mt_log (&worker->ctx, MT_LOG_WARNING, "heartbeat failed: %s; trying again every %.1f s", error.message, (double) interval_ms / 1000.0);
      } else if (ok && failing) {
         mt_log (&worker->ctx, MT_LOG_INFO, "heartbeat works again");
      }
      failing = !ok;

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

bool
mt_heartbeat_start (mt_worker_t *worker, bson_error_t *error)
{
   worker->heartbeat_stop = false;
   if (pthread_create (&worker->heartbeat_thread, NULL, heartbeat_main, worker) != 0) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "cannot start the heartbeat thread: %s", strerror (errno));
      return false;
   }
   worker->heartbeat_running = true;
   return true;
}

void
mt_heartbeat_stop (mt_worker_t *worker)
{
   if (!worker->heartbeat_running) {
      return;
   }
   mt_context_raise (&worker->ctx, &worker->heartbeat_stop);
   pthread_join (worker->heartbeat_thread, NULL);
   worker->heartbeat_running = false;
}
