#pragma once
// record(): how an op joins the graph. An op computes its output with plain kernels, then
//
//   return record("relu", out, {x}, [x_saved = x.detach(), ...](const Tensor<T>& g) {
//     return std::vector<Tensor<T>>{ dL_dx };
//   });
//
// When grad mode is on and any input requires a gradient, `out` gets a Node holding the
// inputs and the backward closure, and requires a gradient itself; otherwise `out` is
// returned untouched and the closure is dropped (no graph in eval / NoGradGuard scopes).
#include <initializer_list>
#include <utility>
#include <vector>

#include "trit/autograd/grad_mode.hpp"
#include "trit/autograd/node.hpp"

namespace trit {

// True when an op reading `inputs` must record a node.
template <class T>
bool needs_graph(std::initializer_list<Tensor<T>> inputs) {
  if (!is_grad_enabled()) return false;
  for (const auto& x : inputs)
    if (x.requires_grad()) return true;
  return false;
}

template <class T, class Backward>
Tensor<T> record(const char* name, Tensor<T> out, std::vector<Tensor<T>> inputs,
                 Backward&& backward) {
  bool any = false;
  if (is_grad_enabled())
    for (const auto& x : inputs) any = any || x.requires_grad();
  if (!any) return out;
  auto node = std::make_shared<Node<T>>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::forward<Backward>(backward);
  out.impl().grad_fn = std::move(node);
  out.impl().requires_grad = true;
  return out;
}

}  // namespace trit
