/* demo-accounts: the `accounts` collection the transfer plugin works on,
 * for tools/demo. Not installed.
 *
 *   demo-accounts URI DB open N BALANCE   (re)creates acct-00..acct-N-1
 *   demo-accounts URI DB report           prints each balance and the total
 */
#include <mtask/mtask.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
usage (void)
{
   fprintf (stderr, "usage: demo-accounts URI DB open N BALANCE | demo-accounts URI DB report\n");
   return 2;
}

int
main (int argc, char **argv)
{
   mongoc_client_t *client;
   mongoc_collection_t *accounts;
   bson_error_t error;
   int status = 1;

   if (argc < 4 || (strcmp (argv[3], "open") && strcmp (argv[3], "report")) || (!strcmp (argv[3], "open") && argc != 6)) {
      return usage ();
   }
   mongoc_init ();
   client = mongoc_client_new (argv[1]);
   if (!client) {
      fprintf (stderr, "demo-accounts: bad URI '%s'\n", argv[1]);
      mongoc_cleanup ();
      return 2;
   }
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   accounts = mongoc_client_get_collection (client, argv[2], "accounts");

   if (!strcmp (argv[3], "open")) {
      int n = atoi (argv[4]);
      long long balance = atoll (argv[5]);
      bson_t all = BSON_INITIALIZER;

      if (!mongoc_collection_delete_many (accounts, &all, NULL, NULL, &error)) {
         fprintf (stderr, "demo-accounts: %s\n", error.message);
         goto cleanup;
      }
      for (int i = 0; i < n; i++) {
         char name[16];
         bson_t *doc;
         bool ok;

         snprintf (name, sizeof name, "acct-%02d", i);
         doc = BCON_NEW ("_id", name, "balance", BCON_INT64 (balance));
         ok = mongoc_collection_insert_one (accounts, doc, NULL, NULL, &error);
         bson_destroy (doc);
         if (!ok) {
            fprintf (stderr, "demo-accounts: %s\n", error.message);
            goto cleanup;
         }
      }
   } else {
      bson_t all = BSON_INITIALIZER, *opts = BCON_NEW ("sort", "{", "_id", BCON_INT32 (1), "}");
      mongoc_cursor_t *cursor = mongoc_collection_find_with_opts (accounts, &all, opts, NULL);
      const bson_t *doc;
      long long total = 0;
      bson_iter_t id, balance;

      while (mongoc_cursor_next (cursor, &doc)) {
         if (bson_iter_init_find (&id, doc, "_id") && bson_iter_init_find (&balance, doc, "balance")) {
            printf ("   %s  %6lld\n", bson_iter_utf8 (&id, NULL), (long long) bson_iter_as_int64 (&balance));
            total += bson_iter_as_int64 (&balance);
         }
      }
      printf ("   total    %6lld\n", total);
      bson_destroy (opts);
      if (mongoc_cursor_error (cursor, &error)) {
         fprintf (stderr, "demo-accounts: %s\n", error.message);
         mongoc_cursor_destroy (cursor);
         goto cleanup;
      }
      mongoc_cursor_destroy (cursor);
   }
   status = 0;

cleanup:
   mongoc_collection_destroy (accounts);
   mongoc_client_destroy (client);
   mongoc_cleanup ();
   return status;
}
