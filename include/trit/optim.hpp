#pragma once
// The optim layer: the quantizer concept, the optimizer base, SGD, Adam / AdamW, LR schedulers.
#include "trit/optim/adam.hpp"
#include "trit/optim/optimizer.hpp"
#include "trit/optim/quantizer.hpp"
#include "trit/optim/scheduler.hpp"
#include "trit/optim/sgd.hpp"
#include "trit/quant/none.hpp"
