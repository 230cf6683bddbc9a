/* The task actions an operator takes, retry, cancel and delete (issue 16),
 * through mtaskctl against a real server and real workers: each in the
 * states it allows and refuses, by id and by filter, with and without
 * --dry-run, in `tasks` and in the archive; and cancel of a running task,
 * cooperative and isolated. */
#include "mt-test.h"

/* A task in `status` on `queue`, with whatever `extra` JSON fields add. */
static bson_oid_t
task_in (const char *queue, const char *status, const char *extra)
{
   char *json = bson_strdup_printf ("{'queue': '%s', 'type': 'echo', 'params': {}, 'status': '%s', 'attempts': 1, "
                                    "'created': {'$date': '2026-01-01T00:00:00Z'}%s%s}",
                                    queue, status, extra ? ", " : "", extra ? extra : "");
   bson_oid_t id = mt_test_task_insert (json);

   bson_free (json);
   return id;
}

/* The same in the archive, completed_tasks. */
static bson_oid_t
archived_in (const char *queue, const char *status)
{
   bson_t *doc = mt_test_bson ("{'type': 'echo', 'params': {}, 'attempts': 2, 'failures': 2, "
                               "'created': {'$date': '2026-01-01T00:00:00Z'}, 'finished': {'$date': '2026-01-01T00:01:00Z'}, "
                               "'error': {'message': 'boom'}, 'errors': [{'message': 'boom'}]}");
   bson_oid_t id;

   bson_oid_init (&id, NULL);
   BSON_APPEND_OID (doc, "_id", &id);
   BSON_APPEND_UTF8 (doc, "queue", queue);
   BSON_APPEND_UTF8 (doc, "status", status);
   mt_test_insert (MT_COMPLETED_COLLECTION, doc);
   bson_destroy (doc);
   return id;
}

static void
hex_of (const bson_oid_t *id, char *hex)
{
   bson_oid_to_string (id, hex);
}

static void
test_retry (void)
{
   bson_oid_t failed, finished, created, running, archived, holder, keyed, a, b;
   char hex[25], *out;
   bson_t *doc;

   failed = task_in ("qr", MT_STATUS_FAILED,
                     "'failures': 3, 'max_attempts': 3, 'finished': {'$date': '2026-01-01T00:05:00Z'}, "
                     "'error': {'message': 'boom'}, 'errors': [{'message': 'boom'}]");
   hex_of (&failed, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", hex), ==, 0);
   ASSERT_CONTAINS (out, "retried");
   bson_free (out);
   doc = mt_test_task (&failed);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), MT_STATUS_CREATED);
   ASSERT (mt_test_is_null (doc, "delayed")); /* due now */
   ASSERT_CMPINT (mt_test_int (doc, "failures"), ==, 0); /* a fresh budget */
   ASSERT (!mt_test_has (doc, "error"));
   ASSERT (!mt_test_has (doc, "finished"));
   ASSERT_CMPSTR (mt_test_str (doc, "errors.0.message"), "boom"); /* the old error stays */
   bson_destroy (doc);

   /* Refused: by state, with the reason, exit 1, nothing changed. */
   finished = task_in ("qr", MT_STATUS_FINISHED, NULL);
   created = task_in ("qr", MT_STATUS_CREATED, NULL);
   running = task_in ("qr", MT_STATUS_WORK_IN_PROGRESS, NULL);
   hex_of (&finished, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", hex), ==, 1);
   ASSERT_CONTAINS (out, "cannot retry task");
   ASSERT_CONTAINS (out, "it is FINISHED: it succeeded");
   bson_free (out);
   ASSERT (mt_test_status_is (&finished, MT_STATUS_FINISHED));
   hex_of (&created, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", hex), ==, 1);
   ASSERT_CONTAINS (out, "it is CREATED: it waits to run already");
   bson_free (out);
   hex_of (&running, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", hex), ==, 1);
   ASSERT_CONTAINS (out, "it is WORK_IN_PROGRESS: it runs now");
   bson_free (out);
   ASSERT (mt_test_status_is (&running, MT_STATUS_WORK_IN_PROGRESS));

   /* An archived failure goes back into tasks. */
   archived = archived_in ("qr", MT_STATUS_FAILED);
   hex_of (&archived, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", hex), ==, 0);
   ASSERT_CONTAINS (out, MT_COMPLETED_COLLECTION);
   bson_free (out);
   ASSERT (mt_test_status_is (&archived, MT_STATUS_CREATED));
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{'_id': {'$oid': '%s'}}", hex), ==, 0);

   /* Its unique_key held by another live task: refused. */
   holder = task_in ("qr", MT_STATUS_CREATED, "'unique_key': 'K1', 'unique_held': 'K1'");
   keyed = task_in ("qr", MT_STATUS_FAILED, "'unique_key': 'K1'");
   hex_of (&keyed, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", hex), ==, 1);
   ASSERT_CONTAINS (out, "another live task holds its unique_key");
   bson_free (out);
   ASSERT (mt_test_status_is (&keyed, MT_STATUS_FAILED));
   (void) holder;

   /* By filter: --dry-run changes nothing, then the same set is retried. */
   a = task_in ("qf", MT_STATUS_FAILED, NULL);
   b = task_in ("qf", MT_STATUS_FAILED, NULL);
   (void) task_in ("qf", MT_STATUS_FINISHED, NULL);
   (void) task_in ("other", MT_STATUS_FAILED, NULL);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", "--status", "FAILED", "--queue", "qf", "--dry-run"), ==, 0);
   ASSERT_CMPINT (mt_test_lines (out), ==, 3); /* two tasks and the count */
   ASSERT_CONTAINS (out, "would be retried");
   ASSERT_CONTAINS (out, "retry (dry run, nothing changed): 2 task(s), 0 refused");
   bson_free (out);
   ASSERT (mt_test_status_is (&a, MT_STATUS_FAILED));
   ASSERT (mt_test_status_is (&b, MT_STATUS_FAILED));
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", "--status", "FAILED", "--queue", "qf"), ==, 0);
   ASSERT_CONTAINS (out, "retry: 2 task(s), 0 refused");
   bson_free (out);
   ASSERT (mt_test_status_is (&a, MT_STATUS_CREATED));
   ASSERT (mt_test_status_is (&b, MT_STATUS_CREATED));
   ASSERT_CMPINT (mt_test_count ("{'queue': 'other', 'status': 'FAILED'}"), ==, 1);

   /* Usage: no id and no filter; both. */
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry"), ==, 2);
   ASSERT_CONTAINS (out, "retry which tasks?");
   bson_free (out);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", hex, "--status", "FAILED"), ==, 2);
   ASSERT_CONTAINS (out, "not both");
   bson_free (out);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "retry", "000000000000000000000000"), ==, 1);
   ASSERT_CONTAINS (out, "no task with id 000000000000000000000000");
   bson_free (out);
}

static void
test_cancel_waiting (void)
{
   bson_oid_t created, waiting, finished, archived, a, b;
   char hex[25], *out;
   bson_t *doc;

   created = task_in ("qc", MT_STATUS_CREATED, "'unique_key': 'K2', 'unique_held': 'K2'");
   hex_of (&created, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", hex), ==, 0);
   ASSERT_CONTAINS (out, "cancelled");
   bson_free (out);
   doc = mt_test_task (&created);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), MT_STATUS_CANCELLED);
   ASSERT (mt_test_date (doc, "finished") > 0);
   ASSERT (!mt_test_has (doc, "unique_held")); /* the key is free again */
   bson_destroy (doc);

   waiting = task_in ("qc", MT_STATUS_WAITING, NULL);
   hex_of (&waiting, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", hex), ==, 0);
   bson_free (out);
   ASSERT (mt_test_status_is (&waiting, MT_STATUS_CANCELLED));

   /* Ended, in tasks or in the archive: refused. */
   finished = task_in ("qc", MT_STATUS_FINISHED, NULL);
   hex_of (&finished, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", hex), ==, 1);
   ASSERT_CONTAINS (out, "it is FINISHED: it has ended already");
   bson_free (out);
   ASSERT (mt_test_status_is (&finished, MT_STATUS_FINISHED));
   archived = archived_in ("qc", MT_STATUS_FAILED);
   hex_of (&archived, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", hex), ==, 1);
   ASSERT_CONTAINS (out, "has ended already (archived)");
   bson_free (out);

   /* By filter, --dry-run first. */
   a = task_in ("qcf", MT_STATUS_CREATED, NULL);
   b = task_in ("qcf", MT_STATUS_CREATED, NULL);
   (void) task_in ("qcf", MT_STATUS_FINISHED, NULL);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", "--queue", "qcf", "--dry-run"), ==, 0);
   ASSERT_CONTAINS (out, "would be cancelled");
   ASSERT_CONTAINS (out, "2 task(s), 1 refused");
   bson_free (out);
   ASSERT (mt_test_status_is (&a, MT_STATUS_CREATED));
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", "--queue", "qcf", "--status", "CREATED"), ==, 0);
   ASSERT_CONTAINS (out, "cancel: 2 task(s), 0 refused");
   bson_free (out);
   ASSERT (mt_test_status_is (&a, MT_STATUS_CANCELLED));
   ASSERT (mt_test_status_is (&b, MT_STATUS_CANCELLED));
}

static void
test_delete (void)
{
   bson_oid_t finished, created, archived, a, b;
   char hex[25], *out;

   finished = task_in ("qd", MT_STATUS_FINISHED, NULL);
   hex_of (&finished, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "delete", hex), ==, 0);
   ASSERT_CONTAINS (out, "deleted");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'_id': {'$oid': '%s'}}", hex), ==, 0);

   created = task_in ("qd", MT_STATUS_CREATED, NULL);
   hex_of (&created, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "delete", hex), ==, 1);
   ASSERT_CONTAINS (out, "it is CREATED: it has not ended; cancel it first, or delete it with --force");
   bson_free (out);
   ASSERT (mt_test_status_is (&created, MT_STATUS_CREATED));
   ASSERT_CMPINT (MT_TEST_CTL (&out, "delete", hex, "--force"), ==, 0);
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'_id': {'$oid': '%s'}}", hex), ==, 0);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", hex, "--force"), ==, 2); /* delete's flag only */
   bson_free (out);

   archived = archived_in ("qd", MT_STATUS_FINISHED);
   hex_of (&archived, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "delete", hex), ==, 0);
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{'_id': {'$oid': '%s'}}", hex), ==, 0);

   /* By filter over both collections, --dry-run first. */
   a = task_in ("qdf", MT_STATUS_FAILED, NULL);
   b = archived_in ("qdf", MT_STATUS_FAILED);
   (void) task_in ("qdf", MT_STATUS_CREATED, NULL);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "delete", "--queue", "qdf", "--dry-run"), ==, 0);
   ASSERT_CONTAINS (out, "2 task(s), 1 refused");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'queue': 'qdf'}"), ==, 2);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{'queue': 'qdf'}"), ==, 1);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "delete", "--queue", "qdf", "--status", "FAILED", "--since", "3650d"), ==, 0);
   ASSERT_CONTAINS (out, "delete: 2 task(s), 0 refused");
   bson_free (out);
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{'queue': 'qdf'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count_in (MT_COMPLETED_COLLECTION, "{'queue': 'qdf'}"), ==, 0);
   (void) a;
   (void) b;
}

static void
test_archive_views (void)
{
   bson_oid_t archived = archived_in ("qv", MT_STATUS_FAILED);
   char hex[25], *out;

   (void) task_in ("qlive", MT_STATUS_CREATED, NULL);
   hex_of (&archived, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "show", hex), ==, 0); /* falls back to the archive */
   ASSERT_CONTAINS (out, hex);
   ASSERT_CONTAINS (out, "\"qv\"");
   bson_free (out);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "ls", "--archive"), ==, 0);
   ASSERT_CONTAINS (out, hex);
   ASSERT (!strstr (out, "qlive"));
   bson_free (out);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "stats", "--archive", "--json"), ==, 0);
   ASSERT_CONTAINS (out, "\"qv\" : { \"FAILED\" : 1 }");
   ASSERT (!strstr (out, "qlive"));
   bson_free (out);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "show", "000000000000000000000000"), ==, 1);
   ASSERT_CONTAINS (out, "nor in");
   bson_free (out);
}

/* Cooperative: the plugin sees mt_task_should_stop() and returns; the
 * task ends CANCELLED all the same. */
static void
test_cancel_running (void)
{
   pid_t worker = mt_test_worker (W ("--queues", "qrun", "--lease", "3", "--poll-interval", "0.05"));
   bson_oid_t id = mt_test_enqueue ("qrun", "hangfirst", "{'max_ms': 100000}", NULL);
   char hex[25], *out;
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, MT_STATUS_WORK_IN_PROGRESS), 30000);
   hex_of (&id, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", hex), ==, 0);
   ASSERT_CONTAINS (out, "stop requested");
   bson_free (out);
   WAIT_UNTIL (mt_test_status_is (&id, MT_STATUS_CANCELLED), 30000);
   doc = mt_test_task (&id);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "cancelled by request");
   ASSERT (mt_test_date (doc, "finished") > 0);
   bson_destroy (doc);
   WAIT_UNTIL (mt_test_output_contains (worker, "hangfirst: attempt 1 told to stop"), 10000);
   ASSERT (mt_test_output_contains (worker, "cancelled by request; asking it to stop"));
   mt_test_worker_stop (worker);
}

/* Isolated: the child is killed once the grace is over. */
static void
test_cancel_isolated (void)
{
   pid_t worker = mt_test_worker (W ("--queues", "qiso", "--lease", "3", "--poll-interval", "0.05", "--isolate", "fork", "--grace", "1"));
   char *params = bson_strdup_printf ("{'gate': '%s', 'gate_ms': 100000}", mt_test_gate ("never"));
   bson_oid_t id = mt_test_enqueue ("qiso", "probe", params, NULL);
   char hex[25], *out;
   bson_t *doc;

   bson_free (params);
   WAIT_UNTIL (mt_test_output_contains (worker, "probe waits at gate"), 30000);
   hex_of (&id, hex);
   ASSERT_CMPINT (MT_TEST_CTL (&out, "cancel", hex), ==, 0);
   ASSERT_CONTAINS (out, "stop requested");
   bson_free (out);
   WAIT_UNTIL (mt_test_status_is (&id, MT_STATUS_CANCELLED), 30000);
   doc = mt_test_task (&id);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "cancelled: killed after a grace of 1 s");
   bson_destroy (doc);
   mt_test_worker_stop (worker);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/actions/retry", test_retry);
   mt_test_add ("/actions/cancel_waiting", test_cancel_waiting);
   mt_test_add ("/actions/delete", test_delete);
   mt_test_add ("/actions/archive_views", test_archive_views);
   mt_test_add ("/actions/cancel_running", test_cancel_running);
   mt_test_add ("/actions/cancel_isolated", test_cancel_isolated);
   return mt_test_main (argc, argv);
}
