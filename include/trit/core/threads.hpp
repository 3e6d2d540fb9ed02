#pragma once
// Threading: one knob for both thread pools trit uses (OpenMP loops and Eigen's GEMM).
// Results do not depend on the thread count beyond float rounding.
#include <Eigen/Core>
#include <omp.h>

namespace trit {

// Sets the number of threads for OpenMP parallel loops and for Eigen's matrix products.
inline void set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
}

inline int get_num_threads() { return omp_get_max_threads(); }

}  // namespace trit
