#include "import/keras/hdf5_file.h"

#include <hdf5.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>

#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <unistd.h>

#include "anvil/error.h"

namespace anvil::keras {
namespace {

// HDF5 prints its error stack to stderr by default; we report errors ourselves.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// RAII for any hid_t.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer c) : id_(id), close_(c) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  ~Handle() { reset(); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

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

}  // namespace

struct H5File::Impl {
  Handle file;
  std::string image;  // keeps an in-memory image alive
};

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
  silence_hdf5();
  H5File f;
  f.what_ = path;
  f.impl_ = std::make_unique<Impl>();
  if (!has_signature(path))
    throw Error("not an HDF5 file (no HDF5 signature at the start)", path);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw Error("cannot open the HDF5 file (truncated or corrupt?)", path);
  f.impl_->file = Handle(id, H5Fclose);
  return f;
}

H5File H5File::open_image(std::string bytes, const std::string& what) {
  silence_hdf5();
  H5File f;
  f.what_ = what;
  f.impl_ = std::make_unique<Impl>();
  f.impl_->image = std::move(bytes);
  if (f.impl_->image.size() < 8 || std::memcmp(f.impl_->image.data(), "\x89HDF\r\n\x1a\n", 8) != 0)
    throw Error("not an HDF5 file (no HDF5 signature at the start)", what);
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.ok() || H5Pset_fapl_core(fapl.get(), 1 << 16, 0) < 0 ||
      H5Pset_file_image(fapl.get(), f.impl_->image.data(), f.impl_->image.size()) < 0)
    throw Error("cannot set up an in-memory HDF5 image", what);
  hid_t id = H5Fopen(what.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (id < 0) throw Error("cannot open the HDF5 data (truncated or corrupt?)", what);
  f.impl_->file = Handle(id, H5Fclose);
  return f;
}

bool H5File::exists(const std::string& path) const {
  auto parts = split_path(path);
  if (parts.empty()) return true;
  std::string cur;
  for (const auto& p : parts) {
    cur += "/" + p;
    htri_t r = H5Lexists(impl_->file.get(), cur.c_str(), H5P_DEFAULT);
    if (r <= 0) return false;
  }
  H5O_info_t info;
  return H5Oget_info_by_name2(impl_->file.get(), cur.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0;
}

namespace {
H5O_type_t object_type(hid_t file, const std::string& path) {
  H5O_info_t info;
  std::string p = path.empty() ? "/" : path;
  if (H5Oget_info_by_name2(file, p.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
  return info.type;
}
}  // namespace

bool H5File::is_group(const std::string& path) const {
  return exists(path) && object_type(impl_->file.get(), path) == H5O_TYPE_GROUP;
}
bool H5File::is_dataset(const std::string& path) const {
  return exists(path) && object_type(impl_->file.get(), path) == H5O_TYPE_DATASET;
}

std::vector<std::string> H5File::children(const std::string& group) const {
  std::string p = group.empty() ? "/" : group;
  if (!is_group(p)) throw Error("HDF5 group '" + group + "' not found", what_, {}, group);
  Handle g(H5Gopen2(impl_->file.get(), p.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) throw Error("cannot open HDF5 group '" + group + "'", what_, {}, group);
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0) throw Error("cannot read HDF5 group '" + group + "'", what_, {}, group);
  if (info.nlinks > 1000000) throw Error("HDF5 group '" + group + "' has too many members", what_, {}, group);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0 || n > 65536) throw Error("cannot read a member name of HDF5 group '" + group + "'", what_, {}, group);
    std::string s(static_cast<size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size(), H5P_DEFAULT);
    s.resize(static_cast<size_t>(n));
    names.push_back(s);
  }
  return names;
}

bool H5File::has_attr(const std::string& object, const std::string& name) const {
  std::string p = object.empty() ? "/" : object;
  if (!exists(p)) return false;
  return H5Aexists_by_name(impl_->file.get(), p.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

namespace {

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

// Seconds the child reading one variable-length string attribute may take.
constexpr int kAttributeReadTimeoutS = 5;

std::vector<std::string> H5File::read_vlen_isolated(int64_t attr, int64_t type, int64_t space, int64_t count,
                                                    const std::string& name, const std::string& field) const {
  int fds[2];
  if (::pipe(fds) != 0) throw Error("cannot create a pipe to read attribute '" + name + "'", what_, {}, field);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error("cannot fork to read attribute '" + name + "'", what_, {}, field);
  }
  if (pid == 0) {  // child: read, send "<u64 n>(<u64 len><bytes>)*", exit without cleanup
    ::close(fds[0]);
    std::vector<char*> ptrs(static_cast<size_t>(count), nullptr);
    hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5Tget_cset(static_cast<hid_t>(type)));
    if (count > 0 && H5Aread(static_cast<hid_t>(attr), mem, ptrs.data()) < 0) ::_exit(3);
    uint64_t n = static_cast<uint64_t>(count);
    if (!write_all(fds[1], &n, sizeof n)) ::_exit(4);
    for (char* p : ptrs) {
      uint64_t len = p ? strnlen(p, static_cast<size_t>(kMaxAttributeBytes) + 1) : 0;
      if (len > static_cast<uint64_t>(kMaxAttributeBytes)) ::_exit(5);
      if (!write_all(fds[1], &len, sizeof len) || (len && !write_all(fds[1], p, len))) ::_exit(4);
    }
    ::close(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string buf;
  char chunk[65536];
  // HDF5 1.10 can also loop forever on a corrupt global heap (found by fuzzing: H5HG_read ->
  // H5C_protect spinning inside H5Aread), so the child gets a deadline and is killed after it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kAttributeReadTimeoutS);
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    int pr = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) {
      timed_out = true;
      break;
    }
    if (pr < 0) break;
    ssize_t r = ::read(fds[0], chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    buf.append(chunk, static_cast<size_t>(r));
    if (static_cast<int64_t>(buf.size()) > kMaxAttributeBytes * 2) break;
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    throw Error("cannot read attribute '" + name + "' (corrupt HDF5 file: the HDF5 library did not finish reading it)",
                what_, {}, field);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 5)
      throw Error("attribute '" + name + "' is too large", what_, {}, field);
    throw Error("cannot read attribute '" + name + "' (corrupt HDF5 file)", what_, {}, field);
  }
  std::vector<std::string> out;
  size_t pos = 0;
  auto take = [&](void* dst, size_t n) {
    if (buf.size() - pos < n) throw Error("cannot read attribute '" + name + "' (corrupt HDF5 file)", what_, {}, field);
    std::memcpy(dst, buf.data() + pos, n);
    pos += n;
  };
  uint64_t n = 0;
  take(&n, sizeof n);
  if (n != static_cast<uint64_t>(count)) throw Error("cannot read attribute '" + name + "'", what_, {}, field);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len = 0;
    take(&len, sizeof len);
    if (len > buf.size() - pos) throw Error("cannot read attribute '" + name + "' (corrupt HDF5 file)", what_, {}, field);
    out.emplace_back(buf.data() + pos, static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
  }
  (void)space;
  return out;
}

std::vector<std::string> H5File::attr_strings(const std::string& object, const std::string& name) const {
  std::string p = object.empty() ? "/" : object;
  std::string field = (object.empty() || object == "/" ? std::string() : object + "/") + "@" + name;
  if (!has_attr(p, name)) throw Error("attribute '" + name + "' not found on '" + p + "'", what_, {}, field);
  Handle a(H5Aopen_by_name(impl_->file.get(), p.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a.ok()) throw Error("cannot open attribute '" + name + "'", what_, {}, field);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  if (!type.ok() || !space.ok()) throw Error("cannot read attribute '" + name + "'", what_, {}, field);
  hssize_t count = H5Sget_simple_extent_npoints(space.get());
  // h5py writes an empty list (a layer without weights: weight_names = []) as an empty
  // float64 array, so an empty attribute of any class is an empty list of strings.
  if (count == 0) return {};
  if (H5Tget_class(type.get()) != H5T_STRING)
    throw Error("attribute '" + name + "' is not a string", what_, {}, field);
  if (count < 0 || count > 10000000) throw Error("attribute '" + name + "' has a bad size", what_, {}, field);
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    // Variable-length strings live in the file's global heap, and HDF5 1.10's heap reader
    // (H5HG_read) copies as many bytes as a corrupt heap object claims: a damaged file can
    // crash the process inside HDF5. So the read runs in a short-lived child process that
    // sends the strings back through a pipe; a child that dies means a corrupt attribute.
    return read_vlen_isolated(a.get(), type.get(), space.get(), count, name, field);
  }
  {
    size_t sz = H5Tget_size(type.get());
    if (sz == 0 || static_cast<int64_t>(sz) * count > kMaxAttributeBytes)
      throw Error("attribute '" + name + "' is too large", what_, {}, field);
    std::string buf(sz * static_cast<size_t>(count), '\0');
    if (count > 0 && H5Aread(a.get(), type.get(), buf.data()) < 0)
      throw Error("cannot read attribute '" + name + "' (truncated file?)", what_, {}, field);
    for (hssize_t i = 0; i < count; ++i) {
      const char* s = buf.data() + static_cast<size_t>(i) * sz;
      out.emplace_back(s, strnlen(s, sz));
    }
  }
  return out;
}

std::string H5File::attr_string(const std::string& object, const std::string& name) const {
  auto v = attr_strings(object, name);
  if (v.size() != 1)
    throw Error("attribute '" + name + "' should hold one string, found " + std::to_string(v.size()), what_, {},
                name);
  return v[0];
}

Shape H5File::dataset_shape(const std::string& path) const {
  Handle d(H5Dopen2(impl_->file.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) throw Error("HDF5 dataset '" + path + "' not found or unreadable", what_, {}, path);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 8) throw Error("HDF5 dataset '" + path + "' has a bad rank", what_, {}, path);
  hsize_t dims[8] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  Shape s;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] > static_cast<hsize_t>(kMaxDatasetElements))
      throw Error("HDF5 dataset '" + path + "' has a hostile dimension " + std::to_string(dims[i]), what_, {}, path);
    s.push_back(static_cast<int64_t>(dims[i]));
  }
  return s;
}

Tensor H5File::read_f32(const std::string& path) const {
  Shape s = dataset_shape(path);
  int64_t n = 1;
  for (int64_t d : s) {
    if (d != 0 && n > kMaxDatasetElements / d)
      throw Error("HDF5 dataset '" + path + "' is too large (" + shape_str(s) + ")", what_, {}, path);
    n *= d;
  }
  if (n > kMaxDatasetElements)
    throw Error("HDF5 dataset '" + path + "' is too large (" + shape_str(s) + ")", what_, {}, path);
  Handle d(H5Dopen2(impl_->file.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
  Handle type(H5Dget_type(d.get()), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    throw Error("HDF5 dataset '" + path + "' is not numeric", what_, {}, path);
  // A contiguous dataset must have its bytes in the file; compressed/chunked ones are checked
  // by H5Dread itself.
  Tensor t(DType::f32, s);
  if (n > 0 && H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()) < 0)
    throw Error("cannot read HDF5 dataset '" + path + "' (truncated or corrupt file?)", what_, {}, path);
  return t;
}

}  // namespace anvil::keras
