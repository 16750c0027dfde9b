// libFuzzer target: see fuzz_entry.h (built with -DANVIL_FUZZ=ON by clang; scripts/fuzz.sh).
#include "fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  anvil_fuzz::fuzz_image(data, size);
  return 0;
}
