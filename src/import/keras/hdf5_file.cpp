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
#include "import/keras/hdf5_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

// Under a sanitizer runtime (the fuzz build), a report in the child would run the fuzzer's death
// callback (which writes a crash file as if the fuzzer had crashed); the child clears it.
extern "C" void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

namespace anvil::keras {
namespace {

constexpr char kMagic[8] = {'A', 'N', 'V', 'I', 'L', 'H', '5', '\1'};
constexpr uint64_t kChunkError = ~uint64_t{0};
constexpr uint8_t kKindGroup = 1, kKindDataset = 2, kKindOther = 3;
constexpr uint8_t kDtypeF32 = 0;
/// Most members of one group / objects visited in one file / group nesting the reader follows.
constexpr uint64_t kMaxGroupMembers = 1000000;
constexpr uint64_t kMaxObjects = 1000000;
constexpr int kMaxDepth = 64;
/// Longest object path the child follows, and longest name/message the parent accepts.
constexpr size_t kMaxPath = size_t{1} << 20;
constexpr uint64_t kMaxName = uint64_t{4} << 20;
/// Largest number of strings in one attribute.
constexpr uint64_t kMaxAttributeStrings = 10000000;
/// The child reads large datasets in slabs of about this many bytes.
constexpr size_t kSlabBytes = size_t{16} << 20;
/// Exit codes of the child (besides crashes).
constexpr int kExitPipe = 3;

std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : p) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

/// "/a/b" for "a/b", "/a//b/", ...; "/" for the root.
std::string norm(const std::string& p) {
  std::string r;
  for (const auto& s : split_path(p)) r += "/" + s;
  return r.empty() ? "/" : r;
}

std::string join(const std::string& a, const std::string& b) { return norm(a + "/" + b); }

std::string last_component(const std::string& p) {
  auto parts = split_path(p);
  return parts.empty() ? std::string() : parts.back();
}

// ------------------------------------------------------------------------------------------
// The child. It only calls libhdf5, malloc (glibc's is fork-safe), write and _exit: no
// iostreams, no exceptions, no locks another thread of the parent may have held at fork time.

enum class FaultMode { none, abort, hang, garbage };
struct Fault {
  FaultMode mode = FaultMode::none;
  std::string at;  // object path substring; empty: the first read
};

Fault fault_from_env() {
  Fault f;
  const char* e = std::getenv("ANVIL_KERAS_H5_FAULT");
  if (!e || !*e) return f;
  std::string s = e, mode = s;
  if (auto at = s.find('@'); at != std::string::npos) {
    mode = s.substr(0, at);
    f.at = s.substr(at + 1);
  }
  if (mode == "abort") f.mode = FaultMode::abort;
  else if (mode == "hang") f.mode = FaultMode::hang;
  else if (mode == "garbage") f.mode = FaultMode::garbage;
  return f;
}

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

class Out {
 public:
  explicit Out(int fd) : fd_(fd) { buf_.reserve(kBuffer); }
  void u8(uint8_t v) { put(&v, 1); }
  void u64(uint64_t v) { put(&v, sizeof v); }
  void str(const std::string& s) { str(s.data(), s.size()); }
  void str(const char* p, size_t n) {
    u64(n);
    put(p, n);
  }
  void put(const void* p, size_t n) {
    if (buf_.size() + n > kBuffer) flush();
    if (n >= kBuffer) {
      if (!write_all(fd_, p, n)) ::_exit(kExitPipe);
      return;
    }
    buf_.append(static_cast<const char*>(p), n);
  }
  void flush() {
    if (!buf_.empty() && !write_all(fd_, buf_.data(), buf_.size())) ::_exit(kExitPipe);
    buf_.clear();
  }

 private:
  static constexpr size_t kBuffer = 1 << 16;
  int fd_;
  std::string buf_;
};

// Closes an HDF5 id when it goes out of scope (the child opens one per attribute/dataset).
class Id {
 public:
  using Closer = herr_t (*)(hid_t);
  Id(hid_t id = -1, Closer c = nullptr) : id_(id), close_(c) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() { reset(-1, nullptr); }
  void reset(hid_t id, Closer c) {
    if (id_ >= 0 && close_) close_(id_);
    id_ = id;
    close_ = c;
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  Closer close_;
};

class ChildReader {
 public:
  ChildReader(int fd, Fault fault) : out_(fd), fault_(std::move(fault)) {}

  [[noreturn]] void run(const std::string& path, const std::string* image) {
    out_.put(kMagic, sizeof kMagic);
    progress("the file", "", "", "/");
    if (image) {
      hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
      if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 ||
          H5Pset_file_image(fapl, const_cast<char*>(image->data()), image->size()) < 0)
        fatal("cannot set up an in-memory HDF5 image");
      file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
      if (file_ < 0) fatal("cannot open the HDF5 data (truncated or corrupt?)");
    } else {
      file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      if (file_ < 0) fatal("cannot open the HDF5 file (truncated or corrupt?)");
    }
    kind("/");
    // What keras_importer.cpp's load_files() and its weight stores ask for.
    std::vector<std::string> root_layers, mw_layers;
    for (const char* a : {"backend", "keras_version", "model_config"}) attr("/", a, "", nullptr);
    int root_ln = attr("/", "layer_names", "", &root_layers);
    int mw_ln = -1;
    if (kind("/model_weights") == kKindGroup) {
      mw_ln = attr("/model_weights", "layer_names", "", &mw_layers);
      for (const char* a : {"backend", "keras_version"}) attr("/model_weights", a, "", nullptr);
    }
    if (mw_ln >= 0) {
      if (mw_ln == 1) keras2("/model_weights", mw_layers);
    } else if (root_ln >= 0) {
      if (root_ln == 1) keras2("/", root_layers);
    }
    // Keras 3 groups whenever present (a .keras zip is read as Keras 3 whatever else it holds).
    for (const char* base : {"/layers", "/_layer_checkpoint_dependencies"}) {
      if (kind(base) == kKindGroup) walk(base, 0);
    }
    out_.u8('Z');
    out_.flush();
    ::_exit(0);
  }

 private:
  // Keras 2 / tf.keras: <root>/<layer> groups with weight_names, datasets at <layer>/<name>.
  void keras2(const std::string& root, const std::vector<std::string>& layers) {
    std::set<std::string> seen;
    for (const auto& layer : layers) {
      if (!seen.insert(layer).second) continue;
      std::string g = join(root, layer);
      if (kind(g, "layer group '" + g + "'", layer, "") != kKindGroup) continue;
      std::vector<std::string> names;
      if (attr(g, "weight_names", layer, &names) != 1) continue;
      std::set<std::string> seen_w;
      for (const auto& w : names) {
        std::string ds = join(g, w);
        if (!seen_w.insert(ds).second) continue;
        std::string what = "weight '" + w + "' of layer '" + layer + "'";
        if (kind(ds, what, layer, w) == kKindDataset) dataset(ds, what, layer, w);
      }
    }
  }

  // Keras 3: every group under layers/ (nested models, layers/<m>/layers/<l>/vars/<i>).
  void walk(const std::string& g, int depth) {
    if (depth > kMaxDepth) fatal("HDF5 groups nested deeper than " + std::to_string(kMaxDepth) + " levels", g);
    std::string layer = last_component(g) == "vars" ? last_component(g.substr(0, g.rfind('/'))) : last_component(g);
    progress("group '" + g + "'", layer, g, g);
    hid_t grp = H5Gopen2(file_, g.c_str(), H5P_DEFAULT);
    if (grp < 0) return;
    H5G_info_t info;
    if (H5Gget_info(grp, &info) < 0 || info.nlinks > kMaxGroupMembers) {
      H5Gclose(grp);
      return;
    }
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      ssize_t n = H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (n < 0 || n > 65536) {
        H5Gclose(grp);
        return;
      }
      std::string s(static_cast<size_t>(n) + 1, '\0');
      if (H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size(), H5P_DEFAULT) < 0) {
        H5Gclose(grp);
        return;
      }
      s.resize(strnlen(s.c_str(), static_cast<size_t>(n)));
      names.push_back(std::move(s));
    }
    H5Gclose(grp);
    out_.u8('G');
    out_.str(g);
    out_.u64(names.size());
    for (const auto& n : names) out_.str(n);
    bool vars = last_component(g) == "vars";
    for (const auto& n : names) {
      std::string p = join(g, n);
      haddr_t addr = HADDR_UNDEF;
      uint8_t k = kind(p, "object '" + p + "'", layer, p, &addr);
      if (k == kKindGroup && visited_.insert(addr).second) walk(p, depth + 1);  // hard-link cycles
      else if (k == kKindDataset && vars) dataset(p, "weight '" + p + "'", layer, p);
    }
  }

  /// Records the kind of `path` when it exists (0: it does not); `what`, `layer`, `field` say
  /// what is being looked up when libhdf5 fails on it.
  uint8_t kind(const std::string& path, const std::string& what = {}, const std::string& layer = {},
               const std::string& field = {}, haddr_t* addr = nullptr) {
    if (++objects_ > kMaxObjects) fatal("more than " + std::to_string(kMaxObjects) + " HDF5 objects");
    std::string p = norm(path);
    if (p.size() > kMaxPath) return 0;
    progress(what.empty() ? "object '" + p + "'" : what, layer, field.empty() ? p : field, p);
    std::string cur;
    for (const auto& s : split_path(p)) {
      cur += "/" + s;
      if (H5Lexists(file_, cur.c_str(), H5P_DEFAULT) <= 0) return 0;
    }
    H5O_info_t info;
    if (H5Oget_info_by_name2(file_, p.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return 0;
    uint8_t k = info.type == H5O_TYPE_GROUP ? kKindGroup : info.type == H5O_TYPE_DATASET ? kKindDataset : kKindOther;
    if (addr) *addr = info.addr;
    out_.u8('K');
    out_.str(p);
    out_.u8(k);
    return k;
  }

  /// Sends attribute `name` of `object` when it exists; -1: absent, 0: unreadable, 1: read
  /// (values in *values when given).
  int attr(const std::string& object, const std::string& name, const std::string& layer,
           std::vector<std::string>* values) {
    std::string obj = norm(object);
    std::string field = (obj == "/" ? std::string() : obj.substr(1) + "/") + "@" + name;
    progress("attribute '" + name + "' of '" + obj + "'", layer, field, obj + "@" + name);
    if (H5Aexists_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT) <= 0) return -1;
    std::vector<std::string> v;
    std::string err = read_attr(obj, name, v);
    out_.u8('A');
    out_.str(obj);
    out_.str(name);
    if (!err.empty()) {
      out_.u8(1);
      out_.str(err);
      return 0;
    }
    out_.u8(0);
    out_.u64(v.size());
    for (const auto& s : v) out_.str(s);
    if (values) *values = std::move(v);
    return 1;
  }

  std::string read_attr(const std::string& obj, const std::string& name, std::vector<std::string>& out) {
    Id attr(H5Aopen_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) return "cannot open attribute '" + name + "'";
    const hid_t a = attr.get();
    Id type_id(H5Aget_type(a), H5Tclose), space_id(H5Aget_space(a), H5Sclose);
    if (!type_id.ok() || !space_id.ok()) return "cannot read attribute '" + name + "'";
    const hid_t type = type_id.get();
    hssize_t count = H5Sget_simple_extent_npoints(space_id.get());
    // h5py writes an empty list (a layer without weights: weight_names = []) as an empty
    // float64 array, so an empty attribute of any class is an empty list of strings.
    if (count == 0) return {};
    if (H5Tget_class(type) != H5T_STRING) return "attribute '" + name + "' is not a string";
    if (count < 0 || static_cast<uint64_t>(count) > kMaxAttributeStrings) return "attribute '" + name + "' has a bad size";
    const std::string too_large = "attribute '" + name + "' is too large";
    if (H5Tis_variable_str(type) > 0) {
      std::vector<char*> ptrs(static_cast<size_t>(count), nullptr);
      Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(mem.get(), H5T_VARIABLE);
      H5Tset_cset(mem.get(), H5Tget_cset(type));
      if (H5Aread(a, mem.get(), ptrs.data()) < 0) return "cannot read attribute '" + name + "' (corrupt HDF5 file)";
      int64_t total = 0;
      for (char* p : ptrs) {
        size_t len = p ? strnlen(p, static_cast<size_t>(kMaxAttributeBytes) + 1) : 0;
        total += static_cast<int64_t>(len);
        if (total > kMaxAttributeBytes) return too_large;
        out.emplace_back(p ? p : "", len);
      }
      return {};  // the child exits soon: no need to reclaim HDF5's strings
    }
    size_t sz = H5Tget_size(type);
    if (sz == 0 || static_cast<int64_t>(sz) > kMaxAttributeBytes / count) return too_large;
    std::string buf(sz * static_cast<size_t>(count), '\0');
    if (H5Aread(a, type, buf.data()) < 0) return "cannot read attribute '" + name + "' (truncated file?)";
    for (hssize_t i = 0; i < count; ++i) {
      const char* s = buf.data() + static_cast<size_t>(i) * sz;
      out.emplace_back(s, strnlen(s, sz));
    }
    return {};
  }

  void dataset(const std::string& path, const std::string& what, const std::string& layer, const std::string& field) {
    if (++objects_ > kMaxObjects) fatal("more than " + std::to_string(kMaxObjects) + " HDF5 objects");
    progress(what, layer, field, path);
    std::vector<hsize_t> dims;
    Id d_id, fs_id;
    std::string err = open_dataset(path, d_id, fs_id, dims);
    const hid_t d = d_id.get(), fs = fs_id.get();
    out_.u8('D');
    out_.str(path);
    if (!err.empty()) {
      out_.u8(1);
      out_.str(err);
      return;
    }
    out_.u8(0);
    out_.u8(kDtypeF32);
    out_.u8(static_cast<uint8_t>(dims.size()));
    uint64_t numel = 1;
    for (hsize_t v : dims) {
      out_.u64(v);
      numel *= v;
    }
    if (numel > 0) {
      const std::string fail = "cannot read HDF5 dataset '" + path + "' (truncated or corrupt file?)";
      uint64_t rows = dims.empty() ? 1 : dims[0];
      uint64_t row = numel / rows;
      uint64_t per = std::max<uint64_t>(1, kSlabBytes / (row * sizeof(float)));
      std::vector<float> buf(static_cast<size_t>(std::min(rows, per) * row));
      for (uint64_t r0 = 0; r0 < rows; r0 += per) {
        uint64_t n = std::min(per, rows - r0);
        herr_t st;
        if (n == rows) {
          st = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
        } else {
          std::vector<hsize_t> start(dims.size(), 0), count = dims;
          start[0] = r0;
          count[0] = n;
          Id ms(H5Screate_simple(static_cast<int>(dims.size()), count.data(), nullptr), H5Sclose);
          st = !ms.ok() || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0
                   ? -1
                   : H5Dread(d, H5T_NATIVE_FLOAT, ms.get(), fs, H5P_DEFAULT, buf.data());
        }
        if (st < 0) {
          out_.u64(kChunkError);
          out_.str(fail);
          return;
        }
        out_.u64(n * row * sizeof(float));
        out_.put(buf.data(), static_cast<size_t>(n * row * sizeof(float)));
      }
    }
    out_.u64(0);
  }

  std::string open_dataset(const std::string& path, Id& d_id, Id& fs_id, std::vector<hsize_t>& dims) {
    d_id.reset(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
    const hid_t d = d_id.get();
    if (d < 0) return "HDF5 dataset '" + path + "' not found or unreadable";
    fs_id.reset(H5Dget_space(d), H5Sclose);
    const hid_t fs = fs_id.get();
    int rank = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
    if (rank < 0 || rank > 8) return "HDF5 dataset '" + path + "' has a bad rank";
    dims.assign(static_cast<size_t>(rank), 0);
    if (rank > 0 && H5Sget_simple_extent_dims(fs, dims.data(), nullptr) < 0)
      return "HDF5 dataset '" + path + "' has a bad shape";
    uint64_t n = 1;
    for (hsize_t v : dims) {
      if (v > static_cast<hsize_t>(kMaxDatasetElements))
        return "HDF5 dataset '" + path + "' has a hostile dimension " + std::to_string(v);
      if (v != 0 && n > static_cast<uint64_t>(kMaxDatasetElements) / v)
        return "HDF5 dataset '" + path + "' is too large";
      n *= v;
    }
    Id type(H5Dget_type(d), H5Tclose);
    H5T_class_t cls = type.ok() ? H5Tget_class(type.get()) : H5T_NO_CLASS;
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) return "HDF5 dataset '" + path + "' is not numeric";
    return {};
  }

  void progress(const std::string& what, const std::string& layer, const std::string& field, const std::string& path) {
    out_.u8('P');
    out_.str(what.substr(0, 4096));
    out_.str(layer.substr(0, 4096));
    out_.str(field.substr(0, 4096));
    out_.flush();  // visible to the parent before libhdf5 touches the object
    if (fault_.mode == FaultMode::none || path.find(fault_.at) == std::string::npos) return;
    if (fault_.mode == FaultMode::abort) ::abort();
    if (fault_.mode == FaultMode::garbage) {
      out_.put("\x7fgarbage", 8);
      out_.flush();
      ::_exit(0);
    }
    for (;;) ::pause();
  }

  [[noreturn]] void fatal(const std::string& msg, const std::string& field = {}) {
    out_.u8('E');
    out_.str(msg);
    out_.str("");
    out_.str(field);
    out_.flush();
    ::_exit(0);
  }

  Out out_;
  Fault fault_;
  hid_t file_ = -1;
  uint64_t objects_ = 0;
  std::set<haddr_t> visited_;
};

[[noreturn]] void child_main(int fd, const std::string& path, const std::string* image, const Fault& fault,
                             bool debug, pid_t parent) {
  // Die with the parent; no core files; crashes end the process (no handlers inherited from
  // the parent, e.g. a sanitizer's or a fuzzer's); a closed pipe ends it too.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kExitPipe);
  rlimit core{0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  for (int s : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGPIPE}) ::signal(s, SIG_DFL);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(nullptr);
  if (!debug) {
    int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, 2);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ChildReader(fd, fault).run(path, image);
}

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
        deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(total_s * 1000))),
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
  std::string path;                 // a file, or the name of the in-memory image
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
  const double total_s = idle_s * (1.0 + static_cast<double>(src.size) / static_cast<double>(64 << 20));
  // The data may expand beyond the file (compressed datasets), but not without bound.
  const uint64_t cap = (uint64_t{1} << 30) + 16 * src.size;
  const char* dbg = std::getenv("ANVIL_KERAS_H5_DEBUG");
  const bool debug = dbg && *dbg && std::string(dbg) != "0";

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error("cannot create a pipe for the HDF5 reader process", what);
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
            for (uint64_t i = 0; i < n; ++i) a.values.push_back(in.str(static_cast<uint64_t>(kMaxAttributeBytes)));
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
          void* mem = std::aligned_alloc(64, std::max<size_t>(64, (static_cast<size_t>(nbytes) + 63) / 64 * 64));
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
    msg = "corrupt HDF5 file? libhdf5 did not finish" + at + " within " +
          seconds_str(idle_s) + " s; the reader process was killed";
  } else if (why == StreamEnd::cap) {
    msg = "the HDF5 data" + at + " expands beyond the reader's limit of " + std::to_string(cap >> 20) +
          " MiB (1 GiB + 16 x the file size)";
  } else if (why == StreamEnd::garbage) {
    msg = "the HDF5 reader process sent malformed data" + at;
  } else if (status != -1 && WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    msg = "corrupt HDF5 file: libhdf5 crashed" + at + " (the reader process died of signal " + std::to_string(sig) +
          (name ? std::string(", ") + name : std::string()) + ")";
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
  if (it == impl_->children.end()) throw Error("cannot read HDF5 group '" + group + "'", what_, {}, group);
  return it->second;
}

bool H5File::has_attr(const std::string& object, const std::string& name) const {
  return impl_->attrs.count({norm(object), name}) > 0;
}

std::vector<std::string> H5File::attr_strings(const std::string& object, const std::string& name) const {
  std::string p = norm(object);
  std::string field = (p == "/" ? std::string() : p.substr(1) + "/") + "@" + name;
  auto it = impl_->attrs.find({p, name});
  if (it == impl_->attrs.end()) throw Error("attribute '" + name + "' not found on '" + p + "'", what_, {}, field);
  if (!it->second.error.empty()) throw Error(it->second.error, what_, {}, field);
  return it->second.values;
}

std::string H5File::attr_string(const std::string& object, const std::string& name) const {
  auto v = attr_strings(object, name);
  if (v.size() != 1)
    throw Error("attribute '" + name + "' should hold one string, found " + std::to_string(v.size()), what_, {},
                name);
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
