/* Account locks (seed 001): one document per account in `locks`, its _id the
 * account, so the server's unique _id keeps two owners off one account.
 *
 * Taking one account is one upsert filtered on this owner: it matches the
 * owner's own lock, inserts a free account, and fails with a duplicate key
 * when someone else holds it. Then the holder's task is looked up: if that
 * run is over, the lock is taken over with a compare-and-swap on the holder
 * that was seen, so two takers cannot both win. */
#include "mtask-private.h"

#include <stdlib.h>
#include <string.h>

#define MT_ACCOUNT_MAX 256
#define MT_ACCOUNTS_MAX 1000

char **
mt_accounts_normalize (const char *const *accounts, size_t n_accounts, bson_error_t *error)
{
   char **sorted;
   size_t n = 0;

   if (n_accounts > MT_ACCOUNTS_MAX) {
      bson_set_error (error,
                      MT_ERROR_LOCK,
                      MT_LOCK_ERROR_INVALID,
                      "cannot lock %zu accounts at once; the limit is %d",
                      n_accounts,
                      MT_ACCOUNTS_MAX);
      return NULL;
   }
   for (size_t i = 0; i < n_accounts; i++) {
      if (!accounts || !accounts[i] || !accounts[i][0] || strlen (accounts[i]) > MT_ACCOUNT_MAX ||
          !bson_utf8_validate (accounts[i], strlen (accounts[i]), false)) {
         bson_set_error (error,
                         MT_ERROR_LOCK,
                         MT_LOCK_ERROR_INVALID,
                         "account %zu of %zu is not a lockable name: give a non-empty UTF-8 string of at most %d bytes",
                         i + 1,
                         n_accounts,
                         MT_ACCOUNT_MAX);
         return NULL;
      }
   }
   sorted = bson_malloc0 ((n_accounts + 1) * sizeof *sorted);
   for (size_t i = 0; i < n_accounts; i++) {
      sorted[i] = (char *) accounts[i];
   }
   if (n_accounts) {
      qsort (sorted, n_accounts, sizeof *sorted, mt_strcmp_ptr);
   }
   /* A fixed order, and each account once. */
   for (size_t i = 0; i < n_accounts; i++) {
      if (n == 0 || strcmp (sorted[n - 1], sorted[i]) != 0) {
         sorted[n++] = sorted[i];
      }
   }
   for (size_t i = 0; i < n; i++) {
      sorted[i] = bson_strdup (sorted[i]);
   }
   sorted[n] = NULL;
   return sorted;
}

static void
append_owner (bson_t *doc, const mt_lock_owner_t *owner)
{
   BSON_APPEND_VALUE (doc, "task", owner->task_id);
   BSON_APPEND_INT32 (doc, "attempt", owner->attempt);
}

static bool
is_duplicate_key (const bson_error_t *error)
{
   return error->code == 11000 || error->code == 11001;
}

bool
mt_run_is_live (mongoc_client_t *client, const char *db, const bson_t *lock, bool *running, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   bson_t filter = BSON_INITIALIZER;
   bson_iter_t iter;
   int64_t n;

   BSON_APPEND_VALUE (&filter, "_id", bson_iter_init_find (&iter, lock, "task") ? bson_iter_value (&iter) : &(bson_value_t){.value_type = BSON_TYPE_NULL});
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   if (bson_iter_init_find (&iter, lock, "worker_pid") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      BSON_APPEND_UTF8 (&filter, "worker_pid", bson_iter_utf8 (&iter, NULL));
   } else {
      BSON_APPEND_NULL (&filter, "worker_pid");
   }
   BSON_APPEND_INT32 (&filter, "attempts", bson_iter_init_find (&iter, lock, "attempt") ? (int32_t) bson_iter_as_int64 (&iter) : -1);
   n = mongoc_collection_count_documents (tasks, &filter, NULL, NULL, NULL, error);
   bson_destroy (&filter);
   mongoc_collection_destroy (tasks);
   *running = n > 0;
   return n >= 0;
}

static void
busy_error (bson_error_t *error, const char *account, const bson_t *lock)
{
   bson_iter_t iter;
   char task[64] = "?", since[32] = "?";
   const char *worker = "?";

   if (bson_iter_init_find (&iter, lock, "task")) {
      if (BSON_ITER_HOLDS_OID (&iter)) {
         bson_oid_to_string (bson_iter_oid (&iter), task);
      } else if (BSON_ITER_HOLDS_UTF8 (&iter)) {
         bson_strncpy (task, bson_iter_utf8 (&iter, NULL), sizeof task);
      }
   }
   if (bson_iter_init_find (&iter, lock, "worker_pid") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      worker = bson_iter_utf8 (&iter, NULL);
   }
   if (bson_iter_init_find (&iter, lock, "acquired") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      time_t secs = (time_t) (bson_iter_date_time (&iter) / 1000);
      struct tm tm;

      gmtime_r (&secs, &tm);
      strftime (since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
   }
   bson_set_error (error,
                   MT_ERROR_LOCK,
                   MT_LOCK_ERROR_BUSY,
                   "account '%s' is locked by task %s on worker '%s' since %s",
                   account,
                   task,
                   worker,
                   since);
}

/* Takes one account. `*taken` says whether this call took it (false: the
 * owner already held it). */
static bool
acquire_one (mongoc_collection_t *locks,
             mongoc_client_t *client,
             const char *db,
             const mt_lock_owner_t *owner,
             const char *account,
             bool *taken,
             bson_error_t *error)
{
   for (int round = 0; round < 5; round++) {
      bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, child, reply;
      mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new ();
      bson_iter_t iter;
      bool ok;

      BSON_APPEND_UTF8 (&filter, "_id", account);
      append_owner (&filter, owner);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$setOnInsert", &child);
      BSON_APPEND_UTF8 (&child, "worker_pid", owner->worker_id);
      BSON_APPEND_DATE_TIME (&child, "acquired", mt_now_ms ());
      bson_append_document_end (&update, &child);
      mongoc_find_and_modify_opts_set_update (opts, &update);
      mongoc_find_and_modify_opts_set_flags (opts, MONGOC_FIND_AND_MODIFY_UPSERT);
      ok = mongoc_collection_find_and_modify_with_opts (locks, &filter, opts, &reply, error);
      mongoc_find_and_modify_opts_destroy (opts);
      bson_destroy (&filter);
      bson_destroy (&update);
      if (ok) {
         /* The document before: null when the upsert inserted it. */
         *taken = !(bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter));
         bson_destroy (&reply);
         return true;
      }
      bson_destroy (&reply);
      if (!is_duplicate_key (error)) {
         return false;
      }

      /* Someone else's. Still running? */
      bson_t by_id = BSON_INITIALIZER;
      mongoc_cursor_t *cursor;
      const bson_t *found;
      bson_t *holder = NULL;
      bool running;

      BSON_APPEND_UTF8 (&by_id, "_id", account);
      cursor = mongoc_collection_find_with_opts (locks, &by_id, NULL, NULL);
      if (mongoc_cursor_next (cursor, &found)) {
         holder = bson_copy (found);
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
      bson_destroy (&by_id);
      if (!ok || !holder) {
         if (holder) {
            bson_destroy (holder);
         }
         if (!ok) {
            return false;
         }
         continue; /* released meanwhile: try again */
      }
      if (!mt_run_is_live (client, db, holder, &running, error)) {
         bson_destroy (holder);
         return false;
      }
      if (running) {
         busy_error (error, account, holder);
         bson_destroy (holder);
         return false;
      }

      /* A lock of a run that is over: take it over, only if it is still
       * exactly the lock that was seen. */
      {
         bson_t cas = BSON_INITIALIZER, set = BSON_INITIALIZER, fields;
         bson_iter_t it;
         int64_t matched = 0;

         BSON_APPEND_UTF8 (&cas, "_id", account);
         if (bson_iter_init (&it, holder)) {
            while (bson_iter_next (&it)) {
               if (strcmp (bson_iter_key (&it), "_id") != 0) {
                  BSON_APPEND_VALUE (&cas, bson_iter_key (&it), bson_iter_value (&it));
               }
            }
         }
         BSON_APPEND_DOCUMENT_BEGIN (&set, "$set", &fields);
         append_owner (&fields, owner);
         BSON_APPEND_UTF8 (&fields, "worker_pid", owner->worker_id);
         BSON_APPEND_DATE_TIME (&fields, "acquired", mt_now_ms ());
         bson_append_document_end (&set, &fields);
         ok = mongoc_collection_update_one (locks, &cas, &set, NULL, &reply, error);
         if (ok && bson_iter_init_find (&it, &reply, "modifiedCount")) {
            matched = bson_iter_as_int64 (&it);
         }
         bson_destroy (&reply);
         bson_destroy (&cas);
         bson_destroy (&set);
         bson_destroy (holder);
         if (!ok) {
            return false;
         }
         if (matched == 1) {
            *taken = true;
            return true;
         }
         /* Someone else changed it first: look again. */
      }
   }
   bson_set_error (error,
                   MT_ERROR_LOCK,
                   MT_LOCK_ERROR_BUSY,
                   "account '%s' changed hands five times while being locked; try again later",
                   account);
   return false;
}

static bool
release_in (mongoc_collection_t *locks, const mt_lock_owner_t *owner, char *const *accounts, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, child, list;
   char key[16];
   const char *k;
   bool ok;

   BSON_APPEND_DOCUMENT_BEGIN (&filter, "_id", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, "$in", &list);
   for (uint32_t i = 0; accounts[i]; i++) {
      bson_uint32_to_string (i, &k, key, sizeof key);
      BSON_APPEND_UTF8 (&list, k, accounts[i]);
   }
   bson_append_array_end (&child, &list);
   bson_append_document_end (&filter, &child);
   append_owner (&filter, owner);
   ok = mongoc_collection_delete_many (locks, &filter, NULL, NULL, error);
   bson_destroy (&filter);
   return ok;
}

bool
mt_locks_acquire_sorted (mongoc_client_t *client,
                         const char *db,
                         const mt_lock_owner_t *owner,
                         char *const *accounts,
                         char ***newly,
                         bson_error_t *error)
{
   mongoc_collection_t *locks = mongoc_client_get_collection (client, db, MT_LOCKS_COLLECTION);
   size_t n = 0, n_taken = 0;
   char **taken;
   bool ok = true;

   while (accounts[n]) {
      n++;
   }
   taken = bson_malloc0 ((n + 1) * sizeof *taken);
   for (size_t i = 0; i < n; i++) {
      bool took = false;

      if (!acquire_one (locks, client, db, owner, accounts[i], &took, error)) {
         ok = false;
         break;
      }
      if (took) {
         taken[n_taken++] = bson_strdup (accounts[i]);
      }
   }
   if (!ok && n_taken) {
      /* All or nothing: give back what this call took. If even that fails,
       * the locks are of a run that is about to end, and the next taker
       * takes them over. */
      bson_error_t ignored;
      release_in (locks, owner, taken, &ignored);
   }
   mongoc_collection_destroy (locks);
   if (ok && newly) {
      *newly = taken;
   } else {
      mt_strv_free (taken);
   }
   return ok;
}

static bool
list_held (mongoc_collection_t *locks, const mt_lock_owner_t *owner, bson_t *held, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, child;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_iter_t iter;
   uint32_t i = 0;
   bool ok;

   append_owner (&filter, owner);
   BSON_APPEND_DOCUMENT_BEGIN (&opts, "sort", &child);
   BSON_APPEND_INT32 (&child, "_id", 1);
   bson_append_document_end (&opts, &child);
   bson_init (held);
   cursor = mongoc_collection_find_with_opts (locks, &filter, &opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      if (bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         char key[16];
         const char *k;

         bson_uint32_to_string (i++, &k, key, sizeof key);
         BSON_APPEND_UTF8 (held, k, bson_iter_utf8 (&iter, NULL));
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   bson_destroy (&opts);
   if (!ok) {
      bson_destroy (held);
      bson_init (held);
   }
   return ok;
}

bool
mt_locks_acquire (mongoc_client_t *client,
                  const char *db,
                  const mt_lock_owner_t *owner,
                  const char *const *accounts,
                  size_t n_accounts,
                  bson_t *held,
                  bson_error_t *error)
{
   char **sorted = mt_accounts_normalize (accounts, n_accounts, error);
   bool ok;

   if (!sorted) {
      return false;
   }
   ok = mt_locks_acquire_sorted (client, db, owner, sorted, NULL, error);
   mt_strv_free (sorted);
   if (ok && held) {
      mongoc_collection_t *locks = mongoc_client_get_collection (client, db, MT_LOCKS_COLLECTION);
      ok = list_held (locks, owner, held, error);
      mongoc_collection_destroy (locks);
   }
   return ok;
}

bool
mt_locks_release_sorted (mongoc_client_t *client,
                         const char *db,
                         const mt_lock_owner_t *owner,
                         char *const *accounts,
                         bson_error_t *error)
{
   mongoc_collection_t *locks;
   bool ok;

   if (!accounts[0]) {
      return true;
   }
   locks = mongoc_client_get_collection (client, db, MT_LOCKS_COLLECTION);
   ok = release_in (locks, owner, accounts, error);
   mongoc_collection_destroy (locks);
   return ok;
}

bool
mt_locks_release (mongoc_client_t *client,
                  const char *db,
                  const mt_lock_owner_t *owner,
                  const char *const *accounts,
                  size_t n_accounts,
                  bson_error_t *error)
{
   char **sorted = mt_accounts_normalize (accounts, n_accounts, error);
   bool ok = sorted && mt_locks_release_sorted (client, db, owner, sorted, error);

   mt_strv_free (sorted);
   return ok;
}

int64_t
mt_locks_release_all (mongoc_client_t *client, const char *db, const mt_lock_owner_t *owner, bson_error_t *error)
{
   mongoc_collection_t *locks = mongoc_client_get_collection (client, db, MT_LOCKS_COLLECTION);
   bson_t filter = BSON_INITIALIZER, reply;
   bson_iter_t iter;
   int64_t n = -1;

   append_owner (&filter, owner);
   if (mongoc_collection_delete_many (locks, &filter, NULL, &reply, error)) {
      n = bson_iter_init_find (&iter, &reply, "deletedCount") ? bson_iter_as_int64 (&iter) : 0;
   }
   bson_destroy (&reply);
   bson_destroy (&filter);
   mongoc_collection_destroy (locks);
   return n;
}
