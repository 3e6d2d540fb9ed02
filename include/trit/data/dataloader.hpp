#pragma once
// DataLoader: cuts a Dataset into batches, epoch after epoch.
//
//   data::DataLoader loader(train, data::LoaderOptions().set_batch_size(128).set_seed(1)
//                                      .set_transform(data::Compose{data::RandomCrop(32, 4),
//                                                                   data::RandomHorizontalFlip()}));
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (data::Batch& batch : loader) { ... batch.images [B, C, H, W], batch.labels ... }
//
// Each range-for (each begin()) is one epoch; epoch e visits every image once, in the order
// of a permutation drawn from Generator(seed + e) (or in dataset order without shuffle).
// Image i of epoch e is transformed with its own Generator derived from (seed, e, i), so a
// batch depends only on the seed, the epoch and its index: not on the thread count, and not
// on prefetching. Images of a batch are copied and transformed in parallel (OpenMP); with
// prefetch on, the next batch is assembled on a background thread while the caller works on
// the current one. The loader keeps its own copy of the Dataset handle (pixels are shared).
#include <algorithm>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <utility>
#include <vector>

#include <omp.h>

#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"
#include "trit/core/tensor.hpp"
#include "trit/data/dataset.hpp"
#include "trit/data/transforms.hpp"

namespace trit::data {

// One batch: B images [B, C, H, W], their labels, and their indices in the dataset.
struct Batch {
  Tensor<float> images;
  std::vector<int64_t> labels;
  std::vector<int64_t> indices;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  uint64_t seed = 0;
  Transform transform;     // applied to each image; empty = none
  bool prefetch = true;    // assemble the next batch on a background thread
  LoaderOptions& set_batch_size(int64_t b) { batch_size = b; return *this; }
  LoaderOptions& set_shuffle(bool on) { shuffle = on; return *this; }
  LoaderOptions& set_drop_last(bool on) { drop_last = on; return *this; }
  LoaderOptions& set_seed(uint64_t s) { seed = s; return *this; }
  LoaderOptions& set_transform(Transform t) { transform = std::move(t); return *this; }
  LoaderOptions& set_prefetch(bool on) { prefetch = on; return *this; }
};

namespace detail {
// SplitMix64 finaliser: a well-mixed 64-bit value from a counter.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace detail

class DataLoader {
 public:
  struct End {};
  class Iterator;

  DataLoader(const Dataset& data, LoaderOptions options = {})
      : data_(data), options_(std::move(options)) {
    data_.validate("DataLoader");
    check(options_.batch_size > 0, "DataLoader", "batch size must be positive, got ",
          options_.batch_size);
  }

  // Batches per epoch.
  int64_t size() const {
    int64_t n = data_.size(), b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }
  const Dataset& dataset() const { return data_; }
  const LoaderOptions& options() const { return options_; }
  // The epoch the next begin() starts (0 at first); set it to resume a run.
  int64_t epoch() const { return next_epoch_; }
  void set_epoch(int64_t e) { next_epoch_ = e; }

  // The dataset indices of `epoch` in visiting order.
  std::vector<int64_t> order(int64_t epoch) const {
    std::vector<int64_t> idx(static_cast<size_t>(data_.size()));
    for (int64_t i = 0; i < data_.size(); ++i) idx[size_t(i)] = i;
    if (options_.shuffle) {
      Generator gen(options_.seed + uint64_t(epoch));
      for (int64_t i = data_.size() - 1; i > 0; --i) std::swap(idx[size_t(i)], idx[size_t(gen.below(i + 1))]);
    }
    return idx;
  }

  // Batch `index` of epoch `epoch` given that epoch's order, assembled with `threads` OpenMP
  // threads (0 = the calling thread's default).
  Batch batch(int64_t epoch, const std::vector<int64_t>& order, int64_t index, int threads = 0) const {
    check(index >= 0 && index < size(), "DataLoader", "batch ", index, " of ", size());
    const int64_t first = index * options_.batch_size;
    const int64_t count = std::min(options_.batch_size, data_.size() - first);
    const int64_t c = data_.channels(), h = data_.height(), w = data_.width(), pixels = c * h * w;
    Batch out;
    out.images = Tensor<float>::empty({count, c, h, w});
    out.labels.resize(size_t(count));
    out.indices.assign(order.begin() + first, order.begin() + first + count);
    for (int64_t j = 0; j < count; ++j) out.labels[size_t(j)] = data_.labels[size_t(out.indices[size_t(j)])];

    const float* src = data_.images.data();
    float* dst = out.images.data();
    std::exception_ptr failure;
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = out.indices[size_t(j)];
      std::copy_n(src + i * pixels, pixels, dst + j * pixels);
      if (!options_.transform) continue;
      try {
        Generator gen(detail::mix64(options_.seed ^ detail::mix64(uint64_t(epoch) ^ detail::mix64(uint64_t(i)))));
        options_.transform(ImageView{dst + j * pixels, c, h, w}, gen);
      } catch (...) {
#pragma omp critical(trit_data_loader_failure)
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    return out;
  }

  // Starts the next epoch: range-for over the loader visits its batches. The loader must
  // outlive the iteration.
  Iterator begin();
  End end() const { return {}; }

 private:
  Dataset data_;
  LoaderOptions options_;
  int64_t next_epoch_ = 0;
};

// Walks the batches of one epoch, holding the current batch and (with prefetch) a future
// for the next.
class DataLoader::Iterator {
 public:
  using value_type = Batch;
  using difference_type = std::ptrdiff_t;

  Iterator(const DataLoader* loader, int64_t epoch)
      : loader_(loader), epoch_(epoch), count_(loader->size()),
        order_(std::make_shared<const std::vector<int64_t>>(loader->order(epoch))),
        threads_(omp_get_max_threads()) {
    load();
  }

  Batch& operator*() { return current_; }
  Batch* operator->() { return &current_; }
  Iterator& operator++() {
    ++index_;
    load();
    return *this;
  }
  bool operator==(End) const { return index_ >= count_; }
  int64_t epoch() const { return epoch_; }
  int64_t index() const { return index_; }

 private:
  // Makes batch index_ current (from the prefetched future when there is one) and starts the
  // next one in the background.
  void load() {
    if (index_ >= count_) {
      current_ = Batch();
      return;
    }
    current_ = next_.valid() ? next_.get() : loader_->batch(epoch_, *order_, index_, threads_);
    if (loader_->options_.prefetch && index_ + 1 < count_)
      next_ = std::async(std::launch::async, [loader = loader_, order = order_, epoch = epoch_,
                                              index = index_ + 1, threads = threads_] {
        return loader->batch(epoch, *order, index, threads);
      });
  }

  const DataLoader* loader_;
  int64_t epoch_, index_ = 0, count_;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int threads_;  // the caller's OpenMP thread count, also used on the prefetch thread
  Batch current_;
  std::future<Batch> next_;
};

inline DataLoader::Iterator DataLoader::begin() { return Iterator(this, next_epoch_++); }

}  // namespace trit::data
