// Keras HDF5 reader, the child half: libhdf5 runs only in this forked process (see
// hdf5_file.h for why, hdf5_file.cpp for the record stream it writes). It only calls libhdf5,
// malloc (glibc's is fork-safe), write and _exit: no iostreams, no exceptions, no locks
// another thread of the parent may have held at fork time.
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "import/keras/hdf5_file.h"
#include "import/keras/hdf5_wire.h"

// Under a sanitizer runtime (the fuzz build), a report in the child would run the fuzzer's death
// callback (which writes a crash file as if the fuzzer had crashed); the child clears it.
extern "C" void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

namespace anvil::keras::h5wire {

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

Fault fault_from_env() {
  Fault f;
  const char* e = std::getenv("ANVIL_KERAS_H5_FAULT");
  if (!e || !*e) return f;
  std::string s = e, mode = s;
  if (auto at = s.find('@'); at != std::string::npos) {
    mode = s.substr(0, at);
    f.at = s.substr(at + 1);
  }
  if (mode == "abort")
    f.mode = FaultMode::abort;
  else if (mode == "hang")
    f.mode = FaultMode::hang;
  else if (mode == "garbage")
    f.mode = FaultMode::garbage;
  return f;
}

namespace {

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
    if (depth > kMaxDepth)
      fatal("HDF5 groups nested deeper than " + std::to_string(kMaxDepth) + " levels", g);
    std::string layer =
        last_component(g) == "vars" ? last_component(g.substr(0, g.rfind('/'))) : last_component(g);
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
      ssize_t n =
          H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (n < 0 || n > 65536) {
        H5Gclose(grp);
        return;
      }
      std::string s(static_cast<size_t>(n) + 1, '\0');
      if (H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size(),
                             H5P_DEFAULT) < 0) {
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
      if (k == kKindGroup && visited_.insert(addr).second)
        walk(p, depth + 1);  // hard-link cycles
      else if (k == kKindDataset && vars)
        dataset(p, "weight '" + p + "'", layer, p);
    }
  }

  /// Records the kind of `path` when it exists (0: it does not); `what`, `layer`, `field` say
  /// what is being looked up when libhdf5 fails on it.
  uint8_t kind(const std::string& path, const std::string& what = {}, const std::string& layer = {},
               const std::string& field = {}, haddr_t* addr = nullptr) {
    if (++objects_ > kMaxObjects)
      fatal("more than " + std::to_string(kMaxObjects) + " HDF5 objects");
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
    uint8_t k = info.type == H5O_TYPE_GROUP     ? kKindGroup
                : info.type == H5O_TYPE_DATASET ? kKindDataset
                                                : kKindOther;
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

  std::string read_attr(const std::string& obj, const std::string& name,
                        std::vector<std::string>& out) {
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
    if (count < 0 || static_cast<uint64_t>(count) > kMaxAttributeStrings)
      return "attribute '" + name + "' has a bad size";
    const std::string too_large = "attribute '" + name + "' is too large";
    if (H5Tis_variable_str(type) > 0) {
      std::vector<char*> ptrs(static_cast<size_t>(count), nullptr);
      Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(mem.get(), H5T_VARIABLE);
      H5Tset_cset(mem.get(), H5Tget_cset(type));
      if (H5Aread(a, mem.get(), ptrs.data()) < 0)
        return "cannot read attribute '" + name + "' (corrupt HDF5 file)";
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
    if (H5Aread(a, type, buf.data()) < 0)
      return "cannot read attribute '" + name + "' (truncated file?)";
    for (hssize_t i = 0; i < count; ++i) {
      const char* s = buf.data() + static_cast<size_t>(i) * sz;
      out.emplace_back(s, strnlen(s, sz));
    }
    return {};
  }

  void dataset(const std::string& path, const std::string& what, const std::string& layer,
               const std::string& field) {
    if (++objects_ > kMaxObjects)
      fatal("more than " + std::to_string(kMaxObjects) + " HDF5 objects");
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
      const std::string fail =
          "cannot read HDF5 dataset '" + path + "' (truncated or corrupt file?)";
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
          st = !ms.ok() || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start.data(), nullptr,
                                               count.data(), nullptr) < 0
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

  std::string open_dataset(const std::string& path, Id& d_id, Id& fs_id,
                           std::vector<hsize_t>& dims) {
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

  void progress(const std::string& what, const std::string& layer, const std::string& field,
                const std::string& path) {
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

}  // namespace

[[noreturn]] void child_main(int fd, const std::string& path, const std::string* image,
                             const Fault& fault, bool debug, pid_t parent) {
  // Die with the parent; no core files; crashes end the process (no handlers inherited from
  // the parent, e.g. a sanitizer's or a fuzzer's); a closed pipe ends it too.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kExitPipe);
  rlimit core{0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  for (int s : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS, SIGPIPE})
    ::signal(s, SIG_DFL);
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

}  // namespace anvil::keras::h5wire
