// NumPy .npy / .npz reading and writing.
//
// Format reference: numpy/lib/format.py (NEP 1). A .npy file is
//   "\x93NUMPY" major minor  header_len (u16 LE for v1, u32 LE for v2/v3)  header  data
// where the header is a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': ...}.
// A .npz is a zip archive of .npy members named "<key>.npy".
#include "anvil/npy.h"

#include <zip.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "core/file_io.h"

namespace anvil {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kArrayAlign = 64;           // numpy's ARRAY_ALIGN
constexpr size_t kGrowthAxisMaxDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS
constexpr bool kHostLittle = std::endian::native == std::endian::little;

// ---------------------------------------------------------------------------------------------
// A small parser for the Python literal in the header: dict, tuple, list, str, int, bool, None.

struct PyEntry;  // a dict entry (std::pair<std::string, PyValue> needs PyValue complete: clang)

struct PyValue {
  enum Kind { Str, Int, Bool, None, Tuple, List, Dict } kind = None;
  std::string s;
  int64_t i = 0;
  bool b = false;
  std::vector<PyValue> items;    // Tuple, List
  std::vector<PyEntry> entries;  // Dict (string keys only)
};

struct PyEntry {
  std::string first;
  PyValue second;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& what) : t_(text), what_(what) {}

  PyValue parse_top() {
    PyValue v = value(0);
    skip_ws();
    if (p_ != t_.size()) fail("unexpected text after the header dictionary");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(
        "cannot parse the header (" + msg + " at offset " + std::to_string(p_) + "): " + excerpt(),
        what_, "", "header");
  }
  std::string excerpt() const {
    std::string e = t_.substr(0, 120);
    for (char& c : e)
      if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) c = '?';
    return "\"" + e + (t_.size() > 120 ? "...\"" : "\"");
  }
  void skip_ws() {
    while (p_ < t_.size() &&
           (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\0'))
      ++p_;
  }
  bool eat(char c) {
    skip_ws();
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool starts(const char* word) const {
    size_t n = std::strlen(word);
    return t_.compare(p_, n, word) == 0;
  }

  PyValue value(int depth) {
    if (depth > 32) fail("nesting too deep");
    skip_ws();
    if (p_ >= t_.size()) fail("unexpected end");
    char c = t_[p_];
    PyValue v;
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Str;
      v.s = string_lit();
    } else if (c == '{') {
      ++p_;
      v.kind = PyValue::Dict;
      while (!eat('}')) {
        skip_ws();
        if (p_ >= t_.size() || (t_[p_] != '\'' && t_[p_] != '"')) fail("expected a string key");
        std::string key = string_lit();
        if (!eat(':')) fail("expected ':'");
        v.entries.push_back(PyEntry{std::move(key), value(depth + 1)});
        if (!eat(',')) {
          if (!eat('}')) fail("expected ',' or '}'");
          break;
        }
      }
    } else if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      ++p_;
      v.kind = c == '(' ? PyValue::Tuple : PyValue::List;
      while (!eat(close)) {
        v.items.push_back(value(depth + 1));
        if (!eat(',')) {
          if (!eat(close)) fail(std::string("expected ',' or '") + close + "'");
          break;
        }
      }
    } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
      v.kind = PyValue::Int;
      v.i = int_lit();
    } else if (starts("True")) {
      p_ += 4;
      v.kind = PyValue::Bool;
      v.b = true;
    } else if (starts("False")) {
      p_ += 5;
      v.kind = PyValue::Bool;
      v.b = false;
    } else if (starts("None")) {
      p_ += 4;
      v.kind = PyValue::None;
    } else {
      fail("unexpected character");
    }
    return v;
  }

  std::string string_lit() {
    const char q = t_[p_++];
    std::string s;
    while (true) {
      if (p_ >= t_.size()) fail("unterminated string");
      char c = t_[p_++];
      if (c == q) break;
      if (c == '\\') {
        if (p_ >= t_.size()) fail("unterminated string");
        char e = t_[p_++];
        switch (e) {
          case 'n':
            s += '\n';
            break;
          case 't':
            s += '\t';
            break;
          case '0':
            s += '\0';
            break;
          default:
            s += e;
            break;  // \\, \', \" and anything else: keep the character
        }
      } else {
        s += c;
      }
    }
    return s;
  }

  int64_t int_lit() {
    bool neg = false;
    if (t_[p_] == '-' || t_[p_] == '+') neg = t_[p_++] == '-';
    if (p_ >= t_.size() || t_[p_] < '0' || t_[p_] > '9') fail("expected a digit");
    uint64_t v = 0;
    const uint64_t limit = neg ? uint64_t{1} << 63 : uint64_t{std::numeric_limits<int64_t>::max()};
    while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
      uint64_t d = static_cast<uint64_t>(t_[p_] - '0');
      if (v > (limit - d) / 10) fail("integer out of range");
      v = v * 10 + d;
      ++p_;
    }
    if (p_ < t_.size() && (t_[p_] == 'L' || t_[p_] == 'l')) ++p_;  // Python 2 long suffix
    if (neg)
      return v == (uint64_t{1} << 63) ? std::numeric_limits<int64_t>::min()
                                      : -static_cast<int64_t>(v);
    return static_cast<int64_t>(v);
  }

  const std::string& t_;
  const std::string& what_;
  size_t p_ = 0;
};

// ---------------------------------------------------------------------------------------------
// dtypes

enum class Src { f2, f4, f8, i1, u1, i2, i4, i8, u2, u4, u8, b1 };

struct SrcType {
  Src src;
  DType dst;
  size_t size;  // bytes per element in the file
  bool big;     // file bytes are big endian
};

SrcType parse_descr(const std::string& d, const std::string& what) {
  auto bad = [&](const std::string& why) -> Error {
    return Error("unsupported dtype '" + d + "'" + (why.empty() ? "" : " (" + why + ")") +
                     "; supported: f2 f4 f8 i1 u1 i2 i4 i8 u2 u4 u8 b1",
                 what, "", "descr");
  };
  if (d.empty()) throw bad("empty");
  size_t p = 0;
  char order = '=';
  if (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') {
    order = d[0];
    p = 1;
  }
  if (d.size() == p + 1 && d[p] == '?') return {Src::b1, DType::boolean, 1, false};
  if (d.size() < p + 2) throw bad("");
  const std::string code = d.substr(p);
  bool big = order == '>' || (order == '=' && !kHostLittle) || (order == '|' && !kHostLittle);
  struct Entry {
    const char* code;
    Src src;
    DType dst;
    size_t size;
  };
  static const Entry table[] = {
      {"f2", Src::f2, DType::f16, 2}, {"f4", Src::f4, DType::f32, 4},
      {"f8", Src::f8, DType::f64, 8}, {"i1", Src::i1, DType::i8, 1},
      {"u1", Src::u1, DType::u8, 1},  {"i2", Src::i2, DType::i16, 2},
      {"i4", Src::i4, DType::i32, 4}, {"i8", Src::i8, DType::i64, 8},
      {"u2", Src::u2, DType::i32, 2}, {"u4", Src::u4, DType::i64, 4},
      {"u8", Src::u8, DType::i64, 8}, {"b1", Src::b1, DType::boolean, 1},
  };
  for (const Entry& e : table)
    if (code == e.code) return {e.src, e.dst, e.size, e.size > 1 && big};
  if (code[0] == 'c') throw bad("complex numbers");
  if (code[0] == 'V') throw bad("raw bytes or a structured/extension type such as bfloat16");
  if (code[0] == 'U' || code[0] == 'S') throw bad("strings");
  if (code[0] == 'O') throw bad("Python objects");
  if (code[0] == 'M' || code[0] == 'm') throw bad("datetimes");
  throw bad("");
}

const char* descr_of(DType t) {
  switch (t) {
    case DType::f32:
      return "<f4";
    case DType::f16:
      return "<f2";
    case DType::bf16:
      return "<f4";  // numpy has no bfloat16: written as float32
    case DType::f64:
      return "<f8";
    case DType::i8:
      return "|i1";
    case DType::u8:
      return "|u1";
    case DType::i16:
      return "<i2";
    case DType::i32:
      return "<i4";
    case DType::i64:
      return "<i8";
    case DType::boolean:
      return "|b1";
  }
  return "?";
}

// Reads one element of `size` bytes as an unsigned integer (bit pattern), honouring the
// file's byte order.
inline uint64_t load_bits(const unsigned char* p, size_t size, bool big) {
  uint64_t v = 0;
  if (big) {
    for (size_t k = 0; k < size; ++k) v = (v << 8) | p[k];
  } else {
    for (size_t k = size; k-- > 0;) v = (v << 8) | p[k];
  }
  return v;
}

// Converts `n` elements of file bytes into the tensor's buffer.
void decode_data(const unsigned char* src, int64_t n, const SrcType& st, Tensor& out,
                 const std::string& what) {
  const bool native_bytes = st.size == 1 || st.big == !kHostLittle;
  if (native_bytes && dtype_size(out.dtype()) == st.size && st.src != Src::b1 &&
      st.src != Src::u8) {
    if (n) std::memcpy(out.raw(), src, static_cast<size_t>(n) * st.size);
    return;
  }
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bits = load_bits(src + static_cast<size_t>(i) * st.size, st.size, st.big);
    switch (st.src) {
      case Src::b1:
        dst[i] = bits ? 1 : 0;
        break;
      case Src::i1:
      case Src::u1:
        dst[i] = static_cast<unsigned char>(bits);
        break;
      case Src::f2:
      case Src::i2: {
        auto v = static_cast<uint16_t>(bits);
        std::memcpy(dst + i * 2, &v, 2);
        break;
      }
      case Src::f4:
      case Src::i4: {
        auto v = static_cast<uint32_t>(bits);
        std::memcpy(dst + i * 4, &v, 4);
        break;
      }
      case Src::f8:
      case Src::i8:
        std::memcpy(dst + i * 8, &bits, 8);
        break;
      case Src::u2: {
        auto v = static_cast<int32_t>(bits);
        std::memcpy(dst + i * 4, &v, 4);
        break;
      }
      case Src::u4: {
        auto v = static_cast<int64_t>(bits);
        std::memcpy(dst + i * 8, &v, 8);
        break;
      }
      case Src::u8: {
        if (bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          throw Error("uint64 value " + std::to_string(bits) + " at index " + std::to_string(i) +
                          " does not fit in i64 (anvil has no u64 dtype)",
                      what, "", "data");
        auto v = static_cast<int64_t>(bits);
        std::memcpy(dst + i * 8, &v, 8);
        break;
      }
    }
  }
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(std::string("cannot create file: ") + std::strerror(errno), path);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) throw Error("error while writing the file", path);
}

std::string shape_repr(const Shape& s) {  // Python's repr of a tuple of ints
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

std::string zip_error_text(int code) {
  zip_error_t ze;
  zip_error_init_with_code(&ze, code);
  std::string s = zip_error_strerror(&ze);
  zip_error_fini(&ze);
  return s;
}

}  // namespace

// -----------------------------------------------------------------------------------------------

Tensor parse_npy(const void* data, size_t size, const std::string& what) {
  const auto* b = static_cast<const unsigned char*>(data);
  if (size < kMagicLen + 2 || std::memcmp(b, kMagic, kMagicLen) != 0)
    throw Error("not a .npy file (missing the \\x93NUMPY magic)", what, "", "header");
  const int major = b[6];
  const int minor = b[7];
  size_t hlen_size;
  if (major == 1) {
    hlen_size = 2;
  } else if (major == 2 || major == 3) {
    hlen_size = 4;
  } else {
    throw Error(
        "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor),
        what, "", "version");
  }
  const size_t prefix = kMagicLen + 2 + hlen_size;
  if (size < prefix) throw Error("file ends inside the header length", what, "", "header");
  const uint64_t hlen = load_bits(b + kMagicLen + 2, hlen_size, false);
  if (hlen > size - prefix)
    throw Error("header length " + std::to_string(hlen) + " goes beyond the end of the file (" +
                    std::to_string(size) + " bytes)",
                what, "", "header");
  const std::string header(reinterpret_cast<const char*>(b + prefix), static_cast<size_t>(hlen));
  const size_t data_off = prefix + static_cast<size_t>(hlen);

  PyValue dict = HeaderParser(header, what).parse_top();
  if (dict.kind != PyValue::Dict) throw Error("the header is not a dictionary", what, "", "header");
  const PyValue *descr = nullptr, *fortran = nullptr, *shape_v = nullptr;
  for (const auto& [k, v] : dict.entries) {
    if (k == "descr") descr = &v;
    if (k == "fortran_order") fortran = &v;
    if (k == "shape") shape_v = &v;
  }
  if (!descr) throw Error("missing from the header", what, "", "descr");
  if (!fortran) throw Error("missing from the header", what, "", "fortran_order");
  if (!shape_v) throw Error("missing from the header", what, "", "shape");

  if (descr->kind == PyValue::List)
    throw Error("structured (record) dtypes are not supported", what, "", "descr");
  if (descr->kind != PyValue::Str) throw Error("expected a string", what, "", "descr");
  const SrcType st = parse_descr(descr->s, what);

  bool fortran_order;
  if (fortran->kind == PyValue::Bool)
    fortran_order = fortran->b;
  else if (fortran->kind == PyValue::Int && (fortran->i == 0 || fortran->i == 1))
    fortran_order = fortran->i == 1;
  else
    throw Error("expected True or False", what, "", "fortran_order");

  if (shape_v->kind != PyValue::Tuple && shape_v->kind != PyValue::List)
    throw Error("expected a tuple of integers", what, "", "shape");
  Shape shape;
  for (const PyValue& d : shape_v->items) {
    if (d.kind != PyValue::Int) throw Error("expected a tuple of integers", what, "", "shape");
    if (d.i < 0) throw Error("negative dimension " + std::to_string(d.i), what, "", "shape");
    shape.push_back(d.i);
  }
  int64_t numel;
  try {
    numel = shape_numel(shape);
  } catch (const Error& e) {
    throw Error(e.message(), what, "", "shape");
  }
  const size_t avail = size - data_off;
  if (static_cast<uint64_t>(numel) > avail / st.size)
    throw Error("truncated: shape " + shape_str(shape) + " of '" + descr->s + "' needs " +
                    (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / st.size
                         ? std::string("more than 2^64")
                         : std::to_string(static_cast<uint64_t>(numel) * st.size)) +
                    " bytes of data, the file has " + std::to_string(avail),
                what, "", "data");

  Shape stored = shape;
  if (fortran_order) stored.assign(shape.rbegin(), shape.rend());
  Tensor t;
  try {
    t = Tensor(st.dst, stored);
  } catch (const Error& e) {
    throw Error(e.message(), what, "", "shape");
  }
  decode_data(b + data_off, numel, st, t, what);
  if (fortran_order && t.rank() > 1) {
    std::vector<int> perm(static_cast<size_t>(t.rank()));
    for (int i = 0; i < t.rank(); ++i) perm[static_cast<size_t>(i)] = t.rank() - 1 - i;
    t = transpose(t, perm);
  }
  return t;
}

Tensor read_npy(const std::string& path) {
  const std::string bytes = read_file(path, "a .npy/.npz file");
  return parse_npy(bytes.data(), bytes.size(), path);
}

std::string encode_npy(const Tensor& tensor) {
  if (!tensor.defined()) throw Error("cannot write an undefined tensor as .npy");
  const Tensor t = tensor.dtype() == DType::bf16 ? tensor.to(DType::f32) : tensor;
  // The header exactly as numpy 1.24's np.save writes it (format.py, _write_array_header).
  std::string dict = std::string("{'descr': '") + descr_of(t.dtype()) +
                     "', 'fortran_order': False, 'shape': " + shape_repr(t.shape()) + ", }";
  if (!t.shape().empty()) {
    const size_t digits = std::to_string(t.shape()[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  const size_t hlen = dict.size() + 1;  // + '\n'
  size_t len_size = 2;
  size_t pad = kArrayAlign - (kMagicLen + 2 + len_size + hlen) % kArrayAlign;
  if (hlen + pad > 0xffff) {  // too long for v1: numpy switches to v2
    len_size = 4;
    pad = kArrayAlign - (kMagicLen + 2 + len_size + hlen) % kArrayAlign;
  }
  const uint64_t total_hlen = hlen + pad;
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(len_size == 2 ? 1 : 2);
  out += '\0';
  for (size_t k = 0; k < len_size; ++k) out += static_cast<char>((total_hlen >> (8 * k)) & 0xff);
  out += dict;
  out.append(pad, ' ');
  out += '\n';

  const size_t es = dtype_size(t.dtype());
  const size_t off = out.size();
  out.resize(off + t.nbytes());
  auto* dst = reinterpret_cast<unsigned char*>(out.data() + off);
  const auto* src = static_cast<const unsigned char*>(t.raw());
  if (t.dtype() == DType::boolean) {
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = src[i] ? 1 : 0;
  } else if (kHostLittle || es == 1) {
    if (t.nbytes()) std::memcpy(dst, src, t.nbytes());
  } else {
    for (int64_t i = 0; i < t.numel(); ++i)
      for (size_t k = 0; k < es; ++k) dst[i * es + k] = src[i * es + (es - 1 - k)];
  }
  return out;
}

void write_npy(const std::string& path, const Tensor& t) {
  std::string bytes;
  try {
    bytes = encode_npy(t);
  } catch (const Error& e) {
    throw e.with_file(path);
  }
  write_file(path, bytes);
}

// -----------------------------------------------------------------------------------------------
// .npz

std::map<std::string, Tensor> read_npz(const std::string& path) {
  int err = 0;
  zip_t* za = zip_open(path.c_str(), ZIP_RDONLY, &err);
  if (!za) throw Error("cannot open as a .npz (zip) archive: " + zip_error_text(err), path);
  std::unique_ptr<zip_t, void (*)(zip_t*)> guard(za, zip_discard);

  std::map<std::string, Tensor> out;
  const zip_int64_t n = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) != 0 ||
        !(st.valid & ZIP_STAT_NAME))
      throw Error("cannot read zip entry " + std::to_string(i) + ": " + zip_strerror(za), path);
    const std::string name = st.name;
    if (!name.empty() && name.back() == '/') continue;  // a directory entry
    const std::string what = path + " (member '" + name + "')";

    zip_file_t* zf = zip_fopen_index(za, static_cast<zip_uint64_t>(i), 0);
    if (!zf) throw Error(std::string("cannot open the member: ") + zip_strerror(za), what);
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> fguard(zf, zip_fclose);
    std::string buf;
    if (st.valid & ZIP_STAT_SIZE)
      buf.reserve(static_cast<size_t>(std::min<zip_uint64_t>(st.size, 1u << 26)));
    char chunk[1 << 16];
    while (true) {
      const zip_int64_t got = zip_fread(zf, chunk, sizeof chunk);
      if (got < 0)
        throw Error(std::string("cannot read the member: ") + zip_file_strerror(zf), what, "",
                    "data");
      if (got == 0) break;
      buf.append(chunk, static_cast<size_t>(got));
    }
    if ((st.valid & ZIP_STAT_SIZE) && buf.size() != st.size)
      throw Error("member has " + std::to_string(buf.size()) + " bytes, the archive says " +
                      std::to_string(st.size),
                  what, "", "data");

    std::string key = name;
    if (key.size() >= 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    Tensor t = parse_npy(buf.data(), buf.size(), what);
    if (!out.emplace(key, std::move(t)).second)
      throw Error("two members have the key '" + key + "'", what);
  }
  return out;
}

void write_npz(const std::string& path, const std::map<std::string, Tensor>& arrays,
               bool compress) {
  if (arrays.empty()) {
    // libzip removes archives without entries; numpy writes (and reads) an empty zip.
    write_file(path, std::string("PK\x05\x06", 4) + std::string(18, '\0'));
    return;
  }
  std::vector<std::string> blobs;  // must stay alive (and unmoved) until zip_close
  blobs.reserve(arrays.size());
  for (const auto& [key, t] : arrays) {
    try {
      blobs.push_back(encode_npy(t));
    } catch (const Error& e) {
      throw Error(e.message(), path + " (member '" + key + ".npy')");
    }
  }
  int err = 0;
  zip_t* za = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!za) throw Error("cannot create the .npz archive: " + zip_error_text(err), path);
  auto fail = [&](const std::string& msg, const std::string& member) {
    std::string text = msg + ": " + zip_strerror(za);
    zip_discard(za);
    throw Error(text, member.empty() ? path : path + " (member '" + member + "')");
  };
  size_t k = 0;
  for (const auto& kv : arrays) {
    const std::string member = kv.first + ".npy";
    const std::string& blob = blobs[k++];
    zip_source_t* src = zip_source_buffer(za, blob.data(), blob.size(), 0);
    if (!src) fail("cannot add the member", member);
    const zip_int64_t idx = zip_file_add(za, member.c_str(), src, ZIP_FL_OVERWRITE);
    if (idx < 0) {
      zip_source_free(src);
      fail("cannot add the member", member);
    }
    if (zip_set_file_compression(za, static_cast<zip_uint64_t>(idx),
                                 compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0)
      fail("cannot set the compression method", member);
  }
  if (zip_close(za) != 0) fail("cannot write the archive", "");
}

}  // namespace anvil
