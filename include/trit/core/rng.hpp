#pragma once
// Generator: a seeded random stream (64-bit Mersenne twister) for initialisation, dropout,
// shuffling and augmentation. Everything random in trit takes a Generator& or uses
// global_generator(), which trit::manual_seed(s) reseeds, so a run is reproducible.
#include <cmath>
#include <cstdint>
#include <random>

namespace trit {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x7121'5eed) : engine_(seed) {}
  void seed(uint64_t s) { engine_.seed(s); }

  // Uniform in [low, high).
  double uniform(double low = 0.0, double high = 1.0) {
    return std::uniform_real_distribution<double>(low, high)(engine_);
  }
  // Normal with the given mean and standard deviation.
  double normal(double mean = 0.0, double stddev = 1.0) {
    return std::normal_distribution<double>(mean, stddev)(engine_);
  }
  // Uniform integer in [0, n).
  int64_t below(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(engine_); }
  bool bernoulli(double p) { return uniform() < p; }

  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

inline Generator& global_generator() {
  static Generator generator;
  return generator;
}

inline void manual_seed(uint64_t seed) { global_generator().seed(seed); }

}  // namespace trit
