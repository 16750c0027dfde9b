// A LeNet-like classifier built with the builder DSL, run on a random image.
//
//   ./builder_lenet            prints the summary and the class probabilities
#include <cstdio>
#include <iostream>
#include <random>

#include "anvil/builder.h"
#include "anvil/error.h"
#include "anvil/session.h"
#include "anvil/summary.h"

int main() {
  try {
    anvil::Builder b("lenet");
    auto x = b.input("image", {1, 1, 28, 28});
    auto y = x >> b.conv2d(8, {3, 3}, {.padding = anvil::Padding::same, .name = "conv1"}) >>
             b.relu() >> b.max_pool({2, 2}) >> b.conv2d(16, {3, 3}, {.name = "conv2"}) >>
             b.batch_norm({.name = "bn2"}) >> b.relu() >> b.max_pool({2, 2}) >> b.flatten() >>
             b.dense(64, {.name = "fc1"}) >> b.relu() >> b.dropout(0.5) >>
             b.dense(10, {.name = "fc2"}) >> b.softmax();
    std::cout << "probs shape while building: " << anvil::shape_str(y.shape()) << "\n";
    b.output(y, "probs");

    // Real weights would come from a file: b.set_weights("conv1", {{"kernel", w}, {"bias", bias}}).
    // Shapes are checked; here the first layer gets explicit weights, the rest random ones.
    anvil::Tensor kernel(anvil::DType::f32, {8, 1, 3, 3});
    for (int64_t i = 0; i < kernel.numel(); ++i) kernel.set(i, (i % 9 == 4) ? 1.0 : -0.1);
    b.set_weights("conv1", {{"kernel", kernel}, {"bias", anvil::Tensor(anvil::DType::f32, {8})}});
    b.initialize_random(42);

    anvil::Graph g = b.build();
    std::cout << anvil::summary(g) << "\n";

    anvil::Tensor image(anvil::DType::f32, {1, 1, 28, 28});
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (int64_t i = 0; i < image.numel(); ++i) image.set(i, u(rng));

    anvil::Session session(g);
    auto out = session.run({{"image", image}});
    const anvil::Tensor& probs = out.at("probs");
    int best = 0;
    for (int k = 0; k < 10; ++k) {
      std::printf("class %d: %.4f\n", k, probs.get(k));
      if (probs.get(k) > probs.get(best)) best = k;
    }
    std::printf("predicted class: %d\n", best);
    return 0;
  } catch (const anvil::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
