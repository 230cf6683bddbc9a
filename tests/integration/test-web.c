/* mtask-web over real HTTP (issue 17): the API answers what the admin
 * calls answer, /metrics counts a crafted collection, bad parameters get a
 * 400, and the security rules hold: read-only by default, actions need the
 * CSRF token, every request the bearer token when one is set. */
#include "mt-test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The HTTP helper lives in mt-test.c, shared with test-web-data.c. */
typedef mt_test_answer_t answer_t;
typedef mt_test_web_t web_t;
#define answer_free mt_test_answer_free
#define http mt_test_http
#define web_start mt_test_web_start

/* The admin reply as the API writes it. */
static char *
json_of (const bson_t *reply)
{
   return bson_as_relaxed_extended_json (reply, NULL);
}

static void
test_help_and_bad_flags (void)
{
   char *out = NULL;

   ASSERT_CMPINT (mt_test_run (W (mt_test_env ("MTASK_WEB"), "--help"), 10000, &out), ==, 0);
   ASSERT_CONTAINS (out, "--allow-actions");
   ASSERT_CONTAINS (out, "--token-file");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (W (mt_test_env ("MTASK_WEB"), "--no-such-flag"), 10000, &out), ==, 2);
   ASSERT_CONTAINS (out, "unknown flag '--no-such-flag'");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (W (mt_test_env ("MTASK_WEB"), "--db", "x", "--port", "http"), 10000, &out), ==, 2);
   ASSERT_CONTAINS (out, "--port 'http'");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (W (mt_test_env ("MTASK_WEB"), "--uri", "mongodb://h/", "--base-path", "x y"), 10000, &out), ==, 2);
   ASSERT_CONTAINS (out, "--base-path");
   bson_free (out);
}

/* /api/tasks, /api/task/ID and /api/groups answer exactly the admin
 * calls' replies for the same options. */
static void
test_api_matches_admin (void)
{
   web_t *w = web_start (NULL);
   bson_oid_t a = mt_test_task_insert ("{'queue': 'api-q', 'type': 't1', 'status': 'FAILED', 'status_message': '<b>x</b>'}");
   bson_t *opts = mt_test_bson ("{'queue': 'api-q', 'limit': {'$numberLong': '10'}}");
   bson_t reply;
   bson_error_t error;
   answer_t ans;
   char *want, *path, id[25];

   mt_test_task_insert ("{'queue': 'api-q', 'type': 't2', 'status': 'CREATED'}");
   mt_test_group_new ("web group", 0);
   ASSERT_OR_PRINT (mt_admin_tasks (mt_test_client (), mt_test_db (), opts, &reply, &error), error);
   want = json_of (&reply);
   bson_destroy (&reply);
   ans = http (w->port, "GET", "/api/tasks?queue=api-q&limit=10", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.head, "Content-Security-Policy: default-src 'self'; script-src 'self'");
   ASSERT_CMPSTR (ans.body, want);
   answer_free (&ans);
   bson_free (want);

   bson_oid_to_string (&a, id);
   ASSERT_OR_PRINT (mt_admin_task (mt_test_client (), mt_test_db (), &a, NULL, &reply, &error), error);
   want = json_of (&reply);
   bson_destroy (&reply);
   path = bson_strdup_printf ("/api/task/%s", id);
   ans = http (w->port, "GET", path, "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CMPSTR (ans.body, want);
   answer_free (&ans);
   bson_free (want);
   bson_free (path);

   ASSERT_OR_PRINT (mt_admin_groups (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);
   want = json_of (&reply);
   bson_destroy (&reply);
   ans = http (w->port, "GET", "/api/groups", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "web group");
   ASSERT_CMPSTR (ans.body, want);
   answer_free (&ans);
   bson_free (want);

   /* A task that is not there: 404 with the call's message. */
   ans = http (w->port, "GET", "/api/task/000000000000000000000000", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 404);
   ASSERT_CONTAINS (ans.body, "\"error\"");
   answer_free (&ans);
   /* The page shell and its files. */
   ans = http (w->port, "GET", "/tasks", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.head, "text/html");
   answer_free (&ans);
   bson_destroy (opts);
}

static void
test_bad_parameters (void)
{
   web_t *w = web_start (NULL);
   answer_t ans;

   ans = http (w->port, "GET", "/api/tasks?colour=red", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "Invalid option 'colour'");
   answer_free (&ans);
   ans = http (w->port, "GET", "/api/tasks?limit=many", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "limit");
   answer_free (&ans);
   ans = http (w->port, "GET", "/api/tasks?limit=0", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "option 'limit' must be 1 to 1000");
   answer_free (&ans);
   ans = http (w->port, "GET", "/api/overview?archive=perhaps", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "archive");
   answer_free (&ans);
   ans = http (w->port, "GET", "/api/task/not-an-id", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "is not a task id");
   answer_free (&ans);
   ans = http (w->port, "GET", "/api/nothing", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 404);
   answer_free (&ans);
}

/* The names, labels and values of /metrics for a crafted collection. */
static void
test_metrics (void)
{
   web_t *w = web_start (NULL);
   answer_t ans;

   mt_test_enqueue ("met-q", "t", NULL, NULL);
   mt_test_enqueue ("met-q", "t", NULL, NULL);
   mt_test_group_new ("met group", 0);
   mt_test_task_insert ("{'queue': 'met-q', 'type': 't', 'status': 'FAILED'}");
   mt_test_enqueue ("met\"q", "t", NULL, NULL); /* a label value to escape */
   {
      bson_error_t error;

      ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "met-pool", 3, 0, &error), error);
   }
   ans = http (w->port, "GET", "/metrics", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.head, "text/plain; version=0.0.4");
   ASSERT_CONTAINS (ans.body, "# TYPE mtask_tasks gauge\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_tasks{queue=\"met-q\",status=\"CREATED\"} 2\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_tasks{queue=\"met-q\",status=\"FAILED\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_tasks{queue=\"met\\\"q\",status=\"CREATED\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_queue_due{queue=\"met-q\"} 2\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_queue_oldest_due_age_seconds{queue=\"met-q\"} ");
   ASSERT_CONTAINS (ans.body, "\nmtask_workers{state=\"running\"} ");
   ASSERT_CONTAINS (ans.body, "\nmtask_workers{state=\"lost\"} ");
   ASSERT_CONTAINS (ans.body, "\nmtask_pool_size{pool=\"met-pool\"} 3\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_pool_slots_used{pool=\"met-pool\"} 0\n");
   ASSERT_CONTAINS (ans.body, "# TYPE mtask_groups gauge\nmtask_groups{status=\"pending\"} 1\n");
   ASSERT_CONTAINS (ans.body, "\nmtask_scrape_duration_seconds ");
   answer_free (&ans);
}

static char *
csrf_of (int port, const char *headers)
{
   answer_t ans = http (port, "GET", "/api/csrf", headers, NULL);
   bson_t *doc;
   char *token;
   bson_error_t error;

   ASSERT_CMPINT (ans.status, ==, 200);
   doc = bson_new_from_json ((const uint8_t *) ans.body, -1, &error);
   ASSERT_OR_PRINT (doc, error);
   token = bson_strdup (mt_test_str (doc, "csrf"));
   bson_destroy (doc);
   answer_free (&ans);
   return token;
}

/* Read-only by default: a POST is refused 403 and the task is untouched. */
static void
test_read_only (void)
{
   web_t *w = web_start (NULL);
   bson_oid_t a = mt_test_task_insert ("{'queue': 'ro-q', 'type': 't', 'status': 'FAILED'}");
   char id[25], *body, *csrf = csrf_of (w->port, ""), *hdr;
   answer_t ans;

   bson_oid_to_string (&a, id);
   body = bson_strdup_printf ("{\"id\": \"%s\"}", id);
   hdr = bson_strdup_printf ("X-CSRF-Token: %s\r\nContent-Type: application/json\r\n", csrf);
   ans = http (w->port, "POST", "/api/action/retry", hdr, body);
   ASSERT_CMPINT (ans.status, ==, 403);
   ASSERT_CONTAINS (ans.body, "read-only");
   ASSERT (mt_test_status_is (&a, "FAILED"));
   answer_free (&ans);
   ans = http (w->port, "POST", "/api/tasks", "", "");
   ASSERT_CMPINT (ans.status, ==, 405);
   answer_free (&ans);
   bson_free (hdr);
   bson_free (body);
   bson_free (csrf);
}

/* With --allow-actions on loopback: refused without the CSRF token or
 * with a wrong one; with it, a retry puts the task back to CREATED. */
static void
test_actions_csrf_and_retry (void)
{
   web_t *w = web_start (W ("--allow-actions"));
   bson_oid_t a = mt_test_task_insert ("{'queue': 'act-q', 'type': 't', 'status': 'FAILED', 'failures': 3}");
   char id[25], *body, *csrf = csrf_of (w->port, ""), *hdr;
   answer_t ans;

   bson_oid_to_string (&a, id);
   body = bson_strdup_printf ("{\"id\": \"%s\"}", id);
   ans = http (w->port, "POST", "/api/action/retry", "Content-Type: application/json\r\n", body);
   ASSERT_CMPINT (ans.status, ==, 403);
   ASSERT_CONTAINS (ans.body, "X-CSRF-Token");
   answer_free (&ans);
   ans = http (w->port, "POST", "/api/action/retry", "X-CSRF-Token: wrong\r\nContent-Type: application/json\r\n", body);
   ASSERT_CMPINT (ans.status, ==, 403);
   answer_free (&ans);
   ASSERT (mt_test_status_is (&a, "FAILED"));

   hdr = bson_strdup_printf ("X-CSRF-Token: %s\r\nContent-Type: application/json\r\n", csrf);
   ans = http (w->port, "POST", "/api/action/retry", hdr, "{\"id\": \"nope\"}");
   ASSERT_CMPINT (ans.status, ==, 400);
   answer_free (&ans);
   ans = http (w->port, "POST", "/api/action/retry", hdr, body);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\"outcome\" : \"retried\"");
   answer_free (&ans);
   ASSERT (mt_test_status_is (&a, "CREATED"));
   bson_free (hdr);
   bson_free (body);
   bson_free (csrf);
}

/* With --token-file: no answer but 401 without the token; the bearer
 * token or the cookie of POST /login open everything. */
static void
test_token (void)
{
   char *path = bson_strdup_printf ("/tmp/mtask-web-token-%d", (int) getpid ());
   const char *token = "s3cret-token-for-the-web-test";
   FILE *f = fopen (path, "w");
   web_t *w;
   answer_t ans;
   char *hdr, *cookie, *end;

   ASSERT (f);
   fprintf (f, "%s\n", token);
   fclose (f);
   ASSERT (chmod (path, 0600) == 0);
   w = web_start (W ("--token-file", path, "--allow-actions"));
   ans = http (w->port, "GET", "/api/tasks", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 401);
   ASSERT_CONTAINS (ans.head, "WWW-Authenticate: Bearer");
   answer_free (&ans);
   ans = http (w->port, "GET", "/metrics", "Authorization: Bearer wrong-token-wrong-token\r\n", NULL);
   ASSERT_CMPINT (ans.status, ==, 401);
   answer_free (&ans);
   ans = http (w->port, "POST", "/api/action/retry", "Content-Type: application/json\r\n", "{\"status\": \"FAILED\"}");
   ASSERT_CMPINT (ans.status, ==, 401);
   answer_free (&ans);

   hdr = bson_strdup_printf ("Authorization: Bearer %s\r\n", token);
   ans = http (w->port, "GET", "/api/tasks", hdr, NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   answer_free (&ans);
   bson_free (hdr);

   ans = http (w->port, "POST", "/login", "Content-Type: application/x-www-form-urlencoded\r\n", "token=wrong");
   ASSERT_CMPINT (ans.status, ==, 401);
   answer_free (&ans);
   hdr = bson_strdup_printf ("token=%s", token);
   ans = http (w->port, "POST", "/login", "Content-Type: application/x-www-form-urlencoded\r\n", hdr);
   bson_free (hdr);
   ASSERT_CMPINT (ans.status, ==, 303);
   ASSERT_CONTAINS (ans.head, "Set-Cookie: mtask_session=");
   ASSERT_CONTAINS (ans.head, "HttpOnly");
   cookie = bson_strdup (strstr (ans.head, "mtask_session="));
   end = strchr (cookie, ';');
   ASSERT (end);
   *end = '\0';
   answer_free (&ans);
   hdr = bson_strdup_printf ("Cookie: %s\r\n", cookie);
   ans = http (w->port, "GET", "/api/groups", hdr, NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   answer_free (&ans);
   bson_free (hdr);
   bson_free (cookie);
   unlink (path);
   bson_free (path);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/web/help_and_bad_flags", test_help_and_bad_flags);
   mt_test_add ("/web/api_matches_admin", test_api_matches_admin);
   mt_test_add ("/web/bad_parameters", test_bad_parameters);
   mt_test_add ("/web/metrics", test_metrics);
   mt_test_add ("/web/read_only", test_read_only);
   mt_test_add ("/web/actions_csrf_and_retry", test_actions_csrf_and_retry);
   mt_test_add ("/web/token", test_token);
   return mt_test_main (argc, argv);
}
