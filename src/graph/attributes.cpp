#include <cstdio>

#include "anvil/error.h"
#include "anvil/graph.h"

namespace anvil {

const AttrValue& Attributes::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw Error("required attribute is missing", {}, {}, name);
  return it->second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& name, const char* want) {
  throw Error(std::string("attribute has the wrong type (expected ") + want + ")", {}, {}, name);
}
}  // namespace

int64_t Attributes::get_int(const std::string& name) const {
  const auto& v = at(name);
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  wrong_type(name, "int");
}
int64_t Attributes::get_int(const std::string& name, int64_t dflt) const {
  return has(name) ? get_int(name) : dflt;
}
double Attributes::get_float(const std::string& name) const {
  const auto& v = at(name);
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  wrong_type(name, "float");
}
double Attributes::get_float(const std::string& name, double dflt) const {
  return has(name) ? get_float(name) : dflt;
}
std::string Attributes::get_string(const std::string& name) const {
  const auto& v = at(name);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  wrong_type(name, "string");
}
std::string Attributes::get_string(const std::string& name, const std::string& dflt) const {
  return has(name) ? get_string(name) : dflt;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name) const {
  const auto& v = at(name);
  if (auto p = std::get_if<std::vector<int64_t>>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return {*p};
  wrong_type(name, "list of ints");
}
std::vector<int64_t> Attributes::get_ints(const std::string& name,
                                          const std::vector<int64_t>& dflt) const {
  return has(name) ? get_ints(name) : dflt;
}
std::vector<double> Attributes::get_floats(const std::string& name) const {
  const auto& v = at(name);
  if (auto p = std::get_if<std::vector<double>>(&v)) return *p;
  if (auto p = std::get_if<std::vector<int64_t>>(&v)) return {p->begin(), p->end()};
  if (auto p = std::get_if<double>(&v)) return {*p};
  wrong_type(name, "list of floats");
}
std::vector<double> Attributes::get_floats(const std::string& name,
                                           const std::vector<double>& dflt) const {
  return has(name) ? get_floats(name) : dflt;
}
std::vector<std::string> Attributes::get_strings(const std::string& name) const {
  const auto& v = at(name);
  if (auto p = std::get_if<std::vector<std::string>>(&v)) return *p;
  wrong_type(name, "list of strings");
}
const Tensor& Attributes::get_tensor(const std::string& name) const {
  const auto& v = at(name);
  if (auto p = std::get_if<Tensor>(&v)) return *p;
  wrong_type(name, "tensor");
}

std::string Attributes::to_string(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return "";
  struct V {
    std::string operator()(int64_t x) const { return std::to_string(x); }
    std::string operator()(double x) const {
      char b[32];
      std::snprintf(b, sizeof b, "%g", x);
      return b;
    }
    std::string operator()(const std::string& x) const { return x; }
    std::string operator()(const std::vector<int64_t>& x) const {
      std::string s = "[";
      for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + std::to_string(x[i]);
      return s + "]";
    }
    std::string operator()(const std::vector<double>& x) const {
      std::string s = "[";
      for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + (*this)(x[i]);
      return s + "]";
    }
    std::string operator()(const std::vector<std::string>& x) const {
      std::string s = "[";
      for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + x[i];
      return s + "]";
    }
    std::string operator()(const Tensor& t) const {
      return std::string("tensor ") + dtype_name(t.dtype()) + shape_str(t.shape());
    }
  };
  return std::visit(V{}, it->second);
}

}  // namespace anvil
