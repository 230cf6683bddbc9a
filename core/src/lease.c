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
 * Every time compared on the server is a server time. The worker's
 * heartbeat thread (heartbeat.c) calls these. */
#include "mtask-private.h"

#include <string.h>

#define MT_RECLAIM_BATCH 100

bool
mt_lease_heartbeat (mt_context_t *ctx, mongoc_client_t *client, const bson_t *fields, const bson_t *held, bson_error_t *error)
{
   mongoc_collection_t *workers = mongoc_client_get_collection (client, ctx->db, MT_WORKERS_COLLECTION);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new ();
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, child, reply;
   bson_iter_t iter, hb;
   int64_t after;
   bool ok = false;

   BSON_APPEND_UTF8 (&filter, "_id", ctx->worker_id);
   BSON_APPEND_DOCUMENT (&update, "$set", fields);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &child);
   BSON_APPEND_BOOL (&child, "heartbeat", true);
   bson_append_document_end (&update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$setOnInsert", &child);
   BSON_APPEND_DATE_TIME (&child, "started", mt_server_now (ctx));
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
      mt_server_clock_set (ctx, bson_iter_date_time (&hb) - after);
   }
   bson_destroy (&reply);

   /* Renew the leases of the tasks this worker holds. */
   if (!bson_empty (held)) {
      bson_t renew = BSON_INITIALIZER, in, *touch = BCON_NEW ("$currentDate", "{", "heartbeat", BCON_BOOL (true), "}");

      BSON_APPEND_DOCUMENT_BEGIN (&renew, "_id", &in);
      BSON_APPEND_ARRAY (&in, "$in", held);
      bson_append_document_end (&renew, &in);
      BSON_APPEND_UTF8 (&renew, "status", MT_STATUS_WORK_IN_PROGRESS);
      BSON_APPEND_UTF8 (&renew, "worker_pid", ctx->worker_id);
      ok = mongoc_collection_update_many (tasks, &renew, touch, NULL, NULL, error);
      bson_destroy (touch);
      bson_destroy (&renew);
   } else {
      ok = true;
   }

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
reclaim_one (mt_context_t *ctx,
             mongoc_client_t *client,
             mongoc_collection_t *tasks,
             const bson_t *task,
             bool own,
             int64_t cutoff)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, date, reply;
   bson_iter_t iter, id_iter;
   const bson_value_t *id;
   const char *holder = "?", *type = NULL;
   int32_t attempts = 0, task_max = 0, max;
   bson_error_t why, error;
   char id_str[64] = "?";
   bool ok, taken = false;

   /* `id` points into its iterator: one of its own, as `iter` moves on. */
   if (!bson_iter_init_find (&id_iter, task, "_id")) {
      return false;
   }
   id = bson_iter_value (&id_iter);
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
   max = mt_retry_max_attempts (ctx, type, task_max);

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
                      (double) ctx->lease_ms / 1000.0,
                      attempts,
                      ctx->worker_id);
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
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$unset", &date);
   BSON_APPEND_UTF8 (&date, "claim", ""); /* the lost hold's token goes with it */
   bson_append_document_end (&update, &date);
   mt_append_error_history (&update, &why, attempts);

   ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, &reply, &error);
   if (ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1) {
      mt_lock_owner_t owner = {.task_id = id, .worker_id = holder, .attempt = attempts};

      taken = true;
      /* Both lapse anyway now that the run is over (the next taker takes
       * the lock over; upkeep frees the slot): say so and go on. */
      if (mt_locks_release_all (client, ctx->db, &owner, &error) < 0) {
         mt_log (ctx, MT_LOG_WARNING, "task %s: cannot release its account locks yet: %s", id_str, error.message);
      }
      if (!mt_slot_release (client, ctx->db, id, attempts, &error)) {
         mt_log (ctx, MT_LOG_WARNING, "task %s: cannot free its slot yet: %s", id_str, error.message);
      }
      if (attempts >= max && !mt_group_task_ended_doc (client, ctx->db, task, &error)) {
         mt_log (ctx, MT_LOG_WARNING, "task %s: cannot count it in its stage yet: %s", id_str, error.message);
      }
      mt_log (ctx,
              MT_LOG_WARNING,
              "task %s: %s; now %s",
              id_str,
              why.message,
              attempts >= max ? "FAILED, its attempts spent" : "CREATED again");
   } else if (!ok) {
      mt_log (ctx, MT_LOG_WARNING, "task %s: cannot take it back: %s", id_str, error.message);
   }
   bson_destroy (&reply);
   bson_destroy (&filter);
   bson_destroy (&update);
   return taken;
}

int64_t
mt_lease_reclaim (mt_context_t *ctx, mongoc_client_t *client, bool own_only, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   mongoc_collection_t *workers = mongoc_client_get_collection (client, ctx->db, MT_WORKERS_COLLECTION);
   int64_t cutoff = mt_server_now (ctx) - ctx->lease_ms;
   bson_t *filter, *opts = BCON_NEW ("limit", BCON_INT64 (MT_RECLAIM_BATCH));
   mongoc_cursor_t *cursor;
   const bson_t *task;
   bson_t **found = bson_malloc0 (MT_RECLAIM_BATCH * sizeof *found);
   size_t n = 0;
   int64_t taken = -1;

   if (own_only) {
      /* At start: whatever a worker with our id left running is not
       * running now. */
      filter = BCON_NEW ("status", MT_STATUS_WORK_IN_PROGRESS, "worker_pid", ctx->worker_id);
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
         taken += reclaim_one (ctx, client, tasks, found[i], own_only, cutoff);
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
