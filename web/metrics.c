/* /metrics in the Prometheus text format (version 0.0.4), from the admin
 * calls: tasks by queue and status, each queue's backlog and the age of its
 * oldest due task, workers by state, locks, pools and their slots in use,
 * groups and synchronizers by status, and how long the scrape took. */
#include "web.h"

#include <string.h>

/* A label value, escaped as the format says: backslash, quote, newline. */
static void
label (bson_string_t *s, const char *value)
{
   for (const char *p = value; *p; p++) {
      if (*p == '\\') {
         bson_string_append (s, "\\\\");
      } else if (*p == '"') {
         bson_string_append (s, "\\\"");
      } else if (*p == '\n') {
         bson_string_append (s, "\\n");
      } else {
         bson_string_append_c (s, *p);
      }
   }
}

static void
family (bson_string_t *s, const char *name, const char *type, const char *help)
{
   bson_string_append_printf (s, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A field as text for a label: a string as it is, else "(none)". */
static const char *
text (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_UTF8 (&iter)) {
      return bson_iter_utf8 (&iter, NULL);
   }
   return "(none)";
}

static int64_t
number (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_NUMBER (&iter)) {
      return bson_iter_as_int64 (&iter);
   }
   return 0;
}

/* The array `key` of `reply`, or NULL when it has none. */
static bson_iter_t *
array_iter (bson_iter_t *iter, const bson_t *reply, const char *key)
{
   bson_iter_t top;

   if (bson_iter_init_find (&top, reply, key) && BSON_ITER_HOLDS_ARRAY (&top) && bson_iter_recurse (&top, iter)) {
      return iter;
   }
   return NULL;
}

/* The array's next document in `doc` (static, not to be destroyed). */
static bool
next_doc (bson_iter_t *iter, bson_t *doc)
{
   while (bson_iter_next (iter)) {
      const uint8_t *data;
      uint32_t len;

      if (BSON_ITER_HOLDS_DOCUMENT (iter)) {
         bson_iter_document (iter, &len, &data);
         if (bson_init_static (doc, data, len)) {
            return true;
         }
      }
   }
   return false;
}

/* For each document `doc` of the array `key` of `reply`. */
#define EACH(reply, key, doc)                                                                         \
   for (bson_iter_t arr_, *once_ = array_iter (&arr_, (reply), (key)); once_; once_ = NULL)        \
      for (bson_t doc; next_doc (once_, &doc);)

/* Counts documents of array `key` by their `field` text, as one family. */
static void
by_field (bson_string_t *s, const bson_t *reply, const char *key, const char *field, const char *name, const char *lname)
{
   bson_t counts = BSON_INITIALIZER;
   bson_iter_t iter;

   EACH (reply, key, doc)
   {
      const char *value = text (&doc, field);
      int64_t n = bson_iter_init_find (&iter, &counts, value) ? bson_iter_int64 (&iter) : 0;

      if (n) {
         bson_iter_overwrite_int64 (&iter, n + 1);
      } else {
         bson_append_int64 (&counts, value, -1, 1);
      }
   }
   bson_iter_init (&iter, &counts);
   while (bson_iter_next (&iter)) {
      bson_string_append_printf (s, "%s{%s=\"", name, lname);
      label (s, bson_iter_key (&iter));
      bson_string_append_printf (s, "\"} %" PRId64 "\n", bson_iter_int64 (&iter));
   }
   bson_destroy (&counts);
}

void
web_metrics (web_t *web, web_reply_t *out)
{
   static const char *const states[] = {"running", "quiet", "stopping", "stopped", "lost"};
   int64_t start = bson_get_monotonic_time ();
   bson_t stats = BSON_INITIALIZER, workers = BSON_INITIALIZER, locks = BSON_INITIALIZER;
   bson_t slots = BSON_INITIALIZER, groups = BSON_INITIALIZER, syncs = BSON_INITIALIZER;
   bson_error_t error = {0};
   mongoc_client_t *client = mongoc_client_pool_pop (web->pool);
   bson_string_t *s;
   bool ok;

   ok = mt_admin_stats (client, web->db, NULL, &stats, &error);
   ok = ok && mt_admin_workers (client, web->db, NULL, &workers, &error);
   ok = ok && mt_admin_locks (client, web->db, NULL, &locks, &error);
   ok = ok && mt_admin_slots (client, web->db, NULL, &slots, &error);
   ok = ok && mt_admin_groups (client, web->db, NULL, &groups, &error);
   ok = ok && mt_admin_syncs (client, web->db, NULL, &syncs, &error);
   mongoc_client_pool_push (web->pool, client);
   if (!ok) {
      out->status = web_error_status (&error) == 503 ? 503 : 500;
      out->mime = "text/plain; charset=utf-8";
      out->is_static = false;
      out->body = bson_strdup_printf ("# mtask-web: the database read failed: %s\n", error.message);
      out->len = strlen (out->body);
      goto cleanup;
   }

   s = bson_string_new (NULL);
   family (s, "mtask_tasks", "gauge", "Tasks in the tasks collection by queue and status.");
   EACH (&stats, "by_queue", doc)
   {
      bson_string_append (s, "mtask_tasks{queue=\"");
      label (s, text (&doc, "queue"));
      bson_string_append (s, "\",status=\"");
      label (s, text (&doc, "status"));
      bson_string_append_printf (s, "\"} %" PRId64 "\n", number (&doc, "n"));
   }
   {
      static const char *const kinds[] = {"due", "delayed", "retrying", "running"};

      for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
         char name[64], help[128];

         snprintf (name, sizeof name, "mtask_queue_%s", kinds[k]);
         snprintf (help, sizeof help, "Tasks of the queue's backlog: %s.", kinds[k]);
         family (s, name, "gauge", help);
         EACH (&stats, "backlog", doc)
         {
            bson_string_append_printf (s, "%s{queue=\"", name);
            label (s, text (&doc, "queue"));
            bson_string_append_printf (s, "\"} %" PRId64 "\n", number (&doc, kinds[k]));
         }
      }
   }
   family (s, "mtask_queue_oldest_due_age_seconds", "gauge", "How long the queue's oldest due task has been due.");
   EACH (&stats, "backlog", doc)
   {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, &doc, "oldest_due_age_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
         bson_string_append (s, "mtask_queue_oldest_due_age_seconds{queue=\"");
         label (s, text (&doc, "queue"));
         bson_string_append_printf (s, "\"} %.3f\n", (double) bson_iter_as_int64 (&iter) / 1000.0);
      }
   }
   family (s, "mtask_workers", "gauge", "Workers in the registry by state, judged from their heartbeat.");
   for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
      int64_t n = 0;

      EACH (&workers, "workers", doc)
      {
         n += !strcmp (text (&doc, "state"), states[k]);
      }
      bson_string_append_printf (s, "mtask_workers{state=\"%s\"} %" PRId64 "\n", states[k], n);
   }
   family (s, "mtask_locks", "gauge", "Account locks by state: held by a run that goes on, or stale.");
   by_field (s, &locks, "locks", "state", "mtask_locks", "state");
   family (s, "mtask_pool_size", "gauge", "The size of each declared pool.");
   EACH (&slots, "pools", doc)
   {
      bson_string_append (s, "mtask_pool_size{pool=\"");
      label (s, text (&doc, "_id"));
      bson_string_append_printf (s, "\"} %" PRId64 "\n", number (&doc, "size"));
   }
   family (s, "mtask_pool_slots_used", "gauge", "Slots of each declared pool held by running tasks.");
   EACH (&slots, "pools", doc)
   {
      bson_string_append (s, "mtask_pool_slots_used{pool=\"");
      label (s, text (&doc, "_id"));
      bson_string_append_printf (s, "\"} %" PRId64 "\n", number (&doc, "in_use"));
   }
   family (s, "mtask_groups", "gauge", "Staged groups by status.");
   by_field (s, &groups, "groups", "status", "mtask_groups", "status");
   family (s, "mtask_synchronizers", "gauge", "Synchronizers by status.");
   by_field (s, &syncs, "synchronizers", "status", "mtask_synchronizers", "status");
   family (s, "mtask_scrape_duration_seconds", "gauge", "How long reading these metrics took.");
   bson_string_append_printf (s, "mtask_scrape_duration_seconds %.6f\n",
                              (double) (bson_get_monotonic_time () - start) / 1e6);
   out->status = 200;
   out->len = s->len;
   out->body = bson_string_free (s, false);
   out->mime = "text/plain; version=0.0.4; charset=utf-8";
   out->is_static = false;

cleanup:
   bson_destroy (&stats);
   bson_destroy (&workers);
   bson_destroy (&locks);
   bson_destroy (&slots);
   bson_destroy (&groups);
   bson_destroy (&syncs);
}
