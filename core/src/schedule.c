/* Repeating tasks (seed 004): when a run of a task with `repeat` or `cron`
 * ends, exactly one successor is created for the next time on its schedule.
 *
 * The ended run's outcome write names its successor in `next` ({_id, at,
 * created: false}), atomically with the end, so one run plans one
 * successor however many workers there are. The successor's _id is derived
 * from the series and the time, so creating it twice is a duplicate key,
 * not a second task. Then `next.created` turns true. A worker that dies in
 * between leaves `next.created: false`, which the upkeep tick finishes; a
 * run ended by another path (its worker lost, a stop, an operator) has no
 * `next` at all, which the upkeep tick plans.
 *
 * Times are counted from the run's `scheduled` time, not from when it
 * ended, so they do not drift; after downtime the successor is the first
 * time on the grid that is still ahead, so a missed stretch costs one late
 * run, not one per missed time. */
#include "mtask-private.h"
#include "cron.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

bool
mt_task_repeats (const mt_task_doc_t *task)
{
   return task->repeat > 0 || task->cron;
}

int64_t
mt_schedule_next (const mt_task_doc_t *task, int64_t now_ms)
{
   int64_t anchor = task->scheduled ? task->scheduled : now_ms;
   int64_t next = -1;

   if (task->repeat > 0) {
      int64_t step = (int64_t) llround (task->repeat * 1000.0);

      next = anchor + step;
      if (next <= now_ms) {
         next = anchor + ((now_ms - anchor) / step + 1) * step;
      }
   } else if (task->cron) {
      bson_error_t error;
      mt_cron_t *cron = mt_cron_parse (task->cron, task->timezone, &error);

      if (cron) {
         next = mt_cron_next (cron, BSON_MAX (anchor, now_ms));
         mt_cron_destroy (cron);
      }
   }
   if (next >= 0 && task->repeat_until && next > task->repeat_until) {
      next = -1;
   }
   return next;
}

static uint64_t
fnv1a (uint64_t hash, const void *data, size_t len)
{
   const uint8_t *p = data;

   for (size_t i = 0; i < len; i++) {
      hash ^= p[i];
      hash *= 1099511628211ULL;
   }
   return hash;
}

/* The series a run belongs to: its `series`, or its own _id for the
 * first run (or one inserted by hand). */
static void
series_of (const mt_task_doc_t *task, bson_oid_t *out)
{
   if (task->has_series) {
      bson_oid_copy (&task->series, out);
   } else if (task->id.value_type == BSON_TYPE_OID) {
      bson_oid_copy (&task->id.value.v_oid, out);
   } else {
      uint64_t h = fnv1a (14695981039346656037ULL, task->id_str, strlen (task->id_str));

      memset (out, 0, sizeof *out);
      memcpy (out->bytes + 4, &h, sizeof h);
   }
}

/* The _id of the run of a series at `at_ms`: its time in the first four
 * bytes, as in any ObjectId, then a hash of the series and the time. */
static void
run_id (const bson_oid_t *series, int64_t at_ms, bson_oid_t *out)
{
   uint32_t seconds = (uint32_t) (at_ms / 1000);
   uint64_t h = fnv1a (14695981039346656037ULL, series->bytes, sizeof series->bytes);

   h = fnv1a (h, &at_ms, sizeof at_ms);
   out->bytes[0] = (uint8_t) (seconds >> 24);
   out->bytes[1] = (uint8_t) (seconds >> 16);
   out->bytes[2] = (uint8_t) (seconds >> 8);
   out->bytes[3] = (uint8_t) seconds;
   for (int i = 0; i < 8; i++) {
      out->bytes[4 + i] = (uint8_t) (h >> (8 * i));
   }
}

void
mt_schedule_append_next (bson_t *set, const mt_task_doc_t *task, bool cancelled, int64_t now_ms)
{
   int64_t at = cancelled ? -1 : mt_schedule_next (task, now_ms);
   bson_oid_t series, id;
   bson_t next;

   if (at < 0) {
      /* The series ends here: past repeat_until, or stopped. */
      BSON_APPEND_NULL (set, "next");
      return;
   }
   series_of (task, &series);
   run_id (&series, at, &id);
   BSON_APPEND_DOCUMENT_BEGIN (set, "next", &next);
   BSON_APPEND_OID (&next, "_id", &id);
   BSON_APPEND_DATE_TIME (&next, "at", at);
   BSON_APPEND_BOOL (&next, "created", false);
   bson_append_document_end (set, &next);
}

/* What a successor does not inherit: the state of one run. */
static bool
run_field (const char *key)
{
   static const char *const fields[] = {"_id",     "status",   "created",        "delayed",   "worker_pid", "started",
                                        "finished", "heartbeat", "attempts",      "result",    "error",      "errors",
                                        "status_message", "scheduled", "next",   "slot",      "series",     MT_UNIQUE_HELD_FIELD,
                                        "group",   "stage",  "claim"};

   for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
      if (!strcmp (key, fields[i])) {
         return true;
      }
   }
   return false;
}

static void
successor_doc (const bson_t *ended, const mt_task_doc_t *task, const bson_oid_t *id, int64_t at, int64_t now_ms, bson_t *out)
{
   bson_oid_t series;
   bson_iter_t iter;

   bson_init (out);
   BSON_APPEND_OID (out, "_id", id);
   if (bson_iter_init (&iter, ended)) {
      while (bson_iter_next (&iter)) {
         if (!run_field (bson_iter_key (&iter))) {
            BSON_APPEND_VALUE (out, bson_iter_key (&iter), bson_iter_value (&iter));
         }
      }
   }
   series_of (task, &series);
   BSON_APPEND_UTF8 (out, "status", MT_STATUS_CREATED);
   BSON_APPEND_DATE_TIME (out, "created", now_ms);
   BSON_APPEND_DATE_TIME (out, "delayed", at);
   BSON_APPEND_DATE_TIME (out, "scheduled", at);
   BSON_APPEND_OID (out, "series", &series);
   BSON_APPEND_NULL (out, "worker_pid");
   BSON_APPEND_INT32 (out, "attempts", 0);
   if (task->unique_key) {
      BSON_APPEND_UTF8 (out, MT_UNIQUE_HELD_FIELD, task->unique_key);
   }
}

bool
mt_schedule_create_successor (mt_context_t *ctx, mongoc_client_t *client, const bson_t *ended, bool repair, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   mongoc_collection_t *completed = mongoc_client_get_collection (client, ctx->db, MT_COMPLETED_COLLECTION);
   bson_iter_t iter, next;
   bson_oid_t id, holder;
   int64_t at = 0;
   bool have_id = false, created = false, inserted = false, ok = false;
   char skipped[300] = "";
   mt_task_doc_t task;
   bson_error_t why;
   bson_t doc = BSON_INITIALIZER;

   if (!bson_iter_init_find (&iter, ended, "next") || !BSON_ITER_HOLDS_DOCUMENT (&iter) ||
       !bson_iter_recurse (&iter, &next)) {
      ok = true; /* nothing planned */
      goto cleanup;
   }
   while (bson_iter_next (&next)) {
      if (!strcmp (bson_iter_key (&next), "_id") && BSON_ITER_HOLDS_OID (&next)) {
         bson_oid_copy (bson_iter_oid (&next), &id);
         have_id = true;
      } else if (!strcmp (bson_iter_key (&next), "at") && BSON_ITER_HOLDS_DATE_TIME (&next)) {
         at = bson_iter_date_time (&next);
      } else if (!strcmp (bson_iter_key (&next), "created")) {
         created = bson_iter_as_bool (&next);
      }
   }
   if (created) {
      ok = true;
      goto cleanup;
   }
   if (!have_id || !at) {
      bson_strncpy (skipped, "its 'next' lacks _id or at", sizeof skipped);
   } else if (!mt_task_doc_parse (ended, &task, &why)) {
      bson_snprintf (skipped, sizeof skipped, "%s", why.message);
   } else {
      bool found = false;

      if (repair) {
         /* The worker that planned it died after the insert, perhaps long
          * ago: the successor may have run and been archived since. */
         bson_t *filter = BCON_NEW ("_id", BCON_OID (&id));
         bson_t seen;

         ok = mt_find_one (completed, filter, NULL, &seen, &found, error);
         bson_destroy (&seen);
         bson_destroy (filter);
         if (!ok) {
            goto cleanup;
         }
      }
      if (!found) {
         successor_doc (ended, &task, &id, at, mt_server_now (ctx), &doc);
         ok = mt_task_insert (tasks, &doc, &inserted, &holder, error);
         if (!ok && (error->code == 11000 || error->code == 11001)) {
            ok = true; /* created before: by us before a crash, or by upkeep */
         } else if (ok && !inserted && !bson_oid_equal (&holder, &id)) {
            char held_by[25];

            bson_oid_to_string (&holder, held_by);
            bson_snprintf (skipped, sizeof skipped, "unique_key '%s' is held by task %s, enqueued meanwhile", task.unique_key, held_by);
         }
         if (!ok) {
            goto cleanup;
         }
         mt_failpoint ("successor-inserted");
      }
   }

   if (bson_iter_init_find (&iter, ended, "_id")) {
      /* The ended run keeps the record of what became of its successor. */
      bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;

      BSON_APPEND_VALUE (&filter, "_id", bson_iter_value (&iter));
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
      BSON_APPEND_BOOL (&set, "next.created", true);
      if (skipped[0]) {
         BSON_APPEND_UTF8 (&set, "next.skipped", skipped);
      }
      bson_append_document_end (&update, &set);
      ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, NULL, error);
      bson_destroy (&filter);
      bson_destroy (&update);
   }
   if (ok && skipped[0]) {
      mt_log (ctx, MT_LOG_WARNING, "a repeating task's series ends: no successor: %s", skipped);
   }

cleanup:
   bson_destroy (&doc);
   mongoc_collection_destroy (completed);
   mongoc_collection_destroy (tasks);
   return ok;
}

static void
append_ended (bson_t *filter)
{
   bson_t child, list;

   BSON_APPEND_DOCUMENT_BEGIN (filter, "status", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, "$in", &list);
   BSON_APPEND_UTF8 (&list, "0", MT_STATUS_FINISHED);
   BSON_APPEND_UTF8 (&list, "1", MT_STATUS_FAILED);
   BSON_APPEND_UTF8 (&list, "2", MT_STATUS_CANCELLED);
   bson_append_array_end (&child, &list);
   bson_append_document_end (filter, &child);
}

/* Plans the successor of each run that ended without one (its worker was
 * lost, it was stopped, an operator ended it) among those of `kind`
 * ("repeat" or "cron"). The query is {kind: {$exists: true, $ne: null},
 * status: {$in: ended}, next: {$exists: false}}, the shape the partial
 * index on repeating tasks of that kind serves (docs/operations.md). */
static bool
plan_unplanned (mt_context_t *ctx, mongoc_collection_t *tasks, const char *kind, int64_t deadline_us, bson_error_t *error)
{
   bson_t *opts = BCON_NEW ("limit", BCON_INT64 (100));
   bson_t *f = BCON_NEW (kind, "{", "$exists", BCON_BOOL (true), "$ne", BCON_NULL, "}");
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool ok = true;

   append_ended (f);
   BCON_APPEND (f, "next", "{", "$exists", BCON_BOOL (false), "}");
   cursor = mongoc_collection_find_with_opts (tasks, f, opts, NULL);
   while (ok && !mt_deadline_passed (deadline_us) && mongoc_cursor_next (cursor, &doc)) {
      mt_task_doc_t task;
      bson_error_t why;
      bson_iter_t iter;
      bool cancelled = bson_iter_init_find (&iter, doc, "status") && BSON_ITER_HOLDS_UTF8 (&iter) &&
                       !strcmp (bson_iter_utf8 (&iter, NULL), MT_STATUS_CANCELLED);
      bson_t plan = BSON_INITIALIZER, update = BSON_INITIALIZER, set;

      if (!bson_iter_init_find (&iter, doc, "_id")) {
         continue;
      }
      BSON_APPEND_VALUE (&plan, "_id", bson_iter_value (&iter));
      BSON_APPEND_DOCUMENT_BEGIN (&plan, "next", &set);
      BSON_APPEND_BOOL (&set, "$exists", false);
      bson_append_document_end (&plan, &set);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
      if (mt_task_doc_parse (doc, &task, &why)) {
         mt_schedule_append_next (&set, &task, cancelled, mt_server_now (ctx));
      } else {
         BSON_APPEND_NULL (&set, "next");
      }
      bson_append_document_end (&update, &set);
      ok = mongoc_collection_update_one (tasks, &plan, &update, NULL, NULL, error);
      bson_destroy (&plan);
      bson_destroy (&update);
   }
   if (ok && mongoc_cursor_error (cursor, error)) {
      ok = false;
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (f);
   bson_destroy (opts);
   return ok;
}

bool
mt_schedule_upkeep (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   return mt_schedule_upkeep_until (ctx, client, 0, error);
}

bool
mt_schedule_upkeep_until (mt_context_t *ctx, mongoc_client_t *client, int64_t deadline_us, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   bson_t *opts = BCON_NEW ("limit", BCON_INT64 (100));
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool ok;

   /* Runs that ended without planning a successor: plan it now. */
   ok = plan_unplanned (ctx, tasks, "repeat", deadline_us, error) && plan_unplanned (ctx, tasks, "cron", deadline_us, error);

   /* Successors planned and not yet created: {"next.created": false}, the
    * shape of the partial index on exactly that. */
   if (ok) {
      bson_t *f = BCON_NEW ("next.created", BCON_BOOL (false));

      cursor = mongoc_collection_find_with_opts (tasks, f, opts, NULL);
      while (ok && !mt_deadline_passed (deadline_us) && mongoc_cursor_next (cursor, &doc)) {
         ok = mt_schedule_create_successor (ctx, client, doc, true, error);
      }
      if (ok && mongoc_cursor_error (cursor, error)) {
         ok = false;
      }
      mongoc_cursor_destroy (cursor);
      bson_destroy (f);
   }
   bson_destroy (opts);
   mongoc_collection_destroy (tasks);
   return ok;
}
