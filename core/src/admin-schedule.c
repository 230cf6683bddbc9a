/* Admin API: scheduling and retention (seed 004). The live repeating tasks
 * with their rule and next run, and the TTL that retention set. */
#include "admin-private.h"

#include <stdlib.h>
#include <string.h>

const char *
mt_duration_format (double seconds, char *buf, size_t size)
{
   static const struct {
      int64_t unit;
      const char *suffix;
   } units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}};
   /* Whole seconds only, and none too large for an int64_t. */
   bool whole = seconds >= 60 && seconds < 1e15 && seconds == (double) (int64_t) seconds;

   for (size_t k = 0; whole && k < sizeof units / sizeof units[0]; k++) {
      if ((int64_t) seconds % units[k].unit == 0) {
         bson_snprintf (buf, size, "%" PRId64 "%s", (int64_t) seconds / units[k].unit, units[k].suffix);
         return buf;
      }
   }
   bson_snprintf (buf, size, "%.15gs", seconds);
   return buf;
}

/* How a repeating task repeats, as text: "every 60 s (1m)",
 * "cron '0 6 * * *' (Europe/Berlin)". */
static void
format_rule (const bson_t *task, char *buf, size_t size)
{
   const char *cron = mt_admin_str (task, "cron"), *zone = mt_admin_str (task, "timezone");
   bson_iter_t iter;
   char unit[64];

   if (cron) {
      bson_snprintf (buf, size, "cron '%s' (%s)", cron, zone ? zone : "UTC");
   } else if (bson_iter_init_find (&iter, task, "repeat") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      double every = bson_iter_as_double (&iter);

      mt_duration_format (every, unit, sizeof unit);
      if (unit[strlen (unit) - 1] == 's') {
         bson_snprintf (buf, size, "every %.15g s", every);
      } else {
         bson_snprintf (buf, size, "every %.15g s (%s)", every, unit);
      }
   } else {
      bson_snprintf (buf, size, "(malformed: see 'mtaskctl show')");
   }
}

/* When a live run of a repeating task is next due: its `delayed`, else the
 * time it stands for (`scheduled`); false when neither is a date (due now). */
static bool
next_run (const bson_t *task, int64_t *ms)
{
   bson_iter_t iter;

   if ((bson_iter_init_find (&iter, task, "delayed") && BSON_ITER_HOLDS_DATE_TIME (&iter)) ||
       (bson_iter_init_find (&iter, task, "scheduled") && BSON_ITER_HOLDS_DATE_TIME (&iter))) {
      *ms = bson_iter_date_time (&iter);
      return true;
   }
   return false;
}

typedef struct {
   const bson_t *task;
   int64_t next; /* INT64_MIN when due now */
   size_t order; /* as read: by _id */
} schedule_row_t;

static int
compare_schedule_rows (const void *pa, const void *pb)
{
   const schedule_row_t *a = pa, *b = pb;

   if (a->next != b->next) {
      return a->next < b->next ? -1 : 1;
   }
   return a->order < b->order ? -1 : a->order > b->order;
}

bool
mt_admin_schedules (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   const char *queue = NULL;
   int64_t limit = 0;
   const mt_admin_opt_t spec[] = {
      {"queue", MT_ADMIN_OPT_STRING, &queue},
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   bson_t filter = BSON_INITIALIZER, list, item;
   bson_t *or = BCON_NEW ("0", "{", "repeat", "{", "$ne", BCON_NULL, "}", "}", "1", "{", "cron", "{", "$ne", BCON_NULL, "}", "}");
   bson_t *pipeline = NULL;
   schedule_row_t *rows = NULL;
   mt_admin_docs_t tasks = {0};
   mongoc_collection_t *coll = NULL;
   mongoc_cursor_t *cursor = NULL;
   const bson_t *doc;
   char key[16], rule[160];
   bool more = false, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error) || !mt_admin_list_limit (&limit, MT_ADMIN_LIST_MAX, MT_ADMIN_LIST_DEFAULT, error)) {
      goto cleanup;
   }
   mt_admin_append_live (&filter);
   BSON_APPEND_ARRAY (&filter, "$or", or);
   if (queue) {
      BSON_APPEND_UTF8 (&filter, "queue", queue);
   }
   /* Soonest first on the server, so that a page is the soonest runs: the
    * next run is `delayed`, else `scheduled`; none (null, sorted first) is
    * due now. The rows are put in order again below, where a field that
    * is not a date counts as none. */
   pipeline = BCON_NEW ("pipeline", "[",
                        "{", "$match", BCON_DOCUMENT (&filter), "}",
                        "{", "$addFields", "{", "mt_next", "{", "$ifNull", "[", "$delayed", "$scheduled", "]", "}", "}", "}",
                        "{", "$sort", "{", "mt_next", BCON_INT32 (1), "_id", BCON_INT32 (1), "}", "}",
                        "{", "$limit", BCON_INT64 (limit + 1), "}",
                        "]");
   coll = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   cursor = mongoc_collection_aggregate (coll, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      if (tasks.len == (size_t) limit) {
         more = true;
         break;
      }
      if (tasks.len == tasks.cap) {
         tasks.cap = tasks.cap ? 2 * tasks.cap : 16;
         tasks.items = bson_realloc (tasks.items, tasks.cap * sizeof *tasks.items);
      }
      tasks.items[tasks.len] = bson_new ();
      bson_copy_to_excluding_noinit (doc, tasks.items[tasks.len++], "mt_next", NULL);
   }
   if (mongoc_cursor_error (cursor, error)) {
      mt_admin_fail (reply, MT_TASKS_COLLECTION, NULL);
      goto cleanup;
   }
   rows = bson_malloc0 ((tasks.len + 1) * sizeof *rows);
   for (size_t i = 0; i < tasks.len; i++) {
      rows[i].task = tasks.items[i];
      rows[i].order = i;
      if (!next_run (tasks.items[i], &rows[i].next)) {
         rows[i].next = INT64_MIN;
      }
   }
   qsort (rows, tasks.len, sizeof *rows, compare_schedule_rows);

   BSON_APPEND_ARRAY_BEGIN (reply, "schedules", &list);
   for (size_t i = 0; i < tasks.len; i++) {
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      bson_copy_to_excluding_noinit (rows[i].task, &item, "rule", "next_run", NULL);
      format_rule (rows[i].task, rule, sizeof rule);
      BSON_APPEND_UTF8 (&item, "rule", rule);
      if (rows[i].next == INT64_MIN) {
         BSON_APPEND_NULL (&item, "next_run");
      } else {
         BSON_APPEND_DATE_TIME (&item, "next_run", rows[i].next);
      }
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);
   BSON_APPEND_BOOL (reply, "more", more);
   ok = true;

cleanup:
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   bson_free (rows);
   mt_admin_docs_destroy (&tasks);
   bson_destroy (&filter);
   bson_destroy (or);
   bson_destroy (pipeline);
   return ok;
}

/* The expireAfterSeconds of the index mtask_ttl on `collection`, in
 * *seconds; -1 when there is none. */
static bool
ttl_read (mongoc_client_t *client, const char *db, const char *collection, int64_t *seconds, bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
   const bson_t *index;
   bool ok;

   *seconds = -1;
   while (mongoc_cursor_next (cursor, &index)) {
      const char *name = mt_admin_str (index, "name");

      if (name && !strcmp (name, "mtask_ttl")) {
         *seconds = mt_admin_int (index, "expireAfterSeconds", -1);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return ok;
}

bool
mt_admin_retention (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   static const char *const both[] = {MT_TASKS_COLLECTION, MT_COMPLETED_COLLECTION};
   const char *collection = NULL;
   const mt_admin_opt_t spec[] = {
      {"collection", MT_ADMIN_OPT_STRING, &collection},
      {NULL},
   };
   bson_t list, item;
   uint32_t n = 0;
   char key[16];
   bool ok = false;

   if (!mt_admin_begin (reply, opts, spec, error)) {
      goto cleanup;
   }
   if (collection && strcmp (collection, MT_TASKS_COLLECTION) && strcmp (collection, MT_COMPLETED_COLLECTION)) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "option 'collection' must be '%s' or '%s', not '%s'",
                      MT_TASKS_COLLECTION,
                      MT_COMPLETED_COLLECTION,
                      collection);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "retention", &list);
   for (size_t c = 0; c < 2; c++) {
      int64_t seconds;

      if (collection && strcmp (collection, both[c])) {
         continue;
      }
      if (!ttl_read (client, db, both[c], &seconds, error)) {
         bson_append_array_end (reply, &list);
         mt_admin_fail (reply, both[c], NULL);
         goto cleanup;
      }
      bson_append_document_begin (&list, mt_admin_array_key (n++, key), -1, &item);
      BSON_APPEND_UTF8 (&item, "collection", both[c]);
      if (seconds < 0) {
         BSON_APPEND_NULL (&item, "ttl_seconds");
      } else {
         BSON_APPEND_INT64 (&item, "ttl_seconds", seconds);
      }
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);
   ok = true;

cleanup:
   return ok;
}
