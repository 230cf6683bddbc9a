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
#include <time.h>
#include <unistd.h>


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
   /* Every flag, an example, the exit codes and where the docs are. */
   for (const char *const *flag = W ("--db", "--uri", "--uri-file", "--host", "--port", "--listen", "--token-file",
                                     "--allow-actions", "--base-path", "--help", "--version");
        *flag;
        flag++) {
      ASSERT_CONTAINS (out, *flag);
   }
   ASSERT_CONTAINS (out, "Example:\n  MTASK_URI=");
   ASSERT_CONTAINS (out, "Exit status: 0 stopped by SIGINT or SIGTERM; 1 could not start");
   ASSERT_CONTAINS (out, "2 bad usage");
   ASSERT_CONTAINS (out, "docs/web.md");
   ASSERT_CONTAINS (out, "docs/deploy.md (mtask-web.service)");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (W (mt_test_env ("MTASK_WEB"), "--version"), 10000, &out), ==, 0);
   ASSERT_CONTAINS (out, "mtask-web ");
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (W (mt_test_env ("MTASK_WEB"), "--uri", "not-a-uri", "--db", "x"), 10000, &out), ==, 2);
   bson_free (out);
   ASSERT_CMPINT (mt_test_run (W (mt_test_env ("MTASK_WEB"), "--uri", "mongodb://127.0.0.1:1/", "--db", "x",
                                  "--token-file", "/nonexistent/token"),
                              10000, &out),
                  ==, 1);
   ASSERT_CONTAINS (out, "--token-file /nonexistent/token");
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
   mt_test_web_t *w = mt_test_web_start (NULL);
   bson_oid_t a = mt_test_task_insert ("{'queue': 'api-q', 'type': 't1', 'status': 'FAILED', 'status_message': '<b>x</b>'}");
   bson_t *opts = mt_test_bson ("{'queue': 'api-q', 'limit': {'$numberLong': '10'}}");
   bson_t reply;
   bson_error_t error;
   mt_test_answer_t ans;
   char *want, *path, id[25];

   mt_test_task_insert ("{'queue': 'api-q', 'type': 't2', 'status': 'CREATED'}");
   mt_test_group_new ("web group", 0);
   ASSERT_OR_PRINT (mt_admin_tasks (mt_test_client (), mt_test_db (), opts, &reply, &error), error);
   want = json_of (&reply);
   bson_destroy (&reply);
   ans = mt_test_http (w->port, "GET", "/api/tasks?queue=api-q&limit=10", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.head, "Content-Security-Policy: default-src 'self'; script-src 'self'");
   ASSERT_CMPSTR (ans.body, want);
   mt_test_answer_free (&ans);
   bson_free (want);

   bson_oid_to_string (&a, id);
   ASSERT_OR_PRINT (mt_admin_task (mt_test_client (), mt_test_db (), &a, NULL, &reply, &error), error);
   want = json_of (&reply);
   bson_destroy (&reply);
   path = bson_strdup_printf ("/api/task/%s", id);
   ans = mt_test_http (w->port, "GET", path, "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CMPSTR (ans.body, want);
   mt_test_answer_free (&ans);
   bson_free (want);
   bson_free (path);

   ASSERT_OR_PRINT (mt_admin_groups (mt_test_client (), mt_test_db (), NULL, &reply, &error), error);
   want = json_of (&reply);
   bson_destroy (&reply);
   ans = mt_test_http (w->port, "GET", "/api/groups", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "web group");
   ASSERT_CMPSTR (ans.body, want);
   mt_test_answer_free (&ans);
   bson_free (want);

   /* A task that is not there: 404 with the call's message. */
   ans = mt_test_http (w->port, "GET", "/api/task/000000000000000000000000", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 404);
   ASSERT_CONTAINS (ans.body, "\"error\"");
   mt_test_answer_free (&ans);
   /* The page shell and its files. */
   ans = mt_test_http (w->port, "GET", "/tasks", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.head, "text/html");
   mt_test_answer_free (&ans);
   bson_destroy (opts);
}

static void
test_bad_parameters (void)
{
   mt_test_web_t *w = mt_test_web_start (NULL);
   mt_test_answer_t ans;

   ans = mt_test_http (w->port, "GET", "/api/tasks?colour=red", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "Invalid option 'colour'");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/api/tasks?limit=many", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "limit");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/api/tasks?limit=0", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "option 'limit' must be 1 to 1000");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/api/overview?archive=perhaps", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "archive");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/api/task/not-an-id", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "is not a task id");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/api/nothing", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 404);
   mt_test_answer_free (&ans);
}

/* The names, labels and values of /metrics for a crafted collection. */
static void
test_metrics (void)
{
   mt_test_web_t *w = mt_test_web_start (NULL);
   mt_test_answer_t ans;

   mt_test_enqueue ("met-q", "t", NULL, NULL);
   mt_test_enqueue ("met-q", "t", NULL, NULL);
   mt_test_group_new ("met group", 0);
   mt_test_task_insert ("{'queue': 'met-q', 'type': 't', 'status': 'FAILED'}");
   mt_test_enqueue ("met\"q", "t", NULL, NULL); /* a label value to escape */
   {
      bson_error_t error;

      ASSERT_OR_PRINT (mt_pool_set (mt_test_client (), mt_test_db (), "met-pool", 3, 0, &error), error);
   }
   ans = mt_test_http (w->port, "GET", "/metrics", "", NULL);
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
   mt_test_answer_free (&ans);
}

static char *
csrf_of (int port, const char *headers)
{
   mt_test_answer_t ans = mt_test_http (port, "GET", "/api/csrf", headers, NULL);
   bson_t *doc;
   char *token;
   bson_error_t error;

   ASSERT_CMPINT (ans.status, ==, 200);
   doc = bson_new_from_json ((const uint8_t *) ans.body, -1, &error);
   ASSERT_OR_PRINT (doc, error);
   token = bson_strdup (mt_test_str (doc, "csrf"));
   bson_destroy (doc);
   mt_test_answer_free (&ans);
   return token;
}

/* Read-only by default: a POST is refused 403 and the task is untouched. */
static void
test_read_only (void)
{
   mt_test_web_t *w = mt_test_web_start (NULL);
   bson_oid_t a = mt_test_task_insert ("{'queue': 'ro-q', 'type': 't', 'status': 'FAILED'}");
   char id[25], *body, *csrf = csrf_of (w->port, ""), *hdr;
   mt_test_answer_t ans;

   bson_oid_to_string (&a, id);
   body = bson_strdup_printf ("{\"id\": \"%s\"}", id);
   hdr = bson_strdup_printf ("X-CSRF-Token: %s\r\nContent-Type: application/json\r\n", csrf);
   ans = mt_test_http (w->port, "POST", "/api/action/retry", hdr, body);
   ASSERT_CMPINT (ans.status, ==, 403);
   ASSERT_CONTAINS (ans.body, "read-only");
   ASSERT (mt_test_status_is (&a, "FAILED"));
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "POST", "/api/tasks", "", "");
   ASSERT_CMPINT (ans.status, ==, 405);
   mt_test_answer_free (&ans);
   bson_free (hdr);
   bson_free (body);
   bson_free (csrf);
}

/* With --allow-actions on loopback: refused without the CSRF token or
 * with a wrong one; with it, a retry puts the task back to CREATED. */
static void
test_actions_csrf_and_retry (void)
{
   mt_test_web_t *w = mt_test_web_start (W ("--allow-actions"));
   bson_oid_t a = mt_test_task_insert ("{'queue': 'act-q', 'type': 't', 'status': 'FAILED', 'failures': 3}");
   char id[25], *body, *csrf = csrf_of (w->port, ""), *hdr;
   mt_test_answer_t ans;

   bson_oid_to_string (&a, id);
   body = bson_strdup_printf ("{\"id\": \"%s\"}", id);
   ans = mt_test_http (w->port, "POST", "/api/action/retry", "Content-Type: application/json\r\n", body);
   ASSERT_CMPINT (ans.status, ==, 403);
   ASSERT_CONTAINS (ans.body, "X-CSRF-Token");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "POST", "/api/action/retry", "X-CSRF-Token: wrong\r\nContent-Type: application/json\r\n", body);
   ASSERT_CMPINT (ans.status, ==, 403);
   mt_test_answer_free (&ans);
   ASSERT (mt_test_status_is (&a, "FAILED"));

   hdr = bson_strdup_printf ("X-CSRF-Token: %s\r\nContent-Type: application/json\r\n", csrf);
   ans = mt_test_http (w->port, "POST", "/api/action/retry", hdr, "{\"id\": \"nope\"}");
   ASSERT_CMPINT (ans.status, ==, 400);
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "POST", "/api/action/retry", hdr, body);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\"outcome\" : \"retried\"");
   mt_test_answer_free (&ans);
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
   mt_test_web_t *w;
   mt_test_answer_t ans;
   char *hdr, *cookie, *end;

   ASSERT (f);
   fprintf (f, "%s\n", token);
   fclose (f);
   ASSERT (chmod (path, 0600) == 0);
   w = mt_test_web_start (W ("--token-file", path, "--allow-actions"));
   ans = mt_test_http (w->port, "GET", "/api/tasks", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 401);
   ASSERT_CONTAINS (ans.head, "WWW-Authenticate: Bearer");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/metrics", "Authorization: Bearer wrong-token-wrong-token\r\n", NULL);
   ASSERT_CMPINT (ans.status, ==, 401);
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "POST", "/api/action/retry", "Content-Type: application/json\r\n", "{\"status\": \"FAILED\"}");
   ASSERT_CMPINT (ans.status, ==, 401);
   mt_test_answer_free (&ans);

   hdr = bson_strdup_printf ("Authorization: Bearer %s\r\n", token);
   ans = mt_test_http (w->port, "GET", "/api/tasks", hdr, NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   mt_test_answer_free (&ans);
   bson_free (hdr);

   ans = mt_test_http (w->port, "POST", "/login", "Content-Type: application/x-www-form-urlencoded\r\n", "token=wrong");
   ASSERT_CMPINT (ans.status, ==, 401);
   mt_test_answer_free (&ans);
   hdr = bson_strdup_printf ("token=%s", token);
   ans = mt_test_http (w->port, "POST", "/login", "Content-Type: application/x-www-form-urlencoded\r\n", hdr);
   bson_free (hdr);
   ASSERT_CMPINT (ans.status, ==, 303);
   ASSERT_CONTAINS (ans.head, "Set-Cookie: mtask_session=");
   ASSERT_CONTAINS (ans.head, "HttpOnly");
   cookie = bson_strdup (strstr (ans.head, "mtask_session="));
   end = strchr (cookie, ';');
   ASSERT (end);
   *end = '\0';
   mt_test_answer_free (&ans);
   hdr = bson_strdup_printf ("Cookie: %s\r\n", cookie);
   ans = mt_test_http (w->port, "GET", "/api/groups", hdr, NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   mt_test_answer_free (&ans);
   bson_free (hdr);
   bson_free (cookie);
   unlink (path);
   bson_free (path);
}


/* --base-path: the shell loads its script and sheet under the prefix (its
 * links are written in at start), the API answers there, and nothing
 * answers at the root but a 404 saying where the dashboard is. */
static void
test_base_path (void)
{
   mt_test_web_t *w = mt_test_web_start (W ("--base-path", "/mtask/"));
   mt_test_answer_t ans;

   ans = mt_test_http (w->port, "GET", "/mtask/tasks", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "<script src=\"/mtask/static/app.js\"");
   ASSERT_CONTAINS (ans.body, "href=\"/mtask/static/app.css\"");
   ASSERT_CONTAINS (ans.body, "href=\"/mtask/groups\"");
   ASSERT (!strstr (ans.body, "\"/static/"));
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/mtask", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "<script src=\"/mtask/static/app.js\"");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/mtask/static/app.js", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.head, "text/javascript");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/mtask/api/overview", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\"by_queue\"");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/api/overview", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 404);
   ASSERT_CONTAINS (ans.body, "nothing at /api/overview: the dashboard is under /mtask/");
   mt_test_answer_free (&ans);
   ans = mt_test_http (w->port, "GET", "/mtaskx/api/overview", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 404);
   mt_test_answer_free (&ans);
   /* Without a base path the shell is served as it is in web/pages/. */
   w = mt_test_web_start (NULL);
   ans = mt_test_http (w->port, "GET", "/groups", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "<script src=\"/static/app.js\"");
   mt_test_answer_free (&ans);
}

/* The database goes away: the API answers 503, saying so, with the
 * driver's message naming the server it cannot reach, within mtask-web's own short server
 * selection timeout (2.5 s; the URI sets none), and 200 again once the
 * database is back. */
static mt_test_own_db_t outage_db;

static void
test_outage (void)
{
   mt_test_web_t *w;
   mt_test_answer_t ans;
   int64_t start, took_ms;
   char *where;

   mt_test_own_db_open (&outage_db, "");
   w = mt_test_web_start_at (outage_db.uri, NULL);
   ans = mt_test_http (w->port, "GET", "/api/overview", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   mt_test_answer_free (&ans);

   mt_test_own_db_stop (&outage_db);
   start = bson_get_monotonic_time ();
   ans = mt_test_http (w->port, "GET", "/api/overview", "", NULL);
   took_ms = (bson_get_monotonic_time () - start) / 1000;
   printf ("# /api/overview answered %d in %d ms with the database down: %s\n", ans.status, (int) took_ms, ans.body);
   ASSERT_CMPINT (ans.status, ==, 503);
   where = bson_strdup_printf ("127.0.0.1:%s", outage_db.port);
   ASSERT_CONTAINS (ans.body, where);
   ASSERT_CONTAINS (ans.body, "the database does not answer");
   ASSERT_CMPINT (took_ms, <, 4500);
   bson_free (where);
   mt_test_answer_free (&ans);
   /* The pages still load (they show the banner over the last data). */
   ans = mt_test_http (w->port, "GET", "/", "", NULL);
   ASSERT_CMPINT (ans.status, ==, 200);
   mt_test_answer_free (&ans);

   mt_test_own_db_start (&outage_db);
   {
      int64_t deadline = bson_get_monotonic_time () + 30 * 1000 * 1000;
      int status = 0;

      while (status != 200) {
         ASSERT_BEFORE (deadline, "/api/overview to answer 200 after the database came back");
         ans = mt_test_http (w->port, "GET", "/api/overview", "", NULL);
         status = ans.status;
         mt_test_answer_free (&ans);
         if (status != 200) {
            mt_test_nap_ms (100);
         }
      }
   }
}

/* POST /api/action/NAME with the CSRF token: the answer. */
static mt_test_answer_t
act (mt_test_web_t *w, const char *csrf, const char *name, const char *body)
{
   char *hdr = bson_strdup_printf ("X-CSRF-Token: %s\r\nContent-Type: application/json\r\n", csrf);
   char *path = bson_strdup_printf ("/api/action/%s", name);
   mt_test_answer_t ans = mt_test_http (w->port, "POST", path, hdr, body);

   bson_free (hdr);
   bson_free (path);
   return ans;
}

/* Delete by filter as the tasks screen does it: a dry run counts what the
 * filter matches and deletes nothing; then the real call with force
 * deletes those, and only those. */
static void
test_delete_by_filter (void)
{
   mt_test_web_t *w = mt_test_web_start (W ("--allow-actions"));
   char *csrf = csrf_of (w->port, "");
   mt_test_answer_t ans;

   for (int i = 0; i < 3; i++) {
      mt_test_task_insert ("{'queue': 'bulk-q', 'type': 't', 'status': 'FAILED'}");
   }
   mt_test_task_insert ("{'queue': 'bulk-q', 'type': 't', 'status': 'CREATED'}");
   mt_test_task_insert ("{'queue': 'other-q', 'type': 't', 'status': 'FAILED'}");

   ans = act (w, csrf, "delete", "{\"queue\": \"bulk-q\", \"status\": \"FAILED\", \"dry_run\": true, \"force\": true}");
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\"dry_run\" : true");
   ASSERT_CONTAINS (ans.body, "\"done\" : 3");
   mt_test_answer_free (&ans);
   ASSERT_CMPINT (mt_test_count ("{'queue': 'bulk-q', 'status': 'FAILED'}"), ==, 3);

   ans = act (w, csrf, "delete", "{\"queue\": \"bulk-q\", \"status\": \"FAILED\", \"force\": true}");
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\"dry_run\" : false");
   ASSERT_CONTAINS (ans.body, "\"done\" : 3");
   mt_test_answer_free (&ans);
   ASSERT_CMPINT (mt_test_count ("{'queue': 'bulk-q', 'status': 'FAILED'}"), ==, 0);
   ASSERT_CMPINT (mt_test_count ("{'queue': 'bulk-q', 'status': 'CREATED'}"), ==, 1);
   ASSERT_CMPINT (mt_test_count ("{'queue': 'other-q'}"), ==, 1);

   /* An empty filter is refused: no action on every task by accident. */
   ans = act (w, csrf, "delete", "{}");
   ASSERT_CMPINT (ans.status, ==, 400);
   ASSERT_CONTAINS (ans.body, "which tasks?");
   mt_test_answer_free (&ans);
   bson_free (csrf);
}

/* worker-quiet and worker-stop write the command into the worker's
 * registry document; group-start starts a group's first stage (its
 * WAITING task becomes CREATED); sync-start asks for a synchronizer's
 * start; slot-stop of a task holding no slot says so. */
static void
test_worker_group_sync_actions (void)
{
   mt_test_web_t *w = mt_test_web_start (W ("--allow-actions"));
   char *csrf = csrf_of (w->port, ""), *body;
   mt_test_answer_t ans;
   bson_t *doc;
   bson_oid_t group, job, stage;
   char id[25];
   bson_error_t error;

   doc = mt_test_bson ("{'_id': 'W-web', 'status': 'running', 'host': 'h', 'pid': 1, 'queues': ['q'], 'lease_seconds': 3600}");
   BSON_APPEND_DATE_TIME (doc, "heartbeat", (int64_t) time (NULL) * 1000);
   mt_test_insert ("workers", doc);
   bson_destroy (doc);

   ans = act (w, csrf, "worker-quiet", "{\"id\": \"W-web\"}");
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\"command\" : \"quiet\"");
   mt_test_answer_free (&ans);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-web', 'command': 'quiet'}"), ==, 1);
   ans = act (w, csrf, "worker-stop", "{\"id\": \"W-web\", \"grace\": 5}");
   ASSERT_CMPINT (ans.status, ==, 200);
   mt_test_answer_free (&ans);
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'W-web', 'command': 'stop', 'grace': 5}"), ==, 1);
   ans = act (w, csrf, "worker-quiet", "{\"id\": \"W-nobody\"}");
   ASSERT_CMPINT (ans.status, ==, 404);
   ASSERT_CONTAINS (ans.body, "no worker 'W-nobody'");
   mt_test_answer_free (&ans);

   group = mt_test_group_new ("web start", 0);
   job = mt_test_group_add (&group, 1, "echo", "{}", NULL);
   ASSERT (mt_test_status_is (&job, "WAITING"));
   bson_oid_to_string (&group, id);
   body = bson_strdup_printf ("{\"id\": \"%s\"}", id);
   ans = act (w, csrf, "group-start", body);
   bson_free (body);
   ASSERT_CMPINT (ans.status, ==, 200);
   ASSERT_CONTAINS (ans.body, "\"done\" : true");
   mt_test_answer_free (&ans);
   ASSERT (mt_test_status_is (&job, "CREATED"));

   ASSERT_OR_PRINT (mt_sync_stage_create (mt_test_client (), mt_test_db (), "web-stage", "echo", "sq", NULL, NULL, NULL,
                                          &stage, &error),
                    error);
   ASSERT_OR_PRINT (mt_sync_create (mt_test_client (), mt_test_db (), "web-sync", &stage, &error), error);
   ans = act (w, csrf, "sync-start", "{\"id\": \"web-sync\"}");
   ASSERT_CMPINT (ans.status, ==, 200);
   mt_test_answer_free (&ans);
   ans = act (w, csrf, "sync-start", "{\"id\": \"no-such-sync\"}");
   ASSERT_CMPINT (ans.status, >=, 400);
   mt_test_answer_free (&ans);

   bson_oid_to_string (&job, id);
   body = bson_strdup_printf ("{\"id\": \"%s\"}", id);
   ans = act (w, csrf, "slot-stop", body);
   bson_free (body);
   ASSERT_CMPINT (ans.status, >=, 400);
   ASSERT_CONTAINS (ans.body, "\"error\"");
   mt_test_answer_free (&ans);
   bson_free (csrf);
}


/* The text of `path`, or fails the test. bson_free it. */
static char *
read_text (const char *path)
{
   FILE *in = fopen (path, "r");
   char *text = bson_malloc0 (65536);

   ASSERT (in);
   ASSERT (fread (text, 1, 65535, in) > 0);
   fclose (in);
   return text;
}

/* mtask-web.service as configured by meson, with the built mtask-web in
 * place of the installed one, passes systemd-analyze verify without a
 * word; it reads the URI from its environment file, the token as a
 * credential, and is hardened as the worker's unit. */
static void
test_unit_verifies (void)
{
   const char *web = mt_test_env ("MTASK_WEB");
   const char *analyze = access ("/usr/bin/systemd-analyze", X_OK) == 0 ? "/usr/bin/systemd-analyze"
                         : access ("/bin/systemd-analyze", X_OK) == 0   ? "/bin/systemd-analyze"
                                                                       : NULL;
   char dir[] = "/tmp/mtask-web-unit-XXXXXX";
   char *build = bson_strdup (web), *slash, *unit_path, *text, *copy_path, *out = NULL, *exec;
   FILE *copy;
   int code;

   /* BUILD/web/mtask-web -> BUILD/dist/systemd/mtask-web.service */
   for (int i = 0; i < 2; i++) {
      slash = strrchr (build, '/');
      ASSERT (slash);
      *slash = '\0';
   }
   unit_path = bson_strdup_printf ("%s/dist/systemd/mtask-web.service", build);
   text = read_text (unit_path);
   ASSERT_CONTAINS (text, "EnvironmentFile=/etc/mtask/web.env");
   ASSERT_CONTAINS (text, "LoadCredential=web-token:/etc/mtask/web-token");
   ASSERT_CONTAINS (text, "--token-file %d/web-token");
   ASSERT_CONTAINS (text, "RestartPreventExitStatus=2");
   ASSERT_CONTAINS (text, "DynamicUser=yes");
   ASSERT_CONTAINS (text, "NoNewPrivileges=yes");
   ASSERT_CONTAINS (text, "ProtectSystem=strict");
   ASSERT_CONTAINS (text, "PrivateTmp=yes");
   ASSERT_CONTAINS (text, "MemoryDenyWriteExecute=yes");
   ASSERT (!strstr (text, "--uri")); /* the URI stays in the env file */
   if (!analyze) {
      bson_free (text);
      bson_free (unit_path);
      bson_free (build);
      mt_test_skip ("systemd-analyze is not installed: the unit's syntax is not verified here");
   }
   ASSERT (mkdtemp (dir));
   copy_path = bson_strdup_printf ("%s/mtask-web.service", dir);
   copy = fopen (copy_path, "w");
   ASSERT (copy);
   exec = strstr (text, "ExecStart=");
   ASSERT (exec && strstr (exec, "/mtask-web "));
   fprintf (copy, "%.*sExecStart=%s%s", (int) (exec - text), text, web, strstr (exec, "/mtask-web ") + strlen ("/mtask-web"));
   fclose (copy);
   code = mt_test_run (W (analyze, "verify", "--man=no", copy_path), 60 * 1000, &out);
   unlink (copy_path);
   rmdir (dir);
   if (code != 0 || out[0]) {
      printf ("# systemd-analyze verify:\n# %s\n", out);
   }
   ASSERT_CMPINT (code, ==, 0);
   ASSERT_CMPSTR (out, "");
   bson_free (out);
   bson_free (copy_path);
   bson_free (text);
   bson_free (unit_path);
   bson_free (build);
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
   mt_test_add ("/web/base_path", test_base_path);
   mt_test_add ("/web/outage", test_outage);
   mt_test_add ("/web/delete_by_filter", test_delete_by_filter);
   mt_test_add ("/web/worker_group_sync_actions", test_worker_group_sync_actions);
   mt_test_add ("/web/unit_verifies", test_unit_verifies);
   return mt_test_main (argc, argv);
}
