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
   if (set->n_queues) {
      qsort (set->queues, set->n_queues, sizeof *set->queues, compare_backlogs);
   }
   if (set->n_pairs) {
      qsort (set->pairs, set->n_pairs, sizeof *set->pairs, compare_pairs);
   }
   return ok;
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
   if (!archive && !mt_admin_worker_docs (client, db, NULL, &workers, &workers_now, error)) {
      mt_admin_fail (reply, MT_WORKERS_COLLECTION, NULL);
      goto cleanup;
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
   }
   ok = true;

cleanup:
   backlog_destroy (&backlog);
   mt_admin_docs_destroy (&workers);
   bson_free ((void *) statuses);
   counts_destroy (&by_queue);
   counts_destroy (&by_type);
   mongoc_collection_destroy (tasks);
   return ok;
}

bool
mt_admin_tasks (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   const char *queue = NULL, *status = NULL, *type = NULL;
   int64_t limit = 0;
   bool archive = false;
   const mt_admin_opt_t spec[] = {
      {"archive", MT_ADMIN_OPT_BOOL, &archive},
      {"queue", MT_ADMIN_OPT_STRING, &queue},
      {"status", MT_ADMIN_OPT_STRING, &status},
      {"type", MT_ADMIN_OPT_STRING, &type},
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   bson_t filter = BSON_INITIALIZER, find_opts = BSON_INITIALIZER, sort, list;
   mongoc_collection_t *tasks = NULL;
   mongoc_cursor_t *cursor = NULL;
   const bson_t *doc;
   uint32_t n = 0;
   char key[16];
   bool ok = false;

   if (!mt_admin_begin (reply, opts, spec, error)) {
      goto cleanup;
   }
   mt_admin_task_filter (&filter, queue, status, type);
   BSON_APPEND_DOCUMENT_BEGIN (&find_opts, "sort", &sort);
   BSON_APPEND_INT32 (&sort, "created", -1);
   BSON_APPEND_INT32 (&sort, "_id", -1);
   bson_append_document_end (&find_opts, &sort);
   if (limit > 0) {
      BSON_APPEND_INT64 (&find_opts, "limit", limit);
   }

   tasks = mongoc_client_get_collection (client, db, archive ? MT_COMPLETED_COLLECTION : MT_TASKS_COLLECTION);
   cursor = mongoc_collection_find_with_opts (tasks, &filter, &find_opts, NULL);
   BSON_APPEND_ARRAY_BEGIN (reply, "tasks", &list);
   while (mongoc_cursor_next (cursor, &doc)) {
      bson_append_document (&list, mt_admin_array_key (n++, key), -1, doc);
   }
   bson_append_array_end (reply, &list);
   if (mongoc_cursor_error (cursor, error)) {
      mt_admin_fail (reply, archive ? MT_COMPLETED_COLLECTION : MT_TASKS_COLLECTION, NULL);
      goto cleanup;
   }
   ok = true;

cleanup:
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (tasks);
   bson_destroy (&filter);
   bson_destroy (&find_opts);
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

bool
mt_admin_locks (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t *find_opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   mt_admin_docs_t locks = {0};
   bson_t list, item;
   bson_iter_t iter;
   char key[16];
   bool ok = false;
   size_t i;

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!mt_admin_docs_read (client, db, MT_LOCKS_COLLECTION, NULL, find_opts, &locks, error)) {
      mt_admin_fail (reply, MT_LOCKS_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "locks", &list);
   for (i = 0; i < locks.len; i++) {
      bool live;

      if (!mt_run_is_live (client, db, locks.items[i], &live, error)) {
         break;
      }
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      bson_concat (&item, locks.items[i]);
      BSON_APPEND_UTF8 (&item, "state", live ? "held" : "stale");
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);
   if (i < locks.len) {
      mt_admin_fail (reply, MT_TASKS_COLLECTION, bson_iter_init_find (&iter, locks.items[i], "_id") ? bson_iter_value (&iter) : NULL);
      goto cleanup;
   }
   ok = true;

cleanup:
   mt_admin_docs_destroy (&locks);
   bson_destroy (find_opts);
   return ok;
}
