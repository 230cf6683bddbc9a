/* The completed-tasks archive (seed 004's completed tasks table) and
 * retention.
 *
 * A move copies the ended task into `completed_tasks` (a replace by _id,
 * so doing it twice leaves one copy) and only then deletes it from
 * `tasks`, and only while it is still ended. A worker that dies between the
 * two leaves the task in both; the next sweep copies it again (the same
 * document) and deletes it. Nothing is lost, and nothing ends up twice. */
#include "mtask-private.h"

#include <string.h>

static const char *const ended_statuses[] = {MT_STATUS_FINISHED, MT_STATUS_FAILED, MT_STATUS_CANCELLED, NULL};

static void
append_status_in (bson_t *filter, const char *const *statuses)
{
   bson_t child, list;
   char key[16];
   const char *k;

   BSON_APPEND_DOCUMENT_BEGIN (filter, "status", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, "$in", &list);
   for (uint32_t i = 0; statuses[i]; i++) {
      bson_uint32_to_string (i, &k, key, sizeof key);
      BSON_APPEND_UTF8 (&list, k, statuses[i]);
   }
   bson_append_array_end (&child, &list);
   bson_append_document_end (filter, &child);
}

/* What may leave `tasks`: ended, not in a staged group (the group deletes
 * its tasks), and not a run whose successor is still to be created. */
static void
append_movable (bson_t *filter, const char *const *statuses)
{
   bson_t child;

   append_status_in (filter, statuses);
   BSON_APPEND_DOCUMENT_BEGIN (filter, "group", &child);
   BSON_APPEND_BOOL (&child, "$exists", false);
   bson_append_document_end (filter, &child);
   BSON_APPEND_DOCUMENT_BEGIN (filter, "next.created", &child);
   BSON_APPEND_BOOL (&child, "$ne", false);
   bson_append_document_end (filter, &child);
}

bool
mt_archive_move (mongoc_client_t *client, const char *db, const bson_value_t *id, bool *moved, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   mongoc_collection_t *completed = mongoc_client_get_collection (client, db, MT_COMPLETED_COLLECTION);
   bson_t filter = BSON_INITIALIZER, doc, *upsert = BCON_NEW ("upsert", BCON_BOOL (true));
   bson_iter_t iter;
   bool found = false, ok;

   *moved = false;
   BSON_APPEND_VALUE (&filter, "_id", id);
   append_movable (&filter, ended_statuses);
   ok = mt_find_one (tasks, &filter, NULL, &doc, &found, error);
   if (ok && found && bson_iter_init_find (&iter, &doc, "status") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      bson_t by_id = BSON_INITIALIZER, gone = BSON_INITIALIZER;

      BSON_APPEND_VALUE (&by_id, "_id", id);
      ok = mongoc_collection_replace_one (completed, &by_id, &doc, upsert, NULL, error);
      if (ok) {
         mt_failpoint ("archive-copied");
         BSON_APPEND_VALUE (&gone, "_id", id);
         BSON_APPEND_UTF8 (&gone, "status", bson_iter_utf8 (&iter, NULL));
         ok = mongoc_collection_delete_one (tasks, &gone, NULL, NULL, error);
         *moved = ok;
      }
      bson_destroy (&by_id);
      bson_destroy (&gone);
   }
   bson_destroy (&doc);
   bson_destroy (&filter);
   bson_destroy (upsert);
   mongoc_collection_destroy (completed);
   mongoc_collection_destroy (tasks);
   return ok;
}

int64_t
mt_archive_sweep (mt_context_t *ctx, mongoc_client_t *client, const bson_t *queues, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   bson_t filter = BSON_INITIALIZER, child;
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}", "limit", BCON_INT64 (500));
   bson_value_t *ids = NULL;
   size_t n = 0, cap = 0;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   int64_t moved = 0;
   bool ok = true;

   BSON_APPEND_DOCUMENT_BEGIN (&filter, "queue", &child);
   BSON_APPEND_ARRAY (&child, "$in", queues);
   bson_append_document_end (&filter, &child);
   append_movable (&filter, ended_statuses);

   /* Read the ids first: moving while the cursor is open would change what
    * it walks over. */
   cursor = mongoc_collection_find_with_opts (tasks, &filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, doc, "_id")) {
         if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = bson_realloc (ids, cap * sizeof *ids);
         }
         bson_value_copy (bson_iter_value (&iter), &ids[n++]);
      }
   }
   if (mongoc_cursor_error (cursor, error)) {
      ok = false;
   }
   mongoc_cursor_destroy (cursor);

   for (size_t i = 0; i < n; i++) {
      bool one = false;

      if (ok) {
         ok = mt_archive_move (client, ctx->db, &ids[i], &one, error);
         moved += one;
      }
      bson_value_destroy (&ids[i]);
   }
   bson_free (ids);
   bson_destroy (opts);
   bson_destroy (&filter);
   mongoc_collection_destroy (tasks);
   return ok ? moved : -1;
}

static bool
retention_collection (const char *collection, bson_error_t *error)
{
   if (collection && (!strcmp (collection, MT_TASKS_COLLECTION) || !strcmp (collection, MT_COMPLETED_COLLECTION))) {
      return true;
   }
   bson_set_error (error,
                   MT_ERROR_CONFIG,
                   MT_CONFIG_ERROR_INVALID,
                   "retention applies to '%s' or '%s', not '%s'",
                   MT_TASKS_COLLECTION,
                   MT_COMPLETED_COLLECTION,
                   collection ? collection : "(none)");
   return false;
}

int64_t
mt_purge (mongoc_client_t *client,
          const char *db,
          const char *collection,
          double older_than_seconds,
          const char *const *statuses,
          bool dry_run,
          bson_error_t *error)
{
   const char *targets[2] = {MT_TASKS_COLLECTION, MT_COMPLETED_COLLECTION};
   int64_t total = 0, cutoff;

   if (collection && !retention_collection (collection, error)) {
      return -1;
   }
   if (!(older_than_seconds >= 0 && older_than_seconds <= 100.0 * 366 * 86400)) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "purge: the age must be 0 to 100 years in seconds");
      return -1;
   }
   for (size_t i = 0; statuses && statuses[i]; i++) {
      if (strcmp (statuses[i], MT_STATUS_FINISHED) && strcmp (statuses[i], MT_STATUS_FAILED) &&
          strcmp (statuses[i], MT_STATUS_CANCELLED)) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "purge: status '%s' is not an ended one; only FINISHED, FAILED and CANCELLED tasks are purged",
                         statuses[i]);
         return -1;
      }
   }
   if (statuses && !statuses[0]) {
      return 0;
   }
   cutoff = mt_now_ms () - (int64_t) (older_than_seconds * 1000.0);

   for (size_t t = 0; t < 2; t++) {
      mongoc_collection_t *coll;
      bson_t filter = BSON_INITIALIZER, child, reply;
      bson_iter_t iter;
      bool ok;

      if (collection && strcmp (collection, targets[t])) {
         continue;
      }
      coll = mongoc_client_get_collection (client, db, targets[t]);
      if (t == 0) {
         append_movable (&filter, statuses ? statuses : ended_statuses);
      } else {
         append_status_in (&filter, statuses ? statuses : ended_statuses);
      }
      BSON_APPEND_DOCUMENT_BEGIN (&filter, "finished", &child);
      BSON_APPEND_DATE_TIME (&child, "$lt", cutoff);
      bson_append_document_end (&filter, &child);

      if (dry_run) {
         int64_t n = mongoc_collection_count_documents (coll, &filter, NULL, NULL, NULL, error);
         ok = n >= 0;
         total += ok ? n : 0;
      } else {
         ok = mongoc_collection_delete_many (coll, &filter, NULL, &reply, error);
         if (ok && bson_iter_init_find (&iter, &reply, "deletedCount")) {
            total += bson_iter_as_int64 (&iter);
         }
         bson_destroy (&reply);
      }
      bson_destroy (&filter);
      mongoc_collection_destroy (coll);
      if (!ok) {
         return -1;
      }
   }
   return total;
}

bool
mt_retention_set (mongoc_client_t *client, const char *db, const char *collection, int64_t seconds, bson_error_t *error)
{
   mongoc_database_t *database;
   bson_t *drop, *create = NULL, reply;
   bson_error_t drop_error;
   bool ok = true;

   if (!retention_collection (collection, error)) {
      return false;
   }
   if (seconds > (int64_t) INT32_MAX) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "retention: %" PRId64 " s is more than MongoDB's TTL allows", seconds);
      return false;
   }
   database = mongoc_client_get_database (client, db);
   /* An index's expiry cannot be changed everywhere (collMod is missing on
    * some servers): drop it and build it again. */
   drop = BCON_NEW ("dropIndexes", collection, "index", "mtask_ttl");
   if (!mongoc_database_write_command_with_opts (database, drop, NULL, &reply, &drop_error)) {
      /* 26: no such collection; 27: no such index. Both mean done. */
      if (drop_error.code != 26 && drop_error.code != 27 && !strstr (drop_error.message, "not found") &&
          !strstr (drop_error.message, "ns not found")) {
         *error = drop_error;
         ok = false;
      }
   }
   bson_destroy (&reply);
   if (ok && seconds >= 0) {
      create = BCON_NEW ("createIndexes", collection, "indexes", "[", "{", "key", "{", "finished", BCON_INT32 (1), "}",
                         "name", "mtask_ttl", "expireAfterSeconds", BCON_INT32 ((int32_t) seconds), "}", "]");
      ok = mongoc_database_write_command_with_opts (database, create, NULL, &reply, error);
      bson_destroy (&reply);
   }
   bson_destroy (create);
   bson_destroy (drop);
   mongoc_database_destroy (database);
   return ok;
}
