#pragma once
// The ops layer: differentiable functions on tensors, each op's forward and backward side by
// side (see trit/autograd/function.hpp for how an op records itself).
#include "trit/core.hpp"
#include "trit/ops/activation.hpp"
#include "trit/ops/broadcast.hpp"
#include "trit/ops/elementwise.hpp"
#include "trit/ops/linalg.hpp"
#include "trit/ops/loss.hpp"
#include "trit/ops/reduce.hpp"
#include "trit/ops/shape.hpp"
#include "trit/ops/batch_norm.hpp"
#include "trit/ops/conv.hpp"
#include "trit/ops/pool.hpp"
