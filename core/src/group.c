/* Staged groups (seed 003): a group of numbered stages of tasks; stage N+1
 * starts only when every task of stage N has ended (FINISHED, FAILED with
 * no retry left, or CANCELLED), exactly once however many workers end tasks
 * at the same moment.
 *
 * Documents: `groups` {_id, description, created, status, keep_seconds,
 * keep_until, completed}; `group_stages` {_id, group, number, status,
 * total, done, created, enqueued, started, completed}, unique on (group,
 * number); tasks carry `group` and `stage`, and wait as WAITING until their
 * stage starts.
 *
 * Completion is counted on the stage as tasks end, with a marker on each
 * task: the task gets `stage_counted: true` (an update conditional on the
 * task being ended and not marked yet), and only the caller whose update
 * marked it adds one to the stage's `done`. So a task is counted once
 * however often its end is reported, retried or repaired. A crash between
 * the two writes loses that one count, never doubles it: the upkeep tick
 * completes a stage that has no live task left from its tasks themselves.
 * (Stages written before the marker kept the ids they counted in
 * `done_ids`; a task whose id is there is not counted again.)
 *
 * A stage completes with one conditional update whose filter holds the
 * condition itself, `done >= total` ($expr), not a count read before it: an
 * enqueue that adds a task between the count and the update makes the
 * update match nothing, and the stage waits for that task. Upkeep counts
 * what a crash left uncounted, starts the next stage (or completes the
 * group) where that failed, and corrects a count that an enqueue whose
 * insert failed left too high, so nothing stalls for good. */
#include "mtask-private.h"

#include <string.h>

/* The marker of a task counted in its stage. */
#define MT_STAGE_COUNTED_FIELD "stage_counted"

static const char *const final_statuses[] = {MT_STATUS_FINISHED, MT_STATUS_FAILED, MT_STATUS_CANCELLED};

static mongoc_collection_t *
coll (mongoc_client_t *client, const char *db, const char *name)
{
   return mongoc_client_get_collection (client, db, name);
}

static bool
group_error_code (bson_error_t *error, uint32_t code, const char *format, const bson_oid_t *group, int32_t stage)
{
   char hex[25];

   bson_oid_to_string (group, hex);
   bson_set_error (error, MT_ERROR_CONFIG, code, format, hex, stage);
   return false;
}

static bool
group_error (bson_error_t *error, const char *format, const bson_oid_t *group, int32_t stage)
{
   return group_error_code (error, MT_CONFIG_ERROR_INVALID, format, group, stage);
}

static int64_t
get_int (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_NUMBER (&iter) ? bson_iter_as_int64 (&iter) : 0;
}

static const char *
get_str (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : "";
}

bool
mt_group_create (mongoc_client_t *client,
                 const char *db,
                 const char *description,
                 const bson_t *opts,
                 bson_oid_t *id,
                 bson_error_t *error)
{
   mongoc_collection_t *groups = coll (client, db, MT_GROUPS_COLLECTION);
   double keep = 0;
   bson_iter_t iter;
   bson_oid_t oid;
   bson_t *doc;
   bool ok;

   if (opts && bson_iter_init (&iter, opts)) {
      while (bson_iter_next (&iter)) {
         if (!strcmp (bson_iter_key (&iter), "keep_seconds") && BSON_ITER_HOLDS_NUMBER (&iter) &&
             bson_iter_as_double (&iter) >= 0 && bson_iter_as_double (&iter) <= MT_DELAY_MAX_S) {
            keep = bson_iter_as_double (&iter);
         } else {
            bson_set_error (error,
                            MT_ERROR_CONFIG,
                            MT_CONFIG_ERROR_OPTION,
                            strcmp (bson_iter_key (&iter), "keep_seconds") ? "Invalid option '%s'"
                                                                          : "option '%s' must be a number of seconds, 0 or more",
                            bson_iter_key (&iter));
            mongoc_collection_destroy (groups);
            return false;
         }
      }
   }
   bson_oid_init (&oid, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&oid),
                   "description", description ? description : "",
                   "created", BCON_DATE_TIME (mt_now_ms ()),
                   "status", "pending",
                   "keep_seconds", BCON_DOUBLE (keep));
   ok = mongoc_collection_insert_one (groups, doc, NULL, NULL, error);
   if (ok && id) {
      bson_oid_copy (&oid, id);
   }
   bson_destroy (doc);
   mongoc_collection_destroy (groups);
   return ok;
}

/* The stage document, created pending when missing. */
static bool
stage_ensure (mongoc_collection_t *stages, const bson_oid_t *group, int32_t number, bson_error_t *error)
{
   bson_t *filter = BCON_NEW ("group", BCON_OID (group), "number", BCON_INT32 (number));
   bson_t *update = BCON_NEW ("$setOnInsert", "{",
                              "status", "pending",
                              "total", BCON_INT32 (0),
                              "done", BCON_INT32 (0),
                              "created", BCON_DATE_TIME (mt_now_ms ()),
                              "}");
   bson_t *opts = BCON_NEW ("upsert", BCON_BOOL (true));
   bool ok = false;

   /* Two enqueuers may create it at once: the unique index lets one win. */
   for (int i = 0; i < 3 && !ok; i++) {
      ok = mongoc_collection_update_one (stages, filter, update, opts, NULL, error);
      if (!ok && error->code != 11000) {
         break;
      }
   }
   bson_destroy (filter);
   bson_destroy (update);
   bson_destroy (opts);
   return ok;
}

bool
mt_group_enqueue (mongoc_client_t *client,
                  const char *db,
                  const bson_oid_t *group,
                  int32_t stage,
                  const char *queue,
                  const char *type,
                  const bson_t *params,
                  const bson_t *opts,
                  bson_oid_t *id,
                  bson_error_t *error)
{
   mongoc_collection_t *groups = coll (client, db, MT_GROUPS_COLLECTION);
   mongoc_collection_t *stages = coll (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = coll (client, db, MT_TASKS_COLLECTION);
   mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new ();
   bson_t *filter = NULL, *update = NULL, doc, group_doc, reply;
   bson_iter_t iter, value;
   bson_oid_t oid;
   bool ok = false, found, running = false;

   bson_init (&doc);
   bson_init (&reply);
   filter = BCON_NEW ("_id", BCON_OID (group));
   if (!mt_find_one (groups, filter, NULL, &group_doc, &found, error)) {
      goto cleanup;
   }
   if (!found || !strcmp (get_str (&group_doc, "status"), "complete")) {
      group_error_code (error,
                        found ? MT_CONFIG_ERROR_STATE : MT_CONFIG_ERROR_NOT_FOUND,
                        found ? "group %s is complete; create a new one" : "no group %s (stage %d)",
                        group,
                        stage);
      bson_destroy (&group_doc);
      goto cleanup;
   }
   bson_destroy (&group_doc);
   bson_destroy (filter);
   bson_destroy (&doc);
   if (!mt_task_build (queue, type, params, opts, MT_STATUS_WAITING, &doc, &oid, error)) {
      filter = NULL;
      goto cleanup;
   }
   filter = NULL;
   {
      /* A stage ends when its tasks do: nothing in it repeats, and its
       * tasks are unique by being in it. */
      static const char *const refused[] = {"repeat", "cron", "unique_key"};
      bson_iter_t it;

      for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
         if (bson_iter_init_find (&it, &doc, refused[i])) {
            bson_set_error (error,
                            MT_ERROR_CONFIG,
                            MT_CONFIG_ERROR_INVALID,
                            "option '%s' is not for a task of a staged group: its stage ends when its tasks do",
                            refused[i]);
            goto cleanup;
         }
      }
   }
   if (stage < 1) {
      group_error (error, "group %s: stage numbers start at 1, got %d", group, stage);
      goto cleanup;
   }
   {
      /* Stages run in their order: a new stage cannot come before one that
       * has started already. */
      bson_t later, own;
      bson_t *started = BCON_NEW ("group", BCON_OID (group), "number", "{", "$gt", BCON_INT32 (stage), "}", "status",
                                  "{", "$ne", "pending", "}");
      bson_t *mine = BCON_NEW ("group", BCON_OID (group), "number", BCON_INT32 (stage));
      bool has_later = false, has_mine = false;

      /* Each read initializes its document, failed or not. */
      ok = mt_find_one (stages, started, NULL, &later, &has_later, error);
      bson_destroy (&later);
      if (ok) {
         ok = mt_find_one (stages, mine, NULL, &own, &has_mine, error);
         bson_destroy (&own);
      }
      bson_destroy (started);
      bson_destroy (mine);
      if (ok && has_later && !has_mine) {
         group_error_code (error,
                           MT_CONFIG_ERROR_STATE,
                           "group %s: stage %d would run out of order: a later stage has started already",
                           group,
                           stage);
         ok = false;
      }
      if (!ok) {
         goto cleanup;
      }
      ok = false;
   }
   if (!stage_ensure (stages, group, stage, error)) {
      goto cleanup;
   }

   /* Count the task in first, so a stage never looks complete while a
    * task is on its way; a complete stage takes no more. */
   filter = BCON_NEW ("group", BCON_OID (group), "number", BCON_INT32 (stage), "status", "{", "$ne", "complete", "}");
   update = BCON_NEW ("$inc", "{", "total", BCON_INT32 (1), "}", "$currentDate", "{", "enqueued", BCON_BOOL (true), "}");
   mongoc_find_and_modify_opts_set_update (fam, update);
   mongoc_find_and_modify_opts_set_flags (fam, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
   if (!mongoc_collection_find_and_modify_with_opts (stages, filter, fam, &reply, error)) {
      goto cleanup;
   }
   if (!bson_iter_init_find (&iter, &reply, "value") || !BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      group_error_code (error, MT_CONFIG_ERROR_STATE, "group %s: stage %d is complete; add the task to a later stage", group, stage);
      goto cleanup;
   }
   if (bson_iter_recurse (&iter, &value) && bson_iter_find (&value, "status") && BSON_ITER_HOLDS_UTF8 (&value)) {
      running = !strcmp (bson_iter_utf8 (&value, NULL), "running");
   }

   BSON_APPEND_OID (&doc, "group", group);
   BSON_APPEND_INT32 (&doc, "stage", stage);
   if (running) {
      /* A running stage takes new tasks at once. */
      bson_t fixed = BSON_INITIALIZER;
      bson_iter_t it;

      bson_iter_init (&it, &doc);
      while (bson_iter_next (&it)) {
         if (!strcmp (bson_iter_key (&it), "status")) {
            BSON_APPEND_UTF8 (&fixed, "status", MT_STATUS_CREATED);
         } else {
            BSON_APPEND_VALUE (&fixed, bson_iter_key (&it), bson_iter_value (&it));
         }
      }
      bson_destroy (&doc);
      bson_steal (&doc, &fixed);
   }
   if (!mongoc_collection_insert_one (tasks, &doc, NULL, NULL, error)) {
      /* When even this fails, the upkeep tick counts the stage's tasks
       * again once the count is old enough not to be on its way. */
      bson_t *undo = BCON_NEW ("$inc", "{", "total", BCON_INT32 (-1), "}");
      bson_error_t ignored;

      mongoc_collection_update_one (stages, filter, undo, NULL, NULL, &ignored);
      bson_destroy (undo);
      goto cleanup;
   }
   if (!running) {
      /* The stage may have started between the count and the insert, after
       * releasing its WAITING tasks: release this one too. */
      bson_t stage_doc;
      bson_t *by_stage = BCON_NEW ("group", BCON_OID (group), "number", BCON_INT32 (stage));

      if (mt_find_one (stages, by_stage, NULL, &stage_doc, &found, error) && found &&
          strcmp (get_str (&stage_doc, "status"), "pending") != 0) {
         bson_t *mine = BCON_NEW ("_id", BCON_OID (&oid), "status", MT_STATUS_WAITING);
         bson_t *go = BCON_NEW ("$set", "{", "status", MT_STATUS_CREATED, "}");

         mongoc_collection_update_one (tasks, mine, go, NULL, NULL, error);
         bson_destroy (mine);
         bson_destroy (go);
      }
      bson_destroy (&stage_doc);
      bson_destroy (by_stage);
   }
   if (id) {
      bson_oid_copy (&oid, id);
   }
   ok = true;

cleanup:
   if (filter) {
      bson_destroy (filter);
   }
   if (update) {
      bson_destroy (update);
   }
   bson_destroy (&reply);
   bson_destroy (&doc);
   mongoc_find_and_modify_opts_destroy (fam);
   mongoc_collection_destroy (groups);
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* Deletes the group, its stages and its tasks. */
bool
mt_group_delete (mongoc_client_t *client, const char *db, const bson_oid_t *group, bson_error_t *error)
{
   mongoc_collection_t *groups = coll (client, db, MT_GROUPS_COLLECTION);
   mongoc_collection_t *stages = coll (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = coll (client, db, MT_TASKS_COLLECTION);
   bson_t *by_group = BCON_NEW ("group", BCON_OID (group));
   bson_t *by_id = BCON_NEW ("_id", BCON_OID (group));
   bool ok;

   /* Tasks, then stages, then the group: a crash half way leaves orphans
    * the cleaner finds, never tasks without a way to find them. */
   ok = mongoc_collection_delete_many (tasks, by_group, NULL, NULL, error) &&
        mongoc_collection_delete_many (stages, by_group, NULL, NULL, error) &&
        mongoc_collection_delete_one (groups, by_id, NULL, NULL, error);
   bson_destroy (by_group);
   bson_destroy (by_id);
   mongoc_collection_destroy (groups);
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* The last stage is complete: mark the group so (once), then delete it or
 * keep it for its keep_seconds. */
static bool
complete_group (mongoc_client_t *client, const char *db, const bson_oid_t *group, bson_error_t *error)
{
   mongoc_collection_t *groups = coll (client, db, MT_GROUPS_COLLECTION);
   mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new ();
   bson_t *filter = BCON_NEW ("_id", BCON_OID (group), "status", "{", "$ne", "complete", "}");
   bson_t *update = BCON_NEW ("$set", "{", "status", "complete", "completed", BCON_DATE_TIME (mt_now_ms ()), "}");
   bson_t reply;
   bson_iter_t iter, value;
   double keep = 0;
   bool ok, won = false;

   mongoc_find_and_modify_opts_set_update (fam, update);
   ok = mongoc_collection_find_and_modify_with_opts (groups, filter, fam, &reply, error);
   if (ok && bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      won = true;
      if (bson_iter_recurse (&iter, &value) && bson_iter_find (&value, "keep_seconds") && BSON_ITER_HOLDS_NUMBER (&value)) {
         keep = bson_iter_as_double (&value);
      }
   }
   bson_destroy (&reply);
   if (ok && won) {
      if (keep > 0) {
         bson_t *by_id = BCON_NEW ("_id", BCON_OID (group));
         bson_t *until = BCON_NEW ("$set", "{", "keep_until", BCON_DATE_TIME (mt_now_ms () + (int64_t) (keep * 1000)), "}");

         ok = mongoc_collection_update_one (groups, by_id, until, NULL, NULL, error);
         bson_destroy (by_id);
         bson_destroy (until);
      } else {
         ok = mt_group_delete (client, db, group, error);
      }
   }
   bson_destroy (filter);
   bson_destroy (update);
   mongoc_find_and_modify_opts_destroy (fam);
   mongoc_collection_destroy (groups);
   return ok;
}

/* Marks a running stage complete, only while its count says so: the
 * condition is in the update's filter, so a task enqueued since the count
 * was read keeps it running. `*won` is true for the one caller that did it. */
static bool
complete_stage (mongoc_collection_t *stages, const bson_value_t *stage_id, bool *won, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, reply;
   bson_t *update = BCON_NEW ("$set", "{", "status", "complete", "completed", BCON_DATE_TIME (mt_now_ms ()), "}");
   bson_t *full = BCON_NEW ("$gte", "[", "$done", "$total", "]");
   bson_iter_t iter;
   bool ok;

   BSON_APPEND_VALUE (&filter, "_id", stage_id);
   BSON_APPEND_UTF8 (&filter, "status", "running");
   BSON_APPEND_DOCUMENT (&filter, "$expr", full);
   ok = mongoc_collection_update_one (stages, &filter, update, NULL, &reply, error);
   *won = ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1;
   bson_destroy (&reply);
   bson_destroy (&filter);
   bson_destroy (full);
   bson_destroy (update);
   return ok;
}

bool
mt_group_initiate (mongoc_client_t *client, const char *db, const bson_oid_t *group, bson_error_t *error)
{
   mongoc_collection_t *groups = coll (client, db, MT_GROUPS_COLLECTION);
   mongoc_collection_t *stages = coll (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = coll (client, db, MT_TASKS_COLLECTION);
   bson_t *group_filter = BCON_NEW ("_id", BCON_OID (group));
   bson_t group_doc;
   bool ok = false, found;

   if (!mt_find_one (groups, group_filter, NULL, &group_doc, &found, error)) {
      goto cleanup;
   }
   if (!found) {
      group_error_code (error, MT_CONFIG_ERROR_NOT_FOUND, "no group %s", group, 0);
      bson_destroy (&group_doc);
      goto cleanup;
   }
   bson_destroy (&group_doc);
   {
      bson_t *running = BCON_NEW ("$set", "{", "status", "running", "}");
      bson_t *not_done = BCON_NEW ("_id", BCON_OID (group), "status", "pending");

      ok = mongoc_collection_update_one (groups, not_done, running, NULL, NULL, error);
      bson_destroy (running);
      bson_destroy (not_done);
      if (!ok) {
         goto cleanup;
      }
   }

   /* The first stage that is not complete: start it; an empty or already
    * finished one completes at once, and the next is looked at. */
   for (int guard = 0; guard < 100000; guard++) {
      bson_t *filter = BCON_NEW ("group", BCON_OID (group), "status", "{", "$ne", "complete", "}");
      bson_t *opts = BCON_NEW ("sort", "{", "number", BCON_INT32 (1), "}");
      bson_t stage;
      bson_iter_t iter;
      bool won;

      ok = mt_find_one (stages, filter, opts, &stage, &found, error);
      bson_destroy (filter);
      bson_destroy (opts);
      if (!ok) {
         bson_destroy (&stage);
         goto cleanup;
      }
      if (!found) {
         bson_destroy (&stage);
         ok = complete_group (client, db, group, error);
         goto cleanup;
      }
      bson_iter_init_find (&iter, &stage, "_id");
      if (!strcmp (get_str (&stage, "status"), "pending")) {
         bson_t by_id = BSON_INITIALIZER;
         bson_t *start = BCON_NEW ("$set", "{", "status", "running", "started", BCON_DATE_TIME (mt_now_ms ()), "}");

         BSON_APPEND_VALUE (&by_id, "_id", bson_iter_value (&iter));
         BSON_APPEND_UTF8 (&by_id, "status", "pending");
         ok = mongoc_collection_update_one (stages, &by_id, start, NULL, NULL, error);
         bson_destroy (&by_id);
         bson_destroy (start);
      }
      if (ok) {
         /* Release its waiting tasks (again is harmless). */
         bson_t *waiting = BCON_NEW ("group", BCON_OID (group), "stage", BCON_INT32 ((int32_t) get_int (&stage, "number")),
                                     "status", MT_STATUS_WAITING);
         bson_t *go = BCON_NEW ("$set", "{", "status", MT_STATUS_CREATED, "}");

         ok = mongoc_collection_update_many (tasks, waiting, go, NULL, NULL, error);
         bson_destroy (waiting);
         bson_destroy (go);
      }
      if (!ok || get_int (&stage, "done") < get_int (&stage, "total")) {
         bson_destroy (&stage);
         goto cleanup; /* it runs now; its last task starts the next */
      }
      /* Nothing left to wait for in it. */
      ok = complete_stage (stages, bson_iter_value (&iter), &won, error);
      bson_destroy (&stage);
      if (!ok) {
         goto cleanup;
      }
   }

cleanup:
   bson_destroy (group_filter);
   mongoc_collection_destroy (groups);
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* Appends {status: {$in: [FINISHED, FAILED, CANCELLED]}}. */
/* {status: {OP: [the ended statuses]}}: OP "$in" for ended tasks, "$nin"
 * for live ones. */
static void
append_status_op (bson_t *filter, const char *op)
{
   bson_t child, list;

   BSON_APPEND_DOCUMENT_BEGIN (filter, "status", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, op, &list);
   for (uint32_t k = 0; k < 3; k++) {
      char key[4];
      const char *kp;

      bson_uint32_to_string (k, &kp, key, sizeof key);
      BSON_APPEND_UTF8 (&list, kp, final_statuses[k]);
   }
   bson_append_array_end (&child, &list);
   bson_append_document_end (filter, &child);
}

static void
append_ended (bson_t *filter)
{
   append_status_op (filter, "$in");
}

/* Marks the ended task counted in its stage; `*marked` is true for the one
 * caller whose update did it, who then counts it. */
static bool
mark_counted (mongoc_collection_t *tasks, const bson_oid_t *group, int32_t stage, const bson_value_t *task_id, bool *marked, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, child, reply;
   bson_t *update = BCON_NEW ("$set", "{", MT_STAGE_COUNTED_FIELD, BCON_BOOL (true), "}");
   bson_iter_t iter;
   bool ok;

   BSON_APPEND_VALUE (&filter, "_id", task_id);
   BSON_APPEND_OID (&filter, "group", group);
   BSON_APPEND_INT32 (&filter, "stage", stage);
   append_ended (&filter);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, MT_STAGE_COUNTED_FIELD, &child);
   BSON_APPEND_BOOL (&child, "$exists", false);
   bson_append_document_end (&filter, &child);
   ok = mongoc_collection_update_one (tasks, &filter, update, NULL, &reply, error);
   *marked = ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1;
   bson_destroy (&reply);
   bson_destroy (&filter);
   bson_destroy (update);
   return ok;
}

bool
mt_group_task_ended (mongoc_client_t *client,
                     const char *db,
                     const bson_oid_t *group,
                     int32_t stage,
                     const bson_value_t *task_id,
                     bson_error_t *error)
{
   mongoc_collection_t *stages = coll (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = coll (client, db, MT_TASKS_COLLECTION);
   mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new ();
   bson_t filter = BSON_INITIALIZER, child, reply;
   bson_t *update = BCON_NEW ("$inc", "{", "done", BCON_INT32 (1), "}");
   bson_iter_t iter, value;
   bool ok, marked = false;

   bson_init (&reply);
   /* The marker first: a crash after it loses this count (the upkeep tick
    * completes the stage from its tasks), where the other order could
    * count the task twice and complete the stage early. */
   ok = mark_counted (tasks, group, stage, task_id, &marked, error);
   if (!ok || !marked) {
      goto cleanup; /* counted before, or not ended (anything else is not counted) */
   }
   mt_failpoint ("stage-marked");

   BSON_APPEND_OID (&filter, "group", group);
   BSON_APPEND_INT32 (&filter, "number", stage);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "status", &child);
   BSON_APPEND_UTF8 (&child, "$ne", "complete");
   bson_append_document_end (&filter, &child);
   /* A stage from before the marker lists what it counted. */
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "done_ids", &child);
   BSON_APPEND_VALUE (&child, "$ne", task_id);
   bson_append_document_end (&filter, &child);
   mongoc_find_and_modify_opts_set_update (fam, update);
   mongoc_find_and_modify_opts_set_flags (fam, MONGOC_FIND_AND_MODIFY_RETURN_NEW);

   ok = mongoc_collection_find_and_modify_with_opts (stages, &filter, fam, &reply, error);
   if (ok && bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t stage_doc;

      bson_iter_document (&iter, &len, &data);
      bson_init_static (&stage_doc, data, len);
      if (get_int (&stage_doc, "done") >= get_int (&stage_doc, "total") && !strcmp (get_str (&stage_doc, "status"), "running") &&
          bson_iter_init_find (&value, &stage_doc, "_id")) {
         bool won;

         /* Read as full; the update decides (an enqueue since wins). */
         mt_failpoint_pause ("stage-counted");
         ok = complete_stage (stages, bson_iter_value (&value), &won, error);
         if (ok && won) {
            ok = mt_group_initiate (client, db, group, error);
         }
      }
   }

cleanup:
   bson_destroy (&reply);
   bson_destroy (&filter);
   bson_destroy (update);
   mongoc_find_and_modify_opts_destroy (fam);
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   return ok;
}

bool
mt_group_task_ended_doc (mongoc_client_t *client, const char *db, const bson_t *task, bson_error_t *error)
{
   bson_iter_t g, n, id;

   if (!bson_iter_init_find (&g, task, "group") || !BSON_ITER_HOLDS_OID (&g) || !bson_iter_init_find (&n, task, "stage") ||
       !BSON_ITER_HOLDS_NUMBER (&n) || !bson_iter_init_find (&id, task, "_id")) {
      return true; /* not a staged task */
   }
   return mt_group_task_ended (client, db, bson_iter_oid (&g), (int32_t) bson_iter_as_int64 (&n), bson_iter_value (&id), error);
}

/* How long a stage's count may run ahead of its tasks before the upkeep
 * tick counts them again. An enqueue counts its task in, then inserts it;
 * one whose insert failed, and then its undo too, leaves the count one too
 * high for good, and the stage would never complete. Twice the driver's
 * socket timeout: an enqueue still on its way after that has failed. */
#define MT_GROUP_RECOUNT_MS (10 * 60 * 1000)

/* A running stage whose count is ahead of its tasks, and has been since
 * well before `now_ms`, gets its tasks' count; `*stage` is read again. */
static bool
recount_stage (mongoc_collection_t *stages,
               mongoc_collection_t *tasks,
               const bson_oid_t *group,
               bson_t **stage,
               int64_t now_ms,
               bson_error_t *error)
{
   bson_iter_t iter, id;
   bson_t *filter, by_id = BSON_INITIALIZER, cas = BSON_INITIALIZER, doc;
   int64_t n;
   bool ok, found;

   if (get_int (*stage, "done") >= get_int (*stage, "total") || !bson_iter_init_find (&id, *stage, "_id") ||
       (bson_iter_init_find (&iter, *stage, "enqueued") && BSON_ITER_HOLDS_DATE_TIME (&iter) &&
        bson_iter_date_time (&iter) > now_ms - MT_GROUP_RECOUNT_MS)) {
      return true;
   }
   filter = BCON_NEW ("group", BCON_OID (group), "stage", BCON_INT32 ((int32_t) get_int (*stage, "number")));
   n = mongoc_collection_count_documents (tasks, filter, NULL, NULL, NULL, error);
   bson_destroy (filter);
   if (n < 0 || n >= get_int (*stage, "total")) {
      return n >= 0;
   }
   /* Only the count seen: an enqueue meanwhile changed it. */
   BSON_APPEND_VALUE (&by_id, "_id", bson_iter_value (&id));
   BSON_APPEND_VALUE (&cas, "_id", bson_iter_value (&id));
   if (bson_iter_init_find (&iter, *stage, "total")) {
      BSON_APPEND_VALUE (&cas, "total", bson_iter_value (&iter));
   }
   filter = BCON_NEW ("$set", "{", "total", BCON_INT32 ((int32_t) n), "}");
   ok = mongoc_collection_update_one (stages, &cas, filter, NULL, NULL, error) &&
        mt_find_one (stages, &by_id, NULL, &doc, &found, error);
   if (ok && found) {
      bson_destroy (*stage);
      *stage = bson_copy (&doc);
   }
   if (ok) {
      bson_destroy (&doc);
   }
   bson_destroy (filter);
   bson_destroy (&by_id);
   bson_destroy (&cas);
   return ok;
}

/* Running groups that stalled: a stage completed and starting the next
 * failed, or the last completed and completing the group failed. Each is
 * started again from its first stage that is not complete. */
static bool
resume_groups (mongoc_client_t *client, const char *db, mongoc_collection_t *groups, mongoc_collection_t *stages, bson_error_t *error)
{
   bson_t *running = BCON_NEW ("status", "running");
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (groups, running, opts, NULL);
   const bson_t *doc;
   bson_oid_t *ids = NULL;
   size_t n = 0, cap = 0;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_OID (&iter)) {
         if (n == cap) {
            cap = cap ? cap * 2 : 16;
            ids = bson_realloc (ids, cap * sizeof *ids);
         }
         bson_oid_copy (bson_iter_oid (&iter), &ids[n++]);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   for (size_t i = 0; ok && i < n; i++) {
      bson_t *open = BCON_NEW ("group", BCON_OID (&ids[i]), "status", "{", "$ne", "complete", "}");
      bson_t *first = BCON_NEW ("sort", "{", "number", BCON_INT32 (1), "}");
      bson_t stage;
      bool found;

      ok = mt_find_one (stages, open, first, &stage, &found, error);
      if (ok && (!found || !strcmp (get_str (&stage, "status"), "pending"))) {
         ok = mt_group_initiate (client, db, &ids[i], error);
      }
      bson_destroy (&stage);
      bson_destroy (open);
      bson_destroy (first);
   }
   bson_free (ids);
   bson_destroy (running);
   bson_destroy (opts);
   return ok;
}

/* A running stage counted short: when none of its tasks is live any more,
 * the ended ones a crash left unmarked are counted, a total an enqueue
 * whose insert failed left too high is corrected, and a count still short
 * (a crash between a task's marker and its count) is set from the tasks:
 * all of them have ended. `*stage` is read again. */
static bool
settle_stage (mongoc_client_t *client,
              const char *db,
              mongoc_collection_t *stages,
              mongoc_collection_t *tasks,
              const bson_oid_t *group,
              bson_t **stage,
              int64_t now_ms,
              bson_error_t *error)
{
   int32_t number = (int32_t) get_int (*stage, "number");
   bson_t filter = BSON_INITIALIZER, child, by_id = BSON_INITIALIZER, doc;
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}");
   bson_iter_t iter;
   mongoc_cursor_t *ended;
   const bson_t *task;
   bool ok, found;

   if (!bson_iter_init_find (&iter, *stage, "_id")) {
      bson_destroy (opts);
      bson_destroy (&filter);
      bson_destroy (&by_id);
      return true;
   }
   BSON_APPEND_VALUE (&by_id, "_id", bson_iter_value (&iter));

   /* A live task: its own end counts it, and the stage waits for it. */
   {
      bson_t live = BSON_INITIALIZER;

      BSON_APPEND_OID (&live, "group", group);
      BSON_APPEND_INT32 (&live, "stage", number);
      append_status_op (&live, "$nin");
      ok = mt_find_one (tasks, &live, opts, &doc, &found, error);
      bson_destroy (&doc);
      bson_destroy (&live);
   }
   if (!ok || found) {
      goto cleanup;
   }

   /* Ended, never counted: their workers died before counting them. */
   BSON_APPEND_OID (&filter, "group", group);
   BSON_APPEND_INT32 (&filter, "stage", number);
   append_ended (&filter);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, MT_STAGE_COUNTED_FIELD, &child);
   BSON_APPEND_BOOL (&child, "$exists", false);
   bson_append_document_end (&filter, &child);
   ended = mongoc_collection_find_with_opts (tasks, &filter, opts, NULL);
   while (ok && mongoc_cursor_next (ended, &task)) {
      if (bson_iter_init_find (&iter, task, "_id")) {
         ok = mt_group_task_ended (client, db, group, number, bson_iter_value (&iter), error);
      }
   }
   ok = ok && !mongoc_cursor_error (ended, error);
   mongoc_cursor_destroy (ended);
   if (ok) {
      ok = recount_stage (stages, tasks, group, stage, now_ms, error);
   }
   if (ok) {
      ok = mt_find_one (stages, &by_id, NULL, &doc, &found, error);
      if (ok && found) {
         bson_destroy (*stage);
         *stage = bson_copy (&doc);
      }
      bson_destroy (&doc);
   }

   /* Still short, every task ended and counted: a count was lost between
    * a task's marker and its stage's update. The count is set to the total,
    * only while the total is the one seen (an enqueue since wins). */
   if (ok && found && !strcmp (get_str (*stage, "status"), "running") && get_int (*stage, "done") < get_int (*stage, "total")) {
      bson_t *by_stage = BCON_NEW ("group", BCON_OID (group), "stage", BCON_INT32 (number));
      int64_t n = mongoc_collection_count_documents (tasks, by_stage, NULL, NULL, NULL, error);

      ok = n >= 0;
      if (ok && n >= get_int (*stage, "total") && bson_iter_init_find (&iter, *stage, "total")) {
         bson_t cas = BSON_INITIALIZER, *fix;

         bson_concat (&cas, &by_id);
         BSON_APPEND_UTF8 (&cas, "status", "running");
         BSON_APPEND_VALUE (&cas, "total", bson_iter_value (&iter));
         fix = BCON_NEW ("$set", "{", "done", BCON_INT32 ((int32_t) get_int (*stage, "total")), "}");
         ok = mongoc_collection_update_one (stages, &cas, fix, NULL, NULL, error) && mt_find_one (stages, &by_id, NULL, &doc, &found, error);
         if (ok && found) {
            bson_destroy (*stage);
            *stage = bson_copy (&doc);
         }
         if (ok) {
            bson_destroy (&doc);
         }
         bson_destroy (fix);
         bson_destroy (&cas);
      }
      bson_destroy (by_stage);
   }

cleanup:
   bson_destroy (opts);
   bson_destroy (&filter);
   bson_destroy (&by_id);
   return ok;
}

/* Counts the ended tasks of running stages that a crash left uncounted,
 * completes stages whose count is full, and deletes kept groups whose time
 * is up. Run by one worker per upkeep tick; `_until` stops once the
 * monotonic clock passes `deadline_us` (0: no limit). */
bool
mt_groups_upkeep (mongoc_client_t *client, const char *db, int64_t now_ms, bson_error_t *error)
{
   return mt_groups_upkeep_until (client, db, now_ms, 0, error);
}

bool
mt_groups_upkeep_until (mongoc_client_t *client, const char *db, int64_t now_ms, int64_t deadline_us, bson_error_t *error)
{
   mongoc_collection_t *stages = coll (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = coll (client, db, MT_TASKS_COLLECTION);
   mongoc_collection_t *groups = coll (client, db, MT_GROUPS_COLLECTION);
   bson_t *running = BCON_NEW ("status", "running");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (stages, running, NULL, NULL);
   const bson_t *stage;
   bson_t **found = NULL;
   size_t n = 0, cap = 0;
   bool ok = true;

   while (mongoc_cursor_next (cursor, &stage)) {
      if (n == cap) {
         cap = cap ? cap * 2 : 16;
         found = bson_realloc (found, cap * sizeof *found);
      }
      found[n++] = bson_copy (stage);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);

   for (size_t i = 0; ok && i < n && !mt_deadline_passed (deadline_us); i++) {
      bson_iter_t iter;
      bson_oid_t group_id;
      const bson_oid_t *group = &group_id;
      int32_t number = (int32_t) get_int (found[i], "number");

      if (!bson_iter_init_find (&iter, found[i], "group") || !BSON_ITER_HOLDS_OID (&iter)) {
         continue;
      }
      bson_oid_copy (bson_iter_oid (&iter), &group_id);
      {
         /* A task left WAITING in a running stage (its release failed
          * after its stage started) is released here. */
         bson_t *waiting = BCON_NEW ("group", BCON_OID (group), "stage", BCON_INT32 (number), "status", MT_STATUS_WAITING);
         bson_t *go = BCON_NEW ("$set", "{", "status", MT_STATUS_CREATED, "}");

         ok = mongoc_collection_update_many (tasks, waiting, go, NULL, NULL, error);
         bson_destroy (waiting);
         bson_destroy (go);
         if (!ok) {
            break;
         }
      }
      if (get_int (found[i], "done") < get_int (found[i], "total")) {
         ok = settle_stage (client, db, stages, tasks, group, &found[i], now_ms, error);
      }
      if (ok && get_int (found[i], "done") >= get_int (found[i], "total")) {
         /* Counted full, but the one who filled it did not finish the job. */
         bool won;

         bson_iter_init_find (&iter, found[i], "_id");
         ok = complete_stage (stages, bson_iter_value (&iter), &won, error);
         if (ok && won) {
            ok = mt_group_initiate (client, db, group, error);
         }
      }
   }
   for (size_t i = 0; i < n; i++) {
      bson_destroy (found[i]);
   }
   bson_free (found);

   if (ok) {
      ok = resume_groups (client, db, groups, stages, error);
   }
   if (ok) {
      /* Kept groups whose time is up; and complete ones whose deletion, or
       * the write of their keep_until, failed: by their completion time. */
      bson_t *expired = BCON_NEW ("status", "complete", "$or", "[", "{", "keep_until", "{", "$lt", BCON_DATE_TIME (now_ms), "}", "}",
                                  "{", "keep_until", "{", "$exists", BCON_BOOL (false), "}", "}", "]");
      mongoc_cursor_t *old = mongoc_collection_find_with_opts (groups, expired, NULL, NULL);
      const bson_t *group;
      bson_oid_t ids[64];
      size_t m = 0;

      while (m < 64 && mongoc_cursor_next (old, &group)) {
         bson_iter_t iter;
         int64_t completed = 0;

         if (!bson_iter_init_find (&iter, group, "keep_until")) {
            if (bson_iter_init_find (&iter, group, "completed") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
               completed = bson_iter_date_time (&iter);
            }
            if (bson_iter_init_find (&iter, group, "keep_seconds") && BSON_ITER_HOLDS_NUMBER (&iter) &&
                completed + (int64_t) (bson_iter_as_double (&iter) * 1000) > now_ms) {
               continue;
            }
         }
         if (bson_iter_init_find (&iter, group, "_id") && BSON_ITER_HOLDS_OID (&iter)) {
            bson_oid_copy (bson_iter_oid (&iter), &ids[m++]);
         }
      }
      ok = !mongoc_cursor_error (old, error);
      mongoc_cursor_destroy (old);
      bson_destroy (expired);
      for (size_t i = 0; ok && i < m; i++) {
         ok = mt_group_delete (client, db, &ids[i], error);
      }
   }
   bson_destroy (running);
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (groups);
   return ok;
}

int64_t
mt_groups_clean (mongoc_client_t *client, const char *db, bool purge, bson_error_t *error)
{
   mongoc_collection_t *stages = coll (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = coll (client, db, MT_TASKS_COLLECTION);
   mongoc_collection_t *groups = coll (client, db, MT_GROUPS_COLLECTION);
   int64_t repaired = -1;

   if (purge) {
      bson_t all = BSON_INITIALIZER, reply;
      bson_t *staged = BCON_NEW ("group", "{", "$exists", BCON_BOOL (true), "}");
      bson_iter_t iter;

      if (mongoc_collection_delete_many (tasks, staged, NULL, &reply, error)) {
         repaired = bson_iter_init_find (&iter, &reply, "deletedCount") ? bson_iter_as_int64 (&iter) : 0;
         if (!mongoc_collection_delete_many (stages, &all, NULL, NULL, error) ||
             !mongoc_collection_delete_many (groups, &all, NULL, NULL, error)) {
            repaired = -1;
         }
      }
      bson_destroy (&reply);
      bson_destroy (staged);
   } else {
      /* Orphans: tasks whose group or stage document is gone get them back,
       * with the counts their tasks say, and their group continues. */
      bson_t *pipeline = BCON_NEW ("pipeline", "[",
                                   "{", "$match", "{", "group", "{", "$exists", BCON_BOOL (true), "}", "}", "}",
                                   "{", "$group", "{", "_id", "{", "group", "$group", "stage", "$stage", "}",
                                   "total", "{", "$sum", BCON_INT32 (1), "}", "}", "}",
                                   "]");
      mongoc_cursor_t *pairs = mongoc_collection_aggregate (tasks, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
      const bson_t *pair;
      bson_t **found = NULL;
      size_t n = 0, cap = 0;
      bool ok;

      while (mongoc_cursor_next (pairs, &pair)) {
         if (n == cap) {
            cap = cap ? cap * 2 : 16;
            found = bson_realloc (found, cap * sizeof *found);
         }
         found[n++] = bson_copy (pair);
      }
      ok = !mongoc_cursor_error (pairs, error);
      mongoc_cursor_destroy (pairs);
      bson_destroy (pipeline);
      repaired = 0;
      for (size_t i = 0; ok && i < n; i++) {
         bson_iter_t iter, key;
         const bson_oid_t *group;
         int32_t number;
         bool has, changed = false;
         bson_t doc;

         if (!bson_iter_init_find (&iter, found[i], "_id") || !bson_iter_recurse (&iter, &key) || !bson_iter_find (&key, "group") ||
             !BSON_ITER_HOLDS_OID (&key)) {
            continue;
         }
         group = bson_iter_oid (&key);
         bson_iter_recurse (&iter, &key);
         number = bson_iter_find (&key, "stage") && BSON_ITER_HOLDS_NUMBER (&key) ? (int32_t) bson_iter_as_int64 (&key) : 1;
         {
            bson_t *by_id = BCON_NEW ("_id", BCON_OID (group));
            ok = mt_find_one (groups, by_id, NULL, &doc, &has, error);
            bson_destroy (&doc);
            if (ok && !has) {
               bson_t *g = BCON_NEW ("_id", BCON_OID (group), "description", "(recovered by the cleaner)", "created",
                                     BCON_DATE_TIME (mt_now_ms ()), "status", "running", "keep_seconds", BCON_DOUBLE (0));
               ok = mongoc_collection_insert_one (groups, g, NULL, NULL, error);
               bson_destroy (g);
               changed = true;
            }
            bson_destroy (by_id);
         }
         if (ok) {
            bson_t *by_stage = BCON_NEW ("group", BCON_OID (group), "number", BCON_INT32 (number));
            ok = mt_find_one (stages, by_stage, NULL, &doc, &has, error);
            bson_destroy (&doc);
            bson_destroy (by_stage);
            if (ok && !has) {
               /* Counted from its tasks; ended ones are counted by upkeep. */
               bson_t *waiting = BCON_NEW ("group", BCON_OID (group), "stage", BCON_INT32 (number), "status", MT_STATUS_WAITING);
               int64_t n_waiting = mongoc_collection_count_documents (tasks, waiting, NULL, NULL, NULL, error);
               bson_t *s = BCON_NEW ("group", BCON_OID (group), "number", BCON_INT32 (number),
                                     "status", n_waiting > 0 ? "pending" : "running",
                                     "total", BCON_INT32 ((int32_t) get_int (found[i], "total")),
                                     "done", BCON_INT32 (0),
                                     "created", BCON_DATE_TIME (mt_now_ms ()));
               ok = n_waiting >= 0 && mongoc_collection_insert_one (stages, s, NULL, NULL, error);
               bson_destroy (s);
               bson_destroy (waiting);
               changed = true;
            }
         }
         if (ok && changed) {
            repaired++;
            ok = mt_group_initiate (client, db, group, error);
         }
      }
      for (size_t i = 0; i < n; i++) {
         bson_destroy (found[i]);
      }
      bson_free (found);
      if (!ok) {
         repaired = -1;
      }
   }
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (groups);
   return repaired;
}
