#pragma once
// The model zoo: architectures built from nn/ layers, and make_model() to build one by name.
#include "trit/models/lenet.hpp"
#include "trit/models/registry.hpp"
