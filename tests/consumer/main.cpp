// Uses only the installed public headers: build a 2-node graph with the builder, run it,
// check the values by hand.
#include <anvil/builder.h>
#include <anvil/error.h>
#include <anvil/session.h>

#include <cstdio>

int main() {
  try {
    anvil::Builder b("consumer");
    auto x = b.input("x", {1, 4});
    auto y = x >> b.relu("relu") >> b.dense(2, {.name = "fc"});
    b.output(y, "y");
    // fc kernel (in 4, units 2): unit 0 sums the inputs, unit 1 doubles the last one.
    b.set_weights("fc",
                  {{"kernel", anvil::Tensor::from_vector<float>({4, 2}, {1, 0, 1, 0, 1, 0, 1, 2})},
                   {"bias", anvil::Tensor::from_vector<float>({2}, {0.5f, -1.0f})}});
    anvil::Session s(b.build());
    auto out = s.run({{"x", anvil::Tensor::from_vector<float>({1, 4}, {1, -2, 3, 4})}});
    const anvil::Tensor& t = out.at("y");
    // relu -> (1, 0, 3, 4); unit 0: 8 + 0.5 = 8.5; unit 1: 2 * 4 - 1 = 7
    if (t.numel() != 2 || t.get(0) != 8.5 || t.get(1) != 7.0) {
      std::fprintf(stderr, "consumer: wrong result (%g, %g), expected (8.5, 7)\n", t.get(0),
                   t.get(1));
      return 1;
    }
    std::printf("consumer OK: y = (%g, %g)\n", t.get(0), t.get(1));
    return 0;
  } catch (const anvil::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
