/* Replays the fuzz target without libFuzzer: seed documents, then
 * deterministic mutations of them (byte flips, truncations, type bytes), so
 * every build exercises the parser on hostile input. */
#include "mt-test.h"
#include "mtask-private.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *const seeds[] = {
   "{'_id': 1, 'queue': 'q', 'type': 'echo'}",
   "{'_id': {'$oid': '0123456789abcdef01234567'}, 'queue': 'q', 'type': 'echo', 'params': {'a': [1, 2, {'b': null}]}, "
   "'delayed': {'$date': 0}, 'attempts': 2, 'max_attempts': 3, 'timeout': 1.5, 'accounts': ['x', 'y'], 'worker_pid': 'W'}",
   "{'_id': 'id', 'queue': 5, 'type': [], 'params': 'x', 'delayed': true, 'attempts': 'a', 'accounts': [1]}",
   "{'queue': 'q', 'type': '', 'max_attempts': -1, 'timeout': {'$numberDouble': 'NaN'}}",
};

static void
test_replay (void)
{
   uint64_t state = 0x9e3779b97f4a7c15ull;
   size_t runs = 0;

   for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
      bson_t *doc = mt_test_bson (seeds[s]);
      uint32_t len = doc->len;
      uint8_t *copy = bson_malloc (len);

      LLVMFuzzerTestOneInput (bson_get_data (doc), len);
      for (int i = 0; i < 20000; i++) {
         memcpy (copy, bson_get_data (doc), len);
         for (int k = 0; k < 1 + i % 4; k++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            copy[4 + state % (len - 4)] ^= (uint8_t) (state >> 24);
         }
         /* Sometimes cut it short, keeping the length prefix honest. */
         uint32_t n = (i % 7 == 0) ? (uint32_t) (5 + state % (len - 4)) : len;
         memcpy (copy, &n, 4);
         copy[n - 1] = 0;
         LLVMFuzzerTestOneInput (copy, n);
         runs++;
      }
      bson_free (copy);
      bson_destroy (doc);
   }
   ASSERT_CMPINT (runs, ==, 80000);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/fuzz/task_parser/replay", test_replay);
   return mt_test_main (argc, argv);
}
