/* The plugin loader: each failure names the file (its full path) and the
 * cause; a directory is loaded to the end and every refusal is kept. */
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
   char *file = bson_strdup_printf ("plugin '%s'", path);

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
   /* The version it names is the one --version prints. */
   expect_refused ("bad_abi",
                   MT_PLUGIN_ERROR_ABI,
                   "ABI version 2, this worker speaks 1 (mtask " MT_VERSION_STRING
                   "); rebuild the plugin against the <mtask/plugin.h> of mtask " MT_VERSION_STRING);
}

static void
test_no_entry (void)
{
   expect_refused ("no_entry", MT_PLUGIN_ERROR_NO_ENTRY, "no function mt_plugin_entry()");
}

/* A .cpp plugin whose entry lacks extern "C": the message says so, and how
 * to fix it, instead of "no function". */
static void
test_cxx_linkage (void)
{
   char *path = bad_plugin ("cxx_entry");

   if (access (path, F_OK) != 0) {
      bson_free (path);
      mt_test_skip ("no C++ compiler at build time: cxx_entry.so was not built");
   }
   bson_free (path);
   expect_refused ("cxx_entry",
                   MT_PLUGIN_ERROR_NO_ENTRY,
                   "its mt_plugin_entry() has C++ linkage (exported as _Z15mt_plugin_entryv), so the worker cannot find "
                   "it; define the plugin with MT_PLUGIN_DEFINE from <mtask/plugin.h> (which declares it extern \"C\"), "
                   "or declare it extern \"C\"");
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
   ASSERT_CONTAINS (error.message, "plugin '/nonexistent/ghost.so': cannot load");
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
   {
      char *expected = bson_strdup_printf ("plugin '%s': task type 'echo' is already served by '%s'", dup, echo);

      ASSERT_CONTAINS (error.message, expected);
      bson_free (expected);
   }
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

/* Two bad plugins and a good one in one directory: the good one loads, and
 * both bad ones are refused and named, not only the first. */
static void
test_dir_reports_every_refusal (void)
{
   char dir[] = "/tmp/mt-loader-XXXXXX";
   const char *names[] = {"bad_abi", "no_process", NULL};
   char *links[3];
   char *echo = bson_strdup_printf ("%s/echo.so", mt_test_env ("MTASK_PLUGIN_DIR"));
   mt_plugin_set_t *set = mt_plugin_set_new (&host);
   bson_error_t error;

   ASSERT (mkdtemp (dir));
   for (size_t i = 0; names[i]; i++) {
      char *target = bad_plugin (names[i]);

      links[i] = bson_strdup_printf ("%s/%s.so", dir, names[i]);
      ASSERT_CMPINT (symlink (target, links[i]), ==, 0);
      bson_free (target);
   }
   links[2] = bson_strdup_printf ("%s/echo.so", dir);
   ASSERT_CMPINT (symlink (echo, links[2]), ==, 0);

   ASSERT (!mt_plugin_set_load_dir (set, dir, &error));
   /* The first, in file name order, is the error; both are recorded. */
   ASSERT_CMPINT (error.code, ==, MT_PLUGIN_ERROR_ABI);
   ASSERT_CMPINT (mt_plugin_set_refused_count (set), ==, 2);
   ASSERT_CMPINT (mt_plugin_set_refused_at (set, 0)->code, ==, MT_PLUGIN_ERROR_ABI);
   ASSERT_CONTAINS (mt_plugin_set_refused_at (set, 0)->message, links[0]);
   ASSERT_CMPINT (mt_plugin_set_refused_at (set, 1)->code, ==, MT_PLUGIN_ERROR_INVALID);
   ASSERT_CONTAINS (mt_plugin_set_refused_at (set, 1)->message, links[1]);
   ASSERT_CMPINT (mt_plugin_set_count (set), ==, 1);
   ASSERT (mt_plugin_set_find (set, "echo"));

   /* What the worker exits with names both. */
   ASSERT (!mt_plugin_set_report_refused (set, NULL, &error));
   ASSERT_CONTAINS (error.message, "2 plugins would not load: plugin '");
   ASSERT_CONTAINS (error.message, links[0]);
   ASSERT_CONTAINS (error.message, links[1]);

   for (size_t i = 0; i < 3; i++) {
      unlink (links[i]);
      bson_free (links[i]);
   }
   rmdir (dir);
   bson_free (echo);
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
   mt_test_add ("/loader/refuse/cxx_linkage", test_cxx_linkage);
   mt_test_add ("/loader/refuse/no_process", test_no_process);
   mt_test_add ("/loader/refuse/no_type", test_no_type);
   mt_test_add ("/loader/refuse/small_struct", test_small_struct);
   mt_test_add ("/loader/refuse/null_descriptor", test_null_descriptor);
   mt_test_add ("/loader/refuse/init_fails", test_init_fails);
   mt_test_add ("/loader/refuse/not_a_shared_object", test_not_a_shared_object);
   mt_test_add ("/loader/refuse/duplicate_type", test_duplicate_type);
   mt_test_add ("/loader/dir/shipped", test_shipped_dir);
   mt_test_add ("/loader/dir/missing", test_missing_dir);
   mt_test_add ("/loader/dir/every_refusal", test_dir_reports_every_refusal);
   mt_test_add ("/loader/builtin", test_builtin);
   return mt_test_main (argc, argv);
}
