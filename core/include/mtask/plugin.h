/* mtask/plugin.h: the task plugin ABI.
 *
 * A plugin is a shared object that exports one function, mt_plugin_entry(),
 * returning a pointer to a static const mt_plugin_t. Write it with
 * MT_PLUGIN_DEFINE:
 *
 *   #include <mtask/plugin.h>
 *
 *   static bool
 *   hello_process (mt_task_t *task, void *state, bson_error_t *error)
 *   {
 *      (void) state;
 *      mt_task_log (task, MT_LOG_INFO, "hello from task %s", mt_task_id (task));
 *      return mt_task_set_result (task, mt_task_params (task), error);
 *   }
 *
 *   MT_PLUGIN_DEFINE (.type = "hello", .process = hello_process)
 *
 * and build it with
 *   cc -shared -fPIC hello.c -o hello.so $(pkg-config --cflags --libs mtask)
 * (against an mtask installed under a prefix of your own, PKG_CONFIG_PATH
 * names its pkgconfig directory first: docs/plugins.md, "Building").
 *
 * The header compiles without a warning as C99 or later and as C++11 or
 * later (g++, clang++) with -Wall -Wextra -pedantic. In C++, MT_PLUGIN_DEFINE
 * gives mt_plugin_entry C linkage itself; an entry written by hand needs
 * `extern "C"`, or the loader cannot find it under its mangled name.
 *
 * A plugin links libbson and nothing of mtask's: everything the host offers
 * reaches it through the mt_host_api_t table that every mt_task_t carries.
 *
 * Compatibility rules (they are the contract):
 * - MT_PLUGIN_ABI_VERSION changes only when a change breaks old plugins. The
 *   loader checks it first and refuses a mismatch.
 * - mt_plugin_t and mt_host_api_t only ever grow at the end. Both carry
 *   struct_size, so a host reads only what a plugin provides and a plugin can
 *   test whether the host offers a newer entry (MT_HOST_HAS).
 *
 * Rules of the road (docs/plugins.md, "The rules", says more):
 * - Errors of a plugin's own: return false with `error` set. The domain and
 *   code are stored in the task's `error` as given. Use MT_ERROR_TASK with
 *   MT_TASK_ERROR_FAILED, or a domain of the plugin's own at 10000 or above
 *   (libmongoc's are below 1000; mtask's are 1000 to 9999) with codes of its
 *   own. Domain 0 counts as "no error given": the task then fails with
 *   MT_ERROR_PLUGIN / MT_PLUGIN_ERROR_PROCESS.
 * - mt_task_log cuts a message at 1023 bytes (MT_TASK_LOG_MAX).
 * - The client of mt_task_mongoc_client belongs to the worker thread running
 *   the task: use it during process() on that thread only, never share it
 *   with another thread nor keep it. Calling libmongoc needs its flags too:
 *   `pkg-config --cflags --libs mtask libmongoc-1.0`.
 * - set_result copies the document when called (a second call replaces
 *   it); the copy is written with the outcome when process() returns.
 * - The slot callbacks (on_keepalive, on_timeout, on_stop) run on the
 *   worker's upkeep thread while process() runs: they may read the task
 *   and log, and must not change the run (set_result, set_status, delay,
 *   keepalive, locks, enqueue) nor use mt_task_mongoc_client.
 * - Under `mtask-worker --isolate fork` every process() runs in a child
 *   process: what it changes in the plugin's state or in memory does not
 *   reach the worker, nor the next task. Only what reaches the task (result,
 *   status, delay, log lines, the database) survives the child.
 */
#ifndef MTASK_PLUGIN_H
#define MTASK_PLUGIN_H

#include <bson/bson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MT_PLUGIN_ABI_VERSION 1u
#define MT_PLUGIN_ENTRY_SYMBOL "mt_plugin_entry"

#if defined(__GNUC__)
#define MT_PLUGIN_EXPORT __attribute__ ((visibility ("default")))
#else
#define MT_PLUGIN_EXPORT
#endif

/* Task statuses: strings stored in the tasks collection's `status` field. */
#define MT_STATUS_CREATED "CREATED"
#define MT_STATUS_WORK_IN_PROGRESS "WORK_IN_PROGRESS"
#define MT_STATUS_FINISHED "FINISHED"
#define MT_STATUS_FAILED "FAILED"
#define MT_STATUS_CANCELLED "CANCELLED"
#define MT_STATUS_WAITING "WAITING"

/* Error domains of mtask; codes are per domain. Driver errors (mongoc's own
 * domains, all below 1000) pass through unchanged. */
typedef enum {
   MT_ERROR_STORE = 1000,  /* the tasks collection: claims, writes, queries */
   MT_ERROR_PLUGIN = 1001, /* loading or running a plugin */
   MT_ERROR_TASK = 1002,   /* a task document, or a task's own failure */
   MT_ERROR_CONFIG = 1003, /* options, flags, configuration */
   MT_ERROR_LOCK = 1004,   /* account locks */
} mt_error_domain_t;

typedef enum {
   /* MT_ERROR_PLUGIN */
   MT_PLUGIN_ERROR_OPEN = 1,        /* dlopen failed */
   MT_PLUGIN_ERROR_NO_ENTRY,        /* no mt_plugin_entry symbol */
   MT_PLUGIN_ERROR_ABI,             /* wrong abi_version */
   MT_PLUGIN_ERROR_SIZE,            /* struct_size too small */
   MT_PLUGIN_ERROR_INVALID,         /* missing type or process */
   MT_PLUGIN_ERROR_DUPLICATE,       /* two plugins for one task type */
   MT_PLUGIN_ERROR_INIT,            /* init callback failed */
   MT_PLUGIN_ERROR_DIR,             /* a plugin directory cannot be read */
   MT_PLUGIN_ERROR_PROCESS,         /* process() failed without saying why */
   MT_PLUGIN_ERROR_API,             /* a host API call was misused */
} mt_plugin_error_code_t;

typedef enum {
   /* MT_ERROR_TASK */
   MT_TASK_ERROR_MALFORMED = 1, /* a field is missing or has the wrong type */
   MT_TASK_ERROR_FAILED,        /* the plugin reported a failure */
   MT_TASK_ERROR_BAD_STATUS,    /* a status string mtask does not know */
   MT_TASK_ERROR_CRASHED,       /* process() died (isolated: a signal or an exit) */
   MT_TASK_ERROR_TIMEOUT,       /* process() ran past the task's `timeout` (isolated) */
   MT_TASK_ERROR_WORKER_LOST,   /* the worker running it stopped sending heartbeats */
} mt_task_error_code_t;

typedef enum {
   /* MT_ERROR_LOCK */
   MT_LOCK_ERROR_BUSY = 1, /* another running task holds an account */
   MT_LOCK_ERROR_NESTED,   /* a scoped lock inside another of the same task */
   MT_LOCK_ERROR_INVALID,  /* an account name that cannot be locked */
} mt_lock_error_code_t;

typedef enum {
   MT_LOG_ERROR = 0,
   MT_LOG_WARNING = 1,
   MT_LOG_INFO = 2,
   MT_LOG_DEBUG = 3,
} mt_log_level_t;

typedef struct _mt_host_api_t mt_host_api_t;

/* The running task, as a plugin sees it. Only `host` is public; the host
 * keeps its own state after it. A handle is valid during process() only. */
typedef struct _mt_task_t {
   const mt_host_api_t *host;
} mt_task_t;

/* What the host offers a plugin. Entries are appended, never reordered. */
struct _mt_host_api_t {
   uint32_t abi_version;
   uint32_t struct_size;

   /* The task: its id as 24 hex digits, type, queue, params (an empty
    * document when the task has none) and attempt number (1 on the first
    * claim). Pointers stay valid during process(). */
   const char *(*task_id) (const mt_task_t *task);
   const char *(*task_type) (const mt_task_t *task);
   const char *(*task_queue) (const mt_task_t *task);
   const bson_t *(*task_params) (const mt_task_t *task);
   int32_t (*task_attempt) (const mt_task_t *task);

   /* Outcome, written when process() returns: `result`, and a status that
    * wins over the default (FINISHED on success, FAILED on error). Allowed:
    * FINISHED, FAILED, CANCELLED. Of set_status, delay and
    * fail_permanently, the last call wins. What each combination with
    * process()'s return means (docs/plugins.md, "Outcomes"):
    *   return true                      FINISHED
    *   return false                     a failure: counted in `failures`;
    *                                    retried after a backoff while
    *                                    fewer than max_attempts failed,
    *                                    else FAILED
    *   delay (s), return true           CREATED again at now + s; not a
    *                                    failure, not counted
    *   delay (s), return false          a failure, counted as above; the
    *                                    retry waits s instead of the backoff
    *   fail_permanently, return false   FAILED now, with the error; no retry
    *   set_status (FAILED), false       the same
    *   set_status (CANCELLED), either   CANCELLED (with the error, if false)
    *   set_status (FAILED), true        FAILED, no retry, with an error saying
    *                                    the plugin gave none; logs a warning
    *   set_status (FINISHED), false     the failure wins (counted, retried);
    *                                    logs a warning
    *   true with `error` filled in      success; the error is not recorded;
    *                                    logs a warning
    * Each claim starts clean: `result`, `error` and `status_message` of an
    * earlier attempt are gone (its error stays in `errors`). set_result refuses (MT_PLUGIN_ERROR_API,
    * naming the key or the size) a result MongoDB could not store: a key,
    * at any depth, that starts with '$' or contains '.', or a size that
    * would take the task's document past 16 MiB (64 KiB kept for the rest
    * of the outcome). */
   bool (*set_result) (mt_task_t *task, const bson_t *result, bson_error_t *error);
   bool (*set_status) (mt_task_t *task, const char *status, bson_error_t *error);

   /* Written to the task document at once, for whoever is watching. */
   bool (*set_status_message) (mt_task_t *task, const char *message, bson_error_t *error);

   /* Not now: when process() returns true, the task goes back to CREATED
    * with `delayed` = now + seconds (seed 001's _set_delay). Not a
    * failure: it does not count against max_attempts (`attempts`, the
    * claims, still counts it). When process() returns false the failure
    * wins: it counts, and the delay is its retry's wait. */
   bool (*delay) (mt_task_t *task, double seconds, bson_error_t *error);

   /* A line in the worker's log, tagged with the task. mt_task_log formats
    * into MT_TASK_LOG_MAX bytes: a longer message is cut there. */
   void (*log) (mt_task_t *task, mt_log_level_t level, const char *message);

   /* ---- added in 0.2: account locks (seed 001) ---- */

   /* Locks the accounts for this task, all or nothing: it succeeds when no
    * other running task holds any of them (accounts this task already holds
    * are fine) and fails with MT_LOCK_ERROR_BUSY otherwise, leaving nothing
    * newly taken. Accounts are taken in a fixed order. */
   bool (*lock_accounts) (mt_task_t *task, const char *const *accounts, size_t n_accounts, bson_error_t *error);
   /* Releases accounts this task holds (others are ignored). */
   bool (*unlock_accounts) (mt_task_t *task, const char *const *accounts, size_t n_accounts, bson_error_t *error);
   /* Every account the task holds now, sorted, NULL-terminated; valid until
    * the next lock call. */
   const char *const *(*held_accounts) (mt_task_t *task);
   /* The scoped form (seed 001's AccountLockContext): locks, calls `fn`,
    * releases what it took, and returns what `fn` returned. Refused with
    * MT_LOCK_ERROR_NESTED inside another scoped lock of the same task. */
   bool (*with_accounts) (mt_task_t *task,
                          const char *const *accounts,
                          size_t n_accounts,
                          bool (*fn) (mt_task_t *task, void *data, bson_error_t *error),
                          void *data,
                          bson_error_t *error);

   /* The worker thread's database connection, a mongoc_client_t * (cast it;
    * do not destroy it), and the database name. Valid during process(), and
    * on the thread that runs it only: a mongoc_client_t is not thread-safe,
    * so never hand it to another thread nor keep it past process(). Using
    * it needs libmongoc: pkg-config --cflags --libs mtask libmongoc-1.0. */
   void *(*mongoc_client) (mt_task_t *task);
   const char *(*db_name) (mt_task_t *task);

   /* A follow-up task, as mt_enqueue: `opts` may hold its options (delay
    * or run_at, priority, max_attempts, repeat or cron and timezone,
    * repeat_until, unique_key, verbose_name, creator). `id_out` (may be
    * NULL) gets its id as 24 hex digits and a NUL (25 bytes): with a
    * unique_key already held, the id of the task holding it. */
   bool (*enqueue) (mt_task_t *task,
                    const char *queue,
                    const char *type,
                    const bson_t *params,
                    const bson_t *opts,
                    char *id_out,
                    bson_error_t *error);

   /* Concurrency slots: keep this task's slot alive (seed 002's keepalive),
    * and whether the task has been stopped or timed out. */
   bool (*keepalive) (mt_task_t *task, bson_error_t *error);
   bool (*should_stop) (mt_task_t *task);

   /* ---- appended: failing for good ---- */

   /* A permanent failure (bad input, say): when process() returns false,
    * the task ends FAILED with that error at once, its remaining attempts
    * unspent. The same as set_status (FAILED); test MT_HOST_HAS
    * (host, fail_permanently) or use mt_task_fail_permanently (), which
    * falls back to set_status on an older host. */
   void (*fail_permanently) (mt_task_t *task);

   /* ---- appended: the worker, for init and fini ---- */

   /* The worker itself rather than a task, for init and fini (which run
    * with no task) and threads of the plugin's own. `host` is the pointer
    * init received (keep it in the state for fini: it stays valid until
    * fini has returned) or a task's task->host. Test MT_HOST_HAS (host,
    * log_global) first; mt_host_log does.
    * log_global: a line in the worker's log, in its format (a JSON object
    * with --log-format json), at `level`, cut at 2 KiB. Any thread.
    * global_uri: the MongoDB URI the worker connects with (it may carry
    * credentials: never log it), for a plugin that wants a client of its
    * own; global_db_name: the database holding the tasks. */
   void (*log_global) (const mt_host_api_t *host, mt_log_level_t level, const char *message);
   const char *(*global_uri) (const mt_host_api_t *host);
   const char *(*global_db_name) (const mt_host_api_t *host);
};

/* True when the host's table includes `member` (for entries added later). */
#define MT_HOST_HAS(host, member) \
   ((host)->struct_size >= offsetof (mt_host_api_t, member) + sizeof ((host)->member))

/* The descriptor a plugin returns. Entries are appended, never reordered. */
typedef struct _mt_plugin_t {
   uint32_t abi_version; /* MT_PLUGIN_ABI_VERSION */
   uint32_t struct_size; /* sizeof (mt_plugin_t) */

   const char *type;        /* required: the task type this plugin runs */
   const char *description; /* optional: one line for logs and --help */

   /* Optional: called once when the worker loads the plugin, before any
    * task. `*state` is the plugin's own; it is passed back to process() and
    * fini(). Return false with `error` set to refuse to load. */
   bool (*init) (const mt_host_api_t *host, void **state, bson_error_t *error);

   /* Optional: called once when the worker unloads the plugin. */
   void (*fini) (void *state);

   /* Required: run one task. May block as long as it needs; other tasks run
    * on other threads. Return false with `error` set when the task failed. It
    * may be called from several threads at once. Under --isolate fork it runs
    * in a child process: changes to `state` (or any memory) do not reach the
    * worker nor later tasks. */
   bool (*process) (mt_task_t *task, void *state, bson_error_t *error);

   /* ---- added in 0.2 ---- */

   /* The retry budget of this type's tasks when a task does not carry its
    * own `max_attempts`; 0 = the worker's default. */
   int32_t max_attempts;

   /* Concurrency slots (seed 002). `pool`: the slot pool this type's tasks
    * run in, unless a task names its own `pool`; NULL = none. The callbacks
    * are optional; they run on the worker's upkeep thread while
    * process() still runs, so they must be short and thread-safe:
    * on_keepalive when a keepalive for the task arrived, on_timeout when its
    * slot was taken back for want of one, on_stop when the task is being
    * stopped (after a timeout, or by mt_slot_stop). process() should then
    * return soon: mt_task_should_stop() tells it. */
   const char *pool;
   void (*on_keepalive) (mt_task_t *task, void *state);
   void (*on_timeout) (mt_task_t *task, void *state);
   void (*on_stop) (mt_task_t *task, void *state);
} mt_plugin_t;

typedef const mt_plugin_t *(*mt_plugin_entry_fn) (void);

/* MT_PLUGIN_DEFINE (.type = "hello", .process = hello_process): the entry
 * function and its static descriptor, with abi_version and struct_size filled
 * in; the arguments set the other members, in any order, and every member
 * left out is NULL or 0.
 *
 * In C the arguments are designated initializers. In C++ the entry gets C
 * linkage (extern "C": a mangled name is not found by the loader), and the
 * descriptor is built member by member (`descriptor.type = "hello";`
 * for each argument), since designated initializers are C++20 only and strict about
 * order there: the same arguments then compile without a warning at
 * -std=c++11 or later with -Wall -Wextra -pedantic. Each argument is one
 * `.member = value`; up to 24 of them.
 */
#ifdef __cplusplus
#define MT_PLUGIN_DEFINE_ASSIGN(arg) descriptor arg;
#define MT_PLUGIN_DEFINE_NTH(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, N, ...) N
#define MT_PLUGIN_DEFINE_COUNT(...) MT_PLUGIN_DEFINE_NTH (__VA_ARGS__, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define MT_PLUGIN_DEFINE_CAT(a, b) MT_PLUGIN_DEFINE_CAT2 (a, b)
#define MT_PLUGIN_DEFINE_CAT2(a, b) a##b
#define MT_PLUGIN_DEFINE_MAP(...) MT_PLUGIN_DEFINE_CAT (MT_PLUGIN_DEFINE_MAP, MT_PLUGIN_DEFINE_COUNT (__VA_ARGS__)) (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP1(a) MT_PLUGIN_DEFINE_ASSIGN (a)
#define MT_PLUGIN_DEFINE_MAP2(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP1 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP3(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP2 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP4(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP3 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP5(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP4 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP6(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP5 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP7(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP6 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP8(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP7 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP9(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP8 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP10(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP9 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP11(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP10 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP12(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP11 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP13(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP12 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP14(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP13 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP15(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP14 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP16(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP15 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP17(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP16 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP18(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP17 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP19(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP18 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP20(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP19 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP21(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP20 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP22(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP21 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP23(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP22 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE_MAP24(a, ...) MT_PLUGIN_DEFINE_ASSIGN (a) MT_PLUGIN_DEFINE_MAP23 (__VA_ARGS__)
#define MT_PLUGIN_DEFINE(...)                                           \
   extern "C" MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void); \
   extern "C" MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void) \
   {                                                                    \
      static const mt_plugin_t descriptor_ = [] {                       \
         mt_plugin_t descriptor = mt_plugin_t ();                       \
         descriptor.abi_version = MT_PLUGIN_ABI_VERSION;                \
         descriptor.struct_size = (uint32_t) sizeof (mt_plugin_t);      \
         MT_PLUGIN_DEFINE_MAP (__VA_ARGS__)                                   \
         return descriptor;                                             \
      }();                                                              \
      return &descriptor_;                                              \
   }
#else
#define MT_PLUGIN_DEFINE(...)                                           \
   MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void);          \
   MT_PLUGIN_EXPORT const mt_plugin_t *mt_plugin_entry (void)           \
   {                                                                    \
      static const mt_plugin_t descriptor = {                           \
         .abi_version = MT_PLUGIN_ABI_VERSION,                          \
         .struct_size = (uint32_t) sizeof (mt_plugin_t),                \
         __VA_ARGS__};                                                  \
      return &descriptor;                                               \
   }
#endif

/* Convenience wrappers over task->host. */
static inline const char *
mt_task_id (const mt_task_t *task)
{
   return task->host->task_id (task);
}

static inline const char *
mt_task_type (const mt_task_t *task)
{
   return task->host->task_type (task);
}

static inline const char *
mt_task_queue (const mt_task_t *task)
{
   return task->host->task_queue (task);
}

static inline const bson_t *
mt_task_params (const mt_task_t *task)
{
   return task->host->task_params (task);
}

static inline int32_t
mt_task_attempt (const mt_task_t *task)
{
   return task->host->task_attempt (task);
}

static inline bool
mt_task_set_result (mt_task_t *task, const bson_t *result, bson_error_t *error)
{
   return task->host->set_result (task, result, error);
}

static inline bool
mt_task_set_status (mt_task_t *task, const char *status, bson_error_t *error)
{
   return task->host->set_status (task, status, error);
}

static inline bool
mt_task_set_status_message (mt_task_t *task, const char *message, bson_error_t *error)
{
   return task->host->set_status_message (task, message, error);
}

static inline bool
mt_task_delay (mt_task_t *task, double seconds, bson_error_t *error)
{
   return task->host->delay (task, seconds, error);
}

static inline bool
mt_task_lock_accounts (mt_task_t *task, const char *const *accounts, size_t n_accounts, bson_error_t *error)
{
   return task->host->lock_accounts (task, accounts, n_accounts, error);
}

static inline bool
mt_task_unlock_accounts (mt_task_t *task, const char *const *accounts, size_t n_accounts, bson_error_t *error)
{
   return task->host->unlock_accounts (task, accounts, n_accounts, error);
}

static inline const char *const *
mt_task_held_accounts (mt_task_t *task)
{
   return task->host->held_accounts (task);
}

static inline bool
mt_task_with_accounts (mt_task_t *task,
                       const char *const *accounts,
                       size_t n_accounts,
                       bool (*fn) (mt_task_t *task, void *data, bson_error_t *error),
                       void *data,
                       bson_error_t *error)
{
   return task->host->with_accounts (task, accounts, n_accounts, fn, data, error);
}

static inline void *
mt_task_mongoc_client (mt_task_t *task)
{
   return task->host->mongoc_client (task);
}

static inline const char *
mt_task_db_name (mt_task_t *task)
{
   return task->host->db_name (task);
}

static inline bool
mt_task_enqueue (mt_task_t *task,
                 const char *queue,
                 const char *type,
                 const bson_t *params,
                 const bson_t *opts,
                 char *id_out,
                 bson_error_t *error)
{
   return task->host->enqueue (task, queue, type, params, opts, id_out, error);
}

static inline bool
mt_task_keepalive (mt_task_t *task, bson_error_t *error)
{
   return task->host->keepalive (task, error);
}

static inline bool
mt_task_should_stop (mt_task_t *task)
{
   return task->host->should_stop (task);
}

/* Marks the failure process() is about to return as permanent: no retry.
 * Returns false, so that a plugin can write
 *   bson_set_error (error, MT_ERROR_TASK, MT_TASK_ERROR_FAILED, "no 'width'");
 *   return mt_task_fail_permanently (task); */
static inline bool
mt_task_fail_permanently (mt_task_t *task)
{
   if (MT_HOST_HAS (task->host, fail_permanently)) {
      task->host->fail_permanently (task);
   } else {
      task->host->set_status (task, MT_STATUS_FAILED, NULL);
   }
   return false;
}

/* A line in the worker's log; the formatted message is cut at
 * MT_TASK_LOG_MAX bytes. */
#define MT_TASK_LOG_MAX 1023

static inline void mt_task_log (mt_task_t *task, mt_log_level_t level, const char *format, ...)
#if defined(__GNUC__)
   __attribute__ ((format (printf, 3, 4)))
#endif
   ;

static inline void
mt_task_log (mt_task_t *task, mt_log_level_t level, const char *format, ...)
{
   char message[MT_TASK_LOG_MAX + 1];
   va_list args;

   va_start (args, format);
   vsnprintf (message, sizeof message, format, args);
   va_end (args);
   task->host->log (task, level, message);
}

/* ---- reading params -------------------------------------------------------
 *
 * mt_param_int64 (task, "width", &width, error) and its siblings read one
 * top-level field of the task's params. They return true and set *out, or
 * return false with `error` in domain MT_ERROR_TASK, code
 * MT_TASK_ERROR_MALFORMED, and a message naming the field and what it holds:
 *   param 'width': expected an integer, found a string
 *   param 'width': missing; expected an integer
 * Returning that error from process() fails the attempt with it.
 *
 * Numbers: an integer field accepts int32, int64, and a double holding a
 * whole number within the int64 range (mtaskctl stores 640 as int32 and
 * 2.0 as double); 2.5, NaN or 1e300 are errors. A double field accepts the
 * three (an int64 beyond 2^53 loses precision). Strings (mt_param_utf8),
 * documents and arrays (mt_param_doc, mt_param_array) point into the
 * params: valid while the task runs, never freed by the plugin (bson_t
 * views made with bson_init_static; bson_destroy on them is harmless).
 *
 * The _or forms take a default: a field that is missing or null gives the
 * default; a field of the wrong type is still an error. */

static inline const char *
mt_param_type_name (bson_type_t type)
{
   switch (type) {
   case BSON_TYPE_DOUBLE:
      return "a number";
   case BSON_TYPE_UTF8:
      return "a string";
   case BSON_TYPE_DOCUMENT:
      return "a document";
   case BSON_TYPE_ARRAY:
      return "an array";
   case BSON_TYPE_BINARY:
      return "binary data";
   case BSON_TYPE_OID:
      return "an ObjectId";
   case BSON_TYPE_BOOL:
      return "a boolean";
   case BSON_TYPE_DATE_TIME:
      return "a date";
   case BSON_TYPE_NULL:
      return "null";
   case BSON_TYPE_REGEX:
      return "a regular expression";
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
      return "an integer";
   case BSON_TYPE_TIMESTAMP:
      return "a timestamp";
   case BSON_TYPE_DECIMAL128:
      return "a decimal128";
   default:
      return "a value of another BSON type";
   }
}

/* Finds `key` among the params: true when present (null included). */
static inline bool
mt_param_find (mt_task_t *task, const char *key, bson_iter_t *iter)
{
   const bson_t *params = mt_task_params (task);

   return key && params && bson_iter_init_find (iter, params, key);
}

/* Whether the params hold `key` with a value other than null. */
static inline bool
mt_param_has (mt_task_t *task, const char *key)
{
   bson_iter_t iter;

   return mt_param_find (task, key, &iter) && !BSON_ITER_HOLDS_NULL (&iter);
}

static inline bool
mt_param_fail (bson_error_t *error, const char *key, const char *expected, const bson_iter_t *iter)
{
   if (iter) {
      bson_set_error (error,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_MALFORMED,
                      "param '%s': expected %s, found %s",
                      key ? key : "(null)",
                      expected,
                      mt_param_type_name (bson_iter_type (iter)));
   } else {
      bson_set_error (
         error, MT_ERROR_TASK, MT_TASK_ERROR_MALFORMED, "param '%s': missing; expected %s", key ? key : "(null)", expected);
   }
   return false;
}

/* The value at `iter` as an int64 (see above); `key` names it in errors. */
static inline bool
mt_param_iter_int64 (const bson_iter_t *iter, const char *key, int64_t *out, bson_error_t *error)
{
   double d;

   switch (bson_iter_type (iter)) {
   case BSON_TYPE_INT32:
      *out = (int64_t) bson_iter_int32 (iter);
      return true;
   case BSON_TYPE_INT64:
      *out = bson_iter_int64 (iter);
      return true;
   case BSON_TYPE_DOUBLE:
      d = bson_iter_double (iter);
      /* -2^63 <= d < 2^63, false for NaN. */
      if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
         bson_set_error (error,
                         MT_ERROR_TASK,
                         MT_TASK_ERROR_MALFORMED,
                         "param '%s': expected an integer, found %g, out of the 64-bit range",
                         key,
                         d);
         return false;
      }
      if ((double) (int64_t) d != d) {
         bson_set_error (error,
                         MT_ERROR_TASK,
                         MT_TASK_ERROR_MALFORMED,
                         "param '%s': expected an integer, found %g, not a whole number",
                         key,
                         d);
         return false;
      }
      *out = (int64_t) d;
      return true;
   default:
      return mt_param_fail (error, key, "an integer", iter);
   }
}

static inline bool
mt_param_int64 (mt_task_t *task, const char *key, int64_t *out, bson_error_t *error)
{
   bson_iter_t iter;

   if (!mt_param_find (task, key, &iter)) {
      return mt_param_fail (error, key, "an integer", NULL);
   }
   return mt_param_iter_int64 (&iter, key, out, error);
}

static inline bool
mt_param_int64_or (mt_task_t *task, const char *key, int64_t default_value, int64_t *out, bson_error_t *error)
{
   bson_iter_t iter;

   if (!mt_param_find (task, key, &iter) || BSON_ITER_HOLDS_NULL (&iter)) {
      *out = default_value;
      return true;
   }
   return mt_param_iter_int64 (&iter, key, out, error);
}

static inline bool
mt_param_iter_double (const bson_iter_t *iter, const char *key, double *out, bson_error_t *error)
{
   switch (bson_iter_type (iter)) {
   case BSON_TYPE_INT32:
      *out = (double) bson_iter_int32 (iter);
      return true;
   case BSON_TYPE_INT64:
      *out = (double) bson_iter_int64 (iter);
      return true;
   case BSON_TYPE_DOUBLE:
      *out = bson_iter_double (iter);
      return true;
   default:
      return mt_param_fail (error, key, "a number", iter);
   }
}

static inline bool
mt_param_double (mt_task_t *task, const char *key, double *out, bson_error_t *error)
{
   bson_iter_t iter;

   if (!mt_param_find (task, key, &iter)) {
      return mt_param_fail (error, key, "a number", NULL);
   }
   return mt_param_iter_double (&iter, key, out, error);
}

static inline bool
mt_param_double_or (mt_task_t *task, const char *key, double default_value, double *out, bson_error_t *error)
{
   bson_iter_t iter;

   if (!mt_param_find (task, key, &iter) || BSON_ITER_HOLDS_NULL (&iter)) {
      *out = default_value;
      return true;
   }
   return mt_param_iter_double (&iter, key, out, error);
}

static inline bool
mt_param_utf8 (mt_task_t *task, const char *key, const char **out, bson_error_t *error)
{
   bson_iter_t iter;

   if (!mt_param_find (task, key, &iter)) {
      return mt_param_fail (error, key, "a string", NULL);
   }
   if (!BSON_ITER_HOLDS_UTF8 (&iter)) {
      return mt_param_fail (error, key, "a string", &iter);
   }
   *out = bson_iter_utf8 (&iter, NULL);
   return true;
}

static inline bool
mt_param_utf8_or (mt_task_t *task, const char *key, const char *default_value, const char **out, bson_error_t *error)
{
   if (!mt_param_has (task, key)) {
      *out = default_value;
      return true;
   }
   return mt_param_utf8 (task, key, out, error);
}

static inline bool
mt_param_bool (mt_task_t *task, const char *key, bool *out, bson_error_t *error)
{
   bson_iter_t iter;

   if (!mt_param_find (task, key, &iter)) {
      return mt_param_fail (error, key, "a boolean", NULL);
   }
   if (!BSON_ITER_HOLDS_BOOL (&iter)) {
      return mt_param_fail (error, key, "a boolean", &iter);
   }
   *out = bson_iter_bool (&iter);
   return true;
}

static inline bool
mt_param_bool_or (mt_task_t *task, const char *key, bool default_value, bool *out, bson_error_t *error)
{
   if (!mt_param_has (task, key)) {
      *out = default_value;
      return true;
   }
   return mt_param_bool (task, key, out, error);
}

/* A document (mt_param_doc) or array (mt_param_array) field as a read-only
 * view in *out: read it with bson_iter_init, do not modify it. */
static inline bool
mt_param_subdoc (mt_task_t *task, const char *key, bson_type_t type, bson_t *out, bson_error_t *error)
{
   const char *expected = type == BSON_TYPE_ARRAY ? "an array" : "a document";
   bson_iter_t iter;
   const uint8_t *data = NULL;
   uint32_t len = 0;

   if (!mt_param_find (task, key, &iter)) {
      return mt_param_fail (error, key, expected, NULL);
   }
   if (bson_iter_type (&iter) != type) {
      return mt_param_fail (error, key, expected, &iter);
   }
   if (type == BSON_TYPE_ARRAY) {
      bson_iter_array (&iter, &len, &data);
   } else {
      bson_iter_document (&iter, &len, &data);
   }
   if (!data || !bson_init_static (out, data, (size_t) len)) {
      return mt_param_fail (error, key, expected, &iter);
   }
   return true;
}

static inline bool
mt_param_doc (mt_task_t *task, const char *key, bson_t *out, bson_error_t *error)
{
   return mt_param_subdoc (task, key, BSON_TYPE_DOCUMENT, out, error);
}

static inline bool
mt_param_array (mt_task_t *task, const char *key, bson_t *out, bson_error_t *error)
{
   return mt_param_subdoc (task, key, BSON_TYPE_ARRAY, out, error);
}

/* ---- logging without a task ----------------------------------------------
 *
 * From init, fini or a thread of the plugin's own: a line in the worker's
 * log, formatted as printf does. `host` is the pointer init received. On a
 * worker older than this entry the line goes to stderr instead. */
static inline void mt_host_log (const mt_host_api_t *host, mt_log_level_t level, const char *format, ...)
#if defined(__GNUC__)
   __attribute__ ((format (printf, 3, 4)))
#endif
   ;

static inline void
mt_host_log (const mt_host_api_t *host, mt_log_level_t level, const char *format, ...)
{
   char message[2048];
   va_list args;

   va_start (args, format);
   vsnprintf (message, sizeof message, format, args);
   va_end (args);
   if (host && MT_HOST_HAS (host, log_global) && host->log_global) {
      host->log_global (host, level, message);
   } else {
      fprintf (stderr, "%s\n", message);
   }
}

/* The worker's MongoDB URI and database name; NULL on a worker older than
 * these entries. */
static inline const char *
mt_host_uri (const mt_host_api_t *host)
{
   return host && MT_HOST_HAS (host, global_uri) && host->global_uri ? host->global_uri (host) : NULL;
}

static inline const char *
mt_host_db_name (const mt_host_api_t *host)
{
   return host && MT_HOST_HAS (host, global_db_name) && host->global_db_name ? host->global_db_name (host) : NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* MTASK_PLUGIN_H */
