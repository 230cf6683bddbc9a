/* Admin API: the workers' registry. Each worker's state is judged here from
 * the age of its heartbeat against its lease, on the server's clock, not
 * taken from what it last wrote (a killed worker writes nothing more); the
 * tasks it runs are read from `tasks`. Quiet and stop are commands left in
 * the worker's registry document, which the worker reads back with its
 * next heartbeat, so they work from any machine. */
#include "admin-private.h"

#include <string.h>

const char *
mt_admin_worker_state (const bson_t *doc, int64_t now_ms, int64_t *age_ms)
{
   bson_iter_t iter;
   const char *status = mt_admin_str (doc, "status");
   double lease_s = 0;

   *age_ms = -1;
   if (bson_iter_init_find (&iter, doc, "lease_seconds") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      lease_s = bson_iter_as_double (&iter);
   }
   if (lease_s <= 0) {
      lease_s = MT_ADMIN_DEFAULT_LEASE_MS / 1000.0;
   }
   if (now_ms && bson_iter_init_find (&iter, doc, "heartbeat") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      *age_ms = BSON_MAX (0, now_ms - bson_iter_date_time (&iter));
   }
   if (status && !strcmp (status, "stopped")) {
      return "stopped";
   }
   if (*age_ms < 0 || (double) *age_ms > lease_s * 1000.0) {
      return "lost";
   }
   if (status && (!strcmp (status, "quiet") || !strcmp (status, "stopping"))) {
      return status;
   }
   return "running";
}

bool
mt_admin_worker_docs (mongoc_client_t *client, const char *db, const char *id, int64_t limit, mt_admin_docs_t *docs, int64_t *now_ms, bson_error_t *error)
{
   mongoc_collection_t *workers = mongoc_client_get_collection (client, db, MT_WORKERS_COLLECTION);
   bson_t *pipeline = id ? BCON_NEW ("pipeline",
                                     "[",
                                     "{",
                                     "$match",
                                     "{",
                                     "_id",
                                     BCON_UTF8 (id),
                                     "}",
                                     "}",
                                     "{",
                                     "$addFields",
                                     "{",
                                     "mt_now",
                                     "$$NOW",
                                     "}",
                                     "}",
                                     "]")
                         : BCON_NEW ("pipeline",
                                     "[",
                                     "{",
                                     "$addFields",
                                     "{",
                                     "mt_now",
                                     "$$NOW",
                                     "}",
                                     "}",
                                     "{",
                                     "$sort",
                                     "{",
                                     "_id",
                                     BCON_INT32 (1),
                                     "}",
                                     "}",
                                     "]");
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_iter_t iter;
   bool ok;

   if (!id && limit > 0) {
      /* A page: sorted and cut on the server. */
      bson_destroy (pipeline);
      pipeline = BCON_NEW ("pipeline",
                           "[",
                           "{", "$sort", "{", "_id", BCON_INT32 (1), "}", "}",
                           "{", "$limit", BCON_INT64 (limit + 1), "}",
                           "{", "$addFields", "{", "mt_now", "$$NOW", "}", "}",
                           "]");
   }
   cursor = mongoc_collection_aggregate (workers, MONGOC_QUERY_NONE, pipeline, NULL, NULL);

   while (mongoc_cursor_next (cursor, &doc)) {
      bson_t *copy = bson_new ();

      if (bson_iter_init_find (&iter, doc, "mt_now") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         *now_ms = bson_iter_date_time (&iter);
      }
      bson_copy_to_excluding_noinit (doc, copy, "mt_now", NULL);
      mt_admin_docs_push (docs, copy);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (pipeline);
   mongoc_collection_destroy (workers);
   return ok;
}

/* The tasks the workers of `docs` run now (WORK_IN_PROGRESS under their
 * ids): one query for the page, not one per worker (each of which would
 * read the collection where no index serves it), at most
 * MT_ADMIN_LIST_MAX in all, sorted by worker then _id. */
static bool
running_read (mongoc_client_t *client, const char *db, const mt_admin_docs_t *docs, mt_admin_docs_t *running, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, in, ids;
   bson_t *opts = BCON_NEW ("projection",
                            "{",
                            "type",
                            BCON_INT32 (1),
                            "queue",
                            BCON_INT32 (1),
                            "started",
                            BCON_INT32 (1),
                            "attempts",
                            BCON_INT32 (1),
                            "worker_pid",
                            BCON_INT32 (1),
                            "}",
                            "sort",
                            "{",
                            "worker_pid",
                            BCON_INT32 (1),
                            "_id",
                            BCON_INT32 (1),
                            "}",
                            "limit",
                            BCON_INT64 (MT_ADMIN_LIST_MAX));
   char key[16];
   bool ok;

   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "worker_pid", &in);
   BSON_APPEND_ARRAY_BEGIN (&in, "$in", &ids);
   for (size_t i = 0; i < docs->len; i++) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, docs->items[i], "_id") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         BSON_APPEND_UTF8 (&ids, mt_admin_array_key ((uint32_t) i, key), bson_iter_utf8 (&iter, NULL));
      }
   }
   bson_append_array_end (&in, &ids);
   bson_append_document_end (&filter, &in);
   ok = !docs->len || mt_admin_docs_read (client, db, MT_TASKS_COLLECTION, &filter, opts, running, error);
   bson_destroy (&filter);
   bson_destroy (opts);
   return ok;
}

/* Appends the tasks of `running` that worker `id` runs as the array
 * "running" of `worker`, without their worker_pid. */
static void
append_running (const mt_admin_docs_t *running, const char *id, bson_t *worker)
{
   bson_t list;
   char key[16];
   uint32_t n = 0;

   BSON_APPEND_ARRAY_BEGIN (worker, "running", &list);
   for (size_t i = 0; i < running->len; i++) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, running->items[i], "worker_pid") && BSON_ITER_HOLDS_UTF8 (&iter) &&
          !strcmp (bson_iter_utf8 (&iter, NULL), id)) {
         bson_t task = BSON_INITIALIZER;

         bson_copy_to_excluding_noinit (running->items[i], &task, "worker_pid", NULL);
         bson_append_document (&list, mt_admin_array_key (n++, key), -1, &task);
         bson_destroy (&task);
      }
   }
   bson_append_array_end (worker, &list);
}

bool
mt_admin_workers (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   mt_admin_docs_t docs = {0}, running = {0};
   int64_t now = 0, limit = 0;
   const mt_admin_opt_t spec[] = {
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   bson_t list, worker;
   char key[16];
   bool more = false, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error) || !mt_admin_list_limit (&limit, MT_ADMIN_LIST_MAX, MT_ADMIN_LIST_DEFAULT, error)) {
      goto cleanup;
   }
   if (!mt_admin_worker_docs (client, db, NULL, limit, &docs, &now, error)) {
      mt_admin_fail (reply, MT_WORKERS_COLLECTION, NULL);
      goto cleanup;
   }
   if (docs.len > (size_t) limit) {
      more = true;
      bson_destroy (docs.items[--docs.len]);
   }
   if (!running_read (client, db, &docs, &running, error)) {
      mt_admin_fail (reply, MT_TASKS_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "workers", &list);
   for (size_t i = 0; i < docs.len; i++) {
      const bson_t *doc = docs.items[i];
      char id_buf[64];
      const char *id = mt_admin_text (doc, "_id", id_buf, sizeof id_buf);
      int64_t age;
      const char *state = mt_admin_worker_state (doc, now, &age);

      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &worker);
      bson_concat (&worker, doc);
      BSON_APPEND_UTF8 (&worker, "state", state);
      if (age >= 0) {
         BSON_APPEND_INT64 (&worker, "heartbeat_age_ms", age);
      }
      append_running (&running, id, &worker);
      bson_append_document_end (&list, &worker);
   }
   bson_append_array_end (reply, &list);
   BSON_APPEND_BOOL (reply, "more", more);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&running);
   mt_admin_docs_destroy (&docs);
   return ok;
}

bool
mt_admin_worker_command (mongoc_client_t *client,
                         const char *db,
                         const char *id,
                         const char *command,
                         const bson_t *opts,
                         bson_t *reply,
                         bson_error_t *error)
{
   int64_t grace = -1, now = 0, age;
   const mt_admin_opt_t spec[] = {
      {"grace", MT_ADMIN_OPT_COUNT, &grace},
      {NULL},
   };
   mt_admin_docs_t docs = {0};
   mongoc_collection_t *workers = NULL;
   bson_t *filter = NULL, update = BSON_INITIALIZER, set, date;
   bson_t result = BSON_INITIALIZER;
   const char *state;
   bool ok = false;

   if (!mt_admin_begin (reply, opts, spec, error)) {
      goto cleanup;
   }
   if (!id || !id[0]) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "give a worker id, as 'mtaskctl workers' lists them");
      goto cleanup;
   }
   if (!command || (strcmp (command, "quiet") && strcmp (command, "stop"))) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "unknown worker command '%s'; give quiet or stop",
                      command ? command : "(null)");
      goto cleanup;
   }
   if (grace >= 0 && strcmp (command, "stop")) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option 'grace' is for stop only");
      goto cleanup;
   }
   if (grace > 24 * 3600) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option 'grace' is out of range; give 0 s to 1 day");
      goto cleanup;
   }
   if (!mt_admin_worker_docs (client, db, id, 0, &docs, &now, error)) {
      mt_admin_fail (reply, MT_WORKERS_COLLECTION, NULL);
      goto cleanup;
   }
   if (!docs.len) {
      mt_admin_not_found (reply,
                          MT_WORKERS_COLLECTION,
                          error,
                          MT_ERROR_CONFIG,
                          MT_CONFIG_ERROR_NOT_FOUND,
                          "no worker '%s' in %s.%s; 'mtaskctl workers' lists them",
                          id,
                          db,
                          MT_WORKERS_COLLECTION);
      goto cleanup;
   }
   state = mt_admin_worker_state (docs.items[0], now, &age);
   if (!strcmp (state, "stopped") || !strcmp (state, "lost")) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "worker '%s' is %s: there is no process to %s%s",
                      id,
                      state,
                      command,
                      !strcmp (state, "lost") ? " (its tasks are taken back when its lease runs out)" : "");
      goto cleanup;
   }

   /* Only while its document is that of the process judged above. */
   filter = BCON_NEW ("_id", BCON_UTF8 (id), "status", "{", "$nin", "[", "stopped", "lost", "]", "}");
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_UTF8 (&set, "command", command);
   if (grace >= 0) {
      BSON_APPEND_INT64 (&set, "grace", grace);
   }
   bson_append_document_end (&update, &set);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
   BSON_APPEND_BOOL (&date, "command_at", true);
   bson_append_document_end (&update, &date);
   workers = mongoc_client_get_collection (client, db, MT_WORKERS_COLLECTION);
   if (!mongoc_collection_update_one (workers, filter, &update, NULL, &result, error)) {
      mt_admin_fail (reply, MT_WORKERS_COLLECTION, NULL);
      goto cleanup;
   }
   if (mt_admin_int (&result, "matchedCount", 0) < 1) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "worker '%s' stopped meanwhile: there is no process to %s",
                      id,
                      command);
      goto cleanup;
   }
   BSON_APPEND_UTF8 (reply, "worker", id);
   BSON_APPEND_UTF8 (reply, "command", command);
   BSON_APPEND_UTF8 (reply, "state", state);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&docs);
   if (filter) {
      bson_destroy (filter);
   }
   bson_destroy (&update);
   bson_destroy (&result);
   mongoc_collection_destroy (workers);
   return ok;
}

/* Whether `array` of `doc` holds the string `value`. */
static bool
array_has (const bson_t *doc, const char *array, const char *value)
{
   bson_iter_t iter, child;

   if (!bson_iter_init_find (&iter, doc, array) || !BSON_ITER_HOLDS_ARRAY (&iter) || !bson_iter_recurse (&iter, &child)) {
      return false;
   }
   while (bson_iter_next (&child)) {
      if (BSON_ITER_HOLDS_UTF8 (&child) && !strcmp (bson_iter_utf8 (&child, NULL), value)) {
         return true;
      }
   }
   return false;
}

bool
mt_admin_worker_serves (const bson_t *doc, int64_t now_ms, const char *queue, const char *type)
{
   int64_t age;

   return !strcmp (mt_admin_worker_state (doc, now_ms, &age), "running") && (!queue || array_has (doc, "queues", queue)) &&
          (!type || array_has (doc, "plugins", type));
}

bool
mt_admin_served (mongoc_client_t *client,
                 const char *db,
                 const char *queue,
                 const char *type,
                 const bson_t *opts,
                 bson_t *reply,
                 bson_error_t *error)
{
   mt_admin_docs_t docs = {0};
   int64_t now = 0, n_queue = 0, n_both = 0;
   bool ok = false;

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!mt_admin_worker_docs (client, db, NULL, 0, &docs, &now, error)) {
      mt_admin_fail (reply, MT_WORKERS_COLLECTION, NULL);
      goto cleanup;
   }
   for (size_t i = 0; i < docs.len; i++) {
      n_queue += mt_admin_worker_serves (docs.items[i], now, queue, NULL);
      n_both += mt_admin_worker_serves (docs.items[i], now, queue, type);
   }
   BSON_APPEND_BOOL (reply, "served", n_both > 0);
   BSON_APPEND_INT64 (reply, "queue_workers", n_queue);
   BSON_APPEND_INT64 (reply, "workers", n_both);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&docs);
   return ok;
}
