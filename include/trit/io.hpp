#pragma once
// The io layer: crash-safe file writes and whole-file reads, checkpoints (named tensors plus
// metadata, for --resume), safetensors files (weights shared with PyTorch), entropy coding of
// codes (rANS) and the compressed .trit model format.
#include "trit/io/atomic_file.hpp"
#include "trit/io/bytes.hpp"
#include "trit/io/checkpoint.hpp"
#include "trit/io/entropy.hpp"
#include "trit/io/safetensors.hpp"
#include "trit/io/trit_format.hpp"
