/* Leases: the worker's registry document, heartbeats, and taking back the
 * tasks of workers that went silent.
 *
 * A heartbeat thread, independent of the task threads, every lease/3:
 * - upserts this worker's document in `workers` with $currentDate and reads
 *   it back: the server's time, from which the worker keeps an estimate of
 *   the offset between the server's clock and its own;
 * - renews the lease (`heartbeat`, server time) of the tasks it runs, fenced
 *   on its id;
 * - takes back tasks whose heartbeat is older than the lease: CREATED with
 *   the attempt counted, or FAILED when it was the last one. The update is
 *   conditional on the holder it saw, so each task is taken back once
 *   however many workers look. Their account locks go with them.
 * Every time compared on the server is a server time. */
#include "worker-private.h"

#include <string.h>
#include <unistd.h>

#define MT_RECLAIM_BATCH 100

static void
append_running (mt_worker_t *worker, bson_t *doc, const char *key)
{
   bson_t array;
   uint32_t n = 0;

   BSON_APPEND_ARRAY_BEGIN (doc, key, &array);
   pthread_mutex_lock (&worker->mutex);
   for (int i = 0; i < worker->concurrency; i++) {
      char k[16];
      const char *kp;

      if (worker->slots[i].busy) {
         bson_uint32_to_string (n++, &kp, k, sizeof k);
         BSON_APPEND_VALUE (&array, kp, &worker->slots[i].id);
      }
      /* Claimed ahead: held as much as running, leases included. */
      for (int a = 0; a < worker->slots[i].n_ahead; a++) {
         bson_uint32_to_string (n++, &kp, k, sizeof k);
         BSON_APPEND_VALUE (&array, kp, &worker->slots[i].ahead[a].id);
      }
   }
   pthread_mutex_unlock (&worker->mutex);
   bson_append_array_end (doc, &array);
}

bool
mt_lease_heartbeat (mt_worker_t *worker, mongoc_client_t *client, const char *status, bson_error_t *error)
{
   mongoc_collection_t *workers = mongoc_client_get_collection (client, worker->db, MT_WORKERS_COLLECTION);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->db, MT_TASKS_COLLECTION);
   mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new ();
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, child, reply, running;
   bson_iter_t iter, hb;
   int64_t after;
   bool ok = false;

   BSON_APPEND_UTF8 (&filter, "_id", worker->worker_id);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_UTF8 (&set, "host", worker->hostname);
   BSON_APPEND_INT32 (&set, "pid", (int32_t) getpid ());
   BSON_APPEND_ARRAY (&set, "queues", &worker->queues_array);
   BSON_APPEND_ARRAY (&set, "plugins", &worker->types_array);
   BSON_APPEND_UTF8 (&set, "status", status);
   BSON_APPEND_INT32 (&set, "concurrency", worker->concurrency);
   BSON_APPEND_DOUBLE (&set, "lease_seconds", (double) worker->lease_ms / 1000.0);
   BSON_APPEND_UTF8 (&set, "isolate", worker->isolate == MT_ISOLATE_FORK ? "fork" : "none");
   append_running (worker, &set, "tasks");
   bson_append_document_end (&update, &set);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &child);
   BSON_APPEND_BOOL (&child, "heartbeat", true);
   bson_append_document_end (&update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$setOnInsert", &child);
   BSON_APPEND_DATE_TIME (&child, "started", mt_worker_server_now (worker));
   bson_append_document_end (&update, &child);

   mongoc_find_and_modify_opts_set_update (opts, &update);
   mongoc_find_and_modify_opts_set_flags (opts, MONGOC_FIND_AND_MODIFY_UPSERT | MONGOC_FIND_AND_MODIFY_RETURN_NEW);
   if (!mongoc_collection_find_and_modify_with_opts (workers, &filter, opts, &reply, error)) {
      bson_destroy (&reply);
      goto cleanup;
   }
   after = mt_now_ms ();
   if (bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter) && bson_iter_recurse (&iter, &hb) &&
       bson_iter_find (&hb, "heartbeat") && BSON_ITER_HOLDS_DATE_TIME (&hb)) {
      /* The server stamped it somewhere between before and after: the
       * offset is at least stamp - after. Taking that lower bound, the
       * worker's idea of the server's time never runs ahead of it, so it
       * never claims a task early nor takes back a lease early. */
      int64_t offset = bson_iter_date_time (&hb) - after;

      pthread_mutex_lock (&worker->mutex);
      worker->clock_offset_ms = offset;
      pthread_mutex_unlock (&worker->mutex);
   }
   bson_destroy (&reply);

   /* Renew the leases of the tasks this worker runs. */
   bson_init (&running);
   append_running (worker, &running, "0");
   if (bson_iter_init_find (&iter, &running, "0") && bson_iter_recurse (&iter, &hb) && bson_iter_next (&hb)) {
      bson_t renew = BSON_INITIALIZER, in, *touch = BCON_NEW ("$currentDate", "{", "heartbeat", BCON_BOOL (true), "}");
      const uint8_t *data;
      uint32_t len;
      bson_t ids;

      bson_iter_array (&iter, &len, &data);
      bson_init_static (&ids, data, len);
      BSON_APPEND_DOCUMENT_BEGIN (&renew, "_id", &in);
      BSON_APPEND_ARRAY (&in, "$in", &ids);
      bson_append_document_end (&renew, &in);
      BSON_APPEND_UTF8 (&renew, "status", MT_STATUS_WORK_IN_PROGRESS);
      BSON_APPEND_UTF8 (&renew, "worker_pid", worker->worker_id);
      ok = mongoc_collection_update_many (tasks, &renew, touch, NULL, NULL, error);
      bson_destroy (touch);
      bson_destroy (&renew);
   } else {
      ok = true;
   }
   bson_destroy (&running);

cleanup:
   mongoc_find_and_modify_opts_destroy (opts);
   bson_destroy (&filter);
   bson_destroy (&update);
   mongoc_collection_destroy (workers);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* Takes back one task of a lost worker, only if it is still exactly as
 * seen. Returns whether this call took it. */
static bool
reclaim_one (mt_worker_t *worker,
             mongoc_client_t *client,
             mongoc_collection_t *tasks,
             const bson_t *task,
             bool own,
             int64_t cutoff)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, date, reply;
   bson_iter_t iter;
   const bson_value_t *id;
   const char *holder = "?", *type = NULL;
   int32_t attempts = 0, task_max = 0, max;
   bson_error_t why, error;
   char id_str[64] = "?";
   bool ok, taken = false;

   if (!bson_iter_init_find (&iter, task, "_id")) {
      return false;
   }
   id = bson_iter_value (&iter);
   if (id->value_type == BSON_TYPE_OID) {
      bson_oid_to_string (&id->value.v_oid, id_str);
   }
   BSON_APPEND_VALUE (&filter, "_id", id);
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   if (bson_iter_init_find (&iter, task, "worker_pid") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      holder = bson_iter_utf8 (&iter, NULL);
      BSON_APPEND_UTF8 (&filter, "worker_pid", holder);
   } else {
      BSON_APPEND_NULL (&filter, "worker_pid");
   }
   if (bson_iter_init_find (&iter, task, "attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      attempts = (int32_t) bson_iter_as_int64 (&iter);
      BSON_APPEND_VALUE (&filter, "attempts", bson_iter_value (&iter));
   } else {
      BSON_APPEND_NULL (&filter, "attempts");
   }
   if (!own) {
      /* Still silent: a heartbeat since the read would be newer. (Not an
       * equality on the date seen: a server may keep $currentDate finer
       * than the milliseconds it sends, as mongo-java-server does.) */
      bson_t lt;

      if (bson_iter_init_find (&iter, task, "heartbeat")) {
         BSON_APPEND_DOCUMENT_BEGIN (&filter, "heartbeat", &lt);
         BSON_APPEND_DATE_TIME (&lt, "$lt", cutoff);
         bson_append_document_end (&filter, &lt);
      } else {
         BSON_APPEND_DOCUMENT_BEGIN (&filter, "heartbeat", &lt);
         BSON_APPEND_BOOL (&lt, "$exists", false);
         bson_append_document_end (&filter, &lt);
      }
   }
   if (bson_iter_init_find (&iter, task, "max_attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      task_max = (int32_t) bson_iter_as_int64 (&iter);
   }
   if (bson_iter_init_find (&iter, task, "type") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      type = bson_iter_utf8 (&iter, NULL);
   }
   max = mt_worker_max_attempts (worker, type, task_max);

   if (own) {
      bson_set_error (&why,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_WORKER_LOST,
                      "worker '%s' was restarted while running this task (attempt %" PRId32 "); taken back",
                      holder,
                      attempts);
   } else {
      bson_set_error (&why,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_WORKER_LOST,
                      "worker '%s' was lost: no heartbeat for %.0f s (its lease) during attempt %" PRId32
                      "; taken back by '%s'",
                      holder,
                      (double) worker->lease_ms / 1000.0,
                      attempts,
                      worker->worker_id);
   }
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_UTF8 (&set, "status", attempts >= max ? MT_STATUS_FAILED : MT_STATUS_CREATED);
   BSON_APPEND_NULL (&set, "worker_pid");
   BSON_APPEND_NULL (&set, "delayed");
   BSON_APPEND_INT32 (&set, "max_attempts", max);
   mt_append_error (&set, "error", &why);
   bson_append_document_end (&update, &set);
   if (attempts >= max) {
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
      BSON_APPEND_BOOL (&date, "finished", true);
      bson_append_document_end (&update, &date);
   }
   mt_append_error_history (&update, &why, attempts);

   ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, &reply, &error);
   if (ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1) {
      mt_lock_owner_t owner = {.task_id = id, .worker_id = holder, .attempt = attempts};

      taken = true;
      mt_locks_release_all (client, worker->db, &owner, &error);
      mt_slot_release (client, worker->db, id, attempts, &error);
      if (attempts >= max && !mt_group_task_ended_doc (client, worker->db, task, &error)) {
         mt_worker_log (worker, MT_LOG_WARNING, "task %s: cannot count it in its stage yet: %s", id_str, error.message);
      }
      mt_worker_log (worker,
                     MT_LOG_WARNING,
                     "task %s: %s; now %s",
                     id_str,
                     why.message,
                     attempts >= max ? "FAILED, its attempts spent" : "CREATED again");
   } else if (!ok) {
      mt_worker_log (worker, MT_LOG_WARNING, "task %s: cannot take it back: %s", id_str, error.message);
   }
   bson_destroy (&reply);
   bson_destroy (&filter);
   bson_destroy (&update);
   return taken;
}

int64_t
mt_lease_reclaim (mt_worker_t *worker, mongoc_client_t *client, bool own_only, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, worker->db, MT_TASKS_COLLECTION);
   mongoc_collection_t *workers = mongoc_client_get_collection (client, worker->db, MT_WORKERS_COLLECTION);
   int64_t cutoff = mt_worker_server_now (worker) - worker->lease_ms;
   bson_t *filter, *opts = BCON_NEW ("limit", BCON_INT64 (MT_RECLAIM_BATCH));
   mongoc_cursor_t *cursor;
   const bson_t *task;
   bson_t **found = bson_malloc0 (MT_RECLAIM_BATCH * sizeof *found);
   size_t n = 0;
   int64_t taken = -1;

   if (own_only) {
      /* At start: whatever a worker with our id left running is not
       * running now. */
      filter = BCON_NEW ("status", MT_STATUS_WORK_IN_PROGRESS, "worker_pid", worker->worker_id);
   } else {
      filter = BCON_NEW ("status",
                         MT_STATUS_WORK_IN_PROGRESS,
                         "$or",
                         "[",
                         "{",
                         "heartbeat",
                         "{",
                         "$lt",
                         BCON_DATE_TIME (cutoff),
                         "}",
                         "}",
                         "{",
                         "heartbeat",
                         "{",
                         "$exists",
                         BCON_BOOL (false),
                         "}",
                         "started",
                         "{",
                         "$lt",
                         BCON_DATE_TIME (cutoff),
                         "}",
                         "}",
                         "]");
   }
   /* Read first, then update one by one: the cursor must not see the
    * documents it is changing. */
   cursor = mongoc_collection_find_with_opts (tasks, filter, opts, NULL);
   while (n < MT_RECLAIM_BATCH && mongoc_cursor_next (cursor, &task)) {
      found[n++] = bson_copy (task);
   }
   if (!mongoc_cursor_error (cursor, error)) {
      taken = 0;
      for (size_t i = 0; i < n; i++) {
         taken += reclaim_one (worker, client, tasks, found[i], own_only, cutoff);
      }
   }
   for (size_t i = 0; i < n; i++) {
      bson_destroy (found[i]);
   }
   if (taken >= 0 && !own_only) {
      /* Workers that went silent, for whoever is watching `workers`. */
      bson_t *lost = BCON_NEW ("status", "running", "heartbeat", "{", "$lt", BCON_DATE_TIME (cutoff), "}");
      bson_t *mark = BCON_NEW ("$set", "{", "status", "lost", "}");

      mongoc_collection_update_many (workers, lost, mark, NULL, NULL, NULL);
      bson_destroy (lost);
      bson_destroy (mark);
   }
   bson_free (found);
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   bson_destroy (opts);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (workers);
   return taken;
}

/* Whether this worker has the upkeep tick: one worker of all wins each
 * interval, by moving the `ticks` document's time forward conditionally
 * (an upsert whose insert loses to the unique _id when another won). */
static bool
win_tick (mt_worker_t *worker, mongoc_client_t *client, int64_t interval_ms, bool *won, bson_error_t *error)
{
   mongoc_collection_t *ticks = mongoc_client_get_collection (client, worker->db, "ticks");
   int64_t now = mt_worker_server_now (worker);
   bson_t *filter = BCON_NEW ("_id", "upkeep", "at", "{", "$lt", BCON_DATE_TIME (now - interval_ms + 50), "}");
   bson_t *update = BCON_NEW ("$set", "{", "at", BCON_DATE_TIME (now), "by", worker->worker_id, "}", "$inc", "{", "tick", BCON_INT64 (1), "}");
   bson_t *opts = BCON_NEW ("upsert", BCON_BOOL (true));
   bson_t reply;
   bson_iter_t iter;
   bool ok;

   ok = mongoc_collection_update_one (ticks, filter, update, opts, &reply, error);
   *won = ok && ((bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1) ||
                 (bson_iter_init_find (&iter, &reply, "upsertedCount") && bson_iter_as_int64 (&iter) == 1));
   if (!ok && error->code == 11000) {
      ok = true; /* another worker has this tick */
   }
   bson_destroy (&reply);
   bson_destroy (filter);
   bson_destroy (update);
   bson_destroy (opts);
   mongoc_collection_destroy (ticks);
   return ok;
}

bool
mt_upkeep (mt_worker_t *worker, mongoc_client_t *client, bson_error_t *error)
{
   bool won;

   if (!win_tick (worker, client, BSON_MAX (200, worker->lease_ms / 3), &won, error)) {
      return false;
   }
   if (!won) {
      return true;
   }
   return mt_groups_upkeep (client, worker->db, mt_worker_server_now (worker), error) && mt_sync_upkeep (worker, client, error) &&
          mt_slots_upkeep (worker, client, error) && mt_schedule_upkeep (worker, client, error);
}

static void *
heartbeat_main (void *data)
{
   mt_worker_t *worker = data;
   mongoc_client_t *client = mongoc_client_pool_pop (worker->pool);
   int64_t interval_ms = BSON_MAX (200, worker->lease_ms / 3);
   bson_error_t error;
   bool stop = false, failing = false;

   while (!stop) {
      bool ok;

      ok = mt_lease_heartbeat (worker, client, "running", &error) && mt_lease_reclaim (worker, client, false, &error) >= 0 &&
           mt_upkeep (worker, client, &error) && (!worker->archive || mt_archive_sweep (worker, client, &error) >= 0);
      mt_slots_watch (worker, client);
      if (!ok && !failing) {
         mt_worker_log (worker, MT_LOG_WARNING, "heartbeat failed: %s; trying again every %.1f s", error.message, (double) interval_ms / 1000.0);
      } else if (ok && failing) {
         mt_worker_log (worker, MT_LOG_INFO, "heartbeat works again");
      }
      failing = !ok;

      stop = mt_worker_wait (worker, interval_ms, &worker->heartbeat_stop);
   }
   /* The last word: stopped, running nothing (what was running has been
    * finished or given back). */
   if (!mt_lease_heartbeat (worker, client, "stopped", &error)) {
      mt_worker_log (worker, MT_LOG_WARNING, "cannot record that the worker stopped: %s", error.message);
   }
   mongoc_client_pool_push (worker->pool, client);
   return NULL;
}

bool
mt_lease_start (mt_worker_t *worker, bson_error_t *error)
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
mt_lease_stop (mt_worker_t *worker)
{
   if (!worker->heartbeat_running) {
      return;
   }
   pthread_mutex_lock (&worker->mutex);
   worker->heartbeat_stop = true;
   pthread_cond_broadcast (&worker->cond);
   pthread_mutex_unlock (&worker->mutex);
   pthread_join (worker->heartbeat_thread, NULL);
   worker->heartbeat_running = false;
}
