/* Leases: the worker's registry document, heartbeats, and taking back the
 * tasks of workers that went silent.
 *
 * At start a worker registers its id (mt_lease_register): one live worker
 * per id. Then a heartbeat thread, independent of the task threads, every
 * lease/3:
 * - upserts this worker's document in `workers` with $currentDate and reads
 *   it back: the server's time, from which the worker keeps an estimate of
 *   the offset between the server's clock and its own (only while the
 *   document is still this process's: else the worker stops claiming);
 * - renews the lease (`heartbeat`, server time) of the tasks it runs, fenced
 *   on its id;
 * - takes back tasks whose heartbeat is older than the lease: CREATED with
 *   the attempt counted, or FAILED when it was the last one. The update is
 *   conditional on the holder it saw, so each task is taken back once
 *   however many workers look. Their account locks go with them.
 * Every time compared on the server is a server time. The worker's
 * heartbeat thread (heartbeat.c) calls these. */
#include "crash.h"
#include "mtask-private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MT_RECLAIM_BATCH 100

/* ---- the registry: one live worker per id --------------------------------
 *
 * Two live workers under one id would run tasks twice: a start takes back
 * whatever its id holds, so the second would take the first's running
 * tasks. A worker therefore registers its id with one conditional write,
 * which succeeds only while the entry is free: missing, `stopped`, silent
 * for longer than its own lease (on the server's clock, $$NOW), or this
 * very process (same host and pid). Of two workers starting at once under
 * one id only one can succeed: the other's upsert meets the first's _id
 * (E11000). Every later write of the entry is conditional on the host and
 * pid that registered it, so a worker whose id was taken over learns it at
 * its next heartbeat. */

#define MT_REGISTER_ROUNDS 5

/* The first line of a file, or "" (not Linux, not readable). */
static void
read_first_line (const char *path, char *out, size_t size)
{
   FILE *file = fopen (path, "r");

   out[0] = '\0';
   if (file) {
      if (!fgets (out, (int) size, file)) {
         out[0] = '\0';
      }
      out[strcspn (out, "\n")] = '\0';
      fclose (file);
   }
}

/* What tells this machine's pids apart beyond the host name: the kernel's
 * boot and the pid namespace (two containers may share a host name). When
 * both are an entry's own, a pid that no longer exists is a worker that is
 * gone for certain. Empty when unknown. */
static void
process_identity (char *boot_id, size_t boot_size, char *pid_ns, size_t ns_size)
{
   ssize_t n;

   read_first_line ("/proc/sys/kernel/random/boot_id", boot_id, boot_size);
   n = readlink ("/proc/self/ns/pid", pid_ns, ns_size - 1);
   pid_ns[n > 0 ? n : 0] = '\0';
}

/* A registry entry as read, with the age of its heartbeat on the server's
 * clock. */
typedef struct {
   bool found;
   char status[32];
   char host[256];
   int64_t pid; /* 0 when it has none */
   char boot_id[64];
   char pid_ns[64];
   int64_t lease_ms; /* its own, or ours when it says none */
   bool has_heartbeat;
   int64_t age_ms;
} mt_registry_entry_t;

static void
copy_utf8 (const bson_t *doc, const char *key, char *out, size_t size)
{
   bson_iter_t iter;

   out[0] = '\0';
   if (bson_iter_init_find (&iter, doc, key) && BSON_ITER_HOLDS_UTF8 (&iter)) {
      bson_strncpy (out, bson_iter_utf8 (&iter, NULL), size);
   }
}

/* Reads the entry of this worker's id, on the primary, with the server's
 * time ($$NOW) beside it. */
static bool
registry_read (mt_context_t *ctx, mongoc_collection_t *workers, mt_registry_entry_t *entry, bson_error_t *error)
{
   bson_t *pipeline = BCON_NEW ("pipeline",
                                "[",
                                "{",
                                "$match",
                                "{",
                                "_id",
                                BCON_UTF8 (ctx->worker_id),
                                "}",
                                "}",
                                "{",
                                "$addFields",
                                "{",
                                "mt_now",
                                "$$NOW",
                                "}",
                                "}",
                                "]");
   mongoc_read_prefs_t *primary = mongoc_read_prefs_new (MONGOC_READ_PRIMARY);
   mongoc_cursor_t *cursor = mongoc_collection_aggregate (workers, MONGOC_QUERY_NONE, pipeline, NULL, primary);
   const bson_t *doc;
   bson_iter_t iter;
   bool ok;

   memset (entry, 0, sizeof *entry);
   entry->lease_ms = ctx->lease_ms;
   if (mongoc_cursor_next (cursor, &doc)) {
      int64_t now = 0;

      entry->found = true;
      copy_utf8 (doc, "status", entry->status, sizeof entry->status);
      copy_utf8 (doc, "host", entry->host, sizeof entry->host);
      copy_utf8 (doc, "boot_id", entry->boot_id, sizeof entry->boot_id);
      copy_utf8 (doc, "pid_ns", entry->pid_ns, sizeof entry->pid_ns);
      if (bson_iter_init_find (&iter, doc, "pid") && BSON_ITER_HOLDS_NUMBER (&iter)) {
         entry->pid = bson_iter_as_int64 (&iter);
      }
      if (bson_iter_init_find (&iter, doc, "lease_seconds") && BSON_ITER_HOLDS_NUMBER (&iter) &&
          bson_iter_as_double (&iter) > 0) {
         entry->lease_ms = (int64_t) (bson_iter_as_double (&iter) * 1000.0);
      }
      if (bson_iter_init_find (&iter, doc, "mt_now") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         now = bson_iter_date_time (&iter);
      }
      if (now && bson_iter_init_find (&iter, doc, "heartbeat") && BSON_ITER_HOLDS_DATE_TIME (&iter)) {
         entry->has_heartbeat = true;
         entry->age_ms = now - bson_iter_date_time (&iter);
      }
   }
   ok = !mongoc_cursor_error (cursor, error);
   mongoc_cursor_destroy (cursor);
   mongoc_read_prefs_destroy (primary);
   bson_destroy (pipeline);
   return ok;
}

/* Whether the entry is free for this process: the registering write's
 * filter, as read. */
static bool
registry_free (const mt_registry_entry_t *entry, const char *host, int32_t pid)
{
   return !entry->found || !strcmp (entry->status, "stopped") || (!strcmp (entry->host, host) && entry->pid == pid) ||
          !entry->has_heartbeat || entry->age_ms > entry->lease_ms;
}

/* Whether the entry is a process of this machine and pid namespace (same
 * host, boot and namespace) that no longer exists: a worker killed and
 * started again need not wait out its lease. */
static bool
registry_process_gone (const mt_registry_entry_t *entry, const char *host, const char *boot_id, const char *pid_ns)
{
   if (!boot_id[0] || !pid_ns[0] || entry->pid <= 0 || entry->pid > INT32_MAX || strcmp (entry->host, host) != 0 ||
       strcmp (entry->boot_id, boot_id) != 0 || strcmp (entry->pid_ns, pid_ns) != 0) {
      return false;
   }
   return kill ((pid_t) entry->pid, 0) != 0 && errno == ESRCH;
}

/* The registering write's filter: `_id` and, unless replacing, an entry
 * that is free, or exactly the one found gone (`gone`, may be NULL). */
static bson_t *
registry_filter (mt_context_t *ctx, const char *host, int32_t pid, bool replace, const mt_registry_entry_t *gone)
{
   double lease_s = (double) ctx->lease_ms / 1000.0;
   bson_t *filter = BCON_NEW ("_id", BCON_UTF8 (ctx->worker_id));
   bson_t or, *clause;

   if (replace) {
      return filter;
   }
   BSON_APPEND_ARRAY_BEGIN (filter, "$or", &or);
   clause = BCON_NEW ("status", "stopped");
   BSON_APPEND_DOCUMENT (&or, "0", clause);
   bson_destroy (clause);
   clause = BCON_NEW ("host", BCON_UTF8 (host), "pid", BCON_INT32 (pid));
   BSON_APPEND_DOCUMENT (&or, "1", clause);
   bson_destroy (clause);
   /* heartbeat < $$NOW - its lease (ours when it has none or a bad one);
    * a missing heartbeat compares lower than any date. */
   clause = BCON_NEW ("$expr",
                      "{",
                      "$lt",
                      "[",
                      "$heartbeat",
                      "{",
                      "$subtract",
                      "[",
                      "$$NOW",
                      "{",
                      "$multiply",
                      "[",
                      "{",
                      "$convert",
                      "{",
                      "input",
                      "{",
                      "$ifNull",
                      "[",
                      "$lease_seconds",
                      BCON_DOUBLE (lease_s),
                      "]",
                      "}",
                      "to",
                      "double",
                      "onError",
                      BCON_DOUBLE (lease_s),
                      "onNull",
                      BCON_DOUBLE (lease_s),
                      "}",
                      "}",
                      BCON_INT32 (1000),
                      "]",
                      "}",
                      "]",
                      "}",
                      "]",
                      "}");
   BSON_APPEND_DOCUMENT (&or, "2", clause);
   bson_destroy (clause);
   if (gone) {
      /* Compare and swap: only the entry seen, if nobody took it since. */
      clause = BCON_NEW ("host",
                         BCON_UTF8 (gone->host),
                         "pid",
                         BCON_INT64 (gone->pid),
                         "boot_id",
                         BCON_UTF8 (gone->boot_id),
                         "pid_ns",
                         BCON_UTF8 (gone->pid_ns));
      BSON_APPEND_DOCUMENT (&or, "3", clause);
      bson_destroy (clause);
   }
   bson_append_array_end (filter, &or);
   return filter;
}

static void
describe_entry (const mt_registry_entry_t *entry, char *out, size_t size)
{
   char age[64] = "no heartbeat";

   if (entry->has_heartbeat) {
      bson_snprintf (age, sizeof age, "its last heartbeat %.1f s ago", (double) entry->age_ms / 1000.0);
   }
   bson_snprintf (out,
                  size,
                  "host '%s' pid %" PRId64 " (%s, lease %.0f s)",
                  entry->host[0] ? entry->host : "?",
                  entry->pid,
                  age,
                  (double) entry->lease_ms / 1000.0);
}

/* The TTL index that deletes stopped and lost workers' documents once their
 * `expires` is past. Only the registry's tidiness depends on it: a failure
 * is logged, and the workers' upkeep deletes them anyway. */
static void
registry_ttl (mt_context_t *ctx, mongoc_client_t *client)
{
   bson_t *cmd = BCON_NEW ("createIndexes",
                           BCON_UTF8 (MT_WORKERS_COLLECTION),
                           "indexes",
                           "[",
                           "{",
                           "key",
                           "{",
                           "expires",
                           BCON_INT32 (1),
                           "}",
                           "name",
                           "mtask_workers_ttl",
                           "expireAfterSeconds",
                           BCON_INT32 (0),
                           "}",
                           "]");
   bson_error_t error;

   if (!mongoc_client_write_command_with_opts (client, ctx->db, cmd, NULL, NULL, &error)) {
      mt_log (ctx,
              MT_LOG_WARNING,
              "cannot create the TTL index on '%s.%s' (stopped and lost workers' documents are deleted by the "
              "workers instead): %s",
              ctx->db,
              MT_WORKERS_COLLECTION,
              error.message);
   }
   bson_destroy (cmd);
}

bool
mt_lease_register (mt_context_t *ctx, mongoc_client_t *client, const char *host, int32_t pid, bool replace, bson_error_t *error)
{
   mongoc_collection_t *workers = mongoc_client_get_collection (client, ctx->db, MT_WORKERS_COLLECTION);
   char boot_id[64], pid_ns[64], seen[512];
   mt_registry_entry_t entry, gone;
   bool have_gone = false, ok = false;
   bson_t *opts = BCON_NEW ("upsert", BCON_BOOL (true));

   process_identity (boot_id, sizeof boot_id, pid_ns, sizeof pid_ns);
   registry_ttl (ctx, client);
   if (replace) {
      /* Only to say whom it replaces. */
      if (!registry_read (ctx, workers, &entry, error)) {
         goto cleanup;
      }
      if (!registry_free (&entry, host, pid)) {
         describe_entry (&entry, seen, sizeof seen);
         mt_log (ctx,
                 MT_LOG_WARNING,
                 "worker id '%s': replacing the worker on %s, as --replace says; its running tasks are taken back "
                 "now; if it is still alive it stops claiming at its next heartbeat, and what it finishes is "
                 "dropped",
                 ctx->worker_id,
                 seen);
      }
   }
   for (int round = 0; round < MT_REGISTER_ROUNDS; round++) {
      bson_t *filter = registry_filter (ctx, host, pid, replace, have_gone ? &gone : NULL);
      bson_t update = BSON_INITIALIZER, set, date, unset;

      BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
      BSON_APPEND_UTF8 (&set, "host", host);
      BSON_APPEND_INT32 (&set, "pid", pid);
      BSON_APPEND_UTF8 (&set, "status", "running");
      BSON_APPEND_DOUBLE (&set, "lease_seconds", (double) ctx->lease_ms / 1000.0);
      if (boot_id[0] && pid_ns[0]) {
         BSON_APPEND_UTF8 (&set, "boot_id", boot_id);
         BSON_APPEND_UTF8 (&set, "pid_ns", pid_ns);
      }
      bson_append_document_end (&update, &set);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$unset", &unset);
      if (!boot_id[0] || !pid_ns[0]) {
         /* Not those of an earlier process, which another would trust. */
         BSON_APPEND_UTF8 (&unset, "boot_id", "");
         BSON_APPEND_UTF8 (&unset, "pid_ns", "");
      }
      /* An operator's command was for the earlier process, and a live
       * worker's document does not expire. */
      BSON_APPEND_UTF8 (&unset, "command", "");
      BSON_APPEND_UTF8 (&unset, "grace", "");
      BSON_APPEND_UTF8 (&unset, "expires", "");
      bson_append_document_end (&update, &unset);
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
      BSON_APPEND_BOOL (&date, "heartbeat", true);
      BSON_APPEND_BOOL (&date, "started", true);
      bson_append_document_end (&update, &date);

      ok = mongoc_collection_update_one (workers, filter, &update, opts, NULL, error);
      bson_destroy (&update);
      bson_destroy (filter);
      if (ok) {
         if (have_gone) {
            mt_log (ctx,
                    MT_LOG_INFO,
                    "worker id '%s': its earlier process (pid %" PRId64 " of this host) is gone; taking the id over",
                    ctx->worker_id,
                    gone.pid);
         }
         goto cleanup;
      }
      if (error->code != 11000 && error->code != 11001) {
         goto cleanup;
      }
      /* Held: by whom, and is it still? */
      if (!registry_read (ctx, workers, &entry, error)) {
         goto cleanup;
      }
      if (registry_free (&entry, host, pid)) {
         continue; /* let go of since: try again */
      }
      if (registry_process_gone (&entry, host, boot_id, pid_ns)) {
         gone = entry;
         have_gone = true;
         continue;
      }
      describe_entry (&entry, seen, sizeof seen);
      bson_set_error (error,
                      MT_ERROR_CONFIG,
                      MT_CONFIG_ERROR_STATE,
                      "worker id '%s' is in use by a live worker: %s; this one is host '%s' pid %" PRId32
                      ". Two workers under one id would run tasks twice. Give each worker its own --pid (or none: "
                      "a unique one is generated); if that worker is gone, wait %.0f s for its lease to run out, "
                      "or start this one with --replace",
                      ctx->worker_id,
                      seen,
                      host,
                      pid,
                      entry.has_heartbeat ? (double) BSON_MAX (0, entry.lease_ms - entry.age_ms) / 1000.0 + 1 : 1.0);
      ok = false;
      goto cleanup;
   }
   bson_set_error (error,
                   MT_ERROR_CONFIG,
                   MT_CONFIG_ERROR_STATE,
                   "worker id '%s': its registry entry in '%s.%s' changed under each of %d tries to register; is "
                   "another worker starting under this id again and again? Try again",
                   ctx->worker_id,
                   ctx->db,
                   MT_WORKERS_COLLECTION,
                   MT_REGISTER_ROUNDS);
   ok = false;

cleanup:
   bson_destroy (opts);
   mongoc_collection_destroy (workers);
   return ok;
}

/* Renews the leases of the tasks in `held` (an array of _ids) that this
 * worker's id still holds. */
static bool
renew_leases (mt_context_t *ctx, mongoc_collection_t *tasks, const bson_t *held, bson_error_t *error)
{
   bson_t renew = BSON_INITIALIZER, in, *touch;
   bool ok;

   if (bson_empty (held)) {
      return true;
   }
   touch = BCON_NEW ("$currentDate", "{", "heartbeat", BCON_BOOL (true), "}");
   BSON_APPEND_DOCUMENT_BEGIN (&renew, "_id", &in);
   BSON_APPEND_ARRAY (&in, "$in", held);
   bson_append_document_end (&renew, &in);
   BSON_APPEND_UTF8 (&renew, "status", MT_STATUS_WORK_IN_PROGRESS);
   BSON_APPEND_UTF8 (&renew, "worker_pid", ctx->worker_id);
   ok = mongoc_collection_update_many (tasks, &renew, touch, NULL, NULL, error);
   bson_destroy (touch);
   bson_destroy (&renew);
   return ok;
}

/* The registry entry is another process's now (started with --replace, or
 * after this one's lease ran out): this worker stops claiming, and says so
 * once; `error` says it in short, for each write that finds it so. */
static void
taken_over (mt_context_t *ctx, mongoc_collection_t *workers, bson_error_t *error)
{
   mt_registry_entry_t entry;
   bson_error_t ignored;
   char seen[512] = "another process";

   if (registry_read (ctx, workers, &entry, &ignored) && entry.found) {
      bson_snprintf (seen, sizeof seen, "host '%s' pid %" PRId64, entry.host, entry.pid);
   }
   bson_set_error (error, MT_ERROR_STORE, MT_STORE_ERROR_LOST, "worker id '%s' now belongs to %s", ctx->worker_id, seen);
   if (!mt_context_get (ctx, &ctx->stopping)) {
      if (entry.found) {
         describe_entry (&entry, seen, sizeof seen);
      }
      mt_log (ctx,
              MT_LOG_ERROR,
              "worker id '%s' was taken over by %s (a worker started with --replace, or after this one's lease "
              "ran out): this worker stops claiming, lets what it runs end, and exits; outcomes of the tasks "
              "taken back from it are dropped",
              ctx->worker_id,
              seen);
      mt_context_raise (ctx, &ctx->stopping);
   }
}

bool
mt_lease_heartbeat (
   mt_context_t *ctx, mongoc_client_t *client, const bson_t *fields, const bson_t *held, bson_t *entry, bson_error_t *error)
{
   mongoc_collection_t *workers = mongoc_client_get_collection (client, ctx->db, MT_WORKERS_COLLECTION);
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new ();
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, child, reply;
   bson_iter_t iter, hb;
   int64_t after;
   bool ok = false;

   if (entry) {
      bson_init (entry);
   }
   BSON_APPEND_UTF8 (&filter, "_id", ctx->worker_id);
   /* Only while the entry is still this process's (mt_lease_register): an
    * entry another process took over makes the upsert meet its _id. */
   if (bson_iter_init_find (&iter, fields, "host")) {
      BSON_APPEND_VALUE (&filter, "host", bson_iter_value (&iter));
   }
   if (bson_iter_init_find (&iter, fields, "pid")) {
      BSON_APPEND_VALUE (&filter, "pid", bson_iter_value (&iter));
   }
   BSON_APPEND_DOCUMENT (&update, "$set", fields);
   if (!bson_has_field (fields, "expires")) {
      /* Alive: a worker marked lost while it was paused must not expire. */
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$unset", &child);
      BSON_APPEND_UTF8 (&child, "expires", "");
      bson_append_document_end (&update, &child);
   }
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &child);
   BSON_APPEND_BOOL (&child, "heartbeat", true);
   bson_append_document_end (&update, &child);
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$setOnInsert", &child);
   BSON_APPEND_DATE_TIME (&child, "started", mt_server_now (ctx));
   bson_append_document_end (&update, &child);

   mongoc_find_and_modify_opts_set_update (opts, &update);
   mongoc_find_and_modify_opts_set_flags (opts, MONGOC_FIND_AND_MODIFY_UPSERT | MONGOC_FIND_AND_MODIFY_RETURN_NEW);
   if (!mongoc_collection_find_and_modify_with_opts (workers, &filter, opts, &reply, error)) {
      bson_destroy (&reply);
      if (error->code == 11000 || error->code == 11001) {
         taken_over (ctx, workers, error);
         /* What it still runs it runs for itself (the new holder took back
          * what the id held when it started): keep those leases. */
         renew_leases (ctx, tasks, held, NULL);
      }
      goto cleanup;
   }
   after = mt_now_ms ();
   if (bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter) && bson_iter_recurse (&iter, &hb) &&
       bson_iter_find (&hb, "heartbeat") && BSON_ITER_HOLDS_DATE_TIME (&hb)) {
      /* The server stamped it somewhere between before and after: the
       * offset is at least stamp - after. Taking that lower bound, the
       * worker's idea of the server's time never runs ahead of it, so it
       * never claims a task early nor takes back a lease early. */
      mt_server_clock_set (ctx, bson_iter_date_time (&hb) - after);
   }
   if (entry && bson_iter_init_find (&iter, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT (&iter)) {
      const uint8_t *data;
      uint32_t len;
      bson_t view;

      bson_iter_document (&iter, &len, &data);
      if (bson_init_static (&view, data, len)) {
         bson_destroy (entry);
         bson_copy_to (&view, entry);
      }
   }
   bson_destroy (&reply);

   ok = renew_leases (ctx, tasks, held, error);

cleanup:
   mongoc_find_and_modify_opts_destroy (opts);
   bson_destroy (&filter);
   bson_destroy (&update);
   mongoc_collection_destroy (workers);
   mongoc_collection_destroy (tasks);
   return ok;
}

/* Takes back one task of a lost worker, only if it is still exactly as
 * seen. Returns whether this call took it. */
static bool
reclaim_one (mt_context_t *ctx,
             mongoc_client_t *client,
             mongoc_collection_t *tasks,
             const bson_t *task,
             bool own,
             int64_t cutoff)
{
   bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set, date, reply;
   bson_iter_t iter, id_iter;
   const bson_value_t *id;
   const char *holder = "?", *type = NULL;
   int32_t attempts = 0, task_max = 0, max, failures;
   bson_error_t why, error;
   char id_str[64] = "?";
   bool ok, taken = false;
   int signo = 0;

   /* `id` points into its iterator: one of its own, as `iter` moves on. */
   if (!bson_iter_init_find (&id_iter, task, "_id")) {
      return false;
   }
   id = bson_iter_value (&id_iter);
   if (id->value_type == BSON_TYPE_OID) {
      bson_oid_to_string (&id->value.v_oid, id_str);
   }
   BSON_APPEND_VALUE (&filter, "_id", id);
   BSON_APPEND_UTF8 (&filter, "status", MT_STATUS_WORK_IN_PROGRESS);
   if (bson_iter_init_find (&iter, task, "worker_pid") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      holder = bson_iter_utf8 (&iter, NULL);
      BSON_APPEND_UTF8 (&filter, "worker_pid", holder);
   } else {
      BSON_APPEND_NULL (&filter, "worker_pid");
   }
   if (bson_iter_init_find (&iter, task, "attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      attempts = (int32_t) bson_iter_as_int64 (&iter);
      BSON_APPEND_VALUE (&filter, "attempts", bson_iter_value (&iter));
   } else {
      BSON_APPEND_NULL (&filter, "attempts");
   }
   if (!own) {
      /* Still silent: a heartbeat since the read would be newer. (Not an
       * equality on the date seen: a server may keep $currentDate finer
       * than the milliseconds it sends, as mongo-java-server does.) */
      bson_t lt;

      if (bson_iter_init_find (&iter, task, "heartbeat")) {
         BSON_APPEND_DOCUMENT_BEGIN (&filter, "heartbeat", &lt);
         BSON_APPEND_DATE_TIME (&lt, "$lt", cutoff);
         bson_append_document_end (&filter, &lt);
      } else {
         BSON_APPEND_DOCUMENT_BEGIN (&filter, "heartbeat", &lt);
         BSON_APPEND_BOOL (&lt, "$exists", false);
         bson_append_document_end (&filter, &lt);
      }
   }
   if (bson_iter_init_find (&iter, task, "max_attempts") && BSON_ITER_HOLDS_NUMBER (&iter)) {
      task_max = (int32_t) bson_iter_as_int64 (&iter);
   }
   if (bson_iter_init_find (&iter, task, "type") && BSON_ITER_HOLDS_UTF8 (&iter)) {
      type = bson_iter_utf8 (&iter, NULL);
   }
   max = mt_retry_max_attempts (ctx, type, task_max);
   /* A lost run counts against the budget as a failure does. */
   failures = mt_task_failures (task, attempts) + 1;

   if (own && mt_crash_note_find (ctx->db, ctx->worker_id, id_str, attempts, &signo)) {
      /* The worker died of a signal running it (crash.c left the note). */
      bson_set_error (&why,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_CRASHED,
                      "the worker crashed while running it (signal %d, %s): worker '%s' died during attempt %" PRId32
                      " and was restarted; taken back",
                      signo,
                      mt_crash_signal_name (signo),
                      holder,
                      attempts);
   } else if (own) {
      bson_set_error (&why,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_WORKER_LOST,
                      "worker '%s' was restarted while running this task (attempt %" PRId32 "); taken back",
                      holder,
                      attempts);
   } else {
      bson_set_error (&why,
                      MT_ERROR_TASK,
                      MT_TASK_ERROR_WORKER_LOST,
                      "worker '%s' was lost: no heartbeat for %.0f s (its lease) during attempt %" PRId32
                      "; taken back by '%s'",
                      holder,
                      (double) ctx->lease_ms / 1000.0,
                      attempts,
                      ctx->worker_id);
   }
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$set", &set);
   BSON_APPEND_UTF8 (&set, "status", failures >= max ? MT_STATUS_FAILED : MT_STATUS_CREATED);
   BSON_APPEND_NULL (&set, "worker_pid");
   BSON_APPEND_NULL (&set, "delayed");
   BSON_APPEND_INT32 (&set, "max_attempts", max);
   BSON_APPEND_INT32 (&set, "failures", failures);
   mt_append_error (&set, "error", &why);
   bson_append_document_end (&update, &set);
   if (failures >= max) {
      BSON_APPEND_DOCUMENT_BEGIN (&update, "$currentDate", &date);
      BSON_APPEND_BOOL (&date, "finished", true);
      bson_append_document_end (&update, &date);
   }
   BSON_APPEND_DOCUMENT_BEGIN (&update, "$unset", &date);
   BSON_APPEND_UTF8 (&date, "claim", ""); /* the lost hold's token goes with it */
   bson_append_document_end (&update, &date);
   mt_append_error_history (&update, &why, attempts);

   ok = mongoc_collection_update_one (tasks, &filter, &update, NULL, &reply, &error);
   if (ok && bson_iter_init_find (&iter, &reply, "modifiedCount") && bson_iter_as_int64 (&iter) == 1) {
      mt_lock_owner_t owner = {.task_id = id, .worker_id = holder, .attempt = attempts};

      taken = true;
      /* Both lapse anyway now that the run is over (the next taker takes
       * the lock over; upkeep frees the slot): say so and go on. */
      if (mt_locks_release_all (client, ctx->db, &owner, &error) < 0) {
         mt_log (ctx, MT_LOG_WARNING, "task %s: cannot release its account locks yet: %s", id_str, error.message);
      }
      if (!mt_slot_release (client, ctx->db, id, attempts, &error)) {
         mt_log (ctx, MT_LOG_WARNING, "task %s: cannot free its slot yet: %s", id_str, error.message);
      }
      if (failures >= max && !mt_group_task_ended_doc (client, ctx->db, task, &error)) {
         mt_log (ctx, MT_LOG_WARNING, "task %s: cannot count it in its stage yet: %s", id_str, error.message);
      }
      mt_log (ctx,
              MT_LOG_WARNING,
              "task %s: %s; now %s",
              id_str,
              why.message,
              failures >= max ? "FAILED, its attempts spent" : "CREATED again");
   } else if (!ok) {
      mt_log (ctx, MT_LOG_WARNING, "task %s: cannot take it back: %s", id_str, error.message);
   }
   bson_destroy (&reply);
   bson_destroy (&filter);
   bson_destroy (&update);
   return taken;
}

int64_t
mt_lease_reclaim (mt_context_t *ctx, mongoc_client_t *client, bool own_only, bson_error_t *error)
{
   mongoc_collection_t *tasks = mongoc_client_get_collection (client, ctx->db, MT_TASKS_COLLECTION);
   mongoc_collection_t *workers = mongoc_client_get_collection (client, ctx->db, MT_WORKERS_COLLECTION);
   int64_t cutoff = mt_server_now (ctx) - ctx->lease_ms;
   bson_t *filter, *opts = BCON_NEW ("limit", BCON_INT64 (MT_RECLAIM_BATCH));
   mongoc_cursor_t *cursor;
   const bson_t *task;
   bson_t **found = bson_malloc0 (MT_RECLAIM_BATCH * sizeof *found);
   size_t n = 0;
   int64_t taken = -1;

   if (own_only) {
      /* At start: whatever a worker with our id left running is not
       * running now. */
      filter = BCON_NEW ("status", MT_STATUS_WORK_IN_PROGRESS, "worker_pid", ctx->worker_id);
   } else {
      filter = BCON_NEW ("status",
                         MT_STATUS_WORK_IN_PROGRESS,
                         "$or",
                         "[",
                         "{",
                         "heartbeat",
                         "{",
                         "$lt",
                         BCON_DATE_TIME (cutoff),
                         "}",
                         "}",
                         "{",
                         "heartbeat",
                         "{",
                         "$exists",
                         BCON_BOOL (false),
                         "}",
                         "started",
                         "{",
                         "$lt",
                         BCON_DATE_TIME (cutoff),
                         "}",
                         "}",
                         "]");
   }
   /* Read first, then update one by one: the cursor must not see the
    * documents it is changing. */
   cursor = mongoc_collection_find_with_opts (tasks, filter, opts, NULL);
   while (n < MT_RECLAIM_BATCH && mongoc_cursor_next (cursor, &task)) {
      found[n++] = bson_copy (task);
   }
   if (!mongoc_cursor_error (cursor, error)) {
      taken = 0;
      for (size_t i = 0; i < n; i++) {
         taken += reclaim_one (ctx, client, tasks, found[i], own_only, cutoff);
      }
   }
   for (size_t i = 0; i < n; i++) {
      bson_destroy (found[i]);
   }
   if (taken >= 0 && !own_only) {
      /* Workers that went silent, for whoever is watching `workers`. */
      bson_t *lost = BCON_NEW ("status",
                               "{",
                               "$in",
                               "[",
                               "running",
                               "quiet",
                               "stopping",
                               "]",
                               "}",
                               "heartbeat",
                               "{",
                               "$lt",
                               BCON_DATE_TIME (cutoff),
                               "}");
      bson_t *mark = BCON_NEW (
         "$set", "{", "status", "lost", "expires", BCON_DATE_TIME (cutoff + ctx->lease_ms + MT_WORKER_KEEP_MS), "}");
      /* Their time in the registry is over: the TTL index deletes them on
       * MongoDB; this, on a server that keeps TTL indexes but never
       * expires anything. */
      bson_t *expired = BCON_NEW ("expires", "{", "$lt", BCON_DATE_TIME (cutoff + ctx->lease_ms), "}");

      mongoc_collection_update_many (workers, lost, mark, NULL, NULL, NULL);
      mongoc_collection_delete_many (workers, expired, NULL, NULL, NULL);
      bson_destroy (lost);
      bson_destroy (mark);
      bson_destroy (expired);
   }
   bson_free (found);
   mongoc_cursor_destroy (cursor);
   bson_destroy (filter);
   bson_destroy (opts);
   mongoc_collection_destroy (tasks);
   mongoc_collection_destroy (workers);
   return taken;
}
