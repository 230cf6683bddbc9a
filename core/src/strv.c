/* NULL-terminated vectors of strings: queue names, types, accounts. */
#include "context-private.h"

#include <string.h>

char **
mt_strv_copy (const char *const *strv)
{
   size_t n = 0;
   char **copy;

   while (strv && strv[n]) {
      n++;
   }
   copy = bson_malloc0 ((n + 1) * sizeof *copy);
   for (size_t i = 0; i < n; i++) {
      copy[i] = bson_strdup (strv[i]);
   }
   return copy;
}

void
mt_strv_free (char **strv)
{
   for (size_t i = 0; strv && strv[i]; i++) {
      bson_free (strv[i]);
   }
   bson_free (strv);
}

size_t
mt_strv_len (char *const *strv)
{
   size_t n = 0;

   while (strv && strv[n]) {
      n++;
   }
   return n;
}

bool
mt_strv_contains (char *const *strv, const char *s)
{
   for (size_t i = 0; strv && strv[i]; i++) {
      if (!strcmp (strv[i], s)) {
         return true;
      }
   }
   return false;
}

int
mt_strcmp_ptr (const void *a, const void *b)
{
   return strcmp (*(char *const *) a, *(char *const *) b);
}

void
mt_strv_to_array (char *const *strv, bson_t *array)
{
   char key[16];
   const char *k;

   bson_init (array);
   for (uint32_t i = 0; strv && strv[i]; i++) {
      bson_uint32_to_string (i, &k, key, sizeof key);
      bson_append_utf8 (array, k, -1, strv[i], -1);
   }
}
