/* /metrics in the Prometheus text format (version 0.0.4), from the admin
 * calls: tasks by queue and status, each queue's backlog, failures in the
 * last hour and the age of its oldest due task, workers by state, each
 * live worker's counters (from its registry document: counters that reset
 * when it restarts), locks, pools and their slots in use, groups and
 * synchronizers by status, and how long the scrape took. Every list the
 * admin calls return is bounded (METRICS_LIMIT); one that was cut says so
 * in a comment. */
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

/* The most items a list call reads for a scrape. */
#define METRICS_LIMIT 10000

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

/* Counts documents of array `key` by their `field` text, as one family:
 * the values of `known` (NULL-ended, may be NULL) always, 0 when none
 * has it, so that a series does not vanish when it drops to 0. */
static void
by_field (bson_string_t *s, const bson_t *reply, const char *key, const char *field, const char *name, const char *lname, const char *const *known)
{
   bson_t counts = BSON_INITIALIZER;
   bson_iter_t iter;

   for (size_t k = 0; known && known[k]; k++) {
      bson_append_int64 (&counts, known[k], -1, 0);
   }
   EACH (reply, key, doc)
   {
      const char *value = text (&doc, field);
      if (bson_iter_init_find (&iter, &counts, value)) {
         bson_iter_overwrite_int64 (&iter, bson_iter_int64 (&iter) + 1);
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

/* Says in a comment when the list `key` of `reply` was cut at the limit. */
static void
note_cut (bson_string_t *s, const bson_t *reply, const char *key)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, reply, "more") && BSON_ITER_HOLDS_BOOL (&iter) && bson_iter_bool (&iter)) {
      bson_string_append_printf (s, "# mtask-web: only the first %d %s are counted\n", METRICS_LIMIT, key);
   }
}

/* The counters live workers report in their registry document. */
static void
worker_counters (bson_string_t *s, const bson_t *workers)
{
   static const struct {
      const char *field, *name, *help;
   } counters[] = {
      {"run", "mtask_worker_tasks_run_total", "Tasks the worker ran to an outcome since its process started."},
      {"failed", "mtask_worker_tasks_failed_total", "Tasks the worker ended FAILED since its process started."},
      {"retried", "mtask_worker_tasks_retried_total", "Failed attempts the worker put back for a retry since its process started."},
      {"given_back", "mtask_worker_tasks_given_back_total", "Claimed tasks the worker gave back unstarted since its process started."},
      {"claims", "mtask_worker_claims_total", "Claim round trips the worker made to the server since its process started."},
   };

   for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
      family (s, counters[k].name, "counter", counters[k].help);
      EACH (workers, "workers", doc)
      {
         const char *state = text (&doc, "state");
         bson_iter_t iter, c;

         /* A stopped or lost worker's series ends; its successor starts
          * again from 0, an ordinary counter reset. */
         if (strcmp (state, "running") && strcmp (state, "quiet") && strcmp (state, "stopping")) {
            continue;
         }
         if (!bson_iter_init_find (&iter, &doc, "counters") || !BSON_ITER_HOLDS_DOCUMENT (&iter) ||
             !bson_iter_recurse (&iter, &c) || !bson_iter_find (&c, counters[k].field) || !BSON_ITER_HOLDS_NUMBER (&c)) {
            continue; /* a worker of an older mtask reports none */
         }
         bson_string_append_printf (s, "%s{worker=\"", counters[k].name);
         label (s, text (&doc, "_id"));
         bson_string_append_printf (s, "\"} %" PRId64 "\n", bson_iter_as_int64 (&c));
      }
   }
}

void
web_metrics (web_t *web, web_reply_t *out)
{
   static const char *const states[] = {"running", "quiet", "stopping", "stopped", "lost"};
   static const char *const lock_states[] = {"held", "stale", NULL};
   static const char *const group_states[] = {"pending", "running", "complete", NULL};
   static const char *const sync_states[] = {"stand_by", "running", NULL};
   int64_t start = bson_get_monotonic_time ();
   bson_t stats = BSON_INITIALIZER, workers = BSON_INITIALIZER, locks = BSON_INITIALIZER;
   bson_t slots = BSON_INITIALIZER, groups = BSON_INITIALIZER, syncs = BSON_INITIALIZER;
   bson_t *limit = BCON_NEW ("limit", BCON_INT64 (METRICS_LIMIT));
   bson_error_t error = {0};
   mongoc_client_t *client = mongoc_client_pool_pop (web->pool);
   bson_string_t *s;
   bool ok;

   ok = mt_admin_stats (client, web->db, NULL, &stats, &error);
   ok = ok && mt_admin_workers (client, web->db, limit, &workers, &error);
   ok = ok && mt_admin_locks (client, web->db, limit, &locks, &error);
   ok = ok && mt_admin_slots (client, web->db, limit, &slots, &error);
   ok = ok && mt_admin_groups (client, web->db, limit, &groups, &error);
   ok = ok && mt_admin_syncs (client, web->db, limit, &syncs, &error);
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
      static const char *const kinds[] = {"due", "delayed", "retrying", "running", "failed_last_hour"};
      static const char *const helps[] = {"CREATED and due now", "a first run not due yet", "a retry not due yet",
                                          "WORK_IN_PROGRESS", "ended FAILED in the last hour"};

      for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
         char name[64], help[128];

         snprintf (name, sizeof name, "mtask_queue_%s", kinds[k]);
         snprintf (help, sizeof help, "Tasks of the queue: %s.", helps[k]);
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
   note_cut (s, &workers, "workers");
   for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
      int64_t n = 0;

      EACH (&workers, "workers", doc)
      {
         n += !strcmp (text (&doc, "state"), states[k]);
      }
      bson_string_append_printf (s, "mtask_workers{state=\"%s\"} %" PRId64 "\n", states[k], n);
   }
   worker_counters (s, &workers);
   family (s, "mtask_locks", "gauge", "Account locks by state: held by a run that goes on, or stale.");
   note_cut (s, &locks, "locks");
   by_field (s, &locks, "locks", "state", "mtask_locks", "state", lock_states);
   family (s, "mtask_pool_size", "gauge", "The size of each declared pool.");
   note_cut (s, &slots, "pools and held slots");
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
   note_cut (s, &groups, "groups");
   by_field (s, &groups, "groups", "status", "mtask_groups", "status", group_states);
   family (s, "mtask_synchronizers", "gauge", "Synchronizers by status.");
   note_cut (s, &syncs, "synchronizers");
   by_field (s, &syncs, "synchronizers", "status", "mtask_synchronizers", "status", sync_states);
   family (s, "mtask_scrape_duration_seconds", "gauge", "How long reading these metrics took.");
   bson_string_append_printf (s, "mtask_scrape_duration_seconds %.6f\n",
                              (double) (bson_get_monotonic_time () - start) / 1e6);
   out->status = 200;
   out->len = s->len;
   out->body = bson_string_free (s, false);
   out->mime = "text/plain; version=0.0.4; charset=utf-8";
   out->is_static = false;

cleanup:
   bson_destroy (limit);
   bson_destroy (&stats);
   bson_destroy (&workers);
   bson_destroy (&locks);
   bson_destroy (&slots);
   bson_destroy (&groups);
   bson_destroy (&syncs);
}
