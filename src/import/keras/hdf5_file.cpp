// Keras HDF5 reader: libhdf5 runs only in a forked child process (see hdf5_file.h for why).
//
// The child streams records to the parent through a pipe (all integers little-endian u64 unless
// noted, strings as u64 length + bytes):
//   magic                                   first 8 bytes: "ANVILH5\1"
//   'P' what layer field                    progress: what the child is about to read
//   'K' path u8:kind                        an object exists (1 group, 2 dataset, 3 other)
//   'G' path n name*n                       the members of a group
//   'A' object name u8:0 n string*n         an attribute (u8:1 message: it could not be read)
//   'D' path u8:0 u8:dtype u8:rank dim*rank (n bytes)* 0
//                                           a dataset in chunks (n = ~0 then message: a read
//                                           failed midway); u8:1 message: it cannot be read
//   'E' message layer field                 a fatal error (the file cannot be opened, ...)
//   'Z'                                     end: everything was read
// Paths are normalized ("/a/b"); the parent validates every count and size before allocating.
//
// This file is the parent: it forks the child (hdf5_child.cpp), reads and checks its records.
#include "import/keras/hdf5_file.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <utility>

#include "anvil/error.h"
#include "import/keras/hdf5_wire.h"

namespace anvil::keras {

using namespace h5wire;

namespace {

// ------------------------------------------------------------------------------------------
// The parent.

struct StreamEnd {
  enum Why { eof, timeout, cap, garbage } why;
};

class In {
 public:
  In(int fd, double idle_s, double total_s, uint64_t cap)
      : fd_(fd),
        idle_ms_(static_cast<int64_t>(idle_s * 1000)),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(total_s * 1000))),
        cap_(cap) {}

  void read(void* dst, size_t n) {
    char* d = static_cast<char*>(dst);
    size_t have = std::min(n, len_ - pos_);
    std::memcpy(d, buf_.get() + pos_, have);
    pos_ += have;
    d += have;
    n -= have;
    while (n > 0) {
      if (n >= kBuf) {  // large payloads go straight to their destination
        size_t r = fill(d, n);
        d += r;
        n -= r;
      } else {
        len_ = fill(buf_.get(), kBuf);
        pos_ = std::min(n, len_);
        std::memcpy(d, buf_.get(), pos_);
        d += pos_;
        n -= pos_;
      }
    }
  }
  uint8_t u8() {
    uint8_t v;
    read(&v, 1);
    return v;
  }
  uint64_t u64() {
    uint64_t v;
    read(&v, sizeof v);
    return v;
  }
  /// Reserves `n` more bytes of the cap before they are allocated.
  void reserve(uint64_t n) {
    if (n > cap_ - std::min(cap_, reserved_)) throw StreamEnd{StreamEnd::cap};
    reserved_ += n;
  }
  std::string str(uint64_t max) {
    uint64_t n = u64();
    if (n > max) throw StreamEnd{StreamEnd::garbage};
    reserve(n);
    std::string s(static_cast<size_t>(n), '\0');
    read(s.data(), s.size());
    return s;
  }

 private:
  size_t fill(char* dst, size_t n) {
    for (;;) {
      auto now = std::chrono::steady_clock::now();
      int64_t left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now).count();
      if (left <= 0) throw StreamEnd{StreamEnd::timeout};
      pollfd pfd{fd_, POLLIN, 0};
      int pr = ::poll(&pfd, 1, static_cast<int>(std::min(left, idle_ms_)));
      if (pr < 0 && errno == EINTR) continue;
      if (pr == 0) throw StreamEnd{StreamEnd::timeout};
      if (pr < 0) throw StreamEnd{StreamEnd::eof};
      ssize_t r = ::read(fd_, dst, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw StreamEnd{StreamEnd::eof};
      return static_cast<size_t>(r);
    }
  }

  static constexpr size_t kBuf = 1 << 16;
  int fd_;
  int64_t idle_ms_;
  std::chrono::steady_clock::time_point deadline_;
  uint64_t cap_, reserved_ = 0;
  std::unique_ptr<char[]> buf_ = std::make_unique<char[]>(kBuf);
  size_t pos_ = 0, len_ = 0;
};

// Kills (when still running) and reaps the child on every way out of the parent's reading.
class ChildProcess {
 public:
  ChildProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) finish(true);
  }
  int fd() const { return fd_; }
  /// Closes the pipe, kills the child when `kill`, waits for it; the wait status (-1: unknown).
  int finish(bool kill) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (kill) ::kill(pid_, SIGKILL);
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return r < 0 ? -1 : status;
  }

 private:
  pid_t pid_;
  int fd_;
};

double timeout_from_env() {
  const char* e = std::getenv("ANVIL_KERAS_H5_TIMEOUT_S");
  if (!e || !*e) return kDefaultReadTimeoutS;
  char* end = nullptr;
  double v = std::strtod(e, &end);
  return (end && *end == '\0' && std::isfinite(v) && v > 0) ? v : kDefaultReadTimeoutS;
}

std::string seconds_str(double s) {
  std::string r = std::to_string(s);
  r.erase(r.find_last_not_of('0') + 1);
  if (!r.empty() && r.back() == '.') r.pop_back();
  return r;
}

}  // namespace

struct H5File::Source {
  std::string path;  // a file, or the name of the in-memory image
  const std::string* image = nullptr;
  uint64_t size = 0;
};

struct H5File::Impl {
  std::map<std::string, uint8_t> kinds;
  std::map<std::string, std::vector<std::string>> children;
  struct Attr {
    std::vector<std::string> values;
    std::string error;
  };
  std::map<std::pair<std::string, std::string>, Attr> attrs;
  struct Data {
    Tensor value;
    std::string error;
  };
  std::map<std::string, Data> datasets;
};

H5File::H5File() : impl_(std::make_unique<Impl>()) {}
H5File::H5File(H5File&&) noexcept = default;
H5File& H5File::operator=(H5File&&) noexcept = default;
H5File::~H5File() = default;

bool H5File::has_signature(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char sig[8] = {};
  if (!f.read(sig, 8)) return false;
  return std::memcmp(sig, "\x89HDF\r\n\x1a\n", 8) == 0;
}

H5File H5File::open(const std::string& path) {
  if (!has_signature(path)) throw Error("not an HDF5 file (no HDF5 signature at the start)", path);
  struct stat st;
  Source src;
  src.path = path;
  src.size = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return read(src);
}

H5File H5File::open_image(std::string bytes, const std::string& what) {
  if (bytes.size() < 8 || std::memcmp(bytes.data(), "\x89HDF\r\n\x1a\n", 8) != 0)
    throw Error("not an HDF5 file (no HDF5 signature at the start)", what);
  Source src;
  src.path = what;
  src.image = &bytes;
  src.size = bytes.size();
  return read(src);
}

H5File H5File::read(const Source& src) {
  const std::string& what = src.path;
  const Fault fault = fault_from_env();
  const double idle_s = timeout_from_env();
  const double total_s =
      idle_s * (1.0 + static_cast<double>(src.size) / static_cast<double>(64 << 20));
  // The data may expand beyond the file (compressed datasets), but not without bound.
  const uint64_t cap = (uint64_t{1} << 30) + 16 * src.size;
  const char* dbg = std::getenv("ANVIL_KERAS_H5_DEBUG");
  const bool debug = dbg && *dbg && std::string(dbg) != "0";

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error("cannot create a pipe for the HDF5 reader process", what);
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // fewer context switches for large weights (best effort)
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error("cannot start the HDF5 reader process (fork failed)", what);
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], src.path, src.image, fault, debug, parent);
  }
  ::close(fds[1]);
  ChildProcess child(pid, fds[0]);

  H5File f;
  f.what_ = what;
  Impl& s = *f.impl_;
  struct {
    std::string what, layer, field;
  } last;
  bool done = false;
  std::optional<Error> fatal;
  StreamEnd::Why why = StreamEnd::eof;
  try {
    In in(child.fd(), idle_s, total_s, cap);
    char magic[sizeof kMagic];
    in.read(magic, sizeof magic);
    if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) throw StreamEnd{StreamEnd::garbage};
    while (!done && !fatal) {
      uint8_t tag = in.u8();
      switch (tag) {
        case 'P':
          last.what = in.str(kMaxName);
          last.layer = in.str(kMaxName);
          last.field = in.str(kMaxName);
          break;
        case 'K': {
          std::string p = in.str(kMaxName);
          uint8_t k = in.u8();
          if (k < kKindGroup || k > kKindOther) throw StreamEnd{StreamEnd::garbage};
          s.kinds[p] = k;
          break;
        }
        case 'G': {
          std::string p = in.str(kMaxName);
          uint64_t n = in.u64();
          if (n > kMaxGroupMembers) throw StreamEnd{StreamEnd::garbage};
          in.reserve(n * sizeof(std::string));
          std::vector<std::string> names;
          names.reserve(static_cast<size_t>(n));
          for (uint64_t i = 0; i < n; ++i) names.push_back(in.str(kMaxName));
          s.children[p] = std::move(names);
          break;
        }
        case 'A': {
          std::string obj = in.str(kMaxName), name = in.str(kMaxName);
          Impl::Attr a;
          uint8_t st = in.u8();
          if (st == 1) {
            a.error = in.str(kMaxName);
          } else if (st == 0) {
            uint64_t n = in.u64();
            if (n > kMaxAttributeStrings) throw StreamEnd{StreamEnd::garbage};
            in.reserve(n * sizeof(std::string));
            a.values.reserve(static_cast<size_t>(n));
            for (uint64_t i = 0; i < n; ++i)
              a.values.push_back(in.str(static_cast<uint64_t>(kMaxAttributeBytes)));
          } else {
            throw StreamEnd{StreamEnd::garbage};
          }
          s.attrs[{obj, name}] = std::move(a);
          break;
        }
        case 'D': {
          std::string p = in.str(kMaxName);
          Impl::Data d;
          uint8_t st = in.u8();
          if (st == 1) {
            d.error = in.str(kMaxName);
            s.datasets[p] = std::move(d);
            break;
          }
          if (st != 0 || in.u8() != kDtypeF32) throw StreamEnd{StreamEnd::garbage};
          uint8_t rank = in.u8();
          if (rank > 8) throw StreamEnd{StreamEnd::garbage};
          Shape shape;
          uint64_t numel = 1;
          for (int i = 0; i < rank; ++i) {
            uint64_t v = in.u64();
            if (v > static_cast<uint64_t>(kMaxDatasetElements) ||
                (v != 0 && numel > static_cast<uint64_t>(kMaxDatasetElements) / v))
              throw StreamEnd{StreamEnd::garbage};
            numel *= v;
            shape.push_back(static_cast<int64_t>(v));
          }
          const uint64_t nbytes = numel * sizeof(float);
          in.reserve(nbytes);
          // Every byte is written from the stream (or the tensor is dropped): no zero fill.
          void* mem = std::aligned_alloc(
              64, std::max<size_t>(64, (static_cast<size_t>(nbytes) + 63) / 64 * 64));
          if (!mem) throw std::bad_alloc();
          std::shared_ptr<void> hold(mem, std::free);
          Tensor t = Tensor::wrap(DType::f32, shape, mem, std::move(hold));
          uint64_t filled = 0;
          for (;;) {
            uint64_t n = in.u64();
            if (n == 0) {
              if (filled != nbytes) throw StreamEnd{StreamEnd::garbage};
              d.value = std::move(t);
              break;
            }
            if (n == kChunkError) {
              d.error = in.str(kMaxName);
              break;
            }
            if (n > nbytes - filled) throw StreamEnd{StreamEnd::garbage};
            in.read(static_cast<char*>(t.raw()) + filled, static_cast<size_t>(n));
            filled += n;
          }
          s.datasets[p] = std::move(d);
          break;
        }
        case 'E': {
          std::string msg = in.str(kMaxName), layer = in.str(kMaxName), field = in.str(kMaxName);
          fatal = Error(msg, what, layer, field);
          break;
        }
        case 'Z':
          done = true;
          break;
        default:
          throw StreamEnd{StreamEnd::garbage};
      }
    }
  } catch (const StreamEnd& e) {
    why = e.why;
  }
  int status = child.finish(!done && !fatal);
  if (fatal) throw *fatal;
  if (done) return f;

  std::string at = last.what.empty() ? std::string() : " while reading " + last.what;
  std::string msg;
  if (why == StreamEnd::timeout) {
    msg = "corrupt HDF5 file? libhdf5 did not finish" + at + " within " + seconds_str(idle_s) +
          " s; the reader process was killed";
  } else if (why == StreamEnd::cap) {
    msg = "the HDF5 data" + at + " expands beyond the reader's limit of " +
          std::to_string(cap >> 20) + " MiB (1 GiB + 16 x the file size)";
  } else if (why == StreamEnd::garbage) {
    msg = "the HDF5 reader process sent malformed data" + at;
  } else if (status != -1 && WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    msg = "corrupt HDF5 file: libhdf5 crashed" + at + " (the reader process died of signal " +
          std::to_string(sig) + (name ? std::string(", ") + name : std::string()) + ")";
  } else if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    msg = "corrupt HDF5 file: the HDF5 reader process failed" + at + " (exit status " +
          std::to_string(WEXITSTATUS(status)) + ")";
  } else {
    msg = "the HDF5 reader process ended early" + at;
  }
  throw Error(msg, what, last.layer, last.field);
}

bool H5File::exists(const std::string& path) const { return impl_->kinds.count(norm(path)) > 0; }

bool H5File::is_group(const std::string& path) const {
  auto it = impl_->kinds.find(norm(path));
  return it != impl_->kinds.end() && it->second == kKindGroup;
}

bool H5File::is_dataset(const std::string& path) const {
  auto it = impl_->kinds.find(norm(path));
  return it != impl_->kinds.end() && it->second == kKindDataset;
}

std::vector<std::string> H5File::children(const std::string& group) const {
  std::string p = norm(group);
  if (!is_group(p)) throw Error("HDF5 group '" + group + "' not found", what_, {}, group);
  auto it = impl_->children.find(p);
  if (it == impl_->children.end())
    throw Error("cannot read HDF5 group '" + group + "'", what_, {}, group);
  return it->second;
}

bool H5File::has_attr(const std::string& object, const std::string& name) const {
  return impl_->attrs.count({norm(object), name}) > 0;
}

std::vector<std::string> H5File::attr_strings(const std::string& object,
                                              const std::string& name) const {
  std::string p = norm(object);
  std::string field = (p == "/" ? std::string() : p.substr(1) + "/") + "@" + name;
  auto it = impl_->attrs.find({p, name});
  if (it == impl_->attrs.end())
    throw Error("attribute '" + name + "' not found on '" + p + "'", what_, {}, field);
  if (!it->second.error.empty()) throw Error(it->second.error, what_, {}, field);
  return it->second.values;
}

std::string H5File::attr_string(const std::string& object, const std::string& name) const {
  auto v = attr_strings(object, name);
  if (v.size() != 1)
    throw Error(
        "attribute '" + name + "' should hold one string, found " + std::to_string(v.size()), what_,
        {}, name);
  return v[0];
}

Shape H5File::dataset_shape(const std::string& path) const { return read_f32(path).shape(); }

Tensor H5File::read_f32(const std::string& path) const {
  auto it = impl_->datasets.find(norm(path));
  if (it == impl_->datasets.end())
    throw Error("HDF5 dataset '" + path + "' not found or unreadable", what_, {}, path);
  if (!it->second.error.empty()) throw Error(it->second.error, what_, {}, path);
  return it->second.value;
}

}  // namespace anvil::keras
