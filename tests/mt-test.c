#include "mt-test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/socket.h>
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

/* Processes spawned by the current test: what was started, whether it has
 * been waited for, and the file holding its output. */
typedef struct {
   pid_t pid;
   bool exited;
   int status;
   char program[256];
   char path[256];
} child_t;
static child_t children[64];
static size_t n_children;

/* What the current test deferred to its end (mt_test_defer). */
typedef struct {
   mt_test_cleanup_fn fn;
   void *data;
} deferred_t;
static deferred_t deferred[32];
static size_t n_deferred;

/* The gates of the current test (mt_test_gate). */
typedef struct {
   char name[64];
   char path[256];
} gate_t;
static gate_t gates[16];
static size_t n_gates;

static bool failpoint_deferred;

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
mt_test_defer (mt_test_cleanup_fn fn, void *data)
{
   if (n_deferred == sizeof deferred / sizeof deferred[0]) {
      mt_test_fail (__FILE__, __LINE__, "more than %zu clean-ups deferred in one test", n_deferred);
   }
   deferred[n_deferred].fn = fn;
   deferred[n_deferred].data = data;
   n_deferred++;
}

void
mt_test_require_failpoints (void)
{
#ifndef MT_FAILPOINTS
   mt_test_skip ("built without failpoints: meson configure -Dfailpoints=true (tools/test does)");
#endif
}

int
mt_test_lines (const char *text)
{
   int lines = 0;

   for (const char *p = text; p && *p; p++) {
      lines += *p == '\n' || !p[1];
   }
   return lines;
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

/* Prints `text` as TAP comments, each line behind "# "; only its last
 * `last_lines` lines when that is not 0. */
static void
print_commented (const char *text, int last_lines)
{
   const char *start = text;
   int lines = 0;

   for (const char *p = text; *p; p++) {
      lines += *p == '\n' || !p[1];
   }
   for (int skip = last_lines ? lines - last_lines : 0; skip > 0; skip--) {
      start = strchr (start, '\n') + 1;
   }
   while (*start) {
      const char *end = strchr (start, '\n');
      int len = end ? (int) (end - start) : (int) strlen (start);

      printf ("#   %.*s\n", len, start);
      start += len + (end ? 1 : 0);
   }
   fflush (stdout);
}

static void print_child_output (const child_t *child, int last_lines);

/* At the end of each test. A process the test started and left running is
 * a leak: it would go on writing to the server, hold a port or use the CPU
 * while later tests run, so it fails the test (which program, its pid, its
 * last lines), and is then killed so that the next test starts clean.
 * Returns the test's result, 1 (failed) when something leaked. */
static int
end_children (int result)
{
   for (size_t i = 0; i < n_children; i++) {
      child_t *child = &children[i];

      if (!child->exited && waitpid (child->pid, &child->status, WNOHANG) == 0) {
         printf ("# %s (pid %d) was still running when the test ended%s; its last lines:\n",
                 child->program,
                 (int) child->pid,
                 result == 1 ? " (after the failure above)" : "; stop it in the test");
         print_child_output (child, 10);
         kill (child->pid, SIGKILL);
         waitpid (child->pid, &child->status, 0);
         result = 1;
      }
      child->exited = true;
      unlink (child->path);
   }
   n_children = 0;
   return result;
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
mt_test_collection (const char *name)
{
   return mongoc_client_get_collection (mt_test_client (), mt_test_db (), name);
}

mongoc_collection_t *
mt_test_tasks (void)
{
   return mt_test_collection ("tasks");
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

/* How many documents of `coll` match the JSON filter; destroys `coll`. */
static int64_t
count (mongoc_collection_t *coll, const char *json_filter)
{
   bson_t *filter = mt_test_bson (json_filter);
   bson_error_t error;
   int64_t n = mongoc_collection_count_documents (coll, filter, NULL, NULL, NULL, &error);

   bson_destroy (filter);
   mongoc_collection_destroy (coll);
   ASSERT_OR_PRINT (n >= 0, error);
   return n;
}

int64_t
mt_test_count (const char *json_filter)
{
   return count (mt_test_tasks (), json_filter);
}

int64_t
mt_test_count_in (const char *collection, const char *format, ...)
{
   va_list args;
   char *json;
   int64_t n;

   va_start (args, format);
   json = bson_strdupv_printf (format, args);
   va_end (args);
   n = count (mt_test_collection (collection), json);
   bson_free (json);
   return n;
}

int64_t
mt_test_count_at (mongoc_client_t *other, const char *db, const char *collection, const char *json_filter)
{
   return count (mongoc_client_get_collection (other, db, collection), json_filter);
}

/* The first document of `collection` matching `filter`, or NULL. */
static bson_t *
find_one (const char *collection, const bson_t *filter)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (coll, filter, NULL, NULL);
   const bson_t *doc;
   bson_t *copy = NULL;
   bson_error_t error;
   bool failed;

   if (mongoc_cursor_next (cursor, &doc)) {
      copy = bson_copy (doc);
   }
   failed = mongoc_cursor_error (cursor, &error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   ASSERT_OR_PRINT (!failed, error);
   return copy;
}

bson_t *
mt_test_find_one (const char *collection, const char *format, ...)
{
   va_list args;
   char *json;
   bson_t *filter, *doc;

   va_start (args, format);
   json = bson_strdupv_printf (format, args);
   va_end (args);
   filter = mt_test_bson (json);
   doc = find_one (collection, filter);
   bson_destroy (filter);
   if (!doc) {
      char message[512];

      bson_snprintf (message, sizeof message, "no document in %s matches %s", collection, json);
      bson_free (json);
      mt_test_fail (__FILE__, __LINE__, "%s", message);
   }
   bson_free (json);
   return doc;
}

bson_t *
mt_test_task (const bson_oid_t *id)
{
   bson_t filter = BSON_INITIALIZER;
   bson_t *doc;
   char hex[25];

   BSON_APPEND_OID (&filter, "_id", id);
   doc = find_one ("tasks", &filter);
   bson_destroy (&filter);
   if (!doc) {
      bson_oid_to_string (id, hex);
      mt_test_fail (__FILE__, __LINE__, "no task %s", hex);
   }
   return doc;
}

bson_t *
mt_test_task_find_at (mongoc_client_t *through, const bson_t *filter)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (through, mt_test_db (), "tasks");
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (tasks, filter, NULL, NULL);
   const bson_t *doc;
   bson_t *copy = NULL;

   if (mongoc_cursor_next (cursor, &doc)) {
      copy = bson_copy (doc);
   }
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (tasks);
   return copy;
}

void
mt_test_insert (const char *collection, const bson_t *doc)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   bson_error_t error;
   bool ok = mongoc_collection_insert_one (coll, doc, NULL, NULL, &error);

   mongoc_collection_destroy (coll);
   ASSERT_OR_PRINT (ok, error);
}

bson_oid_t
mt_test_task_insert (const char *json)
{
   bson_t *doc = mt_test_bson (json);
   bson_oid_t id;

   bson_oid_init (&id, NULL);
   BSON_APPEND_OID (doc, "_id", &id);
   mt_test_insert ("tasks", doc);
   bson_destroy (doc);
   return id;
}

void
mt_test_task_set (const bson_oid_t *id, const char *format, ...)
{
   mongoc_collection_t *tasks = mt_test_tasks ();
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER;
   bson_t *fields;
   bson_error_t error;
   va_list args;
   char *json;
   bool ok;

   va_start (args, format);
   json = bson_strdupv_printf (format, args);
   va_end (args);
   fields = mt_test_bson (json);
   bson_free (json);
   BSON_APPEND_OID (&filter, "_id", id);
   BSON_APPEND_DOCUMENT (&update, "$set", fields);
   ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, NULL, &error);
   bson_destroy (fields);
   bson_destroy (&filter);
   bson_destroy (&update);
   mongoc_collection_destroy (tasks);
   ASSERT_OR_PRINT (ok, error);
}

int64_t
mt_test_ttl_seconds (const char *collection)
{
   mongoc_collection_t *coll = mt_test_collection (collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts (coll, NULL);
   const bson_t *index;
   bson_error_t error;
   int64_t ttl = -1;
   bool failed;

   while (mongoc_cursor_next (cursor, &index)) {
      if (mt_test_str (index, "name") && !strcmp (mt_test_str (index, "name"), "mtask_ttl")) {
         ASSERT_CMPINT (mt_test_int (index, "key.finished"), ==, 1);
         ttl = mt_test_int (index, "expireAfterSeconds");
      }
   }
   failed = mongoc_cursor_error (cursor, &error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   ASSERT_OR_PRINT (!failed, error);
   return ttl;
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
   child->exited = false;
   bson_strncpy (child->program, argv[0], sizeof child->program);
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

/* Whether the child has exited, reaping it if so. */
static bool
child_exited (child_t *child)
{
   if (!child->exited && waitpid (child->pid, &child->status, WNOHANG) == child->pid) {
      child->exited = true;
   }
   return child->exited;
}

int
mt_test_wait_exit (pid_t pid, int timeout_ms)
{
   int64_t deadline = bson_get_monotonic_time () + (int64_t) timeout_ms * 1000;
   child_t *child = find_child (pid);

   while (!child_exited (child)) {
      if (bson_get_monotonic_time () > deadline) {
         printf ("# output of %s (pid %d):\n", child->program, (int) pid);
         print_child_output (child, 0);
         mt_test_fail (__FILE__, __LINE__, "%s (pid %d) did not exit within %d ms", child->program, (int) pid, timeout_ms);
      }
      mt_test_nap_ms (10);
   }
   return child->status;
}

static char *
read_output (const child_t *child)
{
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

char *
mt_test_output (pid_t pid)
{
   return read_output (find_child (pid));
}

static void
print_child_output (const child_t *child, int last_lines)
{
   char *out = read_output (child);

   print_commented (out, last_lines);
   bson_free (out);
}

void
mt_test_print_output (pid_t pid, int last_lines)
{
   print_child_output (find_child (pid), last_lines);
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

void
mt_test_process_stop (pid_t pid, int timeout_ms)
{
   child_t *child = find_child (pid);
   int code;

   if (!child->exited) {
      kill (pid, SIGTERM);
   }
   code = mt_test_exit_code (mt_test_wait_exit (pid, timeout_ms));
   if (code != 0) {
      printf ("# output of %s (pid %d):\n", child->program, (int) pid);
      print_child_output (child, 0);
      mt_test_fail (__FILE__, __LINE__, "%s (pid %d) exited %d after SIGTERM, not 0", child->program, (int) pid, code);
   }
}

void
mt_test_process_kill (pid_t pid)
{
   child_t *child = find_child (pid);

   if (!child->exited) {
      kill (pid, SIGKILL);
   }
   mt_test_wait_exit (pid, 10000);
}

char *
mt_test_devdb_wait_ready (pid_t pid)
{
   int64_t deadline = bson_get_monotonic_time () + 120 * 1000 * 1000;
   child_t *child = find_child (pid);
   char *out, *line, *end, *uri;

   for (;;) {
      out = read_output (child);
      line = strstr (out, "READY ");
      if (line) {
         break;
      }
      bson_free (out);
      if (child_exited (child)) {
         return NULL;
      }
      if (bson_get_monotonic_time () > deadline) {
         printf ("# output of %s (pid %d):\n", child->program, (int) pid);
         print_child_output (child, 0);
         mt_test_fail (__FILE__, __LINE__, "timed out after 120 s waiting for the READY line of %s", child->program);
      }
      mt_test_nap_ms (20);
   }
   line += 6;
   end = strchr (line, '\n');
   if (!end || strncmp (line, "mongodb://127.0.0.1:", 20) != 0 || end[-1] != '/') {
      char message[256];

      bson_snprintf (message, sizeof message, "%s", line);
      bson_free (out);
      mt_test_fail (__FILE__, __LINE__, "not 'READY mongodb://127.0.0.1:PORT/' but 'READY %s'", message);
   }
   *end = '\0';
   uri = bson_strdup (line);
   bson_free (out);
   return uri;
}

char *
mt_test_devdb_start (const char *const *args, pid_t *pid)
{
   const char *argv[32];
   size_t n = 0;
   char *uri;

   argv[n++] = mt_test_env ("MTASK_DEVDB");
   for (size_t i = 0; args[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = args[i];
   }
   argv[n] = NULL;
   *pid = mt_test_spawn (argv);
   uri = mt_test_devdb_wait_ready (*pid);
   if (!uri) {
      printf ("# output of %s:\n", argv[0]);
      mt_test_print_output (*pid, 0);
      mt_test_fail (__FILE__,
                    __LINE__,
                    "%s exited %d before it was ready",
                    argv[0],
                    mt_test_exit_code (mt_test_wait_exit (*pid, 0)));
   }
   return uri;
}

bool
mt_test_failpoint_command (const char *json, bson_t *reply, bson_error_t *error)
{
   bson_t *cmd = mt_test_bson (json);
   bool ok = mongoc_client_command_simple (mt_test_client (), "admin", cmd, NULL, reply, error);

   bson_destroy (cmd);
   return ok;
}

static void
failpoint_off_at_end (void *data)
{
   (void) data;
   failpoint_deferred = false;
   mt_test_failpoint_off ();
}

int64_t
mt_test_failpoint_set (const char *mode, const char *data)
{
   char *json = bson_strdup_printf ("{'configureFailPoint': 'failCommand', 'mode': %s, 'data': %s}", mode, data);
   bson_t reply;
   bson_error_t error;
   bool ok;
   int64_t count;

   if (!failpoint_deferred && strcmp (mode, "'off'") != 0) {
      /* Deferred before it is set: a failed set may have half worked. */
      mt_test_defer (failpoint_off_at_end, NULL);
      failpoint_deferred = true;
   }
   ok = mt_test_failpoint_command (json, &reply, &error);
   bson_free (json);
   if (!ok) {
      bson_destroy (&reply);
   }
   ASSERT_OR_PRINT (ok, error);
   count = mt_test_int (&reply, "count");
   bson_destroy (&reply);
   return count;
}

int64_t
mt_test_failpoint_off (void)
{
   return mt_test_failpoint_set ("'off'", "{}");
}

mongoc_client_t *
mt_test_failpoint_client (const char *appname)
{
   bson_error_t error;
   mongoc_uri_t *uri = mongoc_uri_new_with_error (mt_test_uri (), &error);
   mongoc_client_t *other;

   ASSERT_OR_PRINT (uri, error);
   if (appname) {
      ASSERT (mongoc_uri_set_appname (uri, appname));
   }
   ASSERT (mongoc_uri_set_option_as_bool (uri, MONGOC_URI_RETRYREADS, false));
   ASSERT (mongoc_uri_set_option_as_bool (uri, MONGOC_URI_RETRYWRITES, false));
   other = mongoc_client_new_from_uri_with_error (uri, &error);
   mongoc_uri_destroy (uri);
   ASSERT_OR_PRINT (other, error);
   mongoc_client_set_error_api (other, MONGOC_ERROR_API_VERSION_2);
   return other;
}

static void
gates_remove (void *data)
{
   (void) data;
   for (size_t i = 0; i < n_gates; i++) {
      unlink (gates[i].path);
   }
   n_gates = 0;
}

static gate_t *
find_gate (const char *name)
{
   for (size_t i = 0; i < n_gates; i++) {
      if (!strcmp (gates[i].name, name)) {
         return &gates[i];
      }
   }
   return NULL;
}

const char *
mt_test_gate (const char *name)
{
   gate_t *gate = find_gate (name);

   if (gate) {
      return gate->path;
   }
   ASSERT (n_gates < sizeof gates / sizeof gates[0]);
   ASSERT (strlen (name) < sizeof gates[0].name);
   if (n_gates == 0) {
      mt_test_defer (gates_remove, NULL);
   }
   gate = &gates[n_gates++];
   bson_strncpy (gate->name, name, sizeof gate->name);
   bson_snprintf (gate->path, sizeof gate->path, "/tmp/mtask-gate-%d-%s-%s", (int) getpid (), mt_test_db (), name);
   unlink (gate->path); /* closed, whatever an earlier run left */
   return gate->path;
}

void
mt_test_gate_open (const char *name)
{
   const char *path = mt_test_gate (name);
   int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

   if (fd < 0) {
      mt_test_fail (__FILE__, __LINE__, "cannot open the gate %s: %s", path, strerror (errno));
   }
   close (fd);
}

int64_t
mt_test_upkeep_ticks (void)
{
   bson_t *filter = BCON_NEW ("_id", "upkeep");
   bson_t *doc = find_one ("ticks", filter);
   int64_t n = doc && mt_test_has (doc, "tick") ? mt_test_int (doc, "tick") : 0;

   bson_destroy (filter);
   if (doc) {
      bson_destroy (doc);
   }
   return n;
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
   return mt_test_worker_at (mt_test_uri (), extra);
}

pid_t
mt_test_worker_crashing (const char *const *extra)
{
   const char *asan = getenv ("ASAN_OPTIONS");
   char *saved = asan ? bson_strdup (asan) : NULL;
   char *options = bson_strdup_printf ("%s:handle_segv=0", asan ? asan : "");
   pid_t pid;

   setenv ("ASAN_OPTIONS", options, 1);
   pid = mt_test_worker (extra);
   if (saved) {
      setenv ("ASAN_OPTIONS", saved, 1);
   } else {
      unsetenv ("ASAN_OPTIONS");
   }
   bson_free (saved);
   bson_free (options);
   return pid;
}

bson_oid_t
mt_test_group_new (const char *description, double keep_seconds)
{
   bson_t *opts = BCON_NEW ("keep_seconds", BCON_DOUBLE (keep_seconds));
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_group_create (mt_test_client (), mt_test_db (), description, opts, &id, &error);

   bson_destroy (opts);
   ASSERT_OR_PRINT (ok, error);
   return id;
}

bson_oid_t
mt_test_group_add (const bson_oid_t *group, int32_t stage, const char *type, const char *params_json, const char *opts_json)
{
   bson_t *params = mt_test_bson (params_json);
   bson_t *opts = opts_json ? mt_test_bson (opts_json) : NULL;
   bson_error_t error;
   bson_oid_t id;
   bool ok = mt_group_enqueue (mt_test_client (), mt_test_db (), group, stage, "q", type, params, opts, &id, &error);

   bson_destroy (params);
   if (opts) {
      bson_destroy (opts);
   }
   ASSERT_OR_PRINT (ok, error);
   return id;
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
   mt_test_process_stop (pid, 30000);
}

pid_t
mt_test_worker_once (const char *const *extra, int timeout_ms)
{
   const char *argv[48];
   size_t n = 0;
   pid_t pid;
   int code;

   argv[n++] = "--once";
   for (size_t i = 0; extra && extra[i]; i++) {
      ASSERT (n < sizeof argv / sizeof argv[0] - 1);
      argv[n++] = extra[i];
   }
   argv[n] = NULL;
   pid = mt_test_worker (argv);
   code = mt_test_exit_code (mt_test_wait_exit (pid, timeout_ms));
   if (code != 0) {
      printf ("# output of mtask-worker --once (pid %d):\n", (int) pid);
      mt_test_print_output (pid, 0);
      mt_test_fail (__FILE__, __LINE__, "mtask-worker --once (pid %d) exited %d, not 0", (int) pid, code);
   }
   return pid;
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

/* The same for one deferred clean-up. */
static int
run_cleanup (const deferred_t *d)
{
   int jumped = setjmp (test_jump);

   if (jumped == 0) {
      d->fn (d->data);
   }
   return jumped;
}

/* At the end of each test, before its processes are looked at: what it
 * deferred, the last first. A clean-up that fails fails the test. */
static int
end_deferred (int result)
{
   while (n_deferred > 0) {
      deferred_t d = deferred[--n_deferred];

      if (run_cleanup (&d) == 1) {
         result = 1;
      }
   }
   return result;
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
      result = end_children (end_deferred (run_one (tests[i].fn)));
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

/* ---- devdb: replica set and command log ---- */

char *
mt_test_devdb_start_replset (const char *name, pid_t *pid)
{
   char *address = mt_test_devdb_start (W ("--port", "0", "--memory", "--replset", name), pid);
   char *uri = bson_strdup_printf ("%s?replicaSet=%s", address, name);

   bson_free (address);
   return uri;
}

/* Where this process's view of the test server's command log begins: the
 * seq of the last command logged when it last cleared. */
static int64_t command_log_after;

/* Runs devdbCommandLog with `after` and `clear` through `client`; returns
 * the commands of `app_name` (NULL: all) and the server's seq in *seq. */
static bson_t *
command_log_run (mongoc_client_t *through, const char *app_name, int64_t after, bool clear, int64_t *seq)
{
   bson_t cmd = BSON_INITIALIZER, reply;
   bson_error_t error;
   bson_iter_t iter;
   const uint8_t *data;
   uint32_t len;
   bson_t *commands;
   bool ok;

   BSON_APPEND_INT32 (&cmd, "devdbCommandLog", 1);
   BSON_APPEND_INT64 (&cmd, "after", after);
   BSON_APPEND_BOOL (&cmd, "clear", clear);
   if (app_name) {
      BSON_APPEND_UTF8 (&cmd, "appName", app_name);
   }
   ok = mongoc_client_command_simple (through, "admin", &cmd, NULL, &reply, &error);
   bson_destroy (&cmd);
   if (!ok) {
      bson_destroy (&reply);
   }
   ASSERT_OR_PRINT (ok, error);
   if (!bson_iter_init_find (&iter, &reply, "commands") || !BSON_ITER_HOLDS_ARRAY (&iter)) {
      bson_destroy (&reply);
      mt_test_fail (__FILE__, __LINE__, "devdbCommandLog answered without a 'commands' array");
   }
   bson_iter_array (&iter, &len, &data);
   commands = bson_new_from_data (data, len);
   if (seq) {
      *seq = mt_test_int (&reply, "seq");
   }
   bson_destroy (&reply);
   return commands;
}

void
mt_test_command_log_clear (void)
{
   bson_t *none = command_log_run (mt_test_client (), NULL, INT64_MAX, false, &command_log_after);

   bson_destroy (none);
}

bson_t *
mt_test_command_log (const char *app_name)
{
   return command_log_run (mt_test_client (), app_name, command_log_after, false, NULL);
}

static mongoc_client_t *
command_log_client (const char *uri)
{
   bson_error_t error;
   mongoc_uri_t *parsed = mongoc_uri_new_with_error (uri, &error);
   mongoc_client_t *other;

   ASSERT_OR_PRINT (parsed, error);
   other = mongoc_client_new_from_uri_with_error (parsed, &error);
   mongoc_uri_destroy (parsed);
   ASSERT_OR_PRINT (other, error);
   mongoc_client_set_error_api (other, MONGOC_ERROR_API_VERSION_2);
   return other;
}

void
mt_test_command_log_clear_at (const char *uri)
{
   mongoc_client_t *other = command_log_client (uri);
   bson_t *cleared = command_log_run (other, NULL, 0, true, NULL);

   bson_destroy (cleared);
   mongoc_client_destroy (other);
}

bson_t *
mt_test_command_log_at (const char *uri, const char *app_name)
{
   mongoc_client_t *other = command_log_client (uri);
   bson_t *commands = command_log_run (other, app_name, 0, false, NULL);

   mongoc_client_destroy (other);
   return commands;
}

int
mt_test_command_log_count (const bson_t *log, const char *command)
{
   bson_iter_t iter;
   int n = 0;

   ASSERT (bson_iter_init (&iter, log));
   while (bson_iter_next (&iter)) {
      bson_t entry;
      const uint8_t *data;
      uint32_t len;

      ASSERT (BSON_ITER_HOLDS_DOCUMENT (&iter));
      bson_iter_document (&iter, &len, &data);
      ASSERT (bson_init_static (&entry, data, len));
      n += !command || (mt_test_str (&entry, "command") && !strcmp (mt_test_str (&entry, "command"), command));
   }
   return n;
}

/* ---- races ---------------------------------------------------------------- */

#include <sys/stat.h>

/* The pause points of the current test, in its own directory. */
static char pause_dir[256];
static char pause_env[16][320];
static size_t n_pause_env;

static void
pause_path (const char *name, const char *what, char *path, size_t size)
{
   bson_snprintf (path, size, "%s/%s.%s", pause_dir, name, what);
}

static void
pause_touch (const char *path)
{
   int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

   if (fd < 0) {
      mt_test_fail (__FILE__, __LINE__, "cannot create %s: %s", path, strerror (errno));
   }
   close (fd);
}

/* When the test ends: every point is released (a process still paused
 * goes on), then the directory goes. */
static void
pause_cleanup (void *data)
{
   (void) data;
   for (size_t i = 0; i < n_pause_env; i++) {
      char name[256], path[600];
      const char *colon = strchr (pause_env[i], ':');
      const char *whats[] = {"go", "reached", "passed"};

      bson_strncpy (name, pause_env[i], BSON_MIN (sizeof name, (size_t) (colon - pause_env[i]) + 1));
      for (size_t w = 0; w < 3; w++) {
         pause_path (name, whats[w], path, sizeof path);
         unlink (path);
      }
   }
   rmdir (pause_dir);
   n_pause_env = 0;
   pause_dir[0] = '\0';
}

const char *
mt_test_pause_env (const char *name)
{
   mt_test_require_failpoints ();
   ASSERT (!strchr (name, ':') && !strchr (name, ','));
   if (!pause_dir[0]) {
      bson_snprintf (pause_dir, sizeof pause_dir, "/tmp/mtask-pause-%d-%s", (int) getpid (), mt_test_db ());
      if (mkdir (pause_dir, 0700) != 0 && errno != EEXIST) {
         mt_test_fail (__FILE__, __LINE__, "cannot create %s: %s", pause_dir, strerror (errno));
      }
      mt_test_defer (pause_cleanup, NULL);
   }
   for (size_t i = 0; i < n_pause_env; i++) {
      if (!strncmp (pause_env[i], name, strlen (name)) && pause_env[i][strlen (name)] == ':') {
         return pause_env[i];
      }
   }
   ASSERT (n_pause_env < sizeof pause_env / sizeof pause_env[0]);
   bson_snprintf (pause_env[n_pause_env], sizeof pause_env[0], "%s:%s", name, pause_dir);
   {
      char path[600];
      const char *whats[] = {"go", "reached", "passed"};

      /* Closed, whatever an earlier run left. */
      for (size_t w = 0; w < 3; w++) {
         pause_path (name, whats[w], path, sizeof path);
         unlink (path);
      }
   }
   return pause_env[n_pause_env++];
}

pid_t
mt_test_worker_pausing (const char *env, const char *const *extra)
{
   pid_t pid;

   setenv ("MTASK_FAILPOINT_PAUSE", env, 1);
   pid = mt_test_worker (extra);
   unsetenv ("MTASK_FAILPOINT_PAUSE");
   WAIT_UNTIL (mt_test_output_contains (pid, "' started: db '"), 30000);
   return pid;
}

bool
mt_test_pause_reached (const char *name)
{
   char path[600];

   pause_path (name, "reached", path, sizeof path);
   return pause_dir[0] && access (path, F_OK) == 0;
}

void
mt_test_pause_wait (const char *name, int timeout_ms)
{
   int64_t deadline = bson_get_monotonic_time () + (int64_t) timeout_ms * 1000;

   while (!mt_test_pause_reached (name)) {
      if (bson_get_monotonic_time () > deadline) {
         mt_test_fail (__FILE__, __LINE__, "timed out after %d ms waiting for a process to pause at failpoint '%s'", timeout_ms, name);
      }
      mt_test_nap_ms (10);
   }
}

void
mt_test_pause_release (const char *name)
{
   char path[600];

   ASSERT (pause_dir[0]);
   pause_path (name, "go", path, sizeof path);
   pause_touch (path);
}

void
mt_test_pause_wait_passed (const char *name, int timeout_ms)
{
   int64_t deadline = bson_get_monotonic_time () + (int64_t) timeout_ms * 1000;
   char path[600];

   pause_path (name, "passed", path, sizeof path);
   while (access (path, F_OK) != 0) {
      if (bson_get_monotonic_time () > deadline) {
         mt_test_fail (__FILE__, __LINE__, "timed out after %d ms waiting for a process to go on from failpoint '%s'", timeout_ms, name);
      }
      mt_test_nap_ms (10);
   }
}

bool
mt_test_upkeep_tick_over (void)
{
   bson_t *filter = BCON_NEW ("_id", "upkeep");
   bson_t *doc = find_one ("ticks", filter);
   bool over = doc && mt_test_has (doc, "ended") && mt_test_has (doc, "at") && mt_test_date (doc, "ended") >= mt_test_date (doc, "at");

   if (doc) {
      bson_destroy (doc);
   }
   bson_destroy (filter);
   return over;
}

/* ---- wire ---------------------------------------------------------------- */

char *
mt_test_uri_with (const char *options)
{
   const char *uri = mt_test_uri ();

   return bson_strdup_printf ("%s%s%s", uri, strchr (uri, '?') ? "&" : "?", options);
}

pid_t
mt_test_worker_at (const char *uri, const char *const *extra)
{
   const char *argv[64];
   size_t n = 0;

   argv[n++] = mt_test_env ("MTASK_WORKER");
   argv[n++] = "--uri";
   argv[n++] = uri;
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

int
mt_test_output_count (pid_t pid, const char *needle)
{
   char *out = mt_test_output (pid);
   int n = 0;

   for (const char *p = strstr (out, needle); p; p = strstr (p + strlen (needle), needle)) {
      n++;
   }
   bson_free (out);
   return n;
}

/* ---- a dev database of the test's own ------------------------------------ */

static void
own_db_forget (mt_test_own_db_t *db)
{
   if (db->client) {
      mongoc_client_destroy (db->client);
   }
   if (db->pid) {
      mt_test_process_kill (db->pid);
   }
   if (db->file) {
      unlink (db->file);
   }
   bson_free (db->file);
   bson_free (db->uri);
   memset (db, 0, sizeof *db);
}

static void
own_db_forget_at_end (void *data)
{
   own_db_forget (data);
}

void
mt_test_own_db_start (mt_test_own_db_t *db)
{
   const char *port_arg = db->port[0] ? db->port : "0";
   char *uri = db->oplog ? mt_test_devdb_start (W ("--port", port_arg, "--data", db->file, "--oplog"), &db->pid)
                         : mt_test_devdb_start (W ("--port", port_arg, "--data", db->file), &db->pid);

   if (!db->port[0]) {
      const char *port = strrchr (uri, ':') + 1; /* mongodb://127.0.0.1:PORT/ */
      size_t n = strspn (port, "0123456789");

      ASSERT (n > 0 && n < sizeof db->port);
      memcpy (db->port, port, n);
      db->uri = bson_strdup_printf ("mongodb://127.0.0.1:%s/%s%s", db->port, db->options[0] ? "?" : "", db->options);
   }
   bson_free (uri);
   db->client = mongoc_client_new (db->uri);
   ASSERT (db->client);
   mongoc_client_set_error_api (db->client, MONGOC_ERROR_API_VERSION_2);
}

void
mt_test_own_db_open (mt_test_own_db_t *db, const char *uri_options)
{
   char path[] = "/tmp/mtask-own-db-XXXXXX";
   int fd = mkstemp (path);

   memset (db, 0, sizeof *db);
   ASSERT (fd >= 0);
   close (fd);
   unlink (path);
   db->file = bson_strdup_printf ("%s.mv", path);
   bson_strncpy (db->options, uri_options ? uri_options : "", sizeof db->options);
   mt_test_defer (own_db_forget_at_end, db);
   mt_test_own_db_start (db);
}

void
mt_test_own_db_stop (mt_test_own_db_t *db)
{
   mongoc_client_destroy (db->client);
   db->client = NULL;
   mt_test_process_stop (db->pid, 30000);
   db->pid = 0;
}

void
mt_test_own_db_close (mt_test_own_db_t *db)
{
   if (db->pid) {
      mt_test_own_db_stop (db);
   }
   own_db_forget (db);
}

/* ---- mtaskctl ------------------------------------------------------------ */

int
mt_test_ctl (char **out, const char *const *args)
{
   const char *argv[48];
   size_t n = 0;

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

/* ---- mtask-web over HTTP ---- */

void
mt_test_answer_free (mt_test_answer_t *a)
{
   bson_free (a->head);
   bson_free (a->body);
}

/* A request to 127.0.0.1:port; `headers` are extra lines, each ending in
 * \r\n, or "". Reads to the end (Connection: close). */
mt_test_answer_t
mt_test_http (int port, const char *method, const char *path, const char *headers, const char *body)
{
   struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
   int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
   char *request;
   bson_string_t *in = bson_string_new (NULL);
   char buf[4096], *sep;
   ssize_t n;
   mt_test_answer_t a = {0};
   struct timeval tv = {.tv_sec = 30};

   ASSERT (fd >= 0);
   addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
   setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
   ASSERT (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
   request = bson_strdup_printf ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
                                 method, path, headers, body ? strlen (body) : 0, body ? body : "");
   ASSERT (write (fd, request, strlen (request)) == (ssize_t) strlen (request));
   while ((n = read (fd, buf, sizeof buf)) > 0) {
      bson_string_append_printf (in, "%.*s", (int) n, buf);
   }
   close (fd);
   bson_free (request);
   sep = strstr (in->str, "\r\n\r\n");
   ASSERT (sep && !strncmp (in->str, "HTTP/1.1 ", 9));
   a.status = atoi (in->str + 9);
   a.head = bson_strndup (in->str, (size_t) (sep - in->str));
   a.body = bson_strdup (sep + 4);
   bson_string_free (in, true);
   return a;
}

static void
web_stop (void *data)
{
   mt_test_web_t *w = data;

   mt_test_process_stop (w->pid, 20000);
   bson_free (w);
}

/* Starts mtask-web for the server at `uri` on a free port with `extra`
 * flags; stopped (and its exit status checked: 0, no leak) when the test
 * ends. */
mt_test_web_t *
mt_test_web_start_at (const char *uri, const char *const *extra)
{
   const char *argv[32];
   size_t n = 0;
   mt_test_web_t *w = bson_malloc0 (sizeof *w);
   char *out, *at;

   argv[n++] = mt_test_env ("MTASK_WEB");
   argv[n++] = "--uri";
   argv[n++] = uri;
   argv[n++] = "--db";
   argv[n++] = mt_test_db ();
   argv[n++] = "--listen";
   argv[n++] = "127.0.0.1:0";
   for (size_t i = 0; extra && extra[i]; i++) {
      argv[n++] = extra[i];
   }
   argv[n] = NULL;
   w->pid = mt_test_spawn (argv);
   WAIT_UNTIL (mt_test_output_contains (w->pid, "listening on port "), 30000);
   mt_test_defer (web_stop, w);
   out = mt_test_output (w->pid);
   at = strstr (out, "listening on port ");
   w->port = atoi (at + strlen ("listening on port "));
   bson_free (out);
   ASSERT_CMPINT (w->port, >, 0);
   return w;
}

/* mtask-web for the test's server. */
mt_test_web_t *
mt_test_web_start (const char *const *extra)
{
   return mt_test_web_start_at (mt_test_uri (), extra);
}

/* ---- a dev database of the test's own, with change streams --------------- */

void
mt_test_own_db_open_oplog (mt_test_own_db_t *db, const char *uri_options)
{
   mt_test_own_db_open (db, uri_options);
   mt_test_own_db_stop (db);
   db->oplog = true;
   mt_test_own_db_start (db);
}
