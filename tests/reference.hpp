#pragma once
// Reference values computed once by PyTorch (tests/reference/*.py) and committed as small
// text files, so the tests never need Python. File format, one record after another:
//
//   name <key>
//   shape <d0> <d1> ...        (no numbers for a scalar)
//   <v0> <v1> ...              (row-major values, %.17g)
//
// load_reference("ops_basic.txt") returns key -> Tensor<double>.
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <trit/core.hpp>

namespace trit::testing {

inline std::map<std::string, Tensor<double>> load_reference(const std::string& file) {
  std::string path = std::string(TRIT_TEST_REFERENCE_DIR) + "/" + file;
  std::ifstream in(path);
  check(in.good(), path, "cannot open reference file");
  std::map<std::string, Tensor<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream name_line(line);
    std::string tag, key;
    name_line >> tag >> key;
    check(tag == "name", path, "expected 'name', got '", line, "'");
    std::getline(in, line);
    std::istringstream shape_line(line);
    shape_line >> tag;
    check(tag == "shape", path, "expected 'shape' after ", key);
    Shape shape;
    int64_t d;
    while (shape_line >> d) shape.push_back(d);
    std::getline(in, line);
    std::istringstream values_line(line);
    Tensor<double> t = Tensor<double>::empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i)
      check(static_cast<bool>(values_line >> t[i]), path, "too few values for ", key);
    out.emplace(key, t);
  }
  return out;
}

// The reference tensor `key`, or an error naming what is missing.
inline Tensor<double> get(const std::map<std::string, Tensor<double>>& ref, const std::string& key) {
  auto it = ref.find(key);
  check(it != ref.end(), "reference", "no tensor named '", key, "'");
  return it->second;
}

// Largest |a - b| over all elements; shapes must match.
template <class T>
double max_abs_diff(const Tensor<T>& a, const Tensor<double>& b) {
  check(a.shape() == b.shape(), "max_abs_diff", to_string(a.shape()), " vs ", to_string(b.shape()));
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

}  // namespace trit::testing
