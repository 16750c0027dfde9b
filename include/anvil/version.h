// What this build of Anvil is: version, git commit, build type, backends and the versions of
// the libraries they run on (`anvil --version`).
#pragma once

#include <string>
#include <vector>

namespace anvil {

struct BuildInfo {
  std::string version;     // "0.1.0"
  std::string commit;      // git commit at configure time ("unknown" outside a checkout)
  std::string build_type;  // CMAKE_BUILD_TYPE ("Release", ...)
  std::vector<std::string> backends;
  std::string onednn;  // oneDNN version the cpu backend runs on (at run time)
  std::string cudnn;   // cuDNN version of the cuda backend ("" without -DANVIL_CUDA=ON)
};
BuildInfo build_info();

}  // namespace anvil
