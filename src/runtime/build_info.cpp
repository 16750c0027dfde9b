#include <dnnl.h>

#include "anvil/session.h"
#include "anvil/version.h"
#ifdef ANVIL_HAVE_CUDA
#include <cudnn.h>
#endif

#ifndef ANVIL_VERSION
#define ANVIL_VERSION "unknown"
#endif
#ifndef ANVIL_GIT_COMMIT
#define ANVIL_GIT_COMMIT "unknown"
#endif
#ifndef ANVIL_BUILD_TYPE
#define ANVIL_BUILD_TYPE "unknown"
#endif

namespace anvil {

BuildInfo build_info() {
  BuildInfo b;
  b.version = ANVIL_VERSION;
  b.commit = ANVIL_GIT_COMMIT;
  b.build_type = ANVIL_BUILD_TYPE;
  b.backends = backend_names();
  const dnnl_version_t* v = dnnl_version();
  b.onednn =
      std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
#ifdef ANVIL_HAVE_CUDA
  // cudnnGetVersion(): the library loaded at run time (major*10000+minor*100+patch from
  // cuDNN 9 on, major*1000+minor*100+patch before).
  const size_t n = cudnnGetVersion();
  const size_t major_div = n >= 90000 ? 10000 : 1000;
  b.cudnn = std::to_string(n / major_div) + "." + std::to_string(n % major_div / 100) + "." +
            std::to_string(n % 100);
#endif
  return b;
}

}  // namespace anvil
