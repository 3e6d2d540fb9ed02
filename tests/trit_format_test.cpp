// The .trit format and its rANS coder: coded size against the order-0 entropy, round trips
// (a ResNet-20 with ternary and power-of-two layers, every encoding, f16), size accounting,
// atomic saves, and every way a file can be bad: truncation, corrupt bytes, wrong magic or
// version, and a seeded fuzz of a few thousand mutated files (with and without a repaired
// checksum, so the parser itself is exercised), which must only ever raise trit::Error.
#include <doctest/doctest.h>

#include "error_of.hpp"
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <trit/io.hpp>
#include <trit/models/registry.hpp>
#include <trit/quant/codes.hpp>
#include <vector>

using trit::Tensor;
namespace io = trit::io;
namespace quant = trit::quant;

using trit::testing::error_of;

namespace {

// A file path in the temp dir, removed at scope exit.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& name)
      : path((std::filesystem::temp_directory_path() /
              ("trit_fmt_" + std::to_string(::getpid()) + "_" + name))
                 .string()) {}
  ~TempPath() { std::remove(path.c_str()); }
};

// Uniform double in [0, 1) from a fixed-algorithm engine (same stream on every platform).
double uniform(std::mt19937_64& gen) { return double(gen() >> 11) * 0x1.0p-53; }

// n symbols drawn i.i.d. with probabilities p (by inverting the cumulative distribution).
std::vector<uint8_t> draw(size_t n, const std::vector<double>& p, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<uint8_t> out(n);
  for (auto& s : out) {
    double u = uniform(gen), cum = 0;
    size_t k = 0;
    while (k + 1 < p.size() && u >= (cum += p[k])) ++k;
    s = static_cast<uint8_t>(k);
  }
  return out;
}

// Power-of-two code probabilities: zero with p0, 16 levels sharing the rest, the larger
// exponents rarer (as in a trained layer).
std::vector<double> pow2_probabilities(double p0) {
  std::vector<double> p(17, 0.0);
  double total = 0;
  for (int k = 1; k < 17; ++k) total += p[k] = std::pow(0.7, (k - 1) / 2);
  p[0] = p0;
  for (int k = 1; k < 17; ++k) p[k] *= (1 - p0) / total;
  return p;
}

// Hand-made quantized weights of `shape`: ternary {-a, 0, +a} (per output channel a when
// per_channel) or power-of-two sign * 2^-e * alpha (e in 0..7), zero with probability p0.
Tensor<float> quantized_weights(const trit::Shape& shape, bool pow2, bool per_channel, double p0,
                                uint64_t seed) {
  std::mt19937_64 gen(seed);
  Tensor<float> w = Tensor<float>::empty(shape);
  const int64_t groups = per_channel ? shape[0] : 1, per_group = w.numel() / groups;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float a = 0.05f * float(1 + (i / per_group) % 5);
    const double u = uniform(gen);
    const float sign = uniform(gen) < 0.5 ? -1.0f : 1.0f;
    if (u < p0)
      w[i] = 0.0f;
    else if (!pow2)
      w[i] = sign * a;
    else
      w[i] = sign * std::ldexp(0.05f, -int(uniform(gen) * 8));
  }
  return w;
}

// A small state_dict covering every kind of tensor, and its codes.
struct SmallModel {
  std::vector<std::pair<std::string, Tensor<float>>> state;
  std::vector<quant::QuantizedTensor> codes;
};
SmallModel small_model(uint64_t seed) {
  SmallModel m;
  trit::Generator gen(seed);
  auto conv = quantized_weights({8, 2, 3, 3}, false, true, 0.7, seed);
  auto conv2 = quantized_weights({6, 8, 1, 1}, false, false, 0.9, seed + 1);
  auto fc = quantized_weights({4, 12}, true, false, 0.75, seed + 2);
  m.state = {{"conv.weight", conv},
             {"bn.weight", Tensor<float>::randn({8}, gen)},
             {"bn.running_var", Tensor<float>::uniform({8}, 0.5f, 2.0f, gen)},
             {"bn.num_batches_tracked", Tensor<float>::scalar(4097.0f)},
             {"conv2.weight", conv2},
             {"fc.weight", fc},
             {"fc.bias", Tensor<float>::randn({4}, gen)}};
  m.codes = {quant::encode("conv.weight", conv, quant::Encoding::ternary, true, 3),
             quant::encode("conv2.weight", conv2, quant::Encoding::ternary, false, 3),
             quant::encode("fc.weight", fc, quant::Encoding::power_of_two, false, 19)};
  return m;
}

trit::models::ModelConfig test_config() {
  trit::models::ModelConfig c;
  c.name = "resnet20";
  c.num_classes = 10;
  c.in_channels = 1;
  c.input_size = 28;
  c.width = 0.75;
  c.small_input = false;
  c.shortcut = trit::models::CifarShortcut::B;
  return c;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  auto v = io::read_file(path);
  return std::string(v.begin(), v.end());
}

// Bitwise equality of two float tensors.
bool same_values(const Tensor<float>& a, const Tensor<float>& b) {
  if (a.shape() != b.shape()) return false;
  return std::memcmp(a.data(), b.data(), size_t(a.numel()) * 4) == 0;
}

// Rewrites the trailing CRC so that a mutated file passes the checksum.
void repair_crc(std::string& bytes) {
  if (bytes.size() < 4) return;
  const uint32_t crc = io::detail::crc32_of(bytes.data(), bytes.size() - 4);
  for (int k = 0; k < 4; ++k) bytes[bytes.size() - 4 + k] = char((crc >> (8 * k)) & 0xff);
}

}  // namespace

// ---- the rANS coder -----------------------------------------------------------------------------

TEST_CASE("rans: coded size within 3% of the order-0 entropy (sparse ternary, power-of-two)") {
  struct Case {
    const char* name;
    std::vector<double> p;
  };
  const std::vector<Case> cases = {
      {"ternary, 70% zeros", {0.7, 0.15, 0.15}},
      {"ternary, 90% zeros", {0.9, 0.05, 0.05}},
      {"power-of-two 17 levels, 75% zeros", pow2_probabilities(0.75)},
      {"power-of-two 17 levels, 90% zeros", pow2_probabilities(0.90)},
  };
  for (const auto& c : cases) {
    const size_t n = 200000;
    const std::vector<uint8_t> codes = draw(n, c.p, 7);
    const double entropy_bytes = io::order0_entropy_bits(codes.data(), n) / 8;
    const std::string coded = io::rans_encode(codes);
    MESSAGE(std::string(c.name), ": n = ", n, ", entropy ", entropy_bytes, " B (",
            8 * entropy_bytes / double(n), " bits/code), coded ", coded.size(), " B (",
            100.0 * (double(coded.size()) / entropy_bytes - 1), "% over), fixed-length ",
            (c.p.size() == 3 ? n / 4 : n * 5 / 8), " B");
    CHECK(double(coded.size()) <= 1.03 * entropy_bytes);
    CHECK(double(coded.size()) >= entropy_bytes - 8);  // no coder beats the bound (sanity)
    CHECK(io::rans_decode(coded.data(), coded.size(), n, "t") == codes);
  }
}

TEST_CASE("rans: order-0 entropy, computed by hand") {
  const std::vector<uint8_t> s = {0, 0, 1, 2};  // p = 1/2, 1/4, 1/4: 1.5 bits each
  CHECK(io::order0_entropy_bits(s.data(), s.size()) == doctest::Approx(6.0));
  const std::vector<uint8_t> one(10, 3);
  CHECK(io::order0_entropy_bits(one.data(), one.size()) == 0.0);
}

TEST_CASE("rans: round trips of edge cases") {
  std::vector<std::vector<uint8_t>> streams = {
      {}, {0}, {5}, std::vector<uint8_t>(100000, 0), std::vector<uint8_t>(1000, 255)};
  std::vector<uint8_t> all(5000);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint8_t((i * 7919) % 256);
  streams.push_back(all);
  std::vector<uint8_t> rare(300000, 0);
  rare[123456] = 2;  // one symbol at probability 3e-6: frequency 1 of 32768
  streams.push_back(rare);
  streams.push_back(draw(1000, pow2_probabilities(0.5), 3));
  for (const auto& s : streams) {
    INFO("stream of ", s.size(), " symbols");
    const std::string coded = io::rans_encode(s);
    CHECK(io::rans_decode(coded.data(), coded.size(), s.size(), "t") == s);
  }
  // A constant stream costs only its header and state.
  const std::string zeros = io::rans_encode(std::vector<uint8_t>(100000, 0));
  CHECK(zeros.size() == 1 + 2 + 4);
}

TEST_CASE("rans: garbage, truncated and mutated streams raise trit::Error, never crash") {
  const std::vector<uint8_t> codes = draw(3000, {0.8, 0.1, 0.1}, 11);
  const std::string coded = io::rans_encode(codes);
  // Wrong symbol count: too many runs out of bytes, too few leaves bytes.
  CHECK_THROWS_AS(io::rans_decode(coded.data(), coded.size(), codes.size() + 50, "t"), trit::Error);
  CHECK_THROWS_AS(io::rans_decode(coded.data(), coded.size(), codes.size() - 50, "t"), trit::Error);
  CHECK(error_of([&] {
          io::rans_decode(coded.data(), coded.size() - 1, codes.size(), "where");
        }).find("where") == 0);
  for (size_t len = 0; len < coded.size(); len += 7)
    CHECK_THROWS_AS(io::rans_decode(coded.data(), len, codes.size(), "t"), trit::Error);
  // Random bytes and mutations: an error, or (rarely, for a flip in the coded bytes) another
  // valid stream of the same length; never a crash or a read out of bounds (ASan).
  std::mt19937_64 gen(5);
  int errors = 0;
  for (int trial = 0; trial < 500; ++trial) {
    std::string bad = coded;
    if (trial % 2 == 0) {
      bad.resize(size_t(gen() % 200));
      for (auto& ch : bad) ch = char(gen());
    } else {
      bad[gen() % bad.size()] ^= char(1 + gen() % 255);
    }
    try {
      auto out = io::rans_decode(bad.data(), bad.size(), codes.size(), "t");
      CHECK(out.size() == codes.size());
    } catch (const trit::Error&) {
      ++errors;
    }
  }
  CHECK(errors > 400);
}

// ---- half precision
// -------------------------------------------------------------------------------

TEST_CASE("float_to_half: exact where representable, nearest even otherwise, inf on overflow") {
  using io::detail::float_to_half;
  using io::detail::half_to_float;
  // Every finite half survives float -> half -> float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    const float f = half_to_float(uint16_t(h));
    REQUIRE(float_to_half(f) == h);
  }
  CHECK(float_to_half(1.0f + 0x1.0p-11f) == 0x3c00);  // halfway: even (1.0)
  CHECK(float_to_half(1.0f + 0x1.8p-11f) == 0x3c01);  // above halfway: up
  CHECK(float_to_half(65520.0f) == 0x7c00);           // rounds past the largest half
  CHECK(float_to_half(1e-9f) == 0);
  CHECK(std::isnan(half_to_float(float_to_half(NAN))));
}

// ---- the .trit format ---------------------------------------------------------------------------

TEST_CASE("trit format: ResNet-20 with ternary and power-of-two layers round-trips exactly") {
  const auto config = test_config();
  auto model = trit::models::make_model(config);
  auto state = model->state_dict();
  // Quantize every conv and linear weight by hand: ternary per tensor, ternary per channel,
  // power-of-two, in turn; codes read off the weights with quant::encode.
  std::vector<quant::QuantizedTensor> codes;
  int k = 0;
  for (auto& [name, tensor] : state) {
    if (tensor.dim() != 4 && tensor.dim() != 2) continue;
    const int kind = k++ % 3;
    tensor.copy_from(quantized_weights(tensor.shape(), kind == 2, kind == 1, kind == 2 ? 0.75 : 0.7,
                                       100 + uint64_t(k)));
    codes.push_back(kind == 2
                        ? quant::encode(name, tensor, quant::Encoding::power_of_two, false, 19)
                        : quant::encode(name, tensor, quant::Encoding::ternary, kind == 1, 3));
  }
  REQUIRE(codes.size() == 22);  // 19 convs, 2 projection convs (shortcut B), the classifier

  for (bool entropy : {true, false}) {
    INFO("entropy = ", entropy);
    TempPath file("resnet20.trit");
    io::CompressOptions options;
    options.entropy = entropy;
    options.metadata = {{"quant", "hand-made"}, {"epochs", "0"}};
    const io::CompressedModel written =
        io::save_compressed(file.path, config, model->state_dict(), codes, options);
    CHECK(written.file_bytes == int64_t(std::filesystem::file_size(file.path)));

    const io::CompressedModel back = io::read_compressed(file.path);
    CHECK(back.file_bytes == written.file_bytes);
    CHECK(back.metadata == options.metadata);
    CHECK(back.config.name == "resnet20");
    CHECK(back.config.num_classes == 10);
    CHECK(back.config.in_channels == 1);
    CHECK(back.config.input_size == 28);
    CHECK(back.config.width == 0.75);
    CHECK(back.config.small_input == std::optional<bool>(false));
    CHECK(back.config.shortcut == trit::models::CifarShortcut::B);

    // expand() gives back every tensor of the state_dict bit for bit, in order.
    const auto dense = io::expand(back);
    const auto original = model->state_dict();
    REQUIRE(dense.size() == original.size());
    for (size_t i = 0; i < dense.size(); ++i) {
      INFO(original[i].first);
      CHECK(dense[i].first == original[i].first);
      CHECK(same_values(dense[i].second, original[i].second));
    }
    // Encodings: codes where quantized, chosen by size; f32 for the rest.
    for (size_t i = 0; i < back.tensors.size(); ++i) {
      const auto& t = back.tensors[i];
      CHECK(t.encoding == written.tensors[i].encoding);
      CHECK(t.file_bytes == written.tensors[i].file_bytes);
      const bool is_code = t.shape().size() == 4 || t.shape().size() == 2;
      if (!is_code)
        CHECK(t.encoding == io::TensorEncoding::f32);
      else if (t.quantized.encoding == quant::Encoding::ternary)
        CHECK(t.encoding ==
              (entropy ? io::TensorEncoding::ternary_entropy : io::TensorEncoding::ternary2));
      else
        CHECK(t.encoding ==
              (entropy ? io::TensorEncoding::pow2_entropy : io::TensorEncoding::pow2));
    }
    // The file rebuilds its model: same architecture, same weights.
    auto rebuilt = io::make_dense_model(back, file.path);
    const auto rebuilt_state = rebuilt->state_dict();
    for (size_t i = 0; i < rebuilt_state.size(); ++i)
      CHECK(same_values(rebuilt_state[i].second, original[i].second));

    // Size accounting: the rows and the header add up to the file; FP32 counts everything.
    const io::SizeTable table = io::size_table(back);
    int64_t rows = 0, numel = 0;
    for (const auto& r : table.rows) rows += r.bytes, numel += r.numel;
    CHECK(rows + table.header_bytes == table.file_bytes);
    CHECK(table.file_bytes == int64_t(std::filesystem::file_size(file.path)));
    CHECK(table.fp32_bytes == 4 * numel);
    int64_t state_numel = 0;
    for (const auto& entry : original) state_numel += entry.second.numel();
    CHECK(numel == state_numel);
    MESSAGE("ResNet-20 (", std::string(entropy ? "entropy" : "fixed-length"), "): file ",
            table.file_bytes, " B, FP32 ", table.fp32_bytes, " B, ratio ",
            table.compression_ratio(), ", paper-style ", table.nominal_bytes, " B");
  }
}

TEST_CASE("trit format: ternary_entropy records come within 3% of the codes' entropy") {
  for (double p0 : {0.7, 0.9}) {
    const trit::Shape shape = {256, 128, 3, 3};  // 294,912 weights
    Tensor<float> w = quantized_weights(shape, false, false, p0, 21);
    auto q = quant::encode("w", w, quant::Encoding::ternary, false, 3);
    auto m = io::compress(test_config(), {{"w", w}}, {q});
    REQUIRE(m.tensors[0].encoding == io::TensorEncoding::ternary_entropy);
    const double entropy_bytes = io::order0_entropy_bits(q.codes.data(), q.codes.size()) / 8;
    MESSAGE(int(p0 * 100), "% zeros: record ", m.tensors[0].file_bytes, " B, entropy ",
            entropy_bytes, " B, ternary2 ", q.numel() / 4, " B");
    CHECK(double(m.tensors[0].file_bytes) <= 1.03 * entropy_bytes);
  }
}

TEST_CASE("trit format: every encoding round-trips (f16 rounds, num_batches_tracked stays f32)") {
  SmallModel s = small_model(3);
  io::CompressOptions options;
  options.fp16 = true;
  io::CompressedModel m = io::compress(test_config(), s.state, s.codes, options);
  CHECK(m.find("bn.weight")->encoding == io::TensorEncoding::f16);
  CHECK(m.find("bn.num_batches_tracked")->encoding == io::TensorEncoding::f32);
  // f16 tensors hold the rounded values, as they read back.
  const Tensor<float> bn = s.state[1].second;
  for (int64_t i = 0; i < bn.numel(); ++i)
    CHECK(m.find("bn.weight")->dense[i] ==
          io::detail::half_to_float(io::detail::float_to_half(bn[i])));
  // Force each code encoding in turn on the codes, through bytes and back.
  using E = io::TensorEncoding;
  for (auto [ternary, pow2] :
       {std::pair{E::ternary2, E::pow2}, std::pair{E::ternary_entropy, E::pow2_entropy}}) {
    m.tensors[0].encoding = m.tensors[4].encoding = ternary;
    m.tensors[5].encoding = pow2;
    const std::string bytes = io::serialize_compressed(m);
    const io::CompressedModel back = io::parse_compressed(bytes.data(), bytes.size(), "mem");
    REQUIRE(back.tensors.size() == m.tensors.size());
    for (size_t i = 0; i < m.tensors.size(); ++i) {
      CHECK(back.tensors[i].encoding == m.tensors[i].encoding);
      CHECK(same_values(back.tensors[i].expand(), m.tensors[i].expand()));
    }
    CHECK(back.tensors[0].quantized.groups == 8);
    CHECK(back.tensors[0].quantized.codebooks == s.codes[0].codebooks);
    CHECK(back.tensors[5].quantized.codebooks == s.codes[2].codebooks);
  }
}

TEST_CASE("trit format: bad inputs to compress raise trit::Error") {
  SmallModel s = small_model(4);
  auto bad = s.codes;
  bad[0].name = "missing.weight";
  CHECK(error_of([&] { io::compress(test_config(), s.state, bad); }).find("missing.weight") !=
        std::string::npos);
  bad = s.codes;
  bad[1].codes[3] = bad[1].codes[3] == 0 ? 1 : 0;  // codes that are not the weights
  CHECK(error_of([&] { io::compress(test_config(), s.state, bad); }).find("differs") !=
        std::string::npos);
  bad = s.codes;
  bad[1].codes[5] = 7;  // outside the codebook
  CHECK_THROWS_AS(io::compress(test_config(), s.state, bad), trit::Error);
  bad = s.codes;
  bad[2].encoding = quant::Encoding::ternary;  // 17 levels are not ternary
  CHECK_THROWS_AS(io::compress(test_config(), s.state, bad), trit::Error);
}

TEST_CASE("trit format: a failed save leaves the old file intact") {
  TempPath file("atomic.trit");
  SmallModel s = small_model(5);
  io::save_compressed(file.path, test_config(), s.state, s.codes);
  const std::string before = read_bytes(file.path);
  io::CompressedModel broken = io::compress(test_config(), s.state, s.codes);
  broken.tensors[0].quantized.codes[0] = 9;  // not writable: outside its codebook
  CHECK(error_of([&] { io::save_compressed(file.path, broken); }).find(file.path) == 0);
  CHECK(read_bytes(file.path) == before);
  // Saving into a missing directory fails the same way, leaving nothing behind.
  CHECK_THROWS_AS(io::save_compressed(file.path + ".d/x.trit", test_config(), s.state, s.codes),
                  trit::Error);
  CHECK(io::read_compressed(file.path).tensors.size() == s.state.size());
  // No temporary file is left next to it.
  const std::filesystem::path target(file.path);
  int temporaries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(target.parent_path()))
    temporaries +=
        entry.path().filename().string().starts_with(target.filename().string() + ".tmp");
  CHECK(temporaries == 0);
}

TEST_CASE("trit format: truncated, corrupt, foreign and other-version files raise trit::Error") {
  TempPath file("bad.trit"), bad("bad2.trit");
  SmallModel s = small_model(6);
  io::save_compressed(file.path, test_config(), s.state, s.codes);
  const std::string bytes = read_bytes(file.path);

  // Every length and every byte in memory (parse_compressed is what read_compressed runs),
  // every 50th through a file on disk.
  SUBCASE("truncated at every length") {
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO("truncated to ", n, " bytes");
      CHECK(error_of([&] { io::parse_compressed(bytes.data(), n, "mem"); }).find("mem: ") == 0);
      if (n % 50 != 0) continue;
      write_bytes(bad.path, bytes.substr(0, n));
      CHECK(error_of([&] { io::read_compressed(bad.path); }).find(bad.path) == 0);
    }
  }
  SUBCASE("every byte corrupted") {
    for (size_t i = 0; i < bytes.size(); ++i) {
      INFO("byte ", i);
      std::string b = bytes;
      b[i] ^= 0x5a;
      CHECK(error_of([&] { io::parse_compressed(b.data(), b.size(), "mem"); }).find("mem: ") == 0);
      if (i % 50 != 0) continue;
      write_bytes(bad.path, b);
      CHECK(error_of([&] { io::read_compressed(bad.path); }).find(bad.path) == 0);
    }
  }
  SUBCASE("wrong magic, version, missing file") {
    std::string b = bytes;
    b[0] = 'X';
    write_bytes(bad.path, b);
    CHECK(error_of([&] { io::read_compressed(bad.path); }).find("magic") != std::string::npos);
    b = bytes;
    b[4] = 7;
    repair_crc(b);
    write_bytes(bad.path, b);
    CHECK(error_of([&] { io::read_compressed(bad.path); }).find("version 7") != std::string::npos);
    CHECK(error_of([&] { io::read_compressed(bad.path + ".none"); }).find(".none") !=
          std::string::npos);
    // A checkpoint is not a .trit file.
    io::save_checkpoint(bad.path, s.state);
    CHECK(error_of([&] { io::read_compressed(bad.path); }).find("checkpoint") != std::string::npos);
  }
  SUBCASE("a huge shape with a valid checksum is refused before any allocation") {
    io::CompressedModel m = io::compress(test_config(), s.state, s.codes);
    std::string b = io::serialize_compressed(m);
    // The first record's first dim (conv.weight, 8: a one-byte varint after the name, the
    // encoding and the rank) -> 2^40, the varint 80 80 80 80 80 20.
    const size_t at = b.find("conv.weight") + 11 + 1 + 1;
    REQUIRE(b[at] == 8);
    b.replace(at, 1, "\x80\x80\x80\x80\x80\x20");
    repair_crc(b);
    CHECK(error_of([&] { io::parse_compressed(b.data(), b.size(), "f"); }).find("elements") !=
          std::string::npos);
  }
  SUBCASE("zero codebook groups for an empty tensor are refused (no division by zero)") {
    io::CompressedModel m;
    m.config = test_config();
    io::CompressedTensor t;
    t.name = "empty";
    t.encoding = io::TensorEncoding::ternary2;
    t.quantized.name = "empty";
    t.quantized.shape = {0, 3};
    t.quantized.codebooks = {{0.0f}};
    m.tensors.push_back(t);
    std::string b = io::serialize_compressed(m);
    CHECK(io::parse_compressed(b.data(), b.size(), "f").tensors[0].numel() == 0);
    // Record: name, encoding, rank, 2 dims, payload length (one byte each), then groups.
    const size_t groups_at = b.find("empty") + 5 + 1 + 1 + 2 + 1;
    REQUIRE(b[groups_at] == 1);
    b[groups_at] = 0;
    repair_crc(b);
    CHECK(error_of([&] { io::parse_compressed(b.data(), b.size(), "f"); }).find("groups") !=
          std::string::npos);
  }
}

TEST_CASE("trit format: fuzz, a few thousand mutated files raise only trit::Error") {
  SmallModel s = small_model(8);
  io::CompressOptions options;
  options.fp16 = true;
  const std::string good =
      io::serialize_compressed(io::compress(test_config(), s.state, s.codes, options));
  std::mt19937_64 gen(2024);
  int errors = 0, parsed = 0;
  const int trials = 4000;
  for (int trial = 0; trial < trials; ++trial) {
    std::string b = good;
    const int mutations = 1 + int(gen() % 4);
    for (int k = 0; k < mutations && !b.empty(); ++k) {
      switch (gen() % 4) {
        case 0:
          b[gen() % b.size()] ^= char(1u << (gen() % 8));
          break;  // bit flip
        case 1:
          b[gen() % b.size()] = char(gen());
          break;  // random byte
        case 2:
          b.resize(gen() % b.size());
          break;  // truncation
        case 3:
          b.insert(b.begin() + std::ptrdiff_t(gen() % (b.size() + 1)), char(gen()));
          break;
      }
    }
    // Half of the files get a valid checksum, so that the parser behind it is exercised.
    const bool repaired = trial % 2 == 1;
    if (repaired) repair_crc(b);
    try {
      const io::CompressedModel m = io::parse_compressed(b.data(), b.size(), "fuzz");
      // A mutation may hit a float value or a codebook entry: still a valid file.
      ++parsed;
      CHECK((repaired || b == good));
      for (const auto& t : m.tensors) CHECK(t.expand().numel() == t.numel());
    } catch (const trit::Error& e) {
      ++errors;
      CHECK(std::string(e.what()).find("fuzz") == 0);
    }
  }
  MESSAGE("fuzz: ", errors, " errors, ", parsed, " files still valid, of ", trials);
  CHECK(errors + parsed == trials);
  CHECK(errors > trials / 2);
}
