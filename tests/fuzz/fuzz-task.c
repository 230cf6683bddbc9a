/* libFuzzer target over the task document parser: any bytes that make a
 * BSON document must parse or fail with a message naming a field, never
 * crash, hang or leak. Built and run by run-fuzz.sh (clang), and replayed
 * over fixed inputs by the unit suite (any compiler). */
#include "fuzz-task.h"
#include "mtask-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

mt_fuzz_outcome_t
mt_fuzz_task_one (const uint8_t *data, size_t size)
{
   bson_t doc;
   mt_task_doc_t task;
   bson_error_t error;

   if (!bson_init_static (&doc, data, size) || !bson_validate (&doc, BSON_VALIDATE_NONE, NULL)) {
      return MT_FUZZ_NOT_BSON;
   }
   if (mt_task_doc_parse (&doc, &task, &error)) {
      /* What the worker relies on after a successful parse. */
      if (!task.queue || !task.type || !task.type[0] || task.attempts < 0 || task.max_attempts < 0 ||
          task.timeout < 0) {
         abort ();
      }
      bson_iter_t iter;
      if (bson_iter_init (&iter, &task.params)) {
         while (bson_iter_next (&iter)) {
         }
      }
      if (bson_iter_init (&iter, &task.accounts)) {
         while (bson_iter_next (&iter)) {
            if (!BSON_ITER_HOLDS_UTF8 (&iter)) {
               abort ();
            }
         }
      }
      return MT_FUZZ_PARSED;
   }
   if (error.domain != MT_ERROR_TASK || error.code != MT_TASK_ERROR_MALFORMED || !strstr (error.message, "malformed task")) {
      abort ();
   }
   return MT_FUZZ_REFUSED;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
   mt_fuzz_task_one (data, size);
   return 0;
}
