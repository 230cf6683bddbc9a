/* The plugin loader: each failure names the file and the cause. */
#include "mt-test.h"
#include "mtask-private.h"

#include <unistd.h>

static const mt_host_api_t host = {.abi_version = MT_PLUGIN_ABI_VERSION, .struct_size = sizeof (mt_host_api_t)};

static char *
bad_plugin (const char *name)
{
   return bson_strdup_printf ("%s/%s.so", mt_test_env ("MTASK_BAD_PLUGIN_DIR"), name);
}

static void
expect_refused (const char *name, uint32_t code, const char *fragment)
{
   mt_plugin_set_t *set = mt_plugin_set_new (&host);
   char *path = bad_plugin (name);
   bson_error_t error;
   char *file = bson_strdup_printf ("plugin '%s.so'", name);

   ASSERT (!mt_plugin_set_load_file (set, path, &error));
   ASSERT_CMPINT (error.domain, ==, MT_ERROR_PLUGIN);
   ASSERT_CMPINT (error.code, ==, code);
   ASSERT_CONTAINS (error.message, file);
   ASSERT_CONTAINS (error.message, fragment);
   ASSERT_CMPINT (mt_plugin_set_count (set), ==, 0);
   bson_free (file);
   bson_free (path);
   mt_plugin_set_destroy (set);
}

static void
test_wrong_abi (void)
{
   expect_refused ("bad_abi", MT_PLUGIN_ERROR_ABI, "ABI version 2, this worker speaks 1; rebuild the plugin against mtask 1.x");
}

static void
test_no_entry (void)
{
   expect_refused ("no_entry", MT_PLUGIN_ERROR_NO_ENTRY, "no function mt_plugin_entry()");
}

static void
test_no_process (void)
{
   expect_refused ("no_process", MT_PLUGIN_ERROR_INVALID, "task type 'no_process' has no process callback");
}

static void
test_no_type (void)
{
   expect_refused ("no_type", MT_PLUGIN_ERROR_INVALID, "no task type");
}

static void
test_small_struct (void)
{
   expect_refused ("small_struct", MT_PLUGIN_ERROR_SIZE, "descriptor of 8 bytes is too small");
}

static void
test_null_descriptor (void)
{
   expect_refused ("null_descriptor", MT_PLUGIN_ERROR_INVALID, "returned NULL");
}

static void
test_init_fails (void)
{
   expect_refused ("init_fail", MT_PLUGIN_ERROR_INIT, "init of task type 'init_fail' failed: missing API key in REPORT_KEY");
}

static void
test_not_a_shared_object (void)
{
   mt_plugin_set_t *set = mt_plugin_set_new (&host);
   bson_error_t error;

   ASSERT (!mt_plugin_set_load_file (set, "/nonexistent/ghost.so", &error));
   ASSERT_CMPINT (error.code, ==, MT_PLUGIN_ERROR_OPEN);
   ASSERT_CONTAINS (error.message, "plugin 'ghost.so': cannot load");
   mt_plugin_set_destroy (set);
}

static void
test_duplicate_type (void)
{
   mt_plugin_set_t *set = mt_plugin_set_new (&host);
   char *echo = bson_strdup_printf ("%s/echo.so", mt_test_env ("MTASK_PLUGIN_DIR"));
   char *dup = bad_plugin ("dup_echo");
   bson_error_t error;

   ASSERT_OR_PRINT (mt_plugin_set_load_file (set, echo, &error), error);
   ASSERT (!mt_plugin_set_load_file (set, dup, &error));
   ASSERT_CMPINT (error.code, ==, MT_PLUGIN_ERROR_DUPLICATE);
   ASSERT_CONTAINS (error.message, "plugin 'dup_echo.so': task type 'echo' is already served by 'echo.so'");
   ASSERT_CMPINT (mt_plugin_set_count (set), ==, 1);
   bson_free (echo);
   bson_free (dup);
   mt_plugin_set_destroy (set);
}

static void
test_shipped_dir (void)
{
   mt_plugin_set_t *set = mt_plugin_set_new (&host);
   bson_error_t error;

   ASSERT_OR_PRINT (mt_plugin_set_load_dir (set, mt_test_env ("MTASK_PLUGIN_DIR"), &error), error);
   ASSERT_CMPINT (mt_plugin_set_count (set), ==, 5);
   ASSERT (mt_plugin_set_find (set, "transfer"));
   ASSERT (mt_plugin_set_find (set, "echo"));
   ASSERT (mt_plugin_set_find (set, "sleep"));
   ASSERT (mt_plugin_set_find (set, "fail"));
   ASSERT (mt_plugin_set_find (set, "crash"));
   ASSERT (!mt_plugin_set_find (set, "nope"));
   mt_plugin_set_destroy (set);
}

static void
test_missing_dir (void)
{
   mt_plugin_set_t *set = mt_plugin_set_new (&host);
   bson_error_t error;

   ASSERT (!mt_plugin_set_load_dir (set, "/nonexistent/plugins", &error));
   ASSERT_CMPINT (error.code, ==, MT_PLUGIN_ERROR_DIR);
   ASSERT_CONTAINS (error.message, "cannot read plugin directory '/nonexistent/plugins': No such file or directory");
   mt_plugin_set_destroy (set);
}

static bool
builtin_process (mt_task_t *task, void *state, bson_error_t *error)
{
   (void) task, (void) state, (void) error;
   return true;
}

static void
test_builtin (void)
{
   static const mt_plugin_t good = {.abi_version = MT_PLUGIN_ABI_VERSION,
                                    .struct_size = sizeof (mt_plugin_t),
                                    .type = "inline",
                                    .process = builtin_process};
   static const mt_plugin_t old = {.abi_version = 0, .struct_size = sizeof (mt_plugin_t), .type = "old", .process = builtin_process};
   mt_plugin_set_t *set = mt_plugin_set_new (&host);
   bson_error_t error;

   ASSERT_OR_PRINT (mt_plugin_set_add_builtin (set, &good, &error), error);
   ASSERT (!mt_plugin_set_add_builtin (set, &good, &error));
   ASSERT_CMPINT (error.code, ==, MT_PLUGIN_ERROR_DUPLICATE);
   ASSERT (!mt_plugin_set_add_builtin (set, &old, &error));
   ASSERT_CONTAINS (error.message, "ABI version 0, this worker speaks 1");
   mt_plugin_set_destroy (set);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/loader/refuse/wrong_abi", test_wrong_abi);
   mt_test_add ("/loader/refuse/no_entry", test_no_entry);
   mt_test_add ("/loader/refuse/no_process", test_no_process);
   mt_test_add ("/loader/refuse/no_type", test_no_type);
   mt_test_add ("/loader/refuse/small_struct", test_small_struct);
   mt_test_add ("/loader/refuse/null_descriptor", test_null_descriptor);
   mt_test_add ("/loader/refuse/init_fails", test_init_fails);
   mt_test_add ("/loader/refuse/not_a_shared_object", test_not_a_shared_object);
   mt_test_add ("/loader/refuse/duplicate_type", test_duplicate_type);
   mt_test_add ("/loader/dir/shipped", test_shipped_dir);
   mt_test_add ("/loader/dir/missing", test_missing_dir);
   mt_test_add ("/loader/builtin", test_builtin);
   return mt_test_main (argc, argv);
}
