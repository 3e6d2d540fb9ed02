#pragma once
// trit: everything. Include one layer's header (trit/core.hpp, trit/ops.hpp, trit/nn.hpp, ...)
// for less; see docs/architecture.md for the layers.
#include "trit/core.hpp"
#include "trit/data.hpp"
#include "trit/infer.hpp"
#include "trit/io.hpp"
#include "trit/models.hpp"
#include "trit/nn.hpp"
#include "trit/ops.hpp"
#include "trit/optim.hpp"
#include "trit/quant.hpp"
#include "trit/train.hpp"
