#pragma once
// The model zoo: architectures built from nn/ layers, and make_model() to build one by name.
#include "trit/models/basic_block.hpp"
#include "trit/models/bottleneck.hpp"
#include "trit/models/cifar_resnet.hpp"
#include "trit/models/conv_bn.hpp"
#include "trit/models/init.hpp"
#include "trit/models/inverted_residual.hpp"
#include "trit/models/lenet.hpp"
#include "trit/models/mobilenet_v2.hpp"
#include "trit/models/registry.hpp"
#include "trit/models/resnet.hpp"
#include "trit/models/shortcut_a.hpp"
