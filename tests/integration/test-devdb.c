/* tools/devdb, the development database: the READY line, memory and H2 file
 * backends, the oplog, clean stops. Each test starts its own instances.
 *
 * Then what tools/devdb.d adds to mongo-java-server: --replset (a
 * one-member replica set, on a devdb of the test's own), the command log
 * (devdbCommandLog), and createIndexes as MongoDB checks it, with partial
 * unique indexes (in this test's database of the run's server).
 *
 * Then its failCommand failpoint (configureFailPoint), on the run's server,
 * as libmongoc sees it. That server is shared with every other test, so each
 * failpoint here is scoped to this program's clients (data.appName FP_APP)
 * or to this test's database (data.namespace); each test turns it off at
 * its start, and the harness (mt_test_failpoint_set) turns it off when the
 * test ends, passed or failed. */
#include "mt-test.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
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


struct insert_later_t {
   const char *uri;
   mongoc_client_t *writer;
};

/* Waits until the awaiting client's getMore reached the server, then
 * inserts a task. */
static void *
insert_when_waiting (void *data)
{
   struct insert_later_t *later = data;
   int64_t deadline = bson_get_monotonic_time () + 30 * 1000 * 1000;
   bson_error_t error;

   for (;;) {
      bson_t *log = mt_test_command_log_at (later->uri, "awaiting");
      int n = mt_test_command_log_count (log, "getMore");

      bson_destroy (log);
      if (n > 0) {
         break;
      }
      ASSERT_BEFORE (deadline, "the stream's getMore at the server");
      usleep (10 * 1000);
   }
   ASSERT_OR_PRINT (mt_enqueue (later->writer, "devdb_test", "q", "echo", NULL, NULL, NULL, &error), error);
   return NULL;
}

/* A stream's getMore waits for events as on a real server: an idle stream
 * sends about one getMore per maxAwaitTimeMS (the devdb used to answer at
 * once, and a loop over next() sent thousands a second), and a write wakes
 * a waiting getMore before its time is up. */
static void
test_change_stream_awaits (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start (W ("--port", "0", "--memory", "--oplog"), &pid);
   char *app_uri = bson_strdup_printf ("%s?appname=awaiting", uri);
   mongoc_client_t *client = connect_to (app_uri);
   mongoc_client_t *writer = connect_to (uri);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, "devdb_test", "tasks");
   bson_t pipeline = BSON_INITIALIZER;
   bson_t *opts = BCON_NEW ("maxAwaitTimeMS", BCON_INT64 (300));
   bson_t *long_opts = BCON_NEW ("maxAwaitTimeMS", BCON_INT64 (60000));
   mongoc_change_stream_t *stream;
   const bson_t *event = NULL;
   bson_error_t error;
   bson_t *log;
   int64_t until, deadline;
   int getmores;

   /* Idle for 1.5 s: at 300 ms a getMore, about 5 of them. */
   ASSERT_OR_PRINT (mt_enqueue (writer, "devdb_test", "q", "echo", NULL, NULL, NULL, &error), error);
   stream = mongoc_collection_watch (tasks, &pipeline, opts);
   mt_test_command_log_clear_at (uri);
   until = bson_get_monotonic_time () + 1500 * 1000;
   while (bson_get_monotonic_time () < until) {
      ASSERT (!mongoc_change_stream_next (stream, &event));
      ASSERT_OR_PRINT (!mongoc_change_stream_error_document (stream, &error, NULL), error);
   }
   log = mt_test_command_log_at (uri, "awaiting");
   getmores = mt_test_command_log_count (log, "getMore");
   bson_destroy (log);
   ASSERT_CMPINT (getmores, >=, 3);
   ASSERT_CMPINT (getmores, <=, 8);
   mongoc_change_stream_destroy (stream);

   /* A getMore waiting up to a minute answers the insert made meanwhile. */
   stream = mongoc_collection_watch (tasks, &pipeline, long_opts);
   ASSERT_OR_PRINT (!mongoc_change_stream_error_document (stream, &error, NULL), error);
   mt_test_command_log_clear_at (uri);
   {
      /* The insert comes from another thread once the getMore is in. */
      pthread_t thread;
      struct insert_later_t later = {uri, writer};

      ASSERT_CMPINT (pthread_create (&thread, NULL, insert_when_waiting, &later), ==, 0);
      deadline = bson_get_monotonic_time () + 30 * 1000 * 1000;
      ASSERT (mongoc_change_stream_next (stream, &event));
      ASSERT (bson_get_monotonic_time () < deadline);
      ASSERT_CMPSTR (mt_test_str (event, "operationType"), "insert");
      ASSERT_CMPINT (pthread_join (thread, NULL), ==, 0);
   }
   mongoc_change_stream_destroy (stream);
   bson_destroy (opts);
   bson_destroy (long_opts);
   bson_destroy (&pipeline);
   mongoc_collection_destroy (tasks);
   mongoc_client_destroy (writer);
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (app_uri);
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
   {
      const char *names[] = {"a/b", "", "rs 0"};

      for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
         const char *replset[] = {mt_test_env ("MTASK_DEVDB"), "--port", "0", "--replset", names[i], NULL};

         ASSERT_CMPINT (mt_test_run (replset, 60000, &out), ==, 2);
         ASSERT_CONTAINS (out, "is not a replica set name");
         bson_free (out);
      }
   }
}

/* How many compiled versions of tools/devdb.d the cache `dir` holds. */
static int
count_class_dirs (const char *dir)
{
   DIR *d = opendir (dir);
   struct dirent *e;
   int n = 0;

   ASSERT (d);
   while ((e = readdir (d))) {
      n += !strncmp (e->d_name, "classes-", 8);
   }
   closedir (d);
   return n;
}

/* A copy of tools/devdb with its own cache (the jars linked from the real
 * one): it compiles the .java files of tools/devdb.d once, runs them, compiles
 * again when one changes. The change here is the failpoint's message, so
 * the server that answers must be running the new source. */
static void
test_recompiles_changed_sources (void)
{
   const char *home = getenv ("HOME"), *xdg = getenv ("XDG_CACHE_HOME"), *cache_env = getenv ("MTASK_CACHE");
   char tmp[] = "/tmp/mtask-devdb-src-XXXXXX";
   char *lib, *script, *cache_var, *devdb, *cache_dir, *uri;
   const char *setup[] = {"/bin/sh", "-c", NULL, NULL};
   pid_t pid;
   mongoc_client_t *client;
   mongoc_collection_t *coll;
   bson_t doc = BSON_INITIALIZER;
   bson_t *fail_inserts;
   bson_error_t error;

   if (cache_env && cache_env[0]) {
      lib = bson_strdup_printf ("%s/devdb-1.47.0/lib", cache_env);
   } else if (xdg && xdg[0]) {
      lib = bson_strdup_printf ("%s/mtask/devdb-1.47.0/lib", xdg);
   } else {
      lib = bson_strdup_printf ("%s/.cache/mtask/devdb-1.47.0/lib", home ? home : "");
   }
   if (access (lib, R_OK) != 0) {
      bson_free (lib);
      mt_test_skip ("no devdb cache to take the jars from");
   }
   ASSERT (mkdtemp (tmp));
   script = bson_strdup_printf ("set -e; mkdir -p %s/repo/tools %s/cache/devdb-1.47.0 &&"
                                " cp -R '%s/tools/devdb' '%s/tools/devdb.d' %s/repo/tools/ &&"
                                " ln -s '%s' %s/cache/devdb-1.47.0/lib",
                                tmp, tmp, mt_test_env ("MTASK_SOURCE_ROOT"), mt_test_env ("MTASK_SOURCE_ROOT"),
                                tmp, lib, tmp);
   setup[2] = script;
   ASSERT_CMPINT (mt_test_run (setup, 60000, NULL), ==, 0);
   bson_free (script);
   cache_var = bson_strdup_printf ("MTASK_CACHE=%s/cache", tmp);
   devdb = bson_strdup_printf ("%s/repo/tools/devdb", tmp);
   cache_dir = bson_strdup_printf ("%s/cache/devdb-1.47.0", tmp);
   fail_inserts = mt_test_bson ("{'configureFailPoint': 'failCommand', 'mode': 'alwaysOn',"
                                " 'data': {'failCommands': ['insert'], 'errorCode': 2}}");
   {
      const char *argv[] = {"/usr/bin/env", cache_var, devdb, "--port", "0", NULL};

      for (int round = 0; round < 3; round++) {
         if (round == 2) {
            script = bson_strdup_printf ("sed -i 's/Failing command via/Failing changed command via/'"
                                         " %s/repo/tools/devdb.d/FailCommand.java",
                                         tmp);
            setup[2] = script;
            ASSERT_CMPINT (mt_test_run (setup, 60000, NULL), ==, 0);
            bson_free (script);
         }
         pid = mt_test_spawn (argv);
         uri = mt_test_devdb_wait_ready (pid);
         ASSERT (uri);
         /* A second start with the same sources compiles nothing. */
         ASSERT_CMPINT (count_class_dirs (cache_dir), ==, round < 2 ? 1 : 2);
         client = connect_to (uri);
         ASSERT_OR_PRINT (mongoc_client_command_simple (client, "admin", fail_inserts, NULL, NULL, &error), error);
         coll = mongoc_client_get_collection (client, "devdb_test", "c");
         ASSERT (!mongoc_collection_insert_one (coll, &doc, NULL, NULL, &error));
         ASSERT_CONTAINS (error.message, round < 2 ? "Failing command via" : "Failing changed command via");
         mongoc_collection_destroy (coll);
         mongoc_client_destroy (client);
         mt_test_process_stop (pid, 30000);
         bson_free (uri);
      }
   }
   {
      const char *rm[] = {"/bin/rm", "-rf", tmp, NULL};

      ASSERT_CMPINT (mt_test_run (rm, 60000, NULL), ==, 0);
   }
   bson_destroy (fail_inserts);
   bson_free (cache_dir);
   bson_free (devdb);
   bson_free (cache_var);
   bson_free (lib);
}

/* ---- failCommand ------------------------------------------------------- */

#define FP_APP "mtask-devdb-failcommand"
#define FP_MESSAGE "Failing command via 'failCommand' failpoint"

/* Expects configureFailPoint `json` to fail with `code` and `message`. */
static void
failpoint_refused (const char *json, uint32_t code, const char *message)
{
   bson_t reply;
   bson_error_t error;

   ASSERT (!mt_test_failpoint_command (json, &reply, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER);
   ASSERT_CMPINT (error.code, ==, code);
   ASSERT_CONTAINS (error.message, message);
   bson_destroy (&reply);
}

/* Inserts {} into `collection` of this test's database. */
static bool
fp_insert (mongoc_client_t *client, const char *collection, bson_t *reply, bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, mt_test_db (), collection);
   bson_t doc = BSON_INITIALIZER;
   bson_t ignored;
   bool ok = mongoc_collection_insert_one (coll, &doc, NULL, reply ? reply : &ignored, error);

   if (!reply) {
      bson_destroy (&ignored);
   }
   mongoc_collection_destroy (coll);
   return ok;
}

/* Inserts, expecting the failpoint's error `code`. */
static void
fp_insert_fails (mongoc_client_t *client, uint32_t code)
{
   bson_error_t error;

   ASSERT (!fp_insert (client, "c", NULL, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER);
   ASSERT_CMPINT (error.code, ==, code);
   ASSERT_CONTAINS (error.message, FP_MESSAGE);
}

static void
fp_insert_works (mongoc_client_t *client)
{
   bson_error_t error;

   ASSERT_OR_PRINT (fp_insert (client, "c", NULL, &error), error);
}

/* Runs find on `collection`; true if it worked, else the error and the
 * server's reply in *reply (bson_destroy it). */
static bool
fp_find (mongoc_client_t *client, const char *collection, bson_t *reply, bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, mt_test_db (), collection);
   bson_t filter = BSON_INITIALIZER;
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (coll, &filter, NULL, NULL);
   const bson_t *doc;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
   }
   ok = !mongoc_cursor_error_document (cursor, error, &doc);
   if (!ok && reply) {
      bson_copy_to (doc, reply);
   }
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return ok;
}

static int64_t
fp_count (const char *collection)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (mt_test_client (), mt_test_db (), collection);
   bson_t filter = BSON_INITIALIZER;
   bson_error_t error;
   int64_t n = mongoc_collection_count_documents (coll, &filter, NULL, NULL, NULL, &error);

   mongoc_collection_destroy (coll);
   ASSERT_OR_PRINT (n >= 0, error);
   return n;
}

static void
test_failcommand_configure (void)
{
   bson_t reply;
   bson_error_t error;
   bson_t *cmd = mt_test_bson ("{'configureFailPoint': 'failCommand', 'mode': 'off'}");

   mt_test_failpoint_off ();
   ASSERT_OR_PRINT (mt_test_failpoint_command ("{'configureFailPoint': 'failCommand', 'mode': 'off'}", &reply, &error), error);
   ASSERT (mt_test_has (&reply, "count"));
   bson_destroy (&reply);

   /* Only on admin, as on the server. */
   ASSERT (!mongoc_client_command_simple (mt_test_client (), mt_test_db (), cmd, NULL, &reply, &error));
   ASSERT_CMPINT (error.code, ==, 13);
   ASSERT_CONTAINS (error.message, "may only be run against the admin database");
   bson_destroy (&reply);
   bson_destroy (cmd);

   ASSERT (!mt_test_failpoint_command ("{'configureFailPoint': 'noSuchFailPoint', 'mode': 'off'}", &reply, &error));
   ASSERT_CMPINT (error.code, ==, 266);
   ASSERT_CMPSTR (mt_test_str (&reply, "errmsg"), "noSuchFailPoint not found");
   ASSERT_CMPSTR (mt_test_str (&reply, "codeName"), "FailPointSetFailed");
   bson_destroy (&reply);

   failpoint_refused ("{'configureFailPoint': 'failCommand'}", 20, "you must supply a 'mode'");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': 'sometimes'}", 2, "unknown mode: sometimes");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': {'often': 1}}", 2, "'mode' must be one of");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': 5}", 14, "must be a string or JSON object");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': {'times': -1}}", 2, "must be positive");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': {'skip': 'two'}}", 14, "numeric type");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': {'times': 1.5}}", 2, "64-bit integer");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': {'activationProbability': 2}}", 2, "between 0.0 and 1.0");
   failpoint_refused ("{'configureFailPoint': 'failCommand', 'mode': 'alwaysOn', 'data': 3}", 14, "must be a JSON object");
}

static void
test_failcommand_error_code (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   bson_t reply;
   bson_error_t error;

   mt_test_failpoint_off ();
   mt_test_failpoint_set ("'alwaysOn'", "{'failCommands': ['find'], 'errorCode': 112, 'appName': '" FP_APP "'}");
   fp_insert_works (client); /* not in failCommands */
   ASSERT (!fp_find (client, "c", &reply, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER);
   ASSERT_CMPINT (error.code, ==, 112);
   ASSERT_CMPSTR (error.message, FP_MESSAGE);
   ASSERT_CMPINT (mt_test_int (&reply, "ok"), ==, 0);
   ASSERT_CMPSTR (mt_test_str (&reply, "codeName"), "WriteConflict");
   ASSERT (!mt_test_has (&reply, "errorLabels"));
   bson_destroy (&reply);

   /* Command names match exactly, as on the server; and a codeName it has
    * no name for is Location<code>. */
   mt_test_failpoint_set ("'alwaysOn'", "{'failCommands': ['Find', 'FIND'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   ASSERT_OR_PRINT (fp_find (client, "c", NULL, &error), error);
   mt_test_failpoint_set ("'alwaysOn'", "{'failCommands': ['find'], 'errorCode': 4242, 'appName': '" FP_APP "'}");
   ASSERT (!fp_find (client, "c", &reply, &error));
   ASSERT_CMPINT (error.code, ==, 4242);
   ASSERT_CMPSTR (mt_test_str (&reply, "codeName"), "Location4242");
   bson_destroy (&reply);
   ASSERT_CMPINT (fp_count ("c"), ==, 1);
   mongoc_client_destroy (client);
}

static void
test_failcommand_error_labels (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   bson_t reply;
   bson_error_t error;

   mt_test_failpoint_off ();
   /* BadValue is no error the driver labels by itself: the label is the
    * server's. */
   mt_test_failpoint_set ("'alwaysOn'",
                          "{'failCommands': ['insert'], 'errorCode': 2, 'errorLabels': ['RetryableWriteError'],"
                          " 'appName': '" FP_APP "'}");
   ASSERT (!fp_insert (client, "c", &reply, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER);
   ASSERT_CMPINT (error.code, ==, 2);
   ASSERT (mongoc_error_has_label (&reply, "RetryableWriteError"));
   bson_destroy (&reply);

   mt_test_failpoint_set ("'alwaysOn'", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   ASSERT (!fp_insert (client, "c", &reply, &error));
   ASSERT_CMPINT (error.code, ==, 2);
   ASSERT (!mongoc_error_has_label (&reply, "RetryableWriteError"));
   bson_destroy (&reply);

   mt_test_failpoint_set ("'alwaysOn'",
                          "{'failCommands': ['find'], 'errorCode': 91, 'errorLabels': ['ResumableChangeStreamError', 'X'],"
                          " 'appName': '" FP_APP "'}");
   ASSERT (!fp_find (client, "c", &reply, &error));
   ASSERT_CMPINT (error.code, ==, 91);
   ASSERT_CMPSTR (mt_test_str (&reply, "codeName"), "ShutdownInProgress");
   ASSERT (mongoc_error_has_label (&reply, "ResumableChangeStreamError"));
   ASSERT (mongoc_error_has_label (&reply, "X"));
   bson_destroy (&reply);
   mt_test_failpoint_off ();
   ASSERT_CMPINT (fp_count ("c"), ==, 0);
   mongoc_client_destroy (client);
}

static void
test_failcommand_close_connection (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   bson_error_t error;

   mt_test_failpoint_off ();
   mt_test_failpoint_set ("{'times': 1}", "{'failCommands': ['insert'], 'closeConnection': true, 'appName': '" FP_APP "'}");
   ASSERT (!fp_insert (client, "c", NULL, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_STREAM);
   ASSERT_CMPINT (fp_count ("c"), ==, 0); /* it never ran */
   /* The driver connects again for the next operation. */
   fp_insert_works (client);
   ASSERT_CMPINT (fp_count ("c"), ==, 1);
   mongoc_client_destroy (client);
}

static void
test_failcommand_block_connection (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   bson_error_t error;
   int64_t start;

   mt_test_failpoint_off ();
   fp_insert_works (client); /* connected before timing */
   mt_test_failpoint_set ("{'times': 1}",
                          "{'failCommands': ['insert'], 'blockConnection': true, 'blockTimeMS': 500, 'appName': '" FP_APP "'}");
   start = bson_get_monotonic_time ();
   fp_insert_works (client);
   ASSERT_CMPINT (bson_get_monotonic_time () - start, >=, 500 * 1000);
   ASSERT_CMPINT (bson_get_monotonic_time () - start, <, 10 * 1000 * 1000);
   ASSERT_CMPINT (fp_count ("c"), ==, 2);

   /* Blocked, then failed. */
   mt_test_failpoint_set ("{'times': 1}",
                          "{'failCommands': ['insert'], 'blockConnection': true, 'blockTimeMS': 300, 'errorCode': 2,"
                          " 'appName': '" FP_APP "'}");
   start = bson_get_monotonic_time ();
   fp_insert_fails (client, 2);
   ASSERT_CMPINT (bson_get_monotonic_time () - start, >=, 300 * 1000);
   ASSERT_CMPINT (fp_count ("c"), ==, 2);

   /* The server's own error when blockTimeMS is missing. */
   mt_test_failpoint_set ("{'times': 1}", "{'failCommands': ['insert'], 'blockConnection': true, 'appName': '" FP_APP "'}");
   ASSERT (!fp_insert (client, "c", NULL, &error));
   ASSERT_CMPINT (error.code, ==, 72);
   ASSERT_CONTAINS (error.message, "must specify 'blockTimeMS'");
   mongoc_client_destroy (client);
}

/* Static: the thread may outlive a test that failed. */
static struct {
   mongoc_client_t *client;
   bool ok;
   int64_t elapsed_us;
   int done; /* read and written with __atomic builtins */
} blocked;

static void *
blocked_insert (void *arg)
{
   bson_error_t error;
   int64_t start = bson_get_monotonic_time ();

   (void) arg;
   blocked.ok = fp_insert (blocked.client, "c", NULL, &error);
   blocked.elapsed_us = bson_get_monotonic_time () - start;
   __atomic_store_n (&blocked.done, 1, __ATOMIC_SEQ_CST);
   return NULL;
}

/* The server blocks the operation, not the other connections: each new
 * connection meanwhile gets its handshake and ping answered at once. (The
 * dev database serves connections on a few shared network threads; a
 * failpoint that slept on one would stall every connection it serves.) */
static void
test_failcommand_block_only_that_connection (void)
{
   pthread_t thread;
   bson_t *ping = mt_test_bson ("{'ping': 1}");
   int64_t until, slowest = 0;
   int connections = 0;
   bool overlapped;

   mt_test_failpoint_off ();
   blocked.client = mt_test_failpoint_client (FP_APP);
   blocked.done = 0;
   fp_insert_works (blocked.client);
   mt_test_failpoint_set ("{'times': 1}",
                          "{'failCommands': ['insert'], 'blockConnection': true, 'blockTimeMS': 3000, 'appName': '" FP_APP "'}");
   ASSERT (pthread_create (&thread, NULL, blocked_insert, NULL) == 0);
   until = bson_get_monotonic_time () + 1500 * 1000;
   while (bson_get_monotonic_time () < until) {
      mongoc_client_t *other = mt_test_failpoint_client (FP_APP "-other");
      bson_error_t error;
      int64_t start = bson_get_monotonic_time ();
      bool ok = mongoc_client_command_simple (other, "admin", ping, NULL, NULL, &error);
      int64_t elapsed = bson_get_monotonic_time () - start;

      mongoc_client_destroy (other);
      ASSERT_OR_PRINT (ok, error);
      slowest = BSON_MAX (slowest, elapsed);
      connections++;
   }
   overlapped = !__atomic_load_n (&blocked.done, __ATOMIC_SEQ_CST);
   pthread_join (thread, NULL);
   ASSERT_CMPINT (slowest, <, 1000 * 1000);
   ASSERT (overlapped); /* the pings ran while the insert was blocked */
   ASSERT_CMPINT (connections, >=, 8);
   ASSERT (blocked.ok);
   ASSERT_CMPINT (blocked.elapsed_us, >=, 3000 * 1000);
   ASSERT_CMPINT (fp_count ("c"), ==, 2);
   bson_destroy (ping);
   mongoc_client_destroy (blocked.client);
}

static void
test_failcommand_write_concern_error (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   bson_t reply;
   bson_error_t error;

   mt_test_failpoint_off ();
   /* find takes no write concern: it is neither changed nor counted. */
   mt_test_failpoint_set ("{'times': 1}",
                          "{'failCommands': ['find', 'insert'],"
                          " 'writeConcernError': {'code': 64, 'codeName': 'WriteConcernTimeout',"
                          "                       'errmsg': 'waiting for replication timed out', 'errInfo': {'wtimeout': true}},"
                          " 'errorLabels': ['RetryableWriteError'], 'appName': '" FP_APP "'}");
   ASSERT_OR_PRINT (fp_find (client, "c", NULL, &error), error);
   ASSERT (!fp_insert (client, "c", &reply, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_WRITE_CONCERN);
   ASSERT_CMPINT (error.code, ==, 64);
   ASSERT_CONTAINS (error.message, "waiting for replication timed out");
   ASSERT (mongoc_error_has_label (&reply, "RetryableWriteError"));
   ASSERT_CMPINT (mt_test_int (&reply, "insertedCount"), ==, 1);
   bson_destroy (&reply);
   ASSERT_CMPINT (fp_count ("c"), ==, 1); /* the write was applied */
   fp_insert_works (client);               /* {times: 1} is spent */
   ASSERT_CMPINT (fp_count ("c"), ==, 2);
   mongoc_client_destroy (client);
}

static void
test_failcommand_times (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   mongoc_client_t *other = mt_test_failpoint_client (FP_APP "-other");
   bson_error_t error;
   int64_t before;

   mt_test_failpoint_off ();
   before = mt_test_failpoint_set ("{'times': 2}", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   /* Commands that do not match do not count. */
   ASSERT_OR_PRINT (fp_find (client, "c", NULL, &error), error);
   fp_insert_works (other);
   fp_insert_fails (client, 2);
   fp_insert_fails (client, 2);
   fp_insert_works (client);
   fp_insert_works (client);
   ASSERT_CMPINT (mt_test_failpoint_off () - before, ==, 2);
   ASSERT_CMPINT (fp_count ("c"), ==, 3);

   /* {times: 0} fires once, as on the server. */
   mt_test_failpoint_set ("{'times': 0}", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   fp_insert_fails (client, 2);
   fp_insert_works (client);
   mongoc_client_destroy (other);
   mongoc_client_destroy (client);
}

static void
test_failcommand_skip (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   mongoc_client_t *other = mt_test_failpoint_client (FP_APP "-other");
   bson_error_t error;

   mt_test_failpoint_off ();
   mt_test_failpoint_set ("{'skip': 2}", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   ASSERT_OR_PRINT (fp_find (client, "c", NULL, &error), error);
   fp_insert_works (other);
   fp_insert_works (client);
   fp_insert_works (client);
   for (int i = 0; i < 3; i++) {
      fp_insert_fails (client, 2);
   }
   mt_test_failpoint_off ();
   fp_insert_works (client);
   ASSERT_CMPINT (fp_count ("c"), ==, 4);
   mongoc_client_destroy (other);
   mongoc_client_destroy (client);
}

static void
test_failcommand_off (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   int64_t count;

   mt_test_failpoint_off ();
   mt_test_failpoint_set ("'alwaysOn'", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   fp_insert_fails (client, 2);
   count = mt_test_failpoint_off ();
   fp_insert_works (client);
   fp_insert_works (client);
   ASSERT_CMPINT (mt_test_failpoint_off (), ==, count); /* it no longer fires */

   /* activationProbability 0 never fires, 1 (almost) always. */
   mt_test_failpoint_set ("{'activationProbability': 0}", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   fp_insert_works (client);
   mt_test_failpoint_set ("{'activationProbability': 1}", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   fp_insert_fails (client, 2);
   mongoc_client_destroy (client);
}

static void
test_failcommand_app_name_and_namespace (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   mongoc_client_t *other = mt_test_failpoint_client (FP_APP "-other");
   mongoc_client_t *anonymous = mt_test_failpoint_client (NULL);
   bson_error_t error;
   char *data;

   mt_test_failpoint_off ();
   mt_test_failpoint_set ("'alwaysOn'", "{'failCommands': ['insert'], 'errorCode': 2, 'appName': '" FP_APP "'}");
   fp_insert_works (other);
   fp_insert_works (anonymous);
   fp_insert_fails (client, 2);

   /* Without appName it applies to every client: here only in this test's
    * database, by namespace. */
   data = bson_strdup_printf ("{'failCommands': ['insert'], 'errorCode': 2, 'namespace': '%s.c'}", mt_test_db ());
   mt_test_failpoint_set ("'alwaysOn'", data);
   fp_insert_fails (anonymous, 2);
   fp_insert_fails (other, 2);
   ASSERT_OR_PRINT (fp_insert (anonymous, "d", NULL, &error), error);
   bson_free (data);
   mongoc_client_destroy (anonymous);
   mongoc_client_destroy (other);
   mongoc_client_destroy (client);
}

/* configureFailPoint, the handshake and the commands drivers send on their
 * own are never failed, listed or not. */
static void
test_failcommand_exempt (void)
{
   mongoc_client_t *client = mt_test_failpoint_client (FP_APP);
   const char *commands[] = {"{'ping': 1}", "{'isMaster': 1}", "{'ismaster': 1}", "{'buildInfo': 1}",
                             "{'buildinfo': 1}", "{'endSessions': []}"};
   bson_error_t error;

   mt_test_failpoint_off ();
   mt_test_failpoint_set ("'alwaysOn'",
                          "{'failCommands': ['ping', 'hello', 'isMaster', 'ismaster', 'buildInfo', 'buildinfo',"
                          "                  'endSessions', 'configureFailPoint', 'insert'],"
                          " 'errorCode': 2, 'appName': '" FP_APP "'}");
   fp_insert_fails (client, 2);
   for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
      bson_t *cmd = mt_test_bson (commands[i]);
      bool ok = mongoc_client_command_simple (client, "admin", cmd, NULL, NULL, &error);

      bson_destroy (cmd);
      ASSERT_OR_PRINT (ok, error);
   }
   /* configureFailPoint works even from the client it fails. */
   {
      bson_t *off = mt_test_bson ("{'configureFailPoint': 'failCommand', 'mode': 'off'}");
      bool ok = mongoc_client_command_simple (client, "admin", off, NULL, NULL, &error);

      bson_destroy (off);
      ASSERT_OR_PRINT (ok, error);
   }
   fp_insert_works (client);
   mongoc_client_destroy (client);
}

/* ---- --replset: a one-member replica set ----------------------------- */

/* A client of `uri` named `appname`, with URI `options` ("&a=b...") added. */
static mongoc_client_t *
client_at (const char *uri, const char *appname, const char *options)
{
   char *full = bson_strdup_printf ("%s%s%s", uri, strchr (uri, '?') ? "&" : "?", options ? options : "");
   bson_error_t error;
   mongoc_uri_t *parsed = mongoc_uri_new_with_error (full, &error);
   mongoc_client_t *client;

   ASSERT_OR_PRINT (parsed, error);
   if (appname) {
      ASSERT (mongoc_uri_set_appname (parsed, appname));
   }
   client = mongoc_client_new_from_uri_with_error (parsed, &error);
   mongoc_uri_destroy (parsed);
   bson_free (full);
   ASSERT_OR_PRINT (client, error);
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   return client;
}

/* The reply to `json` on admin through `client`; fails the test on an error. */
static bson_t *
admin_command (mongoc_client_t *client, const char *json)
{
   bson_t *cmd = mt_test_bson (json);
   bson_t reply, *copy;
   bson_error_t error;
   bool ok = mongoc_client_command_simple (client, "admin", cmd, NULL, &reply, &error);

   bson_destroy (cmd);
   copy = bson_copy (&reply);
   bson_destroy (&reply);
   if (!ok) {
      bson_destroy (copy);
   }
   ASSERT_OR_PRINT (ok, error);
   return copy;
}

/* isMaster and hello say: the primary of replica set "rs-test", at the
 * address the client connected to, and no sessions. */
static void
test_replset_handshake (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start_replset ("rs-test", &pid);
   char *host = bson_strndup (uri + strlen ("mongodb://"), strcspn (uri + strlen ("mongodb://"), "/"));
   mongoc_client_t *client = client_at (uri, NULL, NULL);
   bson_t *reply = admin_command (client, "{'isMaster': 1}");
   bson_iter_t iter;

   ASSERT_CONTAINS (uri, "?replicaSet=rs-test");
   ASSERT_CMPSTR (mt_test_str (reply, "setName"), "rs-test");
   ASSERT_CMPINT (mt_test_int (reply, "setVersion"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (reply, "hosts.0"), host);
   ASSERT (!mt_test_has (reply, "hosts.1"));
   ASSERT_CMPSTR (mt_test_str (reply, "primary"), host);
   ASSERT_CMPSTR (mt_test_str (reply, "me"), host);
   ASSERT (bson_iter_init_find (&iter, reply, "ismaster") && bson_iter_as_bool (&iter));
   ASSERT (bson_iter_init_find (&iter, reply, "secondary") && BSON_ITER_HOLDS_BOOL (&iter) && !bson_iter_bool (&iter));
   ASSERT (bson_iter_init_find (&iter, reply, "electionId") && BSON_ITER_HOLDS_OID (&iter));
   ASSERT (mt_test_has (reply, "lastWrite.lastWriteDate"));
   ASSERT (!mt_test_has (reply, "logicalSessionTimeoutMinutes"));
   ASSERT_CMPINT (mt_test_int (reply, "maxWireVersion"), ==, 8);
   bson_destroy (reply);

   reply = admin_command (client, "{'hello': 1}");
   ASSERT_CMPSTR (mt_test_str (reply, "setName"), "rs-test");
   ASSERT (bson_iter_init_find (&iter, reply, "isWritablePrimary") && bson_iter_as_bool (&iter));
   ASSERT (!mt_test_has (reply, "ismaster"));
   ASSERT (!mt_test_has (reply, "logicalSessionTimeoutMinutes"));
   bson_destroy (reply);

   /* The driver sees a replica set primary. */
   {
      bson_error_t error;
      mongoc_server_description_t *sd = mongoc_client_select_server (client, true, NULL, &error);

      ASSERT_OR_PRINT (sd, error);
      ASSERT_CMPSTR (mongoc_server_description_type (sd), "RSPrimary");
      mongoc_server_description_destroy (sd);
   }
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (host);
   bson_free (uri);

   /* Without --replset: a standalone, as before, which answers hello too. */
   reply = admin_command (mt_test_client (), "{'isMaster': 1}");
   ASSERT (!mt_test_has (reply, "setName"));
   ASSERT (bson_iter_init_find (&iter, reply, "ismaster") && bson_iter_as_bool (&iter));
   bson_destroy (reply);
   reply = admin_command (mt_test_client (), "{'hello': 1}");
   ASSERT (bson_iter_init_find (&iter, reply, "isWritablePrimary") && bson_iter_as_bool (&iter));
   ASSERT (!mt_test_has (reply, "setName"));
   bson_destroy (reply);
}

/* Points `entry` at the entry `i` of a command log (its data borrowed:
 * a bson_t made with bson_init_static cannot be copied). */
static void
log_entry (const bson_t *log, int i, bson_t *entry)
{
   char key[16];
   bson_iter_t iter;
   const uint8_t *data;
   uint32_t len;

   bson_snprintf (key, sizeof key, "%d", i);
   if (!bson_iter_init_find (&iter, log, key) || !BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      mt_test_fail (__FILE__, __LINE__, "the command log has no entry %d", i);
   }
   bson_iter_document (&iter, &len, &data);
   ASSERT (bson_init_static (entry, data, len));
}

/* A client with ?replicaSet= connects, writes with w: majority and reads;
 * a read with a read preference other than primary reaches the server as
 * $readPreference, one for the primary without it; no command carries an
 * lsid (no sessions). And a wrong set name finds no server. */
static void
test_replset_read_write (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start_replset ("rs-rw", &pid);
   mongoc_client_t *client = client_at (uri, "rw-app", NULL);
   mongoc_collection_t *coll = mongoc_client_get_collection (client, "rs_test", "c");
   bson_t *doc = mt_test_bson ("{'_id': 1, 'x': 'y'}");
   bson_t *majority = mt_test_bson ("{'writeConcern': {'w': 'majority', 'wtimeout': 5000}}");
   bson_t filter = BSON_INITIALIZER;
   mongoc_read_prefs_t *secondary = mongoc_read_prefs_new (MONGOC_READ_SECONDARY_PREFERRED);
   mongoc_read_prefs_t *primary = mongoc_read_prefs_new (MONGOC_READ_PRIMARY);
   mongoc_read_prefs_t *prefs[] = {secondary, primary};
   bson_error_t error;
   bson_t *log;

   mt_test_command_log_clear_at (uri);
   ASSERT_OR_PRINT (mongoc_collection_insert_one (coll, doc, majority, NULL, &error), error);
   for (int i = 0; i < 2; i++) {
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (coll, &filter, NULL, prefs[i]);
      const bson_t *found;
      int n = 0;

      while (mongoc_cursor_next (cursor, &found)) {
         ASSERT_CMPSTR (mt_test_str (found, "x"), "y");
         n++;
      }
      ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
      ASSERT_CMPINT (n, ==, 1);
      mongoc_cursor_destroy (cursor);
   }

   log = mt_test_command_log_at (uri, "rw-app");
   ASSERT_CMPINT (mt_test_command_log_count (log, NULL), ==, 3);
   {
      bson_t insert, read_secondary, read_primary;

      log_entry (log, 0, &insert);
      log_entry (log, 1, &read_secondary);
      log_entry (log, 2, &read_primary);

      ASSERT_CMPSTR (mt_test_str (&insert, "command"), "insert");
      ASSERT_CMPSTR (mt_test_str (&insert, "db"), "rs_test");
      ASSERT_CMPSTR (mt_test_str (&insert, "collection"), "c");
      ASSERT_CMPSTR (mt_test_str (&insert, "appName"), "rw-app");
      ASSERT_CMPSTR (mt_test_str (&insert, "writeConcern.w"), "majority");
      ASSERT_CMPINT (mt_test_int (&insert, "writeConcern.wtimeout"), ==, 5000);
      ASSERT (!mt_test_has (&insert, "readPreference"));
      ASSERT_CMPSTR (mt_test_str (&read_secondary, "command"), "find");
      ASSERT_CMPSTR (mt_test_str (&read_secondary, "readPreference.mode"), "secondaryPreferred");
      ASSERT_CMPSTR (mt_test_str (&read_primary, "command"), "find");
      ASSERT (!mt_test_has (&read_primary, "readPreference"));
      for (int i = 0; i < 3; i++) {
         bson_t entry;

         log_entry (log, i, &entry);

         ASSERT (!mt_test_has (&entry, "lsid"));
      }
   }
   bson_destroy (log);

   /* Another set name: the driver finds no primary of that set. */
   {
      char *wrong = bson_strdup_printf ("%.*s?replicaSet=other", (int) (strchr (uri, '?') - uri), uri);
      mongoc_client_t *lost = client_at (wrong, NULL, "serverSelectionTimeoutMS=500");
      bson_t *ping = mt_test_bson ("{'ping': 1}");

      ASSERT (!mongoc_client_command_simple (lost, "admin", ping, NULL, NULL, &error));
      ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER_SELECTION);
      bson_destroy (ping);
      mongoc_client_destroy (lost);
      bson_free (wrong);
   }

   mongoc_read_prefs_destroy (primary);
   mongoc_read_prefs_destroy (secondary);
   bson_destroy (&filter);
   bson_destroy (majority);
   bson_destroy (doc);
   mongoc_collection_destroy (coll);
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);
}

/* ---- the command log (devdbCommandLog) ------------------------------- */

/* What a client named after this test sent, in order, on the shared
 * server: never the handshake, configureFailPoint or devdbCommandLog;
 * a command that failCommand failed too. */
static void
test_command_log_records (void)
{
   char *app = bson_strdup_printf ("log-%s", mt_test_db ());
   char *other_app = bson_strdup_printf ("other-%s", mt_test_db ());
   mongoc_client_t *client = mt_test_failpoint_client (app);
   mongoc_client_t *other = mt_test_failpoint_client (other_app);
   mongoc_collection_t *coll = mongoc_client_get_collection (client, mt_test_db (), "c");
   bson_t *doc = mt_test_bson ("{'a': 1}");
   bson_t *w1 = mt_test_bson ("{'writeConcern': {'w': 1}}");
   bson_t *ping = mt_test_bson ("{'ping': 1}");
   bson_t *ping_lsid = mt_test_bson ("{'ping': 1, 'lsid': {'id': 1}}");
   bson_t *count = mt_test_bson ("{'count': 'c'}");
   bson_t *log_cmd = mt_test_bson ("{'devdbCommandLog': 1}");
   char *fail;
   bson_t *log, *all;
   bson_t entry;
   bson_error_t error;

   mt_test_failpoint_off ();
   mt_test_command_log_clear ();
   ASSERT_OR_PRINT (mongoc_collection_insert_one (coll, doc, w1, NULL, &error), error);
   ASSERT_OR_PRINT (mongoc_client_command_simple (client, "admin", ping_lsid, NULL, NULL, &error), error);
   ASSERT_OR_PRINT (mongoc_client_command_simple (client, "admin", log_cmd, NULL, NULL, &error), error);
   ASSERT_OR_PRINT (mongoc_client_command_simple (other, "admin", ping, NULL, NULL, &error), error);
   fail = bson_strdup_printf ("{'failCommands': ['count'], 'errorCode': 2, 'appName': '%s'}", app);
   mt_test_failpoint_set ("{'times': 1}", fail);
   ASSERT (!mongoc_client_command_simple (client, mt_test_db (), count, NULL, NULL, &error));
   ASSERT_CMPINT (error.code, ==, 2);

   log = mt_test_command_log (app);
   ASSERT_CMPINT (mt_test_command_log_count (log, NULL), ==, 3);
   log_entry (log, 0, &entry);
   ASSERT_CMPSTR (mt_test_str (&entry, "command"), "insert");
   ASSERT_CMPSTR (mt_test_str (&entry, "db"), mt_test_db ());
   ASSERT_CMPSTR (mt_test_str (&entry, "collection"), "c");
   ASSERT_CMPSTR (mt_test_str (&entry, "appName"), app);
   ASSERT_CMPINT (mt_test_int (&entry, "writeConcern.w"), ==, 1);
   ASSERT (!mt_test_has (&entry, "readPreference"));
   ASSERT (!mt_test_has (&entry, "lsid"));
   log_entry (log, 1, &entry);
   ASSERT_CMPSTR (mt_test_str (&entry, "command"), "ping");
   ASSERT_CMPSTR (mt_test_str (&entry, "db"), "admin");
   ASSERT (!mt_test_has (&entry, "collection")); /* its value is no string */
   ASSERT (!mt_test_has (&entry, "writeConcern"));
   {
      bson_iter_t iter;

      ASSERT (bson_iter_init_find (&iter, &entry, "lsid") && BSON_ITER_HOLDS_BOOL (&iter) && bson_iter_bool (&iter));
   }
   log_entry (log, 2, &entry); /* the count failCommand failed */
   ASSERT_CMPSTR (mt_test_str (&entry, "command"), "count");
   ASSERT_CMPSTR (mt_test_str (&entry, "collection"), "c");
   ASSERT (!mt_test_has (&entry, "lsid"));
   ASSERT_CMPINT (mt_test_int (log, "0.seq"), <, mt_test_int (log, "1.seq"));
   ASSERT_CMPINT (mt_test_int (log, "1.seq"), <, mt_test_int (log, "2.seq"));
   bson_destroy (log);

   /* Without a filter: every client's, the other one's too. */
   all = mt_test_command_log (NULL);
   ASSERT_CMPINT (mt_test_command_log_count (all, NULL), >=, 4);
   {
      char *json = bson_as_relaxed_extended_json (all, NULL);

      ASSERT_CONTAINS (json, other_app);
      bson_free (json);
   }
   bson_destroy (all);

   /* After a clear, only what came later. */
   mt_test_command_log_clear ();
   ASSERT_OR_PRINT (mongoc_client_command_simple (client, "admin", ping, NULL, NULL, &error), error);
   log = mt_test_command_log (app);
   ASSERT_CMPINT (mt_test_command_log_count (log, "ping"), ==, 1);
   ASSERT_CMPINT (mt_test_command_log_count (log, NULL), ==, 1);
   bson_destroy (log);

   bson_free (fail);
   bson_destroy (log_cmd);
   bson_destroy (count);
   bson_destroy (ping_lsid);
   bson_destroy (ping);
   bson_destroy (w1);
   bson_destroy (doc);
   mongoc_collection_destroy (coll);
   mongoc_client_destroy (other);
   mongoc_client_destroy (client);
   bson_free (other_app);
   bson_free (app);
}

/* The command's own options, on a devdb of this test: clear empties the
 * log (only a client's with appName) and returns what it held; after;
 * refusals; and failCommand never fails it. */
static void
test_command_log_clear_and_options (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start (W ("--port", "0", "--memory"), &pid);
   mongoc_client_t *a = client_at (uri, "app-a", NULL);
   mongoc_client_t *b = client_at (uri, "app-b", NULL);
   bson_t *ping = mt_test_bson ("{'ping': 1}");
   bson_t *reply, *log;
   bson_error_t error;
   int64_t seq;

   for (int i = 0; i < 3; i++) {
      ASSERT_OR_PRINT (mongoc_client_command_simple (a, "admin", ping, NULL, NULL, &error), error);
      ASSERT_OR_PRINT (mongoc_client_command_simple (b, "admin", ping, NULL, NULL, &error), error);
   }
   reply = admin_command (a, "{'devdbCommandLog': 1}");
   ASSERT_CMPINT (mt_test_int (reply, "seq"), ==, 6);
   ASSERT_CMPINT (mt_test_int (reply, "commands.0.seq"), ==, 1);
   ASSERT_CMPINT (mt_test_int (reply, "commands.5.seq"), ==, 6);
   ASSERT (!mt_test_has (reply, "commands.6"));
   bson_destroy (reply);
   reply = admin_command (a, "{'devdbCommandLog': 1, 'after': 4}");
   ASSERT_CMPINT (mt_test_int (reply, "commands.0.seq"), ==, 5);
   ASSERT (!mt_test_has (reply, "commands.2"));
   bson_destroy (reply);

   /* clear with appName: those of app-a go, app-b's stay. */
   reply = admin_command (a, "{'devdbCommandLog': 1, 'clear': true, 'appName': 'app-a'}");
   ASSERT_CMPSTR (mt_test_str (reply, "commands.2.appName"), "app-a");
   ASSERT (!mt_test_has (reply, "commands.3"));
   bson_destroy (reply);
   log = mt_test_command_log_at (uri, NULL);
   ASSERT_CMPINT (mt_test_command_log_count (log, NULL), ==, 3);
   ASSERT_CMPSTR (mt_test_str (log, "0.appName"), "app-b");
   bson_destroy (log);
   reply = admin_command (b, "{'devdbCommandLog': 1, 'clear': true}");
   ASSERT (mt_test_has (reply, "commands.2"));
   seq = mt_test_int (reply, "seq");
   bson_destroy (reply);
   log = mt_test_command_log_at (uri, NULL);
   ASSERT_CMPINT (mt_test_command_log_count (log, NULL), ==, 0);
   bson_destroy (log);
   /* seq goes on counting after a clear. */
   ASSERT_OR_PRINT (mongoc_client_command_simple (a, "admin", ping, NULL, NULL, &error), error);
   reply = admin_command (a, "{'devdbCommandLog': 1}");
   ASSERT_CMPINT (mt_test_int (reply, "commands.0.seq"), ==, seq + 1);
   bson_destroy (reply);
   mt_test_command_log_clear_at (uri);
   log = mt_test_command_log_at (uri, NULL);
   ASSERT_CMPINT (mt_test_command_log_count (log, NULL), ==, 0);
   bson_destroy (log);

   /* On admin only; options checked. */
   {
      const struct {
         const char *db;
         const char *json;
         uint32_t code;
         const char *message;
      } refused[] = {
         {"test", "{'devdbCommandLog': 1}", 13, "may only be run against the admin database"},
         {"admin", "{'devdbCommandLog': 1, 'appName': 3}", 14, "'appName' must be a string"},
         {"admin", "{'devdbCommandLog': 1, 'after': 'x'}", 14, "'after' must be an integer"},
         {"admin", "{'devdbCommandLog': 1, 'clear': 1}", 14, "'clear' must be a boolean"},
         {"admin", "{'devdbCommandLog': 1, 'cleer': true}", 40415, "'devdbCommandLog.cleer' is an unknown field"},
      };

      for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
         bson_t *cmd = mt_test_bson (refused[i].json);

         ASSERT (!mongoc_client_command_simple (a, refused[i].db, cmd, NULL, NULL, &error));
         ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER);
         ASSERT_CMPINT (error.code, ==, refused[i].code);
         ASSERT_CONTAINS (error.message, refused[i].message);
         bson_destroy (cmd);
      }
   }

   /* failCommand fails every command of app-a but this one. */
   reply = admin_command (a,
                          "{'configureFailPoint': 'failCommand', 'mode': 'alwaysOn',"
                          " 'data': {'failAllCommands': true, 'errorCode': 2, 'appName': 'app-a'}}");
   bson_destroy (reply);
   {
      bson_t *count = mt_test_bson ("{'count': 'c'}");

      ASSERT (!mongoc_client_command_simple (a, "test", count, NULL, NULL, &error));
      ASSERT_CMPINT (error.code, ==, 2);
      bson_destroy (count);
   }
   reply = admin_command (a, "{'devdbCommandLog': 1, 'appName': 'app-a'}");
   /* The failed count only: refused devdbCommandLogs and configureFailPoint
    * are not logged. */
   ASSERT_CMPSTR (mt_test_str (reply, "commands.0.command"), "count");
   ASSERT (!mt_test_has (reply, "commands.1"));
   bson_destroy (reply);

   bson_destroy (ping);
   mongoc_client_destroy (b);
   mongoc_client_destroy (a);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);
}

/* It keeps the last 20000. */
static void
test_command_log_limit (void)
{
   pid_t pid;
   char *uri = mt_test_devdb_start (W ("--port", "0", "--memory"), &pid);
   mongoc_client_t *client = client_at (uri, NULL, NULL);
   bson_t *ping = mt_test_bson ("{'ping': 1}");
   bson_t *log;
   bson_error_t error;

   for (int i = 0; i < 20005; i++) {
      ASSERT_OR_PRINT (mongoc_client_command_simple (client, "admin", ping, NULL, NULL, &error), error);
   }
   log = mt_test_command_log_at (uri, NULL);
   ASSERT_CMPINT (mt_test_command_log_count (log, NULL), ==, 20000);
   ASSERT_CMPINT (mt_test_int (log, "0.seq"), ==, 6);
   ASSERT_CMPINT (mt_test_int (log, "19999.seq"), ==, 20005);
   bson_destroy (log);
   bson_destroy (ping);
   mongoc_client_destroy (client);
   mt_test_process_stop (pid, 30000);
   bson_free (uri);
}

#define LOG_THREADS 4
#define LOG_PER_THREAD 300

static void *
log_pinger (void *arg)
{
   mongoc_client_t *client = arg;
   bson_t ping = BSON_INITIALIZER;
   bson_error_t error;
   intptr_t failed = 0;

   BSON_APPEND_INT32 (&ping, "ping", 1);
   for (int i = 0; i < LOG_PER_THREAD; i++) {
      failed += !mongoc_client_command_simple (client, "admin", &ping, NULL, NULL, &error);
   }
   bson_destroy (&ping);
   return (void *) failed;
}

/* Clients on several connections at once: each command logged once, the
 * seqs in order. */
static void
test_command_log_threads (void)
{
   char *app = bson_strdup_printf ("threads-%s", mt_test_db ());
   mongoc_client_t *clients[LOG_THREADS];
   pthread_t threads[LOG_THREADS];
   bson_t *log;
   bson_iter_t iter;
   int64_t last = 0;
   int n = 0;

   mt_test_command_log_clear ();
   for (int i = 0; i < LOG_THREADS; i++) {
      clients[i] = mt_test_failpoint_client (app);
      ASSERT (pthread_create (&threads[i], NULL, log_pinger, clients[i]) == 0);
   }
   for (int i = 0; i < LOG_THREADS; i++) {
      void *failed;

      pthread_join (threads[i], &failed);
      ASSERT_CMPINT ((intptr_t) failed, ==, 0);
      mongoc_client_destroy (clients[i]);
   }
   log = mt_test_command_log (app);
   ASSERT (bson_iter_init (&iter, log));
   while (bson_iter_next (&iter)) {
      bson_t entry;
      const uint8_t *data;
      uint32_t len;

      bson_iter_document (&iter, &len, &data);
      ASSERT (bson_init_static (&entry, data, len));
      ASSERT_CMPSTR (mt_test_str (&entry, "command"), "ping");
      ASSERT_CMPINT (mt_test_int (&entry, "seq"), >, last);
      last = mt_test_int (&entry, "seq");
      n++;
   }
   ASSERT_CMPINT (n, ==, LOG_THREADS * LOG_PER_THREAD);
   bson_destroy (log);
   bson_free (app);
}

/* ---- createIndexes as MongoDB 4.4 and later ---------------------------- */

/* createIndexes on `collection` of this test's database with the indexes of
 * the JSON array `indexes`; the reply in *reply (bson_destroy it). */
static bool
create_indexes (const char *collection, const char *indexes, bson_t *reply, bson_error_t *error)
{
   char *json = bson_strdup_printf ("{'createIndexes': '%s', 'indexes': %s}", collection, indexes);
   bson_t *cmd = mt_test_bson (json);
   mongoc_database_t *db = mongoc_client_get_database (mt_test_client (), mt_test_db ());
   bool ok = mongoc_database_write_command_with_opts (db, cmd, NULL, reply, error);

   mongoc_database_destroy (db);
   bson_destroy (cmd);
   bson_free (json);
   return ok;
}

static void
indexes_created (const char *collection, const char *indexes)
{
   bson_t reply;
   bson_error_t error;
   bool ok = create_indexes (collection, indexes, &reply, &error);

   bson_destroy (&reply);
   ASSERT_OR_PRINT (ok, error);
}

/* createIndexes must fail with `code` (its codeName `code_name`) saying
 * `message`. */
static void
indexes_refused (const char *collection, const char *indexes, uint32_t code, const char *code_name, const char *message)
{
   bson_t reply;
   bson_error_t error;

   ASSERT (!create_indexes (collection, indexes, &reply, &error));
   ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER);
   ASSERT_CMPINT (error.code, ==, code);
   ASSERT_CONTAINS (error.message, message);
   ASSERT_CMPSTR (mt_test_str (&reply, "codeName"), code_name);
   bson_destroy (&reply);
}

/* The listIndexes of `collection`, as one JSON text, and how many. */
static char *
indexes_listed (const char *collection, int *n)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
   const bson_t *index;
   bson_string_t *all = bson_string_new ("");
   bson_error_t error;

   *n = 0;
   while (mongoc_cursor_next (cursor, &index)) {
      char *json = bson_as_relaxed_extended_json (index, NULL);

      bson_string_append_printf (all, "%s\n", json);
      bson_free (json);
      (*n)++;
   }
   ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   return bson_string_free (all, false);
}

/* The index named `name` of `collection`; fails the test without one.
 * bson_destroy it. */
static bson_t *
index_named (const char *collection, const char *name)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
   const bson_t *index;
   bson_t *found = NULL;
   bson_error_t error;

   while (mongoc_cursor_next (cursor, &index)) {
      if (!found && mt_test_str (index, "name") && !strcmp (mt_test_str (index, "name"), name)) {
         found = bson_copy (index);
      }
   }
   ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   if (!found) {
      mt_test_fail (__FILE__, __LINE__, "%s has no index named %s", collection, name);
   }
   return found;
}

static void
test_indexes_same_name_other_key (void)
{
   char *before, *after;
   int n_before, n_after;

   indexes_created ("c", "[{'key': {'a': 1}, 'name': 'a_1'}]");
   before = indexes_listed ("c", &n_before);
   indexes_refused ("c", "[{'key': {'b': 1}, 'name': 'a_1'}]", 86, "IndexKeySpecsConflict",
                    "An existing index has the same name as the requested index. When index names are not specified,"
                    " they are auto generated and can cause conflicts. Please refer to our documentation."
                    " Requested index: ");
   indexes_refused ("c", "[{'key': {'a': 1, 'b': 1}, 'name': 'a_1'}]", 86, "IndexKeySpecsConflict", "existing index: ");
   /* Key order counts, as on the server. */
   indexes_created ("d", "[{'key': {'a': 1, 'b': 1}, 'name': 'ab'}]");
   indexes_refused ("d", "[{'key': {'b': 1, 'a': 1}, 'name': 'ab'}]", 86, "IndexKeySpecsConflict", "same name");
   after = indexes_listed ("c", &n_after);
   ASSERT_CMPSTR (after, before);
   ASSERT_CMPINT (n_after, ==, 2);
   bson_free (after);
   bson_free (before);
}

static void
test_indexes_same_key_other_name (void)
{
   int n;
   char *listed;

   indexes_created ("c", "[{'key': {'a': 1, 'b': -1}, 'name': 'mine'}]");
   indexes_refused ("c", "[{'key': {'a': 1, 'b': -1}, 'name': 'a_1_b_-1'}]", 85, "IndexOptionsConflict",
                    "Index already exists with a different name: mine");
   /* Other options do not make it another index. */
   indexes_refused ("c", "[{'key': {'a': 1, 'b': -1}, 'name': 'other', 'unique': true}]", 85, "IndexOptionsConflict",
                    "Index already exists with a different name: mine");
   /* The _id index is there from the start. */
   indexes_refused ("e", "[{'key': {'_id': 1}, 'name': 'my_id'}]", 85, "IndexOptionsConflict",
                    "Index already exists with a different name: _id_");
   listed = indexes_listed ("c", &n);
   ASSERT_CMPINT (n, ==, 2);
   ASSERT (!strstr (listed, "a_1_b_-1"));
   ASSERT (!strstr (listed, "other"));
   bson_free (listed);
}

static void
test_indexes_same_name_other_options (void)
{
   const char *requests[] = {
      "[{'key': {'a': 1}, 'name': 'a_1', 'unique': true}]",
      "[{'key': {'a': 1}, 'name': 'a_1', 'sparse': true}]",
      "[{'key': {'a': 1}, 'name': 'a_1', 'partialFilterExpression': {'a': {'$exists': true}}}]",
      "[{'key': {'a': 1}, 'name': 'a_1', 'expireAfterSeconds': 60}]",
   };
   const char *ttl_requests[] = {
      "[{'key': {'t': 1}, 'name': 'ttl', 'expireAfterSeconds': 20}]",
      "[{'key': {'t': 1}, 'name': 'ttl'}]",
      "[{'key': {'t': 1}, 'name': 'ttl', 'expireAfterSeconds': 10, 'unique': true}]",
   };
   bson_t *index;

   indexes_created ("c", "[{'key': {'a': 1}, 'name': 'a_1'}, {'key': {'t': 1}, 'name': 'ttl', 'expireAfterSeconds': 10}]");
   for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
      indexes_refused ("c", requests[i], 85, "IndexOptionsConflict", "Index with name: a_1 already exists with different options");
   }
   for (size_t i = 0; i < sizeof ttl_requests / sizeof ttl_requests[0]; i++) {
      indexes_refused ("c", ttl_requests[i], 85, "IndexOptionsConflict", "Index with name: ttl already exists with different options");
   }
   index = index_named ("c", "a_1");
   ASSERT (!mt_test_has (index, "unique"));
   ASSERT (!mt_test_has (index, "sparse"));
   bson_destroy (index);
   index = index_named ("c", "ttl");
   ASSERT_CMPINT (mt_test_int (index, "expireAfterSeconds"), ==, 10);
   bson_destroy (index);
}

static void
test_indexes_identical (void)
{
   const char *spec = "[{'key': {'a': 1}, 'name': 'a_1', 'unique': true, 'partialFilterExpression': {'a': {'$type': 'string'}}},"
                      " {'key': {'t': 1}, 'name': 'ttl', 'expireAfterSeconds': 10}]";
   bson_t reply;
   bson_error_t error;
   char *before, *after;
   int n_before, n_after;
   bson_iter_t iter;

   ASSERT_OR_PRINT (create_indexes ("c", spec, &reply, &error), error);
   ASSERT (bson_iter_init_find (&iter, &reply, "createdCollectionAutomatically") && bson_iter_as_bool (&iter));
   ASSERT_CMPINT (mt_test_int (&reply, "numIndexesBefore"), ==, 1);
   ASSERT_CMPINT (mt_test_int (&reply, "numIndexesAfter"), ==, 3);
   ASSERT (!mt_test_has (&reply, "note"));
   bson_destroy (&reply);
   before = indexes_listed ("c", &n_before);

   ASSERT_OR_PRINT (create_indexes ("c", spec, &reply, &error), error);
   ASSERT_CMPSTR (mt_test_str (&reply, "note"), "all indexes already exist");
   ASSERT_CMPINT (mt_test_int (&reply, "numIndexesBefore"), ==, 3);
   ASSERT_CMPINT (mt_test_int (&reply, "numIndexesAfter"), ==, 3);
   bson_destroy (&reply);
   /* The same numbers as doubles, other fields that do not count ("v",
    * "background"), and 1 for true: still the same index. */
   ASSERT_OR_PRINT (create_indexes ("c",
                                    "[{'key': {'t': 1.0}, 'name': 'ttl', 'expireAfterSeconds': 10.0, 'v': 2,"
                                    "  'background': true}]",
                                    &reply,
                                    &error),
                    error);
   ASSERT_CMPSTR (mt_test_str (&reply, "note"), "all indexes already exist");
   bson_destroy (&reply);
   after = indexes_listed ("c", &n_after);
   ASSERT_CMPSTR (after, before);
   ASSERT_CMPINT (n_after, ==, 3);

   /* One that exists and one that does not: the new one is built. */
   ASSERT_OR_PRINT (create_indexes ("c", "[{'key': {'t': 1}, 'name': 'ttl', 'expireAfterSeconds': 10}, {'key': {'b': 1}, 'name': 'b_1'}]",
                                    &reply,
                                    &error),
                    error);
   ASSERT (bson_iter_init_find (&iter, &reply, "createdCollectionAutomatically") && !bson_iter_as_bool (&iter));
   ASSERT_CMPINT (mt_test_int (&reply, "numIndexesBefore"), ==, 3);
   ASSERT_CMPINT (mt_test_int (&reply, "numIndexesAfter"), ==, 4);
   bson_destroy (&reply);
   bson_free (after);
   bson_free (before);
}

/* One conflict fails the whole command: none of its indexes is built. */
static void
test_indexes_one_conflict_fails_all (void)
{
   char *listed;
   int n;

   indexes_created ("c", "[{'key': {'a': 1}, 'name': 'a_1'}]");
   indexes_refused ("c", "[{'key': {'x': 1}, 'name': 'x_1'}, {'key': {'b': 1}, 'name': 'a_1'}, {'key': {'y': 1}, 'name': 'y_1'}]",
                    86, "IndexKeySpecsConflict", "same name");
   /* Two in the same command that conflict with each other. */
   indexes_refused ("c", "[{'key': {'x': 1}, 'name': 'x_1'}, {'key': {'z': 1}, 'name': 'x_1'}]", 86,
                    "IndexKeySpecsConflict", "same name");
   listed = indexes_listed ("c", &n);
   ASSERT_CMPINT (n, ==, 2);
   ASSERT (!strstr (listed, "x_1"));
   ASSERT (!strstr (listed, "y_1"));
   bson_free (listed);
}

/* Inserts `json` into `collection`: true, or false with an E11000. */
static bool
insert_unique (const char *collection, const char *json)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   bson_t *doc = mt_test_bson (json);
   bson_error_t error;
   bool ok = mongoc_collection_insert_one (coll, doc, NULL, NULL, &error);

   bson_destroy (doc);
   mongoc_collection_destroy (coll);
   if (!ok) {
      ASSERT_CMPINT (error.domain, ==, MONGOC_ERROR_SERVER);
      ASSERT_CMPINT (error.code, ==, 11000);
   }
   return ok;
}

/* Sets f of the document `id` to the JSON value `value`: true, or false
 * with an E11000. */
static bool
set_unique (const char *collection, int id, const char *value)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   char *json = bson_strdup_printf ("{'$set': {'f': %s}}", value);
   char *filter_json = bson_strdup_printf ("{'_id': %d}", id);
   bson_t *update = mt_test_bson (json), *filter = mt_test_bson (filter_json);
   bson_t reply;
   bson_error_t error;
   bool ok = mongoc_collection_update_one (coll, filter, update, NULL, &reply, &error);

   if (ok) {
      ASSERT_CMPINT (mt_test_int (&reply, "matchedCount"), ==, 1);
   } else {
      ASSERT_CMPINT (error.code, ==, 11000);
   }
   bson_destroy (&reply);
   bson_destroy (filter);
   bson_destroy (update);
   bson_free (filter_json);
   bson_free (json);
   mongoc_collection_destroy (coll);
   return ok;
}

/* unique with partialFilterExpression {f: {$type: 'string'}}: unique among
 * the documents whose f is a string; those without f, with f null or of
 * another type never conflict, on insert and on update. */
static void
test_indexes_partial_type_string (void)
{
   /* Built on documents already there, as well. */
   ASSERT (insert_unique ("c", "{'_id': 1, 'f': null}"));
   ASSERT (insert_unique ("c", "{'_id': 2, 'f': null}"));
   ASSERT (insert_unique ("c", "{'_id': 3}"));
   indexes_created ("c", "[{'key': {'f': 1}, 'name': 'f_1', 'unique': true, 'partialFilterExpression': {'f': {'$type': 'string'}}}]");
   ASSERT (insert_unique ("c", "{'_id': 4}"));
   ASSERT (insert_unique ("c", "{'_id': 5, 'f': null}"));
   ASSERT (insert_unique ("c", "{'_id': 6, 'f': 7}"));
   ASSERT (insert_unique ("c", "{'_id': 7, 'f': 7}"));
   ASSERT (insert_unique ("c", "{'_id': 8, 'f': 'x'}"));
   ASSERT (!insert_unique ("c", "{'_id': 9, 'f': 'x'}"));
   ASSERT (insert_unique ("c", "{'_id': 10, 'f': 'y'}"));
   /* Into the filter by an update: checked; out of it: x is free again. */
   ASSERT (!set_unique ("c", 6, "'x'"));
   ASSERT (!set_unique ("c", 10, "'x'"));
   ASSERT (set_unique ("c", 8, "8"));
   ASSERT (set_unique ("c", 6, "'x'"));
   ASSERT (!set_unique ("c", 4, "'x'"));
   ASSERT (set_unique ("c", 6, "'z'"));
   ASSERT (set_unique ("c", 4, "'x'"));
   ASSERT_CMPINT (mt_test_count_in ("c", "{}"), ==, 9);
   ASSERT_CMPINT (mt_test_count_in ("c", "{'f': 'x'}"), ==, 1);
   /* Deleting documents in and out of the index. */
   {
      mongoc_collection_t *coll = mt_test_collection ("c");
      bson_t all = BSON_INITIALIZER;
      bson_error_t error;

      ASSERT_OR_PRINT (mongoc_collection_delete_many (coll, &all, NULL, NULL, &error), error);
      mongoc_collection_destroy (coll);
   }
   ASSERT (insert_unique ("c", "{'_id': 11, 'f': 'x'}"));

   /* The build fails on strings that are there twice. */
   ASSERT (insert_unique ("d", "{'f': 'x'}"));
   ASSERT (insert_unique ("d", "{'f': 'x'}"));
   {
      bson_t reply;
      bson_error_t error;

      ASSERT (!create_indexes ("d", "[{'key': {'f': 1}, 'name': 'f_1', 'unique': true, 'partialFilterExpression': {'f': {'$type': 'string'}}}]",
                               &reply, &error));
      ASSERT_CONTAINS (error.message, "E11000");
      bson_destroy (&reply);
   }
}

/* With {f: {$exists: true}}: documents without f never conflict; f null
 * is a value, as on MongoDB, so two nulls do. */
static void
test_indexes_partial_exists (void)
{
   indexes_created ("c", "[{'key': {'f': 1}, 'name': 'f_1', 'unique': true, 'partialFilterExpression': {'f': {'$exists': true}}}]");
   ASSERT (insert_unique ("c", "{'_id': 1}"));
   ASSERT (insert_unique ("c", "{'_id': 2}"));
   ASSERT (insert_unique ("c", "{'_id': 3, 'f': 1}"));
   ASSERT (insert_unique ("c", "{'_id': 4, 'f': '1'}"));
   ASSERT (!insert_unique ("c", "{'_id': 5, 'f': 1}"));
   ASSERT (insert_unique ("c", "{'_id': 6, 'f': null}"));
   ASSERT (!insert_unique ("c", "{'_id': 7, 'f': null}"));
   ASSERT (!set_unique ("c", 1, "1"));
   ASSERT (set_unique ("c", 1, "2"));
   ASSERT_CMPINT (mt_test_count_in ("c", "{}"), ==, 5);
   /* A query on the key still finds the documents outside the filter. */
   ASSERT_CMPINT (mt_test_count_in ("c", "{'f': null}"), ==, 2);
}

/* What MongoDB 4.2 to 5.0 refuse in a partial filter is refused, clearly. */
static void
test_indexes_partial_refused (void)
{
   const char *refused[] = {
      "{'f': {'$in': ['a', 'b']}}",
      "{'$or': [{'f': 1}, {'g': 1}]}",
      "{'f': {'$exists': false}}",
      "{'f': {'$ne': null}}",
      "{'$and': [{'$and': [{'f': 1}]}]}",
   };

   for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
      char *spec = bson_strdup_printf ("[{'key': {'f': 1}, 'name': 'f_1', 'unique': true, 'partialFilterExpression': %s}]", refused[i]);

      indexes_refused ("c", spec, 67, "CannotCreateIndex", "Expression not supported in partial index");
      bson_free (spec);
   }
   indexes_refused ("c", "[{'key': {'f': 1}, 'name': 'f_1', 'sparse': true, 'partialFilterExpression': {'f': 1}}]", 67,
                    "CannotCreateIndex", "cannot mix \"partialFilterExpression\" and \"sparse\" options");
   indexes_refused ("c", "[{'key': {'f': 1}, 'name': 'f_1', 'partialFilterExpression': 3}]", 67, "CannotCreateIndex",
                    "must be a document");
   /* What they take. */
   indexes_created ("c", "[{'key': {'f': 1}, 'name': 'f_1', 'unique': true,"
                         "  'partialFilterExpression': {'$and': [{'f': {'$gt': 0, '$lte': 10}}, {'g': 'x'}, {'h': {'$eq': 1}}]}}]");
   ASSERT (insert_unique ("c", "{'f': 1, 'g': 'x', 'h': 1}"));
   ASSERT (!insert_unique ("c", "{'f': 1, 'g': 'x', 'h': 1}"));
   ASSERT (insert_unique ("c", "{'f': 1, 'g': 'y', 'h': 1}"));
   ASSERT (insert_unique ("c", "{'f': 11, 'g': 'x', 'h': 1}"));
   ASSERT (insert_unique ("c", "{'f': 11, 'g': 'x', 'h': 1}"));
}

/* listIndexes gives each index's name, key and v, and the options set. */
static void
test_indexes_listed (void)
{
   bson_t *index;
   bson_iter_t iter;
   char *listed;
   int n;

   indexes_created ("c",
                    "[{'key': {'a': 1}, 'name': 'a_1'},"
                    " {'key': {'u': 1, 'v': -1}, 'name': 'uv', 'unique': true, 'partialFilterExpression': {'u': {'$type': 'string'}}},"
                    " {'key': {'s': 1}, 'name': 's_1', 'unique': true, 'sparse': true},"
                    " {'key': {'t': 1}, 'name': 'ttl', 'expireAfterSeconds': 3600}]");
   listed = indexes_listed ("c", &n);
   ASSERT_CMPINT (n, ==, 5);
   ASSERT (!strstr (listed, "\"ns\""));
   bson_free (listed);
   index = index_named ("c", "a_1");
   ASSERT_CMPINT (mt_test_int (index, "key.a"), ==, 1);
   ASSERT_CMPINT (mt_test_int (index, "v"), ==, 2);
   ASSERT (!mt_test_has (index, "unique"));
   bson_destroy (index);
   index = index_named ("c", "uv");
   ASSERT_CMPINT (mt_test_int (index, "key.v"), ==, -1);
   ASSERT (bson_iter_init_find (&iter, index, "unique") && bson_iter_as_bool (&iter));
   ASSERT_CMPSTR (mt_test_str (index, "partialFilterExpression.u.$type"), "string");
   bson_destroy (index);
   index = index_named ("c", "s_1");
   ASSERT (bson_iter_init_find (&iter, index, "sparse") && bson_iter_as_bool (&iter));
   bson_destroy (index);
   index = index_named ("c", "ttl");
   ASSERT_CMPINT (mt_test_int (index, "expireAfterSeconds"), ==, 3600);
   bson_destroy (index);
   index = index_named ("c", "_id_");
   ASSERT_CMPINT (mt_test_int (index, "key._id"), ==, 1);
   bson_destroy (index);
}

/* A partial unique index in an H2 data file is partial again after a
 * restart. */
static void
test_indexes_partial_kept_in_data_file (void)
{
   char path[] = "/tmp/mtask-devdb-XXXXXX";
   char *file;
   int fd = mkstemp (path);

   ASSERT (fd >= 0);
   close (fd);
   unlink (path);
   file = bson_strdup_printf ("%s.mv", path);
   for (int round = 0; round < 2; round++) {
      pid_t pid;
      char *uri = mt_test_devdb_start (W ("--port", "0", "--data", file), &pid);
      mongoc_client_t *client = client_at (uri, NULL, NULL);
      mongoc_collection_t *coll = mongoc_client_get_collection (client, "devdb_test", "p");
      bson_t *create = mt_test_bson ("{'createIndexes': 'p', 'indexes': [{'key': {'f': 1}, 'name': 'f_1', 'unique': true,"
                                     " 'partialFilterExpression': {'f': {'$type': 'string'}}}]}");
      bson_t *none = mt_test_bson ("{}"), *x = mt_test_bson ("{'f': 'x'}");
      bson_t reply;
      bson_error_t error;

      if (round == 0) {
         ASSERT_OR_PRINT (mongoc_client_command_simple (client, "devdb_test", create, NULL, NULL, &error), error);
      } else {
         /* Reopened from the file: it is there, and identical. */
         ASSERT_OR_PRINT (mongoc_client_command_simple (client, "devdb_test", create, NULL, &reply, &error), error);
         ASSERT_CMPSTR (mt_test_str (&reply, "note"), "all indexes already exist");
         bson_destroy (&reply);
      }
      ASSERT_OR_PRINT (mongoc_collection_insert_one (coll, none, NULL, NULL, &error), error);
      if (round == 0) {
         ASSERT_OR_PRINT (mongoc_collection_insert_one (coll, x, NULL, NULL, &error), error);
      }
      ASSERT (!mongoc_collection_insert_one (coll, x, NULL, NULL, &error));
      ASSERT_CMPINT (error.code, ==, 11000);
      ASSERT_CMPINT (mt_test_count_at (client, "devdb_test", "p", "{}"), ==, round == 0 ? 2 : 3);
      bson_destroy (x);
      bson_destroy (none);
      bson_destroy (create);
      mongoc_collection_destroy (coll);
      mongoc_client_destroy (client);
      mt_test_process_stop (pid, 30000);
      bson_free (uri);
   }
   unlink (file);
   bson_free (file);
}

/* ---- a sharded collection's look: config.collections ------------------- */

/* Removes the config.collections document whose _id is `data` (freed). */
static void
config_collection_remove (void *data)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (mt_test_client (), "config", "collections");
   bson_t filter = BSON_INITIALIZER;
   bson_error_t error;
   bool ok;

   BSON_APPEND_UTF8 (&filter, "_id", data);
   ok = mongoc_collection_delete_one (coll, &filter, NULL, NULL, &error);
   bson_destroy (&filter);
   mongoc_collection_destroy (coll);
   bson_free (data);
   ASSERT_OR_PRINT (ok, error);
}

/* The config database is writable like any other: a test makes a
 * collection look sharded, as mongos and the config servers describe one,
 * by inserting its document into config.collections, and reads it back. */
static void
test_config_collections_sharded_look (void)
{
   char *ns = bson_strdup_printf ("%s.tasks", mt_test_db ());
   char *json = bson_strdup_printf ("{'_id': '%s', 'key': {'_id': 1}, 'unique': false}", ns);
   bson_t *doc = mt_test_bson (json);
   mongoc_collection_t *coll = mongoc_client_get_collection (mt_test_client (), "config", "collections");
   bson_t *filter = BCON_NEW ("_id", BCON_UTF8 (ns));
   mongoc_cursor_t *cursor;
   const bson_t *found;
   bson_error_t error;
   int n = 0;

   /* The server is shared: the document goes when the test ends. */
   mt_test_defer (config_collection_remove, bson_strdup (ns));
   ASSERT_OR_PRINT (mongoc_collection_insert_one (coll, doc, NULL, NULL, &error), error);
   cursor = mongoc_collection_find_with_opts (coll, filter, NULL, NULL);
   while (mongoc_cursor_next (cursor, &found)) {
      ASSERT_CMPSTR (mt_test_str (found, "_id"), ns);
      ASSERT_CMPINT (mt_test_int (found, "key._id"), ==, 1);
      n++;
   }
   ASSERT_OR_PRINT (!mongoc_cursor_error (cursor, &error), error);
   ASSERT_CMPINT (n, ==, 1);
   mongoc_cursor_destroy (cursor);
   /* Only that collection looks sharded. */
   ASSERT_CMPINT (mt_test_count_at (mt_test_client (), "config", "collections", "{'_id': 'no_such_db.tasks'}"), ==, 0);
   bson_destroy (filter);
   mongoc_collection_destroy (coll);
   bson_destroy (doc);
   bson_free (json);
   bson_free (ns);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/devdb/memory", test_memory);
   mt_test_add ("/devdb/data_file_persists", test_data_file_persists);
   mt_test_add ("/devdb/oplog_change_stream", test_oplog_change_stream);
   mt_test_add ("/devdb/change_stream_awaits", test_change_stream_awaits);
   mt_test_add ("/devdb/port_in_use", test_port_in_use);
   mt_test_add ("/devdb/bad_option", test_bad_option);
   mt_test_add ("/devdb/recompiles_changed_sources", test_recompiles_changed_sources);
   mt_test_add ("/devdb/failcommand/configure", test_failcommand_configure);
   mt_test_add ("/devdb/failcommand/error_code", test_failcommand_error_code);
   mt_test_add ("/devdb/failcommand/error_labels", test_failcommand_error_labels);
   mt_test_add ("/devdb/failcommand/close_connection", test_failcommand_close_connection);
   mt_test_add ("/devdb/failcommand/block_connection", test_failcommand_block_connection);
   mt_test_add ("/devdb/failcommand/block_only_that_connection", test_failcommand_block_only_that_connection);
   mt_test_add ("/devdb/failcommand/write_concern_error", test_failcommand_write_concern_error);
   mt_test_add ("/devdb/failcommand/times", test_failcommand_times);
   mt_test_add ("/devdb/failcommand/skip", test_failcommand_skip);
   mt_test_add ("/devdb/failcommand/off", test_failcommand_off);
   mt_test_add ("/devdb/failcommand/app_name_and_namespace", test_failcommand_app_name_and_namespace);
   mt_test_add ("/devdb/failcommand/exempt", test_failcommand_exempt);
   mt_test_add ("/devdb/replset/handshake", test_replset_handshake);
   mt_test_add ("/devdb/replset/read_write", test_replset_read_write);
   mt_test_add ("/devdb/command_log/records", test_command_log_records);
   mt_test_add ("/devdb/command_log/clear_and_options", test_command_log_clear_and_options);
   mt_test_add ("/devdb/command_log/limit", test_command_log_limit);
   mt_test_add ("/devdb/command_log/threads", test_command_log_threads);
   mt_test_add ("/devdb/indexes/same_name_other_key", test_indexes_same_name_other_key);
   mt_test_add ("/devdb/indexes/same_key_other_name", test_indexes_same_key_other_name);
   mt_test_add ("/devdb/indexes/same_name_other_options", test_indexes_same_name_other_options);
   mt_test_add ("/devdb/indexes/identical", test_indexes_identical);
   mt_test_add ("/devdb/indexes/one_conflict_fails_all", test_indexes_one_conflict_fails_all);
   mt_test_add ("/devdb/indexes/partial_type_string", test_indexes_partial_type_string);
   mt_test_add ("/devdb/indexes/partial_exists", test_indexes_partial_exists);
   mt_test_add ("/devdb/indexes/partial_refused", test_indexes_partial_refused);
   mt_test_add ("/devdb/indexes/listed", test_indexes_listed);
   mt_test_add ("/devdb/indexes/partial_kept_in_data_file", test_indexes_partial_kept_in_data_file);
   mt_test_add ("/devdb/config_collections_sharded_look", test_config_collections_sharded_look);
   return mt_test_main (argc, argv);
}
