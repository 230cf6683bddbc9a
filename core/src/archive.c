/* The completed-tasks archive (seed 004's completed tasks table) and
 * retention.
 *
 * A move copies the ended task into `completed_tasks` (a replace by _id,
 * so doing it twice leaves one copy) and only then deletes it from
 * `tasks`, and only while it is still ended. A worker that dies between the
 * two leaves the task in both; the next sweep copies it again (the same
 * document) and deletes it. Nothing is lost, and nothing ends up twice.
 *
 * One task the sweep cannot move does not hold up the others: the sweep
 * goes on with them. One that can never be moved as it is (a field name
 * the driver refuses to send, a validator or a size limit of the archive)
 * stays in `tasks`, marked with why in `archive_error`, and is not tried
 * again (an operator who fixes it unsets the field); one refused for
 * another reason is tried again by the next sweep. When the database is
 * away the sweep stops. A sweep does what fits in its time and leaves the
 * rest to the next. */
#include "mtask-private.h"

#include <pthread.h>
#include <string.h>

/* Why a task cannot be archived: set on the task, and the sweep leaves it. */
#define MT_ARCHIVE_ERROR_FIELD "archive_error"

/* Tasks that could be neither moved nor marked, kept per process so that
 * the sweep passes over them (and says so once); the oldest give way. */
#define MT_ARCHIVE_SKIP_MAX 64
static struct {
   pthread_mutex_t mutex;
   bson_value_t ids[MT_ARCHIVE_SKIP_MAX];
   size_t n, next;
} skipped = {.mutex = PTHREAD_MUTEX_INITIALIZER};

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

/* Whether `id` is among the tasks this process passes over. */
static bool
skipped_has (const bson_value_t *id)
{
   bool has = false;

   pthread_mutex_lock (&skipped.mutex);
   for (size_t i = 0; i < skipped.n && !has; i++) {
      bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;

      BSON_APPEND_VALUE (&a, "v", &skipped.ids[i]);
      BSON_APPEND_VALUE (&b, "v", id);
      has = bson_equal (&a, &b);
      bson_destroy (&a);
      bson_destroy (&b);
   }
   pthread_mutex_unlock (&skipped.mutex);
   return has;
}

static void
skipped_add (const bson_value_t *id)
{
   pthread_mutex_lock (&skipped.mutex);
   if (skipped.n < MT_ARCHIVE_SKIP_MAX) {
      bson_value_copy (id, &skipped.ids[skipped.n++]);
   } else {
      bson_value_destroy (&skipped.ids[skipped.next]);
      bson_value_copy (id, &skipped.ids[skipped.next]);
      skipped.next = (skipped.next + 1) % MT_ARCHIVE_SKIP_MAX;
   }
   pthread_mutex_unlock (&skipped.mutex);
}

/* Appends {_id: {$nin: [what this process passes over]}}, if any. */
static void
append_not_skipped (bson_t *filter)
{
   bson_t child, list;

   pthread_mutex_lock (&skipped.mutex);
   if (skipped.n > 0) {
      BSON_APPEND_DOCUMENT_BEGIN (filter, "_id", &child);
      BSON_APPEND_ARRAY_BEGIN (&child, "$nin", &list);
      for (size_t i = 0; i < skipped.n; i++) {
         char key[16];
         const char *k;

         bson_uint32_to_string ((uint32_t) i, &k, key, sizeof key);
         BSON_APPEND_VALUE (&list, k, &skipped.ids[i]);
      }
      bson_append_array_end (&child, &list);
      bson_append_document_end (filter, &child);
   }
   pthread_mutex_unlock (&skipped.mutex);
}

/* Whether a move failed because of the document itself, so that trying
 * again can never work: the driver refuses to send it (a field name with a
 * '.' or a leading '$', which servers since 5.0 store), or the server
 * refuses it (a validator, a size or field-name limit). */
static bool
refused_for_good (const bson_error_t *error)
{
   static const uint32_t codes[] = {
      52,    /* DollarPrefixedFieldName */
      57,    /* DottedFieldName */
      121,   /* DocumentValidationFailure */
      10334, /* BSONObjectTooLarge */
      17419, /* a document grown past the size limit */
      17280, /* KeyTooLong */
   };

   if (error->domain == MONGOC_ERROR_BSON || (error->domain == MONGOC_ERROR_COMMAND && error->code == MONGOC_ERROR_COMMAND_INVALID_ARG)) {
      return true;
   }
   if (error->domain == MONGOC_ERROR_SERVER || error->domain == MONGOC_ERROR_COLLECTION || error->domain == MONGOC_ERROR_QUERY) {
      for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
         if (error->code == codes[i]) {
            return true;
         }
      }
   }
   return false;
}

/* A task that cannot be moved for good: marked with why (then no sweep
 * tries it again), or, when even that fails, passed over by this process.
 * Said once either way. */
static void
set_aside (mt_context_t *ctx, mongoc_collection_t *tasks, const bson_value_t *id, const bson_error_t *why)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, err;
   bson_error_t error;
   char id_str[64];

   mt_task_id_string (id, id_str, sizeof id_str);
   BSON_APPEND_VALUE (&filter, "_id", id);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_DOCUMENT_BEGIN (&set, MT_ARCHIVE_ERROR_FIELD, &err);
   BSON_APPEND_INT32 (&err, "domain", (int32_t) why->domain);
   BSON_APPEND_INT32 (&err, "code", (int32_t) why->code);
   BSON_APPEND_UTF8 (&err, "message", why->message);
   BSON_APPEND_DATE_TIME (&err, "at", mt_server_now (ctx));
   bson_append_document_end (&set, &err);
   bson_append_document_end (&update, &set);
   if (mongoc_collection_update_one (tasks, &filter, &update, NULL, NULL, &error)) {
      mt_log (ctx,
              MT_LOG_WARNING,
              "task %s cannot be archived (%s); it stays in '%s', marked with why in '%s'; fix it and unset that field, or delete it",
              id_str,
              why->message,
              MT_TASKS_COLLECTION,
              MT_ARCHIVE_ERROR_FIELD);
   } else {
      skipped_add (id);
      mt_log (ctx,
              MT_LOG_WARNING,
              "task %s cannot be archived (%s), nor marked so (%s); this worker passes over it until it restarts",
              id_str,
              why->message,
              error.message);
   }
   bson_destroy (&update);
   bson_destroy (&filter);
}

int64_t
mt_archive_sweep (mt_context_t *ctx, mongoc_client_t *client, const bson_t *queues, bson_error_t *error)
{
   return mt_archive_sweep_until (ctx, client, queues, 0, error);
}

int64_t
mt_archive_sweep_until (mt_context_t *ctx, mongoc_client_t *client, const bson_t *queues, int64_t deadline_us, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   bson_t filter = BSON_INITIALIZER, child;
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "}", "limit", BCON_INT64 (500));
   bson_value_t *ids = NULL;
   size_t n = 0, cap = 0;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   int64_t moved = 0;
   bool ok = true, away = false;

   BSON_APPEND_DOCUMENT_BEGIN (&filter, "queue", &child);
   BSON_APPEND_ARRAY (&child, "$in", queues);
   bson_append_document_end (&filter, &child);
   append_movable (&filter, ended_statuses);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, MT_ARCHIVE_ERROR_FIELD, &child);
   BSON_APPEND_BOOL (&child, "$exists", false);
   bson_append_document_end (&filter, &child);
   append_not_skipped (&filter);
   mt_failpoint_pause ("archive-sweep");

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
      bson_error_t why;

      if (!away && !mt_deadline_passed (deadline_us) && !skipped_has (&ids[i])) {
         if (mt_archive_move (client, ctx->db, &ids[i], &one, &why)) {
            moved += one;
         } else if (mt_error_is_transient (&why, NULL)) {
            /* The database is away, or failing over: the next sweep
             * tries again. */
            *error = why;
            ok = false;
            away = true;
         } else if (refused_for_good (&why)) {
            set_aside (ctx, tasks, &ids[i], &why);
         } else {
            /* Refused this time: the others are still tried, and the
             * sweep reports it; the next sweep tries this one again. */
            *error = why;
            ok = false;
         }
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
