#include "mt-test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
   const char *path;
   mt_test_fn fn;
} test_t;

static test_t tests[256];
static size_t n_tests;
static jmp_buf test_jump;
static char skip_reason[256];
static const char *current;
static int db_counter;
static char db_name[128];

/* Processes spawned by the current test, killed when it ends. */
typedef struct {
   pid_t pid;
   char path[256];
} child_t;
static child_t children[64];
static size_t n_children;

void
mt_test_add (const char *path, mt_test_fn fn)
{
   if (n_tests == sizeof tests / sizeof tests[0]) {
      fprintf (stderr, "too many tests\n");
      abort ();
   }
   tests[n_tests].path = path;
   tests[n_tests].fn = fn;
   n_tests++;
}

void
mt_test_fail (const char *file, int line, const char *format, ...)
{
   va_list args;

   fprintf (stdout, "# %s:%d: ", file, line);
   va_start (args, format);
   vfprintf (stdout, format, args);
   va_end (args);
   fprintf (stdout, "\n");
   fflush (stdout);
   longjmp (test_jump, 1);
}

void
mt_test_skip (const char *reason)
{
   bson_strncpy (skip_reason, reason, sizeof skip_reason);
   longjmp (test_jump, 2);
}

void
mt_test_nap_ms (int ms)
{
   struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};

   while (nanosleep (&ts, &ts) != 0 && errno == EINTR) {
   }
}

const char *
mt_test_env (const char *name)
{
   const char *value = getenv (name);

   if (!value || !value[0]) {
      fprintf (stdout, "# environment variable %s is not set; run the tests with 'meson test'\n", name);
      fflush (stdout);
      exit (1);
   }
   return value;
}

static void
reap_children (void)
{
   for (size_t i = 0; i < n_children; i++) {
      if (children[i].pid > 0) {
         int status;

         if (waitpid (children[i].pid, &status, WNOHANG) == 0) {
            kill (children[i].pid, SIGKILL);
            waitpid (children[i].pid, &status, 0);
         }
         unlink (children[i].path);
      }
   }
   n_children = 0;
}

static mongoc_client_t *client;
static char *server_uri;
static char server_port[16];
static pid_t devdb_pid;

static void
stop_devdb (void)
{
   if (devdb_pid > 0) {
      int status;
      kill (devdb_pid, SIGTERM);
      waitpid (devdb_pid, &status, 0);
      devdb_pid = 0;
   }
}

const char *
mt_test_uri (void)
{
   const char *env;

   if (server_uri) {
      return server_uri;
   }
   env = getenv ("MTASK_TEST_URI");
   if (env && env[0]) {
      server_uri = bson_strdup (env);
   } else {
      /* No server for the run: start our own, once. */
      const char *devdb = mt_test_env ("MTASK_DEVDB");
      int out[2];
      char line[256] = "";
      size_t len = 0;
      posix_spawn_file_actions_t actions;
      char *argv[] = {(char *) devdb, "--port", "0", "--memory", NULL};

      if (pipe (out) != 0) {
         abort ();
      }
      posix_spawn_file_actions_init (&actions);
      posix_spawn_file_actions_adddup2 (&actions, out[1], 1);
      posix_spawn_file_actions_addclose (&actions, out[0]);
      if (posix_spawn (&devdb_pid, devdb, &actions, NULL, argv, environ) != 0) {
         fprintf (stdout, "# cannot start %s\n", devdb);
         exit (1);
      }
      posix_spawn_file_actions_destroy (&actions);
      close (out[1]);
      while (len < sizeof line - 1 && read (out[0], line + len, 1) == 1 && line[len] != '\n') {
         len++;
      }
      line[len] = '\0';
      close (out[0]);
      if (strncmp (line, "READY ", 6) != 0) {
         fprintf (stdout, "# %s did not start: '%s'\n", devdb, line);
         exit (1);
      }
      atexit (stop_devdb);
      server_uri = bson_strdup (line + 6);
   }
   {
      const char *colon = strrchr (server_uri, ':');
      size_t n = 0;

      for (colon = colon ? colon + 1 : ""; colon[n] >= '0' && colon[n] <= '9' && n < sizeof server_port - 1; n++) {
         server_port[n] = colon[n];
      }
      server_port[n] = '\0';
   }
   return server_uri;
}

const char *
mt_test_port (void)
{
   mt_test_uri ();
   return server_port;
}

mongoc_client_t *
mt_test_client (void)
{
   if (!client) {
      bson_error_t error;
      mongoc_uri_t *uri = mongoc_uri_new_with_error (mt_test_uri (), &error);

      ASSERT_OR_PRINT (uri, error);
      client = mongoc_client_new_from_uri_with_error (uri, &error);
      mongoc_uri_destroy (uri);
      ASSERT_OR_PRINT (client, error);
      mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   }
   return client;
}

const char *
mt_test_db (void)
{
   return db_name;
}

mongoc_collection_t *
mt_test_tasks (void)
{
   return mongoc_client_get_collection (mt_test_client (), mt_test_db (), "tasks");
}

bson_t *
mt_test_bson (const char *json)
{
   char *copy = bson_strdup (json);
   bson_error_t error;
   bson_t *doc;

   for (char *p = copy; *p; p++) {
      if (*p == '\'') {
         *p = '"';
      }
   }
   doc = bson_new_from_json ((const uint8_t *) copy, -1, &error);
   bson_free (copy);
   ASSERT_OR_PRINT (doc, error);
   return doc;
}

int64_t
mt_test_count (const char *json_filter)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_t *filter = mt_test_bson (json_filter);
   bson_error_t error;
   int64_t n = mongoc_collection_count_documents (tasks, filter, NULL, NULL, NULL, &error);

   bson_destroy (filter);
   mongoc_collection_destroy (tasks);
   ASSERT_OR_PRINT (n >= 0, error);
   return n;
}

bson_t *
mt_test_task (const bson_oid_t *id)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_t filter = BSON_INITIALIZER;
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bson_t *copy = NULL;
   bson_error_t error;

   BSON_APPEND_OID (&filter, "_id", id);
   cursor = mongoc_collection_find_with_opts (tasks, &filter, NULL, NULL);
   if (mongoc_cursor_next (cursor, &doc)) {
      copy = bson_copy (doc);
   }
   bool failed = mongoc_cursor_error (cursor, &error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (tasks);
   bson_destroy (&filter);
   ASSERT_OR_PRINT (!failed, error);
   ASSERT (copy);
   return copy;
}

static bool
find (const bson_t *doc, const char *dotted, bson_iter_t *iter)
{
   bson_iter_t top;

   return bson_iter_init (&top, doc) && bson_iter_find_descendant (&top, dotted, iter);
}

const char *
mt_test_str (const bson_t *doc, const char *dotted)
{
   bson_iter_t iter;

   return find (doc, dotted, &iter) && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : NULL;
}

int64_t
mt_test_int (const bson_t *doc, const char *dotted)
{
   bson_iter_t iter;

   if (!find (doc, dotted, &iter) || !BSON_ITER_HOLDS_NUMBER (&iter)) {
      mt_test_fail (__FILE__, __LINE__, "field '%s' is not a number", dotted);
   }
   return bson_iter_as_int64 (&iter);
}

int64_t
mt_test_date (const bson_t *doc, const char *dotted)
{
   bson_iter_t iter;

   if (!find (doc, dotted, &iter) || !BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      mt_test_fail (__FILE__, __LINE__, "field '%s' is not a date", dotted);
   }
   return bson_iter_date_time (&iter);
}

bool
mt_test_has (const bson_t *doc, const char *dotted)
{
   bson_iter_t iter;

   return find (doc, dotted, &iter);
}

bool
mt_test_is_null (const bson_t *doc, const char *dotted)
{
   bson_iter_t iter;

   return find (doc, dotted, &iter) && BSON_ITER_HOLDS_NULL (&iter);
}

bson_oid_t
mt_test_enqueue (const char *queue, const char *type, const char *params_json, const char *opts_json)
{
   bson_t *params = params_json ? mt_test_bson (params_json) : NULL;
   bson_t *opts = opts_json ? mt_test_bson (opts_json) : NULL;
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_enqueue (mt_test_client (), mt_test_db (), queue, type, params, opts, &id, &error);

   if (params) {
      bson_destroy (params);
   }
   if (opts) {
      bson_destroy (opts);
   }
   ASSERT_OR_PRINT (ok, error);
   return id;
}

char *
mt_test_status (const bson_oid_t *id)
{
   bson_t *doc = mt_test_task (id);
   const char *status = mt_test_str (doc, "status");
   char *copy = bson_strdup (status ? status : "(none)");

   bson_destroy (doc);
   return copy;
}

bool
mt_test_status_is (const bson_oid_t *id, const char *status)
{
   char *s = mt_test_status (id);
   bool same = !strcmp (s, status);

   bson_free (s);
   return same;
}

pid_t
mt_test_spawn (const char *const *argv)
{
   posix_spawn_file_actions_t actions;
   child_t *child;
   int fd;

   ASSERT (n_children < sizeof children / sizeof children[0]);
   child = &children[n_children];
   snprintf (child->path, sizeof child->path, "/tmp/mtask-test-%d-%zu.out", (int) getpid (), n_children);
   fd = open (child->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
   ASSERT (fd >= 0);
   posix_spawn_file_actions_init (&actions);
   posix_spawn_file_actions_adddup2 (&actions, fd, 1);
   posix_spawn_file_actions_adddup2 (&actions, fd, 2);
   int rc = posix_spawn (&child->pid, argv[0], &actions, NULL, (char *const *) argv, environ);
   posix_spawn_file_actions_destroy (&actions);
   close (fd);
   if (rc != 0) {
      mt_test_fail (__FILE__, __LINE__, "cannot start %s: %s", argv[0], strerror (rc));
   }
   n_children++;
   return child->pid;
}

static child_t *
find_child (pid_t pid)
{
   for (size_t i = 0; i < n_children; i++) {
      if (children[i].pid == pid) {
         return &children[i];
      }
   }
   mt_test_fail (__FILE__, __LINE__, "pid %d was not started by this test", (int) pid);
   return NULL;
}

int
mt_test_wait_exit (pid_t pid, int timeout_ms)
{
   int64_t deadline = bson_get_monotonic_time () + (int64_t) timeout_ms * 1000;
   int status;

   find_child (pid);
   for (;;) {
      pid_t r = waitpid (pid, &status, WNOHANG);

      if (r == pid) {
         return status;
      }
      if (bson_get_monotonic_time () > deadline) {
         char *out = mt_test_output (pid);
         fprintf (stdout, "# output of %d:\n%s\n", (int) pid, out);
         bson_free (out);
         mt_test_fail (__FILE__, __LINE__, "process %d did not exit within %d ms", (int) pid, timeout_ms);
      }
      mt_test_nap_ms (10);
   }
}

char *
mt_test_output (pid_t pid)
{
   child_t *child = find_child (pid);
   FILE *f = fopen (child->path, "r");
   bson_string_t *s = bson_string_new (NULL);
   char buf[4096];
   size_t n;

   while (f && (n = fread (buf, 1, sizeof buf - 1, f)) > 0) {
      buf[n] = '\0';
      bson_string_append (s, buf);
   }
   if (f) {
      fclose (f);
   }
   return bson_string_free (s, false);
}

bool
mt_test_output_contains (pid_t pid, const char *needle)
{
   char *out = mt_test_output (pid);
   bool found = strstr (out, needle) != NULL;

   bson_free (out);
   return found;
}

int
mt_test_exit_code (int status)
{
   return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}

int
mt_test_run (const char *const *argv, int timeout_ms, char **out)
{
   pid_t pid = mt_test_spawn (argv);
   int status = mt_test_wait_exit (pid, timeout_ms);

   if (out) {
      *out = mt_test_output (pid);
   }
   return mt_test_exit_code (status);
}

int64_t
mt_test_cpu_ms (pid_t pid)
{
   char path[64], buf[1024], *p;
   unsigned long utime = 0, stime = 0;
   FILE *f;
   size_t n;

   snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
   f = fopen (path, "r");
   ASSERT (f);
   n = fread (buf, 1, sizeof buf - 1, f);
   fclose (f);
   buf[n] = '\0';
   /* After the command name in parentheses: fields 3.., utime is 14, stime 15. */
   p = strrchr (buf, ')');
   ASSERT (p && sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2);
   return (int64_t) (utime + stime) * 1000 / sysconf (_SC_CLK_TCK);
}

pid_t
mt_test_worker (const char *const *extra)
{
   const char *argv[64];
   size_t n = 0;

   argv[n++] = mt_test_env ("MTASK_WORKER");
   argv[n++] = "--uri";
   argv[n++] = mt_test_uri ();
   argv[n++] = "--db";
   argv[n++] = mt_test_db ();
   argv[n++] = "--plugins";
   argv[n++] = mt_test_env ("MTASK_PLUGIN_DIR");
   argv[n++] = "--plugins";
   argv[n++] = mt_test_env ("MTASK_TEST_PLUGIN_DIR");
   for (size_t i = 0; extra && extra[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = extra[i];
   }
   argv[n] = NULL;
   return mt_test_spawn (argv);
}

pid_t
mt_test_worker_ready (const char *const *extra)
{
   pid_t pid = mt_test_worker (extra);

   WAIT_UNTIL (mt_test_output_contains (pid, "' started: db '"), 30000);
   return pid;
}

void
mt_test_worker_stop (pid_t pid)
{
   int status;

   kill (pid, SIGTERM);
   status = mt_test_wait_exit (pid, 30000);
   if (mt_test_exit_code (status) != 0) {
      char *out = mt_test_output (pid);

      printf ("# worker output:\n%s\n", out);
      bson_free (out);
   }
   ASSERT_CMPINT (mt_test_exit_code (status), ==, 0);
}

/* Alone in its frame, so that longjmp clobbers nothing of the caller's.
 * Returns 0 passed, 1 failed, 2 skipped. */
static int
run_one (mt_test_fn fn)
{
   int jumped = setjmp (test_jump);

   if (jumped == 0) {
      fn ();
   }
   return jumped;
}

static void
quiet_mongoc_log (mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
   (void) data;
   if (level <= MONGOC_LOG_LEVEL_WARNING) {
      printf ("# mongoc %s: %s\n", domain, message);
   }
}

int
mt_test_main (int argc, char **argv)
{
   const char *filter = argc > 1 ? argv[1] : NULL;
   size_t planned = 0;
   int failed = 0, number = 0;

   signal (SIGPIPE, SIG_IGN);
   /* libmongoc's shared-memory counters leave /dev/shm files behind when a
    * process is killed, and a later process with the same pid warns on
    * stderr about them: noise in output the tests read. */
   setenv ("MONGOC_DISABLE_SHM", "1", 1);
   mongoc_log_set_handler (quiet_mongoc_log, NULL);
   mongoc_init ();
   for (size_t i = 0; i < n_tests; i++) {
      if (!filter || !strncmp (tests[i].path, filter, strlen (filter))) {
         planned++;
      }
   }
   printf ("1..%zu\n", planned);
   fflush (stdout);
   for (size_t i = 0; i < n_tests; i++) {
      int result;
      int64_t start;

      if (filter && strncmp (tests[i].path, filter, strlen (filter))) {
         continue;
      }
      current = tests[i].path;
      snprintf (db_name, sizeof db_name, "t%d_%d", (int) getpid (), ++db_counter);
      start = bson_get_monotonic_time ();
      result = run_one (tests[i].fn);
      reap_children ();
      if (result == 2) {
         printf ("ok %d %s # SKIP %s\n", ++number, current, skip_reason);
      } else {
         printf ("%s %d %s # %.2fs\n",
                 result == 0 ? "ok" : "not ok",
                 ++number,
                 current,
                 (double) (bson_get_monotonic_time () - start) / 1e6);
      }
      fflush (stdout);
      failed += result == 1;
   }
   if (client) {
      mongoc_client_destroy (client);
   }
   bson_free (server_uri);
   stop_devdb ();
   mongoc_cleanup ();
   return failed ? 1 : 0;
}
