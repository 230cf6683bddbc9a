/* Crash notes: what a worker thread was running when the process died of a
 * signal (core/src/crash.c). Services layer: no database. */
#ifndef MTASK_CRASH_H
#define MTASK_CRASH_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

/* What one thread runs now, preformatted when the task starts so that the
 * signal handler only copies bytes and calls write(2). */
typedef struct {
   bool json;        /* the log line is a JSON object */
   int note_fd;      /* the worker's crash note file, or -1 */
   char mid[640];    /* the log line from after its time stamp up to the signal number */
   char tail[1400];  /* the log line after the signal's name, newline included */
   char note[128];   /* "task ID attempt N signal " */
} mt_crash_thread_t;

/* The path of the crash note file of worker `worker_id` on database `db`:
 * in $MTASK_STATE_DIR, else $XDG_RUNTIME_DIR, else /tmp; named
 * mtask-crash-DB-ID with bytes other than [A-Za-z0-9._-] as %XX. */
void mt_crash_note_path (const char *db, const char *worker_id, char *out, size_t size);

/* Whether the crash note of (db, worker_id) says that attempt `attempt` of
 * task `task_id` (24 hex digits) was running when its worker died; the
 * signal in *signo. */
bool mt_crash_note_find (const char *db, const char *worker_id, const char *task_id, int32_t attempt, int *signo);

/* "SIGSEGV" and the like; "a signal" for one not caught here. */
const char *mt_crash_signal_name (int signo);

/* Opens the crash note file of (db, worker_id) afresh (its old notes were
 * read by the start's take-back) and installs the handlers of SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL and SIGABRT (once a process; they hand over to
 * the handlers they replaced, or to the default action). `json`: the log
 * line the handler writes to stderr is a JSON object like the worker's
 * --log-format json lines. Returns the file descriptor, or -1 with `error`
 * (the handlers are installed anyway: the log line still comes). */
int mt_crash_arm (const char *db, const char *worker_id, bool json, bson_error_t *error);

/* Closes the note file and removes it: a clean stop leaves no note. */
void mt_crash_disarm (int fd, const char *db, const char *worker_id);

/* The calling thread runs attempt `attempt` of task `task_id` of type
 * `type` now (mt_crash_task_begin fills `thread`, which must live until
 * mt_crash_task_end), or nothing any more. */
void mt_crash_task_begin (mt_crash_thread_t *thread,
                          int note_fd,
                          const char *worker_id,
                          bool json,
                          const char *task_id,
                          const char *type,
                          int32_t attempt);
void mt_crash_task_end (void);

#endif
