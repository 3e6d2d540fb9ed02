// Tensor<T>: construction, shapes, element access, views, copies, errors.
#include <doctest/doctest.h>

#include <cstdint>

#include <trit/core.hpp>

using trit::Shape;
using trit::Tensor;

TEST_CASE("construction fills and counts elements") {
  auto z = Tensor<float>::zeros({2, 3, 4});
  CHECK(z.dim() == 3);
  CHECK(z.numel() == 24);
  CHECK(z.size(-1) == 4);
  CHECK(z.strides() == Shape{12, 4, 1});
  for (int64_t i = 0; i < z.numel(); ++i) CHECK(z[i] == 0.0f);

  auto s = Tensor<double>::scalar(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 2.5);

  auto a = Tensor<float>::arange(5);
  CHECK(a.to_vector() == std::vector<float>{0, 1, 2, 3, 4});
}

TEST_CASE("multi-index access is row-major") {
  auto t = Tensor<float>::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(t(0, 0) == 1);
  CHECK(t(0, 2) == 3);
  CHECK(t(1, 0) == 4);
  t(1, 2) = 60;
  CHECK(t[5] == 60);
#ifndef NDEBUG
  CHECK_THROWS_AS(t(2, 0), trit::Error);
  CHECK_THROWS_AS(t(0), trit::Error);
#endif
}

TEST_CASE("copies of a handle share storage; clone does not") {
  auto a = Tensor<float>::ones({4});
  Tensor<float> b = a;
  Tensor<float> c = a.clone();
  b[0] = 7;
  CHECK(a[0] == 7);
  CHECK(c[0] == 1);
}

TEST_CASE("with_shape views and slice_rows share storage") {
  auto a = Tensor<float>::arange(12);
  auto m = a.with_shape({3, 4});
  CHECK(m(2, 1) == 9);
  m(0, 0) = -1;
  CHECK(a[0] == -1);
  auto rows = m.slice_rows(1, 3);
  CHECK(rows.shape() == Shape{2, 4});
  CHECK(rows(0, 0) == 4);
  CHECK(rows(1, 3) == 11);
  CHECK_THROWS_AS(a.with_shape({5, 2}), trit::Error);
  CHECK_THROWS_AS(m.slice_rows(2, 4), trit::Error);
}

TEST_CASE("shape errors name the op and the shapes") {
  try {
    trit::broadcast_shapes({2, 3}, {4, 3}, "add");
    FAIL("expected an error");
  } catch (const trit::Error& e) {
    std::string what = e.what();
    CHECK(what.find("add") == 0);
    CHECK(what.find("[2, 3]") != std::string::npos);
    CHECK(what.find("[4, 3]") != std::string::npos);
  }
  CHECK(trit::broadcast_shapes({2, 1, 3}, {4, 1}, "add") == Shape{2, 4, 3});
  CHECK(trit::broadcast_shapes({}, {3}, "add") == Shape{3});
  CHECK_THROWS_AS(Tensor<float>::from_vector({2, 2}, {1, 2, 3}), trit::Error);
  CHECK_THROWS_AS(Tensor<float>::zeros({3}).item(), trit::Error);
  CHECK_THROWS_AS(Tensor<float>().numel(), trit::Error);
}

TEST_CASE("Eigen views see the elements") {
  auto t = Tensor<double>::from_vector({2, 2}, {1, 2, 3, 4});
  CHECK(t.array().sum() == 10);
  auto m = t.matrix(2, 2);
  CHECK(m(1, 0) == 3);
  CHECK((m * m)(0, 0) == 7);
}

TEST_CASE("random tensors are reproducible from a seed") {
  trit::Generator g1(42), g2(42);
  auto a = Tensor<float>::randn({100}, g1);
  auto b = Tensor<float>::randn({100}, g2);
  CHECK(a.to_vector() == b.to_vector());
  double mean = a.array().mean();
  CHECK(std::abs(mean) < 0.3);
  auto u = Tensor<double>::uniform({1000}, -2, 3, g1);
  CHECK(u.array().minCoeff() >= -2);
  CHECK(u.array().maxCoeff() < 3);
}

TEST_CASE("precision conversion") {
  auto d = Tensor<double>::from_vector({2}, {1.25, -3.5});
  auto f = d.to<float>();
  CHECK(f[0] == 1.25f);
  CHECK(f[1] == -3.5f);
}

TEST_CASE("the storage allocator aligns blocks and hands freed large blocks back") {
  auto& a = trit::CachingAllocator::instance();
  // small, cached-size and huge-page-size blocks: aligned, writable end to end
  for (size_t bytes : {size_t(100), size_t(200) << 10, size_t(5) << 20}) {
    auto* p = static_cast<unsigned char*>(a.allocate(bytes));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % trit::CachingAllocator::kAlignment == 0);
    p[0] = 1;
    p[bytes - 1] = 2;
    CHECK(p[0] + p[bytes - 1] == 3);
    a.release(p, bytes);
  }
  CHECK(trit::CachingAllocator::rounded(100) == 128);
  CHECK(trit::CachingAllocator::rounded((size_t(64) << 10) + 1) == (size_t(64) << 10) + 4096);
  if (a.limit() > 0) {  // caching on (it is off under AddressSanitizer)
    const size_t bytes = size_t(3) << 20;
    void* first = a.allocate(bytes);
    a.release(first, bytes);
    const int64_t hits = a.hits();
    void* again = a.allocate(bytes);
    CHECK(again == first);  // the same block back, not a fresh one from the system
    CHECK(a.hits() == hits + 1);
    a.release(again, bytes);
    a.empty_cache();
    CHECK(a.cached_bytes() == 0);
  }
}
