/* Admin API: the task actions an operator takes, retry, cancel and delete,
 * on one task by id or on every task a filter matches, in `tasks` and in
 * the archive (`completed_tasks`). Each write is conditional on the state
 * the task was read in, so a task that changes meanwhile is refused, never
 * acted on in a state the action does not allow. */
#include "admin-private.h"

#include <string.h>

typedef enum { ACTION_RETRY, ACTION_CANCEL, ACTION_DELETE } action_t;

static const char *const action_names[] = {"retry", "cancel", "delete"};

static bool
is_ended (const char *status)
{
   return status && (!strcmp (status, MT_STATUS_FINISHED) || !strcmp (status, MT_STATUS_FAILED) ||
                     !strcmp (status, MT_STATUS_CANCELLED));
}

static bool
is_waiting (const char *status)
{
   return status && (!strcmp (status, MT_STATUS_CREATED) || !strcmp (status, MT_STATUS_WAITING));
}

/* Whether `action` may act on a task in `status` (in the archive when
 * `archived`); when not, `why` says so, for the operator. The outcome word
 * for the reply in `*done`. */
static bool
allowed (action_t action, const char *status, bool archived, bool force, const char **done, char *why, size_t size)
{
   const char *st = status ? status : "(no status)";

   switch (action) {
   case ACTION_RETRY:
      *done = "retried";
      if (status && (!strcmp (status, MT_STATUS_FAILED) || !strcmp (status, MT_STATUS_CANCELLED))) {
         return true;
      }
      if (status && !strcmp (status, MT_STATUS_FINISHED)) {
         snprintf (why, size, "it is FINISHED: it succeeded; enqueue a new task to run it again");
      } else if (is_waiting (status)) {
         snprintf (why, size, "it is %s: it waits to run already", st);
      } else if (status && !strcmp (status, MT_STATUS_WORK_IN_PROGRESS)) {
         snprintf (why, size, "it is WORK_IN_PROGRESS: it runs now; cancel it first, then retry it");
      } else {
         snprintf (why, size, "it is %s: only FAILED and CANCELLED tasks are retried", st);
      }
      return false;
   case ACTION_CANCEL:
      if (!archived && is_waiting (status)) {
         *done = "cancelled";
         return true;
      }
      if (!archived && status && !strcmp (status, MT_STATUS_WORK_IN_PROGRESS)) {
         *done = "stop requested";
         return true;
      }
      *done = "cancelled";
      if (is_ended (status)) {
         snprintf (why, size, "it is %s: it has ended already%s", st, archived ? " (archived)" : "");
      } else {
         snprintf (why, size, "it is %s: only CREATED, WAITING and WORK_IN_PROGRESS tasks are cancelled", st);
      }
      return false;
   case ACTION_DELETE:
      *done = "deleted";
      if (is_ended (status) || force) {
         return true;
      }
      snprintf (why, size, "it is %s: it has not ended; cancel it first, or delete it with --force", st);
      return false;
   }
   return false;
}

/* The write of `action` on `doc` in `coll`, conditional on its status as
 * read. *changed: whether it matched (false: it changed meanwhile). */
static bool
act_one (mongoc_client_t *client,
         const char *db,
         action_t action,
         const char *coll_name,
         const bson_t *doc,
         bool *changed,
         bool *key_taken,
         bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, coll_name);
   bson_t filter = BSON_INITIALIZER, reply = BSON_INITIALIZER;
   const char *status = mt_admin_str (doc, "status");
   bool archived = !strcmp (coll_name, MT_COMPLETED_COLLECTION);
   bson_iter_t iter, id_iter;
   bool ok = false;

   *changed = false;
   *key_taken = false;
   if (!bson_iter_init_find (&id_iter, doc, "_id")) {
      bson_set_error (error, MT_ERROR_STORE, MT_STORE_ERROR_NOT_FOUND, "a task document without an _id");
      goto cleanup;
   }
   BSON_APPEND_VALUE (&filter, "_id", bson_iter_value (&id_iter));
   if (status) {
      BSON_APPEND_UTF8 (&filter, "status", status);
   } else {
      BSON_APPEND_NULL (&filter, "status");
   }

   if (action == ACTION_DELETE) {
      ok = mongoc_collection_delete_one (coll, &filter, NULL, &reply, error);
      *changed = ok && mt_admin_int (&reply, "deletedCount", 0) > 0;
   } else if (action == ACTION_CANCEL && status && !strcmp (status, MT_STATUS_WORK_IN_PROGRESS)) {
      /* The worker running it sees this at its next upkeep turn: the
       * plugin's mt_task_should_stop() turns true, an isolated child is
       * killed after the grace; the outcome is CANCELLED. */
      bson_t *update = BCON_NEW ("$currentDate", "{", "cancel_requested", BCON_BOOL (true), "}");

      ok = mongoc_collection_update_one (coll, &filter, update, NULL, &reply, error);
      *changed = ok && mt_admin_int (&reply, "matchedCount", 0) > 0;
      bson_destroy (update);
   } else if (action == ACTION_CANCEL) {
      bson_t *update = BCON_NEW ("$set",
                                 "{",
                                 "status",
                                 MT_STATUS_CANCELLED,
                                 "status_message",
                                 "cancelled by request before it ran",
                                 "worker_pid",
                                 BCON_NULL,
                                 "}",
                                 "$unset",
                                 "{",
                                 MT_UNIQUE_HELD_FIELD,
                                 "",
                                 "claim",
                                 "",
                                 "}",
                                 "$currentDate",
                                 "{",
                                 "finished",
                                 BCON_BOOL (true),
                                 "}");

      ok = mongoc_collection_update_one (coll, &filter, update, NULL, &reply, error);
      *changed = ok && mt_admin_int (&reply, "matchedCount", 0) > 0;
      bson_destroy (update);
   } else {
      /* Retry: back to CREATED, due now, a fresh budget; the last error
       * stays in `errors`. An archived task goes back into `tasks`. */
      const char *key = mt_admin_str (doc, "unique_key");
      bson_t task = BSON_INITIALIZER;
      static const char *const dropped[] = {"finished", "error", "claim", "cancel_requested", "status_message",
                                            "worker_pid", "delayed", "status", "failures", MT_UNIQUE_HELD_FIELD, "result"};

      bson_iter_init (&iter, doc);
      while (bson_iter_next (&iter)) {
         bool drop = false;

         for (size_t k = 0; k < sizeof dropped / sizeof dropped[0]; k++) {
            drop |= !strcmp (bson_iter_key (&iter), dropped[k]);
         }
         if (!drop) {
            bson_append_value (&task, bson_iter_key (&iter), -1, bson_iter_value (&iter));
         }
      }
      BSON_APPEND_UTF8 (&task, "status", MT_STATUS_CREATED);
      BSON_APPEND_NULL (&task, "delayed"); /* due now */
      BSON_APPEND_NULL (&task, "worker_pid");
      BSON_APPEND_INT32 (&task, "failures", 0);
      if (key) {
         BSON_APPEND_UTF8 (&task, MT_UNIQUE_HELD_FIELD, key);
      }
      if (key) {
         /* Without the unique index (no worker has created it yet) the
          * insert below would not see a holder: look first. */
         mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
         bson_t held = BSON_INITIALIZER, not_self;
         int64_t n;

         BSON_APPEND_UTF8 (&held, MT_UNIQUE_HELD_FIELD, key);
         BSON_APPEND_DOCUMENT_BEGIN (&held, "_id", &not_self);
         BSON_APPEND_VALUE (&not_self, "$ne", bson_iter_value (&id_iter));
         bson_append_document_end (&held, &not_self);
         n = mongoc_collection_count_documents (tasks, &held, NULL, NULL, NULL, error);
         bson_destroy (&held);
         mongoc_collection_destroy (tasks);
         if (n != 0) {
            *key_taken = n > 0;
            ok = n > 0;
            goto done;
         }
      }
      if (archived) {
         mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);

         /* Into `tasks` first, then out of the archive: a failure between
          * leaves a copy in the archive, never none. */
         ok = mongoc_collection_insert_one (tasks, &task, NULL, NULL, error);
         if (!ok && error->code == 11000) {
            *key_taken = true;
            ok = true;
         } else if (ok) {
            ok = mongoc_collection_delete_one (coll, &filter, NULL, &reply, error);
            *changed = true;
         }
         mongoc_collection_destroy (tasks);
      } else {
         ok = mongoc_collection_replace_one (coll, &filter, &task, NULL, &reply, error);
         if (!ok && error->code == 11000) {
            *key_taken = true;
            ok = true;
         } else {
            *changed = ok && mt_admin_int (&reply, "matchedCount", 0) > 0;
         }
      }
   done:
      bson_destroy (&task);
   }

cleanup:
   bson_destroy (&reply);
   bson_destroy (&filter);
   mongoc_collection_destroy (coll);
   return ok;
}

/* Appends one line of the reply: the task, where, its status, what was
 * (or would be) done, and why not when refused. */
static void
append_item (bson_t *list, uint32_t i, const bson_t *doc, const char *coll, const char *outcome, const char *why)
{
   bson_t item;
   bson_iter_t iter;
   char key[16];
   const char *status = mt_admin_str (doc, "status");

   bson_append_document_begin (list, mt_admin_array_key (i, key), -1, &item);
   if (bson_iter_init_find (&iter, doc, "_id")) {
      BSON_APPEND_VALUE (&item, "_id", bson_iter_value (&iter));
   }
   BSON_APPEND_UTF8 (&item, "collection", coll);
   if (status) {
      BSON_APPEND_UTF8 (&item, "status", status);
   } else {
      BSON_APPEND_NULL (&item, "status");
   }
   BSON_APPEND_UTF8 (&item, "outcome", outcome);
   if (why) {
      BSON_APPEND_UTF8 (&item, "reason", why);
   }
   bson_append_document_end (list, &item);
}

static bool
task_action (action_t action,
             mongoc_client_t *client,
             const char *db,
             const bson_oid_t *id,
             const bson_t *opts,
             bson_t *reply,
             bson_error_t *error)
{
   const char *queue = NULL, *status = NULL, *type = NULL;
   int64_t since = -1;
   bool dry_run = false, force = false;
   const mt_admin_opt_t spec[] = {
      {"queue", MT_ADMIN_OPT_STRING, &queue},
      {"status", MT_ADMIN_OPT_STRING, &status},
      {"type", MT_ADMIN_OPT_STRING, &type},
      {"since", MT_ADMIN_OPT_COUNT, &since},
      {"dry_run", MT_ADMIN_OPT_BOOL, &dry_run},
      {"force", MT_ADMIN_OPT_BOOL, &force},
      {NULL},
   };
   const char *colls[] = {MT_TASKS_COLLECTION, MT_COMPLETED_COLLECTION};
   bson_t filter = BSON_INITIALIZER, list;
   mt_admin_docs_t docs[2] = {{0}};
   int64_t n_done = 0, n_refused = 0;
   uint32_t n = 0;
   bool ok = false, list_open = false;
   char hex[25];

   if (!mt_admin_begin (reply, opts, spec, error)) {
      goto cleanup;
   }
   if (force && action != ACTION_DELETE) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_OPTION, "Invalid option 'force': only delete takes it");
      goto cleanup;
   }
   if (id && (queue || status || type || since >= 0)) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID,
                      "%s: give a task id or a filter (status, queue, type, since), not both", action_names[action]);
      goto cleanup;
   }
   if (!id && !queue && !status && !type && since < 0) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID,
                      "%s which tasks? give a task id or a filter (status, queue, type, since)", action_names[action]);
      goto cleanup;
   }
   if (id) {
      BSON_APPEND_OID (&filter, "_id", id);
   }
   mt_admin_task_filter (&filter, queue, status, type);
   if (since >= 0) {
      /* Changed within the last `since` seconds: ended then, or created
       * then when it has not ended. */
      struct timeval tv;
      int64_t from;
      bson_t *clause;

      bson_gettimeofday (&tv);
      from = (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000 - since * 1000;
      clause = BCON_NEW ("$or",
                                 "[",
                                 "{",
                                 "finished",
                                 "{",
                                 "$gte",
                                 BCON_DATE_TIME (from),
                                 "}",
                                 "}",
                                 "{",
                                 "finished",
                                 BCON_NULL,
                                 "created",
                                 "{",
                                 "$gte",
                                 BCON_DATE_TIME (from),
                                 "}",
                                 "}",
                                 "]");

      bson_concat (&filter, clause);
      bson_destroy (clause);
   }

   /* Read first, then act on each as read: the list of what was matched
    * is the same with --dry-run and without. */
   for (int c = 0; c < 2; c++) {
      if (!mt_admin_docs_read (client, db, colls[c], &filter, NULL, &docs[c], error)) {
         mt_admin_fail (reply, colls[c], NULL);
         goto cleanup;
      }
   }
   if (id && !docs[0].len && !docs[1].len) {
      bson_oid_to_string (id, hex);
      mt_admin_not_found (reply, MT_TASKS_COLLECTION, error, MT_ERROR_STORE, MT_STORE_ERROR_NOT_FOUND,
                          "no task with id %s in %s.%s nor in %s.%s", hex, db, MT_TASKS_COLLECTION, db,
                          MT_COMPLETED_COLLECTION);
      goto cleanup;
   }

   BSON_APPEND_BOOL (reply, "dry_run", dry_run);
   BSON_APPEND_ARRAY_BEGIN (reply, "tasks", &list);
   list_open = true;
   for (int c = 0; c < 2; c++) {
      for (size_t i = 0; i < docs[c].len; i++) {
         const bson_t *doc = docs[c].items[i];
         const char *done;
         char why[256];
         bool changed, key_taken;

         if (!allowed (action, mt_admin_str (doc, "status"), c == 1, force, &done, why, sizeof why)) {
            append_item (&list, n++, doc, colls[c], "refused", why);
            n_refused++;
            continue;
         }
         if (dry_run) {
            append_item (&list, n++, doc, colls[c], done, NULL);
            n_done++;
            continue;
         }
         if (!act_one (client, db, action, colls[c], doc, &changed, &key_taken, error)) {
            bson_append_array_end (reply, &list);
            list_open = false;
            mt_admin_fail (reply, colls[c], NULL);
            goto cleanup;
         }
         if (key_taken) {
            append_item (&list, n++, doc, colls[c], "refused",
                         "another live task holds its unique_key now; cancel or delete that one first");
            n_refused++;
         } else if (!changed) {
            append_item (&list, n++, doc, colls[c], "refused", "it changed meanwhile; look again and repeat");
            n_refused++;
         } else {
            append_item (&list, n++, doc, colls[c], done, NULL);
            n_done++;
         }
      }
   }
   bson_append_array_end (reply, &list);
   list_open = false;
   BSON_APPEND_INT64 (reply, "done", n_done);
   BSON_APPEND_INT64 (reply, "refused", n_refused);
   ok = true;

cleanup:
   if (list_open) {
      bson_append_array_end (reply, &list);
   }
   mt_admin_docs_destroy (&docs[0]);
   mt_admin_docs_destroy (&docs[1]);
   bson_destroy (&filter);
   return ok;
}

bool
mt_admin_retry (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   return task_action (ACTION_RETRY, client, db, id, opts, reply, error);
}

bool
mt_admin_cancel (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   return task_action (ACTION_CANCEL, client, db, id, opts, reply, error);
}

bool
mt_admin_delete (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   return task_action (ACTION_DELETE, client, db, id, opts, reply, error);
}
