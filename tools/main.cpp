#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "anvil/error.h"
#include "anvil/version.h"
#include "commands.h"

namespace anvil::cli {

namespace {
std::vector<Command>& registry() {
  static std::vector<Command> v;
  return v;
}
}  // namespace

void register_command(Command c) { registry().push_back(std::move(c)); }
const std::vector<Command>& commands() { return registry(); }

}  // namespace anvil::cli

namespace {
void usage(FILE* f) {
  std::fprintf(f,
               "anvil: import, run and verify trained neural networks\n\nusage: anvil <command> "
               "[args]\n\ncommands:\n");
  for (const auto& c : anvil::cli::commands())
    std::fprintf(f, "  %-9s %s\n", c.name.c_str(), c.summary.c_str());
  std::fprintf(f, "\nRun 'anvil <command> --help' for a command's options.\n");
}
// anvil --version / -V: version, commit, build type, backends, oneDNN/cuDNN versions.
void print_version() {
  const anvil::BuildInfo b = anvil::build_info();
  std::string backends;
  for (const auto& n : b.backends) backends += (backends.empty() ? "" : ", ") + n;
  std::printf("anvil %s (commit %s, %s build)\nbackends: %s\noneDNN %s\n", b.version.c_str(),
              b.commit.c_str(), b.build_type.c_str(), backends.c_str(), b.onednn.c_str());
  if (!b.cudnn.empty()) std::printf("cuDNN %s\n", b.cudnn.c_str());
}

// An error message as printed: control characters and bytes that are not valid UTF-8 (names
// read from a corrupt file) become '?', so the message stays one readable line per line.
std::string printable(const std::string& m) {
  std::string r;
  for (size_t i = 0; i < m.size();) {
    const auto c = static_cast<unsigned char>(m[i]);
    if (c == '\n' || (c >= 0x20 && c < 0x7f)) {
      r += m[i++];
      continue;
    }
    const size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    bool ok = len > 0 && i + len <= m.size();
    for (size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(m[i + k]) & 0xc0) == 0x80;
    if (ok) {
      r.append(m, i, len);
      i += len;
    } else {
      r += '?';
      ++i;
    }
  }
  return r;
}

const anvil::cli::Command* find_command(const char* name) {
  for (const auto& c : anvil::cli::commands())
    if (c.name == name) return &c;
  return nullptr;
}
}  // namespace

int main(int argc, char** argv) {
  // The cpu backend's oneDNN runs on OpenMP (libgomp), whose worker threads spin-wait by
  // default: on a busy machine with few cores that makes 2 threads 10-100x slower than one.
  // libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT when it loads, before main, so set them
  // and start again (same argv). Workers spin briefly (10000 spins, about 0.1 ms), then sleep:
  // fully spinning pools collapse on a busy machine, fully passive ones pay a futex wake-up
  // per oneDNN primitive (MobileNetV2 at 2 threads: 6.9 ms passive, 3.0 ms with the short
  // spin, 6.4 ms on 1 thread). Values the user set are kept. See docs/cpu_backend.md.
  if (!std::getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0) {
    if (!std::getenv("GOMP_SPINCOUNT")) setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then run with the default
  }
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "-V") ||
      !std::strcmp(argv[1], "version")) {
    print_version();
    return 0;
  }
  // anvil help [CMD]: the command's --help.
  char help_flag[] = "--help";
  char* help_argv[] = {argv[0], nullptr, help_flag, nullptr};
  if (!std::strcmp(argv[1], "help")) {
    if (argc < 3) {
      usage(stdout);
      return 0;
    }
    if (!find_command(argv[2])) {
      std::fprintf(stderr, "anvil help: error: unknown command '%s'; run 'anvil --help'\n",
                   argv[2]);
      return 2;
    }
    help_argv[1] = argv[2];
    argv = help_argv;  // anvil CMD --help
    argc = 3;
  }
  if (const anvil::cli::Command* cmd = find_command(argv[1])) {
    const auto& c = *cmd;
    try {
      return c.main(argc - 1, argv + 1);
    } catch (const anvil::Error& e) {
      std::fprintf(stderr, "anvil %s: error: %s\n", argv[1], printable(e.what()).c_str());
      return 2;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "anvil %s: error: out of memory\n", argv[1]);
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "anvil %s: error: %s\n", argv[1], printable(e.what()).c_str());
      return 2;
    }
  }
  std::fprintf(stderr, "anvil: error: unknown command '%s'; run 'anvil --help'\n", argv[1]);
  return 2;
}
