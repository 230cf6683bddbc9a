/* Task documents: what a claimed document must hold, the words that
 * explain what it lacks, and the pieces of the updates that move a task
 * through its lifecycle (its error and error history, a give-back). */
#include "mtask-private.h"
#include "cron.h"

#include <string.h>

#define MT_ERROR_HISTORY 5 /* failures kept in a task's `errors` */

const char *
mt_bson_type_name (bson_type_t type)
{
   switch (type) {
   case BSON_TYPE_DOUBLE:
      return "double";
   case BSON_TYPE_UTF8:
      return "string";
   case BSON_TYPE_DOCUMENT:
      return "document";
   case BSON_TYPE_ARRAY:
      return "array";
   case BSON_TYPE_BINARY:
      return "binary";
   case BSON_TYPE_UNDEFINED:
      return "undefined";
   case BSON_TYPE_OID:
      return "ObjectId";
   case BSON_TYPE_BOOL:
      return "bool";
   case BSON_TYPE_DATE_TIME:
      return "date";
   case BSON_TYPE_NULL:
      return "null";
   case BSON_TYPE_REGEX:
      return "regex";
   case BSON_TYPE_INT32:
      return "int32";
   case BSON_TYPE_INT64:
      return "int64";
   case BSON_TYPE_TIMESTAMP:
      return "timestamp";
   case BSON_TYPE_DECIMAL128:
      return "decimal128";
   default:
      return "unsupported type";
   }
}

void
mt_task_id_string (const bson_value_t *id, char *out, size_t size)
{
   switch (id->value_type) {
   case BSON_TYPE_OID:
      bson_oid_to_string (&id->value.v_oid, out);
      break;
   case BSON_TYPE_UTF8:
      bson_snprintf (out, size, "%.*s", (int) BSON_MIN (id->value.v_utf8.len, size - 1), id->value.v_utf8.str);
      break;
   case BSON_TYPE_INT32:
      bson_snprintf (out, size, "%" PRId32, id->value.v_int32);
      break;
   case BSON_TYPE_INT64:
      bson_snprintf (out, size, "%" PRId64, id->value.v_int64);
      break;
   default:
      bson_snprintf (out, size, "(%s _id)", mt_bson_type_name (id->value_type));
      break;
   }
}

static bool
malformed (bson_error_t *error, const char *field, const char *expected, const bson_iter_t *iter)
{
   if (iter) {
      bson_set_error (error,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_MALFORMED,
                      "malformed task: field '%s' must be %s, found %s",
                      field,
                      expected,
                      mt_bson_type_name (bson_iter_type (iter)));
   } else {
      bson_set_error (
         error, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, "malformed task: field '%s' is required (%s)", field, expected);
   }
   return false;
}

bool
mt_task_doc_parse (const bson_t *doc, mt_task_doc_t *out, bson_error_t *error)
{
   bson_iter_t iter;
   bool has_queue = false, has_type = false;

   memset (out, 0, sizeof *out);
   out->id.value_type = BSON_TYPE_EOD;
   bson_init (&out->params);
   bson_init (&out->accounts);
   bson_strncpy (out->id_str, "(no _id)", sizeof out->id_str);

   if (!bson_iter_init (&iter, doc)) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, "malformed task: invalid BSON");
      return false;
   }

   /* One pass finds every field; the checks below report the first problem in
    * a fixed order so the message is the same whatever the field order. */
   bson_iter_t it_queue, it_type, it_params, it_delayed, it_attempts, it_worker, it_accounts, it_max, it_timeout;
   bool has_params = false, has_delayed = false, has_attempts = false, has_worker = false, has_accounts = false;
   bool has_max = false, has_timeout = false, has_pool = false;
   bson_iter_t it_pool;
   bson_iter_t it_repeat, it_cron, it_tz, it_until, it_scheduled, it_series, it_unique;
   bool has_repeat = false, has_cron = false, has_tz = false, has_until = false, has_scheduled = false;
   bool has_series = false, has_unique = false;

   while (bson_iter_next (&iter)) {
      const char *key = bson_iter_key (&iter);

      if (!strcmp (key, "_id")) {
         /* Points into doc, so no copy to free. */
         out->id = *bson_iter_value (&iter);
         mt_task_id_string (&out->id, out->id_str, sizeof out->id_str);
      } else if (!strcmp (key, "queue")) {
         it_queue = iter;
         has_queue = true;
      } else if (!strcmp (key, "type")) {
         it_type = iter;
         has_type = true;
      } else if (!strcmp (key, "params")) {
         it_params = iter;
         has_params = true;
      } else if (!strcmp (key, "delayed")) {
         it_delayed = iter;
         has_delayed = true;
      } else if (!strcmp (key, "attempts")) {
         it_attempts = iter;
         has_attempts = true;
      } else if (!strcmp (key, "worker_pid")) {
         it_worker = iter;
         has_worker = true;
      } else if (!strcmp (key, "accounts")) {
         it_accounts = iter;
         has_accounts = true;
      } else if (!strcmp (key, "max_attempts")) {
         it_max = iter;
         has_max = true;
      } else if (!strcmp (key, "timeout")) {
         it_timeout = iter;
         has_timeout = true;
      } else if (!strcmp (key, "pool")) {
         it_pool = iter;
         has_pool = true;
      } else if (!strcmp (key, "repeat")) {
         it_repeat = iter;
         has_repeat = !BSON_ITER_HOLDS_NULL (&iter);
      } else if (!strcmp (key, "cron")) {
         it_cron = iter;
         has_cron = !BSON_ITER_HOLDS_NULL (&iter);
      } else if (!strcmp (key, "timezone")) {
         it_tz = iter;
         has_tz = !BSON_ITER_HOLDS_NULL (&iter);
      } else if (!strcmp (key, "repeat_until")) {
         it_until = iter;
         has_until = !BSON_ITER_HOLDS_NULL (&iter);
      } else if (!strcmp (key, "scheduled")) {
         it_scheduled = iter;
         has_scheduled = !BSON_ITER_HOLDS_NULL (&iter);
      } else if (!strcmp (key, "series")) {
         it_series = iter;
         has_series = !BSON_ITER_HOLDS_NULL (&iter);
      } else if (!strcmp (key, "unique_key")) {
         it_unique = iter;
         has_unique = !BSON_ITER_HOLDS_NULL (&iter);
      }
   }

   if (out->id.value_type == BSON_TYPE_EOD) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, "malformed task: field '_id' is required");
      return false;
   }
   if (!has_queue || !BSON_ITER_HOLDS_UTF8 (&it_queue)) {
      return malformed (error, "queue", "a string", has_queue ? &it_queue : NULL);
   }
   out->queue = bson_iter_utf8 (&it_queue, NULL);

   if (!has_type || !BSON_ITER_HOLDS_UTF8 (&it_type)) {
      return malformed (error, "type", "a string naming a task type", has_type ? &it_type : NULL);
   }
   out->type = bson_iter_utf8 (&it_type, NULL);
   if (!out->type[0]) {
      bson_set_error (
         error, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, "malformed task: field 'type' must not be empty");
      return false;
   }

   if (has_params && !BSON_ITER_HOLDS_NULL (&it_params)) {
      const uint8_t *data;
      uint32_t len;

      if (!BSON_ITER_HOLDS_DOCUMENT (&it_params)) {
         return malformed (error, "params", "a document", &it_params);
      }
      bson_iter_document (&it_params, &len, &data);
      if (!bson_init_static (&out->params, data, len)) {
         return malformed (error, "params", "a valid document", &it_params);
      }
   }

   if (has_delayed && !BSON_ITER_HOLDS_NULL (&it_delayed) && !BSON_ITER_HOLDS_DATE_TIME (&it_delayed)) {
      return malformed (error, "delayed", "a date or null", &it_delayed);
   }

   if (has_attempts) {
      if (BSON_ITER_HOLDS_INT32 (&it_attempts) || BSON_ITER_HOLDS_INT64 (&it_attempts) ||
          BSON_ITER_HOLDS_DOUBLE (&it_attempts)) {
         int64_t n = bson_iter_as_int64 (&it_attempts);
         out->attempts = (int32_t) BSON_MAX (0, BSON_MIN (n, INT32_MAX));
      } else if (!BSON_ITER_HOLDS_NULL (&it_attempts)) {
         return malformed (error, "attempts", "a number", &it_attempts);
      }
   }

   if (has_accounts && !BSON_ITER_HOLDS_NULL (&it_accounts)) {
      const uint8_t *data;
      uint32_t len;
      bson_iter_t item;

      if (!BSON_ITER_HOLDS_ARRAY (&it_accounts)) {
         return malformed (error, "accounts", "an array of account names", &it_accounts);
      }
      bson_iter_array (&it_accounts, &len, &data);
      if (!bson_init_static (&out->accounts, data, len) || !bson_iter_init (&item, &out->accounts)) {
         return malformed (error, "accounts", "a valid array", &it_accounts);
      }
      while (bson_iter_next (&item)) {
         if (!BSON_ITER_HOLDS_UTF8 (&item) || bson_iter_utf8 (&item, NULL)[0] == '\0') {
            bson_set_error (error,
                            MT_ERROR_TASK,
                            MT_TASK_ERROR_MALFORMED,
                            "malformed task: field 'accounts' must hold non-empty strings, found %s at index %s",
                            BSON_ITER_HOLDS_UTF8 (&item) ? "an empty string" : mt_bson_type_name (bson_iter_type (&item)),
                            bson_iter_key (&item));
            return false;
         }
      }
   }

   if (has_max && !BSON_ITER_HOLDS_NULL (&it_max)) {
      if (!BSON_ITER_HOLDS_NUMBER (&it_max) || bson_iter_as_int64 (&it_max) < 1) {
         return malformed (error, "max_attempts", "a whole number, 1 or more", &it_max);
      }
      out->max_attempts = (int32_t) BSON_MIN (bson_iter_as_int64 (&it_max), INT32_MAX);
   }
   if (has_timeout && !BSON_ITER_HOLDS_NULL (&it_timeout)) {
      double t = BSON_ITER_HOLDS_NUMBER (&it_timeout) ? bson_iter_as_double (&it_timeout) : -1;

      if (!(t > 0 && t <= 366.0 * 86400)) {
         return malformed (error, "timeout", "a number of seconds, more than 0", &it_timeout);
      }
      out->timeout = t;
   }

   if (has_pool && !BSON_ITER_HOLDS_NULL (&it_pool)) {
      if (!BSON_ITER_HOLDS_UTF8 (&it_pool) || !bson_iter_utf8 (&it_pool, NULL)[0]) {
         return malformed (error, "pool", "the name of a slot pool", &it_pool);
      }
      out->pool = bson_iter_utf8 (&it_pool, NULL);
   }

   if (has_repeat) {
      double r = BSON_ITER_HOLDS_NUMBER (&it_repeat) ? bson_iter_as_double (&it_repeat) : -1;

      if (!(r >= 1 && r <= MT_DELAY_MAX_S)) {
         return malformed (error, "repeat", "a number of seconds, 1 or more", &it_repeat);
      }
      out->repeat = r;
   }
   if (has_cron) {
      if (!BSON_ITER_HOLDS_UTF8 (&it_cron)) {
         return malformed (error, "cron", "a cron expression (a string)", &it_cron);
      }
      out->cron = bson_iter_utf8 (&it_cron, NULL);
   }
   if (has_tz) {
      if (!BSON_ITER_HOLDS_UTF8 (&it_tz)) {
         return malformed (error, "timezone", "the name of a time zone", &it_tz);
      }
      out->timezone = bson_iter_utf8 (&it_tz, NULL);
   }
   if (out->repeat > 0 && out->cron) {
      bson_set_error (
         error, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, "malformed task: it repeats by 'repeat' or by 'cron', not both");
      return false;
   }
   if (out->cron) {
      /* The expression alone first, so that a zone that does not load is
       * reported as the fault of 'timezone', not of 'cron'. */
      bson_error_t why;
      const char *field = "cron";
      mt_cron_t *cron = mt_cron_parse (out->cron, NULL, &why);

      if (cron && out->timezone) {
         mt_cron_destroy (cron);
         field = "timezone";
         cron = mt_cron_parse (out->cron, out->timezone, &why);
      }
      if (!cron) {
         bson_set_error (error,
                         MT_ERROR_TASK,
                         MT_TASK_ERROR_MALFORMED,
                         "malformed task: field '%s': %s",
                         field,
                         strncmp (why.message, "cron: ", 6) ? why.message : why.message + 6);
         return false;
      }
      mt_cron_destroy (cron);
   }
   if (has_until) {
      if (!BSON_ITER_HOLDS_DATE_TIME (&it_until)) {
         return malformed (error, "repeat_until", "a date", &it_until);
      }
      out->repeat_until = bson_iter_date_time (&it_until);
   }
   if (has_scheduled) {
      if (!BSON_ITER_HOLDS_DATE_TIME (&it_scheduled)) {
         return malformed (error, "scheduled", "a date", &it_scheduled);
      }
      out->scheduled = bson_iter_date_time (&it_scheduled);
   }
   if (has_series) {
      if (!BSON_ITER_HOLDS_OID (&it_series)) {
         return malformed (error, "series", "an ObjectId", &it_series);
      }
      bson_oid_copy (bson_iter_oid (&it_series), &out->series);
      out->has_series = true;
   }
   if (has_unique) {
      if (!BSON_ITER_HOLDS_UTF8 (&it_unique) || !bson_iter_utf8 (&it_unique, NULL)[0]) {
         return malformed (error, "unique_key", "a non-empty string", &it_unique);
      }
      out->unique_key = bson_iter_utf8 (&it_unique, NULL);
   }

   if (has_worker && BSON_ITER_HOLDS_UTF8 (&it_worker)) {
      out->worker_pid = bson_iter_utf8 (&it_worker, NULL);
   }

   return true;
}

void
mt_task_doc_malformed_filter (bson_t *or_array)
{
   /* Each clause matches a document the claim query can never take, or
    * could take only to fail on it. Keep in step with mt_task_doc_parse. */
   bson_t clause, field, not, types;

   BSON_APPEND_DOCUMENT_BEGIN (or_array, "0", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "type", &field);
   BSON_APPEND_DOCUMENT_BEGIN (&field, "$not", &not);
   BSON_APPEND_UTF8 (&not, "$type", "string");
   bson_append_document_end (&field, &not);
   bson_append_document_end (&clause, &field);
   bson_append_document_end (or_array, &clause);

   BSON_APPEND_DOCUMENT_BEGIN (or_array, "1", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "delayed", &field);
   BSON_APPEND_BOOL (&field, "$exists", true);
   BSON_APPEND_DOCUMENT_BEGIN (&field, "$not", &not);
   BSON_APPEND_ARRAY_BEGIN (&not, "$type", &types);
   BSON_APPEND_UTF8 (&types, "0", "date");
   BSON_APPEND_UTF8 (&types, "1", "null");
   bson_append_array_end (&not, &types);
   bson_append_document_end (&field, &not);
   bson_append_document_end (&clause, &field);
   bson_append_document_end (or_array, &clause);

   BSON_APPEND_DOCUMENT_BEGIN (or_array, "2", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "params", &field);
   BSON_APPEND_BOOL (&field, "$exists", true);
   BSON_APPEND_DOCUMENT_BEGIN (&field, "$not", &not);
   BSON_APPEND_ARRAY_BEGIN (&not, "$type", &types);
   BSON_APPEND_UTF8 (&types, "0", "object");
   BSON_APPEND_UTF8 (&types, "1", "null");
   bson_append_array_end (&not, &types);
   bson_append_document_end (&field, &not);
   bson_append_document_end (&clause, &field);
   bson_append_document_end (or_array, &clause);

   BSON_APPEND_DOCUMENT_BEGIN (or_array, "3", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "attempts", &field);
   BSON_APPEND_BOOL (&field, "$exists", true);
   BSON_APPEND_DOCUMENT_BEGIN (&field, "$not", &not);
   BSON_APPEND_ARRAY_BEGIN (&not, "$type", &types);
   BSON_APPEND_UTF8 (&types, "0", "int");
   BSON_APPEND_UTF8 (&types, "1", "long");
   BSON_APPEND_UTF8 (&types, "2", "double");
   BSON_APPEND_UTF8 (&types, "3", "null");
   bson_append_array_end (&not, &types);
   bson_append_document_end (&field, &not);
   bson_append_document_end (&clause, &field);
   bson_append_document_end (or_array, &clause);

   BSON_APPEND_DOCUMENT_BEGIN (or_array, "4", &clause);
   BSON_APPEND_UTF8 (&clause, "type", "");
   bson_append_document_end (or_array, &clause);

   BSON_APPEND_DOCUMENT_BEGIN (or_array, "5", &clause);
   BSON_APPEND_DOCUMENT_BEGIN (&clause, "accounts", &field);
   BSON_APPEND_BOOL (&field, "$exists", true);
   BSON_APPEND_DOCUMENT_BEGIN (&field, "$not", &not);
   BSON_APPEND_ARRAY_BEGIN (&not, "$type", &types);
   BSON_APPEND_UTF8 (&types, "0", "array");
   BSON_APPEND_UTF8 (&types, "1", "null");
   bson_append_array_end (&not, &types);
   bson_append_document_end (&field, &not);
   bson_append_document_end (&clause, &field);
   bson_append_document_end (or_array, &clause);
}

void
mt_append_error (bson_t *doc, const char *key, const bson_error_t *error)
{
   bson_t child;

   BSON_APPEND_DOCUMENT_BEGIN (doc, key, &child);
   BSON_APPEND_INT32 (&child, "domain", (int32_t) error->domain);
   BSON_APPEND_INT32 (&child, "code", (int32_t) error->code);
   BSON_APPEND_UTF8 (&child, "message", error->message);
   bson_append_document_end (doc, &child);
}

void
mt_append_error_history (bson_t *update, const bson_error_t *error, int32_t attempt)
{
   bson_t push, errors, each, item;

   BSON_APPEND_DOCUMENT_BEGIN (update, "$push", &push);
   BSON_APPEND_DOCUMENT_BEGIN (&push, "errors", &errors);
   BSON_APPEND_ARRAY_BEGIN (&errors, "$each", &each);
   BSON_APPEND_DOCUMENT_BEGIN (&each, "0", &item);
   BSON_APPEND_INT32 (&item, "attempt", attempt);
   BSON_APPEND_INT32 (&item, "domain", (int32_t) error->domain);
   BSON_APPEND_INT32 (&item, "code", (int32_t) error->code);
   BSON_APPEND_UTF8 (&item, "message", error->message);
   BSON_APPEND_DATE_TIME (&item, "at", mt_now_ms ());
   bson_append_document_end (&each, &item);
   bson_append_array_end (&errors, &each);
   BSON_APPEND_INT32 (&errors, "$slice", -MT_ERROR_HISTORY);
   bson_append_document_end (&push, &errors);
   bson_append_document_end (update, &push);
}

int32_t
mt_task_failures (const bson_t *doc, int32_t attempts)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, doc, "failures") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      return (int32_t) BSON_MAX (0, BSON_MIN (bson_iter_as_int64 (&iter), INT32_MAX));
   }
   return BSON_MAX (0, attempts - 1);
}

void
mt_give_back_update (bson_t *update, int64_t delayed_ms)
{
   bson_t child;

   bson_init (update);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$set", &child);
   BSON_APPEND_UTF8 (&child, "status", MT_STATUS_CREATED);
   BSON_APPEND_NULL (&child, "worker_pid");
   if (delayed_ms) {
      BSON_APPEND_DATE_TIME (&child, "delayed", delayed_ms);
   } else {
      BSON_APPEND_NULL (&child, "delayed");
   }
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$inc", &child);
   BSON_APPEND_INT32 (&child, "attempts", -1);
   bson_append_document_end (update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (update, "$unset", &child);
   BSON_APPEND_UTF8 (&child, "started", "");
   BSON_APPEND_UTF8 (&child, "heartbeat", "");
   BSON_APPEND_UTF8 (&child, "claim", ""); /* the token of the hold that ends */
   bson_append_document_end (update, &child);
}

/* The first key of `doc`, at any depth, that MongoDB 4.2 and 4.4 refuse to
 * store through an update's $set: one that starts with '$' (except a
 * DBRef's $ref, $id and $db) or holds a '.'. Its dotted path goes in
 * `path`. */
static bool
find_unstorable_key (const bson_t *doc, char *path, size_t size, size_t len)
{
   bson_iter_t iter;

   if (!bson_iter_init (&iter, doc)) {
      return false;
   }
   while (bson_iter_next (&iter)) {
      const char *key = bson_iter_key (&iter);
      size_t here = len;

      if (len < size) {
         bson_snprintf (path + len, size - len, "%s%s", len ? "." : "", key);
         here = strlen (path);
      }
      if ((key[0] == '$' && strcmp (key, "$ref") && strcmp (key, "$id") && strcmp (key, "$db")) || strchr (key, '.')) {
         return true;
      }
      if (BSON_ITER_HOLDS_DOCUMENT (&iter) || BSON_ITER_HOLDS_ARRAY (&iter)) {
         const uint8_t *data;
         uint32_t n;
         bson_t child;

         if (BSON_ITER_HOLDS_DOCUMENT (&iter)) {
            bson_iter_document (&iter, &n, &data);
         } else {
            bson_iter_array (&iter, &n, &data);
         }
         if (bson_init_static (&child, data, n) && find_unstorable_key (&child, path, size, here)) {
            return true;
         }
      }
      path[BSON_MIN (len, size - 1)] = '\0';
   }
   return false;
}

bool
mt_result_check (const bson_t *result, size_t task_size, bson_error_t *error)
{
   char path[256] = "";

   if (find_unstorable_key (result, path, sizeof path, 0)) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_API,
                      "set_result: key 'result.%s' cannot be stored: MongoDB refuses field names that start with "
                      "'$' or contain '.'; rename it",
                      path);
      return false;
   }
   if ((size_t) result->len + task_size + MT_RESULT_MARGIN > MT_DOCUMENT_MAX) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_API,
                      "set_result: a result of %" PRIu32 " bytes cannot be stored: with the task's own %zu bytes its "
                      "document would pass %d bytes (MongoDB's limit of 16 MiB, less %d for what the outcome adds); "
                      "store large output elsewhere (GridFS, a file) and put a reference in the result",
                      result->len,
                      task_size,
                      MT_DOCUMENT_MAX - MT_RESULT_MARGIN,
                      MT_RESULT_MARGIN);
      return false;
   }
   return true;
}

bool
mt_value_equal (const bson_value_t *a, const bson_value_t *b)
{
   bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
   bool same;

   if (a->value_type != b->value_type) {
      return false;
   }
   BSON_APPEND_VALUE (&x, "v", a);
   BSON_APPEND_VALUE (&y, "v", b);
   same = bson_equal (&x, &y);
   bson_destroy (&x);
   bson_destroy (&y);
   return same;
}
