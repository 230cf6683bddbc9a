/* badresult: tries to set a result MongoDB could not store, and records
 * what the host answered.
 *   key: "..."     a result {KEY: 1}; nested under {outer: {...}} when
 *                  params.nested is true
 *   bytes: N       a result holding N bytes of binary data
 * When set_result refuses, the result becomes {refused: {domain, code,
 * message}} and the task succeeds: the plugin got the error and went on.
 * When it accepts, the task succeeds with that result. */
#include <mtask/plugin.h>

#include <string.h>

static bool
badresult_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const bson_t *params = mt_task_params (task);
   bson_t result = BSON_INITIALIZER;
   bson_error_t refused;
   bson_iter_t iter;
   bool ok;

   (void) state;
   if (bson_iter_init_find (&iter, params, "key") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      const char *key = bson_iter_utf8 (&iter, NULL);
      bson_iter_t nested;

      if (bson_iter_init_find (&nested, params, "nested") && bson_iter_as_bool (&nested)) {
         bson_t outer;

         BSON_APPEND_DOCUMENT_BEGIN (&result, "outer", &outer);
         bson_append_int32 (&outer, key, -1, 1);
         bson_append_document_end (&result, &outer);
      } else {
         bson_append_int32 (&result, key, -1, 1);
      }
   }
   if (bson_iter_init_find (&iter, params, "bytes") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      uint32_t n = (uint32_t) bson_iter_as_int64 (&iter);
      uint8_t *data = bson_malloc0 (n);

      BSON_APPEND_BINARY (&result, "data", BSON_SUBTYPE_BINARY, data, n);
      bson_free (data);
   }
   ok = mt_task_set_result (task, &result, &refused);
   bson_destroy (&result);
   if (!ok) {
      bson_t answer = BSON_INITIALIZER, child;

      BSON_APPEND_DOCUMENT_BEGIN (&answer, "refused", &child);
      BSON_APPEND_INT32 (&child, "domain", (int32_t) refused.domain);
      BSON_APPEND_INT32 (&child, "code", (int32_t) refused.code);
      BSON_APPEND_UTF8 (&child, "message", refused.message);
      bson_append_document_end (&answer, &child);
      ok = mt_task_set_result (task, &answer, error);
      bson_destroy (&answer);
   }
   return ok;
}

MT_PLUGIN_DEFINE (.type = "badresult",
                  .description = "sets a result MongoDB could not store, and records the host's answer",
                  .process = badresult_process)
