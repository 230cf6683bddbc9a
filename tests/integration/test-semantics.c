/* What an outcome means (docs/plugins.md, "Outcomes: success, failure,
 * delay"): a delay is not a failure, a failure with a delay still counts,
 * each claim starts clean, a permanent failure is not retried, and each
 * contradiction between what process() set and what it returned has one
 * meaning and, where it is likely a mistake, a warning in the log. Each
 * asserts the task documents the worker leaves. */
#include "mt-test.h"

/* A worker on queue "q" that retries at once (no backoff), polling fast. */
static pid_t
fast_worker (void)
{
   return mt_test_worker_ready (W ("--queues", "q", "--retry-backoff", "0", "--poll-interval", "0.02"));
}

/* How many entries the task's `errors` history has. */
static int
errors_count (const bson_t *doc)
{
   char key[32];
   int n = 0;

   for (;;) {
      bson_snprintf (key, sizeof key, "errors.%d", n);
      if (!mt_test_has (doc, key)) {
         return n;
      }
      n++;
   }
}

static void
test_delay_then_failure_stops_at_budget (void)
{
   /* delay() and return false, every time, with a budget of 2: each is a
    * failure, so the second ends it FAILED (it used to retry forever). */
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'delay': 0, 'fail': 'not yet'}", "{'max_attempts': 2}");
   pid_t pid = fast_worker ();
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 30000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT_CMPINT (mt_test_int (doc, "failures"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "not yet");
   ASSERT_CMPINT (errors_count (doc), ==, 2);
   bson_destroy (doc);
   ASSERT (mt_test_output_contains (pid, "asked for a delay of 0 s and returned failure"));
   mt_test_worker_stop (pid);
}

static void
test_delays_do_not_spend_budget (void)
{
   /* Five delays, one failure, then success, with a budget of 3; and one
    * delay, one failure, then success, with a budget of 2. Both finish:
    * only the failure counts. */
   bson_oid_t five = mt_test_enqueue ("q",
                                      "probe",
                                      "{'script': ['delay', 'delay', 'delay', 'delay', 'delay', 'fail', 'ok']}",
                                      "{'max_attempts': 3}");
   bson_oid_t one = mt_test_enqueue ("q", "probe", "{'script': ['delay', 'fail', 'ok']}", "{'max_attempts': 2}");
   pid_t pid = fast_worker ();
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&five, "FINISHED") || mt_test_status_is (&five, "FAILED"), 30000);
   WAIT_UNTIL (mt_test_status_is (&one, "FINISHED") || mt_test_status_is (&one, "FAILED"), 30000);
   doc = mt_test_task (&five);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 7); /* claims: the fencing generation */
   ASSERT_CMPINT (mt_test_int (doc, "failures"), ==, 1);
   ASSERT_CMPINT (errors_count (doc), ==, 1);
   ASSERT_CMPINT (mt_test_int (doc, "errors.0.attempt"), ==, 6);
   bson_destroy (doc);
   doc = mt_test_task (&one);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 3);
   ASSERT_CMPINT (mt_test_int (doc, "failures"), ==, 1);
   bson_destroy (doc);
   mt_test_worker_stop (pid);
}

static void
test_retried_then_finished_is_clean (void)
{
   /* The failing attempt sets a result and a status_message; the one that
    * succeeds sets neither. The FINISHED document carries nothing of the
    * failed attempt but its entry in `errors`. */
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'script': ['fail', 'ok']}", "{'max_attempts': 3}");
   pid_t pid = fast_worker ();
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED") || mt_test_status_is (&id, "FAILED"), 30000);
   doc = mt_test_task (&id);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FINISHED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT (!mt_test_has (doc, "error"));
   ASSERT (!mt_test_has (doc, "result"));
   ASSERT (!mt_test_has (doc, "status_message"));
   ASSERT_CMPINT (errors_count (doc), ==, 1);
   ASSERT_CMPSTR (mt_test_str (doc, "errors.0.message"), "scripted failure at attempt 1");
   bson_destroy (doc);
   mt_test_worker_stop (pid);
}

static void
test_retry_starts_clean (void)
{
   /* While the second attempt runs (it waits at a gate), the document
    * shows nothing of the first, failed one. */
   char *params = bson_strdup_printf ("{'script': ['fail', 'gate'], 'gate': '%s'}", mt_test_gate ("second"));
   bson_oid_t id = mt_test_enqueue ("q", "probe", params, "{'max_attempts': 3}");
   pid_t pid = fast_worker ();
   bson_t *doc;

   bson_free (params);
   WAIT_UNTIL (mt_test_output_contains (pid, "probe waits at gate"), 30000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT (!mt_test_has (doc, "error"));
   ASSERT (!mt_test_has (doc, "result"));
   ASSERT (!mt_test_has (doc, "status_message"));
   ASSERT_CMPSTR (mt_test_str (doc, "errors.0.message"), "scripted failure at attempt 1");
   bson_destroy (doc);
   mt_test_gate_open ("second");
   WAIT_UNTIL (mt_test_status_is (&id, "FINISHED"), 30000);
   mt_test_worker_stop (pid);
}

static void
test_permanent_failure (void)
{
   /* mt_task_fail_permanently and return false: FAILED at the first
    * attempt, with its error, budget unspent. */
   bson_oid_t id = mt_test_enqueue ("q", "probe", "{'permanent': true, 'fail': 'bad input: no width'}", "{'max_attempts': 5}");
   pid_t pid = fast_worker ();
   bson_t *doc;

   WAIT_UNTIL (mt_test_status_is (&id, "FAILED"), 30000);
   doc = mt_test_task (&id);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "bad input: no width");
   ASSERT_CMPINT (errors_count (doc), ==, 1);
   ASSERT (mt_test_has (doc, "finished"));
   bson_destroy (doc);
   mt_test_worker_stop (pid);
}

static void
test_contradictions (void)
{
   /* set_status (FAILED) and success: FAILED for good, with an error
    * saying the plugin gave none. */
   bson_oid_t failed_ok = mt_test_enqueue ("q", "probe", "{'status': 'FAILED'}", "{'max_attempts': 3}");
   /* set_status (FINISHED) and failure: the failure wins, and is retried
    * until the budget is spent. */
   bson_oid_t finished_fail = mt_test_enqueue ("q", "probe", "{'status': 'FINISHED', 'fail': 'oops'}", "{'max_attempts': 2}");
   /* success with the error filled in: FINISHED, the error not recorded. */
   bson_oid_t ok_error = mt_test_enqueue ("q", "probe", "{'fill_error': 'left over'}", NULL);
   pid_t pid = fast_worker ();
   bson_t *doc;

   WAIT_UNTIL (!mt_test_status_is (&failed_ok, "CREATED") && !mt_test_status_is (&failed_ok, "WORK_IN_PROGRESS"), 30000);
   WAIT_UNTIL (mt_test_status_is (&finished_fail, "FAILED"), 30000);
   WAIT_UNTIL (mt_test_status_is (&ok_error, "FINISHED"), 30000);

   doc = mt_test_task (&failed_ok);
   ASSERT_CMPSTR (mt_test_str (doc, "status"), "FAILED");
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 1);
   ASSERT_CONTAINS (mt_test_str (doc, "error.message"), "set status FAILED and returned success");
   bson_destroy (doc);
   ASSERT (mt_test_output_contains (pid, "process() set status FAILED but returned success"));

   doc = mt_test_task (&finished_fail);
   ASSERT_CMPINT (mt_test_int (doc, "attempts"), ==, 2);
   ASSERT_CMPSTR (mt_test_str (doc, "error.message"), "oops");
   bson_destroy (doc);
   ASSERT (mt_test_output_contains (pid, "process() set status FINISHED but returned failure (oops); the failure wins"));

   doc = mt_test_task (&ok_error);
   ASSERT (!mt_test_has (doc, "error"));
   ASSERT_CMPINT (errors_count (doc), ==, 0);
   bson_destroy (doc);
   ASSERT (mt_test_output_contains (pid, "process() returned success with its error filled in (left over)"));
   mt_test_worker_stop (pid);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/semantics/delay/then_failure_stops_at_budget", test_delay_then_failure_stops_at_budget);
   mt_test_add ("/semantics/delay/not_counted", test_delays_do_not_spend_budget);
   mt_test_add ("/semantics/claim/finished_is_clean", test_retried_then_finished_is_clean);
   mt_test_add ("/semantics/claim/retry_starts_clean", test_retry_starts_clean);
   mt_test_add ("/semantics/fail/permanently", test_permanent_failure);
   mt_test_add ("/semantics/contradictions", test_contradictions);
   return mt_test_main (argc, argv);
}
