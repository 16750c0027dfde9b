// libFuzzer target for the TFLite importer (.tflite flatbuffers): see fuzz_entry.h (built with
// -DANVIL_FUZZ=ON by clang; scripts/fuzz.sh). The bytes are written to model.tflite, imported,
// and run once on zero inputs when small. Seeds: the TFLite fixtures (tests/fuzz/make_corpus.sh).
#include "fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  anvil_fuzz::import_and_run({anvil_fuzz::write_file("model.tflite", data, size)});
  return 0;
}
