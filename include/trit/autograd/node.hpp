#pragma once
// Node: one recorded op in the autograd graph.
//
// Contract: `inputs` are the tensors the op read (the graph's edges back towards the leaves);
// `backward(grad_output)` returns one gradient per input, dL/d inputs[i], each with that
// input's shape, or an undefined Tensor where that input needs none. A backward closure must
// never capture the op's own output handle (that would make a reference cycle: capture
// `out.detach()`, which shares the elements but not the graph).
#include <functional>
#include <string>
#include <vector>

#include "trit/core/tensor.hpp"

namespace trit {

template <class T>
struct Node {
  std::string name;               // the op, for error messages ("conv2d")
  std::vector<Tensor<T>> inputs;  // what the op read
  std::function<std::vector<Tensor<T>>(const Tensor<T>& grad_output)> backward;
};

}  // namespace trit
