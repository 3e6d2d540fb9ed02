#pragma once
// The nn layer: Module and the layers models are built from, plus weight initialisation.
#include "trit/nn/activation.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/nn/dropout.hpp"
#include "trit/nn/flatten.hpp"
#include "trit/nn/identity.hpp"
#include "trit/nn/init.hpp"
#include "trit/nn/linear.hpp"
#include "trit/nn/module.hpp"
#include "trit/nn/pooling.hpp"
#include "trit/nn/sequential.hpp"
