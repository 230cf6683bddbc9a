/* Admin API: concurrency slots (seed 002). The pools with their held
 * slots, one pool, and the slots one task holds. A held slot is one whose
 * `task` is set; one at or above its pool's size (the pool shrank while its
 * task ran) is "beyond size" and not in use. */
#include "admin-private.h"

#include <string.h>

/* The held slots, by pool and index, at most `limit` (`*more` when there
 * are more); of pool `pool` only when not NULL. */
static bool
held_read (mongoc_client_t *client, const char *db, const char *pool, int64_t limit, mt_admin_docs_t *held, bool *more, bson_error_t *error)
{
   bson_t *filter = BCON_NEW ("task", "{", "$ne", BCON_NULL, "}");
   bson_t *opts = BCON_NEW ("sort", "{", "pool", BCON_INT32 (1), "index", BCON_INT32 (1), "}");
   bool ok;

   if (pool) {
      BSON_APPEND_UTF8 (filter, "pool", pool);
   }
   ok = mt_admin_docs_read_page (client, db, MT_SLOTS_COLLECTION, filter, opts, limit, held, more, error);
   bson_destroy (filter);
   bson_destroy (opts);
   return ok;
}

/* Whether a held slot belongs to the pool named `name` (NULL: none). */
static bool
slot_of (const bson_t *slot, const char *name)
{
   const char *pool = mt_admin_str (slot, "pool");

   return name && pool && !strcmp (pool, name);
}

/* Whether a held slot is at or above its pool's size (NULL pool: no). */
static bool
beyond_size (const bson_t *pool, const bson_t *slot)
{
   return pool && mt_admin_int (slot, "index", -1) >= mt_admin_int (pool, "size", 0);
}

/* Appends "in_use" and "slots": the held slots of `pool` among `held`,
 * each with "beyond_size", and how many of them are in use (not beyond its
 * size). */
static void
append_held (bson_t *out, const bson_t *pool, const mt_admin_docs_t *held)
{
   const char *name = mt_admin_str (pool, "_id");
   bson_t slots = BSON_INITIALIZER, item;
   int64_t in_use = 0;
   uint32_t n = 0;
   char key[16];

   for (size_t s = 0; s < held->len; s++) {
      if (!slot_of (held->items[s], name)) {
         continue;
      }
      bson_append_document_begin (&slots, mt_admin_array_key (n++, key), -1, &item);
      bson_copy_to_excluding_noinit (held->items[s], &item, "beyond_size", NULL);
      BSON_APPEND_BOOL (&item, "beyond_size", beyond_size (pool, held->items[s]));
      bson_append_document_end (&slots, &item);
      in_use += !beyond_size (pool, held->items[s]);
   }
   BSON_APPEND_INT64 (out, "in_use", in_use);
   BSON_APPEND_ARRAY (out, "slots", &slots);
   bson_destroy (&slots);
}

static void
append_value_or_null (bson_t *out, const char *key, const bson_t *doc)
{
   bson_iter_t iter;

   if (bson_iter_init_find (&iter, doc, key)) {
      BSON_APPEND_VALUE (out, key, bson_iter_value (&iter));
   } else {
      BSON_APPEND_NULL (out, key);
   }
}

bool
mt_admin_slots (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t list, item, slots;
   bson_t *by_name = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   mt_admin_docs_t pools = {0}, held = {0};
   uint32_t n_undeclared = 0;
   int64_t limit = 0;
   const mt_admin_opt_t spec[] = {
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   char key[16];
   bool more_pools = false, more_held = false, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error) || !mt_admin_list_limit (&limit, MT_ADMIN_LIST_MAX, MT_ADMIN_LIST_DEFAULT, error)) {
      goto cleanup;
   }
   if (!mt_admin_docs_read_page (client, db, MT_POOLS_COLLECTION, NULL, by_name, limit, &pools, &more_pools, error)) {
      mt_admin_fail (reply, MT_POOLS_COLLECTION, NULL);
      goto cleanup;
   }
   if (!held_read (client, db, NULL, limit, &held, &more_held, error)) {
      mt_admin_fail (reply, MT_SLOTS_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "pools", &list);
   for (size_t p = 0; p < pools.len; p++) {
      const bson_t *pool = pools.items[p];

      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) p, key), -1, &item);
      append_value_or_null (&item, "_id", pool);
      append_value_or_null (&item, "size", pool);
      append_value_or_null (&item, "timeout_seconds", pool);
      append_held (&item, pool, &held);
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);

   BSON_APPEND_ARRAY_BEGIN (reply, "undeclared", &slots);
   for (size_t s = 0; s < held.len; s++) {
      bool declared = false;

      for (size_t p = 0; p < pools.len && !declared; p++) {
         declared = slot_of (held.items[s], mt_admin_str (pools.items[p], "_id"));
      }
      if (!declared) {
         bson_append_document (&slots, mt_admin_array_key (n_undeclared++, key), -1, held.items[s]);
      }
   }
   bson_append_array_end (reply, &slots);
   BSON_APPEND_BOOL (reply, "more", more_pools || more_held);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&pools);
   mt_admin_docs_destroy (&held);
   bson_destroy (by_name);
   return ok;
}

bool
mt_admin_pool (mongoc_client_t *client, const char *db, const char *name, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t filter = BSON_INITIALIZER, pool = BSON_INITIALIZER;
   mt_admin_docs_t held = {0};
   bool found, more = false, ok = false;

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!name) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "which pool? give its name");
      goto cleanup;
   }
   BSON_APPEND_UTF8 (&filter, "_id", name);
   bson_destroy (&pool); /* mt_admin_find_one initializes it again */
   if (!mt_admin_find_one (client, db, MT_POOLS_COLLECTION, &filter, NULL, &pool, &found, error)) {
      mt_admin_fail (reply, MT_POOLS_COLLECTION, NULL);
      goto cleanup;
   }
   if (!found) {
      mt_admin_not_found (reply, MT_POOLS_COLLECTION, error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND,
                          "no pool '%s' in %s.%s", name, db, MT_POOLS_COLLECTION);
      goto cleanup;
   }
   if (!held_read (client, db, name, MT_ADMIN_LIST_MAX, &held, &more, error)) {
      mt_admin_fail (reply, MT_SLOTS_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT (reply, "pool", &pool);
   append_held (reply, &pool, &held);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&held);
   bson_destroy (&filter);
   bson_destroy (&pool);
   return ok;
}

bool
mt_admin_task_slots (mongoc_client_t *client, const char *db, const bson_oid_t *task_id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t *filter = NULL;
   bson_t *find_opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   mt_admin_docs_t slots = {0};
   bson_t list;
   char key[16];
   bool ok = false;

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!task_id) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "which task? give its id");
      goto cleanup;
   }
   filter = BCON_NEW ("task", BCON_OID (task_id));
   if (!mt_admin_docs_read (client, db, MT_SLOTS_COLLECTION, filter, find_opts, &slots, error)) {
      mt_admin_fail (reply, MT_SLOTS_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "slots", &list);
   for (size_t i = 0; i < slots.len; i++) {
      bson_append_document (&list, mt_admin_array_key ((uint32_t) i, key), -1, slots.items[i]);
   }
   bson_append_array_end (reply, &list);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&slots);
   bson_destroy (filter);
   bson_destroy (find_opts);
   return ok;
}
