// libFuzzer target: TensorFlow frozen GraphDef (binary .pb), see fuzz_entry.h (built with
// -DANVIL_FUZZ=ON by clang; scripts/fuzz.sh). Seeds: the TF fixture graphs.
#include "fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  anvil_fuzz::import_and_run({anvil_fuzz::write_file("frozen_model.pb", data, size)});
  return 0;
}
