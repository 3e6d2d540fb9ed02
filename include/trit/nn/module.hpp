#pragma once
// nn::Module<T>: the base of every layer and model.
//
// Contract:
// - A module owns named parameters (trained tensors, requires_grad on), named buffers
//   (state that is saved but not trained, e.g. BatchNorm's running_mean) and named child
//   modules. Names join with dots into PyTorch's state_dict keys: "layer1.0.conv1.weight".
// - Order is registration order: own parameters, then own buffers, then each child's, as
//   PyTorch's state_dict() orders them.
// - forward(x) maps one input tensor to one output; operator() calls it.
// - train()/eval() set the mode of the module and all its children (BatchNorm, Dropout).
// Handles are shared: the Tensor a layer keeps as its `weight` member and the one returned by
// named_parameters() are the same tensor, so an optimizer or loader writing into one is seen
// by the other.
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "trit/core/tensor.hpp"

namespace trit::nn {

template <class T = float>
class Module {
 public:
  using NamedTensors = std::vector<std::pair<std::string, Tensor<T>>>;

  virtual ~Module() = default;

  virtual Tensor<T> forward(const Tensor<T>& x) = 0;
  Tensor<T> operator()(const Tensor<T>& x) { return forward(x); }

  // One line describing this module alone, e.g. "Conv2d(3, 16, kernel_size=3, stride=1)".
  virtual std::string describe() const { return "Module"; }

  // ---- registration (called from a layer's constructor) ----------------------------------
  Tensor<T> register_parameter(const std::string& name, Tensor<T> tensor) {
    check_new_name(name);
    tensor.set_requires_grad(true);
    parameters_.emplace_back(name, tensor);
    return tensor;
  }
  Tensor<T> register_buffer(const std::string& name, Tensor<T> tensor) {
    check_new_name(name);
    buffers_.emplace_back(name, tensor);
    return tensor;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    check_new_name(name);
    children_.emplace_back(name, module);
    return module;
  }

  // ---- traversal ------------------------------------------------------------------------
  NamedTensors named_parameters() const {
    NamedTensors out;
    collect(out, "", /*parameters=*/true, /*buffers=*/false);
    return out;
  }
  NamedTensors named_buffers() const {
    NamedTensors out;
    collect(out, "", false, true);
    return out;
  }
  // Parameters and buffers, as PyTorch's state_dict(): what checkpoints save.
  NamedTensors state_dict() const {
    NamedTensors out;
    collect(out, "", true, true);
    return out;
  }
  std::vector<Tensor<T>> parameters() const {
    std::vector<Tensor<T>> out;
    for (auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  int64_t num_parameters() const {
    int64_t n = 0;
    for (auto& [name, p] : named_parameters()) n += p.numel();
    return n;
  }

  // ---- modes ----------------------------------------------------------------------------
  void train(bool on = true) {
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad() {
    for (auto& [name, p] : named_parameters()) p.zero_grad();
  }

  // An indented tree of the modules with parameter counts, ending with the total.
  std::string to_string() const {
    std::ostringstream out;
    print(out, "", 0);
    out << "total parameters: " << num_parameters() << "\n";
    return out.str();
  }

 private:
  void check_new_name(const std::string& name) const {
    check(!name.empty() && name.find('.') == std::string::npos, "Module::register",
          "name '", name, "' must be non-empty and contain no dot");
    auto taken = [&](const auto& list) {
      for (auto& entry : list)
        if (entry.first == name) return true;
      return false;
    };
    check(!taken(parameters_) && !taken(buffers_) && !taken(children_), "Module::register",
          "name '", name, "' is already registered");
  }
  void collect(NamedTensors& out, const std::string& prefix, bool parameters,
               bool buffers) const {
    if (parameters)
      for (auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
    if (buffers)
      for (auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
    for (auto& [name, child] : children_)
      child->collect(out, prefix + name + ".", parameters, buffers);
  }
  void print(std::ostringstream& out, const std::string& name, int depth) const {
    int64_t own = 0;
    for (auto& [n, p] : parameters_) own += p.numel();
    out << std::string(2 * depth, ' ') << (name.empty() ? "" : "(" + name + "): ")
        << describe();
    if (children_.empty()) {
      if (own) out << "  [" << own << " params]";
    } else {
      out << "  [" << num_parameters() << " params]";
    }
    out << "\n";
    for (auto& [n, child] : children_) child->print(out, n, depth + 1);
  }

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace trit::nn
