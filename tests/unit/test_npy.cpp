// .npy / .npz: files made by real numpy (tests/data/npy/make.py), round trips, hostile input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/npy.h"
#include "anvil/tensor.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

std::string data(const std::string& name) {
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/npy/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// A scratch directory, removed when the test binary exits.
struct TmpDir {
  fs::path path;
  TmpDir() : path(fs::temp_directory_path() / ("anvil_npy_test_" + std::to_string(getpid()))) {
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
fs::path tmpdir() {
  static TmpDir d;
  return d.path;
}

std::vector<double> arange(int n, double scale = 1.0, double offset = 0.0) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(i * scale + offset);
  return v;
}

// Expects an anvil::Error whose field is `field` and whose text names `file_part`.
template <class F>
void expect_error(F&& f, const std::string& field, const std::string& file_part) {
  try {
    f();
    ADD_FAILURE() << "expected anvil::Error (field '" << field << "')";
  } catch (const Error& e) {
    if (!field.empty()) {
      EXPECT_EQ(e.field(), field) << e.what();
    }
    EXPECT_NE(std::string(e.what()).find(file_part), std::string::npos) << e.what();
  }
}

void expect_tensor(const Tensor& t, DType dt, const Shape& shape, const std::vector<double>& v) {
  EXPECT_EQ(t.dtype(), dt) << dtype_name(t.dtype());
  EXPECT_EQ(t.shape(), shape) << shape_str(t.shape());
  ASSERT_EQ(t.numel(), static_cast<int64_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(t.get(static_cast<int64_t>(i)), v[i]) << i;
}

}  // namespace

// --- files written by numpy 1.24 (values: see the comments in make.py) ------------------------

TEST(Npy, NumpyFloatFiles) {
  expect_tensor(read_npy(data("f2.npy")), DType::f16, {2, 3}, arange(6, 0.5));
  expect_tensor(read_npy(data("f4.npy")), DType::f32, {2, 3}, arange(6, 1, -2.5));
  expect_tensor(read_npy(data("f8.npy")), DType::f64, {5}, arange(5, 0.25));
}

TEST(Npy, NumpyIntegerAndBoolFiles) {
  expect_tensor(read_npy(data("i1.npy")), DType::i8, {6}, arange(6, 1, -3));
  expect_tensor(read_npy(data("u1.npy")), DType::u8, {6}, arange(6, 1, 250));
  expect_tensor(read_npy(data("i2.npy")), DType::i16, {3, 2}, arange(6, -1000));
  expect_tensor(read_npy(data("i4.npy")), DType::i32, {6}, arange(6, 100000, -300000));
  Tensor i8 = read_npy(data("i8.npy"));
  ASSERT_EQ(i8.dtype(), DType::i64);
  EXPECT_EQ(i8.shape(), (Shape{5}));
  EXPECT_EQ(i8.to_int64s(),
            (std::vector<int64_t>{-(int64_t{1} << 62), -1, 0, 1, int64_t{1} << 62}));
  Tensor b = read_npy(data("b1.npy"));
  expect_tensor(b, DType::boolean, {2, 2}, {1, 0, 1, 1});
  const auto* raw = static_cast<const uint8_t*>(b.raw());
  EXPECT_EQ(raw[0], 1);
  EXPECT_EQ(raw[1], 0);
}

TEST(Npy, NumpyScalarsEmptyAndRank4) {
  expect_tensor(read_npy(data("scalar_f8.npy")), DType::f64, {}, {3.5});
  expect_tensor(read_npy(data("scalar_i4.npy")), DType::i32, {}, {-7});
  expect_tensor(read_npy(data("empty_f4.npy")), DType::f32, {0, 3}, {});
  expect_tensor(read_npy(data("rank4_f4.npy")), DType::f32, {2, 3, 4, 5}, arange(120));
}

TEST(Npy, UnsignedWidenToSigned) {
  expect_tensor(read_npy(data("u2.npy")), DType::i32, {3}, {0, 1, 65535});
  expect_tensor(read_npy(data("u4.npy")), DType::i64, {2}, {0, 4294967295.0});
  Tensor u8 = read_npy(data("u8.npy"));
  ASSERT_EQ(u8.dtype(), DType::i64);
  EXPECT_EQ(u8.to_int64s(), (std::vector<int64_t>{0, INT64_MAX}));
  expect_error([] { read_npy(data("u8_big.npy")); }, "data", "u8_big.npy");
  try {
    read_npy(data("u8_big.npy"));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("18446744073709551615"), std::string::npos) << e.what();
  }
}

TEST(Npy, BigEndianFiles) {
  expect_tensor(read_npy(data("be_f4.npy")), DType::f32, {2, 3}, arange(6, 1, -2.5));
  expect_tensor(read_npy(data("be_f2.npy")), DType::f16, {4}, arange(4, 0.25));
  expect_tensor(read_npy(data("be_f8.npy")), DType::f64, {3}, arange(3, -1.5));
  expect_tensor(read_npy(data("be_i2.npy")), DType::i16, {4}, arange(4, -300));
  expect_tensor(read_npy(data("be_i4.npy")), DType::i32, {4}, arange(4, 70000));
  Tensor i8 = read_npy(data("be_i8.npy"));
  ASSERT_EQ(i8.dtype(), DType::i64);
  const int64_t s = -(int64_t{1} << 40);
  EXPECT_EQ(i8.to_int64s(), (std::vector<int64_t>{0, s, 2 * s, 3 * s}));
  expect_tensor(read_npy(data("be_u2.npy")), DType::i32, {2}, {1, 65535});
}

TEST(Npy, FortranOrderIsTransposedToC) {
  expect_tensor(read_npy(data("fortran_f4.npy")), DType::f32, {2, 3, 4}, arange(24));
  expect_tensor(read_npy(data("fortran_i2.npy")), DType::i16, {2, 3}, arange(6));
  expect_tensor(read_npy(data("fortran_be_i4.npy")), DType::i32, {3, 2}, arange(6));
}

TEST(Npy, HeaderVersions2And3) {
  expect_tensor(read_npy(data("v2_i4.npy")), DType::i32, {3}, arange(3, 1, 10));
  expect_tensor(read_npy(data("v3_f4.npy")), DType::f32, {2, 2}, arange(4, 2));
  EXPECT_EQ(slurp(data("v2_i4.npy"))[6], 2);
  EXPECT_EQ(slurp(data("v3_f4.npy"))[6], 3);
}

// encode_npy reproduces np.save byte for byte (header text, growth padding, 64-byte alignment).
TEST(Npy, EncodeMatchesNumpyBytes) {
  for (const char* name :
       {"f2.npy", "f4.npy", "f8.npy", "i1.npy", "u1.npy", "i2.npy", "i4.npy", "i8.npy", "b1.npy",
        "scalar_f8.npy", "scalar_i4.npy", "empty_f4.npy", "rank4_f4.npy"}) {
    const std::string file = slurp(data(name));
    ASSERT_FALSE(file.empty()) << name;
    const std::string mine = encode_npy(read_npy(data(name)));
    EXPECT_EQ(mine, file) << name;
    // The data starts on a 64-byte boundary.
    const size_t hlen = static_cast<unsigned char>(mine[8]) | static_cast<unsigned char>(mine[9])
                                                                  << 8;
    EXPECT_EQ((10 + hlen) % 64, 0u) << name;
  }
}

TEST(Npy, NpzStoredAndDeflatedFromNumpy) {
  for (const char* name : {"savez.npz", "savez_compressed.npz"}) {
    SCOPED_TRACE(name);
    auto m = read_npz(data(name));
    ASSERT_EQ(m.size(), 3u);
    ASSERT_TRUE(m.count("a"));
    ASSERT_TRUE(m.count("dir/b:c"));
    ASSERT_TRUE(m.count("s"));
    expect_tensor(m["a"], DType::f32, {2, 3}, arange(6));
    expect_tensor(m["dir/b:c"], DType::i64, {3}, {1, -2, 3});
    expect_tensor(m["s"], DType::boolean, {}, {1});
  }
}

// --- round trips --------------------------------------------------------------------------------

TEST(Npy, RoundTripEveryDtypeAndShape) {
  const DType dtypes[] = {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i8,
                          DType::u8,  DType::i16, DType::i32,  DType::i64, DType::boolean};
  const Shape shapes[] = {{}, {0}, {1}, {5}, {2, 0, 3}, {2, 3}, {2, 3, 4}, {1, 2, 1, 3, 2}};
  int k = 0;
  for (DType dt : dtypes) {
    for (const Shape& shape : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + shape_str(shape));
      Tensor t(dt, shape);
      // Values that every dtype represents exactly: small signed integers and halves.
      for (int64_t i = 0; i < t.numel(); ++i) {
        double v = dt == DType::boolean ? (i % 3 != 0)
                   : dt == DType::u8    ? static_cast<double>((i * 37) % 256)
                   : is_float(dt)       ? (i - 3) * 0.5
                                        : static_cast<double>((i % 11) - 5);
        t.set(i, v);
      }
      const std::string path = (tmpdir() / ("rt" + std::to_string(k++) + ".npy")).string();
      write_npy(path, t);
      Tensor r = read_npy(path);
      EXPECT_EQ(r.dtype(), dt == DType::bf16 ? DType::f32 : dt);
      EXPECT_EQ(r.shape(), shape);
      ASSERT_EQ(r.numel(), t.numel());
      for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(r.get(i), t.get(i)) << i;
      // parse_npy on the encoded bytes gives the same.
      const std::string bytes = encode_npy(t);
      EXPECT_EQ(bytes, slurp(path));
      Tensor p = parse_npy(bytes.data(), bytes.size(), "mem");
      EXPECT_EQ(p.shape(), shape);
    }
  }
}

TEST(Npy, ExtremeValuesRoundTrip) {
  Tensor i64 = Tensor::from_vector<int64_t>({3}, {INT64_MIN, INT64_MAX, 0});
  write_npy((tmpdir() / "ext_i64.npy").string(), i64);
  EXPECT_EQ(read_npy((tmpdir() / "ext_i64.npy").string()).to_int64s(), i64.to_int64s());
  Tensor f = Tensor::from_vector<float>({4}, {INFINITY, -INFINITY, 1e-45f, 3.4028235e38f});
  write_npy((tmpdir() / "ext_f32.npy").string(), f);
  Tensor g = read_npy((tmpdir() / "ext_f32.npy").string());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(g.data<float>()[i], f.data<float>()[i]);
  Tensor n = Tensor::from_vector<double>({1}, {NAN});
  write_npy((tmpdir() / "ext_nan.npy").string(), n);
  EXPECT_TRUE(std::isnan(read_npy((tmpdir() / "ext_nan.npy").string()).data<double>()[0]));
}

TEST(Npy, Bf16IsWrittenAsFloat32) {
  Tensor t(DType::bf16, {3});
  t.set(0, 1.0);
  t.set(1, -2.5);
  t.set(2, 3.140625);  // exactly representable in bf16
  const std::string bytes = encode_npy(t);
  EXPECT_NE(bytes.find("'descr': '<f4'"), std::string::npos);
  Tensor r = parse_npy(bytes.data(), bytes.size(), "mem");
  expect_tensor(r, DType::f32, {3}, {1.0, -2.5, 3.140625});
}

TEST(Npy, NpzRoundTripStoredAndDeflated) {
  std::map<std::string, Tensor> arrays;
  arrays["w"] = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  arrays["layer/0:kernel"] = Tensor::from_vector<int32_t>({3}, {-1, 0, 7});
  arrays["scalar"] = Tensor::scalar<double>(0.125);
  arrays["empty"] = Tensor(DType::i64, {0, 4});
  arrays["big"] = Tensor(DType::f32, {1000});  // zeros: compresses well
  for (bool compress : {false, true}) {
    SCOPED_TRACE(compress ? "deflate" : "store");
    const std::string path = (tmpdir() / (compress ? "c.npz" : "s.npz")).string();
    write_npz(path, arrays, compress);
    auto m = read_npz(path);
    ASSERT_EQ(m.size(), arrays.size());
    for (const auto& [k, t] : arrays) {
      ASSERT_TRUE(m.count(k)) << k;
      EXPECT_EQ(m[k].dtype(), t.dtype()) << k;
      EXPECT_EQ(m[k].shape(), t.shape()) << k;
      EXPECT_EQ(m[k].to_doubles(), t.to_doubles()) << k;
    }
    if (compress)
      EXPECT_LT(fs::file_size(path), 4000u);  // 'big' alone is 4000 bytes raw
    else
      EXPECT_GT(fs::file_size(path), 4000u);
  }
  // Overwriting an existing archive replaces it.
  const std::string path = (tmpdir() / "s.npz").string();
  write_npz(path, {{"only", Tensor::scalar<int8_t>(3)}});
  auto m = read_npz(path);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m["only"].get(0), 3);
}

TEST(Npy, UnwritablePathsThrowNamingTheFile) {
  const Tensor t = Tensor::from_vector<float>({2}, {1, 2});
  expect_error([&] { write_npy("/nonexistent_dir_anvil/x.npy", t); }, "", "x.npy");
  expect_error([&] { write_npz("/nonexistent_dir_anvil/x.npz", {{"a", t}}, false); }, "", "x.npz");
  expect_error([&] { write_npz("/nonexistent_dir_anvil/y.npz", {{"a", t}}, true); }, "", "y.npz");
  expect_error([&] { write_npy((tmpdir() / "undef.npy").string(), Tensor()); }, "", "undef.npy");
}

TEST(Npy, EmptyNpz) {
  const std::string path = (tmpdir() / "empty.npz").string();
  write_npz(path, {});
  EXPECT_TRUE(read_npz(path).empty());
}

// Files written by anvil, read back by real numpy (skipped where Debian's numpy is missing;
// EncodeMatchesNumpyBytes covers the same ground without Python).
TEST(Npy, NumpyReadsWhatAnvilWrites) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with numpy not available";
  const fs::path d = tmpdir();
  write_npy((d / "x.npy").string(), Tensor::from_vector<int16_t>({2, 2}, {1, -2, 300, -400}));
  Tensor bf(DType::bf16, {2});
  bf.set(0, 0.5);
  bf.set(1, -8);
  write_npy((d / "bf.npy").string(), bf);
  std::map<std::string, Tensor> arrays{{"a/b:c", Tensor::from_vector<float>({3}, {1, 2, 3})},
                                       {"t", Tensor::scalar<bool>(true)}};
  write_npz((d / "s.npz").string(), arrays, false);
  write_npz((d / "c.npz").string(), arrays, true);
  const std::string script =
      "import numpy as np, sys\n"
      "d = sys.argv[1]\n"
      "x = np.load(d + '/x.npy')\n"
      "assert x.dtype == np.int16 and x.tolist() == [[1, -2], [300, -400]], x\n"
      "b = np.load(d + '/bf.npy')\n"
      "assert b.dtype == np.float32 and b.tolist() == [0.5, -8.0], b\n"
      "for n in ('s', 'c'):\n"
      "    z = np.load(d + '/' + n + '.npz')\n"
      "    assert sorted(z.files) == ['a/b:c', 't'], z.files\n"
      "    assert z['a/b:c'].dtype == np.float32 and z['a/b:c'].tolist() == [1, 2, 3]\n"
      "    assert z['t'].dtype == np.bool_ and z['t'].shape == () and bool(z['t'])\n";
  {
    std::ofstream f(d / "check.py");
    f << script;
  }
  const std::string cmd =
      "/usr/bin/python3 " + (d / "check.py").string() + " " + d.string() + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// --- hostile input ------------------------------------------------------------------------------

namespace {
std::string npy_with_header(const std::string& dict, const std::string& payload = "",
                            int version = 1) {
  std::string h = dict;
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(version);
  out += '\0';
  const size_t n = h.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (version >= 2) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 24) & 0xff);
  }
  return out + h + payload;
}
Tensor parse(const std::string& bytes) {
  return parse_npy(bytes.data(), bytes.size(), "hostile.npy");
}
}  // namespace

TEST(Npy, HeaderParsingIsRobust) {
  // Double quotes, no trailing comma, odd spacing, key order, Python 2 long suffix, extra keys.
  expect_tensor(
      parse(npy_with_header("{\"shape\":(2L,),\"fortran_order\":False,\"descr\":\"<i2\"}\n",
                            std::string("\x01\x00\x02\x00", 4))),
      DType::i16, {2}, {1, 2});
  expect_tensor(parse(npy_with_header("{'descr': '|u1', 'fortran_order': 0, 'shape': [3], "
                                      "'extra': None}",
                                      "abc")),
                DType::u8, {3}, {97, 98, 99});
  expect_tensor(parse(npy_with_header("{'descr':'<f8','fortran_order':True,'shape':()}",
                                      std::string("\0\0\0\0\0\0\xf0\x3f", 8))),
                DType::f64, {}, {1.0});
  // '=' (native) and '?' (bool) spellings.
  expect_tensor(parse(npy_with_header("{'descr': '?', 'fortran_order': False, 'shape': (2,)}",
                                      std::string("\x00\x07", 2))),
                DType::boolean, {2}, {0, 1});
}

TEST(Npy, HostileHeadersThrow) {
  const std::string f4 = std::string(16, '\0');
  expect_error([] { parse("garbage"); }, "header", "hostile.npy");
  expect_error([] { parse(""); }, "header", "hostile.npy");
  expect_error([] { parse(std::string("\x93NUMPY\x09\x00\x10\x00", 10)); }, "version",
               "hostile.npy");
  // Header length beyond the end of the file.
  std::string b = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}");
  b[8] = '\xff';
  b[9] = '\x7f';
  expect_error([&] { parse(b); }, "header", "hostile.npy");
  std::string v2 = npy_with_header("{}", "", 2);
  v2[11] = '\x7f';
  expect_error([&] { parse(v2); }, "header", "hostile.npy");
  expect_error([] { parse(std::string("\x93NUMPY\x01\x00", 8)); }, "header", "hostile.npy");
  // Malformed dictionaries.
  for (const char* h : {"", "{", "{'descr'", "{'descr': '<f4'", "{'descr': '<f4',, }", "[1, 2]",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing",
                        "{1: 2}", "{'shape': (99999999999999999999999,)}", "{'a': 'unterminated"})
    expect_error([&] { parse(npy_with_header(h, f4)); }, "header", "hostile.npy");
  // Deep nesting does not overflow the stack.
  expect_error([&] { parse(npy_with_header(std::string(100000, '('), f4)); }, "header",
               "hostile.npy");
  // Missing or wrong fields.
  expect_error([&] { parse(npy_with_header("{'fortran_order': False, 'shape': (1,)}", f4)); },
               "descr", "hostile.npy");
  expect_error([&] { parse(npy_with_header("{'descr': '<f4', 'shape': (1,)}", f4)); },
               "fortran_order", "hostile.npy");
  expect_error([&] { parse(npy_with_header("{'descr': '<f4', 'fortran_order': False}", f4)); },
               "shape", "hostile.npy");
  expect_error(
      [&] { parse(npy_with_header("{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,)}", f4)); },
      "fortran_order", "hostile.npy");
  expect_error(
      [&] { parse(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': 4}", f4)); },
      "shape", "hostile.npy");
  expect_error(
      [&] {
        parse(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", f4));
      },
      "shape", "hostile.npy");
  expect_error(
      [&] {
        parse(npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}", f4));
      },
      "shape", "hostile.npy");
  // Shape overflow of int64.
  expect_error(
      [&] {
        parse(
            npy_with_header("{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (4294967296, 4294967296, 4294967296)}",
                            f4));
      },
      "shape", "hostile.npy");
}

TEST(Npy, UnknownDtypesThrow) {
  const std::string pay(64, '\0');
  for (const char* d :
       {"<c8", "<c16", "<U3", "|S4", "|O", "<M8[ns]", "|V2", "<f16", "<x4", "", "<", "f"}) {
    SCOPED_TRACE(d);
    expect_error(
        [&] {
          parse(npy_with_header(
              std::string("{'descr': '") + d + "', 'fortran_order': False, 'shape': (1,)}", pay));
        },
        "descr", "hostile.npy");
  }
  expect_error(
      [&] {
        parse(npy_with_header(
            "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,)}", pay));
      },
      "descr", "hostile.npy");
}

TEST(Npy, TruncatedDataAndAbsurdShapesThrow) {
  // A shape far larger than the bytes present is rejected before any allocation.
  expect_error(
      [] {
        parse(npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000)}",
            std::string(8, '\0')));
      },
      "data", "hostile.npy");
  expect_error(
      [] {
        parse(npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}", ""));
      },
      "data", "hostile.npy");
  // A zero-size array with huge other dimensions is fine.
  expect_tensor(parse(npy_with_header(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775807)}")),
                DType::f32, {0, INT64_MAX}, {});
  // Every truncation of a real file: a clean anvil::Error, never a crash or a wrong read.
  const std::string file = slurp(data("rank4_f4.npy"));
  for (size_t n = 0; n < file.size(); ++n) {
    try {
      parse_npy(file.data(), n, "cut.npy");
      ADD_FAILURE() << "truncated to " << n << " bytes was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.npy"), std::string::npos);
    }
  }
  // The file on disk.
  const std::string path = (tmpdir() / "truncated.npy").string();
  {
    std::ofstream f(path, std::ios::binary);
    f.write(file.data(), static_cast<std::streamsize>(file.size() - 3));
  }
  expect_error([&] { read_npy(path); }, "data", "truncated.npy");
  expect_error([] { read_npy(data("does_not_exist.npy")); }, "", "does_not_exist.npy");
  expect_error([] { read_npy(ANVIL_SOURCE_DIR "/tests/data/npy"); }, "",
               "tests/data/npy");  // a directory
}

TEST(Npy, RandomCorruptionNeverCrashes) {
  const std::string base = slurp(data("fortran_be_i4.npy"));
  uint32_t seed = 12345;
  auto rnd = [&] { return seed = seed * 1664525u + 1013904223u; };
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = base;
    const int flips = 1 + static_cast<int>(rnd() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t pos = rnd() % 128;  // within the header
      b[pos] = static_cast<char>(rnd() & 0xff);
    }
    try {
      Tensor t = parse_npy(b.data(), b.size(), "fuzz.npy");
      EXPECT_LE(t.nbytes(), b.size());
    } catch (const Error&) {
    }
  }
}

TEST(Npy, HostileNpzThrows) {
  expect_error([] { read_npz(data("f4.npy")); }, "", "f4.npy");  // not a zip
  expect_error([] { read_npz(data("missing.npz")); }, "", "missing.npz");
  expect_error([] { read_npz(ANVIL_SOURCE_DIR "/tests/data/npy"); }, "", "tests/data/npy");
  // A member that is not a .npy: the error names the archive and the member.
  try {
    read_npz(data("bad_member.npz"));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("bad_member.npz"), std::string::npos) << w;
    EXPECT_NE(w.find("broken.npy"), std::string::npos) << w;
  }
  // Truncated archives and corrupted deflate streams.
  const std::string z = slurp(data("savez_compressed.npz"));
  for (size_t n : {size_t{0}, size_t{10}, z.size() / 2, z.size() - 1}) {
    const std::string path = (tmpdir() / "cut.npz").string();
    {
      std::ofstream f(path, std::ios::binary);
      f.write(z.data(), static_cast<std::streamsize>(n));
    }
    expect_error([&] { read_npz(path); }, "", "cut.npz");
  }
  int errors = 0;
  for (size_t pos = 40; pos < 200; pos += 7) {
    std::string c = z;
    c[pos] = static_cast<char>(c[pos] ^ 0x5a);
    const std::string path = (tmpdir() / "flip.npz").string();
    {
      std::ofstream f(path, std::ios::binary);
      f.write(c.data(), static_cast<std::streamsize>(c.size()));
    }
    try {
      read_npz(path);
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("flip.npz"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 0);  // the CRC check catches damaged member data
}
