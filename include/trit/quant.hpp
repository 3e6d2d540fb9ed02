#pragma once
// The quant layer: weight quantizer policies for the optimizers (optim::SGD<quant::PTQ>),
// which parameters they take, their sparsity schedules, and the codes they produce.
#include "trit/quant/codes.hpp"
#include "trit/quant/focused_pow2.hpp"
#include "trit/quant/gaussian_mixture.hpp"
#include "trit/quant/hq.hpp"
#include "trit/quant/none.hpp"
#include "trit/quant/ptq.hpp"
#include "trit/quant/schedule.hpp"
#include "trit/quant/selection.hpp"
#include "trit/quant/ternary.hpp"
#include "trit/quant/size.hpp"
