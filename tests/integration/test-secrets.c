/* What an operator must be able to trust (issue 16, items 5 to 7): a
 * password given by MTASK_URI or --uri-file is in no command line and no
 * message; plugin directories others can write are refused before any of
 * their code runs; queue names no worker could serve are refused; --types
 * limits what a worker runs; a worker says when its database has no tasks
 * yet. */
#include "mt-test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASSWORD "Sesame-4e1f9b77c2"
#ifndef MT_QUEUE_NAME_MAX
#define MT_QUEUE_NAME_MAX 128 /* <mtask/mtask.h> of 0.5 */
#endif

/* The test server's URI with "mtuser:PASSWORD@" in it (bson_free it). */
static char *
uri_with_password (void)
{
   const char *uri = mt_test_uri ();
   const char *hosts = strstr (uri, "://");

   ASSERT (hosts);
   return bson_strdup_printf ("%.*smtuser:%s@%s", (int) (hosts + 3 - uri), uri, PASSWORD, hosts + 3);
}

/* A file holding `text` with `mode`, in a directory of the test's; its
 * path (bson_free it). */
static char *
write_file (const char *dir, const char *name, const char *text, mode_t mode)
{
   char *path = bson_strdup_printf ("%s/%s", dir, name);
   int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

   ASSERT (fd >= 0);
   ASSERT_CMPINT ((int) write (fd, text, strlen (text)), ==, (int) strlen (text));
   close (fd);
   ASSERT_CMPINT (chmod (path, mode), ==, 0);
   return path;
}

static void
remove_tree (void *data)
{
   char *cmd = bson_strdup_printf ("rm -rf '%s'", (const char *) data);

   if (system (cmd) != 0) {
      /* what is left is in /tmp, named for this test */
   }
   bson_free (cmd);
   bson_free (data);
}

/* A directory of the test's, removed when it ends. */
static char *
test_dir (void)
{
   char *dir = bson_strdup ("/tmp/mt-secrets-XXXXXX");

   ASSERT (mkdtemp (dir));
   mt_test_defer (remove_tree, bson_strdup (dir));
   return dir;
}

/* The NUL-separated command line of a live process, NULs made spaces. */
static char *
cmdline (pid_t pid)
{
   char path[64], buf[8192];
   ssize_t n;
   int fd;

   snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pid);
   fd = open (path, O_RDONLY);
   if (fd < 0) {
      return bson_strdup ("");
   }
   n = read (fd, buf, sizeof buf - 1);
   close (fd);
   n = n < 0 ? 0 : n;
   for (ssize_t i = 0; i < n; i++) {
      buf[i] = buf[i] ? buf[i] : ' ';
   }
   buf[n] = '\0';
   return bson_strdup (buf);
}

/* Runs mtask-worker with `args` only (no --uri of the harness's), with
 * MTASK_URI set to `env_uri` (unset when NULL). */
static pid_t
worker_plain (const char *env_uri, const char *const *args)
{
   const char *argv[40];
   size_t n = 0;
   pid_t pid;

   argv[n++] = mt_test_env ("MTASK_WORKER");
   for (size_t i = 0; args[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = args[i];
   }
   argv[n] = NULL;
   if (env_uri) {
      setenv ("MTASK_URI", env_uri, 1);
   }
   pid = mt_test_spawn (argv);
   unsetenv ("MTASK_URI");
   return pid;
}

/* mtaskctl with `args` only, MTASK_URI as worker_plain; exit code, output
 * in *out. */
static int
ctl_plain (const char *env_uri, char **out, const char *const *args)
{
   const char *argv[40];
   size_t n = 0;
   int rc;

   argv[n++] = mt_test_env ("MTASK_CTL");
   for (size_t i = 0; args[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = args[i];
   }
   argv[n] = NULL;
   if (env_uri) {
      setenv ("MTASK_URI", env_uri, 1);
   }
   rc = mt_test_run (argv, 30000, out);
   unsetenv ("MTASK_URI");
   return rc;
}

static void
assert_no_password (const char *what, const char *text)
{
   if (strstr (text, PASSWORD)) {
      mt_test_fail (__FILE__, __LINE__, "%s shows the password: %s", what, text);
   }
}

/* MTASK_URI and --uri-file are used by both programs: a worker finds its
 * tasks there, mtaskctl enqueues there. */
static void
test_uri_from_env_and_file (void)
{
   char *dir = test_dir ();
   char *line = bson_strdup_printf ("%s\n", mt_test_uri ());
   char *file = write_file (dir, "uri", line, 0600);
   char *out = NULL;
   bson_oid_t by_env, by_file;
   pid_t pid;

   ASSERT_CMPINT (ctl_plain (mt_test_uri (), &out, W ("--db", mt_test_db (), "enqueue", "--queue", "q", "--type", "echo")), ==, 0);
   ASSERT_CMPINT ((int) mt_test_count ("{'queue': 'q', 'type': 'echo'}"), ==, 1);
   bson_free (out);
   ASSERT_CMPINT (ctl_plain (NULL, &out, W ("--uri-file", file, "--db", mt_test_db (), "stats")), ==, 0);
   bson_free (out);

   by_env = mt_test_enqueue ("q", "echo", "{'via': 'env'}", NULL);
   pid = worker_plain (mt_test_uri (),
                       W ("--db", mt_test_db (), "--plugins", mt_test_env ("MTASK_PLUGIN_DIR"), "--queues", "q", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT (mt_test_status_is (&by_env, MT_STATUS_FINISHED));

   by_file = mt_test_enqueue ("q", "echo", "{'via': 'file'}", NULL);
   pid = worker_plain (NULL,
                       W ("--uri-file", file, "--db", mt_test_db (), "--plugins", mt_test_env ("MTASK_PLUGIN_DIR"), "--queues", "q",
                          "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT (mt_test_status_is (&by_file, MT_STATUS_FINISHED));
   ASSERT (mt_test_output_contains (pid, "queues: q"));

   /* A file its group or others may read is refused, by both. */
   ASSERT_CMPINT (chmod (file, 0644), ==, 0);
   pid = worker_plain (NULL, W ("--uri-file", file, "--db", mt_test_db (), "--queues", "q", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
   ASSERT (mt_test_output_contains (pid, "chmod 600"));
   ASSERT_CMPINT (ctl_plain (NULL, &out, W ("--uri-file", file, "--db", mt_test_db (), "stats")), ==, 2);
   ASSERT_CONTAINS (out, "chmod 600");
   bson_free (out);
   bson_free (file);
   bson_free (line);
   bson_free (dir);
}

/* A password given by MTASK_URI or --uri-file is not in the command line
 * of the running worker, nor in anything either program prints: not when
 * the server refuses it (the test server has no users), not when the URI
 * does not parse. */
static void
test_password_hidden (void)
{
   char *dir = test_dir ();
   char *uri = uri_with_password ();
   char *line = bson_strdup_printf ("%s\n", uri);
   char *file = write_file (dir, "uri", line, 0600);
   char *bad = bson_strdup_printf ("mongodb://mtuser:%s@127.0.0.1:99999/", PASSWORD);
   char *bad_line = bson_strdup_printf ("%s\n", bad);
   char *bad_file = write_file (dir, "bad-uri", bad_line, 0600);
   const char *const *variants[2];
   char *out = NULL;

   variants[0] = W ("--db", mt_test_db (), "--plugins", mt_test_env ("MTASK_PLUGIN_DIR"), "--queues", "q");
   variants[1] = W ("--uri-file", file, "--db", mt_test_db (), "--plugins", mt_test_env ("MTASK_PLUGIN_DIR"), "--queues", "q");
   for (int v = 0; v < 2; v++) {
      pid_t pid = worker_plain (v == 0 ? uri : NULL, variants[v]);
      char *seen = NULL, *output;
      int status = -1;

      /* Its command line once it is the worker's (not the test's, before
       * exec), while it runs or, if it gives up, as it ends. */
      WAIT_UNTIL ((bson_free (seen), seen = cmdline (pid), strstr (seen, "mtask-worker") != NULL) ||
                     mt_test_output_contains (pid, "mtask-worker:"),
                  30000);
      assert_no_password ("/proc/PID/cmdline", seen);
      bson_free (seen);
      /* Until it has tried the server with the password. */
      WAIT_UNTIL (mt_test_output_contains (pid, "uthenticat") || mt_test_output_contains (pid, "started") ||
                     mt_test_output_contains (pid, "mtask-worker:"),
                  30000);
      if (kill (pid, 0) == 0 && !mt_test_output_contains (pid, "mtask-worker:")) {
         kill (pid, SIGTERM);
      }
      status = mt_test_wait_exit (pid, 30000);
      (void) status;
      mt_test_print_output (pid, 4);
      output = mt_test_output (pid);
      assert_no_password ("the worker's output", output);
      bson_free (output);
   }

   /* A URI that does not parse says so, without the password. */
   {
      pid_t pid = worker_plain (bad, W ("--queues", "q"));

      ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
      ASSERT (mt_test_output_contains (pid, "not a valid MongoDB URI"));
      ASSERT (mt_test_output_contains (pid, "mongodb://***@127.0.0.1:99999/"));
      ASSERT (!mt_test_output_contains (pid, "--db is required"));
      out = mt_test_output (pid);
      assert_no_password ("the worker's error", out);
      bson_free (out);
      pid = worker_plain (NULL, W ("--uri-file", bad_file, "--db", "d", "--queues", "q"));
      ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
      ASSERT (mt_test_output_contains (pid, "not a valid MongoDB URI"));
      out = mt_test_output (pid);
      assert_no_password ("the worker's error", out);
      bson_free (out);
   }

   /* mtaskctl: refused by the server, and not parsed. */
   ASSERT_CMPINT (ctl_plain (uri, &out, W ("--db", mt_test_db (), "stats")), !=, 0);
   assert_no_password ("mtaskctl's output", out);
   bson_free (out);
   ASSERT_CMPINT (ctl_plain (NULL, &out, W ("--uri-file", file, "--db", mt_test_db (), "stats")), !=, 0);
   assert_no_password ("mtaskctl's output", out);
   bson_free (out);
   ASSERT_CMPINT (ctl_plain (bad, &out, W ("stats")), ==, 2);
   ASSERT_CONTAINS (out, "not a valid MongoDB URI");
   ASSERT_CONTAINS (out, "***@");
   assert_no_password ("mtaskctl's error", out);
   bson_free (out);
   ASSERT_CMPINT (ctl_plain (NULL, &out, W ("--uri", bad, "stats")), ==, 2);
   assert_no_password ("mtaskctl's error", out);
   bson_free (out);

   bson_free (bad_file);
   bson_free (bad_line);
   bson_free (bad);
   bson_free (file);
   bson_free (line);
   bson_free (uri);
   bson_free (dir);
}

/* Copies the shared object whose constructor writes $MTASK_LOADMARK to
 * `dir`/`name` with `mode`. */
static void
put_marker (const char *dir, const char *name, mode_t mode)
{
   char *from = bson_strdup_printf ("%s/loadmark.marker", mt_test_env ("MTASK_TEST_PLUGIN_DIR"));
   char *to = bson_strdup_printf ("%s/%s", dir, name);
   char *cmd = bson_strdup_printf ("cp '%s' '%s'", from, to);

   ASSERT_CMPINT (system (cmd), ==, 0);
   ASSERT_CMPINT (chmod (to, mode), ==, 0);
   bson_free (cmd);
   bson_free (to);
   bson_free (from);
}

/* A worker given `plugins` as its plugin directory: its exit code. */
static pid_t
worker_with_plugins (const char *plugins)
{
   return worker_plain (mt_test_uri (), W ("--db", mt_test_db (), "--plugins", plugins, "--queues", "q", "--once"));
}

/* A plugin directory or file that others can write, or that another user
 * owns, is refused before dlopen: its constructor never runs. */
static void
test_untrusted_plugins (void)
{
   char *dir = test_dir ();
   char *mark = bson_strdup_printf ("%s/constructor-ran", dir);
   char *open_dir = bson_strdup_printf ("%s/world", dir);
   char *file_dir = bson_strdup_printf ("%s/file", dir);
   char *foreign = bson_strdup_printf ("%s/foreign", dir);
   char *control = bson_strdup_printf ("%s/control", dir);
   pid_t pid;

   setenv ("MTASK_LOADMARK", mark, 1);

   /* The control: a directory of the worker's user's alone; the marker
    * loads (and, no plugin, is refused after). */
   ASSERT_CMPINT (mkdir (control, 0755), ==, 0);
   put_marker (control, "m.so", 0644);
   pid = worker_with_plugins (control);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
   ASSERT (access (mark, F_OK) == 0);
   ASSERT_CMPINT (unlink (mark), ==, 0);

   /* A world-writable directory. */
   ASSERT_CMPINT (mkdir (open_dir, 0755), ==, 0);
   put_marker (open_dir, "m.so", 0644);
   ASSERT_CMPINT (chmod (open_dir, 0777), ==, 0);
   pid = worker_with_plugins (open_dir);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
   ASSERT (mt_test_output_contains (pid, "writable by every user (mode 0777)"));
   ASSERT (mt_test_output_contains (pid, "chmod go-w"));
   ASSERT (access (mark, F_OK) != 0);

   /* A group-writable plugin in a good directory. */
   ASSERT_CMPINT (mkdir (file_dir, 0755), ==, 0);
   put_marker (file_dir, "m.so", 0664);
   pid = worker_with_plugins (file_dir);
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
   ASSERT (mt_test_output_contains (pid, "/m.so' is writable by its group (mode 0664)"));
   ASSERT (access (mark, F_OK) != 0);

   /* A directory another user owns (root can make one; others skip). */
   ASSERT_CMPINT (mkdir (foreign, 0755), ==, 0);
   put_marker (foreign, "m.so", 0644);
   if (geteuid () == 0 && chown (foreign, 65534, 65534) == 0) {
      pid = worker_with_plugins (foreign);
      ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
      ASSERT (mt_test_output_contains (pid, "is owned by uid 65534"));
      ASSERT (access (mark, F_OK) != 0);
   }
   unsetenv ("MTASK_LOADMARK");
   bson_free (control);
   bson_free (foreign);
   bson_free (file_dir);
   bson_free (open_dir);
   bson_free (mark);
   bson_free (dir);
}

/* Queue names a worker could never serve are refused: by the library, by
 * mtaskctl enqueue, by --queues. */
static void
test_bad_queue_names (void)
{
   static const char *const names[] = {"a,b", "two words", "tab\there", "nl\nhere", "bad\xff", ""};
   char long_name[MT_QUEUE_NAME_MAX + 2];
   bson_error_t error;
   bson_oid_t id;
   char *out = NULL;
   pid_t pid;

   memset (long_name, 'q', sizeof long_name - 1);
   long_name[sizeof long_name - 1] = '\0';
   for (size_t i = 0; i < sizeof names / sizeof names[0] + 1; i++) {
      const char *name = i < sizeof names / sizeof names[0] ? names[i] : long_name;

      ASSERT (!mt_enqueue (mt_test_client (), mt_test_db (), name, "echo", NULL, NULL, &id, &error));
      ASSERT_CMPINT ((int) error.domain, ==, MT_ERROR_CONFIG);
      ASSERT_CONTAINS (error.message, name[0] ? "queue name" : "needs a queue");
      if (name[0]) {
         ASSERT_CMPINT (ctl_plain (mt_test_uri (), &out, W ("--db", mt_test_db (), "enqueue", "--queue", name, "--type", "echo")), ==, 2);
         ASSERT_CONTAINS (out, "queue name");
         bson_free (out);
      }
   }
   ASSERT_CMPINT ((int) mt_test_count ("{}"), ==, 0);

   pid = mt_test_worker (W ("--queues", "good", "bad\x1b[31m", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
   ASSERT (mt_test_output_contains (pid, "'bad\\x1B[31m' holds a control character"));
   pid = mt_test_worker (W ("--queues", long_name, "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
   ASSERT (mt_test_output_contains (pid, "is too long"));
}

/* --types: a worker runs only the types named; a type without a plugin
 * stops the start. */
static void
test_types_allow_list (void)
{
   bson_oid_t echo = mt_test_enqueue ("q", "echo", "{}", NULL);
   bson_oid_t fail = mt_test_enqueue ("q", "fail", "{}", NULL);
   pid_t pid;

   pid = mt_test_worker_once (W ("--queues", "q", "--types", "echo", "--once"), 30000);
   ASSERT (mt_test_output_contains (pid, "task types: echo;"));
   ASSERT (mt_test_status_is (&echo, MT_STATUS_FINISHED));
   ASSERT (mt_test_status_is (&fail, MT_STATUS_CREATED));

   pid = mt_test_worker (W ("--queues", "q", "--types", "echo,nosuch", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 2);
   ASSERT (mt_test_output_contains (pid, "task type 'nosuch' of --types has no plugin"));
   ASSERT (mt_test_status_is (&fail, MT_STATUS_CREATED));
}

/* A worker on a database without a tasks collection says so (a mistyped
 * --db); on one with it, it does not. */
static void
test_warns_without_tasks (void)
{
   char *fresh = bson_strdup_printf ("%s_empty", mt_test_db ());
   const char *warning = "has no 'tasks' collection yet";
   pid_t pid;

   pid = worker_plain (mt_test_uri (), W ("--db", fresh, "--plugins", mt_test_env ("MTASK_PLUGIN_DIR"), "--queues", "q", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT (mt_test_output_contains (pid, warning));
   ASSERT (mt_test_output_contains (pid, fresh));
   pid = worker_plain (mt_test_uri (), W ("--db", fresh, "--plugins", mt_test_env ("MTASK_PLUGIN_DIR"), "--queues", "q", "--once"));
   ASSERT_CMPINT (mt_test_exit_code (mt_test_wait_exit (pid, 30000)), ==, 0);
   ASSERT (!mt_test_output_contains (pid, warning));
   {
      mongoc_database_t *db = mongoc_client_get_database (mt_test_client (), fresh);

      mongoc_database_drop (db, NULL);
      mongoc_database_destroy (db);
   }
   bson_free (fresh);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/secrets/uri_from_env_and_file", test_uri_from_env_and_file);
   mt_test_add ("/secrets/password_hidden", test_password_hidden);
   mt_test_add ("/secrets/untrusted_plugins", test_untrusted_plugins);
   mt_test_add ("/secrets/bad_queue_names", test_bad_queue_names);
   mt_test_add ("/secrets/types_allow_list", test_types_allow_list);
   mt_test_add ("/secrets/warns_without_tasks", test_warns_without_tasks);
   return mt_test_main (argc, argv);
}
