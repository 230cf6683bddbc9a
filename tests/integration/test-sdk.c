/* The plugin SDK's conveniences (issue 15): the mt_param helpers, against a
 * host table of the test's own; logging from init and fini through a real
 * worker; a crash on a worker thread that the log and the task's error
 * name. */
#include "mt-test.h"

#include <mtask/plugin.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the param helpers, with no worker -------------------------------- */

static bson_t *fake_params;

static const bson_t *
fake_task_params (const mt_task_t *task)
{
   (void) task;
   return fake_params;
}

/* A task whose params are `json`; the helpers read nothing else. */
static mt_task_t *
fake_task (const char *json)
{
   static mt_host_api_t host;
   static mt_task_t task;

   memset (&host, 0, sizeof host);
   host.abi_version = MT_PLUGIN_ABI_VERSION;
   host.struct_size = (uint32_t) sizeof host;
   host.task_params = fake_task_params;
   task.host = &host;
   bson_destroy (fake_params);
   fake_params = mt_test_bson (json);
   return &task;
}

static void
free_params (void *data)
{
   (void) data;
   bson_destroy (fake_params);
   fake_params = NULL;
}

#define REFUSED(call, fragment)                                                 \
   do {                                                                         \
      bson_error_t _err;                                                        \
      memset (&_err, 0, sizeof _err);                                           \
      ASSERT (!(call));                                                         \
      ASSERT_ERROR (_err, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, (fragment));  \
   } while (0)

static void
test_param_int64 (void)
{
   mt_task_t *task;
   bson_error_t error;
   int64_t v = 0;

   mt_test_defer (free_params, NULL);
   task = fake_task ("{'i32': 640, 'i64': {'$numberLong': '9007199254740993'}, 'whole': 2.0, 'neg': -3.0, "
                     "'half': 2.5, 'huge': 1e300, 'nan': {'$numberDouble': 'NaN'}, 's': '640', 'b': true, "
                     "'n': null, 'top': 9223372036854775807.0, 'bottom': -9223372036854775808.0}");
   ASSERT_OR_PRINT (mt_param_int64 (task, "i32", &v, &error), error);
   ASSERT_CMPINT (v, ==, 640);
   ASSERT_OR_PRINT (mt_param_int64 (task, "i64", &v, &error), error);
   ASSERT (v == INT64_C (9007199254740993));
   ASSERT_OR_PRINT (mt_param_int64 (task, "whole", &v, &error), error);
   ASSERT_CMPINT (v, ==, 2);
   ASSERT_OR_PRINT (mt_param_int64 (task, "neg", &v, &error), error);
   ASSERT_CMPINT (v, ==, -3);
   ASSERT_OR_PRINT (mt_param_int64 (task, "bottom", &v, &error), error);
   ASSERT (v == INT64_MIN);
   REFUSED (mt_param_int64 (task, "half", &v, &_err), "param 'half': expected an integer, found 2.5, not a whole number");
   REFUSED (mt_param_int64 (task, "huge", &v, &_err), "param 'huge': expected an integer, found 1e+300, out of the 64-bit range");
   REFUSED (mt_param_int64 (task, "top", &v, &_err), "out of the 64-bit range"); /* 2^63 */
   REFUSED (mt_param_int64 (task, "nan", &v, &_err), "param 'nan': expected an integer, found nan");
   REFUSED (mt_param_int64 (task, "s", &v, &_err), "param 's': expected an integer, found a string");
   REFUSED (mt_param_int64 (task, "b", &v, &_err), "param 'b': expected an integer, found a boolean");
   REFUSED (mt_param_int64 (task, "n", &v, &_err), "param 'n': expected an integer, found null");
   REFUSED (mt_param_int64 (task, "width", &v, &_err), "param 'width': missing; expected an integer");
   /* The default: missing or null; a wrong type is still an error. */
   ASSERT_OR_PRINT (mt_param_int64_or (task, "width", 7, &v, &error), error);
   ASSERT_CMPINT (v, ==, 7);
   ASSERT_OR_PRINT (mt_param_int64_or (task, "n", 8, &v, &error), error);
   ASSERT_CMPINT (v, ==, 8);
   ASSERT_OR_PRINT (mt_param_int64_or (task, "whole", 8, &v, &error), error);
   ASSERT_CMPINT (v, ==, 2);
   REFUSED (mt_param_int64_or (task, "s", 9, &v, &_err), "param 's': expected an integer, found a string");
   REFUSED (mt_param_int64_or (task, "half", 9, &v, &_err), "not a whole number");
}

static void
test_param_double (void)
{
   mt_task_t *task;
   bson_error_t error;
   double v = 0;

   mt_test_defer (free_params, NULL);
   task = fake_task ("{'i32': 640, 'i64': {'$numberLong': '-5'}, 'd': 2.5, 's': 'x', 'doc': {'a': 1}, 'n': null}");
   ASSERT_OR_PRINT (mt_param_double (task, "i32", &v, &error), error);
   ASSERT (v == 640.0);
   ASSERT_OR_PRINT (mt_param_double (task, "i64", &v, &error), error);
   ASSERT (v == -5.0);
   ASSERT_OR_PRINT (mt_param_double (task, "d", &v, &error), error);
   ASSERT (v == 2.5);
   REFUSED (mt_param_double (task, "s", &v, &_err), "param 's': expected a number, found a string");
   REFUSED (mt_param_double (task, "doc", &v, &_err), "param 'doc': expected a number, found a document");
   REFUSED (mt_param_double (task, "ratio", &v, &_err), "param 'ratio': missing; expected a number");
   ASSERT_OR_PRINT (mt_param_double_or (task, "ratio", 0.25, &v, &error), error);
   ASSERT (v == 0.25);
   ASSERT_OR_PRINT (mt_param_double_or (task, "n", 0.5, &v, &error), error);
   ASSERT (v == 0.5);
   ASSERT_OR_PRINT (mt_param_double_or (task, "i32", 0.5, &v, &error), error);
   ASSERT (v == 640.0);
   REFUSED (mt_param_double_or (task, "s", 0.5, &v, &_err), "param 's': expected a number, found a string");
}

static void
test_param_utf8_bool (void)
{
   mt_task_t *task;
   bson_error_t error;
   const char *s = NULL;
   bool b = false;

   mt_test_defer (free_params, NULL);
   task = fake_task ("{'name': 'Ada', 'num': 1, 'flag': true, 'zero': 0, 'arr': [1], 'n': null}");
   ASSERT_OR_PRINT (mt_param_utf8 (task, "name", &s, &error), error);
   ASSERT_CMPSTR (s, "Ada");
   REFUSED (mt_param_utf8 (task, "num", &s, &_err), "param 'num': expected a string, found an integer");
   REFUSED (mt_param_utf8 (task, "arr", &s, &_err), "param 'arr': expected a string, found an array");
   REFUSED (mt_param_utf8 (task, "nick", &s, &_err), "param 'nick': missing; expected a string");
   ASSERT_OR_PRINT (mt_param_utf8_or (task, "nick", "anon", &s, &error), error);
   ASSERT_CMPSTR (s, "anon");
   ASSERT_OR_PRINT (mt_param_utf8_or (task, "n", "anon", &s, &error), error);
   ASSERT_CMPSTR (s, "anon");
   REFUSED (mt_param_utf8_or (task, "flag", "x", &s, &_err), "param 'flag': expected a string, found a boolean");

   ASSERT_OR_PRINT (mt_param_bool (task, "flag", &b, &error), error);
   ASSERT (b);
   /* No truthiness: 0 is not false. */
   REFUSED (mt_param_bool (task, "zero", &b, &_err), "param 'zero': expected a boolean, found an integer");
   REFUSED (mt_param_bool (task, "name", &b, &_err), "param 'name': expected a boolean, found a string");
   REFUSED (mt_param_bool (task, "dry_run", &b, &_err), "param 'dry_run': missing; expected a boolean");
   ASSERT_OR_PRINT (mt_param_bool_or (task, "dry_run", true, &b, &error), error);
   ASSERT (b);
   ASSERT_OR_PRINT (mt_param_bool_or (task, "flag", false, &b, &error), error);
   ASSERT (b);
   REFUSED (mt_param_bool_or (task, "zero", false, &b, &_err), "found an integer");
   ASSERT (mt_param_has (task, "name"));
   ASSERT (!mt_param_has (task, "n"));
   ASSERT (!mt_param_has (task, "nick"));
}

static void
test_param_doc_array (void)
{
   mt_task_t *task;
   bson_error_t error;
   bson_t doc, arr;
   bson_iter_t iter;

   mt_test_defer (free_params, NULL);
   task = fake_task ("{'opts': {'size': 3, 'name': 'x'}, 'items': [1, 2, 3], 's': 'no'}");
   ASSERT_OR_PRINT (mt_param_doc (task, "opts", &doc, &error), error);
   ASSERT_CMPINT (bson_count_keys (&doc), ==, 2);
   ASSERT (bson_iter_init_find (&iter, &doc, "size") && bson_iter_int32 (&iter) == 3);
   ASSERT_OR_PRINT (mt_param_array (task, "items", &arr, &error), error);
   ASSERT_CMPINT (bson_count_keys (&arr), ==, 3);
   REFUSED (mt_param_doc (task, "items", &doc, &_err), "param 'items': expected a document, found an array");
   REFUSED (mt_param_array (task, "opts", &arr, &_err), "param 'opts': expected an array, found a document");
   REFUSED (mt_param_doc (task, "s", &doc, &_err), "param 's': expected a document, found a string");
   REFUSED (mt_param_doc (task, "more", &doc, &_err), "param 'more': missing; expected a document");
}

/* ---- through a worker --------------------------------------------------- */

static void
test_params_in_worker (void)
{
   /* mtaskctl's kinds of numbers: 640 as int32, 2.0 as double. */
   bson_oid_t ok_id = mt_test_enqueue ("q", "sdkprobe", "{'width': 640, 'ratio': 2, 'name': 'n1', 'opts': {'a': 1}}", NULL);
   bson_oid_t dbl = mt_test_enqueue ("q", "sdkprobe", "{'width': 2.0}", NULL);
   bson_oid_t bad = mt_test_enqueue ("q", "sdkprobe", "{'width': 'wide'}", "{'max_attempts': 1}");
   bson_t *doc;

   mt_test_worker_once (W ("--queues", "q", "--pid", "SDK-P"), 60000);
   doc = mt_test_task (&ok_id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "result.width"), ==, 640);
   ASSERT_CMPSTR (mt_test_str (doc, "result.name"), "n1");
   ASSERT_CMPINT (mt_test_int (doc, "result.opts_keys"), ==, 1);
   bson_destroy (doc);
   doc = mt_test_task (&dbl);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "result.width"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (doc, "result.name"), "anon");
   bson_destroy (doc);
   doc = mt_test_task (&bad);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "param 'width': expected an integer, found a string");
   bson_destroy (doc);
}

/* Every line of the worker's output is a JSON object of its log; returns
 * how many lines had a `msg` containing `needle`, and checks their level
 * and worker id. */
static int
json_lines_with (pid_t pid, const char *worker, const char *needle, const char *level)
{
   char *out = mt_test_output (pid), *line, *save = NULL;
   int found = 0;

   for (line = strtok_r (out, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
      bson_error_t error;
      bson_t *doc = bson_new_from_json ((const uint8_t *) line, -1, &error);

      if (!doc) {
         mt_test_print_output (pid, 0);
      }
      ASSERT_OR_PRINT (doc, error);
      ASSERT (mt_test_str (doc, "ts") && mt_test_str (doc, "level") && mt_test_str (doc, "msg"));
      if (strstr (mt_test_str (doc, "msg"), needle)) {
         found++;
         ASSERT_CMPSTR (mt_test_str (doc, "worker"), worker);
         if (level) {
            ASSERT_CMPSTR (mt_test_str (doc, "level"), level);
         }
      }
      bson_destroy (doc);
   }
   bson_free (out);
   return found;
}

static void
test_init_logs_json (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "sdkprobe", "{'width': 3}", NULL);
   pid_t pid = mt_test_worker_once (W ("--queues", "q", "--pid", "SDK-J", "--log-format", "json"), 60000);
   char *expected = bson_strdup_printf ("sdkprobe init: \"hello\" from init \\o/, db %s, uri given", mt_test_db ());

   ASSERT (mt_test_status_is (&id, "FINISHED"));
   /* Valid JSON, the message whole (quotes and backslash), at its level. */
   ASSERT_CMPINT (json_lines_with (pid, "SDK-J", expected, "info"), ==, 1);
   ASSERT_CMPINT (json_lines_with (pid, "SDK-J", "sdkprobe fini: \"bye\"", "info"), ==, 1);
   ASSERT_CMPINT (json_lines_with (pid, "SDK-J", "sdkprobe process: through task->host, width 3", "info"), ==, 1);
   bson_free (expected);
}

/* ---- a crash without isolation ----------------------------------------- */

static char state_dir[64];

static void
remove_state_dir (void *data)
{
   char path[256];

   (void) data;
   bson_snprintf (path, sizeof path, "rm -rf '%s'", state_dir);
   ASSERT (system (path) == 0);
   unsetenv ("MTASK_STATE_DIR");
}

/* A directory of this test's own for the workers' crash notes. */
static void
use_state_dir (void)
{
   bson_strncpy (state_dir, "/tmp/mt-sdk-state-XXXXXX", sizeof state_dir);
   ASSERT (mkdtemp (state_dir));
   setenv ("MTASK_STATE_DIR", state_dir, 1);
   mt_test_defer (remove_state_dir, NULL);
}

static void
test_thread_crash_named (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "crash", NULL, "{'max_attempts': 1}");
   char id_hex[25], *needle, *note_path;
   pid_t pid;
   bson_t *doc;
   struct stat st;

   bson_oid_to_string (&id, id_hex);
   use_state_dir ();
   /* Without --isolate: the crash takes the worker, which says why. */
   pid = mt_test_worker_crashing (W ("--queues", "q", "--pid", "CRASHY/1", "--log-format", "json"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 128 + SIGSEGV);
   needle = bson_strdup_printf ("the worker crashed with signal 11 (SIGSEGV) while running task %s of type 'crash' "
                                "(attempt 1) on this thread",
                                id_hex);
   /* Every line JSON, the crash's among them, as an error. */
   if (json_lines_with (pid, "CRASHY/1", needle, "error") != 1) {
      mt_test_print_output (pid, 20);
      ASSERT (!"the crash is named once in the log");
   }
   bson_free (needle);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WORK_IN_PROGRESS");
   bson_destroy (doc);
   note_path = bson_strdup_printf ("%s/mtask-crash-%s-CRASHY%%2F1", state_dir, mt_test_db ());
   ASSERT (stat (note_path, &st) == 0 && st.st_size > 0);

   /* Restarted under its id (as systemd would): the take-back says it. */
   pid = mt_test_worker_once (W ("--queues", "q", "--pid", "CRASHY/1"), 60000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "error.code"), ==, MT_TASK_ERROR_CRASHED);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "the worker crashed while running it (signal 11, SIGSEGV)");
   ASSERT_CONTAINS (mt_test_str (doc, "errors.0.message"), "the worker crashed while running it (signal 11, SIGSEGV)");
   bson_destroy (doc);
   /* A clean stop leaves no note behind. */
   ASSERT (stat (note_path, &st) != 0);
   bson_free (note_path);
}

static void
test_thread_crash_text_log (void)
{
   bson_oid_t id = mt_test_enqueue ("q", "crash", NULL, "{'max_attempts': 1}");
   char id_hex[25], *needle;
   pid_t pid;

   bson_oid_to_string (&id, id_hex);
   use_state_dir ();
   pid = mt_test_worker_crashing (W ("--queues", "q", "--pid", "CRASHY-T"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 128 + SIGSEGV);
   needle = bson_strdup_printf (" error   the worker crashed with signal 11 (SIGSEGV) while running task %s of type 'crash'", id_hex);
   if (!mt_test_output_contains (pid, needle)) {
      mt_test_print_output (pid, 20);
      ASSERT (!"the crash is named in the text log");
   }
   bson_free (needle);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/sdk/param/int64", test_param_int64);
   mt_test_add ("/sdk/param/double", test_param_double);
   mt_test_add ("/sdk/param/utf8_bool", test_param_utf8_bool);
   mt_test_add ("/sdk/param/doc_array", test_param_doc_array);
   mt_test_add ("/sdk/param/in_worker", test_params_in_worker);
   mt_test_add ("/sdk/log/init_fini_json", test_init_logs_json);
   mt_test_add ("/sdk/crash/thread_named_json", test_thread_crash_named);
   mt_test_add ("/sdk/crash/thread_named_text", test_thread_crash_text_log);
   return mt_test_main (argc, argv);
}
