/* Printing: JSON lines, fields and dates as table cells, and the messages
 * of a failed call. */
#include "ctl.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

void
ctl_print_json (const bson_t *doc)
{
   char *json = bson_as_relaxed_extended_json (doc, NULL);

   printf ("%s\n", json);
   bson_free (json);
}

void
ctl_print_id (const ctl_t *ctl, const bson_oid_t *id)
{
   char hex[25];

   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER;

      BSON_APPEND_OID (&out, "_id", id);
      ctl_print_json (&out);
      bson_destroy (&out);
   } else {
      bson_oid_to_string (id, hex);
      printf ("%s\n", hex);
   }
}

const char *
ctl_format_ms (int64_t ms, char *out, size_t size)
{
   struct tm tm;
   time_t secs = (time_t) (ms / 1000 - (ms % 1000 < 0)); /* floor, for dates before 1970 */

   if (!gmtime_r (&secs, &tm) || !strftime (out, size, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
      snprintf (out, size, "%" PRId64 "ms", ms);
   }
   return out;
}

const char *
ctl_format_date (const bson_t *doc, const char *key, char *out, size_t size)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, doc, key) || !BSON_ITER_HOLDS_DATE_TIME (&iter)) {
      return "-";
   }
   return ctl_format_ms (bson_iter_date_time (&iter), out, size);
}

const char *
ctl_format_field (const bson_t *doc, const char *key, char *buf, size_t size)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, doc, key)) {
      return "-";
   }
   switch (bson_iter_type (&iter)) {
   case BSON_TYPE_UTF8:
      return bson_iter_utf8 (&iter, NULL);
   case BSON_TYPE_OID:
      bson_oid_to_string (bson_iter_oid (&iter), buf);
      return buf;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
      snprintf (buf, size, "%" PRId64, bson_iter_as_int64 (&iter));
      return buf;
   case BSON_TYPE_DOUBLE:
      snprintf (buf, size, "%g", bson_iter_double (&iter));
      return buf;
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
      return "-";
   default:
      return "?";
   }
}

const char *
ctl_get_str (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : NULL;
}

const bson_oid_t *
ctl_get_oid (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_OID (&iter) ? bson_iter_oid (&iter) : NULL;
}

int64_t
ctl_get_int (const bson_t *doc, const char *key, int64_t otherwise)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_NUMBER (&iter) ? bson_iter_as_int64 (&iter) : otherwise;
}

bool
ctl_get_doc (const bson_t *doc, const char *key, bson_t *out)
{
   bson_iter_t iter;
   const uint8_t *data;
   uint32_t len;

   if (!bson_iter_init_find (&iter, doc, key) || !BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      return false;
   }
   bson_iter_document (&iter, &len, &data);
   return bson_init_static (out, data, len);
}

void
ctl_array (const bson_t *doc, const char *key, bson_iter_t *iter)
{
   static const uint8_t empty[5] = {5, 0, 0, 0, 0};
   bson_iter_t found;

   if (bson_iter_init_find (&found, doc, key) && BSON_ITER_HOLDS_ARRAY (&found) && bson_iter_recurse (&found, iter)) {
      return;
   }
   bson_iter_init_from_data (iter, empty, sizeof empty);
}

bool
ctl_array_next (bson_iter_t *iter, bson_t *item)
{
   const uint8_t *data;
   uint32_t len;

   while (bson_iter_next (iter)) {
      if (BSON_ITER_HOLDS_DOCUMENT (iter)) {
         bson_iter_document (iter, &len, &data);
         return bson_init_static (item, data, len);
      }
   }
   return false;
}

uint32_t
ctl_array_len (const bson_t *doc, const char *key)
{
   bson_iter_t iter;
   uint32_t n = 0;

   ctl_array (doc, key, &iter);
   while (bson_iter_next (&iter)) {
      n++;
   }
   return n;
}

int
ctl_db_error (const char *db, const char *collection, const bson_error_t *error, const char *format, ...)
{
   va_list args;

   fflush (stdout);
   fprintf (stderr, "mtaskctl: cannot ");
   va_start (args, format);
   vfprintf (stderr, format, args);
   va_end (args);
   fprintf (stderr, " in %s.%s: %s\n", db, collection, error->message);
   return EXIT_RUNTIME;
}

bool
ctl_not_found (const bson_error_t *error)
{
   return (error->domain == MT_ERROR_CONFIG && error->code == MT_CONFIG_ERROR_NOT_FOUND) ||
          (error->domain == MT_ERROR_STORE && error->code == MT_STORE_ERROR_NOT_FOUND);
}

const char *
ctl_failed_in (const bson_t *reply, const char *otherwise)
{
   const char *collection = ctl_get_str (reply, "collection");

   return collection ? collection : otherwise;
}

int
ctl_read_error (const char *db, const char *collection, const bson_error_t *error, const char *what, const char *label)
{
   if (!ctl_not_found (error)) {
      return ctl_db_error (db, collection, error, "read %s %s", what, label);
   }
   fflush (stdout);
   fprintf (stderr, "mtaskctl: no %s %s in %s.%s\n", what, label, db, collection);
   return EXIT_RUNTIME;
}
