/* transfer: moves params.amount from account params.from to params.to.
 *
 * Balances live in the `accounts` collection of the worker's database as
 * {_id: name, balance: number}. The plugin reads both, pauses
 * params.pause_ms, and writes both back: a plain read-modify-write, so only
 * the account locks stand between two transfers and a lost update. Set
 * params.use_locks to false to see what they prevent. Balances are read on
 * the primary: a read that decides a write must see the last write. When an
 * account is busy the task delays itself, as seed 001's tasks do:
 *
 *   with AccountLockContext(self, [a, b]) as locks:
 *       if not locks:
 *           self._set_delay()
 *           return
 */
#include <mongoc/mongoc.h>
#include <mtask/plugin.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
   const char *from;
   const char *to;
   int64_t amount;
   int64_t pause_ms;
   bool use_locks;
} transfer_t;

static bool
read_balance (mongoc_collection_t *accounts, const char *name, int64_t *balance, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER;
   mongoc_read_prefs_t *primary = mongoc_read_prefs_new (MONGOC_READ_PRIMARY);
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_iter_t iter;
   bool found = false, ok;

   BSON_APPEND_UTF8 (&filter, "_id", name);
   /* On the primary, whatever the client's read preference: a secondary
    * may not have the last transfer's write yet, and the balance written
    * back would undo it. (The worker's client reads from the primary
    * already; this read says so itself.) */
   cursor = mongoc_collection_find_with_opts (accounts, &filter, NULL, primary);
   if (mongoc_cursor_next (cursor, &doc) && bson_iter_init_find (&iter, doc, "balance") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      *balance = bson_iter_as_int64 (&iter);
      found = true;
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_read_prefs_destroy (primary);
   bson_destroy (&filter);
   if (ok && !found) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "transfer: no account '%s' with a numeric balance", name);
      ok = false;
   }
   return ok;
}

static bool
write_balance (mongoc_collection_t *accounts, const char *name, int64_t balance, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
   bool ok;

   BSON_APPEND_UTF8 (&filter, "_id", name);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_INT64 (&set, "balance", balance);
   bson_append_document_end (&update, &set);
   ok = mongoc_collection_update_one (accounts, &filter, &update, NULL, NULL, error);
   bson_destroy (&filter);
   bson_destroy (&update);
   return ok;
}

static bool
move_money (mt_task_t *task, void *data, bson_error_t *error)
{
   const transfer_t *t = data;
   mongoc_client_t *client = mt_task_mongoc_client (task);
   mongoc_collection_t *accounts = mongoc_client_get_collection (client, mt_task_db_name (task), "accounts");
   int64_t from_balance, to_balance;
   bson_t result = BSON_INITIALIZER;
   bool ok = false;

   if (!read_balance (accounts, t->from, &from_balance, error) || !read_balance (accounts, t->to, &to_balance, error)) {
      goto cleanup;
   }
   if (t->pause_ms > 0) {
      struct timespec ts = {.tv_sec = (time_t) (t->pause_ms / 1000), .tv_nsec = (long) (t->pause_ms % 1000) * 1000000L};
      nanosleep (&ts, NULL);
   }
   if (!write_balance (accounts, t->from, from_balance - t->amount, error) ||
       !write_balance (accounts, t->to, to_balance + t->amount, error)) {
      goto cleanup;
   }
   BSON_APPEND_INT64 (&result, "from_balance", from_balance - t->amount);
   BSON_APPEND_INT64 (&result, "to_balance", to_balance + t->amount);
   ok = mt_task_set_result (task, &result, error);

cleanup:
   bson_destroy (&result);
   mongoc_collection_destroy (accounts);
   return ok;
}

static bool
bad_params (bson_error_t *error, const char *what)
{
   bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "transfer: %s", what);
   return false;
}

static bool
transfer_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const bson_t *params = mt_task_params (task);
   transfer_t t = {.use_locks = true};
   bson_iter_t iter;
   bson_error_t busy;

   (void) state;
   if (!bson_iter_init_find (&iter, params, "from") || !BSON_ITER_HOLDS_UTF8 (&iter) ||
       !(t.from = bson_iter_utf8 (&iter, NULL))[0] || !bson_iter_init_find (&iter, params, "to") ||
       !BSON_ITER_HOLDS_UTF8 (&iter) || !(t.to = bson_iter_utf8 (&iter, NULL))[0] || !strcmp (t.from, t.to)) {
      return bad_params (error, "params.from and params.to must name two different accounts");
   }
   if (!bson_iter_init_find (&iter, params, "amount") || !BSON_ITER_HOLDS_NUMBER (&iter)) {
      return bad_params (error, "params.amount must be a number");
   }
   t.amount = bson_iter_as_int64 (&iter);
   if (bson_iter_init_find (&iter, params, "pause_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      t.pause_ms = bson_iter_as_int64 (&iter);
   }
   if (bson_iter_init_find (&iter, params, "use_locks")) {
      t.use_locks = bson_iter_as_bool (&iter);
   }
   if (!t.use_locks) {
      return move_money (task, &t, error);
   }

   const char *pair[] = {t.from, t.to};
   if (mt_task_with_accounts (task, pair, 2, move_money, &t, &busy)) {
      return true;
   }
   if (busy.domain == MT_ERROR_LOCK && busy.code == MT_LOCK_ERROR_BUSY) {
      /* Not now: try again shortly, with jitter so that two transfers
       * waiting on each other's accounts do not meet again. */
      return mt_task_delay (task, 0.02 + (double) (rand () % 80) / 1000.0, error);
   }
   *error = busy;
   return false;
}

MT_PLUGIN_DEFINE (.type = "transfer",
                  .description = "moves params.amount between two accounts under account locks",
                  .process = transfer_process)
