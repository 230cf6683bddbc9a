/* Crash notes. Without isolation a plugin that crashes takes the
 * worker with it; this leaves a trace of it:
 * - while a task runs, its thread keeps a preformatted description of it
 *   (mt_crash_task_begin), so that the handler of SIGSEGV, SIGBUS, SIGFPE,
 *   SIGILL and SIGABRT, which may only do async-signal-safe things, copies
 *   bytes and calls write(2): a log line on stderr naming the task, its
 *   type and the signal (a JSON object under --log-format json), and a
 *   note "task ID attempt N signal S" in the worker's crash note file,
 *   opened when the worker started. Then the handler it replaced, or the
 *   default action, ends the process.
 * - a worker starting under the same id (systemd restarting it) takes its
 *   tasks back before anything else (lease.c); a task named in the note
 *   gets "the worker crashed while running it (signal 11, SIGSEGV)" as its
 *   error rather than "restarted". Then the note file starts afresh.
 * The handler cannot talk to MongoDB: the note is all it leaves. A task
 * taken back by another worker (no restart under that id within the
 * lease) is "worker lost", as before. */
#include "crash.h"
#include "mtask-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define N_FATAL (sizeof fatal_signals / sizeof fatal_signals[0])

static struct sigaction previous[N_FATAL];
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

/* Initial-exec: the handler must not be the first to touch the variable
 * (a dynamic TLS block may be allocated on first use). */
#if defined(__GNUC__)
static __thread mt_crash_thread_t *current __attribute__ ((tls_model ("initial-exec")));
#else
static __thread mt_crash_thread_t *current;
#endif

/* For a thread running no task: the last worker armed. */
static mt_crash_thread_t idle;

const char *
mt_crash_signal_name (int signo)
{
   switch (signo) {
   case SIGSEGV:
      return "SIGSEGV";
   case SIGBUS:
      return "SIGBUS";
   case SIGFPE:
      return "SIGFPE";
   case SIGILL:
      return "SIGILL";
   case SIGABRT:
      return "SIGABRT";
   default:
      return "a signal";
   }
}

void
mt_crash_note_path (const char *db, const char *worker_id, char *out, size_t size)
{
   const char *dir = getenv ("MTASK_STATE_DIR");
   const char *parts[2] = {db ? db : "", worker_id ? worker_id : ""};
   size_t n;

   if (!dir || !dir[0]) {
      dir = getenv ("XDG_RUNTIME_DIR");
   }
   if (!dir || !dir[0]) {
      dir = "/tmp";
   }
   n = (size_t) bson_snprintf (out, size, "%s/mtask-crash", dir);
   for (int p = 0; p < 2 && n + 1 < size; p++) {
      out[n++] = '-';
      for (const char *c = parts[p]; *c && n + 4 < size; c++) {
         unsigned char u = (unsigned char) *c;

         if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '.' || u == '_' ||
             u == '-') {
            out[n++] = (char) u;
         } else {
            n += (size_t) bson_snprintf (out + n, size - n, "%%%02X", u);
         }
      }
   }
   out[n < size ? n : size - 1] = '\0';
}

bool
mt_crash_note_find (const char *db, const char *worker_id, const char *task_id, int32_t attempt, int *signo)
{
   char path[4096], line[256];
   int fd;
   FILE *file;
   bool found = false;

   mt_crash_note_path (db, worker_id, path, sizeof path);
   fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
   if (fd < 0) {
      return false;
   }
   file = fdopen (fd, "r");
   if (!file) {
      close (fd);
      return false;
   }
   while (!found && fgets (line, sizeof line, file)) {
      char id[32];
      int a, s;

      if (sscanf (line, "task %31s attempt %d signal %d", id, &a, &s) == 3 && !strcmp (id, task_id) && a == attempt) {
         *signo = s;
         found = true;
      }
   }
   fclose (file);
   return found;
}

/* ---- the handler: async-signal-safe from here to on_fatal --------------- */

static size_t
put (char *buf, size_t n, size_t cap, const char *s)
{
   while (s && *s && n < cap) {
      buf[n++] = *s++;
   }
   return n;
}

static size_t
put_uint (char *buf, size_t n, size_t cap, uint64_t v, int width)
{
   char digits[24];
   int k = 0;

   do {
      digits[k++] = (char) ('0' + v % 10);
      v /= 10;
   } while (v && k < (int) sizeof digits);
   while (k < width && k < (int) sizeof digits) {
      digits[k++] = '0';
   }
   while (k > 0 && n < cap) {
      buf[n++] = digits[--k];
   }
   return n;
}

/* 2026-11-28T12:00:00.000Z, as the worker's log says it, by arithmetic
 * (gmtime_r is not async-signal-safe). */
static size_t
put_timestamp (char *buf, size_t n, size_t cap)
{
   struct timespec ts;
   int64_t days, secs, z, era, doe, yoe, y, doy, mp, d, m;

   if (clock_gettime (CLOCK_REALTIME, &ts) != 0) {
      return put (buf, n, cap, "?");
   }
   days = (int64_t) ts.tv_sec / 86400;
   secs = (int64_t) ts.tv_sec % 86400;
   z = days + 719468;
   era = (z >= 0 ? z : z - 146096) / 146097;
   doe = z - era * 146097;
   yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
   y = yoe + era * 400;
   doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
   mp = (5 * doy + 2) / 153;
   d = doy - (153 * mp + 2) / 5 + 1;
   m = mp < 10 ? mp + 3 : mp - 9;
   y += m <= 2;
   n = put_uint (buf, n, cap, (uint64_t) y, 4);
   n = put (buf, n, cap, "-");
   n = put_uint (buf, n, cap, (uint64_t) m, 2);
   n = put (buf, n, cap, "-");
   n = put_uint (buf, n, cap, (uint64_t) d, 2);
   n = put (buf, n, cap, "T");
   n = put_uint (buf, n, cap, (uint64_t) (secs / 3600), 2);
   n = put (buf, n, cap, ":");
   n = put_uint (buf, n, cap, (uint64_t) (secs / 60 % 60), 2);
   n = put (buf, n, cap, ":");
   n = put_uint (buf, n, cap, (uint64_t) (secs % 60), 2);
   n = put (buf, n, cap, ".");
   n = put_uint (buf, n, cap, (uint64_t) (ts.tv_nsec / 1000000L), 3);
   return put (buf, n, cap, "Z");
}

static void
write_all (int fd, const char *buf, size_t n)
{
   while (n > 0) {
      ssize_t w = write (fd, buf, n);

      if (w < 0 && errno == EINTR) {
         continue;
      }
      if (w <= 0) {
         return;
      }
      buf += w;
      n -= (size_t) w;
   }
}

static void
on_fatal (int signo, siginfo_t *info, void *context)
{
   const mt_crash_thread_t *t = current ? current : &idle;
   char buf[2400];
   size_t n = 0, cap = sizeof buf - 1;
   int saved_errno = errno;
   size_t i;

   (void) info;
   (void) context;
   if (t->mid[0]) {
      n = put (buf, n, cap, t->json ? "{ \"ts\" : \"" : "");
      n = put_timestamp (buf, n, cap);
      n = put (buf, n, cap, t->mid);
      n = put_uint (buf, n, cap, (uint64_t) signo, 1);
      n = put (buf, n, cap, " (");
      n = put (buf, n, cap, mt_crash_signal_name (signo));
      n = put (buf, n, cap, t->tail);
      write_all (STDERR_FILENO, buf, n);
   }
   if (current && t->note_fd >= 0) {
      n = put (buf, 0, cap, t->note);
      n = put_uint (buf, n, cap, (uint64_t) signo, 1);
      n = put (buf, n, cap, "\n");
      write_all (t->note_fd, buf, n);
   }
   /* Hand over to what was there before (a sanitizer's report, a coverage
    * dump), or the default action: the process dies of the signal. */
   for (i = 0; i < N_FATAL && fatal_signals[i] != signo; i++) {
   }
   if (i < N_FATAL && previous[i].sa_handler != SIG_IGN) {
      sigaction (signo, &previous[i], NULL);
   } else {
      signal (signo, SIG_DFL);
   }
   errno = saved_errno;
   raise (signo); /* delivered once this handler returns; a fault also recurs */
}

/* ---- setting it up -------------------------------------------------------- */

static void
install (void)
{
   struct sigaction sa;

   memset (&sa, 0, sizeof sa);
   sa.sa_sigaction = on_fatal;
   sa.sa_flags = SA_SIGINFO;
   sigemptyset (&sa.sa_mask);
   for (size_t i = 0; i < N_FATAL; i++) {
      sigaction (fatal_signals[i], &sa, &previous[i]);
   }
}

/* `src` into `dst` as the inside of a JSON string. */
static void
json_escape (char *dst, size_t size, const char *src)
{
   size_t n = 0;

   for (const unsigned char *c = (const unsigned char *) src; *c && n + 7 < size; c++) {
      if (*c == '"' || *c == '\\') {
         dst[n++] = '\\';
         dst[n++] = (char) *c;
      } else if (*c < 0x20) {
         n += (size_t) bson_snprintf (dst + n, size - n, "\\u%04x", *c);
      } else {
         dst[n++] = (char) *c;
      }
   }
   dst[n] = '\0';
}

/* The line around the signal: `message` follows "... signal N (NAME". */
static void
format_line (mt_crash_thread_t *t, bool json, const char *worker_id, const char *message)
{
   const char *head = "the worker crashed with signal ";
   const char *level = mt_log_level_name (MT_LOG_ERROR);

   t->json = json;
   if (json) {
      char id[300], msg[1200];

      json_escape (id, sizeof id, worker_id);
      json_escape (msg, sizeof msg, message);
      bson_snprintf (t->mid, sizeof t->mid, "\", \"level\" : \"%s\", \"worker\" : \"%s\", \"msg\" : \"%s", level, id, head);
      bson_snprintf (t->tail, sizeof t->tail, "%s\" }\n", msg);
   } else {
      bson_snprintf (t->mid, sizeof t->mid, " %-7s %s", level, head);
      bson_snprintf (t->tail, sizeof t->tail, "%s\n", message);
   }
}

int
mt_crash_arm (const char *db, const char *worker_id, bool json, bson_error_t *error)
{
   char path[4096];
   int fd;

   format_line (&idle, json, worker_id, ") outside any task");
   idle.note_fd = -1;
   pthread_once (&install_once, install);
   mt_crash_note_path (db, worker_id, path, sizeof path);
   fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
   if (fd < 0) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "cannot open the crash note file %s: %s; a crash will be logged but not recorded on its task "
                      "(set MTASK_STATE_DIR to a writable directory)",
                      path,
                      strerror (errno));
   }
   return fd;
}

void
mt_crash_disarm (int fd, const char *db, const char *worker_id)
{
   char path[4096];

   if (fd < 0) {
      return;
   }
   close (fd);
   mt_crash_note_path (db, worker_id, path, sizeof path);
   unlink (path);
}

void
mt_crash_task_begin (mt_crash_thread_t *thread,
                     int note_fd,
                     const char *worker_id,
                     bool json,
                     const char *task_id,
                     const char *type,
                     int32_t attempt)
{
   char message[1200];

   bson_snprintf (message,
                  sizeof message,
                  ") while running task %s of type '%s' (attempt %" PRId32
                  ") on this thread; the task gets this as its error when a worker starts again under id '%s'",
                  task_id,
                  type,
                  attempt,
                  worker_id);
   format_line (thread, json, worker_id, message);
   thread->note_fd = note_fd;
   bson_snprintf (thread->note, sizeof thread->note, "task %s attempt %" PRId32 " signal ", task_id, attempt);
   current = thread;
}

void
mt_crash_task_end (void)
{
   current = NULL;
}
