/* The plugin loader: dlopen, one entry function, a versioned descriptor.
 * Checks run in a fixed order and the first failure is the one reported for
 * a file: the entry symbol, the ABI version alone, the size, then the
 * callbacks. A directory is loaded to the end, every file that would not
 * load recorded in the set, so that a worker names them all at once. Each
 * message names the file by its full path. */
#include "mtask-private.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _mt_plugin_set_t {
   const mt_host_api_t *host;
   mt_plugin_entry_t *entries;
   size_t count;
   size_t capacity;
   /* Each plugin (or directory) that would not load, and why. */
   struct {
      char *path;
      bson_error_t why;
   } *refused;
   size_t n_refused;
   char **allowed; /* NULL: every type */
};

/* The entry's name as g++ and clang++ mangle it when a .cpp file defines it
 * without extern "C" (Itanium C++ ABI: a function of no arguments). */
#define MANGLED_ENTRY_SYMBOL "_Z15mt_plugin_entryv"

static void
refuse (mt_plugin_set_t *set, const char *path, const bson_error_t *error)
{
   set->refused = bson_realloc (set->refused, (set->n_refused + 1) * sizeof *set->refused);
   set->refused[set->n_refused].path = bson_strdup (path);
   set->refused[set->n_refused].why = *error;
   set->n_refused++;
}

mt_plugin_set_t *
mt_plugin_set_new (const mt_host_api_t *host)
{
   mt_plugin_set_t *set = bson_malloc0 (sizeof *set);

   set->host = host;
   return set;
}

bool
mt_plugin_check (const mt_plugin_t *plugin, const char *origin, bson_error_t *error)
{
   if (!plugin) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_INVALID,
                      "plugin '%s': %s() returned NULL; it must return its descriptor",
                      origin,
                      MT_PLUGIN_ENTRY_SYMBOL);
      return false;
   }
   if (plugin->abi_version != MT_PLUGIN_ABI_VERSION) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_ABI,
                      "plugin '%s': ABI version %" PRIu32 ", this worker speaks %u (mtask %s); rebuild the plugin "
                      "against the <mtask/plugin.h> of mtask %s",
                      origin,
                      plugin->abi_version,
                      MT_PLUGIN_ABI_VERSION,
                      MT_VERSION_STRING,
                      MT_VERSION_STRING);
      return false;
   }
   if (plugin->struct_size < offsetof (mt_plugin_t, process) + sizeof plugin->process) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_SIZE,
                      "plugin '%s': descriptor of %" PRIu32 " bytes is too small for ABI %u (at least %zu); rebuild "
                      "the plugin with MT_PLUGIN_DEFINE",
                      origin,
                      plugin->struct_size,
                      MT_PLUGIN_ABI_VERSION,
                      offsetof (mt_plugin_t, process) + sizeof plugin->process);
      return false;
   }
   if (!plugin->type || !plugin->type[0]) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_INVALID,
                      "plugin '%s': no task type; set .type to the name tasks use in their 'type' field",
                      origin);
      return false;
   }
   if (!plugin->process) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_INVALID,
                      "plugin '%s': task type '%s' has no process callback; it is the one required callback",
                      origin,
                      plugin->type);
      return false;
   }
   return true;
}

static bool
add_entry (mt_plugin_set_t *set, const mt_plugin_t *plugin, const char *path, void *handle, bson_error_t *error)
{
   const mt_plugin_entry_t *existing = mt_plugin_set_find (set, plugin->type);
   mt_plugin_entry_t *entry;

   if (existing) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_DUPLICATE,
                      "plugin '%s': task type '%s' is already served by '%s'; keep one of the two",
                      path,
                      plugin->type,
                      existing->path);
      return false;
   }
   if (set->count == set->capacity) {
      set->capacity = set->capacity ? set->capacity * 2 : 8;
      set->entries = bson_realloc (set->entries, set->capacity * sizeof *set->entries);
   }
   entry = &set->entries[set->count];
   memset (entry, 0, sizeof *entry);
   entry->descriptor = plugin;
   entry->path = bson_strdup (path);
   entry->handle = handle;

   if (plugin->init) {
      bson_error_t cause = {0};

      if (!plugin->init (set->host, &entry->state, &cause)) {
         bson_set_error (error,
                         MT_ERROR_PLUGIN,
                         MT_PLUGIN_ERROR_INIT,
                         "plugin '%s': init of task type '%s' failed: %s",
                         path,
                         plugin->type,
                         cause.message[0] ? cause.message : "no reason given");
         bson_free (entry->path);
         return false;
      }
   }
   entry->initialized = true;
   set->count++;
   return true;
}

/* Plugins are code the worker runs as its own user: like sshd's
 * StrictModes, a plugin file, its directory and every directory above must
 * be owned by root or the worker's user, and writable by no one else (a
 * directory above may be, with the sticky bit, as /tmp is: then no one
 * else can rename what it holds). Checked before dlopen, which runs a
 * library's constructors. `what` says "plugin" or "plugin directory". */
static bool
check_one (const char *path, const char *shown, const char *what, bool above, int code, bson_error_t *error)
{
   struct stat st;
   uid_t me = geteuid ();

   if (stat (path, &st) != 0) {
      bson_set_error (error, MT_ERROR_PLUGIN, code, "%s '%s': cannot check '%s': %s", what, shown, path, strerror (errno));
      return false;
   }
   if (st.st_uid != 0 && st.st_uid != me) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      code,
                      "%s '%s': refused, '%s' is owned by uid %u, not by root or the worker's user (uid %u), who "
                      "could put code there that the worker would run; chown it to root or uid %u",
                      what,
                      shown,
                      path,
                      (unsigned) st.st_uid,
                      (unsigned) me,
                      (unsigned) me);
      return false;
   }
   if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(above && S_ISDIR (st.st_mode) && (st.st_mode & S_ISVTX))) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      code,
                      "%s '%s': refused, '%s' is writable by %s (mode %04o), who could put code there that the "
                      "worker would run; chmod go-w '%s'",
                      what,
                      shown,
                      path,
                      st.st_mode & S_IWOTH ? "every user" : "its group",
                      (unsigned) (st.st_mode & 07777),
                      path);
      return false;
   }
   return true;
}

/* `path` (a plugin file or directory) and every directory above it. */
static bool
check_trusted (const char *path, bool is_dir, bson_error_t *error)
{
   const char *what = is_dir ? "plugin directory" : "plugin";
   int code = is_dir ? MT_PLUGIN_ERROR_DIR : MT_PLUGIN_ERROR_OPEN;
   char *full = realpath (path, NULL);
   char *slash;
   bool ok;

   if (!full && !is_dir && errno == ENOENT) {
      return true; /* nothing there to run: dlopen says it is missing */
   }
   if (!full) {
      bson_set_error (error, MT_ERROR_PLUGIN, code, "%s '%s': cannot check it: %s", what, path, strerror (errno));
      return false;
   }
   ok = check_one (full, path, what, false, code, error);
   while (ok && (slash = strrchr (full, '/'))) {
      if (slash == full) {
         ok = check_one ("/", path, what, true, code, error);
         break;
      }
      *slash = '\0';
      ok = check_one (full, path, what, true, code, error);
   }
   free (full);
   return ok;
}

bool
mt_plugin_set_load_file (mt_plugin_set_t *set, const char *path, bson_error_t *error)
{
   void *handle;
   mt_plugin_entry_fn entry;
   const mt_plugin_t *plugin;

   if (!check_trusted (path, false, error)) {
      return false;
   }
   handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
   if (!handle) {
      /* dlerror () names the file already, in the words it was given. */
      bson_set_error (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_OPEN, "plugin '%s': cannot load: %s", path, dlerror ());
      return false;
   }
   /* POSIX allows converting dlsym's result to a function pointer. */
   *(void **) (&entry) = dlsym (handle, MT_PLUGIN_ENTRY_SYMBOL);
   if (!entry && dlsym (handle, MANGLED_ENTRY_SYMBOL)) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_NO_ENTRY,
                      "plugin '%s': its %s() has C++ linkage (exported as %s), so the worker cannot find it; "
                      "define the plugin with MT_PLUGIN_DEFINE from <mtask/plugin.h> (which declares it extern \"C\"), "
                      "or declare it extern \"C\"",
                      path,
                      MT_PLUGIN_ENTRY_SYMBOL,
                      MANGLED_ENTRY_SYMBOL);
      dlclose (handle);
      return false;
   }
   if (!entry) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_NO_ENTRY,
                      "plugin '%s': no function %s(); define the plugin with MT_PLUGIN_DEFINE from <mtask/plugin.h>",
                      path,
                      MT_PLUGIN_ENTRY_SYMBOL);
      dlclose (handle);
      return false;
   }
   plugin = entry ();
   if (mt_plugin_check (plugin, path, NULL) && set->allowed && !mt_strv_contains (set->allowed, plugin->type)) {
      /* Not on the allow-list (--types): not this worker's. */
      dlclose (handle);
      return true;
   }
   if (!mt_plugin_check (plugin, path, error) || !add_entry (set, plugin, path, handle, error)) {
      dlclose (handle);
      return false;
   }
   return true;
}

bool
mt_plugin_set_load_dir (mt_plugin_set_t *set, const char *dir, bson_error_t *error)
{
   /* Messages name each file by its full path, whatever the worker's
    * working directory was. */
   char *full = realpath (dir, NULL);
   DIR *d = opendir (full ? full : dir);
   struct dirent *ent;
   char **names = NULL;
   size_t count = 0, capacity = 0;
   bool ok = true;
   bson_error_t cause_dir;

   if (d && !check_trusted (full ? full : dir, true, &cause_dir)) {
      refuse (set, dir, &cause_dir);
      if (error) {
         *error = cause_dir;
      }
      closedir (d);
      free (full);
      return false;
   }
   if (!d) {
      bson_error_t cause;

      bson_set_error (&cause,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_DIR,
                      "cannot read plugin directory '%s': %s",
                      dir,
                      strerror (errno));
      refuse (set, dir, &cause);
      if (error) {
         *error = cause;
      }
      free (full);
      return false;
   }
   while ((ent = readdir (d))) {
      size_t len = strlen (ent->d_name);

      if (len > 3 && !strcmp (ent->d_name + len - 3, ".so")) {
         if (count == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            names = bson_realloc (names, capacity * sizeof *names);
         }
         names[count++] = bson_strdup_printf ("%s/%s", full ? full : dir, ent->d_name);
      }
   }
   closedir (d);
   free (full);

   /* A fixed order, so that which of two duplicates wins never depends on
    * the file system. */
   if (count) {
      qsort (names, count, sizeof *names, mt_strcmp_ptr);
   }
   /* Every file, past a failure too: each one refused is recorded, and
    * `error` is the first. */
   for (size_t i = 0; i < count; i++) {
      bson_error_t cause;

      if (!mt_plugin_set_load_file (set, names[i], &cause)) {
         refuse (set, names[i], &cause);
         if (ok && error) {
            *error = cause;
         }
         ok = false;
      }
      bson_free (names[i]);
   }
   bson_free (names);
   return ok;
}

void
mt_plugin_set_allow_types (mt_plugin_set_t *set, const char *const *types)
{
   mt_strv_free (set->allowed);
   set->allowed = types ? mt_strv_copy (types) : NULL;
}

size_t
mt_plugin_set_refused_count (const mt_plugin_set_t *set)
{
   return set->n_refused;
}

const bson_error_t *
mt_plugin_set_refused_at (const mt_plugin_set_t *set, size_t i)
{
   return i < set->n_refused ? &set->refused[i].why : NULL;
}

bool
mt_plugin_set_report_refused (const mt_plugin_set_t *set, mt_context_t *ctx, bson_error_t *error)
{
   char *all;

   if (set->n_refused == 0) {
      return true;
   }
   if (set->n_refused == 1) {
      if (error) {
         *error = set->refused[0].why;
      }
      return false;
   }
   /* An error holds about 500 bytes: with a log, each reason goes there in
    * full and the error names the files; without one, it holds the reasons
    * (as many as fit). */
   all = bson_strdup ("");
   for (size_t i = 0; i < set->n_refused; i++) {
      char *next = bson_strdup_printf ("%s%s%s", all, i ? (ctx ? ", " : "; ") : "", ctx ? set->refused[i].path : set->refused[i].why.message);

      if (ctx) {
         mt_log (ctx, MT_LOG_ERROR, "%s", set->refused[i].why.message);
      }
      bson_free (all);
      all = next;
   }
   bson_set_error (error,
                   MT_ERROR_PLUGIN,
                   MT_PLUGIN_ERROR_DIR,
                   "%zu plugins would not load%s: %s",
                   set->n_refused,
                   ctx ? " (the log above gives each reason)" : "",
                   all);
   bson_free (all);
   return false;
}

bool
mt_plugin_set_add_builtin (mt_plugin_set_t *set, const mt_plugin_t *plugin, bson_error_t *error)
{
   const char *origin = plugin && plugin->type ? plugin->type : "(built-in)";

   if (!mt_plugin_check (plugin, origin, error)) {
      return false;
   }
   if (set->allowed && !mt_strv_contains (set->allowed, plugin->type)) {
      return true;
   }
   return add_entry (set, plugin, "(built-in)", NULL, error);
}

const mt_plugin_entry_t *
mt_plugin_set_find (const mt_plugin_set_t *set, const char *type)
{
   for (size_t i = 0; i < set->count; i++) {
      if (!strcmp (set->entries[i].descriptor->type, type)) {
         return &set->entries[i];
      }
   }
   return NULL;
}

size_t
mt_plugin_set_count (const mt_plugin_set_t *set)
{
   return set->count;
}

const mt_plugin_entry_t *
mt_plugin_set_at (const mt_plugin_set_t *set, size_t i)
{
   return i < set->count ? &set->entries[i] : NULL;
}

void
mt_plugin_set_destroy (mt_plugin_set_t *set)
{
   if (!set) {
      return;
   }
   for (size_t i = set->count; i-- > 0;) {
      mt_plugin_entry_t *entry = &set->entries[i];

      if (entry->initialized && entry->descriptor->fini) {
         entry->descriptor->fini (entry->state);
      }
      if (entry->handle && !getenv ("MTASK_NO_DLCLOSE")) {
         dlclose (entry->handle);
      }
      bson_free (entry->path);
   }
   for (size_t i = 0; i < set->n_refused; i++) {
      bson_free (set->refused[i].path);
   }
   bson_free (set->refused);
   mt_strv_free (set->allowed);
   bson_free (set->entries);
   bson_free (set);
}
