/* A worker as an operator runs it under a service manager (issue 16, item
 * 8): --check before a start, the systemd unit, JSON logs a collector can
 * parse line by line, text logs a task cannot forge lines in. */
#include "mt-test.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* mtask-worker with the test's server, database and plugins, and `extra`;
 * runs it to its end and returns its exit code, its output in *out. */
static int
worker_run (const char *const *extra, char **out)
{
   const char *argv[48];
   size_t n = 0;

   argv[n++] = mt_test_env ("MTASK_WORKER");
   argv[n++] = "--uri";
   argv[n++] = mt_test_uri ();
   argv[n++] = "--db";
   argv[n++] = mt_test_db ();
   argv[n++] = "--plugins";
   argv[n++] = mt_test_env ("MTASK_PLUGIN_DIR");
   for (size_t i = 0; extra && extra[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = extra[i];
   }
   argv[n] = NULL;
   return mt_test_run (argv, 60 * 1000, out);
}

/* Whether the test's database holds a `tasks` collection. */
static bool
has_tasks_collection (void)
{
   mongoc_database_t *db = mongoc_client_get_database (mt_test_client (), mt_test_db ());
   bson_error_t error = {0};
   bool has = mongoc_database_has_collection (db, "tasks", &error);

   ASSERT_OR_PRINT (error.code == 0, error);
   mongoc_database_destroy (db);
   return has;
}

static void
test_check_good (void)
{
   bson_oid_t id = mt_test_enqueue ("general", "echo", "{}", NULL);
   char *out = NULL;
   int code = worker_run (W ("--queues", "general,reports", "--pid", "CHECK-1", "--concurrency", "3", "--check"), &out);

   if (code != 0) {
      printf ("# %s", out);
   }
   ASSERT_CMPINT (code, ==, 0);
   ASSERT_CONTAINS (out, "mtask-worker --check: ready to start");
   ASSERT_CONTAINS (out, "CHECK-1");
   ASSERT_CONTAINS (out, "'tasks' collection and its indexes in place");
   ASSERT_CONTAINS (out, "general, reports");
   ASSERT_CONTAINS (out, "echo");
   ASSERT_CONTAINS (out, "fail");
   ASSERT_CONTAINS (out, "3 thread(s)");
   /* A check claims nothing and registers no worker. */
   ASSERT (mt_test_status_is (&id, "CREATED"));
   ASSERT_CMPINT (mt_test_count_in ("workers", "{'_id': 'CHECK-1'}"), ==, 0);
   /* ... and the indexes a start needs are there. */
   ASSERT_CMPINT (mt_test_count_in ("tasks", "{}"), ==, 1);
   bson_free (out);
}

static void
test_check_new_database (void)
{
   char *out = NULL;
   int code = worker_run (W ("--queues", "general", "--check"), &out);

   ASSERT_CMPINT (code, ==, 0);
   ASSERT_CONTAINS (out, "no 'tasks' collection yet");
   ASSERT_CONTAINS (out, "check --db");
   /* A mistyped --db leaves nothing behind. */
   ASSERT (!has_tasks_collection ());
   bson_free (out);
}

static void
test_check_bad_server (void)
{
   char *out = NULL;
   int code = mt_test_run (W (mt_test_env ("MTASK_WORKER"),
                              "--uri",
                              "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
                              "--db",
                              mt_test_db (),
                              "--plugins",
                              mt_test_env ("MTASK_PLUGIN_DIR"),
                              "--queues",
                              "general",
                              "--check"),
                           60 * 1000,
                           &out);

   ASSERT_CMPINT (code, ==, 1);
   ASSERT_CONTAINS (out, "mtask-worker: --check: cannot reach the database");
   ASSERT_CONTAINS (out, "check the URI");
   ASSERT (!strstr (out, "ready to start"));
   bson_free (out);
}

static void
test_check_bad_plugins (void)
{
   char dir[] = "/tmp/mtask-ops-XXXXXX";
   char *out = NULL;
   int code;

   ASSERT (mkdtemp (dir));
   code = mt_test_run (W (mt_test_env ("MTASK_WORKER"),
                          "--uri",
                          mt_test_uri (),
                          "--db",
                          mt_test_db (),
                          "--plugins",
                          dir,
                          "--queues",
                          "general",
                          "--check"),
                       60 * 1000,
                       &out);
   rmdir (dir);
   ASSERT_CMPINT (code, ==, 2);
   ASSERT_CONTAINS (out, "no task plugins found");
   ASSERT (!strstr (out, "ready to start"));
   bson_free (out);

   code = worker_run (W ("--queues", "general", "--check", "--concurrency", "zero"), &out);
   ASSERT_CMPINT (code, ==, 2);
   ASSERT_CONTAINS (out, "--concurrency: 'zero' is not a whole number");
   bson_free (out);
}

/* The configured unit, with the built worker in place of the installed
 * one, passes systemd-analyze verify without a warning. */
static void
test_unit_verifies (void)
{
   const char *worker = mt_test_env ("MTASK_WORKER");
   char *build = bson_strdup (worker), *slash, *unit_path, *text = NULL, *out = NULL, *dir_path, *copy_path;
   char dir[] = "/tmp/mtask-unit-XXXXXX";
   FILE *in, *copy;
   char line[1024];
   int code;

   const char *analyze = access ("/usr/bin/systemd-analyze", X_OK) == 0 ? "/usr/bin/systemd-analyze"
                         : access ("/bin/systemd-analyze", X_OK) == 0   ? "/bin/systemd-analyze"
                                                                       : NULL;

   if (!analyze) {
      bson_free (build);
      mt_test_skip ("systemd-analyze is not installed: the unit's syntax is not verified here");
   }
   /* BUILD/worker/mtask-worker -> BUILD/dist/systemd/mtask-worker@.service */
   slash = strrchr (build, '/');
   ASSERT (slash);
   *slash = '\0';
   slash = strrchr (build, '/');
   ASSERT (slash);
   *slash = '\0';
   unit_path = bson_strdup_printf ("%s/dist/systemd/mtask-worker@.service", build);
   in = fopen (unit_path, "r");
   ASSERT (in);
   ASSERT (mkdtemp (dir));
   dir_path = bson_strdup (dir);
   copy_path = bson_strdup_printf ("%s/mtask-worker@ops.service", dir);
   copy = fopen (copy_path, "w");
   ASSERT (copy);
   while (fgets (line, sizeof line, in)) {
      char *exec = strstr (line, "/mtask-worker ");

      if (!strncmp (line, "Exec", 4) && exec) {
         char *eq = strchr (line, '=');

         fprintf (copy, "%.*s%s%s", (int) (eq - line + 1), line, worker, exec + strlen ("/mtask-worker"));
      } else {
         fputs (line, copy);
      }
   }
   fclose (in);
   fclose (copy);
   code = mt_test_run (W (analyze, "verify", "--man=no", copy_path), 60 * 1000, &out);
   unlink (copy_path);
   rmdir (dir_path);
   if (code != 0 || out[0]) {
      printf ("# systemd-analyze verify:\n# %s\n", out);
   }
   ASSERT_CMPINT (code, ==, 0);
   ASSERT_CMPSTR (out, "");

   /* What the issue asks of it, in the file as installed. */
   bson_free (out);
   in = fopen (unit_path, "r");
   ASSERT (in);
   text = bson_malloc0 (65536);
   ASSERT (fread (text, 1, 65535, in) > 0);
   fclose (in);
   ASSERT_CONTAINS (text, "EnvironmentFile=/etc/mtask/%i.env");
   ASSERT_CONTAINS (text, "KillSignal=SIGTERM");
   ASSERT_CONTAINS (text, "--grace 30");
   ASSERT_CONTAINS (text, "TimeoutStopSec=45"); /* above the grace */
   ASSERT_CONTAINS (text, "Restart=on-failure");
   ASSERT_CONTAINS (text, "NoNewPrivileges=yes");
   ASSERT_CONTAINS (text, "ProtectSystem=strict");
   ASSERT_CONTAINS (text, "PrivateTmp=yes");
   ASSERT_CONTAINS (text, "ExecStartPre=");
   ASSERT_CONTAINS (text, "--check");
   ASSERT (!strstr (text, "--uri")); /* the URI stays in the env file */
   bson_free (text);
   bson_free (unit_path);
   bson_free (copy_path);
   bson_free (dir_path);
   bson_free (build);
}

/* Each line of `text` parses as a JSON object; returns how many lines
 * there are, and the first that has `field` in *found (bson_destroy it). */
static int
json_lines (const char *text, const char *field, bson_t *found)
{
   int n = 0;
   bool have = false;

   bson_init (found);
   for (const char *p = text; *p;) {
      const char *end = strchr (p, '\n');
      size_t len = end ? (size_t) (end - p) : strlen (p);
      bson_error_t error;
      bson_t *doc = bson_new_from_json ((const uint8_t *) p, (ssize_t) len, &error);

      if (!doc) {
         mt_test_fail (__FILE__, __LINE__, "log line %d is not JSON (%s): '%.*s'", n + 1, error.message, (int) len, p);
      }
      ASSERT (bson_has_field (doc, "ts") && bson_has_field (doc, "level") && bson_has_field (doc, "msg"));
      if (!have && field && bson_has_field (doc, field)) {
         bson_destroy (found);
         bson_copy_to (doc, found);
         have = true;
      }
      bson_destroy (doc);
      n++;
      p = end ? end + 1 : p + len;
   }
   return n;
}

static void
test_json_every_line (void)
{
   bson_oid_t id = mt_test_enqueue ("general", "fail", "{'message': 'broken\\nsecond line'}", "{'max_attempts': 1}");
   char id_str[25];
   bson_t with_task;
   char *out = NULL;
   pid_t pid;
   int code;

   bson_oid_to_string (&id, id_str);
   pid = mt_test_worker_once (W ("--queues", "general", "--log-format", "json"), 60 * 1000);
   out = mt_test_output (pid);
   ASSERT_CMPINT (json_lines (out, "task_id", &with_task), >=, 3);
   /* The task's lines carry its fields. */
   ASSERT_CMPSTR (mt_test_str (&with_task, "task_id"), id_str);
   ASSERT_CMPSTR (mt_test_str (&with_task, "type"), "fail");
   ASSERT_CMPSTR (mt_test_str (&with_task, "queue"), "general");
   ASSERT_CMPINT (mt_test_int (&with_task, "attempt"), ==, 1);
   bson_destroy (&with_task);
   ASSERT (mt_test_status_is (&id, "FAILED"));
   bson_free (out);

   /* Fatal errors too: a bad argument, a worker that cannot start. */
   code = worker_run (W ("--queues", "general", "--log-format", "json", "--concurrency", "zero"), &out);
   ASSERT_CMPINT (code, ==, 2);
   ASSERT_CMPINT (json_lines (out, NULL, &with_task), ==, 1);
   bson_destroy (&with_task);
   ASSERT_CONTAINS (out, "'zero' is not a whole number");
   bson_free (out);

   code = mt_test_run (W (mt_test_env ("MTASK_WORKER"),
                          "--log-format=json",
                          "--uri",
                          "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
                          "--db",
                          mt_test_db (),
                          "--plugins",
                          mt_test_env ("MTASK_PLUGIN_DIR"),
                          "--queues",
                          "general",
                          "--once"),
                       60 * 1000,
                       &out);
   ASSERT_CMPINT (code, ==, 1);
   ASSERT_CMPINT (json_lines (out, NULL, &with_task), >=, 1);
   bson_destroy (&with_task);
   ASSERT_CONTAINS (out, "\"level\" : \"error\"");
   bson_free (out);
}

/* Each line of a text log starts with a timestamp (2026-11-28T09:17:43.896Z). */
static void
assert_text_lines (const char *text)
{
   int n = 0;

   for (const char *p = text; *p; n++) {
      const char *end = strchr (p, '\n');
      size_t len = end ? (size_t) (end - p) : strlen (p);

      if (len < 24 || p[4] != '-' || p[10] != 'T' || p[23] != 'Z') {
         mt_test_fail (__FILE__, __LINE__, "log line %d is not one of the worker's: '%.*s'", n + 1, (int) len, p);
      }
      p = end ? end + 1 : p + len;
   }
}

static void
test_text_not_forged (void)
{
   /* A message that, printed raw, would add a line of its own. */
   bson_oid_t id = mt_test_enqueue ("general",
                                    "fail",
                                    "{'message': 'boom\\n2026-01-01T00:00:00.000Z error   forged: worker compromised\\r\\u001b[2K'}",
                                    "{'max_attempts': 1}");
   pid_t pid = mt_test_worker_once (W ("--queues", "general"), 60 * 1000);
   char *out = mt_test_output (pid);

   assert_text_lines (out);
   /* The message is there, escaped, on the line of the failure. */
   ASSERT_CONTAINS (out, "boom\\n2026-01-01T00:00:00.000Z error   forged: worker compromised\\r\\x1b[2K");
   ASSERT (!strstr (out, "\nforged") && !strstr (out, "\n2026-01-01T00:00:00.000Z"));
   ASSERT (mt_test_status_is (&id, "FAILED"));
   bson_free (out);
}

/* Whether process `pid` has libsystemd mapped: a worker built with it. */
static bool
maps_libsystemd (pid_t pid)
{
   char path[64], line[1024];
   FILE *maps;
   bool found = false;

   bson_snprintf (path, sizeof path, "/proc/%d/maps", (int) pid);
   maps = fopen (path, "r");
   ASSERT (maps);
   while (!found && fgets (line, sizeof line, maps)) {
      found = strstr (line, "libsystemd") != NULL;
   }
   fclose (maps);
   return found;
}

typedef struct {
   int fd;
   char path[108];
} notify_socket_t;

static void
notify_socket_close (void *data)
{
   notify_socket_t *sock = data;

   close (sock->fd);
   unlink (sock->path);
}

/* Appends the datagrams that arrived on `fd` to `got`. */
static const char *
notify_read (int fd, char *got, size_t size)
{
   char buf[512];
   ssize_t n;

   while ((n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT)) > 0) {
      buf[n] = '\0';
      bson_strncpy (got + strlen (got), buf, size - strlen (got));
      bson_strncpy (got + strlen (got), "|", size - strlen (got));
   }
   return got;
}

/* Under Type=notify: READY=1 once started, STOPPING=1 at SIGTERM. */
static void
test_sd_notify (void)
{
   static notify_socket_t sock;
   struct sockaddr_un addr;
   char got[4096] = "";
   pid_t pid;

   memset (&addr, 0, sizeof addr);
   addr.sun_family = AF_UNIX;
   bson_snprintf (sock.path, sizeof sock.path, "/tmp/mtask-notify-%d", (int) getpid ());
   bson_strncpy (addr.sun_path, sock.path, sizeof addr.sun_path);
   unlink (sock.path);
   sock.fd = socket (AF_UNIX, SOCK_DGRAM, 0);
   ASSERT (sock.fd >= 0);
   ASSERT (bind (sock.fd, (struct sockaddr *) &addr, sizeof addr) == 0);
   mt_test_defer (notify_socket_close, &sock);

   setenv ("NOTIFY_SOCKET", sock.path, 1);
   pid = mt_test_worker_ready (W ("--queues", "general"));
   unsetenv ("NOTIFY_SOCKET");
   if (!maps_libsystemd (pid)) {
      mt_test_worker_stop (pid);
      mt_test_skip ("mtask-worker was built without libsystemd: it sends no sd_notify (the unit is Type=exec)");
   }
   WAIT_UNTIL (strstr (notify_read (sock.fd, got, sizeof got), "READY=1"), 10 * 1000);
   ASSERT (!strstr (got, "STOPPING=1"));
   mt_test_worker_stop (pid);
   WAIT_UNTIL (strstr (notify_read (sock.fd, got, sizeof got), "STOPPING=1"), 10 * 1000);
   ASSERT_IN_ORDER (got, "READY=1", "STOPPING=1");
}

int
main (int argc, char **argv)
{
   mt_test_add ("/ops/check/good", test_check_good);
   mt_test_add ("/ops/check/new_database", test_check_new_database);
   mt_test_add ("/ops/check/bad_server", test_check_bad_server);
   mt_test_add ("/ops/check/bad_plugins", test_check_bad_plugins);
   mt_test_add ("/ops/unit/verify", test_unit_verifies);
   mt_test_add ("/ops/unit/sd_notify", test_sd_notify);
   mt_test_add ("/ops/log/json_every_line", test_json_every_line);
   mt_test_add ("/ops/log/text_not_forged", test_text_not_forged);
   return mt_test_main (argc, argv);
}
