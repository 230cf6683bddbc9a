/* The C API for embedding: seed 001's Worker.start(queue_names) and
 * enqueue, against a real server. */
#include "mt-test.h"

#include <math.h>
#include <pthread.h>

static int processed;
static pthread_mutex_t processed_mutex = PTHREAD_MUTEX_INITIALIZER;

static bool
count_process (mt_task_t *task, void *state, bson_error_t *error)
{
   bson_t result = BSON_INITIALIZER;
   bool ok;

   (void) state;
   pthread_mutex_lock (&processed_mutex);
   processed++;
   pthread_mutex_unlock (&processed_mutex);
   BSON_APPEND_UTF8 (&result, "by", "embedded");
   ok = mt_task_set_result (task, &result, error);
   bson_destroy (&result);
   return ok;
}

static int
processed_now (void)
{
   int n;

   pthread_mutex_lock (&processed_mutex);
   n = processed;
   pthread_mutex_unlock (&processed_mutex);
   return n;
}

static const mt_plugin_t count_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .type = "count",
   .process = count_process,
};

static void
test_worker_start_once (void)
{
   const char *queues[] = {"general", "glavstroy", NULL};
   const mt_plugin_t *builtins[] = {&count_plugin, NULL};
   const char *no_dirs[] = {NULL};
   mt_worker_config_t config;
   bson_error_t error;
   bson_oid_t a = mt_test_enqueue ("general", "count", NULL, NULL);
   bson_oid_t b = mt_test_enqueue ("glavstroy", "count", NULL, NULL);
   bson_t *doc;

   processed = 0;
   mt_worker_config_init (&config);
   config.uri = mt_test_uri ();
   config.db = mt_test_db ();
   config.queue_names = queues;
   config.builtin_plugins = builtins;
   config.plugin_dirs = no_dirs;
   config.concurrency = 2;
   config.once = true;
   config.worker_id = "EMBEDDED-1";
   ASSERT_OR_PRINT (mt_worker_start (&config, &error), error);
   ASSERT_CMPINT (processed, ==, 2);

   doc = mt_test_task (&a);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPSTR (mt_test_str (doc, "result.by"), "embedded");
   bson_destroy (doc);
   doc = mt_test_task (&b);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   bson_destroy (doc);
}

static bool stop_later_gave_up;

static void *
stop_later (void *data)
{
   mt_worker_t *worker = data;

   /* Stop once the task is done, or after 20 s: this thread cannot fail
    * the test itself; it says it gave up, and the test fails after. */
   stop_later_gave_up = false;
   for (int i = 0; processed_now () == 0; i++) {
      if (i == 1000) {
         stop_later_gave_up = true;
         break;
      }
      mt_test_nap_ms (20);
   }
   mt_worker_stop (worker);
   return NULL;
}

static void
test_worker_stop_from_another_thread (void)
{
   const char *queues[] = {"general", NULL};
   const mt_plugin_t *builtins[] = {&count_plugin, NULL};
   const char *no_dirs[] = {NULL};
   mt_worker_config_t config;
   mt_worker_t *worker;
   bson_error_t error;
   pthread_t thread;

   mt_test_enqueue ("general", "count", NULL, NULL);
   processed = 0;
   mt_worker_config_init (&config);
   config.uri = mt_test_uri ();
   config.db = mt_test_db ();
   config.queue_names = queues;
   config.builtin_plugins = builtins;
   config.plugin_dirs = no_dirs;
   config.poll_interval_ms = 50;
   worker = mt_worker_new (&config, &error);
   ASSERT_OR_PRINT (worker, error);
   ASSERT_CMPINT (strlen (mt_worker_id (worker)), ==, 36);
   ASSERT_CMPSTR (mt_worker_types (worker)[0], "count");
   ASSERT (mt_worker_types (worker)[1] == NULL);
   pthread_create (&thread, NULL, stop_later, worker);
   ASSERT_OR_PRINT (mt_worker_run (worker, &error), error);
   pthread_join (thread, NULL);
   mt_worker_destroy (worker);
   if (stop_later_gave_up) {
      mt_test_fail (__FILE__, __LINE__, "timed out after 1000 looks (20 s) waiting for the embedded worker to process its task");
   }
   ASSERT (processed_now () == 1);
   ASSERT_CMPINT (mt_test_count ("{'status': 'FINISHED', 'worker_pid': null}"), ==, 1);
}

static void
test_config_errors (void)
{
   const char *queues[] = {"general", NULL};
   const char *empty[] = {NULL};
   mt_worker_config_t config;
   bson_error_t error;

   mt_worker_config_init (&config);
   config.queue_names = queues;
   ASSERT (!mt_worker_new (&config, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "worker config: a database name is required (--db)");

   config.db = "d";
   config.queue_names = empty;
   ASSERT (!mt_worker_new (&config, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "worker config: at least one queue name is required (--queues)");

   config.queue_names = queues;
   config.plugin_dirs = empty;
   ASSERT (!mt_worker_new (&config, &error));
   ASSERT_ERROR (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_DIR, "no task plugins found");

   config.concurrency = 0;
   ASSERT (!mt_worker_new (&config, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "worker config: concurrency 0 is out of range; give 1 to 1024 threads");

   config.concurrency = 1;
   config.host = "db1:27018";
   ASSERT (!mt_worker_new (&config, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "host 'db1:27018' is not a host name or address; give the port with --port");

   config.host = "localhost";
   config.uri = "http://nope";
   ASSERT (!mt_worker_new (&config, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "cannot use MongoDB address 'http://nope'");
}

static void
test_uri_forms (void)
{
   bson_error_t error;
   mongoc_uri_t *uri;

   uri = mt_uri_new (NULL, "::1", 27018, &error);
   ASSERT_OR_PRINT (uri, error);
   ASSERT_CMPSTR (mongoc_uri_get_string (uri), "mongodb://[::1]:27018/");
   mongoc_uri_destroy (uri);
   uri = mt_uri_new (NULL, NULL, 0, &error);
   ASSERT_OR_PRINT (uri, error);
   ASSERT_CMPSTR (mongoc_uri_get_string (uri), "mongodb://localhost:27017/");
   mongoc_uri_destroy (uri);
   ASSERT (!mt_uri_new (NULL, "db1/admin", 1, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "host 'db1/admin' is not a host name or address");
   ASSERT (!mt_uri_new (NULL, "user@db1", 1, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "host '***@db1' is not a host name or address");
   ASSERT (!mt_uri_new (NULL, "db1", 70000, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_URI, "port 70000 is out of range; give a port from 1 to 65535");
}

static void
test_enqueue_options (void)
{
   bson_t *opts = mt_test_bson ("{'priority': 7, 'max_attempts': 5, 'delay': 60}");
   bson_t *bad = mt_test_bson ("{'priorty': 7}");
   bson_t *bad_type = mt_test_bson ("{'priority': 'high'}");
   bson_error_t error;
   bson_oid_t id;
   bson_t *doc;

   ASSERT_OR_PRINT (mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, opts, &id, &error), error);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "priority"), ==, 7);
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 5);
   ASSERT_CMPINT (mt_test_date (doc, "delayed") - mt_test_date (doc, "created"), >=, 59000);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   bson_destroy (doc);

   ASSERT (!mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, bad, NULL, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_OPTION, "Invalid option 'priorty'");
   ASSERT_CMPSTR (error.message, "Invalid option 'priorty'");
   ASSERT (!mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, bad_type, NULL, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option 'priority' must be a 32-bit integer");
   {
      bson_t *nan_delay = BCON_NEW ("delay", BCON_DOUBLE (NAN));
      bson_t *inf_delay = BCON_NEW ("delay", BCON_DOUBLE (INFINITY));

      ASSERT (!mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, nan_delay, NULL, &error));
      ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option 'delay' must be a number of seconds from 0 to ten years");
      ASSERT (!mt_enqueue (mt_test_client (), mt_test_db (), "q", "echo", NULL, inf_delay, NULL, &error));
      ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option 'delay' must be a number of seconds from 0 to ten years");
      bson_destroy (nan_delay);
      bson_destroy (inf_delay);
   }
   ASSERT (!mt_enqueue (mt_test_client (), mt_test_db (), "", "echo", NULL, NULL, NULL, &error));
   ASSERT_ERROR (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "enqueue needs a queue and a task type, got queue '' and type 'echo'");
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 1);
   bson_destroy (opts);
   bson_destroy (bad);
   bson_destroy (bad_type);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/api/worker/start_once", test_worker_start_once);
   mt_test_add ("/api/worker/stop_from_another_thread", test_worker_stop_from_another_thread);
   mt_test_add ("/api/worker/config_errors", test_config_errors);
   mt_test_add ("/api/enqueue/options", test_enqueue_options);
   mt_test_add ("/api/uri_forms", test_uri_forms);
   return mt_test_main (argc, argv);
}
