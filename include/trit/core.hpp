#pragma once
// The core layer: errors, shapes, tensors, random streams, threads, and autograd.
#include "trit/autograd/engine.hpp"
#include "trit/autograd/function.hpp"
#include "trit/autograd/grad_mode.hpp"
#include "trit/autograd/gradcheck.hpp"
#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"
#include "trit/core/shape.hpp"
#include "trit/core/tensor.hpp"
#include "trit/core/threads.hpp"
#include "trit/version.hpp"
