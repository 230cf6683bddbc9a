/* mtaskctl against a real server: what a person or a script sees. */
#include "mt-test.h"

/* Runs mtaskctl with the test server's connection and `args`; returns the
 * exit code, output in *out. */
static int
ctl (char **out, const char *const *args)
{
   const char *argv[32];
   size_t n = 0;

   argv[n++] = mt_test_env ("MTASK_CTL");
   argv[n++] = "--uri";
   argv[n++] = mt_test_uri ();
   argv[n++] = "--db";
   argv[n++] = mt_test_db ();
   for (size_t i = 0; args[i]; i++) {
      argv[n++] = args[i];
   }
   argv[n] = NULL;
   return mt_test_run (argv, 30000, out);
}

#define CTL(out, ...) ctl (out, (const char *const[]){__VA_ARGS__, NULL})

static void
test_enqueue_show (void)
{
   char *out, *show;
   bson_oid_t id;
   bson_t *doc;

   ASSERT_CMPINT (CTL (&out, "enqueue", "--queue", "general", "--type", "echo", "--params", "{\"a\": 1}", "--priority", "3",
                       "--delay", "60", "--max-attempts", "4"),
                  ==,
                  0);
   ASSERT_CMPINT (strlen (out), ==, 25); /* 24 hex digits and a newline */
   out[24] = '\0';
   ASSERT (bson_oid_is_valid (out, 24));
   bson_oid_init_from_string (&id, out);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "queue"), "general");
   ASSERT_CMPSTR (mt_test_str (doc, "type"), "echo");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (doc, "params.a"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "priority"), ==, 3);
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 4);
   ASSERT_CMPINT (mt_test_date (doc, "delayed") - mt_test_date (doc, "created"), >=, 59000);
   bson_destroy (doc);

   ASSERT_CMPINT (CTL (&show, "show", out), ==, 0);
   ASSERT_CONTAINS (show, out);
   ASSERT_CONTAINS (show, "\"status\" : \"CREATED\"");
   ASSERT_CONTAINS (show, "\"a\" : 1");
   bson_free (show);
   bson_free (out);
}

static void
test_ls_filters (void)
{
   char *out;

   mt_test_enqueue ("general", "echo", NULL, NULL);
   mt_test_enqueue ("general", "sleep", NULL, NULL);
   mt_test_enqueue ("reports", "echo", NULL, NULL);

   ASSERT_CMPINT (CTL (&out, "ls"), ==, 0);
   ASSERT_CONTAINS (out, "QUEUE");
   ASSERT_CONTAINS (out, "reports");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "ls", "--queue", "general", "--type", "echo", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"queue\" : \"general\"");
   ASSERT (!strstr (out, "reports"));
   ASSERT (!strstr (out, "sleep"));
   ASSERT (strchr (out, '\n') == strrchr (out, '\n')); /* one line: one task */
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "ls", "--limit", "1", "--json"), ==, 0);
   ASSERT (strchr (out, '\n') == strrchr (out, '\n'));
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "ls", "--status", "DONE"), ==, 2);
   ASSERT_CONTAINS (out, "--status: 'DONE' is not one of CREATED");
   bson_free (out);
}

static void
test_stats (void)
{
   char *out;
   bson_t *doc;

   mt_test_enqueue ("general", "echo", NULL, NULL);
   mt_test_enqueue ("general", "echo", NULL, NULL);
   mt_test_enqueue ("general", "report_pdf", NULL, NULL);
   mt_test_enqueue ("billing", "fail", NULL, NULL);

   ASSERT_CMPINT (CTL (&out, "stats"), ==, 0);
   ASSERT_CONTAINS (out, "general");
   ASSERT_CONTAINS (out, "billing");
   ASSERT_CONTAINS (out, "WAITING (CREATED) BY TYPE");
   ASSERT_CONTAINS (out, "report_pdf");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "stats", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPINT (mt_test_int (doc, "queues.general.CREATED"), ==, 3);
   ASSERT_CMPINT (mt_test_int (doc, "queues.billing.CREATED"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "waiting_by_type.echo"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "waiting_by_type.report_pdf"), ==, 1);
   bson_destroy (doc);
   bson_free (out);
}

static void
test_errors (void)
{
   char *out;

   ASSERT_CMPINT (CTL (&out, "show", "0123456789abcdef01234567"), ==, 1);
   ASSERT_CONTAINS (out, "no task with id 0123456789abcdef01234567 in ");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "show", "42"), ==, 2);
   ASSERT_CONTAINS (out, "'42' is not a task id");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "enqueue", "--queue", "q", "--type", "echo", "--params", "{a: 1"), ==, 2);
   ASSERT_CONTAINS (out, "--params is not a JSON object");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "enqueue", "--queue", "q"), ==, 2);
   ASSERT_CONTAINS (out, "enqueue needs --queue and --type");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "ls", "--priority", "3"), ==, 2);
   ASSERT_CONTAINS (out, "ls does not take --priority");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "frobnicate"), ==, 2);
   ASSERT_CONTAINS (out, "unknown command 'frobnicate'");
   ASSERT_CONTAINS (out, "Try 'mtaskctl --help'");
   bson_free (out);

   ASSERT_CMPINT (mt_test_count ("{}"), ==, 0);
}

static void
test_locks (void)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_oid_t running_id, done_id;
   bson_value_t running_value = {.value_type = BSON_TYPE_OID}, done_value = {.value_type = BSON_TYPE_OID};
   mt_lock_owner_t running = {.task_id = &running_value, .worker_id = "W-LIVE", .attempt = 1};
   mt_lock_owner_t done = {.task_id = &done_value, .worker_id = "W-GONE", .attempt = 1};
   const char *a[] = {"acct-a"}, *b[] = {"acct-b"};
   bson_error_t error;
   char *out;
   bson_t *doc;

   ASSERT_CMPINT (CTL (&out, "locks"), ==, 0);
   ASSERT_CONTAINS (out, "no account locks in ");
   bson_free (out);

   bson_oid_init (&running_id, NULL);
   bson_oid_init (&done_id, NULL);
   bson_oid_copy (&running_id, &running_value.value.v_oid);
   bson_oid_copy (&done_id, &done_value.value.v_oid);
   doc = BCON_NEW ("_id", BCON_OID (&running_id), "queue", "q", "type", "t", "status", "WORK_IN_PROGRESS", "worker_pid", "W-LIVE", "attempts", BCON_INT32 (1));
   ASSERT_OR_PRINT (mongoc_collection_insert_one (tasks, doc, NULL, NULL, &error), error);
   bson_destroy (doc);
   doc = BCON_NEW ("_id", BCON_OID (&done_id), "queue", "q", "type", "t", "status", "WORK_IN_PROGRESS", "worker_pid", "W-GONE", "attempts", BCON_INT32 (1));
   ASSERT_OR_PRINT (mongoc_collection_insert_one (tasks, doc, NULL, NULL, &error), error);
   bson_destroy (doc);
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &running, a, 1, NULL, &error), error);
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &done, b, 1, NULL, &error), error);
   {
      bson_t *filter = BCON_NEW ("_id", BCON_OID (&done_id));
      bson_t *update = BCON_NEW ("$set", "{", "status", "FINISHED", "}");
      ASSERT_OR_PRINT (mongoc_collection_update_one (tasks, filter, update, NULL, NULL, &error), error);
      bson_destroy (filter);
      bson_destroy (update);
   }
   mongoc_collection_destroy (tasks);

   ASSERT_CMPINT (CTL (&out, "locks"), ==, 0);
   ASSERT_CONTAINS (out, "ACCOUNT");
   ASSERT_CONTAINS (out, "acct-a");
   ASSERT_CONTAINS (out, "W-LIVE");
   ASSERT_CONTAINS (out, "held");
   ASSERT_CONTAINS (out, "acct-b");
   ASSERT_CONTAINS (out, "stale");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "locks", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"_id\" : \"acct-a\"");
   ASSERT_CONTAINS (out, "\"state\" : \"held\"");
   ASSERT_CONTAINS (out, "\"state\" : \"stale\"");
   bson_free (out);
}

static void
test_unreachable (void)
{
   const char *argv[] = {mt_test_env ("MTASK_CTL"), "--db", "d", "--host", "127.0.0.1", "--port", "1", "ls", NULL};
   char *out;

   ASSERT_CMPINT (mt_test_run (argv, 30000, &out), ==, 1);
   ASSERT_CONTAINS (out, "mtaskctl: cannot list tasks in d.tasks");
   ASSERT_CONTAINS (out, "127.0.0.1:1");
   bson_free (out);
}

static void
test_help (void)
{
   const char *argv[] = {mt_test_env ("MTASK_CTL"), "enqueue", "--help", NULL};
   char *out;

   ASSERT_CMPINT (mt_test_run (argv, 10000, &out), ==, 0);
   ASSERT_CONTAINS (out, "--params JSON");
   ASSERT_CONTAINS (out, "Example:");
   bson_free (out);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/ctl/enqueue_show", test_enqueue_show);
   mt_test_add ("/ctl/ls_filters", test_ls_filters);
   mt_test_add ("/ctl/stats", test_stats);
   mt_test_add ("/ctl/errors", test_errors);
   mt_test_add ("/ctl/locks", test_locks);
   mt_test_add ("/ctl/unreachable", test_unreachable);
   mt_test_add ("/ctl/help", test_help);
   return mt_test_main (argc, argv);
}
