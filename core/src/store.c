/* The tasks collection: the claim, fenced writes, the sweep of documents no
 * claim can take, indexes, enqueue. Every function returns the driver's
 * error untouched when the driver fails. */
#include "mtask-private.h"
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

bool
mt_find_one (mongoc_collection_t *collection, const bson_t *filter, const bson_t *opts, bson_t *out, bool *found, bson_error_t *error)
{
   mongoc_read_prefs_t *primary = mongoc_read_prefs_new (MONGOC_READ_PRIMARY);
   bool ok = mt_find_one_with_prefs (collection, filter, opts, primary, out, found, error);

   mongoc_read_prefs_destroy (primary);
   return ok;
}

bool
mt_find_one_with_prefs (mongoc_collection_t *collection,
                        const bson_t *filter,
                        const bson_t *opts,
                        const mongoc_read_prefs_t *prefs,
                        bson_t *out,
                        bool *found,
                        bson_error_t *error)
{
   bson_t one = BSON_INITIALIZER;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool ok;

   /* One document: the server sends one, in one reply, and no cursor stays
    * open on it; unless the caller set a limit of its own. */
   if (opts) {
      bson_concat (&one, opts);
   }
   if (!opts || !bson_has_field (opts, "limit")) {
      BSON_APPEND_INT64 (&one, "limit", 1);
      if (!bson_has_field (&one, "singleBatch")) {
         BSON_APPEND_BOOL (&one, "singleBatch", true);
      }
   }
   cursor = mongoc_collection_find_with_opts (collection, filter, &one, prefs);
   bson_init (out);
   *found = mongoc_cursor_next (cursor, &doc);
   if (*found) {
      bson_destroy (out);
      bson_copy_to (doc, out);
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (&one);
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
   /* Kept after the run, when worker_pid is null again: who ran it. */
   BSON_APPEND_UTF8 (&child, "last_worker", worker_id);
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
   /* A claim starts clean: what an earlier attempt left (its `errors`
    * history stays) does not pass for this one's. */
   BSON_APPEND_UTF8 (&child, "result", "");
   BSON_APPEND_UTF8 (&child, "error", "");
   BSON_APPEND_UTF8 (&child, "status_message", "");
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
   bson_t filter = BSON_INITIALIZER, doc;
   bson_iter_t set, iter, field;
   bool found, ok;

   *landed = false;
   BSON_APPEND_VALUE (&filter, "_id", &task->id);
   ok = mt_find_one (tasks, &filter, NULL, &doc, &found, error); /* on the primary */
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
            *landed = bson_iter_init_find (&iter, &doc, decided[i]) && mt_value_equal (bson_iter_value (&field), bson_iter_value (&iter));
         }
      }
   }

cleanup:
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
   if (queues) {
      BSON_APPEND_DOCUMENT_BEGIN (&filter, "queue", &child);
      BSON_APPEND_ARRAY (&child, "$in", queues);
      bson_append_document_end (&filter, &child);
   }
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
   if (queues) {
      BSON_APPEND_DOCUMENT_BEGIN (&filter, "queue", &child);
      BSON_APPEND_ARRAY (&child, "$in", queues);
      bson_append_document_end (&filter, &child);
   }
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

/* ---- indexes ----------------------------------------------------------------
 *
 * The indexes, and why (docs/operations.md, "Indexes", repeats this list).
 * Each is ensured on its own, so that one an operator made differently
 * stops nothing else. When the server refuses one (an index of that name
 * with other keys, 86, or other options, 85; the same keys under another
 * name, 85), listIndexes tells whether an equivalent one exists: the same
 * keys, and the same uniqueness and partial filter. If so it serves; if
 * not, the worker still starts without it (slower) unless correctness
 * needs it (`required`: the unique ones). */
typedef struct {
   const char *collection;
   const char *name;
   const char *keys;    /* JSON */
   bool unique;
   const char *partial; /* JSON of the partialFilterExpression, or NULL */
   bool required;       /* correctness needs it: no start without it */
   const char *serves;  /* what it keeps (required) or speeds up, in messages */
} mt_index_spec_t;

static const mt_index_spec_t mt_index_specs[] = {
   /* Correctness first. */
   /* [0] unique_held: a unique_key while its task is live. Partial on
    * strings (not sparse): only tasks with a key are in it, and a stray
    * null can never collide. An older mtask made it sparse: accepted. */
   {MT_TASKS_COLLECTION,
    "mtask_unique",
    "{\"" MT_UNIQUE_HELD_FIELD "\": 1}",
    true,
    "{\"" MT_UNIQUE_HELD_FIELD "\": {\"$type\": \"string\"}}",
    true,
    "one live task per unique_key"},
   /* group_stages: one per (group, number), which keeps two enqueuers
    * from creating a stage twice. */
   {MT_GROUP_STAGES_COLLECTION,
    "mtask_stage",
    "{\"group\": 1, \"number\": 1}",
    true,
    NULL,
    true,
    "one stage document per group and number"},

   /* Speed: mtask is correct without these, and slower as tasks grow. */
   /* The claim's equality on status and queue, then its sort (priority
    * desc, created asc); also "what is pending in queue X". */
   {MT_TASKS_COLLECTION,
    "mtask_claim",
    "{\"status\": 1, \"queue\": 1, \"priority\": -1, \"created\": 1}",
    false,
    NULL,
    false,
    "claiming"},
   /* Counts by status and type ("which types wait unserved"). */
   {MT_TASKS_COLLECTION, "mtask_type", "{\"status\": 1, \"type\": 1}", false, NULL, false, "counting by type"},
   /* "What is worker X running", and recovery of a dead one. */
   {MT_TASKS_COLLECTION, "mtask_worker", "{\"worker_pid\": 1}", false, NULL, false, "finding a worker's tasks"},
   /* "What failed recently" (status, then newest first). */
   {MT_TASKS_COLLECTION,
    "mtask_finished",
    "{\"status\": 1, \"finished\": -1}",
    false,
    NULL,
    false,
    "listing recent ends"},
   /* A staged group's tasks by stage and status. */
   {MT_TASKS_COLLECTION,
    "mtask_group",
    "{\"group\": 1, \"stage\": 1, \"status\": 1}",
    false,
    NULL,
    false,
    "finding a stage's tasks"},
   /* The schedule's upkeep, every tick (schedule.c): successors planned
    * and not yet created, and ended runs of a series not yet planned. Each
    * partial, so it holds only those few tasks; one per kind, as MongoDB
    * 4.2's partial filters take neither $or nor $exists: false, and with
    * different keys, as indexes with the same keys and different filters
    * conflict before 5.0. */
   {MT_TASKS_COLLECTION,
    "mtask_successor_pending",
    "{\"next.created\": 1}",
    false,
    "{\"next.created\": false}",
    false,
    "finishing successors a crash left half made"},
   /* A run's previous run in its series (the dashboard's task screen):
    * only tasks of a series are in it. */
   {MT_TASKS_COLLECTION,
    "mtask_series",
    "{\"series\": 1, \"scheduled\": -1}",
    false,
    "{\"series\": {\"$exists\": true}}",
    false,
    "finding a run's previous run"},
   {MT_TASKS_COLLECTION,
    "mtask_repeat_unplanned",
    "{\"status\": 1, \"next\": 1, \"repeat\": 1}",
    false,
    "{\"repeat\": {\"$exists\": true}}",
    false,
    "planning repeating tasks' successors"},
   {MT_TASKS_COLLECTION,
    "mtask_cron_unplanned",
    "{\"status\": 1, \"next\": 1, \"cron\": 1}",
    false,
    "{\"cron\": {\"$exists\": true}}",
    false,
    "planning cron tasks' successors"},
   /* locks: _id is the account (unique by itself); releasing everything a
    * run holds looks up its owner. */
   {MT_LOCKS_COLLECTION,
    "mtask_lock_owner",
    "{\"task\": 1, \"attempt\": 1}",
    false,
    NULL,
    false,
    "releasing a run's locks"},
};

#define MT_INDEX_UNIQUE 0 /* mt_index_specs[MT_INDEX_UNIQUE] is mtask_unique */
#define MT_INDEX_COUNT (sizeof mt_index_specs / sizeof mt_index_specs[0])

/* Whether two BSON values say the same in an index: numbers by value (1
 * and 1.0), documents key by key in order, and a $type alias (2 for
 * "string") as its name. */
static bool
index_value_equal (const bson_value_t *a, const bson_value_t *b, bool is_type);

static bool
index_doc_equal (const bson_t *a, const bson_t *b)
{
   bson_iter_t ia, ib;

   if (!bson_iter_init (&ia, a) || !bson_iter_init (&ib, b)) {
      return false;
   }
   while (bson_iter_next (&ia)) {
      if (!bson_iter_next (&ib) || strcmp (bson_iter_key (&ia), bson_iter_key (&ib)) != 0 ||
          !index_value_equal (bson_iter_value (&ia), bson_iter_value (&ib), !strcmp (bson_iter_key (&ia), "$type"))) {
         return false;
      }
   }
   return !bson_iter_next (&ib);
}

static bool
index_number (const bson_value_t *v, double *out)
{
   switch (v->value_type) {
   case BSON_TYPE_INT32:
      *out = v->value.v_int32;
      return true;
   case BSON_TYPE_INT64:
      *out = (double) v->value.v_int64;
      return true;
   case BSON_TYPE_DOUBLE:
      *out = v->value.v_double;
      return true;
   default:
      return false;
   }
}

static bool
index_value_equal (const bson_value_t *a, const bson_value_t *b, bool is_type)
{
   double x, y;

   if (index_number (a, &x) && index_number (b, &y)) {
      return x == y;
   }
   if (a->value_type == BSON_TYPE_UTF8 && b->value_type == BSON_TYPE_UTF8) {
      return !strcmp (a->value.v_utf8.str, b->value.v_utf8.str);
   }
   if (is_type) {
      /* {$type: 2} is {$type: "string"} */
      const bson_value_t *name = a->value_type == BSON_TYPE_UTF8 ? a : b;
      const bson_value_t *code = a->value_type == BSON_TYPE_UTF8 ? b : a;

      return name->value_type == BSON_TYPE_UTF8 && index_number (code, &x) && x == 2 &&
             !strcmp (name->value.v_utf8.str, "string");
   }
   if ((a->value_type == BSON_TYPE_DOCUMENT || a->value_type == BSON_TYPE_ARRAY) && a->value_type == b->value_type) {
      bson_t da, db;

      return bson_init_static (&da, a->value.v_doc.data, a->value.v_doc.data_len) &&
             bson_init_static (&db, b->value.v_doc.data, b->value.v_doc.data_len) && index_doc_equal (&da, &db);
   }
   return false;
}

static bool
index_flag (const bson_t *index, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, index, key) && bson_iter_as_bool (&iter);
}

/* An index of listIndexes that does what `spec` does: the same keys, the
 * same uniqueness, the same partial filter, the simple collation. A sparse
 * index for our partial one is accepted (`*sparse`): an earlier mtask made
 * mtask_unique sparse, and it keeps keys unique as well. */
static bool
index_equivalent (const mt_index_spec_t *spec, const bson_t *keys, const bson_t *partial, const bson_t *index, bool *sparse)
{
   bson_iter_t iter;
   bson_t doc;
   bool has_partial = false;

   *sparse = false;
   if (!bson_iter_init_find (&iter, index, "key") || !BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      return false;
   }
   {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document (&iter, &len, &data);
      if (!bson_init_static (&doc, data, len) || !index_doc_equal (&doc, keys)) {
         return false;
      }
   }
   if (index_flag (index, "unique") != spec->unique) {
      return false;
   }
   if (bson_iter_init_find (&iter, index, "collation") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      bson_iter_t locale;

      if (!bson_iter_recurse (&iter, &locale) || !bson_iter_find (&locale, "locale") || !BSON_ITER_HOLDS_UTF8 (&locale) ||
          strcmp (bson_iter_utf8 (&locale, NULL), "simple") != 0) {
         return false;
      }
   }
   if (bson_iter_init_find (&iter, index, "partialFilterExpression") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;

      bson_iter_document (&iter, &len, &data);
      has_partial = true;
      if (!partial || !bson_init_static (&doc, data, len) || !index_doc_equal (&doc, partial)) {
         return false;
      }
   }
   if (index_flag (index, "sparse")) {
      if (has_partial || !partial) {
         return false;
      }
      *sparse = true;
      return true;
   }
   return has_partial == (partial != NULL);
}

/* `keys` as JSON, for messages: {"status": 1, ...}. */
static void
index_describe (const bson_t *index, char *out, size_t size)
{
   bson_t copy = BSON_INITIALIZER;
   bson_iter_t iter;
   char *json;

   /* What tells it apart: keys and options, not its version or namespace. */
   if (bson_iter_init (&iter, index)) {
      while (bson_iter_next (&iter)) {
         const char *key = bson_iter_key (&iter);

         if (strcmp (key, "v") != 0 && strcmp (key, "ns") != 0 && strcmp (key, "name") != 0) {
            BSON_APPEND_VALUE (&copy, key, bson_iter_value (&iter));
         }
      }
   }
   json = bson_as_relaxed_extended_json (&copy, NULL);
   bson_strncpy (out, json ? json : "?", size);
   bson_free (json);
   bson_destroy (&copy);
}

/* What became of one index. */
typedef enum {
   MT_INDEX_CREATED,    /* made, or already there */
   MT_INDEX_EQUIVALENT, /* an equivalent one serves: `message` says which */
   MT_INDEX_MISSING,    /* none: `message` says why and what to do */
} mt_index_state_t;

/* Ensures `spec` on `db`. Fails only when the server cannot be reached
 * (or cannot be asked): the error passes through untouched. */
static bool
index_ensure_one (mongoc_client_t *client,
                  const char *db,
                  const mt_index_spec_t *spec,
                  mt_index_state_t *state,
                  char *message,
                  size_t size,
                  bson_error_t *error)
{
   mongoc_database_t *database = mongoc_client_get_database (client, db);
   mongoc_collection_t *collection = NULL;
   mongoc_cursor_t *cursor = NULL;
   bson_t *keys = bson_new_from_json ((const uint8_t *) spec->keys, -1, error);
   bson_t *partial = spec->partial ? bson_new_from_json ((const uint8_t *) spec->partial, -1, error) : NULL;
   bson_t cmd = BSON_INITIALIZER, list, index, reply;
   bson_error_t cause, list_error;
   const bson_t *found;
   char named[512] = "", other[256] = "", why[600];
   bool ok = false, listed, sparse = false, equivalent = false;

   *state = MT_INDEX_MISSING;
   message[0] = '\0';
   if (!keys || (spec->partial && !partial)) {
      goto cleanup; /* a spec of ours that does not parse: a bug */
   }
   BSON_APPEND_UTF8 (&cmd, "createIndexes", spec->collection);
   BSON_APPEND_ARRAY_BEGIN (&cmd, "indexes", &list);
   BSON_APPEND_DOCUMENT_BEGIN (&list, "0", &index);
   BSON_APPEND_DOCUMENT (&index, "key", keys);
   BSON_APPEND_UTF8 (&index, "name", spec->name);
   if (spec->unique) {
      BSON_APPEND_BOOL (&index, "unique", true);
   }
   if (partial) {
      BSON_APPEND_DOCUMENT (&index, "partialFilterExpression", partial);
   }
   bson_append_document_end (&list, &index);
   bson_append_array_end (&cmd, &list);

   if (mongoc_database_write_command_with_opts (database, &cmd, NULL, &reply, &cause)) {
      *state = MT_INDEX_CREATED;
      ok = true;
      bson_destroy (&reply);
      goto cleanup;
   }
   if (mt_error_is_transient (&cause, &reply)) {
      /* Away or failing over, not a refusal: the caller waits and tries
       * again. */
      bson_destroy (&reply);
      *error = cause;
      goto cleanup;
   }
   bson_destroy (&reply);

   /* Refused: is there one that does the same? */
   collection = mongoc_database_get_collection (database, spec->collection);
   cursor = mongoc_collection_find_indexes_with_opts (collection, NULL);
   while (mongoc_cursor_next (cursor, &found)) {
      bson_iter_t iter;
      const char *name = bson_iter_init_find (&iter, found, "name") && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : "";

      if (!strcmp (name, spec->name)) {
         index_describe (found, named, sizeof named);
      }
      if (!equivalent || sparse) {
         bool is_sparse;

         /* The first equivalent, unless a later one is not merely sparse. */
         if (index_equivalent (spec, keys, partial, found, &is_sparse) && (!equivalent || !is_sparse)) {
            equivalent = true;
            sparse = is_sparse;
            bson_strncpy (other, name, sizeof other);
         }
      }
   }
   listed = !mongoc_cursor_error (cursor, &list_error);
   if (!listed && mt_error_is_transient (&list_error, NULL)) {
      *error = list_error;
      goto cleanup;
   }
   ok = true;
   /* Messages put the server's words last: a bson_error_t holds about 500
    * characters, and what to do must not be what is cut. */
   if (equivalent && sparse) {
      *state = MT_INDEX_EQUIVALENT;
      bson_snprintf (message,
                     size,
                     "index '%s' on %s.%s is sparse (made by an earlier mtask), not partial on strings; it keeps "
                     "%s all the same. To have this version's, drop it while nothing enqueues with a unique_key "
                     "(db.%s.dropIndex(\"%s\")) and start a worker again",
                     other,
                     db,
                     spec->collection,
                     spec->serves,
                     spec->collection,
                     other);
   } else if (equivalent && !strcmp (other, spec->name)) {
      /* It is there as it should be: the refusal was about something else
       * (e.g. a user allowed to list indexes but not to create them). */
      *state = MT_INDEX_CREATED;
   } else if (equivalent) {
      *state = MT_INDEX_EQUIVALENT;
      bson_snprintf (message,
                     size,
                     "index '%s' on %s.%s: the equivalent index '%s' is there and serves in its place; nothing to do "
                     "(to have mtask's name instead, drop '%s' and start a worker again). The server refused a "
                     "second one: %s",
                     spec->name,
                     db,
                     spec->collection,
                     other,
                     other,
                     cause.message);
   } else {
      char in_way[600];

      if (named[0]) {
         bson_snprintf (in_way, sizeof in_way, "the index of that name there is %s", named);
      } else if (listed) {
         bson_snprintf (in_way, sizeof in_way, "no equivalent index is there");
      } else {
         bson_snprintf (in_way, sizeof in_way, "its indexes cannot be listed (%s)", list_error.message);
      }
      if (named[0]) {
         bson_snprintf (why, sizeof why, "drop it (db.%s.dropIndex(\"%s\")) and start a worker again", spec->collection, spec->name);
      } else {
         bson_snprintf (why,
                        sizeof why,
                        "let the worker's user create indexes (role readWrite), or create %s%s%s%s named '%s' yourself",
                        spec->keys,
                        spec->unique ? ", unique" : "",
                        partial ? ", partialFilterExpression " : "",
                        partial ? spec->partial : "",
                        spec->name);
      }
      bson_snprintf (message,
                     size,
                     "index '%s' on %s.%s not made: %s; %s%s%s: %s; the server said: %s",
                     spec->name,
                     db,
                     spec->collection,
                     in_way,
                     spec->required ? "it is needed, for without it nothing keeps " : "mtask works without it, only ",
                     spec->serves,
                     spec->required ? "" : " is slower",
                     why,
                     cause.message);
   }

cleanup:
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (collection);
   bson_destroy (&cmd);
   bson_destroy (keys);
   bson_destroy (partial);
   mongoc_database_destroy (database);
   return ok;
}

/* ---- the unique index, once per process --------------------------------- */

/* The clusters and databases (URI, then db) where this process has seen
 * mtask_unique in place: an enqueue with a unique_key then costs no
 * createIndexes. A process that outlives the index (dropped by hand) does
 * not notice; a worker's start creates it again. */
#define MT_UNIQUE_MEMO_MAX 64

static pthread_mutex_t unique_memo_mutex = PTHREAD_MUTEX_INITIALIZER;
static char *unique_memo[MT_UNIQUE_MEMO_MAX];
static size_t unique_memo_n;
static pthread_once_t unique_memo_once = PTHREAD_ONCE_INIT;

/* A task run in a child (--isolate fork) may enqueue: the memo's mutex is
 * held across a fork, so the child never inherits it held by a thread it
 * does not have. */
static void
unique_memo_lock (void)
{
   pthread_mutex_lock (&unique_memo_mutex);
}

static void
unique_memo_unlock (void)
{
   pthread_mutex_unlock (&unique_memo_mutex);
}

static void
unique_memo_at_fork (void)
{
   pthread_atfork (unique_memo_lock, unique_memo_unlock, unique_memo_unlock);
}

static char *
unique_memo_key (mongoc_client_t *client, const char *db)
{
   const mongoc_uri_t *uri = mongoc_client_get_uri (client);

   return bson_strdup_printf ("%s\n%s", uri ? mongoc_uri_get_string (uri) : "", db);
}

static bool
unique_memo_has (mongoc_client_t *client, const char *db)
{
   char *key = unique_memo_key (client, db);
   bool found = false;

   pthread_once (&unique_memo_once, unique_memo_at_fork);
   pthread_mutex_lock (&unique_memo_mutex);
   for (size_t i = 0; i < unique_memo_n && !found; i++) {
      found = !strcmp (unique_memo[i], key);
   }
   pthread_mutex_unlock (&unique_memo_mutex);
   bson_free (key);
   return found;
}

static void
unique_memo_add (mongoc_client_t *client, const char *db)
{
   char *key = unique_memo_key (client, db);

   pthread_once (&unique_memo_once, unique_memo_at_fork);
   pthread_mutex_lock (&unique_memo_mutex);
   for (size_t i = 0; i < unique_memo_n && key; i++) {
      if (!strcmp (unique_memo[i], key)) {
         bson_free (key);
         key = NULL;
      }
   }
   if (key && unique_memo_n < MT_UNIQUE_MEMO_MAX) {
      /* Kept to the end of the process (full: no memo, one round trip). */
      unique_memo[unique_memo_n++] = key;
      key = NULL;
   }
   pthread_mutex_unlock (&unique_memo_mutex);
   bson_free (key);
}

/* Ensures every index; `ctx` (the worker's) says what it could not make
 * and goes on without the ones mtask can do without; with no `ctx`, any
 * index neither made nor matched by an equivalent fails the call. */
static bool
indexes_ensure (mt_context_t *ctx, mongoc_client_t *client, const char *db, bson_error_t *error)
{
   for (size_t i = 0; i < MT_INDEX_COUNT; i++) {
      const mt_index_spec_t *spec = &mt_index_specs[i];
      mt_index_state_t state;
      char message[1500];

      if (!index_ensure_one (client, db, spec, &state, message, sizeof message, error)) {
         return false;
      }
      if (state == MT_INDEX_MISSING && (spec->required || !ctx)) {
         bson_set_error (error, MT_ERROR_STORE, MT_STORE_ERROR_WRITE, "%s", message);
         return false;
      }
      if (state != MT_INDEX_CREATED && ctx) {
         mt_log (ctx, MT_LOG_WARNING, "%s", message);
      }
      if (i == MT_INDEX_UNIQUE) {
         unique_memo_add (client, db);
      }
   }
   return true;
}

bool
mt_indexes_ensure (mongoc_client_t *client, const char *db, bson_error_t *error)
{
   return indexes_ensure (NULL, client, db, error);
}

bool
mt_indexes_ensure_logged (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   return indexes_ensure (ctx, client, ctx->db, error);
}

/* ---- sharded collections ---------------------------------------------------- */

/* The shard key `key` (a document) is exactly one field `field`, ranged
 * (1) or, when `hashed_ok`, hashed. */
static bool
shard_key_is (const bson_t *key, const char *field, bool hashed_ok)
{
   bson_iter_t iter;
   double n;

   if (!bson_iter_init (&iter, key) || !bson_iter_next (&iter) || strcmp (bson_iter_key (&iter), field) != 0) {
      return false;
   }
   if (!(index_number (bson_iter_value (&iter), &n) && n == 1) &&
       !(hashed_ok && BSON_ITER_HOLDS_UTF8 (&iter) && !strcmp (bson_iter_utf8 (&iter, NULL), "hashed"))) {
      return false;
   }
   return !bson_iter_next (&iter);
}

/* A worker's start creates the tasks collection with its indexes: a
 * mistyped --db would silently make a new, empty database. Say so when
 * `tasks` is not there yet. A failure to list is left to the steps after. */
static void
warn_no_tasks (mt_context_t *ctx, mongoc_client_t *client)
{
   mongoc_database_t *database = mongoc_client_get_database (client, ctx->db);
   bson_t opts = BSON_INITIALIZER, filter;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool found;

   BSON_APPEND_DOCUMENT_BEGIN (&opts, "filter", &filter);
   BSON_APPEND_UTF8 (&filter, "name", MT_TASKS_COLLECTION);
   bson_append_document_end (&opts, &filter);
   cursor = mongoc_database_find_collections_with_opts (database, &opts);
   found = mongoc_cursor_next (cursor, &doc);
   if (!found && !mongoc_cursor_error (cursor, NULL)) {
      mt_log (ctx,
              MT_LOG_WARNING,
              "database '%s' has no '%s' collection yet: this worker creates it, and serves only what is enqueued "
              "there; if the tasks are in another database, check --db (or the database of the URI)",
              ctx->db,
              MT_TASKS_COLLECTION);
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&opts);
   mongoc_database_destroy (database);
}

bool
mt_collections_check (mt_context_t *ctx, mongoc_client_t *client, bson_error_t *error)
{
   static const char *const names[] = {MT_TASKS_COLLECTION, MT_SLOTS_COLLECTION, MT_LOCKS_COLLECTION, MT_GROUP_STAGES_COLLECTION};
   mongoc_collection_t *collections = mongoc_client_get_collection (client, "config", "collections");
   mongoc_read_prefs_t *primary = mongoc_read_prefs_new (MONGOC_READ_PRIMARY);
   bson_t filter = BSON_INITIALIZER, in, list, dropped;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_error_t read_error;
   bool ok = true;

   BSON_APPEND_DOCUMENT_BEGIN (&filter, "_id", &in);
   BSON_APPEND_ARRAY_BEGIN (&in, "$in", &list);
   for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      char k[16], ns[512];
      const char *kp;

      bson_uint32_to_string ((uint32_t) i, &kp, k, sizeof k);
      bson_snprintf (ns, sizeof ns, "%s.%s", ctx->db, names[i]);
      BSON_APPEND_UTF8 (&list, kp, ns);
   }
   bson_append_array_end (&in, &list);
   bson_append_document_end (&filter, &in);
   /* Before MongoDB 5.0 a dropped collection keeps its entry, marked. */
   BSON_APPEND_DOCUMENT_BEGIN (&filter, "dropped", &dropped);
   BSON_APPEND_BOOL (&dropped, "$ne", true);
   bson_append_document_end (&filter, &dropped);

   cursor = mongoc_collection_find_with_opts (collections, &filter, NULL, primary);
   while (ok && mongoc_cursor_next (cursor, &doc)) {
      bson_iter_t iter;
      const char *ns = bson_iter_init_find (&iter, doc, "_id") && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : "";
      const char *name = strlen (ns) > strlen (ctx->db) ? ns + strlen (ctx->db) + 1 : "";
      bson_t key = BSON_INITIALIZER;
      char *key_json;

      if (bson_iter_init_find (&iter, doc, "key") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
         const uint8_t *data;
         uint32_t len;

         bson_destroy (&key);
         bson_iter_document (&iter, &len, &data);
         bson_init_static (&key, data, len);
      }
      key_json = bson_as_relaxed_extended_json (&key, NULL);
      if (!strcmp (name, MT_TASKS_COLLECTION) || !strcmp (name, MT_SLOTS_COLLECTION)) {
         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_STATE,
                         "'%s' is sharded (shard key %s): mtask needs '%s.%s' and '%s.%s' unsharded, since its claims, "
                         "unique keys and slots rely on queries without a shard key and on unique indexes a sharded "
                         "collection cannot hold. Keep them unsharded (on MongoDB 8.0 and later: "
                         "unshardCollection), or give mtask a database of its own; docs/operations.md, "
                         "'Sharded clusters'",
                         ns,
                         key_json ? key_json : "?",
                         ctx->db,
                         MT_TASKS_COLLECTION,
                         ctx->db,
                         MT_SLOTS_COLLECTION);
         ok = false;
      } else if (!strcmp (name, MT_LOCKS_COLLECTION) && !shard_key_is (&key, "_id", true)) {
         mt_log (ctx,
                 MT_LOG_WARNING,
                 "'%s' is sharded on %s: account locks are found by _id (the account), so shard it on {_id: 1} "
                 "or {_id: \"hashed\"} only, or lock writes may fail or scan every shard; docs/operations.md, "
                 "'Sharded clusters'",
                 ns,
                 key_json ? key_json : "?");
      } else if (!strcmp (name, MT_GROUP_STAGES_COLLECTION) && !shard_key_is (&key, "group", false)) {
         mt_log (ctx,
                 MT_LOG_WARNING,
                 "'%s' is sharded on %s: stages are found by group and kept unique per (group, number), so shard "
                 "it on {group: 1} only, or creating a stage may fail; docs/operations.md, 'Sharded clusters'",
                 ns,
                 key_json ? key_json : "?");
      }
      bson_free (key_json);
      bson_destroy (&key);
   }
   if (ok && mongoc_cursor_error (cursor, &read_error)) {
      if (mt_error_is_transient (&read_error, NULL)) {
         *error = read_error; /* the server is away or failing over: the caller waits for it */
         ok = false;
      } else {
         /* A user with readWrite on the application's database alone
          * cannot read `config`: that does not stop the worker. */
         mt_log (ctx,
                 read_error.code == 13 ? MT_LOG_DEBUG : MT_LOG_INFO,
                 "not checking whether '%s.%s' or '%s.%s' is sharded (they must not be): cannot read "
                 "config.collections: %s",
                 ctx->db,
                 MT_TASKS_COLLECTION,
                 ctx->db,
                 MT_SLOTS_COLLECTION,
                 read_error.message);
      }
   }
   mongoc_cursor_destroy (cursor);
   bson_destroy (&filter);
   mongoc_read_prefs_destroy (primary);
   mongoc_collection_destroy (collections);
   if (ok) {
      warn_no_tasks (ctx, client);
   }
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
   if (!mt_queue_name_check (queue, error)) {
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
   mt_index_state_t state;
   char message[1500];

   if (unique_memo_has (client, db)) {
      return true;
   }
   if (!index_ensure_one (client, db, &mt_index_specs[MT_INDEX_UNIQUE], &state, message, sizeof message, error)) {
      return false;
   }
   if (state == MT_INDEX_MISSING) {
      bson_set_error (error, MT_ERROR_STORE, MT_STORE_ERROR_WRITE, "%s", message);
      return false;
   }
   unique_memo_add (client, db);
   return true;
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
   /* With the partial index's own condition, so that the index serves. */
   bson_t *filter = BCON_NEW (MT_UNIQUE_HELD_FIELD, "{", "$eq", BCON_UTF8 (key), "$type", "string", "}");
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
    * before the first insert into this database (then remembered for the
    * process: no round trip per enqueue). */
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

/* Where the user information of `uri` ("user:pass" of
 * "mongodb://user:pass@host/") starts and ends; false when it has none. The
 * end is the last '@', so that a password with an unescaped '@' or '/' is
 * hidden whole (a URI whose options hold an '@' loses its hosts too). */
static bool
uri_userinfo (const char *uri, size_t *start, size_t *end)
{
   const char *scheme = strstr (uri, "://");
   const char *from = scheme ? scheme + 3 : uri;
   const char *at = strrchr (from, '@');

   if (!at) {
      return false;
   }
   *start = (size_t) (from - uri);
   *end = (size_t) (at - uri);
   return true;
}

char *
mt_uri_redact (const char *uri)
{
   size_t start, end;

   if (!uri) {
      return bson_strdup ("");
   }
   if (!uri_userinfo (uri, &start, &end)) {
      return bson_strdup (uri);
   }
   return bson_strdup_printf ("%.*s***%s", (int) start, uri, uri + end);
}

/* The first `len` bytes of `needle` in the string `hay`, or NULL. */
static char *
find_bytes (char *hay, const char *needle, size_t len)
{
   for (char *p = hay; *p; p++) {
      if (!strncmp (p, needle, len)) {
         return p;
      }
   }
   return NULL;
}

/* Replaces each `secret` in `message` by "***". Secrets shorter than three
 * bytes are left: they would turn every such letter of the text to ***. */
static void
scrub (char *message, size_t size, const char *secret, size_t len)
{
   char *hit;

   if (len < 3) {
      return;
   }
   while ((hit = find_bytes (message, secret, len))) {
      char *rest = bson_strdup (hit + len);

      bson_snprintf (hit, size - (size_t) (hit - message), "***%s", rest);
      bson_free (rest);
   }
}

/* Hides in `message` the user and password of `uri`, as written and as
 * percent-decoded: a driver's error may quote either. */
static void
scrub_userinfo (char *message, size_t size, const char *uri)
{
   size_t start, end;
   char *info, *decoded;
   const char *colon;

   if (!uri || !uri_userinfo (uri, &start, &end)) {
      return;
   }
   info = bson_strndup (uri + start, end - start);
   scrub (message, size, info, strlen (info));
   colon = strchr (info, ':');
   scrub (message, size, info, colon ? (size_t) (colon - info) : strlen (info));
   if (colon) {
      scrub (message, size, colon + 1, strlen (colon + 1));
   }
   decoded = bson_strdup (info);
   {
      /* %XX to its byte, in place */
      char *w = decoded;

      for (const char *r = info; *r; r++) {
         if (r[0] == '%' && isxdigit ((unsigned char) r[1]) && isxdigit ((unsigned char) r[2])) {
            char hex[3] = {r[1], r[2], '\0'};

            *w++ = (char) strtol (hex, NULL, 16);
            r += 2;
         } else {
            *w++ = *r;
         }
      }
      *w = '\0';
   }
   colon = strchr (decoded, ':');
   scrub (message, size, decoded, colon ? (size_t) (colon - decoded) : strlen (decoded));
   if (colon) {
      scrub (message, size, colon + 1, strlen (colon + 1));
   }
   bson_free (decoded);
   bson_free (info);
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
         char *shown = mt_uri_redact (host);

         bson_set_error (error,
                         MT_ERROR_CONFIG,
                         MT_CONFIG_ERROR_URI,
                         "host '%s' is not a host name or address; give the port with --port, and anything "
                         "more (several hosts, options) with --uri",
                         shown);
         bson_free (shown);
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
      const char *given = uri && uri[0] ? uri : built;
      char *shown = mt_uri_redact (given);

      scrub_userinfo (cause.message, sizeof cause.message, given);
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_URI,
                      "cannot use MongoDB address '%s', not a valid MongoDB URI: %s",
                      shown,
                      cause.message);
      bson_free (shown);
   }
   bson_free (built);
   return result;
}

char *
mt_uri_read_file (const char *path, bson_error_t *error)
{
   struct stat st;
   FILE *file;
   char *text = NULL, *line;
   size_t len = 0;
   char buf[4096];
   size_t n;

   file = fopen (path, "r");
   if (!file) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "cannot read URI file '%s': %s", path, strerror (errno));
      return NULL;
   }
   if (fstat (fileno (file), &st) != 0 || !S_ISREG (st.st_mode)) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "URI file '%s' is not a regular file", path);
      fclose (file);
      return NULL;
   }
   if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_URI,
                      "refusing URI file '%s': its mode %04o lets %s read or change it, and it may hold a password; "
                      "make it its owner's alone: chmod 600 '%s'",
                      path,
                      (unsigned) (st.st_mode & 07777),
                      st.st_mode & (S_IROTH | S_IWOTH) ? "other users" : "its group",
                      path);
      fclose (file);
      return NULL;
   }
   while ((n = fread (buf, 1, sizeof buf, file)) > 0) {
      if (len + n > 65536) {
         bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "URI file '%s' is over 64 KiB; it should hold one URI", path);
         bson_free (text);
         fclose (file);
         return NULL;
      }
      text = bson_realloc (text, len + n + 1);
      memcpy (text + len, buf, n);
      len += n;
   }
   if (ferror (file)) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "cannot read URI file '%s': %s", path, strerror (errno));
      bson_free (text);
      fclose (file);
      return NULL;
   }
   fclose (file);
   if (!text) {
      text = bson_strdup ("");
   }
   text[len] = '\0';
   if (memchr (text, '\0', len)) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "URI file '%s' holds a NUL byte; it should hold one URI", path);
      bson_free (text);
      return NULL;
   }
   /* Trim, then one line. */
   while (len && isspace ((unsigned char) text[len - 1])) {
      text[--len] = '\0';
   }
   line = text;
   while (isspace ((unsigned char) *line)) {
      line++;
   }
   if (!*line || strpbrk (line, "\r\n")) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_URI,
                      "URI file '%s' %s; it should hold one line: mongodb://USER:PASSWORD@HOST/DB",
                      path,
                      *line ? "holds more than one line" : "is empty");
      bson_free (text);
      return NULL;
   }
   line = bson_strdup (line);
   bson_free (text);
   return line;
}

/* How many bytes the UTF-8 sequence at `s` takes, or 0 when it is not
 * valid (overlong forms, surrogates and code points past U+10FFFF too). */
static size_t
utf8_sequence (const unsigned char *s)
{
   size_t n;
   uint32_t cp;

   if (s[0] < 0x80) {
      return 1;
   } else if ((s[0] & 0xE0) == 0xC0) {
      n = 2;
      cp = s[0] & 0x1F;
   } else if ((s[0] & 0xF0) == 0xE0) {
      n = 3;
      cp = s[0] & 0x0F;
   } else if ((s[0] & 0xF8) == 0xF0) {
      n = 4;
      cp = s[0] & 0x07;
   } else {
      return 0;
   }
   for (size_t i = 1; i < n; i++) {
      if ((s[i] & 0xC0) != 0x80) {
         return 0;
      }
      cp = (cp << 6) | (s[i] & 0x3F);
   }
   if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
       (cp >= 0xD800 && cp <= 0xDFFF)) {
      return 0;
   }
   return n;
}

/* `name` fit for a message: control characters, bytes of invalid UTF-8
 * and the quote as \xNN, at most about 80 bytes. */
static void
printable_name (const char *name, char *out, size_t size)
{
   size_t o = 0;

   for (const unsigned char *p = (const unsigned char *) name; *p && o + 8 < size; p++) {
      size_t seq = utf8_sequence (p);

      if (o > 80) {
         bson_snprintf (out + o, size - o, "...");
         return;
      }
      if (seq > 1) {
         memcpy (out + o, p, seq);
         o += seq;
         p += seq - 1;
      } else if (seq == 0 || *p < 0x20 || *p == 0x7F || *p == '\'') {
         o += (size_t) bson_snprintf (out + o, size - o, "\\x%02X", *p);
      } else {
         out[o++] = (char) *p;
      }
   }
   out[o] = '\0';
}

bool
mt_queue_name_check (const char *name, bson_error_t *error)
{
   char shown[128];
   const char *why = NULL;
   size_t len;

   if (!name || !name[0]) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "a queue name cannot be empty");
      return false;
   }
   len = strlen (name);
   for (const unsigned char *p = (const unsigned char *) name; *p && !why;) {
      size_t seq = utf8_sequence (p);

      if (!seq) {
         why = "is not valid UTF-8";
      } else if (*p < 0x20 || *p == 0x7F || (p[0] == 0xC2 && p[1] >= 0x80 && p[1] < 0xA0)) {
         why = "holds a control character";
      } else if (*p == ',') {
         why = "holds a comma";
      } else if (*p == ' ' || (p[0] == 0xC2 && p[1] == 0xA0) || (p[0] == 0xE2 && p[1] == 0x80 && p[2] >= 0x80 && p[2] <= 0x8F) ||
                 (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF)) ||
                 (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)) {
         why = "holds white space";
      }
      p += seq ? seq : 1;
   }
   if (!why && len > MT_QUEUE_NAME_MAX) {
      why = "is too long";
   }
   if (why) {
      printable_name (name, shown, sizeof shown);
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "queue name '%s' %s; a queue name is 1 to %d bytes of UTF-8 without commas, white space or "
                      "control characters",
                      shown,
                      why,
                      MT_QUEUE_NAME_MAX);
      return false;
   }
   return true;
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
