#pragma once
// The train layer: what every training program shares. A progress bar, a CSV log, PNG charts
// of curves and histograms, and Ctrl-C as a clean-stop request.
#include "trit/train/csv_log.hpp"
#include "trit/train/interrupt.hpp"
#include "trit/train/plot.hpp"
#include "trit/train/progress_bar.hpp"
#include "trit/train/loop.hpp"
