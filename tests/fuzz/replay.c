/* Replays the fuzz target without libFuzzer: seed documents, then
 * deterministic mutations of them (byte flips, truncations, type bytes), so
 * every build exercises the parser on hostile input. */
#include "fuzz-task.h"
#include "mt-test.h"
#include "mtask-private.h"

#include <stdint.h>

/* Each seed with what the parser must make of it. */
static const struct {
   const char *json;
   mt_fuzz_outcome_t outcome;
} seeds[] = {
   {"{'_id': 1, 'queue': 'q', 'type': 'echo'}", MT_FUZZ_PARSED},
   {"{'_id': {'$oid': '0123456789abcdef01234567'}, 'queue': 'q', 'type': 'echo', 'params': {'a': [1, 2, {'b': null}]}, "
    "'delayed': {'$date': 0}, 'attempts': 2, 'max_attempts': 3, 'timeout': 1.5, 'accounts': ['x', 'y'], 'worker_pid': 'W'}",
    MT_FUZZ_PARSED},
   {"{'_id': 'id', 'queue': 5, 'type': [], 'params': 'x', 'delayed': true, 'attempts': 'a', 'accounts': [1]}", MT_FUZZ_REFUSED},
   {"{'queue': 'q', 'type': '', 'max_attempts': -1, 'timeout': {'$numberDouble': 'NaN'}}", MT_FUZZ_REFUSED},
};

static const char *const outcome_names[] = {"not BSON", "parsed", "refused"};

static void
test_replay (void)
{
   uint64_t state = 0x9e3779b97f4a7c15ull;
   int all[3] = {0, 0, 0};

   for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
      bson_t *doc = mt_test_bson (seeds[s].json);
      uint32_t len = doc->len;
      uint8_t *copy = bson_malloc (len);
      int outcomes[3] = {0, 0, 0};
      mt_fuzz_outcome_t seed = mt_fuzz_task_one (bson_get_data (doc), len);

      if (seed != seeds[s].outcome) {
         mt_test_fail (__FILE__, __LINE__, "seed %zu was %s, not %s: %s", s, outcome_names[seed], outcome_names[seeds[s].outcome],
                       seeds[s].json);
      }
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
         outcomes[mt_fuzz_task_one (copy, n)]++;
      }
      printf ("# seed %zu: %d not BSON, %d parsed, %d refused\n", s, outcomes[0], outcomes[1], outcomes[2]);
      /* Its mutations reached the parser: inputs that never got past the
       * BSON validation would test nothing. */
      ASSERT_CMPINT (outcomes[MT_FUZZ_PARSED] + outcomes[MT_FUZZ_REFUSED], >, 0);
      for (int o = 0; o < 3; o++) {
         all[o] += outcomes[o];
      }
      bson_free (copy);
      bson_destroy (doc);
   }
   /* And both ways: a parser that accepted or refused everything would
    * pass the checks of one kind without meeting the other. */
   ASSERT_CMPINT (all[MT_FUZZ_PARSED], >, 0);
   ASSERT_CMPINT (all[MT_FUZZ_REFUSED], >, 0);
}

int
main (int argc, char **argv)
{
   mt_test_add ("/fuzz/task_parser/replay", test_replay);
   return mt_test_main (argc, argv);
}
