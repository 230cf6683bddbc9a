/* Concurrency slots (seed 002): `pools` {_id: name, size, timeout_seconds}
 * and one document per slot in `slots` {_id: "<pool>#<i>", pool, index,
 * task, worker_pid, attempt, acquired, keepalive}. A claimed task of a pool
 * runs only once it holds a slot of index below the pool's size. Taking a
 * free slot is one conditional update on `task: null`; taking back a slot
 * whose holder's run is over, or whose keepalive is older than the pool's
 * timeout, is a compare-and-swap on the holder seen. So a slot has one
 * holder, and a pool never runs more tasks than it has slots.
 *
 * A timeout is decided in the write that acts on it: the slot is taken
 * back only while its keepalive is still older than the timeout (a
 * keepalive landing after the read wins), and its holder's run is failed
 * only after that, by the one caller that took it. The slot records the
 * run it timed out in `timed_out` until that run is failed, so a crash or
 * an error between the two writes is finished by the upkeep tick. */
#include "mtask-private.h"

#include <string.h>

/* The most held slots one acquire looks at, and one upkeep tick. */
#define MT_SLOTS_SCAN_MAX 1024
#define MT_SLOTS_UPKEEP_MAX 4096

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

/* Fails the run a timed-out slot held (`holder`: {task, worker_pid,
 * attempt}, a slot or its `timed_out`): CREATED to retry, or FAILED on its
 * last attempt; only that very run (worker and attempt). */
static bool
time_out_holder (mt_context_t *ctx, mongoc_client_t *client, const bson_t *holder, double timeout, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   bson_t filter = BSON_INITIALIZER, task;
   bson_iter_t iter;
   int32_t attempt = 0, max;
   const char *type = NULL;
   bson_error_t why;
   bool ok = true, found = false;

   if (!bson_iter_init_find (&iter, holder, "task")) {
      mongoc_collection_destroy (tasks);
      return true;
   }
   BSON_APPEND_VALUE (&filter, "_id", bson_iter_value (&iter));
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   if (bson_iter_init_find (&iter, holder, "worker_pid")) {
      BSON_APPEND_VALUE (&filter, "worker_pid", bson_iter_value (&iter));
   }
   if (bson_iter_init_find (&iter, holder, "attempt")) {
      attempt = (int32_t) bson_iter_as_int64 (&iter);
      BSON_APPEND_VALUE (&filter, "attempts", bson_iter_value (&iter));
   }
   ok = mt_find_one (tasks, &filter, NULL, &task, &found, error);
   if (ok && found) {
      int32_t task_max = 0, failures;
      bson_t update = BSON_INITIALIZER, set, date, unset;

      if (bson_iter_init_find (&iter, &task, "max_attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
         task_max = (int32_t) bson_iter_as_int64 (&iter);
      }
      if (bson_iter_init_find (&iter, &task, "type") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         type = bson_iter_utf8 (&iter, NULL);
      }
      max = mt_retry_max_attempts (ctx, type, task_max);
      failures = mt_task_failures (&task, attempt) + 1; /* a timeout counts as a failure */
      bson_set_error (&why,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_TIMEOUT,
                      "timed out: no keepalive for %g s, its pool's timeout; its slot was taken back",
                      timeout);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
      BSON_APPEND_UTF8 (&set, "status", failures >= max ? MT_STATUS_FAILED : MT_STATUS_CREATED);
      BSON_APPEND_NULL (&set, "worker_pid");
      BSON_APPEND_INT32 (&set, "max_attempts", max);
      BSON_APPEND_INT32 (&set, "failures", failures);
      mt_append_error (&set, "error", &why);
      bson_append_document_end (&update, &set);
      /* The hold ends: no claim token outlives it. */
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$unset", &unset);
      BSON_APPEND_UTF8 (&unset, "claim", "");
      bson_append_document_end (&update, &unset);
      if (failures >= max) {
         BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
         BSON_APPEND_BOOL (&date, "finished", true);
         bson_append_document_end (&update, &date);
      }
      mt_append_error_history (&update, &why, attempt);
      ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, NULL, error);
      bson_destroy (&update);
      if (ok && failures >= max) {
         ok = mt_group_task_ended_doc (client, ctx->db, &task, error);
      }
   }
   bson_destroy (&task);
   bson_destroy (&filter);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* Appends the fields of the holder the slot had when it was read. */
static void
append_holder_seen (bson_t *filter, const bson_t *slot)
{
   bson_iter_t iter;

   BSON_APPEND_VALUE (filter, "_id", bson_iter_init_find (&iter, slot, "_id") ? bson_iter_value (&iter) : &(bson_value_t){.value_type = BSON_TYPE_NULL});
   BSON_APPEND_VALUE (filter, "task", bson_iter_init_find (&iter, slot, "task") ? bson_iter_value (&iter) : &(bson_value_t){.value_type = BSON_TYPE_NULL});
   if (bson_iter_init_find (&iter, slot, "attempt")) {
      BSON_APPEND_VALUE (filter, "attempt", bson_iter_value (&iter));
   }
   if (bson_iter_init_find (&iter, slot, "worker_pid")) {
      BSON_APPEND_VALUE (filter, "worker_pid", bson_iter_value (&iter));
   }
}

/* Frees a slot for `to` (or for no one), only if it still has the holder
 * seen; and, when `cutoff` is not 0, only while that holder's keepalive is
 * still older than `cutoff` (server ms): then the slot also records the
 * run it timed out in `timed_out`, until that run is failed. */
static bool
free_slot_cas (mongoc_collection_t *slots, const bson_t *slot, const mt_lock_owner_t *to, int64_t cutoff, double timeout, bool *done, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, reply, child, gone;
   bson_iter_t iter;
   bool ok;

   append_holder_seen (&filter, slot);
   if (cutoff) {
      BSON_APPEND_DOCUMENT_BEGIN (&filter, "keepalive", &child);
      BSON_APPEND_DATE_TIME (&child, "$lt", cutoff);
      bson_append_document_end (&filter, &child);
      /* One timed-out run at a time: an earlier one not yet failed (its
       * taker died between the writes) is finished by upkeep first. */
      BSON_APPEND_DOCUMENT_BEGIN (&filter, "timed_out", &child);
      BSON_APPEND_BOOL (&child, "$exists", false);
      bson_append_document_end (&filter, &child);
   }
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &child);
   if (to) {
      BSON_APPEND_VALUE (&child, "task", to->task_id);
      BSON_APPEND_UTF8 (&child, "worker_pid", to->worker_id);
      BSON_APPEND_INT32 (&child, "attempt", to->attempt);
      BSON_APPEND_DATE_TIME (&child, "acquired", mt_now_ms ());
   } else {
      BSON_APPEND_NULL (&child, "task");
      BSON_APPEND_NULL (&child, "worker_pid");
      BSON_APPEND_NULL (&child, "attempt");
   }
   if (cutoff) {
      BSON_APPEND_DOCUMENT_BEGIN (&child, "timed_out", &gone);
      BSON_APPEND_VALUE (&gone, "task", bson_iter_init_find (&iter, slot, "task") ? bson_iter_value (&iter) : &(bson_value_t){.value_type = BSON_TYPE_NULL});
      if (bson_iter_init_find (&iter, slot, "worker_pid")) {
         BSON_APPEND_VALUE (&gone, "worker_pid", bson_iter_value (&iter));
      }
      if (bson_iter_init_find (&iter, slot, "attempt")) {
         BSON_APPEND_VALUE (&gone, "attempt", bson_iter_value (&iter));
      }
      BSON_APPEND_DOUBLE (&gone, "timeout", timeout);
      bson_append_document_end (&child, &gone);
   }
   bson_append_document_end (&update, &child);
   if (to) {
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &child);
      BSON_APPEND_BOOL (&child, "keepalive", true);
      bson_append_document_end (&update, &child);
   }
   ok = mongoc_collection_update_one (slots, &filter, &update, NULL, &reply, error);
   *done = ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1;
   bson_destroy (&reply);
   bson_destroy (&update);
   bson_destroy (&filter);
   return ok;
}

/* Fails the run a slot's `timed_out` names, then forgets it (only that
 * record: the slot may have timed out another run since). */
static bool
finish_timeout (mt_context_t *ctx, mongoc_client_t *client, mongoc_collection_t *slots, const bson_value_t *slot_id, const bson_t *timed_out, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bson_t *forget = BCON_NEW ("$unset", "{", "timed_out", "", "}");
   bson_iter_t iter;
   bool ok;

   ok = time_out_holder (ctx, client, timed_out, bson_iter_init_find (&iter, timed_out, "timeout") ? bson_iter_as_double (&iter) : 0, error);
   if (ok) {
      BSON_APPEND_VALUE (&filter, "_id", slot_id);
      BSON_APPEND_DOCUMENT (&filter, "timed_out", timed_out);
      ok = mongoc_collection_update_one (slots, &filter, forget, NULL, NULL, error);
   }
   bson_destroy (&filter);
   bson_destroy (forget);
   return ok;
}

/* After this caller took a timed-out slot: the run it held is failed. */
static bool
time_out_taken (mt_context_t *ctx, mongoc_client_t *client, mongoc_collection_t *slots, const bson_t *slot, double timeout, bson_error_t *error)
{
   bson_t timed_out = BSON_INITIALIZER;
   bson_iter_t iter, id;
   bool ok = true;

   if (bson_iter_init_find (&id, slot, "_id")) {
      BSON_APPEND_VALUE (&timed_out, "task", bson_iter_init_find (&iter, slot, "task") ? bson_iter_value (&iter) : &(bson_value_t){.value_type = BSON_TYPE_NULL});
      if (bson_iter_init_find (&iter, slot, "worker_pid")) {
         BSON_APPEND_VALUE (&timed_out, "worker_pid", bson_iter_value (&iter));
      }
      if (bson_iter_init_find (&iter, slot, "attempt")) {
         BSON_APPEND_VALUE (&timed_out, "attempt", bson_iter_value (&iter));
      }
      BSON_APPEND_DOUBLE (&timed_out, "timeout", timeout);
      ok = finish_timeout (ctx, client, slots, bson_iter_value (&id), &timed_out, error);
   }
   bson_destroy (&timed_out);
   return ok;
}

static bool
read_pool (mongoc_client_t *client, const char *db, const char *pool, int32_t *size, double *timeout, bool *found, bson_error_t *error)
{
   mongoc_collection_t *pools = mongoc_client_get_collection (client, db, MT_POOLS_COLLECTION);
   bson_t *filter = BCON_NEW ("_id", pool);
   bson_t doc;
   bson_iter_t iter;
   bool ok;

   ok = mt_find_one (pools, filter, NULL, &doc, found, error);
   if (ok && *found) {
      *size = bson_iter_init_find (&iter, &doc, "size") ? (int32_t) bson_iter_as_int64 (&iter) : 0;
      *timeout = bson_iter_init_find (&iter, &doc, "timeout_seconds") ? bson_iter_as_double (&iter) : 0;
   }
   bson_destroy (&doc);
   bson_destroy (filter);
   mongoc_collection_destroy (pools);
   return ok;
}

/* Which of the `n` held slots have a run still going on (its task
 * WORK_IN_PROGRESS with the slot's worker and attempt, as mt_run_is_live
 * says of one), with one query for them all. */
static bool
runs_live (mongoc_client_t *client, const char *db, bson_t *const *seen, size_t n, bool *live, bson_error_t *error)
{
   mongoc_collection_t *tasks;
   mongoc_cursor_t *cursor;
   bson_t filter = BSON_INITIALIZER, child, list;
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "worker_pid", BCON_INT32 (1), "attempts", BCON_INT32 (1), "}");
   const bson_t *doc;
   bool ok;

   memset (live, 0, n * sizeof *live);
   if (n == 0) {
      bson_destroy (opts);
      bson_destroy (&filter);
      return true;
   }
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "_id", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, "$in", &list);
   for (size_t i = 0; i < n; i++) {
      bson_iter_t iter;
      char key[16];
      const char *k;

      if (bson_iter_init_find (&iter, seen[i], "task")) {
         bson_uint32_to_string ((uint32_t) i, &k, key, sizeof key);
         BSON_APPEND_VALUE (&list, k, bson_iter_value (&iter));
      }
   }
   bson_append_array_end (&child, &list);
   bson_append_document_end (&filter, &child);
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);

   tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   cursor = mongoc_collection_find_with_opts (tasks, &filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t id, pid, attempts;
      const char *worker = NULL;
      int64_t attempt = -1;

      if (!bson_iter_init_find (&id, doc, "_id")) {
         continue;
      }
      if (bson_iter_init_find (&pid, doc, "worker_pid") && BSON_ITER_HOLDS_UTF8 (&pid)) {
         worker = bson_iter_utf8 (&pid, NULL);
      }
      if (bson_iter_init_find (&attempts, doc, "attempts") && BSON_ITER_HOLDS_NUMBER (&attempts)) {
         attempt = bson_iter_as_int64 (&attempts);
      }
      for (size_t i = 0; i < n; i++) {
         bson_iter_t iter;
         const char *holder = NULL;

         if (live[i] || !bson_iter_init_find (&iter, seen[i], "task") || !mt_value_equal (bson_iter_value (&iter), bson_iter_value (&id))) {
            continue;
         }
         if (bson_iter_init_find (&iter, seen[i], "worker_pid") && BSON_ITER_HOLDS_UTF8 (&iter)) {
            holder = bson_iter_utf8 (&iter, NULL);
         }
         live[i] = (holder ? worker && !strcmp (holder, worker) : !worker) &&
                   (bson_iter_init_find (&iter, seen[i], "attempt") && BSON_ITER_HOLDS_NUMBER (&iter) ? bson_iter_as_int64 (&iter) : -1) == attempt;
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (tasks);
   bson_destroy (opts);
   bson_destroy (&filter);
   return ok;
}

/* The server time before which a slot's keepalive means its holder timed
 * out, or 0 when the slot has not timed out (as read) or its pool has no
 * timeout. */
static int64_t
timed_out_cutoff (mt_context_t *ctx, const bson_t *slot, double timeout)
{
   int64_t cutoff = mt_server_now (ctx) - (int64_t) (timeout * 1000);
   bson_iter_t iter;

   if (timeout > 0 && bson_iter_init_find (&iter, slot, "keepalive") && BSON_ITER_HOLDS_DATE_TIME (&iter) &&
       bson_iter_date_time (&iter) < cutoff) {
      return cutoff;
   }
   return 0;
}

/* Takes back one held slot (for `to`, or for no one) when its run is over
 * (`live` false) or it timed out; a run that timed out is failed after its
 * slot is taken, by the caller that took it. */
static bool
take_back (mt_context_t *ctx,
           mongoc_client_t *client,
           mongoc_collection_t *slots,
           const bson_t *slot,
           bool live,
           double timeout,
           const mt_lock_owner_t *to,
           bool *taken,
           bson_error_t *error)
{
   int64_t cutoff;
   bool ok;

   *taken = false;
   if (!live) {
      return free_slot_cas (slots, slot, to, 0, timeout, taken, error);
   }
   cutoff = timed_out_cutoff (ctx, slot, timeout);
   if (!cutoff) {
      return true;
   }
   /* Read as timed out; the write decides (a keepalive since wins). */
   mt_failpoint_pause ("slot-timeout-read");
   ok = free_slot_cas (slots, slot, to, cutoff, timeout, taken, error);
   if (ok && *taken) {
      bson_error_t why;

      if (!time_out_taken (ctx, client, slots, slot, timeout, &why)) {
         bson_iter_t id;

         if (!to) {
            *error = why; /* the upkeep's own work: reported, and done again next tick */
            return false;
         }
         /* The caller has its slot; the slot's `timed_out` has the rest
          * done by the upkeep tick. */
         mt_log (ctx,
                 MT_LOG_WARNING,
                 "slot %s was taken back from a run that timed out, but that run cannot be failed yet (%s); the upkeep tick does it",
                 bson_iter_init_find (&id, slot, "_id") && BSON_ITER_HOLDS_UTF8 (&id) ? bson_iter_utf8 (&id, NULL) : "?",
                 why.message);
      }
   }
   return ok;
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

   /* None free: one whose holder's run is over, or that timed out, taken
    * back; whether each run goes on is one query for them all. */
   {
      bson_t *held = BCON_NEW ("pool", pool, "index", "{", "$lt", BCON_INT32 (size), "}", "task", "{", "$ne", BCON_NULL, "}");
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (slots, held, NULL, NULL);
      const bson_t *slot;
      bson_t **seen = bson_malloc0 (MT_SLOTS_SCAN_MAX * sizeof *seen);
      bool *live = bson_malloc0 (MT_SLOTS_SCAN_MAX * sizeof *live);
      size_t n = 0;

      while (n < MT_SLOTS_SCAN_MAX && mongoc_cursor_next (cursor, &slot)) {
         seen[n++] = bson_copy (slot);
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
      bson_destroy (held);
      if (ok) {
         ok = runs_live (client, ctx->db, seen, n, live, error);
      }
      /* Those whose run is over first: taking them fails no one. */
      for (int pass = 0; pass < 2; pass++) {
         for (size_t i = 0; ok && !*got && i < n; i++) {
            bson_iter_t id;

            if (live[i] != (pass == 1)) {
               continue;
            }
            ok = take_back (ctx, client, slots, seen[i], live[i], timeout, owner, got, error);
            if (*got && bson_iter_init_find (&id, seen[i], "_id") && BSON_ITER_HOLDS_UTF8 (&id)) {
               bson_strncpy (slot_id, bson_iter_utf8 (&id, NULL), slot_id_size);
            }
         }
      }
      for (size_t i = 0; i < n; i++) {
         bson_destroy (seen[i]);
      }
      bson_free (seen);
      bson_free (live);
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
                              "stopped: its slot was freed by a stop request", "}", "$unset", "{", "claim", "", "}",
                              "$currentDate", "{", "finished", BCON_BOOL (true), "}");
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

/* A pool as read once per upkeep tick. */
typedef struct {
   char *name;
   double timeout;
   bool found;
} pool_seen_t;

/* The timeout of `pool`, read once per tick; `*found` false when there is
 * no such pool (its slots are left alone). */
static bool
pool_timeout (mongoc_client_t *client, const char *db, pool_seen_t **pools, size_t *n_pools, const char *pool, double *timeout, bool *found, bson_error_t *error)
{
   int32_t size = 0;

   for (size_t i = 0; i < *n_pools; i++) {
      if (!strcmp ((*pools)[i].name, pool)) {
         *timeout = (*pools)[i].timeout;
         *found = (*pools)[i].found;
         return true;
      }
   }
   *timeout = 0;
   if (!read_pool (client, db, pool, &size, timeout, found, error)) {
      return false;
   }
   *pools = bson_realloc (*pools, (*n_pools + 1) * sizeof **pools);
   (*pools)[*n_pools].name = bson_strdup (pool);
   (*pools)[*n_pools].timeout = *timeout;
   (*pools)[*n_pools].found = *found;
   (*n_pools)++;
   return true;
}

/* Slots whose `timed_out` run was never failed: their taker died or
 * failed between the two writes. */
static bool
finish_timeouts (mt_context_t *ctx, mongoc_client_t *client, mongoc_collection_t *slots, int64_t deadline_us, bson_error_t *error)
{
   bson_t *pending = BCON_NEW ("timed_out", "{", "$exists", BCON_BOOL (true), "}");
   bson_t *opts = BCON_NEW ("projection", "{", "_id", BCON_INT32 (1), "timed_out", BCON_INT32 (1), "}", "limit", BCON_INT64 (100));
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (slots, pending, opts, NULL);
   const bson_t *slot;
   bson_t *found[100];
   size_t n = 0;
   bool ok;

   while (n < 100 && mongoc_cursor_next (cursor, &slot)) {
      found[n++] = bson_copy (slot);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   for (size_t i = 0; i < n; i++) {
      bson_iter_t id, gone;

      if (ok && !mt_deadline_passed (deadline_us) && bson_iter_init_find (&id, found[i], "_id") &&
          bson_iter_init_find (&gone, found[i], "timed_out") && BSON_ITER_HOLDS_DOCUMENT (&gone)) {
         const uint8_t *data;
         uint32_t len;
         bson_t timed_out;

         bson_iter_document (&gone, &len, &data);
         bson_init_static (&timed_out, data, len);
         ok = finish_timeout (ctx, client, slots, bson_iter_value (&id), &timed_out, error);
      }
      bson_destroy (found[i]);
   }
   bson_destroy (pending);
   bson_destroy (opts);
   return ok;
}

bool
mt_slots_upkeep (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   return mt_slots_upkeep_until (ctx, client, 0, error);
}

bool
mt_slots_upkeep_until (mt_context_t *ctx, mongoc_client_t *client, int64_t deadline_us, bson_error_t *error)
{
   mongoc_collection_t *slots = mongoc_client_get_collection (client, ctx->db, MT_SLOTS_COLLECTION);
   bson_t *held = BCON_NEW ("task", "{", "$ne", BCON_NULL, "}");
   mongoc_cursor_t *cursor;
   const bson_t *slot;
   bson_t **seen = bson_malloc0 (MT_SLOTS_UPKEEP_MAX * sizeof *seen);
   bool *live = bson_malloc0 (MT_SLOTS_UPKEEP_MAX * sizeof *live);
   pool_seen_t *pools = NULL;
   size_t n = 0, n_pools = 0;
   bool ok;

   ok = finish_timeouts (ctx, client, slots, deadline_us, error);
   cursor = mongoc_collection_find_with_opts (slots, held, NULL, NULL);
   while (ok && n < MT_SLOTS_UPKEEP_MAX && mongoc_cursor_next (cursor, &slot)) {
      seen[n++] = bson_copy (slot);
   }
   ok = ok && !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   if (ok) {
      ok = runs_live (client, ctx->db, seen, n, live, error);
   }
   for (size_t i = 0; i < n; i++) {
      bson_iter_t iter;
      double timeout = 0;
      bool found = false, done;

      if (ok && !mt_deadline_passed (deadline_us) && bson_iter_init_find (&iter, seen[i], "pool") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         ok = pool_timeout (client, ctx->db, &pools, &n_pools, bson_iter_utf8 (&iter, NULL), &timeout, &found, error);
         if (ok && found) {
            ok = take_back (ctx, client, slots, seen[i], live[i], timeout, NULL, &done, error);
         }
      }
      bson_destroy (seen[i]);
   }
   for (size_t i = 0; i < n_pools; i++) {
      bson_free (pools[i].name);
   }
   bson_free (pools);
   bson_free (seen);
   bson_free (live);
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
