/* What every admin call shares: options, replies, reading documents, and
 * fields as text. */
#include "admin-private.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool
invalid (bson_error_t *error, const char *key, const char *why)
{
   bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "option '%s' %s", key, why);
   return false;
}

bool
mt_admin_begin (bson_t *reply, const bson_t *opts, const mt_admin_opt_t *spec, bson_error_t *error)
{
   bson_iter_t iter;

   BSON_ASSERT (reply);
   bson_init (reply);
   if (!opts) {
      return true;
   }
   if (!bson_iter_init (&iter, opts)) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "the options are not a valid BSON document");
      return false;
   }
   while (bson_iter_next (&iter)) {
      const char *key = bson_iter_key (&iter);
      const mt_admin_opt_t *opt = spec;

      while (opt && opt->key && strcmp (opt->key, key)) {
         opt++;
      }
      if (!opt || !opt->key) {
         bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_OPTION, "Invalid option '%s'", key);
         return false;
      }
      switch (opt->type) {
      case MT_ADMIN_OPT_STRING:
         if (!BSON_ITER_HOLDS_UTF8 (&iter) || !bson_iter_utf8 (&iter, NULL)[0]) {
            return invalid (error, key, "must be a non-empty string");
         }
         *(const char **) opt->out = bson_iter_utf8 (&iter, NULL);
         break;
      case MT_ADMIN_OPT_COUNT:
         if (!BSON_ITER_HOLDS_INT (&iter) || bson_iter_as_int64 (&iter) < 0) {
            return invalid (error, key, "must be an integer, 0 or more");
         }
         *(int64_t *) opt->out = bson_iter_as_int64 (&iter);
         break;
      case MT_ADMIN_OPT_BOOL:
      default:
         if (!BSON_ITER_HOLDS_BOOL (&iter)) {
            return invalid (error, key, "must be true or false");
         }
         *(bool *) opt->out = bson_iter_bool (&iter);
         break;
      }
   }
   return true;
}

bool
mt_admin_fail (bson_t *reply, const char *collection, const bson_value_t *item)
{
   bson_reinit (reply);
   BSON_APPEND_UTF8 (reply, "collection", collection);
   if (item) {
      BSON_APPEND_VALUE (reply, "item", item);
   }
   return false;
}

bool
mt_admin_not_found (bson_t *reply, const char *collection, bson_error_t *error, uint32_t domain, uint32_t code, const char *format, ...)
{
   va_list args;

   if (error) {
      error->domain = domain;
      error->code = code;
      va_start (args, format);
      bson_vsnprintf (error->message, sizeof error->message, format, args);
      va_end (args);
   }
   return mt_admin_fail (reply, collection, NULL);
}

bool
mt_admin_find_one (mongoc_client_t *client,
                   const char *db,
                   const char *collection,
                   const bson_t *filter,
                   const bson_t *opts,
                   bson_t *out,
                   bool *found,
                   bson_error_t *error)
{
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   /* A view: it keeps the client's read preference (docs/production.md). */
   bool ok = mt_find_one_with_prefs (coll, filter, opts, NULL, out, found, error);

   mongoc_collection_destroy (coll);
   return ok;
}

void
mt_admin_docs_push (mt_admin_docs_t *docs, bson_t *doc)
{
   if (docs->len == docs->cap) {
      docs->cap = docs->cap ? 2 * docs->cap : 16;
      docs->items = bson_realloc (docs->items, docs->cap * sizeof *docs->items);
   }
   docs->items[docs->len++] = doc;
}

bool
mt_admin_docs_read (mongoc_client_t *client,
                    const char *db,
                    const char *collection,
                    const bson_t *filter,
                    const bson_t *opts,
                    mt_admin_docs_t *docs,
                    bson_error_t *error)
{
   bson_t all = BSON_INITIALIZER;
   mongoc_collection_t *coll = mongoc_client_get_collection (client, db, collection);
   mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (coll, filter ? filter : &all, opts, NULL);
   const bson_t *doc;
   bool ok;

   while (mongoc_cursor_next (cursor, &doc)) {
      mt_admin_docs_push (docs, bson_copy (doc));
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   bson_destroy (&all);
   return ok;
}

bool
mt_admin_docs_read_page (mongoc_client_t *client,
                         const char *db,
                         const char *collection,
                         const bson_t *filter,
                         const bson_t *opts,
                         int64_t limit,
                         mt_admin_docs_t *docs,
                         bool *more,
                         bson_error_t *error)
{
   bson_t page = BSON_INITIALIZER;
   size_t before = docs->len;
   bool ok;

   BSON_ASSERT (limit > 0);
   if (opts) {
      bson_copy_to_excluding_noinit (opts, &page, "limit", NULL);
   }
   BSON_APPEND_INT64 (&page, "limit", limit + 1);
   ok = mt_admin_docs_read (client, db, collection, filter, &page, docs, error);
   *more = false;
   if (ok && docs->len - before > (size_t) limit) {
      *more = true;
      bson_destroy (docs->items[--docs->len]);
   }
   bson_destroy (&page);
   return ok;
}

bool
mt_admin_server_now (mongoc_client_t *client, int64_t *now_ms, bson_error_t *error)
{
   bson_t *cmd = BCON_NEW ("isMaster", BCON_INT32 (1));
   bson_t reply;
   bson_iter_t iter;
   bool ok = mongoc_client_command_simple (client, "admin", cmd, NULL, &reply, error);

   if (ok && (!bson_iter_init_find (&iter, &reply, "localTime") || !BSON_ITER_HOLDS_DATE_TIME (&iter))) {
      bson_set_error (error,
                      MT_ERROR_STORE,
                      MT_STORE_ERROR_WRITE,
                      "the server's isMaster reply has no localTime: cannot tell the server's time");
      ok = false;
   }
   if (ok) {
      *now_ms = bson_iter_date_time (&iter);
   }
   bson_destroy (&reply);
   bson_destroy (cmd);
   return ok;
}

bool
mt_admin_list_limit (int64_t *limit, int64_t max, int64_t otherwise, bson_error_t *error)
{
   if (*limit > max) {
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_INVALID,
                      "option 'limit' must be at most %" PRId64 ": narrow what is listed instead",
                      max);
      return false;
   }
   if (*limit <= 0) {
      *limit = otherwise;
   }
   return true;
}

void
mt_admin_docs_destroy (mt_admin_docs_t *docs)
{
   for (size_t i = 0; i < docs->len; i++) {
      bson_destroy (docs->items[i]);
   }
   bson_free (docs->items);
   docs->items = NULL;
   docs->len = docs->cap = 0;
}

const char *
mt_admin_array_key (uint32_t i, char *buf)
{
   const char *key;

   bson_uint32_to_string (i, &key, buf, 16);
   return key;
}

const char *
mt_admin_text (const bson_t *doc, const char *key, char *buf, size_t size)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, doc, key)) {
      return "-";
   }
   switch (bson_iter_type (&iter)) {
   case BSON_TYPE_UTF8:
      return bson_iter_utf8 (&iter, NULL);
   case BSON_TYPE_OID:
      if (size < 25) {
         return "?";
      }
      bson_oid_to_string (bson_iter_oid (&iter), buf);
      return buf;
   case BSON_TYPE_INT32:
   case BSON_TYPE_INT64:
      bson_snprintf (buf, size, "%" PRId64, bson_iter_as_int64 (&iter));
      return buf;
   case BSON_TYPE_DOUBLE:
      bson_snprintf (buf, size, "%g", bson_iter_double (&iter));
      return buf;
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
      return "-";
   default:
      return "?";
   }
}

const char *
mt_admin_str (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_UTF8 (&iter) ? bson_iter_utf8 (&iter, NULL) : NULL;
}

const bson_oid_t *
mt_admin_oid (const bson_t *doc, const char *key)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_OID (&iter) ? bson_iter_oid (&iter) : NULL;
}

int64_t
mt_admin_int (const bson_t *doc, const char *key, int64_t otherwise)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_NUMBER (&iter) ? bson_iter_as_int64 (&iter) : otherwise;
}

/* Statuses in lifecycle order. */
static const char *const lifecycle[] = {MT_STATUS_WAITING,
                                        MT_STATUS_CREATED,
                                        MT_STATUS_WORK_IN_PROGRESS,
                                        MT_STATUS_FINISHED,
                                        MT_STATUS_FAILED,
                                        MT_STATUS_CANCELLED};
#define N_LIFECYCLE (sizeof lifecycle / sizeof lifecycle[0])

static size_t
status_rank (const char *status)
{
   for (size_t k = 0; k < N_LIFECYCLE; k++) {
      if (!strcmp (status, lifecycle[k])) {
         return k;
      }
   }
   return N_LIFECYCLE;
}

int
mt_admin_status_compare (const char *a, const char *b)
{
   size_t ra = status_rank (a), rb = status_rank (b);

   return ra != rb ? (ra < rb ? -1 : 1) : strcmp (a, b);
}

static int
compare_status_ptrs (const void *pa, const void *pb)
{
   return mt_admin_status_compare (*(const char *const *) pa, *(const char *const *) pb);
}

void
mt_admin_append_statuses (bson_t *reply, const char **statuses, size_t n)
{
   bson_t list;
   uint32_t k = 0;
   char key[16];

   if (n) {
      qsort ((void *) statuses, n, sizeof *statuses, compare_status_ptrs);
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "statuses", &list);
   for (size_t i = 0; i < n; i++) {
      if (!i || strcmp (statuses[i], statuses[i - 1])) {
         bson_append_utf8 (&list, mt_admin_array_key (k++, key), -1, statuses[i], -1);
      }
   }
   bson_append_array_end (reply, &list);
}

void
mt_admin_append_live (bson_t *filter)
{
   bson_t child, list;

   BSON_APPEND_DOCUMENT_BEGIN (filter, "status", &child);
   BSON_APPEND_ARRAY_BEGIN (&child, "$in", &list);
   BSON_APPEND_UTF8 (&list, "0", MT_STATUS_WAITING);
   BSON_APPEND_UTF8 (&list, "1", MT_STATUS_CREATED);
   BSON_APPEND_UTF8 (&list, "2", MT_STATUS_WORK_IN_PROGRESS);
   bson_append_array_end (&child, &list);
   bson_append_document_end (filter, &child);
}

void
mt_admin_task_filter (bson_t *filter, const char *queue, const char *status, const char *type)
{
   if (queue) {
      BSON_APPEND_UTF8 (filter, "queue", queue);
   }
   if (status) {
      BSON_APPEND_UTF8 (filter, "status", status);
   }
   if (type) {
      BSON_APPEND_UTF8 (filter, "type", type);
   }
}
