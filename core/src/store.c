/* The tasks collection: the claim, fenced writes, the sweep of documents no
 * claim can take, indexes, enqueue. Every function returns the driver's
 * error untouched when the driver fails. */
#include "mtask-private.h"
#include "cron.h"

#include <string.h>
#include <time.h>

bool
mt_find_one (mongoc_collection_t *collection, const bson_t *filter, const bson_t *opts, bson_t *out, bool *found, bson_error_t *error)
{
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (collection, filter, opts, NULL);
   const bson_t *doc;
   bool ok;

   bson_init (out);
   *found = mongoc_cursor_next (cursor, &doc);
   if (*found) {
      bson_destroy (out);
      bson_copy_to (doc, out);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   return ok;
}

/* What a claim looks for: CREATED, one of `queues` and `types`, due. */
static void
claim_filter (bson_t *filter, const bson_t *queues, const bson_t *types, int64_t now_ms)
{
   bson_t child, or, clause, cmp;

   BSON_APPEND_UTF8 (filter, "status", MT_STATUS_CREATED);
   BSON_APPEND_DOCUMENT_BEGIN (filter, "queue", &child);
   BSON_APPEND_ARRAY (&child, "$in", queues);
   bson_append_document_end (filter, &child);
   BSON_APPEND_DOCUMENT_BEGIN (filter, "type", &child);
   BSON_APPEND_ARRAY (&child, "$in", types);
   bson_append_document_end (filter, &child);
   BSON_APPEND_ARRAY_BEGIN (filter, "$or", &or);
   BSON_APPEND_DOCUMENT_BEGIN (&or, "0", &clause);
   BSON_APPEND_NULL (&clause, "delayed");
   bson_append_document_end (&or, &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&or, "1", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "delayed", &cmp);
   BSON_APPEND_DATE_TIME (&cmp, "$lte", now_ms);
   bson_append_document_end (&clause, &cmp);
   bson_append_document_end (&or, &clause);
   bson_append_array_end (filter, &or);
}

/* What a claim writes; `token` (may be NULL) names the claim, so that a
 * claim whose reply was lost can be found and given back. Without one,
 * whatever token an earlier hold left goes: a token names one hold only. */
static void
claim_update (bson_t *update, const char *worker_id, const char *token)
{
   bson_t child;

   BSON_APPEND_DOCUMENT_BEGIN (update, "$set", &child);
   BSON_APPEND_UTF8 (&child, "status", MT_STATUS_WORK_IN_PROGRESS);
   BSON_APPEND_UTF8 (&child, "worker_pid", worker_id);
   if (token) {
      BSON_APPEND_UTF8 (&child, "claim", token);
   }
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$currentDate", &child);
   BSON_APPEND_BOOL (&child, "started", true);
   BSON_APPEND_BOOL (&child, "heartbeat", true); /* the lease starts now */
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$inc", &child);
   BSON_APPEND_INT32 (&child, "attempts", 1);
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$unset", &child);
   BSON_APPEND_UTF8 (&child, "slot", ""); /* a slot of an earlier attempt */
   if (!token) {
      BSON_APPEND_UTF8 (&child, "claim", "");
   }
   bson_append_document_end (update, &child);
}

static void
claim_sort (bson_t *sort)
{
   BSON_APPEND_INT32 (sort, "priority", -1);
   BSON_APPEND_INT32 (sort, "created", 1);
}

/* Every read a claim or a fenced write decides on goes to the primary,
 * whatever the client's read preference: a secondary may not have the
 * write it must see yet (docs/reliability.md). */
static mongoc_read_prefs_t *
read_primary (void)
{
   return mongoc_read_prefs_new (MONGOC_READ_PRIMARY);
}

void
mt_store_claim_token (const char *worker_id, char *token, size_t size)
{
   bson_oid_t oid;
   char hex[25];

   /* An ObjectId is unique across processes and restarts: a worker
    * restarted under the same id never reuses a token of its earlier run. */
   bson_oid_init (&oid, NULL);
   bson_oid_to_string (&oid, hex);
   bson_snprintf (token, size, "%s#%s", worker_id, hex);
}

bool
mt_store_claim_ex (mongoc_collection_t *tasks,
                   const char *worker_id,
                   const char *token,
                   const bson_t *queues,
                   const bson_t *types,
                   int64_t now_ms,
                   bson_t *task,
                   bool *claimed,
                   bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, sort = BSON_INITIALIZER, update = BSON_INITIALIZER, reply;
   mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new ();
   bson_iter_t iter;
   bool ok = false;

   *claimed = false;
   bson_init (task);
   claim_filter (&filter, queues, types, now_ms);
   claim_sort (&sort);
   claim_update (&update, worker_id, token);

   mongoc_find_and_modify_opts_set_sort (opts, &sort);
   mongoc_find_and_modify_opts_set_update (opts, &update);
   mongoc_find_and_modify_opts_set_flags (opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW);

   /* The reply is initialized either way, and holds the server's error
    * when the command fails. (After a write concern error it holds the
    * claimed document too; the claim is not taken as won then: the caller
    * gives back what carries its token.) */
   if (!mongoc_collection_find_and_modify_with_opts (tasks, &filter, opts, &reply, error)) {
      bson_destroy (&reply);
      goto cleanup;
   }
   if (bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t value;

      bson_iter_document (&iter, &len, &data);
      if (bson_init_static (&value, data, len)) {
         bson_destroy (task);
         bson_copy_to (&value, task);
         *claimed = true;
      }
   }
   ok = true;
   bson_destroy (&reply);

cleanup:
   mongoc_find_and_modify_opts_destroy (opts);
   bson_destroy (&filter);
   bson_destroy (&sort);
   bson_destroy (&update);
   return ok;
}

bool
mt_store_claim (mongoc_collection_t *tasks,
                const char *worker_id,
                const bson_t *queues,
                const bson_t *types,
                int64_t now_ms,
                bson_t *task,
                bool *claimed,
                bson_error_t *error)
{
   return mt_store_claim_ex (tasks, worker_id, NULL, queues, types, now_ms, task, claimed, error);
}

/* What carries `token` and is still held under it. */
static bson_t *
token_filter (const char *worker_id, const char *token)
{
   return BCON_NEW ("claim", token, "worker_pid", worker_id, "status", MT_STATUS_WORK_IN_PROGRESS);
}

/* Tries of a give-back after a failed claim, and the first wait between
 * them (doubling): a stepdown or a blip is over in well under a second;
 * longer outages are the caller's (the worker tries again before it claims
 * again). */
#define MT_GIVE_BACK_TRIES 4
#define MT_GIVE_BACK_WAIT_MS 50

/* mt_store_unclaim, tried again (bounded) while the error is transient. */
static int64_t
unclaim_retrying (mongoc_collection_t *tasks, const char *worker_id, const char *token, bson_error_t *error)
{
   int64_t n = -1;
   int64_t wait_ms = MT_GIVE_BACK_WAIT_MS;

   for (int i = 0; i < MT_GIVE_BACK_TRIES; i++) {
      bson_t reply;

      if (i > 0) {
         struct timespec ts = {.tv_sec = 0, .tv_nsec = (long) wait_ms * 1000000L};

         nanosleep (&ts, NULL);
         wait_ms *= 2;
      }
      n = mt_store_unclaim_reply (tasks, worker_id, token, &reply, error);
      if (n >= 0 || !mt_error_is_transient (error, &reply)) {
         bson_destroy (&reply);
         break;
      }
      bson_destroy (&reply);
   }
   return n;
}

bool
mt_store_claim_batch (mongoc_collection_t *tasks,
                      const char *worker_id,
                      const char *token,
                      const bson_t *queues,
                      const bson_t *types,
                      int64_t now_ms,
                      size_t max,
                      bson_t *docs,
                      size_t *n,
                      bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, ids = BSON_INITIALIZER, child;
   bson_t *opts = BCON_NEW ("limit", BCON_INT64 ((int64_t) max), "projection", "{", "_id", BCON_INT32 (1), "}");
   bson_t *mine = token_filter (worker_id, token);
   bson_t sort = BSON_INITIALIZER, *mine_opts;
   mongoc_read_prefs_t *primary = read_primary ();
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   uint32_t found = 0;
   const char *step;
   bool ok = false;

   *n = 0;
   claim_filter (&filter, queues, types, now_ms);
   claim_sort (&sort);
   BSON_APPEND_DOCUMENT (opts, "sort", &sort);

   /* 1. The candidates, in claim order. A failure here has claimed
    * nothing. */
   cursor = mongoc_collection_find_with_opts (tasks, &filter, opts, primary);
   while (mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, doc, "_id")) {
         char key[16];
         const char *k;

         bson_uint32_to_string (found++, &k, key, sizeof key);
         BSON_APPEND_VALUE (&ids, k, bson_iter_value (&iter));
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   if (!ok || found == 0) {
      goto cleanup;
   }

   /* 2. Each one that is still due is claimed atomically, as the single
    * claim would; the others went to someone else meanwhile. An updateMany
    * is not a retryable write: it may stop half way (at a document it
    * cannot claim, at a stepdown), or be applied with its reply lost. */
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "_id", &child);
   BSON_APPEND_ARRAY (&child, "$in", &ids);
   bson_append_document_end (&filter, &child);
   claim_update (&update, worker_id, token);
   step = "claiming the tasks found";
   ok = mongoc_collection_update_many (tasks, &filter, &update, NULL, NULL, error);

   /* 3. What this claim got, by its token, on the primary: the update's
    * own writes are there. */
   if (ok) {
      step = "reading back what the claim took";
      mine_opts = BCON_NEW ("sort", BCON_DOCUMENT (&sort));
      cursor = mongoc_collection_find_with_opts (tasks, mine, mine_opts, primary);
      while (*n < max && mongoc_cursor_next (cursor, &doc)) {
         bson_copy_to (doc, &docs[(*n)++]);
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
      bson_destroy (mine_opts);
   }
   if (!ok) {
      /* Whatever carries the token now was claimed but is not held: no
       * heartbeat renews it, and its lease would run out with its attempt
       * counted. It goes back as it was, attempt not counted, now; a
       * transient failure of that is tried again a few times. If it still
       * fails the caller must give back by the token later
       * (mt_store_unclaim) before it claims again. */
      bson_error_t cause = *error, undo;

      while (*n > 0) {
         bson_destroy (&docs[--(*n)]);
      }
      if (unclaim_retrying (tasks, worker_id, token, &undo) < 0) {
         bson_set_error (error,
                         cause.domain,
                         cause.code,
                         "%s: %s; what it claimed cannot be given back yet (%s): give back by its token before "
                         "claiming again",
                         step,
                         cause.message,
                         undo.message);
      } else {
         /* The driver's domain and code, and which step met them. */
         bson_set_error (error, cause.domain, cause.code, "%s: %s; what it claimed was given back", step, cause.message);
      }
   }

cleanup:
   mongoc_read_prefs_destroy (primary);
   bson_destroy (mine);
   bson_destroy (opts);
   bson_destroy (&sort);
   bson_destroy (&ids);
   bson_destroy (&update);
   bson_destroy (&filter);
   return ok;
}

int64_t
mt_store_unclaim_reply (mongoc_collection_t *tasks, const char *worker_id, const char *token, bson_t *reply, bson_error_t *error)
{
   bson_t *mine = token_filter (worker_id, token);
   bson_t update;
   bson_iter_t iter;
   int64_t n = -1;

   mt_give_back_update (&update, 0);
   if (mongoc_collection_update_many (tasks, mine, &update, NULL, reply, error)) {
      n = bson_iter_init_find (&iter, reply, "modifiedCount") ? bson_iter_as_int64 (&iter) : 0;
   }
   bson_destroy (&update);
   bson_destroy (mine);
   return n;
}

int64_t
mt_store_unclaim (mongoc_collection_t *tasks, const char *worker_id, const char *token, bson_error_t *error)
{
   bson_t reply;
   int64_t n = mt_store_unclaim_reply (tasks, worker_id, token, &reply, error);

   bson_destroy (&reply);
   return n;
}

bool
mt_store_write_claimed (mongoc_collection_t *tasks,
                        const mt_task_doc_t *task,
                        const char *worker_id,
                        const bson_t *update,
                        bson_t *reply,
                        bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   bson_iter_t iter;
   bool ok = false;

   BSON_APPEND_VALUE (&filter, "_id", &task->id);
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   BSON_APPEND_UTF8 (&filter, "worker_pid", worker_id);
   BSON_APPEND_INT32 (&filter, "attempts", task->attempts);

   if (!mongoc_collection_update_one (tasks, &filter, update, NULL, reply, error)) {
      goto cleanup;
   }
   if (bson_iter_init_find (&iter, reply, "matchedCount") && bson_iter_as_int64 (&iter) == 0) {
      bson_set_error (error,
                      MT_ERROR_STORE,
                      MT_STORE_ERROR_LOST,
                      "task %s is no longer held by worker '%s' at attempt %" PRId32
                      "; another worker or an operator changed it",
                      task->id_str,
                      worker_id,
                      task->attempts);
      goto cleanup;
   }
   ok = true;

cleanup:
   bson_destroy (&filter);
   return ok;
}

bool
mt_store_update_claimed (mongoc_collection_t *tasks,
                         const mt_task_doc_t *task,
                         const char *worker_id,
                         const bson_t *update,
                         bson_error_t *error)
{
   bson_t reply;
   bool ok = mt_store_write_claimed (tasks, task, worker_id, update, &reply, error);

   bson_destroy (&reply);
   return ok;
}

/* Whether two values are the same BSON (type and bytes). */
static bool
same_value (const bson_value_t *a, const bson_value_t *b)
{
   bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
   bool same;

   BSON_APPEND_VALUE (&x, "v", a);
   BSON_APPEND_VALUE (&y, "v", b);
   same = bson_equal (&x, &y);
   bson_destroy (&x);
   bson_destroy (&y);
   return same;
}

bool
mt_store_outcome_landed (mongoc_collection_t *tasks,
                         const mt_task_doc_t *task,
                         const bson_t *update,
                         bool *landed,
                         bson_error_t *error)
{
   /* What an outcome decides, and no other write of a task at this
    * attempt writes the same: a take-back says its worker was lost (in
    * `error`, with `delayed` null); an operator's cancel says CANCELLED. */
   static const char *const decided[] = {"status", "result", "error", "delayed"};
   mongoc_read_prefs_t *primary = read_primary ();
   bson_t filter = BSON_INITIALIZER, doc;
   bson_iter_t set, iter, field;
   bool found, ok;

   *landed = false;
   BSON_APPEND_VALUE (&filter, "_id", &task->id);
   {
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, &filter, NULL, primary);
      const bson_t *d;

      bson_init (&doc);
      found = mongoc_cursor_next (cursor, &d);
      if (found) {
         bson_destroy (&doc);
         bson_copy_to (d, &doc);
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
   }
   if (!ok || !found) {
      goto cleanup;
   }
   /* No holder, and the claim's attempt: the hold ended at this attempt. */
   if (!bson_iter_init_find (&iter, &doc, "attempts") || !BSON_ITER_HOLDS_NUMBER (&iter) ||
       bson_iter_as_int64 (&iter) != task->attempts ||
       (bson_iter_init_find (&iter, &doc, "worker_pid") && !BSON_ITER_HOLDS_NULL (&iter))) {
      goto cleanup;
   }
   if (!bson_iter_init_find (&set, update, "$set") || !BSON_ITER_HOLDS_DOCUMENT (&set) || !bson_iter_recurse (&set, &field)) {
      goto cleanup;
   }
   *landed = true;
   while (*landed && bson_iter_next (&field)) {
      for (size_t i = 0; i < sizeof decided / sizeof decided[0]; i++) {
         if (!strcmp (bson_iter_key (&field), decided[i])) {
            *landed = bson_iter_init_find (&iter, &doc, decided[i]) && same_value (bson_iter_value (&field), bson_iter_value (&iter));
         }
      }
   }

cleanup:
   mongoc_read_prefs_destroy (primary);
   bson_destroy (&doc);
   bson_destroy (&filter);
   return ok;
}

/* Fills the defaults of CREATED documents written by other clients without
 * them, so that sort order and counters behave as the schema promises. */
static bool
fill_default (mongoc_collection_t *tasks, const bson_t *queues, const char *field, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, child;
   bool ok;

   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_CREATED);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "queue", &child);
   BSON_APPEND_ARRAY (&child, "$in", queues);
   bson_append_document_end (&filter, &child);
   BSON_APPEND_NULL (&filter, field); /* matches absent and null */

   if (!strcmp (field, "created")) {
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &child);
      BSON_APPEND_BOOL (&child, field, true);
   } else {
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &child);
      BSON_APPEND_INT32 (&child, field, 0);
   }
   bson_append_document_end (&update, &child);

   ok = mongoc_collection_update_many (tasks, &filter, &update, NULL, NULL, error);
   bson_destroy (&filter);
   bson_destroy (&update);
   return ok;
}

int64_t
mt_store_sweep (mongoc_collection_t *tasks, const bson_t *queues, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, child, or;
   mongoc_cursor_t *cursor = NULL;
   const bson_t *doc;
   int64_t marked = -1, n = 0;

   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_CREATED);
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "queue", &child);
   BSON_APPEND_ARRAY (&child, "$in", queues);
   bson_append_document_end (&filter, &child);
   BSON_APPEND_ARRAY_BEGIN (&filter, "$or", &or);
   mt_task_doc_malformed_filter (&or);
   bson_append_array_end (&filter, &or);

   cursor = mongoc_collection_find_with_opts (tasks, &filter, NULL, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      mt_task_doc_t parsed;
      bson_error_t why;
      bson_t mark = BSON_INITIALIZER, update = BSON_INITIALIZER, set, err, reply;
      bson_iter_t iter;

      if (mt_task_doc_parse (doc, &parsed, &why) || parsed.id.value_type == BSON_TYPE_EOD) {
         continue;
      }
      BSON_APPEND_VALUE (&mark, "_id", &parsed.id);
      BSON_APPEND_UTF8 (&mark, "status", MT_STATUS_CREATED);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
      BSON_APPEND_UTF8 (&set, "status", MT_STATUS_FAILED);
      BSON_APPEND_NULL (&set, "worker_pid");
      BSON_APPEND_DOCUMENT_BEGIN (&set, "error", &err);
      BSON_APPEND_INT32 (&err, "domain", (int32_t) why.domain);
      BSON_APPEND_INT32 (&err, "code", (int32_t) why.code);
      BSON_APPEND_UTF8 (&err, "message", why.message);
      bson_append_document_end (&set, &err);
      bson_append_document_end (&update, &set);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &set);
      BSON_APPEND_BOOL (&set, "finished", true);
      bson_append_document_end (&update, &set);

      bool ok = mongoc_collection_update_one (tasks, &mark, &update, NULL, &reply, error);
      if (ok && bson_iter_init_find (&iter, &reply, "modifiedCount")) {
         n += bson_iter_as_int64 (&iter);
      }
      bson_destroy (&reply);
      bson_destroy (&mark);
      bson_destroy (&update);
      if (!ok) {
         goto cleanup;
      }
   }
   if (mongoc_cursor_error (cursor, error)) {
      goto cleanup;
   }
   if (!fill_default (tasks, queues, "priority", error) || !fill_default (tasks, queues, "attempts", error) ||
       !fill_default (tasks, queues, "created", error)) {
      goto cleanup;
   }
   marked = n;

cleanup:
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   return marked;
}

/* The indexes, and why (docs/operations.md, "Indexes", repeats this list):
 * - mtask_claim: the claim's equality on status and queue, then its sort
 *   (priority desc, created asc); also serves "what is pending in queue X".
 * - mtask_type: counts by status and type ("which types wait unserved").
 * - mtask_worker: "what is worker X running", and recovery of a dead one.
 * - mtask_finished: "what failed recently" (status, then newest first).
 * - mtask_group: a staged group's tasks by stage and status.
 * - mtask_unique: one live task per unique_key (sparse, unique). */
bool
mt_indexes_ensure (mongoc_client_t *client, const char *db, bson_error_t *error)
{
   static const struct {
      const char *name;
      const char *keys_json;
   } indexes[] = {
      {"mtask_claim", "{\"status\": 1, \"queue\": 1, \"priority\": -1, \"created\": 1}"},
      {"mtask_type", "{\"status\": 1, \"type\": 1}"},
      {"mtask_worker", "{\"worker_pid\": 1}"},
      {"mtask_finished", "{\"status\": 1, \"finished\": -1}"},
      {"mtask_group", "{\"group\": 1, \"stage\": 1, \"status\": 1}"},
   };
   mongoc_database_t *database = mongoc_client_get_database (client, db);
   bson_t cmd = BSON_INITIALIZER, list, reply;
   bool ok = false;

   BSON_APPEND_UTF8 (&cmd, "createIndexes", MT_TASKS_COLLECTION);
   BSON_APPEND_ARRAY_BEGIN (&cmd, "indexes", &list);
   for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
      char key[16];
      const char *k;
      bson_t index, *keys = bson_new_from_json ((const uint8_t *) indexes[i].keys_json, -1, error);

      if (!keys) {
         bson_append_array_end (&cmd, &list);
         goto cleanup;
      }
      bson_uint32_to_string ((uint32_t) i, &k, key, sizeof key);
      BSON_APPEND_DOCUMENT_BEGIN (&list, k, &index);
      BSON_APPEND_DOCUMENT (&index, "key", keys);
      BSON_APPEND_UTF8 (&index, "name", indexes[i].name);
      bson_append_document_end (&list, &index);
      bson_destroy (keys);
   }
   bson_append_array_end (&cmd, &list);

   ok = mongoc_database_write_command_with_opts (database, &cmd, NULL, &reply, error);
   bson_destroy (&reply);
   if (ok) {
      /* group_stages: one per (group, number), which keeps two enqueuers
       * from creating a stage twice. */
      bson_t *stages_cmd = BCON_NEW ("createIndexes", MT_GROUP_STAGES_COLLECTION, "indexes", "[",
                                     "{", "key", "{", "group", BCON_INT32 (1), "number", BCON_INT32 (1), "}",
                                     "name", "mtask_stage", "unique", BCON_BOOL (true), "}", "]");
      ok = mongoc_database_write_command_with_opts (database, stages_cmd, NULL, &reply, error);
      bson_destroy (&reply);
      bson_destroy (stages_cmd);
   }
   if (ok) {
      /* unique_held: a unique_key while its task is live (sparse: most
       * tasks have none). */
      ok = mt_unique_index_ensure (client, db, error);
   }
   if (ok) {
      /* locks: _id is the account (unique by itself); releasing everything a
       * run holds looks up its owner. */
      bson_t *locks_cmd = BCON_NEW ("createIndexes",
                                    MT_LOCKS_COLLECTION,
                                    "indexes",
                                    "[",
                                    "{",
                                    "key",
                                    "{",
                                    "task",
                                    BCON_INT32 (1),
                                    "attempt",
                                    BCON_INT32 (1),
                                    "}",
                                    "name",
                                    "mtask_lock_owner",
                                    "}",
                                    "]");
      ok = mongoc_database_write_command_with_opts (database, locks_cmd, NULL, &reply, error);
      bson_destroy (&reply);
      bson_destroy (locks_cmd);
   }

cleanup:
   bson_destroy (&cmd);
   mongoc_database_destroy (database);
   return ok;
}

static bool
invalid_option (bson_error_t *error, const char *key, const char *why)
{
   if (why) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option '%s' %s", key, why);
   } else {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_OPTION, "Invalid option '%s'", key);
   }
   return false;
}

/* The options of mt_enqueue, checked. */
typedef struct {
   int32_t priority, max_attempts;
   double delay, repeat;
   bool has_delay, has_run_at, has_until;
   int64_t run_at, repeat_until;
   const char *cron, *timezone, *unique_key, *verbose_name, *creator;
} enqueue_opts_t;

static bool
string_option (bson_iter_t *iter, const char **out, size_t max, bson_error_t *error)
{
   uint32_t len;

   if (!BSON_ITER_HOLDS_UTF8 (iter) || !bson_iter_utf8 (iter, &len)[0] || len > max) {
      char why[64];

      bson_snprintf (why, sizeof why, "must be a non-empty string of at most %zu bytes", max);
      return invalid_option (error, bson_iter_key (iter), why);
   }
   *out = bson_iter_utf8 (iter, NULL);
   return true;
}

static bool
parse_enqueue_opts (const bson_t *opts, enqueue_opts_t *o, bson_error_t *error)
{
   bson_iter_t iter;

   memset (o, 0, sizeof *o);
   if (!opts || !bson_iter_init (&iter, opts)) {
      return true;
   }
   while (bson_iter_next (&iter)) {
      const char *key = bson_iter_key (&iter);

      if (!strcmp (key, "delay")) {
         /* !(x >= 0 && x <= max) also refuses NaN. */
         if (!BSON_ITER_HOLDS_NUMBER (&iter) ||
             !(bson_iter_as_double (&iter) >= 0 && bson_iter_as_double (&iter) <= MT_DELAY_MAX_S)) {
            return invalid_option (error, key, "must be a number of seconds from 0 to ten years");
         }
         o->delay = bson_iter_as_double (&iter);
         o->has_delay = true;
      } else if (!strcmp (key, "run_at")) {
         if (!BSON_ITER_HOLDS_DATE_TIME (&iter)) {
            return invalid_option (error, key, "must be a date");
         }
         o->run_at = bson_iter_date_time (&iter);
         o->has_run_at = true;
      } else if (!strcmp (key, "priority")) {
         if (!BSON_ITER_HOLDS_INT (&iter) || bson_iter_as_int64 (&iter) != (int32_t) bson_iter_as_int64 (&iter)) {
            return invalid_option (error, key, "must be a 32-bit integer");
         }
         o->priority = (int32_t) bson_iter_as_int64 (&iter);
      } else if (!strcmp (key, "max_attempts")) {
         if (!BSON_ITER_HOLDS_INT (&iter) || bson_iter_as_int64 (&iter) < 1 || bson_iter_as_int64 (&iter) > INT32_MAX) {
            return invalid_option (error, key, "must be an integer, 1 or more");
         }
         o->max_attempts = (int32_t) bson_iter_as_int64 (&iter);
      } else if (!strcmp (key, "repeat")) {
         if (!BSON_ITER_HOLDS_NUMBER (&iter) ||
             !(bson_iter_as_double (&iter) >= 1 && bson_iter_as_double (&iter) <= MT_DELAY_MAX_S)) {
            return invalid_option (error, key, "must be a number of seconds from 1 to ten years");
         }
         o->repeat = bson_iter_as_double (&iter);
      } else if (!strcmp (key, "repeat_until")) {
         if (!BSON_ITER_HOLDS_DATE_TIME (&iter)) {
            return invalid_option (error, key, "must be a date");
         }
         o->repeat_until = bson_iter_date_time (&iter);
         o->has_until = true;
      } else {
         /* The string options, and their bounds (a unique key is an index
          * key, which MongoDB limits). */
         const struct {
            const char *name;
            const char **field;
            size_t max;
         } strings[] = {
            {"cron", &o->cron, 256},
            {"timezone", &o->timezone, 64},
            {"unique_key", &o->unique_key, 512},
            {"verbose_name", &o->verbose_name, 1024},
            {"creator", &o->creator, 1024},
         };
         size_t i = 0;

         while (i < sizeof strings / sizeof strings[0] && strcmp (key, strings[i].name)) {
            i++;
         }
         if (i == sizeof strings / sizeof strings[0]) {
            return invalid_option (error, key, NULL);
         }
         if (!string_option (&iter, strings[i].field, strings[i].max, error)) {
            return false;
         }
      }
   }
   if (o->has_delay && o->has_run_at) {
      return invalid_option (error, "run_at", "and 'delay' both say when to start; give one");
   }
   if (o->repeat > 0 && o->cron) {
      return invalid_option (error, "cron", "and 'repeat' both say when to repeat; give one");
   }
   if (o->timezone && !o->cron) {
      return invalid_option (error, "timezone", "applies to 'cron' only");
   }
   if (o->has_until && !o->repeat && !o->cron) {
      return invalid_option (error, "repeat_until", "needs 'repeat' or 'cron'");
   }
   return true;
}

bool
mt_task_build (const char *queue,
               const char *type,
               const bson_t *params,
               const bson_t *opts,
               const char *status,
               bson_t *doc,
               bson_oid_t *id,
               bson_error_t *error)
{
   enqueue_opts_t o;
   int64_t now, first = 0; /* first: when it may start; 0 = now */

   bson_init (doc);
   if (!queue || !queue[0] || !type || !type[0]) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "enqueue needs a queue and a task type, got queue '%s' and type '%s'",
                      queue ? queue : "",
                      type ? type : "");
      return false;
   }
   if (!parse_enqueue_opts (opts, &o, error)) {
      return false;
   }

   now = mt_now_ms ();
   if (o.has_delay && o.delay > 0) {
      first = now + (int64_t) (o.delay * 1000.0);
   } else if (o.has_run_at) {
      first = o.run_at;
   }
   if (o.cron) {
      bson_error_t why;
      mt_cron_t *cron = mt_cron_parse (o.cron, o.timezone, &why);

      if (!cron) {
         bool zone = strstr (why.message, "time zone") != NULL;

         /* "cron: unknown time zone 'X'..." is about the other option. */
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_INVALID,
                         "option '%s': %s",
                         zone ? "timezone" : "cron",
                         zone && !strncmp (why.message, "cron: ", 6) ? why.message + 6 : why.message);
         return false;
      }
      if (!o.has_delay && !o.has_run_at) {
         first = mt_cron_next (cron, now);
      }
      mt_cron_destroy (cron);
      if (first < 0) {
         bson_set_error (
            error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option 'cron': '%s' never matches a date", o.cron);
         return false;
      }
   }
   if (o.has_until && o.repeat_until < (first ? first : now)) {
      return invalid_option (error, "repeat_until", "is before the first run");
   }

   bson_oid_init (id, NULL);
   BSON_APPEND_OID (doc, "_id", id);
   BSON_APPEND_UTF8 (doc, "queue", queue);
   BSON_APPEND_UTF8 (doc, "type", type);
   BSON_APPEND_UTF8 (doc, "status", status);
   if (params) {
      BSON_APPEND_DOCUMENT (doc, "params", params);
   } else {
      bson_t empty = BSON_INITIALIZER;
      BSON_APPEND_DOCUMENT (doc, "params", &empty);
   }
   BSON_APPEND_DATE_TIME (doc, "created", now);
   if (first) {
      BSON_APPEND_DATE_TIME (doc, "delayed", first);
   } else {
      BSON_APPEND_NULL (doc, "delayed");
   }
   BSON_APPEND_INT32 (doc, "priority", o.priority);
   BSON_APPEND_NULL (doc, "worker_pid");
   BSON_APPEND_INT32 (doc, "attempts", 0);
   if (o.max_attempts) {
      BSON_APPEND_INT32 (doc, "max_attempts", o.max_attempts);
   }
   if (o.repeat > 0 || o.cron) {
      /* The run's place on the schedule, which the successors' times are
       * counted from; the series is named by its first task. */
      if (o.repeat > 0) {
         BSON_APPEND_DOUBLE (doc, "repeat", o.repeat);
      } else {
         BSON_APPEND_UTF8 (doc, "cron", o.cron);
         if (o.timezone) {
            BSON_APPEND_UTF8 (doc, "timezone", o.timezone);
         }
      }
      if (o.has_until) {
         BSON_APPEND_DATE_TIME (doc, "repeat_until", o.repeat_until);
      }
      BSON_APPEND_DATE_TIME (doc, "scheduled", first ? first : now);
      BSON_APPEND_OID (doc, "series", id);
   }
   if (o.unique_key) {
      BSON_APPEND_UTF8 (doc, "unique_key", o.unique_key);
      BSON_APPEND_UTF8 (doc, MT_UNIQUE_HELD_FIELD, o.unique_key);
   }
   if (o.verbose_name) {
      BSON_APPEND_UTF8 (doc, "verbose_name", o.verbose_name);
   }
   if (o.creator) {
      BSON_APPEND_UTF8 (doc, "creator", o.creator);
   }
   return true;
}

bool
mt_unique_index_ensure (mongoc_client_t *client, const char *db, bson_error_t *error)
{
   mongoc_database_t *database = mongoc_client_get_database (client, db);
   bson_t *cmd = BCON_NEW ("createIndexes", MT_TASKS_COLLECTION, "indexes", "[", "{", "key", "{", MT_UNIQUE_HELD_FIELD,
                           BCON_INT32 (1), "}", "name", "mtask_unique", "unique", BCON_BOOL (true), "sparse",
                           BCON_BOOL (true), "}", "]");
   bson_t reply;
   bool ok = mongoc_database_write_command_with_opts (database, cmd, NULL, &reply, error);

   bson_destroy (&reply);
   bson_destroy (cmd);
   mongoc_database_destroy (database);
   return ok;
}

static bool
is_duplicate_key (const bson_error_t *error)
{
   return error->code == 11000 || error->code == 11001;
}

/* The task holding `key`: a live one keeps it; an ended one (ended by a
 * path that did not let go of it, e.g. by hand) loses it here. `*held`
 * says which; `holder` gets its _id. */
static bool
unique_holder (mongoc_collection_t *tasks, const char *key, bool *held, bson_oid_t *holder, bson_error_t *error)
{
   bson_t *filter = BCON_NEW (MT_UNIQUE_HELD_FIELD, key);
   bson_t doc;
   bson_iter_t iter;
   bool found, ok;
   const char *status = "";

   *held = false;
   memset (holder, 0, sizeof *holder);
   ok = mt_find_one (tasks, filter, NULL, &doc, &found, error);
   if (ok && found) {
      if (bson_iter_init_find (&iter, &doc, "_id") && BSON_ITER_HOLDS_OID (&iter)) {
         bson_oid_copy (bson_iter_oid (&iter), holder);
      }
      if (bson_iter_init_find (&iter, &doc, "status") && BSON_ITER_HOLDS_UTF8 (&iter)) {
         status = bson_iter_utf8 (&iter, NULL);
      }
      *held = !strcmp (status, MT_STATUS_CREATED) || !strcmp (status, MT_STATUS_WORK_IN_PROGRESS) ||
              !strcmp (status, MT_STATUS_WAITING);
      if (!*held && bson_iter_init_find (&iter, &doc, "_id")) {
         /* Let go of it for the ended task, only as it was read. */
         bson_t release = BSON_INITIALIZER;
         bson_t *update = BCON_NEW ("$unset", "{", MT_UNIQUE_HELD_FIELD, "", "}");

         BSON_APPEND_VALUE (&release, "_id", bson_iter_value (&iter));
         BSON_APPEND_UTF8 (&release, "status", status);
         BSON_APPEND_UTF8 (&release, MT_UNIQUE_HELD_FIELD, key);
         ok = mongoc_collection_update_one (tasks, &release, update, NULL, NULL, error);
         bson_destroy (update);
         bson_destroy (&release);
      }
   }
   bson_destroy (&doc);
   bson_destroy (filter);
   return ok;
}

bool
mt_task_insert (mongoc_collection_t *tasks, const bson_t *doc, bool *created, bson_oid_t *holder, bson_error_t *error)
{
   bson_iter_t iter;
   const char *key = NULL;

   *created = false;
   if (bson_iter_init_find (&iter, doc, MT_UNIQUE_HELD_FIELD) && BSON_ITER_HOLDS_UTF8 (&iter)) {
      key = bson_iter_utf8 (&iter, NULL);
   }
   /* The unique index decides between concurrent enqueuers; a key held by
    * an ended task is let go and the insert tried again. */
   for (int round = 0; round < 8; round++) {
      bool held;

      if (mongoc_collection_insert_one (tasks, doc, NULL, NULL, error)) {
         *created = true;
         return true;
      }
      if (!key || !is_duplicate_key (error)) {
         return false;
      }
      if (!unique_holder (tasks, key, &held, holder, error)) {
         return false;
      }
      if (held) {
         return true;
      }
   }
   bson_set_error (error,
                   MT_ERROR_STORE,
                   MT_STORE_ERROR_WRITE,
                   "unique_key '%s': taken and let go again and again; too much contention, try again",
                   key);
   return false;
}

bool
mt_enqueue_ex (mongoc_client_t *client,
               const char *db,
               const char *queue,
               const char *type,
               const bson_t *params,
               const bson_t *opts,
               bson_oid_t *id,
               bool *created,
               bson_error_t *error)
{
   mongoc_collection_t *tasks;
   bson_oid_t oid, holder;
   bson_iter_t iter;
   bson_t doc;
   bool ok, inserted = false;

   if (!mt_task_build (queue, type, params, opts, MT_STATUS_CREATED, &doc, &oid, error)) {
      bson_destroy (&doc);
      return false;
   }
   /* Without its index a unique_key would not be unique: make sure of it
    * before the first insert (idempotent, one round trip). */
   if (bson_iter_init_find (&iter, &doc, MT_UNIQUE_HELD_FIELD) && !mt_unique_index_ensure (client, db, error)) {
      bson_destroy (&doc);
      return false;
   }
   tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   ok = mt_task_insert (tasks, &doc, &inserted, &holder, error);
   if (ok && id) {
      bson_oid_copy (inserted ? &oid : &holder, id);
   }
   if (created) {
      *created = ok && inserted;
   }
   mongoc_collection_destroy (tasks);
   bson_destroy (&doc);
   return ok;
}

bool
mt_enqueue (mongoc_client_t *client,
            const char *db,
            const char *queue,
            const char *type,
            const bson_t *params,
            const bson_t *opts,
            bson_oid_t *id,
            bson_error_t *error)
{
   return mt_enqueue_ex (client, db, queue, type, params, opts, id, NULL, error);
}

/* An IPv6 address such as ::1 or fe80::1, written without brackets. */
static bool
is_ipv6 (const char *host)
{
   const char *first = strchr (host, ':');

   return first && strchr (first + 1, ':') && strspn (host, "0123456789abcdefABCDEF:.") == strlen (host);
}

mongoc_uri_t *
mt_uri_new (const char *uri, const char *host, int port, bson_error_t *error)
{
   mongoc_uri_t *result;
   char *built = NULL;

   if (uri && uri[0]) {
      result = mongoc_uri_new_with_error (uri, error);
   } else {
      if (host && host[0] && strpbrk (host, "/?@,[]:") && !is_ipv6 (host)) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_URI,
                         "host '%s' is not a host name or address; give the port with --port, and anything "
                         "more (several hosts, options) with --uri",
                         host);
         return NULL;
      }
      if (port < 0 || port > 65535) {
         bson_set_error (
            error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "port %d is out of range; give a port from 1 to 65535", port);
         return NULL;
      }
      built = bson_strdup_printf (host && is_ipv6 (host) ? "mongodb://[%s]:%d/" : "mongodb://%s:%d/",
                                  host && host[0] ? host : "localhost",
                                  port ? port : 27017);
      result = mongoc_uri_new_with_error (built, error);
   }
   if (!result) {
      bson_error_t cause = *error;
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_URI,
                      "cannot use MongoDB address '%s': %s",
                      uri && uri[0] ? uri : built,
                      cause.message);
   }
   bson_free (built);
   return result;
}

/* The name a URI gives a read preference mode. */
static const char *
read_mode_name (mongoc_read_mode_t mode)
{
   switch (mode) {
   case MONGOC_READ_PRIMARY:
      return "primary";
   case MONGOC_READ_PRIMARY_PREFERRED:
      return "primaryPreferred";
   case MONGOC_READ_SECONDARY:
      return "secondary";
   case MONGOC_READ_SECONDARY_PREFERRED:
      return "secondaryPreferred";
   case MONGOC_READ_NEAREST:
      return "nearest";
   default:
      return "unknown";
   }
}

const char *
mt_uri_apply_policy (mongoc_uri_t *uri, int policy)
{
   const char *overridden = NULL;

   if (policy & MT_URI_PRIMARY_READS) {
      const mongoc_read_prefs_t *prefs = mongoc_uri_get_read_prefs_t (uri);
      mongoc_read_mode_t mode = prefs ? mongoc_read_prefs_get_mode (prefs) : MONGOC_READ_PRIMARY;

      if (mode != MONGOC_READ_PRIMARY) {
         mongoc_read_prefs_t *primary = mongoc_read_prefs_new (MONGOC_READ_PRIMARY);

         /* Tags, maxStalenessSeconds and hedging go with the mode: none
          * of them means anything to a primary. */
         mongoc_uri_set_read_prefs_t (uri, primary);
         mongoc_read_prefs_destroy (primary);
         overridden = read_mode_name (mode);
      }
   }
   if ((policy & MT_URI_MAJORITY_WRITES) && !mongoc_uri_has_option (uri, MONGOC_URI_W) &&
       !mongoc_uri_has_option (uri, MONGOC_URI_JOURNAL) && !mongoc_uri_has_option (uri, MONGOC_URI_WTIMEOUTMS)) {
      mongoc_write_concern_t *majority = mongoc_write_concern_new ();

      mongoc_write_concern_set_wmajority (majority, MT_WRITE_TIMEOUT_MS);
      mongoc_uri_set_write_concern (uri, majority);
      mongoc_write_concern_destroy (majority);
   }
   return overridden;
}
