/* Private to the worker's sources: worker.c (lifecycle, threads), host.c
 * (the host API), run.c (running one task). */
#ifndef MTASK_WORKER_PRIVATE_H
#define MTASK_WORKER_PRIVATE_H

#include "mtask-private.h"

#include <pthread.h>

#define MT_RETRY_MAX_MS 5000
#define MT_OUTCOME_RETRY_LIMIT_MS (60 * 1000)
#define MT_SERVER_SELECTION_MS 5000
#define MT_BUSY_DELAY_S 1.0 /* a task whose account is busy waits about this long */

struct _mt_worker_t {
   mongoc_uri_t *uri;
   char *db;
   char **queues;
   char *worker_id;
   int concurrency;
   int64_t poll_interval_ms;
   bool once;
   mt_log_func_t log_func;
   void *log_data;
   mt_log_level_t log_level;

   mt_plugin_set_t *plugins;
   char **types; /* NULL-terminated, for mt_worker_types */
   bson_t queues_array;
   bson_t types_array;
   mongoc_client_pool_t *pool;

   int wake_pipe[2];
   pthread_mutex_t mutex;
   pthread_cond_t cond;
   bool stopping;      /* under mutex */
   int running_threads; /* under mutex */
   int64_t last_sweep_us; /* under mutex */
   bool failed;           /* under mutex: a --once run gave up */
   bson_error_t failure;  /* under mutex: why */
};

/* The running task behind the plugin's mt_task_t. */
typedef struct {
   mt_task_t base; /* first: the plugin's handle points here */
   mt_worker_t *worker;
   mongoc_client_t *client;
   mongoc_collection_t *tasks;
   bson_t doc;
   mt_task_doc_t parsed;
   bson_t result;
   bool has_result;
   const char *status; /* a static string, or NULL */
   bool delayed;
   double delay_seconds;
   char **held;     /* accounts locked now, sorted, NULL-terminated */
   char **declared; /* the task's own `accounts`, taken at claim */
   bool in_scope;   /* inside with_accounts() */
} mt_running_t;

extern const mt_host_api_t mt_host_api;

void mt_worker_log (mt_worker_t *worker, mt_log_level_t level, const char *format, ...) BSON_GNUC_PRINTF (3, 4);

/* The lock owner of a running task: this run of it. */
mt_lock_owner_t mt_run_owner (const mt_running_t *run);
/* run->held := held + accounts (add) or held - accounts, kept sorted. */
void mt_run_held_update (mt_running_t *run, char *const *accounts, bool add);

/* Runs one claimed task document (stolen) to its outcome. */
void mt_run_task (mt_worker_t *worker, mongoc_client_t *client, mongoc_collection_t *tasks, bson_t *doc);

#endif
