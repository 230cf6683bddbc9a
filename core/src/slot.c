/* Concurrency slots (seed 002): `pools` {_id: name, size, timeout_seconds}
 * and one document per slot in `slots` {_id: "<pool>#<i>", pool, index,
 * task, worker_pid, attempt, acquired, keepalive}. A claimed task of a pool
 * runs only once it holds a slot of index below the pool's size. Taking a
 * free slot is one conditional update on `task: null`; taking back a slot
 * whose holder's run is over, or whose keepalive is older than the pool's
 * timeout, is a compare-and-swap on the holder seen. So a slot has one
 * holder, and a pool never runs more tasks than it has slots. */
#include "mtask-private.h"

#include <string.h>

static bool
slot_error (bson_error_t *error, uint32_t code, const char *format, const char *what)
{
   bson_set_error (error, MT_ERROR_CONFIG, code, format, what);
   return false;
}

bool
mt_pool_set (mongoc_client_t *client, const char *db, const char *name, int32_t size, double timeout_seconds, bson_error_t *error)
{
   mongoc_collection_t *pools, *slots;
   bson_t *filter, *update, *opts;
   bool ok;

   if (!name || !name[0] || strchr (name, '#') || strlen (name) > 200) {
      return slot_error (error, MT_CONFIG_ERROR_INVALID, "pool name '%s' must be 1 to 200 bytes, without '#'", name ? name : "");
   }
   if (size < 1 || size > 100000 || !(timeout_seconds <= 86400.0 * 366)) {
      return slot_error (error, MT_CONFIG_ERROR_INVALID, "pool '%s': size must be 1 to 100000 and timeout at most 366 days", name);
   }
   pools = mongoc_client_get_collection (client, db, MT_POOLS_COLLECTION);
   slots = mongoc_client_get_collection (client, db, MT_SLOTS_COLLECTION);
   filter = BCON_NEW ("_id", name);
   /* A negative timeout keeps the pool's own (0 for a new pool). */
   update = timeout_seconds >= 0
               ? BCON_NEW ("$set", "{", "size", BCON_INT32 (size), "timeout_seconds", BCON_DOUBLE (timeout_seconds), "}")
               : BCON_NEW ("$set", "{", "size", BCON_INT32 (size), "}", "$setOnInsert", "{", "timeout_seconds", BCON_DOUBLE (0), "}");
   opts = BCON_NEW ("upsert", BCON_BOOL (true));
   ok = mongoc_collection_update_one (pools, filter, update, opts, NULL, error);
   bson_destroy (filter);
   bson_destroy (update);
   /* Every slot below the size exists; those above stay, unused once free. */
   for (int32_t i = 0; ok && i < size; i++) {
      char id[300];

      bson_snprintf (id, sizeof id, "%s#%d", name, i);
      filter = BCON_NEW ("_id", id);
      update = BCON_NEW ("$setOnInsert", "{", "pool", name, "index", BCON_INT32 (i), "task", BCON_NULL, "}");
      ok = mongoc_collection_update_one (slots, filter, update, opts, NULL, error);
      if (!ok && error->code == 11000) {
         ok = true; /* created by someone else meanwhile */
      }
      bson_destroy (filter);
      bson_destroy (update);
   }
   bson_destroy (opts);
   mongoc_collection_destroy (pools);
   mongoc_collection_destroy (slots);
   return ok;
}

/* Fails the run that holds a timed-out slot: CREATED to retry, or FAILED on
 * its last attempt; only that very run (worker and attempt). */
static bool
time_out_holder (mt_context_t *ctx, mongoc_client_t *client, const bson_t *slot, double timeout, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   bson_t filter = BSON_INITIALIZER, task;
   bson_iter_t iter;
   int32_t attempt = 0, max;
   const char *type = NULL;
   bson_error_t why;
   bool ok = true, found = false;

   if (!bson_iter_init_find (&iter, slot, "task")) {
      mongoc_collection_destroy (tasks);
      return true;
   }
   BSON_APPEND_VALUE (&filter, "_id", bson_iter_value (&iter));
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   if (bson_iter_init_find (&iter, slot, "worker_pid")) {
      BSON_APPEND_VALUE (&filter, "worker_pid", bson_iter_value (&iter));
   }
   if (bson_iter_init_find (&iter, slot, "attempt")) {
      attempt = (int32_t) bson_iter_as_int64 (&iter);
      BSON_APPEND_VALUE (&filter, "attempts", bson_iter_value (&iter));
   }
   {
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, &filter, NULL, NULL);
      const bson_t *doc;

      bson_init (&task);
      if (mongoc_cursor_next (cursor, &doc)) {
         bson_destroy (&task);
         bson_copy_to (doc, &task);
         found = true;
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
   }
   if (ok && found) {
      int32_t task_max = 0;
      bson_t update = BSON_INITIALIZER, set, date;

      if (bson_iter_init_find (&iter, &task, "max_attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
         task_max = (int32_t) bson_iter_as_int64 (&iter);
      }
      if (bson_iter_init_find (&iter, &task, "type") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         type = bson_iter_utf8 (&iter, NULL);
      }
      max = mt_retry_max_attempts (ctx, type, task_max);
      bson_set_error (&why,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_TIMEOUT,
                      "timed out: no keepalive for %g s, its pool's timeout; its slot was taken back",
                      timeout);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
      BSON_APPEND_UTF8 (&set, "status", attempt >= max ? MT_STATUS_FAILED : MT_STATUS_CREATED);
      BSON_APPEND_NULL (&set, "worker_pid");
      BSON_APPEND_INT32 (&set, "max_attempts", max);
      mt_append_error (&set, "error", &why);
      bson_append_document_end (&update, &set);
      if (attempt >= max) {
         BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
         BSON_APPEND_BOOL (&date, "finished", true);
         bson_append_document_end (&update, &date);
      }
      mt_append_error_history (&update, &why, attempt);
      ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, NULL, error);
      bson_destroy (&update);
      if (ok && attempt >= max) {
         ok = mt_group_task_ended_doc (client, ctx->db, &task, error);
      }
   }
   bson_destroy (&task);
   bson_destroy (&filter);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* Frees a slot, only if it still has the holder seen. */
static bool
free_slot_cas (mongoc_collection_t *slots, const bson_t *slot, const mt_lock_owner_t *to, bool *done, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, reply, *update;
   bson_iter_t iter;
   bool ok;

   BSON_APPEND_VALUE (&filter, "_id", bson_iter_init_find (&iter, slot, "_id") ? bson_iter_value (&iter) : &(bson_value_t){.value_type = BSON_TYPE_NULL});
   BSON_APPEND_VALUE (&filter, "task", bson_iter_init_find (&iter, slot, "task") ? bson_iter_value (&iter) : &(bson_value_t){.value_type = BSON_TYPE_NULL});
   if (bson_iter_init_find (&iter, slot, "attempt")) {
      BSON_APPEND_VALUE (&filter, "attempt", bson_iter_value (&iter));
   }
   if (bson_iter_init_find (&iter, slot, "worker_pid")) {
      BSON_APPEND_VALUE (&filter, "worker_pid", bson_iter_value (&iter));
   }
   if (to) {
      bson_t set = BSON_INITIALIZER, child;

      BSON_APPEND_DOCUMENT_BEGIN (&set, "$set", &child);
      BSON_APPEND_VALUE (&child, "task", to->task_id);
      BSON_APPEND_UTF8 (&child, "worker_pid", to->worker_id);
      BSON_APPEND_INT32 (&child, "attempt", to->attempt);
      BSON_APPEND_DATE_TIME (&child, "acquired", mt_now_ms ());
      bson_append_document_end (&set, &child);
      BSON_APPEND_DOCUMENT_BEGIN (&set, "$currentDate", &child);
      BSON_APPEND_BOOL (&child, "keepalive", true);
      bson_append_document_end (&set, &child);
      update = bson_copy (&set);
      bson_destroy (&set);
   } else {
      update = BCON_NEW ("$set", "{", "task", BCON_NULL, "worker_pid", BCON_NULL, "attempt", BCON_NULL, "}");
   }
   ok = mongoc_collection_update_one (slots, &filter, update, NULL, &reply, error);
   *done = ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1;
   bson_destroy (&reply);
   bson_destroy (update);
   bson_destroy (&filter);
   return ok;
}

static bool
read_pool (mongoc_client_t *client, const char *db, const char *pool, int32_t *size, double *timeout, bool *found, bson_error_t *error)
{
   mongoc_collection_t *pools = mongoc_client_get_collection (client, db, MT_POOLS_COLLECTION);
   bson_t *filter = BCON_NEW ("_id", pool);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (pools, filter, NULL, NULL);
   const bson_t *doc;
   bson_iter_t iter;
   bool ok;

   *found = mongoc_cursor_next (cursor, &doc);
   if (*found) {
      *size = bson_iter_init_find (&iter, doc, "size") ? (int32_t) bson_iter_as_int64 (&iter) : 0;
      *timeout = bson_iter_init_find (&iter, doc, "timeout_seconds") ? bson_iter_as_double (&iter) : 0;
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   mongoc_collection_destroy (pools);
   return ok;
}

/* Whether a held slot can be taken back: its run is over, or it timed out
 * (then its run is failed first). */
static bool
reclaimable (mt_context_t *ctx, mongoc_client_t *client, const bson_t *slot, double timeout, bool *yes, bson_error_t *error)
{
   bson_iter_t iter;
   bool live;

   *yes = false;
   if (!mt_run_is_live (client, ctx->db, slot, &live, error)) {
      return false;
   }
   if (!live) {
      *yes = true;
      return true;
   }
   if (timeout > 0 && bson_iter_init_find (&iter, slot, "keepalive") && BSON_ITER_HOLDS_DATE_TIME (&iter) &&
       bson_iter_date_time (&iter) < mt_server_now (ctx) - (int64_t) (timeout * 1000)) {
      *yes = true;
      return time_out_holder (ctx, client, slot, timeout, error);
   }
   return true;
}

bool
mt_slot_acquire (mt_context_t *ctx,
                 mongoc_client_t *client,
                 const char *pool,
                 const mt_lock_owner_t *owner,
                 bool *got,
                 char *slot_id,
                 size_t slot_id_size,
                 bson_error_t *error)
{
   mongoc_collection_t *slots = mongoc_client_get_collection (client, ctx->db, MT_SLOTS_COLLECTION);
   mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new ();
   bson_t *filter = NULL, *sort = BCON_NEW ("index", BCON_INT32 (1)), reply, update = BSON_INITIALIZER, child;
   bson_iter_t iter;
   int32_t size = 0;
   double timeout = 0;
   bool ok, found;

   *got = false;
   ok = read_pool (client, ctx->db, pool, &size, &timeout, &found, error);
   if (ok && !found) {
      ok = slot_error (error, MT_CONFIG_ERROR_NOT_FOUND, "no pool '%s'; declare it with mtaskctl pool set", pool);
   }
   if (!ok) {
      goto cleanup;
   }

   /* A free slot. */
   filter = BCON_NEW ("pool", pool, "index", "{", "$lt", BCON_INT32 (size), "}", "task", BCON_NULL);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &child);
   BSON_APPEND_VALUE (&child, "task", owner->task_id);
   BSON_APPEND_UTF8 (&child, "worker_pid", owner->worker_id);
   BSON_APPEND_INT32 (&child, "attempt", owner->attempt);
   BSON_APPEND_DATE_TIME (&child, "acquired", mt_now_ms ());
   bson_append_document_end (&update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &child);
   BSON_APPEND_BOOL (&child, "keepalive", true);
   bson_append_document_end (&update, &child);
   mongoc_find_and_modify_opts_set_update (fam, &update);
   mongoc_find_and_modify_opts_set_sort (fam, sort);
   ok = mongoc_collection_find_and_modify_with_opts (slots, filter, fam, &reply, error);
   *got = ok && bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter);
   if (*got) {
      bson_iter_t id;

      if (bson_iter_recurse (&iter, &id) && bson_iter_find (&id, "_id") && BSON_ITER_HOLDS_UTF8 (&id)) {
         bson_strncpy (slot_id, bson_iter_utf8 (&id, NULL), slot_id_size);
      }
   }
   bson_destroy (&reply);
   bson_destroy (filter);
   filter = NULL;
   if (!ok || *got) {
      goto cleanup;
   }

   /* None free: one whose holder is gone or timed out, taken back. */
   {
      bson_t *held = BCON_NEW ("pool", pool, "index", "{", "$lt", BCON_INT32 (size), "}", "task", "{", "$ne", BCON_NULL, "}");
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (slots, held, NULL, NULL);
      const bson_t *slot;
      bson_t *seen[1024];
      size_t n = 0;

      while (n < 1024 && mongoc_cursor_next (cursor, &slot)) {
         seen[n++] = bson_copy (slot);
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
      bson_destroy (held);
      for (size_t i = 0; i < n; i++) {
         bool yes = false;

         if (ok && !*got) {
            ok = reclaimable (ctx, client, seen[i], timeout, &yes, error);
            if (ok && yes) {
               bson_iter_t id;

               ok = free_slot_cas (slots, seen[i], owner, got, error);
               if (*got && bson_iter_init_find (&id, seen[i], "_id") && BSON_ITER_HOLDS_UTF8 (&id)) {
                  bson_strncpy (slot_id, bson_iter_utf8 (&id, NULL), slot_id_size);
               }
            }
         }
         bson_destroy (seen[i]);
      }
   }

cleanup:
   bson_destroy (sort);
   bson_destroy (&update);
   mongoc_find_and_modify_opts_destroy (fam);
   mongoc_collection_destroy (slots);
   return ok;
}

bool
mt_slot_release (mongoc_client_t *client, const char *db, const bson_value_t *task_id, int32_t attempt, bson_error_t *error)
{
   mongoc_collection_t *slots = mongoc_client_get_collection (client, db, MT_SLOTS_COLLECTION);
   bson_t filter = BSON_INITIALIZER;
   bson_t *update = BCON_NEW ("$set", "{", "task", BCON_NULL, "worker_pid", BCON_NULL, "attempt", BCON_NULL, "}");
   bool ok;

   BSON_APPEND_VALUE (&filter, "task", task_id);
   BSON_APPEND_INT32 (&filter, "attempt", attempt);
   ok = mongoc_collection_update_many (slots, &filter, update, NULL, NULL, error);
   bson_destroy (&filter);
   bson_destroy (update);
   mongoc_collection_destroy (slots);
   return ok;
}

bool
mt_slot_keepalive (mongoc_client_t *client, const char *db, const bson_oid_t *task_id, bson_error_t *error)
{
   mongoc_collection_t *slots = mongoc_client_get_collection (client, db, MT_SLOTS_COLLECTION);
   bson_t *filter = BCON_NEW ("task", BCON_OID (task_id));
   bson_t *update = BCON_NEW ("$currentDate", "{", "keepalive", BCON_BOOL (true), "}");
   bson_t reply;
   bson_iter_t iter;
   bool ok = mongoc_collection_update_one (slots, filter, update, NULL, &reply, error);

   if (ok && bson_iter_init_find (&iter, &reply, "matchedCount") && bson_iter_as_int64 (&iter) == 0) {
      char hex[25];

      bson_oid_to_string (task_id, hex);
      ok = slot_error (error, MT_CONFIG_ERROR_NOT_FOUND, "task %s holds no slot", hex);
   }
   bson_destroy (&reply);
   bson_destroy (filter);
   bson_destroy (update);
   mongoc_collection_destroy (slots);
   return ok;
}

bool
mt_slot_touch (mongoc_client_t *client, const char *db, const bson_value_t *task_id, int32_t attempt, bool *held, bson_error_t *error)
{
   mongoc_collection_t *slots = mongoc_client_get_collection (client, db, MT_SLOTS_COLLECTION);
   bson_t filter = BSON_INITIALIZER, reply;
   bson_t *update = BCON_NEW ("$currentDate", "{", "keepalive", BCON_BOOL (true), "}");
   bson_iter_t iter;
   bool ok;

   BSON_APPEND_VALUE (&filter, "task", task_id);
   BSON_APPEND_INT32 (&filter, "attempt", attempt);
   ok = mongoc_collection_update_one (slots, &filter, update, NULL, &reply, error);
   *held = ok && !(bson_iter_init_find (&iter, &reply, "matchedCount") && bson_iter_as_int64 (&iter) == 0);
   bson_destroy (&reply);
   bson_destroy (&filter);
   bson_destroy (update);
   mongoc_collection_destroy (slots);
   return ok;
}

bool
mt_slot_stop (mongoc_client_t *client, const char *db, const bson_oid_t *task_id, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   mongoc_collection_t *slots = mongoc_client_get_collection (client, db, MT_SLOTS_COLLECTION);
   bson_t *holds = BCON_NEW ("task", BCON_OID (task_id));
   bson_t *filter = BCON_NEW ("_id", BCON_OID (task_id), "status", MT_STATUS_WORK_IN_PROGRESS);
   bson_t *update = BCON_NEW ("$set", "{", "status", MT_STATUS_CANCELLED, "worker_pid", BCON_NULL, "status_message",
                              "stopped: its slot was freed by a stop request", "}", "$currentDate", "{", "finished",
                              BCON_BOOL (true), "}");
   bson_t *release = BCON_NEW ("$set", "{", "task", BCON_NULL, "worker_pid", BCON_NULL, "attempt", BCON_NULL, "}");
   bson_t reply;
   bson_iter_t iter;
   char hex[25];
   int64_t holding;
   bool ok;

   bson_oid_to_string (task_id, hex);
   holding = mongoc_collection_count_documents (slots, holds, NULL, NULL, NULL, error);
   ok = holding >= 0;
   if (ok && holding == 0) {
      ok = slot_error (error, MT_CONFIG_ERROR_NOT_FOUND, "task %s holds no slot", hex);
   }
   /* End the task first (its worker's own writes are then fenced out),
    * then free its slot. A task that is not running any more only has its
    * slot freed. */
   if (ok) {
      ok = mongoc_collection_update_one (tasks, filter, update, NULL, &reply, error);
      (void) iter;
      bson_destroy (&reply);
   }
   if (ok) {
      ok = mongoc_collection_update_many (slots, holds, release, NULL, NULL, error);
   }
   bson_destroy (holds);
   bson_destroy (filter);
   bson_destroy (update);
   bson_destroy (release);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (slots);
   return ok;
}

bool
mt_slots_upkeep (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   mongoc_collection_t *slots = mongoc_client_get_collection (client, ctx->db, MT_SLOTS_COLLECTION);
   bson_t *held = BCON_NEW ("task", "{", "$ne", BCON_NULL, "}");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (slots, held, NULL, NULL);
   const bson_t *slot;
   bson_t **seen = bson_malloc0 (4096 * sizeof *seen);
   size_t n = 0;
   bool ok;

   while (n < 4096 && mongoc_cursor_next (cursor, &slot)) {
      seen[n++] = bson_copy (slot);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   for (size_t i = 0; i < n; i++) {
      const char *pool = NULL;
      bson_iter_t iter;
      int32_t size = 0;
      double timeout = 0;
      bool found = false, yes = false, done;

      if (bson_iter_init_find (&iter, seen[i], "pool") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         pool = bson_iter_utf8 (&iter, NULL);
      }
      if (ok && pool) {
         ok = read_pool (client, ctx->db, pool, &size, &timeout, &found, error);
      }
      if (ok && found) {
         ok = reclaimable (ctx, client, seen[i], timeout, &yes, error);
      }
      if (ok && yes) {
         ok = free_slot_cas (slots, seen[i], NULL, &done, error);
      }
      bson_destroy (seen[i]);
   }
   bson_free (seen);
   bson_destroy (held);
   mongoc_collection_destroy (slots);
   return ok;
}

void
mt_slot_state (mongoc_client_t *client, const char *db, const bson_value_t *task_id, int32_t attempt, mt_slot_state_t *state)
{
   mongoc_collection_t *slots = mongoc_client_get_collection (client, db, MT_SLOTS_COLLECTION);
   bson_t filter = BSON_INITIALIZER;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_iter_t iter;

   memset (state, 0, sizeof *state);
   BSON_APPEND_VALUE (&filter, "task", task_id);
   BSON_APPEND_INT32 (&filter, "attempt", attempt);
   cursor = mongoc_collection_find_with_opts (slots, &filter, NULL, NULL);
   if (mongoc_cursor_next (cursor, &doc)) {
      state->holds = true;
      if (bson_iter_init_find (&iter, doc, "keepalive") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         state->keepalive = bson_iter_date_time (&iter);
      }
   } else if (mongoc_cursor_error (cursor, NULL)) {
      state->holds = true; /* unknown: assume nothing happened */
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   if (!state->holds) {
      mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
      bson_t by_id = BSON_INITIALIZER;
      int64_t n;

      BSON_APPEND_VALUE (&by_id, "_id", task_id);
      BSON_APPEND_UTF8 (&by_id, "status", MT_STATUS_CANCELLED);
      n = mongoc_collection_count_documents (tasks, &by_id, NULL, NULL, NULL, NULL);
      state->cancelled = n > 0;
      state->holds = n < 0; /* unknown whether stopped or timed out: look again */
      bson_destroy (&by_id);
      mongoc_collection_destroy (tasks);
   }
   mongoc_collection_destroy (slots);
}
