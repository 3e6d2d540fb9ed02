// Checkpoints: round trips (float, double, metadata), every way a file can be bad (corrupt
// byte, truncation, wrong magic, version), architecture mismatch messages, and failed saves
// that must leave the previous checkpoint intact.
#include <doctest/doctest.h>

#include "error_of.hpp"

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <trit/io.hpp>
#include <trit/nn/module.hpp>

using trit::Tensor;

using trit::testing::error_of;

namespace {

// A stand-in layer: a weight of [out, in, k, k], a bias, and a buffer, like a conv + BN stat.
template <class T>
struct Layer : trit::nn::Module<T> {
  Tensor<T> weight, bias, running_mean;
  Layer(int64_t out, int64_t in, int64_t k, uint64_t seed) {
    trit::Generator gen(seed);
    weight = this->register_parameter("weight", Tensor<T>::randn({out, in, k, k}, gen));
    bias = this->register_parameter("bias", Tensor<T>::randn({out}, gen));
    running_mean = this->register_buffer("running_mean", Tensor<T>::randn({out}, gen));
  }
  Tensor<T> forward(const Tensor<T>& x) override { return x; }
};

// Two layers as children: state_dict names "layer1.weight", ..., "layer2.running_mean".
template <class T>
struct Net : trit::nn::Module<T> {
  Net(int64_t width, uint64_t seed) {
    this->register_module("layer1", std::make_shared<Layer<T>>(width, 1, 5, seed));
    this->register_module("layer2", std::make_shared<Layer<T>>(10, width, 1, seed + 1));
  }
  Tensor<T> forward(const Tensor<T>& x) override { return x; }
};

// A fresh path in the temp directory, removed when the test ends.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& name)
      : path("/tmp/trit_checkpoint_test_" + std::to_string(::getpid()) + "_" + name) {}
  ~TempPath() { std::remove(path.c_str()); }
};

std::vector<char> read_bytes(const std::string& path) { return trit::io::read_file(path); }

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
void check_same_state(const trit::nn::Module<T>& a, const trit::nn::Module<T>& b) {
  auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    CHECK(sa[i].first == sb[i].first);
    CHECK(sa[i].second.shape() == sb[i].second.shape());
    CHECK(sa[i].second.to_vector() == sb[i].second.to_vector());  // bit-exact
  }
}

}  // namespace

TEST_CASE_TEMPLATE("checkpoint: a module round-trips bit-exactly, in place", T, float, double) {
  TempPath file("roundtrip.ckpt");
  Net<T> saved(6, 1), loaded(6, 99);
  saved.state_dict()[0].second[0] = T(1) / T(3);  // a value with all mantissa bits in use
  trit::io::save(saved, file.path);

  // Handles taken before loading (as an optimizer would hold them) must see the new values.
  Tensor<T> handle = loaded.state_dict()[0].second;
  CHECK(handle.to_vector() != saved.state_dict()[0].second.to_vector());
  trit::io::Metadata meta = trit::io::load(loaded, file.path);
  CHECK(meta.empty());
  check_same_state(saved, loaded);
  CHECK(handle.same_as(loaded.state_dict()[0].second));
  CHECK(handle.to_vector() == saved.state_dict()[0].second.to_vector());
  CHECK(handle.requires_grad());  // still a parameter
}

TEST_CASE("checkpoint: metadata and mixed precisions round-trip") {
  TempPath file("meta.ckpt");
  trit::io::Checkpoint c;
  c.metadata = {{"epoch", "7"}, {"optimizer", "sgd momentum=0.9"}, {"model", "lenet5"},
                {"empty", ""}, {"binary", std::string("a\0b\n", 4)}};
  c.tensors.emplace_back("f", Tensor<float>::from_vector({2, 3}, {1, 2, 3, 4, 5, 6.5f}));
  c.tensors.emplace_back("d", Tensor<double>::from_vector({3}, {0.1, -0.2, 1e300}));
  c.tensors.emplace_back("scalar", Tensor<float>::scalar(3.25f));
  c.tensors.emplace_back("empty", Tensor<double>::zeros({0, 4}));
  trit::io::save_checkpoint(file.path, c);

  trit::io::Checkpoint back = trit::io::load_checkpoint(file.path);
  CHECK(back.metadata == c.metadata);
  REQUIRE(back.tensors.size() == 4);
  CHECK(back.tensors[0].first == "f");
  CHECK(std::holds_alternative<Tensor<float>>(back.tensors[0].second));
  CHECK(std::holds_alternative<Tensor<double>>(back.tensors[1].second));
  CHECK(back.get<float>("f").shape() == trit::Shape{2, 3});
  CHECK(back.get<float>("f").to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6.5f});
  CHECK(back.get<double>("d").to_vector() == std::vector<double>{0.1, -0.2, 1e300});
  CHECK(back.get<float>("scalar").shape() == trit::Shape{});
  CHECK(back.get<float>("scalar").item() == 3.25f);
  CHECK(back.get<double>("empty").shape() == trit::Shape{0, 4});
  CHECK(back.get<double>("f")[5] == 6.5);  // converted on request
  CHECK(error_of([&] { back.get<float>("nope"); }).find("nope") != std::string::npos);

  // Module save with metadata, returned by load.
  Net<float> a(6, 1), b(6, 2);
  trit::io::save(a, file.path, {{"epoch", "3"}});
  CHECK(trit::io::load(b, file.path) == trit::io::Metadata{{"epoch", "3"}});
  check_same_state(a, b);
}

TEST_CASE("checkpoint: a float checkpoint loads into a double model") {
  TempPath file("convert.ckpt");
  Net<float> f(4, 1);
  Net<double> d(4, 2);
  trit::io::save(f, file.path);
  trit::io::load(d, file.path);
  auto sf = f.state_dict();
  auto sd = d.state_dict();
  for (size_t i = 0; i < sf.size(); ++i)
    for (int64_t j = 0; j < sf[i].second.numel(); ++j)
      CHECK(sd[i].second[j] == double(sf[i].second[j]));
}

TEST_CASE("checkpoint: corrupt, truncated and foreign files throw trit::Error naming the file") {
  TempPath file("good.ckpt"), bad("bad.ckpt");
  Net<float> net(6, 1);
  trit::io::save(net, file.path, {{"epoch", "1"}});
  const std::vector<char> good = read_bytes(file.path);
  REQUIRE(good.size() > 100);

  SUBCASE("every single flipped byte is detected") {
    for (size_t i = 0; i < good.size(); i += 7) {
      std::vector<char> bytes = good;
      bytes[i] ^= 0x5a;
      write_bytes(bad.path, bytes);
      std::string message = error_of([&] { trit::io::load_checkpoint(bad.path); });
      INFO("flipped byte ", i);
      CHECK(message.find(bad.path) != std::string::npos);
    }
    std::vector<char> bytes = good;
    bytes[good.size() / 2] ^= 1;
    write_bytes(bad.path, bytes);
    CHECK(error_of([&] { trit::io::load_checkpoint(bad.path); }).find("checksum") !=
          std::string::npos);
  }
  SUBCASE("truncated at every length") {
    for (size_t n = 0; n < good.size(); ++n) {
      write_bytes(bad.path, std::vector<char>(good.begin(), good.begin() + n));
      INFO("truncated to ", n, " bytes");
      CHECK(error_of([&] { trit::io::load_checkpoint(bad.path); }).find(bad.path) !=
            std::string::npos);
    }
  }
  SUBCASE("wrong magic") {
    std::vector<char> bytes = good;
    bytes[0] = 'X';
    write_bytes(bad.path, bytes);
    CHECK(error_of([&] { trit::io::load_checkpoint(bad.path); }).find("magic") !=
          std::string::npos);
  }
  SUBCASE("unsupported version") {
    std::vector<char> bytes = good;
    bytes[8] = 2;
    write_bytes(bad.path, bytes);
    CHECK(error_of([&] { trit::io::load_checkpoint(bad.path); }).find("version 2") !=
          std::string::npos);
  }
  SUBCASE("missing file") {
    CHECK(error_of([&] { trit::io::load_checkpoint(bad.path + ".none"); }).find(".none") !=
          std::string::npos);
  }
}

TEST_CASE("checkpoint: a huge length with a valid checksum never over-allocates") {
  // A hand-made file whose tensor claims 2^60 elements, with a correct CRC: the reader must
  // reject it from the remaining byte count, not try to allocate.
  TempPath file("huge.ckpt");
  trit::io::detail::ByteWriter w;
  w.out.append("TRITCKPT", 8);
  w.scalar<uint32_t>(1);
  w.scalar<uint32_t>(0);  // metadata
  w.scalar<uint32_t>(1);  // one tensor
  w.string("w", file.path);
  w.scalar<uint8_t>(1);
  w.scalar<uint32_t>(2);
  w.scalar<int64_t>(int64_t(1) << 30);
  w.scalar<int64_t>(int64_t(1) << 30);
  w.scalar<uint32_t>(trit::io::detail::crc32_of(w.out.data(), w.out.size()));
  trit::io::write_file_atomically(file.path, w.out);
  CHECK(error_of([&] { trit::io::load_checkpoint(file.path); }).find("does not fit") !=
        std::string::npos);

  // A string length of 4 GiB - 1 with a correct CRC.
  trit::io::detail::ByteWriter s;
  s.out.append("TRITCKPT", 8);
  s.scalar<uint32_t>(1);
  s.scalar<uint32_t>(1);
  s.scalar<uint32_t>(0xffffffffu);
  s.scalar<uint32_t>(trit::io::detail::crc32_of(s.out.data(), s.out.size()));
  trit::io::write_file_atomically(file.path, s.out);
  CHECK(error_of([&] { trit::io::load_checkpoint(file.path); }).find("truncated") !=
        std::string::npos);
}

TEST_CASE("checkpoint: loading into another architecture lists names and shapes") {
  TempPath file("arch.ckpt");
  Net<float> wide(16, 1);
  trit::io::save(wide, file.path);

  Net<float> narrow(6, 2);
  const auto before = narrow.state_dict()[0].second.to_vector();
  std::string message = error_of([&] { trit::io::load(narrow, file.path); });
  CHECK(message.find(file.path) != std::string::npos);
  CHECK(message.find("layer1.weight: checkpoint [16, 1, 5, 5] vs model [6, 1, 5, 5]") !=
        std::string::npos);
  CHECK(message.find("layer2.weight: checkpoint [10, 16, 1, 1] vs model [10, 6, 1, 1]") !=
        std::string::npos);
  CHECK(narrow.state_dict()[0].second.to_vector() == before);  // nothing copied

  // Missing and unexpected names.
  Layer<float> single(16, 1, 5, 3);
  message = error_of([&] { trit::io::load(single, file.path); });
  CHECK(message.find("missing in checkpoint: weight, bias, running_mean") != std::string::npos);
  CHECK(message.find("unexpected in checkpoint: layer1.weight") != std::string::npos);
  CHECK(message.find("layer2.running_mean") != std::string::npos);
}

TEST_CASE("checkpoint: a failed save leaves the previous checkpoint intact") {
  TempPath file("keep.ckpt");
  Net<float> net(6, 1);
  trit::io::save(net, file.path, {{"epoch", "1"}});
  const std::vector<char> before = read_bytes(file.path);

  // A tensor name repeated: rejected before anything is written.
  trit::io::Checkpoint dup;
  dup.tensors.emplace_back("a", Tensor<float>::zeros({1}));
  dup.tensors.emplace_back("a", Tensor<float>::zeros({1}));
  CHECK(error_of([&] { trit::io::save_checkpoint(file.path, dup); }).find("duplicate") !=
        std::string::npos);

  // A writer that throws halfway.
  std::string message = error_of([&] {
    trit::io::write_file_atomically(file.path, [](std::ostream& out) {
      out << "half a checkpoint";
      throw std::runtime_error("disk on fire");
    });
  });
  CHECK(message.find(file.path) != std::string::npos);
  CHECK(message.find("disk on fire") != std::string::npos);
  CHECK(read_bytes(file.path) == before);
  CHECK(!std::ifstream(file.path + ".tmp." + std::to_string(::getpid())).good());

  // Into a directory that does not exist.
  std::string nowhere = "/tmp/trit_no_such_dir_" + std::to_string(::getpid()) + "/x.ckpt";
  CHECK(error_of([&] { trit::io::save(net, nowhere); }).find(nowhere) != std::string::npos);

  Net<float> back(6, 5);
  CHECK(trit::io::load(back, file.path).at("epoch") == "1");
  check_same_state(net, back);
}
