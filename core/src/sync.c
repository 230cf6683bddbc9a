/* Synchronizers (seed 000): a chain of stages, each running a task type on a
 * queue and complete when that queue has drained.
 *
 * `stages` {_id, name, callable, queue, task, next_stage, params} and
 * `synchronizers` {_id, name, start_stage, actual_stage, status, stage_task,
 * start_at, closing}. Stages point at each other by _id (the seed's own
 * example names two stages alike). Status is "stand_by" or "running".
 *
 * Beginning a stage is two steps that survive a crash between them: the
 * synchronizer moves to the stage with `stage_task` null, then the callable
 * is inserted WAITING, recorded in `stage_task` (conditionally, so two
 * callers cannot both record one), and released as CREATED. A running
 * synchronizer found with `stage_task` null is finished off by the next
 * check, and one whose callables a failure left WAITING (not released, or
 * never recorded) is tidied by it. Advancing is one conditional update on
 * (status, actual_stage, stage_task): however many callers check at once,
 * one advances, and only the run of the stage whose queue it found drained
 * (a stage begun again since has another stage_task); it records in
 * `closing` the task the stage closes, which is closed after it, or by the
 * next check when that fails. */
#include "mtask-private.h"

#include <string.h>

static bool
sync_error_code (bson_error_t *error, uint32_t code, const char *format, const char *name)
{
   bson_set_error (error, MT_ERROR_CONFIG, code, format, name);
   return false;
}

static bool
sync_error (bson_error_t *error, const char *format, const char *name)
{
   return sync_error_code (error, MT_CONFIG_ERROR_INVALID, format, name);
}

/* Whether a stage with this id exists. */
static bool
stage_exists (mongoc_client_t *client, const char *db, const bson_oid_t *id, bool *exists, bson_error_t *error);

static bool
load (mongoc_client_t *client, const char *db, const char *collection, const bson_t *filter, bson_t *out, bool *found, bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   bool ok = mt_find_one (coll, filter, NULL, out, found, error);

   mongoc_collection_destroy (coll);
   return ok;
}

static const char *
str (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : NULL;
}

static const bson_oid_t *
oid (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_OID (&iter) ? bson_iter_oid (&iter) : NULL;
}

static bool
stage_exists (mongoc_client_t *client, const char *db, const bson_oid_t *id, bool *exists, bson_error_t *error)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   bson_t doc;
   bool ok = load (client, db, MT_SYNC_STAGES_COLLECTION, filter, &doc, exists, error);

   bson_destroy (&doc);
   bson_destroy (filter);
   return ok;
}

bool
mt_sync_stage_create (mongoc_client_t *client,
                      const char *db,
                      const char *name,
                      const char *callable,
                      const char *queue,
                      const char *task,
                      const bson_oid_t *next_stage,
                      const bson_t *params,
                      bson_oid_t *id,
                      bson_error_t *error)
{
   mongoc_collection_t *stages;
   bson_t doc = BSON_INITIALIZER;
   bson_oid_t new_id;
   bool ok;

   if (!name || !name[0] || !callable || !callable[0] || !queue || !queue[0]) {
      return sync_error (error, "a stage needs a name, a callable (a task type) and a queue%s", "");
   }
   if (next_stage) {
      bool exists;

      if (!stage_exists (client, db, next_stage, &exists, error)) {
         return false;
      }
      if (!exists) {
         return sync_error_code (error, MT_CONFIG_ERROR_NOT_FOUND, "stage '%s': its next stage does not exist in 'stages'", name);
      }
   }
   bson_oid_init (&new_id, NULL);
   BSON_APPEND_OID (&doc, "_id", &new_id);
   BSON_APPEND_UTF8 (&doc, "name", name);
   BSON_APPEND_UTF8 (&doc, "callable", callable);
   BSON_APPEND_UTF8 (&doc, "queue", queue);
   if (task && task[0]) {
      BSON_APPEND_UTF8 (&doc, "task", task);
   } else {
      BSON_APPEND_NULL (&doc, "task");
   }
   if (next_stage) {
      BSON_APPEND_OID (&doc, "next_stage", next_stage);
   } else {
      BSON_APPEND_NULL (&doc, "next_stage");
   }
   if (params) {
      BSON_APPEND_DOCUMENT (&doc, "params", params);
   }
   stages = mongoc_client_get_collection (client, db, MT_SYNC_STAGES_COLLECTION);
   ok = mongoc_collection_insert_one (stages, &doc, NULL, NULL, error);
   if (ok && id) {
      bson_oid_copy (&new_id, id);
   }
   mongoc_collection_destroy (stages);
   bson_destroy (&doc);
   return ok;
}

bool
mt_sync_create (mongoc_client_t *client, const char *db, const char *name, const bson_oid_t *start_stage, bson_error_t *error)
{
   mongoc_collection_t *syncs;
   bson_t *doc;
   bool exists;

   if (!name || !name[0] || !start_stage) {
      return sync_error (error, "a synchronizer needs a name and a start stage%s", "");
   }
   if (!stage_exists (client, db, start_stage, &exists, error)) {
      return false;
   }
   if (!exists) {
      return sync_error_code (error, MT_CONFIG_ERROR_NOT_FOUND, "synchronizer '%s': its start stage does not exist in 'stages'", name);
   }
   syncs = mongoc_client_get_collection (client, db, MT_SYNCHRONIZERS_COLLECTION);
   doc = BCON_NEW ("_id", name, "name", name, "start_stage", BCON_OID (start_stage), "actual_stage", BCON_NULL,
                           "status", "stand_by", "stage_task", BCON_NULL);
   bool ok = mongoc_collection_insert_one (syncs, doc, NULL, NULL, error);

   if (!ok && error->code == 11000) {
      sync_error_code (error, MT_CONFIG_ERROR_STATE, "a synchronizer named '%s' exists already", name);
   }
   bson_destroy (doc);
   mongoc_collection_destroy (syncs);
   return ok;
}

bool
mt_sync_request_start (mongoc_client_t *client, const char *db, const char *name, bson_error_t *error)
{
   mongoc_collection_t *syncs = mongoc_client_get_collection (client, db, MT_SYNCHRONIZERS_COLLECTION);
   bson_t *filter = BCON_NEW ("_id", name, "status", "stand_by");
   bson_t *update = BCON_NEW ("$set", "{", "start_at", BCON_DATE_TIME (mt_now_ms ()), "}");
   bson_t reply;
   bson_iter_t iter;
   bool ok = mongoc_collection_update_one (syncs, filter, update, NULL, &reply, error);

   if (ok && bson_iter_init_find (&iter, &reply, "matchedCount") && bson_iter_as_int64 (&iter) == 0) {
      bson_t *by_name = BCON_NEW ("_id", name);
      bson_t doc;
      bool exists = false;

      ok = load (client, db, MT_SYNCHRONIZERS_COLLECTION, by_name, &doc, &exists, error);
      bson_destroy (&doc);
      bson_destroy (by_name);
      if (ok) {
         ok = exists ? sync_error_code (error, MT_CONFIG_ERROR_STATE, "synchronizer '%s' is running; ask again once it is on stand-by", name)
                     : sync_error_code (error, MT_CONFIG_ERROR_NOT_FOUND, "no synchronizer named '%s'", name);
      }
   }
   bson_destroy (&reply);
   bson_destroy (filter);
   bson_destroy (update);
   mongoc_collection_destroy (syncs);
   return ok;
}

/* Inserts the stage's callable WAITING, records it as the synchronizer's
 * stage task if none is yet, then releases it. */
static bool
enqueue_callable (mongoc_client_t *client, const char *db, const char *name, const bson_t *stage, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   mongoc_collection_t *syncs = mongoc_client_get_collection (client, db, MT_SYNCHRONIZERS_COLLECTION);
   bson_t params = BSON_INITIALIZER, info, doc, reply;
   bson_iter_t iter;
   bson_oid_t task_id;
   bool ok, recorded = false;

   if (bson_iter_init_find (&iter, stage, "params") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t given;

      bson_iter_document (&iter, &len, &data);
      bson_init_static (&given, data, len);
      bson_copy_to_excluding_noinit (&given, &params, "_stage", NULL);
   }
   /* The callable learns which stage runs it, and the task it opens. */
   BSON_APPEND_DOCUMENT_BEGIN (&params, "_stage", &info);
   BSON_APPEND_UTF8 (&info, "synchronizer", name);
   BSON_APPEND_UTF8 (&info, "stage", str (stage, "name") ? str (stage, "name") : "");
   if (str (stage, "task")) {
      BSON_APPEND_UTF8 (&info, "task", str (stage, "task"));
   }
   bson_append_document_end (&params, &info);

   ok = mt_task_build (str (stage, "queue"), str (stage, "callable"), &params, NULL, MT_STATUS_WAITING, &doc, &task_id, error);
   if (ok) {
      BSON_APPEND_UTF8 (&doc, "synchronizer", name);
      ok = mongoc_collection_insert_one (tasks, &doc, NULL, NULL, error);
   }
   bson_destroy (&doc);
   if (ok) {
      bson_t *filter = BCON_NEW ("_id", name, "status", "running", "actual_stage", BCON_OID (oid (stage, "_id")), "stage_task", BCON_NULL);
      bson_t *update = BCON_NEW ("$set", "{", "stage_task", BCON_OID (&task_id), "}");

      ok = mongoc_collection_update_one (syncs, filter, update, NULL, &reply, error);
      recorded = ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1;
      bson_destroy (&reply);
      bson_destroy (filter);
      bson_destroy (update);
   }
   if (ok) {
      /* Released if recorded; if another caller recorded one first, this
       * one was never claimable and goes. */
      bson_t *mine = BCON_NEW ("_id", BCON_OID (&task_id), "status", MT_STATUS_WAITING);
      bson_t *go = BCON_NEW ("$set", "{", "status", MT_STATUS_CREATED, "}");

      ok = recorded ? mongoc_collection_update_one (tasks, mine, go, NULL, NULL, error)
                    : mongoc_collection_delete_one (tasks, mine, NULL, NULL, error);
      bson_destroy (mine);
      bson_destroy (go);
   }
   bson_destroy (&params);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (syncs);
   return ok;
}

bool
mt_sync_begin_stage (mongoc_client_t *client, const char *db, const char *name, const bson_oid_t *stage_id, bson_error_t *error)
{
   mongoc_collection_t *syncs = mongoc_client_get_collection (client, db, MT_SYNCHRONIZERS_COLLECTION);
   bson_t sync, stage, reply;
   bson_t *filter = BCON_NEW ("_id", name);
   bson_iter_t iter;
   bool ok, found, moved = false;

   ok = load (client, db, MT_SYNCHRONIZERS_COLLECTION, filter, &sync, &found, error);
   bson_destroy (filter);
   bson_init (&stage);
   if (!ok) {
      goto cleanup;
   }
   if (!found) {
      ok = sync_error_code (error, MT_CONFIG_ERROR_NOT_FOUND, "no synchronizer named '%s'", name);
      goto cleanup;
   }
   if (!stage_id) {
      stage_id = oid (&sync, "start_stage");
   }
   if (!stage_id) {
      ok = sync_error (error, "synchronizer '%s': its start_stage is not an ObjectId", name);
      goto cleanup;
   }
   bson_destroy (&stage);
   filter = BCON_NEW ("_id", BCON_OID (stage_id));
   ok = load (client, db, MT_SYNC_STAGES_COLLECTION, filter, &stage, &found, error);
   bson_destroy (filter);
   if (ok && !found) {
      ok = sync_error (error, "synchronizer '%s': its stage is missing from 'stages'", name);
   }
   if (!ok) {
      goto cleanup;
   }
   /* Only a synchronizer on stand-by begins. */
   filter = BCON_NEW ("_id", name, "status", "stand_by");
   {
      bson_t *update = BCON_NEW ("$set", "{", "status", "running", "actual_stage", BCON_OID (stage_id), "stage_task", BCON_NULL,
                                 "started", BCON_DATE_TIME (mt_now_ms ()), "}", "$unset", "{", "start_at", "", "}");
      ok = mongoc_collection_update_one (syncs, filter, update, NULL, &reply, error);
      moved = ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1;
      bson_destroy (&reply);
      bson_destroy (update);
   }
   bson_destroy (filter);
   if (ok && !moved) {
      ok = sync_error_code (error, MT_CONFIG_ERROR_STATE, "synchronizer '%s' is running already; it begins again from stand-by", name);
   }
   if (ok) {
      ok = enqueue_callable (client, db, name, &stage, error);
   }

cleanup:
   bson_destroy (&stage);
   bson_destroy (&sync);
   mongoc_collection_destroy (syncs);
   return ok;
}

/* The seed's get_running_task: the newest task of type `type` that is
 * WORK_IN_PROGRESS, if any. */
static bool
newest_running (mongoc_client_t *client, const char *db, const char *type, bson_oid_t *id, bool *found, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   bson_t *filter = BCON_NEW ("type", type, "status", MT_STATUS_WORK_IN_PROGRESS);
   bson_t *opts = BCON_NEW ("sort", "{", "created", BCON_INT32 (-1), "}", "projection", "{", "_id", BCON_INT32 (1), "}");
   bson_t doc;
   bool ok = mt_find_one (tasks, filter, opts, &doc, found, error);

   *found = ok && *found && oid (&doc, "_id");
   if (*found) {
      bson_oid_copy (oid (&doc, "_id"), id);
   }
   bson_destroy (&doc);
   bson_destroy (filter);
   bson_destroy (opts);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* Closes the task the synchronizer's last move recorded in `closing`
 * (FINISHED, if it still runs), then forgets it. Again is harmless: a
 * check that finds `closing` set finishes what a failure left. */
static bool
close_recorded (mongoc_client_t *client, const char *db, const char *name, const bson_oid_t *task, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   mongoc_collection_t *syncs = mongoc_client_get_collection (client, db, MT_SYNCHRONIZERS_COLLECTION);
   bson_t *running = BCON_NEW ("_id", BCON_OID (task), "status", MT_STATUS_WORK_IN_PROGRESS);
   bson_t *close = BCON_NEW ("$set", "{", "status", MT_STATUS_FINISHED, "worker_pid", BCON_NULL,
                             "status_message", "closed by its synchronizer stage", "}",
                             "$currentDate", "{", "finished", BCON_BOOL (true), "}");
   bson_t *recorded = BCON_NEW ("_id", name, "closing", BCON_OID (task));
   bson_t *forget = BCON_NEW ("$unset", "{", "closing", "", "}");
   bool ok = mongoc_collection_update_one (tasks, running, close, NULL, NULL, error) &&
             mongoc_collection_update_one (syncs, recorded, forget, NULL, NULL, error);

   bson_destroy (running);
   bson_destroy (close);
   bson_destroy (recorded);
   bson_destroy (forget);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (syncs);
   return ok;
}

/* What a begin or an advance that failed half way left among the
 * synchronizer's callables: the one recorded as `stage_task` still WAITING
 * (its release failed) is released; others WAITING were never recorded
 * (their record failed) and go, as a caller that lost the race to record
 * does with its own. Either would keep the stage's queue from draining. */
static bool
settle_callables (mongoc_collection_t *tasks, const char *name, const bson_oid_t *recorded, bson_error_t *error)
{
   bson_t *waiting = BCON_NEW ("synchronizer", name, "status", MT_STATUS_WAITING);
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, waiting, opts, NULL);
   const bson_t *doc;
   bson_oid_t ids[16];
   size_t n = 0;
   bool ok;

   while (n < 16 && mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter)) {
         bson_oid_copy (bson_iter_oid (&iter), &ids[n++]);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   for (size_t i = 0; ok && i < n; i++) {
      bson_t *mine = BCON_NEW ("_id", BCON_OID (&ids[i]), "status", MT_STATUS_WAITING);
      bson_t *go = BCON_NEW ("$set", "{", "status", MT_STATUS_CREATED, "}");

      ok = bson_oid_equal (&ids[i], recorded) ? mongoc_collection_update_one (tasks, mine, go, NULL, NULL, error)
                                              : mongoc_collection_delete_one (tasks, mine, NULL, NULL, error);
      bson_destroy (mine);
      bson_destroy (go);
   }
   bson_destroy (waiting);
   bson_destroy (opts);
   return ok;
}

bool
mt_sync_check_completion (mongoc_client_t *client, const char *db, const char *name, bool *advanced, bson_error_t *error)
{
   mongoc_collection_t *syncs = mongoc_client_get_collection (client, db, MT_SYNCHRONIZERS_COLLECTION);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   bson_t sync, stage;
   bson_t *filter = BCON_NEW ("_id", name);
   const bson_oid_t *stage_id, *next;
   bson_oid_t closing;
   bool ok, found, moved = false, has_closing = false;
   int64_t pending;

   *advanced = false;
   error->message[0] = '\0';
   bson_init (&stage);
   ok = load (client, db, MT_SYNCHRONIZERS_COLLECTION, filter, &sync, &found, error);
   bson_destroy (filter);
   if (ok && found && oid (&sync, "closing")) {
      /* The last move's close failed: finish it first. */
      ok = close_recorded (client, db, name, oid (&sync, "closing"), error);
   }
   if (!ok || !found || !str (&sync, "status") || strcmp (str (&sync, "status"), "running") != 0) {
      if (ok && !found) {
         ok = sync_error_code (error, MT_CONFIG_ERROR_NOT_FOUND, "no synchronizer named '%s'", name);
      }
      goto cleanup;
   }
   stage_id = oid (&sync, "actual_stage");
   if (!stage_id) {
      ok = sync_error (error, "synchronizer '%s' is running, but its actual_stage is not an ObjectId", name);
      goto cleanup;
   }
   bson_destroy (&stage);
   filter = BCON_NEW ("_id", BCON_OID (stage_id));
   ok = load (client, db, MT_SYNC_STAGES_COLLECTION, filter, &stage, &found, error) && found;
   bson_destroy (filter);
   if (!ok) {
      if (!error->message[0]) {
         sync_error (error, "synchronizer '%s': its stage is missing from 'stages'", name);
      }
      goto cleanup;
   }
   if (!oid (&sync, "stage_task")) {
      /* Began, but its callable was never recorded (a crash between the
       * steps): enqueue it now. */
      ok = enqueue_callable (client, db, name, &stage, error);
      goto cleanup;
   }
   if (!settle_callables (tasks, name, oid (&sync, "stage_task"), error)) {
      ok = false;
      goto cleanup;
   }

   /* Drained: no task waiting or running on the stage's queue (the task it
    * closes does not count). */
   filter = BCON_NEW ("queue", str (&stage, "queue"), "status", "{", "$in", "[", MT_STATUS_CREATED, MT_STATUS_WAITING,
                      MT_STATUS_WORK_IN_PROGRESS, "]", "}");
   if (str (&stage, "task")) {
      BCON_APPEND (filter, "type", "{", "$ne", str (&stage, "task"), "}");
   }
   pending = mongoc_collection_count_documents (tasks, filter, NULL, NULL, NULL, error);
   bson_destroy (filter);
   if (pending != 0) {
      ok = pending > 0;
      goto cleanup;
   }

   /* Complete. The task it closes is chosen now and recorded with the
    * move, so that the one caller that moves it closes that task, and a
    * later check finishes the close if it fails. */
   if (str (&stage, "task") && !newest_running (client, db, str (&stage, "task"), &closing, &has_closing, error)) {
      ok = false;
      goto cleanup;
   }
   next = oid (&stage, "next_stage");
   /* Read as drained; the move is conditional on the very run of the stage
    * that was counted: its callable (`stage_task`) is new each time a stage
    * begins, so a checker that read the queue before another one moved the
    * synchronizer on (and it began this stage again, or came back to it)
    * moves nothing. */
   mt_failpoint_pause ("sync-drained");
   filter = BCON_NEW ("_id", name, "status", "running", "actual_stage", BCON_OID (stage_id), "stage_task", BCON_OID (oid (&sync, "stage_task")));
   {
      bson_t update = BSON_INITIALIZER, set, reply;
      bson_iter_t iter;

      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
      if (next) {
         BSON_APPEND_OID (&set, "actual_stage", next);
      } else {
         BSON_APPEND_UTF8 (&set, "status", "stand_by");
         BSON_APPEND_NULL (&set, "actual_stage");
         BSON_APPEND_DATE_TIME (&set, "finished", mt_now_ms ());
      }
      BSON_APPEND_NULL (&set, "stage_task");
      if (has_closing) {
         BSON_APPEND_OID (&set, "closing", &closing);
      }
      bson_append_document_end (&update, &set);
      ok = mongoc_collection_update_one (syncs, filter, &update, NULL, &reply, error);
      moved = ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1;
      bson_destroy (&reply);
      bson_destroy (&update);
   }
   bson_destroy (filter);
   if (!moved) {
      goto cleanup; /* someone else advanced it */
   }
   *advanced = true;
   if (has_closing) {
      ok = close_recorded (client, db, name, &closing, error);
   }
   if (ok && next) {
      bson_t next_stage;

      filter = BCON_NEW ("_id", BCON_OID (next));
      ok = load (client, db, MT_SYNC_STAGES_COLLECTION, filter, &next_stage, &found, error);
      bson_destroy (filter);
      if (ok && found) {
         ok = enqueue_callable (client, db, name, &next_stage, error);
      } else if (ok) {
         ok = sync_error (error, "synchronizer '%s': its next stage is missing from 'stages'", name);
      }
      bson_destroy (&next_stage);
   }

cleanup:
   bson_destroy (&stage);
   bson_destroy (&sync);
   mongoc_collection_destroy (syncs);
   mongoc_collection_destroy (tasks);
   return ok;
}

bool
mt_sync_upkeep (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   mongoc_collection_t *syncs = mongoc_client_get_collection (client, ctx->db, MT_SYNCHRONIZERS_COLLECTION);
   int64_t now = mt_server_now (ctx);
   bson_t *filter = BCON_NEW ("$or", "[", "{", "status", "running", "}", "{", "status", "stand_by", "start_at", "{", "$lte",
                              BCON_DATE_TIME (now), "}", "}", "{", "closing", "{", "$exists", BCON_BOOL (true), "}", "}", "]");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (syncs, filter, NULL, NULL);
   const bson_t *doc;
   char **names = NULL, **starting = NULL;
   size_t n = 0, m = 0;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      const char *name = str (doc, "name");
      const char *status = str (doc, "status");

      bson_iter_t iter;

      if (!name || !status) {
         continue;
      }
      if (!strcmp (status, "running") || oid (doc, "closing")) {
         /* Checked: advanced, or the close of its last move finished. */
         names = bson_realloc (names, (n + 2) * sizeof *names);
         names[n++] = bson_strdup (name);
         names[n] = NULL;
      }
      if (!strcmp (status, "stand_by") && bson_iter_init_find (&iter, doc, "start_at") && BSON_ITER_HOLDS_DATE_TIME (&iter) &&
          bson_iter_date_time (&iter) <= now) {
         starting = bson_realloc (starting, (m + 2) * sizeof *starting);
         starting[m++] = bson_strdup (name);
         starting[m] = NULL;
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   mongoc_collection_destroy (syncs);

   /* start_synchros: those asked to start. */
   for (size_t i = 0; ok && i < m; i++) {
      bson_error_t why;

      if (!mt_sync_begin_stage (client, ctx->db, starting[i], NULL, &why)) {
         mt_log (ctx, MT_LOG_WARNING, "synchronizer '%s' cannot begin: %s", starting[i], why.message);
      } else {
         mt_log (ctx, MT_LOG_INFO, "synchronizer '%s' began", starting[i]);
      }
   }
   /* upkeep: check_completion of each running one. */
   for (size_t i = 0; ok && i < n; i++) {
      bool advanced;
      bson_error_t why;

      if (!mt_sync_check_completion (client, ctx->db, names[i], &advanced, &why)) {
         mt_log (ctx, MT_LOG_WARNING, "synchronizer '%s': %s", names[i], why.message);
      } else if (advanced) {
         mt_log (ctx, MT_LOG_INFO, "synchronizer '%s' completed a stage", names[i]);
      }
   }
   mt_strv_free (names);
   mt_strv_free (starting);
   return ok;
}
