#pragma once
// The io layer: crash-safe file writes and whole-file reads, checkpoints (named tensors plus
// metadata, for --resume), and safetensors files (weights shared with PyTorch).
#include "trit/io/atomic_file.hpp"
#include "trit/io/checkpoint.hpp"
#include "trit/io/safetensors.hpp"
