/* Admin API: staged groups (seed 003) and synchronizers (seed 000). The
 * groups with their current stage, one group with its stages and their
 * tasks by status, the synchronizers with the names of their stages, one
 * synchronizer, one stage. */
#include "admin-private.h"

#include <stdlib.h>
#include <string.h>

/* ---- staged groups ------------------------------------------------------- */

/* Per group: how many stage documents, and the number of the first not
 * complete (-1 when none). */
typedef struct {
   bson_oid_t group;
   int64_t n_stages;
   int64_t current;
} group_stages_t;

static int
compare_group_stages (const void *pa, const void *pb)
{
   return bson_oid_compare (&((const group_stages_t *) pa)->group, &((const group_stages_t *) pb)->group);
}

/* The stage count and current stage of each group of `groups` (their
 * documents), sorted by group. */
static bool
stages_by_group (mongoc_client_t *client, const char *db, const mt_admin_docs_t *groups, group_stages_t **out, size_t *n_out, bson_error_t *error)
{
   mongoc_collection_t *stages = mongoc_client_get_collection (client, db, MT_GROUP_STAGES_COLLECTION);
   bson_t ids = BSON_INITIALIZER;
   bson_t *pipeline;
   uint32_t n_ids = 0;
   char key[16];

   for (size_t i = 0; i < groups->len; i++) {
      bson_iter_t iter;

      if (bson_iter_init_find (&iter, groups->items[i], "_id")) {
         bson_append_value (&ids, mt_admin_array_key (n_ids++, key), -1, bson_iter_value (&iter));
      }
   }
   pipeline = BCON_NEW ("pipeline", "[",
                                "{", "$match", "{", "group", "{", "$in", BCON_ARRAY (&ids), "}", "}", "}",
                                "{", "$group", "{",
                                "_id", "$group",
                                "n", "{", "$sum", BCON_INT32 (1), "}",
                                "current", "{", "$min", "{", "$cond", "[",
                                "{", "$eq", "[", "$status", "complete", "]", "}", BCON_NULL, "$number",
                                "]", "}", "}",
                                "}", "}",
                                "]");
   mongoc_cursor_t *cursor = mongoc_collection_aggregate (stages, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   group_stages_t *items = NULL;
   size_t n = 0, cap = 0;
   const bson_t *doc;
   bool ok;

   bson_destroy (&ids);
   while (mongoc_cursor_next (cursor, &doc)) {
      const bson_oid_t *group = mt_admin_oid (doc, "_id");

      if (!group) {
         continue;
      }
      if (n == cap) {
         cap = cap ? 2 * cap : 16;
         items = bson_realloc (items, cap * sizeof *items);
      }
      bson_oid_copy (group, &items[n].group);
      items[n].n_stages = mt_admin_int (doc, "n", 0);
      items[n].current = mt_admin_int (doc, "current", -1);
      n++;
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   bson_destroy (pipeline);
   mongoc_collection_destroy (stages);
   if (ok && n) {
      qsort (items, n, sizeof *items, compare_group_stages);
   }
   *out = items;
   *n_out = ok ? n : 0;
   return ok;
}

bool
mt_admin_groups (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t list, item;
   bson_t *find_opts = BCON_NEW ("sort", "{", "created", BCON_INT32 (-1), "_id", BCON_INT32 (-1), "}");
   mt_admin_docs_t groups = {0};
   group_stages_t *counts = NULL;
   size_t n_counts = 0;
   int64_t limit = 0;
   const mt_admin_opt_t spec[] = {
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   char key[16];
   bool more = false, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error) || !mt_admin_list_limit (&limit, MT_ADMIN_LIST_MAX, MT_ADMIN_LIST_DEFAULT, error)) {
      goto cleanup;
   }
   if (!mt_admin_docs_read_page (client, db, MT_GROUPS_COLLECTION, NULL, find_opts, limit, &groups, &more, error)) {
      mt_admin_fail (reply, MT_GROUPS_COLLECTION, NULL);
      goto cleanup;
   }
   /* The stages of the groups listed, not of every group. */
   if (groups.len && !stages_by_group (client, db, &groups, &counts, &n_counts, error)) {
      mt_admin_fail (reply, MT_GROUP_STAGES_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "groups", &list);
   for (size_t i = 0; i < groups.len; i++) {
      const bson_t *doc = groups.items[i];
      group_stages_t probe = {.n_stages = 0, .current = -1}, *found = NULL;

      if (mt_admin_oid (doc, "_id") && n_counts) {
         bson_oid_copy (mt_admin_oid (doc, "_id"), &probe.group);
         found = bsearch (&probe, counts, n_counts, sizeof *counts, compare_group_stages);
      }
      if (!found) {
         found = &probe;
      }
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      bson_concat (&item, doc);
      BSON_APPEND_INT64 (&item, "stage_count", found->n_stages);
      if (found->current >= 0) {
         BSON_APPEND_INT64 (&item, "current_stage", found->current);
      } else {
         BSON_APPEND_NULL (&item, "current_stage");
      }
      bson_append_document_end (&list, &item);
   }
   bson_append_array_end (reply, &list);
   BSON_APPEND_BOOL (reply, "more", more);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&groups);
   bson_free (counts);
   bson_destroy (find_opts);
   return ok;
}

/* One stage of a group: its document (NULL when its tasks exist but it
 * does not) and its tasks counted by status. */
typedef struct {
   int64_t number;
   bson_t *doc;
   bson_t tasks; /* {STATUS: n} */
} stage_row_t;

typedef struct {
   stage_row_t *items;
   size_t len, cap;
} stage_rows_t;

static stage_row_t *
stage_row (stage_rows_t *rows, int64_t number)
{
   for (size_t i = 0; i < rows->len; i++) {
      if (rows->items[i].number == number) {
         return &rows->items[i];
      }
   }
   if (rows->len == rows->cap) {
      rows->cap = rows->cap ? 2 * rows->cap : 8;
      rows->items = bson_realloc (rows->items, rows->cap * sizeof *rows->items);
   }
   rows->items[rows->len].number = number;
   rows->items[rows->len].doc = NULL;
   bson_init (&rows->items[rows->len].tasks);
   return &rows->items[rows->len++];
}

static int
compare_stage_rows (const void *pa, const void *pb)
{
   const stage_row_t *a = pa, *b = pb;

   return a->number != b->number ? (a->number < b->number ? -1 : 1) : 0;
}

static void
stage_rows_destroy (stage_rows_t *rows)
{
   for (size_t i = 0; i < rows->len; i++) {
      bson_destroy (rows->items[i].doc);
      bson_destroy (&rows->items[i].tasks);
   }
   bson_free (rows->items);
}

/* The group's stage documents, then its tasks counted by stage and status;
 * on failure `*where` names the collection. */
static bool
stage_rows_read (mongoc_client_t *client, const char *db, const bson_oid_t *group, stage_rows_t *rows, const char **where, bson_error_t *error)
{
   mongoc_collection_t *stages = mongoc_client_get_collection (client, db, MT_GROUP_STAGES_COLLECTION);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   bson_t *filter = BCON_NEW ("group", BCON_OID (group));
   bson_t *opts = BCON_NEW ("sort", "{", "number", BCON_INT32 (1), "}", "projection", "{", "done_ids", BCON_INT32 (0), "}");
   bson_t *pipeline = BCON_NEW ("pipeline", "[",
                                "{", "$match", "{", "group", BCON_OID (group), "}", "}",
                                "{", "$group", "{",
                                "_id", "{", "stage", "$stage", "status", "$status", "}",
                                "n", "{", "$sum", BCON_INT32 (1), "}",
                                "}", "}",
                                "]");
   mongoc_cursor_t *cursor;
   const bson_t *doc;
   bool ok;

   *where = MT_GROUP_STAGES_COLLECTION;
   cursor = mongoc_collection_find_with_opts (stages, filter, opts, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      stage_row_t *row = stage_row (rows, mt_admin_int (doc, "number", 0));

      if (!row->doc) {
         row->doc = bson_copy (doc);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);

   if (ok) {
      *where = MT_TASKS_COLLECTION;
      cursor = mongoc_collection_aggregate (tasks, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
      while (mongoc_cursor_next (cursor, &doc)) {
         bson_iter_t iter;
         const uint8_t *data;
         uint32_t len;
         bson_t id;
         const char *status;
         stage_row_t *row;

         if (!bson_iter_init_find (&iter, doc, "_id") || !BSON_ITER_HOLDS_DOCUMENT (&iter)) {
            continue;
         }
         bson_iter_document (&iter, &len, &data);
         if (!bson_init_static (&id, data, len)) {
            continue;
         }
         status = mt_admin_str (&id, "status");
         row = stage_row (rows, mt_admin_int (&id, "stage", 0));
         BSON_APPEND_INT64 (&row->tasks, status ? status : "(none)", mt_admin_int (doc, "n", 0));
      }
      ok = !mongoc_cursor_error (cursor, error);
      mongoc_cursor_destroy (cursor);
   }
   if (rows->len) {
      qsort (rows->items, rows->len, sizeof *rows->items, compare_stage_rows);
   }
   bson_destroy (filter);
   bson_destroy (opts);
   bson_destroy (pipeline);
   mongoc_collection_destroy (stages);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* "stages" and "statuses" of mt_admin_group's reply. */
static void
append_stage_rows (bson_t *reply, const stage_rows_t *rows)
{
   const char **statuses = NULL;
   size_t n = 0, cap = 0;
   bson_t list, item;
   bson_iter_t iter;
   char key[16];

   BSON_APPEND_ARRAY_BEGIN (reply, "stages", &list);
   for (size_t i = 0; i < rows->len; i++) {
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      if (rows->items[i].doc) {
         bson_concat (&item, rows->items[i].doc);
      } else {
         BSON_APPEND_INT64 (&item, "number", rows->items[i].number);
         BSON_APPEND_BOOL (&item, "missing", true);
      }
      BSON_APPEND_DOCUMENT (&item, "tasks", &rows->items[i].tasks);
      bson_append_document_end (&list, &item);

      bson_iter_init (&iter, &rows->items[i].tasks);
      while (bson_iter_next (&iter)) {
         if (n == cap) {
            cap = cap ? 2 * cap : 8;
            statuses = bson_realloc ((void *) statuses, cap * sizeof *statuses);
         }
         statuses[n++] = bson_iter_key (&iter); /* lives as long as rows */
      }
   }
   bson_append_array_end (reply, &list);
   mt_admin_append_statuses (reply, statuses, n);
   bson_free ((void *) statuses);
}

bool
mt_admin_group (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bool with_stages = true;
   const mt_admin_opt_t spec[] = {
      {"stages", MT_ADMIN_OPT_BOOL, &with_stages},
      {NULL},
   };
   bson_t *filter = NULL;
   bson_t *find_opts = BCON_NEW ("projection", "{", "done_ids", BCON_INT32 (0), "}");
   bson_t group = BSON_INITIALIZER;
   stage_rows_t rows = {0};
   const char *where;
   char hex[25];
   bool found, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error)) {
      goto cleanup;
   }
   if (!id) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "which group? give its id");
      goto cleanup;
   }
   filter = BCON_NEW ("_id", BCON_OID (id));
   bson_destroy (&group); /* mt_admin_find_one initializes it again */
   if (!mt_admin_find_one (client, db, MT_GROUPS_COLLECTION, filter, find_opts, &group, &found, error)) {
      mt_admin_fail (reply, MT_GROUPS_COLLECTION, NULL);
      goto cleanup;
   }
   if (!found) {
      bson_oid_to_string (id, hex);
      mt_admin_not_found (reply, MT_GROUPS_COLLECTION, error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND,
                          "no group %s in %s.%s", hex, db, MT_GROUPS_COLLECTION);
      goto cleanup;
   }
   if (with_stages && !stage_rows_read (client, db, id, &rows, &where, error)) {
      mt_admin_fail (reply, where, NULL);
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT (reply, "group", &group);
   if (with_stages) {
      append_stage_rows (reply, &rows);
   }
   ok = true;

cleanup:
   stage_rows_destroy (&rows);
   bson_destroy (&group);
   bson_destroy (filter);
   bson_destroy (find_opts);
   return ok;
}

/* The most tasks mt_admin_stage lists, and how many unless told. */
#define STAGE_TASKS_DEFAULT 200
#define STAGE_TASKS_MAX 1000

bool
mt_admin_stage (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   int64_t limit = 0;
   const mt_admin_opt_t spec[] = {
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   bson_t *filter = NULL, *group_filter = NULL, *tasks_filter = NULL, *pipeline = NULL;
   bson_t *stage_opts = BCON_NEW ("projection", "{", "done_ids", BCON_INT32 (0), "}");
   bson_t *group_opts = BCON_NEW ("projection", "{", "description", BCON_INT32 (1), "status", BCON_INT32 (1), "}");
   bson_t *tasks_opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}",
                                  "projection", "{",
                                  "queue", BCON_INT32 (1), "type", BCON_INT32 (1), "status", BCON_INT32 (1),
                                  "attempts", BCON_INT32 (1), "max_attempts", BCON_INT32 (1),
                                  "status_message", BCON_INT32 (1), "error", BCON_INT32 (1),
                                  "created", BCON_INT32 (1), "started", BCON_INT32 (1), "finished", BCON_INT32 (1),
                                  "worker_pid", BCON_INT32 (1), "group", BCON_INT32 (1), "stage", BCON_INT32 (1),
                                  "}");
   bson_t stage = BSON_INITIALIZER, group = BSON_INITIALIZER, counts = BSON_INITIALIZER, list, item;
   mt_admin_docs_t tasks = {0};
   mongoc_collection_t *coll = NULL;
   mongoc_cursor_t *cursor = NULL;
   const bson_oid_t *group_id;
   const bson_t *doc;
   bson_iter_t number;
   char hex[25], key[16];
   bool found = false, group_found = false, more = false, ok = false;

   if (!mt_admin_begin (reply, opts, spec, error) || !mt_admin_list_limit (&limit, STAGE_TASKS_MAX, STAGE_TASKS_DEFAULT, error)) {
      goto cleanup;
   }
   if (!id) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "which stage? give its id");
      goto cleanup;
   }
   filter = BCON_NEW ("_id", BCON_OID (id));
   bson_destroy (&stage); /* mt_admin_find_one initializes it again */
   if (!mt_admin_find_one (client, db, MT_GROUP_STAGES_COLLECTION, filter, stage_opts, &stage, &found, error)) {
      mt_admin_fail (reply, MT_GROUP_STAGES_COLLECTION, NULL);
      goto cleanup;
   }
   group_id = found ? mt_admin_oid (&stage, "group") : NULL;
   if (!found || !group_id || !bson_iter_init_find (&number, &stage, "number")) {
      bson_oid_to_string (id, hex);
      mt_admin_not_found (reply, MT_GROUP_STAGES_COLLECTION, error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND,
                          found ? "stage %s in %s.%s names no group or no number" : "no stage %s in %s.%s",
                          hex, db, MT_GROUP_STAGES_COLLECTION);
      goto cleanup;
   }

   /* Its group's description, for the title; a group deleted meanwhile
    * leaves the stage shown without it. */
   group_filter = BCON_NEW ("_id", BCON_OID (group_id));
   bson_destroy (&group);
   if (!mt_admin_find_one (client, db, MT_GROUPS_COLLECTION, group_filter, group_opts, &group, &group_found, error)) {
      mt_admin_fail (reply, MT_GROUPS_COLLECTION, NULL);
      goto cleanup;
   }

   /* Its tasks: counted by status (all of them), and the first `limit`. */
   tasks_filter = BCON_NEW ("group", BCON_OID (group_id));
   BSON_APPEND_VALUE (tasks_filter, "stage", bson_iter_value (&number));
   pipeline = BCON_NEW ("pipeline", "[",
                        "{", "$match", BCON_DOCUMENT (tasks_filter), "}",
                        "{", "$group", "{", "_id", "$status", "n", "{", "$sum", BCON_INT32 (1), "}", "}", "}",
                        "]");
   coll = mongoc_client_get_collection (client, db, MT_TASKS_COLLECTION);
   cursor = mongoc_collection_aggregate (coll, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
   while (mongoc_cursor_next (cursor, &doc)) {
      const char *status = mt_admin_str (doc, "_id");

      BSON_APPEND_INT64 (&counts, status ? status : "(none)", mt_admin_int (doc, "n", 0));
   }
   if (mongoc_cursor_error (cursor, error) ||
       !mt_admin_docs_read_page (client, db, MT_TASKS_COLLECTION, tasks_filter, tasks_opts, limit, &tasks, &more, error)) {
      mt_admin_fail (reply, MT_TASKS_COLLECTION, NULL);
      goto cleanup;
   }

   BSON_APPEND_DOCUMENT_BEGIN (reply, "stage", &item);
   bson_copy_to_excluding_noinit (&stage, &item, "tasks", NULL);
   BSON_APPEND_DOCUMENT (&item, "tasks", &counts);
   bson_append_document_end (reply, &item);
   BSON_APPEND_DOCUMENT_BEGIN (reply, "group", &item);
   BSON_APPEND_OID (&item, "_id", group_id);
   if (group_found) {
      bson_copy_to_excluding_noinit (&group, &item, "_id", NULL);
   } else {
      BSON_APPEND_BOOL (&item, "missing", true);
   }
   bson_append_document_end (reply, &item);
   BSON_APPEND_ARRAY_BEGIN (reply, "tasks", &list);
   for (size_t i = 0; i < tasks.len; i++) {
      bson_append_document (&list, mt_admin_array_key ((uint32_t) i, key), -1, tasks.items[i]);
   }
   bson_append_array_end (reply, &list);
   BSON_APPEND_BOOL (reply, "more", more);
   ok = true;

cleanup:
   mongoc_cursor_destroy (cursor);
   mongoc_collection_destroy (coll);
   mt_admin_docs_destroy (&tasks);
   bson_destroy (&stage);
   bson_destroy (&group);
   bson_destroy (&counts);
   bson_destroy (filter);
   bson_destroy (group_filter);
   bson_destroy (tasks_filter);
   bson_destroy (pipeline);
   bson_destroy (stage_opts);
   bson_destroy (group_opts);
   bson_destroy (tasks_opts);
   return ok;
}

/* ---- synchronizers ------------------------------------------------------- */

/* The stage with _id `id` in `stages`, as mt_admin_find_one, without its
 * done_ids or, with `name_only`, with its name alone. */
static bool
sync_stage_read (mongoc_client_t *client, const char *db, const bson_oid_t *id, bool name_only, bson_t *out, bool *found, bson_error_t *error)
{
   bson_t *filter = BCON_NEW ("_id", BCON_OID (id));
   bson_t *opts = name_only ? BCON_NEW ("projection", "{", "name", BCON_INT32 (1), "}")
                            : BCON_NEW ("projection", "{", "done_ids", BCON_INT32 (0), "}");
   bool ok = mt_admin_find_one (client, db, MT_SYNC_STAGES_COLLECTION, filter, opts, out, found, error);

   bson_destroy (filter);
   bson_destroy (opts);
   return ok;
}

/* Appends `key`: the name of the stage that the ObjectId at `field` of
 * `sync` points at, as text; null when it points nowhere or at no stage. */
static bool
append_stage_name (mongoc_client_t *client, const char *db, const bson_t *sync, const char *field, bson_t *out, const char *key, bson_error_t *error)
{
   const bson_oid_t *id = mt_admin_oid (sync, field);
   bson_t stage;
   char buf[32];
   bool found = false, ok = true;

   if (id) {
      ok = sync_stage_read (client, db, id, true, &stage, &found, error);
      if (ok && found) {
         BSON_APPEND_UTF8 (out, key, mt_admin_text (&stage, "name", buf, sizeof buf));
      }
      bson_destroy (&stage);
   }
   if (ok && !found) {
      BSON_APPEND_NULL (out, key);
   }
   return ok;
}

bool
mt_admin_syncs (mongoc_client_t *client, const char *db, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t list, item;
   bson_t *find_opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
   mt_admin_docs_t syncs = {0};
   int64_t limit = 0;
   const mt_admin_opt_t spec[] = {
      {"limit", MT_ADMIN_OPT_COUNT, &limit},
      {NULL},
   };
   bson_iter_t iter;
   char key[16];
   bool more = false, ok = false;
   size_t i;

   if (!mt_admin_begin (reply, opts, spec, error) || !mt_admin_list_limit (&limit, MT_ADMIN_LIST_MAX, MT_ADMIN_LIST_DEFAULT, error)) {
      goto cleanup;
   }
   if (!mt_admin_docs_read_page (client, db, MT_SYNCHRONIZERS_COLLECTION, NULL, find_opts, limit, &syncs, &more, error)) {
      mt_admin_fail (reply, MT_SYNCHRONIZERS_COLLECTION, NULL);
      goto cleanup;
   }
   BSON_APPEND_ARRAY_BEGIN (reply, "synchronizers", &list);
   for (i = 0; i < syncs.len; i++) {
      bson_append_document_begin (&list, mt_admin_array_key ((uint32_t) i, key), -1, &item);
      bson_concat (&item, syncs.items[i]);
      ok = append_stage_name (client, db, syncs.items[i], "actual_stage", &item, "actual_stage_name", error) &&
           append_stage_name (client, db, syncs.items[i], "start_stage", &item, "start_stage_name", error);
      bson_append_document_end (&list, &item);
      if (!ok) {
         break;
      }
   }
   bson_append_array_end (reply, &list);
   if (i < syncs.len) {
      mt_admin_fail (reply, MT_SYNC_STAGES_COLLECTION, bson_iter_init_find (&iter, syncs.items[i], "_id") ? bson_iter_value (&iter) : NULL);
      goto cleanup;
   }
   BSON_APPEND_BOOL (reply, "more", more);
   ok = true;

cleanup:
   mt_admin_docs_destroy (&syncs);
   bson_destroy (find_opts);
   return ok;
}

bool
mt_admin_sync (mongoc_client_t *client, const char *db, const char *name, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t *find_opts = BCON_NEW ("projection", "{", "done_ids", BCON_INT32 (0), "}");
   bson_t filter = BSON_INITIALIZER, sync = BSON_INITIALIZER;
   bool found, ok = false;

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!name) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "which synchronizer? give its name");
      goto cleanup;
   }
   BSON_APPEND_UTF8 (&filter, "_id", name);
   bson_destroy (&sync); /* mt_admin_find_one initializes it again */
   if (!mt_admin_find_one (client, db, MT_SYNCHRONIZERS_COLLECTION, &filter, find_opts, &sync, &found, error)) {
      mt_admin_fail (reply, MT_SYNCHRONIZERS_COLLECTION, NULL);
      goto cleanup;
   }
   if (!found) {
      mt_admin_not_found (reply, MT_SYNCHRONIZERS_COLLECTION, error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND,
                          "no synchronizer '%s' in %s.%s", name, db, MT_SYNCHRONIZERS_COLLECTION);
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT (reply, "synchronizer", &sync);
   ok = true;

cleanup:
   bson_destroy (&filter);
   bson_destroy (&sync);
   bson_destroy (find_opts);
   return ok;
}

bool
mt_admin_sync_stage (mongoc_client_t *client, const char *db, const bson_oid_t *id, const bson_t *opts, bson_t *reply, bson_error_t *error)
{
   bson_t stage = BSON_INITIALIZER;
   bool found, ok = false;
   char hex[25];

   if (!mt_admin_begin (reply, opts, NULL, error)) {
      goto cleanup;
   }
   if (!id) {
      bson_set_error (error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_INVALID, "which stage? give its id");
      goto cleanup;
   }
   bson_destroy (&stage); /* sync_stage_read initializes it again */
   if (!sync_stage_read (client, db, id, false, &stage, &found, error)) {
      mt_admin_fail (reply, MT_SYNC_STAGES_COLLECTION, NULL);
      goto cleanup;
   }
   if (!found) {
      bson_oid_to_string (id, hex);
      mt_admin_not_found (reply, MT_SYNC_STAGES_COLLECTION, error, MT_ERROR_CONFIG, MT_CONFIG_ERROR_NOT_FOUND,
                          "no stage %s in %s.%s", hex, db, MT_SYNC_STAGES_COLLECTION);
      goto cleanup;
   }
   BSON_APPEND_DOCUMENT (reply, "stage", &stage);
   ok = true;

cleanup:
   bson_destroy (&stage);
   return ok;
}
