/* The JSON API: GET /api/NAME[/ID] answers with the reply of the admin call
 * mt_admin_NAME, its query string as the call's options; POST
 * /api/action/NAME runs one task or worker action. Each option's value
 * comes in as text and goes to the call as the kind it takes (a count, a
 * boolean); the call itself judges keys and values, so that its messages
 * ("Invalid option 'KEY'") are the API's. */
#include "web.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The options that are not strings, by kind: what the admin calls take
 * (core/include/mtask/mtask.h). Any other key goes as a string. */
static const char *const bool_opts[] = {"archive", "stages", "dry_run", "force", NULL};
static const char *const count_opts[] = {"limit", "skip", "since", "grace", NULL};

static bool
listed (const char *const *list, const char *key)
{
   for (; *list; list++) {
      if (!strcmp (*list, key)) {
         return true;
      }
   }
   return false;
}

void
web_error (web_reply_t *out, unsigned int status, const char *format, ...)
{
   va_list ap;
   char *message;
   bson_t doc = BSON_INITIALIZER;

   va_start (ap, format);
   message = bson_strdupv_printf (format, ap);
   va_end (ap);
   BSON_APPEND_UTF8 (&doc, "error", message);
   web_json (out, &doc);
   out->status = status;
   bson_destroy (&doc);
   bson_free (message);
}

void
web_json (web_reply_t *out, const bson_t *doc)
{
   out->body = bson_as_relaxed_extended_json (doc, &out->len);
   out->status = 200;
   out->mime = "application/json";
   out->is_static = false;
}

unsigned int
web_error_status (const bson_error_t *error)
{
   switch (error->domain) {
   case MT_ERROR_CONFIG:
      if (error->code == MT_CONFIG_ERROR_NOT_FOUND) {
         return 404;
      }
      if (error->code == MT_CONFIG_ERROR_STATE) {
         return 409;
      }
      return 400;
   case MT_ERROR_STORE:
      return error->code == MT_STORE_ERROR_NOT_FOUND ? 404 : 500;
   case MONGOC_ERROR_SERVER_SELECTION:
   case MONGOC_ERROR_STREAM:
   case MONGOC_ERROR_CLIENT:
      return 503;
   default:
      return 500;
   }
}

/* An admin call's error as the answer: its message, and for an
 * unreachable database what that means for the page. */
static void
web_call_error (web_reply_t *out, const bson_error_t *error)
{
   unsigned int status = web_error_status (error);

   if (status == 503) {
      web_error (out, status, "the database does not answer (%s); the pages show the last data they read until it does",
                 error->message);
   } else {
      web_error (out, status, "%s", error->message);
   }
}

/* The query string as options: counts and booleans converted when they
 * read as such; left as text otherwise, for the call to refuse. */
static bool
params_to_opts (const web_param_t *params, size_t n, bson_t *opts, web_reply_t *out)
{
   for (size_t i = 0; i < n; i++) {
      const char *key = params[i].key, *value = params[i].value ? params[i].value : "";
      char *end = NULL;

      for (size_t j = 0; j < i; j++) {
         if (!strcmp (params[j].key, key)) {
            web_error (out, 400, "parameter '%s' is given twice: give it once", key);
            return false;
         }
      }
      if (listed (bool_opts, key) && (!strcmp (value, "true") || !strcmp (value, "1"))) {
         BSON_APPEND_BOOL (opts, key, true);
      } else if (listed (bool_opts, key) && (!strcmp (value, "false") || !strcmp (value, "0"))) {
         BSON_APPEND_BOOL (opts, key, false);
      } else if (listed (count_opts, key) && value[0] >= '0' && value[0] <= '9' &&
                 (strtoll (value, &end, 10), end && !*end && strlen (value) < 16)) {
         BSON_APPEND_INT64 (opts, key, strtoll (value, NULL, 10));
      } else {
         BSON_APPEND_UTF8 (opts, key, value);
      }
   }
   return true;
}

/* An ObjectId from the path, or a 400. */
static bool
path_oid (const char *id, const char *what, bson_oid_t *oid, web_reply_t *out)
{
   if (!id || strlen (id) != 24 || !bson_oid_is_valid (id, 24)) {
      web_error (out, 400, "'%s' is not a %s id: give the 24 hex digits of its _id", id ? id : "", what);
      return false;
   }
   bson_oid_init_from_string (oid, id);
   return true;
}

/* /api/tasks lists at most WEB_TASKS_LIMIT_MAX tasks: the memory of an
 * answer is bounded whatever the collection's size. */
static bool
tasks_limit (bson_t *opts, web_reply_t *out)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, opts, "limit")) {
      BSON_APPEND_INT64 (opts, "limit", WEB_TASKS_LIMIT_DEFAULT);
      return true;
   }
   if (BSON_ITER_HOLDS_INT (&iter) &&
       (bson_iter_as_int64 (&iter) < 1 || bson_iter_as_int64 (&iter) > WEB_TASKS_LIMIT_MAX)) {
      web_error (out, 400, "option 'limit' must be 1 to %d", WEB_TASKS_LIMIT_MAX);
      return false;
   }
   return true;
}

void
web_api_get (web_t *web, const char *path, const web_param_t *params, size_t n_params, web_reply_t *out)
{
   char name[32];
   const char *slash = strchr (path, '/');
   const char *id = slash ? slash + 1 : NULL;
   size_t len = slash ? (size_t) (slash - path) : strlen (path);
   bson_t opts = BSON_INITIALIZER, reply = BSON_INITIALIZER;
   bson_error_t error = {0};
   mongoc_client_t *client = NULL;
   bson_oid_t oid;
   bool ok = false;

   if (len >= sizeof name || (id && (!id[0] || strchr (id, '/')))) {
      web_error (out, 404, "no API call '%s': see docs/web.md for the calls", path);
      goto done;
   }
   memcpy (name, path, len);
   name[len] = '\0';
   if (!params_to_opts (params, n_params, &opts, out)) {
      goto done;
   }
   /* Calls about one thing take its id; the others none. */
   {
      static const char *const with_id[] = {"task", "group", "stage", "sync", NULL};
      static const char *const without[] = {"overview", "stats", "tasks", "groups", "syncs", "workers",
                                            "locks", "pools", "slots", "schedules", NULL};
      if (!(id ? listed (with_id, name) : listed (without, name))) {
         web_error (out, 404, "no API call '%s': see docs/web.md for the calls", path);
         goto done;
      }
   }
   if (!strcmp (name, "tasks") && !tasks_limit (&opts, out)) {
      goto done;
   }
   if ((!strcmp (name, "task") && !path_oid (id, "task", &oid, out)) ||
       (!strcmp (name, "group") && !path_oid (id, "group", &oid, out)) ||
       (!strcmp (name, "stage") && !path_oid (id, "stage", &oid, out))) {
      goto done;
   }
   bson_destroy (&reply);
   client = mongoc_client_pool_pop (web->pool);
   if (!strcmp (name, "overview") || !strcmp (name, "stats")) {
      ok = mt_admin_stats (client, web->db, &opts, &reply, &error);
   } else if (!strcmp (name, "tasks")) {
      ok = mt_admin_tasks (client, web->db, &opts, &reply, &error);
   } else if (!strcmp (name, "task")) {
      ok = mt_admin_task (client, web->db, &oid, &opts, &reply, &error);
   } else if (!strcmp (name, "groups")) {
      ok = mt_admin_groups (client, web->db, &opts, &reply, &error);
   } else if (!strcmp (name, "group")) {
      ok = mt_admin_group (client, web->db, &oid, &opts, &reply, &error);
   } else if (!strcmp (name, "stage")) {
      /* A staged group's stage and its tasks; else a synchronizer's stage
       * (the page tells them apart by the stage's `group`). */
      ok = mt_admin_stage (client, web->db, &oid, &opts, &reply, &error);
      if (!ok && error.domain == MT_ERROR_CONFIG && error.code == MT_CONFIG_ERROR_NOT_FOUND) {
         bson_destroy (&reply);
         ok = mt_admin_sync_stage (client, web->db, &oid, NULL, &reply, &error);
         if (!ok && error.domain == MT_ERROR_CONFIG && error.code == MT_CONFIG_ERROR_NOT_FOUND) {
            bson_snprintf (error.message, sizeof error.message,
                           "no stage %s in %s.group_stages nor in %s.stages: a stage's id is the _id its group or "
                           "synchronizer screen links to", id, web->db, web->db);
         }
      }
   } else if (!strcmp (name, "syncs")) {
      ok = mt_admin_syncs (client, web->db, &opts, &reply, &error);
   } else if (!strcmp (name, "sync")) {
      ok = mt_admin_sync (client, web->db, id, &opts, &reply, &error);
   } else if (!strcmp (name, "workers")) {
      ok = mt_admin_workers (client, web->db, &opts, &reply, &error);
   } else if (!strcmp (name, "locks")) {
      ok = mt_admin_locks (client, web->db, &opts, &reply, &error);
   } else if (!strcmp (name, "pools") || !strcmp (name, "slots")) {
      ok = mt_admin_slots (client, web->db, &opts, &reply, &error);
   } else {
      ok = mt_admin_schedules (client, web->db, &opts, &reply, &error);
   }
   mongoc_client_pool_push (web->pool, client);
   if (ok) {
      web_json (out, &reply);
   } else {
      web_call_error (out, &error);
   }

done:
   bson_destroy (&reply);
   bson_destroy (&opts);
}

/* The body of an action: a JSON object; `id` taken out of it, the rest
 * its options. */
static bool
action_body (const char *body, size_t len, bson_t *opts, char **id, web_reply_t *out)
{
   bson_t doc;
   bson_iter_t iter;
   bson_error_t error;

   if (!len) {
      web_error (out, 400, "the body must be a JSON object: {\"id\": ...} or a filter, e.g. {\"status\": \"FAILED\"}");
      return false;
   }
   if (!bson_init_from_json (&doc, body, (ssize_t) len, &error)) {
      web_error (out, 400, "the body is not a JSON object: %s", error.message);
      return false;
   }
   bson_iter_init (&iter, &doc);
   while (bson_iter_next (&iter)) {
      if (!strcmp (bson_iter_key (&iter), "id")) {
         if (!BSON_ITER_HOLDS_UTF8 (&iter) || !bson_iter_utf8 (&iter, NULL)[0]) {
            web_error (out, 400, "'id' must be a non-empty string");
            bson_destroy (&doc);
            return false;
         }
         *id = bson_strdup (bson_iter_utf8 (&iter, NULL));
      } else {
         bson_append_iter (opts, NULL, 0, &iter);
      }
   }
   bson_destroy (&doc);
   return true;
}

void
web_api_action (web_t *web, const char *name, const char *body, size_t len, web_reply_t *out)
{
   bson_t opts = BSON_INITIALIZER, reply = BSON_INITIALIZER;
   bson_error_t error = {0};
   mongoc_client_t *client = NULL;
   char *id = NULL;
   bson_oid_t oid;
   bool task_action = !strcmp (name, "retry") || !strcmp (name, "cancel") || !strcmp (name, "delete");
   bool ok = false;

   if (!task_action && strcmp (name, "worker-quiet") && strcmp (name, "worker-stop") && strcmp (name, "slot-stop") &&
       strcmp (name, "group-start") && strcmp (name, "sync-start")) {
      web_error (out, 404, "no action '%s': actions are retry, cancel, delete, worker-quiet, worker-stop, slot-stop, "
                 "group-start and sync-start", name);
      goto done;
   }
   if (!action_body (body, len, &opts, &id, out)) {
      goto done;
   }
   if (task_action) {
      if (!id && bson_empty (&opts)) {
         web_error (out, 400, "%s which tasks? give {\"id\": TASK_ID} or a filter (queue, status, type, since)", name);
         goto done;
      }
      if (id && !path_oid (id, "task", &oid, out)) {
         goto done;
      }
   } else {
      if (!id) {
         web_error (out, 400, "%s needs {\"id\": ...}: the %s", name,
                    !strncmp (name, "worker", 6) ? "worker's id" : !strcmp (name, "sync-start") ? "synchronizer's name"
                                                                  : !strcmp (name, "slot-stop") ? "task's id" : "group's id");
         goto done;
      }
      if ((!strcmp (name, "slot-stop") && !path_oid (id, "task", &oid, out)) ||
          (!strcmp (name, "group-start") && !path_oid (id, "group", &oid, out))) {
         goto done;
      }
      if (strncmp (name, "worker", 6) && !bson_empty (&opts)) {
         bson_iter_t iter;

         bson_iter_init (&iter, &opts);
         bson_iter_next (&iter);
         web_error (out, 400, "Invalid option '%s'", bson_iter_key (&iter));
         goto done;
      }
   }
   bson_destroy (&reply);
   client = mongoc_client_pool_pop (web->act_pool);
   if (!strcmp (name, "retry")) {
      ok = mt_admin_retry (client, web->db, id ? &oid : NULL, &opts, &reply, &error);
   } else if (!strcmp (name, "cancel")) {
      ok = mt_admin_cancel (client, web->db, id ? &oid : NULL, &opts, &reply, &error);
   } else if (!strcmp (name, "delete")) {
      ok = mt_admin_delete (client, web->db, id ? &oid : NULL, &opts, &reply, &error);
   } else if (!strncmp (name, "worker-", 7)) {
      ok = mt_admin_worker_command (client, web->db, id, name + 7, &opts, &reply, &error);
   } else {
      bson_init (&reply);
      if (!strcmp (name, "slot-stop")) {
         ok = mt_slot_stop (client, web->db, &oid, &error);
      } else if (!strcmp (name, "group-start")) {
         ok = mt_group_initiate (client, web->db, &oid, &error);
      } else {
         ok = mt_sync_request_start (client, web->db, id, &error);
      }
      BSON_APPEND_UTF8 (&reply, "action", name);
      BSON_APPEND_UTF8 (&reply, "id", id);
      BSON_APPEND_BOOL (&reply, "done", true);
   }
   mongoc_client_pool_push (web->act_pool, client);
   if (ok) {
      web_json (out, &reply);
   } else {
      web_call_error (out, &error);
   }

done:
   bson_free (id);
   bson_destroy (&reply);
   bson_destroy (&opts);
}
