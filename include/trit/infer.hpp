#pragma once
// The infer layer: a model rebuilt from a .trit file that computes with its weights still
// compressed (ternary / power-of-two codes), BatchNorm folded at load time.
#include "trit/infer/compressed_model.hpp"
#include "trit/infer/fold_bn.hpp"
#include "trit/infer/layers.hpp"
