/* tools/devdb, the development database: the READY line, memory and H2 file
 * backends, the oplog, clean stops. Each test starts its own instances. */
#include "mt-test.h"

#include <unistd.h>

static mongoc_client_t *
connect_to (const char *uri)
{
   bson_error_t error;
   mongoc_client_t *client = mongoc_client_new (uri);

   ASSERT (client);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   ASSERT_OR_PRINT (mt_indexes_ensure (client, "devdb_test", &error), error);
   return client;
}

static void
test_memory (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start (W ("--port", "0", "--memory"), &pid);
   mongoc_client_t *client = connect_to (uri);
   bson_error_t error;

   ASSERT_OR_PRINT (mt_enqueue (client, "devdb_test", "q", "echo", NULL, NULL, NULL, &error), error);
   ASSERT_CMPINT (mt_test_count_at (client, "devdb_test", "tasks", "{}"), ==, 1);
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);
}

static void
test_data_file_persists (void)
{
   char path[] = "/tmp/mtask-devdb-XXXXXX";
   char *file;
   pid_t pid;
   char *uri;
   mongoc_client_t *client;
   bson_error_t error;
   int fd = mkstemp (path);

   ASSERT (fd >= 0);
   close (fd);
   unlink (path);
   file = bson_strdup_printf ("%s.mv", path);

   uri = mt_test_devdb_start (W ("--port", "0", "--data", file), &pid);
   client = connect_to (uri);
   ASSERT_OR_PRINT (mt_enqueue (client, "devdb_test", "q", "echo", NULL, NULL, NULL, &error), error);
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);

   uri = mt_test_devdb_start (W ("--port", "0", "--data", file), &pid);
   client = connect_to (uri);
   ASSERT_CMPINT (mt_test_count_at (client, "devdb_test", "tasks", "{}"), ==, 1);
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);
   unlink (file);
   bson_free (file);
}

static void
test_oplog_change_stream (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start (W ("--port", "0", "--memory", "--oplog"), &pid);
   mongoc_client_t *client = connect_to (uri);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, "devdb_test", "tasks");
   bson_t pipeline = BSON_INITIALIZER;
   mongoc_change_stream_t *stream = mongoc_collection_watch (tasks, &pipeline, NULL);
   const bson_t *event = NULL;
   const bson_t *reply;
   bson_error_t error;
   int64_t deadline = bson_get_monotonic_time () + 20 * 1000 * 1000;

   ASSERT_OR_PRINT (!mongoc_change_stream_error_document (stream, &error, &reply), error);
   ASSERT_OR_PRINT (mt_enqueue (client, "devdb_test", "q", "echo", NULL, NULL, NULL, &error), error);
   while (!event) {
      ASSERT_BEFORE (deadline, "the change stream's event for the insert");
      if (!mongoc_change_stream_next (stream, &event)) {
         ASSERT_OR_PRINT (!mongoc_change_stream_error_document (stream, &error, &reply), error);
      }
   }
   ASSERT_CMPSTR (mt_test_str (event, "operationType"), "insert");
   ASSERT_CMPSTR (mt_test_str (event, "fullDocument.type"), "echo");
   mongoc_change_stream_destroy (stream);
   bson_destroy (&pipeline);
   mongoc_collection_destroy (tasks);
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);
}

static void
test_port_in_use (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start (W ("--port", "0", "--memory"), &pid);
   const char *port = strrchr (uri, ':') + 1;
   char *port_only = bson_strndup (port, strlen (port) - 1);
   const char *argv[] = {mt_test_env ("MTASK_DEVDB"), "--port", port_only, NULL};
   char *out;

   ASSERT_CMPINT (mt_test_run (argv, 60000, &out), ==, 1);
   ASSERT_CONTAINS (out, "cannot listen on 127.0.0.1:");
   ASSERT_CONTAINS (out, "Address already in use");
   bson_free (out);
   bson_free (port_only);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);
}

static void
test_bad_option (void)
{
   const char *argv[] = {mt_test_env ("MTASK_DEVDB"), "--port", "0", "--memroy", NULL};
   const char *both[] = {mt_test_env ("MTASK_DEVDB"), "--memory", "--data", "/tmp/x.mv", NULL};
   char *out;

   ASSERT_CMPINT (mt_test_run (argv, 60000, &out), ==, 2);
   ASSERT_CONTAINS (out, "unknown option '--memroy'");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (both, 60000, &out), ==, 2);
   ASSERT_CONTAINS (out, "not both");
   bson_free (out);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/devdb/memory", test_memory);
   mt_test_add ("/devdb/data_file_persists", test_data_file_persists);
   mt_test_add ("/devdb/oplog_change_stream", test_oplog_change_stream);
   mt_test_add ("/devdb/port_in_use", test_port_in_use);
   mt_test_add ("/devdb/bad_option", test_bad_option);
   return mt_test_main (argc, argv);
}
