#pragma once
// The storage allocator behind every Tensor: 64-byte aligned blocks, with a bounded cache of
// freed large blocks so that repeated work of the same shapes (a training step, an inference
// batch) gets its memory back without asking the OS again.
//
// Why: a fresh multi-megabyte block comes from mmap, and every page of it faults on first
// touch (a ResNet-20 step at batch 64 allocates hundreds of MB of activations and gradients
// per step; the faults alone cost about 5% of the step). Freed blocks of at least
// kCacheMinBytes are kept in per-size free lists instead; an allocation of the same rounded
// size reuses one (already faulted in). Smaller blocks go straight to malloc, which recycles
// them well on its own.
//
// Contract:
// - allocate(bytes) returns a block of at least `bytes` bytes, 64-byte aligned (bytes are
//   rounded up to a multiple of 64, and to a multiple of 4096 from kCacheMinBytes on, so that
//   shapes of nearly equal size share a list); release(p, bytes) takes back a block allocate
//   gave with the same `bytes`. Both are thread-safe (one mutex; the lock is held for a list
//   push or pop, never during a system allocation).
// - Bounded: the cache holds at most limit() bytes (default a quarter of the physical memory,
//   at least 1 GiB, or TRIT_ALLOC_CACHE_MB from the environment; 0 turns caching off). The
//   blocks it holds were all in use at once before, so caching adds no new peak of its own;
//   a MobileNetV2 training step at batch 64 (32x32) frees about 1.3 GB per step, and with a
//   1 GiB bound 46 of its blocks per step were faulted in afresh. A block released while the cache is full goes back
//   to the OS. When the system allocation fails, the cache is emptied and the allocation
//   retried once before std::bad_alloc.
// - Blocks of 2 MiB and more are made of transparent huge pages (system_allocate below);
//   TRIT_HUGE_PAGES=0 in the environment asks for ordinary pages.
// - empty_cache() returns every cached block to the OS (e.g. before measuring memory).
// - Under AddressSanitizer nothing is cached, so ASan sees every free.
// - The cache is never destroyed (it lives as long as the process), so tensors destroyed
//   during static destruction stay safe.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace trit {

class CachingAllocator {
 public:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kCacheMinBytes = size_t(64) << 10;  // 64 KiB: smaller ones bypass
  static constexpr size_t kHugePageBytes = size_t(2) << 20;   // 2 MiB: from here, huge pages

  // The process-wide allocator that Tensor storage uses.
  static CachingAllocator& instance() {
    static CachingAllocator* a = new CachingAllocator();  // never destroyed (see above)
    return *a;
  }

  // The size a request of `bytes` is rounded to (the size allocate really hands out).
  static size_t rounded(size_t bytes) {
    if (bytes == 0) bytes = 1;
    const size_t unit = bytes >= kCacheMinBytes ? 4096 : kAlignment;
    return (bytes + unit - 1) / unit * unit;
  }

  void* allocate(size_t bytes) {
    bytes = rounded(bytes);
    if (bytes >= kCacheMinBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= bytes;
        ++hits_;
        return p;
      }
      ++misses_;
    }
    void* p = system_allocate(bytes);
    if (!p) {  // out of memory: give the cache back and try once more
      empty_cache();
      p = system_allocate(bytes);
      if (!p) throw std::bad_alloc();
    }
    return p;
  }

  void release(void* p, size_t bytes) {
    if (!p) return;
    bytes = rounded(bytes);
    if (bytes >= kCacheMinBytes) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + bytes <= limit_) {
        free_[bytes].push_back(p);
        cached_bytes_ += bytes;
        return;
      }
    }
    std::free(p);
  }

  // Frees every cached block.
  void empty_cache() {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [size, list] : free_) blocks.insert(blocks.end(), list.begin(), list.end());
      free_.clear();
      cached_bytes_ = 0;
    }
    for (void* p : blocks) std::free(p);
  }

  // Cache bound in bytes; lowering it empties the cache.
  void set_limit(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      limit_ = bytes;
    }
    empty_cache();
  }
  size_t limit() const { return limit_; }

  // Statistics: bytes now held in the cache, and allocations of cacheable size that reused a
  // cached block (hits) or went to the system (misses).
  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }
  int64_t hits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return hits_;
  }
  int64_t misses() {
    std::lock_guard<std::mutex> lock(mutex_);
    return misses_;
  }

 private:
  // A fresh block from the system. Blocks of kHugePageBytes and more are whole 2 MiB pages,
  // 2 MiB aligned and marked MADV_HUGEPAGE (Linux's transparent huge pages, which most
  // distributions grant only on request): one TLB entry then covers 512 small pages, and
  // the kernel faults the block in 2 MiB at a time. Kernels that walk a tensor a plane at a
  // time, planes C*H*W values apart (BatchNorm, depthwise), touch a new 4 KiB page every
  // few hundred values otherwise; a MobileNetV2 training step (batch 64, 32x32) ran 7%
  // faster. A block's tail is rounded up to a whole huge page, so it may hold up to 2 MiB
  // more memory than asked for (the cache's bound counts the asked-for bytes).
  static void* system_allocate(size_t bytes) {
    if (bytes >= kHugePageBytes && huge_pages_wanted()) {
      const size_t whole = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
      void* p = std::aligned_alloc(kHugePageBytes, whole);
      if (p) madvise(p, whole, MADV_HUGEPAGE);  // advice only: failure changes nothing
      return p;
    }
    return std::aligned_alloc(kAlignment, bytes);
  }
  static bool huge_pages_wanted() {
    static const bool wanted = [] {
      const char* v = std::getenv("TRIT_HUGE_PAGES");
      return v == nullptr || std::string_view(v) != "0";
    }();
    return wanted;
  }

  CachingAllocator() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) limit_ = std::max(limit_, size_t(pages) * size_t(page) / 4);
    if (const char* mb = std::getenv("TRIT_ALLOC_CACHE_MB")) limit_ = size_t(std::atoll(mb)) << 20;
#if defined(__SANITIZE_ADDRESS__)
    limit_ = 0;  // every block back to ASan, so a use after free is caught, not recycled
#endif
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // rounded size -> cached blocks
  size_t cached_bytes_ = 0;
  size_t limit_ = size_t(1) << 30;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace trit
