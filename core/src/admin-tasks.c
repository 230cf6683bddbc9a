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

bool
mt_admin_stats (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   mongoc_collection_t *tasks = NULL;
   counts_t by_queue = {0}, by_type = {0};
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
   ok = true;

cleanup:
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
   if (queue) {
      BSON_APPEND_UTF8 (&filter, "queue", queue);
   }
   if (status) {
      BSON_APPEND_UTF8 (&filter, "status", status);
   }
   if (type) {
      BSON_APPEND_UTF8 (&filter, "type", type);
   }
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
