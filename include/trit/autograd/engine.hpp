#pragma once
// The backward pass: reverse-mode differentiation over the recorded graph.
//
// 1. Collect the nodes reachable from the root and sort them topologically (every node comes
//    after all nodes that consumed its output).
// 2. Walk that order once. A node's incoming gradient is complete when it is reached; its
//    closure turns it into gradients for its inputs, which accumulate into the input's node
//    (interior tensors) or into the input's grad() (leaves that require a gradient).
// 3. Free each node's closure and edges once used (PyTorch's retain_graph=false), so memory
//    does not grow across training steps and a second backward() through it is an error.
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "trit/autograd/grad_mode.hpp"
#include "trit/autograd/node.hpp"
#include "trit/core/tensor.hpp"

namespace trit {

namespace detail {

// a + b as a new tensor (never in place: gradients may share storage with other tensors).
template <class T>
Tensor<T> add_gradients(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> sum = Tensor<T>::empty(a.shape());
  sum.array() = a.array() + b.array();
  return sum;
}

template <class T>
void check_gradient_shape(const Node<T>& node, size_t i, const Tensor<T>& g) {
  const Tensor<T>& x = node.inputs[i];
  check(g.shape() == x.shape(), "backward",
        "op '", node.name, "' returned a gradient of shape ", to_string(g.shape()),
        " for input ", i, " of shape ", to_string(x.shape()));
}

// Nodes reachable from `root`, consumers before producers (iterative DFS post-order, reversed).
// Owning pointers: freeing a consumer's edges must not destroy a producer still to be visited.
template <class T>
std::vector<std::shared_ptr<Node<T>>> topological_order(const std::shared_ptr<Node<T>>& root) {
  std::vector<std::shared_ptr<Node<T>>> post_order;
  std::unordered_set<Node<T>*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<Node<T>>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next_input] = stack.back();
    if (next_input < node->inputs.size()) {
      const auto& child = node->inputs[next_input++].grad_fn();
      if (child && visited.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      post_order.push_back(node);
      stack.pop_back();
    }
  }
  return {post_order.rbegin(), post_order.rend()};
}

}  // namespace detail

template <class T>
void Tensor<T>::backward(const Tensor<T>& grad_output) const {
  check(requires_grad(), "backward", "tensor does not require a gradient (no input of the ",
        "computation had requires_grad set)");
  Tensor<T> seed = grad_output;
  if (!seed.defined()) {
    check(numel() == 1, "backward", "grad_output is needed for a non-scalar tensor of shape ",
          to_string(shape()));
    seed = Tensor<T>::ones(shape());
  }
  check(seed.shape() == shape(), "backward", "grad_output shape ", to_string(seed.shape()),
        " differs from the tensor's ", to_string(shape()));
  NoGradGuard no_grad;  // gradients are plain values: backward itself records nothing

  // The first gradient of a leaf becomes its grad: the op's result itself when nothing else
  // holds it (no other handle, no view of its storage: a weight gradient, usually), so a
  // step does not copy every parameter's gradient once more; a copy otherwise.
  auto accumulate_leaf = [](TensorImpl<T>& leaf, const Tensor<T>& g) {
    if (!leaf.grad) {
      const bool sole = g.impl_ptr().use_count() == 1 && g.impl().storage.use_count() == 1;
      leaf.grad = sole ? g.impl_ptr() : g.clone().impl_ptr();
    } else {
      Tensor<T>(leaf.grad).array() += g.array();
    }
  };

  if (is_leaf()) {
    accumulate_leaf(const_cast<TensorImpl<T>&>(impl()), seed);
    return;
  }

  std::unordered_map<Node<T>*, Tensor<T>> pending{{grad_fn().get(), seed}};
  for (const auto& node : detail::topological_order(grad_fn())) {
    check(static_cast<bool>(node->backward), "backward", "the graph through op '", node->name,
          "' was already freed by an earlier backward()");
    auto it = pending.find(node.get());
    if (it == pending.end()) continue;  // no gradient reached this node
    Tensor<T> g = std::move(it->second);
    pending.erase(it);

    std::vector<Tensor<T>> input_grads = node->backward(g);
    check(input_grads.size() == node->inputs.size(), "backward", "op '", node->name,
          "' returned ", input_grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < input_grads.size(); ++i) {
      Tensor<T>& x = node->inputs[i];
      const Tensor<T>& gx = input_grads[i];
      if (!x.requires_grad() || !gx.defined()) continue;
      detail::check_gradient_shape(*node, i, gx);
      if (Node<T>* producer = x.grad_fn().get()) {
        auto [slot, inserted] = pending.try_emplace(producer, gx);
        if (!inserted) slot->second = detail::add_gradients(slot->second, gx);
      } else {
        accumulate_leaf(x.impl(), gx);
      }
    }
    node->backward = nullptr;  // free the saved tensors and the edges
    node->inputs.clear();
  }
}

}  // namespace trit
