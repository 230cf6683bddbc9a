/* tools/devdb, the development database: the READY line, memory and H2 file
 * backends, the oplog, clean stops. Each test starts its own instances.
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

int
main (int argc, char **argv)
{
   mt_test_add ("/devdb/memory", test_memory);
   mt_test_add ("/devdb/data_file_persists", test_data_file_persists);
   mt_test_add ("/devdb/oplog_change_stream", test_oplog_change_stream);
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
   return mt_test_main (argc, argv);
}
