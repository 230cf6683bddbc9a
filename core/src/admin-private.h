/* Private to the admin API (admin-*.c): the query layer front ends call.
 * It sits on top of the store and the features and is called by nothing
 * else in the library; it reads, and writes only the task actions an
 * operator asks for (admin-actions.c: retry, cancel, delete). */
#ifndef MTASK_ADMIN_PRIVATE_H
#define MTASK_ADMIN_PRIVATE_H

#include "mtask-private.h"

/* The kinds of value an admin option takes. */
typedef enum {
   MT_ADMIN_OPT_STRING, /* a non-empty string; out: const char ** into opts */
   MT_ADMIN_OPT_COUNT,  /* an integer, 0 or more; out: int64_t * */
   MT_ADMIN_OPT_BOOL,   /* true or false; out: bool * */
} mt_admin_opt_type_t;

/* One option a call takes; a list of them ends with a NULL key. */
typedef struct {
   const char *key;
   mt_admin_opt_type_t type;
   void *out;
} mt_admin_opt_t;

/* The start of every admin call: initializes `reply`, then checks `opts`
 * (may be NULL) against `spec` (may be NULL: no options) and stores each
 * value given in its `out`. An unknown key fails with MT_CONFIG_ERROR_OPTION
 * "Invalid option 'KEY'", a value of the wrong kind with
 * MT_CONFIG_ERROR_INVALID and a message naming the option. */
bool mt_admin_begin (bson_t *reply, const bson_t *opts, const mt_admin_opt_t *spec, bson_error_t *error);

/* A read in `collection` failed (`error` says why): `reply` becomes
 * {"collection": C}, with "item": the _id of the listed document the read
 * was for when `item` is not NULL. Returns false. */
bool mt_admin_fail (bson_t *reply, const char *collection, const bson_value_t *item);

bool mt_admin_not_found (bson_t *reply,
                         const char *collection,
                         bson_error_t *error,
                         uint32_t domain,
                         uint32_t code,
                         const char *format,
                         ...) BSON_GNUC_PRINTF (6, 7);

/* The server's clock now, in ms since the epoch: the localTime of its
 * isMaster reply (one round trip, no collection read). What "the last hour"
 * means for the overview, on the server's clock as everything else. */
bool mt_admin_server_now (mongoc_client_t *client, int64_t *now_ms, bson_error_t *error);

/* The bounds of list calls: `limit` (an option, 0 or more; 0 the default)
 * comes out as the number of items to return, between 1 and
 * MT_ADMIN_LIST_MAX, MT_ADMIN_LIST_DEFAULT when not given; a larger one
 * fails MT_CONFIG_ERROR_INVALID naming the option. A list reads limit + 1
 * items, returns `limit` and says "more": true when there was one more. */
#define MT_ADMIN_LIST_DEFAULT 1000
#define MT_ADMIN_LIST_MAX 10000
bool mt_admin_list_limit (int64_t *limit, int64_t max, int64_t otherwise, bson_error_t *error);

/* Appends to a tasks filter the equalities given (NULL: not filtered). */
void mt_admin_task_filter (bson_t *filter, const char *queue, const char *status, const char *type);

/* The first document of `collection` that `filter` matches, as
 * mt_find_one but with the client's read preference (a view): `out`
 * always initialized. */
bool mt_admin_find_one (mongoc_client_t *client,
                        const char *db,
                        const char *collection,
                        const bson_t *filter,
                        const bson_t *opts,
                        bson_t *out,
                        bool *found,
                        bson_error_t *error);

/* Documents read into memory, in the order read. */
typedef struct {
   bson_t **items;
   size_t len, cap;
} mt_admin_docs_t;

/* Appends every document `filter` (NULL: all) matches in `collection` to
 * `docs`. */
bool mt_admin_docs_read (mongoc_client_t *client,
                         const char *db,
                         const char *collection,
                         const bson_t *filter,
                         const bson_t *opts,
                         mt_admin_docs_t *docs,
                         bson_error_t *error);
void mt_admin_docs_destroy (mt_admin_docs_t *docs);
/* Appends `doc` (taken) to `docs`. */
void mt_admin_docs_push (mt_admin_docs_t *docs, bson_t *doc);

/* mt_admin_docs_read of at most `limit` documents (> 0): reads one more
 * and drops it, setting `*more` when there was one. `opts` may be NULL; a
 * "limit" in it is replaced. */
bool mt_admin_docs_read_page (mongoc_client_t *client,
                              const char *db,
                              const char *collection,
                              const bson_t *filter,
                              const bson_t *opts,
                              int64_t limit,
                              mt_admin_docs_t *docs,
                              bool *more,
                              bson_error_t *error);

/* The key of element `i` of a BSON array; `buf` holds 16 bytes. Give it to
 * the bson_append_*() functions: the BSON_APPEND_*() macros evaluate their
 * key twice. */
const char *mt_admin_array_key (uint32_t i, char *buf);

/* A field as text, for names and labels: a string as is, an ObjectId's
 * hex digits, a number; "-" when missing or null, "?" for other types. */
const char *mt_admin_text (const bson_t *doc, const char *key, char *buf, size_t size);

/* The string, ObjectId or number at `key`, or NULL / `otherwise`. */
const char *mt_admin_str (const bson_t *doc, const char *key);
const bson_oid_t *mt_admin_oid (const bson_t *doc, const char *key);
int64_t mt_admin_int (const bson_t *doc, const char *key, int64_t otherwise);

/* Task statuses in lifecycle order (WAITING first), then unknown ones by
 * name: the order of status columns and rows. */
int mt_admin_status_compare (const char *a, const char *b);

/* Appends `statuses` (n names, sorted here) to `reply` as the array
 * "statuses", each once. */
void mt_admin_append_statuses (bson_t *reply, const char **statuses, size_t n);

/* The live statuses: a task holding a unique key or a repeating task's
 * next run is WAITING, CREATED or WORK_IN_PROGRESS. */
void mt_admin_append_live (bson_t *filter);

/* ---- the workers' registry (admin-workers.c) ---------------------------- */

/* The default lease, for a registry document that names none. */
#define MT_ADMIN_DEFAULT_LEASE_MS (30 * 1000)

/* A worker's state from its registry document and the server's time
 * (`now_ms`, 0 when unknown): "stopped" when it says so; "lost" when its
 * heartbeat is older than its lease (or it has none); else what it says,
 * "quiet" or "stopping", or "running". `age_ms`: the heartbeat's age, -1
 * when unknown. */
const char *mt_admin_worker_state (const bson_t *doc, int64_t now_ms, int64_t *age_ms);

/* The registry documents (the one of `id`, or all by _id; at most `limit`
 * + 1 when `limit` > 0) into `docs`, and the server's time at the read in
 * `now_ms` (left as is when none). */
bool mt_admin_worker_docs (mongoc_client_t *client,
                           const char *db,
                           const char *id,
                           int64_t limit,
                           mt_admin_docs_t *docs,
                           int64_t *now_ms,
                           bson_error_t *error);

/* Whether the worker of `doc` is running (live, and neither quiet nor
 * stopping) and serves `queue` and has a plugin for `type` (each NULL:
 * any). */
bool mt_admin_worker_serves (const bson_t *doc, int64_t now_ms, const char *queue, const char *type);

#endif /* MTASK_ADMIN_PRIVATE_H */
