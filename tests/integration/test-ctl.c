/* mtaskctl against a real server: what a person or a script sees. */
#include "mt-test.h"

#include <time.h>

/* Runs mtaskctl with the test server's connection and `args`; returns the
 * exit code, output in *out. */
/* Runs `prefix` (NULL-terminated, may be empty), then mtaskctl on the test
 * database with `args`; output in *out. */
static int
ctl_with (char **out, const char *const *prefix, const char *const *args)
{
   const char *argv[40];
   size_t n = 0;

   for (size_t i = 0; prefix[i]; i++) {
      argv[n++] = prefix[i];
   }
   argv[n++] = mt_test_env ("MTASK_CTL");
   argv[n++] = "--uri";
   argv[n++] = mt_test_uri ();
   argv[n++] = "--db";
   argv[n++] = mt_test_db ();
   for (size_t i = 0; args[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = args[i];
   }
   argv[n] = NULL;
   return mt_test_run (argv, 30000, out);
}

static int
ctl (char **out, const char *const *args)
{
   return ctl_with (out, (const char *const[]){NULL}, args);
}

#define CTL(out, ...) ctl (out, (const char *const[]){__VA_ARGS__, NULL})

/* The line of `text` that holds `needle` (the first), without its newline;
 * fails the test when there is none. bson_free it. */
static char *
line_of (const char *text, const char *needle)
{
   const char *at = strstr (text, needle), *start, *end;

   if (!at) {
      mt_test_fail (__FILE__, __LINE__, "no line holds '%s' in '%s'", needle, text);
   }
   for (start = at; start > text && start[-1] != '\n'; start--) {
   }
   end = strchr (at, '\n');
   return bson_strndup (start, end ? (size_t) (end - start) : strlen (start));
}

static void
test_enqueue_show (void)
{
   char *out, *show;
   bson_oid_t id;
   bson_t *doc;

   ASSERT_CMPINT (ctl_with (&out,
                            (const char *const[]){"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null", NULL},
                            (const char *const[]){"enqueue", "--queue", "general", "--type", "echo", "--params", "{\"a\": 1}",
                                                  "--priority", "3", "--delay", "60", "--max-attempts", "4", NULL}),
                  ==,
                  0);
   ASSERT_CMPINT (strlen (out), ==, 25); /* 24 hex digits and a newline; the warning that no worker serves the queue is on stderr */
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
   ASSERT_CMPINT (mt_test_lines (out), ==, 1); /* one line: one task */
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "ls", "--limit", "1", "--json"), ==, 0);
   ASSERT_CMPINT (mt_test_lines (out), ==, 1);
   ASSERT_CONTAINS (out, "\"status\" : \"CREATED\"");
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
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   doc = BCON_NEW ("_id", BCON_OID (&done_id), "queue", "q", "type", "t", "status", "WORK_IN_PROGRESS", "worker_pid", "W-GONE", "attempts", BCON_INT32 (1));
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &running, a, 1, NULL, &error), error);
   ASSERT_OR_PRINT (mt_locks_acquire (mt_test_client (), mt_test_db (), &done, b, 1, NULL, &error), error);
   mt_test_task_set (&done_id, "{'status': 'FINISHED'}");

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

/* ---- group and sync ---------------------------------------------------- */

/* Runs a command that prints an id; returns the id's 24 hex digits
 * (bson_free them). */
static char *
ctl_id (const char *const *args)
{
   char *out;
   /* Only stdout, as id=$(mtaskctl ...) gets: enqueue warns on stderr
    * when no worker serves the queue (none runs here). */
   int code = ctl_with (&out, (const char *const[]){"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null", NULL}, args);

   if (code != 0 || strlen (out) != 25 || !bson_oid_is_valid (out, 24)) {
      mt_test_fail (__FILE__, __LINE__, "%s %s: exit %d, not an id: '%s'", args[0], args[1], code, out);
   }
   out[24] = '\0';
   return out;
}

#define CTL_ID(...) ctl_id ((const char *const[]){__VA_ARGS__, NULL})

/* A group with two tasks in stage 1 and one in stage 2; its id and the
 * ids of its tasks (bson_free them all). */
static char *
make_group (char *tasks[3])
{
   char *group = CTL_ID ("group", "create", "--description", "nightly import", "--keep", "60");

   tasks[0] = CTL_ID ("group", "add", group, "--stage", "1", "--queue", "general", "--type", "echo", "--params", "{\"n\": 1}");
   tasks[1] = CTL_ID ("group", "add", group, "--stage", "1", "--queue", "general", "--type", "echo", "--priority", "5",
                      "--max-attempts", "2");
   tasks[2] = CTL_ID ("group", "add", group, "--stage", "2", "--queue", "reports", "--type", "report_pdf", "--delay", "30");
   return group;
}

static void
free_group (char *group, char *tasks[3])
{
   bson_free (group);
   for (int i = 0; i < 3; i++) {
      bson_free (tasks[i]);
   }
}

static void
test_group_create_add_show (void)
{
   char *tasks[3], *group = make_group (tasks), *out;
   bson_oid_t id;
   bson_t *doc;

   doc = mt_test_find_one ("groups", "{'_id': {'$oid': '%s'}}", group);
   ASSERT_CMPSTR (mt_test_str (doc, "description"), "nightly import");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "pending");
   ASSERT_CMPINT (mt_test_int (doc, "keep_seconds"), ==, 60);
   bson_destroy (doc);

   /* Added tasks wait for their stage. */
   bson_oid_init_from_string (&id, tasks[0]);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "WAITING");
   ASSERT_CMPSTR (mt_test_str (doc, "queue"), "general");
   ASSERT_CMPSTR (mt_test_str (doc, "type"), "echo");
   ASSERT_CMPINT (mt_test_int (doc, "stage"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "params.n"), ==, 1);
   bson_destroy (doc);
   bson_oid_init_from_string (&id, tasks[1]);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "priority"), ==, 5);
   ASSERT_CMPINT (mt_test_int (doc, "max_attempts"), ==, 2);
   bson_destroy (doc);
   bson_oid_init_from_string (&id, tasks[2]);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "stage"), ==, 2);
   ASSERT_CMPINT (mt_test_date (doc, "delayed") - mt_test_date (doc, "created"), >=, 29000);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'group': {'$oid': '%s'}, 'status': 'WAITING'}", group), ==, 3);
   ASSERT_CMPINT (mt_test_count_in ("group_stages", "{'group': {'$oid': '%s'}, 'status': 'pending'}", group), ==, 2);

   ASSERT_CMPINT (CTL (&out, "group", "show", group), ==, 0);
   ASSERT_CONTAINS (out, group);
   ASSERT_CONTAINS (out, "nightly import");
   ASSERT_CONTAINS (out, "pending");
   ASSERT_CONTAINS (out, "WAITING");
   ASSERT (!strstr (out, "CREATED")); /* no column for a status no task has */
   ASSERT_CONTAINS (out, "    1  pending        2       0        2");
   ASSERT_CONTAINS (out, "    2  pending        1       0        1");
   bson_free (out);

   /* --json prints {"_id": {"$oid": ...}}, as enqueue does. */
   ASSERT_CMPINT (CTL (&out, "group", "create", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT (bson_has_field (doc, "_id"));
   bson_destroy (doc);
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("groups", "{}"), ==, 2);
   free_group (group, tasks);
}

static void
test_group_start (void)
{
   char *tasks[3], *group = make_group (tasks), *empty, *out;
   bson_t *doc;

   ASSERT_CMPINT (CTL (&out, "group", "start", group), ==, 0);
   ASSERT_CONTAINS (out, "started: stage 1 running, 2 tasks, 0 ended");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'group': {'$oid': '%s'}, 'stage': 1, 'status': 'CREATED'}", group), ==, 2);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'group': {'$oid': '%s'}, 'stage': 2, 'status': 'WAITING'}", group), ==, 1);
   doc = mt_test_find_one ("groups", "{'_id': {'$oid': '%s'}}", group);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "running");
   bson_destroy (doc);
   doc = mt_test_find_one ("group_stages", "{'group': {'$oid': '%s'}, 'number': 1}", group);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "running");
   bson_destroy (doc);

   /* Again: harmless, and says so. */
   ASSERT_CMPINT (CTL (&out, "group", "start", group, "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "running");
   ASSERT_CMPINT (mt_test_int (doc, "stage"), ==, 1);
   bson_destroy (doc);
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'group': {'$oid': '%s'}, 'stage': 2, 'status': 'WAITING'}", group), ==, 1);

   /* A group with no tasks would complete and vanish at once: refused. */
   empty = CTL_ID ("group", "create");
   ASSERT_CMPINT (CTL (&out, "group", "start", empty), ==, 1);
   ASSERT_CONTAINS (out, "has no tasks to start");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("groups", "{'_id': {'$oid': '%s'}, 'status': 'pending'}", empty), ==, 1);

   ASSERT_CMPINT (CTL (&out, "group", "start", "0123456789abcdef01234567"), ==, 1);
   ASSERT_CONTAINS (out, "no group 0123456789abcdef01234567 in ");
   bson_free (out);
   bson_free (empty);
   free_group (group, tasks);
}

static void
test_group_ls (void)
{
   char *tasks[3], *group, *other, *out, *line, *next;
   int lines = 0;

   ASSERT_CMPINT (CTL (&out, "group", "ls"), ==, 0);
   ASSERT_CONTAINS (out, "no groups in ");
   bson_free (out);

   group = make_group (tasks);
   other = CTL_ID ("group", "create", "--description", "empty one");
   ASSERT_CMPINT (CTL (&out, "group", "ls"), ==, 0);
   ASSERT_CONTAINS (out, "DESCRIPTION");
   ASSERT_CONTAINS (out, group);
   ASSERT_CONTAINS (out, other);
   ASSERT_CONTAINS (out, "nightly import");
   ASSERT_CONTAINS (out, "empty one");
   ASSERT_IN_ORDER (out, other, group); /* newest first */
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "group", "ls", "--json"), ==, 0);
   for (line = out; *line; line = next + 1) {
      bson_t *doc;

      next = strchr (line, '\n');
      ASSERT (next);
      *next = '\0';
      doc = mt_test_bson (line);
      if (!strcmp (mt_test_str (doc, "description"), "nightly import")) {
         ASSERT_CMPINT (mt_test_int (doc, "stage_count"), ==, 2);
         ASSERT_CMPINT (mt_test_int (doc, "current_stage"), ==, 1);
         ASSERT_CMPSTR (mt_test_str (doc, "status"), "pending");
      } else {
         ASSERT_CMPINT (mt_test_int (doc, "stage_count"), ==, 0);
         ASSERT (mt_test_is_null (doc, "current_stage"));
      }
      bson_destroy (doc);
      lines++;
   }
   ASSERT_CMPINT (lines, ==, 2);
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "group", "show", other), ==, 0);
   ASSERT_CONTAINS (out, "empty one");
   ASSERT_CONTAINS (out, "no stages yet");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "show", other, "--json"), ==, 0);
   {
      bson_t *doc = mt_test_bson (out);

      ASSERT (mt_test_has (doc, "stages"));
      ASSERT (!mt_test_has (doc, "stages.0"));
      bson_destroy (doc);
   }
   bson_free (out);
   bson_free (other);
   free_group (group, tasks);
}

static void
test_group_show_json (void)
{
   char *tasks[3], *group = make_group (tasks), *out;
   bson_t *doc;

   ASSERT_CMPINT (CTL (&out, "group", "start", group), ==, 0);
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "show", group, "--json"), ==, 0);
   ASSERT_CMPINT (mt_test_lines (out), ==, 1); /* one document */
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "group.status"), "running");
   ASSERT_CMPSTR (mt_test_str (doc, "group.description"), "nightly import");
   ASSERT_CMPINT (mt_test_int (doc, "stages.0.number"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (doc, "stages.0.status"), "running");
   ASSERT_CMPINT (mt_test_int (doc, "stages.0.total"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "stages.0.tasks.CREATED"), ==, 2);
   ASSERT (!mt_test_has (doc, "stages.0.tasks.WAITING"));
   ASSERT (!mt_test_has (doc, "stages.0.done_ids"));
   ASSERT_CMPINT (mt_test_int (doc, "stages.1.number"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (doc, "stages.1.status"), "pending");
   ASSERT_CMPINT (mt_test_int (doc, "stages.1.tasks.WAITING"), ==, 1);
   ASSERT (!mt_test_has (doc, "stages.2"));
   bson_destroy (doc);
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "group", "show", "0123456789abcdef01234567"), ==, 1);
   ASSERT_CONTAINS (out, "no group 0123456789abcdef01234567 in ");
   ASSERT_CONTAINS (out, ".groups");
   bson_free (out);
   free_group (group, tasks);
}

static void
test_group_clean (void)
{
   char *tasks[3], *group = make_group (tasks), *out;

   mt_test_enqueue ("general", "echo", NULL, NULL); /* not staged: stays */

   /* Repair: a group document gone, its tasks still there. */
   {
      mongoc_collection_t *groups = mt_test_collection ("groups");
      bson_t *filter = bson_new ();
      bson_error_t error;
      bson_oid_t id;

      bson_oid_init_from_string (&id, group);
      BSON_APPEND_OID (filter, "_id", &id);
      ASSERT_OR_PRINT (mongoc_collection_delete_one (groups, filter, NULL, NULL, &error), error);
      bson_destroy (filter);
      mongoc_collection_destroy (groups);
   }
   ASSERT_CMPINT (CTL (&out, "group", "clean"), ==, 0);
   ASSERT_CONTAINS (out, "repaired ");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("groups", "{'_id': {'$oid': '%s'}}", group), ==, 1);

   ASSERT_CMPINT (CTL (&out, "group", "clean", "--purge"), ==, 2);
   ASSERT_CONTAINS (out, "deletes every group, every stage and every staged task");
   ASSERT_CONTAINS (out, "--yes");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'group': {'$exists': true}}"), ==, 3);

   ASSERT_CMPINT (CTL (&out, "group", "clean", "--purge", "--yes", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"purged_tasks\" : 3");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("groups", "{}"), ==, 0);
   ASSERT_CMPINT (mt_test_count_in ("group_stages", "{}"), ==, 0);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'group': {'$exists': true}}"), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 1);
   free_group (group, tasks);
}

static void
test_group_usage (void)
{
   char *out;

   ASSERT_CMPINT (CTL (&out, "group", "show", "42"), ==, 2);
   ASSERT_CONTAINS (out, "'42' is not a group id");
   ASSERT_CONTAINS (out, "Try 'mtaskctl group show --help'");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "add", "0123456789abcdef0123456z", "--stage", "1", "--queue", "q", "--type", "t"), ==, 2);
   ASSERT_CONTAINS (out, "is not a group id");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "start"), ==, 2);
   ASSERT_CONTAINS (out, "group start needs a group id");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "add", "0123456789abcdef01234567", "--queue", "q", "--type", "t"), ==, 2);
   ASSERT_CONTAINS (out, "group add needs --stage, --queue and --type");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "add", "0123456789abcdef01234567", "--stage", "0", "--queue", "q", "--type", "t"), ==, 2);
   ASSERT_CONTAINS (out, "--stage: '0' is not a whole number from 1");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "create", "--keep", "-1"), ==, 2);
   ASSERT_CONTAINS (out, "--keep: '-1' is not a number of seconds");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "create", "--stage", "1"), ==, 2);
   ASSERT_CONTAINS (out, "group create does not take --stage");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "ls", "--yes"), ==, 2);
   ASSERT_CONTAINS (out, "group ls does not take --yes");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "show", "0123456789abcdef01234567", "extra"), ==, 2);
   ASSERT_CONTAINS (out, "unexpected argument 'extra'");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group"), ==, 2);
   ASSERT_CONTAINS (out, "give a group command: create, add, start, ls, show or clean");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "group", "delete"), ==, 2);
   ASSERT_CONTAINS (out, "unknown command 'group delete'");
   bson_free (out);

   /* Valid usage, a group that does not exist: not found, not usage. */
   ASSERT_CMPINT (CTL (&out, "group", "add", "0123456789abcdef01234567", "--stage", "1", "--queue", "q", "--type", "t"), ==, 1);
   ASSERT_CONTAINS (out, "no group 0123456789abcdef01234567 in ");
   bson_free (out);

   ASSERT_CMPINT (mt_test_count_in ("groups", "{}"), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 0);
}

/* Two stages, 'import' then 'report'; their ids (bson_free them). */
static void
make_stages (char **import, char **report)
{
   *report = CTL_ID ("sync", "stage", "--name", "report", "--callable", "build_report", "--queue", "reports");
   *import = CTL_ID ("sync", "stage", "--name", "import", "--callable", "fetch_files", "--queue", "imports", "--task",
                     "import_window", "--next", *report, "--params", "{\"day\": 7}");
}

static void
test_sync_stage_create_ls (void)
{
   char *import, *report, *out;
   bson_t *doc;

   ASSERT_CMPINT (CTL (&out, "sync", "ls"), ==, 0);
   ASSERT_CONTAINS (out, "no synchronizers in ");
   bson_free (out);

   make_stages (&import, &report);
   doc = mt_test_find_one ("stages", "{'_id': {'$oid': '%s'}}", import);
   ASSERT_CMPSTR (mt_test_str (doc, "name"), "import");
   ASSERT_CMPSTR (mt_test_str (doc, "callable"), "fetch_files");
   ASSERT_CMPSTR (mt_test_str (doc, "queue"), "imports");
   ASSERT_CMPSTR (mt_test_str (doc, "task"), "import_window");
   ASSERT_CMPINT (mt_test_int (doc, "params.day"), ==, 7);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("stages", "{'_id': {'$oid': '%s'}, 'next_stage': {'$oid': '%s'}}", import, report), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("stages", "{'_id': {'$oid': '%s'}, 'next_stage': null, 'task': null}", report), ==, 1);

   /* --next must name a stage that exists. */
   ASSERT_CMPINT (CTL (&out, "sync", "stage", "--name", "x", "--callable", "c", "--queue", "q", "--next", "0123456789abcdef01234567"),
                  ==,
                  1);
   ASSERT_CONTAINS (out, "no stage 0123456789abcdef01234567 in ");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("stages", "{}"), ==, 2);

   ASSERT_CMPINT (CTL (&out, "sync", "create", "nightly", "--start-stage", import), ==, 0);
   ASSERT_CONTAINS (out, "synchronizer 'nightly' created, on stand-by; it begins at stage 'import'");
   bson_free (out);
   doc = mt_test_find_one ("synchronizers", "{'_id': 'nightly'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "stand_by");
   ASSERT (mt_test_is_null (doc, "actual_stage"));
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("synchronizers", "{'_id': 'nightly', 'start_stage': {'$oid': '%s'}}", import), ==, 1);

   ASSERT_CMPINT (CTL (&out, "sync", "create", "nightly", "--start-stage", report), ==, 1);
   ASSERT_CONTAINS (out, "exists already");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "create", "weekly", "--start-stage", "0123456789abcdef01234567"), ==, 1);
   ASSERT_CONTAINS (out, "no stage 0123456789abcdef01234567 in ");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("synchronizers", "{}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "sync", "ls"), ==, 0);
   ASSERT_CONTAINS (out, "START_STAGE");
   ASSERT_CONTAINS (out, "nightly");
   ASSERT_CONTAINS (out, "stand_by");
   ASSERT_CONTAINS (out, "import");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "ls", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "_id"), "nightly");
   ASSERT_CMPSTR (mt_test_str (doc, "start_stage_name"), "import");
   ASSERT (mt_test_is_null (doc, "actual_stage_name"));
   bson_destroy (doc);
   bson_free (out);
   bson_free (import);
   bson_free (report);
}

static void
test_sync_start (void)
{
   char *import, *report, *out;
   bson_t *doc;

   make_stages (&import, &report);
   ASSERT_CMPINT (CTL (&out, "sync", "create", "nightly", "--start-stage", import), ==, 0);
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "create", "weekly", "--start-stage", report), ==, 0);
   bson_free (out);

   /* Without --now: a request the workers' upkeep acts on. */
   ASSERT_CMPINT (CTL (&out, "sync", "start", "nightly"), ==, 0);
   ASSERT_CONTAINS (out, "next upkeep tick");
   bson_free (out);
   doc = mt_test_find_one ("synchronizers", "{'_id': 'nightly'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "stand_by");
   ASSERT (mt_test_date (doc, "start_at") > 0);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 0);
   ASSERT_CMPINT (CTL (&out, "sync", "ls"), ==, 0);
   ASSERT_CONTAINS (out, "nightly: start requested at ");
   bson_free (out);

   /* --now: running, its callable enqueued on the stage's queue. */
   ASSERT_CMPINT (CTL (&out, "sync", "start", "weekly", "--now"), ==, 0);
   ASSERT_CONTAINS (out, "synchronizer 'weekly' began stage 'report'");
   ASSERT_CONTAINS (out, "of type build_report on queue reports");
   bson_free (out);
   doc = mt_test_find_one ("synchronizers", "{'_id': 'weekly'}");
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "running");
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("synchronizers", "{'_id': 'weekly', 'actual_stage': {'$oid': '%s'}}", report), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{'type': 'build_report', 'queue': 'reports', 'status': 'CREATED', 'synchronizer': 'weekly'}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "sync", "start", "weekly", "--now"), ==, 1);
   ASSERT_CONTAINS (out, "cannot start synchronizer 'weekly' in ");
   ASSERT_CONTAINS (out, "running already");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "sync", "start", "nobody", "--now"), ==, 1);
   ASSERT_CONTAINS (out, "no synchronizer 'nobody' in ");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "sync", "ls"), ==, 0);
   ASSERT_CONTAINS (out, "running");
   bson_free (out);
   bson_free (import);
   bson_free (report);
}

static void
test_sync_check (void)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   char *import, *report, *out;
   bson_error_t error;
   bson_t *doc;

   make_stages (&import, &report);
   ASSERT_CMPINT (CTL (&out, "sync", "create", "nightly", "--start-stage", import), ==, 0);
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "sync", "check", "nightly"), ==, 0);
   ASSERT_CONTAINS (out, "not running (stand_by)");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "sync", "start", "nightly", "--now"), ==, 0);
   bson_free (out);

   /* Its callable is still in the queue. */
   ASSERT_CMPINT (CTL (&out, "sync", "check", "nightly"), ==, 0);
   ASSERT_CONTAINS (out, "not complete yet");
   ASSERT_CONTAINS (out, "stage 'import' waits for queue imports");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("synchronizers", "{'_id': 'nightly', 'actual_stage': {'$oid': '%s'}}", import), ==, 1);

   /* The queue drains: the next check advances it to the next stage. */
   {
      bson_t *filter = BCON_NEW ("type", "fetch_files");
      bson_t *update = BCON_NEW ("$set", "{", "status", "FINISHED", "}");

      ASSERT_OR_PRINT (mongoc_collection_update_many (tasks, filter, update, NULL, NULL, &error), error);
      bson_destroy (filter);
      bson_destroy (update);
   }
   ASSERT_CMPINT (CTL (&out, "sync", "check", "nightly", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT (bson_has_field (doc, "advanced"));
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "running");
   bson_destroy (doc);
   ASSERT_CONTAINS (out, "\"advanced\" : true");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("synchronizers", "{'_id': 'nightly', 'actual_stage': {'$oid': '%s'}}", report), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{'type': 'build_report', 'queue': 'reports', 'status': 'CREATED'}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "sync", "check", "nightly"), ==, 0);
   ASSERT_CONTAINS (out, "not complete yet: stage 'report'");
   bson_free (out);

   {
      bson_t *filter = BCON_NEW ("type", "build_report");
      bson_t *update = BCON_NEW ("$set", "{", "status", "FINISHED", "}");

      ASSERT_OR_PRINT (mongoc_collection_update_many (tasks, filter, update, NULL, NULL, &error), error);
      bson_destroy (filter);
      bson_destroy (update);
   }
   ASSERT_CMPINT (CTL (&out, "sync", "check", "nightly"), ==, 0);
   ASSERT_CONTAINS (out, "advanced: its last stage is complete; back on stand-by");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("synchronizers", "{'_id': 'nightly', 'status': 'stand_by', 'actual_stage': null}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "sync", "check", "nobody"), ==, 1);
   ASSERT_CONTAINS (out, "no synchronizer 'nobody' in ");
   bson_free (out);
   mongoc_collection_destroy (tasks);
   bson_free (import);
   bson_free (report);
}

static void
test_sync_usage (void)
{
   char *out;

   ASSERT_CMPINT (CTL (&out, "sync", "stage", "--name", "a", "--callable", "b"), ==, 2);
   ASSERT_CONTAINS (out, "sync stage needs --name, --callable and --queue");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "stage", "--name", "a", "--callable", "b", "--queue", "q", "--next", "xyz"), ==, 2);
   ASSERT_CONTAINS (out, "--next: 'xyz' is not a stage id");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "stage", "--name", "", "--callable", "b", "--queue", "q"), ==, 2);
   ASSERT_CONTAINS (out, "--name needs a stage name, got ''");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "stage", "--name", "a", "--callable", "b", "--queue", "q", "--params", "[1]"), ==, 2);
   ASSERT_CONTAINS (out, "--params is not a JSON object");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "create", "nightly"), ==, 2);
   ASSERT_CONTAINS (out, "sync create needs --start-stage");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "create", "nightly", "--start-stage", "0123"), ==, 2);
   ASSERT_CONTAINS (out, "--start-stage: '0123' is not a stage id");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "create", "--start-stage", "0123456789abcdef01234567"), ==, 2);
   ASSERT_CONTAINS (out, "sync create needs a synchronizer name");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "check", "nightly", "--now"), ==, 2);
   ASSERT_CONTAINS (out, "sync check does not take --now");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "start"), ==, 2);
   ASSERT_CONTAINS (out, "sync start needs a synchronizer name");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "ls", "extra"), ==, 2);
   ASSERT_CONTAINS (out, "unexpected argument 'extra'");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "sync", "go"), ==, 2);
   ASSERT_CONTAINS (out, "unknown command 'sync go'");
   bson_free (out);

   ASSERT_CMPINT (mt_test_count_in ("stages", "{}"), ==, 0);
   ASSERT_CMPINT (mt_test_count_in ("synchronizers", "{}"), ==, 0);
}

static void
test_group_sync_help (void)
{
   const char *top[] = {mt_test_env ("MTASK_CTL"), "--help", NULL};
   const char *const cmds[][3] = {
      {"group", "create", "--keep SECS"},   {"group", "add", "--stage N"},        {"group", "start", "GROUP_ID"},
      {"group", "ls", "current_stage"},     {"group", "show", "\"tasks\""},      {"group", "clean", "--purge"},
      {"sync", "stage", "--callable TYPE"}, {"sync", "create", "--start-stage"}, {"sync", "start", "--now"},
      {"sync", "check", "not complete yet"}, {"sync", "ls", "start_stage_name"},
   };
   char *out;

   ASSERT_CMPINT (mt_test_run (top, 10000, &out), ==, 0);
   ASSERT_CONTAINS (out, "enqueue");
   ASSERT_CONTAINS (out, "locks");
   ASSERT_CONTAINS (out, "group clean");
   ASSERT_CONTAINS (out, "sync check NAME");
   bson_free (out);
   for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
      const char *argv[] = {mt_test_env ("MTASK_CTL"), cmds[i][0], cmds[i][1], "--help", NULL};

      ASSERT_CMPINT (mt_test_run (argv, 10000, &out), ==, 0);
      ASSERT_CONTAINS (out, "Usage: mtaskctl [connection] ");
      ASSERT_CONTAINS (out, cmds[i][2]);
      ASSERT_CONTAINS (out, "Example:");
      bson_free (out);
   }
   {
      const char *argv[] = {mt_test_env ("MTASK_CTL"), "sync", "--help", NULL};

      ASSERT_CMPINT (mt_test_run (argv, 10000, &out), ==, 0);
      ASSERT_CONTAINS (out, "sync stage");
      ASSERT (!strstr (out, "group add"));
      bson_free (out);
   }
}

/* ---- concurrency slots (seed 002) --------------------------------------- */

/* Makes slot `pool`#`index` held by `task`, as a worker's claim would. */
static void
hold_slot (const char *pool, int index, const bson_oid_t *task, const char *worker, int64_t acquired_ms)
{
   mongoc_collection_t *slots = mt_test_collection ("slots");
   bson_t *filter, *update, *opts = BCON_NEW ("upsert", BCON_BOOL (true));
   bson_error_t error;
   char id[64];

   bson_snprintf (id, sizeof id, "%s#%d", pool, index);
   filter = BCON_NEW ("_id", id);
   update = BCON_NEW ("$set", "{",
                      "pool", pool,
                      "index", BCON_INT32 (index),
                      "task", BCON_OID (task),
                      "worker_pid", worker,
                      "attempt", BCON_INT32 (1),
                      "acquired", BCON_DATE_TIME (acquired_ms),
                      "keepalive", BCON_DATE_TIME (acquired_ms),
                      "}");
   ASSERT_OR_PRINT (mongoc_collection_update_one (slots, filter, update, opts, NULL, &error), error);
   bson_destroy (opts);
   bson_destroy (filter);
   bson_destroy (update);
   mongoc_collection_destroy (slots);
}

/* A WORK_IN_PROGRESS task run by `worker`; its id. */
static bson_oid_t
running_task (const char *worker)
{
   bson_oid_t id;
   bson_t *doc;

   bson_oid_init (&id, NULL);
   doc = BCON_NEW ("_id", BCON_OID (&id), "queue", "reports", "type", "report_pdf", "pool", "reports", "status",
                   "WORK_IN_PROGRESS", "worker_pid", worker, "attempts", BCON_INT32 (1));
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   return id;
}

static void
test_pool_set (void)
{
   char *out;
   bson_t *doc;

   ASSERT_CMPINT (CTL (&out, "slots"), ==, 0);
   ASSERT_CONTAINS (out, "no pools in ");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "3", "--timeout", "300"), ==, 0);
   ASSERT_CMPSTR (out, "pool reports: 3 slots, timeout 300 s\n");
   bson_free (out);
   doc = mt_test_find_one ("pools", "{'_id': 'reports'}");
   ASSERT_CMPINT (mt_test_int (doc, "size"), ==, 3);
   ASSERT_CMPINT (mt_test_int (doc, "timeout_seconds"), ==, 300);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("slots", "{'pool': 'reports', 'task': null}"), ==, 3);

   ASSERT_CMPINT (CTL (&out, "pool", "set", "general", "--size", "2"), ==, 0);
   ASSERT_CMPSTR (out, "pool general: 2 slots, timeout unchanged\n"); /* a new pool: none */
   bson_free (out);

   /* Both, by name, with their size and none in use. */
   ASSERT_CMPINT (CTL (&out, "slots"), ==, 0);
   ASSERT_CONTAINS (out, "POOL     SIZE  TIMEOUT  IN_USE\n");
   ASSERT_CONTAINS (out, "general     2     none       0\n");
   ASSERT_CONTAINS (out, "reports     3    300 s       0\n");
   ASSERT_IN_ORDER (out, "general", "reports");
   ASSERT_CONTAINS (out, "no slot is held");
   bson_free (out);

   /* Resize: more slots; the timeout is what this call says. */
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "5", "--timeout", "0.5"), ==, 0);
   ASSERT_CMPSTR (out, "pool reports: 5 slots, timeout 0.5 s\n");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("slots", "{'pool': 'reports'}"), ==, 5);
   ASSERT_CMPINT (mt_test_count_in ("pools", "{'_id': 'reports', 'size': 5, 'timeout_seconds': 0.5}"), ==, 1);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "2", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "_id"), "reports");
   ASSERT_CMPINT (mt_test_int (doc, "size"), ==, 2);
   bson_destroy (doc);
   bson_free (out);
   /* A resize without --timeout keeps the pool's timeout. */
   ASSERT_CMPINT (mt_test_count_in ("pools", "{'_id': 'reports', 'size': 2, 'timeout_seconds': 0.5}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("pools", "{'_id': 'general', 'timeout_seconds': 0}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("pools", "{}"), ==, 2);

   ASSERT_CMPINT (CTL (&out, "slots", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "pools.0._id"), "general");
   ASSERT_CMPINT (mt_test_int (doc, "pools.0.size"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "pools.0.in_use"), ==, 0);
   ASSERT (mt_test_has (doc, "pools.0.slots"));
   ASSERT (!mt_test_has (doc, "pools.0.slots.0"));
   ASSERT_CMPSTR (mt_test_str (doc, "pools.1._id"), "reports");
   ASSERT_CMPINT (mt_test_int (doc, "pools.1.size"), ==, 2);
   ASSERT (!mt_test_has (doc, "pools.2"));
   ASSERT (!mt_test_has (doc, "undeclared"));
   bson_destroy (doc);
   bson_free (out);
}

static void
test_slots_held (void)
{
   bson_oid_t a = running_task ("W-ONE"), b = running_task ("W-TWO");
   int64_t t0 = 1700000000000; /* 2023-11-14T22:13:20Z */
   char hex_a[25], hex_b[25], *out;
   bson_t *doc;

   bson_oid_to_string (&a, hex_a);
   bson_oid_to_string (&b, hex_b);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "3", "--timeout", "60"), ==, 0);
   bson_free (out);
   hold_slot ("reports", 0, &a, "W-ONE", t0);
   hold_slot ("reports", 2, &b, "W-TWO", t0 + 1000);

   ASSERT_CMPINT (CTL (&out, "slots"), ==, 0);
   ASSERT_CONTAINS (out, "reports     3     60 s       2\n");
   ASSERT_CONTAINS (out, "INDEX");
   ASSERT_CONTAINS (out, "KEEPALIVE");
   ASSERT_CONTAINS (out, hex_a);
   ASSERT_CONTAINS (out, "W-ONE");
   ASSERT_CONTAINS (out, "2023-11-14T22:13:20Z");
   ASSERT_CONTAINS (out, hex_b);
   ASSERT_CONTAINS (out, "2023-11-14T22:13:21Z");
   ASSERT (!strstr (out, "beyond size"));
   bson_free (out);

   /* Shrunk while b runs: its slot is held beyond the size, and said so. */
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "1", "--timeout", "60"), ==, 0);
   ASSERT_CONTAINS (out, "pool reports: 1 slots, timeout 60 s\n");
   ASSERT_CONTAINS (out, "1 of its slots at index 1 or above are still held");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("slots", "{'_id': 'reports#2', 'task': {'$oid': '%s'}}", hex_b), ==, 1);

   ASSERT_CMPINT (CTL (&out, "slots"), ==, 0);
   ASSERT_CONTAINS (out, "reports     1     60 s       1  +1 beyond size\n");
   {
      /* A row each, a's first; b's says it is beyond the size, a's not. */
      char *row_a = line_of (out, hex_a), *row_b = line_of (out, hex_b);

      ASSERT_IN_ORDER (out, row_a, row_b);
      ASSERT (!strstr (row_a, hex_b));
      ASSERT (!strstr (row_a, "(beyond size)"));
      ASSERT_CONTAINS (row_b, "(beyond size)");
      bson_free (row_a);
      bson_free (row_b);
   }
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "slots", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "pools.0._id"), "reports");
   ASSERT_CMPINT (mt_test_int (doc, "pools.0.size"), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "pools.0.timeout_seconds"), ==, 60);
   ASSERT_CMPINT (mt_test_int (doc, "pools.0.in_use"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (doc, "pools.0.slots.0._id"), "reports#0");
   ASSERT_CMPSTR (mt_test_str (doc, "pools.0.slots.0.worker_pid"), "W-ONE");
   ASSERT_CMPINT (mt_test_date (doc, "pools.0.slots.0.acquired"), ==, t0);
   ASSERT (!mt_test_is_null (doc, "pools.0.slots.0.task"));
   ASSERT_CMPSTR (mt_test_str (doc, "pools.0.slots.1._id"), "reports#2");
   ASSERT (!mt_test_has (doc, "pools.0.slots.2"));
   bson_destroy (doc);
   ASSERT_CONTAINS (out, hex_a);
   ASSERT_CONTAINS (out, "\"beyond_size\" : false");
   ASSERT_CONTAINS (out, "\"beyond_size\" : true");
   ASSERT_CMPINT (mt_test_lines (out), ==, 1); /* one document */
   bson_free (out);
}

static void
test_slot_keepalive_stop (void)
{
   bson_oid_t running = running_task ("W-ONE"), nobody;
   char hex[25], none[25], *out;
   bson_t *doc;

   bson_oid_init (&nobody, NULL);
   bson_oid_to_string (&running, hex);
   bson_oid_to_string (&nobody, none);

   /* No slot for that task: not found, the library's message. */
   ASSERT_CMPINT (CTL (&out, "slot", "keepalive", none), ==, 1);
   ASSERT_CONTAINS (out, "mtaskctl: cannot keep the slot of task ");
   ASSERT_CONTAINS (out, ".slots: task ");
   ASSERT_CONTAINS (out, " holds no slot");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slot", "stop", none), ==, 1);
   ASSERT_CONTAINS (out, "mtaskctl: cannot stop task ");
   ASSERT_CONTAINS (out, " holds no slot");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "2", "--timeout", "30"), ==, 0);
   bson_free (out);
   hold_slot ("reports", 1, &running, "W-ONE", 1700000000000);

   ASSERT_CMPINT (CTL (&out, "slot", "keepalive", hex), ==, 0);
   ASSERT_CONTAINS (out, "slot reports#1 kept alive at ");
   bson_free (out);
   doc = mt_test_find_one ("slots", "{'_id': 'reports#1'}");
   ASSERT_CMPINT (mt_test_date (doc, "keepalive"), >, 1700000000000);
   ASSERT_CMPINT (mt_test_date (doc, "acquired"), ==, 1700000000000);
   bson_destroy (doc);
   ASSERT_CMPINT (CTL (&out, "slot", "keepalive", hex, "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "_id"), "reports#1");
   bson_destroy (doc);
   bson_free (out);

   /* Stop: the task ends CANCELLED and its slot is free. */
   ASSERT_CMPINT (CTL (&out, "slot", "stop", hex), ==, 0);
   ASSERT_CONTAINS (out, "stopped: CANCELLED, reports#1 freed");
   bson_free (out);
   doc = mt_test_task (&running);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CANCELLED");
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count_in ("slots", "{'_id': 'reports#1', 'task': null}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "slot", "stop", hex), ==, 1);
   ASSERT_CONTAINS (out, " holds no slot");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slot", "keepalive", hex), ==, 1);
   ASSERT_CONTAINS (out, " holds no slot");
   bson_free (out);

   /* A slot whose task is gone: given back. */
   hold_slot ("reports", 0, &nobody, "W-GONE", 1700000000000);
   ASSERT_CMPINT (CTL (&out, "slot", "stop", none, "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "slots.0"), "reports#0");
   ASSERT (mt_test_is_null (doc, "status"));
   bson_destroy (doc);
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("slots", "{'task': {'$ne': null}}"), ==, 0);
}

static void
test_slot_usage (void)
{
   char *out;

   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "0"), ==, 2);
   ASSERT_CONTAINS (out, "--size: '0' is not a whole number from 1 to 100000");
   ASSERT_CONTAINS (out, "Try 'mtaskctl pool set --help'");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "100001"), ==, 2);
   ASSERT_CONTAINS (out, "--size: '100001' is not a whole number");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "three"), ==, 2);
   ASSERT_CONTAINS (out, "--size: 'three' is not a whole number");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "2", "--timeout", "-1"), ==, 2);
   ASSERT_CONTAINS (out, "--timeout: '-1' is not a number of seconds");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "2", "--timeout", "40000000"), ==, 2);
   ASSERT_CONTAINS (out, "--timeout: '40000000' is not a number of seconds from 0 to 31622400 (366 days)");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports"), ==, 2);
   ASSERT_CONTAINS (out, "pool set needs --size");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "--size", "2"), ==, 2);
   ASSERT_CONTAINS (out, "pool set needs a pool name");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "a#b", "--size", "2"), ==, 2);
   ASSERT_CONTAINS (out, "'a#b' is not a pool name");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "", "--size", "2"), ==, 2);
   ASSERT_CONTAINS (out, "'' is not a pool name");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "--size", "2", "--now"), ==, 2);
   ASSERT_CONTAINS (out, "pool set does not take --now");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "set", "reports", "extra", "--size", "2"), ==, 2);
   ASSERT_CONTAINS (out, "unexpected argument 'extra'");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool"), ==, 2);
   ASSERT_CONTAINS (out, "give a pool command: set");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "pool", "ls"), ==, 2);
   ASSERT_CONTAINS (out, "unknown command 'pool ls'");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slots", "--size", "2"), ==, 2);
   ASSERT_CONTAINS (out, "slots does not take --size");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slots", "reports"), ==, 2);
   ASSERT_CONTAINS (out, "unexpected argument 'reports'");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "slot", "keepalive", "42"), ==, 2);
   ASSERT_CONTAINS (out, "'42' is not a task id");
   ASSERT_CONTAINS (out, "Try 'mtaskctl slot keepalive --help'");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slot", "stop", "0123456789abcdef0123456z"), ==, 2);
   ASSERT_CONTAINS (out, "is not a task id");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slot", "stop"), ==, 2);
   ASSERT_CONTAINS (out, "slot stop needs a task id: mtaskctl slot stop TASK_ID");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slot", "keepalive", "0123456789abcdef01234567", "--timeout", "3"), ==, 2);
   ASSERT_CONTAINS (out, "slot keepalive does not take --timeout");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slot"), ==, 2);
   ASSERT_CONTAINS (out, "give a slot command: keepalive or stop");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "slot", "free", "0123456789abcdef01234567"), ==, 2);
   ASSERT_CONTAINS (out, "unknown command 'slot free'");
   bson_free (out);

   /* Still the task id message show had. */
   ASSERT_CMPINT (CTL (&out, "show"), ==, 2);
   ASSERT_CONTAINS (out, "show needs a task id: mtaskctl show ID");
   bson_free (out);

   ASSERT_CMPINT (mt_test_count_in ("pools", "{}"), ==, 0);
   ASSERT_CMPINT (mt_test_count_in ("slots", "{}"), ==, 0);
}

static void
test_slot_help (void)
{
   const char *top[] = {mt_test_env ("MTASK_CTL"), "--help", NULL};
   const char *const cmds[][3] = {
      {"pool", "set", "--timeout SECS"},
      {"slots", NULL, "(beyond size)"},
      {"slot", "keepalive", "TASK_ID"},
      {"slot", "stop", "on_stop"},
   };
   char *out;

   ASSERT_CMPINT (mt_test_run (top, 10000, &out), ==, 0);
   ASSERT_CONTAINS (out, "pool set NAME");
   ASSERT_CONTAINS (out, "  slots  ");
   ASSERT_CONTAINS (out, "slot keepalive TASK_ID");
   ASSERT_CONTAINS (out, "slot stop TASK_ID");
   bson_free (out);
   for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
      const char *argv[] = {mt_test_env ("MTASK_CTL"), cmds[i][0], cmds[i][1] ? cmds[i][1] : "--help", "--help", NULL};

      ASSERT_CMPINT (mt_test_run (argv, 10000, &out), ==, 0);
      ASSERT_CONTAINS (out, "Usage: mtaskctl [connection] ");
      ASSERT_CONTAINS (out, cmds[i][2]);
      ASSERT_CONTAINS (out, "Example:");
      bson_free (out);
   }
   {
      const char *argv[] = {mt_test_env ("MTASK_CTL"), "slot", "--help", NULL};

      ASSERT_CMPINT (mt_test_run (argv, 10000, &out), ==, 0);
      ASSERT_CONTAINS (out, "slot stop TASK_ID");
      ASSERT (!strstr (out, "group add"));
      bson_free (out);
   }
}

/* ---- scheduling and retention (seed 004) -------------------------------- */

/* As ctl(), with only what mtaskctl writes to stdout in *out: what
 * id=$(mtaskctl ...) gets. */
static int
ctl_stdout (char **out, const char *const *args)
{
   return ctl_with (out, (const char *const[]){"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null", NULL}, args);
}

#define CTL_STDOUT(out, ...) ctl_stdout (out, (const char *const[]){__VA_ARGS__, NULL})

/* The task whose id a command printed (24 hex digits and a newline). */
static bson_t *
task_of (const char *printed)
{
   bson_oid_t id;

   ASSERT (strlen (printed) >= 24 && bson_oid_is_valid (printed, 24));
   bson_oid_init_from_string (&id, printed);
   return mt_test_task (&id);
}

static bool
same_oid (const bson_t *doc, const char *field, const char *hex)
{
   bson_iter_t iter;
   char text[25];

   if (!bson_iter_init_find (&iter, doc, field) || !BSON_ITER_HOLDS_OID (&iter)) {
      return false;
   }
   bson_oid_to_string (bson_iter_oid (&iter), text);
   return !strncmp (text, hex, 24);
}

static void
test_enqueue_run_at (void)
{
   char *id, *out;
   bson_t *doc;

   id = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--run-at", "2030-01-02T03:04:05Z");
   doc = task_of (id);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, 1893553445000); /* 2030-01-02T03:04:05Z */
   ASSERT (!mt_test_has (doc, "repeat"));
   ASSERT (!mt_test_has (doc, "cron"));
   bson_destroy (doc);
   bson_free (id);

   /* Milliseconds and offsets: the same instant written three ways. */
   id = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--run-at", "2030-01-02T04:04:05.250+01:00");
   doc = task_of (id);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, 1893553445250);
   bson_destroy (doc);
   bson_free (id);
   id = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--run-at", "2030-01-01T22:04:05-05:00");
   doc = task_of (id);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, 1893553445000);
   bson_destroy (doc);
   bson_free (id);
   id = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--run-at", "2028-02-29T08:30:00Z"); /* a leap day */
   doc = task_of (id);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, 1835425800000);
   bson_destroy (doc);
   bson_free (id);

   /* --json: the id as before, and whether a task was created. */
   ASSERT_CMPINT (CTL_STDOUT (&out, "enqueue", "--queue", "general", "--type", "echo", "--delay", "2h", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT (mt_test_has (doc, "_id"));
   ASSERT (mt_test_has (doc, "created"));
   ASSERT_CONTAINS (out, "\"created\" : true");
   bson_destroy (doc);
   bson_free (out);
   doc = mt_test_find_one ("tasks", "{'delayed': {'$gt': {'$date': '2000-01-01T00:00:00Z'}, '$lt': {'$date': '2028-01-01T00:00:00Z'}}}");
   ASSERT_CMPINT (mt_test_date (doc, "delayed") - mt_test_date (doc, "created"), >=, 7199000);
   ASSERT_CMPINT (mt_test_date (doc, "delayed") - mt_test_date (doc, "created"), <=, 7201000);
   bson_destroy (doc);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 5);
}

static void
test_enqueue_repeat (void)
{
   char *id;
   bson_t *doc;

   id = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--repeat", "90s", "--repeat-until", "2031-06-30T12:00:00Z",
                "--verbose-name", "Ping the partners", "--creator", "ops-team");
   doc = task_of (id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "CREATED");
   ASSERT_CMPINT (mt_test_int (doc, "repeat"), ==, 90);
   ASSERT_CMPINT (mt_test_date (doc, "repeat_until"), ==, 1940587200000);
   ASSERT (mt_test_date (doc, "scheduled") >= mt_test_date (doc, "created"));
   ASSERT (same_oid (doc, "series", id)); /* the first run names its series */
   ASSERT (!mt_test_has (doc, "cron"));
   ASSERT_CMPSTR (mt_test_str (doc, "verbose_name"), "Ping the partners");
   ASSERT_CMPSTR (mt_test_str (doc, "creator"), "ops-team");
   bson_destroy (doc);
   bson_free (id);

   /* Plain seconds, units, and a first run at a given time. */
   id = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--repeat", "3600", "--run-at", "2030-01-02T03:04:05Z");
   doc = task_of (id);
   ASSERT_CMPINT (mt_test_int (doc, "repeat"), ==, 3600);
   ASSERT_CMPINT (mt_test_date (doc, "delayed"), ==, 1893553445000);
   ASSERT_CMPINT (mt_test_date (doc, "scheduled"), ==, 1893553445000);
   bson_destroy (doc);
   bson_free (id);
   id = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--repeat", "1d12h");
   doc = task_of (id);
   ASSERT_CMPINT (mt_test_int (doc, "repeat"), ==, 129600);
   bson_destroy (doc);
   bson_free (id);
}

static void
test_enqueue_cron (void)
{
   char *id;
   bson_t *doc;
   int64_t created, delayed;

   id = CTL_ID ("enqueue", "--queue", "reports", "--type", "echo", "--cron", "*/5 * * * *", "--timezone", "Europe/Berlin");
   doc = task_of (id);
   ASSERT_CMPSTR (mt_test_str (doc, "cron"), "*/5 * * * *");
   ASSERT_CMPSTR (mt_test_str (doc, "timezone"), "Europe/Berlin");
   ASSERT (!mt_test_has (doc, "repeat"));
   ASSERT (same_oid (doc, "series", id));
   created = mt_test_date (doc, "created");
   delayed = mt_test_date (doc, "delayed");
   /* The next match: a whole five minutes, after now, within five minutes. */
   ASSERT_CMPINT (delayed % 300000, ==, 0);
   ASSERT_CMPINT (delayed, >, created - 1000);
   ASSERT_CMPINT (delayed, <=, created + 300000);
   ASSERT_CMPINT (mt_test_date (doc, "scheduled"), ==, delayed);
   bson_destroy (doc);
   bson_free (id);

   /* The zone counts: 06:30 in Kolkata (UTC+05:30, no DST) is 01:00 UTC. */
   id = CTL_ID ("enqueue", "--queue", "reports", "--type", "echo", "--cron", "30 6 * * *", "--timezone", "Asia/Kolkata");
   doc = task_of (id);
   created = mt_test_date (doc, "created");
   delayed = mt_test_date (doc, "delayed");
   ASSERT_CMPINT (delayed % 86400000, ==, 3600000);
   ASSERT_CMPINT (delayed, >, created - 1000);
   ASSERT_CMPINT (delayed, <=, created + 86400000);
   bson_destroy (doc);
   bson_free (id);

   /* No zone: UTC. */
   id = CTL_ID ("enqueue", "--queue", "reports", "--type", "echo", "--cron", "@daily");
   doc = task_of (id);
   ASSERT (!mt_test_has (doc, "timezone"));
   ASSERT_CMPINT (mt_test_date (doc, "delayed") % 86400000, ==, 0);
   bson_destroy (doc);
   bson_free (id);
}

static void
test_enqueue_unique (void)
{
   char *first, *out, *expect;
   bson_t *doc;

   first = CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--unique-key", "report-2026-11");

   /* Taken: exit 0, the holder's id alone on stdout, the reason on stderr. */
   ASSERT_CMPINT (CTL (&out, "enqueue", "--queue", "general", "--type", "echo", "--unique-key", "report-2026-11"), ==, 0);
   expect = bson_strdup_printf ("nothing enqueued: task %.24s holds unique_key 'report-2026-11'", first);
   ASSERT_CONTAINS (out, expect);
   bson_free (expect);
   bson_free (out);
   ASSERT_CMPINT (CTL_STDOUT (&out, "enqueue", "--queue", "general", "--type", "echo", "--unique-key", "report-2026-11"), ==, 0);
   ASSERT_CMPINT (strlen (out), ==, 25);
   out[24] = '\0';
   ASSERT_CMPSTR (out, first);
   bson_free (out);
   ASSERT_CMPINT (
      CTL_STDOUT (&out, "enqueue", "--queue", "general", "--type", "echo", "--unique-key", "report-2026-11", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"created\" : false");
   doc = mt_test_bson (out);
   ASSERT (same_oid (doc, "_id", first));
   bson_destroy (doc);
   bson_free (out);
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'report-2026-11'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 1);

   /* Another key is another task. */
   bson_free (CTL_ID ("enqueue", "--queue", "general", "--type", "echo", "--unique-key", "report-2026-12"));
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 2);

   /* Once the holder has ended, the key is free again. */
   {
      bson_oid_t holder;

      bson_oid_init_from_string (&holder, first);
      mt_test_task_set (&holder, "{'status': 'FINISHED'}");
   }
   ASSERT_CMPINT (CTL (&out, "enqueue", "--queue", "general", "--type", "echo", "--unique-key", "report-2026-11", "--json"),
                  ==,
                  0);
   ASSERT_CONTAINS (out, "\"created\" : true");
   ASSERT (!strstr (out, first));
   bson_free (out);
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'report-2026-11'}"), ==, 2);
   bson_free (first);

   /* A holder another client inserted, with an _id that is not an ObjectId:
    * named all the same. */
   {
      bson_t *legacy = mt_test_bson ("{'_id': 'legacy-7', 'queue': 'general', 'type': 'echo', 'status': 'CREATED', "
                                     "'unique_key': 'nightly', 'unique_held': 'nightly'}");

      mt_test_insert ("tasks", legacy);
      bson_destroy (legacy);
   }
   ASSERT_CMPINT (CTL (&out, "enqueue", "--queue", "general", "--type", "echo", "--unique-key", "nightly"), ==, 0);
   ASSERT_CONTAINS (out, "nothing enqueued: task legacy-7 holds unique_key 'nightly'");
   bson_free (out);
   ASSERT_CMPINT (CTL_STDOUT (&out, "enqueue", "--queue", "general", "--type", "echo", "--unique-key", "nightly", "--json"), ==, 0);
   doc = mt_test_bson (out);
   ASSERT_CMPSTR (mt_test_str (doc, "_id"), "legacy-7");
   bson_destroy (doc);
   bson_free (out);
   ASSERT_CMPINT (mt_test_count ("{'unique_key': 'nightly'}"), ==, 1);
}

static void
test_enqueue_schedule_usage (void)
{
   static const struct {
      const char *flags[7]; /* NULL-terminated */
      int code;
      const char *message;
   } cases[] = {
      {{"--run-at", "tomorrow"}, 2, "--run-at: 'tomorrow' is not a time: give ISO 8601 with a zone"},
      {{"--run-at", "2026-11-23T10:00:00"}, 2, "--run-at: '2026-11-23T10:00:00' has no time zone: add Z"},
      {{"--run-at", "2027-02-29T10:00:00Z"}, 2, "--run-at: '2027-02-29T10:00:00Z' is not a date of the calendar"},
      {{"--run-at", "2026-11-23T24:00:00Z"}, 2, "is not a time of day"},
      {{"--run-at", "2026-11-23T10:00:00+25:00"}, 2, "has an offset out of range"},
      {{"--run-at", "2030-01-01T00:00:00Z", "--delay", "5"}, 2, "give either --delay or --run-at, not both"},
      {{"--repeat", "60", "--cron", "* * * * *"}, 2, "give either --repeat (every so long) or --cron"},
      {{"--timezone", "Europe/Berlin"}, 2, "--timezone is the time zone of --cron's times; it needs --cron"},
      {{"--repeat", "60", "--timezone", "UTC"}, 2, "it needs --cron"},
      {{"--repeat-until", "2030-01-01T00:00:00Z"}, 2, "--repeat-until ends a repeating task; it needs --repeat or --cron"},
      {{"--repeat-until", "2030-01-01", "--repeat", "60"}, 2, "--repeat-until: '2030-01-01' is not a time"},
      {{"--repeat", "0"}, 2, "--repeat: '0' is out of range: give 1 second to ten years"},
      {{"--repeat", "0.5s"}, 2, "--repeat: '0.5s' is out of range"},
      {{"--repeat", "5x"}, 2, "--repeat: '5x' is not a duration: give seconds (90) or a number with a unit s, m, h or d"},
      {{"--repeat", "m"}, 2, "--repeat: 'm' is not a duration"},
      {{"--delay", "-1"}, 2, "--delay: '-1' is out of range"},
      {{"--delay", "11000d"}, 2, "--delay: '11000d' is out of range: give 0 to ten years"},
      {{"--cron", ""}, 2, "--cron needs a cron expression, got ''"},
      {{"--unique-key", ""}, 2, "--unique-key needs a key, got ''"},
      /* What only the library can tell: its message, as a usage error. */
      {{"--cron", "61 * * * *"}, 2, "mtaskctl: cannot enqueue: option 'cron': "},
      {{"--cron", "* * * *"}, 2, "mtaskctl: cannot enqueue: option 'cron': "},
      {{"--cron", "0 6 * * *", "--timezone", "Mars/Olympus_Mons"}, 2, "mtaskctl: cannot enqueue: option 'timezone': unknown"},
      {{"--repeat", "60", "--run-at", "2030-01-02T00:00:00Z", "--repeat-until", "2030-01-01T00:00:00Z"},
       2,
       "mtaskctl: cannot enqueue: option 'repeat_until' is before the first run"},
   };

   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const char *args[16] = {"enqueue", "--queue", "general", "--type", "echo"};
      size_t n = 5;
      char *out;

      for (size_t f = 0; cases[i].flags[f]; f++) {
         args[n++] = cases[i].flags[f];
      }
      args[n] = NULL;
      if (ctl (&out, args) != cases[i].code || !strstr (out, cases[i].message)) {
         mt_test_fail (__FILE__, __LINE__, "case %zu (%s %s): want exit %d and '%s', got: %s",
                       i, cases[i].flags[0], cases[i].flags[1], cases[i].code, cases[i].message, out);
      }
      ASSERT_CONTAINS (out, "Try 'mtaskctl enqueue --help'");
      bson_free (out);
   }
   ASSERT_CMPINT (mt_test_count ("{}"), ==, 0);
}

/* A repeating task as the library writes it, then ended. */
static void
end_task (const char *id, const char *status)
{
   bson_oid_t oid;

   bson_oid_init_from_string (&oid, id);
   mt_test_task_set (&oid, "{'status': '%s', 'finished': {'$date': {'$numberLong': '%" PRId64 "'}}}", status, (int64_t) time (NULL) * 1000);
}

static void
test_schedules (void)
{
   char *every, *cron, *ended, *plain, *out, *line, *next, *expect;
   bson_t *doc;
   int lines = 0;

   ASSERT_CMPINT (CTL (&out, "schedules"), ==, 0);
   ASSERT_CONTAINS (out, "no repeating tasks in ");
   bson_free (out);

   every = CTL_ID ("enqueue", "--queue", "general", "--type", "ping", "--repeat", "60", "--run-at", "2030-01-02T03:04:05Z",
                   "--repeat-until", "2031-06-30T12:00:00Z");
   cron = CTL_ID ("enqueue", "--queue", "reports", "--type", "report_pdf", "--cron", "*/5 * * * *", "--timezone",
                  "Europe/Berlin");
   ended = CTL_ID ("enqueue", "--queue", "general", "--type", "gone", "--repeat", "1h");
   end_task (ended, "CANCELLED");
   plain = CTL_ID ("enqueue", "--queue", "general", "--type", "echo");

   ASSERT_CMPINT (CTL (&out, "schedules"), ==, 0);
   ASSERT_CONTAINS (out, "SERIES");
   ASSERT_CONTAINS (out, "NEXT_RUN");
   ASSERT_CONTAINS (out, "every 60 s (1m)");
   ASSERT_CONTAINS (out, "2030-01-02T03:04:05Z");
   ASSERT_CONTAINS (out, "2031-06-30T12:00:00Z");
   ASSERT_CONTAINS (out, "cron '*/5 * * * *' (Europe/Berlin)");
   ASSERT_CONTAINS (out, "report_pdf");
   ASSERT_CONTAINS (out, every);
   ASSERT_CONTAINS (out, cron);
   ASSERT (!strstr (out, ended));
   ASSERT (!strstr (out, plain));
   ASSERT (!strstr (out, "gone"));
   ASSERT_IN_ORDER (out, cron, every); /* due within 5 minutes, before 2030 */
   bson_free (out);

   /* The cron task's next run as the table shows it: its `delayed`. */
   {
      bson_t *task = task_of (cron);
      char when[32];
      time_t secs = (time_t) (mt_test_date (task, "delayed") / 1000);
      struct tm tm;

      gmtime_r (&secs, &tm);
      strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      ASSERT_CMPINT (CTL (&out, "schedules", "--queue", "reports"), ==, 0);
      expect = bson_strdup_printf ("cron '*/5 * * * *' (Europe/Berlin)  %s  -", when);
      ASSERT_CONTAINS (out, expect);
      ASSERT (!strstr (out, every));
      bson_free (expect);
      bson_free (out);
      bson_destroy (task);
   }

   ASSERT_CMPINT (CTL (&out, "schedules", "--json"), ==, 0);
   for (line = out; *line; line = next + 1) {
      bson_error_t error;

      next = strchr (line, '\n');
      ASSERT (next);
      *next = '\0';
      doc = bson_new_from_json ((const uint8_t *) line, -1, &error); /* not mt_test_bson: the rule has quotes */
      ASSERT_OR_PRINT (doc, error);
      if (lines == 0) {
         ASSERT (same_oid (doc, "_id", cron));
         ASSERT_CMPSTR (mt_test_str (doc, "rule"), "cron '*/5 * * * *' (Europe/Berlin)");
         ASSERT_CMPINT (mt_test_date (doc, "next_run"), ==, mt_test_date (doc, "delayed"));
      } else {
         ASSERT (same_oid (doc, "_id", every));
         ASSERT (same_oid (doc, "series", every));
         ASSERT_CMPSTR (mt_test_str (doc, "rule"), "every 60 s (1m)");
         ASSERT_CMPINT (mt_test_date (doc, "next_run"), ==, 1893553445000);
      }
      bson_destroy (doc);
      lines++;
   }
   ASSERT_CMPINT (lines, ==, 2);
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "schedules", "--queue", "nowhere"), ==, 0);
   ASSERT_CONTAINS (out, "no repeating tasks of queue nowhere in ");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "schedules", "--status", "CREATED"), ==, 2);
   ASSERT_CONTAINS (out, "schedules does not take --status");
   bson_free (out);

   /* show prints the schedule's fields, dates readable. */
   ASSERT_CMPINT (CTL (&out, "show", every), ==, 0);
   ASSERT_CONTAINS (out, "\"repeat\" : 60");
   ASSERT_CONTAINS (out, "\"scheduled\" : { \"$date\" : \"2030-01-02T03:04:05Z\" }");
   ASSERT_CONTAINS (out, "\"repeat_until\" : { \"$date\" : \"2031-06-30T12:00:00Z\" }");
   ASSERT_CONTAINS (out, "\"series\" : { \"$oid\" : \"");
   bson_free (out);
   bson_free (every);
   bson_free (cron);
   bson_free (ended);
   bson_free (plain);
}

/* An ended (or not) task inserted as another client would, into
 * `collection`, finished `age` seconds ago. */
static void
insert_finished (const char *collection, const char *status, int64_t age)
{
   int64_t finished = ((int64_t) time (NULL) - age) * 1000;
   bson_t *doc = BCON_NEW ("queue", "general", "type", "echo", "status", BCON_UTF8 (status), "created",
                           BCON_DATE_TIME (finished - 60000), "finished", BCON_DATE_TIME (finished), "mark",
                           BCON_INT64 (age));

   mt_test_insert (collection, doc);
   bson_destroy (doc);
}

#define DAY 86400

static void
test_purge (void)
{
   char *out;

   insert_finished ("tasks", "FINISHED", 40 * DAY);
   insert_finished ("tasks", "FAILED", 40 * DAY);
   insert_finished ("tasks", "CANCELLED", 40 * DAY);
   insert_finished ("tasks", "FINISHED", 3600); /* recent */
   insert_finished ("tasks", "CREATED", 40 * DAY); /* a retry: live, an old 'finished' */
   insert_finished ("tasks", "WORK_IN_PROGRESS", 40 * DAY);
   insert_finished ("tasks", "WAITING", 40 * DAY);
   insert_finished ("completed_tasks", "FINISHED", 40 * DAY);
   insert_finished ("completed_tasks", "FAILED", 40 * DAY);
   insert_finished ("completed_tasks", "FAILED", 3600);

   /* A dry run counts and deletes nothing. */
   ASSERT_CMPINT (CTL (&out, "purge", "--older-than", "30d", "--dry-run"), ==, 0);
   ASSERT_CONTAINS (out, "would purge 5 ended task(s) older than 30d from ");
   ASSERT_CONTAINS (out, ".tasks and ");
   ASSERT_CONTAINS (out, ".completed_tasks");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{}"), ==, 7);
   ASSERT_CMPINT (mt_test_count_in ("completed_tasks", "{}"), ==, 3);
   ASSERT_CMPINT (CTL (&out, "purge", "--older-than", "30d", "--dry-run", "--status", "FAILED", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"purged\" : 2");
   ASSERT_CONTAINS (out, "\"dry_run\" : true");
   bson_free (out);

   /* One status, one collection. */
   ASSERT_CMPINT (CTL (&out, "purge", "--older-than", "720h", "--status", "FAILED", "--from", "tasks"), ==, 0);
   ASSERT_CONTAINS (out, "purged 1 ended task(s) (FAILED) older than 30d from ");
   ASSERT (!strstr (out, "completed_tasks"));
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'status': 'FAILED'}"), ==, 0);
   ASSERT_CMPINT (mt_test_count_in ("completed_tasks", "{'status': 'FAILED'}"), ==, 2);

   ASSERT_CMPINT (CTL (&out, "purge", "--older-than", "30d", "--status", "FINISHED,FAILED", "--from", "completed_tasks"), ==, 0);
   ASSERT_CONTAINS (out, "purged 2 ended task(s) (FINISHED or FAILED) older than 30d from ");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("completed_tasks", "{}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("completed_tasks", "{'mark': 3600}"), ==, 1);

   /* The rest of the old ended ones; live and recent ones stay. */
   ASSERT_CMPINT (CTL (&out, "purge", "--older-than", "2592000", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"purged\" : 2");
   ASSERT_CONTAINS (out, "\"dry_run\" : false");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{}"), ==, 4);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'status': 'CREATED'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'status': 'WORK_IN_PROGRESS'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'status': 'WAITING'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'status': 'FINISHED', 'mark': 3600}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "purge", "--older-than", "30m"), ==, 0);
   ASSERT_CONTAINS (out, "purged 2 ended task(s) older than 30m from ");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{}"), ==, 3);
   ASSERT_CMPINT (mt_test_count_in ("completed_tasks", "{}"), ==, 0);
}

static void
test_purge_usage (void)
{
   static const struct {
      const char *flags[6];
      const char *message;
   } cases[] = {
      {{NULL}, "purge needs --older-than: how long ago"},
      {{"--older-than", "30d", "--status", "CREATED"}, "--status: CREATED is a live status, and live tasks are never purged"},
      {{"--older-than", "30d", "--status", "FAILED,WORK_IN_PROGRESS"}, "WORK_IN_PROGRESS is a live status"},
      {{"--older-than", "30d", "--status", "DONE"}, "--status: 'DONE' is not one of FINISHED, FAILED, CANCELLED"},
      {{"--older-than", "30d", "--status", "FAILED,"}, "--status: '' is not one of"},
      {{"--older-than", "1y"}, "--older-than: '1y' is not a duration"},
      {{"--older-than", "-5"}, "--older-than: '-5' is out of range"},
      {{"--older-than", "30d", "--from", "archive"}, "--from: 'archive' is not tasks, completed_tasks or both"},
      {{"--older-than", "30d", "--ttl", "5"}, "purge does not take --ttl"},
      {{"--older-than", "30d", "--queue", "general"}, "purge does not take --queue"},
   };

   insert_finished ("tasks", "CREATED", 40 * DAY);
   insert_finished ("tasks", "FINISHED", 40 * DAY);
   for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const char *args[10] = {"purge"};
      size_t n = 1;
      char *out;

      for (size_t f = 0; f < 6 && cases[i].flags[f]; f++) {
         args[n++] = cases[i].flags[f];
      }
      args[n] = NULL;
      if (ctl (&out, args) != 2 || !strstr (out, cases[i].message)) {
         mt_test_fail (__FILE__, __LINE__, "case %zu: want exit 2 and '%s', got: %s", i, cases[i].message, out);
      }
      bson_free (out);
   }
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{}"), ==, 2);
}

static void
test_retention (void)
{
   char *out;

   insert_finished ("completed_tasks", "FINISHED", 3600);
   insert_finished ("tasks", "FINISHED", 3600);

   ASSERT_CMPINT (CTL (&out, "retention", "--ttl", "30d"), ==, 0);
   ASSERT_CONTAINS (out, ".completed_tasks: the server deletes each ended task 30d after it finished");
   ASSERT_CONTAINS (out, "expireAfterSeconds 2592000; new)");
   ASSERT_CONTAINS (out, "mongo-java-server (the dev database) keeps the index but never expires documents");
   ASSERT_CONTAINS (out, "mtaskctl purge --older-than 30d");
   bson_free (out);
   ASSERT_CMPINT (mt_test_ttl_seconds ("completed_tasks"), ==, 2592000);
   ASSERT_CMPINT (mt_test_ttl_seconds ("tasks"), ==, -1);

   /* Again: replaced. */
   ASSERT_CMPINT (CTL (&out, "retention", "--ttl", "7d", "--collection", "completed_tasks"), ==, 0);
   ASSERT_CONTAINS (out, "7d after it finished");
   ASSERT_CONTAINS (out, "it was 30d");
   bson_free (out);
   ASSERT_CMPINT (mt_test_ttl_seconds ("completed_tasks"), ==, 604800);

   /* mongo-java-server drops an index by name from every collection of the
    * database (MongoDB only from the one named), so this test drops one
    * collection's index only while the other has none. */
   ASSERT_CMPINT (CTL (&out, "retention", "--off"), ==, 0);
   ASSERT_CONTAINS (out, ".completed_tasks: TTL index mtask_ttl dropped (it was 7d); ended tasks stay until purged");
   bson_free (out);
   ASSERT_CMPINT (mt_test_ttl_seconds ("completed_tasks"), ==, -1);
   ASSERT_CMPINT (CTL (&out, "retention", "--off"), ==, 0);
   ASSERT_CONTAINS (out, ".completed_tasks: there was no TTL index; ended tasks stay until purged");
   bson_free (out);

   ASSERT_CMPINT (CTL (&out, "retention", "--collection", "tasks", "--ttl", "3600", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"collection\" : \"tasks\"");
   ASSERT_CONTAINS (out, "\"ttl_seconds\" : 3600");
   ASSERT_CONTAINS (out, "\"previous_ttl_seconds\" : null");
   ASSERT (!strstr (out, "mongo-java-server")); /* --json: the document alone */
   bson_free (out);
   ASSERT_CMPINT (mt_test_ttl_seconds ("tasks"), ==, 3600);
   ASSERT_CMPINT (mt_test_ttl_seconds ("completed_tasks"), ==, -1);
   ASSERT_CMPINT (CTL (&out, "retention", "--collection", "tasks", "--off", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"ttl_seconds\" : null");
   ASSERT_CONTAINS (out, "\"previous_ttl_seconds\" : 3600");
   bson_free (out);
   ASSERT_CMPINT (mt_test_ttl_seconds ("tasks"), ==, -1);
   /* Nothing deleted by any of it. */
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in ("completed_tasks", "{}"), ==, 1);

   ASSERT_CMPINT (CTL (&out, "retention"), ==, 2);
   ASSERT_CONTAINS (out, "retention needs either --ttl DURATION (keep ended tasks that long) or --off");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "retention", "--ttl", "1d", "--off"), ==, 2);
   ASSERT_CONTAINS (out, ", not both");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "retention", "--ttl", "1.5"), ==, 2);
   ASSERT_CONTAINS (out, "--ttl: '1.5' is not a whole number of seconds");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "retention", "--ttl", "1d", "--collection", "locks"), ==, 2);
   ASSERT_CONTAINS (out, "--collection: 'locks' is not tasks or completed_tasks");
   bson_free (out);
   ASSERT_CMPINT (CTL (&out, "retention", "--ttl", "1d", "--dry-run"), ==, 2);
   ASSERT_CONTAINS (out, "retention does not take --dry-run");
   bson_free (out);
}

static void
test_schedule_help (void)
{
   const char *top[] = {mt_test_env ("MTASK_CTL"), "--help", NULL};
   const char *const cmds[][2] = {
      {"enqueue", "--unique-key KEY"},
      {"schedules", "soonest next run first"},
      {"purge", "--older-than DURATION"},
      {"retention", "--ttl DURATION"},
   };
   char *out;

   ASSERT_CMPINT (mt_test_run (top, 10000, &out), ==, 0);
   ASSERT_CONTAINS (out, "Scheduling and retention");
   ASSERT_CONTAINS (out, "  schedules  ");
   ASSERT_CONTAINS (out, "  purge  ");
   ASSERT_CONTAINS (out, "  retention  ");
   bson_free (out);
   for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
      const char *argv[] = {mt_test_env ("MTASK_CTL"), cmds[i][0], "--help", NULL};

      ASSERT_CMPINT (mt_test_run (argv, 10000, &out), ==, 0);
      ASSERT_CONTAINS (out, "Usage: mtaskctl [connection] ");
      ASSERT_CONTAINS (out, cmds[i][1]);
      ASSERT_CONTAINS (out, "Example:");
      bson_free (out);
   }
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
   mt_test_add ("/ctl/group/create_add_show", test_group_create_add_show);
   mt_test_add ("/ctl/group/start", test_group_start);
   mt_test_add ("/ctl/group/ls", test_group_ls);
   mt_test_add ("/ctl/group/show_json", test_group_show_json);
   mt_test_add ("/ctl/group/clean", test_group_clean);
   mt_test_add ("/ctl/group/usage", test_group_usage);
   mt_test_add ("/ctl/group/help", test_group_sync_help);
   mt_test_add ("/ctl/sync/stage_create_ls", test_sync_stage_create_ls);
   mt_test_add ("/ctl/sync/start", test_sync_start);
   mt_test_add ("/ctl/sync/check", test_sync_check);
   mt_test_add ("/ctl/sync/usage", test_sync_usage);
   mt_test_add ("/ctl/pool/set", test_pool_set);
   mt_test_add ("/ctl/pool/usage", test_slot_usage);
   mt_test_add ("/ctl/pool/help", test_slot_help);
   mt_test_add ("/ctl/slots/held", test_slots_held);
   mt_test_add ("/ctl/slots/keepalive_stop", test_slot_keepalive_stop);
   mt_test_add ("/ctl/schedule/enqueue_run_at", test_enqueue_run_at);
   mt_test_add ("/ctl/schedule/enqueue_repeat", test_enqueue_repeat);
   mt_test_add ("/ctl/schedule/enqueue_cron", test_enqueue_cron);
   mt_test_add ("/ctl/schedule/enqueue_unique", test_enqueue_unique);
   mt_test_add ("/ctl/schedule/enqueue_usage", test_enqueue_schedule_usage);
   mt_test_add ("/ctl/schedule/schedules", test_schedules);
   mt_test_add ("/ctl/schedule/help", test_schedule_help);
   mt_test_add ("/ctl/purge/ended", test_purge);
   mt_test_add ("/ctl/purge/usage", test_purge_usage);
   mt_test_add ("/ctl/retention/ttl_index", test_retention);
   return mt_test_main (argc, argv);
}
