#pragma once
// trit: everything. Include a layer's header (trit/core.hpp, trit/ops.hpp, ...) for less.
#include "trit/core.hpp"
#include "trit/nn/module.hpp"
#include "trit/optim/quantizer.hpp"
#include "trit/quant/none.hpp"
