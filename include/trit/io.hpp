#pragma once
// The io layer: crash-safe file writes and whole-file reads, and checkpoints (named tensors
// plus metadata, for --resume).
#include "trit/io/atomic_file.hpp"
#include "trit/io/checkpoint.hpp"
