/* The slot commands: concurrency slots (seed 002). pool set, slots, slot
 * keepalive, slot stop. */
#include "ctl.h"

#include <stdlib.h>
#include <string.h>

/* A timeout as the pool's lines print it: "300 s", or "none" for 0. */
static const char *
format_timeout (const bson_t *pool, char *buf, size_t size)
{
   bson_iter_t iter;

   if (!bson_iter_init_find (&iter, pool, "timeout_seconds") || !BSON_ITER_HOLDS_NUMBER (&iter)) {
      return "-";
   }
   if (bson_iter_as_double (&iter) <= 0) {
      return "none";
   }
   snprintf (buf, size, "%.15g s", bson_iter_as_double (&iter));
   return buf;
}

/* Whether a slot of an admin reply is marked beyond its pool's size. */
static bool
is_beyond (const bson_t *slot)
{
   bson_iter_t iter;

   return bson_iter_init_find (&iter, slot, "beyond_size") && BSON_ITER_HOLDS_BOOL (&iter) && bson_iter_bool (&iter);
}

int
ctl_cmd_pool_set (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply = BSON_INITIALIZER, pool, slot;
   bson_error_t error;
   bson_iter_t iter;
   int64_t beyond = 0;
   int status = 0;

   /* Without --timeout, a resize keeps the pool's timeout. */
   if (!mt_pool_set (client, db, ctl->id, ctl->size, ctl->seen[F_TIMEOUT] ? ctl->timeout : -1, &error)) {
      if (error.domain == MT_ERROR_CONFIG && error.code == MT_CONFIG_ERROR_INVALID) {
         ctl_fail ("cannot set pool '%s': %s", ctl->id, error.message);
         status = EXIT_USAGE;
      } else {
         status = ctl_db_error (db, MT_POOLS_COLLECTION, &error, "set pool '%s'", ctl->id);
      }
      goto cleanup;
   }
   if (!ctl->seen[F_JSON]) {
      if (ctl->seen[F_TIMEOUT]) {
         printf ("pool %s: %d slots, timeout %.15g s\n", ctl->id, ctl->size, ctl->timeout);
      } else {
         printf ("pool %s: %d slots, timeout unchanged\n", ctl->id, ctl->size);
      }
   }
   bson_destroy (&reply);
   if (!mt_admin_pool (client, db, ctl->id, NULL, &reply, &error) || !ctl_get_doc (&reply, "pool", &pool)) {
      if (ctl_not_found (&error)) {
         fprintf (stderr, "mtaskctl: no pool '%s' in %s.%s after setting it\n", ctl->id, db, MT_POOLS_COLLECTION);
         status = EXIT_RUNTIME;
      } else if (!strcmp (ctl_failed_in (&reply, MT_POOLS_COLLECTION), MT_SLOTS_COLLECTION)) {
         status = ctl_db_error (db, MT_SLOTS_COLLECTION, &error, "count the held slots of pool '%s'", ctl->id);
      } else {
         status = ctl_db_error (db, MT_POOLS_COLLECTION, &error, "read pool '%s'", ctl->id);
      }
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      ctl_print_json (&pool);
      goto cleanup;
   }

   /* A shrunk pool: its slots at or above the size run on until they end. */
   ctl_array (&reply, "slots", &iter);
   while (ctl_array_next (&iter, &slot)) {
      beyond += is_beyond (&slot);
   }
   if (beyond > 0) {
      printf ("%" PRId64 " of its slots at index %d or above are still held: each is freed, and no longer used, "
              "when its task ends\n",
              beyond,
              ctl->size);
   }

cleanup:
   bson_destroy (&reply);
   return status;
}

/* A held slot of the slots reply and the pool it belongs to (NULL when
 * that pool is not declared), in the order the table lists them. */
typedef struct {
   const uint8_t *data; /* the slot's document, in the reply */
   uint32_t len;
   const bson_t *pool;
   size_t seq;
} held_t;

/* A view of the held slot's document (a bson_t itself cannot be copied). */
static void
held_slot (const held_t *held, bson_t *slot)
{
   bson_init_static (slot, held->data, held->len);
}

static int
compare_held (const void *pa, const void *pb)
{
   const held_t *a = pa, *b = pb;
   bson_t slot_a, slot_b;
   const char *pool_a, *pool_b;
   int64_t index_a, index_b;
   int c;

   held_slot (a, &slot_a);
   held_slot (b, &slot_b);
   pool_a = ctl_get_str (&slot_a, "pool");
   pool_b = ctl_get_str (&slot_b, "pool");
   index_a = ctl_get_int (&slot_a, "index", -1);
   index_b = ctl_get_int (&slot_b, "index", -1);
   c = strcmp (pool_a ? pool_a : "", pool_b ? pool_b : "");

   if (c) {
      return c;
   }
   if (index_a != index_b) {
      return index_a < index_b ? -1 : 1;
   }
   return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The columns of one held slot's row. */
typedef struct {
   char pool[64], index[24], task[64], worker[128], since[40], keepalive[40];
   const char *mark;
} slot_cells_t;

static void
slot_cells (const held_t *held, slot_cells_t *c)
{
   bson_t view, *slot = &view;
   char buf[64];

   held_slot (held, &view);

   snprintf (c->pool, sizeof c->pool, "%s", ctl_format_field (slot, "pool", buf, sizeof buf));
   snprintf (c->index, sizeof c->index, "%s", ctl_format_field (slot, "index", buf, sizeof buf));
   snprintf (c->task, sizeof c->task, "%s", ctl_format_field (slot, "task", buf, sizeof buf));
   snprintf (c->worker, sizeof c->worker, "%s", ctl_format_field (slot, "worker_pid", buf, sizeof buf));
   if (!strcmp (ctl_format_date (slot, "acquired", c->since, sizeof c->since), "-")) {
      snprintf (c->since, sizeof c->since, "-");
   }
   if (!strcmp (ctl_format_date (slot, "keepalive", c->keepalive, sizeof c->keepalive), "-")) {
      snprintf (c->keepalive, sizeof c->keepalive, "-");
   }
   c->mark = !held->pool ? "(pool not declared)" : is_beyond (slot) ? "(beyond size)" : "";
}

static void
slots_table (const char *db, const bson_t *reply)
{
   int pw[4] = {4, 4, 7, 6}; /* POOL SIZE TIMEOUT IN_USE */
   int sw[4] = {4, 5, 4, 6}; /* POOL INDEX TASK WORKER */
   uint32_t n_pools = ctl_array_len (reply, "pools"), n_held = 0;
   bson_t *pools = bson_malloc0 ((n_pools + 1) * sizeof *pools), slot;
   held_t *held;
   char size[24], timeout[40];
   slot_cells_t c;
   bson_iter_t iter, slots;
   size_t p = 0;

   /* The pools, and every held slot: theirs, then those of no pool. */
   ctl_array (reply, "pools", &iter);
   while (p < n_pools && ctl_array_next (&iter, &pools[p])) {
      n_held += ctl_array_len (&pools[p++], "slots");
   }
   n_pools = (uint32_t) p;
   n_held += ctl_array_len (reply, "undeclared");
   held = bson_malloc0 ((n_held + 1) * sizeof *held);
   n_held = 0;
   for (p = 0; p < n_pools; p++) {
      ctl_array (&pools[p], "slots", &slots);
      while (ctl_array_next (&slots, &slot)) {
         held[n_held] = (held_t){.data = bson_get_data (&slot), .len = slot.len, .pool = &pools[p], .seq = n_held};
         n_held++;
      }
   }
   ctl_array (reply, "undeclared", &slots);
   while (ctl_array_next (&slots, &slot)) {
      held[n_held] = (held_t){.data = bson_get_data (&slot), .len = slot.len, .pool = NULL, .seq = n_held};
      n_held++;
   }
   if (n_held) {
      qsort (held, n_held, sizeof *held, compare_held);
   }

   if (!n_pools) {
      printf ("no pools in %s.%s; declare one with 'mtaskctl pool set NAME --size N'\n", db, MT_POOLS_COLLECTION);
   } else {
      for (p = 0; p < n_pools; p++) {
         pw[0] = BSON_MAX (pw[0], (int) strlen (ctl_format_field (&pools[p], "_id", size, sizeof size)));
         pw[1] = BSON_MAX (pw[1], (int) strlen (ctl_format_field (&pools[p], "size", size, sizeof size)));
         pw[2] = BSON_MAX (pw[2], (int) strlen (format_timeout (&pools[p], timeout, sizeof timeout)));
      }
      printf ("%-*s  %*s  %*s  %*s\n", pw[0], "POOL", pw[1], "SIZE", pw[2], "TIMEOUT", pw[3], "IN_USE");
      for (p = 0; p < n_pools; p++) {
         char id[64];
         int64_t beyond = 0;

         ctl_array (&pools[p], "slots", &slots);
         while (ctl_array_next (&slots, &slot)) {
            beyond += is_beyond (&slot);
         }
         printf ("%-*s  %*s  %*s  %*" PRId64,
                 pw[0], ctl_format_field (&pools[p], "_id", id, sizeof id),
                 pw[1], ctl_format_field (&pools[p], "size", size, sizeof size),
                 pw[2], format_timeout (&pools[p], timeout, sizeof timeout),
                 pw[3], ctl_get_int (&pools[p], "in_use", 0));
         if (beyond) {
            printf ("  +%" PRId64 " beyond size", beyond);
         }
         printf ("\n");
      }
   }
   if (!n_held) {
      if (n_pools) {
         printf ("\nno slot is held\n");
      }
      goto cleanup;
   }
   for (size_t s = 0; s < n_held; s++) {
      slot_cells (&held[s], &c);
      sw[0] = BSON_MAX (sw[0], (int) strlen (c.pool));
      sw[1] = BSON_MAX (sw[1], (int) strlen (c.index));
      sw[2] = BSON_MAX (sw[2], (int) strlen (c.task));
      sw[3] = BSON_MAX (sw[3], (int) strlen (c.worker));
   }
   printf ("\n%-*s  %*s  %-*s  %-*s  %-20s  %s\n",
           sw[0], "POOL", sw[1], "INDEX", sw[2], "TASK", sw[3], "WORKER", "SINCE", "KEEPALIVE");
   for (size_t s = 0; s < n_held; s++) {
      slot_cells (&held[s], &c);
      printf ("%-*s  %*s  %-*s  %-*s  %-20s  ", sw[0], c.pool, sw[1], c.index, sw[2], c.task, sw[3], c.worker, c.since);
      if (c.mark[0]) {
         printf ("%-20s  %s\n", c.keepalive, c.mark);
      } else {
         printf ("%s\n", c.keepalive);
      }
   }

cleanup:
   bson_free (held);
   bson_free (pools);
}

int
ctl_cmd_slots (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_error_t error;
   bson_t reply;
   int status = 0;

   if (!mt_admin_slots (client, db, NULL, &reply, &error)) {
      if (!strcmp (ctl_failed_in (&reply, MT_POOLS_COLLECTION), MT_SLOTS_COLLECTION)) {
         status = ctl_db_error (db, MT_SLOTS_COLLECTION, &error, "list the held slots");
      } else {
         status = ctl_db_error (db, MT_POOLS_COLLECTION, &error, "list pools");
      }
      goto cleanup;
   }
   if (!ctl->seen[F_JSON]) {
      slots_table (db, &reply);
   } else if (ctl_array_len (&reply, "undeclared")) {
      ctl_print_json (&reply);
   } else {
      /* Held slots of a pool DB.pools no longer has: only when there are. */
      bson_t out = BSON_INITIALIZER;

      bson_copy_to_excluding_noinit (&reply, &out, "undeclared", NULL);
      ctl_print_json (&out);
      bson_destroy (&out);
   }

cleanup:
   bson_destroy (&reply);
   return status;
}

int
ctl_cmd_slot_keepalive (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t reply = BSON_INITIALIZER, slot = BSON_INITIALIZER;
   bson_error_t error;
   bson_iter_t iter;
   char id[64], at[40];
   bool found;
   int status = 0;

   if (!mt_slot_keepalive (client, db, &ctl->oid, &error)) {
      status = ctl_db_error (db, MT_SLOTS_COLLECTION, &error, "keep the slot of task %s alive", ctl->id);
      goto cleanup;
   }
   bson_destroy (&reply);
   if (!mt_admin_task_slots (client, db, &ctl->oid, NULL, &reply, &error)) {
      status = ctl_db_error (db, MT_SLOTS_COLLECTION, &error, "read the slot of task %s", ctl->id);
      goto cleanup;
   }
   ctl_array (&reply, "slots", &iter);
   found = ctl_array_next (&iter, &slot);
   if (ctl->seen[F_JSON]) {
      ctl_print_json (&slot); /* {} when it was freed meanwhile */
   } else if (!found) {
      printf ("task %s: slot kept alive; it has been freed since\n", ctl->id);
   } else {
      printf ("task %s: slot %s kept alive at %s\n",
              ctl->id,
              ctl_format_field (&slot, "_id", id, sizeof id),
              ctl_format_date (&slot, "keepalive", at, sizeof at));
   }

cleanup:
   bson_destroy (&reply);
   return status;
}

/* The task's status into *out (bson_strdup'ed), NULL when there is no such
 * task. */
static bool
task_status (mongoc_client_t *client, const char *db, const bson_oid_t *id, char **out, bson_error_t *error)
{
   bson_t reply, task;
   bool ok = mt_admin_task (client, db, id, NULL, &reply, error);

   *out = NULL;
   if (ok && ctl_get_doc (&reply, "task", &task)) {
      *out = bson_strdup (ctl_get_str (&task, "status") ? ctl_get_str (&task, "status") : "?");
   }
   bson_destroy (&reply);
   return ok || ctl_not_found (error);
}

int
ctl_cmd_slot_stop (const ctl_t *ctl, mongoc_client_t *client, const char *db)
{
   bson_t slots = BSON_INITIALIZER, slot;
   char *was = NULL, *now = NULL, *names = NULL;
   bson_error_t error;
   bson_iter_t iter;
   int status = 0;

   bson_destroy (&slots);
   if (!mt_admin_task_slots (client, db, &ctl->oid, NULL, &slots, &error)) {
      status = ctl_db_error (db, MT_SLOTS_COLLECTION, &error, "read the slots of task %s", ctl->id);
      goto cleanup;
   }
   if (!task_status (client, db, &ctl->oid, &was, &error)) {
      status = ctl_db_error (db, MT_TASKS_COLLECTION, &error, "read task %s", ctl->id);
      goto cleanup;
   }
   if (!mt_slot_stop (client, db, &ctl->oid, &error)) {
      status = ctl_db_error (db, MT_SLOTS_COLLECTION, &error, "stop task %s", ctl->id);
      goto cleanup;
   }
   if (!task_status (client, db, &ctl->oid, &now, &error)) {
      status = ctl_db_error (db, MT_TASKS_COLLECTION, &error, "read task %s after stopping it", ctl->id);
      goto cleanup;
   }
   if (ctl->seen[F_JSON]) {
      bson_t out = BSON_INITIALIZER, list;
      uint32_t i = 0;
      char key[16];
      const char *k;

      BSON_APPEND_OID (&out, "_id", &ctl->oid);
      BSON_APPEND_ARRAY_BEGIN (&out, "slots", &list);
      ctl_array (&slots, "slots", &iter);
      while (ctl_array_next (&iter, &slot)) {
         bson_iter_t id;

         bson_uint32_to_string (i++, &k, key, sizeof key);
         if (bson_iter_init_find (&id, &slot, "_id")) {
            BSON_APPEND_VALUE (&list, k, bson_iter_value (&id));
         }
      }
      bson_append_array_end (&out, &list);
      if (was) {
         BSON_APPEND_UTF8 (&out, "was", was);
      } else {
         BSON_APPEND_NULL (&out, "was");
      }
      if (now) {
         BSON_APPEND_UTF8 (&out, "status", now);
      } else {
         BSON_APPEND_NULL (&out, "status");
      }
      ctl_print_json (&out);
      bson_destroy (&out);
      goto cleanup;
   }
   ctl_array (&slots, "slots", &iter);
   while (ctl_array_next (&iter, &slot)) {
      char id[64], *joined;

      joined = bson_strdup_printf ("%s%s%s", names ? names : "", names ? ", " : "", ctl_format_field (&slot, "_id", id, sizeof id));
      bson_free (names);
      names = joined;
   }
   if (!names) {
      names = bson_strdup ("its slot");
   }
   if (was && !strcmp (was, MT_STATUS_WORK_IN_PROGRESS) && now && !strcmp (now, MT_STATUS_CANCELLED)) {
      printf ("task %s stopped: CANCELLED, %s freed; its worker calls the plugin's on_stop\n", ctl->id, names);
   } else if (!now) {
      printf ("task %s: no such task in %s.%s; %s freed\n", ctl->id, db, MT_TASKS_COLLECTION, names);
   } else {
      printf ("task %s was not running (%s): %s freed\n", ctl->id, now, names);
   }

cleanup:
   bson_free (was);
   bson_free (now);
   bson_free (names);
   bson_destroy (&slots);
   return status;
}
