/* The plugin loader: dlopen, one entry function, a versioned descriptor.
 * Checks run in a fixed order and the first failure is the one reported:
 * the entry symbol, the ABI version alone, the size, then the callbacks. */
#include "mtask-private.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

struct _mt_plugin_set_t {
   const mt_host_api_t *host;
   mt_plugin_entry_t *entries;
   size_t count;
   size_t capacity;
};

static const char *
base_name (const char *path)
{
   const char *slash = strrchr (path, '/');
   return slash ? slash + 1 : path;
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
                      "plugin '%s': ABI version %" PRIu32 ", this worker speaks %u; rebuild the plugin against mtask "
                      "%u.x",
                      origin,
                      plugin->abi_version,
                      MT_PLUGIN_ABI_VERSION,
                      MT_PLUGIN_ABI_VERSION);
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
                      base_name (path),
                      plugin->type,
                      base_name (existing->path));
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
                         base_name (path),
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

bool
mt_plugin_set_load_file (mt_plugin_set_t *set, const char *path, bson_error_t *error)
{
   void *handle;
   mt_plugin_entry_fn entry;
   const mt_plugin_t *plugin;
   const char *name = base_name (path);

   handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
   if (!handle) {
      bson_set_error (error, MT_ERROR_PLUGIN, MT_PLUGIN_ERROR_OPEN, "plugin '%s': cannot load: %s", name, dlerror ());
      return false;
   }
   /* POSIX allows converting dlsym's result to a function pointer. */
   *(void **) (&entry) = dlsym (handle, MT_PLUGIN_ENTRY_SYMBOL);
   if (!entry) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_NO_ENTRY,
                      "plugin '%s': no function %s(); define the plugin with MT_PLUGIN_DEFINE from <mtask/plugin.h>",
                      name,
                      MT_PLUGIN_ENTRY_SYMBOL);
      dlclose (handle);
      return false;
   }
   plugin = entry ();
   if (!mt_plugin_check (plugin, name, error) || !add_entry (set, plugin, path, handle, error)) {
      dlclose (handle);
      return false;
   }
   return true;
}

bool
mt_plugin_set_load_dir (mt_plugin_set_t *set, const char *dir, bson_error_t *error)
{
   DIR *d = opendir (dir);
   struct dirent *ent;
   char **names = NULL;
   size_t count = 0, capacity = 0;
   bool ok = true;

   if (!d) {
      bson_set_error (error,
                      MT_ERROR_PLUGIN,
                      MT_PLUGIN_ERROR_DIR,
                      "cannot read plugin directory '%s': %s",
                      dir,
                      strerror (errno));
      return false;
   }
   while ((ent = readdir (d))) {
      size_t len = strlen (ent->d_name);

      if (len > 3 && !strcmp (ent->d_name + len - 3, ".so")) {
         if (count == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            names = bson_realloc (names, capacity * sizeof *names);
         }
         names[count++] = bson_strdup_printf ("%s/%s", dir, ent->d_name);
      }
   }
   closedir (d);

   /* A fixed order, so that which of two duplicates wins never depends on
    * the file system. */
   if (count) {
      qsort (names, count, sizeof *names, mt_strcmp_ptr);
   }
   for (size_t i = 0; i < count; i++) {
      if (ok && !mt_plugin_set_load_file (set, names[i], error)) {
         ok = false;
      }
      bson_free (names[i]);
   }
   bson_free (names);
   return ok;
}

bool
mt_plugin_set_add_builtin (mt_plugin_set_t *set, const mt_plugin_t *plugin, bson_error_t *error)
{
   const char *origin = plugin && plugin->type ? plugin->type : "(built-in)";

   return mt_plugin_check (plugin, origin, error) && add_entry (set, plugin, "(built-in)", NULL, error);
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
   bson_free (set->entries);
   bson_free (set);
}
