// The sandboxed HDF5 reader of the Keras importer (src/import/keras/hdf5_file.h): libhdf5
// runs in a child process; its snapshot, slabbed reads, crashes/hangs/garbage of the child,
// truncated and damaged files, concurrent imports. Files are written with the HDF5 C API.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <zip.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "import/keras/hdf5_file.h"
#include "keras_formats_test_util.h"

using namespace anvil;
using namespace anvil::keras_formats_test;

namespace {

// ---- the sandboxed HDF5 reader (src/import/keras/hdf5_file.h): libhdf5 runs in a child ----

class ScopedEnv {
 public:
  ScopedEnv(const char* k, const std::string& v) : k_(k) { ::setenv(k, v.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(k_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* k_;
};

// Imports `files`, expecting an anvil::Error; returns it.
Error import_error(const std::vector<std::string>& files) {
  try {
    Graph g = import_model(files);
    Session s(g);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error("");
}

void write_file(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

bool contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

// In this process, with plain libhdf5 (trusted fixtures only): fixed-length string arrays and
// float datasets, as the reference the child's snapshot is compared with.
std::vector<std::string> direct_strings(hid_t f, const std::string& obj, const std::string& name) {
  hid_t a = H5Aopen_by_name(f, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  std::vector<std::string> r;
  if (n > 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) <= 0) {
    size_t sz = H5Tget_size(t);
    std::string buf(sz * static_cast<size_t>(n), '\0');
    H5Aread(a, t, buf.data());
    for (hssize_t i = 0; i < n; ++i)
      r.emplace_back(buf.data() + i * static_cast<hssize_t>(sz),
                     strnlen(buf.data() + i * static_cast<hssize_t>(sz), sz));
  }
  H5Sclose(sp);
  H5Tclose(t);
  H5Aclose(a);
  return r;
}

TEST(KerasH5Reader, SnapshotEqualsLibhdf5ReadInProcess) {
  for (const char* fx :
       {"resnet_small/model.h5", "mobilenet_small/model.h5", "vgg_small/weights.h5"}) {
    SCOPED_TRACE(fx);
    std::string file = fixture(fx);
    auto h5 = keras::H5File::open(file);
    hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    std::string root = h5.is_group("/model_weights") ? "/model_weights" : "/";
    auto layers = h5.attr_strings(root, "layer_names");
    EXPECT_EQ(layers, direct_strings(f, root, "layer_names"));
    int checked = 0;
    for (const auto& l : layers) {
      std::string g = root + "/" + l;
      auto names = h5.attr_strings(g, "weight_names");
      EXPECT_EQ(names, direct_strings(f, g, "weight_names"));
      for (const auto& n : names) {
        Tensor t = h5.read_f32(g + "/" + n);
        hid_t d = H5Dopen2(f, (g + "/" + n).c_str(), H5P_DEFAULT);
        std::vector<float> want(static_cast<size_t>(t.numel()));
        ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, want.data()), 0);
        H5Dclose(d);
        ASSERT_EQ(std::memcmp(want.data(), t.raw(), t.nbytes()), 0) << g << "/" << n;
        ++checked;
      }
    }
    EXPECT_GT(checked, 10);
    H5Fclose(f);
  }
  // the Keras version and the model config come through too
  auto h5 = keras::H5File::open(fixture("dense_stack/model.h5"));
  EXPECT_EQ(h5.attr_string("/", "keras_version"), "2.3.1");
  EXPECT_TRUE(contains(h5.attr_string("/", "model_config"), "\"Sequential\""));
}

// A dataset larger than the child's 16 MiB slab, stored as int32: read in several slabs and
// converted to float32 by libhdf5 in the child.
TEST(KerasH5Reader, LargeIntegerDatasetInSlabs) {
  std::string path = tmpdir("slabs") + "/big.h5";
  const hsize_t dims[2] = {1100, 4001};
  std::vector<int32_t> v(dims[0] * dims[1]);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i % 100003) - 50000;
  {
    H5Writer w(path);
    w.group("model_weights/big/big");
    w.attr_strings("/model_weights", "layer_names", {"big"});
    w.attr_strings("/model_weights/big", "weight_names", {"big/kernel:0"});
  }
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t sp = H5Screate_simple(2, dims, nullptr);
  hid_t d = H5Dcreate2(f, "/model_weights/big/big/kernel:0", H5T_STD_I32LE, sp, H5P_DEFAULT,
                       H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d);
  H5Sclose(sp);
  H5Fclose(f);
  auto h5 = keras::H5File::open(path);
  Tensor t = h5.read_f32("model_weights/big/big/kernel:0");
  ASSERT_EQ(t.shape(), (Shape{1100, 4001}));
  const float* p = t.data<float>();
  size_t bad = 0;
  for (size_t i = 0; i < v.size(); ++i) bad += p[i] != static_cast<float>(v[i]);
  EXPECT_EQ(bad, 0u);
}

// ANVIL_KERAS_H5_FAULT makes the child abort / hang / write garbage (a stand-in for libhdf5
// crashing or looping on a hostile file): the importer's process reports an Error.
TEST(KerasH5Reader, ChildCrashIsAnErrorNamingTheFile) {
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "abort");
  std::string f = fixture("dense_stack/model.h5");
  Error e = import_error({f});
  EXPECT_EQ(e.file(), f) << e.what();
  EXPECT_TRUE(contains(e.what(), "libhdf5 crashed")) << e.what();
  EXPECT_TRUE(contains(e.what(), "signal 6")) << e.what();
}

TEST(KerasH5Reader, ChildCrashAtAWeightNamesLayerAndWeight) {
  std::string f = fixture("dense_stack/model.h5");  // Theano-era names: "dense_2/kernel"
  {
    ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "abort@dense_2/kernel");
    Error e = import_error({f});
    EXPECT_EQ(e.file(), f) << e.what();
    EXPECT_EQ(e.node(), "dense_2") << e.what();
    EXPECT_EQ(e.field(), "dense_2/kernel") << e.what();
    EXPECT_TRUE(contains(e.what(), "while reading weight 'dense_2/kernel' of layer 'dense_2'"))
        << e.what();
  }
  // the same in a .keras zip (Keras 3 layout): the error names the zip's weights file and layer
  std::string d = tmpdir("k3fault");
  std::string wpath = d + "/model.weights.h5";
  {
    H5Writer w(wpath);
    auto ws = fixture_weights(f, "dense_1");
    for (size_t i = 0; i < ws.size(); ++i)
      w.dataset("layers/dense_1/vars/" + std::to_string(i), ws[i]);
  }
  std::string kpath = d + "/m.keras";
  write_zip(kpath, {{"config.json", R"({"class_name": "Sequential", "config": {"layers": []}})"},
                    {"model.weights.h5", read_file(wpath)}});
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "abort@vars/1");
  Error e = import_error({kpath});
  EXPECT_EQ(e.file(), kpath + ":model.weights.h5") << e.what();
  EXPECT_EQ(e.node(), "dense_1") << e.what();
  EXPECT_EQ(e.field(), "/layers/dense_1/vars/1") << e.what();
}

TEST(KerasH5Reader, HangingChildIsKilledAfterTheDeadline) {
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "hang@dense_3");
  ScopedEnv timeout("ANVIL_KERAS_H5_TIMEOUT_S", "0.5");
  std::string f = fixture("dense_stack/model.h5");
  auto t0 = std::chrono::steady_clock::now();
  Error e = import_error({f});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 10.0);
  EXPECT_EQ(e.file(), f) << e.what();
  EXPECT_EQ(e.node(), "dense_3") << e.what();
  EXPECT_TRUE(contains(e.what(), "did not finish")) << e.what();
  EXPECT_TRUE(contains(e.what(), "within 0.5 s")) << e.what();
}

TEST(KerasH5Reader, GarbageFromTheChildIsAnError) {
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "garbage@model_weights");
  std::string f = fixture("dense_stack/model.h5");
  Error e = import_error({f});
  EXPECT_EQ(e.file(), f) << e.what();
  EXPECT_TRUE(contains(e.what(), "malformed data")) << e.what();
}

// Every prefix of a real model file is an Error naming the file, never a crash or a hang.
TEST(KerasH5Reader, TruncatedFilesAreErrors) {
  std::string src = read_file(fixture("resnet_small/model.h5"));
  std::string d = tmpdir("trunc");
  for (double frac : {0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.9999}) {
    std::string p = d + "/t" + std::to_string(static_cast<int>(frac * 10000)) + ".h5";
    write_file(p, src.substr(0, static_cast<size_t>(static_cast<double>(src.size()) * frac)));
    Error e = import_error({p});
    EXPECT_EQ(e.file(), p) << e.what();
  }
  // and inside a .keras zip
  std::string kpath = d + "/t.keras";
  write_zip(kpath, {{"config.json", R"({"class_name": "Sequential", "config": {"layers": []}})"},
                    {"model.weights.h5", src.substr(0, src.size() / 2)}});
  Error e = import_error({kpath});
  EXPECT_EQ(e.file(), kpath + ":model.weights.h5") << e.what();
}

// A weight listed in weight_names that the file lacks: the error names the layer and weight.
TEST(KerasH5Reader, MissingWeightIsNamed) {
  std::string d = tmpdir("missingw");
  json ls = {
      layer("Dense",
            {{"name", "dense"}, {"units", 3}, {"use_bias", true}, {"batch_input_shape", {1, 4}}})};
  std::string p = d + "/m.h5";
  write_keras2(p, seq(ls), {{"dense", {{"kernel", ramp({4, 3}, 0.1, 0.2)}}}}, names_of(ls));
  {  // weight_names lists a bias the file does not hold
    hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(H5Adelete_by_name(f, "/model_weights/dense", "weight_names", H5P_DEFAULT), 0);
    const char names[2][16] = {"dense/kernel:0", "dense/bias:0"};
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, 16);
    hsize_t n = 2;
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate_by_name(f, "/model_weights/dense", "weight_names", ty, sp, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, ty, names);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(ty);
    H5Fclose(f);
  }
  Error e = import_error({p});
  EXPECT_EQ(e.file(), p) << e.what();
  EXPECT_EQ(e.node(), "dense") << e.what();
  EXPECT_EQ(e.field(), "dense/bias:0") << e.what();
  EXPECT_TRUE(contains(e.what(), "missing")) << e.what();
}

// A compressed weight whose bytes are damaged: libhdf5 opens it but cannot read it; the error
// (sent by the child in the middle of the dataset's stream) names the layer and the weight.
TEST(KerasH5Reader, CorruptCompressedWeightIsNamed) {
  std::string d = tmpdir("corruptw");
  json ls = {layer(
      "Dense",
      {{"name", "dense"}, {"units", 64}, {"use_bias", false}, {"batch_input_shape", {1, 64}}})};
  std::string p = d + "/m.h5";
  write_keras2(p, seq(ls), {}, names_of(ls));  // the layer group with an empty weight_names
  haddr_t addr = 0;
  hsize_t size = 0;
  {
    hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(H5Adelete_by_name(f, "/model_weights/dense", "weight_names", H5P_DEFAULT), 0);
    const char names[1][16] = {"dense/kernel:0"};
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, 16);
    hsize_t one = 1;
    hid_t sp1 = H5Screate_simple(1, &one, nullptr);
    hid_t a = H5Acreate_by_name(f, "/model_weights/dense", "weight_names", ty, sp1, H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, ty, names);
    H5Aclose(a);
    H5Sclose(sp1);
    H5Tclose(ty);
    hsize_t dims[2] = {64, 64};
    hid_t sp = H5Screate_simple(2, dims, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, dims);
    H5Pset_deflate(dcpl, 6);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(f, "/model_weights/dense/dense/kernel:0", H5T_IEEE_F32LE, sp, lcpl, dcpl,
                          H5P_DEFAULT);
    Tensor k = ramp({64, 64}, 0.01, 0.3);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, k.raw());
    H5Dflush(ds);
    hsize_t offset[2];
    unsigned mask = 0;
    ASSERT_GE(H5Dget_chunk_info(ds, sp, 0, offset, &mask, &addr, &size), 0);
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
  }
  ASSERT_GT(size, 16u);
  {  // overwrite the compressed chunk with bytes that do not inflate
    std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(addr));
    std::string junk(static_cast<size_t>(size), '\xA5');
    io.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  Error e = import_error({p});
  EXPECT_EQ(e.file(), p) << e.what();
  EXPECT_EQ(e.node(), "dense") << e.what();
  EXPECT_EQ(e.field(), "dense/kernel:0") << e.what();
  EXPECT_TRUE(contains(e.what(), "cannot read HDF5 dataset")) << e.what();
}

// fork() from a process with other threads running (imports on two threads at once, a third
// thread allocating): every import succeeds.
TEST(KerasH5Reader, ConcurrentImportsFromThreads) {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop) {
      std::vector<std::string> v(64, std::string(100, 'x'));
      (void)v;
    }
  });
  std::atomic<int> ok{0};
  auto work = [&](const char* fx) {
    for (int i = 0; i < 4; ++i) {
      try {
        Graph g = import_model({fixture(fx)});
        ok += g.nodes.empty() ? 0 : 1;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
  };
  std::thread a(work, "resnet_small/model.h5"), b(work, "mobilenet_small/model.h5");
  a.join();
  b.join();
  stop = true;
  busy.join();
  EXPECT_EQ(ok.load(), 8);
}

}  // namespace
