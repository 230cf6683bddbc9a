/* Admin API: the tasks collection (or its archive) and the account locks.
 * Counts, listings, one task, the holder of a unique key, and the locks with whether the run
 * holding each is still going on. */
#include "admin-private.h"

#include <stdlib.h>
#include <string.h>

/* One $group result: a queue and a status (by_queue) or a type (by_type),
 * as labels, and its count. */
typedef struct {
   char *key;
   char *status;
   int64_t n;
} count_t;

typedef struct {
   count_t *items;
   size_t len, cap;
} counts_t;

/* A grouped-by value as a label: a string as is, a number or an ObjectId
 * as text; "(none)" when missing or null, "(not a string)" otherwise. */
static char *
group_label (const bson_t *doc, const char *key)
{
   char buf[64];
   const char *text = doc ? mt_admin_text (doc, key, buf, sizeof buf) : "-";

   if (!strcmp (text, "-")) {
      text = "(none)";
   } else if (!strcmp (text, "?")) {
      text = "(not a string)";
   }
   return bson_strdup (text);
}

static int
compare_counts (const void *pa, const void *pb)
{
   const count_t *a = pa, *b = pb;
   int c = strcmp (a->key, b->key);

   if (c || !a->status || !b->status) {
      return c;
   }
   return mt_admin_status_compare (a->status, b->status);
}

static void
counts_destroy (counts_t *counts)
{
   for (size_t i = 0; i < counts->len; i++) {
      bson_free (counts->items[i].key);
      bson_free (counts->items[i].status);
   }
   bson_free (counts->items);
}

/* Runs `pipeline_json` on the tasks and appends each result to `counts`,
 * sorted; with `by_status`, _id is {queue, status}, else the type. */
static bool
count_by (mongoc_collection_t *tasks, const char *pipeline_json, bool by_status, counts_t *counts, bson_error_t *error)
{
   bson_t *pipeline = bson_new_from_json ((const uint8_t *) pipeline_json, -1, error);
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_iter_t iter;
   bool ok;

   BSON_ASSERT (pipeline);
   cursor = mongoc_collection_aggregate (tasks, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      count_t *item;

      if (counts->len == counts->cap) {
         counts->cap = counts->cap ? 2 * counts->cap : 16;
         counts->items = bson_realloc (counts->items, counts->cap * sizeof *counts->items);
      }
      item = &counts->items[counts->len++];
      memset (item, 0, sizeof *item);
      if (by_status) {
         bson_t id;
         bool have_id = false;

         if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
            const uint8_t *data;
            uint32_t len;

            bson_iter_document (&iter, &len, &data);
            have_id = bson_init_static (&id, data, len);
         }
         item->key = group_label (have_id ? &id : NULL, "queue");
         item->status = group_label (have_id ? &id : NULL, "status");
      } else {
         item->key = group_label (doc, "_id");
      }
      item->n = mt_admin_int (doc, "n", 0);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (pipeline);
   if (ok && counts->len) {
      qsort (counts->items, counts->len, sizeof *counts->items, compare_counts);
   }
   return ok;
}

/* The backlog of one queue: CREATED tasks due now, delayed (a first run
 * not yet due), retrying (a retry not yet due), WORK_IN_PROGRESS running,
 * and when the oldest due task became due (0: none due). */
typedef struct {
   char *queue;
   int64_t due, delayed, retrying, running;
   int64_t oldest_due; /* ms since the epoch */
   int64_t failed_last_hour;
} backlog_t;

/* A queue and a type that CREATED tasks have. */
typedef struct {
   char *queue;
   char *type;
} pair_t;

typedef struct {
   backlog_t *queues;
   size_t n_queues;
   pair_t *pairs;
   size_t n_pairs;
   int64_t now; /* the server's time at the read, ms */
} backlog_set_t;

static backlog_t *
backlog_of (backlog_set_t *set, const char *queue)
{
   for (size_t i = 0; i < set->n_queues; i++) {
      if (!strcmp (set->queues[i].queue, queue)) {
         return &set->queues[i];
      }
   }
   set->queues = bson_realloc (set->queues, (set->n_queues + 1) * sizeof *set->queues);
   memset (&set->queues[set->n_queues], 0, sizeof *set->queues);
   set->queues[set->n_queues].queue = bson_strdup (queue);
   return &set->queues[set->n_queues++];
}

static void
pair_add (backlog_set_t *set, const char *queue, const char *type)
{
   for (size_t i = 0; i < set->n_pairs; i++) {
      if (!strcmp (set->pairs[i].queue, queue) && !strcmp (set->pairs[i].type, type)) {
         return;
      }
   }
   set->pairs = bson_realloc (set->pairs, (set->n_pairs + 1) * sizeof *set->pairs);
   set->pairs[set->n_pairs].queue = bson_strdup (queue);
   set->pairs[set->n_pairs++].type = bson_strdup (type);
}

static void
backlog_destroy (backlog_set_t *set)
{
   for (size_t i = 0; i < set->n_queues; i++) {
      bson_free (set->queues[i].queue);
   }
   for (size_t i = 0; i < set->n_pairs; i++) {
      bson_free (set->pairs[i].queue);
      bson_free (set->pairs[i].type);
   }
   bson_free (set->queues);
   bson_free (set->pairs);
}

static int
compare_backlogs (const void *pa, const void *pb)
{
   return strcmp (((const backlog_t *) pa)->queue, ((const backlog_t *) pb)->queue);
}

static int
compare_pairs (const void *pa, const void *pb)
{
   const pair_t *a = pa, *b = pb;
   int c = strcmp (a->queue, b->queue);

   return c ? c : strcmp (a->type, b->type);
}

static int64_t
date_of (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_DATE_TIME (&iter) ? bson_iter_date_time (&iter) : 0;
}

/* Counts the CREATED and WORK_IN_PROGRESS tasks into `set`, grouped on
 * the server (a backlog of millions costs a few documents here): what is
 * due is judged on the server's clock ($$NOW), as a worker's claim judges
 * it. A missing or null `delayed` is due; the time a task became due is
 * the later of `created` and `delayed`. */
static bool
backlog_read (mongoc_collection_t *tasks, backlog_set_t *set, bson_error_t *error)
{
   bson_t *pipeline = BCON_NEW ("pipeline",
                                "[",
                                "{",
                                "$match",
                                "{",
                                "status",
                                "{",
                                "$in",
                                "[",
                                MT_STATUS_CREATED,
                                MT_STATUS_WORK_IN_PROGRESS,
                                "]",
                                "}",
                                "}",
                                "}",
                                "{",
                                "$group",
                                "{",
                                "_id",
                                "{",
                                "queue",
                                "$queue",
                                "type",
                                "$type",
                                "status",
                                "$status",
                                "later",
                                "{",
                                "$gt",
                                "[",
                                "$delayed",
                                "$$NOW",
                                "]",
                                "}",
                                "retry",
                                "{",
                                "$gt",
                                "[",
                                "$attempts",
                                BCON_INT32 (0),
                                "]",
                                "}",
                                "}",
                                "n",
                                "{",
                                "$sum",
                                BCON_INT32 (1),
                                "}",
                                "since",
                                "{",
                                "$min",
                                "{",
                                "$max",
                                "[",
                                "$created",
                                "$delayed",
                                "]",
                                "}",
                                "}",
                                "now",
                                "{",
                                "$max",
                                "$$NOW",
                                "}",
                                "}",
                                "}",
                                "]");
   mongoc_cursor_t *cursor = mongoc_collection_aggregate (tasks, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   const bson_t *doc;
   bson_iter_t iter;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      bson_t id;
      const uint8_t *data;
      uint32_t len;
      char *queue, *type;
      backlog_t *b;
      const char *status;
      int64_t n = mt_admin_int (doc, "n", 0), now = date_of (doc, "now"), since = date_of (doc, "since");
      bool later = false, retry = false;

      if (!bson_iter_init_find (&iter, doc, "_id") || !BSON_ITER_HOLDS_DOCUMENT (&iter)) {
         continue;
      }
      bson_iter_document (&iter, &len, &data);
      if (!bson_init_static (&id, data, len)) {
         continue;
      }
      if (bson_iter_init_find (&iter, &id, "later") && BSON_ITER_HOLDS_BOOL (&iter)) {
         later = bson_iter_bool (&iter);
      }
      if (bson_iter_init_find (&iter, &id, "retry") && BSON_ITER_HOLDS_BOOL (&iter)) {
         retry = bson_iter_bool (&iter);
      }
      if (now) {
         set->now = now;
      }
      queue = group_label (&id, "queue");
      type = group_label (&id, "type");
      status = mt_admin_str (&id, "status");
      b = backlog_of (set, queue);
      if (status && !strcmp (status, MT_STATUS_WORK_IN_PROGRESS)) {
         b->running += n;
      } else {
         if (later && retry) {
            b->retrying += n;
         } else if (later) {
            b->delayed += n;
         } else {
            b->due += n;
            if (since && (!b->oldest_due || since < b->oldest_due)) {
               b->oldest_due = since;
            }
         }
         pair_add (set, queue, type);
      }
      bson_free (queue);
      bson_free (type);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (pipeline);
   if (set->n_pairs) {
      qsort (set->pairs, set->n_pairs, sizeof *set->pairs, compare_pairs);
   }
   return ok;
}

/* ---- the last hour: what ended, per minute and per queue --------------- */

#define MINUTE_MS 60000
#define HOUR_MS (60 * MINUTE_MS)
#define N_MINUTES 60

/* Tasks that ended FINISHED or FAILED in the last hour: per minute (the
 * chart's 60 minutes, the current one last) and FAILED per queue. */
typedef struct {
   int64_t first_minute; /* ms: the start of the oldest of the 60 minutes */
   int64_t finished[N_MINUTES], failed[N_MINUTES];
   counts_t failed_by_queue; /* key: the queue as a label */
} ended_t;

static void
failed_add (counts_t *counts, char *queue, int64_t n)
{
   for (size_t i = 0; i < counts->len; i++) {
      if (!strcmp (counts->items[i].key, queue)) {
         counts->items[i].n += n;
         bson_free (queue);
         return;
      }
   }
   if (counts->len == counts->cap) {
      counts->cap = counts->cap ? 2 * counts->cap : 16;
      counts->items = bson_realloc (counts->items, counts->cap * sizeof *counts->items);
   }
   counts->items[counts->len].key = queue;
   counts->items[counts->len].status = NULL;
   counts->items[counts->len++].n = n;
}

/* Counts into `ended`, times `sign`, the tasks of `coll` that ended
 * FINISHED or FAILED since `since_ms`; with `copies_in`, only those that
 * also have a copy in that collection (by _id). `*total`: how many were
 * counted.
 *
 * One aggregation, grouped on the server: $match on {status, finished}
 * (the index mtask_finished), $group by minute. The minute is
 * finished - (finished mod 60000), written as {$subtract: [date,
 * {$mod: [{$toLong: date}, 60000]}]}: a date minus milliseconds is a date.
 * $toLong is MongoDB 4.0+, $dateTrunc 5.0+ (not used); the development
 * server (mongo-java-server 1.47) was checked to give the same: $toLong of
 * a date is its milliseconds, $mod and $subtract (date - number) a date,
 * and $facet, $lookup (localField/foreignField) and "a.0": {$exists} work
 * there as on MongoDB. */
static bool
ended_read (mongoc_collection_t *coll, const char *copies_in, int64_t since_ms, int sign, ended_t *ended, int64_t *total, bson_error_t *error)
{
   bson_t *match = BCON_NEW ("$match", "{",
                             "status", "{", "$in", "[", MT_STATUS_FINISHED, MT_STATUS_FAILED, "]", "}",
                             "finished", "{", "$gte", BCON_DATE_TIME (since_ms), "}",
                             "}");
   bson_t *lookup = copies_in ? BCON_NEW ("$lookup", "{",
                                          "from", BCON_UTF8 (copies_in),
                                          "localField", "_id",
                                          "foreignField", "_id",
                                          "as", "mt_copy",
                                          "}")
                              : NULL;
   bson_t *with_copy = BCON_NEW ("$match", "{", "mt_copy.0", "{", "$exists", BCON_BOOL (true), "}", "}");
   bson_t *facet = BCON_NEW ("$facet", "{",
                             "minutes", "[",
                             "{", "$group", "{",
                             "_id", "{",
                             "status", "$status",
                             "minute", "{", "$subtract", "[", "$finished",
                             "{", "$mod", "[", "{", "$toLong", "$finished", "}", BCON_INT32 (MINUTE_MS), "]", "}",
                             "]", "}",
                             "}",
                             "n", "{", "$sum", BCON_INT32 (1), "}",
                             "}", "}",
                             "]",
                             "failed", "[",
                             "{", "$match", "{", "status", MT_STATUS_FAILED, "}", "}",
                             "{", "$group", "{", "_id", "$queue", "n", "{", "$sum", BCON_INT32 (1), "}", "}", "}",
                             "]",
                             "}");
   bson_t pipeline = BSON_INITIALIZER, stages;
   bson_iter_t iter, list;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool ok;

   *total = 0;
   BSON_APPEND_ARRAY_BEGIN (&pipeline, "pipeline", &stages);
   BSON_APPEND_DOCUMENT (&stages, "0", match);
   if (lookup) {
      BSON_APPEND_DOCUMENT (&stages, "1", lookup);
      BSON_APPEND_DOCUMENT (&stages, "2", with_copy);
      BSON_APPEND_DOCUMENT (&stages, "3", facet);
   } else {
      BSON_APPEND_DOCUMENT (&stages, "1", facet);
   }
   bson_append_array_end (&pipeline, &stages);

   cursor = mongoc_collection_aggregate (coll, MONGOC_QUERY_NONE, &pipeline, NULL, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      bson_t row, id;
      const uint8_t *data;
      uint32_t len;

      if (bson_iter_init_find (&iter, doc, "minutes") && BSON_ITER_HOLDS_ARRAY (&iter) && bson_iter_recurse (&iter, &list)) {
         while (bson_iter_next (&list)) {
            bson_iter_t field;
            int64_t n, minute, k;
            const char *status;

            if (!BSON_ITER_HOLDS_DOCUMENT (&list)) {
               continue;
            }
            bson_iter_document (&list, &len, &data);
            if (!bson_init_static (&row, data, len) || !bson_iter_init_find (&field, &row, "_id") || !BSON_ITER_HOLDS_DOCUMENT (&field)) {
               continue;
            }
            bson_iter_document (&field, &len, &data);
            if (!bson_init_static (&id, data, len) || !bson_iter_init_find (&field, &id, "minute") || !BSON_ITER_HOLDS_DATE_TIME (&field)) {
               continue;
            }
            minute = bson_iter_date_time (&field);
            status = mt_admin_str (&id, "status");
            n = mt_admin_int (&row, "n", 0);
            *total += n;
            /* The minute before the first is the hour's partial first
             * minute: in failed_last_hour, not in the chart. */
            if (minute < ended->first_minute || !status) {
               continue;
            }
            k = (minute - ended->first_minute) / MINUTE_MS;
            if (k >= N_MINUTES) {
               continue; /* finished "in the future": a clock far ahead */
            }
            if (!strcmp (status, MT_STATUS_FAILED)) {
               ended->failed[k] += sign * n;
            } else {
               ended->finished[k] += sign * n;
            }
         }
      }
      if (bson_iter_init_find (&iter, doc, "failed") && BSON_ITER_HOLDS_ARRAY (&iter) && bson_iter_recurse (&iter, &list)) {
         while (bson_iter_next (&list)) {
            if (!BSON_ITER_HOLDS_DOCUMENT (&list)) {
               continue;
            }
            bson_iter_document (&list, &len, &data);
            if (bson_init_static (&row, data, len)) {
               failed_add (&ended->failed_by_queue, group_label (&row, "_id"), sign * mt_admin_int (&row, "n", 0));
            }
         }
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (&pipeline);
   bson_destroy (match);
   if (lookup) {
      bson_destroy (lookup);
   }
   bson_destroy (with_copy);
   bson_destroy (facet);
   return ok;
}

/* What ended in the last hour, in `tasks` and in the archive, each task
 * counted once. The archive moves a task by copying it into
 * completed_tasks, then deleting it from tasks (archive.c): for a moment,
 * or until the next sweep when a worker died in between, a task is in
 * both. When both collections have tasks in the hour, those with a copy
 * in the other are counted once more, negatively, from the side that has
 * fewer (with archiving on, tasks holds only those not moved yet; with it
 * off, the archive holds none of the hour), so that the $lookup runs over
 * a few documents. On failure `*where` names the collection. */
static bool
ended_last_hour (mongoc_client_t *client, const char *db, int64_t now_ms, ended_t *ended, const char **where, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   mongoc_collection_t *archive = mongoc_client_get_collection (client, db, MT_COMPLETED_COLLECTION);
   int64_t since = now_ms - HOUR_MS, in_tasks = 0, in_archive = 0, twice;
   bool ok;

   ended->first_minute = now_ms - now_ms % MINUTE_MS - (N_MINUTES - 1) * (int64_t) MINUTE_MS;
   *where = MT_TASKS_COLLECTION;
   ok = ended_read (tasks, NULL, since, 1, ended, &in_tasks, error);
   if (ok) {
      *where = MT_COMPLETED_COLLECTION;
      ok = ended_read (archive, NULL, since, 1, ended, &in_archive, error);
   }
   if (ok && in_tasks && in_archive) {
      bool from_tasks = in_tasks <= in_archive;

      *where = from_tasks ? MT_TASKS_COLLECTION : MT_COMPLETED_COLLECTION;
      ok = ended_read (from_tasks ? tasks : archive,
                       from_tasks ? MT_COMPLETED_COLLECTION : MT_TASKS_COLLECTION,
                       since,
                       -1,
                       ended,
                       &twice,
                       error);
   }
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (archive);
   return ok;
}

static void
throughput_append (bson_t *reply, const ended_t *ended)
{
   bson_t list, item;
   char key[16];

   BSON_APPEND_ARRAY_BEGIN (reply, "throughput", &list);
   for (uint32_t k = 0; k < N_MINUTES; k++) {
      bson_append_document_begin (&list, mt_admin_array_key (k, key), -1, &item);
      BSON_APPEND_DATE_TIME (&item, "minute", ended->first_minute + (int64_t) k * MINUTE_MS);
      BSON_APPEND_INT64 (&item, "finished", ended->finished[k]);
      BSON_APPEND_INT64 (&item, "failed", ended->failed[k]);
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);
}

/* Appends "backlog", "unserved_queues" and "unserved_types" to `reply`. */
static void
backlog_append (bson_t *reply, const backlog_set_t *set, const mt_admin_docs_t *workers, int64_t workers_now)
{
   bson_t list, item;
   char key[16];
   uint32_t n = 0;

   BSON_APPEND_ARRAY_BEGIN (reply, "backlog", &list);
   for (size_t i = 0; i < set->n_queues; i++) {
      const backlog_t *b = &set->queues[i];

      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      BSON_APPEND_UTF8 (&item, "queue", b->queue);
      BSON_APPEND_INT64 (&item, "due", b->due);
      BSON_APPEND_INT64 (&item, "delayed", b->delayed);
      BSON_APPEND_INT64 (&item, "retrying", b->retrying);
      BSON_APPEND_INT64 (&item, "running", b->running);
      BSON_APPEND_INT64 (&item, "failed_last_hour", b->failed_last_hour);
      if (b->oldest_due && set->now) {
         BSON_APPEND_INT64 (&item, "oldest_due_age_ms", BSON_MAX (0, set->now - b->oldest_due));
      }
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);

   /* Queues with waiting tasks that no running worker takes. */
   BSON_APPEND_ARRAY_BEGIN (reply, "unserved_queues", &list);
   for (size_t i = 0; i < set->n_pairs; i++) {
      bool served = false;

      if (i && !strcmp (set->pairs[i].queue, set->pairs[i - 1].queue)) {
         continue;
      }
      for (size_t w = 0; w < workers->len && !served; w++) {
         served = mt_admin_worker_serves (workers->items[w], workers_now, set->pairs[i].queue, NULL);
      }
      if (!served) {
         bson_append_utf8 (&list, mt_admin_array_key (n++, key), -1, set->pairs[i].queue, -1);
      }
   }
   bson_append_array_end (reply, &list);

   /* Types waiting in a queue some running worker takes, none of which has
    * a plugin for them. */
   n = 0;
   BSON_APPEND_ARRAY_BEGIN (reply, "unserved_types", &list);
   for (size_t i = 0; i < set->n_pairs; i++) {
      bool queue_served = false, served = false;

      for (size_t w = 0; w < workers->len && !served; w++) {
         queue_served = queue_served || mt_admin_worker_serves (workers->items[w], workers_now, set->pairs[i].queue, NULL);
         served = mt_admin_worker_serves (workers->items[w], workers_now, set->pairs[i].queue, set->pairs[i].type);
      }
      if (queue_served && !served) {
         bson_append_document_begin (&list, mt_admin_array_key (n++, key), -1, &item);
         BSON_APPEND_UTF8 (&item, "queue", set->pairs[i].queue);
         BSON_APPEND_UTF8 (&item, "type", set->pairs[i].type);
         bson_append_document_end (&list, &item);
      }
   }
   bson_append_array_end (reply, &list);
}

bool
mt_admin_stats (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   mongoc_collection_t *tasks = NULL;
   counts_t by_queue = {0}, by_type = {0};
   backlog_set_t backlog = {0};
   ended_t ended = {0};
   mt_admin_docs_t workers = {0};
   int64_t workers_now = 0;
   const char **statuses = NULL;
   bool archive = false;
   const mt_admin_opt_t spec[] = {
      {"archive", MT_ADMIN_OPT_BOOL, &archive},
      {NULL},
   };
   const char *coll;
   bson_t list, item;
   char key[16];
   bool ok = false;

   if (!mt_admin_begin (reply, opts, spec, error)) {
      goto cleanup;
   }
   coll = archive ? MT_COMPLETED_COLLECTION : MT_TASKS_COLLECTION;
   tasks = mongoc_client_get_collection (client, db, coll);
   if (!count_by (tasks,
                  "[{\"$group\": {\"_id\": {\"queue\": \"$queue\", \"status\": \"$status\"}, \"n\": {\"$sum\": 1}}}]",
                  true,
                  &by_queue,
                  error) ||
       !count_by (tasks,
                  "[{\"$match\": {\"status\": \"" MT_STATUS_CREATED "\"}},"
                  " {\"$group\": {\"_id\": \"$type\", \"n\": {\"$sum\": 1}}}]",
                  false,
                  &by_type,
                  error)) {
      mt_admin_fail (reply, coll, NULL);
      goto cleanup;
   }
   /* The backlog is of live tasks: none for the archive. */
   if (!archive && !backlog_read (tasks, &backlog, error)) {
      mt_admin_fail (reply, MT_TASKS_COLLECTION, NULL);
      goto cleanup;
   }
   if (!archive && !mt_admin_worker_docs (client, db, NULL, 0, &workers, &workers_now, error)) {
      mt_admin_fail (reply, MT_WORKERS_COLLECTION, NULL);
      goto cleanup;
   }
   if (!archive) {
      const char *where = MT_TASKS_COLLECTION;
      int64_t now = 0;

      if (!mt_admin_server_now (client, &now, error) || !ended_last_hour (client, db, now, &ended, &where, error)) {
         mt_admin_fail (reply, where, NULL);
         goto cleanup;
      }
      /* A queue that failed tasks in the hour has a row, waiting or not. */
      for (size_t i = 0; i < ended.failed_by_queue.len; i++) {
         if (ended.failed_by_queue.items[i].n > 0) {
            backlog_of (&backlog, ended.failed_by_queue.items[i].key)->failed_last_hour = ended.failed_by_queue.items[i].n;
         }
      }
      if (backlog.n_queues) {
         qsort (backlog.queues, backlog.n_queues, sizeof *backlog.queues, compare_backlogs);
      }
   }

   statuses = bson_malloc0 ((by_queue.len + 1) * sizeof *statuses);
   BSON_APPEND_ARRAY_BEGIN (reply, "by_queue", &list);
   for (size_t i = 0; i < by_queue.len; i++) {
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      BSON_APPEND_UTF8 (&item, "queue", by_queue.items[i].key);
      BSON_APPEND_UTF8 (&item, "status", by_queue.items[i].status);
      BSON_APPEND_INT64 (&item, "n", by_queue.items[i].n);
      bson_append_document_end (&list, &item);
      statuses[i] = by_queue.items[i].status;
   }
   bson_append_array_end (reply, &list);
   BSON_APPEND_ARRAY_BEGIN (reply, "by_type", &list);
   for (size_t i = 0; i < by_type.len; i++) {
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      BSON_APPEND_UTF8 (&item, "type", by_type.items[i].key);
      BSON_APPEND_INT64 (&item, "n", by_type.items[i].n);
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);
   mt_admin_append_statuses (reply, statuses, by_queue.len);
   if (!archive) {
      backlog_append (reply, &backlog, &workers, workers_now);
      throughput_append (reply, &ended);
   }
   ok = true;

cleanup:
   counts_destroy (&ended.failed_by_queue);
   backlog_destroy (&backlog);
   mt_admin_docs_destroy (&workers);
   bson_free ((void *) statuses);
   counts_destroy (&by_queue);
   counts_destroy (&by_type);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* The longest text `q` a task list searches for, and the farthest it
 * pages: a deeper page is a filter to narrow. */
#define TASKS_Q_MAX 200
#define TASKS_SKIP_MAX 100000

/* Appends to `filter` what `q` matches: the _id when it is 24 hex digits,
 * else status_message holding it, case-insensitive: a regex of `q` with
 * every ASCII character but letters, digits and '_' escaped, so that it
 * matches the text as typed ('.*(' is three characters, not a pattern).
 * A backslash before such a character is that character in PCRE (MongoDB)
 * and in Java's regex (the development server) alike; letters and digits
 * are left bare, as a backslash before them would mean something else. */
static void
append_text_match (bson_t *filter, const char *q)
{
   bson_string_t *re;
   bson_oid_t oid;

   if (strlen (q) == 24 && bson_oid_is_valid (q, 24)) {
      bson_oid_init_from_string (&oid, q);
      BSON_APPEND_OID (filter, "_id", &oid);
      return;
   }
   re = bson_string_new (NULL);
   for (const unsigned char *p = (const unsigned char *) q; *p; p++) {
      bool bare = *p >= 0x80 || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';

      if (!bare) {
         bson_string_append_c (re, '\\');
      }
      bson_string_append_c (re, (char) *p);
   }
   BSON_APPEND_REGEX (filter, "status_message", re->str, "i");
   bson_string_free (re, true);
}

bool
mt_admin_tasks (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   const char *queue = NULL, *status = NULL, *type = NULL, *worker = NULL, *q = NULL;
   int64_t limit = 0, skip = 0;
   bool archive = false;
   const mt_admin_opt_t spec[] = {
      {"archive", MT_ADMIN_OPT_BOOL, &archive},
      {"queue", MT_ADMIN_OPT_STRING, &queue},
      {"status", MT_ADMIN_OPT_STRING, &status},
      {"type", MT_ADMIN_OPT_STRING, &type},
      {"worker", MT_ADMIN_OPT_STRING, &worker},
      {"q", MT_ADMIN_OPT_STRING, &q},
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {"skip", MT_ADMIN_OPT_COUNT, &skip},
      {NULL},
   };
   bson_t filter = BSON_INITIALIZER, find_opts = BSON_INITIALIZER, sort, list;
   const char *coll;
   mongoc_collection_t *tasks = NULL;
   mongoc_cursor_t *cursor = NULL;
   const bson_t *doc;
   uint32_t n = 0;
   char key[16];
   bool more = false, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error)) {
      goto cleanup;
   }
   if (skip > TASKS_SKIP_MAX) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "option 'skip' must be at most %d: narrow the list (queue, status, type, worker, q) instead",
                      TASKS_SKIP_MAX);
      goto cleanup;
   }
   if (q && strlen (q) > TASKS_Q_MAX) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option 'q' must be at most %d bytes long", TASKS_Q_MAX);
      goto cleanup;
   }
   mt_admin_task_filter (&filter, queue, status, type);
   if (worker) {
      /* What it runs now and what it ran: a claim sets both, the end of a
       * run clears worker_pid only. worker_pid alone finds a task claimed
       * before last_worker was written. */
      bson_t or, alt;

      BSON_APPEND_ARRAY_BEGIN (&filter, "$or", &or);
      BSON_APPEND_DOCUMENT_BEGIN (&or, "0", &alt);
      BSON_APPEND_UTF8 (&alt, "worker_pid", worker);
      bson_append_document_end (&or, &alt);
      BSON_APPEND_DOCUMENT_BEGIN (&or, "1", &alt);
      BSON_APPEND_UTF8 (&alt, "last_worker", worker);
      bson_append_document_end (&or, &alt);
      bson_append_array_end (&filter, &or);
   }
   if (q) {
      append_text_match (&filter, q);
   }
   /* Newest first by _id: an ObjectId starts with its creation time, and
    * the _id index gives this order with no sort in memory, however deep
    * the page (a sort on `created` would sort skip + limit documents). */
   BSON_APPEND_DOCUMENT_BEGIN (&find_opts, "sort", &sort);
   BSON_APPEND_INT32 (&sort, "_id", -1);
   bson_append_document_end (&find_opts, &sort);
   if (skip > 0) {
      BSON_APPEND_INT64 (&find_opts, "skip", skip);
   }
   if (limit > 0) {
      /* One more than asked tells whether there are more. */
      BSON_APPEND_INT64 (&find_opts, "limit", limit + 1);
   }

   coll = archive ? MT_COMPLETED_COLLECTION : MT_TASKS_COLLECTION;
   tasks = mongoc_client_get_collection (client, db, coll);
   cursor = mongoc_collection_find_with_opts (tasks, &filter, &find_opts, NULL);
   BSON_APPEND_ARRAY_BEGIN (reply, "tasks", &list);
   while (mongoc_cursor_next (cursor, &doc)) {
      if (limit > 0 && n == (uint32_t) limit) {
         more = true;
         break;
      }
      bson_append_document (&list, mt_admin_array_key (n++, key), -1, doc);
   }
   bson_append_array_end (reply, &list);
   if (mongoc_cursor_error (cursor, error)) {
      mt_admin_fail (reply, coll, NULL);
      goto cleanup;
   }
   BSON_APPEND_BOOL (reply, "more", more);
   ok = true;

cleanup:
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (tasks);
   bson_destroy (&filter);
   bson_destroy (&find_opts);
   return ok;
}

/* The run of `task`'s series just before it (the latest `scheduled`
 * before its own, in `tasks` or the archive) as "previous": {_id,
 * scheduled, status, finished}, or null for the series' first run; nothing
 * for a task of no series. The mtask_series index serves the query. */
static bool
append_previous_run (mongoc_client_t *client, const char *db, const bson_t *task, bson_t *reply, const char **where, bson_error_t *error)
{
   bson_iter_t series, scheduled, iter;
   bson_t filter = BSON_INITIALIZER, cmp, found_doc[2];
   bson_t *opts;
   bool found[2] = {false, false}, ok = true;
   int64_t at[2] = {0, 0};
   int best = -1;

   if (!bson_iter_init_find (&series, task, "series") || !bson_iter_init_find (&scheduled, task, "scheduled") ||
       !BSON_ITER_HOLDS_DATE_TIME (&scheduled)) {
      bson_destroy (&filter);
      return true;
   }
   BSON_APPEND_VALUE (&filter, "series", bson_iter_value (&series));
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "scheduled", &cmp);
   BSON_APPEND_DATE_TIME (&cmp, "$lt", bson_iter_date_time (&scheduled));
   bson_append_document_end (&filter, &cmp);
   opts = BCON_NEW ("sort",
                    "{",
                    "scheduled",
                    BCON_INT32 (-1),
                    "}",
                    "projection",
                    "{",
                    "scheduled",
                    BCON_INT32 (1),
                    "status",
                    BCON_INT32 (1),
                    "finished",
                    BCON_INT32 (1),
                    "}");
   /* Both collections: the archive takes a series' runs as they age. */
   for (int c = 0; c < 2; c++) {
      *where = c ? MT_COMPLETED_COLLECTION : MT_TASKS_COLLECTION;
      ok = ok && mt_admin_find_one (client, db, *where, &filter, opts, &found_doc[c], &found[c], error);
      if (!ok) {
         if (c == 0) {
            bson_init (&found_doc[1]);
         }
         break;
      }
      if (found[c] && bson_iter_init_find (&iter, &found_doc[c], "scheduled") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         at[c] = bson_iter_date_time (&iter);
         best = best < 0 || at[c] > at[best] ? c : best;
      }
   }
   if (ok && best >= 0) {
      BSON_APPEND_DOCUMENT (reply, "previous", &found_doc[best]);
   } else if (ok) {
      BSON_APPEND_NULL (reply, "previous");
   }
   bson_destroy (&found_doc[0]);
   bson_destroy (&found_doc[1]);
   bson_destroy (opts);
   bson_destroy (&filter);
   return ok;
}

bool
mt_admin_task (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, task = BSON_INITIALIZER;
   const char *coll = MT_TASKS_COLLECTION;
   bool found = false, ok = false;
   char hex[25];

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!id) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "which task? give its id");
      goto cleanup;
   }
   BSON_APPEND_OID (&filter, "_id", id);
   /* A task that has ended may have moved to the archive. */
   for (int c = 0; c < 2; c++) {
      coll = c ? MT_COMPLETED_COLLECTION : MT_TASKS_COLLECTION;
      bson_destroy (&task); /* mt_admin_find_one initializes it again */
      if (!mt_admin_find_one (client, db, coll, &filter, NULL, &task, &found, error)) {
         mt_admin_fail (reply, coll, NULL);
         goto cleanup;
      }
      if (found) {
         break;
      }
   }
   if (!found) {
      bson_oid_to_string (id, hex);
      mt_admin_not_found (reply, MT_TASKS_COLLECTION, error, MT_ERROR_STORE, MT_STORE_ERROR_NOT_FOUND,
                          "no task with id %s in %s.%s nor in %s.%s", hex, db, MT_TASKS_COLLECTION, db, MT_COMPLETED_COLLECTION);
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT (reply, "task", &task);
   BSON_APPEND_UTF8 (reply, "collection", coll);
   if (!append_previous_run (client, db, &task, reply, &coll, error)) {
      mt_admin_fail (reply, coll, NULL);
      goto cleanup;
   }
   ok = true;

cleanup:
   bson_destroy (&filter);
   bson_destroy (&task);
   return ok;
}

bool
mt_admin_unique_holder (mongoc_client_t *client, const char *db, const char *key, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, task = BSON_INITIALIZER;
   bool found, ok = false;

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!key || !key[0]) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "the holder of which unique_key? give a key, not an empty one");
      goto cleanup;
   }
   BSON_APPEND_UTF8 (&filter, "unique_key", key);
   mt_admin_append_live (&filter);
   bson_destroy (&task); /* mt_admin_find_one initializes it again */
   if (!mt_admin_find_one (client, db, MT_TASKS_COLLECTION, &filter, NULL, &task, &found, error)) {
      mt_admin_fail (reply, MT_TASKS_COLLECTION, NULL);
      goto cleanup;
   }
   if (found) {
      BSON_APPEND_DOCUMENT (reply, "task", &task);
   } else {
      BSON_APPEND_NULL (reply, "task");
   }
   ok = true;

cleanup:
   bson_destroy (&filter);
   bson_destroy (&task);
   return ok;
}

/* A task that runs, as a lock names its run: its _id as text (with its
 * kind), its worker and its attempt. */
typedef struct {
   char *id;
   const char *worker; /* in the docs read, or NULL */
   int64_t attempts;
} run_t;

static int
compare_runs (const void *pa, const void *pb)
{
   return strcmp (((const run_t *) pa)->id, ((const run_t *) pb)->id);
}

/* An _id as text for matching, or NULL for a kind no lock names. Numbers
 * compare as numbers, as the server's equality does. */
static char *
id_key (const bson_value_t *v)
{
   char hex[25];

   switch (v->value_type) {
   case BSON_TYPE_OID:
      bson_oid_to_string (&v->value.v_oid, hex);
      return bson_strdup_printf ("o:%s", hex);
   case BSON_TYPE_UTF8:
      return bson_strdup_printf ("s:%s", v->value.v_utf8.str);
   case BSON_TYPE_INT32:
      return bson_strdup_printf ("n:%" PRId64, (int64_t) v->value.v_int32);
   case BSON_TYPE_INT64:
      return bson_strdup_printf ("n:%" PRId64, v->value.v_int64);
   case BSON_TYPE_DOUBLE:
      if (v->value.v_double == (double) (int64_t) v->value.v_double) {
         return bson_strdup_printf ("n:%" PRId64, (int64_t) v->value.v_double);
      }
      return bson_strdup_printf ("n:%.17g", v->value.v_double);
   default:
      return NULL;
   }
}

/* Whether each lock's run goes on, as mt_run_is_live judges one (its task
 * WORK_IN_PROGRESS under the lock's worker and attempt), for all the locks
 * listed in one read of `tasks`: a listing of many locks costs one query,
 * not one per lock. `live[i]` for locks->items[i]. */
static bool
locks_live (mongoc_client_t *client, const char *db, const mt_admin_docs_t *locks, bool *live, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, in, ids;
   bson_t *opts = BCON_NEW ("projection", "{", "worker_pid", BCON_INT32 (1), "attempts", BCON_INT32 (1), "}");
   mt_admin_docs_t tasks = {0};
   run_t *runs = NULL;
   size_t n_runs = 0;
   uint32_t n_ids = 0;
   char key[16];
   bool ok;

   BSON_APPEND_DOCUMENT_BEGIN (&filter, "_id", &in);
   BSON_APPEND_ARRAY_BEGIN (&in, "$in", &ids);
   for (size_t i = 0; i < locks->len; i++) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, locks->items[i], "task")) {
         bson_append_value (&ids, mt_admin_array_key (n_ids++, key), -1, bson_iter_value (&iter));
      }
   }
   bson_append_array_end (&in, &ids);
   bson_append_document_end (&filter, &in);
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   ok = !n_ids || mt_admin_docs_read (client, db, MT_TASKS_COLLECTION, &filter, opts, &tasks, error);
   if (ok && tasks.len) {
      runs = bson_malloc0 (tasks.len * sizeof *runs);
      for (size_t t = 0; t < tasks.len; t++) {
         bson_iter_t iter;

         if (bson_iter_init_find (&iter, tasks.items[t], "_id") && (runs[n_runs].id = id_key (bson_iter_value (&iter)))) {
            runs[n_runs].worker = mt_admin_str (tasks.items[t], "worker_pid");
            runs[n_runs++].attempts = mt_admin_int (tasks.items[t], "attempts", -2);
         }
      }
      qsort (runs, n_runs, sizeof *runs, compare_runs);
   }
   for (size_t i = 0; ok && i < locks->len; i++) {
      const bson_t *lock = locks->items[i];
      const char *worker = mt_admin_str (lock, "worker_pid");
      bson_iter_t iter;
      run_t probe = {0}, *run = NULL;

      live[i] = false;
      if (n_runs && bson_iter_init_find (&iter, lock, "task") && (probe.id = id_key (bson_iter_value (&iter)))) {
         run = bsearch (&probe, runs, n_runs, sizeof *runs, compare_runs);
         bson_free (probe.id);
      }
      live[i] = run && (worker ? run->worker && !strcmp (worker, run->worker) : !run->worker) &&
                run->attempts == (int32_t) mt_admin_int (lock, "attempt", -1);
   }
   for (size_t r = 0; r < n_runs; r++) {
      bson_free (runs[r].id);
   }
   bson_free (runs);
   mt_admin_docs_destroy (&tasks);
   bson_destroy (&filter);
   bson_destroy (opts);
   return ok;
}

bool
mt_admin_locks (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t *find_opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   mt_admin_docs_t locks = {0};
   int64_t limit = 0;
   const mt_admin_opt_t spec[] = {
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   bool *live = NULL;
   bson_t list, item;
   char key[16];
   bool more = false, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error) || !mt_admin_list_limit (&limit, MT_ADMIN_LIST_MAX, MT_ADMIN_LIST_DEFAULT, error)) {
      goto cleanup;
   }
   if (!mt_admin_docs_read_page (client, db, MT_LOCKS_COLLECTION, NULL, find_opts, limit, &locks, &more, error)) {
      mt_admin_fail (reply, MT_LOCKS_COLLECTION, NULL);
      goto cleanup;
   }
   live = bson_malloc0 ((locks.len + 1) * sizeof *live);
   if (!locks_live (client, db, &locks, live, error)) {
      mt_admin_fail (reply, MT_TASKS_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "locks", &list);
   for (size_t i = 0; i < locks.len; i++) {
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      bson_concat (&item, locks.items[i]);
      BSON_APPEND_UTF8 (&item, "state", live[i] ? "held" : "stale");
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);
   BSON_APPEND_BOOL (reply, "more", more);
   ok = true;

cleanup:
   bson_free (live);
   mt_admin_docs_destroy (&locks);
   bson_destroy (find_opts);
   return ok;
}
