/* mtask-worker's command line. */
#include "cli.h"
#include "mt-test.h"
#include "mtask-private.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void
parse_ok (mt_cli_t *cli, const char *const *argv)
{
   bson_error_t error;
   int argc = 0;

   while (argv[argc]) {
      argc++;
   }
   ASSERT_OR_PRINT (mt_cli_parse (cli, argc, (char *const *) argv, &error), error);
}

static void
parse_fails (const char *const *argv, const char *fragment)
{
   mt_cli_t cli;
   bson_error_t error;
   int argc = 0;

   while (argv[argc]) {
      argc++;
   }
   ASSERT (!mt_cli_parse (&cli, argc, (char *const *) argv, &error));
   ASSERT_CONTAINS (error.message, fragment);
   mt_cli_destroy (&cli);
}

static void
test_seed_line_one (void)
{
   const char *argv[] = {"mtask-worker", "--db", "tasks", "--queues", "general", "glavstroy", NULL};
   mt_cli_t cli;

   parse_ok (&cli, argv);
   ASSERT_CMPSTR (cli.db, "tasks");
   ASSERT_CMPSTR (cli.queues[0], "general");
   ASSERT_CMPSTR (cli.queues[1], "glavstroy");
   ASSERT (cli.queues[2] == NULL);
   ASSERT_CMPSTR (cli.host, "localhost");
   ASSERT_CMPINT (cli.port, ==, 27017);
   ASSERT (cli.worker_id == NULL); /* the worker generates a UUID v1 */
   ASSERT_CMPINT (cli.concurrency, ==, 1);
   ASSERT (!cli.once);
   mt_cli_destroy (&cli);
}

static void
test_seed_line_two (void)
{
   const char *argv[] = {
      "mtask-worker", "--db", "tasks", "--queues", "general", "--host", "xenon.c300.me", "--port", "27017", "--pid", "WORKER-1", NULL};
   mt_cli_t cli;

   parse_ok (&cli, argv);
   ASSERT_CMPSTR (cli.queues[0], "general");
   ASSERT (cli.queues[1] == NULL);
   ASSERT_CMPSTR (cli.host, "xenon.c300.me");
   ASSERT_CMPINT (cli.port, ==, 27017);
   ASSERT_CMPSTR (cli.worker_id, "WORKER-1");
   mt_cli_destroy (&cli);
}

static void
test_queue_forms (void)
{
   const char *commas[] = {"w", "--queues", "a,b", "--db", "d", NULL};
   const char *equals[] = {"w", "--queues=a,b", "c", "--db=d", NULL};
   const char *dups[] = {"w", "--db", "d", "--queues", "a", "a,b", "--queues", "b", NULL};
   mt_cli_t cli;

   parse_ok (&cli, commas);
   ASSERT_CMPSTR (cli.queues[0], "a");
   ASSERT_CMPSTR (cli.queues[1], "b");
   ASSERT (cli.queues[2] == NULL);
   mt_cli_destroy (&cli);

   parse_ok (&cli, equals);
   ASSERT_CMPSTR (cli.queues[2], "c");
   ASSERT_CMPSTR (cli.db, "d");
   mt_cli_destroy (&cli);

   parse_ok (&cli, dups);
   ASSERT_CMPSTR (cli.queues[0], "a");
   ASSERT_CMPSTR (cli.queues[1], "b");
   ASSERT (cli.queues[2] == NULL);
   mt_cli_destroy (&cli);
}

static void
test_options (void)
{
   const char *argv[] = {"w",         "--db", "d", "--queues", "q", "--plugins", "/a", "--plugins", "/b", "--concurrency", "4",
                         "--poll-interval", "0.25", "--once", "--log-format", "json", "--log-level", "debug", NULL};
   mt_cli_t cli;

   parse_ok (&cli, argv);
   ASSERT_CMPSTR (cli.plugin_dirs[0], "/a");
   ASSERT_CMPSTR (cli.plugin_dirs[1], "/b");
   ASSERT_CMPINT (cli.concurrency, ==, 4);
   ASSERT (cli.poll_interval == 0.25);
   ASSERT (cli.once);
   ASSERT_CMPINT (cli.log_format, ==, MT_LOG_FORMAT_JSON);
   ASSERT_CMPINT (cli.log_level, ==, MT_LOG_DEBUG);
   mt_cli_destroy (&cli);
}

static void
test_errors (void)
{
   parse_fails ((const char *[]){"w", "--queues", "q", NULL}, "--db is required");
   parse_fails ((const char *[]){"w", "--db", "d", NULL}, "--queues is required");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", NULL}, "--queues needs at least one queue name");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", ",", NULL}, "names no queue");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--port", "99999", NULL}, "--port: '99999' is not a whole number from 1 to 65535");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--port", "x", NULL}, "--port: 'x'");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--concurrency", "0", NULL}, "--concurrency: '0'");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--poll-interval", "-1", NULL}, "--poll-interval: '-1'");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--bogus", NULL}, "unknown flag '--bogus'");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--bogus=1", NULL}, "unknown flag '--bogus'");
   parse_fails ((const char *[]){"w", "--db", NULL}, "--db needs a value");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--once=yes", NULL}, "--once takes no value");
   parse_fails ((const char *[]){"w", "extra", NULL}, "unexpected argument 'extra'");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--uri", "mongodb://h/", "--port", "1", NULL},
                "either --uri or --host/--port");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--log-format", "xml", NULL}, "'xml' is not 'text' or 'json'");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--log-level", "loud", NULL}, "'loud' is not error");
}

static void
test_plugins_env (void)
{
   const char *plain[] = {"w", "--db", "d", "--queues", "q", NULL};
   const char *given[] = {"w", "--db", "d", "--queues", "q", "--plugins", "/given", NULL};
   mt_cli_t cli;

   setenv ("MTASK_PLUGINS", "/one:/two", 1);
   parse_ok (&cli, plain);
   ASSERT_CMPSTR (cli.plugin_dirs[0], "/one");
   ASSERT_CMPSTR (cli.plugin_dirs[1], "/two");
   ASSERT (cli.plugin_dirs[2] == NULL);
   mt_cli_destroy (&cli);

   parse_ok (&cli, given); /* --plugins wins */
   ASSERT_CMPSTR (cli.plugin_dirs[0], "/given");
   ASSERT (cli.plugin_dirs[1] == NULL);
   mt_cli_destroy (&cli);
   unsetenv ("MTASK_PLUGINS");

   parse_ok (&cli, plain);
   ASSERT (cli.plugin_dirs == NULL); /* the worker's default directory */
   mt_cli_destroy (&cli);
}

/* --replace: off unless given, takes no value, and --help says what it
 * does and that ids are unique. */
static void
test_replace (void)
{
   const char *plain[] = {"w", "--db", "d", "--queues", "q", "--pid", "W-1", NULL};
   const char *given[] = {"w", "--db", "d", "--queues", "q", "--pid", "W-1", "--replace", NULL};
   mt_cli_t cli;
   char *help = NULL;
   size_t size = 0;
   FILE *out;

   parse_ok (&cli, plain);
   ASSERT (!cli.replace);
   mt_cli_destroy (&cli);
   parse_ok (&cli, given);
   ASSERT (cli.replace);
   ASSERT_CMPSTR (cli.worker_id, "W-1");
   mt_cli_destroy (&cli);
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--replace=yes", NULL}, "--replace takes no value");

   out = open_memstream (&help, &size);
   mt_cli_usage (out);
   fclose (out);
   ASSERT_CONTAINS (help, "--replace");
   ASSERT_CONTAINS (help, "unique among live workers");
   ASSERT_CONTAINS (help, "its id in use");
   free (help);
}

/* A file of the test's with `text` and `mode`; its path (bson_free it). */
static char *
uri_file (const char *text, mode_t mode)
{
   char *path = bson_strdup ("/tmp/mt-test-cli-uri-XXXXXX");
   int fd = mkstemp (path);

   ASSERT (fd >= 0);
   ASSERT_CMPINT ((int) write (fd, text, strlen (text)), ==, (int) strlen (text));
   close (fd);
   ASSERT_CMPINT (chmod (path, mode), ==, 0);
   return path;
}

/* --uri-file reads the URI (one line, trimmed); a file others or the group
 * may read is refused, and so are an empty one and one of two lines. */
static void
test_uri_file (void)
{
   char *good = uri_file ("  mongodb://u:Pw-in-a-file@h1/tasks \n", 0600);
   char *shared = uri_file ("mongodb://u:Pw-in-a-file@h1/tasks\n", 0640);
   char *world = uri_file ("mongodb://u:Pw-in-a-file@h1/tasks\n", 0604);
   char *empty = uri_file ("\n", 0600);
   char *two = uri_file ("mongodb://h1/\nmongodb://h2/\n", 0600);
   mt_cli_t cli;

   unsetenv ("MTASK_URI");
   parse_ok (&cli, (const char *[]){"w", "--queues", "q", "--uri-file", good, NULL});
   ASSERT_CMPSTR (cli.uri, "mongodb://u:Pw-in-a-file@h1/tasks");
   ASSERT_CMPSTR (cli.uri_source, "--uri-file");
   mt_cli_destroy (&cli);

   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", shared, NULL}, "chmod 600");
   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", shared, NULL}, "mode 0640 lets its group read");
   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", world, NULL}, "lets other users read");
   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", empty, NULL}, "is empty");
   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", two, NULL}, "more than one line");
   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", "/nonexistent/uri", NULL}, "cannot read URI file '/nonexistent/uri'");
   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", good, "--uri", "mongodb://h/", NULL}, "either --uri or --uri-file");
   parse_fails ((const char *[]){"w", "--queues", "q", "--uri-file", good, "--host", "h", NULL}, "either --uri-file or --host/--port");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--uri-file", NULL}, "--uri-file needs a value");
   unlink (good);
   unlink (shared);
   unlink (world);
   unlink (empty);
   unlink (two);
   bson_free (good);
   bson_free (shared);
   bson_free (world);
   bson_free (empty);
   bson_free (two);
}

/* MTASK_URI is the URI unless a flag names the server. */
static void
test_uri_env (void)
{
   mt_cli_t cli;

   setenv ("MTASK_URI", "mongodb://u:Pw-in-env@h1/tasks", 1);
   parse_ok (&cli, (const char *[]){"w", "--queues", "q", NULL});
   ASSERT_CMPSTR (cli.uri, "mongodb://u:Pw-in-env@h1/tasks");
   ASSERT_CMPSTR (cli.uri_source, "MTASK_URI");
   mt_cli_destroy (&cli);
   parse_ok (&cli, (const char *[]){"w", "--queues", "q", "--db", "d", "--host", "h2", NULL});
   ASSERT (cli.uri == NULL); /* --host wins */
   ASSERT_CMPSTR (cli.host, "h2");
   mt_cli_destroy (&cli);
   parse_ok (&cli, (const char *[]){"w", "--queues", "q", "--uri", "mongodb://h3/", NULL});
   ASSERT_CMPSTR (cli.uri, "mongodb://h3/"); /* --uri wins */
   mt_cli_destroy (&cli);
   unsetenv ("MTASK_URI");
}

/* A URI shown in a message hides its user and password, whether it parses
 * or not; an invalid one says so. */
static void
test_uri_redacted (void)
{
   static const char *const bad[] = {
      "mongodb://alice:Pw-secret-1@h1:99999/",
      "mongodb://alice:Pw-secret-1@/",
      "mongo://alice:Pw-secret-1@h1/",
      "mongodb://alice:Pw%2Dsecret%2D1@h1/?w=bogus&authMechanism=NOPE",
      "mongodb://alice:Pw-secret-1@h1/?replicaSet=",
   };
   char *shown;
   int refused = 0;

   shown = mt_uri_redact ("mongodb://alice:Pw-secret-1@h1,h2/tasks?replicaSet=rs0");
   ASSERT_CMPSTR (shown, "mongodb://***@h1,h2/tasks?replicaSet=rs0");
   bson_free (shown);
   shown = mt_uri_redact ("mongodb://h1/tasks");
   ASSERT_CMPSTR (shown, "mongodb://h1/tasks");
   bson_free (shown);
   shown = mt_uri_redact ("mongodb://alice:p@ss/word@h1/");
   ASSERT_CMPSTR (shown, "mongodb://***@h1/");
   bson_free (shown);

   for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      bson_error_t error;
      mongoc_uri_t *uri = mt_uri_new (bad[i], NULL, 0, &error);

      if (uri) {
         mongoc_uri_destroy (uri); /* the driver takes it: nothing to show */
         continue;
      }
      refused++;
      ASSERT_CONTAINS (error.message, "not a valid MongoDB URI");
      ASSERT_CONTAINS (error.message, "***@");
      if (strstr (error.message, "Pw-secret-1") || strstr (error.message, "Pw%2Dsecret") || strstr (error.message, "alice")) {
         mt_test_fail (__FILE__, __LINE__, "the message shows the user or password: %s", error.message);
      }
   }
   ASSERT_CMPINT (refused, >=, 3);
}

/* Queue names a worker could never serve are refused in --queues; --types
 * takes the same forms. */
static void
test_bad_names (void)
{
   char long_name[MT_QUEUE_NAME_MAX + 2];
   mt_cli_t cli;

   memset (long_name, 'q', sizeof long_name - 1);
   long_name[sizeof long_name - 1] = '\0';
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "ok", "bad\x01", NULL}, "'bad\\x01' holds a control character");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "caf\xC3", NULL}, "is not valid UTF-8");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "two\nlines", NULL}, "'two\\x0Alines' holds a control character");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "a\xC2\xA0" "b", NULL}, "holds white space");
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", long_name, NULL}, "is too long");
   long_name[MT_QUEUE_NAME_MAX] = '\0';
   parse_ok (&cli, (const char *[]){"w", "--db", "d", "--queues", long_name, "caf\xC3\xA9", NULL});
   ASSERT_CMPSTR (cli.queues[1], "caf\xC3\xA9");
   mt_cli_destroy (&cli);

   parse_ok (&cli, (const char *[]){"w", "--db", "d", "--queues", "q", "--types", "echo,sleep", "fail", NULL});
   ASSERT_CMPSTR (cli.types[0], "echo");
   ASSERT_CMPSTR (cli.types[1], "sleep");
   ASSERT_CMPSTR (cli.types[2], "fail");
   ASSERT (cli.types[3] == NULL);
   mt_cli_destroy (&cli);
   parse_ok (&cli, (const char *[]){"w", "--db", "d", "--queues", "q", NULL});
   ASSERT (cli.types == NULL);
   mt_cli_destroy (&cli);
   parse_fails ((const char *[]){"w", "--db", "d", "--queues", "q", "--types", NULL}, "--types needs at least one task type");
}

/* The library refuses the same names at enqueue, before any round trip. */
static void
test_queue_name_check (void)
{
   static const char *const refused[] = {"", "a,b", "a b", "a\tb", "a\nb", "\x7f", "\xff", "\xC0\x80", "a\xE2\x80\xA8"};
   bson_error_t error;
   bson_t doc;
   bson_oid_t id;

   for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
      ASSERT (!mt_queue_name_check (refused[i], &error));
      ASSERT_CMPINT ((int) error.code, ==, MT_CONFIG_ERROR_INVALID);
      ASSERT (!mt_task_build (refused[i], "echo", NULL, NULL, MT_STATUS_CREATED, &doc, &id, &error));
      bson_destroy (&doc);
      ASSERT (!strchr (error.message, '\n'));
   }
   ASSERT_OR_PRINT (mt_queue_name_check ("reports.eu-west/1", &error), error);
   ASSERT_OR_PRINT (mt_queue_name_check ("очередь", &error), error);
}

static void
test_help_alone (void)
{
   const char *argv[] = {"w", "--help", NULL};
   mt_cli_t cli;

   parse_ok (&cli, argv);
   ASSERT (cli.help);
   mt_cli_destroy (&cli);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/cli/seed/line_one", test_seed_line_one);
   mt_test_add ("/cli/seed/line_two", test_seed_line_two);
   mt_test_add ("/cli/queues/forms", test_queue_forms);
   mt_test_add ("/cli/options", test_options);
   mt_test_add ("/cli/errors", test_errors);
   mt_test_add ("/cli/plugins_env", test_plugins_env);
   mt_test_add ("/cli/replace", test_replace);
   mt_test_add ("/cli/help_alone", test_help_alone);
   mt_test_add ("/cli/uri_file", test_uri_file);
   mt_test_add ("/cli/uri_env", test_uri_env);
   mt_test_add ("/cli/uri_redacted", test_uri_redacted);
   mt_test_add ("/cli/bad_names", test_bad_names);
   mt_test_add ("/cli/queue_name_check", test_queue_name_check);
   return mt_test_main (argc, argv);
}
