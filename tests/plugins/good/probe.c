/* probe: does what its params say, to test the host API from a plugin.
 *   sleep_ms: N            sleep first
 *   status_message: "..."  set it (written at once)
 *   status: "..."          set_status; an unknown one fails the task with
 *                          the host's error
 *   delay: SECONDS         delay itself
 *   result: {...}          set_result
 *   fail: "..."            return failure with this message
 *   echo_info: true        result = {id, type, queue, attempt}
 *   lock: [accounts]       lock_accounts; result.held, or result.lock_error
 *   scoped: [accounts]     with_accounts; result.held_in_scope and
 *                          result.held_after_scope, or result.scope_error
 *   nest: [accounts]       inside `scoped`: a nested with_accounts, whose
 *                          refusal lands in result.nest_error
 *   gate: "PATH"           wait until the file PATH exists: a gate the test
 *                          opens when it has seen what it looks for while
 *                          the task runs (mt_test_gate); fails after
 *                          gate_ms (default 120000) without it
 *   unlock: [accounts]     unlock_accounts (after sleep_ms); result.held_after_unlock
 *   permanent: true        mt_task_fail_permanently before `fail`
 *   fill_error: "..."      on success, return true with the error filled
 *                          in with this message all the same
 *   script: [steps]        instead of all the above, the step of attempt N
 *                          is script[N-1] (the last one repeats): "delay"
 *                          (delay 0 s, return true), "fail" (set result
 *                          {failed_attempt: N} and status_message
 *                          "failing at attempt N", return false), "gate"
 *                          (wait at `gate`, return true) or "ok" (return
 *                          true, setting nothing)
 * Steps run in this order: lock, scoped, sleep_ms, gate, unlock,
 * status_message, result, echo_info, status, delay, permanent, fail,
 * fill_error.
 * It keeps a state from init to check that init, process and fini see the
 * same pointer. */
#include <mtask/plugin.h>

#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
   uint32_t magic;
   const mt_host_api_t *host;
} probe_state_t;

static bool
probe_init (const mt_host_api_t *host, void **state, bson_error_t *error)
{
   probe_state_t *s = bson_malloc0 (sizeof *s);

   (void) error;
   s->magic = 0x9e0be;
   s->host = host;
   *state = s;
   return true;
}

static void
probe_fini (void *state)
{
   bson_free (state);
}

/* A NULL-terminated list of the strings in params[key], or NULL. */
static const char **
strings (const bson_t *params, const char *key, size_t *n)
{
   bson_iter_t iter, item;
   const char **list;

   *n = 0;
   if (!bson_iter_init_find (&iter, params, key) || !BSON_ITER_HOLDS_ARRAY (&iter) || !bson_iter_recurse (&iter, &item)) {
      return NULL;
   }
   list = bson_malloc0 (64 * sizeof *list);
   while (bson_iter_next (&item) && *n < 63) {
      if (BSON_ITER_HOLDS_UTF8 (&item)) {
         list[(*n)++] = bson_iter_utf8 (&item, NULL);
      }
   }
   return list;
}

static void
append_strv (bson_t *doc, const char *key, const char *const *strv)
{
   bson_t array;
   char k[16];
   const char *kp;

   BSON_APPEND_ARRAY_BEGIN (doc, key, &array);
   for (uint32_t i = 0; strv && strv[i]; i++) {
      bson_uint32_to_string (i, &kp, k, sizeof k);
      BSON_APPEND_UTF8 (&array, kp, strv[i]);
   }
   bson_append_array_end (doc, &array);
}

static void
append_error (bson_t *doc, const char *key, const bson_error_t *error)
{
   bson_t child;

   BSON_APPEND_DOCUMENT_BEGIN (doc, key, &child);
   BSON_APPEND_INT32 (&child, "domain", (int32_t) error->domain);
   BSON_APPEND_INT32 (&child, "code", (int32_t) error->code);
   BSON_APPEND_UTF8 (&child, "message", error->message);
   bson_append_document_end (doc, &child);
}

typedef struct {
   const bson_t *params;
   bson_t *out;
} scope_t;

static bool
inner_scope (mt_task_t *task, void *data, bson_error_t *error)
{
   (void) task, (void) data, (void) error;
   return true;
}

static bool
in_scope (mt_task_t *task, void *data, bson_error_t *error)
{
   scope_t *scope = data;
   const char **nest;
   size_t n;
   bson_error_t nested;

   (void) error;
   append_strv (scope->out, "held_in_scope", mt_task_held_accounts (task));
   nest = strings (scope->params, "nest", &n);
   if (nest) {
      if (!mt_task_with_accounts (task, nest, n, inner_scope, NULL, &nested)) {
         append_error (scope->out, "nest_error", &nested);
      }
      bson_free (nest);
   }
   return true;
}

/* Waits at params.gate, when there is one. */
static bool
wait_at_gate (mt_task_t *task, const bson_t *params, bson_error_t *error)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, params, "gate") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      const char *gate = bson_iter_utf8 (&iter, NULL);
      int64_t max_ms = 120000;

      if (bson_iter_init_find (&iter, params, "gate_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
         max_ms = bson_iter_as_int64 (&iter);
      }
      mt_task_log (task, MT_LOG_INFO, "probe waits at gate %s", gate);
      for (int64_t waited = 0; access (gate, F_OK) != 0; waited += 10) {
         struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};

         if (waited >= max_ms) {
            bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "probe: gate %s was not opened within %" PRId64 " ms", gate, max_ms);
            return false;
         }
         nanosleep (&ts, NULL);
      }
   }
   return true;
}

/* The step of the `script` for this attempt. */
static bool
run_script (mt_task_t *task, const char **script, size_t n, bson_error_t *error)
{
   int32_t attempt = mt_task_attempt (task);
   const char *step = script[(size_t) attempt <= n ? (size_t) attempt - 1 : n - 1];
   char message[64];
   bson_t *result;
   bool ok;

   mt_task_log (task, MT_LOG_INFO, "probe script: attempt %d: %s", (int) attempt, step);
   if (!strcmp (step, "delay")) {
      return mt_task_delay (task, 0, error);
   }
   if (!strcmp (step, "gate")) {
      return wait_at_gate (task, mt_task_params (task), error);
   }
   if (strcmp (step, "fail")) {
      return true;
   }
   bson_snprintf (message, sizeof message, "failing at attempt %d", (int) attempt);
   if (!mt_task_set_status_message (task, message, error)) {
      return false;
   }
   result = BCON_NEW ("failed_attempt", BCON_INT32 (attempt));
   ok = mt_task_set_result (task, result, error);
   bson_destroy (result);
   if (ok) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "scripted failure at attempt %d", (int) attempt);
   }
   return false;
}

static bool
probe_process (mt_task_t *task, void *state, bson_error_t *error)
{
   const probe_state_t *s = state;
   const bson_t *params = mt_task_params (task);
   bson_t out = BSON_INITIALIZER;
   bson_iter_t iter;
   const char **list;
   size_t n;
   bool ok = false;

   if (s->magic != 0x9e0be || s->host != task->host) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "probe: state lost between init and process");
      goto done;
   }
   if ((list = strings (params, "script", &n))) {
      ok = n > 0 ? run_script (task, list, n, error) : true;
      bson_free (list);
      goto done;
   }
   if ((list = strings (params, "lock", &n))) {
      bson_error_t lock_error;

      if (mt_task_lock_accounts (task, list, n, &lock_error)) {
         append_strv (&out, "held", mt_task_held_accounts (task));
      } else {
         append_error (&out, "lock_error", &lock_error);
      }
      bson_free (list);
   }
   if ((list = strings (params, "scoped", &n))) {
      scope_t scope = {.params = params, .out = &out};
      bson_error_t scope_error;

      if (!mt_task_with_accounts (task, list, n, in_scope, &scope, &scope_error)) {
         append_error (&out, "scope_error", &scope_error);
      }
      append_strv (&out, "held_after_scope", mt_task_held_accounts (task));
      bson_free (list);
   }
   if (bson_iter_init_find (&iter, params, "sleep_ms") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      int64_t ms = bson_iter_as_int64 (&iter);
      struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000L};
      nanosleep (&ts, NULL);
   }
   if (!wait_at_gate (task, params, error)) {
      goto done;
   }
   if ((list = strings (params, "unlock", &n))) {
      bool unlocked = mt_task_unlock_accounts (task, list, n, error);

      bson_free (list);
      if (!unlocked) {
         goto done;
      }
      append_strv (&out, "held_after_unlock", mt_task_held_accounts (task));
   }
   if (bson_iter_init_find (&iter, params, "status_message") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      if (!mt_task_set_status_message (task, bson_iter_utf8 (&iter, NULL), error)) {
         goto done;
      }
   }
   if (bson_iter_init_find (&iter, params, "result") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t result;

      bson_iter_document (&iter, &len, &data);
      if (bson_init_static (&result, data, len)) {
         bson_concat (&out, &result);
      }
   }
   if (bson_iter_init_find (&iter, params, "echo_info")) {
      BSON_APPEND_UTF8 (&out, "id", mt_task_id (task));
      BSON_APPEND_UTF8 (&out, "type", mt_task_type (task));
      BSON_APPEND_UTF8 (&out, "queue", mt_task_queue (task));
      BSON_APPEND_INT32 (&out, "attempt", mt_task_attempt (task));
   }
   if (!bson_empty (&out) && !mt_task_set_result (task, &out, error)) {
      goto done;
   }
   if (bson_iter_init_find (&iter, params, "status") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      if (!mt_task_set_status (task, bson_iter_utf8 (&iter, NULL), error)) {
         goto done;
      }
   }
   if (bson_iter_init_find (&iter, params, "delay") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      if (!mt_task_delay (task, bson_iter_as_double (&iter), error)) {
         goto done;
      }
   }
   mt_task_log (task, MT_LOG_INFO, "probe ran attempt %d", (int) mt_task_attempt (task));
   if (bson_iter_init_find (&iter, params, "permanent") && bson_iter_as_bool (&iter)) {
      mt_task_fail_permanently (task);
   }
   if (bson_iter_init_find (&iter, params, "fail") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "%s", bson_iter_utf8 (&iter, NULL));
      goto done;
   }
   if (bson_iter_init_find (&iter, params, "fill_error") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "%s", bson_iter_utf8 (&iter, NULL));
   }
   ok = true;

done:
   bson_destroy (&out);
   return ok;
}

MT_PLUGIN_DEFINE (.type = "probe",
                  .description = "does what its params say",
                  .init = probe_init,
                  .fini = probe_fini,
                  .process = probe_process)
