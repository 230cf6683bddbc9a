/* The worker's configuration: each value out of range is refused by
 * mt_worker_new with a message naming it, before anything connects. And
 * the services under it that need no server: the retry policy's backoff,
 * string vectors, the failpoint list. */
#include "mt-test.h"
#include "mtask-private.h"

#include <stdlib.h>
#include <unistd.h>

static bool
noop_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task;
   (void) state;
   (void) error;
   return true;
}

static const mt_plugin_t noop_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .type = "noop",
   .process = noop_process,
};

static const mt_plugin_t nameless_plugin = {
   .abi_version = MT_PLUGIN_ABI_VERSION,
   .struct_size = sizeof (mt_plugin_t),
   .process = noop_process,
};

static const char *const queues[] = {"q", NULL};
static const mt_plugin_t *const builtins[] = {&noop_plugin, NULL};
static const char *const no_dirs[] = {NULL};

/* A configuration that works: one built-in plugin, no directory. */
static void
valid (mt_worker_config_t *config)
{
   mt_worker_config_init (config);
   config->db = "d";
   config->queue_names = queues;
   config->builtin_plugins = builtins;
   config->plugin_dirs = no_dirs;
}

static void
refused (const mt_worker_config_t *config, const char *fragment)
{
   bson_error_t error;

   ASSERT (!mt_worker_new (config, &error));
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_CONFIG);
   ASSERT_CONTAINS (error.message, fragment);
}

static void
test_valid (void)
{
   mt_worker_config_t config;
   bson_error_t error;
   mt_worker_t *worker;

   valid (&config);
   config.isolate = MT_ISOLATE_FORK;
   config.archive = true;
   worker = mt_worker_new (&config, &error);
   ASSERT_OR_PRINT (worker, error);
   ASSERT_CMPSTR (mt_worker_types (worker)[0], "noop");
   mt_worker_stop (worker);
   mt_worker_destroy (worker);
   mt_worker_destroy (NULL);
   mt_worker_stop (NULL);
}

static void
test_refused (void)
{
   const char *empty_queue[] = {"q", "", NULL};
   mt_worker_config_t config;
   bson_error_t error;

   ASSERT (!mt_worker_new (NULL, &error));
   ASSERT_CONTAINS (error.message, "call mt_worker_config_init()");
   valid (&config);
   config.struct_size = 8;
   refused (&config, "call mt_worker_config_init()");

   valid (&config);
   config.db = "";
   refused (&config, "a database name is required");
   valid (&config);
   config.queue_names = NULL;
   refused (&config, "at least one queue name is required");
   valid (&config);
   config.queue_names = empty_queue;
   refused (&config, "a queue name is empty");
   valid (&config);
   config.worker_id = "";
   refused (&config, "the worker id (--pid) must not be empty");
   valid (&config);
   config.concurrency = 1025;
   refused (&config, "concurrency 1025 is out of range");
   valid (&config);
   config.lease_ms = 999;
   refused (&config, "lease 999 ms is out of range");
   valid (&config);
   config.lease_ms = 24 * 3600 * 1000 + 1;
   refused (&config, "is out of range; give 1 s to 1 day");
   valid (&config);
   config.grace_ms = -1;
   refused (&config, "grace is out of range");
   valid (&config);
   config.grace_ms = 24 * 3600 * 1000 + 1;
   refused (&config, "grace is out of range");
   valid (&config);
   config.max_attempts = 0;
   refused (&config, "max_attempts must be 1 or more");
   valid (&config);
   config.retry_backoff_ms = -1;
   refused (&config, "retry backoff is out of range");
   valid (&config);
   config.retry_backoff_ms = 3600 * 1000 + 1;
   refused (&config, "retry backoff is out of range");
   valid (&config);
   config.isolate = (mt_isolate_t) 7;
   refused (&config, "isolate must be MT_ISOLATE_NONE or MT_ISOLATE_FORK");
   valid (&config);
   config.poll_interval_ms = 0;
   refused (&config, "poll interval 0 ms is out of range");
   valid (&config);
   config.poll_interval_ms = 3600 * 1000 + 1;
   refused (&config, "is out of range; give 1 ms to 1 hour");
}

/* A configuration from before the reliability fields (0.1): the fields it
 * lacks keep their defaults, and those it has are not read past its end. */
static void
test_older_struct (void)
{
   mt_worker_config_t config;
   bson_error_t error;
   mt_worker_t *worker;

   valid (&config);
   config.struct_size = (uint32_t) offsetof (mt_worker_config_t, lease_ms);
   config.lease_ms = 1; /* past its end: not read */
   worker = mt_worker_new (&config, &error);
   ASSERT_OR_PRINT (worker, error);
   mt_worker_destroy (worker);
}

static void
test_plugins_refused (void)
{
   const mt_plugin_t *nameless[] = {&nameless_plugin, NULL};
   char a[] = "/tmp/mtask-config-a-XXXXXX", b[] = "/tmp/mtask-config-b-XXXXXX";
   const char *two_dirs[] = {a, b, NULL};
   mt_worker_config_t config;
   bson_error_t error;

   valid (&config);
   config.builtin_plugins = nameless;
   ASSERT (!mt_worker_new (&config, &error));
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_PLUGIN);

   /* Two directories with nothing to load. */
   ASSERT (mkdtemp (a) && mkdtemp (b));
   valid (&config);
   config.builtin_plugins = NULL;
   config.plugin_dirs = two_dirs;
   ASSERT (!mt_worker_new (&config, &error));
   rmdir (a);
   rmdir (b);
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_PLUGIN);
   ASSERT_CONTAINS (error.message, "and others");
}

/* The backoff doubles per attempt up to an hour, with +-25 % jitter. */
static void
test_backoff (void)
{
   mt_context_t ctx;

   mt_context_init (&ctx);
   ctx.retry_backoff_ms = 1000;
   for (int32_t attempt = 1; attempt <= 40; attempt++) {
      int64_t expected = attempt > 12 ? 3600 * 1000 : BSON_MIN (1000 * (INT64_C (1) << (attempt - 1)), 3600 * 1000);
      int64_t ms = mt_retry_backoff_ms (&ctx, attempt);

      ASSERT_CMPINT (ms, >=, expected * 3 / 4);
      ASSERT_CMPINT (ms, <=, expected * 5 / 4);
   }
   /* A type whose plugin sets no budget gets the worker's. */
   mt_retry_set_budget (&ctx, "capped", 2);
   ASSERT_CMPINT (mt_retry_max_attempts (&ctx, "capped", 0), ==, 2);
   ASSERT_CMPINT (mt_retry_max_attempts (&ctx, "capped", 9), ==, 9);
   ASSERT_CMPINT (mt_retry_max_attempts (&ctx, "other", 0), ==, 3);
   ASSERT_CMPINT (mt_retry_max_attempts (&ctx, NULL, 0), ==, 3);
   mt_context_cleanup (&ctx);
}

static void
test_string_vectors (void)
{
   const char *const two[] = {"b", "a", NULL};
   char **copy = mt_strv_copy (two), **none = mt_strv_copy (NULL);
   bson_t array;

   ASSERT_CMPINT (mt_strv_len (copy), ==, 2);
   ASSERT_CMPINT (mt_strv_len (none), ==, 0);
   ASSERT_CMPINT (mt_strv_len (NULL), ==, 0);
   ASSERT (mt_strv_contains (copy, "a"));
   ASSERT (!mt_strv_contains (NULL, "a"));
   mt_strv_to_array (NULL, &array);
   ASSERT (bson_empty (&array));
   bson_destroy (&array);
   mt_strv_to_array (copy, &array);
   ASSERT_CMPINT (bson_count_keys (&array), ==, 2);
   bson_destroy (&array);
   mt_strv_free (copy);
   mt_strv_free (none);
   mt_strv_free (NULL);
}

/* A failpoint fires only when the list names it whole. */
static void
test_failpoint_list (void)
{
#ifdef MT_FAILPOINTS
   setenv ("MTASK_FAILPOINT", "outcome-written,archive-copied", 1);
   mt_failpoint ("outcome");
   mt_failpoint ("copied");
   mt_failpoint ("archive-copied-not");
   setenv ("MTASK_FAILPOINT", "", 1);
   mt_failpoint ("outcome-written");
   unsetenv ("MTASK_FAILPOINT");
   mt_failpoint ("outcome-written");
#else
   mt_test_skip ("built without failpoints");
#endif
}

int
main (int argc, char **argv)
{
   mt_test_add ("/config/valid", test_valid);
   mt_test_add ("/config/refused", test_refused);
   mt_test_add ("/config/older_struct", test_older_struct);
   mt_test_add ("/config/plugins_refused", test_plugins_refused);
   mt_test_add ("/config/backoff", test_backoff);
   mt_test_add ("/config/string_vectors", test_string_vectors);
   mt_test_add ("/config/failpoint_list", test_failpoint_list);
   return mt_test_main (argc, argv);
}
