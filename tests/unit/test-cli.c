/* mtask-worker's command line. */
#include "cli.h"
#include "mt-test.h"

#include <stdlib.h>

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
   return mt_test_main (argc, argv);
}
